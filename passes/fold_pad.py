"""fold_pad: a PAD whose only reader is an op that absorbs padding (ir/ops
Trait.ABSORBS_PAD: CONV_2D, DEPTHWISE_CONV_2D) becomes that convolution's explicit
padding (exact, and the padded tensor never exists in SRAM).

Exact because the convolutions treat padding as input zero points (a tap on padding
adds (zp - zp) * w = 0): folding is allowed only when the PAD fills with the consumer's
input zero point (PAD's own output zero point when it has no value), pads only H and W
of an NHWC tensor, keeps the quantization, and its output is no graph output.
"""
from __future__ import annotations

from dataclasses import replace

from mcuc.ir import Graph, Op
from mcuc.ir.ops import Trait, op_def
from mcuc.ir.ops.common import Padding2D
from mcuc.ir.ops.kinds import PAD

from .aliasing import same_quantization


def foldable(pad: Op, graph: Graph) -> Op | None:
    """The convolution `pad` folds into, or None."""
    if pad.kind != PAD or len(pad.outputs) != 1:
        return None
    x, y = pad.inputs[0], pad.outputs[0]
    readers = graph.consumers(y)
    if len(readers) != 1 or y in graph.outputs:
        return None
    conv = readers[0]
    if (not op_def(conv.kind).has(Trait.ABSORBS_PAD) or conv.inputs[0] is not y
            or any(t is y for t in conv.inputs[1:])):
        return None
    if len(y.shape) != 4 or x.dtype != y.dtype or not same_quantization(x.quant, y.quant) or y.quant is None:
        return None
    pads = pad.attrs.pads
    if pads[0] != (0, 0) or pads[3] != (0, 0):
        return None
    zero_point = y.quant.scalar_zero_point
    if y.quant.per_channel or (pad.attrs.value is not None and pad.attrs.value != zero_point):
        return None
    return conv


def fold_pad(graph: Graph) -> Graph:
    """The graph with every foldable PAD merged into its convolution."""
    replaced: dict[Op, Op] = {}
    dropped: set[Op] = set()
    for op in graph.ops:
        conv = foldable(op, graph)
        if conv is None:
            continue
        (top, bottom), (left, right) = op.attrs.pads[1], op.attrs.pads[2]
        p = conv.attrs.padding
        padding = Padding2D(p.top + top, p.bottom + bottom, p.left + left, p.right + right)
        replaced[conv] = conv.with_(inputs=(op.inputs[0],) + conv.inputs[1:],
                                    attrs=replace(conv.attrs, padding=padding))
        dropped.add(op)
    if not dropped:
        return graph
    ops = tuple(replaced.get(op, op) for op in graph.ops if op not in dropped)
    return graph.with_(ops=ops)
