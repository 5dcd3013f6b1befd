"""The ONNX frontend's op builders: one function per ONNX op type (QDQ group or operator-
oriented node, already resolved to quantized operands) that appends the IR ops computing
what onnxruntime's kernel for it computes, and returns the resulting Value."""
from __future__ import annotations

import numpy as np

from mcuc.ir.numerics import ORT_REDUCE_MEAN, OrtFloat, OrtInteger
from mcuc.ir.ops import kinds
from mcuc.ir.ops.common import Padding2D
from mcuc.ir.ops.add import AddAttrs
from mcuc.ir.ops.concatenation import ConcatAttrs
from mcuc.ir.ops.conv2d import Conv2DAttrs
from mcuc.ir.ops.depthwise_conv2d import DepthwiseConv2DAttrs
from mcuc.ir.ops.fully_connected import FullyConnectedAttrs
from mcuc.ir.ops.lookup_table import LookupTableAttrs
from mcuc.ir.ops.mean import MeanAttrs
from mcuc.ir.ops.mul import MulAttrs
from mcuc.ir.ops.pad import PadAttrs
from mcuc.ir.ops.pool2d import Pool2DAttrs
from mcuc.ir.ops.reshape import ReshapeAttrs
from mcuc.ir.ops.transpose import TransposeAttrs
from mcuc.ir.ort_numerics import (build_lookup_table, hard_swish_f32, leaky_relu_f32,
                                  logistic_f32, quantize_linear)
from mcuc.ir.tensor import Quantization, Tensor, quoted, short_list

from .onnx_context import BuildContext
from .onnx_values import (INT_TYPES, NCHW_AXIS_IN_NHWC, NCHW_TO_NHWC, NHWC_TO_NCHW, UINT8_OFFSET, QInput, QParams,
                          Value, float_group_error_advice, mixed_float_group, ort_on_uint8, runs_in_float,
                          u8s8_pairs_saturate)



def _window_attrs(imp: BuildContext, node, in_hw: tuple[int, int], kernel: tuple[int, int]):
    a = imp.attrs(node)
    strides = tuple(int(s) for s in a.get("strides", (1, 1)))
    dilations = tuple(int(d) for d in a.get("dilations", (1, 1)))
    if len(strides) != 2 or len(dilations) != 2:
        raise imp.error(node, "only 2-D windows (4-D NCHW tensors) are supported")
    if min(strides) < 1 or min(dilations) < 1:
        raise imp.error(node, f"strides {list(strides)} and dilations {list(dilations)} must be positive")
    if min(kernel) < 1:
        raise imp.error(node, f"kernel {list(kernel)} must be at least 1x1")
    auto_pad = a.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode(errors="replace") if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad in ("NOTSET", ""):
        p = [int(v) for v in a.get("pads", (0, 0, 0, 0))]
        if len(p) != 4 or min(p) < 0:
            raise imp.error(node, f"pads {short_list(p)} must be 4 non-negative values [top, left, bottom, right]")
        padding = Padding2D(top=p[0], left=p[1], bottom=p[2], right=p[3])
    elif auto_pad == "VALID":
        padding = Padding2D()
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for size, k, s, d in zip(in_hw, kernel, strides, dilations):
            out = -(-size // s)
            total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
            small, big = total // 2, total - total // 2
            pads.append((small, big) if auto_pad == "SAME_UPPER" else (big, small))
        padding = Padding2D(top=pads[0][0], bottom=pads[0][1], left=pads[1][0], right=pads[1][1])
    else:
        raise imp.error(node, f"auto_pad {quoted(auto_pad)} is not supported")
    if int(a.get("ceil_mode", 0)):
        raise imp.error(node, "ceil_mode=1 is not supported; export with ceil_mode=0")
    return strides, dilations, padding


def _axis(imp: BuildContext, node, value: int, rank: int, what: str = "axis") -> int:
    """An ONNX axis in [-rank, rank) as a non-negative one, else an error."""
    if not -rank <= value < rank:
        raise imp.error(node, f"{what} {value} is out of range for a rank-{rank} tensor")
    return value % rank


def _build_conv(imp: BuildContext, node, ins, out: QParams, out_name: str) -> Value:
    xq, wq = ins[0], ins[1]
    bq = ins[2] if len(ins) > 2 else None
    x = imp.activation(node, xq)
    if len(x.tensor.shape) != 4 or not x.nchw:
        raise imp.error(node, "only 2-D convolutions of 4-D NCHW tensors are supported")
    w, wquant = imp.weights(node, wq, 0)
    if w.ndim != 4 or min(w.shape) < 1:
        raise imp.error(node, f"weights of shape {list(w.shape)} are not 4-D [M, C/group, kH, kW] without an "
                               "empty dimension")
    group = int(imp.attrs(node).get("group", 1))
    kernel_shape = imp.attrs(node).get("kernel_shape")
    if kernel_shape is not None and tuple(int(k) for k in kernel_shape) != tuple(w.shape[2:]):
        raise imp.error(node, f"kernel_shape {short_list(kernel_shape)} disagrees with the weights' "
                               f"{w.shape[2]}x{w.shape[3]} kernel")
    strides, dilations, padding = _window_attrs(imp, node, x.tensor.shape[1:3], w.shape[2:])
    cin, m = x.tensor.shape[3], w.shape[0]
    if group < 1 or cin % group or m % group or w.shape[1] * group != cin:
        raise imp.error(node, f"group {group} does not fit {cin} input channels, {m} output channels and weights "
                               f"of shape {list(w.shape)} (C must be group x {w.shape[1]}, M a multiple of group)")
    outq = out.ir_quant(0)
    # Every conv but onnxruntime's depthwise kernel (one output per channel) is a u8s8 GEMM.
    u8s8 = u8s8_pairs_saturate(imp.numerics, xq.qparams, out)
    # (a bias quantized otherwise than x_scale * w_scale keeps onnxruntime from fusing the group)
    in_float = runs_in_float(node, imp.numerics, xq.qparams, out) or imp.bias_in_float(node, bq, xq, wquant, m)
    bias = imp.bias(node, bq, xq, wquant, m, in_float)
    on_uint8 = ort_on_uint8(xq.qparams, out)
    if group > 1 and group == cin and w.shape[1] == 1:
        weights = Tensor(imp.unique(node.name + "_weights"), (1, *w.shape[2:], m), "int8",
                         Quantization(wquant.scale, wquant.zero_point, 3), w.transpose(1, 2, 3, 0))
        attrs = DepthwiseConv2DAttrs(stride=strides, dilation=dilations, padding=padding,
                                     depth_multiplier=m // cin,
                                     numerics=OrtFloat() if in_float else OrtInteger(on_uint8, u8s8 and m > cin))
        kind = kinds.DEPTHWISE_CONV_2D
    else:
        weights = Tensor(imp.unique(node.name + "_weights"), (m, *w.shape[2:], w.shape[1]), "int8",
                         wquant, w.transpose(0, 2, 3, 1))
        attrs = Conv2DAttrs(stride=strides, dilation=dilations, padding=padding,
                            numerics=OrtFloat(threads=imp.numerics.threads) if in_float else OrtInteger(on_uint8, u8s8))
        kind = kinds.CONV_2D
    inputs = [x.tensor, weights] + ([bias] if bias is not None else [])
    y = imp.emit(kind, inputs, attrs, out_name, "int8", outq, node.name)
    return Value(y, out, nchw=True)


def _build_fc(imp: BuildContext, node, x: Value, xq: QInput, w: np.ndarray, wquant: Quantization,
              bq: QInput | None, out: QParams, out_name: str, transposed_b: bool = False) -> Value:
    """FULLY_CONNECTED with weights [units, depth]."""
    if x.nchw:
        raise imp.error(node, "a matrix product of a 4-D tensor is not supported; Flatten it first")
    weights = Tensor(imp.unique(node.name + "_weights"), w.shape, "int8", wquant, w)
    keep = len(x.tensor.shape) > 2
    in_float = runs_in_float(node, imp.numerics, xq.qparams, out) or imp.bias_in_float(node, bq, xq, wquant, w.shape[0])
    if in_float:
        numerics = OrtFloat(gemm_transposed_b=transposed_b)
    else:
        numerics = OrtInteger(ort_on_uint8(xq.qparams, out), u8s8_pairs_saturate(imp.numerics, xq.qparams, out))
    bias = imp.bias(node, bq, xq, wquant, w.shape[0], in_float)
    attrs = FullyConnectedAttrs(keep_num_dims=keep, numerics=numerics)
    inputs = [x.tensor, weights] + ([bias] if bias is not None else [])
    y = imp.emit(kinds.FULLY_CONNECTED, inputs, attrs, out_name, "int8", out.ir_quant(0), node.name)
    return Value(y, out)


def _build_gemm(imp: BuildContext, node, ins, out: QParams, out_name: str) -> Value:
    a = imp.attrs(node)
    if int(a.get("transA", 0)) or float(a.get("alpha", 1.0)) != 1.0 or float(a.get("beta", 1.0)) != 1.0:
        raise imp.error(node, "only transA=0, alpha=1, beta=1 are supported")
    x = imp.activation(node, ins[0])
    trans_b = int(a.get("transB", 0))
    w, wquant = imp.weights(node, ins[1], 0 if trans_b else 1)
    w = w if trans_b else w.T
    bq = ins[2] if len(ins) > 2 else None
    if bq is not None and bq.is_constant and np.asarray(bq.data).size == 1 and w.shape[0] != 1:
        bq = QInput(bq.qparams, data=np.full(w.shape[0], np.asarray(bq.data).reshape(()), np.int32))
    return _build_fc(imp, node, x, ins[0], np.ascontiguousarray(w), wquant, bq, out, out_name, bool(trans_b))


def _build_matmul(imp: BuildContext, node, ins, out: QParams, out_name: str) -> Value:
    x = imp.activation(node, ins[0])
    if not ins[1].is_constant:
        raise imp.error(node, "the second operand is computed at run time; mcuc needs constant weights")
    w, wquant = imp.weights(node, ins[1], 1)
    if w.ndim != 2:
        raise imp.error(node, f"weights of shape {list(w.shape)} are not 2-D")
    return _build_fc(imp, node, x, ins[0], np.ascontiguousarray(w.T), wquant, None, out, out_name)


def _build_add(imp: BuildContext, node, ins, out: QParams, out_name: str) -> Value:
    """Add and Mul (QLinearAdd / QLinearMul): two operands, one may be a one-element constant."""
    offsets = {q.qparams.dtype for q in ins} | {out.dtype}
    if len(offsets) != 1:
        raise imp.error(node, "inputs and output mix int8 and uint8")
    operands, nchw = [], False
    for q in ins:
        if q.is_constant:
            if q.qparams.dtype not in INT_TYPES or np.asarray(q.data).size != 1:
                raise imp.error(node, "a constant operand must be a single quantized value")
            data = np.asarray(q.data).astype(np.int64).reshape(1) - (UINT8_OFFSET if q.qparams.dtype == "uint8" else 0)
            operands.append(Tensor(imp.unique(node.name + "_const"), (1,), "int8", q.qparams.ir_quant(0), data))
        else:
            v = imp.activation(node, q)
            nchw = nchw or v.nchw
            operands.append(v.tensor)
    # QLinearAdd's and QLinearMul's float rounding sees the values onnxruntime computes on:
    # uint8 ones (the model's, or int8 QDQ ones it converted) are 128 higher. An int8 QDQ
    # group whose tensors were converted only in part is not fused: onnxruntime adds in float.
    activations = [q.qparams for q in ins if not q.is_constant] + [out]
    on_uint8 = ort_on_uint8(*activations)
    # (An int8 group with no converted tensor is still fused: QLinearAdd/Mul have int8 kernels.)
    numerics = OrtFloat() if mixed_float_group(node, imp.numerics, *activations) else OrtInteger(on_uint8)
    if node.op_type.endswith("Mul"):
        kind, attrs = kinds.MUL, MulAttrs(numerics=numerics)
    else:
        kind, attrs = kinds.ADD, AddAttrs(numerics=numerics)
    y = imp.emit(kind, operands, attrs, out_name, "int8", out.ir_quant(0), node.name)
    return Value(y, out, nchw=nchw)


def _build_gap(imp: BuildContext, node, ins, out: QParams, out_name: str) -> Value:
    x = imp.activation(node, ins[0])
    if not x.nchw:
        raise imp.error(node, "only 4-D NCHW inputs are supported")
    # An int8 QDQ group converted to uint8 in part is not fused: onnxruntime averages in float.
    in_float = mixed_float_group(node, imp.numerics, ins[0].qparams, out)
    numerics = OrtFloat() if in_float else OrtInteger(ort_on_uint8(ins[0].qparams, out))
    y = imp.emit(kinds.MEAN, [x.tensor], MeanAttrs(axes=(1, 2), keep_dims=True, numerics=numerics),
                 out_name, "int8", out.ir_quant(0), node.name)
    return Value(y, out, nchw=True)


def _build_reduce_mean(imp: BuildContext, node, ins, out: QParams, out_name: str) -> Value:
    """ReduceMean over H and W of a 4-D NCHW tensor (what torchvision's `x.mean([2, 3])`
    exports), axes as an attribute (opset < 18) or a constant input (opset 18+). onnxruntime
    has no quantized ReduceMean: DQ -> ReduceMean -> Q runs its float kernel, whose Eigen
    summation order the MEAN follows (OrtFloat.mean_kernel, ir/ops/ort_float.py)."""
    x = imp.activation(node, ins[0])
    a = imp.attrs(node)
    if len(node.input) > 1 and node.input[1]:
        axes = [int(v) for v in np.asarray(imp.constant(node, node.input[1], "axes")).reshape(-1)]
    else:
        axes = [int(v) for v in a.get("axes", [])]
    if not axes:
        noop = int(a.get("noop_with_empty_axes", 0))
        raise imp.error(node, f"no axes (noop_with_empty_axes={noop}: "
                               f"{'the identity' if noop else 'a mean over every axis'}) is not supported; "
                               "give axes [2, 3] (the mean over H and W of an NCHW tensor)")
    if not x.nchw or len(x.tensor.shape) != 4:
        raise imp.error(node, f"axes {axes} of a {len(x.tensor.shape)}-D tensor are not supported; mcuc computes "
                               "ReduceMean over H and W (axes [2, 3]) of a 4-D NCHW tensor")
    if any(not -4 <= ax < 4 for ax in axes) or sorted({ax % 4 for ax in axes}) != [2, 3] or len(axes) != 2:
        raise imp.error(node, f"axes {axes} are not supported; mcuc computes ReduceMean over H and W "
                               "(axes [2, 3] or [-2, -1]) of a 4-D NCHW tensor")
    keep = bool(int(a.get("keepdims", 1)))
    attrs = MeanAttrs(axes=(1, 2), keep_dims=keep, numerics=OrtFloat(mean_kernel=ORT_REDUCE_MEAN))
    y = imp.emit(kinds.MEAN, [x.tensor], attrs, out_name, "int8", out.ir_quant(0), node.name)
    # keepdims: [N, 1, 1, C] NHWC is the NCHW [N, C, 1, 1]; else [N, C] as in the model.
    return Value(y, out, nchw=keep)


def _pool_window(imp: BuildContext, node, x: Value):
    """(kernel, strides, padding) of a MaxPool/AveragePool: 2-D windows over a 4-D NCHW
    tensor, without dilation."""
    if "kernel_shape" not in imp.attrs(node):
        raise imp.error(node, "kernel_shape is missing")
    kernel = tuple(int(k) for k in imp.attrs(node)["kernel_shape"])
    if not x.nchw or len(kernel) != 2:
        raise imp.error(node, "only 2-D pooling of 4-D NCHW tensors is supported")
    strides, dilations, padding = _window_attrs(imp, node, x.tensor.shape[1:3], kernel)
    if dilations != (1, 1):
        raise imp.error(node, "dilated pooling is not supported")
    return kernel, strides, padding


def _build_maxpool(imp: BuildContext, node, ins, out: QParams, out_name: str) -> Value:
    x = imp.activation(node, ins[0])
    if int(imp.attrs(node).get("storage_order", 0)) or len(node.output) > 1 and node.output[1]:
        raise imp.error(node, "the Indices output and storage_order are not supported")
    kernel, strides, padding = _pool_window(imp, node, x)
    y = imp.emit(kinds.MAX_POOL_2D, [x.tensor], Pool2DAttrs(filter=kernel, stride=strides, padding=padding),
                  out_name, "int8", x.tensor.quant, node.name)
    return Value(y, out, nchw=True)


def _build_avgpool(imp: BuildContext, node, ins, out: QParams, out_name: str) -> Value:
    x = imp.activation(node, ins[0])
    a = imp.attrs(node)
    if int(a.get("channels_last", 0)):
        raise imp.error(node, "channels_last=1 is not supported; export NCHW")
    if out.dtype != ins[0].qparams.dtype:
        raise imp.error(node, "input and output mix int8 and uint8")
    kernel, strides, padding = _pool_window(imp, node, x)
    # A QDQ group's int8 may run as uint8 in onnxruntime (OnnxNumerics.qdq_int8_as_uint8).
    # (QDQ int8 Adds are left alone: on such hosts onnxruntime mostly keeps them in float,
    # the conversion breaking their fusion, and the int8-domain formula matches those.)
    on_uint8 = ort_on_uint8(ins[0].qparams, out)
    # An int8 QDQ group converted to uint8 in part is not fused: onnxruntime pools in float,
    # exactly like QLinearAveragePool's mean when its NCHWc kernel runs (whole channel blocks).
    in_float = mixed_float_group(node, imp.numerics, ins[0].qparams, out)
    block = imp.numerics.nchwc_block
    if in_float and x.tensor.shape[3] % block:
        raise imp.error(node, f"{x.tensor.shape[3]} channels are not a multiple of {block} (MLAS's NCHWc "
                               f"block): {float_group_error_advice('AveragePool')}")
    attrs = Pool2DAttrs(filter=kernel, stride=strides, padding=padding,
                        numerics=OrtFloat() if in_float else OrtInteger(on_uint8),
                        count_include_pad=bool(int(a.get("count_include_pad", 0))))
    y = imp.emit(kinds.AVERAGE_POOL_2D, [x.tensor], attrs, out_name, "int8", out.ir_quant(0), node.name)
    return Value(y, out, nchw=True)


def _build_reshape(imp: BuildContext, node, ins, out: QParams, out_name: str) -> Value:
    """Reshape, Flatten, Squeeze, Unsqueeze: the ONNX (NCHW) element order is kept. A 4-D
    value with more than one pixel goes back to NCHW first, and a 4-D result with more
    than one pixel is moved to NHWC after; [N, C, 1, 1] needs neither."""
    x = imp.activation(node, ins[0])
    t = x.tensor
    onnx_shape = x.onnx_shape
    if node.op_type == "Flatten":
        axis = _axis(imp, node, int(imp.attrs(node).get("axis", 1)), len(onnx_shape) + 1)
        target = (int(np.prod(onnx_shape[:axis], dtype=np.int64)), int(np.prod(onnx_shape[axis:], dtype=np.int64)))
    elif node.op_type in ("Squeeze", "Unsqueeze"):
        target = _squeeze_target(imp, node, onnx_shape)
    else:
        target = _reshape_target(imp, node, onnx_shape)
    if x.nchw and t.shape[1] * t.shape[2] != 1:
        t = imp.emit(kinds.TRANSPOSE, [t], TransposeAttrs(NHWC_TO_NCHW), out_name + "_nchw", "int8", t.quant, node.name)
    if len(target) != 4:
        y = imp.emit(kinds.RESHAPE, [t], ReshapeAttrs(shape=tuple(target)), out_name, "int8", t.quant, node.name)
        return Value(y, out, nchw=False)
    n, c, h, w = target
    if h * w == 1:
        y = imp.emit(kinds.RESHAPE, [t], ReshapeAttrs(shape=(n, 1, 1, c)), out_name, "int8", t.quant, node.name)
        return Value(y, out, nchw=True)
    y = imp.emit(kinds.RESHAPE, [t], ReshapeAttrs(shape=tuple(target)), out_name + "_nchw_out", "int8", t.quant,
                  node.name)
    y = imp.emit(kinds.TRANSPOSE, [y], TransposeAttrs(NCHW_TO_NHWC), out_name, "int8", t.quant, node.name)
    return Value(y, out, nchw=True)


def _squeeze_target(imp: BuildContext, node, in_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Squeeze / Unsqueeze (opset 13: axes as a constant input)."""
    axes_given = len(node.input) > 1 and node.input[1]
    axes = [int(a) for a in np.asarray(imp.constant(node, node.input[1], "axes")).reshape(-1)] if axes_given else None
    if node.op_type == "Squeeze":
        rank = len(in_shape)
        drop = ({_axis(imp, node, a, rank) for a in axes} if axes is not None
                else {i for i, d in enumerate(in_shape) if d == 1})
        if any(in_shape[a] != 1 for a in drop):
            raise imp.error(node, f"axes {short_list(sorted(drop))} of shape {short_list(in_shape)} are not all 1")
        return tuple(d for i, d in enumerate(in_shape) if i not in drop)
    if axes is None:
        raise imp.error(node, "Unsqueeze needs its axes input")
    rank = len(in_shape) + len(axes)
    insert = {_axis(imp, node, a, rank) for a in axes}
    dims = iter(in_shape)
    return tuple(1 if i in insert else next(dims) for i in range(rank))


def table_value(imp: BuildContext, node, x: Value, function, label: str, out: QParams, out_name: str) -> Value:
    """A LOOKUP_TABLE op computing `function` (float32 -> float32, as onnxruntime does)
    between x's quantization and `out`."""
    xq, oq = x.tensor.quant, out.ir_quant(0)
    table = build_lookup_table(function, float(xq.scale[0]), xq.scalar_zero_point,
                               float(oq.scale[0]), oq.scalar_zero_point)
    y = imp.emit(kinds.LOOKUP_TABLE, [x.tensor], LookupTableAttrs(table=table, function=label), out_name, "int8", oq,
                  node.name)
    return Value(y, out, nchw=x.nchw)


def _build_elementwise(imp: BuildContext, node, ins, out: QParams, out_name: str) -> Value:
    """Sigmoid, LeakyRelu (QLinearSigmoid / QLinearLeakyRelu tables), HardSwish, Relu, Clip,
    Abs, Neg (DequantizeLinear -> float op -> QuantizeLinear): one LOOKUP_TABLE."""
    x = imp.activation(node, ins[0])
    if ins[0].qparams.dtype != out.dtype:
        raise imp.error(node, "input and output mix int8 and uint8")
    kind = node.op_type.removeprefix("QLinear")
    if kind == "Sigmoid":
        function = logistic_f32
    elif kind == "HardSwish":
        function = hard_swish_f32
    elif kind == "LeakyRelu":
        alpha = float(imp.attrs(node).get("alpha", 0.01))
        function = lambda r: leaky_relu_f32(r, alpha)  # noqa: E731
    elif kind == "Relu":
        function = lambda r: np.maximum(r, np.float32(0.0))  # noqa: E731
    elif kind == "Abs":
        function = np.abs
    elif kind == "Neg":
        function = np.negative
    elif kind == "Clip":
        lo = float(imp.constant(node, node.input[1], "Clip bound")) if len(node.input) > 1 and node.input[1] else -np.inf
        hi = float(imp.constant(node, node.input[2], "Clip bound")) if len(node.input) > 2 and node.input[2] else np.inf
        function = lambda r: np.minimum(np.maximum(r, np.float32(lo)), np.float32(hi))  # noqa: E731
    else:
        raise imp.error(node, f"no table rule for {node.op_type}")
    return table_value(imp, node, x, function, kind, out, out_name)


def _build_transpose(imp: BuildContext, node, ins, out: QParams, out_name: str) -> Value:
    """Transpose of the ONNX tensor. A 4-D NCHW value is NHWC in the IR, so the ONNX perm
    is composed with that layout; NCHW -> NHWC (the usual edge transpose) costs nothing."""
    x = imp.activation(node, ins[0])
    rank = len(x.tensor.shape)
    perm = tuple(int(p) for p in imp.attrs(node).get("perm", tuple(reversed(range(rank)))))
    if sorted(perm) != list(range(rank)):
        raise imp.error(node, f"perm {short_list(perm)} is not a permutation of the {rank} axes")
    ir_perm = tuple(NHWC_TO_NCHW[p] for p in perm) if x.nchw else perm
    if ir_perm == tuple(range(rank)):
        return Value(x.tensor, out, nchw=False)
    y = imp.emit(kinds.TRANSPOSE, [x.tensor], TransposeAttrs(ir_perm), out_name, "int8", x.tensor.quant, node.name)
    return Value(y, out, nchw=False)


def _build_pad(imp: BuildContext, node, ins, out: QParams, out_name: str) -> Value:
    """Constant Pad. Between DequantizeLinear and QuantizeLinear onnxruntime pads in float:
    the inside requantizes (a table when the parameters differ) and the border is
    QuantizeLinear(constant_value)."""
    x = imp.activation(node, ins[0])
    a = imp.attrs(node)
    mode = a.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode != "constant":
        raise imp.error(node, f"mode {quoted(mode)} is not supported; only constant padding")
    if len(node.input) > 3 and node.input[3]:
        raise imp.error(node, "the axes input is not supported; give pads for every axis")
    pads = [int(v) for v in np.asarray(imp.constant(node, node.input[1], "pads")).reshape(-1)]
    rank = len(x.tensor.shape)
    if len(pads) != 2 * rank or min(pads) < 0:
        raise imp.error(node, f"pads {short_list(pads)} must be {2 * rank} non-negative values")
    pairs = [(pads[i], pads[i + rank]) for i in range(rank)]
    if x.nchw:  # the IR's axis j is ONNX axis NCHW_TO_NHWC[j]
        pairs = [pairs[i] for i in NCHW_TO_NHWC]
    constant = 0.0
    if len(node.input) > 2 and node.input[2]:
        name = node.input[2]
        if name in imp.dequantized:  # a quantized constant: its real value
            src, qp = imp.dequantized[name]
            raw = np.asarray(imp.constant(node, src, "constant_value")).astype(np.int64).reshape(-1)[0]
            constant = float(np.float32(qp.scale[0]) * np.float32(raw - qp.zero_point[0]))
        else:
            raw_value = np.asarray(imp.constant(node, name, "constant_value"))
            if np.issubdtype(raw_value.dtype, np.integer) and ins[0].qparams.dtype in INT_TYPES:
                # operator-oriented: the pad value is already in the tensor's quantization
                qp = ins[0].qparams
                constant = float(np.float32(qp.scale[0]) * np.float32(int(raw_value.reshape(-1)[0]) - qp.zero_point[0]))
            else:
                constant = float(raw_value.reshape(-1)[0])
    if not ins[0].qparams.same_as(out):
        x = table_value(imp, node, x, lambda r: r, "requantize", out, out_name + "_requantized")
    oq = out.ir_quant(0)
    value = int(quantize_linear(np.float32(constant), oq.scale[0], oq.scalar_zero_point, -128, 127))
    y = imp.emit(kinds.PAD, [x.tensor], PadAttrs(pads=tuple(pairs), value=value), out_name, "int8", oq, node.name)
    return Value(y, out, nchw=x.nchw)


def _onnx_order(imp: BuildContext, node, x: Value, out_name: str) -> Tensor:
    """x's tensor with the ONNX value's axis order (a 4-D NCHW value is NHWC in the IR:
    transposed back, unless one pixel makes the orders the same bytes)."""
    t = x.tensor
    if not x.nchw:
        return t
    if t.shape[1] * t.shape[2] == 1:
        return imp.emit(kinds.RESHAPE, [t], ReshapeAttrs(shape=tuple(t.shape[i] for i in NHWC_TO_NCHW)),
                        out_name + "_nchw", "int8", t.quant, node.name)
    return imp.emit(kinds.TRANSPOSE, [t], TransposeAttrs(NHWC_TO_NCHW), out_name + "_nchw", "int8", t.quant, node.name)


def _ints(imp: BuildContext, node, index: int, what: str) -> list[int] | None:
    """Constant input `index` as Python ints (None when the optional input is absent)."""
    if len(node.input) <= index or not node.input[index]:
        return None
    return [int(v) for v in np.asarray(imp.constant(node, node.input[index], what)).reshape(-1)]


def _build_slice(imp: BuildContext, node, ins, out: QParams, out_name: str) -> Value:
    """Slice with constant starts, ends, axes and steps (onnxruntime's rules: a negative
    index counts from the back, then starts and ends are clamped to [0, dim] for a
    positive step and [-1, dim - 1] for a negative one) as a STRIDED_SLICE whose every
    bound is already resolved (its own clamping then changes nothing)."""
    from mcuc.ir.ops.strided_slice import StridedSliceAttrs

    x = imp.activation(node, ins[0])
    shape = x.onnx_shape
    rank = len(shape)
    starts, ends = _ints(imp, node, 1, "starts"), _ints(imp, node, 2, "ends")
    if starts is None or ends is None:
        raise imp.error(node, "starts and ends are required inputs")
    axes = _ints(imp, node, 3, "axes")
    axes = list(range(len(starts))) if axes is None else [_axis(imp, node, a, rank) for a in axes]
    steps = _ints(imp, node, 4, "steps") or [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps) or len(set(axes)) != len(axes):
        raise imp.error(node, f"starts {short_list(starts)}, ends {short_list(ends)}, axes {short_list(axes)} and "
                              f"steps {short_list(steps)} must have one entry per distinct axis")
    begin, end, stride, end_mask = [0] * rank, list(shape), [1] * rank, 0
    for a, first, stop, step in zip(axes, starts, ends, steps):
        d = shape[a]
        if step == 0:
            raise imp.error(node, f"steps[{axes.index(a)}] is 0")
        first, stop = (v + d if v < 0 else v for v in (first, stop))
        lo, hi = (0, d) if step > 0 else (-1, d - 1)
        first, stop = min(max(first, lo), hi), min(max(stop, lo), hi)
        count = max(0, -(-(stop - first) // step))
        if count == 0:
            raise imp.error(node, f"the slice of axis {a} (extent {d}) is empty; mcuc needs non-empty tensors")
        begin[a], stride[a] = first, step
        last = first + count * step
        if last < 0:  # a negative step down to index 0: "to the start" (-1 would count from the back)
            end_mask |= 1 << a
        else:
            end[a] = min(last, d)
    if x.nchw:  # the IR's axis j is ONNX axis NCHW_TO_NHWC[j]
        begin, end, stride = ([v[i] for i in NCHW_TO_NHWC] for v in (begin, end, stride))
        end_mask = sum(1 << j for j, i in enumerate(NCHW_TO_NHWC) if end_mask >> i & 1)
    attrs = StridedSliceAttrs(begin=tuple(begin), end=tuple(end), strides=tuple(stride), end_mask=end_mask)
    y = imp.emit(kinds.STRIDED_SLICE, [x.tensor], attrs, out_name, "int8", x.tensor.quant, node.name)
    return Value(y, out, nchw=x.nchw)


def split_slices(imp: BuildContext, node, x_in: QInput, out_names: list[str]) -> list[Value]:
    """Split's outputs as one STRIDED_SLICE each (in x's quantization): sizes from the
    constant `split` input, or `num_outputs` (opset 18: ceil-sized parts, the last one
    smaller), or equal parts."""
    from mcuc.ir.ops.strided_slice import StridedSliceAttrs

    x = imp.activation(node, x_in)
    t = x.tensor
    shape = x.onnx_shape
    a = imp.attrs(node)
    axis = _axis(imp, node, int(a.get("axis", 0)), len(shape))
    d, parts = shape[axis], len(node.output)
    sizes = _ints(imp, node, 1, "split")
    if sizes is None:
        if "num_outputs" in a:
            chunk = -(-d // int(a["num_outputs"]))
            sizes = [min(chunk, d - k * chunk) for k in range(parts)]
        elif d % parts:
            raise imp.error(node, f"axis {axis} (extent {d}) does not split into {parts} equal parts; give split")
        else:
            sizes = [d // parts] * parts
    if len(sizes) != parts or sum(sizes) != d or min(sizes) < 1:
        raise imp.error(node, f"split {short_list(sizes)} must give {parts} positive sizes summing to the extent "
                              f"{d} of axis {axis}")
    ir_axis = NCHW_AXIS_IN_NHWC[axis] if x.nchw else axis
    values, first = [], 0
    for size, name in zip(sizes, out_names):
        begin, end = [0] * len(shape), list(t.shape)
        begin[ir_axis], end[ir_axis] = first, first + size
        attrs = StridedSliceAttrs(begin=tuple(begin), end=tuple(end), strides=(1,) * len(shape))
        y = imp.emit(kinds.STRIDED_SLICE, [t], attrs, name, "int8", t.quant, node.name)
        values.append(Value(y, x_in.qparams, nchw=x.nchw))
        first += size
    return values


def _build_gather(imp: BuildContext, node, ins, out: QParams, out_name: str) -> Value:
    """Gather with constant indices (negative ones count from the back, as onnxruntime's;
    one outside the axis is refused). A 1-D index list along an axis of a 4-D NCHW value
    keeps its layout; other shapes gather from the ONNX order."""
    from mcuc.ir.ops.gather import GatherAttrs

    x = imp.activation(node, ins[0])
    indices = np.asarray(imp.constant(node, node.input[1], "indices")).astype(np.int64)
    shape = x.onnx_shape
    axis = _axis(imp, node, int(imp.attrs(node).get("axis", 0)), len(shape))
    d = shape[axis]
    if np.any((indices < -d) | (indices >= d)):
        bad = int(indices[(indices < -d) | (indices >= d)].reshape(-1)[0])
        raise imp.error(node, f"index {bad} is outside [-{d}, {d}) along axis {axis}")
    resolved = np.where(indices < 0, indices + d, indices).astype(np.int32)
    keep = x.nchw and indices.ndim == 1
    t = x.tensor if keep else _onnx_order(imp, node, x, out_name)
    ir_axis = NCHW_AXIS_IN_NHWC[axis] if keep else axis
    # (a scalar index drops the axis: gathered as a list of one, then reshaped)
    listed = resolved.reshape(-1) if resolved.ndim == 0 else resolved
    index_tensor = Tensor(imp.unique(out_name + "_indices"), listed.shape, "int32", None, listed)
    gathered = out_name + "_gathered" if resolved.ndim == 0 else out_name
    y = imp.emit(kinds.GATHER, [t, index_tensor], GatherAttrs(axis=ir_axis), gathered, "int8", t.quant, node.name)
    if resolved.ndim == 0:
        y = imp.emit(kinds.RESHAPE, [y], ReshapeAttrs(shape=shape[:axis] + shape[axis + 1:]), out_name, "int8",
                     t.quant, node.name)
    return Value(y, out, nchw=keep)


def _build_depth_space(imp: BuildContext, node, ins, out: QParams, out_name: str) -> Value:
    """DepthToSpace (DCR; CRD as a channel GATHER into DCR order first) and SpaceToDepth of
    4-D NCHW tensors: in the IR's NHWC they are TFLite's DEPTH_TO_SPACE / SPACE_TO_DEPTH."""
    from mcuc.ir.ops.gather import GatherAttrs
    from mcuc.ir.ops.space_depth import BlockAttrs

    x = imp.activation(node, ins[0])
    if len(x.tensor.shape) != 4:
        raise imp.error(node, "only 4-D NCHW tensors are supported")
    t = x.tensor
    if not x.nchw:  # ONNX order in the IR: to NHWC
        t = imp.emit(kinds.TRANSPOSE, [t], TransposeAttrs(NCHW_TO_NHWC), out_name + "_nhwc", "int8", t.quant,
                     node.name)
    a = imp.attrs(node)
    block = int(a.get("blocksize", 0))
    if block < 1:
        raise imp.error(node, f"blocksize {block} must be at least 1")
    if node.op_type == "SpaceToDepth":
        y = imp.emit(kinds.SPACE_TO_DEPTH, [t], BlockAttrs(block), out_name, "int8", t.quant, node.name)
        return Value(y, out, nchw=True)
    mode = a.get("mode", b"DCR")
    mode = mode.decode(errors="replace") if isinstance(mode, bytes) else mode
    if mode not in ("DCR", "CRD"):
        raise imp.error(node, f"mode {quoted(mode)} is not DCR or CRD")
    channels = t.shape[3]
    if mode == "CRD" and channels % (block * block) == 0:
        # CRD reads channel c * b^2 + k where DCR reads k * C' + c
        depth = channels // (block * block)
        order = np.array([c * block * block + k for k in range(block * block) for c in range(depth)], np.int32)
        index_tensor = Tensor(imp.unique(out_name + "_dcr"), order.shape, "int32", None, order)
        t = imp.emit(kinds.GATHER, [t, index_tensor], GatherAttrs(axis=3), out_name + "_dcr_order", "int8", t.quant,
                     node.name)
    y = imp.emit(kinds.DEPTH_TO_SPACE, [t], BlockAttrs(block), out_name, "int8", t.quant, node.name)
    return Value(y, out, nchw=True)


_NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def _onnx_nearest_indices(in_len: int, out_len: int, scale: np.float32, transform: str, nearest: str) -> np.ndarray:
    """The input index onnxruntime's nearest Resize reads for each output index (float32
    coordinate transform, then the nearest mode, then a clamp to the input)."""
    x = np.arange(out_len, dtype=np.float32)
    half = np.float32(0.5)
    if transform == "half_pixel":
        orig = (x + half) / scale - half
    elif transform == "pytorch_half_pixel":
        orig = (x + half) / scale - half if out_len > 1 else np.zeros_like(x)
    elif transform == "asymmetric":
        orig = x / scale
    elif transform == "tf_half_pixel_for_nn":
        orig = (x + half) / scale
    elif transform == "align_corners":
        orig = x * np.float32(in_len - 1) / np.float32(out_len - 1) if out_len > 1 else np.zeros_like(x)
    else:
        raise ValueError(transform)
    if nearest == "floor":
        idx = np.floor(orig)
    elif nearest == "ceil":
        idx = np.ceil(orig)
    else:
        is_half = orig == np.trunc(orig).astype(np.float32) + half
        away = np.where(orig >= 0, np.floor(orig + half), np.ceil(orig - half))  # std::round
        idx = np.where(is_half, np.floor(orig) if nearest == "round_prefer_floor" else np.ceil(orig), away)
    return np.clip(idx.astype(np.int64), 0, in_len - 1)


def _build_resize(imp: BuildContext, node, ins, out: QParams, out_name: str) -> Value:
    """Resize, mode nearest, on H and W: RESIZE_NEAREST_NEIGHBOR when one of its index rules
    reproduces onnxruntime's indices exactly for these sizes (checked here), else an error."""
    from mcuc.ir.ops.resize_nearest import ResizeNearestAttrs, source_indices

    x = imp.activation(node, ins[0])
    a = imp.attrs(node)

    def text(key: str, default: str) -> str:
        v = a.get(key, default)
        return v.decode() if isinstance(v, bytes) else v

    mode, transform, nearest = text("mode", "nearest"), text("coordinate_transformation_mode", "half_pixel"), \
        text("nearest_mode", "round_prefer_floor")
    if mode != "nearest" or not x.nchw:
        raise imp.error(node, f"only mode 'nearest' on 4-D NCHW tensors is supported (got {quoted(mode)})")
    if transform not in ("half_pixel", "pytorch_half_pixel", "asymmetric", "tf_half_pixel_for_nn", "align_corners") \
            or nearest not in _NEAREST_MODES:
        raise imp.error(node, f"coordinate_transformation_mode {quoted(transform)} with nearest_mode {quoted(nearest)} is not supported")
    n, h, w, c = x.tensor.shape
    names = list(node.input) + ["", "", ""]
    if names[3]:
        sizes = [int(v) for v in np.asarray(imp.constant(node, names[3], "sizes")).reshape(-1)]
        scales = [np.float32(o) / np.float32(i) for o, i in zip(sizes, (n, c, h, w))]
    elif names[2]:
        scales = [np.float32(v) for v in np.asarray(imp.constant(node, names[2], "scales")).reshape(-1)]
        sizes = [int(np.floor(np.float32(d) * s)) for d, s in zip((n, c, h, w), scales)]
    else:
        raise imp.error(node, "needs constant scales or sizes")
    if len(sizes) != 4 or sizes[0] != n or sizes[1] != c:
        raise imp.error(node, f"only the spatial axes may be resized (sizes {short_list(sizes)})")
    wanted = [_onnx_nearest_indices(i, o, s, transform, nearest) for i, o, s in ((h, sizes[2], scales[2]), (w, sizes[3], scales[3]))]
    for align, half in ((False, False), (False, True), (True, False)):
        if all(np.array_equal(source_indices(i, o, align, half), idx) for i, o, idx in ((h, sizes[2], wanted[0]), (w, sizes[3], wanted[1]))):
            attrs = ResizeNearestAttrs(size=(sizes[2], sizes[3]), align_corners=align, half_pixel_centers=half)
            y = imp.emit(kinds.RESIZE_NEAREST_NEIGHBOR, [x.tensor], attrs, out_name, "int8", x.tensor.quant, node.name)
            return Value(y, out, nchw=True)
    raise imp.error(node, f"{transform} / {nearest} resizing {h}x{w} to {sizes[2]}x{sizes[3]} picks input pixels that "
                           "no RESIZE_NEAREST_NEIGHBOR rule reproduces; use asymmetric/floor or integer scales")


def _build_softmax(imp: BuildContext, node, ins, out: QParams, out_name: str) -> Value:
    """Softmax / QLinearSoftmax over the innermost axis of the IR tensor."""
    from mcuc.ir.ops.softmax import SoftmaxAttrs

    x = imp.activation(node, ins[0])
    if ins[0].qparams.dtype != out.dtype:
        raise imp.error(node, "input and output mix int8 and uint8")
    a = imp.attrs(node)
    rank = len(x.tensor.shape)
    if node.op_type == "QLinearSoftmax" and int(a.get("opset", 13)) < 13:
        raise imp.error(node, "QLinearSoftmax of opset < 13 (softmax over flattened axes) is not supported")
    axis = _axis(imp, node, int(a.get("axis", -1)), rank)
    ir_axis = NCHW_AXIS_IN_NHWC[axis] if x.nchw else axis
    if ir_axis != rank - 1:
        raise imp.error(node, f"softmax over axis {axis} is not supported; mcuc computes it over the innermost "
                               "(channel) axis")
    # onnxruntime runs int8 QDQ softmax as uint8 where it converts (it then clamps
    # instead of keeping the low byte).
    on_uint8 = ort_on_uint8(ins[0].qparams, out)
    if mixed_float_group(node, imp.numerics, ins[0].qparams, out):
        raise imp.error(node, float_group_error_advice("Softmax"))
    attrs = SoftmaxAttrs(beta=1.0, numerics=OrtInteger(on_uint8))
    y = imp.emit(kinds.SOFTMAX, [x.tensor], attrs, out_name, "int8", out.ir_quant(0), node.name)
    return Value(y, out, nchw=x.nchw)


def _reshape_target(imp: BuildContext, node, in_shape: tuple[int, ...]) -> tuple[int, ...]:
    """ONNX Reshape's output shape: 0 copies the input dimension (allowzero=0), -1 is inferred."""
    spec = [int(d) for d in np.asarray(imp.constant(node, node.input[1], "shape")).reshape(-1)]
    if int(imp.attrs(node).get("allowzero", 0)) and 0 in spec:
        # (allowzero only changes what a 0 in the shape means; torch.onnx sets it on every Reshape)
        raise imp.error(node, "a 0 in the shape with allowzero=1 (an empty tensor) is not supported")
    dims = [in_shape[i] if d == 0 else d for i, d in enumerate(spec)]
    total = int(np.prod(in_shape, dtype=np.int64))
    if dims.count(-1) == 1:
        known = int(np.prod([d for d in dims if d != -1], dtype=np.int64))
        dims[dims.index(-1)] = total // known if known else 0
    if any(d <= 0 for d in dims) or int(np.prod(dims, dtype=np.int64)) != total:
        raise imp.error(node, f"shape {short_list(spec)} does not fit an input of shape {short_list(in_shape)}")
    return tuple(dims)


def _build_max_min(imp: BuildContext, node, ins, out: QParams, out_name: str) -> Value:
    """Max and Min of activations, or of an activation and a one-value constant (variadic:
    pairwise). onnxruntime has no quantized kernel for them: DQ -> float Max/Min -> Q.
    QuantizeLinear never decreases, so that equals the largest (smallest) of the inputs
    each requantized to the output's parameters (DQ -> Q, a table where they differ, the
    constant at compile time), compared as stored integers: MAXIMUM / MINIMUM."""
    from mcuc.ir.ops.maximum_minimum import MaximumMinimumAttrs

    if any(q.qparams.dtype != out.dtype for q in ins):
        raise imp.error(node, "inputs and output mix int8 and uint8")
    oq = out.ir_quant(0)
    operands, nchw = [], None
    for k, q in enumerate(ins):
        if q.is_constant:
            if np.asarray(q.data).size != 1:
                raise imp.error(node, "a constant operand must be a single quantized value")
            raw = int(np.asarray(q.data).astype(np.int64).reshape(-1)[0])
            real = np.float32(q.qparams.scale[0]) * np.float32(raw - int(q.qparams.zero_point[0]))
            value = int(quantize_linear(real, oq.scale[0], oq.scalar_zero_point, -128, 127))
            operands.append(Tensor(imp.unique(node.name + "_const"), (1,), "int8", oq, np.array([value], np.int64)))
            continue
        v = imp.activation(node, q)
        if nchw is not None and v.nchw != nchw:
            raise imp.error(node, "inputs mix layouts")
        nchw = v.nchw
        if not q.qparams.same_as(out):
            v = table_value(imp, node, v, lambda r: r, "requantize", out, out_name + f"_in{k}")
        operands.append(v.tensor)
    if nchw is None:
        raise imp.error(node, "every input is a constant; fold the op")
    shapes = {t.shape for t in operands if t.size != 1}
    if len(shapes) > 1:
        raise imp.error(node, f"inputs of shapes {short_list(sorted(shapes))} broadcast; mcuc takes equal shapes "
                              f"or one-value constants")
    kind = kinds.MAXIMUM if node.op_type == "Max" else kinds.MINIMUM
    y = operands[0]
    for k, other in enumerate(operands[1:], 1):
        name = out_name if k == len(operands) - 1 else out_name + f"_{k}"
        y = imp.emit(kind, [y, other], MaximumMinimumAttrs(), name, "int8", oq, node.name)
    if len(operands) == 1:  # Max of one input: the input requantized
        y = imp.emit(kinds.RESHAPE, [y], ReshapeAttrs(shape=y.shape), out_name, "int8", oq, node.name)
    return Value(y, out, nchw=nchw)


def _build_concat(imp: BuildContext, node, ins, out: QParams, out_name: str) -> Value:
    values = [imp.activation(node, q) for q in ins]
    if any(q.qparams.dtype != out.dtype for q in ins):
        raise imp.error(node, "inputs and output mix int8 and uint8")
    # QLinearConcat requantizes an input of other parameters through a lookup table
    # (DequantizeLinear -> QuantizeLinear of its 256 values).
    values = [v if q.qparams.same_as(out) else
              table_value(imp, node, v, lambda r: r, "requantize", out, out_name + f"_in{k}")
              for k, (q, v) in enumerate(zip(ins, values))]
    axis = int(imp.attrs(node).get("axis", 1))
    nchw = values[0].nchw
    if any(v.nchw != nchw for v in values):
        raise imp.error(node, "inputs mix layouts")
    rank = len(values[0].tensor.shape)
    axis = _axis(imp, node, axis, rank)
    if nchw:
        axis = NCHW_AXIS_IN_NHWC[axis]
    y = imp.emit(kinds.CONCATENATION, [v.tensor for v in values], ConcatAttrs(axis=axis), out_name, "int8",
                  out.ir_quant(0), node.name)
    return Value(y, out, nchw=nchw)


BUILDERS = {
    "Conv": _build_conv,
    "Gemm": _build_gemm,
    "MatMul": _build_matmul,
    "Add": _build_add,
    "Mul": _build_add,
    "GlobalAveragePool": _build_gap,
    "ReduceMean": _build_reduce_mean,
    "MaxPool": _build_maxpool,
    "AveragePool": _build_avgpool,
    "Reshape": _build_reshape,
    "Squeeze": _build_reshape,
    "Unsqueeze": _build_reshape,
    "Flatten": _build_reshape,
    "Concat": _build_concat,
    "Transpose": _build_transpose,
    "Pad": _build_pad,
    "Resize": _build_resize,
    "Slice": _build_slice,
    "Gather": _build_gather,
    "DepthToSpace": _build_depth_space,
    "SpaceToDepth": _build_depth_space,
    "Softmax": _build_softmax,
    "Sigmoid": _build_elementwise,
    "HardSwish": _build_elementwise,
    "LeakyRelu": _build_elementwise,
    "Relu": _build_elementwise,
    "Clip": _build_elementwise,
    "Abs": _build_elementwise,
    "Neg": _build_elementwise,
    "Max": _build_max_min,
    "Min": _build_max_min,
}
# ONNX op types that appear between DequantizeLinear and QuantizeLinear (QDQ groups);
# Split, with several outputs, is built by the importer (split_slices).
FLOAT_OPS = frozenset(BUILDERS) | {"Split"}
