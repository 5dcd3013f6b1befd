"""LOGISTIC and TANH with int16 input and output against tflite-micro
(ir/ops/sigmoid_int16.py): the derived sigmoid table, every int16 input at power-of-two
and other scales, on every backend."""
from __future__ import annotations

import numpy as np
import pytest

from mcuc.frontend.tflite import load_tflite
from mcuc.ir.errors import MCUCError
from mcuc.ir.ops import sigmoid_int16
from tests.ir.test_ops_compare import NEEDS_ARM, assert_matches_oracle
from tests.support.tflite_builder import ModelBuilder

EVERY_INT16 = [np.arange(-32768, 32768, dtype=np.int64).astype(np.int16).reshape(1, 256, 256)]
# power-of-two input scales (the kernel's 3 << shift form: 2^-12 both, 2^-11 TANH only) and others
SCALES = [2.0**-12, 2.0**-11, 2.0**-10, 1e-4, 3.3e-4, 1.7e-3, 2.0**-15, 0.02]


def _model(kind: str, in_scale: float, out=(2.0**-15, 0), zp: int = 0) -> bytes:
    mb = ModelBuilder()
    x = mb.tensor("x", (1, 256, 256), "int16", np.float32(in_scale), zp)
    y = mb.tensor("y", (1, 256, 256), "int16", np.float32(out[0]), out[1])
    mb.op(kind, [x], [y])
    return mb.build([x], [y])


@pytest.mark.parametrize("kind", ["LOGISTIC", "TANH"])
@pytest.mark.parametrize("in_scale", SCALES)
def test_every_int16_input_matches_tflite_micro(kind, in_scale):
    """All 65536 inputs on the reference and on llvm (whose kernel is a 65536-entry
    table of the reference)."""
    assert_matches_oracle(_model(kind, in_scale), EVERY_INT16, backends=("reference", "llvm"),
                          what=f"{kind} scale {in_scale:g}")


def test_the_derived_table_is_not_a_plain_rounding():
    """Rounded samples of sigmoid(i/24) differ from the interpolation-corrected ones in
    44 entries, and a table of them breaks the comparison above."""
    table = sigmoid_int16.sigmoid_table()
    plain = [min(65535, int(np.floor(65536 / (1 + np.exp(-i / 24)) + 0.5))) for i in range(256)]
    assert len(table) == 256 and table[0] == 32768 and table[-1] == 65535
    assert sum(a != b for a, b in zip(table, plain)) == 44


def test_a_plain_rounding_table_is_caught(monkeypatch):
    plain = tuple(min(65535, int(np.floor(65536 / (1 + np.exp(-i / 24)) + 0.5))) for i in range(256))
    monkeypatch.setattr(sigmoid_int16, "sigmoid_table", lambda: plain)
    with pytest.raises(AssertionError, match="differ from tflite-micro"):
        assert_matches_oracle(_model("LOGISTIC", 1e-4), EVERY_INT16)


def test_quantization_tflite_micro_refuses_is_refused():
    with pytest.raises(MCUCError, match="needs the output scale 2\\^-15"):
        load_tflite(_model("TANH", 1e-3, out=(2.0**-14, 0)))
    with pytest.raises(MCUCError, match="needs zero points 0"):
        load_tflite(_model("LOGISTIC", 1e-3, zp=3))
    with pytest.raises(MCUCError, match="multiplier must stay within 32767"):
        load_tflite(_model("LOGISTIC", 4.0))


@pytest.mark.parametrize("backend", ["c-host", pytest.param("cortex-m4", marks=NEEDS_ARM),
                                     pytest.param("cortex-m0", marks=NEEDS_ARM)])
@pytest.mark.parametrize("kind, in_scale", [("LOGISTIC", 2.0**-12), ("LOGISTIC", 3.3e-4), ("TANH", 2.0**-11),
                                            ("TANH", 1.7e-3)])
def test_c_kernel_matches_tflite_micro(backend, kind, in_scale):
    assert_matches_oracle(_model(kind, in_scale), EVERY_INT16, backends=(backend,), what=f"{kind} {in_scale:g}")
