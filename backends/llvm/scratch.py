"""The scratch buffers the llvm backend's kernels ask the memory planner for, and where
a kernel finds them when it is emitted."""
from __future__ import annotations

from llvmlite import ir

from mcuc.ir.op import Op
from mcuc.ir.ops import kinds
from mcuc.ir.program import ScratchRequest

from .codegen import KernelCall
from .emitter import I8


def padded_plane_shape(op) -> tuple[int, int]:
    """(rows, columns) of one input channel plane with its padding border."""
    _, h, w, _ = op.inputs[0].shape
    p = op.attrs.padding
    return h + p.top + p.bottom, w + p.left + p.right


def scratch_requests(op: Op, in_place: bool) -> list[ScratchRequest]:
    """Depthwise in place copies each input channel plane aside before overwriting it:
    one plane with its padding border, (H + pads) * (W + pads) bytes. No other kernel
    needs a temporary in the arena."""
    if op.kind == kinds.DEPTHWISE_CONV_2D and in_place:
        rows, cols = padded_plane_shape(op)
        return [ScratchRequest("dw_channel_plane", rows * cols, 4)]
    return []


def scratch_plane(call: KernelCall, nbytes: int) -> ir.Value:
    """The planned scratch buffer if the plan gave one large enough, else stack memory
    (the host has stack to spare; the arena figure then excludes the plane)."""
    for buf in call.step.scratch:
        if buf.size >= nbytes:
            return call.em.arena_ptr(buf.offset, "int8")
    return call.em.slot(I8, "plane", count=nbytes)
