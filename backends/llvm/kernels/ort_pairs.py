"""onnxruntime's uint8 x int8 accumulation on x86 without VNNI (mcuc.ir.ops.ort_u8s8):
the reduction vector of each output (conv: (ky, kx, channel) of one group; depthwise
with this flag: the kh*kw taps of one channel; FC: the input row) is summed in pairs
(k, k+1) with int16 saturation, as vpmaddubsw does, then the exact zero-point
correction zp * sum(w) is subtracted and the bias added.

Each output's reduction vector is first gathered as uint8 values (x + 128; padding
taps hold the uint8 zero point; an odd length gets one trailing zero) into a stack
row, then every output channel's weights (stored as zero-padded rows at compile time)
are paired against it. When the plan runs the op in place, outputs go to a stack
copy of the output first, so no input is overwritten before it is read.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir

from mcuc.ir.program import InPlace

from ..codegen import KernelCall
from ..emitter import I32, Emitter
from .conv_common import bias_data, output_stage, window_coordinate, wrap_int32

INT16_MIN, INT16_MAX = -(2**15), 2**15 - 1


def _padded_rows(weights: np.ndarray) -> np.ndarray:
    """[outputs, K] int8 rows zero-padded to an even K."""
    rows = np.asarray(weights, np.int8)
    if rows.shape[1] % 2:
        rows = np.concatenate([rows, np.zeros((rows.shape[0], 1), np.int8)], axis=1)
    return np.ascontiguousarray(rows)


class _PairedOutputs:
    """Per-output constants (weight rows, bias minus zero-point correction) and the
    paired dot product against a gathered row."""

    def __init__(self, call: KernelCall, rows: np.ndarray, bias: np.ndarray | None, zero_point_u8: int):
        em = call.em
        self.em = em
        self.rows = _padded_rows(rows)
        self.length = self.rows.shape[1]
        correction = zero_point_u8 * np.asarray(rows, np.int64).sum(axis=1)
        b = np.zeros(rows.shape[0], np.int64) if bias is None else bias.astype(np.int64)
        self.weights = em.const_ptr(self.rows, call.hint("pairs.weights"))
        self.offsets = em.const_ptr(wrap_int32(b - correction), call.hint("pairs.bias"))
        self.acc = em.slot(I32, "pairs.acc")

    def dot(self, row: ir.Value, output: ir.Value) -> ir.Value:
        """bias - correction + sum over pairs of sat16(a[k] w[k] + a[k+1] w[k+1])."""
        em, b = self.em, self.em.b
        b.store(em.load(self.offsets, output), self.acc)
        base = em.mul(output, self.length)
        with em.loop(self.length // 2, "pair") as p:
            k = em.mul(p, 2)
            k1 = em.add(k, 1)
            w0 = b.sext(em.load(self.weights, b.add(base, k)), I32)
            w1 = b.sext(em.load(self.weights, b.add(base, k1)), I32)
            s = b.add(b.mul(em.load(row, k), w0), b.mul(em.load(row, k1), w1))
            b.store(b.add(b.load(self.acc), em.clamp(s, INT16_MIN, INT16_MAX)), self.acc)
        return b.load(self.acc)


def _output_pointer(call: KernelCall):
    """Where the kernel writes: the output itself, or a stack copy when in place."""
    y_t = call.op.output
    if isinstance(call.step.placement, InPlace):
        return call.em.slot(ir.IntType(8 * y_t.itemsize), "pairs.out", count=y_t.size)
    return call.ptr(y_t)


def _finish_output(call: KernelCall, out) -> None:
    if isinstance(call.step.placement, InPlace):
        call.em.memcpy(call.ptr(call.op.output), out, call.op.output.nbytes)


def _gather(em: Emitter, row: ir.Value, position: int | ir.Value, value: ir.Value) -> None:
    em.store(value, row, position if isinstance(position, ir.Value) else em.i64(position))


def conv2d_pairs(call: KernelCall) -> None:
    em, op = call.em, call.op
    b = em.b
    x_t, w_t, y_t = op.inputs[0], op.inputs[1], op.output
    a = op.attrs
    n, h, w, c = x_t.shape
    oc, kh, kw, cg = w_t.shape
    _, oh, ow, _ = y_t.shape
    groups = c // cg
    cout_g = oc // groups
    zp_u8 = x_t.quant.scalar_zero_point + 128
    bias = bias_data(call)
    pairs = _PairedOutputs(call, w_t.data.reshape(oc, -1), bias, zp_u8)
    requant = output_stage(call)
    x_ptr = call.ptr(x_t)
    out = _output_pointer(call)
    row = em.slot(I32, "pairs.row", count=pairs.length)
    if pairs.length > kh * kw * cg:
        em.store(em.i32(0), row, pairs.length - 1)
    with em.loop(n, "n") as bi, em.loop(oh, "oy") as oy, em.loop(ow, "ox") as ox, em.loop(groups, "g") as gi:
        with em.loop(kh, "ky") as ky, em.loop(kw, "kx") as kx:
            iy = window_coordinate(em, oy, a.stride[0], a.padding.top, ky, a.dilation[0])
            ix = window_coordinate(em, ox, a.stride[1], a.padding.left, kx, a.dilation[1])
            inside = b.and_(em.in_range(iy, 0, h), em.in_range(ix, 0, w))
            x_base = b.add(em.index([(bi, h * w * c), (iy, w * c), (ix, c)]), em.mul(gi, cg))
            tap = em.index([(ky, kw * cg), (kx, cg)])
            with em.loop(cg, "ci") as ci:
                with em.if_else(inside) as (then, otherwise):
                    with then:
                        v = em.add(em.load_i32(x_ptr, b.add(x_base, ci), x_t.dtype), 128)
                        _gather(em, row, b.add(tap, ci), v)
                    with otherwise:
                        _gather(em, row, b.add(tap, ci), em.i32(zp_u8))
        with em.loop(cout_g, "o") as oj:
            o = b.add(em.mul(gi, cout_g), oj)
            y = requant(pairs.dot(row, o), o)
            em.store(em.narrow(y, y_t.dtype), out, em.index([(bi, oh * ow * oc), (oy, ow * oc), (ox, oc), (o, 1)]))
    _finish_output(call, out)


def depthwise_pairs(call: KernelCall) -> None:
    em, op = call.em, call.op
    b = em.b
    x_t, w_t, y_t = op.inputs[0], op.inputs[1], op.output
    a = op.attrs
    n, h, w, c = x_t.shape
    _, kh, kw, oc = w_t.shape
    _, oh, ow, _ = y_t.shape
    m = oc // c
    zp_u8 = x_t.quant.scalar_zero_point + 128
    rows = w_t.data.reshape(kh * kw, oc).T  # [oc, taps]
    pairs = _PairedOutputs(call, rows, bias_data(call), zp_u8)
    requant = output_stage(call)
    x_ptr = call.ptr(x_t)
    out = _output_pointer(call)
    row = em.slot(I32, "pairs.row", count=pairs.length)
    if pairs.length > kh * kw:
        em.store(em.i32(0), row, pairs.length - 1)
    with em.loop(n, "n") as bi, em.loop(oh, "oy") as oy, em.loop(ow, "ox") as ox, em.loop(c, "c") as ch:
        with em.loop(kh, "ky") as ky, em.loop(kw, "kx") as kx:
            iy = window_coordinate(em, oy, a.stride[0], a.padding.top, ky, a.dilation[0])
            ix = window_coordinate(em, ox, a.stride[1], a.padding.left, kx, a.dilation[1])
            inside = b.and_(em.in_range(iy, 0, h), em.in_range(ix, 0, w))
            tap = em.index([(ky, kw), (kx, 1)])
            with em.if_else(inside) as (then, otherwise):
                with then:
                    xi = b.add(em.index([(bi, h * w * c), (iy, w * c), (ix, c)]), ch)
                    _gather(em, row, tap, em.add(em.load_i32(x_ptr, xi, x_t.dtype), 128))
                with otherwise:
                    _gather(em, row, tap, em.i32(zp_u8))
        with em.loop(m, "j") as j:
            o = b.add(em.mul(ch, m), j)
            y = requant(pairs.dot(row, o), o)
            em.store(em.narrow(y, y_t.dtype), out, em.index([(bi, oh * ow * oc), (oy, ow * oc), (ox, oc), (o, 1)]))
    _finish_output(call, out)


def fully_connected_pairs(call: KernelCall) -> None:
    em, op = call.em, call.op
    b = em.b
    x_t, w_t, y_t = op.inputs[0], op.inputs[1], op.output
    units, depth = w_t.shape
    rows_count = x_t.size // depth
    zp_u8 = x_t.quant.scalar_zero_point + 128
    pairs = _PairedOutputs(call, w_t.data, bias_data(call), zp_u8)
    requant = output_stage(call)
    x_ptr = call.ptr(x_t)
    out = _output_pointer(call)
    row = em.slot(I32, "pairs.row", count=pairs.length)
    if pairs.length > depth:
        em.store(em.i32(0), row, pairs.length - 1)
    with em.loop(rows_count, "r") as r:
        with em.loop(depth, "k") as k:
            v = em.add(em.load_i32(x_ptr, b.add(em.mul(r, depth), k), x_t.dtype), 128)
            _gather(em, row, k, v)
        with em.loop(units, "u") as u:
            y = requant(pairs.dot(row, u), u)
            em.store(em.narrow(y, y_t.dtype), out, em.index([(r, units), (u, 1)]))
    _finish_output(call, out)
