"""LLVM host backend against the tflite-micro interpreter, same process, same inputs.

Prints, per model: JIT time (a cold compile: the in-process cache is cleared first) in
wall and CPU seconds, median time of one inference through the llvm backend and
through tflite-micro (wall and CPU time of this process), the speed-ups, and whether
the outputs are byte-identical on every timed input.

    .venv/bin/python benchmarks/bench_llvm.py                      # mcunet_vww1
    .venv/bin/python benchmarks/bench_llvm.py --all --repeats 20   # all shared models
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from mcuc.backends.llvm import compile_program, scratch_requests
from mcuc.backends.llvm.jit import clear_cache
from mcuc.frontend.tflite import load_tflite
from mcuc.oracle import TFLiteOracle
from mcuc.pipeline import CompileOptions, schedule

MODELS = Path(__file__).resolve().parents[1] / ".." / "shared" / "models"


def random_inputs(graph, rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    for t in graph.inputs:
        if t.dtype == "float32":
            out.append(rng.uniform(-1.0, 1.0, t.shape).astype(np.float32))
        else:
            info = np.iinfo(t.dtype)
            out.append(rng.integers(info.min, info.max + 1, t.shape).astype(t.dtype))
    return out


def median_seconds(fn, inputs: list[list[np.ndarray]]) -> tuple[float, float]:
    """Median wall time and median CPU time of this process per call. On a shared
    machine the CPU time is the steadier figure: other processes do not inflate it."""
    wall, cpu = [], []
    for x in inputs:
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        fn(x)
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start_wall)
    return statistics.median(wall), statistics.median(cpu)


def bench(path: Path, repeats: int, opt_level: int) -> dict:
    data = path.read_bytes()
    graph = load_tflite(data)
    program = schedule(graph, CompileOptions(), scratch_requests)
    clear_cache()
    cpu_start = time.process_time()
    compiled = compile_program(program, opt_level=opt_level)
    jit_cpu = time.process_time() - cpu_start
    oracle = TFLiteOracle(data)
    rng = np.random.default_rng(0)
    inputs = [random_inputs(graph, rng) for _ in range(repeats)]
    compiled(inputs[0])  # warm-up: first-touch of the arena and code pages
    oracle(inputs[0])
    exact = all(np.array_equal(np.asarray(a).reshape(-1).view(np.uint8), np.asarray(b).reshape(-1).view(np.uint8))
                for x in inputs for a, b in zip(compiled(x), oracle(x)))
    llvm_wall, llvm_cpu = median_seconds(compiled, inputs)
    tflm_wall, tflm_cpu = median_seconds(oracle, inputs)
    return {"model": path.stem, "jit_s": compiled.jit_seconds, "jit_cpu_s": jit_cpu,
            "llvm_ms": llvm_wall * 1e3, "tflm_ms": tflm_wall * 1e3, "speedup": tflm_wall / llvm_wall,
            "llvm_cpu_ms": llvm_cpu * 1e3, "tflm_cpu_ms": tflm_cpu * 1e3, "cpu_speedup": tflm_cpu / llvm_cpu,
            "bit_exact": exact}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="every model in ../shared/models")
    parser.add_argument("--repeats", type=int, default=30, help="timed inferences per backend")
    parser.add_argument("--opt-level", type=int, default=2)
    parser.add_argument("models", nargs="*", help="model paths (default: mcunet_vww1)")
    args = parser.parse_args(argv)
    if args.models:
        paths = [Path(p) for p in args.models]
    elif args.all:
        paths = sorted(MODELS.glob("*.tflite"))
    else:
        paths = [MODELS / "mcunet_vww1.tflite"]
    missing = [p for p in paths if not p.exists()]
    if missing:
        print(f"model not found: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    header = (f"{'model':<30} {'JIT s':>6} {'JIT cpu':>7} {'llvm ms':>8} {'tflm ms':>8} {'speed-up':>8} "
              f"{'llvm cpu':>8} {'tflm cpu':>8} {'cpu x':>6} {'bit-exact':>9}")
    print(header)
    print("-" * len(header))
    for p in paths:
        r = bench(p, args.repeats, args.opt_level)
        print(f"{r['model']:<30} {r['jit_s']:>6.2f} {r['jit_cpu_s']:>7.2f} {r['llvm_ms']:>8.3f} {r['tflm_ms']:>8.3f} "
              f"{r['speedup']:>7.1f}x {r['llvm_cpu_ms']:>8.3f} {r['tflm_cpu_ms']:>8.3f} {r['cpu_speedup']:>5.1f}x "
              f"{str(r['bit_exact']):>9}")
    print("times: median per inference (ms) over --repeats inputs; wall = perf_counter, cpu = this process's "
          "CPU time; JIT = IR generation + LLVM optimization + machine code, cold cache")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
