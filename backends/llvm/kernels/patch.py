"""PATCH_STAGE: a PatchLoop's lowered calls (mcuc.ir.patch_lowering), emitted as they are.

A BoxCopy becomes nested loops of memcpy runs; a RegionCall becomes the region op's
ordinary kernel with its tensors at the call's offsets, each in an internal function
of its own (the optimizer then works on one small kernel at a time: a stage has
patches x ops of them).
"""
from __future__ import annotations

from mcuc.ir.errors import MCUCError
from mcuc.ir.ops import kinds
from mcuc.ir.patch_lowering import BoxCopy, RegionCall, merged_runs
from mcuc.ir.program import PatchLoop, Program, Step

from ..codegen import KernelCall
from ..emitter import Emitter
from . import emitter_for, register


def emit_box_copy(em: Emitter, copy: BoxCopy) -> None:
    """The copy's box as nested loops over memcpy runs (trailing axes contiguous on both
    sides merge into one run)."""
    if copy.nbytes == 0:
        return
    shape, dst_strides, src_strides, run = merged_runs(copy.shape, copy.dst_strides, copy.src_strides, copy.itemsize)
    # The source may be a graph input, the destination a graph output, in the caller's buffers.
    src_base, src_start = em.base_of(copy.src) if em.io is not None else (em.arena, 0)
    dst_base, dst_start = em.base_of(copy.dst) if em.io is not None else (em.arena, 0)
    with em.nest(tuple(shape), "box") as idx:
        src = em.index(list(zip(idx, src_strides)), copy.src - src_start)
        dst = em.index(list(zip(idx, dst_strides)), copy.dst - dst_start)
        em.memcpy(em.b.gep(dst_base, [dst], inbounds=True), em.b.gep(src_base, [src], inbounds=True), run)


@register(kinds.PATCH_STAGE)
def patch_stage(call: KernelCall) -> None:
    step = call.step
    if not isinstance(step, PatchLoop) or (not step.calls and step.stage.patches):
        raise MCUCError(f"step {call.index} {call.op.label}: the patch stage is not lowered; schedule it with "
                        f"mcuc.passes.patch.plan_patched")
    outer = call.em
    for n, lowered in enumerate(step.calls):
        em = Emitter(outer.ctx, f"{outer.function.name}.{n}")
        em.function.linkage = "internal"
        em.function.attributes.add("noinline")
        if isinstance(lowered, BoxCopy):
            emit_box_copy(em, lowered)
        else:
            _emit_region_call(em, call, lowered)
        em.finish()
        outer.b.call(em.function, outer.args)


def _emit_region_call(em: Emitter, call: KernelCall, region: RegionCall) -> None:
    program = Program(call.program.graph, (), dict(region.offsets), call.program.arena_bytes)
    inner = KernelCall(em, Step(region.op, scratch=region.scratch), program, call.index)
    emitter_for(region.op, call.index)(inner)

