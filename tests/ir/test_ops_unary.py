"""ABS, LEAKY_RELU, TANH, ELU, RSQRT (int8): one-layer TFLite models whose input holds
every int8 value once, compared byte for byte with tflite-micro on the reference
interpreter, the llvm backend, the portable C on the host and (one case per op) a
Cortex-M4 under emulation. Hypothesis draws the input and output quantization and
LEAKY_RELU's alpha. Deliberately broken semantics must be caught, and layers mcuc cannot
compute as tflite-micro does are refused naming the op and the rule.

RSQRT's input holds only the values at or above its zero point: tflite-micro's Invoke
fails on any element below it ("Rsqrt is only defined for positive values").
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mcuc.frontend.tflite import load_tflite
from mcuc.ir.errors import MCUCError
from mcuc.ir.ops import abs as abs_op, elu as elu_op, leaky_relu as leaky_relu_op, rsqrt as rsqrt_op
from mcuc.ir.ops import tanh as tanh_op
from mcuc.oracle import TFLiteOracle

from tests.ir.test_ops_compare import outputs_on
from tests.support.tflite_builder import ModelBuilder

OPS = ("ABS", "LEAKY_RELU", "TANH", "ELU", "RSQRT")
NEEDS_ARM = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                               reason="arm-none-eabi-gcc is not installed (Debian: gcc-arm-none-eabi)")


@dataclass(frozen=True)
class Case:
    kind: str
    qi: tuple[float, int]
    qo: tuple[float, int]
    alpha: float = 0.0

    def inputs(self) -> np.ndarray:
        low = self.qi[1] if self.kind == "RSQRT" else -128
        return np.arange(low, 128).astype(np.int8)


def model_of(cases: list[Case]) -> bytes:
    """One model holding each case as its own layer, side by side."""
    mb = ModelBuilder()
    ins, outs = [], []
    for i, c in enumerate(cases):
        n = c.inputs().size
        x = mb.tensor(f"x{i}_{c.kind}", (n,), "int8", *c.qi)
        y = mb.tensor(f"y{i}_{c.kind}", (n,), "int8", *c.qo)
        mb.op(c.kind, [x], [y], **({"alpha": c.alpha} if c.kind == "LEAKY_RELU" else {}))
        ins.append(x)
        outs.append(y)
    return mb.build(ins, outs)


def assert_cases_match(cases: list[Case], backends=("reference",)) -> None:
    model = model_of(cases)
    inputs = [c.inputs() for c in cases]
    want = TFLiteOracle(model)(inputs)
    for backend in backends:
        got = outputs_on(backend, model, inputs)
        for c, x, w, g in zip(cases, inputs, want, got):
            g = np.asarray(g).reshape(-1)
            w = np.asarray(w).reshape(-1)
            assert g.dtype == w.dtype == np.int8, f"{backend}: {c}: dtype {g.dtype}"
            wrong = np.flatnonzero(g != w)
            assert wrong.size == 0, (f"{backend}: {c}: {wrong.size} of {w.size} values differ from tflite-micro; "
                                     f"inputs {x[wrong[:4]].tolist()} give {g[wrong[:4]].tolist()}, "
                                     f"tflite-micro {w[wrong[:4]].tolist()}")


@st.composite
def quantization(draw) -> tuple[float, int]:
    scale = float(np.float32(2.0 ** draw(st.floats(-11.0, 3.0))))
    return scale, draw(st.integers(-128, 127))


ALPHAS = st.one_of(st.sampled_from([0.0, 0.01, 0.1, 0.2, 0.3, 1.0]), st.floats(-2.0, 2.0, width=32))


@st.composite
def cases(draw, kind: str) -> Case:
    qi = draw(quantization())
    # Equal quantizations take ABS's no-rescale path and LEAKY_RELU's identity multiplier 1.
    qo = qi if draw(st.integers(0, 4)) == 0 else draw(quantization())
    alpha = float(np.float32(draw(ALPHAS))) if kind == "LEAKY_RELU" else 0.0
    return Case(kind, qi, qo, alpha)


# -- every int8 value, against tflite-micro ------------------------------------------------

@pytest.mark.parametrize("kind", OPS)
@settings(deadline=None, max_examples=25)
@given(data=st.data())
def test_reference_matches_oracle_on_every_value(kind, data):
    assert_cases_match([data.draw(cases(kind))])


@settings(deadline=None, max_examples=4)
@given(data=st.data())
def test_llvm_and_c_host_match_oracle_on_every_value(data):
    """One model with one layer per op (each with its own drawn quantization)."""
    assert_cases_match([data.draw(cases(kind)) for kind in OPS], ("reference", "llvm", "c-host"))


@NEEDS_ARM
def test_cortex_m4_matches_oracle_on_every_value():
    cases_m4 = [Case("ABS", (0.031, -7), (0.017, -100)), Case("LEAKY_RELU", (0.05, 12), (0.04, -3), 0.1),
                Case("TANH", (0.07, 5), (1 / 128, 0)), Case("ELU", (0.06, 20), (0.05, 30)),
                Case("RSQRT", (0.02, -128), (0.09, -60))]
    assert_cases_match(cases_m4, ("cortex-m4",))


def test_tanh_ignores_the_output_quantization_as_tflite_micro_does():
    """TFLM's int8 TANH neither checks nor uses the output scale and zero point: it
    always writes round(tanh * 128)."""
    assert_cases_match([Case("TANH", (0.05, 3), qo) for qo in [(1 / 128, 0), (0.3, 40), (0.001, -128)]])


# -- broken semantics are caught -----------------------------------------------------------

def _single_rounding(x, multiplier, shift):
    """MultiplyByQuantizedMultiplier with one rounding (TFLITE_SINGLE_ROUNDING), which
    the pinned tflite-micro does not use."""
    x = np.asarray(x, dtype=np.int64)
    right = 31 - int(shift)
    return (x * int(multiplier) + (1 << (right - 1))) >> right


# Layers where the two rules give different bytes (found by search; TANH's rescale of the
# input to Q4.27 keeps so many bits that no layer tried tells them apart).
BROKEN_CASES = [Case("ABS", (0.004639008082449436, 93), (0.11213354021310806, 64)),
                Case("LEAKY_RELU", (0.05, 12), (0.043, -3), 0.1),
                Case("RSQRT", (0.4210723638534546, -128), (0.008886907249689102, -33))]


def test_the_layers_below_match_when_nothing_is_broken():
    assert_cases_match(BROKEN_CASES + [Case("TANH", (0.13568218052387238, 15), (1 / 128, 0)),
                                       Case("ELU", (2.0**-5, 0), (2.0**-4, 0))])


@pytest.mark.parametrize("case", BROKEN_CASES, ids=lambda c: c.kind)
def test_single_rounding_is_caught(case, monkeypatch):
    module = {"ABS": abs_op, "LEAKY_RELU": leaky_relu_op, "RSQRT": rsqrt_op}[case.kind]
    monkeypatch.setattr(module, "multiply_by_quantized_multiplier", _single_rounding)
    with pytest.raises(AssertionError, match="differ from tflite-micro"):
        assert_cases_match([case])


def test_tanh_with_two_newton_steps_is_caught(monkeypatch):
    def two_steps(a):
        srdhm = tanh_op.saturating_rounding_doubling_high_mul
        d = tanh_op.rounding_half_sum(a, tanh_op.INT32_MAX)
        x = tanh_op.wrap_int32(1515870810 + srdhm(d, -1010580540))
        for _ in range(2):
            x = tanh_op.wrap_int32(x + tanh_op.rescale(srdhm(x, tanh_op.wrap_int32((1 << 29) - srdhm(d, x))), 4, 2))
        return tanh_op.rescale(tanh_op.wrap_int32(x - (1 << 29)), 2, 0)

    monkeypatch.setattr(tanh_op, "one_minus_x_over_one_plus_x_for_x_in_0_1", two_steps)
    with pytest.raises(AssertionError, match="differ from tflite-micro"):
        assert_cases_match([Case("TANH", (0.13568218052387238, 15), (1 / 128, 0))])


def test_elu_rounding_half_to_even_is_caught(monkeypatch):
    """Power-of-two scales make transformed / out_scale exact, so odd inputs land on
    ties: roundf takes them away from zero."""
    monkeypatch.setattr(elu_op, "round_half_away", np.round)
    with pytest.raises(AssertionError, match="differ from tflite-micro"):
        assert_cases_match([Case("ELU", (2.0**-5, 0), (2.0**-4, 0))])


def test_leaky_relu_identity_for_negative_inputs_is_caught(monkeypatch):
    real = leaky_relu_op.leaky_relu_params

    def no_alpha(op):
        p = real(op)
        return leaky_relu_op.LeakyReluParams(p.input_zero_point, p.output_zero_point, p.multiplier_identity,
                                             p.shift_identity, p.multiplier_identity, p.shift_identity)

    monkeypatch.setattr(leaky_relu_op, "leaky_relu_params", no_alpha)
    with pytest.raises(AssertionError, match="differ from tflite-micro"):
        assert_cases_match([Case("LEAKY_RELU", (0.05, 12), (0.043, -3), 0.1)])


# -- refusals --------------------------------------------------------------------------------

def _load(kind: str, dtype: str, qi, qo, **options):
    mb = ModelBuilder()
    x = mb.tensor("x", (4,), dtype, *qi)
    y = mb.tensor("y", (4,), dtype, *qo)
    mb.op(kind, [x], [y], **options)
    return load_tflite(mb.build([x], [y]))


@pytest.mark.parametrize("kind", ["TANH"])
def test_tanh_input_scale_outside_the_kernels_range_is_refused(kind):
    """TFLM's Prepare computes 1 << left_shift from frexp(in_scale * 2^27): undefined
    below 2^-28, so mcuc refuses the layer instead of guessing."""
    with pytest.raises(MCUCError, match=r"TANH.*input scale .* outside what TFLite's int8 tanh handles"):
        _load(kind, "int8", (2.0**-30, 0), (1 / 128, 0))


# (int16 LEAKY_RELU: test_int16_backends.py; int16 TANH: test_sigmoid_int16.py)
@pytest.mark.parametrize("kind", [k for k in OPS if k not in ("LEAKY_RELU", "TANH")])
def test_int16_is_refused_naming_the_op(kind):
    with pytest.raises(MCUCError, match=rf"{kind}.*int8 only"):
        _load(kind, "int16", (0.01, 0), (0.01, 0))
