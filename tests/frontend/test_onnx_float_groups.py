"""The float ops onnxruntime runs where it leaves an int8 QDQ group unfused (OrtFloat),
compared in float32 bits before QuantizeLinear: the float Conv/Gemm/MatMul output is an
extra graph output of the onnxruntime model, and ir/ops/ort_float.py's *_float function
must give the same bytes (a one-ulp difference in the reduction order fails here, where
after quantization it shows on about one input in ten of a MobileNetV2)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

from tests.support.onnx_oracle import as_this_host, model_and_oracle, session  # noqa: E402
from tests.frontend.test_onnx_layers import _Builder  # noqa: E402

from mcuc.frontend.onnx_values import NHWC_TO_NCHW  # noqa: E402
from mcuc.ir.interpreter import run  # noqa: E402
from mcuc.ir.numerics import OrtFloat  # noqa: E402
from mcuc.ir.ops import ort_float  # noqa: E402
from mcuc.model import load_model  # noqa: E402

# Float groups exist where onnxruntime converts int8 QDQ to uint8 in part: the
# ort-x86-avx2 numerics; two threads, so MLAS splits the float convolutions' columns.
NUMERICS = "ort-x86-avx2:threads=2"

# (kind, cin, cout, k, group) -- which MLAS SGEMM kernel runs: M = cout / group rows.
CONVS = [("conv", 8, 8, 3, 8),     # depthwise, multiplier 1: M == 1 kernel
         ("conv", 6, 12, 3, 6),    # depthwise, multiplier 2: FMA3 kernel
         ("conv", 8, 4, 3, 4),     # groups with one output channel each: M == 1 kernel
         ("conv", 3, 8, 3, 1),     # MobileNetV2 stem: FMA3 kernel
         ("conv", 48, 8, 1, 1),    # 1x1 projection
         ("conv", 5, 1, 3, 1),     # a single output channel: M == 1 kernel, odd K
         ("conv", 72, 4, 5, 1),    # K = 1800: reduction blocks per thread segment of the columns
         ("conv", 64, 16, 3, 1),   # K = 576
         ("conv", 144, 8, 1, 1),   # pointwise: MlasGemm
         ("conv", 576, 8, 1, 1),   # pointwise, long: MlasGemm's column blocks per thread
         ("conv", 256, 16, 1, 1, (14, 14)),
         ("conv", 64, 48, 3, 1)]   # more filters than pixels: expand, then MlasGemm
FCS = [("gemm_t", 64, 10), ("gemm_t", 37, 7), ("gemm_t", 20, 6), ("gemm_t", 33, 5),
       ("gemm", 64, 10), ("gemm", 19, 6), ("matmul", 48, 10), ("matmul", 7, 3)]


def _float_model(case, seed: int):
    """x -> Q -> DQ -> op -> Q -> DQ, with the op's float output "c" exposed too (which
    keeps onnxruntime from fusing the group: it runs the float op)."""
    kind = case[0]
    rng = np.random.default_rng(seed)
    b = _Builder("int8", rng)
    xs = 0.05
    s, z = b.qparams(xs)
    b.nodes += [helper.make_node("QuantizeLinear", ["x", s, z], ["q"]),
                helper.make_node("DequantizeLinear", ["q", s, z], ["d"])]
    if kind == "conv":
        _, cin, cout, k, group = case[:5]
        size = case[5] if len(case) > 5 else (7, 6)
        w, ws = b.weights((cout, cin // group, k, k), 0)
        b.nodes.append(helper.make_node("Conv", ["d", w, b.bias(xs, ws)], ["c"], kernel_shape=[k, k],
                                        pads=[k // 2] * 4, group=group))
        shape, reduction = (1, cin, *size), k * k * cin // group
    else:
        _, cin, cout = case
        if kind == "gemm_t":
            w, ws = b.weights((cout, cin), 0)
            b.nodes.append(helper.make_node("Gemm", ["d", w, b.bias(xs, ws)], ["c"], transB=1))
        elif kind == "gemm":
            w, ws = b.weights((cin, cout), 1)
            b.nodes.append(helper.make_node("Gemm", ["d", w, b.bias(xs, ws)], ["c"]))
        else:
            w, ws = b.weights((cin, cout), 1)
            b.nodes.append(helper.make_node("MatMul", ["d", w], ["c"]))
        shape, reduction = (1, cin), cin
    out = b.qdq("c", xs * float(ws.mean()) * np.sqrt(reduction) * 0.4)

    return _serialized(b, shape, [out]), _serialized(b, shape, [out, "c"]), shape


def _serialized(b: _Builder, shape, outputs: list[str]) -> bytes:
    """The builder's nodes as an opset-17 model with input x of `shape` and these float outputs."""
    graph = helper.make_graph(b.nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs], b.inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m.SerializeToString()


def _check(case, seed: int) -> None:
    quantized, exposed, shape = _float_model(case, seed)
    numerics = as_this_host(NUMERICS)
    ort_session = session(exposed, numerics)
    graph = load_model(quantized, format="onnx", onnx_numerics=numerics).graph
    op = next(o for o in graph.ops if o.kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"))
    # The group itself is fused here; its float twin (the exposed model) runs with the
    # session's threads, and a Gemm with transB=1 runs MLAS's transposed-B kernel.
    op = op.with_(attrs=replace(op.attrs, numerics=OrtFloat(threads=numerics.threads if op.kind == "CONV_2D" else 1,
                                                            gemm_transposed_b=case[0] == "gemm_t")))
    rng = np.random.default_rng(seed + 1)
    for _ in range(3):
        x = rng.normal(0, 1, shape).astype(np.float32)
        theirs = ort_session.run(["c"], {"x": x})[0]
        seen = {}
        run(graph, [x], observe=lambda o, ys: seen.update({o.outputs[0]: ys[0]}))
        inputs = [seen[op.inputs[0]]] + [t.data for t in op.inputs[1:]]
        fn = {"CONV_2D": ort_float.conv_float, "DEPTHWISE_CONV_2D": ort_float.depthwise_float,
              "FULLY_CONNECTED": ort_float.fully_connected_float}[op.kind]
        ours = fn(op, inputs)
        ours = ours.transpose(NHWC_TO_NCHW) if ours.ndim == 4 else ours.reshape(theirs.shape)
        assert ours.dtype == np.float32 and ours.tobytes() == theirs.tobytes(), \
            f"{case}: {int((ours != theirs).sum())} of {ours.size} float outputs differ"


@pytest.mark.parametrize("case", CONVS + FCS, ids=str)
def test_float_op_bits_equal_onnxruntime(case):
    for seed in range(2):
        _check(case, seed)


def test_mobilenet_v2_qdq_int8_on_many_inputs():
    """The network where the depthwise M == 1 kernel's order first showed: 4 seeds x 10
    inputs byte-exact (with the FMA chain of the other kernel, 1 of these 40 differs)."""
    import warnings

    from tests.support import onnx_models

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = onnx_models.quantize(onnx_models.mobilenet_v2(np.random.default_rng(7)), "qdq", "int8", seed=1)
    model, oracle = model_and_oracle(data, NUMERICS)
    graph = model.graph
    for seed in range(4):
        rng = np.random.default_rng(seed)
        for _ in range(10):
            x = rng.normal(0, 1, (1, 3, 96, 96)).astype(np.float32)
            assert oracle([x])[0].tobytes() == run(graph, [x])[0].tobytes()


def _gap_model(seed: int, shape: tuple[int, ...], share_input: bool, share_output: bool,
               op_type: str = "GlobalAveragePool", out_scale: float = 0.02, **attrs):
    """x -> Q -> DQ -> op (GlobalAveragePool) -> Q -> DQ; a shared Q (a second consumer,
    Flatten) is not converted to uint8 by onnxruntime, so a group with one side shared
    mixes int8 and uint8 and runs in float. Returns (model, model exposing the float "c")."""
    rng = np.random.default_rng(seed)
    b = _Builder("int8", rng)
    s, z = b.qparams(0.05)
    so, zo = b.qparams(out_scale)
    b.nodes += [helper.make_node("QuantizeLinear", ["x", s, z], ["q"]),
                helper.make_node("DequantizeLinear", ["q", s, z], ["d"]),
                helper.make_node(op_type, ["d"], ["c"], **attrs),
                helper.make_node("QuantizeLinear", ["c", so, zo], ["qc"]),
                helper.make_node("DequantizeLinear", ["qc", so, zo], ["y"])]
    outputs = ["y"]
    for shared, (name, sc, zc) in ((share_input, ("d", s, z)), (share_output, ("y", so, zo))):
        if shared:
            b.nodes += [helper.make_node("Flatten", [name], [name + "_f"]),
                        helper.make_node("QuantizeLinear", [name + "_f", sc, zc], [name + "_qf"]),
                        helper.make_node("DequantizeLinear", [name + "_qf", sc, zc], [name + "_flat"])]
            outputs.append(name + "_flat")

    return _serialized(b, shape, outputs), _serialized(b, shape, outputs + ["c"])


@pytest.mark.parametrize("shape", [(1, 8, 9, 9), (1, 16, 6, 6), (1, 4, 3, 5), (1, 3, 14, 14), (1, 2, 1, 33)], ids=str)
def test_global_average_pool_float_bits(shape):
    """MlasPoolGlobalKernel's four-lane sum (whole blocks, then the tail) divided by H*W."""
    from mcuc.ir.ops.mean import MeanAttrs

    quantized, exposed = _gap_model(0, shape, True, False)
    ort_session = session(exposed, NUMERICS)
    graph = load_model(quantized, format="onnx", onnx_numerics=as_this_host(NUMERICS)).graph
    op = next(o for o in graph.ops if o.kind == "MEAN")
    op = op.with_(attrs=replace(op.attrs, numerics=OrtFloat()))
    assert isinstance(op.attrs, MeanAttrs)
    rng = np.random.default_rng(1)
    for _ in range(3):
        x = rng.normal(0, 2, shape).astype(np.float32)
        theirs = ort_session.run(["c"], {"x": x})[0].reshape(shape[0], shape[1])
        seen = {}
        run(graph, [x], observe=lambda o, ys: seen.update({o.outputs[0]: ys[0]}))
        assert ort_float.global_average_pool_float(op, [seen[op.inputs[0]]]).tobytes() == theirs.tobytes()


@pytest.mark.parametrize("numerics", ["exact", NUMERICS])
@pytest.mark.parametrize("share_input, share_output", [(True, False), (False, True), (True, True), (False, False)])
@pytest.mark.parametrize("seed", range(2))
def test_global_average_pool_group_left_in_float(seed, share_input, share_output, numerics):
    """Whatever onnxruntime does with the group (float where int8 and uint8 mix, else
    QLinearGlobalAveragePool), the reference gives its bytes; int8 tails near ties."""
    quantized, _ = _gap_model(seed, (1, 12, 7, 7), share_input, share_output)
    model, oracle = model_and_oracle(quantized, numerics)
    graph = model.graph
    rng = np.random.default_rng(seed)
    for _ in range(20):
        x = rng.normal(0, 2, (1, 12, 7, 7)).astype(np.float32)
        assert all(e.tobytes() == a.tobytes() for e, a in zip(oracle([x]), run(graph, [x])))


POOLS = [dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=0),
         dict(kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1], count_include_pad=1),
         dict(kernel_shape=[2, 2], strides=[2, 2])]


@pytest.mark.parametrize("attrs", POOLS, ids=str)
@pytest.mark.parametrize("share_input, share_output", [(True, False), (False, True), (True, True)])
def test_average_pool_group_left_in_float(attrs, share_input, share_output):
    """Where onnxruntime pools an int8 QDQ group in float (MLAS's NCHWc kernel: channels
    a multiple of its block), the reference reproduces it (AVERAGE_POOL_2D OrtFloat)."""
    numerics = as_this_host(NUMERICS)
    shape = (1, 2 * numerics.nchwc_block, 9, 9)
    quantized, _ = _gap_model(1, shape, share_input, share_output, "AveragePool", 0.03, **attrs)
    model, oracle = model_and_oracle(quantized, NUMERICS)
    graph = model.graph
    rng = np.random.default_rng(2)
    for _ in range(10):
        x = rng.normal(0, 2, shape).astype(np.float32)
        assert all(e.tobytes() == a.tobytes() for e, a in zip(oracle([x]), run(graph, [x])))


@pytest.mark.parametrize("op_type, channels, attrs", [("AveragePool", 6, POOLS[0]), ("Softmax", 6, {"axis": 1})])
def test_float_groups_mcuc_does_not_reproduce_are_rejected(op_type, channels, attrs):
    """A float AveragePool outside the NCHWc kernel and a float Softmax: a named error
    that says what to do (where onnxruntime fuses the group, the model loads)."""
    from mcuc.ir.errors import MCUCError

    shape = (1, channels, 5, 5) if op_type == "AveragePool" else (1, channels)
    mixed, _ = _gap_model(0, shape, True, False, op_type, 1 / 256, **attrs)
    fused, _ = _gap_model(0, shape, True, True, op_type, 1 / 256, **attrs)
    load_model(fused, format="onnx", onnx_numerics=NUMERICS)
    load_model(mixed, format="onnx")  # exact numerics: fused on int8, nothing in float
    with pytest.raises(MCUCError, match=rf"\({op_type}\).*runs it in float.*--onnx-numerics exact"):
        load_model(mixed, format="onnx", onnx_numerics=NUMERICS)
