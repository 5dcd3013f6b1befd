"""The ONNX frontend's contract outside the numerics: the errors a user can cause name the
node, its op type and what to do; layouts and weights are settled at import; the
--calibrate path writes a quantized model that verifies byte-exact."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
import onnx  # noqa: E402
from tests.support import onnx_models  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from mcuc.calibrate import load_samples, quantize_onnx, quantized_path_for  # noqa: E402
from mcuc.frontend.onnx import load_onnx  # noqa: E402
from mcuc.ir.errors import MCUCError  # noqa: E402
from mcuc.model import load_model  # noqa: E402
from mcuc.verify import verify  # noqa: E402


def _qdq_model(op_nodes, inits, in_shape=(1, 2, 4, 4), in_dims=None, opset=17) -> bytes:
    """float x -> Q -> DQ -> `op_nodes` (reading "d", writing "c") -> Q -> DQ -> out."""
    base = [numpy_helper.from_array(np.float32(0.1), "s"), numpy_helper.from_array(np.int8(0), "z")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"]),
             *op_nodes,
             helper.make_node("QuantizeLinear", ["c", "s", "z"], ["qc"]),
             helper.make_node("DequantizeLinear", ["qc", "s", "z"], ["out"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_dims or in_shape))],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)], base + inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model.SerializeToString()


def test_unsupported_op_names_node_type_and_fix():
    data = _qdq_model([helper.make_node("Sin", ["d"], ["c"], name="my_sin")], [])
    with pytest.raises(MCUCError, match=r"'my_sin' \(Sin\).*not supported.*`mcuc ops`.*replace it") as info:
        load_onnx(data)
    assert len(str(info.value)) < 200, str(info.value)  # the op list is `mcuc ops`, not every message


def test_dynamic_shape_is_rejected_with_the_fix():
    data = _qdq_model([helper.make_node("MaxPool", ["d"], ["c"], kernel_shape=[2, 2])], [], in_dims=("batch", 2, 4, 4))
    with pytest.raises(MCUCError, match=r"'x' has a dynamic or unknown shape.*static shapes"):
        load_onnx(data)


def test_non_constant_weight_names_node_and_fix():
    """A Conv whose weights are another graph input (computed at run time)."""
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["qw"]),
             helper.make_node("DequantizeLinear", ["qw", "s", "z"], ["dw"]),
             helper.make_node("Conv", ["d", "dw"], ["c"], name="conv_dyn", kernel_shape=[1, 1])]
    data = _qdq_model(nodes, [], in_shape=(1, 1, 1, 1))
    with pytest.raises(MCUCError, match=r"'conv_dyn' \(Conv\).*weight.*computed at run time.*constant"):
        load_onnx(data)


def test_float_op_between_quantized_ops_is_rejected():
    """An op left in float (no QuantizeLinear after it) is named, not silently approximated."""
    data = _qdq_model([helper.make_node("MaxPool", ["d"], ["p"], kernel_shape=[1, 1], name="pool"),
                       helper.make_node("Relu", ["p"], ["c"], name="float_relu")], [])
    with pytest.raises(MCUCError, match=r"'pool' \(MaxPool\).*QuantizeLinear.*float"):
        load_onnx(data)


def test_old_opset_is_rejected_with_the_fix():
    data = _qdq_model([helper.make_node("MaxPool", ["d"], ["c"], kernel_shape=[2, 2])], [], opset=11)
    with pytest.raises(MCUCError, match=r"opset 11.*convert_version"):
        load_onnx(data)


def test_garbage_bytes_are_an_error():
    with pytest.raises(MCUCError, match="not a readable ONNX model"):
        load_onnx(b"\x08\x07garbage\xff\xff")


def test_weights_are_transposed_at_import_and_uint8_maps_onto_int8():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = onnx_models.quantize(onnx_models.resnet(np.random.default_rng(0), size=16), "qoperator", "uint8")
    model = onnx.load_from_string(data)
    conv = next(n for n in model.graph.node if n.op_type == "QLinearConv")
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    w_onnx = inits[conv.input[3]]
    graph = load_onnx(data)
    ir_conv = next(op for op in graph.ops if op.kind == "CONV_2D")
    np.testing.assert_array_equal(ir_conv.inputs[1].data, w_onnx.transpose(0, 2, 3, 1))
    x_zp = int(inits[conv.input[2]])
    assert ir_conv.inputs[0].dtype == "int8" and ir_conv.inputs[0].quant.scalar_zero_point == x_zp - 128
    assert ir_conv.inputs[0].shape[3] == w_onnx.shape[1]  # NHWC: channels last


def test_calibrate_writes_a_quantized_model_that_verifies(tmp_path):
    float_model = onnx_models.kws_ds_cnn(np.random.default_rng(3))
    src = tmp_path / "kws.onnx"
    onnx.save(float_model, src)
    samples = np.random.default_rng(4).normal(0, 1, (6, 1, 1, 49, 10)).astype(np.float32)
    np.save(tmp_path / "samples.npy", samples)
    dest = quantized_path_for(src, tmp_path / "out")
    assert dest == tmp_path / "out" / "kws.quant.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        written = quantize_onnx(src, tmp_path / "samples.npy", dest)
    quantized = onnx.load(str(written))
    kinds = {n.op_type for n in quantized.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= kinds
    report = verify(load_model(written), ["reference"], samples=3)
    assert report["backends"]["reference"]["bit_exact"], report


def test_calibration_samples_shapes(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((1, 3, 4, 4), np.float32))
    np.save(tmp_path / "b.npy", np.zeros((5, 3, 4, 4), np.float32))
    assert len(load_samples(tmp_path, (1, 3, 4, 4))) == 6
    np.save(tmp_path / "bad.npy", np.zeros((2, 2), np.float32))
    with pytest.raises(MCUCError, match=r"bad.npy.*shape \[2, 2\]"):
        load_samples(tmp_path / "bad.npy", (1, 3, 4, 4))
    with pytest.raises(MCUCError, match="does not exist"):
        load_samples(tmp_path / "missing.npy", (1, 3, 4, 4))


def test_dynamically_quantized_model_is_rejected_with_the_fix(tmp_path):
    from onnxruntime.quantization import quantize_dynamic

    src, dst = tmp_path / "mlp.onnx", tmp_path / "mlp_dynamic.onnx"
    onnx.save(onnx_models.mlp(np.random.default_rng(0)), src)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_dynamic(str(src), str(dst))
    with pytest.raises(MCUCError, match=r"(DynamicQuantizeLinear|MatMulInteger|DynamicQuantizeMatMul).*dynamically "
                                        r"quantized.*quantize_static.*--calibrate"):
        load_onnx(dst.read_bytes())


def test_cli_compile_calibrate_writes_the_quantized_model_and_verify_accepts_it(tmp_path, capsys):
    """`mcuc compile float.onnx --calibrate samples.npy -o out` quantizes first and writes
    <model>.quant.onnx inside the output folder; `mcuc verify` on it is byte-exact against
    onnxruntime (exit 0). The compile step itself needs a Cortex-M backend with the
    onnxruntime rule: until then it must fail with an error naming that rule."""
    from mcuc.cli import main

    src = tmp_path / "mlp.onnx"
    onnx.save(onnx_models.mlp(np.random.default_rng(5)), src)
    np.save(tmp_path / "samples.npy", np.random.default_rng(6).normal(0, 1, (4, 1, 64)).astype(np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["compile", str(src), "--calibrate", str(tmp_path / "samples.npy"), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    quantized = tmp_path / "out" / "mlp.quant.onnx"
    assert quantized.is_file()
    assert code == 0 or (code == 2 and "onnxruntime" in err), err
    assert main(["verify", str(quantized), "--backends", "reference", "--samples", "3"]) == 0


def test_calibrate_uint8_residual_network_verifies_byte_exact(tmp_path):
    """--calibrate-activations uint8: a residual network (shared activations) quantized
    with full-range int8 weights verifies byte-exact, on every host."""
    src = tmp_path / "resnet.onnx"
    onnx.save(onnx_models.resnet(np.random.default_rng(8), size=16), src)
    np.save(tmp_path / "samples.npy", np.random.default_rng(9).normal(0, 1, (6, 1, 3, 16, 16)).astype(np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        written = quantize_onnx(src, tmp_path / "samples.npy", tmp_path / "resnet.quant.onnx", activations="uint8")
    report = verify(load_model(written), ["reference"], samples=4)
    assert report["backends"]["reference"]["bit_exact"], report
    with pytest.raises(MCUCError, match="choose int8 or uint8"):
        quantize_onnx(src, tmp_path / "samples.npy", tmp_path / "x.onnx", activations="int16")


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_quantized_graph_inputs_and_outputs_keep_the_model_dtype_and_layout(dtype):
    """An operator-oriented model that takes and returns int8/uint8 NCHW tensors: the
    compiled graph's API has the same dtypes and shapes, and verify is byte-exact."""
    data = onnx_models.qlinear_conv_model(dtype)
    ir = load_onnx(data)
    assert [(t.dtype, t.shape) for t in ir.inputs] == [(dtype, (1, 3, 8, 8))]
    assert [(t.dtype, t.shape) for t in ir.outputs] == [(dtype, (1, 6, 8, 8))]
    report = verify(load_model(data, format="onnx"), ["reference"], samples=4)
    assert report["backends"]["reference"]["bit_exact"], report


@pytest.mark.parametrize("activations", ["int8", "uint8"])
def test_io_int8_strips_the_float_edges_of_an_onnx_model(activations):
    """--io int8: the compiled graph takes int8 NCHW and returns int8 (uint8 models too:
    the IR holds them as int8), and still equals onnxruntime through the float edges."""
    from mcuc.pipeline import CompileOptions, prepare

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = onnx_models.quantize(onnx_models.kws_ds_cnn(np.random.default_rng(0)), "qdq", activations)
    model = load_model(data, format="onnx")
    options = CompileOptions(io="int8")
    compiled = prepare(model.graph, options)
    assert [(t.dtype, t.shape) for t in compiled.inputs] == [("int8", (1, 1, 49, 10))]
    assert [t.dtype for t in compiled.outputs] == ["int8"]
    report = verify(model, ["reference"], samples=3, options=options)
    assert report["backends"]["reference"]["bit_exact"], report


def test_weights_quantized_along_the_wrong_axis_are_rejected():
    """MatMul weights [K, N] need their scales along N (axis 1); scales along K would
    rescale the wrong way, so the frontend names the node and the axis."""
    w = np.ones((4, 4), np.int8)
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.full(4, 0.01, np.float32), "ws"),
             numpy_helper.from_array(np.zeros(4, np.int8), "wz")]
    nodes = [helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wd"], axis=0),
             helper.make_node("MatMul", ["d", "wd"], ["c"], name="mm")]
    data = _qdq_model(nodes, inits, in_shape=(1, 4))
    with pytest.raises(MCUCError, match=r"'mm' \(MatMul\).*per channel along axis 0.*output-channel axis 1"):
        load_onnx(data)


def test_identity_nodes_pass_constants_dequantized_tensors_and_values_through():
    """torch.onnx's TorchScript exporter puts Identity in front of shared initializers; a
    quantized model may keep them on weights, on dequantized tensors and on activations.
    With Identities on all three the model computes exactly what it computes without."""
    w = np.random.default_rng(0).normal(0, 0.3, (3, 2, 3, 3)).astype(np.float32)
    w_scale = np.float32(np.abs(w).max() / 127)
    inits = [numpy_helper.from_array(np.round(w / w_scale).astype(np.int8), "wq"),
             numpy_helper.from_array(w_scale, "ws"), numpy_helper.from_array(np.int8(0), "wz")]

    def conv(identities: bool) -> list:
        weight = "wq_id" if identities else "wq"
        data = "d_id" if identities else "d"
        nodes = [helper.make_node("DequantizeLinear", [weight, "ws", "wz"], ["w"]),
                 helper.make_node("Conv", [data, "w"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])]
        if identities:
            nodes = [helper.make_node("Identity", ["wq"], ["wq_id"]), helper.make_node("Identity", ["d"], ["d_id"]),
                     *nodes]
        return nodes

    plain, with_ids = (load_model(_qdq_model(conv(ids), inits), format="onnx") for ids in (False, True))
    assert [op.kind for op in plain.graph.ops] == [op.kind for op in with_ids.graph.ops]
    assert verify(with_ids, ["reference"], samples=3)["backends"]["reference"]["bit_exact"]
    # Identity between an op and its QuantizeLinear: onnxruntime drops it, and so does mcuc.
    pooled = load_model(_qdq_model([helper.make_node("MaxPool", ["d"], ["m"], kernel_shape=[2, 2]),
                                    helper.make_node("Identity", ["m"], ["c"])], []), format="onnx")
    assert "MAX_POOL_2D" in [op.kind for op in pooled.graph.ops]
    assert verify(pooled, ["reference"], samples=3)["backends"]["reference"]["bit_exact"]


def test_a_dequantized_bias_shared_through_identity_is_refused_with_the_fix():
    """quantize_static on a TorchScript export that was not pre-processed shares one
    conv's dequantized bias with others through Identity nodes; onnxruntime then runs
    some of those convs in float, which mcuc does not reproduce: a named error instead
    of a wrong answer."""
    inits = [numpy_helper.from_array(np.ones((2, 2, 1, 1), np.int8), "wq"), numpy_helper.from_array(np.float32(0.05), "ws"),
             numpy_helper.from_array(np.int8(0), "wz"), numpy_helper.from_array(np.zeros(2, np.int32), "bq"),
             numpy_helper.from_array(np.float32(0.005), "bs"), numpy_helper.from_array(np.int32(0), "bz")]
    nodes = [helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"]),
             helper.make_node("DequantizeLinear", ["bq", "bs", "bz"], ["b"]),
             helper.make_node("Identity", ["b"], ["b_shared"], name="shared_bias"),
             helper.make_node("Conv", ["d", "w", "b"], ["c1"], kernel_shape=[1, 1]),
             helper.make_node("QuantizeLinear", ["c1", "s", "z"], ["q1"]),
             helper.make_node("DequantizeLinear", ["q1", "s", "z"], ["d1"]),
             helper.make_node("Conv", ["d1", "w", "b_shared"], ["c"], kernel_shape=[1, 1])]
    with pytest.raises(MCUCError, match=r"'shared_bias' \(Identity\): shares the dequantized constant 'b'.*"
                                        r"quant_pre_process.*--calibrate"):
        load_onnx(_qdq_model(nodes, inits))


def test_python_api_calibrates_a_float_model_from_an_array(tmp_path):
    """mcuc.compile(float.onnx, calibrate=array): the same quantization as the CLI's
    --calibrate; the compiled model equals onnxruntime running the quantized bytes."""
    from tests.support.onnx_oracle import session

    from mcuc.api import compile as mcuc_compile

    src = tmp_path / "kws.onnx"
    onnx.save(onnx_models.kws_ds_cnn(np.random.default_rng(3)), src)
    samples = np.random.default_rng(4).normal(0, 1, (6, 1, 49, 10)).astype(np.float32)  # [N, C, H, W], batch 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiled = mcuc_compile(src, backend="reference", calibrate=samples)
    x = np.random.default_rng(5).normal(0, 1, (1, 1, 49, 10)).astype(np.float32)
    ort_session = session(compiled.quantized_onnx)  # as the oracle runs it for the default (exact) numerics
    expected = ort_session.run(None, {ort_session.get_inputs()[0].name: x})[0]
    assert np.array_equal(compiled(x), expected)
    with pytest.raises(MCUCError, match="pass the model's path"):
        mcuc_compile(src.read_bytes(), calibrate=samples)
    with pytest.raises(MCUCError, match=r"the calibration array has shape \[2, 3\]"):
        mcuc_compile(src, calibrate=np.zeros((2, 3), np.float32))
