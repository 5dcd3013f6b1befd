"""Shared fixtures over tests/support/paths.py: the shared models folder and files,
skipping a test when they are absent."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from tests.support.paths import SHARED_MODELS_DIR, shared_model_path


@pytest.fixture
def models_dir() -> Path:
    """The shared models folder; skips the test when it is absent."""
    if not SHARED_MODELS_DIR.is_dir():
        pytest.skip(f"shared models folder {SHARED_MODELS_DIR} is absent (it exists in CI)")
    return SHARED_MODELS_DIR


@pytest.fixture
def shared_model() -> Callable[[str], Path]:
    """`shared_model("vww_96_int8")` -> Path, skipping the test when it is absent."""
    return shared_model_path
