"""FULLY_CONNECTED: y = x W^T + b. Weights [out, in] int8 (per-tensor or per-channel),
input any shape flattened to [-1, in], optional int32 bias; or int16 activations with an
int32 or int64 bias (16x8: int16_stage.py).

TFLite Micro's reference kernels: acc = sum (w - w_zp) * (x - x_zp) + bias, then the
Q31 requantization (per output unit when the weights are per-channel), the output
zero point and the clamp. The rows are the output's leading elements (its size over
the last dimension); `keep_num_dims` keeps the input's leading dimensions.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fixedpoint import requantize_per_channel
from ..op import Op
from ..numerics import TFLITE_Q31, Numerics, OrtFloat, OrtInteger
from ..ort_numerics import requantize_accumulator
from ..region import Region
from . import OpDef, register
from .common import channel_requant_params, require
from .int16_stage import check_16x8, is_16x8, output_stage_16x8
from .kinds import FULLY_CONNECTED


@dataclass(frozen=True)
class FullyConnectedAttrs:
    act_min: int = -128
    act_max: int = 127
    keep_num_dims: bool = False
    # How sums become outputs (ir/numerics.py): TFLite's Q31 rule, onnxruntime's integer
    # kernel (maybe with saturating u8 x s8 pairs) or its float group (a Gemm with
    # transB=1 runs MLAS's transposed-B kernel: OrtFloat.gemm_transposed_b).
    numerics: Numerics = TFLITE_Q31


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    x, w = op.inputs[0], op.inputs[1]
    a: FullyConnectedAttrs = op.attrs
    require(w.is_constant and len(w.shape) == 2, op,
            f"weights must be a constant 2-D [units, depth] tensor, got shape {w.shape}")
    units, depth = w.shape
    require(len(x.shape) >= 1 and depth > 0 and x.size % depth == 0, op,
            f"input shape {x.shape} does not flatten to rows of the weights' depth {depth}")
    require(a.act_min <= a.act_max, op, f"activation range [{a.act_min}, {a.act_max}] is empty")
    if w.quant is not None:
        require(not np.any(w.quant.zero_point), op,
                "weights must be symmetric (zero point 0); requantize the model with symmetric weights")
    bias = op.inputs[2] if len(op.inputs) > 2 else None
    require(bias is None or bias.shape == (units,), op,
            f"bias shape {None if bias is None else bias.shape} does not match {units} units")
    if is_16x8(op):
        check_16x8(op, zero_points=True)
    if a.keep_num_dims:
        require(x.shape[-1] == depth, op,
                f"keep_num_dims needs the input's last dimension {x.shape[-1]} to equal the weights' depth {depth}")
        return [(*x.shape[:-1], units)]
    return [(x.size // depth, units)]


def macs(op: Op) -> int:
    return op.output.size * op.inputs[1].shape[1]


def input_regions(op: Op, out: Region) -> list[Region | None]:
    """Each output row reads one whole input row. Those rows are a box of the input
    when input and output share their leading dimensions; otherwise (a flattened
    input) the whole input."""
    x = op.input
    rest = [None] * (len(op.inputs) - 1)
    if out.empty:
        return [Region(tuple(0 for _ in x.shape), tuple(0 for _ in x.shape))] + rest
    if x.shape[:-1] == op.output.shape[:-1]:
        # The output's leading dimensions are the input's ([rows, depth] input, or
        # keep_num_dims): output rows read the same input rows, all of their depth.
        return [Region(out.start[:-1] + (0,), out.stop[:-1] + (x.shape[-1],))] + rest
    return [Region.full(x.shape)] + rest


def requant_params(op: Op) -> tuple[np.ndarray, np.ndarray]:
    """(multiplier, shift) per output unit: double(in_scale) * double(w_scale) /
    double(out_scale), a per-tensor weight scale broadcast to every unit.

    The per-tensor path of the TFLite source we read (GetQuantizedConvolutionMultipler)
    multiplies the two scales in float32 before widening; the pinned tflite-micro does
    not: on scales where the two products round to different multipliers it gives the
    double-product bytes (tests/ir/test_ops_reduce.py pins this).
    """
    return channel_requant_params(op, op.inputs[0], op.inputs[1], op.output)


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    x_t, out_t = op.inputs[0], op.output
    a: FullyConnectedAttrs = op.attrs
    x, w = inputs[0], inputs[1]
    bias = inputs[2] if len(inputs) > 2 and inputs[2] is not None else None
    rows = (x.astype(np.int64) - x_t.quant.scalar_zero_point).reshape(-1, w.shape[1])
    acc = rows @ w.astype(np.int64).T
    if bias is not None:
        acc += bias.astype(np.int64)
    if isinstance(a.numerics, OrtFloat):
        from .ort_float import fully_connected

        return [fully_connected(op, inputs)]
    if isinstance(a.numerics, OrtInteger):
        if a.numerics.u8s8_pairs:
            from .ort_u8s8 import fully_connected_accumulator

            acc = fully_connected_accumulator(op, x, w) + (0 if bias is None else bias.astype(np.int64))
        return [requantize_accumulator(op, acc).astype(out_t.dtype).reshape(out_t.shape)]
    if is_16x8(op):
        return [output_stage_16x8(op, acc, out_t.quant.scalar_zero_point).reshape(out_t.shape)]
    mult, shift = requant_params(op)
    y = requantize_per_channel(acc, mult, shift, out_t.quant.scalar_zero_point, a.act_min, a.act_max)
    return [y.astype(out_t.dtype).reshape(out_t.shape)]


OPDEF = register(OpDef(FULLY_CONNECTED, FullyConnectedAttrs, infer_shapes, macs, input_regions, evaluate))
