"""MAXIMUM, MINIMUM and SQUARED_DIFFERENCE (int8 and int16): one-layer
TFLite models side by side in one model, compared byte for byte with tflite-micro on the
reference interpreter, llvm, the portable C on the host and (one model) a Cortex-M4 and a Cortex-M0 under
emulation. Hypothesis draws shapes (broadcasting either way, constants on either side)
and quantizations; one SQUARED_DIFFERENCE layer sees all 65536 input pairs.
Deliberately broken arithmetic must be caught, and what tflite-micro refuses is refused
naming the op and the rule.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mcuc.backends.cortexm import get_target, run_chost, run_cortexm
from mcuc.backends.cortexm.kernels import scratch_requests as cortexm_scratch
from mcuc.backends.llvm import compile_program, scratch_requests as llvm_scratch
from mcuc.frontend.tflite import load_tflite
from mcuc.ir.errors import MCUCError
from mcuc.ir.interpreter import run
from mcuc.ir.ops import squared_difference as sqd_op
from mcuc.oracle import TFLiteOracle
from mcuc.passes import plan

from tests.support.tflite_builder import ModelBuilder

NEEDS_ARM = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                               reason="arm-none-eabi-gcc is not installed (Debian: gcc-arm-none-eabi)")
KINDS = ("MAXIMUM", "MINIMUM", "SQUARED_DIFFERENCE")


def outputs_on(backend: str, model: bytes, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """The model's outputs on one backend (c-host plans with cortex-m0's scratch)."""
    return graph_outputs_on(backend, load_tflite(model), inputs)


def graph_outputs_on(backend: str, graph, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """A loaded (or rewritten) graph's outputs on one backend."""
    if backend == "reference":
        return run(graph, inputs)
    if backend == "llvm":
        return compile_program(plan(graph, llvm_scratch))(inputs)
    target = get_target("cortex-m0" if backend == "c-host" else backend)
    program = plan(graph, scratch=lambda op, in_place: cortexm_scratch(op, in_place, target))
    if backend == "c-host":
        return run_chost(program, inputs)
    return run_cortexm(program, inputs, target).outputs


def assert_matches_oracle(model: bytes, inputs: list[np.ndarray], backends=("reference",), what: str = "") -> None:
    want = TFLiteOracle(model)(inputs)
    for backend in backends:
        got = outputs_on(backend, model, inputs)
        assert len(got) == len(want)
        for k, (g, w) in enumerate(zip(got, want)):
            g, w = np.asarray(g), np.asarray(w)
            assert g.dtype == w.dtype and g.shape == w.shape, \
                f"{backend}: output {k}: {g.dtype}{g.shape} vs {w.dtype}{w.shape}"
            g, w = g.reshape(-1), w.reshape(-1)
            wrong = np.flatnonzero(g != w)
            assert wrong.size == 0, (f"{backend}: {what} output {k}: {wrong.size} of {w.size} values differ from "
                                     f"tflite-micro: {g[wrong[:4]].tolist()} vs {w[wrong[:4]].tolist()}")


@dataclass(frozen=True)
class Case:
    kind: str
    shape1: tuple[int, ...]
    shape2: tuple[int, ...]
    q1: tuple[float, int]
    q2: tuple[float, int]
    qo: tuple[float, int]
    dtype: str = "int8"
    const: int = 0  # 0: both inputs at run time; 1 or 2: that input is a constant
    seed: int = 0


def _broadcast(a, b):
    return tuple(np.broadcast_shapes(tuple(a), tuple(b)))


def model_and_inputs(cases: list[Case]) -> tuple[bytes, list[np.ndarray]]:
    mb = ModelBuilder()
    ins, outs, values = [], [], []
    for i, c in enumerate(cases):
        rng = np.random.default_rng(c.seed)
        info = np.iinfo(c.dtype)
        tensors = []
        for k, (shape, q) in enumerate(((c.shape1, c.q1), (c.shape2, c.q2)), start=1):
            data = rng.integers(info.min, info.max + 1, size=shape).astype(c.dtype)
            if c.const == k:
                tensors.append(mb.tensor(f"c{i}_{k}", shape, c.dtype, *q, data=data))
            else:
                t = mb.tensor(f"x{i}_{k}", shape, c.dtype, *q)
                tensors.append(t)
                ins.append(t)
                values.append(data)
        y = mb.tensor(f"y{i}_{c.kind}", _broadcast(c.shape1, c.shape2), c.dtype, *c.qo)
        mb.op(c.kind, tensors, [y])
        outs.append(y)
    return mb.build(ins, outs), values


def exhaustive_case(q1, q2, qo) -> tuple[bytes, list[np.ndarray]]:
    """SQUARED_DIFFERENCE over every int8 pair: [256, 1] against [1, 256]."""
    mb = ModelBuilder()
    a = mb.tensor("a", (256, 1), "int8", *q1)
    b = mb.tensor("b", (1, 256), "int8", *q2)
    y = mb.tensor("y", (256, 256), "int8", *qo)
    mb.op("SQUARED_DIFFERENCE", [a, b], [y])
    values = np.arange(-128, 128).astype(np.int8)
    return mb.build([a, b], [y]), [values.reshape(256, 1), values.reshape(1, 256)]


@st.composite
def quantization(draw) -> tuple[float, int]:
    return float(np.float32(2.0 ** draw(st.floats(-9.0, 1.0)))), draw(st.integers(-128, 127))


@st.composite
def shapes(draw) -> tuple[tuple[int, ...], tuple[int, ...]]:
    rank = draw(st.integers(1, 4))
    full = tuple(draw(st.integers(1, 5)) for _ in range(rank))
    def side():
        r = draw(st.integers(0, rank))
        return tuple(1 if draw(st.booleans()) else d for d in full[rank - r:]) if r else (1,)
    if draw(st.integers(0, 2)) == 0:
        return full, full
    return (side(), full) if draw(st.booleans()) else (full, side())


@st.composite
def cases(draw, kind: str) -> Case:
    s1, s2 = draw(shapes())
    q1 = draw(quantization())
    same = kind != "SQUARED_DIFFERENCE" and draw(st.integers(0, 3)) > 0  # what the converter writes
    q2 = q1 if same else draw(quantization())
    qo = q1 if same else draw(quantization())
    dtype = "int16" if draw(st.integers(0, 3)) == 0 else "int8"
    if dtype == "int16":
        q1, q2, qo = (q1[0], 0), (q2[0], 0), (qo[0], 0)
    return Case(kind, s1, s2, q1, q2, qo, dtype, draw(st.integers(0, 2)), draw(st.integers(0, 2**31)))


@settings(deadline=None, max_examples=30)
@given(data=st.data())
def test_reference_matches_oracle(data):
    kinds_drawn = [data.draw(st.sampled_from(KINDS)) for _ in range(3)]
    case_list = [data.draw(cases(k)) for k in kinds_drawn]
    model, inputs = model_and_inputs(case_list)
    assert_matches_oracle(model, inputs, what=str(case_list))


@settings(deadline=None, max_examples=3)
@given(data=st.data())
def test_llvm_and_c_host_match_oracle(data):
    case_list = [data.draw(cases(k)) for k in KINDS]
    model, inputs = model_and_inputs(case_list)
    assert_matches_oracle(model, inputs, ("reference", "llvm", "c-host"), str(case_list))


@settings(deadline=None, max_examples=6)
@given(q1=quantization(), q2=quantization(), qo=quantization())
def test_squared_difference_every_pair_reference(q1, q2, qo):
    model, inputs = exhaustive_case(q1, q2, qo)
    assert_matches_oracle(model, inputs)


def test_squared_difference_every_pair_llvm_c_host():
    """A large output multiplier (left shift > 0), a small one, and a huge one (the scaled
    square wraps in int32, as does adding the zero point)."""
    for qs in [((0.05, 3), (0.02, -7), (0.0004, -100)), ((0.5, -128), (0.7, 127), (3.0, 5)),
               ((0.5, -128), (0.7, 127), (1e-6, 127))]:
        model, inputs = exhaustive_case(*qs)
        assert_matches_oracle(model, inputs, ("llvm", "c-host"))


@NEEDS_ARM
def test_cortex_m4_and_m0_match_oracle():
    case_list = [Case("MAXIMUM", (2, 3, 4), (3, 1), (0.1, 3), (0.1, 3), (0.1, 3)),
                 Case("MINIMUM", (5,), (2, 5), (0.1, 3), (0.2, -3), (0.3, 1), const=1),
                 Case("SQUARED_DIFFERENCE", (1, 4, 4, 3), (1, 4, 4, 3), (0.05, 3), (0.02, -7), (0.01, -100)),
                 Case("MAXIMUM", (6, 2), (6, 2), (0.1, 0), (0.1, 0), (0.1, 0), dtype="int16"),
                 Case("SQUARED_DIFFERENCE", (3, 4), (4,), (0.002, 0), (0.003, 0), (0.01, 0), dtype="int16")]
    model, inputs = model_and_inputs(case_list)
    assert_matches_oracle(model, inputs, ("cortex-m4", "cortex-m0"))


# -- broken arithmetic is caught --------------------------------------------------------------

def test_single_rounding_output_stage_is_caught(monkeypatch):
    def single(x, multiplier, shift):
        x = np.asarray(x, np.int64)
        total = 31 - int(shift)
        return (x * int(multiplier) + (1 << (total - 1))) >> total

    monkeypatch.setattr(sqd_op, "multiply_by_quantized_multiplier", single)
    model, inputs = exhaustive_case((0.05, 3), (0.02, -7), (0.004, -100))
    with pytest.raises(AssertionError, match="differ from tflite-micro"):
        assert_matches_oracle(model, inputs)


def test_left_shift_8_is_caught(monkeypatch):
    monkeypatch.setattr(sqd_op, "LEFT_SHIFT", 8)
    model, inputs = exhaustive_case((0.05, 3), (0.02, -7), (0.004, -100))
    with pytest.raises(AssertionError, match="differ from tflite-micro"):
        assert_matches_oracle(model, inputs)


# -- refusals ----------------------------------------------------------------------------------

def _load(kind, dtype="int8", q=(0.1, 0), shapes=((2, 3), (2, 3)), out_shape=(2, 3)):
    mb = ModelBuilder()
    a = mb.tensor("a", shapes[0], dtype, *q)
    b = mb.tensor("b", shapes[1], dtype, *q)
    y = mb.tensor("y", out_shape, dtype, *q)
    mb.op(kind, [a, b], [y])
    return load_tflite(mb.build([a, b], [y]))


def test_int16_squared_difference_with_a_zero_point_is_refused():
    with pytest.raises(MCUCError, match=r"SQUARED_DIFFERENCE.*zero point 3; TFLite Micro's int16 .* requires 0"):
        _load("SQUARED_DIFFERENCE", "int16", q=(0.1, 3))


@pytest.mark.parametrize("kind", KINDS)
def test_shapes_that_do_not_broadcast_are_refused(kind):
    with pytest.raises(MCUCError, match=rf"{kind}.*do not broadcast"):
        _load(kind, shapes=((2, 3), (3, 2)))


@pytest.mark.parametrize("kind", ["MAXIMUM", "MINIMUM"])
def test_int32_is_refused(kind):
    with pytest.raises(MCUCError, match=rf"{kind}.*int32; only int8 and int16"):
        _load(kind, "int32", q=(0.1, 0))


def test_patch_stage_with_maximum_and_squared_difference_matches_oracle():
    """Both ops are positional: inside a 2x2 patch stage (a broadcast constant sliced per
    patch), the reference, llvm and the portable C equal tflite-micro."""
    from mcuc.backends.llvm import compile_program as compile_llvm
    from mcuc.ir.program_interpreter import run_program
    from mcuc.passes.patch_schedule import schedule_with_patches

    rng = np.random.default_rng(0)
    mb = ModelBuilder()
    x = mb.tensor("x", (1, 8, 8, 4), "int8", 0.05, 3)
    w = mb.tensor("w", (4, 3, 3, 4), "int8", [0.01] * 4, [0] * 4, data=rng.integers(-60, 60, (4, 3, 3, 4)))
    b = mb.tensor("b", (4,), "int32", data=rng.integers(-500, 500, 4))
    h = mb.tensor("h", (1, 8, 8, 4), "int8", 0.06, -5)
    mb.op("CONV_2D", [x, w, b], [h], padding="SAME")
    c = mb.tensor("c", (4,), "int8", 0.06, -5, data=rng.integers(-128, 128, 4))
    m = mb.tensor("m", (1, 8, 8, 4), "int8", 0.06, -5)
    mb.op("MAXIMUM", [h, c], [m])
    d = mb.tensor("d", (1, 8, 8, 4), "int8", 0.06, -5)
    mb.op("SQUARED_DIFFERENCE", [m, h], [d])
    y = mb.tensor("y", (1, 8, 8, 4), "int8", 0.1, 0)
    mb.op("CONV_2D", [d, w, b], [y], padding="SAME")
    model = mb.build([x], [y])
    inputs = [rng.integers(-128, 128, (1, 8, 8, 4)).astype(np.int8)]
    want = TFLiteOracle(model)(inputs)[0]
    graph = load_tflite(model)
    program = schedule_with_patches(graph, "2x2@3", None, llvm_scratch)
    assert [s.op.kind for s in program.steps] == ["PATCH_STAGE"]
    assert np.array_equal(run_program(program, inputs)[0], want)
    assert np.array_equal(compile_llvm(program)(inputs)[0], want)
    target = get_target("cortex-m0")
    program = schedule_with_patches(graph, "2x2@3", None, lambda op, in_place: cortexm_scratch(op, in_place, target))
    assert np.array_equal(run_chost(program, inputs)[0], want)
