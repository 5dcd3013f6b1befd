"""order_for_memory: the topological order of a branching graph (residual blocks,
detection heads, concatenations) that minimizes peak live bytes.

Dynamic programming over the graph's down-sets (the sets of ops already run): the bytes
live after running a down-set depend on the set alone, so the best peak to reach each
set is exact. States are expanded level by level (one more op each time); when a level
holds more than `beam` states only the `beam` best (lowest peak, then fewest live bytes)
are kept, which turns the exact search into a beam heuristic for wide graphs.

The cost model is the planner's: a VIEW op's output (RESHAPE, SQUEEZE) is its input's bytes;
an op that can run in place over an input dying there (aliasing.in_place_candidates)
needs only the bytes its output adds beyond that input; scratch as the backend asks.
"""
from __future__ import annotations

from typing import Callable, Sequence

from mcuc.ir import Graph, Op, Tensor
from mcuc.ir.ops import Trait, op_def
from mcuc.ir.program import ScratchRequest

from mcuc.ir.program_check import is_overlappable_conv

from .aliasing import conv_overlap_shift, in_place_candidates

ScratchFn = Callable[[Op, bool], Sequence[ScratchRequest]]

WORK_BUDGET = 2_000_000


def order_for_memory(graph: Graph, scratch: ScratchFn | None = None, beam: int = 4000) -> Graph:
    """The graph with its ops in the order of least peak memory (ties: the given order)."""
    order = best_order(graph, scratch, beam)
    return graph.with_(ops=tuple(graph.ops[i] for i in order))


class CostModel:
    """Bytes live while and after each op runs, for a set of ops already run."""

    def __init__(self, graph: Graph, scratch: ScratchFn | None = None):
        ops = self.ops = graph.ops
        n = len(ops)
        producer = {t: i for i, op in enumerate(ops) for t in op.outputs}
        # A value is the bytes a tensor occupies; VIEW outputs (RESHAPE, SQUEEZE) share their input's.
        value: dict[Tensor, Tensor] = {t: t for t in graph.activations}
        for op in ops:
            x = op.inputs[0] if op.inputs else None
            if (op_def(op.kind).has(Trait.VIEW) and x is not None and not x.is_constant
                    and x.nbytes == op.outputs[0].nbytes):
                value[op.outputs[0]] = value[x]
        self.readers: dict[Tensor, int] = {}
        for i, op in enumerate(ops):
            for t in op.activation_inputs:
                self.readers[value[t]] = self.readers.get(value[t], 0) | (1 << i)
        self.pinned = {value[t] for t in graph.outputs if not t.is_constant}
        self.preds = [0] * n
        for i, op in enumerate(ops):
            for t in op.activation_inputs:
                if t in producer:
                    self.preds[i] |= 1 << producer[t]
        self.new_bytes = [sum(t.nbytes for t in op.outputs if value[t] is t) for op in ops]
        self.reads = [list(dict.fromkeys(value[t] for t in op.activation_inputs)) for op in ops]
        self.scratch_bytes = [[0, 0] for _ in ops]
        if scratch is not None:
            for i, op in enumerate(ops):
                for flag in (0, 1):
                    self.scratch_bytes[i][flag] = sum(r.size for r in scratch(op, bool(flag)) if not r.optional)
        self.in_place_inputs = [[value[op.inputs[k]] for k in in_place_candidates(op)] for op in ops]
        self._savings: dict[tuple[int, Tensor], int] = {}
        self.start_live = sum(t.nbytes for t in graph.inputs if value[t] is t)

    def saving(self, i: int, x: Tensor) -> int:
        """Bytes op i saves by running in place over x (memoized: shifts cost numpy work)."""
        key = (i, x)
        if key not in self._savings:
            self._savings[key] = self._saving(i, x)
        return self._savings[key]

    def _saving(self, i: int, x: Tensor) -> int:
        op = self.ops[i]
        if is_overlappable_conv(op):
            shift, out = conv_overlap_shift(op), op.outputs[0].nbytes
            extent = max(shift + x.nbytes, out) - min(shift, 0)
            return x.nbytes + out - extent
        return min(x.nbytes, op.outputs[0].nbytes)

    def ready(self, mask: int, i: int) -> bool:
        return not (mask >> i) & 1 and not (self.preds[i] & ~mask)

    def step(self, mask: int, live: int, i: int) -> tuple[int, int]:
        """(bytes live while op i runs, bytes live after it) from the down-set `mask`."""
        after = mask | (1 << i)
        dying = [v for v in self.reads[i] if v not in self.pinned and not (self.readers[v] & ~after)]
        save = max((self.saving(i, x) for x in self.in_place_inputs[i] if x in dying), default=0)
        during = live + self.new_bytes[i] + self.scratch_bytes[i][1 if save > 0 else 0] - max(save, 0)
        return during, live + self.new_bytes[i] - sum(v.nbytes for v in dying)

    def peak(self, order: Sequence[int]) -> int:
        """Peak bytes of running the ops in `order` (which must be topological)."""
        mask, live, peak = 0, self.start_live, self.start_live
        for i in order:
            assert self.ready(mask, i), f"op {i} runs before its inputs"
            during, live = self.step(mask, live, i)
            peak = max(peak, during)
            mask |= 1 << i
        return peak


def best_order(graph: Graph, scratch: ScratchFn | None = None, beam: int = 4000) -> list[int]:
    """Op indices in the order of least peak (exact unless a level exceeds `beam`)."""
    n = len(graph.ops)
    if n <= 1:
        return list(range(n))
    model = CostModel(graph, scratch)
    # Each state costs O(n) to expand: cap the states per level so the whole search
    # stays near WORK_BUDGET steps (mcunet_person_det never has more than 25 per level).
    beam = max(16, min(beam, WORK_BUDGET // (n * n)))
    preds = model.preds
    # state mask -> (peak, live bytes, previous mask, op)
    level: dict[int, tuple[int, int, int, int]] = {0: (model.start_live, model.start_live, -1, -1)}
    history = [level]
    for _ in range(n):
        nxt: dict[int, tuple[int, int, int, int]] = {}
        for mask, (peak, live, _, _) in level.items():
            pending = ~mask
            for i in range(n):
                if not (pending >> i) & 1 or preds[i] & pending:
                    continue
                during, live_after = model.step(mask, live, i)
                cand = (max(peak, during), live_after, mask, i)
                after = mask | (1 << i)
                old = nxt.get(after)
                if old is None or cand[:2] < old[:2]:
                    nxt[after] = cand
        if len(nxt) > beam:
            nxt = dict(sorted(nxt.items(), key=lambda kv: kv[1][:2])[:beam])
        level = nxt
        history.append(level)
    order: list[int] = []
    mask = (1 << n) - 1
    for depth in range(n, 0, -1):
        _, _, prev, op = history[depth][mask]
        order.append(op)
        mask = prev
    order.reverse()
    return order
