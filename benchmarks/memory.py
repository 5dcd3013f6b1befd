"""Memory-planning benchmark: per shared model, the arena mcuc plans (activations plus
scratch), the live-set bound of the chosen order, the planning time, and tflite-micro's
arena for the same model. Prints a table; run:

    .venv/bin/python benchmarks/memory.py [--io int8|model] [--real-scratch]

--real-scratch asks the Cortex-M backend for its scratch requests (when it exists);
otherwise tests/support/memory_scratch.py mimics them.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.memory_scratch import mimic_cortexm_scratch  # noqa: E402

from mcuc.frontend.tflite import load_tflite  # noqa: E402
from mcuc.passes import fold_pad, plan, strip_edge_quantization  # noqa: E402

MODELS = Path(__file__).resolve().parents[1].parent / "shared" / "models"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--io", choices=["int8", "model"], default="int8")
    parser.add_argument("--real-scratch", action="store_true")
    parser.add_argument("models", nargs="*", type=Path)
    args = parser.parse_args()
    scratch = mimic_cortexm_scratch
    if args.real_scratch:
        from mcuc.pipeline import cortexm_scratch
        scratch = cortexm_scratch("cortex-m4")
    from mcuc.oracle import tflm_arena_bytes

    paths = args.models or sorted(MODELS.glob("*.tflite"))
    print(f"{'model':<30} {'arena B':>9} {'bound B':>9} {'gap':>6} {'plan s':>7} {'tflm B':>9} {'ratio':>6}")
    for path in paths:
        graph = fold_pad(load_tflite(str(path)))
        if args.io == "int8":
            graph = strip_edge_quantization(graph)
        start = time.perf_counter()
        program = plan(graph, scratch)
        seconds = time.perf_counter() - start
        tflm = tflm_arena_bytes(path.read_bytes())
        gap = program.arena_bytes / max(program.live_bound_bytes, 1) - 1
        print(f"{path.stem:<30} {program.arena_bytes:>9,} {program.live_bound_bytes:>9,} {gap:>6.1%} "
              f"{seconds:>7.2f} {tflm:>9,} {program.arena_bytes / tflm:>6.2f}")


if __name__ == "__main__":
    main()
