"""`mcuc bench`: compile, run on the emulated core, and measure what a firmware
engineer budgets: instructions, estimated cycles, SRAM and flash, next to tflite-micro's
arena; and per step (the per-layer profile): op, output shape, kernel, MACs,
instructions, cycles and the arena bytes live.

Cycles are the emulator's estimate from the Cortex-M4 TRM's instruction timings with zero
wait states (backends/cortexm/timing.py), on cortex-m4 and cortex-m33; None on other
cores. MACs per cycle divides the model's nominal MACs (`OpDef.macs`, as MLPerf Tiny
counts them) by those cycles."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from mcuc.ir.ops import op_def
from mcuc.model import load_with_options
from mcuc.passes.report import live_bytes
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
    result = run_cortexm(program, inputs, cortexm_target(options.target, options.optimize, options.float_abi))
    # The same expectation as `mcuc verify`'s (for ONNX: mcuc's reference, checked against
    # onnxruntime under the host rule).
    expected_of = Expected(model, program.graph, options)
    expected = expected_of(0, inputs)
    step_macs = [int(op_def(s.op.kind).macs(s.op)) for s in program.steps]
    # the model's nominal MACs, as MLPerf Tiny counts them: the ratios divide these, so
    # MACs prune_channels skips (channels nobody reads) count as done, as on the
    # commercial engines that skip zero weights
    macs_run = sum(step_macs)
    macs = macs_run + program.notes.get("macs_skipped", 0)
    io_bytes = sum(b.tensor.nbytes for b in program.caller_buffers)
    return {
        "model": model.name,
        "target": options.target,
        "optimize": options.optimize,
        "bit_exact": expected_of.ok and same_bytes(expected, result.outputs),
        "macs": macs,
        "macs_run": macs_run,
        "macs_skipped": macs - macs_run,
        "instructions": result.instructions,
        "macs_per_instruction": _ratio(macs, result.instructions),
        "cycles": result.cycles,
        "macs_per_cycle": _ratio(macs, result.cycles),
        "arena_bytes": program.arena_bytes,
        # --io-buffers caller: the inputs and outputs the caller holds outside the arena
        # (still SRAM: counted in the peak, so both modes compare alike)
        "io_buffer_bytes": io_bytes,
        "stack_bytes": result.stack_bytes,
        "peak_sram_bytes": program.arena_bytes + io_bytes + result.static_ram_bytes + result.stack_bytes,
        "flash_bytes": result.flash_bytes,
        "tflm_arena_bytes": tflm_arena_bytes(model.source) if model.format == "tflite" else None,
        "compile_seconds": round(compile_seconds, 3),
        "instructions_by_op_kind": result.instructions_by_op_kind,
        "cycles_by_op_kind": result.cycles_by_op_kind,
        "steps": step_rows(program, step_macs, result),
    }


def _ratio(macs: int, count: int | None) -> float | None:
    return round(macs / count, 4) if count else None


def step_rows(program, step_macs: list[int], result) -> list[dict]:
    """One row per schedule step: what the per-layer profile shows."""
    live = live_bytes(program)
    instructions = result.instructions_by_step or [None] * len(program.steps)
    cycles = result.cycles_by_step or [None] * len(program.steps)
    kernels = result.kernel_by_step or [None] * len(program.steps)
    return [{
        "index": i,
        "kind": step.op.kind,
        "name": step.op.name,
        "output_shapes": [list(t.shape) for t in step.op.outputs],
        "kernel": kernels[i],
        "macs": step_macs[i],
        "instructions": instructions[i],
        "cycles": cycles[i],
        "macs_per_cycle": _ratio(step_macs[i], cycles[i]),
        "live_bytes": live[i],
    } for i, step in enumerate(program.steps)]


def bench_models(paths: list[str], options: CompileOptions, progress: bool = False) -> list[dict]:
    """bench_model of each path; `progress`: a tqdm bar over the models on stderr (the CLI
    asks for it on a terminal only, never with --json)."""
    bar = progress_bar(len(paths), f"bench on {options.target}", "model") if progress else None
    rows = []
    for path in paths:
        if bar is not None:
            bar.set_postfix_str(Path(path).stem, refresh=True)
        rows.append(bench_model(path, options))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return rows


def progress_bar(total: int | None, description: str, unit: str):
    """A tqdm bar on stderr that leaves no line behind (None without tqdm)."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=description, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True)


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _per(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_bench(rows: list[dict], per_layer: bool = False) -> str:
    header = (f"{'model':<28} {'target':<10} {'exact':<5} {'MACs':>11} {'skipped':>10} {'instructions':>13} "
              f"{'MAC/inst':>8} {'est. cycles':>13} {'MAC/cyc':>7} {'arena B':>9} {'stack B':>8} "
              f"{'SRAM B':>9} {'flash B':>9} {'TFLM arena':>10} {'SRAM/TFLM':>9}")
    lines = [header, "-" * len(header)]
    for r in rows:
        ratio = f"{r['peak_sram_bytes'] / r['tflm_arena_bytes']:.2f}" if r["tflm_arena_bytes"] else "-"
        lines.append(
            f"{r['model']:<28} {r['target']:<10} {'yes' if r['bit_exact'] else 'NO':<5} {r['macs']:>11,} "
            f"{r['macs_skipped']:>10,} {r['instructions']:>13,} {_per(r['macs_per_instruction']):>8} {_count(r['cycles']):>13} "
            f"{_per(r['macs_per_cycle']):>7} {r['arena_bytes']:>9,} "
            f"{r['stack_bytes']:>8,} {r['peak_sram_bytes']:>9,} {r['flash_bytes']:>9,} "
            f"{r['tflm_arena_bytes'] or 0:>10,} {ratio:>9}")
    if per_layer:
        for r in rows:
            lines += ["", format_steps(r)]
    return "\n".join(lines)


def format_steps(row: dict) -> str:
    """The per-layer profile of one benchmarked model."""
    total = row["cycles"] if row["cycles"] is not None else row["instructions"]
    share = "cyc %" if row["cycles"] is not None else "inst %"
    header = (f"{'#':>4}  {'op':<24} {'output':<16} {'kernel':<16} {'MACs':>11} {'instructions':>13} "
              f"{'est. cycles':>13} {'MAC/cyc':>7} {share:>6} {'live B':>9}")
    lines = [f"{row['model']} on {row['target']}: per step", header, "-" * len(header)]
    for s in row["steps"]:
        output = ",".join("x".join(str(d) for d in shape) for shape in s["output_shapes"])
        spent = s["cycles"] if row["cycles"] is not None else s["instructions"]
        percent = f"{100 * spent / total:.1f}" if spent is not None and total else "-"
        lines.append(
            f"{s['index']:>4}  {s['kind'][:24]:<24} {output[:16]:<16} {(s['kernel'] or '-')[:16]:<16} "
            f"{s['macs']:>11,} {_count(s['instructions']):>13} {_count(s['cycles']):>13} "
            f"{_per(s['macs_per_cycle']):>7} {percent:>6} {s['live_bytes']:>9,}")
    return "\n".join(lines)
