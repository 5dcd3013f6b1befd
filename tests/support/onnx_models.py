"""Float ONNX networks built in the test process with onnx.helper (random weights, no
downloads), and their int8/uint8 quantization with onnxruntime.quantization.

Each builder returns a float ModelProto with one NCHW (or [1, features]) float input.
`quantize` runs quantize_static on random calibration data and returns the bytes of
the quantized model, QDQ or operator-oriented (QOperator), int8 or uint8 activations.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


class _Net:
    """A small graph under construction: float weights, NCHW activations."""

    def __init__(self, rng: np.random.Generator, input_shape: tuple[int, ...]):
        self.rng = rng
        self.nodes: list = []
        self.inits: list = []
        self.input_shape = input_shape
        self.count = 0

    def _name(self, kind: str) -> str:
        self.count += 1
        return f"{kind}{self.count}"

    def _const(self, name: str, array: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(array, np.float32), name))
        return name

    def _const_int(self, name: str, array: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(array, np.int64), name))
        return name

    def conv(self, x: str, cin: int, cout: int, k: int, stride: int = 1, group: int = 1,
             act: str | None = "relu", pad: int | None = None) -> str:
        n = self._name("conv")
        fan_in = cin // group * k * k
        w = self.rng.normal(0, np.sqrt(2.0 / fan_in), (cout, cin // group, k, k))
        b = self.rng.normal(0, 0.1, cout)
        p = k // 2 if pad is None else pad
        self.nodes.append(helper.make_node("Conv", [x, self._const(n + "_w", w), self._const(n + "_b", b)], [n],
                                           name=n, kernel_shape=[k, k], strides=[stride, stride],
                                           pads=[p, p, p, p], group=group))
        return self.act(n, act)

    def act(self, x: str, act: str | None) -> str:
        if act is None:
            return x
        n = self._name(act)
        if act == "relu":
            self.nodes.append(helper.make_node("Relu", [x], [n], name=n))
        else:  # relu6
            lo, hi = self._const(n + "_lo", np.array(0.0)), self._const(n + "_hi", np.array(6.0))
            self.nodes.append(helper.make_node("Clip", [x, lo, hi], [n], name=n))
        return n

    def add(self, a: str, b: str) -> str:
        n = self._name("add")
        self.nodes.append(helper.make_node("Add", [a, b], [n], name=n))
        return n

    def gemm(self, x: str, cin: int, cout: int, act: str | None = None) -> str:
        n = self._name("gemm")
        w = self.rng.normal(0, np.sqrt(2.0 / cin), (cout, cin))
        b = self.rng.normal(0, 0.1, cout)
        self.nodes.append(helper.make_node("Gemm", [x, self._const(n + "_w", w), self._const(n + "_b", b)], [n],
                                           name=n, transB=1))
        return self.act(n, act)

    def matmul(self, x: str, cin: int, cout: int) -> str:
        n = self._name("matmul")
        w = self.rng.normal(0, np.sqrt(2.0 / cin), (cin, cout))
        self.nodes.append(helper.make_node("MatMul", [x, self._const(n + "_w", w)], [n], name=n))
        return n

    def node(self, op: str, inputs: list[str], **attrs) -> str:
        n = self._name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [n], name=n, **attrs))
        return n

    def gap_flatten(self, x: str) -> str:
        return self.node("Flatten", [self.node("GlobalAveragePool", [x])], axis=1)

    def model(self, out: str, name: str) -> onnx.ModelProto:
        probe = helper.make_graph(self.nodes, name,
                                  [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(self.input_shape))],
                                  [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], self.inits)
        inferred = onnx.shape_inference.infer_shapes(helper.make_model(probe, opset_imports=[helper.make_opsetid("", OPSET)]))
        out_info = next(v for v in [*inferred.graph.value_info, *inferred.graph.output] if v.name == out)
        graph = helper.make_graph(self.nodes, name,
                                  [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(self.input_shape))],
                                  [out_info], self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model


def mobilenet_v2(rng: np.random.Generator, size: int = 96, width: float = 0.35) -> onnx.ModelProto:
    """MobileNetV2-style: stem conv s2, inverted residual blocks (1x1 expand + ReLU6,
    3x3 depthwise + ReLU6, 1x1 linear projection, residual add when the shapes allow),
    global average pool, classifier."""
    net = _Net(rng, (1, 3, size, size))

    def ch(c: int) -> int:
        return max(8, int(c * width + 4) // 8 * 8)

    x, c = net.conv("input", 3, ch(32), 3, stride=2, act="relu6"), ch(32)
    blocks = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 2, 2), (6, 64, 1, 2)]
    for t, cout, n, s in blocks:
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = c * t
            y = net.conv(x, c, hidden, 1, act="relu6") if t != 1 else x
            y = net.conv(y, hidden, hidden, 3, stride=stride, group=hidden, act="relu6")
            y = net.conv(y, hidden, ch(cout), 1, act=None)
            x = net.add(x, y) if stride == 1 and c == ch(cout) else y
            c = ch(cout)
    x = net.conv(x, c, 128, 1, act="relu6")
    return net.model(net.gemm(net.gap_flatten(x), 128, 10), "mobilenet_v2_like")


def resnet(rng: np.random.Generator, size: int = 32) -> onnx.ModelProto:
    """ResNet-style: stem conv, max pool, basic blocks with residual adds (a 1x1
    projection when the stride or width changes), global average pool, classifier."""
    net = _Net(rng, (1, 3, size, size))
    x = net.conv("input", 3, 16, 3)
    x = net.node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    c = 16
    for cout, stride in ((16, 1), (32, 2), (32, 1)):
        y = net.conv(x, c, cout, 3, stride=stride)
        y = net.conv(y, cout, cout, 3, act=None)
        skip = x if stride == 1 and c == cout else net.conv(x, c, cout, 1, stride=stride, act=None, pad=0)
        x = net.act(net.add(y, skip), "relu")
        c = cout
    return net.model(net.gemm(net.gap_flatten(x), c, 10), "resnet_like")


def kws_ds_cnn(rng: np.random.Generator) -> onnx.ModelProto:
    """Depthwise-separable CNN for keyword spotting (DS-CNN): 49x10 MFCC input, a
    10x4 stride-2 conv, four depthwise-separable blocks, average pool, 12 classes."""
    net = _Net(rng, (1, 1, 49, 10))
    n = net._name("conv")
    w = rng.normal(0, np.sqrt(2.0 / 40), (64, 1, 10, 4))
    net.nodes.append(helper.make_node("Conv", ["input", net._const(n + "_w", w), net._const(n + "_b", rng.normal(0, .1, 64))],
                                      [n], name=n, kernel_shape=[10, 4], strides=[2, 2], pads=[4, 1, 5, 2]))
    x = net.act(n, "relu")
    for _ in range(4):
        x = net.conv(x, 64, 64, 3, group=64)
        x = net.conv(x, 64, 64, 1)
    return net.model(net.gemm(net.gap_flatten(x), 64, 12), "kws_ds_cnn")


def mlp(rng: np.random.Generator) -> onnx.ModelProto:
    """A multi-layer perceptron: Gemm + ReLU, Gemm + ReLU, MatMul."""
    net = _Net(rng, (1, 64))
    x = net.gemm("input", 64, 48, act="relu")
    x = net.gemm(x, 48, 32, act="relu")
    return net.model(net.matmul(x, 32, 10), "mlp")


def mobilenet_v3_block(rng: np.random.Generator, size: int = 32) -> onnx.ModelProto:
    """MobileNetV3-style pieces: HardSwish, squeeze-and-excitation (average pool, two 1x1
    convs, Sigmoid, channel-wise Mul), a two-branch Concat, an upsampling Resize, a Pad,
    average pooling and a Softmax head."""
    net = _Net(rng, (1, 3, size, size))
    x = net.node("HardSwish", [net.conv("input", 3, 16, 3, stride=2, act=None)])
    y = net.node("HardSwish", [net.conv(x, 16, 16, 3, group=16, act=None)])
    # (a projection first: operator-oriented quantization leaves HardSwish in float, and a
    # float HardSwish output must feed ops that quantize their input)
    y = net.conv(y, 16, 16, 1, pad=0)
    squeeze = net.node("GlobalAveragePool", [y])
    excite = net.node("Sigmoid", [net.conv(net.conv(squeeze, 16, 8, 1, pad=0), 8, 16, 1, act=None, pad=0)])
    y = net.node("Mul", [y, excite])
    branch = net.conv(x, 16, 8, 1, pad=0)
    small = net.node("MaxPool", [branch], kernel_shape=[2, 2], strides=[2, 2])
    up = net.node("Resize", [small, "", net._const("up_scales", np.array([1, 1, 2, 2]))], mode="nearest",
                  coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    y = net.node("Concat", [y, up], axis=1)
    y = net.node("Pad", [y, net._const_int("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1]))])
    y = net.node("AveragePool", [net.conv(y, 24, 32, 3, pad=0)], kernel_shape=[3, 3], strides=[2, 2])
    return net.model(net.node("Softmax", [net.gemm(net.gap_flatten(y), 32, 10)], axis=-1), "mobilenet_v3_block")


NETWORKS = {"mobilenet_v2": mobilenet_v2, "resnet": resnet, "kws_ds_cnn": kws_ds_cnn, "mlp": mlp,
            "mobilenet_v3_block": mobilenet_v3_block}


class _RandomReader:
    """Calibration data for quantize_static: random samples of the input's shape."""

    def __init__(self, name: str, shape: tuple[int, ...], samples: int, rng: np.random.Generator):
        self._batches = iter([{name: rng.normal(0, 1, shape).astype(np.float32)} for _ in range(samples)])

    def get_next(self):
        return next(self._batches, None)


def input_shape(model: onnx.ModelProto) -> tuple[int, ...]:
    return tuple(d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim)


def quantize(model: onnx.ModelProto, fmt: str = "qdq", activations: str = "int8", seed: int = 0,
             samples: int = 8, reduce_range: bool = False) -> bytes:
    """quantize_static with per-channel int8 weights, full range by default (its default);
    reduce_range gives 7-bit weights, onnxruntime's advice for x86 without VNNI, where its
    u8 x s8 kernels sum pairs of products in saturating int16."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(_RandomReader, CalibrationDataReader):
        pass

    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "float.onnx", Path(tmp) / "quant.onnx"
        onnx.save(model, src)
        quantize_static(str(src), str(dst),
                        Reader(model.graph.input[0].name, input_shape(model), samples, rng),
                        quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
                        activation_type=QuantType.QInt8 if activations == "int8" else QuantType.QUInt8,
                        weight_type=QuantType.QInt8, per_channel=True,
                        reduce_range=reduce_range)
        return dst.read_bytes()


def qlinear_conv_model(dtype: str, height: int = 8, width: int = 8) -> bytes:
    """An operator-oriented model whose graph input and output are int8/uint8 NCHW tensors:
    one 3x3 QLinearConv, 3 -> 6 channels, per-channel weights (seeded)."""
    rng = np.random.default_rng(3)
    np_dtype, tp = (np.uint8, TensorProto.UINT8) if dtype == "uint8" else (np.int8, TensorProto.INT8)
    off = 128 if dtype == "uint8" else 0
    w = rng.integers(-127, 128, (6, 3, 3, 3)).astype(np.int8)
    inits = [numpy_helper.from_array(np.float32(0.04), "xs"), numpy_helper.from_array(np_dtype(off + 5), "xz"),
             numpy_helper.from_array(w, "w"), numpy_helper.from_array(rng.uniform(0.002, 0.01, 6).astype(np.float32), "ws"),
             numpy_helper.from_array(np.zeros(6, np.int8), "wz"),
             numpy_helper.from_array(np.float32(0.3), "ys"), numpy_helper.from_array(np_dtype(off - 7), "yz")]
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["y"], pads=[1, 1, 1, 1])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", tp, [1, 3, height, width])],
                              [helper.make_tensor_value_info("y", tp, [1, 6, height, width])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()
