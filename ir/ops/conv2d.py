"""CONV_2D: 2-D convolution, int8 activations, int8 OHWI weights (per-channel or
per-tensor, symmetric), optional int32 bias, fused activation as a clamp; or int16
activations with an int32 or int64 bias (16x8: int16_stage.py).

Weights [out_channels, kh, kw, in_channels / groups]; input and output NHWC.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..fixedpoint import requantize_per_channel
from ..op import Op
from ..numerics import TFLITE_Q31, Numerics, OrtFloat, OrtInteger
from ..ort_numerics import requantize_accumulator
from ..region import Region, window_input_range
from . import OpDef, Trait, ort_float, ort_u8s8, register
from .common import (Padding2D, channel_requant_params, groups, pad_spatial, require, require_window,
                      window_output_size, windows)
from .int16_stage import check_16x8, is_16x8, output_stage_16x8
from .kinds import CONV_2D


@dataclass(frozen=True)
class Conv2DAttrs:
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    padding: Padding2D = field(default_factory=Padding2D)
    act_min: int = -128
    act_max: int = 127
    # How sums become outputs (ir/numerics.py): TFLite's Q31 rule, onnxruntime's integer
    # kernel (maybe with saturating u8 x s8 pairs) or its float group.
    numerics: Numerics = TFLITE_Q31


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    x, w = op.inputs[0], op.inputs[1]
    a: Conv2DAttrs = op.attrs
    require(len(x.shape) == 4, op, f"input must be 4-D NHWC, got shape {x.shape}")
    require(w.is_constant and len(w.shape) == 4, op, "weights must be a constant 4-D OHWI tensor")
    require_window(op, (w.shape[1], w.shape[2]), a.stride, a.dilation, a.padding)
    p = a.padding
    require(w.shape[0] > 0, op, f"weights of shape {w.shape} have no output channels")
    require(w.shape[3] > 0 and x.shape[3] % w.shape[3] == 0, op,
            f"input channels {x.shape[3]} are not a multiple of the weights' {w.shape[3]}")
    require(w.shape[0] % groups(op) == 0, op,
            f"output channels {w.shape[0]} are not a multiple of the {groups(op)} groups")
    require(a.act_min <= a.act_max, op, f"activation range [{a.act_min}, {a.act_max}] is empty")
    bias = op.inputs[2] if len(op.inputs) > 2 else None
    require(bias is None or bias.shape == (w.shape[0],), op,
            f"bias shape {None if bias is None else bias.shape} does not match {w.shape[0]} output channels")
    oh = window_output_size(x.shape[1], w.shape[1], a.stride[0], a.dilation[0], p.top, p.bottom)
    ow = window_output_size(x.shape[2], w.shape[2], a.stride[1], a.dilation[1], p.left, p.right)
    require(oh > 0 and ow > 0, op, f"kernel {w.shape[1]}x{w.shape[2]} does not fit the padded input")
    if is_16x8(op):
        check_16x8(op, zero_points=False)
    return [(x.shape[0], oh, ow, w.shape[0])]


def macs(op: Op) -> int:
    w = op.inputs[1]
    return op.output.size * w.shape[1] * w.shape[2] * w.shape[3]


def input_regions(op: Op, out: Region) -> list[Region | None]:
    x, w = op.inputs[0], op.inputs[1]
    a: Conv2DAttrs = op.attrs
    rows = window_input_range(*out.axis(1), a.stride[0], a.padding.top, w.shape[1], a.dilation[0], x.shape[1])
    cols = window_input_range(*out.axis(2), a.stride[1], a.padding.left, w.shape[2], a.dilation[1], x.shape[2])
    region = Region((out.start[0], rows[0], cols[0], 0), (out.stop[0], rows[1], cols[1], x.shape[3]))
    return [region] + [None] * (len(op.inputs) - 1)


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    x_t, out_t = op.inputs[0], op.output
    a: Conv2DAttrs = op.attrs
    x, w = inputs[0], inputs[1]
    # Padding contributes nothing to the sum: pad (x - zero_point) with zeros.
    xs = pad_spatial(x.astype(np.int64) - x_t.quant.scalar_zero_point, a.padding)
    _, oh, ow, oc = out_t.shape
    g = groups(op)
    cin_g, cout_g = w.shape[3], oc // g
    acc = np.empty(out_t.shape, np.int64)
    for gi in range(g):
        cols = windows(xs[..., gi * cin_g:(gi + 1) * cin_g], w.shape[1], w.shape[2], oh, ow, a.stride, a.dilation)
        wg = w[gi * cout_g:(gi + 1) * cout_g].astype(np.int64).reshape(cout_g, -1)
        acc[..., gi * cout_g:(gi + 1) * cout_g] = cols.reshape(*cols.shape[:3], -1) @ wg.T
    return [output_stage(op, acc, inputs, "conv")]


def output_stage(op: Op, acc: np.ndarray, inputs: list[np.ndarray], family: str) -> np.ndarray:
    """Bias, requantization and clamp of a convolution's int64 sums (CONV_2D and
    DEPTHWISE_CONV_2D alike): TFLite's per-channel Q31 rule, or one of onnxruntime's
    (`family` names the conv's functions in ort_float / ort_u8s8)."""
    x_t, w_t, out_t = op.inputs[0], op.inputs[1], op.output
    a = op.attrs
    bias = inputs[2] if len(inputs) > 2 and inputs[2] is not None else None
    bias64 = 0 if bias is None else bias.astype(np.int64)
    if isinstance(a.numerics, OrtFloat):
        return getattr(ort_float, family)(op, inputs)
    if isinstance(a.numerics, OrtInteger):
        if a.numerics.u8s8_pairs:
            acc = getattr(ort_u8s8, f"{family}_accumulator")(op, inputs[0], inputs[1])
        return requantize_accumulator(op, acc + bias64).astype(out_t.dtype)
    if is_16x8(op):
        return output_stage_16x8(op, acc + bias64, 0)
    mult, shift = channel_requant_params(op, x_t, w_t, out_t)
    y = requantize_per_channel(acc + bias64, mult, shift, out_t.quant.scalar_zero_point, a.act_min, a.act_max)
    return y.astype(out_t.dtype)


OPDEF = register(OpDef(CONV_2D, Conv2DAttrs, infer_shapes, macs, input_regions, evaluate,
                        traits={Trait.WINDOW, Trait.PATCHABLE, Trait.ABSORBS_PAD}))
