"""PATCH_STAGE: a stage of ops run patch by patch (mcuc.ir.program.PatchLoop).

Every (patch, op) pair has constant regions, so each is emitted as the op's ordinary
kernel on region-shaped proxy tensors, exactly as mcuc.ir.patch_interpreter evaluates
it: window ops and PAD get the region's border padding, positional ops get the slices
of their broadcast constants. Inputs are read where the plan put them (stage inputs at
their arena offsets, intermediates in their patch buffers in the stage's workspace);
a region that is not one contiguous run of its source is first gathered into a stack
temporary. Outputs go straight into their patch buffer, or into the stage output's
region of the full tensor (through a temporary when that region is not contiguous).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from llvmlite import ir

from mcuc.ir.errors import MCUCError
from mcuc.ir.op import Op
from mcuc.ir.ops import Trait, kinds, op_def
from mcuc.ir.ops.common import Padding2D
from mcuc.ir.patch_interpreter import PatchStage, constant_slice
from mcuc.ir.program import Step
from mcuc.ir.region import Region
from mcuc.ir.tensor import Tensor

from ..codegen import KernelCall
from ..emitter import I8, Emitter, strides_of
from . import emitter_for, register

_ALIGN = 16


def _align(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def contiguous_offset(start: tuple[int, ...], shape: tuple[int, ...], full: tuple[int, ...]) -> int | None:
    """The flat element offset of a box inside a C-order array of shape `full` when the
    box is one contiguous run of it (extent 1 on every axis before some axis p, the full
    extent on every axis after p), else None."""
    p = next((a for a in range(len(shape)) if shape[a] != 1), len(shape))
    if any(shape[a] != full[a] for a in range(p + 1, len(shape))):
        return None
    return int(sum(s * st for s, st in zip(start, strides_of(full))))


def emit_box_copy(em: Emitter, dst: ir.Value, dst_shape: tuple[int, ...], dst_start: tuple[int, ...],
                  src: ir.Value, src_shape: tuple[int, ...], src_start: tuple[int, ...],
                  shape: tuple[int, ...], itemsize: int) -> None:
    """Copy a box of `shape` elements from src (a C-order array of src_shape, box at
    src_start) to dst (dst_shape, box at dst_start). Pointers are i8*; trailing axes
    both sides cover fully are merged into one memcpy run."""
    if any(d == 0 for d in shape):
        return
    rank = len(shape)
    run_axis = rank - 1
    while run_axis > 0 and shape[run_axis] == src_shape[run_axis] == dst_shape[run_axis]:
        run_axis -= 1
    run_elements = int(np.prod(shape[run_axis:], dtype=np.int64))
    src_strides, dst_strides = strides_of(src_shape), strides_of(dst_shape)
    src_base = sum(s * st for s, st in zip(src_start, src_strides)) * itemsize
    dst_base = sum(s * st for s, st in zip(dst_start, dst_strides)) * itemsize
    with em.nest(shape[:run_axis], "box") as idx:
        s_off = em.index([(i, st * itemsize) for i, st in zip(idx, src_strides)], src_base)
        d_off = em.index([(i, st * itemsize) for i, st in zip(idx, dst_strides)], dst_base)
        em.memcpy(em.b.gep(dst, [d_off], inbounds=True), em.b.gep(src, [s_off], inbounds=True),
                  run_elements * itemsize)


@dataclass
class _Source:
    """Where an input tensor's values are now: a pointer to an array of `shape` whose
    element [0, ...] is the tensor's element `origin`."""

    ptr: ir.Value
    shape: tuple[int, ...]
    origin: tuple[int, ...]


class _StageEmitter:
    def __init__(self, call: KernelCall):
        self.call = call
        self.em = call.em
        self.stage: PatchStage = call.op.attrs
        self.internal = {b.tensor: b for b in self.stage.buffers}
        step = call.step
        if self.stage.workspace_bytes > 0 and not step.scratch:
            raise MCUCError(f"step {call.index} {call.op.label}: the plan gives the patch stage no workspace "
                            f"({self.stage.workspace_bytes} B needed); plan it with mcuc.passes.plan")
        self.workspace = step.scratch[0].offset if step.scratch else 0

    def _embedded(self, op: Op) -> bool:
        opdef = op_def(op.kind)
        return not (opdef.has(Trait.WINDOW) or opdef.has(Trait.POSITIONAL)) and op.kind not in (kinds.PAD, kinds.CONCATENATION)

    def _temporary_sizes(self, op: Op, work) -> tuple[int, int]:
        """Stack bytes for one op's gathered inputs and for its output."""
        total = 0
        for t, region in zip(op.inputs, work.geometry.inputs):
            if t is None or t.is_constant:
                continue
            shape = t.shape if self._embedded(op) else (region.shape if region is not None else t.shape)
            total += _align(int(np.prod(shape, dtype=np.int64)) * t.itemsize)
        y = op.output
        out_shape = y.shape if self._embedded(op) else work.out.shape
        return total, int(np.prod(out_shape, dtype=np.int64)) * y.itemsize

    # -- emission --------------------------------------------------------------------------

    def emit(self) -> None:
        """One internal function per (patch, op), called in order: the optimizer then
        works on one small kernel at a time (a stage has patches x ops of them)."""
        held: dict[Tensor, Region] = {}
        outer = self.call.em
        for p, works in enumerate(self.stage.patches):
            for i, (op, work) in enumerate(zip(self.stage.ops, works)):
                if work.out.empty:
                    # Nothing to compute in this patch; a consumer that reads this tensor
                    # here reads an empty region of it (e.g. a PAD whose patch is all border).
                    for t in op.outputs:
                        held[t] = work.out
                    continue
                self.em = Emitter(outer.ctx, f"{outer.function.name}.patch{p}.op{i}")
                self.em.function.linkage = "internal"
                self.em.function.attributes.add("noinline")
                in_bytes, out_bytes = self._temporary_sizes(op, work)
                self.in_temp = self.em.slot(I8, "patch.in", count=max(in_bytes, 1))
                self.out_temp = self.em.slot(I8, "patch.out", count=max(out_bytes, 1))
                self._emit_op(op, work, held)
                self.em.finish()
                outer.b.call(self.em.function, [outer.arena])
        self.em = outer

    def _source(self, t: Tensor, held: dict[Tensor, Region]) -> _Source:
        em = self.em
        if t in self.internal:
            have = held.get(t)
            if have is None:
                raise MCUCError(f"{self.call.op.label}: {t.name!r} is read before its patch buffer is written")
            ptr = em.arena_ptr(self.workspace + self.internal[t].delta, "int8")
            return _Source(ptr, have.shape, have.start)
        return _Source(em.arena_ptr(self.call.offset(t), "int8"), t.shape, (0,) * len(t.shape))

    def _emit_op(self, op: Op, work, held: dict[Tensor, Region]) -> None:
        em = self.em
        geometry = work.geometry
        embedded = self._embedded(op)
        pointers: dict[Tensor, ir.Value] = {}
        proxies: list[Tensor | None] = []
        cursor = 0
        for t, region in zip(op.inputs, geometry.inputs):
            if t is None:
                proxies.append(None)
                continue
            if t.is_constant:
                if op_def(op.kind).has(Trait.POSITIONAL):
                    data = constant_slice(t, work.out)
                    proxies.append(t.with_(shape=data.shape, data=data))
                else:
                    proxies.append(t)
                continue
            source = self._source(t, held)
            if embedded:
                # The op's full-size kernel over an input that holds the region (zeros
                # elsewhere, which the output region never reads).
                proxy = t.with_()
                temp = em.b.gep(self.in_temp, [em.i64(cursor)], inbounds=True)
                em.memset(temp, 0, t.nbytes)
                if region is not None and not region.empty:
                    emit_box_copy(em, temp, t.shape, region.start, source.ptr, source.shape,
                                  _local(region.start, source.origin), region.shape, t.itemsize)
                cursor += _align(t.nbytes)
            else:
                proxy = t.with_(shape=region.shape)
                local = _local(region.start, source.origin)
                flat = contiguous_offset(local, region.shape, source.shape)
                if flat is not None:
                    temp = em.b.gep(source.ptr, [em.i64(flat * t.itemsize)], inbounds=True)
                else:
                    temp = em.b.gep(self.in_temp, [em.i64(cursor)], inbounds=True)
                    emit_box_copy(em, temp, region.shape, (0,) * len(region.shape), source.ptr, source.shape,
                                  local, region.shape, t.itemsize)
                    cursor += _align(proxy.nbytes)
            pointers[proxy] = temp
            proxies.append(proxy)

        y = op.output
        proxy_y = y.with_() if embedded else y.with_(shape=work.out.shape)
        write_back = None
        if y is self.stage.output:
            full = em.arena_ptr(self.call.offset(y), "int8")
            flat = None if embedded else contiguous_offset(work.out.start, work.out.shape, y.shape)
            if flat is not None:
                pointers[proxy_y] = em.b.gep(full, [em.i64(flat * y.itemsize)], inbounds=True)
            else:
                pointers[proxy_y] = self.out_temp
                write_back = full
        else:
            buffer = self.internal.get(y)
            if buffer is None:
                raise MCUCError(f"{self.call.op.label}: {y.name!r} has no patch buffer")
            if work.out.size * y.itemsize > buffer.size:
                raise MCUCError(f"{self.call.op.label}: the patch buffer of {y.name!r} holds {buffer.size} B, "
                                f"a region needs {work.out.size * y.itemsize} B (a planning bug)")
            if embedded:
                pointers[proxy_y] = self.out_temp
            else:
                pointers[proxy_y] = em.arena_ptr(self.workspace + buffer.delta, "int8")

        attrs = op.attrs
        if op_def(op.kind).has(Trait.WINDOW):
            (top, bottom), (left, right) = geometry.padding
            attrs = replace(attrs, padding=Padding2D(top, bottom, left, right))
        elif op.kind == kinds.PAD:
            attrs = replace(attrs, pads=geometry.padding)
        proxy_op = op.with_(inputs=tuple(proxies), outputs=(proxy_y,), attrs=attrs)
        call = KernelCall(em, Step(proxy_op), self.call.program, self.call.index, pointers)
        emitter_for(proxy_op, self.call.index)(call)

        if embedded:
            out = work.out
            if y is self.stage.output:
                emit_box_copy(em, write_back, y.shape, out.start, self.out_temp, y.shape, out.start, out.shape,
                              y.itemsize)
            else:
                dst = em.arena_ptr(self.workspace + self.internal[y].delta, "int8")
                emit_box_copy(em, dst, out.shape, (0,) * len(out.shape), self.out_temp, y.shape, out.start,
                              out.shape, y.itemsize)
        elif write_back is not None:
            out = work.out
            emit_box_copy(em, write_back, y.shape, out.start, self.out_temp, out.shape, (0,) * len(out.shape),
                          out.shape, y.itemsize)
        if y is not self.stage.output:
            held[y] = work.out


def _local(start: tuple[int, ...], origin: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(s - o for s, o in zip(start, origin))


@register(kinds.PATCH_STAGE)
def patch_stage(call: KernelCall) -> None:
    _StageEmitter(call).emit()
