"""A small TFLite model writer for tests.

Builds models through the flatbuffers object API of the schema that the tflite-micro
package ships, so every model a test writes is one the oracle (tflite-micro) can run.

    mb = ModelBuilder()
    x = mb.tensor("x", (1, 8, 8, 3), scale=0.02, zero_point=-3)
    w = mb.tensor("w", (4, 3, 3, 3), scale=[0.01] * 4, zero_point=[0] * 4, data=weights)
    y = mb.tensor("y", (1, 8, 8, 4), scale=0.05, zero_point=1)
    mb.op("CONV_2D", [x, w, -1], [y], padding="SAME", stride_w=1, stride_h=1)
    model_bytes = mb.build([x], [y])

`single_op_model(kind, input_shapes, rng, ...)` writes a one-layer model with random but
oracle-legal quantization (what hypothesis tests use).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import flatbuffers
import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

# -- name tables -------------------------------------------------------------------

_TENSOR_TYPES = {
    "float32": schema.TensorType.FLOAT32, "int8": schema.TensorType.INT8,
    "uint8": schema.TensorType.UINT8, "int16": schema.TensorType.INT16,
    "int32": schema.TensorType.INT32, "int64": schema.TensorType.INT64,
    "bool": schema.TensorType.BOOL,
}

# The options table each builtin takes (None: the op has no options table).
OPTIONS_TABLE: dict[str, str | None] = {
    "CONV_2D": "Conv2DOptions",
    "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
    "FULLY_CONNECTED": "FullyConnectedOptions",
    "ADD": "AddOptions",
    "AVERAGE_POOL_2D": "Pool2DOptions",
    "MAX_POOL_2D": "Pool2DOptions",
    "MEAN": "ReducerOptions",
    "PAD": "PadOptions",
    "PADV2": "PadV2Options",
    "RESHAPE": "ReshapeOptions",
    "SOFTMAX": "SoftmaxOptions",
    "QUANTIZE": "QuantizeOptions",
    "DEQUANTIZE": "DequantizeOptions",
    "TRANSPOSE": "TransposeOptions",
    "RESIZE_NEAREST_NEIGHBOR": "ResizeNearestNeighborOptions",
    "CONCATENATION": "ConcatenationOptions",
    "MUL": "MulOptions",
    "SUB": "SubOptions",
    "LOGISTIC": None,
    "HARD_SWISH": "HardSwishOptions",
    "RELU": None,
    "RELU6": None,
    "SQUEEZE": "SqueezeOptions",
    "BATCH_MATMUL": "BatchMatMulOptions",
    "L2_NORMALIZATION": "L2NormOptions",
    "SVDF": "SVDFOptions",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "UnidirectionalSequenceLSTMOptions",
}

# Options the schema defaults to 0 but that a test almost always means as 1, and padding
# VALID (the schema's default, 0, is SAME): no padding unless a test asks for it.
_OPTION_DEFAULTS: dict[str, dict[str, object]] = {
    "Conv2DOptions": {"strideW": 1, "strideH": 1, "padding": schema.Padding.VALID},
    "DepthwiseConv2DOptions": {"strideW": 1, "strideH": 1, "depthMultiplier": 1,
                               "padding": schema.Padding.VALID},
    "Pool2DOptions": {"strideW": 1, "strideH": 1, "filterWidth": 1, "filterHeight": 1,
                      "padding": schema.Padding.VALID},
    "SoftmaxOptions": {"beta": 1.0},
}

_ENUM_OPTIONS = {
    "padding": schema.Padding,
    "fusedActivationFunction": schema.ActivationFunctionType,
    "weightsFormat": schema.FullyConnectedOptionsWeightsFormat,
}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _enum_value(enum_cls, value) -> int:
    if isinstance(value, str):
        for name in (value, value.upper()):  # enum names are upper case, except e.g. SHUFFLED4x16INT8
            if isinstance(getattr(enum_cls, name, None), int):
                return getattr(enum_cls, name)
        raise ValueError(f"{value!r} is not a {enum_cls.__name__}")
    return int(value)


def builtin_code(kind: str) -> int:
    try:
        return getattr(schema.BuiltinOperator, kind)
    except AttributeError:
        raise ValueError(f"{kind!r} is not a TFLite builtin operator") from None


def make_options(kind: str, options: dict):
    """The (union type, options object) of a builtin from snake_case or camelCase fields."""
    if kind in OPTIONS_TABLE:
        table = OPTIONS_TABLE[kind]
    else:  # other builtins (tests of unsupported ops): the schema's naming convention
        table = kind.title().replace("_", "") + "Options"
        table = table if hasattr(schema, table + "T") else None
    if table is None:
        if options:
            raise ValueError(f"{kind} takes no options, got {sorted(options)}")
        return schema.BuiltinOptions.NONE, None
    obj = getattr(schema, table + "T")()
    for field, value in _OPTION_DEFAULTS.get(table, {}).items():
        setattr(obj, field, value)
    for key, value in options.items():
        field = _camel(key)
        if not hasattr(obj, field):
            fields = sorted(vars(obj))
            raise ValueError(f"{kind}: {table} has no field {key!r} (fields: {fields})")
        if field in _ENUM_OPTIONS:
            value = _enum_value(_ENUM_OPTIONS[field], value)
        elif isinstance(value, (np.ndarray, tuple)):
            value = [int(v) for v in value]
        setattr(obj, field, value)
    return getattr(schema.BuiltinOptions, table), obj


class ModelBuilder:
    """Accumulates tensors and ops of one subgraph; `build` writes the flatbuffer."""

    def __init__(self, description: str = "mcuc test model"):
        self.description = description
        self.tensors: list = []
        self.operators: list = []
        self.buffers: list = [schema.BufferT()]  # buffer 0 is the empty sentinel by convention
        self.opcodes: list = []
        self._opcode_index: dict[int, int] = {}
        self.model = None  # the ModelT of the last build(), for tests that corrupt it

    def tensor(self, name: str, shape, dtype="int8", scale=None, zero_point=None,
               axis: int = 0, data: np.ndarray | None = None, variable: bool = False) -> int:
        """A tensor; `variable`: state kept across invocations (TFLite's is_variable)."""
        t = schema.TensorT()
        t.name = name
        t.isVariable = bool(variable)
        t.shape = [int(d) for d in shape]
        t.type = _TENSOR_TYPES[dtype]
        t.buffer = 0
        if data is not None:
            array = np.asarray(data)
            if array.dtype != np.dtype(dtype):
                array = array.astype(dtype)
            if array.size != int(np.prod(t.shape, dtype=np.int64)):
                raise ValueError(f"tensor {name}: data has {array.size} elements, shape {t.shape}")
            buf = schema.BufferT()
            buf.data = np.frombuffer(np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes(),
                                     np.uint8)
            self.buffers.append(buf)
            t.buffer = len(self.buffers) - 1
        if scale is not None:
            q = schema.QuantizationParametersT()
            scales = [float(s) for s in np.atleast_1d(np.asarray(scale, np.float64))]
            if zero_point is None:
                zps = [0] * len(scales)
            else:
                zps = [int(z) for z in np.atleast_1d(np.asarray(zero_point))]
                if len(zps) == 1 and len(scales) > 1:
                    zps = zps * len(scales)
            q.scale = scales
            q.zeroPoint = zps
            q.quantizedDimension = int(axis)
            t.quantization = q
        self.tensors.append(t)
        return len(self.tensors) - 1

    def const(self, name: str, values, dtype="int32") -> int:
        """A constant parameter tensor (shape/axes/perm/size/paddings)."""
        array = np.asarray(values, dtype=dtype)
        return self.tensor(name, array.shape, dtype, data=array)

    def op(self, kind: str, inputs: list[int], outputs: list[int], **options) -> None:
        code = builtin_code(kind)
        if code not in self._opcode_index:
            oc = schema.OperatorCodeT()
            oc.builtinCode = code
            oc.deprecatedBuiltinCode = min(code, schema.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES)
            oc.version = 1
            self._opcode_index[code] = len(self.opcodes)
            self.opcodes.append(oc)
        o = schema.OperatorT()
        o.opcodeIndex = self._opcode_index[code]
        o.inputs = [int(i) for i in inputs]
        o.outputs = [int(i) for i in outputs]
        o.builtinOptionsType, o.builtinOptions = make_options(kind, options)
        self.operators.append(o)

    def build_model(self, inputs: list[int], outputs: list[int]):
        """The ModelT object (tests corrupt it, then `pack` it)."""
        sg = schema.SubGraphT()
        sg.tensors = self.tensors
        sg.operators = self.operators
        sg.inputs = [int(i) for i in inputs]
        sg.outputs = [int(i) for i in outputs]
        sg.name = "main"
        m = schema.ModelT()
        m.version = 3
        m.operatorCodes = self.opcodes
        m.subgraphs = [sg]
        m.buffers = self.buffers
        m.description = self.description
        self.model = m
        return m

    def build(self, inputs: list[int], outputs: list[int]) -> bytes:
        return pack(self.build_model(inputs, outputs))


def pack(model) -> bytes:
    """Serialize a ModelT into .tflite bytes."""
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def unpack(model_bytes: bytes):
    """The ModelT of .tflite bytes (for tests that edit a model)."""
    return schema.ModelT.InitFromPackedBuf(bytearray(model_bytes), 0)


# -- random quantization and weights -----------------------------------------------------

def random_quant(rng: np.random.Generator, dtype: str = "int8") -> tuple[float, int]:
    """A realistic activation quantization: scale log-uniform in [1e-3, 0.2], any zero point."""
    scale = float(np.float32(np.exp(rng.uniform(np.log(1e-3), np.log(0.2)))))
    info = np.iinfo(np.dtype(dtype))
    zp = int(rng.integers(info.min, info.max + 1)) if dtype != "int16" else 0
    return scale, zp


def int8_weights(rng: np.random.Generator, shape, axis: int = 0, per_channel: bool = True,
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 weights in [-127, 127] and their scales (one per slice along `axis`
    when per_channel, else one)."""
    data = rng.integers(-127, 128, size=tuple(shape)).astype(np.int8)
    n = shape[axis] if per_channel else 1
    scales = np.exp(rng.uniform(np.log(1e-3), np.log(0.05), size=n)).astype(np.float32)
    return data, scales


def int32_bias(rng: np.random.Generator, channels: int, magnitude: int = 2000) -> np.ndarray:
    return rng.integers(-magnitude, magnitude + 1, size=channels).astype(np.int32)


def random_int8(rng: np.random.Generator, shape, dtype: str = "int8") -> np.ndarray:
    """A random input tensor of a model (what tests feed to the oracle and to mcuc)."""
    if dtype == "float32":
        return rng.uniform(-1.0, 1.0, size=tuple(shape)).astype(np.float32)
    info = np.iinfo(np.dtype(dtype))
    return rng.integers(info.min, info.max + 1, size=tuple(shape)).astype(dtype)


# -- TFLite output-shape rules (independent of mcuc's own shape inference) -----------------

def same_or_valid_size(in_size: int, kernel: int, stride: int, dilation: int, padding: str) -> int:
    effective = (kernel - 1) * dilation + 1
    if padding.upper() == "SAME":
        return (in_size + stride - 1) // stride
    return (in_size - effective + stride) // stride


def broadcast_shape(a: Sequence[int], b: Sequence[int]) -> tuple[int, ...]:
    return tuple(np.broadcast_shapes(tuple(a), tuple(b)))


# -- one-layer models ----------------------------------------------------------------------

@dataclass
class SingleOp:
    """A built one-op model: the builder, its graph inputs/outputs (tensor indices),
    and the shapes and dtypes of the graph inputs."""

    builder: ModelBuilder
    inputs: list[int]
    outputs: list[int]
    input_shapes: list[tuple[int, ...]]
    input_dtypes: list[str]

    def build(self) -> bytes:
        return self.builder.build(self.inputs, self.outputs)

    def random_inputs(self, rng: np.random.Generator) -> list[np.ndarray]:
        return [random_int8(rng, s, d) for s, d in zip(self.input_shapes, self.input_dtypes)]


_FIXED_OUTPUT_QUANT = {"SOFTMAX": (1.0 / 256.0, -128), "LOGISTIC": (1.0 / 256.0, -128)}
# Ops whose int8 kernels in tflite-micro require the output quantization to equal the input's.
_SAME_QUANT = {"MAX_POOL_2D", "AVERAGE_POOL_2D", "PAD", "PADV2", "RESHAPE", "TRANSPOSE",
               "SQUEEZE", "RESIZE_NEAREST_NEIGHBOR", "CONCATENATION"}


def single_op_builder(kind: str, input_shapes: Sequence[Sequence[int]], rng: np.random.Generator, *,
                      out_channels: int | None = None, kernel: tuple[int, int] = (3, 3),
                      units: int | None = None, groups: int = 1, per_channel: bool = True,
                      bias: bool = True, axes: Sequence[int] | None = None,
                      paddings: Sequence[Sequence[int]] | None = None, pad_value: int | None = None,
                      new_shape: Sequence[int] | None = None, perm: Sequence[int] | None = None,
                      size: Sequence[int] | None = None, input_dtype: str = "int8",
                      output_dtype: str = "int8", input_quants: Sequence[tuple[float, int]] | None = None,
                      output_quant: tuple[float, int] | None = None,
                      constant_inputs: Sequence[int] = (), **options) -> SingleOp:
    """A one-layer model of `kind` with random, oracle-legal weights and quantization.

    `input_shapes` are the shapes of the activation inputs; parameters of the layer come
    from the keywords (out_channels/kernel/groups for CONV_2D, kernel for DEPTHWISE_CONV_2D
    with `depth_multiplier` as an option, units for FULLY_CONNECTED, axes for MEAN, paddings
    (+ pad_value) for PAD/PADV2, new_shape for RESHAPE, perm for TRANSPOSE, size for
    RESIZE_NEAREST_NEIGHBOR); everything else goes into the op's options (padding="SAME",
    stride_w=2, fused_activation_function="RELU6", axis=..., squeeze_dims=..., ...).
    `constant_inputs` lists positions of activation inputs (e.g. ADD's second) that are
    written as constants with random data instead of graph inputs.
    """
    mb = ModelBuilder()
    shapes = [tuple(int(d) for d in s) for s in input_shapes]
    if input_quants is None:
        first = random_quant(rng, input_dtype) if input_dtype != "float32" else None
        input_quants = [first] + [random_quant(rng, input_dtype) for _ in shapes[1:]]
        if kind in _SAME_QUANT:
            input_quants = [first] * len(shapes)
    ins: list[int] = []
    graph_inputs: list[int] = []
    for i, (shape, q) in enumerate(zip(shapes, input_quants)):
        scale, zp = q if q is not None else (None, None)
        data = random_int8(rng, shape, input_dtype) if i in constant_inputs else None
        t = mb.tensor(f"input_{i}", shape, input_dtype, scale, zp, data=data)
        ins.append(t)
        if data is None:
            graph_inputs.append(t)
    x_shape = shapes[0]
    in_scale = input_quants[0][0] if input_quants[0] is not None else None
    extra: list[int] = []
    opts = dict(options)

    def weights_and_bias(w_shape, channel_axis, channels):
        w, w_scales = int8_weights(rng, w_shape, axis=channel_axis, per_channel=per_channel)
        w_t = mb.tensor("weights", w_shape, "int8", w_scales, np.zeros(w_scales.size, np.int64),
                        axis=channel_axis, data=w)
        if not bias:
            return [w_t, -1]
        b_scales = (np.float64(in_scale) * w_scales.astype(np.float64)).astype(np.float32)
        if b_scales.size == 1:
            b_scales = np.repeat(b_scales, 1)
        b_t = mb.tensor("bias", (channels,), "int32", b_scales, np.zeros(b_scales.size, np.int64),
                        data=int32_bias(rng, channels))
        return [w_t, b_t]

    def window_out(h, w, kh, kw):
        pad = str(opts.get("padding", "VALID"))
        sh, sw = int(opts.get("stride_h", 1)), int(opts.get("stride_w", 1))
        dh, dw = int(opts.get("dilation_h_factor", 1)), int(opts.get("dilation_w_factor", 1))
        return (same_or_valid_size(h, kh, sh, dh, pad), same_or_valid_size(w, kw, sw, dw, pad))

    if kind == "CONV_2D":
        oc = out_channels if out_channels is not None else x_shape[3]
        kh, kw = kernel
        extra = weights_and_bias((oc, kh, kw, x_shape[3] // groups), 0, oc)
        out_shape = (x_shape[0], *window_out(x_shape[1], x_shape[2], kh, kw), oc)
    elif kind == "DEPTHWISE_CONV_2D":
        dm = int(opts.setdefault("depth_multiplier", 1))
        kh, kw = kernel
        oc = x_shape[3] * dm
        extra = weights_and_bias((1, kh, kw, oc), 3, oc)
        out_shape = (x_shape[0], *window_out(x_shape[1], x_shape[2], kh, kw), oc)
    elif kind == "FULLY_CONNECTED":
        depth = x_shape[-1]
        n = units if units is not None else depth
        extra = weights_and_bias((n, depth), 0, n)
        rows = int(np.prod(x_shape)) // depth
        out_shape = (*x_shape[:-1], n) if opts.get("keep_num_dims") else (rows, n)
    elif kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        fh, fw = int(opts.get("filter_height", 1)), int(opts.get("filter_width", 1))
        out_shape = (x_shape[0], *window_out(x_shape[1], x_shape[2], fh, fw), x_shape[3])
    elif kind in ("ADD", "SUB", "MUL"):
        out_shape = broadcast_shape(shapes[0], shapes[1])
    elif kind == "MEAN":
        ax = [a % len(x_shape) for a in (axes if axes is not None else (1, 2))]
        extra = [mb.const("axes", list(axes if axes is not None else (1, 2)))]
        keep = bool(opts.get("keep_dims", False))
        out_shape = tuple(1 if i in ax else d for i, d in enumerate(x_shape) if keep or i not in ax)
    elif kind in ("PAD", "PADV2"):
        pads = np.asarray(paddings if paddings is not None else [[0, 0]] * len(x_shape), np.int32)
        extra = [mb.const("paddings", pads)]
        if kind == "PADV2":
            value = pad_value if pad_value is not None else int(rng.integers(-128, 128))
            scale, zp = input_quants[0]
            extra.append(mb.tensor("constant_values", (1,), "int8", scale, zp, data=np.array([value], np.int8)))
        out_shape = tuple(d + int(p[0]) + int(p[1]) for d, p in zip(x_shape, pads))
    elif kind == "RESHAPE":
        target = list(new_shape if new_shape is not None else (x_shape[0], -1))
        extra = [mb.const("shape", target)]
        total = int(np.prod(x_shape))
        known = int(np.prod([d for d in target if d != -1]))
        out_shape = tuple(total // known if d == -1 else d for d in target)
    elif kind == "TRANSPOSE":
        p = list(perm if perm is not None else reversed(range(len(x_shape))))
        extra = [mb.const("perm", p)]
        out_shape = tuple(x_shape[i] for i in p)
    elif kind == "RESIZE_NEAREST_NEIGHBOR":
        s = list(size if size is not None else (x_shape[1] * 2, x_shape[2] * 2))
        extra = [mb.const("size", s)]
        out_shape = (x_shape[0], s[0], s[1], x_shape[3])
    elif kind == "CONCATENATION":
        axis = int(opts.get("axis", -1)) % len(x_shape)
        opts["axis"] = axis
        out_shape = tuple(sum(s[axis] for s in shapes) if i == axis else d for i, d in enumerate(x_shape))
    elif kind == "SQUEEZE":
        dims = [d % len(x_shape) for d in opts.get("squeeze_dims", [])]
        out_shape = tuple(d for i, d in enumerate(x_shape) if not (d == 1 and (not dims or i in dims)))
    elif kind in ("SOFTMAX", "LOGISTIC", "HARD_SWISH", "RELU", "RELU6", "QUANTIZE", "DEQUANTIZE"):
        out_shape = x_shape
    else:
        raise ValueError(f"single_op_builder does not know {kind}")

    if kind == "DEQUANTIZE":
        output_dtype = "float32"
    if output_dtype == "float32":
        out_q: tuple[float, int] | tuple[None, None] = (None, None)
    elif output_quant is not None:
        out_q = output_quant
    elif kind in _FIXED_OUTPUT_QUANT:
        out_q = _FIXED_OUTPUT_QUANT[kind]
    elif kind in _SAME_QUANT:
        out_q = input_quants[0]
    else:
        out_q = random_quant(rng, output_dtype)
    y = mb.tensor("output", out_shape, output_dtype, out_q[0], out_q[1])
    mb.op(kind, ins + extra, [y], **opts)
    return SingleOp(mb, graph_inputs, [y], [shapes[i] for i in range(len(shapes)) if i not in constant_inputs],
                    [input_dtype] * len(graph_inputs))


def single_op_model(kind: str, input_shapes: Sequence[Sequence[int]], rng: np.random.Generator,
                    **kwargs) -> bytes:
    """The .tflite bytes of `single_op_builder(kind, input_shapes, rng, **kwargs)`."""
    return single_op_builder(kind, input_shapes, rng, **kwargs).build()
