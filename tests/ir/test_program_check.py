"""The static verifier of memory plans (ir/program_check.check_program): a Program whose
placements break a rule is a PlanError naming the step, its op and the rule, at compile
time (the pipeline checks every plan); and every plan the planner makes passes it."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mcuc.ir import MCUCError
from mcuc.ir.ops.add import AddAttrs
from mcuc.ir.ops.reshape import ReshapeAttrs
from mcuc.ir.program import FRESH, Alias, Buffer, InPlace, Overlap, PatchLoop, Program, Step
from mcuc.ir.program_check import (RULE_ALIAS, RULE_ARENA, RULE_IN_PLACE, RULE_LIVE, RULE_OUTPUT_OVER_INPUT,
                                   RULE_OVERLAP, RULE_PATCH_BUFFERS, RULE_PATCH_CALLS, RULE_SCRATCH, PlanError,
                                   check_program)
from mcuc.passes import fold_pad, plan
from mcuc.passes.aliasing import conv_overlap_shift, plan_storage
from mcuc.passes.patch import StageSpec, plan_patched, stage_ends
from mcuc.passes.plan import build_program

from tests.support.memory_graphs import GraphBuilder, random_graph
from tests.support.memory_scratch import mimic_cortexm_scratch
from tests.support.patch_graphs import random_stage_graph


def _with_step(program: Program, index: int, placement=None, scratch=None, offsets=None) -> Program:
    """`program` with step `index`'s placement or scratch and some offsets replaced; the
    arena grows to hold whatever moved."""
    steps = list(program.steps)
    changes = {k: v for k, v in (("placement", placement), ("scratch", scratch)) if v is not None}
    steps[index] = dataclasses.replace(steps[index], **changes)
    new_offsets = {**program.offsets, **(offsets or {})}
    arena = max([program.arena_bytes] + [at + t.nbytes for t, at in new_offsets.items()]
                + [b.end for s in steps for b in s.scratch])
    return dataclasses.replace(program, steps=tuple(steps), offsets=new_offsets, arena_bytes=arena)


def _broken(program: Program, index: int, rule: str, match: str = "") -> PlanError:
    with pytest.raises(PlanError, match=match) as caught:
        check_program(program)
    err = caught.value
    assert isinstance(err, MCUCError)
    assert (err.step, err.rule) == (index, rule), str(err)
    assert str(err).startswith(f"step {index} {program.steps[index].op.label}: {rule} rule broken")
    return err


def _hand_program(graph, offsets: dict, placements: dict[int, object] | None = None, arena: int | None = None,
                  scratch: dict[int, tuple[Buffer, ...]] | None = None) -> Program:
    steps = tuple(Step(op, (scratch or {}).get(i, ()), (placements or {}).get(i, FRESH))
                  for i, op in enumerate(graph.ops))
    end = max(at + t.nbytes for t, at in offsets.items())
    return Program(graph, steps, offsets, arena if arena is not None else end)


# -- each rule, broken on purpose ------------------------------------------------------


def test_in_place_on_a_conv_that_cannot_run_in_place():
    b = GraphBuilder(np.random.default_rng(0))
    x = b.activation((1, 4, 4, 8), "in")
    r = b.add_op("RELU", [x], None, x.quant)
    y = b.conv(r, 8, k=3, pad=1)
    graph = b.graph([x], [y])
    program = plan(graph, optimize=False)
    bad = _with_step(program, 1, InPlace(0), offsets={y: program.offsets[r]})
    err = _broken(bad, 1, RULE_IN_PLACE, "CONV_2D cannot write its output over input 0")
    assert graph.ops[1].label in str(err)


def _depthwise_chain():
    b = GraphBuilder(np.random.default_rng(1))
    x = b.activation((1, 5, 5, 4), "in")
    a = b.conv(x, 8)
    d = b.depthwise(a, 3, 1, 1)
    return b.graph([x], [d]), x, a, d


def test_in_place_shift_that_is_not_a_whole_pixel_count():
    graph, x, a, d = _depthwise_chain()
    base = 400
    for shift in (0, 8, -16):  # whole pixels (8 channels) are safe with one batch
        check_program(_hand_program(graph, {x: 0, a: base, d: base + shift}, {1: InPlace(0, shift)}))
    for shift in (8 + 3, -5):
        _broken(_hand_program(graph, {x: 0, a: base, d: base + shift}, {1: InPlace(0, shift)}), 1, RULE_IN_PLACE,
                "not a whole number of pixels")


def test_in_place_shift_that_disagrees_with_the_offsets():
    graph, x, a, d = _depthwise_chain()
    _broken(_hand_program(graph, {x: 0, a: 400, d: 400}, {1: InPlace(0, 8)}), 1, RULE_IN_PLACE,
            "sits 0 bytes from its input")
    # only a depthwise conv may shift
    b = GraphBuilder(np.random.default_rng(2))
    u = b.activation((1, 4, 4, 2), "in")
    v = b.add_op("RELU", [u], None, u.quant)
    relu = b.graph([u], [v])
    _broken(_hand_program(relu, {u: 0, v: 2}, {0: InPlace(0, 2)}), 0, RULE_IN_PLACE, "only an in-place depthwise")


def test_an_output_over_a_tensor_read_later():
    """d is written onto `keep`, which the ADD still reads."""
    b = GraphBuilder(np.random.default_rng(2))
    x = b.activation((1, 4, 3, 4), "in")
    a = b.conv(x, 4)
    keep = b.conv(x, 4)
    d = b.depthwise(a, 3, 1, 1)
    y = b.add_op("ADD", [keep, d], AddAttrs())
    graph = b.graph([x], [y])
    offsets = {x: 0, a: 100, keep: 200, d: 300, y: 400}
    check_program(_hand_program(graph, offsets))
    _broken(_hand_program(graph, {**offsets, d: 200}), 2, RULE_LIVE, f"over tensor {keep.name!r}.*read again later")
    # a graph output must survive to the end, too
    graph = dataclasses.replace(graph, outputs=(y, a))
    _broken(_hand_program(graph, {**offsets, d: 100}), 2, RULE_OUTPUT_OVER_INPUT, "overlaps input")
    _broken(_hand_program(graph, {**offsets, y: 100}), 3, RULE_LIVE, f"over tensor {a.name!r}")


def test_an_alias_whose_output_is_not_at_its_inputs_offset():
    b = GraphBuilder(np.random.default_rng(3))
    x = b.activation((1, 4, 4, 2), "in")
    a = b.conv(x, 4)
    r = b.add_op("RESHAPE", [a], ReshapeAttrs((1, 2, 8, 4)), a.quant)
    graph = b.graph([x], [r])
    program = plan(graph, optimize=False)
    assert isinstance(program.steps[1].placement, Alias)
    moved = _with_step(program, 1, offsets={r: program.arena_bytes})
    _broken(moved, 1, RULE_ALIAS, "is not its input's bytes")
    # An Alias on an op that computes bytes.
    _broken(_with_step(program, 0, Alias(), offsets={a: program.offsets[x]}), 0, RULE_ALIAS, "CONV_2D moves bytes")


def test_an_alias_concatenation_with_an_input_outside_its_slice():
    from mcuc.ir.ops.concatenation import ConcatAttrs

    b = GraphBuilder(np.random.default_rng(4))
    x = b.activation((1, 4, 4, 3), "in")
    q = b.quant()
    parts = [b.conv(x, 3, 3, pad=1, out_quant=q) for _ in range(2)]
    y = b.add_op("CONCATENATION", parts, ConcatAttrs(1), q)
    graph = b.graph([x], [y])
    program = plan(graph, optimize=False)
    assert isinstance(program.steps[-1].placement, Alias)
    check_program(program)
    # The second producer writes elsewhere: the concat would have to copy it.
    _broken(_with_step(program, 2, offsets={parts[1]: program.arena_bytes}), 2, RULE_ALIAS, "its slice")


def _pointwise(cin: int, cout: int):
    b = GraphBuilder(np.random.default_rng(5))
    x = b.activation((1, 6, 6, cin), "in")
    y = b.conv(x, cout, k=3, pad=1)
    return b.graph([x], [y]), x, y


def test_an_overlapping_conv_one_byte_too_close():
    graph, x, y = _pointwise(8, 8)
    shift = conv_overlap_shift(graph.ops[0])
    check_program(_hand_program(graph, {y: 0, x: shift}, {0: Overlap(0)}))
    _broken(_hand_program(graph, {y: 0, x: shift - 1}, {0: Overlap(0)}), 0, RULE_OVERLAP, "overwrites input")
    # a fresh step may not overlap at all, however safe the shift
    _broken(_hand_program(graph, {y: 0, x: shift}), 0, RULE_OUTPUT_OVER_INPUT, "overlaps input")
    # and an ADD cannot overlap (it runs in place or not at all)
    b = GraphBuilder(np.random.default_rng(6))
    u = b.activation((1, 4, 4, 2), "in")
    v = b.add_op("ADD", [u, u], AddAttrs())
    add_graph = b.graph([u], [v])
    _broken(_hand_program(add_graph, {u: 8, v: 0}, {0: Overlap(0)}), 0, RULE_OVERLAP, "ADD cannot overlap")
    check_program(_hand_program(add_graph, {u: 0, v: 0}, {0: InPlace(1)}))  # x + x: both inputs are its bytes


def test_scratch_over_an_input_and_past_the_arena():
    graph, x, y = _pointwise(4, 4)
    offsets = {x: 0, y: x.nbytes}
    on_input = (Buffer("im2col", 16, 32, 0, 0, kind="scratch"),)
    _broken(_hand_program(graph, offsets, scratch={0: on_input}), 0, RULE_SCRATCH, "overlaps tensor")
    outside = (Buffer("im2col", x.nbytes + y.nbytes, 32, 0, 0, kind="scratch"),)
    _broken(_hand_program(graph, offsets, scratch={0: outside}, arena=x.nbytes + y.nbytes), 0, RULE_ARENA,
            "runs past the arena")
    with pytest.raises(PlanError, match=f"graph edge {y.name!r}: arena rule broken") as caught:
        check_program(_hand_program(graph, offsets, arena=x.nbytes))
    assert caught.value.step is None


def _patched_program():
    """A two-conv stage over a dying input, planned; its PatchLoop step and stage."""
    b = GraphBuilder(np.random.default_rng(7))
    x = b.activation((1, 8, 8, 4), "in")
    a = b.conv(x, 4)
    h = b.conv(a, 4, k=3, pad=1)
    y = b.conv(h, 4, k=3, pad=1)
    out = b.conv(y, 2)
    graph = b.graph([x], [out])
    program = plan_patched(graph, [StageSpec(2, (2, 2), 1)], optimize=False)
    index = next(i for i, s in enumerate(program.steps) if isinstance(s, PatchLoop))
    return program, index


def test_patch_stage_overlap_and_buffers():
    program, index = _patched_program()
    check_program(program)
    step = program.steps[index]
    stage = step.stage
    (k,) = [k for k, s in enumerate(stage.output_shifts) if s is not None]
    x = stage.inputs[k]
    # The output placed over its dying input with no room to spare: patch 0 clobbers
    # bytes that later patches read.
    at = program.offsets[x]
    bad = _with_step(program, index, Overlap(k), offsets={stage.output: at})
    _broken(bad, index, RULE_OVERLAP, "patch .* still reads")
    # A workspace smaller than the stage needs.
    small = (dataclasses.replace(step.scratch[0], size=stage.workspace_bytes - 1),) + step.scratch[1:]
    _broken(_with_step(program, index, scratch=small), index, RULE_PATCH_BUFFERS, "workspace holds")


def test_patch_calls_that_write_outside_the_stage_or_are_missing():
    from mcuc.ir.patch_lowering import RegionCall

    program, index = _patched_program()
    step = program.steps[index]
    n, call = next((n, c) for n, c in enumerate(step.calls) if isinstance(c, RegionCall))
    y = call.op.outputs[0]
    # One region call's output moved onto the stage input's bytes.
    moved = dataclasses.replace(call, offsets={**call.offsets, y: program.offsets[step.stage.inputs[0]]})
    calls = step.calls[:n] + (moved,) + step.calls[n + 1:]
    bad = dataclasses.replace(program, steps=program.steps[:index] + (dataclasses.replace(step, calls=calls),)
                              + program.steps[index + 1:])
    _broken(bad, index, RULE_PATCH_CALLS, f"call {n} .* writes .* outside the stage's workspace")
    # An unlowered stage.
    bare = dataclasses.replace(program, steps=program.steps[:index] + (dataclasses.replace(step, calls=()),)
                               + program.steps[index + 1:])
    _broken(bare, index, RULE_PATCH_CALLS, "not lowered")


# -- the pipeline checks every plan at compile time ----------------------------------------


def _corrupt_in_place(program: Program) -> tuple[Program, int]:
    """The first conv step declared InPlace over its input (which it can never be)."""
    index = next(i for i, s in enumerate(program.steps) if s.op.kind == "CONV_2D")
    return _with_step(program, index, InPlace(0)), index


def test_pipeline_rejects_a_broken_plan_at_compile_time(monkeypatch):
    from mcuc import passes
    from mcuc.pipeline import CompileOptions, schedule

    b = GraphBuilder(np.random.default_rng(8))
    x = b.activation((1, 4, 4, 2), "in")
    y = b.conv(b.add_op("RELU", [x], None, x.quant), 4, k=3, pad=1)
    graph = b.graph([x], [y])
    real_plan = passes.plan
    corrupted: list[int] = []

    def broken_plan(g, scratch=None, **kw):
        program, index = _corrupt_in_place(real_plan(g, scratch, **kw))
        corrupted.append(index)
        return program

    monkeypatch.setattr(passes, "plan", broken_plan)
    with pytest.raises(PlanError, match=r"^step 1 CONV_2D\(op\d+\): in place rule broken") as caught:
        schedule(graph, CompileOptions())
    assert caught.value.step == corrupted[0] == 1


def test_patch_schedules_are_checked_at_compile_time(monkeypatch):
    from mcuc.passes import patch_schedule
    from mcuc.pipeline import CompileOptions, schedule

    real = patch_schedule.plan_patched

    def broken(graph, specs, scratch=None, **kw):
        planned = real(graph, specs, scratch, **kw)
        loop = next(i for i, s in enumerate(planned.steps) if isinstance(s, PatchLoop))
        small = (dataclasses.replace(planned.steps[loop].scratch[0], size=0),)
        return _with_step(planned, loop, scratch=small)

    monkeypatch.setattr(patch_schedule, "plan_patched", broken)
    b = GraphBuilder(np.random.default_rng(7))
    x = b.activation((1, 8, 8, 4), "in")
    y = b.conv(b.conv(x, 4, k=3, pad=1), 4, k=3, pad=1)
    graph = b.graph([x], [b.conv(y, 2)])
    with pytest.raises(PlanError, match="patch buffers rule broken") as caught:
        schedule(graph, CompileOptions(patch="2x2@1"))
    assert caught.value.step is not None


# -- every plan passes ---------------------------------------------------------------------


@settings(deadline=None, max_examples=60)
@given(seed=st.integers(0, 2**32 - 1), optimize=st.booleans(), overlap=st.booleans(),
       scratch=st.booleans(), folded=st.booleans())
def test_every_plan_of_random_graphs_passes(seed, optimize, overlap, scratch, folded) -> None:
    graph = random_graph(seed)
    if folded:
        graph = fold_pad(graph)
    scratch_fn = mimic_cortexm_scratch if scratch else None
    check_program(plan(graph, scratch_fn, optimize=optimize, overlap_pointwise=overlap))
    # every eligible convolution overlapping, and every in-place depthwise shifted a pixel
    dws = {i: op.inputs[0].shape[-1] for i, op in enumerate(graph.ops) if op.kind == "DEPTHWISE_CONV_2D"}
    storage = plan_storage(graph, pointwise=None, depthwise_shifts=dws)
    check_program(build_program(graph, storage, scratch_fn, optimize=False))


@settings(deadline=None, max_examples=25)
@given(seed=st.integers(0, 2**32 - 1))
def test_every_patched_plan_of_random_graphs_passes(seed) -> None:
    graph = random_stage_graph(seed)
    rng = np.random.default_rng(seed)
    start, end = stage_ends(graph)[int(rng.integers(len(stage_ends(graph))))]
    cut = graph.ops[end].outputs[0]
    grid = (int(rng.integers(1, min(4, cut.shape[1]) + 1)), int(rng.integers(1, min(4, cut.shape[2]) + 1)))
    check_program(plan_patched(graph, [StageSpec(end, grid, start)], mimic_cortexm_scratch, optimize=False))
