"""LOG_SOFTMAX (int8): hypothesis draws shapes, input quantizations and value spreads; every
case also holds one row with all 256 int8 values and 256 rows pairing each value with a
fixed one, so every difference from a row maximum is seen. One model holds a layer per
case; every output byte is compared with tflite-micro on the reference interpreter,
llvm, the portable C on the host and (fixed layers) an emulated Cortex-M4 and
Cortex-M0. The final rounding done as a floor must be caught, and the output
quantization tflite-micro's Prepare requires is required.
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
    qx: tuple[float, int] = (0.05, 3)
    spread: int = 128
    seed: int = 0


def model_of(layers: list[Layer], exhaustive: bool = True) -> tuple[bytes, list[np.ndarray]]:
    mb = ModelBuilder()
    ins, outs, values = [], [], []
    everything = np.arange(-128, 128).astype(np.int8)
    for i, c in enumerate(layers):
        rng = np.random.default_rng(c.seed)
        blocks = [(c.shape, rng.integers(-c.spread, c.spread, c.shape).astype(np.int8))]
        if exhaustive:
            pairs = np.stack([everything, np.full(256, rng.integers(-128, 128), np.int8)], axis=1)
            blocks += [((1, 256), rng.permutation(everything).reshape(1, 256)), ((256, 2), pairs)]
        for k, (shape, data) in enumerate(blocks):
            x = mb.tensor(f"x{i}_{k}", shape, "int8", *c.qx)
            y = mb.tensor(f"y{i}_{k}", shape, "int8", 16 / 256, 127)
            mb.op("LOG_SOFTMAX", [x], [y])
            ins.append(x)
            outs.append(y)
            values.append(data)
    return mb.build(ins, outs), values


@st.composite
def layers(draw) -> Layer:
    shape = tuple(draw(st.integers(1, 5)) for _ in range(draw(st.integers(1, 4))))
    scale = float(np.float32(2.0 ** draw(st.floats(-10.0, 2.0))))
    return Layer(shape, (scale, draw(st.integers(-128, 127))), draw(st.sampled_from([2, 8, 128])),
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


FIXED = [Layer((2, 3, 10), (0.1, 0)), Layer((4, 7), (0.01, -20), 128, 1), Layer((3, 5), (1.5, 5), 128, 2),
         Layer((1, 40), (2.0 ** -25, 0), 128, 3)]


@NEEDS_ARM
def test_cortex_m4_and_m0_match_oracle():
    model, inputs = model_of(FIXED)
    assert_matches_oracle(model, inputs, ("cortex-m4", "cortex-m0"))


def test_floor_instead_of_rounding_is_caught(monkeypatch):
    from mcuc.ir.ops import log_softmax

    model, inputs = model_of([Layer((3, 9), (0.07, 1))])
    assert_matches_oracle(model, inputs)
    monkeypatch.setattr(log_softmax, "rounding_divide_by_pot", lambda x, e: np.asarray(x, np.int64) >> e)
    with pytest.raises(AssertionError, match="differ from tflite-micro"):
        assert_matches_oracle(model, inputs)


def test_rows_whose_sum_could_overflow_are_refused():
    mb = ModelBuilder()
    x = mb.tensor("x", (1, 4096), "int8", 0.1, 0)
    y = mb.tensor("y", (1, 4096), "int8", 16 / 256, 127)
    mb.op("LOG_SOFTMAX", [x], [y])
    with pytest.raises(MCUCError, match=r"LOG_SOFTMAX.*4096 elements.*at most 4095"):
        load_tflite(mb.build([x], [y]))


@pytest.mark.parametrize("qo", [(0.0625, 0), (0.1, 127)])
def test_other_output_quantization_is_refused(qo):
    mb = ModelBuilder()
    x = mb.tensor("x", (2, 4), "int8", 0.1, 0)
    y = mb.tensor("y", (2, 4), "int8", *qo)
    mb.op("LOG_SOFTMAX", [x], [y])
    with pytest.raises(MCUCError, match=r"LOG_SOFTMAX.*scale 16/256 and zero point 127"):
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
