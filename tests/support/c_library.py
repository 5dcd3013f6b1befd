"""C wrappers around runtime_c's inline kernels, built as a host shared library so tests can
call them through ctypes."""
from __future__ import annotations

import ctypes
import shutil
import subprocess

import pytest

from mcuc.runtime_c import SOURCE_DIR


def host_library(tmp_path_factory, name: str, source: str, std: str = "c11") -> ctypes.CDLL:
    """`source` (C including runtime_c headers) compiled with the host gcc under -Werror;
    skips the calling test when there is no gcc. `std` matters: ISO C (c11) lets GCC contract
    nothing into FMAs, as in the generated projects."""
    if shutil.which("gcc") is None:
        pytest.skip("host gcc is not installed")
    folder = tmp_path_factory.mktemp(name)
    (folder / "w.c").write_text(source)
    so = folder / "libw.so"
    subprocess.run(["gcc", "-O2", f"-std={std}", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
                    f"-I{SOURCE_DIR}", str(folder / "w.c"), "-o", str(so)], check=True)
    return ctypes.CDLL(str(so))
