"""DEPTHWISE_CONV_2D: per-channel 2-D convolution with a depth multiplier.

Weights [1, kh, kw, in_channels * depth_multiplier] (TFLite layout), per-channel or
per-tensor symmetric int8; optional int32 bias; input and output NHWC. int16 activations
(16x8) take an int64 bias and int16_stage.py's output stage.

Output channel `c * depth_multiplier + m` reads input channel `c` (TFLite Micro's
reference DepthwiseConvPerChannel): padding taps are skipped (the same as summing a
zero-point-corrected zero), then bias, the per-channel Q31 requantization, the output
zero point and the clamp.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..op import Op
from ..region import Region, window_input_range
from . import OpDef, Trait, register
from ..numerics import TFLITE_Q31, Numerics
from .common import Padding2D, pad_spatial, require, require_window, window_output_size, windows
from .kinds import DEPTHWISE_CONV_2D
from .conv2d import output_stage
from .int16_stage import check_16x8, is_16x8


@dataclass(frozen=True)
class DepthwiseConv2DAttrs:
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    padding: Padding2D = field(default_factory=Padding2D)
    depth_multiplier: int = 1
    act_min: int = -128
    act_max: int = 127
    # How sums become outputs (ir/numerics.py): TFLite's Q31 rule, onnxruntime's integer
    # kernel (maybe with saturating u8 x s8 pairs) or its float group.
    numerics: Numerics = TFLITE_Q31


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    x, w = op.inputs[0], op.inputs[1]
    a: DepthwiseConv2DAttrs = op.attrs
    require(len(x.shape) == 4, op, f"input must be 4-D NHWC, got shape {x.shape}")
    require(w.is_constant and len(w.shape) == 4 and w.shape[0] == 1, op,
            f"weights must be a constant [1, kh, kw, channels] tensor, got shape {w.shape}")
    require_window(op, (w.shape[1], w.shape[2]), a.stride, a.dilation, a.padding)
    require(a.depth_multiplier >= 1, op, f"depth_multiplier {a.depth_multiplier} must be positive")
    p = a.padding
    require(w.shape[3] == x.shape[3] * a.depth_multiplier, op,
            f"weights have {w.shape[3]} channels but input channels {x.shape[3]} x "
            f"depth_multiplier {a.depth_multiplier} = {x.shape[3] * a.depth_multiplier}")
    require(a.act_min <= a.act_max, op, f"activation range [{a.act_min}, {a.act_max}] is empty")
    bias = op.inputs[2] if len(op.inputs) > 2 else None
    require(bias is None or bias.shape == (w.shape[3],), op,
            f"bias shape {None if bias is None else bias.shape} does not match {w.shape[3]} output channels")
    oh = window_output_size(x.shape[1], w.shape[1], a.stride[0], a.dilation[0], p.top, p.bottom)
    ow = window_output_size(x.shape[2], w.shape[2], a.stride[1], a.dilation[1], p.left, p.right)
    require(oh > 0 and ow > 0, op, f"kernel {w.shape[1]}x{w.shape[2]} does not fit the padded input")
    if is_16x8(op):  # tflite-micro reads a 16x8 depthwise bias as int64 only
        check_16x8(op, zero_points=False, bias_types=("int64",))
    return [(x.shape[0], oh, ow, w.shape[3])]


def macs(op: Op) -> int:
    w = op.inputs[1]
    return op.output.size * w.shape[1] * w.shape[2]


def input_regions(op: Op, out: Region) -> list[Region | None]:
    x, w = op.inputs[0], op.inputs[1]
    a: DepthwiseConv2DAttrs = op.attrs
    rows = window_input_range(*out.axis(1), a.stride[0], a.padding.top, w.shape[1], a.dilation[0], x.shape[1])
    cols = window_input_range(*out.axis(2), a.stride[1], a.padding.left, w.shape[2], a.dilation[1], x.shape[2])
    # Output channels [c0, c1) read input channels c0 // m .. (c1 - 1) // m.
    c0, c1 = out.axis(3)
    m = a.depth_multiplier
    channels = (c0 // m, (c1 - 1) // m + 1) if c1 > c0 else (0, 0)
    region = Region((out.start[0], rows[0], cols[0], channels[0]), (out.stop[0], rows[1], cols[1], channels[1]))
    return [region] + [None] * (len(op.inputs) - 1)


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    x_t, out_t = op.inputs[0], op.output
    a: DepthwiseConv2DAttrs = op.attrs
    x, w = inputs[0], inputs[1]
    # Skipping padding taps equals padding (x - zero_point) with zeros.
    xs = pad_spatial(x.astype(np.int64) - x_t.quant.scalar_zero_point, a.padding)
    # Input channel c feeds output channels c*m .. c*m + m - 1: repeat it m times.
    xs = np.repeat(xs, a.depth_multiplier, axis=3)
    _, oh, ow, _ = out_t.shape
    cols = windows(xs, w.shape[1], w.shape[2], oh, ow, a.stride, a.dilation)  # [N,OH,OW,KH,KW,C]
    acc = np.einsum("nhwykc,ykc->nhwc", cols, w[0].astype(np.int64))
    return [output_stage(op, acc, inputs, "depthwise")]


OPDEF = register(OpDef(DEPTHWISE_CONV_2D, DepthwiseConv2DAttrs, infer_shapes, macs, input_regions, evaluate,
                        traits={Trait.WINDOW, Trait.PATCHABLE, Trait.ABSORBS_PAD}))
