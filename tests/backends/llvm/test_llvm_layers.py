"""The llvm backend on one-layer models of every op kind the IR supports: hypothesis
draws the layer (shapes, strides, padding, dilation, channel counts, quantization,
fused activations, broadcasting, ...), the layer is planned by mcuc.passes.plan with
the backend's scratch requests, JIT-compiled, and its bytes are compared with
tflite-micro (the oracle) and with the reference interpreter.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, reject, settings, strategies as st

from mcuc.backends.llvm import compile_program, scratch_requests
from mcuc.backends.llvm.kernels import supported_kinds as llvm_kinds
from mcuc.frontend.tflite import load_tflite
from mcuc.ir import supported_kinds
from mcuc.ir.errors import MCUCError
from mcuc.ir.interpreter import run
from mcuc.oracle import TFLiteOracle
from mcuc.passes import plan
from tests.support.tflite_builder import SingleOp, single_op_builder

ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")
SAMPLES = 2
LAYER_SETTINGS = settings(deadline=None, max_examples=18, suppress_health_check=[HealthCheck.too_slow])
seeds = st.integers(0, 2**32 - 1)


def same_bytes(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.dtype == b.dtype and a.size == b.size and a.tobytes() == b.tobytes()


def check_model(model: bytes, random_inputs, rng: np.random.Generator, samples: int = SAMPLES) -> None:
    """llvm == oracle == reference on `samples` random inputs."""
    try:
        graph = load_tflite(model)
        program = plan(graph, scratch_requests)
    except MCUCError as e:
        # A layer mcuc refuses is not a case here: test_ops_* check that mcuc refuses
        # exactly what tflite-micro refuses (some of those abort the oracle's process).
        event(f"refused: {type(e).__name__}")
        reject()
    compiled = compile_program(program)
    oracle = TFLiteOracle(model)
    for _ in range(samples):
        inputs = random_inputs(rng)
        want = oracle(inputs)
        reference = run(graph, inputs)
        got = compiled(inputs)
        for i, (w, r, g) in enumerate(zip(want, reference, got)):
            assert same_bytes(g.reshape(-1), r.reshape(-1)), f"output {i}: llvm differs from the reference"
            assert same_bytes(g.reshape(-1), np.asarray(w).reshape(-1)), f"output {i}: llvm differs from tflite-micro"


def check_layer(layer: SingleOp, rng: np.random.Generator) -> None:
    check_model(layer.build(), layer.random_inputs, rng)


def fit_output_scale(layer: SingleOp, taps: int, rng: np.random.Generator) -> None:
    """An output scale near the accumulator's spread, so outputs land inside int8
    instead of saturating (saturated bytes prove little)."""
    tensors = layer.builder.tensors
    weights = next(t for t in tensors if t.name == "weights")
    in_scale = tensors[layer.inputs[0]].quantization.scale[0]
    acc_std = 74.0 * 74.0 * np.sqrt(taps) * in_scale * float(np.median(weights.quantization.scale))
    tensors[layer.outputs[0]].quantization.scale = [float(np.float32(acc_std / 40.0 * np.exp(rng.uniform(-1, 1))))]


def drop_absent_bias(layer: SingleOp) -> None:
    """tflite-micro's depthwise kernel crashes on an absent (-1) third input; list two."""
    op = layer.builder.operators[-1]
    op.inputs = [i for i in op.inputs if i >= 0]


@st.composite
def window(draw, max_kernel: int = 5):
    kernel = (draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if draw(st.booleans()) else (1, 1)
    padding = draw(st.sampled_from(["SAME", "VALID"]))
    effective = [(k - 1) * d + 1 for k, d in zip(kernel, dil)]
    low = effective if padding == "VALID" else (1, 1)
    h = draw(st.integers(low[0], max(low[0], 11)))
    w = draw(st.integers(low[1], max(low[1], 11)))
    batch = draw(st.sampled_from([1, 1, 2]))
    options = dict(padding=padding, stride_h=stride[0], stride_w=stride[1])
    return (batch, h, w), kernel, dil, options


def test_every_ir_op_kind_has_an_llvm_kernel():
    assert set(supported_kinds()) <= set(llvm_kinds())


# -- windows -------------------------------------------------------------------------------

@LAYER_SETTINGS
@given(window(), st.integers(1, 8), st.integers(1, 8), st.sampled_from([1, 1, 2]), st.booleans(),
       st.booleans(), st.sampled_from(ACTIVATIONS), seeds)
def test_conv2d(geometry, in_per_group, out_per_group, groups, per_channel, bias, activation, seed):
    (n, h, w), kernel, dil, options = geometry
    rng = np.random.default_rng(seed)
    layer = single_op_builder("CONV_2D", [(n, h, w, in_per_group * groups)], rng, out_channels=out_per_group * groups,
                              kernel=kernel, groups=groups, per_channel=per_channel, bias=bias,
                              dilation_h_factor=dil[0], dilation_w_factor=dil[1],
                              fused_activation_function=activation, **options)
    fit_output_scale(layer, kernel[0] * kernel[1] * in_per_group, rng)
    check_layer(layer, rng)


@LAYER_SETTINGS
@given(window(), st.integers(1, 12), st.sampled_from([1, 1, 2, 3]), st.booleans(), st.booleans(),
       st.sampled_from(ACTIVATIONS), seeds)
def test_depthwise_conv2d(geometry, channels, multiplier, per_channel, bias, activation, seed):
    (n, h, w), kernel, dil, options = geometry
    rng = np.random.default_rng(seed)
    layer = single_op_builder("DEPTHWISE_CONV_2D", [(n, h, w, channels)], rng, kernel=kernel,
                              depth_multiplier=multiplier, per_channel=per_channel, bias=bias,
                              dilation_h_factor=dil[0], dilation_w_factor=dil[1],
                              fused_activation_function=activation, **options)
    if not bias:
        drop_absent_bias(layer)
    fit_output_scale(layer, kernel[0] * kernel[1], rng)
    check_layer(layer, rng)


@LAYER_SETTINGS
@given(window(max_kernel=4), st.integers(1, 10), st.sampled_from(["AVERAGE_POOL_2D", "MAX_POOL_2D"]),
       st.sampled_from(ACTIVATIONS), st.sampled_from(["int8", "int8", "int16"]), seeds)
def test_pool2d(geometry, channels, kind, activation, dtype, seed):
    (n, h, w), kernel, _, options = geometry
    rng = np.random.default_rng(seed)
    layer = single_op_builder(kind, [(n, h, w, channels)], rng, filter_height=kernel[0], filter_width=kernel[1],
                              fused_activation_function=activation, input_dtype=dtype, output_dtype=dtype,
                              **options)
    check_layer(layer, rng)


# -- reductions and fully connected ----------------------------------------------------------

@LAYER_SETTINGS
@given(st.lists(st.integers(1, 5), min_size=1, max_size=3), st.integers(1, 48), st.integers(1, 16),
       st.booleans(), st.booleans(), st.booleans(), st.sampled_from(ACTIVATIONS), seeds)
def test_fully_connected(lead, depth, units, per_channel, bias, keep_dims, activation, seed):
    rng = np.random.default_rng(seed)
    layer = single_op_builder("FULLY_CONNECTED", [(*lead, depth)], rng, units=units, per_channel=per_channel,
                              bias=bias, keep_num_dims=keep_dims, fused_activation_function=activation)
    fit_output_scale(layer, depth, rng)
    check_layer(layer, rng)


@LAYER_SETTINGS
@given(st.lists(st.integers(1, 6), min_size=4, max_size=4), st.sets(st.integers(0, 3), min_size=1, max_size=3),
       st.booleans(), st.booleans(), seeds)
def test_mean(shape, axes, keep_dims, same_quant, seed):
    rng = np.random.default_rng(seed)
    kwargs = {}
    if same_quant:
        q = (0.05, int(rng.integers(-20, 20)))
        kwargs = dict(input_quants=[q], output_quant=q)
    layer = single_op_builder("MEAN", [tuple(shape)], rng, axes=sorted(axes), keep_dims=keep_dims, **kwargs)
    check_layer(layer, rng)


# -- elementwise -----------------------------------------------------------------------------

@st.composite
def broadcast_pair(draw):
    rank = draw(st.integers(1, 4))
    shape = [draw(st.integers(1, 5)) for _ in range(rank)]
    if draw(st.booleans()):
        return tuple(shape), tuple(shape)
    other = [1 if draw(st.booleans()) else d for d in shape][draw(st.integers(0, rank - 1)):]
    pair = (tuple(shape), tuple(other))
    return pair if draw(st.booleans()) else pair[::-1]


@LAYER_SETTINGS
@given(broadcast_pair(), st.sampled_from(["ADD", "SUB", "MUL"]), st.sampled_from(ACTIVATIONS), st.booleans(),
       st.sampled_from(["int8", "int8", "int16"]), seeds)
def test_add_sub_and_mul(shapes, kind, activation, constant_second, dtype, seed):
    rng = np.random.default_rng(seed)
    layer = single_op_builder(kind, list(shapes), rng, fused_activation_function=activation,
                              constant_inputs=(1,) if constant_second else (), input_dtype=dtype, output_dtype=dtype)
    check_layer(layer, rng)


@LAYER_SETTINGS
@given(st.lists(st.integers(1, 7), min_size=1, max_size=4),
       st.sampled_from(["RELU", "RELU6", "LOGISTIC", "HARD_SWISH", "DEQUANTIZE", "QUANTIZE", "QUANTIZE_FLOAT",
                        "DEQUANTIZE_INT16", "QUANTIZE_INT16"]),
       seeds)
def test_unary(shape, kind, seed):
    rng = np.random.default_rng(seed)
    if kind == "QUANTIZE_FLOAT":
        layer = single_op_builder("QUANTIZE", [tuple(shape)], rng, input_dtype="float32", input_quants=[None])
    elif kind.endswith("_INT16"):  # 65536-entry tables
        layer = single_op_builder(kind[:-len("_INT16")], [tuple(shape)], rng, input_dtype="int16")
    else:
        layer = single_op_builder(kind, [tuple(shape)], rng)
    check_layer(layer, rng)


@LAYER_SETTINGS
@given(st.integers(1, 4), st.integers(1, 40), st.floats(0.1, 4.0), seeds)
def test_softmax(rows, depth, beta, seed):
    rng = np.random.default_rng(seed)
    layer = single_op_builder("SOFTMAX", [(rows, depth)], rng, beta=float(np.float32(beta)))
    check_layer(layer, rng)


# -- layout ------------------------------------------------------------------------------------

@LAYER_SETTINGS
@given(st.lists(st.integers(1, 6), min_size=4, max_size=4), st.data(), seeds)
def test_pad_transpose_reshape_squeeze(shape, data, seed):
    rng = np.random.default_rng(seed)
    kind = data.draw(st.sampled_from(["PAD", "TRANSPOSE", "RESHAPE", "SQUEEZE"]))
    if kind == "PAD":
        pads = [[data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))] for _ in shape]
        layer = single_op_builder("PAD", [tuple(shape)], rng, paddings=pads)
    elif kind == "TRANSPOSE":
        perm = data.draw(st.permutations(range(4)))
        layer = single_op_builder("TRANSPOSE", [tuple(shape)], rng, perm=list(perm))
    elif kind == "RESHAPE":
        layer = single_op_builder("RESHAPE", [tuple(shape)], rng, new_shape=(shape[0], -1))
    else:
        shape[data.draw(st.integers(0, 3))] = 1
        layer = single_op_builder("SQUEEZE", [tuple(shape)], rng, squeeze_dims=[])
    check_layer(layer, rng)


@LAYER_SETTINGS
@given(st.integers(1, 2), st.integers(1, 6), st.integers(1, 6), st.integers(1, 4), st.integers(1, 12),
       st.integers(1, 12), st.booleans(), st.booleans(), seeds)
def test_resize_nearest(n, h, w, c, oh, ow, align_corners, half_pixel, seed):
    assume(not (align_corners and half_pixel))
    rng = np.random.default_rng(seed)
    layer = single_op_builder("RESIZE_NEAREST_NEIGHBOR", [(n, h, w, c)], rng, size=(oh, ow),
                              align_corners=align_corners, half_pixel_centers=half_pixel)
    check_layer(layer, rng)


@LAYER_SETTINGS
@given(st.lists(st.integers(1, 5), min_size=1, max_size=4), st.integers(2, 4), st.data(), seeds)
def test_concatenation(base, count, data, seed):
    rng = np.random.default_rng(seed)
    axis = data.draw(st.integers(0, len(base) - 1))
    shapes = []
    for _ in range(count):
        s = list(base)
        s[axis] = data.draw(st.integers(1, 4))
        shapes.append(tuple(s))
    layer = single_op_builder("CONCATENATION", shapes, rng, axis=axis)
    check_layer(layer, rng)


def test_a_wrong_kernel_is_caught(monkeypatch):
    """The comparison can fail: an ADD kernel with an off-by-one output offset differs."""
    from mcuc.backends.llvm.kernels import elementwise
    from mcuc.ir.ops import add as add_module

    real = add_module.add_params

    def shifted(op):
        p = real(op)
        return type(p)(**{**p.__dict__, "output_offset": p.output_offset + 1})

    monkeypatch.setattr(elementwise, "add_params", shifted)
    rng = np.random.default_rng(3)
    layer = single_op_builder("ADD", [(1, 4, 4, 3), (1, 4, 4, 3)], rng)
    with pytest.raises(AssertionError, match="differs"):
        check_model(layer.build(), layer.random_inputs, rng, samples=1)
