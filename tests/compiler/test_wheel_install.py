"""mcuc as a user installs it: the built wheel with its `verify` extra, in a fresh virtual
environment, run from outside the repository. The editable install the scripts make
cannot show a package or a data file missing from the wheel; this can.

The environment is made with the same pip as the test run (its configuration and cache
included), so the dependencies come from wherever .venv's came from.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import REPO_ROOT, shared_model_path


def _run(args: list, cwd: Path, timeout: int = 900) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, args))} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _source_copy(dest: Path) -> Path:
    """The repository's tracked files (what a checkout holds), without build leftovers."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True).stdout
    for name in files.decode().split("\0"):
        if name and (REPO_ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / name, dest / name)
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """bin/ of a fresh venv holding the built wheel with mcuc[verify]."""
    if shutil.which("git") is None:
        pytest.skip("git is needed to list the repository's files")
    root = tmp_path_factory.mktemp("wheel")
    source = _source_copy(root / "src")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", root / "dist",
          source], root)
    (wheel,) = (root / "dist").glob("mcuc-*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", venv], root)
    _run([venv / "bin" / "python", "-m", "pip", "install", "-q", f"{wheel}[verify]"], root)
    return venv / "bin"


def test_wheel_holds_every_package_and_data_file(installed, tmp_path):
    import zipfile

    (wheel,) = installed.parent.parent.joinpath("dist").glob("mcuc-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in ("mcuc/backends/llvm/kernels/__init__.py", "mcuc/backends/cortexm/templates/kernels/conv.j2",
                    "mcuc/runtime_c/mcuc_conv.h", "mcuc/ir/ops/conv2d.py", "mcuc/templates/report.html.j2",
                    "mcuc/backends/cortexm/templates/bundle/library.h.j2"):
        assert package in names, package
    assert any(n.endswith("LICENSE") for n in names)


def test_installed_cli_compiles_and_verifies_every_backend(installed, tmp_path):
    model = shared_model_path("hello_world_int8")
    backends = "reference,llvm,c-host" + (",cortex-m4" if shutil.which("arm-none-eabi-gcc") else "")
    out = _run([installed / "mcuc", "verify", model, "--backends", backends, "--samples", "3"], tmp_path)
    for backend in backends.split(","):
        assert backend in out, out
    assert "mismatch" not in out.lower(), out
    _run([installed / "mcuc", "compile", model, "-o", tmp_path / "project", "--target", "cortex-m4"], tmp_path)
    assert (tmp_path / "project" / "model.c").is_file() and (tmp_path / "project" / "Makefile").is_file()
    assert "<h2 id=\"layers\">Per layer</h2>" in (tmp_path / "project" / "report.html").read_text()


def test_installed_python_api(installed, tmp_path):
    model = shared_model_path("hello_world_int8")
    script = ("import sys, numpy as np, mcuc\n"
              "m = mcuc.compile(sys.argv[1])\n"
              "x = np.zeros(m.inputs[0].shape, np.dtype(m.inputs[0].dtype))\n"
              "y = m(x)\n"
              "print(type(m).__name__, m.report['arena_bytes'] > 0, y.shape == m.outputs[0].shape)\n"
              "print(mcuc.verify(sys.argv[1], backends=['llvm'])['backends']['llvm']['bit_exact'])\n")
    out = _run([installed / "python", "-c", script, model], tmp_path)
    assert out.split() == ["CompiledModel", "True", "True", "True"], out
