"""The Python API and the CLI agree: the same arena for the same target, the backend's
core in the report, patch= and sram= accepted, the C project written from Python with a
report.json equal to the CLI's byte for byte; --io float on an int8 model is refused."""
from __future__ import annotations

import json

import numpy as np
import pytest

import mcuc
from mcuc.cli import main
from tests.support.paths import REPO_ROOT

EXAMPLE = REPO_ROOT / "examples" / "mobilenet_tiny_int8.tflite"


def test_write_equals_cli_compile_and_core_backend_reports_its_core(tmp_path, capsys):
    assert main(["compile", str(EXAMPLE), "-o", str(tmp_path / "cli"), "--target", "cortex-m7", "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    compiled = mcuc.compile(str(EXAMPLE), target="cortex-m7")  # llvm runs it: its own arena, on the host
    assert compiled.report["backend"] == "llvm" and compiled.report["target"] == "host"
    written = compiled.write(tmp_path / "api")
    assert written["arena_bytes"] == cli["arena_bytes"] and written["target"] == "cortex-m7"
    assert (tmp_path / "api" / "report.json").read_bytes() == (tmp_path / "cli" / "report.json").read_bytes()
    assert (tmp_path / "api" / "model.c").read_bytes() == (tmp_path / "cli" / "model.c").read_bytes()
    # The same folder function, without compiling for a backend first.
    again = mcuc.compile_to_directory(str(EXAMPLE), tmp_path / "fn", target="cortex-m7")
    assert again["arena_bytes"] == cli["arena_bytes"]
    # A Cortex-M backend reports its own core and the arena `mcuc compile --target` reports.
    m7 = mcuc.compile(str(EXAMPLE), backend="cortex-m7")
    assert m7.report["target"] == "cortex-m7" and m7.report["arena_bytes"] == cli["arena_bytes"]


def test_write_refuses_a_folder_of_the_users(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(mcuc.MCUCError, match="--force"):
        mcuc.compile_to_directory(str(EXAMPLE), tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_backend_and_target_must_not_contradict():
    with pytest.raises(mcuc.MCUCError, match="contradicts"):
        mcuc.compile(str(EXAMPLE), backend="cortex-m7", target="cortex-m4")


def test_patch_auto_and_sram_are_api_options():
    x = np.random.default_rng(0).integers(-128, 128, (1, 48, 48, 3), dtype=np.int8)
    plain = mcuc.compile(str(EXAMPLE), backend="reference")
    patched = mcuc.compile(str(EXAMPLE), backend="reference", patch="auto")
    assert np.array_equal(patched(x), plain(x))
    budget = mcuc.compile(str(EXAMPLE), backend="reference", sram=20_000)  # layer by layer fits
    assert budget.report["arena_bytes"] == plain.report["arena_bytes"] <= 20_000
    with pytest.raises(mcuc.MCUCError, match="SRAM"):
        mcuc.compile(str(EXAMPLE), backend="reference", sram=1_000)


def test_io_float_on_an_int8_model_is_refused(capsys):
    assert main(["inspect", str(EXAMPLE), "--io", "float"]) == 2
    err = capsys.readouterr().err
    assert "--io float" in err and "int8" in err and err.count("\n") == 1
    with pytest.raises(mcuc.MCUCError, match="--io float"):
        mcuc.compile(str(EXAMPLE), backend="reference", io="float")
