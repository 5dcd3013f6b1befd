"""Aliasing and in-place decisions: which tensors share arena bytes, for one op order.

Every activation tensor gets a *home*: the root of its storage group and a byte offset
inside the group's buffer. A group's buffer is as large as its largest extent; its
lifetime (lifetimes.py) is the union of its members' lifetimes. Rules, applied op by op
in the graph's order:

- RESHAPE / SQUEEZE: the output is the input's bytes (same group, offset 0); the step
  is an alias step (nothing to run).
- CONCATENATION along an axis whose outer dimensions are all 1: every input's slice is
  a contiguous byte range of the output, so each input is written there directly by its
  producer. All inputs must qualify (activation, used once by this concat, quantization
  equal to the output's, its group flat and exactly the input's size); then the concat
  is an alias step. Otherwise it copies as usual.
- In place: an elementwise op (ADD, MUL, RELU, RELU6, LOGISTIC, HARD_SWISH, same-size
  QUANTIZE) writes its output over a same-shape, same-item-size input whose group is not
  read after this step and is no graph output; a DEPTHWISE_CONV_2D with depth multiplier
  1 writes over its input likewise (group size max(in, out); the kernel works channel by
  channel through a scratch plane). Both groups must be *flat* (every member at offset 0:
  no concat slices inside), so the output only ever covers bytes of dead data.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mcuc.ir import Graph, Op, Quantization, Tensor

from .lifetimes import tensor_intervals

ALIAS_KINDS = frozenset({"RESHAPE", "SQUEEZE"})
ELEMENTWISE_KINDS = frozenset({"ADD", "MUL", "RELU", "RELU6", "LOGISTIC", "HARD_SWISH", "QUANTIZE"})
DEPTHWISE = "DEPTHWISE_CONV_2D"


@dataclass(frozen=True, eq=False)
class Storage:
    """Where each activation lives, for one op order (graph.ops as given).

    home[t] = (root, byte offset of t inside root's buffer); size[root] = bytes of the
    root's buffer. in_place[i] = index of the input op i writes its output 0 over.
    alias_steps: ops that move no bytes (RESHAPE/SQUEEZE, fully sliced CONCATENATION).
    """

    home: dict[Tensor, tuple[Tensor, int]]
    size: dict[Tensor, int]
    in_place: dict[int, int] = field(default_factory=dict)
    alias_steps: frozenset[int] = frozenset()

    def root(self, tensor: Tensor) -> Tensor:
        return self.home[tensor][0]

    def members(self) -> dict[Tensor, list[Tensor]]:
        """root -> the tensors living in its buffer (root first)."""
        groups: dict[Tensor, list[Tensor]] = {}
        for t, (root, _) in self.home.items():
            groups.setdefault(root, []).append(t)
        for root, ts in groups.items():
            ts.sort(key=lambda t: t is not root)
        return groups


def separate_storage(graph: Graph) -> Storage:
    """Every activation in its own buffer: no aliasing, no in-place (the baseline)."""
    acts = graph.activations
    return Storage(home={t: (t, 0) for t in acts}, size={t: t.nbytes for t in acts})


class _Groups:
    """Union of tensors into storage groups with byte offsets (a tiny union-find where
    the smaller side is always relabelled, so merges stay cheap)."""

    def __init__(self, tensors, spans: dict[Tensor, tuple[int, int]]):
        self.home: dict[Tensor, tuple[Tensor, int]] = {t: (t, 0) for t in tensors}
        self.members: dict[Tensor, list[Tensor]] = {t: [t] for t in tensors}
        self.size: dict[Tensor, int] = {t: t.nbytes for t in tensors}
        self.flat: dict[Tensor, bool] = {t: True for t in tensors}
        self.last: dict[Tensor, int] = {t: spans[t][1] for t in tensors}

    def root(self, t: Tensor) -> Tensor:
        return self.home[t][0]

    def merge(self, src: Tensor, dst: Tensor, delta: int) -> None:
        """Move group `src` into group `dst`, `src`'s offset 0 landing at `delta`."""
        assert src is not dst and delta >= 0
        for m in self.members.pop(src):
            self.home[m] = (dst, self.home[m][1] + delta)
            self.members[dst].append(m)
        self.size[dst] = max(self.size[dst], self.size.pop(src) + delta)
        self.flat[dst] = self.flat[dst] and self.flat.pop(src) and delta == 0
        self.last[dst] = max(self.last[dst], self.last.pop(src))


def same_quantization(a: Quantization | None, b: Quantization | None) -> bool:
    if a is None or b is None:
        return a is b
    return (a.axis == b.axis and np.array_equal(a.scale, b.scale)
            and np.array_equal(a.zero_point, b.zero_point))


def in_place_candidate(op: Op) -> list[int]:
    """Input indices op could write its output 0 over (before checking lifetimes)."""
    out = op.outputs[0]
    if op.kind == DEPTHWISE and len(op.outputs) == 1:
        x = op.inputs[0]
        if getattr(op.attrs, "depth_multiplier", 1) == 1 and x.dtype == out.dtype and not x.is_constant:
            return [0]
        return []
    if op.kind in ELEMENTWISE_KINDS and len(op.outputs) == 1:
        return [i for i, t in enumerate(op.inputs)
                if t is not None and not t.is_constant and t.shape == out.shape
                and t.itemsize == out.itemsize]
    return []


def concat_slices(op: Op) -> list[int] | None:
    """Byte offset of each input's slice in the output, or None when the slices are not
    contiguous (some dimension before the axis is not 1)."""
    out = op.outputs[0]
    axis = op.attrs.axis + len(out.shape) if op.attrs.axis < 0 else op.attrs.axis
    if any(d != 1 for d in out.shape[:axis]):
        return None
    offsets, at = [], 0
    for t in op.inputs:
        offsets.append(at)
        at += t.nbytes
    return offsets


def plan_storage(graph: Graph, *, in_place: bool = True, alias: bool = True) -> Storage:
    """Storage groups for graph.ops in their given order (see the module docstring)."""
    spans = tensor_intervals(graph)
    groups = _Groups(graph.activations, spans)
    outputs = set(graph.outputs)
    in_place_of: dict[int, int] = {}
    alias_steps: set[int] = set()

    for i, op in enumerate(graph.ops):
        if alias and op.kind in ALIAS_KINDS and op.inputs and not op.inputs[0].is_constant:
            x, y = op.inputs[0], op.outputs[0]
            if x.nbytes == y.nbytes:
                groups.merge(groups.root(y), groups.root(x), groups.home[x][1])
                alias_steps.add(i)
            continue
        if alias and op.kind == "CONCATENATION" and _concat_in_place(op, groups):
            y = op.outputs[0]
            for t, at in zip(op.inputs, concat_slices(op)):
                groups.merge(groups.root(t), groups.root(y), at)
            alias_steps.add(i)
            continue
        if not in_place:
            continue
        y = op.outputs[0] if op.outputs else None
        for k in in_place_candidate(op):
            x = op.inputs[k]
            rx, ry = groups.root(x), groups.root(y)
            if rx is ry or not (groups.flat[rx] and groups.flat[ry]):
                continue
            if groups.last[rx] != i or any(m in outputs for m in groups.members[rx]):
                continue
            if op.kind != DEPTHWISE and groups.size[rx] < y.nbytes:
                continue
            groups.merge(ry, rx, 0)
            in_place_of[i] = k
            break

    return Storage(home=groups.home, size=groups.size, in_place=in_place_of,
                   alias_steps=frozenset(alias_steps))


def _concat_in_place(op: Op, groups: _Groups) -> bool:
    slices = concat_slices(op)
    if slices is None:
        return False
    y = op.outputs[0]
    if len({groups.root(t) for t in op.inputs if t is not None}) != len(op.inputs):
        return False
    for t in op.inputs:
        if t is None or t.is_constant or t.dtype != y.dtype or not same_quantization(t.quant, y.quant):
            return False
        r = groups.root(t)
        if not groups.flat[r] or groups.size[r] != t.nbytes or r is groups.root(y):
            return False
    return True
