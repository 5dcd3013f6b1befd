"""Optional scratch (ScratchRequest.optional): the planner grants it at the lowest offset
free during its step inside the arena it planned without it, or not at all, so the arena,
the live-set bound and every other buffer stay where they were."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from mcuc.ir.program import ScratchRequest
from mcuc.ir.program_check import check_program
from mcuc.passes import plan

from tests.passes.test_memory_plan import assert_no_live_overlap
from tests.support.memory_graphs import random_graph
from tests.support.memory_scratch import mimic_cortexm_scratch


def _lowest_free(program, step: int, size: int, align: int) -> int | None:
    """The lowest `align`-multiple offset where `size` bytes are free during `step`."""
    taken = sorted((b.offset, b.end) for b in program.buffers if b.first <= step <= b.last and b.size)
    at = 0
    while at + size <= program.arena_bytes:
        clash = next(((lo, hi) for lo, hi in taken if lo < at + size and at < hi), None)
        if clash is None:
            return at
        at = -(-clash[1] // align) * align
    return None


@settings(deadline=None, max_examples=40)
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(1, 6000), pick=st.integers(0, 10**6),
       align=st.sampled_from([4, 16]))
def test_optional_scratch_is_granted_only_in_free_bytes(seed, size, pick, align):
    graph = random_graph(seed)
    wisher = graph.ops[pick % len(graph.ops)]

    def scratch(op, in_place):
        wish = [ScratchRequest("wish", size, align, optional=True)] if op is wisher else []
        return [*mimic_cortexm_scratch(op, in_place), *wish]

    without = plan(graph, mimic_cortexm_scratch, optimize=False)
    program = plan(graph, scratch, optimize=False)
    step = graph.ops.index(wisher)
    assert (program.arena_bytes, program.live_bound_bytes) == (without.arena_bytes, without.live_bound_bytes)
    assert program.offsets == without.offsets
    wishes = [b for b in program.steps[step].scratch if b.name.endswith("_wish")]
    others = [b for b in program.buffers if not b.name.endswith("_wish")]
    assert others == list(without.buffers)
    expected = _lowest_free(without, step, size, max(align, 4))
    assert [b.offset for b in wishes] == ([] if expected is None else [expected])
    assert_no_live_overlap(program)
    check_program(program)


def test_an_optional_request_elsewhere_is_ignored_by_the_memory_order():
    # order_for_memory and the live-set bound count required scratch only: a huge
    # optional request changes neither the order nor the arena
    graph = random_graph(7)
    huge = lambda op, in_place: [*mimic_cortexm_scratch(op, in_place),  # noqa: E731
                                 ScratchRequest("wish", 10**7, 4, optional=True)]
    with_wish, without = plan(graph, huge), plan(graph, mimic_cortexm_scratch)
    assert [op.name for op in with_wish.graph.ops] == [op.name for op in without.graph.ops]
    assert with_wish.arena_bytes == without.arena_bytes
    assert not any(b.name.endswith("_wish") for b in with_wish.buffers)
