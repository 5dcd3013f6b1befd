"""Progress of `mcuc verify` (samples x backends) shows on a terminal only, never with
--json and never when stderr is not a terminal."""
from __future__ import annotations

import sys

import pytest

from mcuc.cli import main
from tests.support.paths import REPO_ROOT

EXAMPLE = REPO_ROOT / "examples" / "mobilenet_tiny_int8.tflite"
ARGV = ["verify", str(EXAMPLE), "--backends", "reference", "--samples", "3"]


def _stderr_is_a_terminal(monkeypatch, yes: bool):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: yes)


@pytest.mark.parametrize("terminal, json_mode, shown", [(True, False, True), (True, True, False),
                                                        (False, False, False)])
def test_progress_only_on_a_terminal_and_never_with_json(capsys, monkeypatch, terminal, json_mode, shown):
    pytest.importorskip("tqdm")
    _stderr_is_a_terminal(monkeypatch, terminal)
    assert main(ARGV + (["--json"] if json_mode else [])) == 0
    err = capsys.readouterr().err
    # one backend: built (1 step), then 3 samples
    assert ("verify mobilenet_tiny_int8" in err and "/4 [" in err and "building reference" in err) == shown, err
    if not shown:
        assert err == ""


def _fake_bench_row(path, options, seed=0):
    from pathlib import Path

    return {"model": Path(path).stem, "target": options.target, "bit_exact": True, "macs": 1, "macs_run": 1,
            "macs_skipped": 0, "instructions": 1, "macs_per_instruction": 1.0, "cycles": None,
            "macs_per_cycle": None, "arena_bytes": 1, "stack_bytes": 1,
            "peak_sram_bytes": 2, "flash_bytes": 1, "tflm_arena_bytes": None, "steps": []}


@pytest.mark.parametrize("terminal, json_mode, shown", [(True, False, True), (True, True, False),
                                                        (False, False, False)])
def test_bench_shows_the_models_benched_on_a_terminal_only(capsys, monkeypatch, terminal, json_mode, shown):
    import mcuc.bench

    monkeypatch.setattr(mcuc.bench, "bench_model", _fake_bench_row)
    _stderr_is_a_terminal(monkeypatch, terminal)
    assert main(["bench", "a.tflite", "b.tflite"] + (["--json"] if json_mode else [])) == 0
    err = capsys.readouterr().err
    assert ("bench on cortex-m4" in err and "/2 [" in err and "b" in err) == shown, err
    if not shown:
        assert err == ""


@pytest.mark.parametrize("terminal, json_mode, shown", [(True, False, True), (True, True, False)])
def test_plan_shows_the_search_on_a_terminal_only(capsys, monkeypatch, tmp_path, terminal, json_mode, shown):
    _stderr_is_a_terminal(monkeypatch, terminal)
    assert main(["plan", str(EXAMPLE), "--svg", str(tmp_path / "p.svg")] + (["--json"] if json_mode else [])) == 0
    err = capsys.readouterr().err
    assert ("plan mobilenet_tiny_int8" in err and "schedules searched" in err) == shown, err
    if not shown:
        assert err == ""


@pytest.mark.parametrize("terminal, json_mode, shown", [(True, False, True), (True, True, False)])
def test_compile_shows_its_phases_on_a_terminal_only(capsys, monkeypatch, tmp_path, terminal, json_mode, shown):
    _stderr_is_a_terminal(monkeypatch, terminal)
    assert main(["compile", str(EXAMPLE), "-o", str(tmp_path / "out")] + (["--json"] if json_mode else [])) == 0
    err = capsys.readouterr().err
    assert ("compile mobilenet_tiny_int8" in err and "writing the C project" in err) == shown, err
    if not shown:
        assert err == ""
