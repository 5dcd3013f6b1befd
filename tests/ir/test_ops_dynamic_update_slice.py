"""DYNAMIC_UPDATE_SLICE (int8, int16) against tflite-micro on every backend
(ir/ops/dynamic_update_slice.py): ranks 1 to 4, updates up to the operand's size, start
indices int32 or int64, constant (static copies) or computed at run time (the update's
destination computed by the kernel), out of range on either side (clamped as tflite-micro
clamps them), and what tflite-micro's Prepare refuses."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mcuc.frontend.tflite import load_tflite
from mcuc.ir.errors import MCUCError
from mcuc.ir.ops import dynamic_update_slice, movement
from tests.ir.test_ops_compare import NEEDS_ARM, assert_matches_oracle
from tests.support.tflite_builder import ModelBuilder


def _model(operand_shape, update_shape, dtype="int8", index_dtype="int32", start=None) -> bytes:
    """`start` given: constant start indices; else a third graph input."""
    mb = ModelBuilder()
    x = mb.tensor("x", operand_shape, dtype, scale=0.1, zero_point=0)
    u = mb.tensor("u", update_shape, dtype, scale=0.3, zero_point=0)  # bytes copied whatever the scale
    i = mb.tensor("start", (len(operand_shape),), index_dtype, data=None if start is None else np.asarray(start))
    y = mb.tensor("y", operand_shape, dtype, scale=0.1, zero_point=0)
    mb.op("DYNAMIC_UPDATE_SLICE", [x, u, i], [y])
    return mb.build([x, u] + ([i] if start is None else []), [y])


@st.composite
def cases(draw):
    rank = draw(st.integers(1, 4))
    operand = tuple(draw(st.lists(st.integers(1, 5), min_size=rank, max_size=rank)))
    update = tuple(draw(st.integers(1, d)) for d in operand)  # mcuc refuses empty tensors
    start = [draw(st.integers(-3, d + 2)) for d in operand]
    return operand, update, start


def _inputs(operand, update, dtype, seed):
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    return [rng.integers(info.min, info.max + 1, operand).astype(dtype),
            rng.integers(info.min, info.max + 1, update).astype(dtype)]


@settings(deadline=None, max_examples=40)
@given(case=cases(), dtype=st.sampled_from(["int8", "int16"]), index_dtype=st.sampled_from(["int32", "int64"]),
       constant=st.booleans(), seed=st.integers(0, 2**31))
def test_reference_and_llvm_match_tflite_micro(case, dtype, index_dtype, constant, seed):
    operand, update, start = case
    model = _model(operand, update, dtype, index_dtype, start if constant else None)
    inputs = _inputs(operand, update, dtype, seed) + ([] if constant else [np.asarray(start, index_dtype)])
    assert_matches_oracle(model, inputs, ("reference", "llvm"), what=f"{operand} <- {update} at {start}")


@settings(deadline=None, max_examples=6)
@given(case=cases(), dtype=st.sampled_from(["int8", "int16"]), index_dtype=st.sampled_from(["int32", "int64"]),
       constant=st.booleans(), seed=st.integers(0, 2**31))
@pytest.mark.parametrize("backend", ["c-host", pytest.param("cortex-m4", marks=NEEDS_ARM)])
def test_the_c_backends_match_tflite_micro(backend, case, dtype, index_dtype, constant, seed):
    operand, update, start = case
    model = _model(operand, update, dtype, index_dtype, start if constant else None)
    inputs = _inputs(operand, update, dtype, seed) + ([] if constant else [np.asarray(start, index_dtype)])
    assert_matches_oracle(model, inputs, (backend,), what=f"{operand} <- {update} at {start}")


@pytest.mark.parametrize("backend", ["reference", "llvm", "c-host", pytest.param("cortex-m4", marks=NEEDS_ARM),
                                     pytest.param("cortex-m0", marks=NEEDS_ARM)])
def test_a_window_written_at_run_time_positions(backend):
    """The same model fed starts inside, past the end and before the start of every axis:
    each clamped as tflite-micro clamps it (a kernel that did not clamp, or clamped one
    axis with another's extent, would write elsewhere)."""
    model = _model((3, 6, 4), (2, 3, 4), "int16", "int64")
    for start in ([0, 0, 0], [1, 2, 0], [5, 9, 3], [-4, -1, -2], [2, 3, 0]):
        inputs = _inputs((3, 6, 4), (2, 3, 4), "int16", sum(start) + 10) + [np.asarray(start, np.int64)]
        assert_matches_oracle(model, inputs, (backend,), what=f"start {start}")


def test_the_static_copies_equal_evaluate_and_clamp():
    graph = load_tflite(_model((4, 5), (2, 3), start=[3, -1]))
    op = graph.ops[0]
    assert dynamic_update_slice.clamped_start(op, [3, -1]) == [2, 0]
    rng = np.random.default_rng(0)
    xs = [rng.integers(-128, 128, (4, 5)).astype(np.int8), rng.integers(-128, 128, (2, 3)).astype(np.int8),
          np.asarray([3, -1], np.int32)]
    want = dynamic_update_slice.evaluate(op, xs)[0]
    assert np.array_equal(movement.run_moves(op, xs)[0], want)
    assert np.array_equal(want[2:4, 0:3], xs[1]) and np.array_equal(want[:2], xs[0][:2])


def test_what_tflite_micro_refuses_is_refused():
    with pytest.raises(MCUCError, match="DYNAMIC_UPDATE_SLICE.*update \\[2, 6\\] is larger than the operand"):
        load_tflite(_model((4, 5), (2, 6)))
    with pytest.raises(MCUCError, match="DYNAMIC_UPDATE_SLICE.*update \\[2\\] must have the operand's rank 2"):
        load_tflite(_model((4, 5), (2,)))
    mb = ModelBuilder()
    x = mb.tensor("x", (4,), "int8", scale=0.1)
    u = mb.tensor("u", (2,), "int16", scale=0.1)
    i = mb.tensor("start", (1,), "int32")
    y = mb.tensor("y", (4,), "int8", scale=0.1)
    mb.op("DYNAMIC_UPDATE_SLICE", [x, u, i], [y])
    with pytest.raises(MCUCError, match="DYNAMIC_UPDATE_SLICE.*must share one type"):
        load_tflite(mb.build([x, u, i], [y]))
