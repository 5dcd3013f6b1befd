"""Arena allocation on random lifetimes: no two pieces of different buffers share bytes
while both live, the arena holds every buffer, the live-set bound is a lower bound, and
the exact search is never worse than the heuristics (and optimal on tiny instances)."""
from __future__ import annotations

import itertools

from hypothesis import given, settings, strategies as st

from mcuc.passes.allocate import allocate, exact_place, place
from mcuc.passes.lifetimes import Lifetime, Piece, live_bound


@st.composite
def lifetimes(draw, max_items: int = 8, steps: int = 8) -> list[Lifetime]:
    items = []
    for n in range(draw(st.integers(1, max_items))):
        pieces = []
        delta = 0
        for _ in range(draw(st.integers(1, 3))):  # a chain of pieces, like an in-place group
            first = draw(st.integers(0, steps - 1))
            last = draw(st.integers(first, steps - 1))
            size = draw(st.integers(1, 64))
            pieces.append(Piece(delta, size, first, last))
            delta = draw(st.integers(0, delta + size))
        extent = max(p.delta + p.size for p in pieces)
        align = draw(st.sampled_from([1, 4, 8]))
        items.append(Lifetime(f"b{n}", extent, min(p.first for p in pieces), max(p.last for p in pieces),
                              tuple(pieces), align))
    return items


def assert_valid(items: list[Lifetime], offsets: dict[str, int], arena: int) -> None:
    for item in items:
        at = offsets[item.name]
        assert at >= 0 and at % item.align == 0 and at + item.size <= arena
    for a, b in itertools.combinations(items, 2):
        for p in a.pieces:
            for q in b.pieces:
                if p.first <= q.last and q.first <= p.last:
                    p0, q0 = offsets[a.name] + p.delta, offsets[b.name] + q.delta
                    assert p0 + p.size <= q0 or q0 + q.size <= p0, (a.name, b.name, p, q)


@settings(deadline=None, max_examples=60)
@given(items=lifetimes(), optimize=st.booleans())
def test_allocation_never_overlaps_live_pieces(items, optimize) -> None:
    placement = allocate(items, 8, optimize=optimize)
    assert_valid(items, placement.offsets, placement.arena_bytes)
    assert placement.arena_bytes >= live_bound(items, 8)


@settings(deadline=None, max_examples=20)
@given(items=lifetimes(max_items=5, steps=5))
def test_exact_search_is_valid_and_no_worse(items) -> None:
    greedy = place(items)
    exact = exact_place(items, live_bound(items, 5), greedy.arena_bytes + 1)
    assert exact is not None
    assert_valid(items, exact.offsets, exact.arena_bytes)
    assert exact.arena_bytes <= greedy.arena_bytes


@st.composite
def single_pieces(draw) -> list[Lifetime]:
    items = []
    for n in range(draw(st.integers(1, 3))):
        first = draw(st.integers(0, 3))
        last = draw(st.integers(first, 3))
        size = draw(st.integers(1, 5))
        items.append(Lifetime(f"b{n}", size, first, last, (Piece(0, size, first, last),),
                              draw(st.sampled_from([1, 2]))))
    return items


@settings(deadline=None, max_examples=40)
@given(items=single_pieces())
def test_exact_search_is_optimal_against_brute_force(items) -> None:
    limit = sum(item.size for item in items) + 2
    best = None
    for offsets in itertools.product(range(limit), repeat=len(items)):
        named = {item.name: at for item, at in zip(items, offsets)}
        arena = max(at + item.size for item, at in zip(items, offsets))
        if best is not None and arena >= best:
            continue
        try:
            assert_valid(items, named, arena)
        except AssertionError:
            continue
        best = arena
    exact = exact_place(items, 0, limit + 1)
    assert exact is not None and exact.arena_bytes == best
