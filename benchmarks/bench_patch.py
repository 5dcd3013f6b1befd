"""Patch-based inference figures (issue 6): per model, the layer-by-layer arena and the
arena `--patch auto` reaches (Cortex-M kernel scratch included, --io int8), the MAC
overhead, the chosen schedule, the search's wall time, and whether the patched program
(run on one arena by the program interpreter) equals tflite-micro byte for byte.

    .venv/bin/python benchmarks/bench_patch.py            # the three issue-6 models
    .venv/bin/python benchmarks/bench_patch.py --all      # every shared .tflite model
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from mcuc.ir.program_interpreter import run_program
from mcuc.model import load_model
from mcuc.pipeline import CompileOptions, cortexm_scratch, schedule
from mcuc.samples import random_inputs
from mcuc.verify import EdgeOracle

MODELS = Path(__file__).resolve().parents[1] / ".." / "shared" / "models"
ISSUE_MODELS = ("mcunet_vww1", "mcunet_person_det", "vww_96_int8")


def bench(path: Path, target: str) -> dict:
    model = load_model(path)
    scratch = cortexm_scratch(target)
    base = schedule(model.graph, CompileOptions(target=target, io="int8"), scratch)
    start = time.perf_counter()
    program = schedule(model.graph, CompileOptions(target=target, io="int8", patch="auto"), scratch)
    seconds = time.perf_counter() - start
    inputs = random_inputs(program.graph, np.random.default_rng(0))
    expected = EdgeOracle(model, program.graph)(inputs)
    exact = all(np.array_equal(e, g) for e, g in zip(expected, run_program(program, inputs)))
    stages = program.notes.get("schedule", [])
    return {"model": model.name, "layer_by_layer": base.arena_bytes, "auto": program.arena_bytes,
            "ratio": program.arena_bytes / base.arena_bytes, "overhead": program.notes["mac_overhead"],
            "schedule": ", ".join(f"{s['grid'][0]}x{s['grid'][1]} ({len(s['ops'])} ops)" for s in stages) or "-",
            "seconds": seconds, "bit_exact": exact}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--all", action="store_true", help="every shared .tflite model")
    parser.add_argument("--target", default="cortex-m4")
    args = parser.parse_args(argv)
    paths = sorted(MODELS.glob("*.tflite")) if args.all else [MODELS / f"{m}.tflite" for m in ISSUE_MODELS]
    header = (f"{'model':<26} {'layer-by-layer B':>16} {'--patch auto B':>14} {'ratio':>6} "
              f"{'extra MACs':>10}  {'schedule':<18} {'search s':>8}  exact")
    print(header)
    print("-" * len(header))
    ok = True
    for path in paths:
        r = bench(path, args.target)
        ok &= r["bit_exact"]
        print(f"{r['model']:<26} {r['layer_by_layer']:>16,} {r['auto']:>14,} {r['ratio']:>6.2f} "
              f"{r['overhead']:>10.1%}  {r['schedule']:<18} {r['seconds']:>8.1f}  {'yes' if r['bit_exact'] else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
