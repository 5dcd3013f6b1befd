"""`mcuc bench`: compile, run on the emulated core, and measure what a firmware
engineer budgets: instructions, SRAM and flash, next to tflite-micro's arena."""
from __future__ import annotations

import time

import numpy as np

from mcuc.ir.ops import op_def
from mcuc.model import load_with_options
from mcuc.pipeline import CompileOptions, cortexm_scratch, cortexm_target, schedule
from mcuc.samples import random_inputs
from mcuc.verify import Expected, same_bytes


def bench_model(path: str, options: CompileOptions, seed: int = 0) -> dict:
    from mcuc.backends.cortexm import run_cortexm
    from mcuc.oracle import tflm_arena_bytes

    model = load_with_options(path, options)
    start = time.perf_counter()
    program = schedule(model.graph, options, cortexm_scratch(options.target, options.optimize))
    compile_seconds = time.perf_counter() - start
    inputs = random_inputs(program.graph, np.random.default_rng(seed))
    result = run_cortexm(program, inputs, cortexm_target(options.target, options.optimize))
    # The same expectation as `mcuc verify`'s (for ONNX: mcuc's reference, checked against
    # onnxruntime under the host rule).
    expected_of = Expected(model, program.graph, options)
    expected = expected_of(0, inputs)
    macs = sum(op_def(s.op.kind).macs(s.op) for s in program.steps)
    return {
        "model": model.name,
        "target": options.target,
        "optimize": options.optimize,
        "bit_exact": expected_of.ok and same_bytes(expected, result.outputs),
        "macs": macs,
        "instructions": result.instructions,
        "macs_per_instruction": round(macs / result.instructions, 4) if result.instructions else None,
        "arena_bytes": program.arena_bytes,
        "stack_bytes": result.stack_bytes,
        "peak_sram_bytes": program.arena_bytes + result.static_ram_bytes + result.stack_bytes,
        "flash_bytes": result.flash_bytes,
        "tflm_arena_bytes": tflm_arena_bytes(model.source) if model.format == "tflite" else None,
        "compile_seconds": round(compile_seconds, 3),
        "instructions_by_op_kind": getattr(result, "instructions_by_op_kind", None),
    }


def bench_models(paths: list[str], options: CompileOptions) -> list[dict]:
    return [bench_model(p, options) for p in paths]


def format_bench(rows: list[dict]) -> str:
    header = (f"{'model':<28} {'target':<10} {'exact':<5} {'MACs':>11} {'instructions':>13} "
              f"{'MAC/inst':>8} {'arena B':>9} {'stack B':>8} {'SRAM B':>9} {'flash B':>9} "
              f"{'TFLM arena':>10} {'SRAM/TFLM':>9}")
    lines = [header, "-" * len(header)]
    for r in rows:
        ratio = f"{r['peak_sram_bytes'] / r['tflm_arena_bytes']:.2f}" if r["tflm_arena_bytes"] else "-"
        lines.append(
            f"{r['model']:<28} {r['target']:<10} {'yes' if r['bit_exact'] else 'NO':<5} {r['macs']:>11,} "
            f"{r['instructions']:>13,} {r['macs_per_instruction'] or 0:>8.3f} {r['arena_bytes']:>9,} "
            f"{r['stack_bytes']:>8,} {r['peak_sram_bytes']:>9,} {r['flash_bytes']:>9,} "
            f"{r['tflm_arena_bytes'] or 0:>10,} {ratio:>9}")
    return "\n".join(lines)
