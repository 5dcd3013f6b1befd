"""Cortex-M kernel benchmark: executed instructions of one inference per shared model on
an emulated core, next to ARM's CMSIS-NN kernels called directly (issue 3's reference
counts, arm-none-eabi-gcc 12.2 -O3, cortex-m4), with the per-op-kind breakdown (conv
split into pointwise GEMM / im2col / grouped, depthwise by kernel, stride and in-place).
Prints tables; run:

    .venv/bin/python benchmarks/cortexm_kernels.py [--target cortex-m4] [--layers] [MODEL ...]
"""
from __future__ import annotations

import argparse
import collections
from pathlib import Path

import numpy as np

from mcuc.backends.cortexm import get_target, run_cortexm
from mcuc.backends.cortexm.kernels import _conv_layout
from mcuc.frontend.tflite import load_tflite
from mcuc.ir.ops import op_def
from mcuc.ir.program import InPlace
from mcuc.pipeline import CompileOptions, cortexm_scratch, schedule
from mcuc.samples import random_inputs

MODELS = Path(__file__).resolve().parents[1].parent / "shared" / "models"

# Issue 3: CMSIS-NN kernels called directly, bit-exact with tflite-micro, cortex-m4.
CMSIS_NN_INSTRUCTIONS = {
    "vww_96_int8": 24_711_426,
    "kws_ref_model": 7_843_310,
    "pretrainedResnet_quant": 29_870_491,
    "ad01_int8": 579_482,
    "mcunet_vww1": 48_383_683,
}


def kernel_name(step) -> str:
    """The kernel a step runs, as the breakdown groups it."""
    op = step.op
    if op.kind == "CONV_2D":
        w = op.inputs[1]
        return f"CONV_2D {_conv_layout(op)} {w.shape[1]}x{w.shape[2]}"
    if op.kind == "DEPTHWISE_CONV_2D":
        w = op.inputs[1]
        place = " in-place" if isinstance(step.placement, InPlace) else ""
        return f"DEPTHWISE {w.shape[1]}x{w.shape[2]} s{op.attrs.stride[0]}{place}"
    return op.kind


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("models", nargs="*", default=list(CMSIS_NN_INSTRUCTIONS))
    parser.add_argument("--target", default="cortex-m4")
    parser.add_argument("--layers", action="store_true", help="also print every layer")
    args = parser.parse_args()
    target = get_target(args.target)
    summary = []
    for name in args.models:
        graph = load_tflite(MODELS / f"{name}.tflite")
        program = schedule(graph, CompileOptions(args.target, io="int8"), cortexm_scratch(args.target))
        result = run_cortexm(program, random_inputs(program.graph, np.random.default_rng(0)), target)
        macs_total = sum(op_def(s.op.kind).macs(s.op) for s in program.steps)
        kinds: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
        print(f"\n{name} on {args.target}: {result.instructions:,} instructions, {macs_total:,} MACs")
        for step, count in zip(program.steps, result.instructions_by_step):
            macs = op_def(step.op.kind).macs(step.op)
            kinds[kernel_name(step)][0] += count
            kinds[kernel_name(step)][1] += macs
            if args.layers and count:
                print(f"    {kernel_name(step):28s} {str(step.op.inputs[0].shape):18s} -> "
                      f"{str(step.op.output.shape):18s} {count:>12,}  MAC/instr {macs / count:.3f}")
        print(f"  {'kernel':28s} {'instructions':>12s} {'share':>6s} {'MAC/instr':>9s}")
        for kind, (count, macs) in sorted(kinds.items(), key=lambda kv: -kv[1][0]):
            if count:
                print(f"  {kind:28s} {count:>12,} {100 * count / result.instructions:5.1f}% "
                      f"{macs / count:9.3f}")
        summary.append((name, macs_total, result.instructions))
    print(f"\n{'model':24s} {'MACs':>12s} {'instructions':>13s} {'CMSIS-NN':>12s} {'ratio':>6s}")
    for name, macs, count in summary:
        ref = CMSIS_NN_INSTRUCTIONS.get(name)
        ratio = f"{count / ref:.3f}" if ref and args.target == "cortex-m4" else "-"
        print(f"{name:24s} {macs:>12,} {count:>13,} {ref or 0:>12,} {ratio:>6s}")


if __name__ == "__main__":
    main()
