"""The `mcuc` command line misused (issue 18): every mistake is exit 2 with one short
message naming it, never a traceback, a silent pass or a file written somewhere else."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.support.hostile_models import refused, run_cli
from tests.support.paths import REPO_ROOT

EXAMPLE = REPO_ROOT / "examples" / "mobilenet_tiny_int8.tflite"
SHAPE = (1, 48, 48, 3)


@pytest.fixture
def x_npy(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.zeros(SHAPE, np.int8))
    return path


def test_run_output_into_a_missing_folder(tmp_path, capsys, x_npy):
    message = refused(capsys, "run", EXAMPLE, "--input", x_npy, "--output", tmp_path / "no" / "y.npy")
    assert "does not exist" in message and "--output" in message


def test_run_output_is_exactly_the_path_given(tmp_path, capsys, x_npy):
    """np.save would write DIR.npy for a folder DIR, and y.npy for y: mcuc writes y, and
    refuses a folder."""
    folder = tmp_path / "outdir"
    folder.mkdir()
    assert "is a directory" in refused(capsys, "run", EXAMPLE, "--input", x_npy, "--output", folder)
    assert not (tmp_path / "outdir.npy").exists()
    code, _, _ = run_cli(capsys, "run", EXAMPLE, "--input", x_npy, "--output", tmp_path / "y")
    assert code == 0 and (tmp_path / "y").is_file() and not (tmp_path / "y.npy").exists()
    assert np.load(tmp_path / "y").shape == (1, 10)


@pytest.mark.parametrize("shape", [(), (6912,), (1, 48, 144), (1, 1, 48, 48, 3)])
def test_run_refuses_an_input_of_another_rank_with_the_right_element_count(tmp_path, capsys, shape):
    path = tmp_path / "x.npy"
    np.save(path, np.zeros(shape, np.int8) if shape else np.int8(0))
    message = refused(capsys, "run", EXAMPLE, "--input", path, "--output", tmp_path / "y.npy")
    assert "expected a 4-D array of shape [1, 48, 48, 3]" in message
    assert not (tmp_path / "y.npy").exists()


def test_plan_svg_into_a_missing_folder(tmp_path, capsys):
    message = refused(capsys, "plan", EXAMPLE, "--svg", tmp_path / "no" / "plan.svg")
    assert "--svg" in message and "does not exist" in message


@pytest.mark.parametrize("argv, words", [
    (["--seed", "-1"], "--seed"),
    (["--samples", "0"], "--samples"),
    (["--backends", ","], "names no backend"),
    (["--backends", " , ,"], "names no backend"),
    (["--backends", "reference,nope"], "nope"),
])
def test_verify_options_out_of_range(capsys, argv, words):
    assert words in refused(capsys, "verify", EXAMPLE, *argv)


def test_a_folder_given_as_the_model(tmp_path, capsys):
    assert "is a directory" in refused(capsys, "inspect", tmp_path)
    assert "does not exist" in refused(capsys, "inspect", tmp_path / "missing.tflite")


def test_compile_refuses_a_folder_of_the_users_unless_forced(tmp_path, capsys):
    out = tmp_path / "project"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    message = refused(capsys, "compile", EXAMPLE, "-o", out)
    assert "--force" in message and (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert run_cli(capsys, "compile", EXAMPLE, "-o", out, "--force")[0] == 0
    assert (out / "model.c").is_file() and (out / "notes.txt").read_text() == "mine"
    # A folder mcuc wrote may be compiled into again, and a new or empty one always.
    fresh = tmp_path / "fresh"
    assert run_cli(capsys, "compile", EXAMPLE, "-o", fresh)[0] == 0
    assert run_cli(capsys, "compile", EXAMPLE, "-o", fresh)[0] == 0
    assert "arena_bytes" in json.loads((fresh / "report.json").read_text())
    (tmp_path / "file").write_text("x")
    assert "is a file" in refused(capsys, "compile", EXAMPLE, "-o", tmp_path / "file")


@pytest.mark.parametrize("value, ok", [("64MiB", True), ("1024", True), ("2k", True), ("0", False),
                                       ("-5", False), ("lots", False), ("1.5MiB", False)])
def test_max_tensor_bytes_values(capsys, value, ok):
    if ok:
        code, _, err = run_cli(capsys, "inspect", EXAMPLE, "--max-tensor-bytes", value)
        assert code == (0 if value == "64MiB" else 2), err
    else:
        with pytest.raises(SystemExit) as exit_:
            run_cli(capsys, "inspect", EXAMPLE, "--max-tensor-bytes", value)
        assert exit_.value.code == 2


def test_argparse_errors_are_short(capsys):
    for argv in (["verify"], ["frobnicate"], ["compile", str(EXAMPLE)], ["verify", str(EXAMPLE), "--samples", "x"]):
        with pytest.raises(SystemExit) as exit_:
            run_cli(capsys, *argv)
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        assert exit_.value.code == 2 and len(lines) == 2, err
        assert lines[0].startswith("usage: mcuc") and "--help" in lines[0] and "error:" in lines[1]


def test_console_script_misuse_has_no_traceback(tmp_path):
    mcuc = [sys.executable, "-m", "mcuc"]
    for argv in (["verify", str(EXAMPLE), "--seed", "-1"], ["inspect", str(tmp_path)], ["run"]):
        result = subprocess.run(mcuc + argv, capture_output=True, text=True, timeout=120)
        assert result.returncode == 2 and "Traceback" not in result.stderr and len(result.stderr) < 400, result.stderr
