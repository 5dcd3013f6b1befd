"""Graph passes of the memory planner: operator order is optimal (against brute force),
PAD folding and edge-quantization stripping keep the bytes, and planned shared models run
byte-exact on one arena."""
from __future__ import annotations

import itertools
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mcuc.ir import Graph, Op, Quantization, Tensor
from mcuc.ir.interpreter import run
from mcuc.ir.program_interpreter import run_program
from mcuc.passes import fold_pad, plan, strip_edge_quantization
from mcuc.passes.order import CostModel, best_order

from tests.support.memory_graphs import GraphBuilder, random_graph, random_inputs
from tests.support.memory_scratch import mimic_cortexm_scratch
from tests.passes.test_memory_plan import assert_no_live_overlap
from tests.support.paths import SHARED_MODELS_DIR

MODELS = SHARED_MODELS_DIR  # ../shared/models beside the repository (tests/support/paths.py)


@settings(deadline=None, max_examples=25)
@given(seed=st.integers(0, 2**32 - 1))
def test_order_is_optimal_for_small_graphs(seed: int) -> None:
    graph = random_graph(seed, max_ops=6)
    model = CostModel(graph, mimic_cortexm_scratch)
    orders = list(itertools.islice(nx.all_topological_sorts(graph.to_networkx()), 3000))
    best = min(model.peak(o) for o in orders)
    chosen = best_order(graph, mimic_cortexm_scratch)
    assert sorted(chosen) == list(range(len(graph.ops)))
    if len(orders) < 3000:  # the brute force saw every order
        assert model.peak(chosen) == best
    assert model.peak(chosen) <= model.peak(range(len(graph.ops)))


@settings(deadline=None, max_examples=25)
@given(seed=st.integers(0, 2**32 - 1))
def test_fold_pad_is_exact(seed: int) -> None:
    graph = random_graph(seed)
    folded = fold_pad(graph)
    pads = sum(op.kind == "PAD" for op in graph.ops)
    left = sum(op.kind == "PAD" for op in folded.ops)
    foldable = sum(op.kind == "PAD" and len(graph.consumers(op.outputs[0])) == 1
                   and graph.consumers(op.outputs[0])[0].kind in ("CONV_2D", "DEPTHWISE_CONV_2D")
                   and op.outputs[0] not in graph.outputs for op in graph.ops)
    assert left == pads - foldable
    inputs = random_inputs(graph, seed)
    for e, g in zip(run(graph, inputs), run(folded, inputs)):
        np.testing.assert_array_equal(g, e)


def test_fold_pad_keeps_a_pad_with_another_value() -> None:
    b = GraphBuilder(np.random.default_rng(0))
    x = b.activation((1, 4, 4, 2), "in")
    from mcuc.ir.ops.pad import PadAttrs
    padded = b.add_op("PAD", [x], PadAttrs(((0, 0), (1, 1), (1, 1), (0, 0)), value=x.quant.scalar_zero_point + 3),
                      x.quant)
    y = b.conv(padded, 3, 3)
    graph = b.graph([x], [y])
    assert fold_pad(graph) is graph


def _float_edged_graph() -> Graph:
    b = GraphBuilder(np.random.default_rng(1))
    x = Tensor("x", (1, 5, 5, 3), "float32")
    q = Quantization(np.float32(0.05), 3)
    xq = b.add_op("QUANTIZE", [x], None, q)
    y = b.conv(xq, 4, 3, pad=1)
    out = Tensor("y_float", y.shape, "float32")
    b.ops.append(Op("DEQUANTIZE", (y,), (out,), None, name="dequantize"))
    return b.graph([x], [out])


def test_strip_edge_quantization_exposes_the_int8_edges() -> None:
    graph = _float_edged_graph()
    stripped = strip_edge_quantization(graph)
    assert [t.dtype for t in stripped.inputs] == ["int8"] and [t.dtype for t in stripped.outputs] == ["int8"]
    assert [op.kind for op in stripped.ops] == ["CONV_2D"]
    assert stripped.inputs[0].quant.scalar_zero_point == 3
    x = np.random.default_rng(2).uniform(-3, 3, graph.inputs[0].shape).astype(np.float32)
    values = {}
    run(graph, [x], observe=lambda op, outs: values.update(zip(op.outputs, outs)))
    xq = values[graph.ops[0].outputs[0]]
    (got,) = run_program(plan(stripped), [xq])
    np.testing.assert_array_equal(got, values[stripped.outputs[0]])


def _shared_models() -> list[Path]:
    return sorted(MODELS.glob("*.tflite")) if MODELS.is_dir() else []


@pytest.mark.skipif(not MODELS.is_dir(), reason=f"shared models folder {MODELS} is missing")
@pytest.mark.parametrize("path", _shared_models(), ids=lambda p: p.stem)
def test_planned_shared_model_runs_byte_exact(path: Path) -> None:
    from mcuc.frontend.tflite import load_tflite

    graph = strip_edge_quantization(fold_pad(load_tflite(str(path))))
    program = plan(graph, mimic_cortexm_scratch)
    assert_no_live_overlap(program)
    assert program.arena_bytes <= program.live_bound_bytes * 1.05
    inputs = random_inputs(program.graph, 7)
    expected = run(program.graph, inputs)
    got = run_program(program, inputs)
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(g, e)


@settings(deadline=None, max_examples=40)
@given(seed=st.integers(0, 2**32 - 1), k=st.sampled_from([1, 2, 3, 5]), stride=st.sampled_from([1, 2]),
       pad=st.integers(0, 2), cin=st.integers(1, 5), cout=st.integers(1, 9))
def test_overlapping_conv_shift_is_safe(seed, k, stride, pad, cin, cout) -> None:
    """The planner's closed-form shift against the verifier's pixel-by-pixel emulation."""
    from mcuc.ir.program_check import conv_overlap_safe
    from mcuc.passes.aliasing import conv_overlap_shift

    b = GraphBuilder(np.random.default_rng(seed))
    x = b.activation((1, 7, 6, cin), "in")
    if k > 7 + 2 * pad:
        return
    if cout % cin == 0 and cout > cin:  # a depthwise conv with multiplier > 1
        b.depthwise(x, k, stride, pad, cout // cin)
    else:
        b.conv(x, cout, k, stride, pad)
    op = b.ops[-1]
    shift = conv_overlap_shift(op)
    base = 1000
    assert conv_overlap_safe(op, base + shift, base)


@pytest.mark.parametrize("k,pad,cin,cout", [(1, 0, 8, 48), (1, 0, 48, 16), (3, 1, 16, 16), (3, 1, 4, 12)])
def test_overlapping_conv_shift_is_tight(k, pad, cin, cout) -> None:
    from mcuc.ir.program_check import conv_overlap_safe
    from mcuc.passes.aliasing import conv_overlap_shift

    b = GraphBuilder(np.random.default_rng(0))
    x = b.activation((1, 10, 10, cin), "in")
    b.conv(x, cout, k, 1, pad)
    op = b.ops[-1]
    shift = conv_overlap_shift(op)
    assert conv_overlap_safe(op, 1000 + shift, 1000)
    assert not conv_overlap_safe(op, 1000 + shift - 1, 1000)
