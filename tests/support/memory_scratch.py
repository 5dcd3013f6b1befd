"""A scratch function that mimics the Cortex-M kernels' requests (until the backend
declares its own): CMSIS-NN style partial im2col for convolutions with a window
(2 columns of kh*kw*cin int16), one channel plane for in-place depthwise."""
from __future__ import annotations

from mcuc.ir import Op
from mcuc.ir.program import ScratchRequest


def mimic_cortexm_scratch(op: Op, in_place: bool) -> list[ScratchRequest]:
    if op.kind == "CONV_2D":
        _, kh, kw, cin = op.inputs[1].shape
        if kh * kw > 1:
            return [ScratchRequest("im2col", 2 * kh * kw * cin * 2)]
        return []
    if op.kind == "DEPTHWISE_CONV_2D" and in_place:
        _, oh, ow, _ = op.outputs[0].shape
        return [ScratchRequest("plane", oh * ow)]
    return []
