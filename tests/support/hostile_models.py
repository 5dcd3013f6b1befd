"""Small, deliberately odd models for the hostile-input tests (tests/*/test_hostile_*.py,
tests/compiler/test_cli_misuse.py): QDQ ONNX graphs built with onnx.helper, and one-layer
TFLite models through tflite_builder, each with a knob that makes it broken."""
from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from tests.support.tflite_builder import ModelBuilder


def onnx_model(nodes, inits, inputs, outputs, opset: int = 17, ir_version: int = 8):
    graph = helper.make_graph(nodes, "g", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir_version
    return model


def qdq_conv(channels: int = 4, out_channels: int = 4, size: int = 6, kernel: int = 3, group: int = 1,
             bias: np.ndarray | None = None, bias_scale: float | None = None, bias_zero_point: int = 0,
             x_scale: float = 0.05, w_scale: float = 0.02, y_scale: float = 0.1, seed: int = 0,
             conv_attrs: dict | None = None, name: str = "conv"):
    """float x -> Q -> DQ -> Conv (int8 weights, int32 bias through its own DQ) -> Q -> DQ -> y.
    `bias_scale` None: x_scale * w_scale, what quantize_static writes."""
    rng = np.random.default_rng(seed)
    w = rng.integers(-127, 128, size=(out_channels, channels // group, kernel, kernel)).astype(np.int8)
    if bias is None:
        bias = rng.integers(-2000, 2001, size=out_channels).astype(np.int32)
    if bias_scale is None:
        bias_scale = np.float32(x_scale) * np.asarray(w_scale, np.float32)
    inits = [numpy_helper.from_array(np.float32(x_scale), "xs"), numpy_helper.from_array(np.int8(0), "xz"),
             numpy_helper.from_array(np.float32(y_scale), "ys"), numpy_helper.from_array(np.int8(3), "yz"),
             numpy_helper.from_array(w, "w_q"), numpy_helper.from_array(np.asarray(w_scale, np.float32), "ws"),
             numpy_helper.from_array(np.zeros(np.shape(w_scale), np.int8), "wz"),
             numpy_helper.from_array(np.asarray(bias, np.int32), "b_q"),
             numpy_helper.from_array(np.asarray(bias_scale, np.float32), "bs"),
             numpy_helper.from_array(np.full(np.shape(bias_scale), bias_zero_point, np.int32), "bz")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w_q", "ws", "wz"], ["wd"], axis=0),
             helper.make_node("DequantizeLinear", ["b_q", "bs", "bz"], ["bd"], name="bias_dq", axis=0),
             helper.make_node("Conv", ["xd", "wd", "bd"], ["c"], name=name, group=group,
                              kernel_shape=[kernel, kernel], **(conv_attrs or {})),
             helper.make_node("QuantizeLinear", ["c", "ys", "yz"], ["cq"]),
             helper.make_node("DequantizeLinear", ["cq", "ys", "yz"], ["y"])]
    return onnx_model(nodes, inits, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, size, size])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])


def qdq_avgpool(channels: int = 3, size: int = 8, kernel: int = 2, stride: int = 2, scale: float = 0.05):
    """float x -> Q -> DQ -> AveragePool -> Q -> DQ -> y, one quantization throughout."""
    inits = [numpy_helper.from_array(np.float32(scale), "s"), numpy_helper.from_array(np.int8(0), "z")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
             helper.make_node("AveragePool", ["xd"], ["p"], kernel_shape=[kernel, kernel], strides=[stride, stride]),
             helper.make_node("QuantizeLinear", ["p", "s", "z"], ["pq"]),
             helper.make_node("DequantizeLinear", ["pq", "s", "z"], ["y"])]
    return onnx_model(nodes, inits, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, size, size])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])


def tflite_conv(kind: str = "CONV_2D", channels: int = 3, out_channels: int = 4, size: int = 5, kernel: int = 3,
                bias_dtype: str = "int32", bias=None, x_scale=0.05, w_scale=0.02, y_scale=0.1,
                x_zero_point=None, seed: int = 0, **options) -> bytes:
    """A one-layer int8 CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED model with an odd
    knob: the bias tensor's type, a scale, the options."""
    rng = np.random.default_rng(seed)
    mb = ModelBuilder()
    if kind == "FULLY_CONNECTED":
        x = mb.tensor("x", (1, channels), scale=x_scale, zero_point=x_zero_point or 0)
        w_shape, y_shape = (out_channels, channels), (1, out_channels)
    else:
        x = mb.tensor("x", (1, size, size, channels), scale=x_scale, zero_point=x_zero_point or 0)
        out = size - kernel + 1
        if kind == "DEPTHWISE_CONV_2D":
            w_shape = (1, kernel, kernel, out_channels)
        else:
            w_shape = (out_channels, kernel, kernel, channels)
        y_shape = (1, out, out, out_channels)
    w_data = rng.integers(-127, 128, size=w_shape).astype(np.int8)
    w = mb.tensor("w", w_shape, scale=w_scale, zero_point=0, data=w_data)
    b_values = np.asarray(bias if bias is not None else rng.integers(-500, 501, size=out_channels), np.int32)
    if bias_dtype == "float32":  # the same 4-byte words, declared FLOAT32
        b = mb.tensor("b", (out_channels,), "float32", data=b_values.view(np.float32))
    else:
        b = mb.tensor("b", (out_channels,), bias_dtype, data=b_values)
    y = mb.tensor("y", y_shape, scale=y_scale, zero_point=1)
    mb.op(kind, [x, w, b], [y], **options)
    return mb.build([x], [y])


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """`mcuc ARGV` in this process: (exit code, stdout, stderr). Anything but an MCUCError
    escapes main() and fails the test with its traceback."""
    from mcuc.cli import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def refused(capsys, *argv: str) -> str:
    """Run `mcuc ARGV`, require the clean refusal (exit 2, one line `mcuc: error: ...`),
    and return the message."""
    code, out, err = run_cli(capsys, *argv)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("mcuc: error: "), (code, err)
    return lines[0].removeprefix("mcuc: error: ")


# Names with everything that could escape a C comment or literal, or break a build; the
# identifier INJECTED must never appear as code in a generated file.
INJECTED = "mcuc_injected"
HOSTILE_NAMES: list[str | bytes] = [
    f"y */ int {INJECTED} = 42; //",
    "/* opens a comment",
    f"line\nbreak\r\n#define {INJECTED} 1",
    "quote \" and ' and \\ backslash",
    "# pragma once",
    f"tri??/\nint {INJECTED}; ??= ??( ??!",
    "caf\u00e9 \u2603 \U0001F600 \u202e",
    "nul\x00byte \x1b[31m",
    "L" * 3000 + f"*/ int {INJECTED};",
    "ends with a backslash \\",
    b"\xff\xfe not utf-8 \xc3",
]


def renamed_tflite(data: bytes) -> bytes:
    """`data` with every tensor, subgraph and signature named from HOSTILE_NAMES (tensor
    i gets name i mod the list, plus its index so names stay distinct)."""
    from tests.support.tflite_builder import pack, unpack

    def name(i: int) -> bytes:
        n = HOSTILE_NAMES[i % len(HOSTILE_NAMES)]
        return (n if isinstance(n, bytes) else n.encode("utf-8")) + f" {i}".encode()

    m = unpack(data)
    for sg in m.subgraphs:
        sg.name = name(0)
        for i, t in enumerate(sg.tensors):
            t.name = name(i)
    for sig in m.signatureDefs or []:
        sig.signatureKey = name(1)
        for i, t in enumerate([*(sig.inputs or []), *(sig.outputs or [])]):
            t.name = name(i + 2)
    m.description = name(3)
    return pack(m)
