"""DIV (int8) against tflite-micro on every backend (ir/ops/div.py): every operand pair,
broadcasting, fused activations, divisors equal to their zero point, and the layers whose
tflite-micro kernel is undefined for some operands (refused)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mcuc.frontend.tflite import load_tflite
from mcuc.ir.errors import MCUCError
from tests.ir.test_ops_compare import NEEDS_ARM, assert_matches_oracle
from tests.support.tflite_builder import ModelBuilder

SHAPES = [((6,), (6,)), ((2, 3, 4), (1, 3, 1)), ((1, 5), (4, 1)), ((3, 2, 2, 2), (2,))]
EVERY_PAIR = [np.repeat(np.arange(-128, 128), 256).astype(np.int8), np.tile(np.arange(-128, 128), 256).astype(np.int8)]
# (input 1, input 2, output) quantizations: s1 / (s2 * s_out) from 2^6 to 2^21
LAYERS = [((0.05, 3), (0.02, -7), (0.02, 10)), ((0.01, -128), (0.2, 127), (5e-4, -5)),
          ((0.1, 0), (0.003, 2), (0.25, -1)), ((0.2, 17), (0.001, -90), (1e-4, 0))]


def _model(s1, s2, q1, q2, qo, act: str = "NONE") -> bytes:
    mb = ModelBuilder()
    a = mb.tensor("a", s1, "int8", np.float32(q1[0]), q1[1])
    b = mb.tensor("b", s2, "int8", np.float32(q2[0]), q2[1])
    y = mb.tensor("y", np.broadcast_shapes(s1, s2), "int8", np.float32(qo[0]), qo[1])
    mb.op("DIV", [a, b], [y], fused_activation_function=act)
    return mb.build([a, b], [y])


@pytest.mark.parametrize("layer", LAYERS)
def test_every_pair_of_int8_values(layer):
    """All 65536 (dividend, divisor) pairs, the divisor at its zero point included."""
    assert_matches_oracle(_model((65536,), (65536,), *layer), EVERY_PAIR, backends=("reference", "llvm"),
                          what=str(layer))


@settings(deadline=None, max_examples=30)
@given(shapes=st.sampled_from(SHAPES), layer=st.sampled_from(LAYERS), act=st.sampled_from(["NONE", "RELU", "RELU6"]),
       seed=st.integers(0, 2**31))
def test_broadcasting_and_activations_match_tflite_micro(shapes, layer, act, seed):
    rng = np.random.default_rng(seed)
    inputs = [rng.integers(-128, 128, s).astype(np.int8) for s in shapes]
    assert_matches_oracle(_model(*shapes, *layer, act), inputs, backends=("reference", "llvm"), what=f"{shapes}")


@pytest.mark.parametrize("backend", ["c-host", pytest.param("cortex-m4", marks=NEEDS_ARM),
                                     pytest.param("cortex-m0", marks=NEEDS_ARM)])
def test_c_kernel_matches_tflite_micro(backend):
    assert_matches_oracle(_model((256, 256), (256, 256), *LAYERS[0], "RELU"),
                          [v.reshape(256, 256) for v in EVERY_PAIR], backends=(backend,))
    rng = np.random.default_rng(1)
    inputs = [rng.integers(-128, 128, s).astype(np.int8) for s in ((2, 3, 4), (1, 3, 1))]
    assert_matches_oracle(_model((2, 3, 4), (1, 3, 1), *LAYERS[2]), inputs, backends=(backend,))


def test_layers_whose_kernel_is_undefined_for_some_operands_are_refused():
    """s1 / (s2 * s_out) = 10: tflite-micro shifts some quotients by 32 bits or more."""
    with pytest.raises(MCUCError, match=r"DIV.*s1 / \(s2 \* s_out\) = 10.*32 bits or more"):
        load_tflite(_model((4,), (4,), (0.1, 0), (0.1, 0), (0.1, 0)))
