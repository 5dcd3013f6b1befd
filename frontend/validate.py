"""Checks every frontend applies to the graph it read, before anything computes on it.

A model file is input from anyone: its sizes, scales and constants must be ones the
later stages can hold. Each check raises one MCUCError naming the tensor or op (names
cut by `ir.tensor.quoted`) and the limit it broke:

- sizes: no tensor, and no padded input of a window op (what the reference interpreter
  pads before it slides), may exceed `max_tensor_bytes` (`--max-tensor-bytes`, default
  DEFAULT_MAX_TENSOR_BYTES). No microcontroller holds more, and the check runs on shapes
  alone, before any array of that size exists;
- quantization: scales finite and inside SCALE_RANGE (beyond it float32 arithmetic in the
  kernels and the oracles overflows or divides by almost nothing);
- operands: the integer inputs and outputs of ops whose arithmetic reads their
  quantization must have one;
- accumulators: a convolution's or fully connected layer's bias plus its largest possible
  sum of products must fit in int32. The oracles add the bias in int32 and wrap around, the
  generated C would overflow a signed int (undefined behaviour); mcuc refuses such a layer
  instead of computing a third answer;
- rescaling: a MEAN's or integer QUANTIZE's input scale / output scale below 2^30;
- computed inputs: a convolution, pool, reshape, activation... reads a computed value as
  its first input, not a constant (the Cortex-M kernels read it from the arena);
- dtypes: pooling, data movement and clamping ops output their input's dtype.

`check_size` is also called by the ONNX frontend while it builds ops (some builders
allocate arrays sized by a model attribute), `check_scales` by both readers.
"""
from __future__ import annotations

import numpy as np

from mcuc.ir.errors import MCUCError
from mcuc.ir.graph import Graph
from mcuc.ir.numerics import TFLITE, rule_of
from mcuc.ir.ops import Trait, kinds, op_def
from mcuc.ir.tensor import quoted, short_list

MIB = 1 << 20
# Far beyond the SRAM of any Cortex-M, and small enough to keep the host-side work (the
# reference interpreter, the planner) bounded.
DEFAULT_MAX_TENSOR_BYTES = 64 * MIB
# Quantization scales a trained int8 model can have (the shared models span 3e-13 .. 1).
SCALE_RANGE = (1e-30, 1e6)
_INT32_MAX = 2**31 - 1
# A bound on |input value| in any kernel's sum, next to |zero point| (which the C kernels
# fold into the bias at compile time): int8 values reach 128, the uint8 values of
# onnxruntime's kernels 255; 384 covers both with margin, in every summation order.
_INPUT_MAGNITUDE = 384
_INPUT_MAGNITUDE_INT16 = 32768  # |int16| (16x8 layers with an int32 bias sum in int32)


def max_tensor_bytes_or_default(value: int | None) -> int:
    if value is None:
        return DEFAULT_MAX_TENSOR_BYTES
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise MCUCError(f"--max-tensor-bytes must be a positive number of bytes, got {value!r}")
    return int(value)


def _format_bytes(n: int) -> str:
    return f"{n / MIB:g} MiB" if n % MIB == 0 and n >= MIB else f"{n:,} B"


def check_size(shape, itemsize: int, what: str, max_tensor_bytes: int | None = None) -> None:
    """MCUCError when a tensor of `shape` (Python ints: no array is made) and `itemsize`
    exceeds the limit, or has a negative dimension."""
    limit = max_tensor_bytes_or_default(max_tensor_bytes)
    dims = [int(d) for d in shape]
    if any(d < 0 for d in dims):
        raise MCUCError(f"{what}: shape {short_list(dims)} has a negative dimension")
    nbytes = itemsize
    for d in dims:
        nbytes *= d
    if nbytes > limit:
        if limit == DEFAULT_MAX_TENSOR_BYTES:
            bound = (f"the {_format_bytes(limit)} one tensor may take, beyond any microcontroller's memory "
                     "(raise it with --max-tensor-bytes)")
        else:
            bound = f"the --max-tensor-bytes limit of {_format_bytes(limit)}"
        raise MCUCError(f"{what}: shape {short_list(dims)} takes {_format_bytes(nbytes)}, more than {bound}")


def check_scales(scale, what: str) -> None:
    """MCUCError unless every scale is finite and inside SCALE_RANGE."""
    scale = np.asarray(scale, np.float64).reshape(-1)
    if scale.size == 0:
        raise MCUCError(f"{what}: its quantization has no scale")
    lo, hi = SCALE_RANGE
    bad = np.flatnonzero(~np.isfinite(scale) | (scale < lo) | (scale > hi))
    if bad.size:
        i = int(bad[0])
        where = f" (channel {i})" if scale.size > 1 else ""
        raise MCUCError(f"{what}: quantization scale {scale[i]:g}{where} is not a finite number in "
                        f"[{lo:g}, {hi:g}]; no int8 model has it")


def _check_window_input(op, limit: int) -> None:
    x = op.inputs[0]
    p = op.attrs.padding
    if len(x.shape) != 4:
        return
    n, h, w, c = x.shape
    padded = (n, h + p.top + p.bottom, w + p.left + p.right, c)
    # The reference pads (x - zero point) as int64 (pool2d: the raw values).
    check_size(padded, 8, f"{op.kind} {quoted(op.name)}: its padded input", limit)


def _weight_magnitudes(op) -> np.ndarray | None:
    """Per output channel, the sum of |weight| of a CONV_2D / DEPTHWISE_CONV_2D /
    FULLY_CONNECTED (None: weights not constant)."""
    w = op.inputs[1]
    if w.data is None:
        return None
    a = np.abs(w.data.astype(np.int64))
    if op.kind == kinds.CONV_2D:
        return a.reshape(a.shape[0], -1).sum(axis=1)
    if op.kind == kinds.DEPTHWISE_CONV_2D:
        return a.reshape(-1, a.shape[-1]).sum(axis=0)
    return a.reshape(a.shape[0], -1).sum(axis=1)


def check_accumulator(op) -> None:
    """MCUCError when bias + products of a conv / depthwise / fully connected layer can
    leave int32 for some input (see the module docstring)."""
    if len(op.inputs) < 3 or op.inputs[2] is None or op.inputs[2].data is None:
        return
    x, bias = op.inputs[0], op.inputs[2]
    magnitude = _weight_magnitudes(op)
    if magnitude is None or bias.dtype not in ("int32", "int64"):
        return
    if x.dtype == "int16" and bias.dtype == "int64":
        return  # 16x8 with an int64 bias sums in int64 (ir/ops/int16_stage.py)
    zp = 0 if x.quant is None else int(np.max(np.abs(x.quant.zero_point)))
    b = np.abs(bias.data.astype(np.int64)).reshape(-1)
    if magnitude.size != b.size:
        return  # a shape error, reported by the op's own checks
    reach = b + magnitude * (zp + (_INPUT_MAGNITUDE_INT16 if x.dtype == "int16" else _INPUT_MAGNITUDE))
    over = np.flatnonzero(reach > _INT32_MAX)
    if over.size:
        c = int(over[0])
        raise MCUCError(f"{op.kind} {quoted(op.name)}: bias {int(bias.data.reshape(-1)[c])} of output channel {c} "
                        f"plus its weights' products can reach {int(reach[c]):,}, beyond int32; the oracle would "
                        "wrap around and mcuc's kernels cannot: requantize the layer (a bias this large is an "
                        "error in the model)")


# Ops whose arithmetic reads the quantization of their integer operands (the data-movement
# ops, pooling and RELU/RELU6 work without one, or check it themselves).
_QUANTIZED_ARITHMETIC = frozenset({kinds.CONV_2D, kinds.DEPTHWISE_CONV_2D, kinds.FULLY_CONNECTED, kinds.ADD, kinds.SUB,
                                   kinds.MUL, kinds.MEAN, kinds.SOFTMAX, kinds.LOGISTIC, kinds.HARD_SWISH,
                                   kinds.QUANTIZE, kinds.DEQUANTIZE})
_QUANTIZED_TYPES = ("int8", "uint8", "int16")


def check_quantized_operands(op) -> None:
    """An op of _QUANTIZED_ARITHMETIC needs the quantization of its int8/uint8/int16
    inputs (weights included) and outputs (biases are int32 and implied)."""
    if op.kind not in _QUANTIZED_ARITHMETIC:
        return
    for role, tensors in (("input", op.inputs), ("output", op.outputs)):
        for t in tensors:
            if t is not None and t.dtype in _QUANTIZED_TYPES and t.quant is None:
                raise MCUCError(f"{op.kind} {quoted(op.name)}: its {t.dtype} {role} {quoted(t.name)} has no "
                                "quantization (scale and zero point), which its arithmetic needs")


# A requantization multiplier of 2^30 or more shifts the value up by 30+ bits before the
# high multiply: neither the oracles nor int32 kernels compute that the same way (the
# convolutions refuse it in ir/ops/common.channel_requant_params).
RESCALE_LIMIT = 2.0**30
_RESCALED = (kinds.MEAN, kinds.QUANTIZE)


def check_rescale(op) -> None:
    """MEAN and an integer-to-integer QUANTIZE scale by input scale / output scale:
    MCUCError when that ratio reaches RESCALE_LIMIT (the fuzz run found a MEAN with an
    output scale of 1e-30 that both backends computed differently from tflite-micro)."""
    x, y = op.inputs[0], op.outputs[0]
    if x is None or x.quant is None or y.quant is None or x.dtype == "float32" or y.dtype == "float32":
        return
    ratio = float(np.max(x.quant.scale)) / float(np.min(y.quant.scale))
    if not ratio < RESCALE_LIMIT:
        raise MCUCError(f"{op.kind} {quoted(op.name)}: input scale / output scale = {ratio:g} is not below 2^30: "
                        "the quantization scales are inconsistent")


# Ops that compute on their first input as an activation: a constant there (a model that
# left a constant computation unfolded, or a corrupt tensor index) has no place in the
# arena, which the Cortex-M kernels read it from.
_COMPUTED_FIRST_INPUT = frozenset({
    kinds.CONV_2D, kinds.DEPTHWISE_CONV_2D, kinds.FULLY_CONNECTED, kinds.AVERAGE_POOL_2D, kinds.MAX_POOL_2D,
    kinds.MEAN, kinds.SOFTMAX, kinds.RESHAPE, kinds.RELU, kinds.RELU6, kinds.LOGISTIC, kinds.PAD, kinds.TRANSPOSE,
    kinds.QUANTIZE, kinds.DEQUANTIZE, kinds.HARD_SWISH})


def check_computed_input(op) -> None:
    """MCUCError when an op of _COMPUTED_FIRST_INPUT reads a constant as its input."""
    x = op.inputs[0] if op.inputs else None
    if op.kind in _COMPUTED_FIRST_INPUT and x is not None and x.is_constant:
        raise MCUCError(f"{op.kind} {quoted(op.name)}: its input {quoted(x.name)} is a constant; mcuc compiles ops "
                        "on computed values (fold constant subgraphs before converting the model)")


# Ops whose output has their (first) input's dtype: pooling, data movement, clamping.
_SAME_DTYPE = frozenset({
    kinds.AVERAGE_POOL_2D, kinds.MAX_POOL_2D, kinds.RESHAPE, kinds.SQUEEZE, kinds.EXPAND_DIMS, kinds.PAD,
    kinds.TRANSPOSE, kinds.CONCATENATION, kinds.RELU, kinds.RELU6, kinds.RESIZE_NEAREST_NEIGHBOR,
    kinds.SPACE_TO_DEPTH, kinds.DEPTH_TO_SPACE, kinds.SLICE, kinds.STRIDED_SLICE, kinds.MAXIMUM, kinds.MINIMUM})


def check_same_dtype(op) -> None:
    """MCUCError when an op of _SAME_DTYPE declares an output of another dtype than its
    input (tflite-micro writes the input's bytes into it regardless: an int8 MAX_POOL_2D
    with a uint8 output gave answers 255 apart, found by the fuzz run)."""
    x = op.inputs[0] if op.inputs else None
    if op.kind not in _SAME_DTYPE or x is None:
        return
    for y in op.outputs:
        if y.dtype != x.dtype:
            raise MCUCError(f"{op.kind} {quoted(op.name)}: output {quoted(y.name)} is {y.dtype} but its input "
                            f"{quoted(x.name)} is {x.dtype}; this op does not convert types (insert a QUANTIZE)")


# Ops whose float32 tensors are legal under TFLite's rule: the quantization edges, and
# views (RESHAPE, SQUEEZE, EXPAND_DIMS move no values, whatever their type).
_FLOAT_EDGES = frozenset({kinds.QUANTIZE, kinds.DEQUANTIZE})


def check_integer_arithmetic(op) -> None:
    """MCUCError when an op under TFLite's integer rule reads or writes float32 values:
    a float model, or a dynamic-range (hybrid) one with float activations and int8
    weights. mcuc's kernels compute quantized values only; before, such an op loaded and
    later failed with a backend's message, or a traceback in `mcuc verify`."""
    if op.kind in _FLOAT_EDGES or op_def(op.kind).has(Trait.VIEW) or rule_of(op.attrs) != TFLITE:
        return
    for role, tensors in (("input", op.inputs), ("output", op.outputs)):
        for t in tensors:
            if t is not None and t.dtype == "float32" and not t.is_constant:
                hybrid = any(w is not None and w.is_constant and w.dtype == "int8" for w in op.inputs[1:])
                kind = "a dynamic-range (hybrid) model: float activations, int8 weights" if hybrid else "a float model"
                raise MCUCError(
                    f"{op.kind} {quoted(op.name)}: float32 {role} {quoted(t.name)}: this is {kind}, and mcuc compiles "
                    "fully quantized int8/int16 models; convert with full integer quantization (TFLite converter: "
                    "optimizations=[tf.lite.Optimize.DEFAULT], a representative_dataset, target_spec.supported_ops="
                    "[tf.lite.OpsSet.TFLITE_BUILTINS_INT8])")


def validate_graph(graph: Graph, max_tensor_bytes: int | None = None) -> Graph:
    """Every check above on a graph a frontend read; returns the graph."""
    limit = max_tensor_bytes_or_default(max_tensor_bytes)
    if not graph.outputs:
        raise MCUCError("the model has no graph outputs: nothing to compute")
    seen = set()
    for t in [*graph.inputs, *(t for op in graph.ops for t in (*op.inputs, *op.outputs) if t is not None)]:
        if t in seen:
            continue
        seen.add(t)
        check_size(t.shape, t.itemsize, f"tensor {quoted(t.name)}", limit)
        if not t.is_constant and t.size == 0:
            raise MCUCError(f"tensor {quoted(t.name)}: shape {short_list(t.shape)} holds no elements; "
                            "mcuc compiles tensors with at least one")
        if t.quant is not None:
            check_scales(t.quant.scale, f"tensor {quoted(t.name)}")
    for op in graph.ops:
        check_integer_arithmetic(op)
        check_quantized_operands(op)
        check_computed_input(op)
        check_same_dtype(op)
        if op.kind in (kinds.CONV_2D, kinds.DEPTHWISE_CONV_2D, kinds.AVERAGE_POOL_2D, kinds.MAX_POOL_2D):
            _check_window_input(op, limit)
        if op.kind in (kinds.CONV_2D, kinds.DEPTHWISE_CONV_2D, kinds.FULLY_CONNECTED):
            check_accumulator(op)
        if op.kind in _RESCALED:
            check_rescale(op)
    return graph
