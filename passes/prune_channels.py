"""prune_channels: channels nobody reads are not computed (zero weights skipped, bit-exact).

Pruned networks carry whole channels whose weights are zero: an input channel of a conv
or fully connected layer whose weights are all zero contributes (x - zp) * 0 to every
sum, whatever x is, and the producer of that channel then computes it for nothing
(vww_96_int8's later pointwise layers read 2% to 30% of their input channels). This
pass works backward from the graph's outputs and keeps of each activation only the
channels some reader uses:

- a CONV_2D without groups or a FULLY_CONNECTED uses input channel c when a weight of
  one of its kept output channels on c is not zero;
- a DEPTHWISE_CONV_2D with depth multiplier 1 is channel for channel: its input keeps
  what its output keeps (such tensors are sliced together, a "channel group");
- every other reader, a graph output and a graph input use every channel.

A channel group is sliced when its first tensor comes from a CONV_2D (groups 1) or a
FULLY_CONNECTED, every reader of its tensors is one of the three ops above, and fewer
channels are used than it has: the producer keeps the used output channels (weights,
bias, per-channel weight quantization), each depthwise in the group the same channels,
and each reader drops the unused input channels' (all zero) weights. The kept channels'
values are unchanged and every sum loses only zero terms, so the outputs are the same
bytes; the tensors shrink, so do the arena and the MACs (`removed_macs`).

Not pruned: onnxruntime's saturating u8 x s8 pairs (removing a product re-pairs the
sum) and float groups; everything else sums exact integers (int8 and int16
activations alike), where a zero term is no term.
"""
from __future__ import annotations

import numpy as np

from mcuc.ir import Graph, Op, Tensor
from mcuc.ir.numerics import OrtInteger, in_float
from mcuc.ir.ops import op_def
from mcuc.ir.ops.kinds import CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED
from mcuc.ir.tensor import Quantization


def _exact_sums(op: Op) -> bool:
    """Whether dropping a zero-weight term leaves the op's sums unchanged."""
    numerics = getattr(op.attrs, "numerics", None)
    if in_float(op.attrs) is not None:
        return False
    return not (isinstance(numerics, OrtInteger) and numerics.u8s8_pairs)


def _pointwise_reader(op: Op, t: Tensor) -> bool:
    """A CONV_2D without groups or a FULLY_CONNECTED reading `t` as its activation, channels
    last on both."""
    if op.kind not in (CONV_2D, FULLY_CONNECTED) or op.inputs[0] is not t or any(x is t for x in op.inputs[1:]) \
            or not _exact_sums(op):
        return False
    w = op.inputs[1]
    if op.kind == CONV_2D:
        return len(t.shape) == 4 and w.shape[3] == t.shape[3]
    if op.kind == FULLY_CONNECTED:
        return len(w.shape) == 2 and w.shape[1] == t.shape[-1]
    return False


def _channelwise(op: Op, t: Tensor) -> bool:
    """A DEPTHWISE_CONV_2D with depth multiplier 1 reading `t`."""
    return (op.kind == DEPTHWISE_CONV_2D and op.inputs[0] is t and not any(x is t for x in op.inputs[1:])
            and op.attrs.depth_multiplier == 1 and _exact_sums(op) and len(t.shape) == 4)


def _producer_prunable(op: Op | None) -> bool:
    if op is None or op.kind not in (CONV_2D, FULLY_CONNECTED) or not _exact_sums(op) or len(op.outputs) != 1:
        return False
    w = op.inputs[1]
    if op.kind == CONV_2D:
        return w.shape[3] == op.inputs[0].shape[3]
    return op.kind == FULLY_CONNECTED and len(w.shape) == 2


def _input_channels_used(op: Op, kept_outputs: np.ndarray) -> np.ndarray:
    """Mask of the input channels a pointwise reader's kept output channels weigh."""
    w = op.inputs[1].data
    rows = w[kept_outputs].reshape(int(kept_outputs.sum()), -1, w.shape[-1])
    return np.any(rows != 0, axis=(0, 1))


def _channel_groups(graph: Graph) -> list[list[Tensor]]:
    """Tensors joined by depthwise convs (multiplier 1), each list in execution order."""
    groups: dict[Tensor, list[Tensor]] = {}
    for op in graph.ops:
        if op.kind == DEPTHWISE_CONV_2D and _channelwise(op, op.inputs[0]):
            group = groups.setdefault(op.inputs[0], [op.inputs[0]])
            group.append(op.outputs[0])
            groups[op.outputs[0]] = group
    for op in graph.ops:
        for t in op.outputs:
            groups.setdefault(t, [t])
    seen: set[int] = set()
    out = []
    for group in groups.values():
        if id(group) not in seen:
            seen.add(id(group))
            out.append(group)
    return out


def _slice_quant(q: Quantization | None, keep: np.ndarray, axis: int) -> Quantization | None:
    if q is None or not q.per_channel:
        return q
    return Quantization(q.scale[keep], q.zero_point[keep] if q.zero_point.size > 1 else q.zero_point, axis)


def _sliced(t: Tensor, keep: np.ndarray, axis: int) -> Tensor:
    """`t` with only the `keep` entries along `axis` (constants: data and per-channel
    quantization too)."""
    shape = list(t.shape)
    shape[axis] = int(keep.sum())
    data = None if t.data is None else np.compress(keep, t.data, axis=axis)
    quant = t.quant
    if t.data is not None and quant is not None and quant.per_channel and quant.axis == axis:
        quant = _slice_quant(quant, keep, axis)  # per-channel along the sliced axis
    return Tensor(t.name, tuple(shape), t.dtype, quant, data)


def prune_channels(graph: Graph) -> Graph:
    """The graph with every channel no reader uses removed (module docstring)."""
    producers = {t: op for op in graph.ops for t in op.outputs}
    boundary = set(graph.inputs) | set(graph.outputs)
    keep: dict[Tensor, np.ndarray] = {}  # the sliced groups' kept channels, per member
    groups = _channel_groups(graph)
    position = {op: i for i, op in enumerate(graph.ops)}
    # readers' usage depends on their own kept outputs: latest groups first
    groups.sort(key=lambda g: -position.get(producers.get(g[0]), -1))
    for group in groups:
        members = set(group)
        if members & boundary or not _producer_prunable(producers.get(group[0])):
            continue
        channels = group[0].shape[-1]
        used = np.zeros(channels, bool)
        ok = True
        for t in group:
            for reader in graph.consumers(t):
                if _channelwise(reader, t) and reader.outputs[0] in members:
                    continue
                if not _pointwise_reader(reader, t):
                    ok = False
                    break
                kept_out = keep.get(reader.outputs[0], np.ones(reader.outputs[0].shape[-1], bool))
                used |= _input_channels_used(reader, kept_out)
            if not ok:
                break
        if not ok or used.all():
            continue
        if not used.any():
            used[0] = True  # no empty tensors: one channel stays
        for t in group:
            keep[t] = used
    if not keep:
        return graph
    new_tensor = {t: _sliced(t, keep[t], len(t.shape) - 1) for t in keep}

    def rebuilt(op: Op) -> Op:
        inputs = list(op.inputs)
        outputs = [new_tensor.get(t, t) for t in op.outputs]
        out = op.outputs[0]
        if out in keep:  # a group's producer or depthwise: weights on their output axis, bias
            kept = keep[out]
            inputs[1] = _sliced(op.inputs[1], kept, 3 if op.kind == DEPTHWISE_CONV_2D else 0)
            if len(inputs) > 2 and inputs[2] is not None:
                inputs[2] = _sliced(inputs[2], kept, 0)
        x = op.inputs[0]
        if x in keep and op.kind in (CONV_2D, FULLY_CONNECTED):
            inputs[1] = _sliced(inputs[1], keep[x], len(inputs[1].shape) - 1)
        inputs = [new_tensor.get(t, t) if t is not None and t.data is None else t for t in inputs]
        if inputs == list(op.inputs) and outputs == list(op.outputs):
            return op
        return op.with_(inputs=tuple(inputs), outputs=tuple(outputs))

    return graph.with_(ops=tuple(rebuilt(op) for op in graph.ops))


def removed_macs(before: Graph, after: Graph) -> int:
    """The MACs the pass removed (the graphs' nominal MACs, before minus after)."""
    def macs(g: Graph) -> int:
        return sum(int(op_def(op.kind).macs(op)) for op in g.ops)
    return macs(before) - macs(after)


