"""Where the tests find the repository and the shared models (read-only test data
outside the repository, `../shared/models` beside it)."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# ../shared/models relative to the project root (shared/models/README.md): never copied
# into the repository, present in CI, possibly absent in a fresh clone.
SHARED_MODELS_DIR = (REPO_ROOT / ".." / "shared" / "models").resolve()


def shared_model_path(name: str) -> Path:
    """The path of a shared model (e.g. "mcunet_vww1" or "mcunet_vww1.tflite"); skips the
    calling test with the reason when the models folder or the file is absent."""
    if not SHARED_MODELS_DIR.is_dir():
        pytest.skip(f"shared models folder {SHARED_MODELS_DIR} is absent (it exists in CI)")
    path = SHARED_MODELS_DIR / (name if Path(name).suffix else f"{name}.tflite")
    if not path.is_file():
        pytest.skip(f"shared model {path.name} is absent from {SHARED_MODELS_DIR}")
    return path


def shared_model_names() -> list[str]:
    """Stems of the shared .tflite models (empty when the folder is absent), for
    parametrizing tests at collection time."""
    if not SHARED_MODELS_DIR.is_dir():
        return []
    return sorted(p.stem for p in SHARED_MODELS_DIR.glob("*.tflite"))
