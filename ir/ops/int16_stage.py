"""TFLite's 16x8 output stage of CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED (int16
activations, int8 weights; tflite-micro's conv.cc, depthwise_conv.cc, fully_connected.cc
and reference_integer_ops).

tflite-micro sums in the bias's type: int64 for an int64 bias (or none), int32 for an
int32 bias (CONV_2D and FULLY_CONNECTED; wrapping, as its C++ loop does where it
overflows, which frontend/validate.check_accumulator refuses). It scales the sum with
MultiplyByQuantizedMultiplier of that type: the int64 one (the multiplier reduced to 15
bits, batch_matmul.multiply_int64) or TFLite's Q31 one, per output channel. CONV_2D and
DEPTHWISE_CONV_2D read no zero point (mcuc requires 0 rather than ignore one, as for
TRANSPOSE_CONV); FULLY_CONNECTED subtracts the input's and adds the output's like its int8
kernel. Then the fused activation's clamp. An int16 sum with the int8 rule (Q31 on the
int64 sum) differs by one in about one output in ten.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fixedpoint import requantize_per_channel, wrap_int32
from ..op import Op
from .batch_matmul import multiply_int64, reduced_multiplier
from .common import Padding2D, channel_requant_params, require
from .kinds import CONV_2D, FULLY_CONNECTED


def is_16x8(op: Op) -> bool:
    return op.inputs[0].dtype == "int16"


def check_16x8(op: Op, *, zero_points: bool, bias_types: tuple[str, ...] = ("int32", "int64")) -> None:
    """What tflite-micro's Prepare and Eval need of a 16x8 layer, and mcuc of its zero
    points (`zero_points`: whether the kernel reads them)."""
    x, w, y = op.inputs[0], op.inputs[1], op.output
    require(y.dtype == "int16" and w.dtype == "int8", op,
            f"int16 input with {w.dtype} weights and an {y.dtype} output: 16x8 layers take int8 weights and "
            "give int16")
    bias = op.inputs[2] if len(op.inputs) > 2 else None
    require(bias is None or bias.dtype in bias_types, op,
            f"a 16x8 layer's bias must be {' or '.join(bias_types)}, not {None if bias is None else bias.dtype}")
    if not zero_points:
        zps = (x.quant.scalar_zero_point, y.quant.scalar_zero_point)
        require(zps == (0, 0), op, f"int16 input and output zero points {zps}: tflite-micro's 16x8 kernel "
                "ignores them, so mcuc takes only 0 (requantize with symmetric int16 activations)")


def output_stage_16x8(op: Op, total: np.ndarray, output_zero_point: int) -> np.ndarray:
    """int16 outputs of the exact sums `total` (int64, channels last, input offsets and
    bias applied)."""
    x, w, y = op.inputs[0], op.inputs[1], op.output
    mult, shift = channel_requant_params(op, x, w, y)
    a = op.attrs
    total = np.asarray(total, np.int64)
    bias_t = op.inputs[2] if len(op.inputs) > 2 else None
    if bias_t is not None and bias_t.dtype == "int32":  # tflite-micro's int32 sums
        out = requantize_per_channel(wrap_int32(total), mult, shift, output_zero_point, a.act_min, a.act_max)
    else:
        out = np.clip(multiply_int64(total, mult, shift) + output_zero_point, a.act_min, a.act_max)
    return out.astype(np.int16)


@dataclass(frozen=True)
class GroupedConv:
    """A 16x8 layer as the grouped convolution the backends' kernels run: OHWI weights
    (a depthwise conv's [1, kh, kw, C*M] moved to [C*M, kh, kw, 1], a fully connected
    layer's [units, depth] as a 1x1 window over rows of `depth` channels), NHWC shapes,
    and per output channel the stage's constants: with `q31` (an int32 bias: int32 sums)
    TFLite's multiplier and shift, else the int64 stage's 15-bit multiplier and its total
    right shift (15 - shift)."""

    weights: np.ndarray
    x_shape: tuple[int, int, int, int]
    y_shape: tuple[int, int, int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    padding: Padding2D
    q31: bool
    multiplier: np.ndarray
    shift: np.ndarray

    @property
    def in_per_group(self) -> int:
        return int(self.weights.shape[3])


def grouped_conv(op: Op) -> GroupedConv:
    x, w, y = op.inputs[0], op.inputs[1], op.output
    if op.kind == FULLY_CONNECTED:
        units, depth = w.shape
        rows = x.size // depth
        weights, x_shape, y_shape = w.data.reshape(units, 1, 1, depth), (rows, 1, 1, depth), (rows, 1, 1, units)
        stride, dilation, padding = (1, 1), (1, 1), Padding2D()
    else:
        a = op.attrs
        weights = w.data if op.kind == CONV_2D else np.transpose(w.data, (3, 1, 2, 0))
        x_shape, y_shape, stride, dilation, padding = x.shape, y.shape, a.stride, a.dilation, a.padding
    channels = weights.shape[0]
    mult, shift = (np.broadcast_to(np.asarray(v, np.int64), (channels,)) for v in channel_requant_params(op, x, w, y))
    bias = op.inputs[2] if len(op.inputs) > 2 else None
    q31 = bias is not None and bias.dtype == "int32"
    if not q31:
        mult, shift = np.asarray(reduced_multiplier(mult), np.int64), 15 - shift
    return GroupedConv(np.ascontiguousarray(weights), tuple(x_shape), tuple(y_shape), tuple(stride), tuple(dilation),
                       padding, q31, mult, shift)
