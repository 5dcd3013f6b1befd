"""Patch-based inference in the reference: any stage, any grid, equals layer by layer.

Random stages (chains, residual blocks, concatenated branches; kernels 1-7, strides 1-2,
dilation, asymmetric padding, pooling, PAD, resize) x random grids, planned into one
arena (run_program: the patch buffers and the workspace are checked too) and compared
byte for byte with the layer-by-layer reference interpreter.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mcuc.ir import MCUCError, Region
from mcuc.ir.interpreter import run
from mcuc.ir.ops import op_def
from mcuc.ir.patches import PatchStage, evaluate_region, region_geometry
from mcuc.ir.program import PatchLoop
from mcuc.ir.program_interpreter import run_program
from mcuc.passes.patch import (StageSpec, apply_stages, build_stage, graph_macs, plan_patched, stage_ends,
                               stage_problem, stage_start)
from mcuc.passes.patch_search import StageModel
from mcuc.passes.receptive_field import backward_regions, grid_regions, split_axis

from tests.support.memory_graphs import random_graph, random_inputs
from tests.support.patch_graphs import random_stage_graph


def _schedule(graph, rng, two_stages: bool) -> list[StageSpec]:
    """One or two random stages (random end, random start within the longest stage,
    random grid up to 8x8 within the cut, random halo choices)."""
    ends = stage_ends(graph)
    specs = []
    first_allowed = 0
    for _ in range(2 if two_stages else 1):
        choices = [(s, e) for s, e in ends if e >= first_allowed and max(s, first_allowed) <= e]
        if not choices:
            break
        s, e = choices[int(rng.integers(len(choices)))]
        s = int(rng.integers(max(s, first_allowed), e + 1))
        cut = graph.ops[e].outputs[0]
        grid = (int(rng.integers(1, min(8, cut.shape[1]) + 1)), int(rng.integers(1, min(8, cut.shape[2]) + 1)))
        # halos recomputed, all cached, or those of some of the stage's ops cached
        cache = [False, True, frozenset(k for k in range(s, e) if rng.integers(2))][int(rng.integers(3))]
        specs.append(StageSpec(e, grid, s, cache))
        first_allowed = e + 1
    return specs


def _check_patched_equals_layer_by_layer(graph, specs, seed: int) -> None:
    inputs = random_inputs(graph, seed)
    expected = run(graph, inputs)
    # optimize=False: one greedy placement is enough to check the patch buffers and overlaps
    program = plan_patched(graph, specs, optimize=False)
    loops = [s for s in program.steps if isinstance(s, PatchLoop)]
    assert len(loops) == len(specs)
    got = run_program(program, inputs, seed=seed)
    for e, g in zip(expected, got):
        assert e.dtype == g.dtype and e.shape == g.shape
        assert np.array_equal(e, g), f"patch schedule {[str(s) for s in specs]} differs from layer by layer"
    # The patched graph alone (numpy patch buffers) agrees too.
    for e, g in zip(expected, run(program.graph, inputs)):
        assert np.array_equal(e, g)


@settings(deadline=None, max_examples=160)
@given(seed=st.integers(0, 2**31 - 1), two_stages=st.booleans())
def test_random_stages_equal_layer_by_layer(seed, two_stages):
    graph = random_stage_graph(seed)
    specs = _schedule(graph, np.random.default_rng(seed + 1), two_stages)
    assert specs, "the generated graph has no stage (its first op can always end one)"
    _check_patched_equals_layer_by_layer(graph, specs, seed)


@settings(deadline=None, max_examples=60)
@given(seed=st.integers(0, 2**31 - 1))
def test_random_dags_any_valid_stage(seed):
    """Branching DAGs with ops that cannot be patched (RESHAPE, several outputs): every
    stage the analysis accepts runs exactly."""
    graph = random_graph(seed, max_ops=8)
    specs = _schedule(graph, np.random.default_rng(seed), two_stages=True)
    if not specs:
        return
    _check_patched_equals_layer_by_layer(graph, specs, seed)


@settings(deadline=None, max_examples=40)
@given(seed=st.integers(0, 2**31 - 1), cache=st.booleans())
def test_search_estimates_are_exact_macs(seed, cache):
    """The search's separable band analysis gives the same MACs as building every patch
    (with cached halos too)."""
    graph = random_stage_graph(seed)
    rng = np.random.default_rng(seed)
    start, end = stage_ends(graph)[int(rng.integers(len(stage_ends(graph))))]
    cut = graph.ops[end].outputs[0]
    grid = (int(rng.integers(1, min(8, cut.shape[1]) + 1)), int(rng.integers(1, min(8, cut.shape[2]) + 1)))
    model = StageModel(graph, start, end, None)
    macs, _ = model.figures(grid, cache)
    patched = apply_stages(graph, [StageSpec(end, grid, start, cache)])
    assert macs == graph_macs(patched)
    stage: PatchStage = patched.ops[start].attrs
    if cache:
        assert macs <= graph_macs(graph), "cached halos never recompute"
        return
    largest = {b.tensor: b.size for b in stage.buffers}
    for region in stage.patch_regions:
        regions, _ = backward_regions(stage.ops, {stage.output: region})
        for t, size in largest.items():
            assert t not in regions or regions[t].size * t.itemsize <= size


# -- evaluating one op on a region ----------------------------------------------------


@settings(deadline=None, max_examples=120)
@given(seed=st.integers(0, 2**31 - 1))
def test_region_evaluation_equals_slice_of_full(seed):
    """For every op of random stage graphs and a random output region: the op evaluated on
    that region (reading only the regions region_geometry names) equals the slice of its
    full evaluation."""
    graph = random_stage_graph(seed, max_steps=3)
    rng = np.random.default_rng(seed)
    values = dict(zip(graph.inputs, random_inputs(graph, seed)))
    for op in graph.ops:
        ins = [None if t is None else t.data if t.is_constant else values[t] for t in op.inputs]
        full = op_def(op.kind).evaluate(op, ins)[0]
        values[op.outputs[0]] = full
        shape = full.shape
        r0 = int(rng.integers(0, shape[1])); r1 = int(rng.integers(r0 + 1, shape[1] + 1))
        c0 = int(rng.integers(0, shape[2])); c1 = int(rng.integers(c0 + 1, shape[2] + 1))
        out = Region((0, r0, c0, 0), (1, r1, c1, shape[3]))
        geometry = region_geometry(op, out)
        asked = []

        def read(k, region):
            asked.append((k, region))
            assert region == geometry.inputs[k]
            return values[op.inputs[k]][region.slices()]

        got = evaluate_region(op, out, read)
        assert np.array_equal(got, full[out.slices()]), f"{op.kind} on {out}"
        # The rule reads no more than the op's own receptive field.
        for k, region in asked:
            assert region == op_def(op.kind).input_regions(op, out)[k] or region.empty


def test_window_border_padding_only_at_true_borders():
    from mcuc.ir.ops.conv2d import Conv2DAttrs
    from mcuc.ir.ops.common import Padding2D
    from tests.support.memory_graphs import GraphBuilder

    b = GraphBuilder(np.random.default_rng(0))
    x = b.activation((1, 10, 10, 2))
    w = b.weights((3, 3, 3, 2), 3)
    b.add_op("CONV_2D", [x, w, b.bias(3)], Conv2DAttrs(padding=Padding2D(1, 1, 1, 1)))
    op = b.ops[-1]
    middle = region_geometry(op, Region((0, 3, 3, 0), (1, 6, 6, 3)))
    assert middle.inputs[0] == Region((0, 2, 2, 0), (1, 7, 7, 2)) and middle.padding == ((0, 0), (0, 0))
    corner = region_geometry(op, Region((0, 0, 7, 0), (1, 2, 10, 3)))
    assert corner.inputs[0] == Region((0, 0, 6, 0), (1, 3, 10, 2)) and corner.padding == ((1, 0), (0, 1))


# -- receptive fields over a residual block, by hand ------------------------------------


def test_residual_block_receptive_field_by_hand():
    from tests.support.memory_graphs import GraphBuilder
    from mcuc.ir.ops.add import AddAttrs

    b = GraphBuilder(np.random.default_rng(1))
    x = b.activation((1, 16, 16, 4), "in")
    s = b.conv(x, 4, k=3, stride=2, pad=1)           # 8x8
    e = b.conv(s, 8, k=1)
    d = b.depthwise(e, 3, 1, 1)
    p = b.conv(d, 4, k=1)
    y = b.add_op("ADD", [s, p], AddAttrs())
    graph = b.graph([x], [y])
    regions, works = backward_regions(graph.ops, {y: Region((0, 0, 0, 0), (1, 4, 4, 4))})
    assert regions[p].axis(1) == (0, 4) and regions[d].axis(1) == (0, 4)
    assert regions[e].axis(1) == (0, 5)                 # the depthwise's halo
    assert regions[s].axis(1) == (0, 5)                 # bounding box of the ADD's and the branch's needs
    assert regions[x].axis(1) == (0, 10)                # rows 2*0-1 .. 2*4+1, clipped at the top border
    assert works[0].geometry.padding == ((1, 0), (1, 0))


@pytest.mark.parametrize("axis", [1, 2])
def test_spatial_concatenation_recomputes_its_halo(axis):
    """A concatenation along height or width reads its second input from the start again
    in a later patch, so the tensor it reads (and the ones feeding it) cannot keep a line
    band: those recompute, the rest stay cached, and the answer equals layer by layer
    (before, rows stopped the compile with an error; columns are held to the same order,
    which the column bookkeeping assumes)."""
    from tests.support.memory_graphs import GraphBuilder
    from mcuc.ir.ops.concatenation import ConcatAttrs
    from mcuc.passes.receptive_field import cacheable

    b = GraphBuilder(np.random.default_rng(2))
    x = b.activation((1, 6, 6, 2), "in")
    s = b.conv(x, 2, k=3, pad=1)
    u = b.conv(s, 2, k=3, pad=1)
    q = b.quant()
    a, c = b.conv(u, 2, k=1, out_quant=q), b.conv(u, 2, k=1, out_quant=q)
    cat = b.add_op("CONCATENATION", [a, c], ConcatAttrs(axis=axis), q)
    y = b.conv(cat, 2, k=3, pad=1)
    graph = b.graph([x], [y])
    grid = (6, 1) if axis == 1 else (1, 6)
    kept = cacheable(graph.ops, y, grid, {s, u, a, c, cat})
    # patch 2 needs rows (columns) 5-6 of u for a and 0-1 for c: u's need starts over, and
    # so does s's once u recomputes
    assert kept == {a, c, cat}
    _check_patched_equals_layer_by_layer(graph, [StageSpec(len(graph.ops) - 1, grid, 0, True)], 2)


def test_split_axis_spreads_the_remainder():
    assert split_axis(10, 3) == [(0, 4), (4, 7), (7, 10)]
    assert split_axis(5, 5) == [(i, i + 1) for i in range(5)]
    regions = grid_regions((1, 7, 5, 2), (2, 3))
    assert len(regions) == 6 and sum(r.size for r in regions) == 7 * 5 * 2
    with pytest.raises(MCUCError, match="cannot split"):
        split_axis(3, 4)


# -- what cannot be a stage ---------------------------------------------------------------


def test_stage_problems_are_named():
    from tests.support.memory_graphs import GraphBuilder
    from mcuc.ir.ops.add import AddAttrs
    from mcuc.ir.ops.reshape import ReshapeAttrs

    b = GraphBuilder(np.random.default_rng(2))
    x = b.activation((1, 8, 8, 2), "in")
    a = b.conv(x, 4, k=3, pad=1)
    c = b.conv(a, 4, k=3, pad=1)
    y = b.add_op("ADD", [a, c], AddAttrs())
    r = b.add_op("RESHAPE", [y], ReshapeAttrs((1, 4, 16, 4)), y.quant)
    graph = b.graph([x], [r])
    assert stage_problem(graph, 0, 1) is not None and "read after op 1" in stage_problem(graph, 0, 1)
    assert stage_start(graph, 2) == 0 and stage_start(graph, 1) == 1
    with pytest.raises(MCUCError, match=r"op 3 \(RESHAPE\) cannot run patch by patch"):
        stage_start(graph, 3)
    with pytest.raises(MCUCError, match="grid 9x2 does not fit"):
        build_stage(graph, 0, 2, (9, 2))
    with pytest.raises(MCUCError, match="overlap"):
        apply_stages(graph, [StageSpec(2, (2, 2)), StageSpec(2, (3, 3))])


def test_a_budget_that_only_the_smallest_schedules_meet_is_met():
    """The cheapest candidates' estimates may be optimistic; when none of them fits the
    budget, a schedule among the smallest that fits must still be found, and a budget
    below every schedule names the smallest peak, which is then reachable."""
    from mcuc.frontend.tflite import load_tflite
    from mcuc.passes.patch_search import search
    from mcuc.pipeline import CompileOptions, cortexm_scratch, prepare
    from tests.support.paths import REPO_ROOT

    graph = prepare(load_tflite((REPO_ROOT / "examples" / "mobilenet_tiny_int8.tflite").read_bytes()),
                    CompileOptions())
    scratch = cortexm_scratch("cortex-m4")
    with pytest.raises(MCUCError, match=r"smallest peak any schedule reaches is ([\d,]+) B") as caught:
        search(graph, scratch, sram=1_000)
    smallest = int(caught.value.args[0].split("reaches is ")[1].split(" B")[0].replace(",", ""))
    for budget in (smallest, 10_000):
        result = search(graph, scratch, sram=budget)
        assert result.program.arena_bytes <= budget, budget
