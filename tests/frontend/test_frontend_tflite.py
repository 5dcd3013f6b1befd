"""The TFLite frontend: real models load and compute what tflite-micro computes; SAME
padding and fused activations translate exactly; every kind of malformed file raises
MCUCError naming what is wrong, and no corruption escapes as another exception."""
from __future__ import annotations

import collections

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.paths import shared_model_path
from mcuc.frontend.tflite import activation_range, load_tflite, same_padding
from mcuc.ir import MCUCError, Quantization, Tensor
from mcuc.ir.interpreter import run
from mcuc.ir.ops import op_def
from mcuc.oracle import TFLiteOracle
from tests.support.tflite_builder import (ModelBuilder, int8_weights, pack, random_int8, schema, single_op_builder,
                            single_op_model, unpack)

# -- the shared real models --------------------------------------------------------------

# name: (input shape, input dtype, number of outputs, op kinds and counts, MACs from
# shared/models/README.md for CONV_2D + DEPTHWISE_CONV_2D + FULLY_CONNECTED)
SHARED_MODELS = {
    "ad01_int8": ((1, 640), "int8", 1, {"FULLY_CONNECTED": 10}, 264192),
    "hello_world_int8": ((1, 1), "int8", 1, {"FULLY_CONNECTED": 3}, 288),
    "kws_ref_model": ((1, 49, 10, 1), "int8", 1, {"CONV_2D": 5, "DEPTHWISE_CONV_2D": 4, "AVERAGE_POOL_2D": 1,
                                                  "RESHAPE": 1, "FULLY_CONNECTED": 1, "SOFTMAX": 1}, 2656768),
    "mcunet_person_det": ((1, 128, 160, 3), "float32", 3,
                          {"QUANTIZE": 1, "PAD": 5, "CONV_2D": 39, "DEPTHWISE_CONV_2D": 16, "ADD": 11,
                           "RESIZE_NEAREST_NEIGHBOR": 2, "MAX_POOL_2D": 2, "DEQUANTIZE": 3}, 18296320),
    "mcunet_vww1": ((1, 80, 80, 3), "float32", 1,
                    {"QUANTIZE": 1, "PAD": 4, "CONV_2D": 30, "DEPTHWISE_CONV_2D": 15, "ADD": 8, "TRANSPOSE": 1,
                     "MEAN": 2, "FULLY_CONNECTED": 1, "DEQUANTIZE": 1}, 11578816),
    "micro_speech_int8": ((1, 1960), "int8", 1, {"RESHAPE": 1, "DEPTHWISE_CONV_2D": 1, "FULLY_CONNECTED": 1,
                                                 "SOFTMAX": 1}, 336000),
    "pretrainedResnet_quant": ((1, 32, 32, 3), "int8", 1, {"CONV_2D": 9, "ADD": 3, "AVERAGE_POOL_2D": 1,
                                                           "RESHAPE": 1, "FULLY_CONNECTED": 1, "SOFTMAX": 1},
                               12501632),
    "vww_96_int8": ((1, 96, 96, 3), "int8", 1, {"CONV_2D": 14, "DEPTHWISE_CONV_2D": 13, "AVERAGE_POOL_2D": 1,
                                                "RESHAPE": 1, "FULLY_CONNECTED": 1, "SOFTMAX": 1}, 7489664),
}

WEIGHTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


@pytest.mark.parametrize("name", sorted(SHARED_MODELS))
def test_shared_model_loads_with_its_structure(name):
    shape, dtype, n_outputs, op_counts, readme_macs = SHARED_MODELS[name]
    graph = load_tflite(shared_model_path(name))
    assert graph.name == name
    assert [(t.shape, t.dtype) for t in graph.inputs] == [(shape, dtype)]
    assert len(graph.outputs) == n_outputs
    assert dict(collections.Counter(op.kind for op in graph.ops)) == op_counts
    # MACs depend on every weighted layer's shapes, strides and padding being read right.
    assert sum(op_def(op.kind).macs(op) for op in graph.ops if op.kind in WEIGHTED) == readme_macs
    names = [t.name for t in graph.tensors]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("name", sorted(SHARED_MODELS))
def test_shared_model_reference_run_equals_oracle(name):
    """The graph as read (attributes, padding, clamps, constants) computes exactly what
    tflite-micro computes from the same file."""
    path = shared_model_path(name)
    graph = load_tflite(path)
    rng = np.random.default_rng(7)
    inputs = [rng.uniform(0.0, 1.0, t.shape).astype(np.float32) if t.dtype == "float32"
              else random_int8(rng, t.shape, t.dtype) for t in graph.inputs]
    expected = TFLiteOracle(path.read_bytes())(inputs)
    ours = run(graph, inputs)
    assert len(ours) == len(expected)
    for a, b in zip(ours, expected):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()


def test_mcunet_vww1_keeps_its_float_edges():
    graph = load_tflite(shared_model_path("mcunet_vww1"))
    assert len(graph.ops) == 63
    assert graph.ops[0].kind == "QUANTIZE" and graph.ops[-1].kind == "DEQUANTIZE"
    assert graph.inputs[0].dtype == "float32" and graph.outputs[0].dtype == "float32"
    assert graph.ops[0].output.dtype == "int8"
    # PAD's paddings and TRANSPOSE's perm became attributes, not inputs.
    for op in graph.ops:
        if op.kind in ("PAD", "TRANSPOSE", "MEAN"):
            assert len(op.inputs) == 1 and op.attrs is not None


def test_models_dir_fixture(models_dir):
    assert (models_dir / "README.md").is_file()


# -- SAME padding and fused activations ----------------------------------------------------

# (in size, kernel, stride, dilation) -> (before, after), worked by hand from TFLite's rule:
# out = ceil(in / stride); total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - in, 0);
# before = total // 2, after = total - before (the odd pixel goes after).
SAME_CASES = [
    ((7, 3, 2, 1), (1, 1)),   # out 4, total 2
    ((8, 3, 2, 1), (0, 1)),   # out 4, total 1: the extra pixel is at the bottom/right
    ((6, 4, 1, 1), (1, 2)),   # out 6, total 3
    ((5, 3, 1, 2), (2, 2)),   # dilated: effective 5, total 4
    ((9, 3, 3, 1), (0, 0)),   # out 3, total 0
    ((10, 3, 4, 2), (1, 2)),  # out 3, effective 5, total 3
    ((2, 5, 1, 1), (2, 2)),   # kernel larger than the input
]


@pytest.mark.parametrize("geometry,expected", SAME_CASES)
def test_same_padding_matches_hand_computed(geometry, expected):
    assert same_padding(*geometry) == expected


@pytest.mark.parametrize("geometry,expected", SAME_CASES)
def test_conv_same_padding_becomes_explicit(geometry, expected):
    size, kernel, stride, dilation = geometry
    built = single_op_builder("CONV_2D", [(1, size, size + 1, 2)], np.random.default_rng(0), out_channels=3,
                              kernel=(kernel, 1), padding="SAME", stride_h=stride, stride_w=1,
                              dilation_h_factor=dilation)
    op = load_tflite(built.build()).ops[0]
    assert (op.attrs.padding.top, op.attrs.padding.bottom) == expected
    assert (op.attrs.padding.left, op.attrs.padding.right) == (0, 0)
    assert op.attrs.stride == (stride, 1) and op.attrs.dilation == (dilation, 1)


def test_pool_same_padding_becomes_explicit():
    built = single_op_builder("MAX_POOL_2D", [(1, 8, 7, 2)], np.random.default_rng(0), padding="SAME",
                              filter_height=3, filter_width=2, stride_h=2, stride_w=2)
    op = load_tflite(built.build()).ops[0]
    # rows: out 4, total 1 -> (0, 1); cols: out 4, total (3*2 + 2 - 7) = 1 -> (0, 1)
    assert op.attrs.padding == type(op.attrs.padding)(0, 1, 0, 1)
    assert op.attrs.filter == (3, 2)


def _int8_out(scale: float, zero_point: int) -> Tensor:
    return Tensor("y", (1, 4), "int8", Quantization([scale], [zero_point]))


ACT = schema.ActivationFunctionType


@pytest.mark.parametrize("activation,scale,zero_point,expected", [
    (ACT.NONE, 0.05, -10, (-128, 127)),
    (ACT.RELU, 0.05, -10, (-10, 127)),
    (ACT.RELU6, 0.05, -10, (-10, 110)),          # 6 / 0.05 = 120
    (ACT.RELU_N1_TO_1, 0.05, -10, (-30, 10)),    # -/+ 1 / 0.05 = -/+ 20
    (ACT.RELU6, 0.01, -128, (-128, 127)),        # 6 / 0.01 = 600: clamped to the int8 range
    (ACT.RELU, 0.1, -200 + 72, (-128, 127)),     # zero point -128
    (ACT.RELU6, 4.0, 0, (0, 2)),                 # 1.5 rounds away from zero (not to even)
    (ACT.RELU_N1_TO_1, 2.0, 3, (2, 4)),          # -/+ 0.5 round away from zero: -1, +1
])
def test_activation_range_matches_hand_computed(activation, scale, zero_point, expected):
    assert activation_range(activation, _int8_out(scale, zero_point), "op 0 (TEST)") == expected


def test_fused_activation_reaches_the_attributes():
    built = single_op_builder("ADD", [(1, 4, 4, 3), (1, 4, 4, 3)], np.random.default_rng(0),
                              output_quant=(0.05, -10), fused_activation_function="RELU_N1_TO_1")
    op = load_tflite(built.build()).ops[0]
    assert (op.attrs.act_min, op.attrs.act_max) == (-30, 10)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_window_layers_equal_oracle(data):
    """Random geometry (stride, dilation, SAME/VALID, fused activation) of conv, depthwise
    and pooling layers: the graph read by the frontend computes the oracle's bytes."""
    kind = data.draw(st.sampled_from(["CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D"]))
    kh, kw = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    sh, sw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    padding = data.draw(st.sampled_from(["SAME", "VALID"]))
    activation = data.draw(st.sampled_from(["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]))
    options = dict(padding=padding, stride_h=sh, stride_w=sw, fused_activation_function=activation)
    dh = dw = 1
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        dh, dw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
        options.update(dilation_h_factor=dh, dilation_w_factor=dw)
    h = data.draw(st.integers(max(1, (kh - 1) * dh + 1), 12))
    w = data.draw(st.integers(max(1, (kw - 1) * dw + 1), 12))
    c = data.draw(st.integers(1, 6))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    if kind == "CONV_2D":
        built = single_op_builder(kind, [(1, h, w, c)], rng, out_channels=data.draw(st.integers(1, 6)),
                                  kernel=(kh, kw), per_channel=data.draw(st.booleans()), **options)
    elif kind == "DEPTHWISE_CONV_2D":
        built = single_op_builder(kind, [(1, h, w, c)], rng, kernel=(kh, kw),
                                  depth_multiplier=data.draw(st.integers(1, 2)), **options)
    else:
        built = single_op_builder(kind, [(1, h, w, c)], rng, filter_height=kh, filter_width=kw, **options)
    model = built.build()
    inputs = built.random_inputs(rng)
    expected = TFLiteOracle(model)(inputs)
    assert run(load_tflite(model), inputs)[0].tobytes() == expected[0].tobytes()


# -- every op the builder writes: tflite-micro runs it, the frontend reads it back equal ------

BUILDER_CASES = [
    ("CONV_2D", [(1, 9, 9, 4)], dict(out_channels=6, kernel=(3, 3), padding="SAME", stride_w=2, stride_h=2,
                                     fused_activation_function="RELU6")),
    ("CONV_2D", [(1, 9, 9, 4)], dict(out_channels=6, padding="VALID", dilation_w_factor=2, dilation_h_factor=2,
                                     bias=False, per_channel=False, fused_activation_function="RELU_N1_TO_1")),
    ("CONV_2D", [(1, 7, 7, 4)], dict(out_channels=6, kernel=(1, 1), groups=2)),
    ("DEPTHWISE_CONV_2D", [(1, 9, 9, 4)], dict(padding="SAME", depth_multiplier=2, fused_activation_function="RELU")),
    ("FULLY_CONNECTED", [(2, 10)], dict(units=5, per_channel=False)),
    ("FULLY_CONNECTED", [(1, 2, 10)], dict(units=5, per_channel=True, keep_num_dims=True)),
    ("ADD", [(1, 4, 4, 3), (1, 4, 4, 3)], dict(fused_activation_function="RELU")),
    ("ADD", [(1, 4, 4, 3), (1, 1, 1, 3)], dict(constant_inputs=(1,))),
    ("MUL", [(1, 4, 4, 3), (1, 4, 4, 3)], dict()),
    ("AVERAGE_POOL_2D", [(1, 8, 8, 3)], dict(filter_width=3, filter_height=3, padding="SAME", stride_w=2,
                                             stride_h=2)),
    ("MAX_POOL_2D", [(1, 8, 8, 3)], dict(filter_width=2, filter_height=2, stride_w=2, stride_h=2)),
    ("MEAN", [(1, 8, 8, 3)], dict(axes=(1, 2), keep_dims=False)),
    ("PAD", [(1, 4, 4, 3)], dict(paddings=[[0, 0], [1, 2], [0, 1], [0, 0]])),
    ("PADV2", [(1, 4, 4, 3)], dict(paddings=[[0, 0], [1, 2], [0, 1], [0, 0]], pad_value=5)),
    ("RESHAPE", [(1, 4, 4, 3)], dict(new_shape=(1, -1))),
    ("SOFTMAX", [(1, 10)], dict()),
    ("QUANTIZE", [(1, 10)], dict(input_dtype="float32")),
    ("QUANTIZE", [(1, 10)], dict()),
    ("DEQUANTIZE", [(1, 10)], dict()),
    ("TRANSPOSE", [(1, 4, 5, 3)], dict(perm=(0, 3, 1, 2))),
    ("RESIZE_NEAREST_NEIGHBOR", [(1, 4, 5, 3)], dict(size=(8, 10))),
    ("CONCATENATION", [(1, 4, 5, 3), (1, 4, 5, 2), (1, 4, 5, 1)], dict(axis=-1)),
    ("LOGISTIC", [(1, 10)], dict()),
    ("HARD_SWISH", [(1, 10)], dict()),
    ("RELU", [(1, 10)], dict()),
    ("RELU6", [(1, 10)], dict()),
    ("SQUEEZE", [(1, 1, 1, 10)], dict(squeeze_dims=[1, 2])),
]


@pytest.mark.parametrize("kind,shapes,kwargs", BUILDER_CASES, ids=lambda v: v if isinstance(v, str) else "")
def test_builder_model_runs_in_oracle_and_reads_back_equal(kind, shapes, kwargs):
    rng = np.random.default_rng(17)
    built = single_op_builder(kind, shapes, rng, **kwargs)
    model = built.build()
    graph = load_tflite(model)
    assert [op.kind for op in graph.ops] == ["PAD" if kind == "PADV2" else kind]
    inputs = built.random_inputs(rng)
    expected = TFLiteOracle(model)(inputs)
    ours = run(graph, inputs)
    assert ours[0].dtype == expected[0].dtype and ours[0].shape == expected[0].shape
    assert ours[0].tobytes() == expected[0].tobytes()


# -- parameter inputs become attributes ------------------------------------------------------

def test_parameter_inputs_become_attributes():
    rng = np.random.default_rng(3)
    cases = {
        "RESHAPE": dict(new_shape=(1, -1)),
        "TRANSPOSE": dict(perm=(0, 3, 1, 2)),
        "MEAN": dict(axes=(-3, 2), keep_dims=True),
        "PAD": dict(paddings=[[0, 0], [1, 2], [0, 1], [0, 0]]),
        "PADV2": dict(paddings=[[0, 0], [1, 0], [0, 1], [0, 0]], pad_value=-7),
        "RESIZE_NEAREST_NEIGHBOR": dict(size=(6, 8)),
    }
    seen = {}
    for kind, kw in cases.items():
        op = load_tflite(single_op_builder(kind, [(1, 3, 4, 2)], rng, **kw).build()).ops[0]
        assert len(op.inputs) == 1, kind
        seen[kind] = (op.kind, op.attrs)
    assert seen["RESHAPE"][1].shape == (1, 24)
    assert seen["TRANSPOSE"][1].perm == (0, 3, 1, 2)
    assert seen["MEAN"][1].axes == (1, 2) and seen["MEAN"][1].keep_dims
    assert seen["PAD"][1].pads == ((0, 0), (1, 2), (0, 1), (0, 0)) and seen["PAD"][1].value is None
    assert seen["PADV2"] == ("PAD", type(seen["PAD"][1])(((0, 0), (1, 0), (0, 1), (0, 0)), -7))
    assert seen["RESIZE_NEAREST_NEIGHBOR"][1].size == (6, 8)


def test_weights_and_bias_stay_constant_inputs():
    built = single_op_builder("CONV_2D", [(1, 5, 5, 3)], np.random.default_rng(0), out_channels=4)
    op = load_tflite(built.build()).ops[0]
    x, w, b = op.inputs
    assert not x.is_constant and w.is_constant and b.is_constant
    assert w.shape == (4, 3, 3, 3) and w.dtype == "int8" and w.quant.per_channel and w.quant.axis == 0
    assert b.shape == (4,) and b.dtype == "int32"
    model = unpack(built.build())
    raw = model.subgraphs[0].tensors[1]
    assert w.data.tobytes() == bytes(model.buffers[raw.buffer].data)


# -- odd but legal metadata ------------------------------------------------------------------

def _conv_model(rng=None) -> tuple[ModelBuilder, bytes]:
    built = single_op_builder("CONV_2D", [(1, 6, 6, 3)], rng or np.random.default_rng(11), out_channels=4,
                              padding="SAME", fused_activation_function="RELU")
    return built.builder, built.build()


def test_per_tensor_scale_with_nonzero_quantized_dimension():
    mb = ModelBuilder()
    x = mb.tensor("x", (1, 6), "int8", 0.02, 3, axis=1)
    w_data, _ = int8_weights(np.random.default_rng(0), (4, 6), per_channel=False)
    w = mb.tensor("w", (4, 6), "int8", 0.01, 0, axis=1, data=w_data)  # per-tensor, axis 1
    y = mb.tensor("y", (1, 4), "int8", 0.05, -1, axis=1)
    mb.op("FULLY_CONNECTED", [x, w, -1], [y])
    model = mb.build([x], [y])
    graph = load_tflite(model)
    assert graph.ops[0].inputs[1].quant.axis == 0 and not graph.ops[0].inputs[1].quant.per_channel
    inputs = [random_int8(np.random.default_rng(1), (1, 6))]
    assert run(graph, inputs)[0].tobytes() == TFLiteOracle(model)(inputs)[0].tobytes()


def test_a_bias_with_its_filters_quantized_dimension_loads():
    """Converters copy a depthwise filter's quantized_dimension (3) into its rank-1 bias;
    tflite-micro never reads it (issue 13: this was refused, "8 per-channel scales do not
    match quantized_dimension 3 of shape [8]"). The bias keeps its only axis."""
    mb = ModelBuilder()
    x = mb.tensor("x", (1, 5, 5, 8), "int8", np.float32(0.05), 3)
    scales = np.linspace(0.005, 0.02, 8).astype(np.float32)
    w = mb.tensor("w", (1, 3, 3, 8), "int8", scales, [0] * 8, axis=3,
                  data=np.random.default_rng(2).integers(-127, 128, (1, 3, 3, 8)))
    b = mb.tensor("b", (8,), "int32", np.float32(0.05) * scales, [0] * 8, axis=3, data=np.arange(-400, 400, 100))
    y = mb.tensor("y", (1, 5, 5, 8), "int8", np.float32(0.1), -2)
    mb.op("DEPTHWISE_CONV_2D", [x, w, b], [y], padding="SAME", depth_multiplier=1)
    model = mb.build([x], [y])
    graph = load_tflite(model)
    assert graph.ops[0].inputs[2].quant.axis == 0
    inputs = [random_int8(np.random.default_rng(1), (1, 5, 5, 8))]
    assert run(graph, inputs)[0].tobytes() == TFLiteOracle(model)(inputs)[0].tobytes()


@pytest.mark.parametrize("weights, words", [("float32", "a float model"),
                                             ("int8", "a dynamic-range (hybrid) model: float activations, int8 weights")])
def test_float_and_hybrid_models_are_refused_with_how_to_quantize(tmp_path, capsys, weights, words):
    """A float CONV_2D loaded and then failed with a backend's message (and `mcuc verify`
    with a traceback); a hybrid FULLY_CONNECTED likewise. Now one line names the op, the
    tensor and the converter settings that quantize fully, and the CLI exits 2."""
    from tests.support.hostile_models import refused

    mb = ModelBuilder()
    x = mb.tensor("x", (1, 6), "float32")
    w = mb.tensor("w", (4, 6), weights, *((np.float32(0.01), 0) if weights == "int8" else (None, None)),
                  data=np.ones((4, 6)))
    y = mb.tensor("y", (1, 4), "float32")
    mb.op("FULLY_CONNECTED", [x, w, -1], [y])
    model = mb.build([x], [y])
    with pytest.raises(MCUCError, match=rf"FULLY_CONNECTED 'y': float32 input 'x': this is {re.escape(words)}.*"
                                        r"TFLITE_BUILTINS_INT8"):
        load_tflite(model)
    path = tmp_path / "m.tflite"
    path.write_bytes(model)
    assert words in refused(capsys, "verify", path, "--backends", "reference")


def test_missing_zero_point_array_means_zero():
    mb, model_bytes = _conv_model()
    model = unpack(model_bytes)
    for t in model.subgraphs[0].tensors:
        if t.name in ("weights", "bias"):
            t.quantization.zeroPoint = None
    graph = load_tflite(pack(model))
    w = graph.ops[0].inputs[1]
    assert w.quant.zero_point.tolist() == [0, 0, 0, 0] and w.quant.scale.size == 4


def test_inconsistent_depth_multiplier_option_is_refused():
    """tflite-micro loops over the option's multiplier whatever the weights say (its
    answer then differs from the weights' reading), so a disagreement is an error."""
    built = single_op_builder("DEPTHWISE_CONV_2D", [(1, 5, 5, 3)], np.random.default_rng(2), depth_multiplier=2)
    model = unpack(built.build())
    model.subgraphs[0].operators[0].builtinOptions.depthMultiplier = 0
    with pytest.raises(MCUCError, match=r"depth_multiplier 0 disagrees with the weights.*multiplier of 2"):
        load_tflite(pack(model))


def test_tensor_names_are_made_unique():
    mb = ModelBuilder()
    x = mb.tensor("t", (1, 8), "int8", 0.1, 0)
    y = mb.tensor("t", (1, 8), "int8", 0.1, 0)
    z = mb.tensor("", (1, 8), "int8", 0.1, 0)
    mb.op("RELU", [x], [y])
    mb.op("RELU", [y], [z])
    graph = load_tflite(mb.build([x], [z]))
    names = [t.name for t in graph.tensors]
    assert len(set(names)) == 3 and names[0] == "t" and "tensor_2" in names


def test_graph_name_is_the_file_stem(tmp_path):
    _, model = _conv_model()
    path = tmp_path / "my_net.tflite"
    path.write_bytes(model)
    assert load_tflite(path).name == "my_net"
    assert load_tflite(str(path)).name == "my_net"
    assert load_tflite(model).name == "model"


def test_size_prefixed_file_loads():
    _, model = _conv_model()
    prefixed = len(model).to_bytes(4, "little") + model
    assert str(load_tflite(prefixed)) == str(load_tflite(model))


# -- malformed input -----------------------------------------------------------------------

def _corrupted(edit) -> bytes:
    """A valid conv model with `edit(model)` applied to its object tree."""
    _, model_bytes = _conv_model()
    model = unpack(model_bytes)
    edit(model)
    return pack(model)


def _raises(source, *fragments: str) -> str:
    with pytest.raises(MCUCError) as info:
        load_tflite(source)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_missing_file(tmp_path):
    _raises(tmp_path / "nope.tflite", "cannot read model file", "nope.tflite")


@pytest.mark.parametrize("data,fragment", [
    (b"", "too short"),
    (b"TFL3", "too short"),
    (b"\x08\x00\x00\x00ONNX....", "file identifier is b'ONNX'"),
    (b"\x08\x01\x12\x07pytorch\x1a\x03", "expected b'TFL3'"),
])
def test_not_a_tflite_flatbuffer(data, fragment):
    _raises(data, "not a TFLite model", fragment)


def test_root_offset_beyond_the_file():
    _raises(b"\xff\xff\x00\x00TFL3" + bytes(8), "truncated", "root table offset")


def test_truncated_file_raises_mcuc_error_at_every_length():
    _, model = _conv_model()
    for length in range(0, len(model) - 1, 7):
        with pytest.raises(MCUCError) as info:
            load_tflite(model[:length])
        message = str(info.value)
        assert any(word in message for word in ("truncated", "too short", "out of range", "needs")), message


def test_truncated_file_message():
    _, model = _conv_model()
    _raises(model[: len(model) // 2], "truncated or corrupt TFLite file")


def test_op_input_tensor_index_out_of_range():
    def edit(m):
        m.subgraphs[0].operators[0].inputs[1] = 99
    _raises(_corrupted(edit), "op 0 (CONV_2D)", "input 1", "tensor index 99 is out of range")


def test_op_output_tensor_index_out_of_range():
    def edit(m):
        m.subgraphs[0].operators[0].outputs[0] = -5
    _raises(_corrupted(edit), "op 0 (CONV_2D)", "output 0", "tensor index -5 is out of range")


def test_graph_input_tensor_index_out_of_range():
    def edit(m):
        m.subgraphs[0].inputs = [1234]
    _raises(_corrupted(edit), "graph input 0", "tensor index 1234 is out of range")


def test_buffer_index_out_of_range():
    def edit(m):
        m.subgraphs[0].tensors[1].buffer = 77
    _raises(_corrupted(edit), "tensor 1 ('weights')", "buffer index 77 is out of range")


def test_shape_does_not_match_buffer_size():
    def edit(m):
        m.subgraphs[0].tensors[1].shape = [4, 3, 3, 4]
    _raises(_corrupted(edit), "tensor 1 ('weights')", "needs 144 bytes", "holds 108")


def test_opcode_index_out_of_range():
    def edit(m):
        m.subgraphs[0].operators[0].opcodeIndex = 5
    _raises(_corrupted(edit), "op 0", "opcode index 5 is out of range")


def test_unsupported_builtin_is_named():
    mb = ModelBuilder()
    x = mb.tensor("x", (1, 8), "int8", 0.1, 0)
    y = mb.tensor("y", (1, 8), "int8", 1 / 128, 0)
    mb.op("NEG", [x], [y])
    message = _raises(mb.build([x], [y]), "op 0 (NEG)", "builtin NEG is not supported", "`mcuc ops` lists the")
    assert len(message) < 150, message  # the list of supported builtins is `mcuc ops`, not every message


def test_custom_op_is_named():
    def edit(m):
        m.operatorCodes[0].builtinCode = schema.BuiltinOperator.CUSTOM
        m.operatorCodes[0].deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
        m.operatorCodes[0].customCode = "MyFancyOp"
    _raises(_corrupted(edit), "op 0", "custom op 'MyFancyOp' is not supported")


@pytest.mark.parametrize("field,value,fragments", [
    ("fusedActivationFunction", ACT.TANH, ("op 0 (CONV_2D)", "fused_activation_function TANH is not supported")),
    ("fusedActivationFunction", 42, ("op 0 (CONV_2D)", "fused_activation_function 42")),
    ("padding", 5, ("op 0 (CONV_2D)", "padding value 5")),
    ("strideW", 0, ("op 0 (CONV_2D)", "stride (1, 0) must be positive")),
    ("dilationHFactor", -1, ("op 0 (CONV_2D)", "dilation (-1, 1) must be positive")),
])
def test_unsupported_attribute_value_is_named(field, value, fragments):
    def edit(m):
        setattr(m.subgraphs[0].operators[0].builtinOptions, field, value)
    _raises(_corrupted(edit), *fragments)


def test_shuffled_fully_connected_weights_are_refused():
    built = single_op_builder("FULLY_CONNECTED", [(1, 8)], np.random.default_rng(0), units=4,
                              weights_format="SHUFFLED4x16INT8")
    _raises(built.build(), "op 0 (FULLY_CONNECTED)", "weights_format")


def test_options_table_of_the_wrong_kind():
    def edit(m):
        op = m.subgraphs[0].operators[0]
        op.builtinOptionsType = schema.BuiltinOptions.Pool2DOptions
        op.builtinOptions = schema.Pool2DOptionsT()
    _raises(_corrupted(edit), "op 0 (CONV_2D)", "builtin options are Pool2DOptions, expected Conv2DOptions")


def test_runtime_parameter_input_is_refused():
    mb = ModelBuilder()
    x = mb.tensor("x", (1, 2, 4), "int8", 0.1, 0)
    shape = mb.tensor("shape", (2,), "int32")
    y = mb.tensor("y", (1, 8), "int8", 0.1, 0)
    mb.op("RESHAPE", [x, shape], [y])
    _raises(mb.build([x, shape], [y]), "op 0 (RESHAPE)", "shape input 'shape' must be a constant")


def test_declared_output_shape_must_agree_with_shape_inference():
    def edit(m):
        m.subgraphs[0].tensors[3].shape = [1, 5, 6, 4]
    _raises(_corrupted(edit), "op 0 (CONV_2D)", "declares output shapes [(1, 5, 6, 4)]", "(1, 6, 6, 4)")


def test_per_channel_scales_must_match_the_quantized_dimension():
    def edit(m):
        m.subgraphs[0].tensors[1].quantization.quantizedDimension = 3
    _raises(_corrupted(edit), "tensor 1 ('weights')", "4 per-channel scales do not match quantized_dimension 3")


def test_missing_required_input():
    def edit(m):
        m.subgraphs[0].operators[0].inputs[1] = -1
    _raises(_corrupted(edit), "op 0 (CONV_2D)", "required input 1 is absent")


def test_unsupported_tensor_type_is_named():
    def edit(m):
        m.subgraphs[0].tensors[0].type = schema.TensorType.COMPLEX64
    _raises(_corrupted(edit), "tensor 0 ('input_0')", "element type COMPLEX64 is not supported")


_FUZZ_BASES = {
    "CONV_2D": lambda: _conv_model()[1],
    "TRANSPOSE": lambda: single_op_model("TRANSPOSE", [(1, 2, 3, 4)], np.random.default_rng(0), perm=(0, 2, 3, 1)),
    "PADV2": lambda: single_op_model("PADV2", [(1, 3, 3, 2)], np.random.default_rng(0),
                                     paddings=[[0, 0], [1, 1], [0, 2], [0, 0]]),
    "CONCATENATION": lambda: single_op_model("CONCATENATION", [(1, 2, 3), (1, 2, 2)], np.random.default_rng(0),
                                             axis=2),
    "SQUEEZE": lambda: single_op_model("SQUEEZE", [(1, 1, 5)], np.random.default_rng(0), squeeze_dims=[1]),
}


@pytest.mark.parametrize("base", sorted(_FUZZ_BASES))
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_corrupted_bytes_raise_only_mcuc_error(base, data):
    """Flipped bytes anywhere in a valid model: the frontend either reads a (different)
    valid model or raises MCUCError; never IndexError, struct.error or a hang."""
    model = _FUZZ_BASES[base]()
    corrupt = bytearray(model)
    for _ in range(data.draw(st.integers(1, 6))):
        position = data.draw(st.integers(0, len(corrupt) - 1))
        corrupt[position] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        corrupt = corrupt[: data.draw(st.integers(0, len(corrupt)))]
    try:
        graph = load_tflite(bytes(corrupt))
    except MCUCError:
        return
    graph.verify()


# -- the committed example model ---------------------------------------------------------------

def test_example_model_is_what_make_example_writes():
    from tests.support import make_example

    assert make_example.EXAMPLE_PATH.read_bytes() == make_example.build_example(), \
        "examples/mobilenet_tiny_int8.tflite is stale: run python -m tests.support.make_example"


def test_example_model_equals_oracle():
    from tests.support import make_example

    model = make_example.EXAMPLE_PATH.read_bytes()
    graph = load_tflite(make_example.EXAMPLE_PATH)
    assert graph.name == "mobilenet_tiny_int8"
    kinds = [op.kind for op in graph.ops]
    assert kinds.count("ADD") == 1 and kinds.count("DEPTHWISE_CONV_2D") == 4 and kinds[-1] == "SOFTMAX"
    oracle = TFLiteOracle(model)
    rng = np.random.default_rng(5)
    outputs = set()
    for _ in range(3):
        x = random_int8(rng, graph.inputs[0].shape)
        expected = oracle([x])[0]
        assert run(graph, [x])[0].tobytes() == expected.tobytes()
        outputs.add(expected.tobytes())
    assert len(outputs) == 3  # calibrated: the network's output depends on its input


def test_zero_point_outside_the_type_range():
    def edit(m):
        m.subgraphs[0].tensors[0].quantization.zeroPoint = [300]
    _raises(_corrupted(edit), "tensor 0 ('input_0')", "zero point 300 is outside the int8 range")


def test_inconsistent_op_names_its_index_kind_and_output():
    def edit(m):
        m.subgraphs[0].tensors[0].shape = [1, 6, 6, 5]  # 5 input channels, weights expect 3
    _raises(_corrupted(edit), "op 0 (CONV_2D) 'output'", "input channels 5")
