"""ONNX ReduceMean over H and W (torchvision's `x.mean([2, 3])`, what mnasnet and
mobilenet_v2 end in), which onnxruntime never quantizes: DQ -> float ReduceMean -> Q runs
its Eigen sum (ir/ops/ort_float.reduce_mean_float), whose packet order depends on where
each channel's row starts in memory.

1. The float32 bits before QuantizeLinear (the ReduceMean output exposed as a graph
   output) against reduce_mean_float on shapes of every row alignment, including the
   torchvision heads (a one-ulp difference in the order fails here).
2. Hypothesis-generated QDQ layers (shapes, batch, keepdims, axes as attribute or input,
   int8/uint8) byte-exact against onnxruntime on the reference, llvm and c-host, with
   output scales that put the means on rounding ties (2 * m * x_scale / (H * W)), so the
   summation order decides the bytes: the GlobalAveragePool order or a plain sequential
   sum fails most of these inputs.
3. A few layers on emulated cortex-m4 and cortex-m0 (soft-float).
4. A small network Conv -> Relu -> ReduceMean -> Gemm quantized by onnxruntime
   (quantize_static, QDQ and operator formats, int8 and uint8).
5. The axes mcuc does not compute are refused with the node, op type and what to do.
"""
from __future__ import annotations

import shutil
import warnings
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ort = pytest.importorskip("onnxruntime")
import onnx  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402

from tests.support import onnx_models  # noqa: E402
from mcuc.backends.cortexm import run_chost, run_cortexm  # noqa: E402
from mcuc.backends.llvm import compile_program, scratch_requests  # noqa: E402
from mcuc.ir.errors import MCUCError  # noqa: E402
from mcuc.ir.interpreter import run  # noqa: E402
from mcuc.ir.ops import ort_float  # noqa: E402
from mcuc.ir.numerics import ORT_GLOBAL_AVERAGE_POOL, ORT_REDUCE_MEAN, OrtFloat  # noqa: E402
from mcuc.model import load_model  # noqa: E402
from mcuc.oracle_onnx import OnnxOracle  # noqa: E402
from tests.support.onnx_oracle import model_and_oracle, session  # noqa: E402
from mcuc.passes import plan  # noqa: E402
from mcuc.pipeline import cortexm_scratch  # noqa: E402
from tests.frontend.test_onnx_layers import _Builder  # noqa: E402

X_SCALE = 0.05
_NEEDS_ARM = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                                reason="arm-none-eabi-gcc is not installed (Debian: gcc-arm-none-eabi, "
                                       "libnewlib-arm-none-eabi)")


def _layer(dtype: str, shape: tuple[int, int, int, int], keepdims: int, opset: int, axes: list[int], ties: int,
           seed: int, expose_float: bool = False) -> bytes:
    """x -> Q -> DQ -> ReduceMean -> Q -> DQ; output scale 2 * ties * x_scale / (H * W) (every
    mean lands on or beside a rounding tie); optionally the float ReduceMean output too."""
    b = _Builder(dtype, np.random.default_rng(seed))
    x = b.qdq("x", X_SCALE)
    if opset >= 18:
        b.init("axes", np.array(axes, np.int64))
        b.nodes.append(helper.make_node("ReduceMean", [x, "axes"], ["mean"], keepdims=keepdims))
    else:
        b.nodes.append(helper.make_node("ReduceMean", [x], ["mean"], axes=axes, keepdims=keepdims))
    y = b.qdq("mean", X_SCALE * 2 * ties / (shape[2] * shape[3]))
    outputs = [y, "mean"] if expose_float else [y]
    graph = helper.make_graph(b.nodes, "reduce_mean",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs], b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model.SerializeToString()


def _inputs(shape, ties: int, rng: np.random.Generator, count: int) -> list[np.ndarray]:
    """Inputs whose channel sums stay inside the output range (spread ~ sqrt(H * W))."""
    spread = X_SCALE * 60 * ties / np.sqrt(shape[2] * shape[3])
    return [rng.normal(0, spread, shape).astype(np.float32) for _ in range(count)]


# ---------------------------------------------------------------------------------------
# 1. float32 bits

# (N, C, H, W): every residue of C * H * W and H * W mod 4, fewer elements than a packet,
# exactly one or two packets, long rows, one channel (a reduction of everything), the
# torchvision heads.
FLOAT_SHAPES = [(1, 7, 1, 1), (1, 1, 5, 7), (1, 1, 1, 3), (2, 1, 3, 3), (1, 9, 1, 3), (1, 5, 2, 3), (1, 11, 1, 7),
                (1, 6, 2, 4), (1, 13, 3, 3), (2, 9, 3, 5), (1, 40, 7, 7), (1, 3, 10, 7), (1, 17, 6, 11), (3, 5, 5, 5),
                (1, 2, 56, 56), (1, 1280, 7, 7)]


def _float_means(shape, seed: int):
    """onnxruntime's float ReduceMean output and reduce_mean_float's, over 3 inputs."""
    data = _layer("int8", shape, 0, 17, [2, 3], 1, seed, expose_float=True)
    graph = load_model(_layer("int8", shape, 0, 17, [2, 3], 1, seed), format="onnx").graph
    ort_session = session(data)
    op = next(o for o in graph.ops if o.kind == "MEAN")
    for x in _inputs(shape, 20, np.random.default_rng(seed), 3):
        seen = {}
        run(graph, [x], observe=lambda o, ys: seen.update({o.outputs[0]: ys[0]}))
        yield ort_session.run(["mean"], {"x": x})[0], op, [seen[op.input]]


@pytest.mark.parametrize("shape", FLOAT_SHAPES, ids=str)
def test_float_bits_equal_onnxruntime(shape):
    for theirs, op, inputs in _float_means(shape, seed=sum(shape)):
        ours = ort_float.reduce_mean_float(op, inputs)
        assert ours.dtype == np.float32 and ours.tobytes() == theirs.tobytes(), \
            f"{shape}: {int((ours != theirs).sum())} of {ours.size} float means differ"


def test_float_order_is_not_the_global_average_pool_one():
    """The shapes above tell the two MEAN kernels apart (so the test above can fail)."""
    differ = 0
    for shape in ((1, 40, 7, 7), (1, 17, 6, 11)):
        for theirs, op, inputs in _float_means(shape, seed=1):
            differ += int((ort_float.global_average_pool_float(op, inputs) != theirs).sum())
    assert differ > 0


# ---------------------------------------------------------------------------------------
# 2. quantized layers on the reference, llvm and c-host

def _run_llvm(graph, inputs):
    return compile_program(plan(graph, scratch_requests))(inputs)


def _run_chost(graph, inputs):
    return run_chost(plan(graph, cortexm_scratch("cortex-m0")), inputs)


def _compare(data: bytes, shape, ties: int, seed: int, runners, count: int = 3) -> None:
    model, oracle = model_and_oracle(data)
    graph = model.graph
    mean = next(o for o in graph.ops if o.kind == "MEAN")
    assert mean.attrs.numerics == OrtFloat(mean_kernel=ORT_REDUCE_MEAN)
    inputs = _inputs(shape, ties, np.random.default_rng(seed), count)
    expected = [oracle([x])[0] for x in inputs]
    for name, runner in runners:
        for x, e in zip(inputs, expected):
            a = runner(graph, [x])[0]
            assert a.shape == e.shape and a.tobytes() == e.tobytes(), \
                f"{name}: {int((a.ravel() != e.ravel()).sum())} of {e.size} means differ"


LAYERS = dict(dtype=st.sampled_from(["int8", "uint8"]), batch=st.integers(1, 2), channels=st.integers(1, 40),
              h=st.integers(1, 10), w=st.integers(1, 7), keepdims=st.integers(0, 1), opset=st.sampled_from([17, 18]),
              axes=st.sampled_from([[2, 3], [3, 2], [-1, -2], [2, -1]]), ties=st.integers(1, 3),
              seed=st.integers(0, 2**16))
SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@settings(max_examples=25, **SETTINGS)
@given(**LAYERS)
def test_layer_on_reference_and_llvm(dtype, batch, channels, h, w, keepdims, opset, axes, ties, seed):
    shape = (batch, channels, h, w)
    _compare(_layer(dtype, shape, keepdims, opset, axes, ties, seed), shape, ties, seed,
             [("reference", run), ("llvm", _run_llvm)])


@settings(max_examples=4, **SETTINGS)
@given(**LAYERS)
def test_layer_on_chost(dtype, batch, channels, h, w, keepdims, opset, axes, ties, seed):
    shape = (batch, channels, h, w)
    _compare(_layer(dtype, shape, keepdims, opset, axes, ties, seed), shape, ties, seed, [("c-host", _run_chost)])


def test_tie_inputs_tell_the_orders_apart():
    """On these layers the GlobalAveragePool order gives other bytes than onnxruntime."""
    shape, ties = (1, 23, 7, 5), 1
    data = _layer("int8", shape, 0, 17, [2, 3], ties, 3)
    graph = load_model(data, format="onnx").graph
    swapped = graph.with_(ops=tuple(o.with_(attrs=replace(o.attrs, numerics=OrtFloat(mean_kernel=ORT_GLOBAL_AVERAGE_POOL)))
                                    if o.kind == "MEAN" else o for o in graph.ops))
    oracle = OnnxOracle(data)
    inputs = _inputs(shape, ties, np.random.default_rng(0), 3)
    assert any(run(swapped, [x])[0].tobytes() != oracle([x])[0].tobytes() for x in inputs)


# ---------------------------------------------------------------------------------------
# 3. emulated cores

@_NEEDS_ARM
@pytest.mark.parametrize("target, shape, keepdims", [("cortex-m4", (1, 13, 7, 5), 0), ("cortex-m0", (2, 6, 3, 3), 1),
                                                     ("cortex-m0", (1, 10, 7, 7), 0)])
def test_layer_on_emulated_core(target, shape, keepdims):
    def on_core(graph, inputs):
        return run_cortexm(plan(graph, cortexm_scratch(target)), inputs, target).outputs

    _compare(_layer("int8", shape, keepdims, 18, [2, 3], 1, 5), shape, 1, 5, [(target, on_core)], count=2)


# ---------------------------------------------------------------------------------------
# 4. a network quantized by onnxruntime

def _conv_reduce_mean_gemm(keepdims: int, opset: int) -> onnx.ModelProto:
    """Conv -> Relu -> Conv -> Relu -> ReduceMean(H, W) -> Gemm; with keepdims a Flatten
    (opset 17) or, as torch.onnx's dynamo exporter writes it, a Reshape with allowzero=1
    (opset 18+) between them, which the quantizer leaves in float with the mean."""
    net = onnx_models._Net(np.random.default_rng(3), (1, 3, 12, 10))
    x = net.conv(net.conv("input", 3, 12, 3, stride=2), 12, 20, 3)
    if opset >= 18:
        x = net.node("ReduceMean", [x, net._const_int("axes", np.array([-1, -2]))], keepdims=keepdims)
    else:
        x = net.node("ReduceMean", [x], axes=[2, 3], keepdims=keepdims)
    if keepdims and opset >= 18:
        x = net.node("Reshape", [x, net._const_int("shape", np.array([1, 20]))], allowzero=1)
    elif keepdims:
        x = net.node("Flatten", [x], axis=1)
    out = net.gemm(x, 20, 10)
    graph = helper.make_graph(net.nodes, "conv_reduce_mean_gemm",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(net.input_shape))],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, 10])], net.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("fmt, activations, keepdims, opset", [("qdq", "int8", 0, 17), ("qdq", "int8", 1, 18),
                                                               ("qdq", "uint8", 1, 17), ("qoperator", "uint8", 0, 18)])
def test_network_ending_in_reduce_mean(fmt, activations, keepdims, opset):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = onnx_models.quantize(_conv_reduce_mean_gemm(keepdims, opset), fmt, activations, seed=1)
    model, oracle = model_and_oracle(data)  # uint8 convs: this host's u8 x s8 pair rule
    graph = model.graph
    assert [o.attrs.numerics.mean_kernel for o in graph.ops if o.kind == "MEAN"] == [ORT_REDUCE_MEAN]
    rng = np.random.default_rng(2)
    inputs = [rng.normal(0, 1, (1, 3, 12, 10)).astype(np.float32) for _ in range(4)]
    llvm = compile_program(plan(graph, scratch_requests))
    chost = plan(graph, cortexm_scratch("cortex-m0"))
    for x in inputs:
        expected = oracle([x])[0].tobytes()
        assert run(graph, [x])[0].tobytes() == expected
        assert llvm([x])[0].tobytes() == expected
        assert run_chost(chost, [x])[0].tobytes() == expected


# ---------------------------------------------------------------------------------------
# 5. refused axes

@pytest.mark.parametrize("shape, axes, attrs, pattern", [
    ((1, 4, 3, 3), [1], {}, r"axes \[1\] are not supported.*axes \[2, 3\]"),
    ((1, 4, 3, 3), [1, 2, 3], {}, r"axes \[1, 2, 3\] are not supported"),
    ((1, 4, 3, 3), [2], {}, r"axes \[2\] are not supported"),
    ((1, 4, 3, 3), None, {}, r"no axes.*a mean over every axis.*give axes \[2, 3\]"),
    ((1, 4, 3, 3), None, {"noop_with_empty_axes": 1}, r"no axes \(noop_with_empty_axes=1: the identity\)"),
    ((1, 4, 9), [2], {}, r"axes \[2\] of a 3-D tensor are not supported.*4-D NCHW"),
])
def test_unsupported_axes_are_refused(shape, axes, attrs, pattern):
    b = _Builder("int8", np.random.default_rng(0))
    x = b.qdq("x", X_SCALE)
    inputs = [x] + ([b.init("axes", np.array(axes, np.int64))] if axes is not None else [])
    b.nodes.append(helper.make_node("ReduceMean", inputs, ["mean"], name="head_mean", **attrs))
    y = b.qdq("mean", X_SCALE)
    graph = helper.make_graph(b.nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                              [helper.make_tensor_value_info(y, TensorProto.FLOAT, None)], b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    with pytest.raises(MCUCError, match=r"'head_mean' \(ReduceMean\): " + pattern):
        load_model(model.SerializeToString(), format="onnx")
