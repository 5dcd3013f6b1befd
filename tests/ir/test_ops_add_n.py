"""ADD_N (int8) against tflite-micro on every backend (ir/ops/add_n.py): two to six inputs
of one shape and quantization, output scales around theirs, and what tflite-micro's
Prepare refuses."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mcuc.frontend.tflite import load_tflite
from mcuc.ir.errors import MCUCError
from tests.ir.test_ops_compare import NEEDS_ARM, assert_matches_oracle
from tests.support.tflite_builder import ModelBuilder


def _model(n: int, shape, q, out_q, other_q=None) -> bytes:
    mb = ModelBuilder()
    xs = [mb.tensor(f"x{k}", shape, "int8", np.float32((other_q or q)[0] if k == n - 1 else q[0]),
                    (other_q or q)[1] if k == n - 1 else q[1]) for k in range(n)]
    y = mb.tensor("y", shape, "int8", np.float32(out_q[0]), out_q[1])
    mb.op("ADD_N", xs, [y])
    return mb.build(xs, [y])


def _inputs(n, shape, seed):
    rng = np.random.default_rng(seed)
    return [rng.integers(-128, 128, shape).astype(np.int8) for _ in range(n)]


@settings(deadline=None, max_examples=40)
@given(n=st.integers(2, 6), shape=st.sampled_from([(7,), (2, 3, 4), (1, 5, 5, 3)]), scale=st.floats(0.005, 0.2),
       zp=st.integers(-128, 127), gain=st.floats(0.3, 8.0), out_zp=st.integers(-128, 127), seed=st.integers(0, 2**31))
def test_reference_and_llvm_match_tflite_micro(n, shape, scale, zp, gain, out_zp, seed):
    model = _model(n, shape, (scale, zp), (scale * gain, out_zp))
    assert_matches_oracle(model, _inputs(n, shape, seed), backends=("reference", "llvm"),
                          what=f"{n} inputs scale {scale} zp {zp} gain {gain}")


@pytest.mark.parametrize("backend", ["c-host", pytest.param("cortex-m4", marks=NEEDS_ARM),
                                     pytest.param("cortex-m0", marks=NEEDS_ARM)])
def test_c_kernel_matches_tflite_micro(backend):
    for n, q, out_q in ((2, (0.05, -7), (0.07, 3)), (5, (0.02, 100), (0.11, -128)), (15, (0.01, -128), (0.1, 0))):
        assert_matches_oracle(_model(n, (3, 17), q, out_q), _inputs(n, (3, 17), n), backends=(backend,),
                              what=f"{n} inputs")


def test_what_tflite_micro_refuses_is_refused():
    with pytest.raises(MCUCError, match="ADD_N.*quantized differently from the first"):
        load_tflite(_model(3, (4,), (0.05, 0), (0.1, 0), other_q=(0.05, 1)))
    with pytest.raises(MCUCError, match="ADD_N.*takes 2 to 15 inputs"):
        load_tflite(_model(16, (4,), (0.05, 0), (0.1, 0)))
    with pytest.raises(MCUCError, match="ADD_N.*output rescale .* is not in \\(0, 1\\)"):
        load_tflite(_model(2, (4,), (0.05, 0), (1e-9, 0)))
