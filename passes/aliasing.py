"""Aliasing and in-place decisions: which tensors share arena bytes, for one op order.

Tensors are gathered into storage *groups*: each member has a byte offset (delta) inside
its group, and the whole group gets one arena offset. Members keep their own lifetimes,
so a group is placed as a set of pieces: after an in-place depthwise, the output only
holds its own bytes, not max(in, out) for the rest of its life. Two members of one group
may share bytes while both live only as one of the intended relations below; every
merge checks all other pairs (a piece conflicts with another when their lifetimes and
byte ranges intersect). Which op may take which placement is asked of
ir/program_check (in_place_inputs, overlap_inputs, depthwise_shift_allowed,
concat_slices), the rules the verifier holds every plan to. Rules, applied op by op in
the graph's order:

- A VIEW op (RESHAPE, SQUEEZE; ir/ops Trait.VIEW): the output is the input's bytes
  (same delta); an Alias step.
- CONCATENATION along an axis whose outer dimensions are all 1: each input's slice is a
  contiguous byte range of the output, so every input is written there directly by its
  producer (its group moves into the output's group). All inputs must qualify (distinct
  groups, quantization equal to the output's, no conflict); then the concat is an Alias
  step. Otherwise it copies as usual.
- InPlace: an ELEMENTWISE op (ir/ops Trait.ELEMENTWISE: ADD, MUL, RELU, RELU6,
  LOGISTIC, HARD_SWISH, QUANTIZE) writes its output over a same-shape, same-item-size
  input (so QUANTIZE only int8 -> int8) that is not read after this step and is no graph
  output; DEPTHWISE_CONV_2D with depth multiplier 1 likewise over its input (its output
  may be larger: the extra bytes must be free; the kernel works channel by channel
  through a scratch plane). The depthwise output may
  also start a whole number of pixels after or before its input (InPlace.shift, a
  multiple of the channel count; batch 1): channel c still only lands on bytes of
  channel c, already saved in the plane. The planner asks for shifts where they undo
  the drift of a chain of overlapping convolutions (plan.py).
- Overlap: an ungrouped int8 CONV_2D, or a depthwise conv
  with depth multiplier > 1, whose input dies there writes its output overlapping the
  input, shifted so that output pixels [0, p + POINTWISE_CHUNK)
  never touch an input pixel that output pixels >= p still read (conv_overlap_shift).
  The kernel must produce output pixels in increasing order, at most POINTWISE_CHUNK
  pixels at a time (ir/program.py). A 1x1 conv then needs max(in, out) + CHUNK *
  min(cin, cout) bytes instead of in + out; a 3x3 one about one input row more. A
  PATCH_STAGE overlaps a dying input at its output shift (PatchStage.output_shifts).

With graph.io_buffers == "caller" the graph inputs and outputs live in the caller's
buffers (ir/program.CallerBuffer), outside the arena: a group holding a graph input or
output is *pinned* to that buffer (Storage.caller) and lifetimes.py leaves it out of the
arena. A pinned group holds only views of its tensor's bytes: an input's group its
RESHAPE/SQUEEZE views (nothing ever writes into it); an output's group the tensors that
become its bytes (the views it is reshaped from, the slices of a concatenation written in
place). So no InPlace or Overlap over or into a pinned group (nor over or into a tensor
that will become an output's bytes, `_output_bytes`), no concatenation in place of a
pinned slice, and no group pinned twice; where a view would join two pinned groups (an
input reshaped into an output) it copies instead (a Fresh step).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mcuc.ir import Graph, MCUCError, Op, Quantization, Tensor
from mcuc.ir.ops import Trait, op_def
from mcuc.ir.ops.kinds import CONCATENATION, DEPTHWISE_CONV_2D, PATCH_STAGE
from mcuc.ir.program import ALIAS, FRESH, POINTWISE_OVERLAP_PIXELS, InPlace, Overlap, StepPlacement
from mcuc.ir.program_check import (concat_slices, depthwise_shift_allowed, in_place_inputs, is_overlappable_conv,
                                   overlap_inputs)

from .intervals import tensor_intervals

# Output pixels a pointwise kernel may write before it has read all their input pixels
# (the Cortex-M 1x1 GEMM computes two pixel rows at a time; ir/program.py states it).
POINTWISE_CHUNK = POINTWISE_OVERLAP_PIXELS


@dataclass(frozen=True, eq=False)
class Storage:
    """Where each activation lives, for one op order (graph.ops as given).

    home[t] = (root, byte offset of t inside the root's group); size[root] = the group's
    extent in bytes. placements[i]: how op i's output sits against its inputs (InPlace,
    Overlap or Alias; an op missing here is Fresh).
    """

    home: dict[Tensor, tuple[Tensor, int]]
    size: dict[Tensor, int]
    placements: dict[int, StepPlacement] = field(default_factory=dict)
    # root -> (role, index, graph edge tensor) of a group living in a caller buffer
    caller: dict[Tensor, tuple[str, int, Tensor]] = field(default_factory=dict)

    def root(self, tensor: Tensor) -> Tensor:
        return self.home[tensor][0]

    def placement(self, index: int) -> StepPlacement:
        return self.placements.get(index, FRESH)

    def members(self) -> dict[Tensor, list[Tensor]]:
        """root -> the tensors living in its group (root first)."""
        groups: dict[Tensor, list[Tensor]] = {}
        for t, (root, _) in self.home.items():
            groups.setdefault(root, []).append(t)
        for root, ts in groups.items():
            ts.sort(key=lambda t: t is not root)
        return groups


class _Groups:
    """Tensors gathered into groups with byte deltas."""

    def __init__(self, tensors, spans: dict[Tensor, tuple[int, int]]):
        self.spans = spans
        self.home: dict[Tensor, tuple[Tensor, int]] = {t: (t, 0) for t in tensors}
        self.members: dict[Tensor, list[Tensor]] = {t: [t] for t in tensors}
        # Tensors holding the same bytes as another (RESHAPE/SQUEEZE outputs) share a value id.
        self.value: dict[Tensor, Tensor] = {t: t for t in tensors}

    def root(self, t: Tensor) -> Tensor:
        return self.home[t][0]

    def delta(self, t: Tensor) -> int:
        return self.home[t][1]

    def conflicts(self, src: Tensor, dst: Tensor, shift: int, allowed) -> bool:
        """Whether moving group `src` into `dst` at `shift` makes two pieces share bytes
        while both live, other than pairs (a, b) with allowed(a, b) (a from src)."""
        for a in self.members[src]:
            a0 = self.delta(a) + shift
            a1 = a0 + a.nbytes
            fa, la = self.spans[a]
            for b in self.members[dst]:
                fb, lb = self.spans[b]
                if fa > lb or fb > la:
                    continue
                b0 = self.delta(b)
                if a0 < b0 + b.nbytes and b0 < a1 and a.nbytes and b.nbytes and not allowed(a, b):
                    return True
        return False

    def merge(self, src: Tensor, dst: Tensor, shift: int) -> None:
        """Move group `src` into `dst`, `src`'s delta 0 landing at `shift` (may be < 0)."""
        assert src is not dst
        for m in self.members.pop(src):
            self.home[m] = (dst, self.delta(m) + shift)
            self.members[dst].append(m)
        low = min(self.delta(m) for m in self.members[dst])
        if low < 0:
            for m in self.members[dst]:
                self.home[m] = (dst, self.delta(m) - low)

    def size(self, root: Tensor) -> int:
        return max(self.delta(m) + m.nbytes for m in self.members[root])


def same_quantization(a: Quantization | None, b: Quantization | None) -> bool:
    if a is None or b is None:
        return a is b
    return (a.axis == b.axis and np.array_equal(a.scale, b.scale)
            and np.array_equal(a.zero_point, b.zero_point))


def in_place_candidates(op: Op) -> list[int]:
    """Input indices op could write its output 0 over, in place or overlapping (before
    checking lifetimes)."""
    return in_place_inputs(op) + overlap_inputs(op)


def lowest_future_read(op: Op) -> np.ndarray:
    """For each output pixel p (flattened N*OH*OW), the lowest input pixel that output
    pixels >= p read (the input pixel count where they read nothing but padding)."""
    x, w, y = op.inputs[0], op.inputs[1], op.outputs[0]
    a = op.attrs
    n, h, wd, _ = x.shape
    _, oh, ow, _ = y.shape

    def first_valid(out_size: int, stride: int, pad: int, kernel: int, dilation: int, size: int) -> np.ndarray:
        start = np.arange(out_size) * stride - pad
        k = np.where(start < 0, -(start // dilation), 0)  # first tap at or past index 0
        pos = start + k * dilation
        return np.where((k < kernel) & (pos < size), pos, -1)

    rows = first_valid(oh, a.stride[0], a.padding.top, w.shape[1], a.dilation[0], h)
    cols = first_valid(ow, a.stride[1], a.padding.left, w.shape[2], a.dilation[1], wd)
    batch = np.arange(n)[:, None, None] * (h * wd)
    lowest = batch + rows[None, :, None] * wd + cols[None, None, :]
    none = (rows[None, :, None] < 0) | (cols[None, None, :] < 0)
    lowest = np.where(none, n * h * wd, lowest).reshape(-1).astype(np.int64)
    return np.minimum.accumulate(lowest[::-1])[::-1]


def conv_overlap_shift(op: Op) -> int:
    """Input offset minus output offset of an overlapping CONV_2D: the smallest shift at
    which output pixels [0, p + CHUNK) end before the lowest input pixel that pixels >= p
    still read, for every p."""
    cin, cout = op.inputs[0].shape[3], op.outputs[0].shape[3]
    future = lowest_future_read(op)
    p = np.arange(future.size, dtype=np.int64)
    written = np.minimum(p + POINTWISE_CHUNK, future.size) * cout
    return int(np.max(written - future * cin))


def plan_storage(graph: Graph, *, in_place: bool = True, alias: bool = True,
                 pointwise: frozenset[int] | None = frozenset(),
                 depthwise_shifts: dict[int, int] | None = None) -> Storage:
    """Storage groups for graph.ops in their given order (see the module docstring).

    `pointwise`: the op indices allowed to run as overlapping convolutions (None: all
    eligible ones). Each one ties its input and output into one group with a
    shift, so chains of them drift and fragment the arena: the planner enables them only
    where they lower the peak.
    `depthwise_shifts`: op index -> InPlace.shift wished for an in-place depthwise
    conv (a multiple of its channel count); where it does not fit, shift 0 is tried."""
    spans = tensor_intervals(graph)
    groups = _Groups(graph.activations, spans)
    outputs = set(graph.outputs)
    placements: dict[int, StepPlacement] = {}
    pins = _caller_pins(graph)
    kept = _output_bytes(graph) if pins else set()

    def pinned(t: Tensor) -> set:
        return {pins[m] for m in groups.members[groups.root(t)] if m in pins}

    for i, op in enumerate(graph.ops):
        if alias and op_def(op.kind).has(Trait.VIEW) and op.inputs and not op.inputs[0].is_constant:
            x, y = op.inputs[0], op.outputs[0]
            if x.nbytes == y.nbytes and len(pinned(x) | pinned(y)) <= 1:
                groups.value[y] = groups.value[x]
                groups.merge(groups.root(y), groups.root(x), groups.delta(x))
                placements[i] = ALIAS
            continue
        if alias and op.kind == CONCATENATION and not any(pinned(t) for t in op.inputs if t is not None) \
                and _alias_concat(op, groups):
            placements[i] = ALIAS
            continue
        if pins and (pinned(op.outputs[0]) or op.outputs[0] in kept):
            continue  # a caller's output buffer holds its own bytes only
        if in_place:
            allow_pointwise = pointwise is None or i in pointwise
            shifted = is_overlappable_conv(op) or op.kind == PATCH_STAGE
            wished = (depthwise_shifts or {}).get(i, 0)
            found = None
            if not (is_overlappable_conv(op) and not allow_pointwise):
                if wished and depthwise_shift_allowed(op, wished) and not shifted:
                    found = _in_place_input(op, i, groups, outputs, wished)
                if found is None:
                    found = _in_place_input(op, i, groups, outputs)
            if found is not None and pins and (pinned(op.inputs[found[0]]) or op.inputs[found[0]] in kept):
                found = None  # a caller's buffer is never written over
            if found is not None:
                k, y_at = found
                x, y = op.inputs[k], op.outputs[0]
                groups.merge(groups.root(y), groups.root(x), y_at - groups.delta(y))
                placements[i] = Overlap(k) if shifted else InPlace(k, groups.delta(y) - groups.delta(x))

    roots = list(groups.members)
    caller = {}
    for r in roots:
        found = {pins[m] for m in groups.members[r] if m in pins}
        if len(found) > 1:  # the rules above keep two edges apart; a bug otherwise
            raise MCUCError(f"graph {graph.name!r}: the plan puts {len(found)} graph inputs/outputs in one buffer")
        if found:
            role, index = next(iter(found))
            caller[r] = (role, index, (graph.inputs if role == "input" else graph.outputs)[index])
    return Storage(home=groups.home, size={r: groups.size(r) for r in roots}, placements=placements,
                   caller=caller)


def _caller_pins(graph: Graph) -> dict[Tensor, tuple[str, int]]:
    """Graph edge tensor -> ("input" | "output", index) when the graph's inputs and
    outputs live in caller buffers (graph.io_buffers == "caller"), else empty."""
    if graph.io_buffers == "arena":
        return {}
    if graph.io_buffers != "caller":
        raise MCUCError(f"unknown io_buffers {graph.io_buffers!r}; choose arena or caller")
    pins: dict[Tensor, tuple[str, int]] = {t: ("input", i) for i, t in enumerate(graph.inputs)}
    for j, t in enumerate(graph.outputs):
        if t.is_constant:
            continue
        if t in pins:
            role, index = pins[t]
            raise MCUCError(f"tensor {t.name!r} is graph output {j} and also graph {role} {index}: with "
                            f"--io-buffers caller it would live in two buffers; compile with --io-buffers arena")
        pins[t] = ("output", j)
    return pins


def _output_bytes(graph: Graph) -> set[Tensor]:
    """Tensors whose bytes become a graph output's when viewed or concatenated in place:
    the inputs of VIEW ops and of contiguous concatenations that lead to an output."""
    kept = set(t for t in graph.outputs if not t.is_constant)
    for op in reversed(graph.ops):
        if not op.outputs or op.outputs[0] not in kept:
            continue
        if op_def(op.kind).has(Trait.VIEW) and op.inputs and not op.inputs[0].is_constant:
            kept.add(op.inputs[0])
        elif op.kind == CONCATENATION and concat_slices(op) is not None:
            kept.update(t for t in op.inputs if t is not None and not t.is_constant)
    return kept


def _in_place_input(op: Op, i: int, groups: _Groups, outputs: set[Tensor],
                    depthwise_shift: int = 0) -> tuple[int, int] | None:
    """(input index, delta of the output in that input's group) for op i, or None.
    `depthwise_shift`: an in-place depthwise output's offset minus its input's."""
    y = op.outputs[0] if op.outputs else None
    for k in in_place_candidates(op):
        x = op.inputs[k]
        rx, ry = groups.root(x), groups.root(y)
        if rx is ry or x in outputs or groups.spans[x][1] != i:
            continue
        value, at = groups.value[x], groups.delta(x)
        y_at = at - conv_overlap_shift(op) if is_overlappable_conv(op) else at
        if op.kind == PATCH_STAGE:
            y_at = at - op.attrs.output_shifts[k]
        if op.kind == DEPTHWISE_CONV_2D and not is_overlappable_conv(op):
            if not depthwise_shift_allowed(op, depthwise_shift):
                continue
            y_at = at + depthwise_shift

        def allowed(a: Tensor, b: Tensor) -> bool:
            # y may cover x and its aliases (same bytes), all read for the last time here.
            return (a is y and groups.value[b] is value and groups.delta(b) == at
                    and groups.spans[b][1] == i and b not in outputs)

        if not groups.conflicts(ry, rx, y_at - groups.delta(y), allowed):
            return k, y_at
    return None


def _alias_concat(op: Op, groups: _Groups) -> bool:
    """Move every input's group into the output's slice, if all of them fit; else none."""
    slices = concat_slices(op)
    if slices is None:
        return False
    y = op.outputs[0]
    ins = list(op.inputs)
    if any(t is None or t.is_constant or t.dtype != y.dtype or not same_quantization(t.quant, y.quant)
           for t in ins):
        return False
    if len({groups.root(t) for t in ins} | {groups.root(y)}) != len(ins) + 1:
        return False
    # Trial merges on a copy of the bookkeeping, committed only if every input fits.
    saved_home = dict(groups.home)
    saved_members = {r: list(ms) for r, ms in groups.members.items()}
    for t, at in zip(ins, slices):
        rt, ry = groups.root(t), groups.root(y)
        value = groups.value[t]
        slice_at = groups.delta(y) + at

        def allowed(a: Tensor, b: Tensor, value=value, slice_at=slice_at, t=t) -> bool:
            # The concat output covers the slice holding t (and t's aliases).
            return (b is y and groups.value[a] is value
                    and groups.delta(a) + shift == slice_at and a.nbytes == t.nbytes)

        shift = slice_at - groups.delta(t)
        if groups.conflicts(rt, ry, shift, allowed):
            groups.home, groups.members = saved_home, saved_members
            return False
        groups.merge(rt, ry, shift)
    return True
