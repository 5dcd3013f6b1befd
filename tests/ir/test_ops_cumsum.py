"""CUMSUM (int8) against tflite-micro on every backend (ir/ops/cumsum.py): any axis,
exclusive and reverse, lines long enough for the int32 sum to wrap, and what
tflite-micro's Prepare refuses."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mcuc.frontend.tflite import load_tflite
from mcuc.ir.errors import MCUCError
from tests.ir.test_ops_compare import NEEDS_ARM, assert_matches_oracle
from tests.support.tflite_builder import ModelBuilder


def _model(shape, axis: int, exclusive: bool, reverse: bool, q, out_q) -> bytes:
    mb = ModelBuilder()
    x = mb.tensor("x", shape, "int8", np.float32(q[0]), q[1])
    y = mb.tensor("y", shape, "int8", np.float32(out_q[0]), out_q[1])
    mb.op("CUMSUM", [x, mb.const("axis", [axis])], [y], exclusive=exclusive, reverse=reverse)
    return mb.build([x], [y])


@settings(deadline=None, max_examples=40)
@given(shape=st.sampled_from([(9,), (2, 5), (3, 4, 2), (1, 2, 3, 4)]), data=st.data(), exclusive=st.booleans(),
       reverse=st.booleans(), scale=st.floats(0.005, 0.1), zp=st.integers(-128, 127), gain=st.floats(0.5, 12.0),
       out_zp=st.integers(-128, 127), seed=st.integers(0, 2**31))
def test_reference_and_llvm_match_tflite_micro(shape, data, exclusive, reverse, scale, zp, gain, out_zp, seed):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    model = _model(shape, axis, exclusive, reverse, (scale, zp), (scale * gain, out_zp))
    x = np.random.default_rng(seed).integers(-128, 128, shape).astype(np.int8)
    assert_matches_oracle(model, [x], backends=("reference", "llvm"), what=f"{shape} axis {axis}")


@pytest.mark.parametrize("backend", ["reference", "llvm", "c-host", pytest.param("cortex-m4", marks=NEEDS_ARM),
                                     pytest.param("cortex-m0", marks=NEEDS_ARM)])
def test_long_lines_wrap_as_tflite_micro_does(backend):
    """60 full-range elements per line: the int32 sum passes 2^31 and wraps."""
    shape = (2, 60, 3)
    x = np.where(np.arange(np.prod(shape)).reshape(shape) % 2, 127, 126).astype(np.int8)
    for exclusive, reverse in ((False, False), (True, True)):
        assert_matches_oracle(_model(shape, 1, exclusive, reverse, (0.05, -128), (0.9, -100)), [x],
                              backends=(backend,), what=f"exclusive {exclusive} reverse {reverse}")


def test_what_tflite_micro_refuses_is_refused():
    with pytest.raises(MCUCError, match="CUMSUM.*output rescale .* is not in \\(0, 1\\)"):
        load_tflite(_model((4,), 0, False, False, (0.05, 0), (1e-9, 0)))
    with pytest.raises(MCUCError, match="CUMSUM.*axis 2 is out of range"):
        load_tflite(_model((4, 3), 2, False, False, (0.05, 0), (0.1, 0)))
