"""TFLite reader: a .tflite flatbuffer (its main subgraph) -> mcuc.ir.Graph.

The flatbuffer is read through the `tflite` package's generated accessors. Those trust
the file: a corrupt offset reads garbage, a negative vtable offset silently reads from
the end of the buffer, and a garbage vector length can make a loop run for billions of
steps. So every table is checked before use (`_FlatFile.table`), every vector length is
bounded by the file size, and any exception escaping the accessors is wrapped into an
MCUCError at one boundary (`load_tflite`).

What the IR gets (DESIGN.md, The IR):
- op kinds are TFLite builtin names, except PADV2 which becomes PAD with a `value`;
- constant parameter inputs (shape, axes, perm, size, paddings, pad value) become
  attributes; weights and bias stay constant input tensors;
- SAME/VALID become explicit Padding2D exactly as TFLite computes them;
- fused activations become clamp ranges in the quantized domain, as TFLM's
  CalculateActivationRangeQuantized computes them.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import flatbuffers
import numpy as np
import tflite
from flatbuffers import number_types as N

from mcuc.ir import Graph, MCUCError, Op, Quantization, Tensor
from mcuc.ir.ops import kinds, op_def, supported_kinds
from mcuc.ir.ops.common import Padding2D, dtype_range, short_label
from mcuc.ir.ops.add import AddAttrs
from mcuc.ir.ops.concatenation import ConcatAttrs
from mcuc.ir.ops.conv2d import Conv2DAttrs
from mcuc.ir.ops.depthwise_conv2d import DepthwiseConv2DAttrs
from mcuc.ir.ops.fully_connected import FullyConnectedAttrs
from mcuc.ir.ops.leaky_relu import LeakyReluAttrs
from mcuc.ir.ops.mean import MeanAttrs
from mcuc.ir.ops.mul import MulAttrs
from mcuc.ir.ops.pad import PadAttrs
from mcuc.ir.ops.pool2d import Pool2DAttrs
from mcuc.ir.ops.reshape import ReshapeAttrs
from mcuc.ir.ops.resize_nearest import ResizeNearestAttrs
from mcuc.ir.ops.softmax import SoftmaxAttrs
from mcuc.ir.ops.squeeze import SqueezeAttrs
from mcuc.ir.ops.sub import SubAttrs
from mcuc.ir.ops.transpose import TransposeAttrs
from mcuc.ir.tensor import cut_name, quoted, short_list

from .tflite_limits import check_int16
from .tflite_more import CONVERTERS as _MORE_CONVERTERS
from .validate import check_integer_arithmetic, check_scales, max_tensor_bytes_or_default, validate_graph

_FILE_IDENTIFIER = b"TFL3"
# A tensor larger than this cannot fit any microcontroller (nor int32 indexing).
_MAX_ELEMENTS = 2**31 - 1

_DTYPES = {
    tflite.TensorType.FLOAT32: "float32", tflite.TensorType.INT8: "int8",
    tflite.TensorType.UINT8: "uint8", tflite.TensorType.INT16: "int16",
    tflite.TensorType.INT32: "int32", tflite.TensorType.INT64: "int64",
    tflite.TensorType.BOOL: "bool",
}


def _enum_names(enum_cls) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)}


_BUILTIN_NAMES = _enum_names(tflite.BuiltinOperator)
_TYPE_NAMES = _enum_names(tflite.TensorType)
_ACTIVATION_NAMES = _enum_names(tflite.ActivationFunctionType)
_OPTIONS_NAMES = _enum_names(tflite.BuiltinOptions)

# Errors the generated accessors raise on a corrupt buffer: out-of-range reads
# (struct.error, IndexError), bad numpy counts (ValueError), offsets summing past uint32
# (flatbuffers raises TypeError "bad number ... for type uint32"), undecodable strings.
_READ_ERRORS = (struct.error, IndexError, ValueError, TypeError, OverflowError,
                UnicodeDecodeError, MemoryError)


class _CorruptFile(Exception):
    """Raised inside the reader when the bytes are not a well-formed flatbuffer."""


def _empty_table() -> tuple[bytearray, int]:
    """A flatbuffer holding one table with no fields: options tables that a model omits
    read as this, so every accessor returns the schema default."""
    b = flatbuffers.Builder(16)
    b.StartObject(0)
    b.Finish(b.EndObject())
    buf = b.Output()
    return bytearray(buf), flatbuffers.encode.Get(N.UOffsetTFlags.packer_type, buf, 0)


_EMPTY_TABLE = _empty_table()


class _FlatFile:
    """The model bytes plus bounds checks for the generated accessors."""

    def __init__(self, data: bytes):
        self.data = data
        self.size = len(data)

    def table(self, obj, what: str):
        """`obj` (a generated accessor) after checking that its table and vtable lie in
        the file, so that every field read lands at a non-negative in-range offset."""
        if obj is None:
            return None
        pos = obj._tab.Pos
        if not 0 <= pos <= self.size - 4:
            raise _CorruptFile(f"{what} starts at offset {pos}, outside the {self.size}-byte file")
        vtable = pos - struct.unpack_from("<i", self.data, pos)[0]
        if not 0 <= vtable <= self.size - 4:
            raise _CorruptFile(f"{what} has its vtable at offset {vtable}, outside the file")
        vt_size, obj_size = struct.unpack_from("<HH", self.data, vtable)
        if vt_size < 4 or vt_size % 2 or vtable + vt_size > self.size or pos + obj_size > self.size:
            raise _CorruptFile(f"{what} has a malformed vtable (size {vt_size}, object size {obj_size})")
        for slot in range(4, vt_size, 2):
            field = struct.unpack_from("<H", self.data, vtable + slot)[0]
            if field and field >= obj_size:
                raise _CorruptFile(f"{what} has a field at offset {field} beyond its {obj_size}-byte object")
        return obj

    def length(self, n: int, element_size: int, what: str) -> int:
        """A vector length, refused when the vector could not fit in the file."""
        if n < 0 or n * element_size > self.size:
            raise _CorruptFile(f"{what} claims {n} entries, more than the {self.size}-byte file holds")
        return n


def _ints(value) -> np.ndarray:
    """A vector read with *AsNumpy(): the generated code returns 0 for an absent vector."""
    if isinstance(value, int):
        return np.zeros(0, np.int64)
    return np.asarray(value).astype(np.int64)


def _floats(value) -> np.ndarray:
    if isinstance(value, int):
        return np.zeros(0, np.float32)
    return np.asarray(value, np.float32)


def _name(raw) -> str:
    return raw.decode("utf-8", errors="replace") if raw else ""


# -- activation ranges and padding, exactly as TFLite computes them ----------------------

def _round_half_away(x: np.float32) -> float:
    """std::round on a float: halves away from zero."""
    return float(np.sign(x) * np.floor(np.abs(x) + np.float32(0.5)))


def activation_range(activation: int, output: Tensor, where: str) -> tuple[int, int]:
    """The quantized clamp range of a fused activation (TFLM's
    CalculateActivationRangeQuantized: round(f / scale) in float32, plus the zero point,
    clamped to the type's range)."""
    name = _ACTIVATION_NAMES.get(activation, str(activation))
    if activation == tflite.ActivationFunctionType.NONE:
        if output.quant is None or output.dtype == "float32":
            return -128, 127
        return dtype_range(output.dtype)
    if activation not in (tflite.ActivationFunctionType.RELU, tflite.ActivationFunctionType.RELU6,
                          tflite.ActivationFunctionType.RELU_N1_TO_1):
        raise MCUCError(f"{where}: fused_activation_function {name} is not supported "
                        "(mcuc supports NONE, RELU, RELU6, RELU_N1_TO_1)")
    if output.quant is None or output.dtype not in ("int8", "uint8", "int16"):
        raise MCUCError(f"{where}: fused_activation_function {name} on the non-quantized output "
                        f"{quoted(output.name)} ({output.dtype}) is not supported")
    qmin, qmax = dtype_range(output.dtype)
    scale = np.float32(output.quant.scale[0])
    zero_point = output.quant.scalar_zero_point

    def quantize(real: float) -> int:
        with np.errstate(all="ignore"):
            q = _round_half_away(np.float32(real) / scale)
        if not -2**31 <= q <= 2**31 - 1:
            raise MCUCError(f"{where}: output {quoted(output.name)} scale {float(scale)} makes the "
                            f"{name} bound {real} overflow int32")
        return zero_point + int(q)

    if activation == tflite.ActivationFunctionType.RELU:
        return max(qmin, quantize(0.0)), qmax
    if activation == tflite.ActivationFunctionType.RELU6:
        return max(qmin, quantize(0.0)), min(qmax, quantize(6.0))
    return max(qmin, quantize(-1.0)), min(qmax, quantize(1.0))


def same_padding(in_size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TFLite's SAME padding (before, after): the odd pixel goes after (bottom/right)."""
    effective = (kernel - 1) * dilation + 1
    out_size = (in_size + stride - 1) // stride
    total = max((out_size - 1) * stride + effective - in_size, 0)
    return total // 2, total - total // 2


def explicit_padding(padding: int, in_hw: tuple[int, int], kernel_hw: tuple[int, int],
                     stride: tuple[int, int], dilation: tuple[int, int], where: str) -> Padding2D:
    if padding == tflite.Padding.VALID:
        return Padding2D()
    if padding != tflite.Padding.SAME:
        raise MCUCError(f"{where}: padding value {padding} is not SAME (0) or VALID (1)")
    top, bottom = same_padding(in_hw[0], kernel_hw[0], stride[0], dilation[0])
    left, right = same_padding(in_hw[1], kernel_hw[1], stride[1], dilation[1])
    check_int16(where, "SAME padding", (top, left), f"from a {kernel_hw[0]}x{kernel_hw[1]} window")
    return Padding2D(top, bottom, left, right)


# -- per-op conversion ---------------------------------------------------------------------

@dataclass
class _OpContext:
    """What a converter sees: the op's index and builtin name, its inputs (None for an
    absent optional input) and outputs, and its options table (schema defaults when the
    model omits it)."""

    index: int
    builtin: str
    inputs: list[Tensor | None]
    outputs: list[Tensor]
    options: object

    @property
    def where(self) -> str:
        return f"op {self.index} ({self.builtin})"

    def fail(self, what: str) -> MCUCError:
        return MCUCError(f"{self.where}: {what}")

    def need_inputs(self, low: int, high: int | None = None) -> None:
        high = low if high is None else high
        if not low <= len(self.inputs) <= high:
            expected = str(low) if low == high else f"{low} to {high}"
            raise self.fail(f"has {len(self.inputs)} inputs, expected {expected}")
        for i, t in enumerate(self.inputs[:low]):
            if t is None and not (self.builtin in _OPTIONAL_BIAS and i == 2):
                raise self.fail(f"required input {i} is absent (-1)")
        if not self.outputs:
            raise self.fail("has no outputs")

    def activation(self, output_index: int = 0) -> tuple[int, int]:
        return activation_range(self.options.FusedActivationFunction(), self.outputs[output_index], self.where)

    def parameter(self, position: int, what: str) -> np.ndarray:
        """A constant integer parameter input (shape, axes, perm, size, paddings)."""
        if position >= len(self.inputs) or self.inputs[position] is None:
            raise self.fail(f"the {what} input (input {position}) is missing")
        t = self.inputs[position]
        if not t.is_constant:
            raise self.fail(f"the {what} input {quoted(t.name)} must be a constant tensor; mcuc does not "
                            "support run-time " + what)
        if t.dtype not in ("int32", "int64"):
            raise self.fail(f"the {what} input {quoted(t.name)} must be int32 or int64, not {t.dtype}")
        return t.data.astype(np.int64)

    def axis(self, value: int, rank: int, what: str) -> int:
        if not -rank <= value < rank:
            raise self.fail(f"{what} {value} is out of range for a rank-{rank} tensor")
        return value % rank


_OPTIONAL_BIAS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"}

Converter = Callable[[_OpContext], tuple[str, list, object]]


def _window_params(ctx: _OpContext) -> tuple[tuple[int, int], tuple[int, int]]:
    o = ctx.options
    stride = (o.StrideH(), o.StrideW())
    dilation = (o.DilationHFactor(), o.DilationWFactor()) if hasattr(o, "DilationHFactor") else (1, 1)
    if min(stride) < 1:
        raise ctx.fail(f"stride {stride} must be positive (stride_h, stride_w)")
    if min(dilation) < 1:
        raise ctx.fail(f"dilation {dilation} must be positive (dilation_h_factor, dilation_w_factor)")
    if ctx.builtin in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        check_int16(ctx.where, "stride", stride)
        check_int16(ctx.where, "dilation", dilation)
    return stride, dilation


def _spatial_input(ctx: _OpContext) -> Tensor:
    x = ctx.inputs[0]
    if len(x.shape) != 4:
        raise ctx.fail(f"input {quoted(x.name)} must be 4-D NHWC, got shape {x.shape}")
    return x


def _kernel_weights(ctx: _OpContext) -> Tensor:
    w = ctx.inputs[1]
    if len(w.shape) != 4:
        raise ctx.fail(f"weights {quoted(w.name)} must be 4-D, got shape {w.shape}")
    return w


def _check_bias(ctx: _OpContext) -> None:
    """The bias of an int8 conv / depthwise / fully connected layer is int32: the oracle
    reads its bytes as int32 whatever type the file declares."""
    x = ctx.inputs[0]
    b = ctx.inputs[2] if len(ctx.inputs) > 2 else None
    if b is None or x.dtype not in ("int8", "uint8"):
        return
    if b.dtype != "int32":
        raise ctx.fail(f"bias {quoted(b.name)} is {b.dtype}; an {x.dtype} layer needs an int32 bias (tflite-micro "
                       "would read its bytes as int32)")
    if not b.is_constant:
        raise ctx.fail(f"bias {quoted(b.name)} must be a constant tensor")


def _conv2d(ctx: _OpContext):
    ctx.need_inputs(2, 3)
    _check_bias(ctx)
    x, w = _spatial_input(ctx), _kernel_weights(ctx)
    stride, dilation = _window_params(ctx)
    padding = explicit_padding(ctx.options.Padding(), x.shape[1:3], w.shape[1:3], stride, dilation, ctx.where)
    lo, hi = ctx.activation()
    return kinds.CONV_2D, ctx.inputs, Conv2DAttrs(stride, dilation, padding, lo, hi)


def _depthwise_conv2d(ctx: _OpContext):
    ctx.need_inputs(2, 3)
    _check_bias(ctx)
    x, w = _spatial_input(ctx), _kernel_weights(ctx)
    stride, dilation = _window_params(ctx)
    padding = explicit_padding(ctx.options.Padding(), x.shape[1:3], w.shape[1:3], stride, dilation, ctx.where)
    if x.shape[3] == 0 or w.shape[3] % x.shape[3]:
        raise ctx.fail(f"weights have {w.shape[3]} channels, not a multiple of the input's {x.shape[3]}")
    # tflite-micro loops over the option's depth_multiplier whatever the shapes say (and
    # reads out of bounds when they disagree): only a consistent option means anything.
    multiplier = int(ctx.options.DepthMultiplier())
    if multiplier != w.shape[3] // x.shape[3]:
        raise ctx.fail(f"depth_multiplier {multiplier} disagrees with the weights: {w.shape[3]} output channels "
                       f"over {x.shape[3]} input channels is a multiplier of {w.shape[3] // x.shape[3]}")
    lo, hi = ctx.activation()
    return kinds.DEPTHWISE_CONV_2D, ctx.inputs, DepthwiseConv2DAttrs(
        stride, dilation, padding, w.shape[3] // x.shape[3], lo, hi)


def _fully_connected(ctx: _OpContext):
    ctx.need_inputs(2, 3)
    _check_bias(ctx)
    fmt = ctx.options.WeightsFormat()
    if fmt != tflite.FullyConnectedOptionsWeightsFormat.DEFAULT:
        raise ctx.fail(f"weights_format {fmt} (shuffled weights) is not supported; use DEFAULT")
    lo, hi = ctx.activation()
    return kinds.FULLY_CONNECTED, ctx.inputs, FullyConnectedAttrs(lo, hi, bool(ctx.options.KeepNumDims()))


def _binary(kind: str, attrs_cls) -> Converter:
    def convert(ctx: _OpContext):
        ctx.need_inputs(2)
        lo, hi = ctx.activation()
        return kind, ctx.inputs, attrs_cls(lo, hi)
    return convert


def _pool(kind: str) -> Converter:
    def convert(ctx: _OpContext):
        ctx.need_inputs(1)
        x = _spatial_input(ctx)
        stride, _ = _window_params(ctx)
        kernel = (ctx.options.FilterHeight(), ctx.options.FilterWidth())
        if min(kernel) < 1:
            raise ctx.fail(f"filter size {kernel} must be positive (filter_height, filter_width)")
        padding = explicit_padding(ctx.options.Padding(), x.shape[1:3], kernel, stride, (1, 1), ctx.where)
        lo, hi = ctx.activation()
        return kind, ctx.inputs, Pool2DAttrs(kernel, stride, padding, lo, hi)
    return convert


def _mean(ctx: _OpContext):
    ctx.need_inputs(2)
    rank = len(ctx.inputs[0].shape)
    axes = tuple(sorted({ctx.axis(int(a), rank, "axis") for a in ctx.parameter(1, "axes").ravel()}))
    return kinds.MEAN, ctx.inputs[:1], MeanAttrs(axes, bool(ctx.options.KeepDims()))


def _pads(ctx: _OpContext) -> tuple[tuple[int, int], ...]:
    x = ctx.inputs[0]
    pads = ctx.parameter(1, "paddings")
    if pads.shape != (len(x.shape), 2):
        raise ctx.fail(f"paddings shape {short_list(pads.shape)} must be ({len(x.shape)}, 2) for input shape {short_list(x.shape)}")
    if (pads < 0).any():
        raise ctx.fail(f"paddings {short_list(pads.ravel())} must not be negative")
    return tuple((int(a), int(b)) for a, b in pads)


def _pad(ctx: _OpContext):
    ctx.need_inputs(2)
    return kinds.PAD, ctx.inputs[:1], PadAttrs(_pads(ctx))


def _padv2(ctx: _OpContext):
    ctx.need_inputs(2, 3)
    value = None
    if len(ctx.inputs) == 3 and ctx.inputs[2] is not None:
        v = ctx.inputs[2]
        if not v.is_constant or v.size != 1:
            raise ctx.fail(f"constant_values input {quoted(v.name)} must be a constant with one element")
        value = int(v.data.ravel()[0])
    return kinds.PAD, ctx.inputs[:1], PadAttrs(_pads(ctx), value)


def _reshape(ctx: _OpContext):
    ctx.need_inputs(1, 2)
    x, y = ctx.inputs[0], ctx.outputs[0]
    if len(ctx.inputs) == 2 and ctx.inputs[1] is not None and ctx.inputs[1].size > 0:
        target = [int(d) for d in ctx.parameter(1, "shape").ravel()]
    else:
        # No shape tensor: TFLite falls back to new_shape, then to the output's shape.
        new_shape = _ints(ctx.options.NewShapeAsNumpy())
        target = [int(d) for d in new_shape] if new_shape.size else list(y.shape)
    if target.count(-1) > 1 or any(d < -1 for d in target):
        raise ctx.fail(f"shape {short_list(target)} may hold at most one -1 and no other negative size")
    known = int(np.prod([d for d in target if d != -1], dtype=np.int64))
    if -1 in target:
        if known == 0 or x.size % known:
            raise ctx.fail(f"shape {short_list(target)} cannot hold the {x.size} elements of input {quoted(x.name)}")
        target = [x.size // known if d == -1 else d for d in target]
    if int(np.prod(target, dtype=np.int64)) != x.size:
        raise ctx.fail(f"shape {short_list(target)} does not hold the {x.size} elements of input {quoted(x.name)}")
    return kinds.RESHAPE, ctx.inputs[:1], ReshapeAttrs(tuple(target))


def _softmax(ctx: _OpContext):
    ctx.need_inputs(1)
    return kinds.SOFTMAX, ctx.inputs, SoftmaxAttrs(float(ctx.options.Beta()))


def _transpose(ctx: _OpContext):
    ctx.need_inputs(2)
    rank = len(ctx.inputs[0].shape)
    perm = tuple(int(p) for p in ctx.parameter(1, "perm").ravel())
    if sorted(p % rank if -rank <= p < rank else p for p in perm) != list(range(rank)):
        raise ctx.fail(f"perm {short_list(perm)} is not a permutation of the {rank} axes")
    return kinds.TRANSPOSE, ctx.inputs[:1], TransposeAttrs(tuple(p % rank for p in perm))


def _resize_nearest(ctx: _OpContext):
    ctx.need_inputs(2)
    _spatial_input(ctx)
    size = tuple(int(s) for s in ctx.parameter(1, "size").ravel())
    if len(size) != 2 or min(size) < 1:
        raise ctx.fail(f"size {short_list(size)} must be two positive numbers (height, width)")
    o = ctx.options
    return kinds.RESIZE_NEAREST_NEIGHBOR, ctx.inputs[:1], ResizeNearestAttrs(
        size, bool(o.AlignCorners()), bool(o.HalfPixelCenters()))


def _concatenation(ctx: _OpContext):
    if not ctx.inputs:
        raise ctx.fail("has no inputs")
    ctx.need_inputs(len(ctx.inputs))
    axis = ctx.axis(ctx.options.Axis(), len(ctx.inputs[0].shape), "axis")
    lo, hi = ctx.activation()
    return kinds.CONCATENATION, ctx.inputs, ConcatAttrs(axis, lo, hi)


def _squeeze(ctx: _OpContext):
    ctx.need_inputs(1)
    rank = len(ctx.inputs[0].shape)
    dims = _ints(ctx.options.SqueezeDimsAsNumpy())
    axes = tuple(sorted({ctx.axis(int(d), rank, "squeeze_dims entry") for d in dims}))
    return kinds.SQUEEZE, ctx.inputs, SqueezeAttrs(axes)


def _leaky_relu(ctx: _OpContext):
    ctx.need_inputs(1)
    return kinds.LEAKY_RELU, ctx.inputs, LeakyReluAttrs(float(np.float32(ctx.options.Alpha())))


def _no_attrs(kind: str) -> Converter:
    def convert(ctx: _OpContext):
        ctx.need_inputs(1)
        return kind, ctx.inputs, None
    return convert


# builtin name -> (options table class, converter)
_CONVERTERS: dict[str, tuple[type | None, Converter]] = {
    "CONV_2D": (tflite.Conv2DOptions, _conv2d),
    "DEPTHWISE_CONV_2D": (tflite.DepthwiseConv2DOptions, _depthwise_conv2d),
    "FULLY_CONNECTED": (tflite.FullyConnectedOptions, _fully_connected),
    "ADD": (tflite.AddOptions, _binary(kinds.ADD, AddAttrs)),
    "MUL": (tflite.MulOptions, _binary(kinds.MUL, MulAttrs)),
    "SUB": (tflite.SubOptions, _binary(kinds.SUB, SubAttrs)),
    "AVERAGE_POOL_2D": (tflite.Pool2DOptions, _pool(kinds.AVERAGE_POOL_2D)),
    "MAX_POOL_2D": (tflite.Pool2DOptions, _pool(kinds.MAX_POOL_2D)),
    "MEAN": (tflite.ReducerOptions, _mean),
    "PAD": (None, _pad),
    "PADV2": (None, _padv2),
    "RESHAPE": (tflite.ReshapeOptions, _reshape),
    "SOFTMAX": (tflite.SoftmaxOptions, _softmax),
    "TRANSPOSE": (None, _transpose),
    "RESIZE_NEAREST_NEIGHBOR": (tflite.ResizeNearestNeighborOptions, _resize_nearest),
    "CONCATENATION": (tflite.ConcatenationOptions, _concatenation),
    "SQUEEZE": (tflite.SqueezeOptions, _squeeze),
    "QUANTIZE": (None, _no_attrs(kinds.QUANTIZE)),
    "DEQUANTIZE": (None, _no_attrs(kinds.DEQUANTIZE)),
    "LOGISTIC": (None, _no_attrs(kinds.LOGISTIC)),
    "HARD_SWISH": (None, _no_attrs(kinds.HARD_SWISH)),
    "RELU": (None, _no_attrs(kinds.RELU)),
    "RELU6": (None, _no_attrs(kinds.RELU6)),
    "ABS": (None, _no_attrs(kinds.ABS)),
    "TANH": (None, _no_attrs(kinds.TANH)),
    "ELU": (None, _no_attrs(kinds.ELU)),
    "RSQRT": (None, _no_attrs(kinds.RSQRT)),
    "LEAKY_RELU": (tflite.LeakyReluOptions, _leaky_relu),
}
_CONVERTERS.update(_MORE_CONVERTERS)


def supported_builtins() -> list[str]:
    """The TFLite builtin operators this frontend reads."""
    return sorted(_CONVERTERS)


# -- the reader ----------------------------------------------------------------------------

class _Reader:
    """Reads the main subgraph of a checked flatbuffer into IR tensors and ops."""

    def __init__(self, data: bytes, name: str):
        self.file = _FlatFile(data)
        self.graph_name = name
        f = self.file
        self.model = f.table(tflite.Model.GetRootAs(data, 0), "the model table")
        n_subgraphs = f.length(self.model.SubgraphsLength(), 4, "the subgraph list")
        if n_subgraphs == 0:
            raise MCUCError("the model has no subgraphs: not a usable TFLite model")
        self.subgraph = f.table(self.model.Subgraphs(0), "subgraph 0")
        self.n_tensors = f.length(self.subgraph.TensorsLength(), 4, "the tensor list")
        self.n_buffers = f.length(self.model.BuffersLength(), 4, "the buffer list")
        self.n_opcodes = f.length(self.model.OperatorCodesLength(), 4, "the operator code list")
        self.tensors: dict[int, Tensor] = {}
        self.names: set[str] = set()

    # tensors

    def tensor(self, index: int, where: str) -> Tensor:
        if not 0 <= index < self.n_tensors:
            raise MCUCError(f"{where}: tensor index {index} is out of range "
                            f"(the subgraph has {self.n_tensors} tensors)")
        if index not in self.tensors:
            self.tensors[index] = self._read_tensor(index)
        return self.tensors[index]

    def _unique_name(self, raw: str, index: int) -> str:
        name = cut_name(raw) or f"tensor_{index}"  # model names reach the IR (and every message) cut
        if name in self.names:
            name = f"{name}_{index}"
        while name in self.names:
            name += "_"
        self.names.add(name)
        return name

    def _read_tensor(self, index: int) -> Tensor:
        f = self.file
        t = f.table(self.subgraph.Tensors(index), f"tensor {index}")
        raw_name = _name(t.Name())
        label = f"tensor {index} ({quoted(raw_name)})"
        type_code = t.Type()
        if type_code not in _DTYPES:
            raise MCUCError(f"{label}: element type {_TYPE_NAMES.get(type_code, type_code)} is not supported "
                            f"(mcuc reads {', '.join(sorted(set(_DTYPES.values())))})")
        dtype = _DTYPES[type_code]
        f.length(t.ShapeLength(), 4, f"{label} shape")
        shape = tuple(int(d) for d in _ints(t.ShapeAsNumpy()))
        if any(d < 0 for d in shape):
            raise MCUCError(f"{label}: shape {short_list(shape)} has a dynamic (negative) dimension; "
                            "mcuc needs static shapes")
        if np.prod(shape, dtype=np.float64) > _MAX_ELEMENTS:
            raise MCUCError(f"{label}: shape {short_list(shape)} has more than {_MAX_ELEMENTS} elements")
        if t.Sparsity() is not None:
            raise MCUCError(f"{label}: sparse tensors are not supported; densify the model")
        quant = self._read_quant(t, shape, dtype, label)
        if t.IsVariable():
            # State kept across invocations; tflite-micro allocates it apart and never reads
            # a buffer it may have (it starts from a reset: Tensor.reset_byte).
            return Tensor(self._unique_name(raw_name, index), shape, dtype, quant, state=True)
        data = self._read_data(t.Buffer(), shape, dtype, label)
        return Tensor(self._unique_name(raw_name, index), shape, dtype, quant, data)

    def _read_quant(self, t, shape: tuple[int, ...], dtype: str, label: str) -> Quantization | None:
        f = self.file
        q = f.table(t.Quantization(), f"{label} quantization")
        if q is None:
            return None
        f.length(q.ScaleLength(), 4, f"{label} scales")
        f.length(q.ZeroPointLength(), 8, f"{label} zero points")
        scale = _floats(q.ScaleAsNumpy())
        if scale.size == 0:
            return None  # min/max-only or empty metadata: not a quantized tensor
        zero_point = _ints(q.ZeroPointAsNumpy())
        if zero_point.size == 0:
            # tflite-micro reads zero_point[0] regardless: an empty vector is no zero point.
            raise MCUCError(f"{label}: quantization has {scale.size} scale(s) but no zero point")
        if zero_point.size == 1 and scale.size > 1:
            zero_point = np.repeat(zero_point, scale.size)
        if zero_point.size != scale.size:
            raise MCUCError(f"{label}: {scale.size} scales but {zero_point.size} zero points")
        if dtype in ("int8", "uint8", "int16"):
            lo, hi = dtype_range(dtype)
            bad = np.flatnonzero((zero_point < lo) | (zero_point > hi))
            if bad.size:
                where = f" (channel {int(bad[0])})" if zero_point.size > 1 else ""
                raise MCUCError(f"{label}: zero point {int(zero_point[bad[0]])}{where} is outside the {dtype} range")
        check_scales(scale, label)
        axis = int(q.QuantizedDimension())
        if scale.size == 1:
            axis = 0  # per-tensor: quantized_dimension carries no meaning
        elif len(shape) == 1 and shape[0] == scale.size:
            # a rank-1 tensor (a bias) keeps its only axis: converters copy a depthwise
            # filter's quantized_dimension (3) into its bias, and tflite-micro never reads it
            axis = 0
        elif not (0 <= axis < len(shape) and shape[axis] == scale.size):
            raise MCUCError(f"{label}: {scale.size} per-channel scales do not match quantized_dimension "
                            f"{axis} of shape {short_list(shape)}")
        return Quantization(scale, zero_point, axis)

    def _read_data(self, buffer_index: int, shape: tuple[int, ...], dtype: str, label: str) -> np.ndarray | None:
        f = self.file
        if not 0 <= buffer_index < self.n_buffers:
            raise MCUCError(f"{label}: buffer index {buffer_index} is out of range "
                            f"(the model has {self.n_buffers} buffers)")
        b = f.table(self.model.Buffers(buffer_index), f"buffer {buffer_index}")
        n = f.length(b.DataLength(), 1, f"buffer {buffer_index}")
        if n:
            raw = bytes(b.DataAsNumpy())
        elif b.Offset() > 1:
            # Large models keep buffers after the flatbuffer, addressed by offset/size.
            start, size = int(b.Offset()), int(b.Size())
            if start + size > f.size:
                raise MCUCError(f"{label}: buffer {buffer_index} lies at bytes {start}..{start + size} "
                                f"beyond the end of the {f.size}-byte file (truncated file?)")
            raw = f.data[start:start + size]
        else:
            return None
        if not raw:
            return None
        expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        if len(raw) != expected:
            raise MCUCError(f"{label}: shape {short_list(shape)} of {dtype} needs {expected} bytes but its "
                            f"buffer {buffer_index} holds {len(raw)}")
        return np.frombuffer(raw, np.dtype(dtype).newbyteorder("<")).astype(dtype).reshape(shape)

    # ops

    def builtin_name(self, opcode_index: int, where: str) -> str:
        if not 0 <= opcode_index < self.n_opcodes:
            raise MCUCError(f"{where}: opcode index {opcode_index} is out of range "
                            f"(the model has {self.n_opcodes} operator codes)")
        code = self.file.table(self.model.OperatorCodes(opcode_index), f"operator code {opcode_index}")
        # Since schema v3a the code lives in builtin_code; old files only fill the
        # deprecated byte. The larger of the two is the real one.
        builtin = max(int(code.DeprecatedBuiltinCode()), int(code.BuiltinCode()))
        if builtin == tflite.BuiltinOperator.CUSTOM:
            raise MCUCError(f"{where}: custom op {quoted(_name(code.CustomCode()))} is not supported")
        return _BUILTIN_NAMES.get(builtin, f"builtin code {builtin}")

    def read_op(self, index: int) -> Op:
        f = self.file
        o = f.table(self.subgraph.Operators(index), f"op {index}")
        builtin = self.builtin_name(int(o.OpcodeIndex()), f"op {index}")
        where = f"op {index} ({builtin})"
        if builtin not in _CONVERTERS:
            raise MCUCError(f"{where}: TFLite builtin {builtin} is not supported by mcuc (`mcuc ops` lists the "
                            f"{len(supported_builtins())} it reads)")
        options_cls, convert = _CONVERTERS[builtin]
        f.length(o.InputsLength(), 4, f"{where} inputs")
        f.length(o.OutputsLength(), 4, f"{where} outputs")
        inputs = [None if int(i) == -1 else self.tensor(int(i), f"{where} input {k}")
                  for k, i in enumerate(_ints(o.InputsAsNumpy()))]
        outputs = [self.tensor(int(i), f"{where} output {k}") for k, i in enumerate(_ints(o.OutputsAsNumpy()))]
        for t in outputs:
            if t.is_constant:
                raise MCUCError(f"{where}: output {quoted(t.name)} has constant data; an op cannot write a constant")
        options = self._options(o, options_cls, where)
        ctx = _OpContext(index, builtin, inputs, outputs, options)
        kind, ir_inputs, attrs = convert(ctx)
        return Op(kind, tuple(ir_inputs), tuple(outputs), attrs, name=outputs[0].name)

    def _options(self, o, options_cls, where: str):
        if options_cls is None:
            return None
        expected = options_cls.__name__
        type_code = int(o.BuiltinOptionsType())
        table = o.BuiltinOptions()
        if type_code == tflite.BuiltinOptions.NONE or table is None:
            options = options_cls()
            options.Init(*_EMPTY_TABLE)  # absent table: every field reads its schema default
            return options
        if _OPTIONS_NAMES.get(type_code) != expected:
            raise MCUCError(f"{where}: builtin options are {_OPTIONS_NAMES.get(type_code, type_code)}, "
                            f"expected {expected}")
        options = options_cls()
        options.Init(table.Bytes, table.Pos)
        return self.file.table(options, f"{where} options")

    def graph(self) -> Graph:
        f = self.file
        n_ops = f.length(self.subgraph.OperatorsLength(), 4, "the operator list")
        ops = [self.read_op(i) for i in range(n_ops)]
        f.length(self.subgraph.InputsLength(), 4, "the graph input list")
        f.length(self.subgraph.OutputsLength(), 4, "the graph output list")
        inputs = [self.tensor(int(i), f"graph input {k}") for k, i in enumerate(_ints(self.subgraph.InputsAsNumpy()))]
        outputs = [self.tensor(int(i), f"graph output {k}") for k, i in enumerate(_ints(self.subgraph.OutputsAsNumpy()))]
        # Some converters list constants among the graph inputs; they are not inputs to feed.
        graph = Graph(tuple(ops), tuple(t for t in inputs if not t.is_constant), tuple(outputs), self.graph_name)
        graph.verify()
        return graph


def _check_shapes(graph: Graph) -> None:
    """Each op's shape inference must agree with the shapes the file declares. A float or
    hybrid op is refused first, with the converter settings (validate.check_integer_arithmetic),
    before its own type rules could refuse it less helpfully."""
    registered = set(supported_kinds())
    for i, op in enumerate(graph.ops):
        if op.kind not in registered:
            raise MCUCError(f"op {i} ({op.kind}): mcuc has no definition of {op.kind} yet")
        check_integer_arithmetic(op)
        try:
            shapes = op_def(op.kind).infer_shapes(op)
        except MCUCError as e:
            detail = str(e).removeprefix(f"{short_label(op)}: ")
            raise MCUCError(f"op {i} ({op.kind}) {quoted(op.name)}: {detail}") from None
        except Exception as e:  # a corrupt file can feed shape rules values no model has
            raise MCUCError(f"op {i} ({op.kind}) {quoted(op.name)}: its inputs and attributes are inconsistent "
                            f"(shape inference failed with {type(e).__name__}: {e})") from e
        declared = [t.shape for t in op.outputs]
        if [tuple(s) for s in shapes] != declared:
            raise MCUCError(f"op {i} ({op.kind}): the file declares output shapes {_shapes_text(declared)} but "
                            f"the inputs and attributes give {_shapes_text(shapes)}")


def _shapes_text(shapes) -> str:
    """Output shapes for a message, cut when a file makes them long."""
    text = str([tuple(int(d) for d in shape) for shape in shapes])
    return text if len(text) <= 120 else "[" + ", ".join(short_list(shape) for shape in shapes[:4]) + ", ...]"


def _strip_size_prefix(data: bytes) -> bytes:
    """A size-prefixed flatbuffer (4-byte length first) read as a plain one."""
    if (len(data) >= 12 and data[4:8] != _FILE_IDENTIFIER and data[8:12] == _FILE_IDENTIFIER
            and struct.unpack_from("<I", data, 0)[0] == len(data) - 4):
        return data[4:]
    return data


def load_tflite(source: str | os.PathLike | bytes, max_tensor_bytes: int | None = None) -> Graph:
    """Read the main subgraph of a .tflite model (a path or the file's bytes) into the IR.

    Raises MCUCError for a missing, truncated or malformed file and for ops or attribute
    values mcuc does not support, naming the op (index and builtin) or tensor, and for
    sizes beyond `max_tensor_bytes` (frontend/validate.py; None: its default).
    """
    max_tensor_bytes = max_tensor_bytes_or_default(max_tensor_bytes)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, name = bytes(source), "model"
    else:
        path = Path(source)
        try:
            data = path.read_bytes()
        except OSError as e:
            raise MCUCError(f"cannot read model file {str(path)!r}: {e.strerror or e}") from None
        name = path.stem or "model"
    data = _strip_size_prefix(data)
    if len(data) < 8:
        raise MCUCError(f"not a TFLite model: {len(data)} bytes is too short for a flatbuffer "
                        "(empty or truncated file)")
    if data[4:8] != _FILE_IDENTIFIER:
        raise MCUCError(f"not a TFLite model: the flatbuffer file identifier is {bytes(data[4:8])!r}, "
                        f"expected {_FILE_IDENTIFIER!r}")
    root = struct.unpack_from("<I", data, 0)[0]
    if root + 4 > len(data):
        raise MCUCError(f"truncated TFLite file: the root table offset {root} lies beyond the "
                        f"{len(data)}-byte file")
    try:
        graph = _Reader(data, name).graph()
    except _CorruptFile as e:
        raise MCUCError(f"truncated or corrupt TFLite file: {e}") from None
    except _READ_ERRORS as e:
        raise MCUCError(f"truncated or corrupt TFLite file: reading it failed with "
                        f"{type(e).__name__}: {e}") from None
    _check_shapes(graph)
    return validate_graph(graph, max_tensor_bytes)
