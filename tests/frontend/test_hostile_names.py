"""Issue 18, item 2: names from a model file reach generated files only escaped. Every
shared model gets hostile tensor, subgraph and signature names (C comment terminators,
newlines, quotes, backslashes, '#', '??/' trigraphs, NUL and escape characters, non-ASCII,
invalid UTF-8, very long strings); its project for cortex-m4 must then build with
-Wall -Wextra -Werror on the host and for the Cortex-M4, with no name in the code."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.fuzz.harness import c_code_and_comments, text_leaks
from tests.support.hostile_models import HOSTILE_NAMES, INJECTED, renamed_tflite
from tests.support.paths import shared_model_names, shared_model_path


# (mcuc target, compiler): a cortex-m0 project is plain C the host compiler builds too
BUILDS = {"cortex-m4": ("cortex-m4", ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft"]),
          "host": ("cortex-m0", ["gcc"])}


def _compile(tmp_path, name: str, target: str):
    from mcuc.build import compile_to_directory
    from mcuc.pipeline import CompileOptions

    model = tmp_path / "named.tflite"
    model.write_bytes(renamed_tflite(shared_model_path(name).read_bytes()))
    out = tmp_path / "project"
    compile_to_directory(model, out, CompileOptions(target=target))
    return out


def _syntax_check(compiler: list[str], out) -> None:
    done = subprocess.run([*compiler, "-std=c11", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-I", str(out),
                           str(out / "model.c")], capture_output=True, text=True, cwd=out)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.parametrize("build", sorted(BUILDS))
@pytest.mark.parametrize("name", shared_model_names() or ["hello_world_int8"])
def test_hostile_names_stay_escaped_and_the_project_builds_with_werror(tmp_path, name, build):
    target, compiler = BUILDS[build]
    if shutil.which(compiler[0]) is None:
        pytest.skip(f"{compiler[0]} is not installed")
    out = _compile(tmp_path, name, target)
    files = {f: (out / f).read_text() for f in ("model.c", "model.h", "Makefile")}
    raw = [n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in HOSTILE_NAMES]
    assert text_leaks(files, raw, INJECTED) == []
    for filename, source in files.items():
        assert source.isascii(), filename
        for hostile in raw:
            special = [s for s in ("*/", "/*", "\n", "??", "\x00") if s in hostile]
            if special:  # the name never appears as it was written, even inside a comment
                assert hostile not in source, (filename, hostile[:60])
        if filename != "Makefile":
            _code, comments, problems = c_code_and_comments(source)
            assert problems == []
    # the names are model text in report.json: JSON escapes them, it stays one valid document
    report = json.loads((out / "report.json").read_text())
    assert report["inputs"] and report["outputs"]
    _syntax_check(compiler, out)


def test_the_escaping_keeps_names_readable():
    from mcuc.backends.cortexm.c_syntax import c_comment

    assert c_comment("conv2d/BiasAdd;relu") == "conv2d/BiasAdd;relu"
    assert c_comment("y */ x /* z") == "y * / x / * z"
    assert c_comment("a\nb??/") == "a b? ?/"
    assert c_comment("caf\u00e9\x00") == "caf\\u00E9\\u0000"
    assert len(c_comment("n" * 5000)) <= 200
