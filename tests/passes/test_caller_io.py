"""Graph inputs and outputs in the caller's buffers (`--io-buffers caller`, Graph.io_buffers):
the planner leaves them out of the arena, which shrinks by exactly the I/O bytes live at
its peak; the plan holds no buffer of them; the verifier refuses a plan that puts them
back, writes into an input's buffer or reuses an output's; the reference run leaves the
inputs' bytes alone and equals the graph's meaning."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mcuc.ir.errors import MCUCError
from mcuc.ir.interpreter import run
from mcuc.ir.program import CALLER_ADDRESS_ALIGN, InPlace
from mcuc.ir.program_check import RULE_CALLER, PlanError, check_program
from mcuc.ir.program_interpreter import run_program
from mcuc.model import load_model
from mcuc.passes import plan
from mcuc.passes.report import live_bytes
from mcuc.pipeline import CompileOptions, cortexm_scratch, prepare
from mcuc.samples import random_inputs
from tests.support.paths import shared_model_path
from tests.support.tflite_builder import ModelBuilder, int8_weights, int32_bias


def fc_chain(widths=(96, 128, 160), relu_last: bool = False) -> bytes:
    """x(1, w0) -> FULLY_CONNECTED -> ... -> y(1, wn) [-> RELU in place]: no op may run
    in place over another, so both modes group the same tensors and the live sets differ
    by the I/O bytes alone."""
    rng = np.random.default_rng(3)
    mb = ModelBuilder()
    x = first = mb.tensor("x", (1, widths[0]), "int8", 0.05, -3)
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        weights, scales = int8_weights(rng, (b, a), axis=0, per_channel=False)
        w = mb.tensor(f"w{i}", (b, a), "int8", scales, np.zeros(1, np.int64), data=weights)
        bias = mb.tensor(f"b{i}", (b,), "int32", np.float32(0.05 * scales[0]), 0, data=int32_bias(rng, b))
        y = mb.tensor(f"h{i}", (1, b), "int8", 0.08, 2)
        mb.op("FULLY_CONNECTED", [x, w, bias], [y])
        x = y
    if relu_last:
        y = mb.tensor("relu", (1, widths[-1]), "int8", 0.08, 2)
        mb.op("RELU", [x], [y])
        x = y
    return mb.build([first], [x])


def planned(model, io_buffers: str, scratch=None):
    graph = prepare(load_model(model).graph, CompileOptions(io_buffers=io_buffers))
    return plan(graph, scratch)


def edge_bytes_live(program, step: int) -> int:
    """Bytes of graph inputs and outputs live at `step` (inputs from step 0 to their last
    reader, outputs from their producer to the end)."""
    graph = program.graph
    total = 0
    for t in graph.inputs:
        last = max((i for i, s in enumerate(program.steps) if t in s.op.inputs), default=0)
        total += t.nbytes if step <= last else 0
    for t in graph.outputs:
        first = next(i for i, s in enumerate(program.steps) if t in s.op.outputs)
        total += t.nbytes if step >= first else 0
    return total


def test_arena_shrinks_by_the_io_bytes_live_at_the_peak():
    arena, caller = planned(fc_chain(), "arena"), planned(fc_chain(), "caller")
    # x(96) h0(128) at step 0, h0(128) y(160) at step 1: the peak holds the output
    assert arena.arena_bytes == arena.live_bound_bytes == 288
    assert caller.arena_bytes == caller.live_bound_bytes == 128 == 288 - 160
    # the same rule on every step: arena-resident live bytes = all live bytes - the edges'
    expected = [b - edge_bytes_live(arena, i) for i, b in enumerate(live_bytes(arena))]
    assert live_bytes(caller) == expected
    assert caller.live_bound_bytes == max(expected)


def test_shared_model_arena_is_the_bound_less_the_io_at_its_peak():
    path = shared_model_path("ad01_int8")
    arena, caller = planned(path, "arena"), planned(path, "caller")
    expected = [b - edge_bytes_live(arena, i) for i, b in enumerate(live_bytes(arena))]
    assert arena.arena_bytes == arena.live_bound_bytes
    # the bound counts arena buffers only; the placement may lose a few bytes to it
    assert caller.live_bound_bytes == max(expected) <= caller.arena_bytes < arena.arena_bytes
    io = {t.name for t in (*caller.graph.inputs, *caller.graph.outputs)}
    assert not [b for b in caller.buffers if b.name in io]  # no arena buffer for the edges
    assert {b.role for b in caller.caller_buffers} == {"input", "output"}


def test_caller_buffers_are_past_the_arena_and_apart():
    program = planned(shared_model_path("mcunet_person_det"), "caller", cortexm_scratch("cortex-m4"))
    buffers = sorted(program.caller_buffers, key=lambda b: b.base)
    assert [b.role for b in program.caller_buffers] == ["input", "output", "output", "output"]
    assert buffers[0].base >= program.arena_bytes
    assert all(b.base % CALLER_ADDRESS_ALIGN == 0 for b in buffers)
    assert all(a.end <= b.base for a, b in zip(buffers, buffers[1:]))
    for b in buffers:
        assert program.offsets[b.tensor] == b.base and not program.in_arena(b.tensor)


def test_no_in_place_over_or_into_a_caller_buffer():
    # arena mode runs the final RELU in place over the last FC's output; caller mode must
    # not (the output buffer would first hold the FC's bytes)
    arena, caller = planned(fc_chain(relu_last=True), "arena"), planned(fc_chain(relu_last=True), "caller")
    assert isinstance(arena.steps[-1].placement, InPlace)
    assert not isinstance(caller.steps[-1].placement, InPlace)
    xs = random_inputs(caller.graph, np.random.default_rng(0))
    assert all(np.array_equal(a, b) for a, b in zip(run_program(caller, xs), run(caller.graph, xs)))


def test_a_wrong_plan_of_the_edges_is_caught():
    program = planned(fc_chain(), "caller")
    x, y = program.graph.inputs[0], program.graph.outputs[0]
    hidden = program.steps[0].op.outputs[0]
    check_program(program)
    broken = [
        {**program.offsets, y: 0},  # the output back in the arena
        {**program.offsets, hidden: program.offsets[x]},  # a step writing into the input's buffer
        {**program.offsets, x: program.offsets[y]},  # input and output in one buffer
    ]
    for offsets in broken:
        with pytest.raises(PlanError) as caught:
            check_program(replace(program, offsets=offsets))
        assert caught.value.rule in (RULE_CALLER, "output over input", "live tensors kept")
    # an output written in place over another tensor: its buffer would be scratch first
    relu = planned(fc_chain(relu_last=True), "caller")
    steps = list(relu.steps)
    fc_out = steps[-1].op.inputs[0]
    offsets = {**relu.offsets, fc_out: relu.offsets[relu.graph.outputs[0]]}
    steps[-1] = replace(steps[-1], placement=InPlace(0))
    with pytest.raises(PlanError) as caught:
        check_program(replace(relu, steps=tuple(steps), offsets=offsets))
    assert caught.value.rule == RULE_CALLER


def test_reference_run_keeps_the_inputs():
    program = planned(shared_model_path("vww_96_int8"), "caller", cortexm_scratch("cortex-m4"))
    xs = random_inputs(program.graph, np.random.default_rng(1))
    given = [x.copy() for x in xs]
    got = run_program(program, xs)  # checks the input buffer's bytes after the run
    assert all(np.array_equal(a, b) for a, b in zip(xs, given))
    assert all(np.array_equal(a, b) for a, b in zip(got, run(program.graph, xs)))


def test_io_buffers_option_is_checked():
    with pytest.raises(MCUCError, match="--io-buffers"):
        CompileOptions(io_buffers="heap")


@settings(deadline=None, max_examples=25)
@given(seed=st.integers(0, 2**32 - 1), optimize=st.booleans())
def test_every_caller_plan_of_random_graphs_runs(seed: int, optimize: bool) -> None:
    """Random branching graphs (concatenations in place, views, in-place ops, scratch):
    the caller plan passes the verifier, keeps no edge in the arena, and computes the
    graph's bytes with the inputs untouched."""
    from tests.support.memory_graphs import random_graph, random_inputs as graph_inputs
    from tests.support.memory_scratch import mimic_cortexm_scratch

    graph = random_graph(seed)
    if set(graph.inputs) & set(graph.outputs):
        with pytest.raises(MCUCError, match="io-buffers"):
            plan(graph.with_(io_buffers="caller"))
        return
    scratch = mimic_cortexm_scratch if seed % 2 else None
    program = plan(graph.with_(io_buffers="caller"), scratch, optimize=optimize)
    edges = {t.name for t in (*graph.inputs, *graph.outputs)}
    assert not [b for b in program.buffers if b.name in edges]
    assert all(not program.in_arena(t) for t in (*graph.inputs, *graph.outputs) if not t.is_constant)
    inputs = graph_inputs(graph, seed)
    for e, g in zip(run(graph, inputs), run_program(program, inputs, seed=seed)):
        np.testing.assert_array_equal(g, e)


@settings(deadline=None, max_examples=20)
@given(seed=st.integers(0, 2**32 - 1), cache=st.booleans())
def test_every_patched_caller_plan_of_random_graphs_runs(seed: int, cache: bool) -> None:
    """A random patch stage (its inputs read, its output written in the caller's buffers
    when they are graph edges) planned with caller buffers runs the graph's bytes."""
    from mcuc.passes.patch import StageSpec, plan_patched, stage_ends
    from tests.support.memory_scratch import mimic_cortexm_scratch
    from tests.support.patch_graphs import random_stage_graph

    graph = random_stage_graph(seed).with_(io_buffers="caller")
    rng = np.random.default_rng(seed)
    start, end = stage_ends(graph)[int(rng.integers(len(stage_ends(graph))))]
    cut = graph.ops[end].outputs[0]
    grid = (int(rng.integers(1, min(4, cut.shape[1]) + 1)), int(rng.integers(1, min(4, cut.shape[2]) + 1)))
    program = plan_patched(graph, [StageSpec(end, grid, start, cache and cut.shape[0] == 1)], mimic_cortexm_scratch)
    assert program.caller_buffers and all(not program.in_arena(t) for t in graph.inputs)
    inputs = random_inputs(graph, np.random.default_rng(seed))
    for e, g in zip(run(graph, inputs), run_program(program, inputs, seed=seed)):
        np.testing.assert_array_equal(g, e)
