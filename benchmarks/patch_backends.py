"""Every backend on forced patch schedules of the shared models, against tflite-micro.

Prints one row per (model, schedule, backend): whether the output bytes equal the
oracle's. The schedules are the ones tests/passes/test_patch_models.py forces (stages ending
early, mid and late, grids 2x2, 3x3, 4x4 and non-square); the test checks the reference
program interpreter on all of them in CI, this script adds the compiled backends, whose
builds are too slow to repeat in every CI run.

    .venv/bin/python benchmarks/patch_backends.py [--backends llvm,c-host,cortex-m4] [--io int8]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.paths import SHARED_MODELS_DIR  # noqa: E402
from tests.passes.test_patch_models import forced_schedules  # noqa: E402

from mcuc.model import load_model  # noqa: E402
from mcuc.passes.patch import plan_patched  # noqa: E402
from mcuc.pipeline import CompileOptions, prepare  # noqa: E402
from mcuc.samples import random_inputs  # noqa: E402
from mcuc.verify import EdgeOracle, same_bytes  # noqa: E402


def runner(backend: str, graph, spec):
    """Plan `graph` with one forced stage for `backend`'s kernels and return a runner."""
    if backend == "llvm":
        from mcuc.backends.llvm import compile_program, scratch_requests

        return compile_program(plan_patched(graph, [spec], scratch_requests))
    from mcuc.backends.cortexm import run_chost, run_cortexm
    from mcuc.backends.cortexm.kernels import scratch_requests
    from mcuc.backends.cortexm.target import get_target

    target = get_target("cortex-m0" if backend == "c-host" else backend)
    program = plan_patched(graph, [spec], lambda op, ip: scratch_requests(op, ip, target))
    if backend == "c-host":
        return lambda inputs: run_chost(program, inputs)
    return lambda inputs: run_cortexm(program, inputs, target).outputs


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backends", default="llvm,c-host,cortex-m4")
    parser.add_argument("--io", default="int8", choices=("int8", "float"))
    args = parser.parse_args()
    backends = args.backends.split(",")
    print(f"{'model':<26} {'stage':<12} {'grid':<6} " + " ".join(f"{b:>10}" for b in backends))
    failures = 0
    for path in sorted(SHARED_MODELS_DIR.glob("*.tflite")):
        model = load_model(path)
        graph = prepare(model.graph, CompileOptions(io=args.io if args.io == "int8" else None))
        inputs = random_inputs(graph, np.random.default_rng(7))
        expected = EdgeOracle(model, graph)(inputs)
        for spec in forced_schedules(graph):
            cells = []
            for backend in backends:
                ok = same_bytes(expected, runner(backend, graph, spec)(inputs))
                failures += not ok
                cells.append("exact" if ok else "MISMATCH")
            grid = f"{spec.grid[0]}x{spec.grid[1]}"
            print(f"{model.name:<26} {'@' + str(spec.end):<12} {grid:<6} " + " ".join(f"{c:>10}" for c in cells),
                  flush=True)
    print(f"{failures} mismatches")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
