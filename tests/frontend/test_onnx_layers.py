"""Hypothesis-generated single-layer QDQ models (random shapes, windows, quantization
parameters, int8 and uint8 activations), compared byte for byte with onnxruntime on the
reference interpreter; plus the cases that tell the onnxruntime rule from the TFLite one."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ort = pytest.importorskip("onnxruntime")
import onnx  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from mcuc.ir.errors import MCUCError  # noqa: E402
from mcuc.ir.interpreter import run  # noqa: E402
from mcuc.ir.numerics import TFLITE_Q31, OrtInteger  # noqa: E402
from tests.support.onnx_oracle import model_and_oracle  # noqa: E402
from mcuc.samples import random_inputs  # noqa: E402

CASES_PER_LAYER = 15  # x 14 hypothesis layer kinds: 210 generated layers per run
# Full-range weights: on x86 without VNNI onnxruntime sums u8 x s8 products in saturating
# int16 pairs, which mcuc reproduces for that host (tests/support/onnx_oracle.py).
WEIGHT_LIMIT = 127


class _Builder:
    def __init__(self, dtype: str, rng: np.random.Generator):
        self.dtype = dtype
        self.np_dtype = np.int8 if dtype == "int8" else np.uint8
        self.lo, self.hi = (-128, 127) if dtype == "int8" else (0, 255)
        self.rng = rng
        self.nodes, self.inits = [], []
        self.n = 0

    def name(self, base: str) -> str:
        self.n += 1
        return f"{base}{self.n}"

    def init(self, name: str, array) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def qparams(self, scale: float) -> tuple[str, str]:
        zp = int(self.rng.integers(self.lo + 20, self.hi - 19))
        n = self.name("q")
        return self.init(n + "_s", np.float32(scale)), self.init(n + "_z", self.np_dtype(zp))

    def qdq(self, x: str, scale: float) -> str:
        s, z = self.qparams(scale)
        q, d = self.name("Q"), self.name("DQ")
        self.nodes += [helper.make_node("QuantizeLinear", [x, s, z], [q]),
                       helper.make_node("DequantizeLinear", [q, s, z], [d])]
        return d

    def weights(self, shape: tuple[int, ...], axis: int) -> tuple[str, np.ndarray]:
        """Symmetric int8 weights, per channel along `axis` or (one time in four) per tensor;
        returns the dequantized name and the scale of every output channel."""
        w = self.rng.integers(-WEIGHT_LIMIT, WEIGHT_LIMIT + 1, shape).astype(np.int8)
        n = self.name("w")
        d = self.name("DQw")
        if self.rng.random() < 0.25:
            scale = np.float32(self.rng.uniform(0.002, 0.03))
            self.nodes.append(helper.make_node("DequantizeLinear", [self.init(n, w), self.init(n + "_s", scale),
                                                                    self.init(n + "_z", np.int8(0))], [d]))
            return d, np.full(shape[axis], scale, np.float32)
        scales = (self.rng.uniform(0.002, 0.03, shape[axis])).astype(np.float32)
        self.nodes.append(helper.make_node("DequantizeLinear", [self.init(n, w), self.init(n + "_s", scales),
                                                                self.init(n + "_z", np.zeros(shape[axis], np.int8))],
                                           [d], axis=axis))
        return d, scales

    def bias(self, in_scale: float, w_scales: np.ndarray) -> str:
        b = self.rng.integers(-3000, 3000, w_scales.size).astype(np.int32)
        n, d = self.name("b"), self.name("DQb")
        self.nodes.append(helper.make_node("DequantizeLinear", [self.init(n, b),
                                                                self.init(n + "_s", (np.float32(in_scale) * w_scales).astype(np.float32)),
                                                                self.init(n + "_z", np.zeros(b.size, np.int32))], [d], axis=0))
        return d

    def model(self, in_shape, out: str | list[str], opset: int = 17) -> bytes:
        outs = [out] if isinstance(out, str) else out
        graph = helper.make_graph(self.nodes, "layer", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
                                  [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs], self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        model.ir_version = 8
        return model.SerializeToString()


def _compare(model_bytes: bytes, seed: int, numerics: str = "exact") -> None:
    model, oracle = model_and_oracle(model_bytes, numerics)
    rng = np.random.default_rng(seed)
    for _ in range(2):
        inputs = random_inputs(model.graph, rng)
        expected = oracle(inputs)
        actual = run(model.graph, inputs)
        for e, a in zip(expected, actual):
            assert e.shape == a.shape or e.size == a.size
            assert e.tobytes() == a.tobytes(), f"max |diff| {np.abs(e.ravel() - a.ravel()).max()}"


SETTINGS = settings(max_examples=CASES_PER_LAYER, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
dtypes = st.sampled_from(["int8", "uint8"])


@SETTINGS
@given(dtype=dtypes, cin=st.integers(1, 8), cout=st.integers(1, 8), k=st.integers(1, 3), stride=st.integers(1, 2),
       dilation=st.integers(1, 2), pads=st.lists(st.integers(0, 2), min_size=4, max_size=4), size=st.integers(5, 9),
       grouping=st.sampled_from(["none", "depthwise", "groups"]),
       auto_pad=st.sampled_from(["NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]),
       out_ratio=st.floats(0.3, 3.0), seed=st.integers(0, 2**16))
def test_conv(dtype, cin, cout, k, stride, dilation, pads, size, grouping, auto_pad, out_ratio, seed):
    """Conv: plain, depthwise (with a channel multiplier) and grouped; explicit
    asymmetric pads or auto_pad; strides and dilations."""
    rng = np.random.default_rng(seed)
    b = _Builder(dtype, rng)
    if grouping == "depthwise":
        group, cout = cin, cin * max(1, cout // 4)
    elif grouping == "groups" and cin % 2 == 0:
        group, cout = 2, 2 * cout
    else:
        group = 1
    pads = [min(p, k - 1) for p in pads]
    if auto_pad.startswith("SAME"):
        dilation = 1  # onnxruntime's QLinearConv refuses dilated SAME padding
    xs = 0.05
    x = b.qdq("x", xs)
    w, ws = b.weights((cout, cin // group, k, k), 0)
    acc_scale = xs * float(ws.mean()) * np.sqrt(k * k * cin / group) * 40
    window = {"pads": pads} if auto_pad == "NOTSET" else {"auto_pad": auto_pad}
    b.nodes.append(helper.make_node("Conv", [x, w, b.bias(xs, ws)], ["c"], kernel_shape=[k, k], strides=[stride] * 2,
                                    dilations=[dilation] * 2, group=group, **window))
    y = b.qdq("c", acc_scale * out_ratio / 100)
    _compare(b.model((1, cin, size, size), y), seed)


@SETTINGS
@given(dtype=dtypes, features=st.integers(1, 40), units=st.integers(1, 20), gemm=st.booleans(),
       out_ratio=st.floats(0.3, 3.0), seed=st.integers(0, 2**16))
def test_gemm_and_matmul(dtype, features, units, gemm, out_ratio, seed):
    rng = np.random.default_rng(seed)
    b = _Builder(dtype, rng)
    xs = 0.05
    x = b.qdq("x", xs)
    if gemm:
        w, ws = b.weights((units, features), 0)
        b.nodes.append(helper.make_node("Gemm", [x, w, b.bias(xs, ws)], ["c"], transB=1))
    else:
        w, ws = b.weights((features, units), 1)
        b.nodes.append(helper.make_node("MatMul", [x, w], ["c"]))
    y = b.qdq("c", xs * float(ws.mean()) * np.sqrt(features) * 40 * out_ratio / 100)
    _compare(b.model((1, features), y), seed)


@SETTINGS
@given(dtype=dtypes, shape=st.sampled_from([(1, 3, 4, 5), (1, 8, 2, 2), (1, 17), (1, 2, 3, 33)]),
       scales=st.tuples(*[st.floats(0.005, 0.2)] * 3), scalar_b=st.booleans(), mul=st.booleans(),
       seed=st.integers(0, 2**16))
def test_add_and_mul(dtype, shape, scales, scalar_b, mul, seed):
    rng = np.random.default_rng(seed)
    b = _Builder(dtype, rng)
    xa = b.qdq("x", scales[0])
    xb = b.qdq("x", scales[1])
    if scalar_b:  # a one-element constant operand, dequantized from a quantized initializer
        s, z = b.qparams(scales[1])
        xb = b.name("DQc")
        b.nodes.append(helper.make_node("DequantizeLinear", [b.init(b.name("c"), b.np_dtype(rng.integers(b.lo, b.hi + 1))),
                                                             s, z], [xb]))
    b.nodes.append(helper.make_node("Mul" if mul else "Add", [xa, xb], ["c"]))
    out_scale = scales[0] * scales[1] * 60 * scales[2] if mul else scales[2]
    _compare(b.model(shape, b.qdq("c", out_scale)), seed)


@SETTINGS
@given(dtype=dtypes, channels=st.integers(1, 12), h=st.integers(1, 9), w=st.integers(1, 9),
       out_ratio=st.floats(0.2, 2.0), seed=st.integers(0, 2**16))
def test_global_average_pool(dtype, channels, h, w, out_ratio, seed):
    b = _Builder(dtype, np.random.default_rng(seed))
    x = b.qdq("x", 0.05)
    b.nodes.append(helper.make_node("GlobalAveragePool", [x], ["c"]))
    _compare(b.model((1, channels, h, w), b.qdq("c", 0.05 * out_ratio)), seed)


@SETTINGS
@given(dtype=dtypes, channels=st.integers(1, 6), size=st.integers(3, 9), k=st.integers(1, 3), stride=st.integers(1, 2),
       pad=st.integers(0, 1), include_pad=st.booleans(), out_ratio=st.floats(0.3, 2.0), seed=st.integers(0, 2**16))
def test_average_pool(dtype, channels, size, k, stride, pad, include_pad, out_ratio, seed):
    b = _Builder(dtype, np.random.default_rng(seed))
    x = b.qdq("x", 0.05)
    b.nodes.append(helper.make_node("AveragePool", [x], ["c"], kernel_shape=[k, k], strides=[stride] * 2,
                                    pads=[min(pad, k - 1)] * 4, count_include_pad=int(include_pad)))
    _compare(b.model((1, channels, size, size), b.qdq("c", 0.05 * out_ratio)), seed)


@SETTINGS
@given(dtype=dtypes, channels=st.integers(1, 6), size=st.integers(4, 9), k=st.integers(1, 3), stride=st.integers(1, 3),
       pad=st.integers(0, 1), flatten=st.booleans(), requantize=st.booleans(), seed=st.integers(0, 2**16))
def test_max_pool_and_flatten(dtype, channels, size, k, stride, pad, flatten, requantize, seed):
    """MaxPool (and Flatten) on the integers; with other output parameters onnxruntime
    keeps DQ -> float MaxPool -> Q, which mcuc computes as the pool plus a table."""
    b = _Builder(dtype, np.random.default_rng(seed))
    s, z = b.qparams(0.05)
    s1, z1 = b.qparams(0.03) if requantize else (s, z)
    b.nodes += [helper.make_node("QuantizeLinear", ["x", s, z], ["q0"]), helper.make_node("DequantizeLinear", ["q0", s, z], ["d0"]),
                helper.make_node("MaxPool", ["d0"], ["p"], kernel_shape=[k, k], strides=[stride] * 2, pads=[min(pad, k - 1)] * 4),
                helper.make_node("QuantizeLinear", ["p", s1, z1], ["q1"]), helper.make_node("DequantizeLinear", ["q1", s1, z1], ["d1"])]
    s, z = s1, z1
    out = "d1"
    if flatten:
        b.nodes += [helper.make_node("Flatten", ["d1"], ["f"]), helper.make_node("QuantizeLinear", ["f", s, z], ["q2"]),
                    helper.make_node("DequantizeLinear", ["q2", s, z], ["d2"])]
        out = "d2"
    _compare(b.model((1, channels, size, size), out), seed)


def test_onnxruntime_rule_is_not_the_tflite_rule():
    """A conv whose outputs land exactly on .5 ties: onnxruntime rounds them to even,
    TFLite's rule away from zero. The reference must follow onnxruntime, and would fail
    with the TFLite rule (the test can fail)."""
    b = _Builder("int8", np.random.default_rng(0))
    s, z = b.init("xs", np.float32(1.0)), b.init("xz", np.int8(0))
    w = b.init("w", np.ones((1, 1, 1, 1), np.int8))
    b.nodes += [helper.make_node("QuantizeLinear", ["x", s, z], ["q"]), helper.make_node("DequantizeLinear", ["q", s, z], ["d"]),
                helper.make_node("DequantizeLinear", [w, b.init("ws", np.float32([1.0])), b.init("wz", np.int8([0]))], ["wd"], axis=0),
                helper.make_node("Conv", ["d", "wd"], ["c"], kernel_shape=[1, 1]),
                helper.make_node("QuantizeLinear", ["c", b.init("ys", np.float32(2.0)), b.init("yz", np.int8(0))], ["y"]),
                helper.make_node("DequantizeLinear", ["y", "ys", "yz"], ["out"])]
    data = b.model((1, 1, 1, 256), "out")
    model, oracle = model_and_oracle(data)
    x = np.arange(-128, 128, dtype=np.float32).reshape(1, 1, 1, 256)
    expected = oracle([x])[0]
    assert run(model.graph, [x])[0].tobytes() == expected.tobytes()
    conv = next(i for i, op in enumerate(model.graph.ops) if op.kind == "CONV_2D")
    ops = list(model.graph.ops)
    ops[conv] = ops[conv].with_(attrs=replace(ops[conv].attrs, numerics=TFLITE_Q31))
    assert run(model.graph.with_(ops=tuple(ops)), [x])[0].tobytes() != expected.tobytes()


@SETTINGS
@given(dtype=dtypes, op=st.sampled_from(["Sigmoid", "HardSwish", "LeakyRelu", "Relu", "Clip", "Abs", "Neg"]),
       in_scale=st.floats(0.01, 0.2), out_scale=st.floats(0.002, 0.1), seed=st.integers(0, 2**16))
def test_elementwise_tables(dtype, op, in_scale, out_scale, seed):
    """Every int8 input value through onnxruntime's float function (QLinearSigmoid and
    QLinearLeakyRelu tables, DQ -> HardSwish/Relu/Clip/Abs/Neg -> Q): the whole 256-entry
    table."""
    b = _Builder(dtype, np.random.default_rng(seed))
    x = b.qdq("x", in_scale)
    inputs = [x]
    attrs = {"alpha": 0.15} if op == "LeakyRelu" else {}
    if op == "Clip":
        inputs += [b.init("lo", np.float32(-1.5)), b.init("hi", np.float32(2.0))]
    b.nodes.append(helper.make_node(op, inputs, ["c"], **attrs))
    data = b.model((1, 2, 8, 16), b.qdq("c", out_scale))
    model, oracle = model_and_oracle(data)
    assert any(o.kind == "LOOKUP_TABLE" for o in model.graph.ops)
    # Inputs over the whole quantized grid: 256 distinct values at least once.
    s, zp = in_scale, int(model.graph.ops[0].outputs[0].quant.scalar_zero_point)
    grid = (np.arange(-128, 128) - zp).astype(np.float32) * np.float32(s)
    x_in = np.resize(grid, (1, 2, 8, 16)).astype(np.float32)
    expected = oracle([x_in])[0]
    assert run(model.graph, [x_in])[0].tobytes() == expected.tobytes()


@SETTINGS
@given(dtype=dtypes, parts=st.integers(2, 3), channels=st.integers(1, 5), same=st.booleans(), seed=st.integers(0, 2**16))
def test_concat_requantizes_inputs(dtype, parts, channels, same, seed):
    """QLinearConcat: inputs of other quantization pass through onnxruntime's table."""
    rng = np.random.default_rng(seed)
    b = _Builder(dtype, rng)
    if same:  # one quantization everywhere: a plain copy of the slices
        s, z = b.qparams(0.05)
        b.nodes += [helper.make_node("QuantizeLinear", ["x", s, z], ["q"]), helper.make_node("DequantizeLinear", ["q", s, z], ["d"]),
                    helper.make_node("Concat", ["d"] * parts, ["c"], axis=1),
                    helper.make_node("QuantizeLinear", ["c", s, z], ["qc"]), helper.make_node("DequantizeLinear", ["qc", s, z], ["y"])]
        _compare(b.model((1, channels, 4, 5), "y"), seed)
        return
    branches = [b.qdq("x", float(rng.uniform(0.01, 0.1))) for _ in range(parts)]
    b.nodes.append(helper.make_node("Concat", branches, ["c"], axis=1))
    _compare(b.model((1, channels, 4, 5), b.qdq("c", float(rng.uniform(0.02, 0.1)))), seed)


@SETTINGS
@given(dtype=dtypes, channels=st.integers(1, 4), h=st.integers(1, 6), w=st.integers(1, 6),
       pads=st.lists(st.integers(0, 2), min_size=4, max_size=4), constant=st.floats(-1.0, 1.0),
       same=st.booleans(), seed=st.integers(0, 2**16))
def test_pad(dtype, channels, h, w, pads, constant, same, seed):
    b = _Builder(dtype, np.random.default_rng(seed))
    s, z = b.qparams(0.05)
    onnx_pads = [0, 0, pads[0], pads[1], 0, 0, pads[2], pads[3]]
    b.nodes += [helper.make_node("QuantizeLinear", ["x", s, z], ["q"]), helper.make_node("DequantizeLinear", ["q", s, z], ["d"]),
                helper.make_node("Pad", ["d", b.init("pads", np.array(onnx_pads, np.int64)),
                                         b.init("cv", np.float32(constant))], ["c"])]
    if same:
        b.nodes += [helper.make_node("QuantizeLinear", ["c", s, z], ["qc"]), helper.make_node("DequantizeLinear", ["qc", s, z], ["y"])]
        out = "y"
    else:
        out = b.qdq("c", 0.03)
    _compare(b.model((1, channels, h, w), out), seed)


RESIZE_MODES = [("asymmetric", "floor"), ("half_pixel", "round_prefer_floor"), ("align_corners", "round_prefer_floor"),
                ("pytorch_half_pixel", "round_prefer_floor"), ("tf_half_pixel_for_nn", "floor")]


@SETTINGS
@given(dtype=dtypes, h=st.integers(1, 6), w=st.integers(1, 6), factor=st.integers(1, 3), mode=st.sampled_from(RESIZE_MODES),
       seed=st.integers(0, 2**16))
def test_resize_nearest(dtype, h, w, factor, mode, seed):
    """Integer upscaling with the common coordinate modes: mcuc either reproduces
    onnxruntime's pixels exactly or rejects the node (align_corners, whose pixels
    RESIZE_NEAREST_NEIGHBOR's rounding cannot always pick); the two usual export modes
    must always compile."""
    b = _Builder(dtype, np.random.default_rng(seed))
    s, z = b.qparams(0.05)
    b.nodes += [helper.make_node("QuantizeLinear", ["x", s, z], ["q"]), helper.make_node("DequantizeLinear", ["q", s, z], ["d"]),
                helper.make_node("Resize", ["d", "", b.init("scales", np.array([1, 1, factor, factor], np.float32))], ["c"],
                                 mode="nearest", coordinate_transformation_mode=mode[0], nearest_mode=mode[1]),
                helper.make_node("QuantizeLinear", ["c", s, z], ["qc"]), helper.make_node("DequantizeLinear", ["qc", s, z], ["y"])]
    data = b.model((1, 2, h, w), "y")
    try:
        _compare(data, seed)
    except MCUCError as e:
        assert mode not in RESIZE_MODES[:2] and "no RESIZE_NEAREST_NEIGHBOR rule" in str(e)


RESHAPE_CASES = [  # (input shape, ONNX op, shape or axes input): 4-D <-> 2/3/4-D, one pixel or many
    ((1, 2, 3, 4), "Reshape", [1, -1, 12]), ((1, 4, 1, 1), "Reshape", [1, 4]), ((1, 3, 2, 2), "Reshape", [1, 6, 2, 1]),
    ((1, 24), "Reshape", [1, 6, 2, 2]), ((1, 8), "Reshape", [1, 8, 1, 1]), ((1, 4, 1, 1), "Squeeze", [2, 3]),
    ((1, 6), "Unsqueeze", [2, 3]), ((1, 3, 2, 2), "Flatten", None)]


@SETTINGS
@given(dtype=dtypes, perm=st.permutations([0, 1, 2, 3]), seed=st.integers(0, 2**16))
def test_transpose(dtype, perm, seed):
    """Any permutation of a 4-D NCHW tensor, composed with the IR's NHWC layout."""
    b = _Builder(dtype, np.random.default_rng(seed))
    s, z = b.qparams(0.05)
    b.nodes += [helper.make_node("QuantizeLinear", ["x", s, z], ["q"]), helper.make_node("DequantizeLinear", ["q", s, z], ["d"]),
                helper.make_node("Transpose", ["d"], ["c"], perm=list(perm)),
                helper.make_node("QuantizeLinear", ["c", s, z], ["qc"]), helper.make_node("DequantizeLinear", ["qc", s, z], ["y"])]
    _compare(b.model((1, 2, 3, 4), "y"), seed)


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
@pytest.mark.parametrize("shape,op,arg", RESHAPE_CASES)
def test_reshape_across_layouts(dtype, shape, op, arg):
    """Reshape/Flatten/Squeeze/Unsqueeze across the NCHW/NHWC boundary keep ONNX's order."""
    seed = 5
    b = _Builder(dtype, np.random.default_rng(seed))
    s, z = b.qparams(0.05)
    b.nodes += [helper.make_node("QuantizeLinear", ["x", s, z], ["q"]), helper.make_node("DequantizeLinear", ["q", s, z], ["d"])]
    inputs = ["d"] if arg is None else ["d", b.init("arg", np.array(arg, np.int64))]
    b.nodes.append(helper.make_node(op, inputs, ["c"]))
    b.nodes += [helper.make_node("QuantizeLinear", ["c", s, z], ["qc"]), helper.make_node("DequantizeLinear", ["qc", s, z], ["y"])]
    _compare(b.model(shape, "y"), seed)


@SETTINGS
@given(dtype=dtypes, rows=st.integers(1, 3), length=st.integers(1, 40), in_scale=st.floats(0.01, 0.4),
       out_scale=st.sampled_from([1 / 256, 1 / 255, 0.01]), spatial=st.booleans(), seed=st.integers(0, 2**16))
def test_softmax(dtype, rows, length, in_scale, out_scale, spatial, seed):
    """QLinearSoftmax: float32 exp table, row sum, floor(1 / y_scale) (over the channels
    of a 4-D NCHW tensor, or the last axis of a 2-D one)."""
    b = _Builder(dtype, np.random.default_rng(seed))
    x = b.qdq("x", in_scale)
    b.nodes.append(helper.make_node("Softmax", [x], ["c"], axis=1 if spatial else -1))
    s = b.init("ys", np.float32(out_scale))
    z = b.init("yz", b.np_dtype(-128 if dtype == "int8" else 0))
    b.nodes += [helper.make_node("QuantizeLinear", ["c", s, z], ["qc"]), helper.make_node("DequantizeLinear", ["qc", s, z], ["y"])]
    _compare(b.model((1, length, rows, 2) if spatial else (rows, length), "y"), seed)


@SETTINGS
@given(length=st.integers(1, 40), in_scale=st.floats(0.02, 0.4), out_scale=st.sampled_from([1 / 256, 1 / 255, 0.01]),
       out_zp=st.sampled_from([-128, -100, 0]), seed=st.integers(0, 2**16))
def test_qlinear_softmax_int8_operator(length, in_scale, out_scale, out_zp, seed):
    """The operator-oriented com.microsoft QLinearSoftmax on int8 (no uint8 conversion)."""
    rng = np.random.default_rng(seed)
    zx = int(rng.integers(-128, 127))
    inits = [numpy_helper.from_array(np.float32(in_scale), "sx"), numpy_helper.from_array(np.int8(zx), "zx"),
             numpy_helper.from_array(np.float32(out_scale), "sy"), numpy_helper.from_array(np.int8(out_zp), "zy")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["q"]),
             helper.make_node("QLinearSoftmax", ["q", "sx", "zx", "sy", "zy"], ["s"], domain="com.microsoft", axis=-1,
                              opset=13),
             helper.make_node("DequantizeLinear", ["s", "sy", "zy"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, length])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, length])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 8
    _compare(model.SerializeToString(), seed)


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
@pytest.mark.parametrize("scale", [0.5, 0.25, 0.1, 1 / 3, 0.05, 0.0123])
def test_quantize_linear_on_ties(dtype, scale):
    """QuantizeLinear of values exactly half-way between grid points (and one ulp above):
    onnxruntime divides in float32 and rounds half to even, TFLite's QUANTIZE rounds half
    away from zero; the reference must give onnxruntime's bytes."""
    np_dtype = np.int8 if dtype == "int8" else np.uint8
    zero_point = np_dtype(3 if dtype == "int8" else 131)
    inits = [numpy_helper.from_array(np.float32(scale), "s"), numpy_helper.from_array(zero_point, "z")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 600])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 600])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    data = model.SerializeToString()
    x = ((np.arange(-300, 300) + 0.5) * np.float32(scale)).astype(np.float32).reshape(1, 600)
    x[0, ::7] = np.nextafter(x[0, ::7], np.float32(np.inf))
    model, oracle = model_and_oracle(data)
    assert run(model.graph, [x])[0].tobytes() == oracle([x])[0].tobytes()


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
@pytest.mark.parametrize("seed", range(8))
def test_qlinear_add_every_input_pair(dtype, seed):
    """com.microsoft QLinearAdd over all 65536 input pairs, with scales whose fused and
    unfused zero-point terms differ (onnxruntime's build contracts ra * za + rb * zb)."""
    from mcuc.ir.ort_numerics import fma_f32

    rng = np.random.default_rng(seed)
    np_dtype, tp = (np.uint8, TensorProto.UINT8) if dtype == "uint8" else (np.int8, TensorProto.INT8)
    while True:
        sa, sb, sc = rng.uniform(0.01, 0.2, 3).astype(np.float32)
        za, zb, zc = (int(v) for v in rng.integers(0, 256, 3) - (0 if dtype == "uint8" else 128))
        ra, rb = np.float32(sa / sc), np.float32(sb / sc)
        off = 0 if dtype == "uint8" else 128
        fused = fma_f32(ra, np.float32(za + off), np.float32(rb * np.float32(zb + off)))
        unfused = np.float32(np.float32(ra * np.float32(za + off)) + np.float32(rb * np.float32(zb + off)))
        if fused != unfused:
            break
    inits = [numpy_helper.from_array(np.float32(sa), "sa"), numpy_helper.from_array(np_dtype(za), "za"),
             numpy_helper.from_array(np.float32(sb), "sb"), numpy_helper.from_array(np_dtype(zb), "zb"),
             numpy_helper.from_array(np.float32(sc), "sc"), numpy_helper.from_array(np_dtype(zc), "zc")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "sa", "za"], ["qa"]),
             helper.make_node("QuantizeLinear", ["x2", "sb", "zb"], ["qb"]),
             helper.make_node("QLinearAdd", ["qa", "sa", "za", "qb", "sb", "zb", "sc", "zc"], ["q"], domain="com.microsoft"),
             helper.make_node("DequantizeLinear", ["q", "sc", "zc"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 65536]),
                                           helper.make_tensor_value_info("x2", TensorProto.FLOAT, [1, 65536])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 65536])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 8
    data = model.SerializeToString()
    lo = 0 if dtype == "uint8" else -128
    qa = np.repeat(np.arange(256), 256) + lo
    qb = np.tile(np.arange(256), 256) + lo
    xa = ((qa - za) * np.float32(sa)).astype(np.float32).reshape(1, -1)
    xb = ((qb - zb) * np.float32(sb)).astype(np.float32).reshape(1, -1)
    model, oracle = model_and_oracle(data)
    assert run(model.graph, [xa, xb])[0].tobytes() == oracle([xa, xb])[0].tobytes()


@pytest.mark.parametrize("numerics", ["exact", "ort-x86-avx2"])
@pytest.mark.parametrize("op", ["Add", "Mul"])
@pytest.mark.parametrize("seed", range(4))
def test_qdq_int8_add_of_a_shared_tensor(seed, op, numerics):
    """An int8 QDQ Add reading a tensor that also feeds another op: where onnxruntime
    converts only single-consumer int8 pairs to uint8 (ort-x86-avx2), this Add mixes types
    and runs in float (DQ -> Add -> Q), which mcuc reproduces (ADD OrtFloat); with exact
    numerics it is QLinearAdd on int8. Every pair of input values; both outputs must match
    onnxruntime."""
    rng = np.random.default_rng(seed)
    b = _Builder("int8", rng)
    sa, sb, sc = (float(v) for v in rng.uniform(0.01, 0.15, 3))
    shared = b.qdq("x", sa)
    other = b.qdq("x2", sb)
    b.nodes.append(helper.make_node(op, [shared, other], ["c"]))
    sum_out = b.qdq("c", sc if op == "Add" else sa * sb * 64)
    s, z = b.nodes[0].input[1], b.nodes[0].input[2]
    b.nodes += [helper.make_node("Flatten", [shared], ["f"]),
                helper.make_node("QuantizeLinear", ["f", s, z], ["qf"]), helper.make_node("DequantizeLinear", ["qf", s, z], ["flat"])]
    graph = helper.make_graph(b.nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 65536]),
                                             helper.make_tensor_value_info("x2", TensorProto.FLOAT, [1, 65536])],
                              [helper.make_tensor_value_info(sum_out, TensorProto.FLOAT, None),
                               helper.make_tensor_value_info("flat", TensorProto.FLOAT, None)], b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    data = model.SerializeToString()
    mcuc_model, oracle = model_and_oracle(data, numerics)
    za = mcuc_model.graph.ops[0].outputs[0].quant.scalar_zero_point
    zb = next(op for op in mcuc_model.graph.ops if op.kind == "QUANTIZE" and op.inputs[0].name == "x2").outputs[0].quant.scalar_zero_point
    qa, qb = np.repeat(np.arange(-128, 128), 256), np.tile(np.arange(-128, 128), 256)
    xa = ((qa - za) * np.float32(sa)).astype(np.float32).reshape(1, -1)
    xb = ((qb - zb) * np.float32(sb)).astype(np.float32).reshape(1, -1)
    expected = oracle([xa, xb])
    actual = run(mcuc_model.graph, [xa, xb])
    assert all(e.tobytes() == a.tobytes() for e, a in zip(expected, actual))


def test_u8s8_pair_saturation_is_what_this_onnxruntime_computes():
    """Extreme uint8 inputs and full-range weights: on x86 without VNNI onnxruntime's
    int16 pair sums saturate, and the reference matches only with OrtInteger.u8s8_pairs (on
    other hosts onnxruntime sums exactly, and so does the reference without the flag)."""
    b = _Builder("uint8", np.random.default_rng(0))
    s, z = b.init("xs", np.float32(0.05)), b.init("xz", np.uint8(0))
    w = b.init("w", np.full((2, 8, 1, 1), 127, np.int8))
    b.nodes += [helper.make_node("QuantizeLinear", ["x", s, z], ["q"]), helper.make_node("DequantizeLinear", ["q", s, z], ["d"]),
                helper.make_node("DequantizeLinear", [w, b.init("ws", np.full(2, 0.01, np.float32)),
                                                      b.init("wz", np.zeros(2, np.int8))], ["wd"], axis=0),
                helper.make_node("Conv", ["d", "wd"], ["c"], kernel_shape=[1, 1]),
                helper.make_node("QuantizeLinear", ["c", b.init("ys", np.float32(2.0)), b.init("yz", np.uint8(0))], ["y"]),
                helper.make_node("DequantizeLinear", ["y", "ys", "yz"], ["out"])]
    data = b.model((1, 8, 2, 2), "out")
    model, oracle = model_and_oracle(data)
    saturate = model.onnx_numerics.u8s8_pairs_saturate
    x = np.full((1, 8, 2, 2), 255 * 0.05, np.float32)  # every input 255: each pair is 2 * 255 * 127 > 32767
    expected = oracle([x])[0]
    conv = next(i for i, op in enumerate(model.graph.ops) if op.kind == "CONV_2D")
    assert model.graph.ops[conv].attrs.numerics == OrtInteger(uint8=True, u8s8_pairs=saturate)
    assert run(model.graph, [x])[0].tobytes() == expected.tobytes()
    ops = list(model.graph.ops)
    ops[conv] = ops[conv].with_(attrs=replace(ops[conv].attrs, numerics=OrtInteger(uint8=True, u8s8_pairs=not saturate)))
    assert run(model.graph.with_(ops=tuple(ops)), [x])[0].tobytes() != expected.tobytes()


@SETTINGS
@given(cin=st.integers(1, 72), cout=st.integers(1, 12), k=st.sampled_from([1, 3, 5]), stride=st.integers(1, 2),
       grouping=st.sampled_from(["none", "depthwise", "gemm"]), seed=st.integers(0, 2**16))
def test_qdq_int8_group_left_in_float(cin, cout, k, stride, grouping, seed):
    """An int8 QDQ Conv/Gemm whose input also feeds another op: with ort-x86-avx2
    numerics onnxruntime runs it in float (DQ -> Conv -> Q) and the reference reproduces
    that (OrtFloat), up to long reductions (K up to 72 x 25)."""
    rng = np.random.default_rng(seed)
    b = _Builder("int8", rng)
    xs = 0.05
    s, z = b.qparams(xs)
    b.nodes += [helper.make_node("QuantizeLinear", ["x", s, z], ["q"]), helper.make_node("DequantizeLinear", ["q", s, z], ["d"])]
    if grouping == "gemm":
        w, ws = b.weights((cout, cin), 0)
        b.nodes.append(helper.make_node("Gemm", ["d", w, b.bias(xs, ws)], ["c"], transB=1))
        shape, reduction = (1, cin), cin
    else:
        group, cout = (cin, cin) if grouping == "depthwise" else (1, cout)
        w, ws = b.weights((cout, cin // group, k, k), 0)
        b.nodes.append(helper.make_node("Conv", ["d", w, b.bias(xs, ws)], ["c"], kernel_shape=[k, k], pads=[k // 2] * 4,
                                        strides=[stride] * 2, group=group))
        shape, reduction = (1, cin, 6, 6), k * k * cin // group
    out = b.qdq("c", xs * float(ws.mean()) * np.sqrt(reduction) * 0.4)
    b.nodes += [helper.make_node("Flatten", ["d"], ["f"]), helper.make_node("QuantizeLinear", ["f", s, z], ["qf"]),
                helper.make_node("DequantizeLinear", ["qf", s, z], ["flat"])]
    graph = helper.make_graph(b.nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, None),
                               helper.make_tensor_value_info("flat", TensorProto.FLOAT, None)], b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    _compare(model.SerializeToString(), seed, "ort-x86-avx2:threads=2")


def _movement_model(b: "_Builder", in_shape, make_node, requantize: bool, extra_inputs=()) -> bytes:
    """Q -> DQ -> the data-movement node -> Q -> DQ, the output's parameters the input's
    or (requantize) others: onnxruntime then keeps the float op between DQ and Q."""
    s, z = b.qparams(0.05)
    s1, z1 = b.qparams(0.03) if requantize else (s, z)
    b.nodes += [helper.make_node("QuantizeLinear", ["x", s, z], ["q0"]),
                helper.make_node("DequantizeLinear", ["q0", s, z], ["d0"]),
                make_node(["d0", *extra_inputs], ["m"]),
                helper.make_node("QuantizeLinear", ["m", s1, z1], ["q1"]),
                helper.make_node("DequantizeLinear", ["q1", s1, z1], ["y"])]
    return b.model(in_shape, "y")


@SETTINGS
@given(dtype=dtypes, shape=st.sampled_from([(1, 3, 5, 6), (1, 4, 1, 1), (2, 7), (1, 2, 4, 3)]), data=st.data(),
       requantize=st.booleans(), seed=st.integers(0, 2**16))
def test_slice(dtype, shape, data, requantize, seed):
    """Slice with constant starts/ends/axes/steps: negative indices, bounds past either end
    (INT64 extremes), negative steps down to index 0, axes in any order, on NCHW values."""
    rank = len(shape)
    axes = data.draw(st.lists(st.integers(-rank, rank - 1), min_size=1, max_size=rank,
                              unique_by=lambda a: a % rank))
    starts, ends, steps = [], [], []
    for a in axes:
        d = shape[a % rank]
        step = data.draw(st.sampled_from([1, 1, 2, 3, -1, -2]))
        big = [2**63 - 1, -2**63]
        if step > 0:
            first = data.draw(st.integers(-d, d - 1))
            stop = data.draw(st.sampled_from([*range(first % d + 1, d + 1), *big[:1]]))
        else:
            first = data.draw(st.sampled_from([*range(-d, d), big[0]]))
            stop = data.draw(st.sampled_from([*range(-d - 1, (first % d if first < d else d - 1)), big[1]]))
        starts.append(first)
        ends.append(stop)
        steps.append(step)
    b = _Builder(dtype, np.random.default_rng(seed))
    extra = [b.init("starts", np.array(starts, np.int64)), b.init("ends", np.array(ends, np.int64)),
             b.init("axes", np.array(axes, np.int64)), b.init("steps", np.array(steps, np.int64))]
    try:
        model = _movement_model(b, shape, lambda i, o: helper.make_node("Slice", i, o), requantize, extra)
        _compare(model, seed)
    except MCUCError as e:  # an empty slice (the draw can make one): refused by name
        assert "is empty" in str(e), e


@SETTINGS
@given(dtype=dtypes, shape=st.sampled_from([(1, 5, 3, 4), (1, 6, 1, 1), (3, 5)]), data=st.data(),
       requantize=st.booleans(), seed=st.integers(0, 2**16))
def test_gather(dtype, shape, data, requantize, seed):
    """Gather with constant indices: a scalar, a list (negative ones count from the back)
    or a 2-D array, along any axis of NCHW values and 2-D ones."""
    rank = len(shape)
    axis = data.draw(st.integers(-rank, rank - 1))
    d = shape[axis % rank]
    index = st.integers(-d, d - 1)
    kind = data.draw(st.sampled_from(["scalar", "list", "matrix"]))
    if kind == "scalar":
        indices = np.array(data.draw(index), np.int64)
    elif kind == "list":
        indices = np.array(data.draw(st.lists(index, min_size=1, max_size=5)), np.int64)
    else:
        indices = np.array(data.draw(st.lists(index, min_size=4, max_size=4)), np.int64).reshape(2, 2)
    b = _Builder(dtype, np.random.default_rng(seed))
    extra = [b.init("indices", indices)]
    model = _movement_model(b, shape, lambda i, o: helper.make_node("Gather", i, o, axis=axis), requantize, extra)
    _compare(model, seed)


@pytest.mark.parametrize("op, block, mode, shape", [
    ("DepthToSpace", 2, "DCR", (1, 8, 3, 2)), ("DepthToSpace", 2, "CRD", (1, 8, 3, 2)),
    ("DepthToSpace", 3, "CRD", (1, 18, 2, 2)), ("SpaceToDepth", 2, None, (1, 3, 4, 6)),
    ("SpaceToDepth", 3, None, (1, 2, 3, 3))])
@pytest.mark.parametrize("requantize", [False, True])
def test_depth_to_space_and_back(op, block, mode, shape, requantize):
    """DepthToSpace in both channel orders (CRD through a channel gather into DCR's) and
    SpaceToDepth, as onnxruntime computes them on NCHW tensors."""
    b = _Builder("int8", np.random.default_rng(block))
    attrs = dict(blocksize=block, **({"mode": mode} if mode else {}))
    model = _movement_model(b, shape, lambda i, o: helper.make_node(op, i, o, **attrs), requantize)
    _compare(model, block)


def test_movement_ops_on_every_backend():
    """Slice, Gather, DepthToSpace (CRD), SpaceToDepth, Abs, Min and Split in one QDQ
    network, byte for byte with onnxruntime on the compiled backends too."""
    import shutil

    from mcuc.api import verify

    b = _Builder("int8", np.random.default_rng(4))
    s, z = b.qparams(0.05)
    s1, z1 = b.qparams(0.04)

    def qdq(name, src, scale_zero):
        b.nodes.extend([helper.make_node("QuantizeLinear", [src, *scale_zero], [name + "_q"]),
                        helper.make_node("DequantizeLinear", [name + "_q", *scale_zero], [name])])
        return name

    x = qdq("d0", "x", (s, z))
    b.nodes.append(helper.make_node("Slice", [x, b.init("st", np.array([1, -1], np.int64)),
                                              b.init("en", np.array([7, -2**63], np.int64)),
                                              b.init("ax", np.array([2, 3], np.int64)),
                                              b.init("sp", np.array([1, -1], np.int64))], ["sl"]))
    x = qdq("d1", "sl", (s, z))
    b.nodes.append(helper.make_node("SpaceToDepth", [x], ["sd"], blocksize=2))
    x = qdq("d2", "sd", (s1, z1))
    b.nodes.append(helper.make_node("Gather", [x, b.init("ix", np.array([3, 0, -1, 5, 2, 1, 4, 6], np.int64))],
                                    ["g"], axis=1))
    x = qdq("d3", "g", (s1, z1))
    b.nodes.append(helper.make_node("DepthToSpace", [x], ["ds"], blocksize=2, mode="CRD"))
    x = qdq("d4", "ds", (s, z))
    b.nodes.append(helper.make_node("Abs", [x], ["ab"]))
    a = qdq("d5", "ab", (s1, z1))
    b.nodes.append(helper.make_node("Min", [x, a], ["mn"]))
    x = qdq("d6", "mn", (s, z))
    b.nodes.append(helper.make_node("Split", [x], ["p0", "p1"], axis=3))
    model = b.model((1, 2, 8, 8), [qdq("y0", "p0", (s, z)), qdq("y1", "p1", (s1, z1))])
    _compare(model, 4)
    backends = ["reference", "llvm", *(["c-host"] if shutil.which("gcc") else []),
                *(["cortex-m4"] if shutil.which("arm-none-eabi-gcc") else [])]
    report = verify(model, backends, samples=2, seed=5)
    assert report["backends_checked"] == backends
    assert all(v["bit_exact"] for v in report["backends"].values()), report


@SETTINGS
@given(dtype=dtypes, op=st.sampled_from(["Max", "Min"]), operands=st.sampled_from(["two", "three", "constant", "one"]),
       scales=st.lists(st.floats(0.01, 0.2), min_size=4, max_size=4), same=st.booleans(), seed=st.integers(0, 2**16))
def test_max_and_min(dtype, op, operands, scales, same, seed):
    """Max and Min (DQ -> float op -> Q in onnxruntime) of activations with their own
    parameters, of an activation and a one-value constant, variadic and unary."""
    b = _Builder(dtype, np.random.default_rng(seed))
    if same:
        scales = [scales[0]] * 4
    first = b.qdq("x", scales[0])
    names = [first]
    if operands in ("two", "three"):  # other activations: quantized functions of the first
        b.nodes.append(helper.make_node("Neg", [first], ["xn"]))
        names.append(b.qdq("xn", scales[1]))
    if operands == "three":
        b.nodes.append(helper.make_node("Abs", [first], ["xa"]))
        names.append(b.qdq("xa", scales[2]))
    if operands == "constant":
        s, z = b.qparams(scales[1])
        raw = b.init("c_raw", (np.int8 if dtype == "int8" else np.uint8)(b.rng.integers(b.lo, b.hi + 1)))
        b.nodes.append(helper.make_node("DequantizeLinear", [raw, s, z], ["c_dq"]))
        names.append("c_dq")
    b.nodes.append(helper.make_node(op, names, ["m"]))
    _compare(b.model((1, 3, 4, 5), b.qdq("m", scales[3])), seed)


@SETTINGS
@given(dtype=dtypes, shape=st.sampled_from([(1, 6, 4, 3), (2, 8), (1, 4, 6, 2)]), data=st.data(),
       sizes_given=st.sampled_from(["split", "equal", "num_outputs"]), seed=st.integers(0, 2**16))
def test_split(dtype, shape, data, sizes_given, seed):
    """Split along any axis (NCHW values too): sizes from the split input, equal parts, or
    opset 18's num_outputs (the last part smaller); each output with its own
    QuantizeLinear, the same parameters as the input or others."""
    rank = len(shape)
    axis = data.draw(st.integers(-rank, rank - 1))
    d = shape[axis % rank]
    b = _Builder(dtype, np.random.default_rng(seed))
    inputs, attrs, opset = [b.qdq("x", 0.05)], {"axis": axis}, 17
    if sizes_given == "split":
        cuts = sorted(data.draw(st.sets(st.integers(1, d - 1), max_size=3))) if d > 1 else []
        sizes = [hi - lo for lo, hi in zip([0, *cuts], [*cuts, d])]
        inputs.append(b.init("split", np.array(sizes, np.int64)))
    elif sizes_given == "equal":
        parts = data.draw(st.sampled_from([p for p in (1, 2, 3, 4) if d % p == 0]))
        sizes = [d // parts] * parts
    else:
        parts = data.draw(st.integers(1, min(d, 4)))
        chunk = -(-d // parts)
        if chunk * (parts - 1) >= d:  # onnxruntime refuses a split that leaves the last part empty
            parts = -(-d // chunk)
        sizes = [min(chunk, d - k * chunk) for k in range(parts)]
        attrs["num_outputs"], opset = parts, 18
    names = [f"part{k}" for k in range(len(sizes))]
    b.nodes.append(helper.make_node("Split", inputs, names, **attrs))
    outs = [b.qdq(n, data.draw(st.sampled_from([0.05, 0.03]))) for n in names]
    _compare(b.model(shape, outs, opset), seed)
