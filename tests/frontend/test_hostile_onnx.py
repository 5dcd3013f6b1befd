"""Broken and hostile .onnx files (issue 18): each one is refused with one clear line
(exit 2, the problem named, no traceback), or computes exactly what onnxruntime computes."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from mcuc.frontend.onnx_numerics import parse_onnx_numerics  # noqa: E402
from mcuc.ir.interpreter import run  # noqa: E402
from mcuc.model import load_model  # noqa: E402
from mcuc.oracle_onnx import OnnxOracle  # noqa: E402
from tests.support import hostile_models as hm  # noqa: E402
from tests.support.hostile_models import refused, run_cli  # noqa: E402

NUMERICS = ("exact", "ort-x86-avx2")


def _equals_onnxruntime(out: str) -> bool:
    """verify's verdict that the reference equals onnxruntime byte for byte: directly, or
    (ort-x86-avx2 on a host whose MLAS sums u8 x s8 exactly: VNNI, AMX, not x86) with
    this host's kernels, every sample."""
    return ("reference equals onnxruntime byte for byte" in out
            or "with this host's kernels equals onnxruntime byte for byte on every sample" in out)


def _save(tmp_path, model, name="m.onnx"):
    path = tmp_path / name
    path.write_bytes(model if isinstance(model, bytes) else model.SerializeToString())
    return path


def test_empty_file_is_not_a_model(tmp_path, capsys):
    assert "the file is empty" in refused(capsys, "compile", _save(tmp_path, b""), "-o", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_graph_without_nodes_or_outputs_is_refused(tmp_path, capsys):
    model = hm.qdq_conv()
    del model.graph.output[:]
    assert "no outputs" in refused(capsys, "inspect", _save(tmp_path, model))
    del model.graph.node[:]
    assert "no nodes" in refused(capsys, "inspect", _save(tmp_path, model))


@pytest.mark.parametrize("opset", [11, 99])
def test_opsets_outside_the_supported_range_name_the_range(tmp_path, capsys, opset):
    model = hm.qdq_conv()
    model.opset_import[0].version = opset
    message = refused(capsys, "inspect", _save(tmp_path, model))
    assert f"opset {opset}" in message and "opsets 13 to 21" in message


def test_external_data_is_refused_before_any_file_is_read(tmp_path, capsys):
    model = hm.qdq_conv()
    w = next(i for i in model.graph.initializer if i.name == "w_q")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    w.external_data.add(key="location", value="/etc/passwd")
    assert "external file" in refused(capsys, "inspect", _save(tmp_path, model))


@pytest.mark.parametrize("dims", [None, [10**12, 4, 3, 3]])
def test_corrupt_initializer_is_refused(tmp_path, capsys, dims):
    model = hm.qdq_conv()
    w = next(i for i in model.graph.initializer if i.name == "w_q")
    if dims is None:
        w.raw_data = w.raw_data[:5]  # fewer bytes than its dims need
    else:
        w.dims[:] = dims  # a size no microcontroller has: refused before any array exists
    message = refused(capsys, "inspect", _save(tmp_path, model))
    assert "'w_q'" in message and ("corrupt" in message if dims is None else "--max-tensor-bytes" in message)


def test_non_utf8_op_type_is_refused(tmp_path, capsys):
    data = hm.qdq_conv().SerializeToString().replace(b"Conv", b"C\xffnv")
    assert "not UTF-8" in refused(capsys, "inspect", _save(tmp_path, data))


@pytest.mark.parametrize("attrs", [dict(pads=[1, 1]), dict(pads=[-1, 0, 0, 0]), dict(strides=[0, 1])])
def test_window_attributes_out_of_shape_are_refused(tmp_path, capsys, attrs):
    message = refused(capsys, "inspect", _save(tmp_path, hm.qdq_conv(conv_attrs=attrs)))
    assert any(word in message for word in ("pads", "strides", "stride"))


def test_zero_by_zero_kernel_is_refused(tmp_path, capsys):
    model = hm.qdq_conv()
    w = next(i for i in model.graph.initializer if i.name == "w_q")
    w.CopyFrom(numpy_helper.from_array(np.zeros((4, 4, 0, 0), np.int8), "w_q"))
    assert "empty dimension" in refused(capsys, "inspect", _save(tmp_path, model))


def test_huge_dilation_is_refused_before_allocating(tmp_path, capsys):
    model = hm.qdq_conv(conv_attrs=dict(dilations=[2**31 - 1, 2**31 - 1], auto_pad="SAME_UPPER"))
    message = refused(capsys, "inspect", _save(tmp_path, model))
    assert "beyond int32" in message and "dilation (2147483647, 2147483647)" in message
    # A dilation within int32 whose padding still no memory holds: the padded input's size.
    model = hm.qdq_conv(conv_attrs=dict(dilations=[2**20, 2**20], auto_pad="SAME_UPPER"))
    assert "padded input" in refused(capsys, "inspect", _save(tmp_path, model))


def test_huge_input_is_refused_and_the_limit_can_be_raised(tmp_path, capsys):
    model = hm.qdq_conv()
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_value = dims[3].dim_value = 16384
    message = refused(capsys, "compile", _save(tmp_path, model), "-o", tmp_path / "out")
    assert "'x'" in message and "--max-tensor-bytes" in message and "64 MiB" in message
    # The limit is the user's: a small model passes the default and fails a tiny limit.
    small = _save(tmp_path, hm.qdq_conv(), "small.onnx")
    assert run_cli(capsys, "inspect", small)[0] == 0
    assert "1,024 B" in refused(capsys, "inspect", small, "--max-tensor-bytes", "1KiB")


@pytest.mark.parametrize("channels, out_channels, group", [(6, 4, 4), (4, 6, 4), (6, 6, 4)])
def test_group_that_does_not_fit_the_channels_is_refused(tmp_path, capsys, channels, out_channels, group):
    model = hm.qdq_conv(channels=channels, out_channels=out_channels, group=1)
    next(n for n in model.graph.node if n.op_type == "Conv").attribute[0].i = group  # the group attribute only
    message = refused(capsys, "inspect", _save(tmp_path, model))
    assert f"group {group}" in message or "shape inference" in message


def test_long_names_are_cut_in_messages(tmp_path, capsys):
    long = "n" * 5000
    model = hm.qdq_conv(name=long)
    next(n for n in model.graph.node if n.op_type == "Conv").op_type = "Sin"
    message = refused(capsys, "inspect", _save(tmp_path, model))
    assert "..." in message and long not in message and len(message) < 450


def test_int32_bias_that_can_overflow_is_refused(tmp_path, capsys):
    model = hm.qdq_conv(bias=np.array([2**31 - 1, -2**31, 0, 5], np.int32))
    message = refused(capsys, "inspect", _save(tmp_path, model))
    assert "bias 2147483647 of output channel 0" in message and "int32" in message


@pytest.mark.parametrize("numerics", NUMERICS)
@pytest.mark.parametrize("knob", [dict(bias_scale=0.0123), dict(bias_zero_point=7),
                                  dict(bias_scale=float(np.float32(0.05) * np.float32(0.02)) * 1.005)])
def test_conv_bias_with_its_own_quantization_computes_what_onnxruntime_computes(tmp_path, capsys, numerics, knob):
    """onnxruntime runs a QDQ Conv whose bias scale is not input x weight scale (beyond its
    1% tolerance), or whose bias zero point is not 0, in float; within the tolerance it
    fuses and ignores the bias scale. Both are what mcuc computes, on every backend."""
    path = _save(tmp_path, hm.qdq_conv(y_scale=0.02, **knob))
    backends = "reference,llvm" if numerics == "exact" else "reference"
    code, out, _ = run_cli(capsys, "verify", path, "--backends", backends, "--samples", "4",
                           "--onnx-numerics", numerics)
    assert code == 0 and _equals_onnxruntime(out), out


def test_bias_scale_at_the_edge_of_onnxruntimes_tolerance_is_refused(tmp_path, capsys):
    implied = float(np.float32(0.05) * np.float32(0.02))
    path = _save(tmp_path, hm.qdq_conv(bias_scale=implied * 1.01 + 1e-6))
    assert "edge of onnxruntime's tolerance" in refused(capsys, "inspect", path)


def _gemm_with_bias(scale_factor: float, zero_point: int):
    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array(np.float32(0.05), "xs"), numpy_helper.from_array(np.int8(0), "xz"),
             numpy_helper.from_array(np.float32(0.03), "ys"), numpy_helper.from_array(np.int8(0), "yz"),
             numpy_helper.from_array(rng.integers(-127, 128, (16, 8)).astype(np.int8), "w_q"),
             numpy_helper.from_array(np.float32(0.02), "ws"), numpy_helper.from_array(np.int8(0), "wz"),
             numpy_helper.from_array(rng.integers(-3000, 3000, 8).astype(np.int32), "b_q"),
             numpy_helper.from_array(np.float32(np.float32(0.05) * np.float32(0.02) * scale_factor), "bs"),
             numpy_helper.from_array(np.int32(zero_point), "bz")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w_q", "ws", "wz"], ["wd"]),
             helper.make_node("DequantizeLinear", ["b_q", "bs", "bz"], ["bd"]),
             helper.make_node("Gemm", ["xd", "wd", "bd"], ["c"], name="gemm"),
             helper.make_node("QuantizeLinear", ["c", "ys", "yz"], ["cq"]),
             helper.make_node("DequantizeLinear", ["cq", "ys", "yz"], ["y"])]
    return hm.onnx_model(nodes, inits, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
                         [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])


@pytest.mark.parametrize("numerics", NUMERICS)
@pytest.mark.parametrize("scale_factor, zero_point", [(2.0, 0), (1.0, 5)])
def test_gemm_bias_with_its_own_quantization_computes_what_onnxruntime_computes(tmp_path, capsys, numerics,
                                                                                scale_factor, zero_point):
    """A QDQ Gemm fuses into QGemm whatever its bias's scale and zero point (the raw int32
    values are added): so does mcuc."""
    path = _save(tmp_path, _gemm_with_bias(scale_factor, zero_point))
    code, out, _ = run_cli(capsys, "verify", path, "--backends", "reference", "--samples", "4",
                             "--onnx-numerics", numerics)
    assert code == 0 and _equals_onnxruntime(out), out


@pytest.mark.parametrize("numerics", NUMERICS)
def test_average_pool_rounds_window_means_of_n_and_a_half_as_onnxruntime(numerics):
    """A 2x2 QDQ AveragePool whose window sums are 4n + 2: every mean is n + 0.5, which
    onnxruntime rounds half to even (with the session options of the numerics)."""
    data = hm.qdq_avgpool(channels=8, size=8, scale=0.05).SerializeToString()
    model = load_model(data, format="onnx", onnx_numerics=numerics)
    rng = np.random.default_rng(5)
    q = rng.integers(-30, 30, size=(1, 8, 8, 8)).astype(np.int64)
    q[:, :, 0::2, 0::2] += 2 - (q[:, :, 0::2, 0::2] + q[:, :, 1::2, 0::2] + q[:, :, 0::2, 1::2]
                                 + q[:, :, 1::2, 1::2]) % 4  # each 2x2 window sums to 2 mod 4
    x = (q * np.float32(0.05)).astype(np.float32)
    expected = OnnxOracle(data, "nchw", parse_onnx_numerics(numerics))([x])[0]
    ours = run(model.graph, [x])[0]
    sums = q[:, :, 0::2, 0::2] + q[:, :, 1::2, 0::2] + q[:, :, 0::2, 1::2] + q[:, :, 1::2, 1::2]
    assert np.all(sums % 4 == 2)
    assert ours.tobytes() == expected.tobytes()


def test_shared_quantized_network_survives_the_checks():
    """The checks do not refuse what onnxruntime.quantization writes."""
    from tests.support import onnx_models

    data = onnx_models.quantize(onnx_models.resnet(np.random.default_rng(0), size=16))
    assert load_model(data, format="onnx").graph.ops


def test_opset_21_quantize_without_zero_point_takes_its_output_dtype(tmp_path, capsys):
    """QuantizeLinear's output_dtype (opset 21) types a QDQ pair without zero points: int8
    here, not the uint8 a missing zero point meant before."""
    inits = [numpy_helper.from_array(np.float32(0.05), "s")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s"], ["xq"], output_dtype=TensorProto.INT8),
             helper.make_node("DequantizeLinear", ["xq", "s"], ["xd"]),
             helper.make_node("MaxPool", ["xd"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("QuantizeLinear", ["p", "s"], ["pq"], output_dtype=TensorProto.INT8),
             helper.make_node("DequantizeLinear", ["pq", "s"], ["y"])]
    model = hm.onnx_model(nodes, inits, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], opset=21, ir_version=10)
    code, out, _ = run_cli(capsys, "verify", _save(tmp_path, model), "--backends", "reference", "--samples", "3")
    assert code == 0 and _equals_onnxruntime(out), out


@pytest.mark.parametrize("edit, words", [
    (lambda m: m.graph.node[1].attribute.append(helper.make_attribute("pads", [1, 2])), "not an attribute"),
    (lambda m: next(n for n in m.graph.node if n.op_type == "Conv").attribute.append(
        helper.make_attribute("strides", 2)), "wrong type"),
    (lambda m: next(a for n in m.graph.node if n.op_type == "Conv" for a in n.attribute
                    if a.name == "kernel_shape").ints.__setitem__(0, 2), "kernel_shape [2, 3] disagrees"),
])
def test_attributes_onnxruntime_refuses_are_refused(tmp_path, capsys, edit, words):
    """What onnxruntime calls an invalid model, mcuc does not compile by ignoring it."""
    model = hm.qdq_conv()
    edit(model)
    assert words in refused(capsys, "compile", _save(tmp_path, model), "-o", tmp_path / "out")


def test_axis_out_of_range_is_refused(tmp_path, capsys):
    inits = [numpy_helper.from_array(np.float32(0.05), "s"), numpy_helper.from_array(np.int8(0), "z")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
             helper.make_node("Softmax", ["xd"], ["p"], axis=255),
             helper.make_node("QuantizeLinear", ["p", "s", "z"], ["pq"]),
             helper.make_node("DequantizeLinear", ["pq", "s", "z"], ["y"])]
    model = hm.onnx_model(nodes, inits, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 10])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    message = refused(capsys, "inspect", _save(tmp_path, model))
    assert "255" in message and ("out of range" in message or "shape inference" in message)


def test_dequantize_zero_point_of_another_type_than_its_input_is_refused(tmp_path, capsys):
    model = hm.qdq_conv()
    z = next(i for i in model.graph.initializer if i.name == "wz")
    z.CopyFrom(numpy_helper.from_array(np.uint8(0), "wz"))
    assert "zero point is uint8 but its input is int8" in refused(capsys, "inspect", _save(tmp_path, model))


# -- found by the fuzz run (tests/fuzz, scripts/fuzz.py) -----------------------------------

@pytest.mark.parametrize("source", ["qdq", "qlinear"])
def test_a_node_without_outputs_is_refused(tmp_path, capsys, source):
    """A QOperator node with its outputs deleted was an IndexError in the reader."""
    from tests.support.onnx_models import qlinear_conv_model
    import onnx

    model = hm.qdq_conv() if source == "qdq" else onnx.load_from_string(qlinear_conv_model("int8"))
    node = next(n for n in model.graph.node if n.op_type in ("Conv", "QLinearConv"))
    del node.output[:]
    assert "has no output" in refused(capsys, "inspect", _save(tmp_path, model))


def test_a_node_with_more_inputs_than_its_schema_is_refused(tmp_path, capsys):
    model = hm.qdq_conv()
    node = next(n for n in model.graph.node if n.op_type == "Conv")
    node.input.append("xd")
    message = refused(capsys, "inspect", _save(tmp_path, model))
    assert "4 inputs, where Conv (opset 17) takes 2 to 3" in message


@pytest.mark.parametrize("op_type, words", [
    ("Conv", "ONNX node 'conv' (Conv): 1 inputs, where Conv (opset 17) takes 2 to 3"),
    ("QuantizeLinear", "(QuantizeLinear): 1 inputs, where QuantizeLinear (opset 17) takes 2 to 3"),
])
def test_a_node_with_fewer_inputs_than_its_schema_is_refused(tmp_path, capsys, op_type, words):
    """Without the schema check a Conv with its weights deleted was an IndexError."""
    model = hm.qdq_conv()
    node = next(n for n in model.graph.node if n.op_type == op_type)
    del node.input[1:]
    assert words in refused(capsys, "inspect", _save(tmp_path, model))


def test_a_conv_without_its_optional_bias_still_loads():
    """The near miss of the test above: 2 inputs are within Conv's 2 to 3."""
    model = hm.qdq_conv()
    node = next(n for n in model.graph.node if n.op_type == "Conv")
    del node.input[2:]
    assert load_model(model.SerializeToString(), format="onnx").graph.ops


@pytest.mark.parametrize("make", [hm.qdq_conv, hm.qdq_avgpool])
def test_a_node_with_more_outputs_than_its_schema_is_refused(tmp_path, capsys, make):
    model = make()
    node = next(n for n in model.graph.node if n.op_type in ("Conv", "AveragePool"))
    node.output.append("extra")
    message = refused(capsys, "inspect", _save(tmp_path, model))
    assert f"({node.op_type}): 2 outputs, where {node.op_type} (opset 17) takes 1 to 1" in message


def test_a_node_with_fewer_outputs_than_its_schema_is_refused(tmp_path, capsys):
    """DynamicQuantizeLinear has exactly 3 outputs (y, y_scale, y_zero_point); with one it
    is an invalid model, refused before mcuc reads the node (and refuses dynamic
    quantization)."""
    model = hm.qdq_conv()
    model.graph.node.insert(0, helper.make_node("DynamicQuantizeLinear", ["x"], ["dyn_y"], name="dyn"))
    message = refused(capsys, "inspect", _save(tmp_path, model))
    assert "ONNX node 'dyn' (DynamicQuantizeLinear): 1 outputs, where DynamicQuantizeLinear (opset 17) takes 3 to 3" \
        in message


@pytest.mark.parametrize("numerics", NUMERICS)
def test_quantize_static_conv_then_average_pool_is_bit_exact(tmp_path, numerics):
    """Issue 18's second AveragePool case: a plain float Conv -> 2x2 AveragePool quantized
    by quantize_static (6-8% of outputs were one step off, the n + 0.5 window means)."""
    from mcuc.verify import verify
    from tests.support import onnx_models

    net = onnx_models._Net(np.random.default_rng(7), (1, 3, 12, 12))
    y = net.node("AveragePool", [net.conv("input", 3, 8, 3, act=None)], kernel_shape=[2, 2], strides=[2, 2])
    data = onnx_models.quantize(net.model(y, "conv_avgpool"), "qdq", seed=7)
    report = verify(load_model(data, format="onnx", onnx_numerics=numerics), ["reference", "llvm"], samples=20)
    assert all(v["bit_exact"] for v in report["backends"].values()), report["backends"]


def test_the_46000_by_46000_input_is_refused_in_bounded_memory(tmp_path, capsys):
    """Issue 18: a 1x3x46000x46000 input was numpy's MemoryError in passes/aliasing.py.
    Refused from its shape alone: this process grows by far less than the tensor's 6 GB."""
    import resource

    model = hm.qdq_conv(channels=3)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_value = dims[3].dim_value = 46000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    message = refused(capsys, "compile", _save(tmp_path, model), "-o", tmp_path / "out")
    assert "[1, 3, 46000, 46000]" in message and "--max-tensor-bytes" in message
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # KiB


def test_dequantize_with_other_parameters_than_the_producer_is_refused(tmp_path, capsys):
    """Found by the fuzz run: the graph's last DequantizeLinear reading another tensor's
    scale; mcuc used the producer's quantization, onnxruntime the DequantizeLinear's."""
    model = hm.qdq_conv()
    last = model.graph.node[-1]
    assert last.op_type == "DequantizeLinear" and last.input[1] == "ys"
    last.input[1] = "xs"
    message = refused(capsys, "verify", _save(tmp_path, model))
    assert "another scale or zero point" in message


def test_scalar_weights_of_a_qlinear_conv_are_refused(tmp_path, capsys):
    """A QLinearConv whose weight input names a scalar (the fuzz run's node_input mutation
    on a QOperator MobileNet) was an IndexError in the reader. Behind a com.microsoft op
    (QLinearSigmoid here, the hard-swish there) onnx's shape inference knows no shape to
    check it against, so mcuc's reader is the one that must."""
    from tests.support.onnx_models import qlinear_conv_model
    import onnx

    model = onnx.load_from_string(qlinear_conv_model("int8"))
    node = next(n for n in model.graph.node if n.op_type == "QLinearConv")
    node.input[3] = node.input[2]  # the input's zero point: a scalar
    node.input[0] = "xs_"
    model.graph.node.insert(0, helper.make_node("QLinearSigmoid", ["x", "xs", "xz", "xs", "xz"], ["xs_"],
                                                domain="com.microsoft"))
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    assert "weights of shape [] have no output-channel axis 0" in refused(capsys, "inspect", _save(tmp_path, model))


@pytest.mark.parametrize("operand, words", [(3, "the weights are computed at run time"),
                                            (8, "bias 'xs_' is computed at run time")])
def test_weights_computed_by_the_graph_are_refused(tmp_path, capsys, operand, words):
    """A QLinearConv (a QGemm in the fuzz run) whose weight (or bias) input names an
    activation was an AttributeError in the reader."""
    from tests.support.onnx_models import qlinear_conv_model
    import onnx

    model = onnx.load_from_string(qlinear_conv_model("int8"))
    node = next(n for n in model.graph.node if n.op_type == "QLinearConv")
    if operand == len(node.input):
        node.input.append("xs_")
    else:
        node.input[operand] = "xs_"  # behind a com.microsoft op, unknown to shape inference
    model.graph.node.insert(0, helper.make_node("QLinearSigmoid", ["x", "xs", "xz", "xs", "xz"], ["xs_"],
                                                domain="com.microsoft"))
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    assert words in refused(capsys, "inspect", _save(tmp_path, model))


def _qgemm(runtime_bias: bool):
    """An operator-oriented QGemm (com.microsoft), int8 [1, 16] x [8, 16]^T + bias; with
    `runtime_bias` its bias input names a QLinearSigmoid's output (behind a com.microsoft
    op, unknown to shape inference)."""
    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array(np.float32(0.05), "xs"), numpy_helper.from_array(np.int8(0), "xz"),
             numpy_helper.from_array(rng.integers(-127, 128, (8, 16)).astype(np.int8), "w"),
             numpy_helper.from_array(np.float32(0.02), "ws"), numpy_helper.from_array(np.int8(0), "wz"),
             numpy_helper.from_array(rng.integers(-3000, 3000, 8).astype(np.int32), "b"),
             numpy_helper.from_array(np.float32(0.03), "ys"), numpy_helper.from_array(np.int8(0), "yz")]
    nodes = [helper.make_node("QGemm", ["x", "xs", "xz", "w", "ws", "wz", "xs_" if runtime_bias else "b", "ys", "yz"],
                              ["y"], name="qgemm", transB=1, domain="com.microsoft")]
    if runtime_bias:
        nodes.insert(0, helper.make_node("QLinearSigmoid", ["x", "xs", "xz", "xs", "xz"], ["xs_"],
                                         domain="com.microsoft"))
    model = hm.onnx_model(nodes, inits, [helper.make_tensor_value_info("x", TensorProto.INT8, [1, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.INT8, [1, 8])])
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return model


def _qdq_gemm(runtime_bias: bool):
    """_gemm_with_bias; with `runtime_bias` the bias's DequantizeLinear reads a
    QLinearSigmoid's output (with that output's own scale and zero point)."""
    model = _gemm_with_bias(1.0, 0)
    if runtime_bias:
        dq = next(n for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] == "b_q")
        dq.input[:] = ["r", "xs", "xz"]
        model.graph.node.insert(2, helper.make_node("QLinearSigmoid", ["xq", "xs", "xz", "xs", "xz"], ["r"],
                                                    domain="com.microsoft"))
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return model


@pytest.mark.parametrize("make, words", [(_qgemm, "ONNX node 'qgemm' (QGemm): bias 'xs_' is computed at run time"),
                                         (_qdq_gemm, "ONNX node 'gemm' (Gemm): ")])
def test_a_gemm_bias_computed_by_the_graph_is_refused(tmp_path, capsys, make, words):
    """As for QLinearConv above (790ccd2): a QGemm's, or a QDQ Gemm's, bias that an op
    computes is refused naming the node; the same model with a constant bias loads."""
    assert load_model(make(False).SerializeToString(), format="onnx").graph.ops
    message = refused(capsys, "inspect", _save(tmp_path, make(True)))
    assert words in message and "is computed at run time" in message



@pytest.mark.parametrize("operands", [1, 2])
def test_a_qlinear_concat_whose_inputs_are_not_triples_is_refused(tmp_path, capsys, operands):
    """QLinearConcat's inputs are Y_scale, Y_zero_point, then (X, X_scale, X_zero_point)
    per operand (fuzz seed 25 case 175: one input too many was an IndexError); with whole
    triples the same model loads."""
    inits = [numpy_helper.from_array(np.float32(0.05), "xs"), numpy_helper.from_array(np.int8(0), "xz")]

    def model(inputs):
        nodes = [helper.make_node("QLinearConcat", inputs, ["y"], name="cat", axis=1, domain="com.microsoft")]
        m = hm.onnx_model(nodes, inits, [helper.make_tensor_value_info("x", TensorProto.INT8, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.INT8, [1, 4 * operands])])
        m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
        return m

    whole = ["xs", "xz"] + ["x", "xs", "xz"] * operands
    assert load_model(model(whole).SerializeToString(), format="onnx").graph.ops
    message = refused(capsys, "inspect", _save(tmp_path, model(whole + ["xz"])))
    assert "ONNX node 'cat' (QLinearConcat)" in message and "triple per operand" in message


@pytest.mark.parametrize("kind", ["QLinearSigmoid", "QLinearConv", "QGemm"])
def test_a_graph_input_read_without_its_scale_is_refused(tmp_path, capsys, kind):
    """An int8 graph input takes its quantization from the node that reads it, which must
    name a scale right after it (a com.microsoft QLinear* node cut to one input, which
    onnx's schemas do not check, was an IndexError)."""
    node = helper.make_node(kind, ["x"], ["y"], name="n", domain="com.microsoft")
    model = hm.onnx_model([node], [], [helper.make_tensor_value_info("x", TensorProto.INT8, [1, 4, 2, 2])],
                          [helper.make_tensor_value_info("y", TensorProto.INT8, [1, 4, 2, 2])])
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    message = refused(capsys, "inspect", _save(tmp_path, model))
    assert f"ONNX node 'n' ({kind})" in message and "'x'" in message, message
