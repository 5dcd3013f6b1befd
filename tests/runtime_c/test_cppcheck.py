"""The runtime headers pass cppcheck's warning and portability checks (issue 18: it
reported signed shifts by 31 bits, implementation-defined in C, in mcuc_fixedpoint.h),
and the check does catch such a shift."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from mcuc import runtime_c

if shutil.which("cppcheck") is None:
    pytest.skip("cppcheck is needed (Debian: cppcheck; scripts/setup.sh installs it)", allow_module_level=True)


def cppcheck(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["cppcheck", "--enable=warning,portability", "--inconclusive", "--std=c99",
                           "--language=c", "--error-exitcode=1", "-q", *map(str, paths)],
                          capture_output=True, text=True, timeout=600)


def test_runtime_headers_are_cppcheck_clean():
    headers = sorted(Path(runtime_c.SOURCE_DIR).glob("*.h"))
    assert len(headers) >= 5
    done = cppcheck(*headers)
    assert done.returncode == 0, done.stderr


def test_cppcheck_catches_a_signed_shift_by_31(tmp_path):
    bad = tmp_path / "bad.h"
    bad.write_text("#include <stdint.h>\nstatic inline int32_t sign(int32_t x) { return x >> 31; }\n")
    done = cppcheck(bad)
    assert done.returncode != 0 and "shiftTooManyBitsSigned" in done.stderr
