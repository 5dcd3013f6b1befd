"""L2_NORMALIZATION (int8): hypothesis draws shapes (rank 1 to 4), input zero points and
value spreads (rows near the zero point reach the acc <= 1 case), and output
quantizations (tflite-micro writes q/128 whatever the output says); every case also holds
256 one-element rows and 256 rows pairing each int8 value with a fixed one. One model
holds a layer per case; every output byte is compared with tflite-micro on the reference
interpreter, llvm, the portable C on the host and (fixed layers) an emulated Cortex-M4
and Cortex-M0. A broken Newton-Raphson step must be caught; what Prepare refuses is refused.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mcuc.frontend.tflite import load_tflite
from mcuc.ir.errors import MCUCError

from tests.ir.test_ops_compare import NEEDS_ARM, assert_matches_oracle
from tests.support.tflite_builder import ModelBuilder


@dataclass(frozen=True)
class Layer:
    shape: tuple[int, ...]
    zp: int = 0
    spread: int = 128
    qo: tuple[float, int] = (1 / 128, 0)
    seed: int = 0


def model_of(layers: list[Layer], exhaustive: bool = True) -> tuple[bytes, list[np.ndarray]]:
    mb = ModelBuilder()
    ins, outs, values = [], [], []
    everything = np.arange(-128, 128).astype(np.int8)
    for i, c in enumerate(layers):
        rng = np.random.default_rng(c.seed)
        data = np.clip(c.zp + rng.integers(-c.spread, c.spread + 1, c.shape), -128, 127).astype(np.int8)
        blocks = [(c.shape, data)]
        if exhaustive:
            pairs = np.stack([everything, np.full(256, rng.integers(-128, 128), np.int8)], axis=1)
            blocks += [((256, 1), everything.reshape(256, 1)), ((256, 2), pairs)]
        for k, (shape, v) in enumerate(blocks):
            x = mb.tensor(f"x{i}_{k}", shape, "int8", 0.05, c.zp)
            y = mb.tensor(f"y{i}_{k}", shape, "int8", *c.qo)
            mb.op("L2_NORMALIZATION", [x], [y])
            ins.append(x)
            outs.append(y)
            values.append(v)
    return mb.build(ins, outs), values


@st.composite
def layers(draw) -> Layer:
    shape = tuple(draw(st.integers(1, 6)) for _ in range(draw(st.integers(1, 4))))
    qo = (1 / 128, 0) if draw(st.booleans()) else (float(np.float32(2.0 ** draw(st.floats(-8.0, 0.0)))),
                                                    draw(st.integers(-128, 127)))
    return Layer(shape, draw(st.integers(-128, 127)), draw(st.sampled_from([1, 3, 128])), qo,
                 draw(st.integers(0, 2**31)))


@settings(deadline=None, max_examples=25)
@given(case=st.lists(layers(), min_size=1, max_size=2))
def test_reference_matches_oracle(case):
    model, inputs = model_of(case)
    assert_matches_oracle(model, inputs, what=str(case))


@settings(deadline=None, max_examples=3)
@given(case=st.lists(layers(), min_size=2, max_size=2))
def test_llvm_and_c_host_match_oracle(case):
    model, inputs = model_of(case)
    assert_matches_oracle(model, inputs, ("reference", "llvm", "c-host"), str(case))


FIXED = [Layer((2, 3, 10), 0), Layer((4, 7), -20, 1, (0.3, 5), 1), Layer((3, 300), 100, 128, seed=2),
         Layer((5,), -128, 128, seed=3)]


@NEEDS_ARM
def test_cortex_m4_and_m0_match_oracle():
    model, inputs = model_of(FIXED)
    assert_matches_oracle(model, inputs, ("cortex-m4", "cortex-m0"))


def test_a_skipped_rescale_in_the_last_newton_step_is_caught(monkeypatch):
    from mcuc.ir.ops import l2_normalization as l2

    model, inputs = model_of([Layer((6, 9), 3)])
    assert_matches_oracle(model, inputs)
    real = l2.saturating_rounding_multiply_by_pot
    calls = {"n": 0}

    def skip_last_step(x, exponent):  # the 5th step's final rescale returns its input unchanged
        calls["n"] += 1
        return x if calls["n"] % 10 == 0 else real(x, exponent)

    monkeypatch.setattr(l2, "saturating_rounding_multiply_by_pot", skip_last_step)
    with pytest.raises(AssertionError, match="differ from tflite-micro"):
        assert_matches_oracle(model, inputs)


def test_what_prepare_refuses_is_refused():
    mb = ModelBuilder()
    x = mb.tensor("x", (1, 2, 2, 2, 4), "int8", 0.1, 0)
    y = mb.tensor("y", (1, 2, 2, 2, 4), "int8", 1 / 128, 0)
    mb.op("L2_NORMALIZATION", [x], [y])
    with pytest.raises(MCUCError, match=r"L2_NORMALIZATION.*rank 5"):
        load_tflite(mb.build([x], [y]))
    mb = ModelBuilder()
    x = mb.tensor("x", (2, 4), "int8", 0.1, 0)
    y = mb.tensor("y", (2, 4), "int8", 1 / 128, 0)
    mb.op("L2_NORMALIZATION", [x], [y], fused_activation_function="RELU")
    with pytest.raises(MCUCError, match=r"L2_NORMALIZATION.*fused_activation_function"):
        load_tflite(mb.build([x], [y]))


@NEEDS_ARM
def test_generated_c_compiles_without_warnings(tmp_path):
    import subprocess

    import mcuc
    from tests.ir.test_ops_movement import STRICT

    model, _ = model_of(FIXED[:2], exhaustive=False)
    for target, compiler in (("cortex-m0", ["gcc"]),
                             ("cortex-m4", ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard",
                                            "-mfpu=fpv4-sp-d16"])):
        folder = tmp_path / target
        mcuc.compile_to_directory(model, folder, target=target)
        done = subprocess.run([*compiler, *STRICT, "-c", "model.c", "-o", "/dev/null"], cwd=folder,
                              capture_output=True, text=True)
        assert done.returncode == 0 and "warning" not in done.stderr, (target, done.stderr[:3000])


def test_patch_stage_with_l2_norm_and_log_softmax_matches_oracle():
    """Both normalise along channels, which patch regions never split: inside a 2x2 patch
    stage the reference, llvm and the portable C equal tflite-micro."""
    from mcuc.backends.cortexm import get_target, run_chost
    from mcuc.backends.cortexm.kernels import scratch_requests as cortexm_scratch
    from mcuc.backends.llvm import compile_program as compile_llvm, scratch_requests as llvm_scratch
    from mcuc.ir.program_interpreter import run_program
    from mcuc.oracle import TFLiteOracle
    from mcuc.passes.patch_schedule import schedule_with_patches

    rng = np.random.default_rng(1)
    mb = ModelBuilder()
    x = mb.tensor("x", (1, 6, 6, 4), "int8", 0.05, 3)
    w = mb.tensor("w", (4, 3, 3, 4), "int8", [0.01] * 4, [0] * 4, data=rng.integers(-60, 60, (4, 3, 3, 4)))
    b = mb.tensor("b", (4,), "int32", data=rng.integers(-500, 500, 4))
    h = mb.tensor("h", (1, 6, 6, 4), "int8", 0.06, -5)
    mb.op("CONV_2D", [x, w, b], [h], padding="SAME")
    n = mb.tensor("n", (1, 6, 6, 4), "int8", 1 / 128, 0)
    mb.op("L2_NORMALIZATION", [h], [n])
    s = mb.tensor("s", (1, 6, 6, 4), "int8", 16 / 256, 127)
    mb.op("LOG_SOFTMAX", [n], [s])
    y = mb.tensor("y", (1, 6, 6, 4), "int8", 0.1, 0)
    mb.op("CONV_2D", [s, w, b], [y], padding="SAME")
    model = mb.build([x], [y])
    inputs = [rng.integers(-128, 128, (1, 6, 6, 4)).astype(np.int8)]
    want = TFLiteOracle(model)(inputs)[0]
    graph = load_tflite(model)
    program = schedule_with_patches(graph, "2x2@3", None, llvm_scratch)
    assert [st.op.kind for st in program.steps] == ["PATCH_STAGE"]
    assert np.array_equal(run_program(program, inputs)[0], want)
    assert np.array_equal(compile_llvm(program)(inputs)[0], want)
    target = get_target("cortex-m0")
    program = schedule_with_patches(graph, "2x2@3", None, lambda op, in_place: cortexm_scratch(op, in_place, target))
    assert np.array_equal(run_chost(program, inputs)[0], want)
