"""`mcuc bench` with estimated cycles and the per-layer profile (`--per-layer`): one row
per schedule step whose figures add up to the model's."""
from __future__ import annotations

import contextlib
import copy
import io
import json
import shutil

import pytest

from mcuc.cli import main
from mcuc.model import load_with_options
from mcuc.passes.report import live_bytes
from mcuc.pipeline import CompileOptions, cortexm_scratch, schedule
from tests.support.paths import REPO_ROOT

EXAMPLE = REPO_ROOT / "examples" / "mobilenet_tiny_int8.tflite"

pytest.importorskip("unicorn", reason="the emulator needs the unicorn package (scripts/setup.sh)")
if shutil.which("arm-none-eabi-gcc") is None:
    pytest.skip("arm-none-eabi-gcc is not installed (Debian: gcc-arm-none-eabi libnewlib-arm-none-eabi)",
                allow_module_level=True)


@pytest.fixture(scope="module")
def bench_rows():
    """`mcuc bench EXAMPLE --target cortex-m4 --per-layer --json`, run once."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["bench", str(EXAMPLE), "--target", "cortex-m4", "--per-layer", "--json"]) == 0
    return json.loads(out.getvalue())


def test_per_layer_rows_are_the_steps_and_add_up_to_the_model(bench_rows):
    (row,) = bench_rows
    options = CompileOptions(target="cortex-m4")
    program = schedule(load_with_options(str(EXAMPLE), options).graph, options, cortexm_scratch("cortex-m4", "speed"))
    steps = row["steps"]
    assert [s["index"] for s in steps] == list(range(len(program.steps)))
    assert [s["kind"] for s in steps] == [step.op.kind for step in program.steps]
    assert [s["live_bytes"] for s in steps] == live_bytes(program)
    assert row["macs"] == 465_440  # the model's nominal MACs
    assert sum(s["macs"] for s in steps) == row["macs_run"] == row["macs"] - row["macs_skipped"]
    # Cycles: estimated on cortex-m4, never fewer than the instructions, per step too.
    assert row["cycles"] >= row["instructions"] > 0
    assert row["macs_per_cycle"] == round(row["macs"] / row["cycles"], 4)
    assert all(s["cycles"] >= s["instructions"] for s in steps)
    # The steps plus the invoke function's own prologue and epilogue are the whole run.
    assert sum(s["cycles"] for s in steps) + row["cycles_by_op_kind"]["(invoke)"] == row["cycles"]
    assert sum(s["instructions"] for s in steps) + row["instructions_by_op_kind"]["(invoke)"] == row["instructions"]
    conv = next(s for s in steps if s["kind"] == "CONV_2D" and s["kernel"] == "1x1")
    assert conv["macs_per_cycle"] == round(conv["macs"] / conv["cycles"], 4)
    assert steps[0]["output_shapes"] == [list(program.steps[0].op.outputs[0].shape)]


def test_per_layer_table_prints_one_row_per_step(bench_rows, capsys, monkeypatch):
    monkeypatch.setattr("mcuc.bench.bench_models", lambda paths, options, progress=False: bench_rows)
    assert main(["bench", str(EXAMPLE), "--per-layer"]) == 0
    out = capsys.readouterr().out
    (row,) = bench_rows
    assert "est. cycles" in out and f"{row['cycles']:,}" in out
    for s in row["steps"]:
        line = next(line for line in out.splitlines() if line.split()[:2] == [str(s["index"]), s["kind"]])
        assert f"{s['macs']:,}" in line and f"{s['cycles']:,}" in line and f"{s['live_bytes']:,}" in line
    assert main(["bench", str(EXAMPLE)]) == 0
    assert "per step" not in capsys.readouterr().out  # the profile only on request


def test_cores_without_a_cycle_model_print_dashes(bench_rows):
    from mcuc.bench import format_bench

    rows = copy.deepcopy(bench_rows)
    rows[0].update(target="cortex-m7", cycles=None, macs_per_cycle=None)
    for s in rows[0]["steps"]:
        s.update(cycles=None, macs_per_cycle=None)
    table = format_bench(rows, per_layer=True)
    assert "inst %" in table and "cortex-m7" in table
