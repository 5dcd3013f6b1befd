"""AVERAGE_POOL_2D, MAX_POOL_2D and MEAN.

The pools keep one accumulator row per output pixel (channels innermost, vectorized);
windows are clipped to the image, so padding never counts (TFLM's reference pools).
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir

from mcuc.ir.ops import kinds
from mcuc.ir.ops.common import dtype_range
from mcuc.ir.ops.mean import mean_requant_params, resolved_axes
from mcuc.ir.numerics import OrtFloat, OrtInteger, TFLiteQ31, in_float, uint8_offset

from ..codegen import KernelCall
from ..emitter import F32, I32, strides_of
from ..fixedpoint import multiply_by_quantized_multiplier, split_shift
from ..floatops import f32, fmax, fmin, int_to_f32, requantize_output, round_half_even
from . import register


def _pool(call: KernelCall, average: bool) -> None:
    em, op = call.em, call.op
    x_t, y_t = op.input, op.output
    a = op.attrs
    n, h, w, c = x_t.shape
    _, oh, ow, _ = y_t.shape
    fh, fw = a.filter
    sh, sw = a.stride
    b = em.b
    x_ptr, y_ptr = call.ptr(x_t), call.ptr(y_t)
    lowest, _ = dtype_range(x_t.dtype)
    acc = em.slot(I32, "acc", count=c)
    count = em.slot(I32, "count")
    with em.loop(n, "n") as bi, em.loop(oh, "oy") as oy, em.loop(ow, "ox") as ox:
        with em.loop(c, "c0") as ch:
            em.store(em.i32(0 if average else lowest), acc, ch)
        b.store(em.i32(0), count)
        with em.loop(fh, "fy") as fy:
            iy = b.add(em.add(em.mul(oy, sh), -a.padding.top), fy)
            with em.loop(fw, "fx") as fx:
                ix = b.add(em.add(em.mul(ox, sw), -a.padding.left), fx)
                inside = b.and_(em.in_range(iy, 0, h), em.in_range(ix, 0, w))
                with em.if_then(inside):
                    b.store(b.add(b.load(count), em.i32(1)), count)
                    base = em.index([(bi, h * w * c), (iy, w * c), (ix, c)])
                    with em.loop(c, "c") as ch:
                        v = em.load_i32(x_ptr, b.add(base, ch), x_t.dtype)
                        old = em.load(acc, ch)
                        em.store(b.add(old, v) if average else em.smax(old, v), acc, ch)
        y_base = em.index([(bi, oh * ow * c), (oy, ow * c), (ox, c)])
        cnt = b.load(count)
        half = b.sdiv(cnt, em.i32(2))
        with em.loop(c, "c1") as ch:
            total = em.load(acc, ch)
            if average:
                # (total +- count/2) / count, C division: rounds half away from zero.
                positive = b.icmp_signed(">", total, em.i32(0))
                numerator = b.select(positive, b.add(total, half), b.sub(total, half))
                total = b.sdiv(numerator, cnt)
            y = em.clamp(total, a.act_min, a.act_max)
            em.store(em.narrow(y, y_t.dtype), y_ptr, b.add(y_base, ch))


@register(kinds.AVERAGE_POOL_2D, numerics=TFLiteQ31)
def average_pool(call: KernelCall) -> None:
    _pool(call, average=True)


@register(kinds.AVERAGE_POOL_2D, numerics=(OrtInteger, OrtFloat))
def average_pool_onnxruntime(call: KernelCall) -> None:
    """onnxruntime's QLinearAveragePool (mcuc.ir.ops.pool2d): every input dequantized
    in float32, the window's valid elements summed in float32 in row-major tap order
    (padding adds +0.0, which changes no sum that starts at +0.0), divided by the count
    (the whole window with count_include_pad), then rne(mean / y_scale + zp)."""
    em, op = call.em, call.op
    b = em.b
    x_t, y_t = op.input, op.output
    a = op.attrs
    n, h, w, c = x_t.shape
    _, oh, ow, _ = y_t.shape
    fh, fw = a.filter
    sh, sw = a.stride
    x_scale = f32(x_t.quant.scale[0])
    x_zp = x_t.quant.scalar_zero_point
    y_scale = f32(y_t.quant.scale[0])
    zero = f32(np.float32(y_t.quant.scalar_zero_point + uint8_offset(a)))
    lo, hi = dtype_range(y_t.dtype)
    x_ptr, y_ptr = call.ptr(x_t), call.ptr(y_t)
    acc = em.slot(F32, "acc", count=c)
    count = em.slot(I32, "count")
    with em.loop(n, "n") as bi, em.loop(oh, "oy") as oy, em.loop(ow, "ox") as ox:
        with em.loop(c, "c0") as ch:
            em.store(f32(0.0), acc, ch)
        b.store(em.i32(0), count)
        with em.loop(fh, "fy") as fy:
            iy = b.add(em.add(em.mul(oy, sh), -a.padding.top), fy)
            with em.loop(fw, "fx") as fx:
                ix = b.add(em.add(em.mul(ox, sw), -a.padding.left), fx)
                with em.if_then(b.and_(em.in_range(iy, 0, h), em.in_range(ix, 0, w))):
                    b.store(b.add(b.load(count), em.i32(1)), count)
                    base = em.index([(bi, h * w * c), (iy, w * c), (ix, c)])
                    with em.loop(c, "c") as ch:
                        v = em.load_i32(x_ptr, b.add(base, ch), x_t.dtype)
                        real = b.fmul(x_scale, int_to_f32(em, em.add(v, -x_zp)))
                        em.store(b.fadd(em.load(acc, ch), real), acc, ch)
        divisor = f32(fh * fw) if a.count_include_pad else int_to_f32(em, b.load(count))
        y_base = em.index([(bi, oh * ow * c), (oy, ow * c), (ox, c)])
        with em.loop(c, "c1") as ch:
            mean = b.fdiv(em.load(acc, ch), divisor)
            if in_float(a) is not None:  # float AveragePool, then QuantizeLinear
                from .ort_float import _quantize_store
                _quantize_store(call, mean, y_ptr, b.add(y_base, ch))
            else:
                q = b.fadd(b.fdiv(mean, y_scale), zero)
                bounded = fmin(em, fmax(em, q, f32(-2.0**30)), f32(2.0**30))
                y = em.clamp(em.add(round_half_even(em, bounded), -uint8_offset(a)), lo, hi)
                y = em.clamp(y, a.act_min, a.act_max)
                em.store(em.narrow(y, y_t.dtype), y_ptr, b.add(y_base, ch))


@register(kinds.MAX_POOL_2D)
def max_pool(call: KernelCall) -> None:
    _pool(call, average=False)


@register(kinds.MEAN, numerics=(TFLiteQ31, OrtInteger))
def mean(call: KernelCall) -> None:
    """Sum over the reduced axes in int32, minus zp * count, then one requantization
    whose multiplier has 1/count folded in (mcuc.ir.ops.mean), or onnxruntime's float32
    scale (QLinearGlobalAveragePool). OrtFloat MEANs are kernels/ort_float.py's."""
    em, op = call.em, call.op
    x_t, y_t = op.input, op.output
    b = em.b
    axes = resolved_axes(op)
    shape = x_t.shape
    strides = strides_of(shape)
    kept = [i for i in range(len(shape)) if i not in axes]
    count = int(np.prod([shape[i] for i in axes], dtype=np.int64))
    y_ptr = call.ptr(y_t)
    lo, hi = dtype_range(y_t.dtype)
    if count == 0:
        em.memset(y_ptr, 0, y_t.nbytes)
        return
    onnx = isinstance(op.attrs.numerics, OrtInteger)
    if onnx:
        # float32(x_scale) / (float32(y_scale) * float32(count)), as the reference.
        scale = np.float32(x_t.quant.scale[0]) / (np.float32(y_t.quant.scale[0]) * np.float32(count))
    else:
        multiplier, shift = mean_requant_params(op, count)
        (left,), (right,) = split_shift([shift])
    x_ptr = call.ptr(x_t)
    acc = em.slot(I32, "acc")
    kept_shape = [shape[i] for i in kept]
    kept_out_strides = strides_of(kept_shape)
    correction = -x_t.quant.scalar_zero_point * count
    with em.nest(kept_shape, "k") as outer:
        b.store(em.i32(_wrap(correction)), acc)
        with em.nest([shape[i] for i in axes], "r") as inner:
            terms = list(zip(outer, [strides[i] for i in kept])) + list(zip(inner, [strides[i] for i in axes]))
            b.store(b.add(b.load(acc), em.load_i32(x_ptr, em.index(terms), x_t.dtype)), acc)
        if onnx:
            y = requantize_output(em, b.load(acc), f32(scale), y_t.quant.scalar_zero_point, lo, hi)
        else:
            y = multiply_by_quantized_multiplier(em, b.load(acc), ir.Constant(I32, multiplier), int(left), int(right))
            y = em.clamp(em.add(y, y_t.quant.scalar_zero_point), lo, hi)
        em.store(em.narrow(y, y_t.dtype), y_ptr, em.index(list(zip(outer, kept_out_strides))))


def _wrap(v: int) -> int:
    return ((v + 2**31) & 0xFFFFFFFF) - 2**31
