"""RESIZE_BILINEAR (int8, mcuc.ir.ops.resize_bilinear): the op module's per-row and
per-column tables (source rows, columns and fractions) as constant globals; each output
is the four corners' weighted sum in i32, rounded half away from zero by 2^20 (sdiv
truncates, as C's division) and truncated to i8 (wrapping, as the reference's cast)."""
from __future__ import annotations

import numpy as np

from mcuc.ir.ops import kinds
from mcuc.ir.ops.resize_bilinear import tables

from ..codegen import KernelCall
from ..emitter import I64
from . import register


@register(kinds.RESIZE_BILINEAR)
def resize_bilinear(call: KernelCall) -> None:
    em, op = call.em, call.op
    b = em.b
    x_t, y_t = op.input, op.output
    n, ih, iw, c = x_t.shape
    _, oh, ow, _ = y_t.shape
    ty, tx = tables(op)
    rows = em.const_ptr(np.stack([ty[:, 0] * iw * c, ty[:, 1] * iw * c, ty[:, 2]], 1).astype(np.int32).ravel(),
                        call.hint("rows"))
    cols = em.const_ptr(np.stack([tx[:, 0] * c, tx[:, 1] * c, tx[:, 2]], 1).astype(np.int32).ravel(),
                        call.hint("cols"))
    x, y = call.value_ptr(x_t), call.ptr(y_t)

    def entry(table, i, k):
        return em.load(table, b.add(em.mul(i, 3), em.i64(k)))

    with em.nest((n, oh, ow), "o") as (bi, oy, ox):
        image = em.mul(bi, ih * iw * c)
        r0, r1, fy = (entry(rows, oy, k) for k in range(3))
        c0, c1, fx = (entry(cols, ox, k) for k in range(3))
        gy, gx = b.sub(em.i32(1024), fy), b.sub(em.i32(1024), fx)
        weights = [b.mul(gy, gx), b.mul(fy, gx), b.mul(gy, fx), b.mul(fy, fx)]
        corners = [(r0, c0), (r1, c0), (r0, c1), (r1, c1)]
        out_base = em.index([(bi, oh * ow * c), (oy, ow * c), (ox, c)])
        with em.loop(c, "k") as k:
            total = em.i32(0)
            for (r, col), w in zip(corners, weights):
                index = b.add(b.add(image, b.sext(b.add(r, col), I64)), k)
                total = b.add(total, b.mul(em.load_i32(x, index, "int8"), w))
            nudge = b.select(b.icmp_signed(">", total, em.i32(0)), em.i32(1 << 19), em.i32(-(1 << 19)))
            q = b.sdiv(b.add(total, nudge), em.i32(1 << 20))
            em.store(em.narrow(q, "int8"), y, b.add(out_base, k))
