"""The scratch buffers the llvm backend's kernels ask the memory planner for."""
from __future__ import annotations

from mcuc.ir.op import Op
from mcuc.ir.program import ScratchRequest

from .kernels.conv import padded_plane_shape


def scratch_requests(op: Op, in_place: bool) -> list[ScratchRequest]:
    """Depthwise in place copies each input channel plane aside before overwriting it:
    one plane with its padding border, (H + pads) * (W + pads) bytes. No other kernel
    needs a temporary in the arena."""
    if op.kind == "DEPTHWISE_CONV_2D" and in_place:
        rows, cols = padded_plane_shape(op)
        return [ScratchRequest("dw_channel_plane", rows * cols, 4)]
    return []
