"""SOFTMAX with int16 input and output against tflite-micro (ir/ops/softmax_int16.py):
its two fixed 513-entry tables built as LUTPopulateInt16 builds them, the row
arithmetic, and the kernels of every backend."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mcuc.frontend.tflite import load_tflite
from mcuc.ir.errors import MCUCError
from mcuc.ir.ops import softmax_int16
from tests.ir.test_ops_compare import NEEDS_ARM, assert_matches_oracle
from tests.support.tflite_builder import ModelBuilder


def _model(shape: tuple[int, ...], in_scale: float, beta: float, out=(1.0 / 32768, 0), in_zp: int = 0) -> bytes:
    mb = ModelBuilder()
    x = mb.tensor("x", shape, "int16", np.float32(in_scale), in_zp)
    y = mb.tensor("y", shape, "int16", np.float32(out[0]), out[1])
    mb.op("SOFTMAX", [x], [y], beta=beta)
    return mb.build([x], [y])


def _inputs(shape, rng, spread: int) -> list[np.ndarray]:
    top = rng.integers(-32768 + spread, 32768, shape[:-1] + (1,))
    return [np.clip(top - rng.integers(0, spread + 1, shape), -32768, 32767).astype(np.int16)]


@settings(deadline=None, max_examples=40)
@given(rows=st.integers(1, 3), depth=st.integers(1, 40), in_scale=st.floats(1e-5, 2e-2), beta=st.sampled_from([1.0, 0.5, 2.0]),
       spread=st.sampled_from([10, 300, 5000, 65535]), seed=st.integers(0, 2**31))
def test_reference_and_llvm_match_tflite_micro(rows, depth, in_scale, beta, spread, seed):
    shape = (rows, depth)
    model = _model(shape, in_scale, beta)
    assert_matches_oracle(model, _inputs(shape, np.random.default_rng(seed), spread), backends=("reference", "llvm"),
                          what=f"{shape} scale {in_scale} beta {beta}")


def test_every_difference_from_the_row_maximum():
    """Rows [x, 0] for every x in [-32768, 0] at scales that map the whole int16 range
    onto [-10, 0] and beyond: every entry of the exp table and the interpolation between
    them, and many sums through the 1/(1 + x) table."""
    x = np.arange(-32768, 1, dtype=np.int64)
    for in_scale in (10.0 / 65535, 10.0 / 32768, 3e-4, 1e-5):
        rows = np.stack([x, np.zeros_like(x)], axis=1).astype(np.int16)
        assert_matches_oracle(_model(rows.shape, in_scale, 1.0), [rows], what=f"scale {in_scale}")


def test_the_tables_are_the_interpolation_corrected_samples():
    """The exp table starts at exp(-10) ~ 0 and ends at 1.0 (32767 in Q0.15); the
    1/(1 + x) table falls from 1 to 1/2; a table without the midpoint correction differs."""
    exp, recip = softmax_int16.exp_lut(), softmax_int16.one_over_one_plus_x_lut()
    assert len(exp) == len(recip) == softmax_int16.LUT_SIZE
    assert exp[0] in (1, 2) and exp[-1] == 32767 and recip[0] == 32767 and abs(recip[-1] - 16384) <= 1
    assert all(a <= b for a, b in zip(exp, exp[1:])) and all(a >= b for a, b in zip(recip, recip[1:]))
    plain = [int(np.round(np.exp(-10 + 10 * i / 512) * 32768)) for i in range(512)]
    assert list(exp[:512]) != plain


def test_quantization_tflite_micro_refuses_is_refused():
    with pytest.raises(MCUCError, match="int16 output quantization must be scale 1/32768, zero point 0"):
        load_tflite(_model((1, 8), 1e-3, 1.0, out=(1.0 / 65536, 0)))
    with pytest.raises(MCUCError, match="int16 input zero point 5"):
        load_tflite(_model((1, 8), 1e-3, 1.0, in_zp=5))


@settings(deadline=None, max_examples=10)
@given(depth=st.integers(1, 30), in_scale=st.floats(1e-4, 1e-2), spread=st.sampled_from([50, 4000, 65535]),
       seed=st.integers(0, 2**31))
def test_portable_c_matches_tflite_micro(depth, in_scale, spread, seed):
    shape = (2, depth)
    inputs = _inputs(shape, np.random.default_rng(seed), spread)
    assert_matches_oracle(_model(shape, in_scale, 1.0), inputs, backends=("c-host",))


@NEEDS_ARM
@pytest.mark.parametrize("backend", ["cortex-m4", "cortex-m0"])
def test_cortex_m_matches_tflite_micro(backend):
    shape = (3, 1, 37)
    inputs = _inputs(shape, np.random.default_rng(4), 6000)
    assert_matches_oracle(_model(shape, 2e-3, 1.0), inputs, backends=(backend,))
