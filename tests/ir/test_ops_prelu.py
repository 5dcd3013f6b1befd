"""PRELU (int8, and int16 with an int8 alpha): hypothesis draws types, shapes (alpha broadcast either way, constant or
computed) and quantizations (output stages with left and right shifts); one layer per
case sees every (x, alpha) pair of int8. One model holds a layer per case; every output
byte is compared with tflite-micro on the reference interpreter, llvm, the portable C on
the host and (fixed layers) an emulated Cortex-M4 and Cortex-M0. A PRELU inside a patch
stage is checked too, a single-rounding output stage must be caught, and what mcuc
refuses names the op and the rule.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mcuc.frontend.tflite import load_tflite
from mcuc.ir.errors import MCUCError

from tests.ir.test_ops_compare import NEEDS_ARM, assert_matches_oracle, quantization, shapes
from tests.support.tflite_builder import ModelBuilder


@dataclass(frozen=True)
class Case:
    x: tuple[int, ...]
    alpha: tuple[int, ...]
    qx: tuple[float, int]
    qa: tuple[float, int]
    qo: tuple[float, int]
    const_alpha: bool = True
    seed: int = 0
    dtype: str = "int8"  # input and output; alpha is int8


def model_of(cases: list[Case], every_pair: Case | None = None) -> tuple[bytes, list[np.ndarray]]:
    mb = ModelBuilder()
    ins, outs, values = [], [], []
    for i, c in enumerate(cases + ([every_pair] if every_pair else [])):
        rng = np.random.default_rng(c.seed)
        info = np.iinfo(c.dtype)
        xv = rng.integers(info.min, info.max + 1, c.x).astype(c.dtype)
        av = rng.integers(-128, 128, c.alpha).astype(np.int8)
        if c is every_pair:
            xv, av = (np.arange(-128, 128).astype(np.int8).reshape(s) for s in (c.x, c.alpha))
        x = mb.tensor(f"x{i}", c.x, c.dtype, *c.qx)
        ins.append(x)
        values.append(xv)
        if c.const_alpha:
            a = mb.tensor(f"alpha{i}", c.alpha, "int8", *c.qa, data=av)
        else:
            a = mb.tensor(f"alpha{i}", c.alpha, "int8", *c.qa)
            ins.append(a)
            values.append(av)
        y = mb.tensor(f"y{i}", tuple(np.broadcast_shapes(c.x, c.alpha)), c.dtype, *c.qo)
        mb.op("PRELU", [x, a], [y])
        outs.append(y)
    return mb.build(ins, outs), values


@st.composite
def cases(draw) -> Case:
    s1, s2 = draw(shapes())
    dtype = "int16" if draw(st.integers(0, 3)) == 0 else "int8"
    qx, qo = draw(quantization()), draw(quantization())
    if dtype == "int16":  # int16 scales and zero points as a 16x8 converter writes them
        qx, qo = (qx[0] / 256, draw(st.integers(-5, 5))), (qo[0] / 256, draw(st.integers(-5, 5)))
    return Case(s1, s2, qx, draw(quantization()), qo, draw(st.booleans()), draw(st.integers(0, 2**31)), dtype)


@settings(deadline=None, max_examples=25)
@given(case_list=st.lists(cases(), min_size=1, max_size=3), q=st.tuples(quantization(), quantization(),
                                                                        quantization()))
def test_reference_matches_oracle(case_list, q):
    every = Case((256, 1), (1, 256), *q, const_alpha=False)
    model, inputs = model_of(case_list, every)
    assert_matches_oracle(model, inputs, what=str(case_list + [every]))


@settings(deadline=None, max_examples=3)
@given(case_list=st.lists(cases(), min_size=3, max_size=3), q=st.tuples(quantization(), quantization(),
                                                                        quantization()))
def test_llvm_and_c_host_match_oracle(case_list, q):
    every = Case((256, 1), (1, 256), *q, const_alpha=False)
    model, inputs = model_of(case_list, every)
    assert_matches_oracle(model, inputs, ("reference", "llvm", "c-host"), str(case_list + [every]))


FIXED = [Case((1, 4, 4, 3), (3,), (0.05, 3), (0.01, -20), (0.04, -5)),
         Case((2, 5), (2, 5), (0.5, -128), (0.2, 127), (0.01, 0), const_alpha=False, seed=1),
         Case((3, 1, 4), (2, 1), (0.02, 10), (0.003, 0), (0.05, 100), seed=2),
         Case((2, 3, 4), (4,), (0.0002, 0), (0.01, -3), (0.0003, 0), seed=3, dtype="int16"),
         Case((5, 6), (5, 6), (0.001, 7), (0.02, 100), (0.00002, -3), const_alpha=False, seed=4, dtype="int16")]


@NEEDS_ARM
def test_cortex_m4_and_m0_match_oracle():
    every = Case((256, 1), (1, 256), (0.05, 3), (0.02, -7), (0.03, 9), const_alpha=False)
    model, inputs = model_of(FIXED, every)
    assert_matches_oracle(model, inputs, ("cortex-m4", "cortex-m0"))


def test_single_rounding_output_stage_is_caught(monkeypatch):
    from mcuc.ir.ops import prelu

    def single(x, multiplier, shift):
        x = np.asarray(x, np.int64)
        total = 31 - int(shift)
        return (x * int(multiplier) + (1 << (total - 1))) >> total

    every = Case((256, 1), (1, 256), (0.05, 3), (0.02, -7), (0.5, 9), const_alpha=False)
    model, inputs = model_of([], every)
    assert_matches_oracle(model, inputs)
    monkeypatch.setattr(prelu, "multiply_by_quantized_multiplier", single)
    with pytest.raises(AssertionError, match="differ from tflite-micro"):
        assert_matches_oracle(model, inputs)


def test_what_mcuc_refuses_names_the_op_and_rule():
    mb = ModelBuilder()
    x = mb.tensor("x", (2, 4), "int8", 0.1, 0)
    a = mb.tensor("a", (3,), "int8", 0.1, 0, data=np.ones(3))
    y = mb.tensor("y", (2, 4), "int8", 0.1, 0)
    mb.op("PRELU", [x, a], [y])
    with pytest.raises(MCUCError, match=r"PRELU.*do not broadcast"):
        load_tflite(mb.build([x], [y]))
    mb = ModelBuilder()
    x = mb.tensor("x", (2, 4), "int8", 0.1, 0)
    a = mb.tensor("a", (4,), "int16", 0.1, 0, data=np.ones(4))
    y = mb.tensor("y", (2, 4), "int8", 0.1, 0)
    mb.op("PRELU", [x, a], [y])
    with pytest.raises(MCUCError, match=r"PRELU.*alpha int16.*an int8 alpha"):
        load_tflite(mb.build([x], [y]))


def test_patch_stage_with_prelu_matches_oracle():
    """PRELU is positional: inside a 2x2 patch stage (its per-channel alpha sliced per
    patch), the reference, llvm and the portable C equal tflite-micro."""
    from mcuc.backends.cortexm import get_target, run_chost
    from mcuc.backends.cortexm.kernels import scratch_requests as cortexm_scratch
    from mcuc.backends.llvm import compile_program as compile_llvm, scratch_requests as llvm_scratch
    from mcuc.ir.program_interpreter import run_program
    from mcuc.oracle import TFLiteOracle
    from mcuc.passes.patch_schedule import schedule_with_patches

    rng = np.random.default_rng(0)
    mb = ModelBuilder()
    x = mb.tensor("x", (1, 6, 6, 4), "int8", 0.05, 3)
    w = mb.tensor("w", (4, 3, 3, 4), "int8", [0.01] * 4, [0] * 4, data=rng.integers(-60, 60, (4, 3, 3, 4)))
    b = mb.tensor("b", (4,), "int32", data=rng.integers(-500, 500, 4))
    h = mb.tensor("h", (1, 6, 6, 4), "int8", 0.06, -5)
    mb.op("CONV_2D", [x, w, b], [h], padding="SAME")
    a = mb.tensor("a", (1, 1, 4), "int8", 0.01, 0, data=rng.integers(-128, 128, (1, 1, 4)))
    p = mb.tensor("p", (1, 6, 6, 4), "int8", 0.05, 10)
    mb.op("PRELU", [h, a], [p])
    y = mb.tensor("y", (1, 6, 6, 4), "int8", 0.1, 0)
    mb.op("CONV_2D", [p, w, b], [y], padding="SAME")
    model = mb.build([x], [y])
    inputs = [rng.integers(-128, 128, (1, 6, 6, 4)).astype(np.int8)]
    want = TFLiteOracle(model)(inputs)[0]
    graph = load_tflite(model)
    program = schedule_with_patches(graph, "2x2@2", None, llvm_scratch)
    assert [s.op.kind for s in program.steps] == ["PATCH_STAGE"]
    assert np.array_equal(run_program(program, inputs)[0], want)
    assert np.array_equal(compile_llvm(program)(inputs)[0], want)
    target = get_target("cortex-m0")
    program = schedule_with_patches(graph, "2x2@2", None, lambda op, in_place: cortexm_scratch(op, in_place, target))
    assert np.array_equal(run_chost(program, inputs)[0], want)


@NEEDS_ARM
def test_generated_c_compiles_without_warnings(tmp_path):
    import subprocess

    import mcuc
    from tests.ir.test_ops_movement import STRICT

    model, _ = model_of(FIXED)
    for target, compiler in (("cortex-m0", ["gcc"]),
                             ("cortex-m4", ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard",
                                            "-mfpu=fpv4-sp-d16"])):
        folder = tmp_path / target
        mcuc.compile_to_directory(model, folder, target=target)
        done = subprocess.run([*compiler, *STRICT, "-c", "model.c", "-o", "/dev/null"], cwd=folder,
                              capture_output=True, text=True)
        assert done.returncode == 0 and "warning" not in done.stderr, (target, done.stderr[:3000])
