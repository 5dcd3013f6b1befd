"""Ops that only move bytes: RESHAPE, SQUEEZE, PAD, TRANSPOSE, RESIZE_NEAREST_NEIGHBOR,
CONCATENATION. Index maps are computed at compile time from the op modules' own
definitions (e.g. resize's source_map)."""
from __future__ import annotations

import numpy as np
from llvmlite import ir

from mcuc.ir.ops import kinds
from mcuc.ir.ops.concatenation import positive_axis
from mcuc.ir.ops.pad import pad_value
from mcuc.ir.ops.resize_nearest import source_map

from ..codegen import KernelCall
from ..emitter import F32, element_type, strides_of
from . import register


@register(kinds.RESHAPE, kinds.SQUEEZE)
def same_bytes(call: KernelCall) -> None:
    """The output holds the input's bytes; the plan usually aliases the two (then
    nothing is emitted), otherwise the bytes are copied."""
    x_t, y_t = call.op.input, call.op.output
    if x_t.is_constant or not call.same_place(x_t, y_t):
        call.em.memcpy(call.ptr(y_t), call.value_ptr(x_t), y_t.nbytes)


def _fill(call: KernelCall, ptr, value, dtype: str, count: int) -> None:
    em = call.em
    ty = element_type(dtype)
    if ty.width == 8 and dtype != "float32":
        em.memset(ptr, int(value), count)
        return
    constant = ir.Constant(F32, float(value)) if dtype == "float32" else ir.Constant(ty, int(value))
    with em.loop(count, "fill") as i:
        em.store(constant, ptr, i)


def _copy_elements(call: KernelCall, dst, dst_index, src, src_index, count: int, itemsize: int) -> None:
    """Copy `count` contiguous elements of `itemsize` bytes src[src_index:] -> dst[dst_index:]."""
    em = call.em
    if count == 1:
        em.store(em.load(src, src_index), dst, dst_index)
        return
    em.memcpy(em.b.gep(dst, [dst_index], inbounds=True), em.b.gep(src, [src_index], inbounds=True),
              count * itemsize)


@register(kinds.PAD)
def pad(call: KernelCall) -> None:
    em, op = call.em, call.op
    x_t, y_t = op.input, op.output
    pads = [tuple(p) for p in op.attrs.pads]
    x_ptr, y_ptr = call.value_ptr(x_t), call.ptr(y_t)
    _fill(call, y_ptr, pad_value(op), y_t.dtype, y_t.size)
    if x_t.size == 0:
        return
    xs, ys = strides_of(x_t.shape), strides_of(y_t.shape)
    base = sum(before * s for (before, _), s in zip(pads, ys))
    # Copy the input row by row (the last axis is contiguous in both).
    with em.nest(x_t.shape[:-1], "p") as idx:
        src = em.index(list(zip(idx, xs[:-1])))
        dst = em.index(list(zip(idx, ys[:-1])), base)
        _copy_elements(call, y_ptr, dst, x_ptr, src, x_t.shape[-1], x_t.itemsize)


@register(kinds.TRANSPOSE)
def transpose(call: KernelCall) -> None:
    em, op = call.em, call.op
    x_t, y_t = op.input, op.output
    perm = op.attrs.perm
    xs = strides_of(x_t.shape)
    x_ptr, y_ptr = call.value_ptr(x_t), call.ptr(y_t)
    with em.nest(y_t.shape, "t") as idx:
        src = em.index([(i, xs[p]) for i, p in zip(idx, perm)])
        dst = em.index(list(zip(idx, strides_of(y_t.shape))))
        em.store(em.load(x_ptr, src), y_ptr, dst)


@register(kinds.RESIZE_NEAREST_NEIGHBOR)
def resize_nearest(call: KernelCall) -> None:
    em, op = call.em, call.op
    x_t, y_t = op.input, op.output
    n, h, w, c = x_t.shape
    _, oh, ow, _ = y_t.shape
    row_map, col_map = source_map(op)
    rows = em.const_ptr(row_map.astype(np.int64), call.hint("rows"))
    cols = em.const_ptr(col_map.astype(np.int64), call.hint("cols"))
    x_ptr, y_ptr = call.value_ptr(x_t), call.ptr(y_t)
    with em.loop(n, "n") as bi, em.loop(oh, "oy") as oy, em.loop(ow, "ox") as ox:
        src = em.b.add(em.index([(bi, h * w * c)]),
                       em.b.add(em.mul(em.load(rows, oy), w * c), em.mul(em.load(cols, ox), c)))
        dst = em.index([(bi, oh * ow * c), (oy, ow * c), (ox, c)])
        _copy_elements(call, y_ptr, dst, x_ptr, src, c, x_t.itemsize)


@register(kinds.CONCATENATION)
def concatenation(call: KernelCall) -> None:
    """Each input's slices copied into place (memmove: an input the plan already put in
    its slice is a self-copy)."""
    em, op = call.em, call.op
    y_t = op.output
    axis = positive_axis(op)
    outer = int(np.prod(y_t.shape[:axis], dtype=np.int64))
    y_inner = int(np.prod(y_t.shape[axis:], dtype=np.int64))
    y_ptr = call.ptr(y_t)
    offset = 0
    for x_t in op.inputs:
        inner = int(np.prod(x_t.shape[axis:], dtype=np.int64))
        x_ptr = call.value_ptr(x_t)
        if inner > 0:
            with em.loop(outer, "o") as o:
                _copy_elements(call, y_ptr, em.index([(o, y_inner)], offset), x_ptr, em.index([(o, inner)]), inner, x_t.itemsize)
        offset += inner
