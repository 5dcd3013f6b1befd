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

import numpy as np

from ..fixedpoint import requantize_per_channel, wrap_int32
from ..op import Op
from .batch_matmul import multiply_int64
from .common import channel_requant_params, require


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
