"""CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED with int16 activations and int8 weights
(16x8, mcuc.ir.ops.int16_stage): hypothesis draws shapes, windows, biases (int64, int32
where tflite-micro sums in int32, or none), per-channel or per-tensor weights, fused
activations and scales; every output byte of the reference interpreter and the llvm
backend (backends/llvm/kernels/conv16x8.py) is compared with tflite-micro. The int8 rule
on the same sums must be caught; the portable C (runtime_c/mcuc_conv_s16.h) on the host,
a Cortex-M4 and a Cortex-M0, and a small 16x8 CNN on every backend."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mcuc.frontend.tflite import load_tflite
from mcuc.ir.errors import MCUCError

from tests.ir.test_ops_compare import NEEDS_ARM, assert_matches_oracle
from tests.support.tflite_builder import ModelBuilder

_ACTIVATIONS = ["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]


def _layer(mb: ModelBuilder, i: int, kind: str, rng: np.random.Generator, spec: dict) -> tuple[int, int, np.ndarray]:
    """One 16x8 layer in `mb`: (input, output, an input value)."""
    x_shape, out_ch = spec["x"], spec["out_ch"]
    in_scale = float(np.float32(2.0 ** spec["in_exp"]))
    out_scale = float(np.float32(in_scale * 2.0 ** spec["gain"]))
    zp = spec.get("zp", 0) if kind == "FULLY_CONNECTED" else 0
    x = mb.tensor(f"x{i}", x_shape, "int16", np.float32(in_scale), zp)
    if kind == "CONV_2D":
        w_shape, axis, channels = (out_ch, spec["k"][0], spec["k"][1], x_shape[3]), 0, out_ch
    elif kind == "DEPTHWISE_CONV_2D":
        channels = x_shape[3] * spec["mult"]
        w_shape, axis = (1, spec["k"][0], spec["k"][1], channels), 3
    else:
        channels = out_ch
        w_shape, axis = (out_ch, x_shape[-1]), 0
    scales = (rng.uniform(0.002, 0.03, channels) if spec["per_channel"] else np.full(1, 0.01)).astype(np.float32)
    w = mb.tensor(f"w{i}", w_shape, "int8", scales, [0] * scales.size, axis=axis,
                  data=rng.integers(-127, 128, w_shape))
    operands = [x, w]
    if spec["bias"]:
        limit = 2**20 if spec["bias"] == "int64" else 2**18
        # quantized as converters write it: input scale x weight scale per channel
        bias_scales = (np.float32(in_scale) * scales).astype(np.float32)
        operands.append(mb.tensor(f"b{i}", (channels,), spec["bias"], bias_scales, [0] * bias_scales.size, axis=0,
                                  data=rng.integers(-limit, limit, channels)))
    options = dict(fused_activation_function=spec["act"])
    if kind == "FULLY_CONNECTED":
        y_shape = (x_shape[0], out_ch)
    else:
        pad = spec["padding"]
        s, dil = spec["stride"], spec.get("dil", 1)
        size = [(d + s - 1) // s if pad == "SAME" else (d - (k - 1) * dil - 1) // s + 1
                for d, k in zip(x_shape[1:3], spec["k"])]
        y_shape = (x_shape[0], *size, channels)
        options.update(padding=pad, stride_h=s, stride_w=s, dilation_h_factor=dil, dilation_w_factor=dil)
        if kind == "DEPTHWISE_CONV_2D":
            options.update(depth_multiplier=spec["mult"])
    y = mb.tensor(f"y{i}", y_shape, "int16", np.float32(out_scale), zp)
    mb.op(kind, operands, [y], **options)
    return x, y, rng.integers(-32768, 32768, x_shape).astype(np.int16)


def _model(layers: list[tuple[str, dict]], seed: int) -> tuple[bytes, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    mb = ModelBuilder()
    made = [_layer(mb, i, kind, rng, spec) for i, (kind, spec) in enumerate(layers)]
    return mb.build([m[0] for m in made], [m[1] for m in made]), [m[2] for m in made]


@st.composite
def layer_16x8(draw) -> tuple[str, dict]:
    kind = draw(st.sampled_from(["CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"]))
    biases = ["int64", None] + (["int32"] if kind != "DEPTHWISE_CONV_2D" else [])
    spec = dict(out_ch=draw(st.integers(1, 5)), per_channel=draw(st.booleans()), bias=draw(st.sampled_from(biases)),
                act=draw(st.sampled_from(_ACTIVATIONS)), in_exp=draw(st.floats(-14.0, -8.0)),
                gain=draw(st.floats(-1.0, 6.0)))
    if kind == "FULLY_CONNECTED":
        spec.update(x=(draw(st.integers(1, 3)), draw(st.integers(1, 40))), zp=draw(st.sampled_from([0, 0, 7, -300])))
    else:
        k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        stride, padding = draw(st.integers(1, 2)), draw(st.sampled_from(["SAME", "VALID"]))
        x = (1, draw(st.integers(k[0], 6)), draw(st.integers(k[1], 6)), draw(st.integers(1, 4)))
        spec.update(x=x, k=k, stride=stride, padding=padding, mult=draw(st.sampled_from([1, 1, 2])))
    return kind, spec


@settings(deadline=None, max_examples=40)
@given(layers=st.lists(layer_16x8(), min_size=1, max_size=4), seed=st.integers(0, 2**31))
def test_reference_and_llvm_match_tflite_micro(layers, seed):
    model, inputs = _model(layers, seed)
    assert_matches_oracle(model, inputs, backends=("reference", "llvm"), what=str(layers))


_FIXED = [("CONV_2D", dict(x=(1, 5, 6, 3), out_ch=4, k=(3, 3), stride=1, padding="SAME", per_channel=True,
                           bias="int64", act="NONE", in_exp=-12.0, gain=2.5)),
          ("CONV_2D", dict(x=(1, 5, 6, 3), out_ch=4, k=(3, 3), stride=2, padding="VALID", per_channel=False,
                           bias="int32", act="RELU", in_exp=-11.0, gain=1.5)),
          ("DEPTHWISE_CONV_2D", dict(x=(1, 6, 5, 4), out_ch=0, k=(3, 3), stride=1, padding="SAME", mult=1,
                                     per_channel=True, bias="int64", act="NONE", in_exp=-12.0, gain=1.0)),
          ("FULLY_CONNECTED", dict(x=(2, 30), out_ch=5, per_channel=True, bias="int64", act="NONE", in_exp=-12.0,
                                   gain=3.0, zp=0)),
          ("FULLY_CONNECTED", dict(x=(2, 30), out_ch=5, per_channel=False, bias="int32", act="NONE", in_exp=-12.0,
                                   gain=3.0, zp=5))]


def test_the_int8_rule_on_16x8_sums_is_caught(monkeypatch):
    """The Q31 stage on the int64 sums (what mcuc computed before) differs from
    tflite-micro on these layers, so the comparison above can fail."""
    from mcuc.ir.ops import int16_stage
    from mcuc.ir.fixedpoint import requantize_per_channel
    from mcuc.ir.ops.common import channel_requant_params

    model, inputs = _model(_FIXED, 3)
    assert_matches_oracle(model, inputs)

    def int8_rule(op, total, zp):
        mult, shift = channel_requant_params(op, op.inputs[0], op.inputs[1], op.output)
        return requantize_per_channel(total, mult, shift, zp, op.attrs.act_min, op.attrs.act_max).astype(np.int16)

    for module in ("conv2d", "fully_connected"):
        monkeypatch.setattr(f"mcuc.ir.ops.{module}.output_stage_16x8", int8_rule)
    assert int16_stage.output_stage_16x8 is not int8_rule
    with pytest.raises(AssertionError, match="differ from tflite-micro"):
        assert_matches_oracle(model, inputs)


@settings(deadline=None, max_examples=12)
@given(layers=st.lists(layer_16x8(), min_size=1, max_size=3), seed=st.integers(0, 2**31))
def test_portable_c_matches_tflite_micro(layers, seed):
    """mcuc_conv_s16x8 (runtime_c/mcuc_conv_s16.h) on the sanitized host build."""
    model, inputs = _model(layers, seed)
    assert_matches_oracle(model, inputs, backends=("c-host",), what=str(layers))


@NEEDS_ARM
@settings(deadline=None, max_examples=8)
@given(layers=st.lists(layer_16x8(), min_size=1, max_size=3), seed=st.integers(0, 2**31))
def test_dsp_kernel_matches_tflite_micro(layers, seed):
    """mcuc_conv_s16x8 on int16 weights (mcuc_tap16's SMLALD / SMLAD pairs, an odd
    group's last channel alone) on an emulated Cortex-M4; a fully connected layer with an
    input zero point keeps int8 weights."""
    model, inputs = _model(layers, seed)
    assert_matches_oracle(model, inputs, backends=("cortex-m4",), what=str(layers))


@NEEDS_ARM
@pytest.mark.parametrize("channels, stride, padding, dil", [(16, 1, "SAME", 1), (7, 2, "SAME", 1),
                                                          (10, 1, "VALID", 2), (1, 2, "VALID", 1)])
def test_the_dsp_depthwise_channel_pairs_match_tflite_micro(channels, stride, padding, dil):
    """mcuc_depthwise_s16x8 (depth multiplier 1 on a DSP core): channel pairs, an odd
    count's last channel alone, windows clipped at every border, dilation."""
    layer = dict(x=(1, 9, 8, channels), out_ch=0, k=(3, 3), stride=stride, padding=padding, dil=dil, mult=1,
                 per_channel=True, bias="int64", act="NONE", in_exp=-12.0, gain=0.5)
    unbiased = dict(layer, x=(1, 5, 6, channels), k=(2, 3), per_channel=False, bias=None, act="RELU6")
    model, inputs = _model([("DEPTHWISE_CONV_2D", layer), ("DEPTHWISE_CONV_2D", unbiased)], channels)
    assert_matches_oracle(model, inputs, backends=("cortex-m4",))


@NEEDS_ARM
@pytest.mark.parametrize("backend", ["cortex-m4", "cortex-m0"])
def test_cortex_m_matches_tflite_micro(backend):
    model, inputs = _model(_FIXED, 11)
    assert_matches_oracle(model, inputs, backends=(backend,))


def test_a_16x8_cnn_is_bit_exact_on_every_backend():
    """A small 16x8 CNN as a user's converter writes one: a strided conv, a depthwise conv,
    a pointwise conv, a residual ADD, average pooling, a fully connected classifier, int16
    throughout (int64 biases, symmetric activations)."""
    rng = np.random.default_rng(8)
    mb = ModelBuilder()
    q = np.float32(2.0 ** -12)

    def act(name, shape, scale=q):
        return mb.tensor(name, shape, "int16", np.float32(scale), 0)

    def weights(name, shape, axis):
        channels = shape[axis]
        scales = rng.uniform(0.004, 0.02, channels).astype(np.float32)
        return mb.tensor(name, shape, "int8", scales, [0] * channels, axis=axis, data=rng.integers(-127, 128, shape)), scales

    def bias(name, in_scale, scales):
        return mb.tensor(name, (scales.size,), "int64", (np.float32(in_scale) * scales).astype(np.float32),
                         [0] * scales.size, data=rng.integers(-3000, 3000, scales.size))

    x = act("x", (1, 12, 10, 2))
    w0, s0 = weights("w0", (8, 3, 3, 2), 0)
    h0 = act("h0", (1, 6, 5, 8), 2.0 ** -10)
    mb.op("CONV_2D", [x, w0, bias("b0", q, s0)], [h0], padding="SAME", stride_h=2, stride_w=2,
          fused_activation_function="RELU")
    w1, s1 = weights("w1", (1, 3, 3, 8), 3)
    h1 = act("h1", (1, 6, 5, 8), 2.0 ** -10)
    mb.op("DEPTHWISE_CONV_2D", [h0, w1, bias("b1", 2.0 ** -10, s1)], [h1], padding="SAME", depth_multiplier=1)
    w2, s2 = weights("w2", (8, 1, 1, 8), 0)
    h2 = act("h2", (1, 6, 5, 8), 2.0 ** -9)
    mb.op("CONV_2D", [h1, w2, bias("b2", 2.0 ** -10, s2)], [h2], padding="VALID")
    h3 = act("h3", (1, 6, 5, 8), 2.0 ** -8)
    mb.op("ADD", [h0, h2], [h3])
    h4 = act("h4", (1, 1, 1, 8), 2.0 ** -8)
    mb.op("AVERAGE_POOL_2D", [h3], [h4], padding="VALID", filter_height=6, filter_width=5, stride_h=1, stride_w=1)
    flat = act("flat", (1, 8), 2.0 ** -8)
    mb.op("RESHAPE", [h4, mb.const("shape", [1, 8])], [flat], new_shape=[1, 8])
    w5, s5 = weights("w5", (4, 8), 0)
    y = act("y", (1, 4), 2.0 ** -6)
    mb.op("FULLY_CONNECTED", [flat, w5, bias("b5", 2.0 ** -8, s5)], [y])
    model = mb.build([x], [y])
    inputs = [rng.integers(-32768, 32768, (1, 12, 10, 2)).astype(np.int16)]
    backends = ("reference", "llvm", "c-host") + (("cortex-m4", "cortex-m0") if shutil.which("arm-none-eabi-gcc") else ())
    assert_matches_oracle(model, inputs, backends=backends)


def test_nonzero_int16_zero_points_of_a_conv_are_refused():
    mb = ModelBuilder()
    x = mb.tensor("x", (1, 3, 3, 2), "int16", np.float32(0.001), 4)
    w = mb.tensor("w", (2, 1, 1, 2), "int8", np.full(2, 0.01, np.float32), [0, 0], axis=0, data=np.ones((2, 1, 1, 2)))
    y = mb.tensor("y", (1, 3, 3, 2), "int16", np.float32(0.002), 0)
    mb.op("CONV_2D", [x, w], [y], padding="SAME")
    with pytest.raises(MCUCError, match="CONV_2D.*zero points \\(4, 0\\).*ignores them"):
        load_tflite(mb.build([x], [y]))


def test_a_depthwise_16x8_with_an_int32_bias_is_refused():
    mb = ModelBuilder()
    x = mb.tensor("x", (1, 3, 3, 2), "int16", np.float32(0.001), 0)
    w = mb.tensor("w", (1, 3, 3, 2), "int8", np.full(2, 0.01, np.float32), [0, 0], axis=3, data=np.ones((1, 3, 3, 2)))
    b = mb.tensor("b", (2,), "int32", data=np.array([5, -5]))
    y = mb.tensor("y", (1, 3, 3, 2), "int16", np.float32(0.002), 0)
    mb.op("DEPTHWISE_CONV_2D", [x, w, b], [y], padding="SAME", depth_multiplier=1)
    with pytest.raises(MCUCError, match="16x8 layer's bias must be int64, not int32"):
        load_tflite(mb.build([x], [y]))


def test_an_int32_sum_that_could_leave_int32_is_refused_and_an_int64_one_is_not():
    """With an int32 bias tflite-micro sums 16x8 products in int32 (and would wrap);
    with an int64 bias the same weights are fine."""
    def model(bias_dtype):
        mb = ModelBuilder()
        x = mb.tensor("x", (1, 600), "int16", np.float32(0.0001), 0)
        w = mb.tensor("w", (2, 600), "int8", np.full(1, 0.01, np.float32), [0], data=np.full((2, 600), 127))
        b = mb.tensor("b", (2,), bias_dtype, data=np.array([1, -1]))
        y = mb.tensor("y", (1, 2), "int16", np.float32(0.5), 0)
        mb.op("FULLY_CONNECTED", [x, w, b], [y])
        return mb.build([x], [y])

    with pytest.raises(MCUCError, match="FULLY_CONNECTED.*beyond int32"):
        load_tflite(model("int32"))
    inputs = [np.full((1, 600), 32767, np.int16)]
    assert_matches_oracle(model("int64"), inputs)
