"""What the CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED emitters share: TFLite's
integer kernels (conv.py) and onnxruntime's uint8 x int8 pair kernels (ort_pairs.py)
fold the same constants, walk the same windows and end in the same output stage.
conv.py dispatches to ort_pairs.py, so these live below both. No emitter is
registered here.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir

from mcuc.ir.ops import kinds
from mcuc.ir.ops.common import channel_requant_params, dtype_range
from mcuc.ir.ops.fully_connected import requant_params as fc_requant_params
from mcuc.ir.numerics import ONNXRUNTIME, rule_of
from mcuc.ir.ort_numerics import channel_scales

from ..codegen import KernelCall
from ..emitter import Emitter
from ..fixedpoint import ChannelRequant
from ..floatops import FloatChannelRequant


def wrap_int32(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, np.int64)
    return (((v + 2**31) & 0xFFFFFFFF) - 2**31).astype(np.int32)


def bias_data(call: KernelCall) -> np.ndarray | None:
    op = call.op
    bias = op.inputs[2] if len(op.inputs) > 2 else None
    return None if bias is None else bias.data


def output_stage(call: KernelCall) -> ChannelRequant | FloatChannelRequant:
    """The op's requantization of its int32 accumulators: TFLite's Q31 multiplier and
    shift per channel, or onnxruntime's float32 scale per channel (the op's rounding
    rule); then the output zero point and the fused activation clamp."""
    em, op = call.em, call.op
    x_t, w_t, y_t = op.inputs[0], op.inputs[1], op.output
    a = op.attrs
    if rule_of(a) == ONNXRUNTIME:
        scales = channel_scales(x_t.quant.scale[0], w_t.quant.scale, y_t.quant.scale[0], y_t.shape[-1])
        lo, hi = dtype_range(y_t.dtype)
        return FloatChannelRequant(em, scales, y_t.quant.scalar_zero_point, lo, hi, a.act_min, a.act_max,
                                   call.hint())
    if op.kind == kinds.FULLY_CONNECTED:
        mult, shift = fc_requant_params(op)
    else:
        mult, shift = channel_requant_params(op, x_t, w_t, y_t)
    return ChannelRequant(em, mult, shift, y_t.quant.scalar_zero_point, a.act_min, a.act_max, call.hint())


def window_coordinate(em: Emitter, out_index: ir.Value, stride: int, pad: int, tap: ir.Value, dilation: int) -> ir.Value:
    """out * stride - pad + tap * dilation (an i64 input coordinate, possibly outside)."""
    v = em.mul(out_index, stride)
    v = em.add(v, -pad)
    return em.b.add(v, em.mul(tap, dilation))
