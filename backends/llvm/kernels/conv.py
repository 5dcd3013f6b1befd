"""CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED.

Compile-time work (DESIGN.md, Backends): the input zero point is folded into the bias,
bias'[oc] = bias[oc] - zp * sum(w[oc]), so the inner loops multiply raw int8 values
into an int32 accumulator. A tap that falls into the padding would have contributed
(zp - zp) * w = 0 to the reference sum, so skipping it must give back its share of the
fold: tap_sum[oc, ky, kx] = zp * sum_ic w[oc, ky, kx, ic] is added instead. All sums
wrap to int32 as the C kernels' accumulators do; in-range models never wrap.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from llvmlite import ir

from mcuc.ir.errors import MCUCError
from mcuc.ir.numerics import OrtInteger, TFLiteQ31, u8s8_pairs
from mcuc.ir.ops import kinds
from mcuc.ir.ops.int16_stage import is_16x8
from mcuc.ir.program import InPlace

from ..codegen import KernelCall
from ..emitter import I32, Emitter
from ..scratch import padded_plane_shape, scratch_plane
from . import register
from .conv16x8 import conv16x8
from .conv_common import bias_data, output_stage, window_coordinate, wrap_int32
from .ort_pairs import conv2d_pairs, depthwise_pairs, fully_connected_pairs


def folded_bias(bias: np.ndarray | None, weights: np.ndarray, zero_point: int, channels: int) -> np.ndarray:
    """bias - zp * sum of each output channel's weights (weights reshaped [channels, -1])."""
    b = np.zeros(channels, np.int64) if bias is None else bias.astype(np.int64)
    return wrap_int32(b - zero_point * weights.reshape(channels, -1).astype(np.int64).sum(axis=1))


# TFLite's rule and onnxruntime's integer kernels share the exact int32 sums; the output
# stage (conv_common.output_stage) follows the op's rule. OrtInteger with u8s8_pairs sums
# uint8 x int8 products in saturating int16 pairs, as onnxruntime does on x86 without
# VNNI (kernels/ort_pairs.py). OrtFloat groups are kernels/ort_float.py's.
_INTEGER_RULES = (TFLiteQ31, OrtInteger)


def _mac(em: Emitter, acc_slot: ir.Value, x: ir.Value, w: ir.Value) -> None:
    """acc += x * w with int8 operands widened to int32."""
    prod = em.b.mul(em.b.sext(x, I32), em.b.sext(w, I32), flags=["nsw"])
    em.b.store(em.b.add(em.b.load(acc_slot), prod), acc_slot)


def _guarded_tap(em: Emitter, padded: bool, iy: ir.Value, h: int, ix: ir.Value, w: int,
                 tap: Callable[[], None], skipped: Callable[[], None] | None) -> None:
    """Emit `tap()` where the input coordinate is inside the image and `skipped()` (the
    zero-point share of a padding tap) where it is not. Without padding every tap is
    inside, so no check is emitted."""
    if not padded:
        tap()
        return
    inside = em.b.and_(em.in_range(iy, 0, h), em.in_range(ix, 0, w))
    if skipped is None:
        with em.if_then(inside):
            tap()
        return
    with em.if_else(inside) as (then, otherwise):
        with then:
            tap()
        with otherwise:
            skipped()


@register(kinds.CONV_2D, numerics=_INTEGER_RULES)
def conv2d(call: KernelCall) -> None:
    if is_16x8(call.op):  # int16 activations: sums in the bias's type (conv16x8.py)
        conv16x8(call)
        return
    x_t, w_t = call.op.inputs[0], call.op.inputs[1]
    if u8s8_pairs(call.op.attrs):
        conv2d_pairs(call)
    elif x_t.shape[3] == w_t.shape[3]:
        _conv_channels_innermost(call)
    else:
        _conv_grouped(call)


def _conv_channels_innermost(call: KernelCall) -> None:
    """Ungrouped convolution as a sum of outer products: for each output pixel, every
    (tap, input channel) adds x * w[tap, ic, :] to an int32 accumulator row over the
    output channels. The innermost loop runs over output channels with the weights
    stored [kh, kw, ic, oc] at compile time, so it vectorizes whatever the input depth
    (first layers have 1-3 input channels)."""
    em, op = call.em, call.op
    b = em.b
    x_t, w_t, y_t = op.inputs[0], op.inputs[1], op.output
    a = op.attrs
    n, h, w, c = x_t.shape
    oc, kh, kw, _ = w_t.shape
    _, oh, ow, _ = y_t.shape
    zp = x_t.quant.scalar_zero_point
    weights = w_t.data
    padded = any((a.padding.top, a.padding.bottom, a.padding.left, a.padding.right))
    bias = em.const_ptr(folded_bias(bias_data(call), weights, zp, oc), call.hint("bias"))
    wptr = em.const_ptr(np.ascontiguousarray(weights.transpose(1, 2, 3, 0)).astype(np.int8), call.hint("weights"))
    tap_sums = None
    if padded and zp != 0:
        sums = zp * weights.astype(np.int64).sum(axis=3)  # [oc, kh, kw]
        tap_sums = em.const_ptr(wrap_int32(np.ascontiguousarray(sums.transpose(1, 2, 0))), call.hint("tapsum"))
    requant = output_stage(call)
    xptr, yptr = call.ptr(x_t), call.ptr(y_t)
    acc = em.slot(I32, "acc", count=oc)
    sh, sw = a.stride
    dh, dw = a.dilation

    with em.loop(n, "n") as bi, em.loop(oh, "oy") as oy, em.loop(ow, "ox") as ox:
        em.memcpy(acc, bias, 4 * oc)
        with em.loop(kh, "ky") as ky:
            iy = window_coordinate(em, oy, sh, a.padding.top, ky, dh)
            with em.loop(kw, "kx") as kx:
                ix = window_coordinate(em, ox, sw, a.padding.left, kx, dw)
                x_base = em.index([(bi, h * w * c), (iy, w * c), (ix, c)])
                tap = em.index([(ky, kw), (kx, 1)])

                def taps() -> None:
                    w_tap = em.mul(tap, c * oc)
                    with em.loop(c, "ic") as ic:
                        xv = b.sext(em.load(xptr, b.add(x_base, ic)), I32)
                        w_row = b.add(w_tap, em.mul(ic, oc))
                        with em.loop(oc, "oc") as o:
                            prod = b.mul(xv, b.sext(em.load(wptr, b.add(w_row, o)), I32), flags=["nsw"])
                            em.store(b.add(em.load(acc, o), prod), acc, o)

                def skipped() -> None:
                    row = em.mul(tap, oc)
                    with em.loop(oc, "oc") as o:
                        em.store(b.add(em.load(acc, o), em.load(tap_sums, b.add(row, o))), acc, o)

                _guarded_tap(em, padded, iy, h, ix, w, taps, skipped if tap_sums is not None else None)
        y_base = em.index([(bi, oh * ow * oc), (oy, ow * oc), (ox, oc)])
        with em.loop(oc, "oc.out") as o:
            y = requant(em.load(acc, o), o)
            em.store(em.narrow(y, y_t.dtype), yptr, b.add(y_base, o))


def _conv_grouped(call: KernelCall) -> None:
    """Grouped convolution, one output channel at a time (a dot product per channel)."""
    em, op = call.em, call.op
    x_t, w_t, y_t = op.inputs[0], op.inputs[1], op.output
    a = op.attrs
    n, h, w, c = x_t.shape
    oc, kh, kw, cg = w_t.shape
    _, oh, ow, _ = y_t.shape
    groups = c // cg
    cout_g = oc // groups
    zp = x_t.quant.scalar_zero_point
    weights = w_t.data
    padded = any((a.padding.top, a.padding.bottom, a.padding.left, a.padding.right))

    bias = em.const_ptr(folded_bias(bias_data(call), weights, zp, oc), call.hint("bias"))
    wptr = em.const_ptr(weights.astype(np.int8), call.hint("weights"))
    tap_sums = None
    if padded and zp != 0:
        sums = zp * weights.astype(np.int64).sum(axis=3)  # [oc, kh, kw]
        tap_sums = em.const_ptr(wrap_int32(sums), call.hint("tapsum"))
    requant = output_stage(call)
    xptr, yptr = call.ptr(x_t), call.ptr(y_t)
    acc = em.slot(I32, "acc")
    sh, sw = a.stride
    dh, dw = a.dilation

    with em.loop(n, "n") as bi, em.loop(oh, "oy") as oy, em.loop(ow, "ox") as ox, em.loop(oc, "oc") as o:
        em.b.store(em.load(bias, o), acc)
        group_base = em.mul(em.b.udiv(o, em.i64(cout_g)), cg) if groups > 1 else em.i64(0)
        with em.loop(kh, "ky") as ky:
            iy = window_coordinate(em, oy, sh, a.padding.top, ky, dh)
            with em.loop(kw, "kx") as kx:
                ix = window_coordinate(em, ox, sw, a.padding.left, kx, dw)
                x_base = em.b.add(em.index([(bi, h * w * c), (iy, w * c), (ix, c)]), group_base)
                w_base = em.index([(o, kh * kw * cg), (ky, kw * cg), (kx, cg)])

                def taps() -> None:
                    with em.loop(cg, "ic") as ic:
                        _mac(em, acc, em.load(xptr, em.b.add(x_base, ic)), em.load(wptr, em.b.add(w_base, ic)))

                def skipped() -> None:
                    extra = em.load(tap_sums, em.index([(o, kh * kw), (ky, kw), (kx, 1)]))
                    em.b.store(em.b.add(em.b.load(acc), extra), acc)

                _guarded_tap(em, padded, iy, h, ix, w, taps, skipped if tap_sums is not None else None)
        y = requant(em.b.load(acc), o)
        em.store(em.narrow(y, y_t.dtype), yptr, em.index([(bi, oh * ow * oc), (oy, ow * oc), (ox, oc), (o, 1)]))


@register(kinds.DEPTHWISE_CONV_2D, numerics=_INTEGER_RULES)
def depthwise_conv2d(call: KernelCall) -> None:
    if is_16x8(call.op):  # int16 activations: sums in the bias's type (conv16x8.py)
        conv16x8(call)
        return
    op = call.op
    if u8s8_pairs(op.attrs):
        depthwise_pairs(call)
    elif isinstance(call.step.placement, InPlace):
        # InPlace.shift: the output may start a whole number of pixels away from the
        # input (the plan checked that the channel-by-channel order stays safe).
        shift = call.step.placement.shift
        if call.offset(op.output) - call.offset(op.inputs[0]) != shift or shift % op.inputs[0].shape[-1]:
            raise MCUCError(f"step {call.index} {op.label}: marked in place with shift {shift} but its input "
                            f"and output sit at arena offsets {call.offset(op.inputs[0])} and "
                            f"{call.offset(op.output)}")
        _depthwise_in_place(call)
    else:
        _depthwise_pixelwise(call)


class _Depthwise:
    """What both depthwise kernels share: folded constants and the requant stage."""

    def __init__(self, call: KernelCall):
        em, op = call.em, call.op
        self.x_t, self.w_t, self.y_t = op.inputs[0], op.inputs[1], op.output
        self.a = op.attrs
        self.n, self.h, self.w, self.c = self.x_t.shape
        _, self.kh, self.kw, self.oc = self.w_t.shape
        _, self.oh, self.ow, _ = self.y_t.shape
        self.m = self.a.depth_multiplier if self.a.depth_multiplier else self.oc // self.c
        zp = self.x_t.quant.scalar_zero_point
        weights = self.w_t.data.reshape(self.kh, self.kw, self.oc)
        p = self.a.padding
        self.padded = any((p.top, p.bottom, p.left, p.right))
        per_channel_weights = np.moveaxis(weights, 2, 0)  # [oc, kh, kw]
        self.bias = em.const_ptr(folded_bias(bias_data(call), per_channel_weights, zp, self.oc), call.hint("bias"))
        self.weights = em.const_ptr(weights.astype(np.int8), call.hint("weights"))  # [kh, kw, oc]
        self.tap_sums = None
        if self.padded and zp != 0:
            self.tap_sums = em.const_ptr(wrap_int32(zp * weights.astype(np.int64)), call.hint("tapsum"))
        self.requant = output_stage(call)


def _depthwise_pixelwise(call: KernelCall) -> None:
    """Output pixel by pixel; the innermost loops run over channels (vectorized), with
    an int32 accumulator row on the stack."""
    em = call.em
    d = _Depthwise(call)
    a, c, oc, m = d.a, d.c, d.oc, d.m
    xptr, yptr = call.ptr(d.x_t), call.ptr(d.y_t)
    acc = em.slot(I32, "acc", count=oc)

    with em.loop(d.n, "n") as bi, em.loop(d.oh, "oy") as oy, em.loop(d.ow, "ox") as ox:
        with em.loop(oc, "c0") as ch:
            em.store(em.load(d.bias, ch), acc, ch)
        with em.loop(d.kh, "ky") as ky:
            iy = window_coordinate(em, oy, a.stride[0], a.padding.top, ky, a.dilation[0])
            with em.loop(d.kw, "kx") as kx:
                ix = window_coordinate(em, ox, a.stride[1], a.padding.left, kx, a.dilation[1])
                x_base = em.index([(bi, d.h * d.w * c), (iy, d.w * c), (ix, c)])
                w_base = em.index([(ky, d.kw * oc), (kx, oc)])

                def taps() -> None:
                    with em.loop(oc, "ch") as ch:
                        xi = em.b.add(x_base, em.b.udiv(ch, em.i64(m)) if m > 1 else ch)
                        prod = em.b.mul(em.b.sext(em.load(xptr, xi), I32),
                                        em.b.sext(em.load(d.weights, em.b.add(w_base, ch)), I32), flags=["nsw"])
                        em.store(em.b.add(em.load(acc, ch), prod), acc, ch)

                def skipped() -> None:
                    with em.loop(oc, "ch") as ch:
                        extra = em.load(d.tap_sums, em.b.add(w_base, ch))
                        em.store(em.b.add(em.load(acc, ch), extra), acc, ch)

                _guarded_tap(em, d.padded, iy, d.h, ix, d.w, taps, skipped if d.tap_sums is not None else None)
        y_base = em.index([(bi, d.oh * d.ow * oc), (oy, d.ow * oc), (ox, oc)])
        with em.loop(oc, "c1") as ch:
            y = d.requant(em.load(acc, ch), ch)
            em.store(em.narrow(y, d.y_t.dtype), yptr, em.b.add(y_base, ch))


def _depthwise_in_place(call: KernelCall) -> None:
    """Output written over the input, channel by channel: each input channel plane is
    first copied into one scratch plane, then its output channel is computed from the
    copy. Output channel c only overwrites bytes of input channel c, which is already
    saved, so every later channel still reads intact input. The output may start
    InPlace.shift bytes (whole pixels) away from the input: output channel c then
    still lands only on input channel c or outside the input. Input and output are
    separate pointers into the arena, loaded and stored in exactly this order.

    The plane is stored with its padding border filled with the input zero point, so
    the taps need no bounds checks: a border tap adds zp * w, which the folded bias
    already subtracted, exactly the reference's zero contribution. The taps are
    unrolled (kernel sizes are constants) so the output-column loop vectorizes."""
    em = call.em
    b = em.b
    d = _Depthwise(call)
    a, c = d.a, d.c
    if d.m != 1:
        raise MCUCError(f"step {call.index} {call.op.label}: in-place depthwise needs depth_multiplier 1, "
                        f"got {d.m}; plan this op out of place")
    p = a.padding
    plane_h, plane_w = padded_plane_shape(call.op)
    plane = scratch_plane(call, plane_h * plane_w)
    zp = d.x_t.quant.scalar_zero_point
    xptr, yptr = call.ptr(d.x_t), call.ptr(d.y_t)
    acc_slot = em.slot(I32, "acc")
    sh, sw = a.stride
    dh, dw = a.dilation

    with em.loop(d.n, "n") as bi, em.loop(c, "c") as ch:
        if d.padded:
            em.memset(plane, zp, plane_h * plane_w)
        with em.loop(d.h, "py") as py, em.loop(d.w, "px") as px:
            v = em.load(xptr, b.add(em.index([(bi, d.h * d.w * c), (py, d.w * c), (px, c)]), ch))
            em.store(v, plane, em.index([(py, plane_w), (px, 1)], p.top * plane_w + p.left))
        bias = em.load(d.bias, ch)
        # Small kernels are fully unrolled; larger ones loop over kernel rows at run
        # time with each row's taps unrolled (less code for the JIT, same speed).
        unrolled_rows = d.kh if d.kh * d.kw <= 9 else 1
        row_weights = None
        if unrolled_rows == d.kh:
            row_weights = [[b.sext(em.load(d.weights, b.add(em.i64((ky * d.kw + kx) * c), ch)), I32)
                            for kx in range(d.kw)] for ky in range(d.kh)]
        with em.loop(d.oh, "oy") as oy, em.loop(d.ow, "ox") as ox:
            if row_weights is not None:
                acc = bias
                for ky in range(d.kh):
                    for kx in range(d.kw):
                        v = em.load(plane, em.index([(oy, sh * plane_w), (ox, sw)], ky * dh * plane_w + kx * dw))
                        acc = b.add(acc, b.mul(b.sext(v, I32), row_weights[ky][kx], flags=["nsw"]))
            else:
                b.store(bias, acc_slot)
                with em.loop(d.kh, "ky") as ky:
                    row = em.index([(oy, sh * plane_w), (ox, sw), (ky, dh * plane_w)])
                    total = b.load(acc_slot)
                    for kx in range(d.kw):
                        weight = b.sext(em.load(d.weights, b.add(em.index([(ky, d.kw * c)], kx * c), ch)), I32)
                        v = em.load(plane, em.add(row, kx * dw))
                        total = b.add(total, b.mul(b.sext(v, I32), weight, flags=["nsw"]))
                    b.store(total, acc_slot)
                acc = b.load(acc_slot)
            y = d.requant(acc, ch)
            yi = b.add(em.index([(bi, d.oh * d.ow * c), (oy, d.ow * c), (ox, c)]), ch)
            em.store(em.narrow(y, d.y_t.dtype), yptr, yi)


@register(kinds.FULLY_CONNECTED, numerics=_INTEGER_RULES)
def fully_connected(call: KernelCall) -> None:
    if is_16x8(call.op):  # int16 activations: sums in the bias's type (conv16x8.py)
        conv16x8(call)
        return
    if u8s8_pairs(call.op.attrs):
        fully_connected_pairs(call)
        return
    em, op = call.em, call.op
    x_t, w_t, y_t = op.inputs[0], op.inputs[1], op.output
    units, depth = w_t.shape
    rows = x_t.size // depth
    zp = x_t.quant.scalar_zero_point
    bias = em.const_ptr(folded_bias(bias_data(call), w_t.data, zp, units), call.hint("bias"))
    wptr = em.const_ptr(w_t.data.astype(np.int8), call.hint("weights"))
    requant = output_stage(call)
    xptr, yptr = call.ptr(x_t), call.ptr(y_t)
    acc = em.slot(I32, "acc")
    with em.loop(rows, "row") as r, em.loop(units, "unit") as u:
        em.b.store(em.load(bias, u), acc)
        x_base, w_base = em.mul(r, depth), em.mul(u, depth)
        with em.loop(depth, "k") as k:
            _mac(em, acc, em.load(xptr, em.b.add(x_base, k)), em.load(wptr, em.b.add(w_base, k)))
        y = requant(em.b.load(acc), u)
        em.store(em.narrow(y, y_t.dtype), yptr, em.index([(r, units), (u, 1)]))

