"""REDUCE_MAX and REDUCE_MIN (int8, mcuc.ir.ops.reduce_max), SUM (int8, mcuc.ir.ops.sum) and ARG_MAX /
ARG_MIN (int8 -> int32, mcuc.ir.ops.arg_min_max): one loop nest over the kept axes, an inner nest over the
reduced ones, the running value (and index) in stack slots that LLVM promotes to
registers."""
from __future__ import annotations

from mcuc.ir.ops import kinds
from mcuc.ir.ops.arg_min_max import axis_of
from mcuc.ir.ops.common import dtype_range
from mcuc.ir.ops.reduce_max import reduction_geometry, resolved_axes
from mcuc.ir.ops.sum import sum_params

from ..codegen import KernelCall
from ..emitter import I32
from ..fixedpoint import multiply_by_quantized_multiplier, split_shift
from . import register


def _wrap32(v: int) -> int:
    return (v + 2**31) % 2**32 - 2**31


@register(kinds.REDUCE_MAX, kinds.REDUCE_MIN, kinds.SUM)
def reduce_max_or_sum(call: KernelCall) -> None:
    em, op = call.em, call.op
    is_sum = op.kind == kinds.SUM
    x_t, y_t = op.input, op.output
    kept, kept_strides, red, red_strides = reduction_geometry(x_t.shape, resolved_axes(op, op.attrs.axes))
    x_ptr, y_ptr = call.value_ptr(x_t), call.ptr(y_t)
    acc = em.slot(I32, "acc")
    out_strides = [1] * len(kept)
    for i in range(len(kept) - 2, -1, -1):
        out_strides[i] = out_strides[i + 1] * kept[i + 1]
    with em.nest(kept, "k") as k:
        base = em.index(list(zip(k, kept_strides)))
        em.b.store(em.i32({kinds.SUM: 0, kinds.REDUCE_MAX: -128, kinds.REDUCE_MIN: 127}[op.kind]), acc)
        with em.nest(red, "r") as r:
            v = em.load_i32(x_ptr, em.b.add(base, em.index(list(zip(r, red_strides)))), x_t.dtype)
            combine = em.b.add if is_sum else em.smax if op.kind == kinds.REDUCE_MAX else em.smin
            em.b.store(combine(em.b.load(acc), v), acc)
        result = em.b.load(acc)
        if is_sum:
            p = sum_params(op)
            left, right = (int(v) for v in split_shift(p.shift))
            shifted = em.b.sub(result, em.i32(_wrap32(p.input_zero_point * p.count)))
            raw = multiply_by_quantized_multiplier(em, shifted, p.multiplier, left, right)
            result = em.clamp(em.add(raw, p.output_zero_point), *dtype_range(y_t.dtype))
        em.store(em.narrow(result, y_t.dtype), y_ptr, em.index(list(zip(k, out_strides))))


@register(kinds.ARG_MAX, kinds.ARG_MIN)
def arg_min_max(call: KernelCall) -> None:
    em, op = call.em, call.op
    x_t, y_t = op.input, op.output
    axis = axis_of(op)
    kept, kept_strides, (size,), (stride,) = reduction_geometry(x_t.shape, (axis,))
    x_ptr, y_ptr = call.value_ptr(x_t), call.ptr(y_t)
    best, index = em.slot(I32, "best"), em.slot(I32, "index")
    predicate = ">" if op.kind == kinds.ARG_MAX else "<"
    out_strides = [1] * len(kept)
    for i in range(len(kept) - 2, -1, -1):
        out_strides[i] = out_strides[i + 1] * kept[i + 1]
    with em.nest(kept, "k") as k:
        base = em.index(list(zip(k, kept_strides)))
        em.b.store(em.load_i32(x_ptr, base, x_t.dtype), best)
        em.b.store(em.i32(0), index)
        with em.loop(size, "a") as a:
            v = em.load_i32(x_ptr, em.b.add(base, em.mul(a, stride)), x_t.dtype)
            better = em.b.icmp_signed(predicate, v, em.b.load(best))
            em.b.store(em.b.select(better, v, em.b.load(best)), best)
            em.b.store(em.b.select(better, em.b.trunc(a, I32), em.b.load(index)), index)
        em.store(em.b.load(index), y_ptr, em.index(list(zip(k, out_strides))))
