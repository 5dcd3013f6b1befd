"""passes.depthwise_as_conv: a single-channel DEPTHWISE_CONV_2D with a depth multiplier
runs as its CONV_2D. Hypothesis draws windows (asymmetric kernels, strides, dilations,
SAME and VALID padding), multipliers, per-channel or per-tensor weights, biases
and fused activations; the rewritten graph is compared byte for byte with tflite-micro
running the original depthwise, on the reference interpreter and llvm, and fixed layers
on the portable C (host, sanitized), a Cortex-M4 and a Cortex-M0. A rewrite that mixes up
the channels is caught, and what the rewrite must leave alone is left alone."""
from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mcuc.frontend.tflite import load_tflite
from mcuc.ir.ops.kinds import CONV_2D, DEPTHWISE_CONV_2D
from mcuc.oracle import TFLiteOracle
from mcuc.passes import depthwise_as_conv

from tests.ir.test_ops_compare import NEEDS_ARM, graph_outputs_on
from tests.support.tflite_builder import ModelBuilder

_ACTIVATIONS = ["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]


@st.composite
def layers(draw) -> dict:
    k = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    reach = [(k[i] - 1) * dilation[i] + 1 for i in range(2)]
    return dict(k=k, dilation=dilation, stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
                padding=draw(st.sampled_from(["SAME", "VALID"])), mult=draw(st.integers(2, 9)),
                x=(1, draw(st.integers(reach[0], 9)), draw(st.integers(reach[1], 9)), 1),
                per_channel=draw(st.booleans()), bias=draw(st.booleans()), act=draw(st.sampled_from(_ACTIVATIONS)),
                in_zp=draw(st.integers(-128, 127)), out_zp=draw(st.integers(-128, 127)),
                gain=draw(st.floats(0.01, 0.5)))


def _model(specs: list[dict], seed: int) -> tuple[bytes, list[np.ndarray]]:
    """The layers side by side in one model, each with its own input."""
    rng = np.random.default_rng(seed)
    mb = ModelBuilder()
    ins, outs, values = [], [], []
    for i, s in enumerate(specs):
        m = s["mult"]
        x = mb.tensor(f"x{i}", s["x"], "int8", np.float32(0.05), s["in_zp"])
        scales = (rng.uniform(0.002, 0.02, m) if s["per_channel"] else np.full(1, 0.01)).astype(np.float32)
        w = mb.tensor(f"w{i}", (1, *s["k"], m), "int8", scales, [0] * scales.size, axis=3,
                      data=rng.integers(-127, 128, (1, *s["k"], m)))
        operands = [x, w]
        if s["bias"]:
            operands.append(mb.tensor(f"b{i}", (m,), "int32", (np.float32(0.05) * scales).astype(np.float32),
                                      [0] * scales.size, data=rng.integers(-5000, 5000, m)))
        size = [(d + st_ - 1) // st_ if s["padding"] == "SAME" else (d - ((k - 1) * dl + 1)) // st_ + 1
                for d, k, st_, dl in zip(s["x"][1:3], s["k"], s["stride"], s["dilation"])]
        y = mb.tensor(f"y{i}", (s["x"][0], *size, m), "int8", np.float32(2 * s["gain"]), s["out_zp"])
        mb.op("DEPTHWISE_CONV_2D", operands, [y], padding=s["padding"], stride_h=s["stride"][0],
              stride_w=s["stride"][1], dilation_h_factor=s["dilation"][0], dilation_w_factor=s["dilation"][1],
              depth_multiplier=m, fused_activation_function=s["act"])
        ins.append(x)
        outs.append(y)
        values.append(rng.integers(-128, 128, s["x"]).astype(np.int8))
    return mb.build(ins, outs), values


def _assert_rewritten_matches(model: bytes, inputs, backends) -> None:
    graph = depthwise_as_conv(load_tflite(model))
    assert [op.kind for op in graph.ops] == [CONV_2D] * len(graph.ops)
    want = TFLiteOracle(model)(inputs)
    for backend in backends:
        for k, (g, w) in enumerate(zip(graph_outputs_on(backend, graph, inputs), want)):
            wrong = np.flatnonzero(np.asarray(g).reshape(-1) != np.asarray(w).reshape(-1))
            assert g.shape == w.shape and wrong.size == 0, \
                f"{backend}: output {k}: {wrong.size} values differ from tflite-micro's depthwise"


@settings(deadline=None, max_examples=30)
@given(specs=st.lists(layers(), min_size=1, max_size=3), seed=st.integers(0, 2**31))
def test_reference_and_llvm_equal_tflite_micros_depthwise(specs, seed):
    model, inputs = _model(specs, seed)
    _assert_rewritten_matches(model, inputs, ("reference", "llvm"))


_FIXED = [dict(k=(10, 8), dilation=(1, 1), stride=(2, 2), padding="SAME", mult=8, x=(1, 49, 40, 1), per_channel=True,
               bias=True, act="RELU", in_zp=-128, out_zp=-128, gain=0.2),  # micro_speech's layer
          dict(k=(3, 2), dilation=(2, 1), stride=(1, 3), padding="VALID", mult=3, x=(1, 7, 8, 1), per_channel=False,
               bias=False, act="NONE", in_zp=5, out_zp=-3, gain=0.05)]


@NEEDS_ARM
@pytest.mark.parametrize("backend", ["c-host", "cortex-m4", "cortex-m0"])
def test_c_backends_equal_tflite_micros_depthwise(backend):
    model, inputs = _model(_FIXED, 7)
    _assert_rewritten_matches(model, inputs, (backend,))


def test_channels_mixed_up_are_caught(monkeypatch):
    pass_module = sys.modules["mcuc.passes.depthwise_as_conv"]
    real = pass_module.as_conv

    def reversed_channels(op):
        conv = real(op)
        w = conv.inputs[1]
        flipped = type(w)(w.name, w.shape, w.dtype, w.quant, w.data[::-1])
        return conv.with_(inputs=(conv.inputs[0], flipped) + conv.inputs[2:])

    monkeypatch.setattr(pass_module, "as_conv", reversed_channels)
    model, inputs = _model(_FIXED[:1], 3)
    with pytest.raises(AssertionError, match="differ from tflite-micro"):
        _assert_rewritten_matches(model, inputs, ("reference",))


@pytest.mark.parametrize("batch, channels, mult", [(1, 1, 1), (1, 2, 4), (1, 3, 1), (2, 1, 4)])
def test_other_depthwise_layers_stay(batch, channels, mult):
    mb = ModelBuilder()
    x = mb.tensor("x", (batch, 5, 5, channels), "int8", np.float32(0.05), 0)
    w = mb.tensor("w", (1, 3, 3, channels * mult), "int8", np.float32(0.01), 0, data=np.ones((1, 3, 3, channels * mult)))
    y = mb.tensor("y", (batch, 5, 5, channels * mult), "int8", np.float32(0.1), 0)
    mb.op("DEPTHWISE_CONV_2D", [x, w], [y], padding="SAME", depth_multiplier=mult)
    graph = load_tflite(mb.build([x], [y]))
    assert depthwise_as_conv(graph) is graph and graph.ops[0].kind == DEPTHWISE_CONV_2D
