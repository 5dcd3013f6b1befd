"""The QDQ groups onnxruntime leaves in float (ops whose numerics are OrtFloat, mcuc.ir.numerics) as LLVM IR: the
same float32 operations in the same order as mcuc.ir.ops.ort_float (see its module
doc for which MLAS kernel each case follows). ADD's and MUL's float branches are
elementwise loops and live in elementwise.py.

Constants are computed with the reference's own numpy formulas (dequantized weights and
bias, the 256 dequantized input values), so only the run-time reduction is emitted
here: explicit llvm.fma where MLAS's FMA3 SGEMM kernel fuses, fmul + fadd where its
M == 1 AVX kernels do not, each sum in the kernel's association. A tap in the padding
contributes a float 0.0 product as the reference's zero-padded im2col does.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir

from mcuc.ir.numerics import ORT_REDUCE_MEAN, OrtFloat
from mcuc.ir.ops import kinds, ort_float
from mcuc.ir.ops.common import dtype_range
from mcuc.ir.ort_numerics import int_to_f32 as np_int_to_f32
from mcuc.ir.program import InPlace

from ..codegen import KernelCall
from ..emitter import F32, I64, Emitter
from ..floatops import f32, fma, quantize_linear
from ..scratch import scratch_plane
from . import register


def _dequantized_inputs(em: Emitter, t, hint: str) -> ir.Value:
    """A 256-entry float32 table: DequantizeLinear of every int8 value (index x + 128)."""
    q = np.arange(-128, 128, dtype=np.int64)
    table = np_int_to_f32(q - t.quant.scalar_zero_point) * np.float32(t.quant.scale[0])
    return em.const_ptr(table.astype(np.float32), hint)


def _load_dequantized(em: Emitter, table: ir.Value, x_ptr: ir.Value, index: ir.Value) -> ir.Value:
    raw = em.b.sext(em.load(x_ptr, index), I64)
    return em.load(table, em.b.add(raw, em.i64(128)))


def _quantize_store(call: KernelCall, value: ir.Value, y_ptr: ir.Value, index: ir.Value) -> None:
    """QuantizeLinear (ort_numerics.quantize_linear), the op's clamp, store."""
    em, op = call.em, call.op
    y_t = op.output
    lo, hi = dtype_range(y_t.dtype)
    y = quantize_linear(em, value, y_t.quant.scale[0], y_t.quant.scalar_zero_point, lo, hi)
    y = em.clamp(y, getattr(op.attrs, "act_min", lo), getattr(op.attrs, "act_max", hi))
    em.store(em.narrow(y, y_t.dtype), y_ptr, index)


def _bias_constant(em: Emitter, op, channels: int, hint: str) -> ir.Value | None:
    if len(op.inputs) < 3 or op.inputs[2] is None:
        return None
    values = ort_float._bias(op, [None, None, op.inputs[2].data], channels)
    return em.const_ptr(np.asarray(values, np.float32), hint)


class _Window:
    """One output pixel's taps of a conv-like op: tap(c, ky, kx) -> the dequantized input
    (0.0 in the padding) of input channel `c` at kernel position (ky, kx)."""

    def __init__(self, call: KernelCall, table: ir.Value):
        self.call, self.em, self.op = call, call.em, call.op
        self.table = table
        self.x_ptr = call.ptr(self.op.inputs[0])
        _, self.h, self.w, self.c = self.op.inputs[0].shape
        self.value = self.em.slot(F32, "tapv")

    def at(self, n: ir.Value, oy: ir.Value, ox: ir.Value, channel: ir.Value, ky: ir.Value, kx: ir.Value) -> ir.Value:
        em, a = self.em, self.op.attrs
        iy = em.b.add(em.add(em.mul(oy, a.stride[0]), -a.padding.top), em.mul(ky, a.dilation[0]))
        ix = em.b.add(em.add(em.mul(ox, a.stride[1]), -a.padding.left), em.mul(kx, a.dilation[1]))
        em.b.store(f32(0.0), self.value)
        inside = em.b.and_(em.in_range(iy, 0, self.h), em.in_range(ix, 0, self.w))
        with em.if_then(inside):
            index = em.index([(n, self.h * self.w * self.c), (iy, self.w * self.c), (ix, self.c), (channel, 1)])
            em.b.store(_load_dequantized(em, self.table, self.x_ptr, index), self.value)
        return em.b.load(self.value)


def _conv_like(call: KernelCall, weights: np.ndarray, cin_g: int, kh: int, kw: int, cout_g: int,
               blocks: np.ndarray) -> None:
    """A (grouped) conv in float: weights [OC, cin_g * kh * kw] float32 in MLAS's im2col
    order (channel, ky, kx); output channel oc reads input channels of group oc // cout_g.
    blocks: the FMA3 reduction block of every output pixel (ignored when cout_g == 1)."""
    em, op = call.em, call.op
    b = em.b
    n_img, oh, ow, oc = op.output.shape
    k_total = cin_g * kh * kw
    w_ptr = em.const_ptr(weights.astype(np.float32), call.hint("wf"))
    bias = _bias_constant(em, op, oc, call.hint("bf"))
    window = _Window(call, _dequantized_inputs(em, op.inputs[0], call.hint("deq")))
    if isinstance(call.step.placement, InPlace) and op.kind == kinds.DEPTHWISE_CONV_2D:
        # In place over its input (multiplier 1): later pixels still read the pixels this
        # one overwrites, so the taps come from a copy of the input (the plan's scratch
        # plane when it is large enough, else the stack).
        x_t = op.inputs[0]
        copy = scratch_plane(call, x_t.nbytes)
        em.memcpy(copy, window.x_ptr, x_t.nbytes)
        window.x_ptr = b.bitcast(copy, window.x_ptr.type)
    y_ptr = call.ptr(op.output)
    out = em.slot(F32, "out")
    acc = em.slot(F32, "acc")

    def product_terms(n, oy, ox, o, k: ir.Value) -> tuple[ir.Value, ir.Value]:
        """(weight, input) of reduction index k (an i64) of output channel o."""
        c = b.udiv(k, em.i64(kh * kw))
        ky = b.urem(b.udiv(k, em.i64(kw)), em.i64(kh))
        kx = b.urem(k, em.i64(kw))
        channel = b.add(b.mul(b.udiv(o, em.i64(cout_g)), em.i64(cin_g)), c)
        return em.load(w_ptr, b.add(b.mul(o, em.i64(k_total)), k)), window.at(n, oy, ox, channel, ky, kx)

    def m1_pixel(n, oy, ox, o) -> None:
        """MlasSgemmKernelM1Avx: ((p0 + p1) + p2) + p3 added to the output per block of four."""
        def product(k: int | ir.Value) -> ir.Value:
            wv, xv = product_terms(n, oy, ox, o, em.i64(k) if isinstance(k, int) else k)
            return b.fmul(wv, xv)

        b.store(f32(0.0), out)
        blocks4 = k_total // 4
        if blocks4:
            with em.loop(blocks4, "blk") as blk:
                base = b.mul(blk, em.i64(4))
                p = [product(b.add(base, em.i64(j))) for j in range(4)]
                s = b.fadd(b.fadd(b.fadd(p[0], p[1]), p[2]), p[3])
                b.store(b.fadd(s, b.load(out)), out)
        k = blocks4 * 4
        if k_total - k >= 2:
            b.store(b.fadd(b.fadd(product(k), product(k + 1)), b.load(out)), out)
            k += 2
        if k_total - k == 1:
            b.store(b.fadd(product(k), b.load(out)), out)

    def fma3_pixel(n, oy, ox, o, block: int) -> None:
        """MLAS's FMA3 kernel: per block a fused multiply-add chain from zero, then added
        to the output (the first block is the output)."""
        for first in range(0, k_total, block):
            b.store(f32(0.0), acc)
            with em.loop(min(block, k_total - first), "k") as kk:
                wv, xv = product_terms(n, oy, ox, o, b.add(kk, em.i64(first)))
                b.store(fma(em, wv, xv, b.load(acc)), acc)
            b.store(b.load(acc) if first == 0 else b.fadd(b.load(acc), b.load(out)), out)

    def finish(n, oy, ox, o) -> None:
        v = b.load(out)
        if bias is not None:
            v = b.fadd(v, em.load(bias, o))
        _quantize_store(call, v, y_ptr, em.index([(n, oh * ow * oc), (oy, ow * oc), (ox, oc), (o, 1)]))

    # Pixels sharing a reduction block run in one loop nest (contiguous runs of columns).
    pixel_blocks = blocks.reshape(-1) if cout_g > 1 else np.zeros(oh * ow, np.int64)
    runs, start = [], 0
    for p in range(1, oh * ow + 1):
        if p == oh * ow or pixel_blocks[p] != pixel_blocks[start]:
            runs.append((start, p - start, int(pixel_blocks[start])))
            start = p
    with em.loop(n_img, "n") as n:
        for first, count, block in runs:
            with em.loop(count, "pix") as pix:
                p = b.add(pix, em.i64(first))
                oy, ox = b.udiv(p, em.i64(ow)), b.urem(p, em.i64(ow))
                with em.loop(oc, "oc") as o:
                    if cout_g == 1:
                        m1_pixel(n, oy, ox, o)
                    else:
                        fma3_pixel(n, oy, ox, o, block)
                    finish(n, oy, ox, o)


def _dequantized_weights(t, values: np.ndarray) -> np.ndarray:
    return ort_float._dequantized(t, values)


@register(kinds.CONV_2D, numerics=OrtFloat)
def conv2d_float(call: KernelCall) -> None:
    from mcuc.ir.ops.conv2d import groups

    op = call.op
    w = op.inputs[1].data  # OHWI
    oc, kh, kw, cin_g = w.shape
    weights = _dequantized_weights(op.inputs[1], np.moveaxis(w, 0, -1))  # [KH, KW, I, O]
    flat = np.ascontiguousarray(np.transpose(weights, (3, 2, 0, 1)).reshape(oc, -1))  # [O, (c, ky, kx)]
    cout_g = oc // groups(op)
    blocks = ort_float.conv_k_blocks(op) if cout_g > 1 else np.zeros(1, np.int64)
    _conv_like(call, flat, cin_g, kh, kw, cout_g, blocks)


@register(kinds.DEPTHWISE_CONV_2D, numerics=OrtFloat)
def depthwise_float(call: KernelCall) -> None:
    op = call.op
    _, kh, kw, oc = op.inputs[1].shape
    weights = _dequantized_weights(op.inputs[1], op.inputs[1].data[0])  # [KH, KW, C*m]
    flat = np.ascontiguousarray(np.moveaxis(weights, 2, 0).reshape(oc, -1))  # [O, (ky, kx)]
    m = op.attrs.depth_multiplier or oc // op.inputs[0].shape[3]
    _, oh, ow, _ = op.output.shape
    block = ort_float.sgemm_k_block(oh * ow, kh * kw)
    _conv_like(call, flat, 1, kh, kw, m, np.full(oh * ow, block, np.int64))


@register(kinds.FULLY_CONNECTED, numerics=OrtFloat)
def fully_connected_float(call: KernelCall) -> None:
    """Gemm/MatMul in float: one row through MLAS's M == 1 kernels (transposed-B lanes
    for a transB=1 Gemm), more rows through the FMA3 kernel; the bias is the GEMM's C."""
    em, op = call.em, call.op
    b = em.b
    x_t, w_t, y_t = op.inputs[0], op.inputs[1], op.output
    units, depth = w_t.shape
    rows = x_t.size // depth
    weights = _dequantized_weights(w_t, w_t.data.T)  # [depth, units]
    w_ptr = em.const_ptr(np.ascontiguousarray(weights.T).astype(np.float32), call.hint("wf"))  # [units, depth]
    bias = _bias_constant(em, op, units, call.hint("bf"))
    table = _dequantized_inputs(em, x_t, call.hint("deq"))
    x_ptr, y_ptr = call.ptr(x_t), call.ptr(y_t)
    out = em.slot(F32, "out")

    def x_at(r, k) -> ir.Value:
        return _load_dequantized(em, table, x_ptr, b.add(b.mul(r, em.i64(depth)), k))

    def w_at(u, k) -> ir.Value:
        return em.load(w_ptr, b.add(b.mul(u, em.i64(depth)), k))

    def start(u) -> ir.Value:
        return f32(0.0) if bias is None else em.load(bias, u)

    def store(r, u) -> None:
        _quantize_store(call, b.load(out), y_ptr, b.add(b.mul(r, em.i64(units)), u))

    if rows == 1 and op.attrs.numerics.gemm_transposed_b:
        lanes = em.slot(F32, "lanes", count=8)
        r = em.i64(0)

        def lane_sums(u) -> list[ir.Value]:
            for j in range(8):
                em.store(f32(0.0), lanes, j)
            full = depth // 8
            if full:
                with em.loop(full, "k8") as k8:
                    base = b.mul(k8, em.i64(8))
                    for j in range(8):
                        k = b.add(base, em.i64(j))
                        em.store(b.fadd(em.load(lanes, j), b.fmul(x_at(r, k), w_at(u, k))), lanes, j)
            for j in range(depth - full * 8):
                k = em.i64(full * 8 + j)
                em.store(b.fadd(em.load(lanes, j), b.fmul(x_at(r, k), w_at(u, k))), lanes, j)
            return [em.load(lanes, j) for j in range(8)]

        def four(l):
            return b.fadd(b.fadd(b.fadd(b.fadd(l[0], l[1]), l[2]), l[3]),
                          b.fadd(b.fadd(b.fadd(l[4], l[5]), l[6]), l[7]))

        def two(l):
            return b.fadd(b.fadd(b.fadd(l[0], l[2]), b.fadd(l[4], l[6])),
                          b.fadd(b.fadd(l[1], l[3]), b.fadd(l[5], l[7])))

        def one(l):
            return b.fadd(b.fadd(b.fadd(l[0], l[1]), b.fadd(l[2], l[3])),
                          b.fadd(b.fadd(l[4], l[5]), b.fadd(l[6], l[7])))

        n4 = units // 4 * 4
        n2 = n4 + (units % 4) // 2 * 2
        for first, count, reduce in ((0, n4, four), (n4, n2 - n4, two), (n2, units - n2, one)):
            if count == 0:
                continue
            with em.loop(count, "u") as uu:
                u = b.add(uu, em.i64(first))
                b.store(b.fadd(reduce(lane_sums(u)), start(u)), out)
                store(r, u)
        return

    if rows == 1:
        r = em.i64(0)
        with em.loop(units, "u") as u:
            b.store(start(u), out)

            def product(k) -> ir.Value:
                k = em.i64(k) if isinstance(k, int) else k
                return b.fmul(x_at(r, k), w_at(u, k))

            blocks4 = depth // 4
            if blocks4:
                with em.loop(blocks4, "blk") as blk:
                    base = b.mul(blk, em.i64(4))
                    p = [product(b.add(base, em.i64(j))) for j in range(4)]
                    b.store(b.fadd(b.fadd(b.fadd(b.fadd(p[0], p[1]), p[2]), p[3]), b.load(out)), out)
            k = blocks4 * 4
            if depth - k >= 2:
                b.store(b.fadd(b.fadd(product(k), product(k + 1)), b.load(out)), out)
                k += 2
            if depth - k == 1:
                b.store(b.fadd(product(k), b.load(out)), out)
            store(r, u)
        return

    block = ort_float.sgemm_k_block(units, depth)
    acc = em.slot(F32, "acc")
    with em.loop(rows, "r") as r, em.loop(units, "u") as u:
        for first in range(0, depth, block):
            b.store(f32(0.0), acc)
            with em.loop(min(block, depth - first), "k") as kk:
                k = b.add(kk, em.i64(first))
                b.store(fma(em, x_at(r, k), w_at(u, k), b.load(acc)), acc)
            if first == 0 and bias is None:
                b.store(b.load(acc), out)
            else:
                b.store(b.fadd(b.load(acc), start(u) if first == 0 else b.load(out)), out)
        store(r, u)


@register(kinds.MEAN, numerics=OrtFloat)
def mean_float(call: KernelCall) -> None:
    """MEAN in float, in the order of the kernel its numerics name (OrtFloat.mean_kernel)."""
    if call.op.attrs.numerics.mean_kernel == ORT_REDUCE_MEAN:
        reduce_mean_float(call)
    else:
        global_average_pool_float(call)


def global_average_pool_float(call: KernelCall) -> None:
    """MEAN over H and W in float (mcuc.ir.ops.ort_float.global_average_pool): four
    float32 lanes over whole blocks of four pixels, (l0 + l2) + (l1 + l3), the remaining
    pixels one by one, divided by float32(H*W), QuantizeLinear."""
    em, op = call.em, call.op
    b = em.b
    x_t, y_t = op.input, op.output
    n_img, h, w, c = x_t.shape
    count = h * w
    table = _dequantized_inputs(em, x_t, call.hint("deq"))
    x_ptr, y_ptr = call.ptr(x_t), call.ptr(y_t)
    lanes = em.slot(F32, "lanes", count=4)
    total = em.slot(F32, "total")

    def value(n, ch, pixel) -> ir.Value:
        return _load_dequantized(em, table, x_ptr, em.index([(n, count * c), (pixel, c), (ch, 1)]))

    with em.loop(n_img, "n") as n, em.loop(c, "c") as ch:
        for j in range(4):
            em.store(f32(0.0), lanes, j)
        full = count // 4
        if full:
            with em.loop(full, "blk") as blk:
                base = b.mul(blk, em.i64(4))
                for j in range(4):
                    em.store(b.fadd(em.load(lanes, j), value(n, ch, b.add(base, em.i64(j)))), lanes, j)
        lane = [em.load(lanes, j) for j in range(4)]
        b.store(b.fadd(b.fadd(lane[0], lane[2]), b.fadd(lane[1], lane[3])), total)
        for i in range(full * 4, count):
            b.store(b.fadd(b.load(total), value(n, ch, em.i64(i))), total)
        _quantize_store(call, b.fdiv(b.load(total), f32(float(count))), y_ptr, em.index([(n, c), (ch, 1)]))


def reduce_mean_float(call: KernelCall) -> None:
    """MEAN over H and W as onnxruntime's float ReduceMean (mcuc.ir.ops.ort_float.
    reduce_mean): per NCHW row d (image d // C, channel d % C) Eigen's packet sum from the
    row's first aligned element, divided by float32(H*W), QuantizeLinear. The aligned start
    depends on d only through d mod 4 / gcd(H*W, 4), so rows are visited in that many
    loops, each with its own constant start."""
    from math import gcd

    em, op = call.em, call.op
    b = em.b
    x_t, y_t = op.input, op.output
    n_img, h, w, c = x_t.shape
    count, rows = h * w, n_img * c
    size = ort_float.EIGEN_PACKET
    table = _dequantized_inputs(em, x_t, call.hint("deq"))
    x_ptr, y_ptr = call.ptr(x_t), call.ptr(y_t)
    lanes = em.slot(F32, "packets", count=2 * size)  # two packet accumulators
    total = em.slot(F32, "total")
    period = size // gcd(count, size)
    for residue in range(min(period, rows)):
        first = ort_float.eigen_first_aligned(residue, count)
        packets = (count - first) // size
        with em.loop(-(-(rows - residue) // period), "row") as j:
            d = b.add(b.mul(j, em.i64(period)), em.i64(residue))
            image, channel = b.udiv(d, em.i64(c)), b.urem(d, em.i64(c))

            def value(pixel: int | ir.Value) -> ir.Value:
                pixel = em.i64(pixel) if isinstance(pixel, int) else pixel
                return _load_dequantized(em, table, x_ptr, em.index([(image, count * c), (pixel, c), (channel, 1)]))

            def add_packet(acc: int, start: int | ir.Value) -> None:
                for lane in range(size):
                    at = start + lane if isinstance(start, int) else b.add(start, em.i64(lane))
                    em.store(b.fadd(em.load(lanes, acc * size + lane), value(at)), lanes, acc * size + lane)

            if packets == 0:  # no whole aligned packet: in order from element 0
                b.store(value(0), total)
                for i in range(1, count):
                    b.store(b.fadd(b.load(total), value(i)), total)
            else:
                for lane in range(size):
                    em.store(value(first + lane), lanes, lane)
                if packets > 1:
                    for lane in range(size):
                        em.store(value(first + size + lane), lanes, size + lane)
                    if packets // 2 > 1:
                        with em.loop(packets // 2 - 1, "pair") as k:
                            start = b.add(b.mul(k, em.i64(2 * size)), em.i64(first + 2 * size))
                            add_packet(0, start)
                            add_packet(1, b.add(start, em.i64(size)))
                    for lane in range(size):
                        em.store(b.fadd(em.load(lanes, lane), em.load(lanes, size + lane)), lanes, lane)
                    if packets % 2:
                        add_packet(0, first + (packets - 1) * size)
                lane = [em.load(lanes, k) for k in range(size)]
                b.store(b.fadd(b.fadd(lane[0], lane[2]), b.fadd(lane[1], lane[3])), total)
                for i in [*range(first), *range(first + packets * size, count)]:
                    b.store(b.fadd(b.load(total), value(i)), total)
            _quantize_store(call, b.fdiv(b.load(total), f32(float(count))), y_ptr, d)
