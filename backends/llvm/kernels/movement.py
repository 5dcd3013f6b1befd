"""The data movement ops (SLICE, STRIDED_SLICE, SPLIT, SPLIT_V, PACK, UNPACK, GATHER,
SPACE_TO_DEPTH, DEPTH_TO_SPACE, MIRROR_PAD, SPACE_TO_BATCH_ND, BATCH_TO_SPACE_ND,
REVERSE_V2, BROADCAST_TO, FILL, DYNAMIC_UPDATE_SLICE) as the copies their op modules state
(mcuc.ir.ops.movement.moves): one loop nest per move, its trailing axes merged into one
memcpy where both sides are contiguous. EXPAND_DIMS is a view: the RESHAPE emitter."""
from __future__ import annotations

from mcuc.ir.ops import dynamic_update_slice, gather, kinds
from mcuc.ir.ops.movement import moves

from ..codegen import KernelCall
from ..emitter import I64
from . import register
from .layout import _copy_elements, same_bytes

register(kinds.EXPAND_DIMS)(same_bytes)


def _merged(shape, src_strides, dst_strides) -> tuple[list[int], list[int], list[int], int]:
    """(outer shape, src strides, dst strides, run): trailing axes both sides hold
    contiguously become one run of elements."""
    shape, src_strides, dst_strides = list(shape), list(src_strides), list(dst_strides)
    run = 1
    while shape and src_strides[-1] == run and dst_strides[-1] == run:
        run *= shape.pop()
        src_strides.pop()
        dst_strides.pop()
    return shape, src_strides, dst_strides, run


@register(kinds.SLICE, kinds.STRIDED_SLICE, kinds.SPLIT, kinds.SPLIT_V, kinds.PACK, kinds.UNPACK, kinds.GATHER,
          kinds.GATHER_ND,
          kinds.SPACE_TO_DEPTH, kinds.DEPTH_TO_SPACE, kinds.MIRROR_PAD, kinds.SPACE_TO_BATCH_ND,
          kinds.BATCH_TO_SPACE_ND, kinds.REVERSE_V2, kinds.BROADCAST_TO, kinds.FILL, kinds.DYNAMIC_UPDATE_SLICE)
def copy_moves(call: KernelCall) -> None:
    op = call.op
    if op.kind == kinds.GATHER and gather.dynamic(op):
        _gather_run_time(call)
        return
    if op.kind == kinds.DYNAMIC_UPDATE_SLICE and dynamic_update_slice.dynamic(op):
        _update_slice_run_time(call)
        return
    for k, m in enumerate(moves(op)):
        _copy_move(call, k, m)


def _copy_move(call: KernelCall, k: int, m, offset=None) -> None:
    """One move as a loop nest of element runs; `offset` (an i64 value) moves its
    destination by that many elements (a start known at run time)."""
    em, op = call.em, call.op
    x_t, y_t = op.inputs[m.input], op.outputs[m.output]
    src_ptr, dst_ptr = call.value_ptr(x_t), call.ptr(y_t)
    shape, ss, ds, run = _merged(m.shape, m.src_strides, m.dst_strides)
    with em.nest(shape, f"m{k}_") as idx:
        src = em.index(list(zip(idx, ss)), m.src)
        dst = em.index(list(zip(idx, ds)), m.dst)
        _copy_elements(call, dst_ptr, dst if offset is None else em.b.add(dst, offset), src_ptr, src, run,
                       x_t.itemsize)


def _update_slice_run_time(call: KernelCall) -> None:
    """DYNAMIC_UPDATE_SLICE with start indices computed at run time: the operand copied,
    then the update copied from the element offset of the clamped start
    (mcuc.ir.ops.dynamic_update_slice)."""
    em, op = call.em, call.op
    operand, update, indices = op.inputs
    _copy_move(call, 0, dynamic_update_slice.operand_move(op))
    i_ptr = call.value_ptr(indices)
    offset = em.i64(0)
    for axis, stride in enumerate(dynamic_update_slice.strides(op)):
        start = em.widen(em.load(i_ptr, axis), indices.dtype, I64)
        start = em.clamp(start, 0, operand.shape[axis] - update.shape[axis])
        offset = em.b.add(offset, em.mul(start, stride))
    _copy_move(call, 1, dynamic_update_slice.update_move(op, 0), offset)


def _gather_run_time(call: KernelCall) -> None:
    """GATHER with indices computed at run time: per (batch, outer, coordinate) one index
    read, clamped into the axis (mcuc.ir.ops.gather), and `inner` elements copied."""
    em, op = call.em, call.op
    params, indices = op.inputs
    axis, _, batch, outer, inner, coords = gather.geometry(op)
    size = params.shape[axis]
    p_ptr, i_ptr, y_ptr = call.value_ptr(params), call.value_ptr(indices), call.ptr(op.output)
    with em.loop(batch, "b") as b, em.loop(outer, "o") as o, em.loop(coords, "c") as c:
        index = em.clamp(em.load_i32(i_ptr, em.index([(b, coords), (c, 1)]), indices.dtype), 0, size - 1)
        row = em.b.add(em.index([(b, outer * size), (o, size)]), em.b.sext(index, I64))
        src = em.mul(row, inner)
        dst = em.index([(b, outer * coords * inner), (o, coords * inner), (c, inner)])
        _copy_elements(call, y_ptr, dst, p_ptr, src, inner, params.itemsize)
