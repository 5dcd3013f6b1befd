"""The memory plan: no two live buffers overlap, and running the planned program on one
arena gives the reference interpreter's bytes (and a corrupted plan does not)."""
from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import given, settings, strategies as st

from mcuc.ir.interpreter import run
from mcuc.ir.program import Alias, InPlace, Program
from mcuc.ir.program_check import PlanError
from mcuc.ir.program_interpreter import run_program
from mcuc.passes import fold_pad, plan

from tests.support.memory_graphs import random_graph, random_inputs
from tests.support.memory_scratch import mimic_cortexm_scratch

SETTINGS = settings(deadline=None, max_examples=30)


def assert_no_live_overlap(program: Program) -> None:
    bufs = program.buffers
    group_base: dict[str, int] = {}
    for b in bufs:
        group_base[b.group] = min(group_base.get(b.group, b.offset), b.offset)
    for b in bufs:  # a group is placed at an aligned offset; members may sit at slice offsets
        assert group_base[b.group] % b.align == 0, b
    for i, a in enumerate(bufs):
        assert a.end <= program.arena_bytes, a
        for b in bufs[i + 1:]:
            if a.group == b.group:
                continue  # one storage group: in-place pairs and aliases (program_check checks them)
            live_together = a.first <= b.last and b.first <= a.last
            share_bytes = a.offset < b.end and b.offset < a.end and a.size and b.size
            assert not (live_together and share_bytes), (a, b)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), optimize=st.booleans())
def test_planned_program_matches_reference(seed: int, optimize: bool) -> None:
    graph = random_graph(seed)
    if seed % 2:  # PADs folded into convolutions, kernels asking for scratch
        graph = fold_pad(graph)
    program = plan(graph, mimic_cortexm_scratch if seed % 3 else None, optimize=optimize)
    assert_no_live_overlap(program)
    assert program.live_bound_bytes <= program.arena_bytes
    assert set(program.offsets) == set(graph.activations)
    inputs = random_inputs(graph, seed)
    expected = run(graph, inputs)
    got = run_program(program, inputs, seed=seed)
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(g, e)


def corrupt(program: Program) -> Program | None:
    """Move one tensor buffer onto another buffer that is live at the same time."""
    tensors = [b for b in program.buffers if b.kind == "tensor" and b.size]
    for victim in tensors:
        for target in tensors:
            if target.group == victim.group or not (victim.first <= target.last and target.first <= victim.last):
                continue
            if victim.offset == target.offset:
                continue
            moved = dataclasses.replace(victim, offset=target.offset)
            offsets = {t: (target.offset if t.name == victim.name else o)
                       for t, o in program.offsets.items()}
            buffers = tuple(moved if b is victim else b for b in program.buffers)
            return dataclasses.replace(program, offsets=offsets, buffers=buffers,
                                       arena_bytes=max(program.arena_bytes, moved.end))
    return None


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1))
def test_corrupted_plan_is_detected(seed: int) -> None:
    graph = random_graph(seed)
    program = plan(graph)
    bad = corrupt(program)
    if bad is None:
        return  # no two tensors live together (a single op): nothing to corrupt
    inputs = random_inputs(graph, seed)
    expected = run(graph, inputs)
    try:
        got = run_program(bad, inputs, seed=seed)
    except PlanError:
        return
    assert any(not np.array_equal(e, g) for e, g in zip(expected, got))


def test_edge_graphs_plan_and_run() -> None:
    """No ops at all; an input that is also an output and must survive an op that could
    otherwise run in place over it."""
    from mcuc.ir import Graph
    from tests.support.memory_graphs import GraphBuilder

    b = GraphBuilder(np.random.default_rng(0))
    x = b.activation((1, 3, 3, 2), "in")
    data = np.arange(18, dtype=np.int8).reshape(1, 3, 3, 2)
    empty = plan(Graph((), (x,), (x,)))
    assert empty.arena_bytes == x.nbytes
    np.testing.assert_array_equal(run_program(empty, [data])[0], data)
    y = b.add_op("RELU", [x], None)
    graph = Graph(tuple(b.ops), (x,), (y, x))
    program = plan(graph)
    assert not isinstance(program.steps[0].placement, InPlace)
    for e, g in zip(run(graph, [data]), run_program(program, [data])):
        np.testing.assert_array_equal(g, e)


def _check_runs(graph, program) -> None:
    inputs = random_inputs(graph, 3)
    for e, g in zip(run(graph, inputs), run_program(program, inputs)):
        np.testing.assert_array_equal(g, e)


def test_concat_producers_write_into_their_slices() -> None:
    from mcuc.ir.ops.concatenation import ConcatAttrs
    from tests.support.memory_graphs import GraphBuilder

    b = GraphBuilder(np.random.default_rng(4))
    x = b.activation((1, 4, 4, 3), "in")
    q = b.quant()
    parts = [b.conv(x, 3, 3, pad=1, out_quant=q) for _ in range(3)]
    y = b.add_op("CONCATENATION", parts, ConcatAttrs(1), q)  # along H: contiguous slices
    graph = b.graph([x], [y])
    program = plan(graph, optimize=False)
    assert isinstance(program.steps[-1].placement, Alias)
    for k, part in enumerate(parts):
        assert program.offsets[part] == program.offsets[y] + k * part.nbytes
    _check_runs(graph, program)
    # Along C the slices interleave: the concat copies.
    b.ops.pop()
    y = b.add_op("CONCATENATION", parts, ConcatAttrs(3), q)
    graph = b.graph([x], [y])
    program = plan(graph, optimize=False)
    assert not isinstance(program.steps[-1].placement, Alias)
    _check_runs(graph, program)


def test_depthwise_in_place_only_over_a_dying_input() -> None:
    from mcuc.ir.ops.add import AddAttrs
    from tests.support.memory_graphs import GraphBuilder

    b = GraphBuilder(np.random.default_rng(5))
    x = b.activation((1, 6, 6, 4), "in")
    e = b.conv(x, 8)
    d = b.depthwise(e, 3, 2, 1)  # stride 2: the output is smaller than the input
    graph = b.graph([x], [d])
    program = plan(graph, mimic_cortexm_scratch, optimize=False)
    step = program.steps[1]
    assert isinstance(step.placement, InPlace) and program.offsets[d] == program.offsets[e]
    assert [s.size for s in step.scratch] == [3 * 3]  # the mimicked channel plane
    _check_runs(graph, program)
    # A residual: the depthwise input is read again by the ADD, so it must survive.
    d2 = b.depthwise(e, 3, 1, 1)
    s = b.add_op("ADD", [d2, e], AddAttrs())
    b.ops.remove(next(op for op in b.ops if op.outputs[0] is d))
    graph = b.graph([x], [s])
    program = plan(graph, mimic_cortexm_scratch, optimize=False)
    dw_step = next(st for st in program.steps if st.op.outputs[0] is d2)
    assert not isinstance(dw_step.placement, InPlace)
    assert isinstance(program.steps[-1].placement, InPlace)  # the ADD writes over an input dying there
    _check_runs(graph, program)


def test_memory_svg_draws_every_buffer_and_the_peak() -> None:
    import xml.etree.ElementTree as ET

    from mcuc.passes.report import live_bytes, memory_svg

    graph = random_graph(11)
    program = plan(graph, mimic_cortexm_scratch)
    root = ET.fromstring(memory_svg(program))
    rects = [r for r in root.iter("{http://www.w3.org/2000/svg}rect")]
    titles = [r.find("{http://www.w3.org/2000/svg}title") for r in rects]
    drawn = {t.text.split(" (")[0] for t in titles if t is not None and " B at " in t.text}
    assert drawn == {b.name for b in program.buffers if b.size}
    peak = max(live_bytes(program))
    assert any(t is not None and t.text.startswith("peak:") and f"{peak} B live" in t.text for t in titles)
    assert peak == program.live_bound_bytes
