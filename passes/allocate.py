"""Arena allocation: give every buffer an offset so that no two pieces of different
buffers share bytes while both live.

`place(items, priority, best_fit)` is the fast heuristic: buffers are taken in priority
order (by default largest first); each goes to the lowest offset (first fit) or to the
tightest gap (best fit) left free by the already placed buffers whose pieces overlap its
own in time. `allocate` tries several priorities and both fits and keeps the smallest
arena, stopping as soon as one meets the live-set lower bound; for a few buffers it then
searches exactly (`exact_place`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from .lifetimes import Lifetime, live_bound


def align_up(x: int, a: int) -> int:
    return (x + a - 1) // a * a


@dataclass(frozen=True)
class Placement:
    offsets: dict[str, int]
    arena_bytes: int
    method: str


def forbidden_intervals(item: Lifetime, placed: Sequence[tuple[Lifetime, int]]) -> list[tuple[int, int]]:
    """Open intervals (low, high) of offsets where `item` would collide with a placed buffer."""
    result = []
    for other, at in placed:
        if not item.overlaps(other):
            continue
        for p in item.pieces:
            for q in other.pieces:
                if p.first <= q.last and q.first <= p.last and p.size and q.size:
                    result.append((at + q.delta - p.delta - p.size, at + q.delta + q.size - p.delta))
    return result


def choose_offset(item: Lifetime, forbidden: list[tuple[int, int]], arena: int, best_fit: bool) -> int:
    """The offset for `item` among the gaps the forbidden intervals leave."""
    forbidden.sort()
    gaps: list[tuple[int, int | None]] = []  # closed [start, end] of feasible offsets
    cursor = 0
    for low, high in forbidden:
        if low >= cursor:  # o may equal low: the item then ends exactly where the other starts
            gaps.append((cursor, low))
        cursor = max(cursor, high)
    gaps.append((cursor, None))
    candidates = []
    for start, end in gaps:
        at = align_up(start, item.align)
        if end is None or at <= end:
            candidates.append((at, end))
    if not best_fit:
        return candidates[0][0]
    inside = [(end - at, at) for at, end in candidates if end is not None and at + item.size <= arena]
    if inside:
        return min(inside)[1]
    return candidates[0][0]


def place(items: Sequence[Lifetime], priority: Callable[[Lifetime], tuple] | None = None,
          best_fit: bool = True) -> Placement:
    """Greedy placement in `priority` order (default: largest, then longest-lived first)."""
    key = priority or PRIORITIES["size"]
    order = sorted(range(len(items)), key=lambda i: key(items[i]))
    offsets: dict[str, int] = {}
    placed: list[tuple[Lifetime, int]] = []
    arena = 0
    for i in order:
        item = items[i]
        at = choose_offset(item, forbidden_intervals(item, placed), arena, best_fit)
        offsets[item.name] = at
        placed.append((item, at))
        arena = max(arena, at + item.size)
    return Placement(offsets, arena, f"greedy-{'best' if best_fit else 'first'}-fit")


PRIORITIES: dict[str, Callable[[Lifetime], tuple]] = {
    "size": lambda l: (-l.size, -(l.last - l.first), l.first, l.name),
    "area": lambda l: (-l.size * (l.last - l.first + 1), -l.size, l.first, l.name),
    "duration": lambda l: (-(l.last - l.first), -l.size, l.first, l.name),
    "start": lambda l: (l.first, -l.size, l.name),
}


EXACT_MAX_BUFFERS = 8
EXACT_MAX_NODES = 5_000


def exact_place(items: Sequence[Lifetime], lower: int, upper: int,
                max_nodes: int = EXACT_MAX_NODES) -> Placement | None:
    """The smallest arena below `upper` (None if there is none or the search ran out of
    nodes), by branch and bound.

    Exact for single-piece buffers: every placement can be pushed down until each buffer
    rests at 0 or on a buffer below it; listing buffers by offset, each rests on an
    earlier one. So the search picks the next buffer among all unplaced ones, puts it at
    0 or on the top edge of a conflicting placed piece, never below the previous buffer's
    offset (which fixes the listing order), and prunes any branch that already reaches
    the best arena. With multi-piece groups a buffer may rest on a piece of a buffer
    placed higher, so the offset order is not imposed and the search, still sound, may
    miss interlocked placements.
    """
    n = len(items)
    best: list = [upper, None]
    nodes = [0]
    offsets: list[int] = [0] * n
    placed: list[int] = []
    ordered = all(len(item.pieces) == 1 for item in items)

    def search(floor: int, arena: int, left: frozenset[int]) -> bool:
        nodes[0] += 1
        if nodes[0] > max_nodes:
            return True
        if not left:
            best[0], best[1] = arena, {items[j].name: offsets[j] for j in range(n)}
            return best[0] <= lower
        for i in sorted(left, key=lambda j: -items[j].size):
            forbidden = forbidden_intervals(items[i], [(items[j], offsets[j]) for j in placed])
            spots = {0} | {high for _, high in forbidden}
            for at in sorted(a for a in {align_up(x, items[i].align) for x in spots} if a >= floor):
                if max(arena, at + items[i].size) >= best[0]:
                    break  # spots are sorted: every later one is as bad
                if any(low < at < high for low, high in forbidden):
                    continue
                offsets[i] = at
                placed.append(i)
                stop = search(at if ordered else 0, max(arena, at + items[i].size), left - {i})
                placed.pop()
                if stop:
                    return True
        return False

    search(0, 0, frozenset(range(n)))
    if best[1] is None or nodes[0] > max_nodes and best[0] >= upper:
        return None
    return Placement(best[1], best[0], "exact")


def allocate(items: Sequence[Lifetime], steps: int, optimize: bool = True) -> Placement:
    """The smallest arena among the heuristics (only greedy-by-size best-fit unless
    `optimize`). Stops early once a placement meets the live-set bound; tries the exact
    search for at most EXACT_MAX_BUFFERS buffers otherwise."""
    first = place(items)
    if not optimize:
        return first
    bound = live_bound(items, steps)
    best = Placement(first.offsets, first.arena_bytes, first.method + "/size")
    for name, key in PRIORITIES.items():
        for fit in (True, False):
            if best.arena_bytes <= bound:
                return best
            p = place(items, key, fit)
            if p.arena_bytes < best.arena_bytes:
                best = Placement(p.offsets, p.arena_bytes, f"{p.method}/{name}")
    if best.arena_bytes > bound and len(items) <= EXACT_MAX_BUFFERS:
        exact = exact_place(items, bound, best.arena_bytes)
        if exact is not None and exact.arena_bytes < best.arena_bytes:
            best = exact
    return best
