"""Patch stages lowered once (ir/patch_lowering.py) and run as they are.

1. The lowering: every gather reads a region that is not contiguous where it is held,
   every output region that is not contiguous in the stage output is scattered, region
   calls run in patch order, and evaluate_stage (the lowered calls on a private arena)
   equals the layer-by-layer graph.
2. The reference interpreter, the llvm backend and the C backend all run the calls they
   are given, not a stage they re-derive: a program whose calls are changed on purpose
   (one op's region calls given permuted weights) gives the same changed bytes on all
   three, and they differ from the original program's.
"""
from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from mcuc.backends.llvm import compile_program
from mcuc.ir.interpreter import run
from mcuc.ir.ops import kinds
from mcuc.ir.patch_lowering import BoxCopy, RegionCall, evaluate_stage, lower_stage, temp_bytes
from mcuc.ir.program import PatchLoop, Program
from mcuc.ir.program_interpreter import run_program
from mcuc.passes.patch import StageSpec, build_stage, plan_patched, stage_ends
from mcuc.pipeline import cortexm_scratch

from tests.support.memory_graphs import GraphBuilder, random_inputs
from tests.support.patch_graphs import random_stage_graph


def _conv_chain():
    b = GraphBuilder(np.random.default_rng(5))
    x = b.activation((1, 9, 7, 3), "in")
    y = b.conv(b.conv(x, 4, k=3, pad=1), 4, k=3, pad=1)
    return b.graph([x], [b.conv(y, 2)])


@settings(deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), data=st.data(), cache=st.booleans())
def test_lowered_stage_equals_layer_by_layer(seed, data, cache):
    graph = random_stage_graph(seed)
    start, end = data.draw(st.sampled_from(stage_ends(graph)))
    start = data.draw(st.integers(start, end))
    cut = graph.ops[end].outputs[0]
    grid = (data.draw(st.integers(1, min(4, cut.shape[1]))), data.draw(st.integers(1, min(4, cut.shape[2]))))
    stage = build_stage(graph, start, end, grid, cache=cache)
    if cache:
        _assert_computed_at_most_once(stage)
    # inputs at spread-out offsets, the output after them: a lowering that ignores an
    # offset reads or writes the wrong bytes
    offsets, at = {}, 3
    for t in (*stage.inputs, stage.output):
        offsets[t] = at
        at += t.nbytes + 5
    workspace, temp = at, at + stage.workspace_bytes + 7
    calls = lower_stage(stage, offsets, workspace, temp)
    region_calls = [c for c in calls if isinstance(c, RegionCall)]
    assert [(c.patch, c.op_index) for c in region_calls] == sorted((c.patch, c.op_index) for c in region_calls)
    assert len(region_calls) == sum(not w.out.empty for works in stage.patches for w in works)
    for c in calls:
        if isinstance(c, BoxCopy) and c.role == "shift":  # inside its line band, moving rows up
            band = stage.buffer(stage.ops[c.op_index].outputs[0])
            assert band.band is not None and c.dst < c.src and c.patch % grid[1] == 0
            assert workspace + band.delta <= c.dst and c.src + c.nbytes <= workspace + band.delta + band.size
        elif isinstance(c, BoxCopy):
            side = c.dst if c.role == "gather" else c.src
            assert temp <= side and side + c.nbytes <= temp + temp_bytes(stage), c
    # the stage's inputs and output from a layer-by-layer run of the graph
    want_all = _all_values(graph, random_inputs(graph, seed))
    got = evaluate_stage(stage, [want_all[t] for t in stage.inputs])
    assert np.array_equal(got, want_all[stage.output])


def _assert_computed_at_most_once(stage):
    """With every halo cached, no output element of any op is computed twice."""
    for k, op in enumerate(stage.ops):
        y = op.outputs[0]
        count = np.zeros(y.shape, np.int32)
        for works in stage.patches:
            if not works[k].out.empty:
                count[works[k].out.slices()] += 1
        assert count.max() <= 1, f"{op.label}: computed more than once"


def test_cached_halos_are_computed_once_and_kept_in_line_bands():
    graph = _conv_chain()
    stage = build_stage(graph, 0, 2, (3, 1), cache=True)
    _assert_computed_at_most_once(stage)
    # the first conv's output is read by a 3x3 conv (its halo is read again by the next
    # patch row), the second's by a 1x1 conv (nothing read twice: a patch buffer)
    first, second = (stage.buffer(op.outputs[0]) for op in graph.ops[:2])
    assert first.band is not None and second.band is None
    assert sum(sum(w.out.size for w in works) for works in stage.patches) == \
        sum(op.outputs[0].size for op in graph.ops)
    calls = lower_stage(stage, {t: 0 for t in (*stage.inputs, stage.output)}, 0, 0)
    assert sum(isinstance(c, BoxCopy) and c.role == "shift" for c in calls) == 2  # 1 band x 2 later rows
    recompute = build_stage(graph, 0, 2, (3, 1))
    assert sum(sum(w.out.size for w in works) for works in recompute.patches) > \
        sum(sum(w.out.size for w in works) for works in stage.patches)


def _all_values(graph, inputs):
    from mcuc.ir.ops import op_def

    values = dict(zip(graph.inputs, inputs))
    for op in graph.ops:
        ins = [None if t is None else t.data if t.is_constant else values[t] for t in op.inputs]
        values.update(zip(op.outputs, op_def(op.kind).evaluate(op, ins)))
    return values


def _with_permuted_weights(program: Program) -> Program:
    """`program` with the region calls of the stage's first conv given weights permuted
    over output channels (in every patch: the C backend emits an op's constants once and
    its patches share them)."""
    index, loop = next((i, s) for i, s in enumerate(program.steps) if isinstance(s, PatchLoop))

    def permuted(call):
        if not (isinstance(call, RegionCall) and call.op_index == 0):
            return call
        w = call.op.inputs[1]
        w = w.with_(data=np.ascontiguousarray(np.roll(w.data, 1, axis=0)))
        changed = call.op.with_(inputs=(call.op.inputs[0], w) + call.op.inputs[2:])
        offsets = {new: call.offsets[old] for old, new in zip((*call.op.inputs, *call.op.outputs),
                                                              (*changed.inputs, *changed.outputs))
                   if old in call.offsets}
        return dataclasses.replace(call, op=changed, offsets=offsets)

    assert loop.stage.ops[0].kind == kinds.CONV_2D
    calls = tuple(permuted(c) for c in loop.calls)
    steps = program.steps[:index] + (dataclasses.replace(loop, calls=calls),) + program.steps[index + 1:]
    return dataclasses.replace(program, steps=steps)


def test_every_executor_runs_the_calls_it_is_given():
    graph = _conv_chain()
    program = plan_patched(graph, [StageSpec(1, (2, 2), 0)], cortexm_scratch("cortex-m0"), optimize=False)
    changed = _with_permuted_weights(program)
    inputs = random_inputs(graph, 3)
    original = run_program(program, inputs)[0]
    assert np.array_equal(original, run(graph, inputs)[0])
    want = run_program(changed, inputs)[0]
    assert not np.array_equal(want, original), "the change must show in the output"
    assert np.array_equal(compile_program(changed)(inputs)[0], want)
    if shutil.which("gcc") is None:
        pytest.skip("no host gcc for the C backend")
    from mcuc.backends.cortexm import run_chost

    assert np.array_equal(np.asarray(run_chost(changed, inputs)[0]).reshape(want.shape), want)
