"""Mutated model files for the fuzz suite (tests/fuzz/test_fuzz.py, scripts/fuzz.py).

A case is (base model, mutation kind, seed). The bases are the shared .tflite models and
small generated TFLite (tests/support/tflite_builder.py) and ONNX (tests/support/
onnx_models.py, tests/support/hostile_models.py) models. A mutation is either byte-level
(bit flips, random bytes, truncation, a zeroed region, an inserted region) or structured:
one field of the flatbuffer (through the schema's object API) or of the protobuf edited
to a value chosen to break an assumption (shapes, strides, dilations, paddings, groups,
depth multipliers, tensor types, scales, zero points, op and tensor indices, op types,
external data, names).

Every mutation takes a `random.Random`: scripts/fuzz.py seeds one per case, the pytest
run gets hypothesis' (`st.randoms()`), so a failing case shrinks and replays.
"""
from __future__ import annotations

import copy
import random
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np

from tests.support.paths import SHARED_MODELS_DIR

# A name that would declare a C global if it reached generated code raw; the harness
# looks for the identifier `mcuc_injected` outside comments and string literals.
INJECTION_MARKER = "mcuc_injected"
HOSTILE_NAMES = [
    f"y */ int {INJECTION_MARKER} = 42; //",
    f"/* {INJECTION_MARKER} */",
    f"a\nint {INJECTION_MARKER};\n#error {INJECTION_MARKER}",
    f"q\"{INJECTION_MARKER}\\\"'",
    f"end\\\nint {INJECTION_MARKER};",
    f"tri??/\nint {INJECTION_MARKER};",
    f"#define {INJECTION_MARKER} 1",
    "caf\u00e9 \u2603 \U0001F600 \u202e",
    "x" * 5000 + f"*/ int {INJECTION_MARKER};",
    "",
]

INTERESTING_INTS = [0, 1, -1, 2, 3, 7, 255, 256, -128, 127, 128, 65535, 46000, 2**31 - 1, -2**31, 2**16 + 1]
INTERESTING_FLOATS = [0.0, -1.0, float("nan"), float("inf"), -float("inf"), 1e38, 1e-45, 1e-30, 1e6, 3.4e38, 0.5]


@dataclass(frozen=True)
class Base:
    name: str
    format: str  # "tflite" | "onnx"
    data: bytes


# -- the bases ---------------------------------------------------------------------------

# Shared models in the order of their size (smaller ones are drawn more often: they run
# faster, so more cases fit in a budget).
SHARED_TFLITE = ["hello_world_int8", "micro_speech_int8", "kws_ref_model", "pretrainedResnet_quant", "ad01_int8",
                 "mcunet_person_det", "vww_96_int8", "mcunet_vww1"]


def _generated_tflite() -> dict[str, bytes]:
    from tests.support import hostile_models
    from tests.support.tflite_builder import single_op_model

    rng = np.random.default_rng(1)
    bases = {
        "gen_conv": single_op_model("CONV_2D", [(1, 8, 8, 3)], rng, out_channels=4, padding="SAME"),
        "gen_conv_s2_dil": single_op_model("CONV_2D", [(1, 9, 9, 2)], rng, out_channels=3, stride_w=2, stride_h=2,
                                           dilation_w_factor=2, dilation_h_factor=1),
        "gen_depthwise": single_op_model("DEPTHWISE_CONV_2D", [(1, 7, 7, 4)], rng, depth_multiplier=2, padding="SAME"),
        "gen_fc": single_op_model("FULLY_CONNECTED", [(1, 16)], rng, units=5),
        "gen_avgpool": single_op_model("AVERAGE_POOL_2D", [(1, 8, 8, 3)], rng, filter_width=2, filter_height=2,
                                       stride_w=2, stride_h=2),
        "gen_maxpool": single_op_model("MAX_POOL_2D", [(1, 6, 6, 2)], rng, filter_width=3, filter_height=3,
                                       padding="SAME"),
        "gen_add": single_op_model("ADD", [(1, 4, 4, 3), (1, 4, 4, 3)], rng),
        "gen_softmax": single_op_model("SOFTMAX", [(1, 10)], rng),
        "gen_mean": single_op_model("MEAN", [(1, 5, 5, 4)], rng, axes=[1, 2], keep_dims=True),
        "gen_pad": single_op_model("PAD", [(1, 4, 4, 2)], rng, paddings=[[0, 0], [1, 1], [2, 0], [0, 0]]),
        "gen_conv_plain": hostile_models.tflite_conv(),
        "gen_dw_plain": hostile_models.tflite_conv("DEPTHWISE_CONV_2D", channels=4, out_channels=4),
    }
    return bases


def _generated_onnx() -> dict[str, bytes]:
    from tests.support import hostile_models, onnx_models

    bases = {
        "onnx_qdq_conv": hostile_models.qdq_conv().SerializeToString(),
        "onnx_qdq_conv_group": hostile_models.qdq_conv(channels=4, out_channels=4, group=2,
                                                       conv_attrs={"pads": [1, 1, 1, 1]}).SerializeToString(),
        "onnx_qdq_conv_strided": hostile_models.qdq_conv(size=9, conv_attrs={"strides": [2, 2], "dilations": [1, 2]},
                                                         w_scale=[0.02, 0.03, 0.01, 0.02]).SerializeToString(),
        "onnx_qdq_avgpool": hostile_models.qdq_avgpool().SerializeToString(),
        "onnx_qlinear_conv_int8": onnx_models.qlinear_conv_model("int8"),
        "onnx_qlinear_conv_uint8": onnx_models.qlinear_conv_model("uint8"),
    }
    rng = np.random.default_rng(5)
    bases["onnx_mlp_qdq"] = onnx_models.quantize(onnx_models.mlp(rng), "qdq")
    bases["onnx_mlp_qop"] = onnx_models.quantize(onnx_models.mlp(rng), "qoperator")
    bases["onnx_kws_qdq"] = onnx_models.quantize(onnx_models.kws_ds_cnn(rng), "qdq")
    bases["onnx_mnv3_qdq"] = onnx_models.quantize(onnx_models.mobilenet_v3_block(rng, size=16), "qdq")
    bases["onnx_mnv3_qop_u8"] = onnx_models.quantize(onnx_models.mobilenet_v3_block(rng, size=16), "qoperator",
                                                     activations="uint8")
    return bases


@lru_cache(maxsize=None)
def bases(fmt: str) -> tuple[Base, ...]:
    """The base models of one format (built once per process; the ONNX ones run
    onnxruntime's quantize_static, a few seconds)."""
    if fmt == "tflite":
        found = [Base(n, "tflite", (SHARED_MODELS_DIR / f"{n}.tflite").read_bytes()) for n in SHARED_TFLITE
                 if (SHARED_MODELS_DIR / f"{n}.tflite").is_file()]
        return tuple(found + [Base(n, "tflite", d) for n, d in _generated_tflite().items()])
    return tuple(Base(n, "onnx", d) for n, d in _generated_onnx().items())


def pick_base(rng: random.Random, fmt: str) -> Base:
    pool = bases(fmt)
    # weight 1/(1 + rank/4): the small models first, every model reachable
    weights = [1.0 / (1 + i / 4) if b.name in SHARED_TFLITE else 1.0 for i, b in enumerate(pool)]
    return rng.choices(pool, weights=weights)[0]


# -- byte-level --------------------------------------------------------------------------

def _flip(rng: random.Random, data: bytearray) -> None:
    for _ in range(rng.choice([1, 1, 2, 4, 16])):
        i = rng.randrange(len(data))
        data[i] ^= 1 << rng.randrange(8)


def _random_bytes(rng: random.Random, data: bytearray) -> None:
    for _ in range(rng.choice([1, 2, 8])):
        data[rng.randrange(len(data))] = rng.randrange(256)


def _truncate(rng: random.Random, data: bytearray) -> None:
    del data[rng.choice([0, rng.randrange(len(data)), rng.randrange(min(64, len(data)))]):]


def _zero_region(rng: random.Random, data: bytearray) -> None:
    length = rng.choice([1, 4, 16, 256, max(1, len(data) // 10)])
    start = rng.randrange(len(data))
    data[start:start + length] = bytes(len(data[start:start + length]))


def _insert(rng: random.Random, data: bytearray) -> None:
    at = rng.randrange(len(data) + 1)
    data[at:at] = bytes(rng.randrange(256) for _ in range(rng.choice([1, 4, 13])))


BYTE_MUTATIONS: dict[str, Callable[[random.Random, bytearray], None]] = {
    "flip": _flip, "random_bytes": _random_bytes, "truncate": _truncate, "zero_region": _zero_region,
    "insert": _insert,
}


def mutate_bytes(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    kind = rng.choice(sorted(BYTE_MUTATIONS))
    out = bytearray(data)
    BYTE_MUTATIONS[kind](rng, out)
    return bytes(out), kind


# -- structured TFLite -------------------------------------------------------------------

_TFLITE_OPTION_FIELDS = ["strideW", "strideH", "dilationWFactor", "dilationHFactor", "padding", "depthMultiplier",
                         "filterWidth", "filterHeight", "fusedActivationFunction", "beta", "keepDims", "axis",
                         "weightsFormat", "keepNumDims", "newShape", "squeezeDims", "alignCorners",
                         "halfPixelCenters", "potScaleInt16", "asymmetricQuantizeInputs"]


def _int_for(rng: random.Random, current=None) -> int:
    choices = list(INTERESTING_INTS)
    if isinstance(current, (int, np.integer)) and not isinstance(current, bool):
        choices += [int(current) + 1, int(current) - 1, int(current) * 2]
    return rng.choice(choices)


def _tflite_structured(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    from tests.support.tflite_builder import pack, schema, unpack

    m = unpack(data)
    sg = m.subgraphs[rng.randrange(len(m.subgraphs))]
    tensors, ops = sg.tensors or [], sg.operators or []
    kind = rng.choice(["shape", "rank", "type", "scale", "zero_point", "quant_drop", "quant_dim", "scale_count",
                       "opcode_index", "builtin_code", "op_input", "op_output", "option", "options_table",
                       "buffer_data", "buffer_index", "graph_io", "name", "drop_op", "swap_ops", "duplicate_op",
                       "scale_mild", "zero_point_mild", "weights_random", "bias_random"])
    t = tensors[rng.randrange(len(tensors))] if tensors else None
    op = ops[rng.randrange(len(ops))] if ops else None
    if t is None or op is None:
        kind = "graph_io"
    if kind == "shape":
        shape = list(t.shape) if t.shape is not None else [1]
        if shape:
            i = rng.randrange(len(shape))
            shape[i] = _int_for(rng, shape[i])
        t.shape = shape
        if rng.random() < 0.5:
            t.shapeSignature = shape
    elif kind == "rank":
        shape = list(t.shape) if t.shape is not None else []
        if shape and rng.random() < 0.5:
            shape.pop(rng.randrange(len(shape)))
        else:
            shape.insert(rng.randrange(len(shape) + 1), rng.choice([1, 2, 3]))
        t.shape = shape
    elif kind == "type":
        t.type = rng.randrange(0, 18)
    elif kind in ("scale", "zero_point", "quant_dim", "scale_count", "quant_drop"):
        q = t.quantization or schema.QuantizationParametersT()
        if kind == "scale":
            scales = list(q.scale) if q.scale is not None and len(q.scale) else [0.1]
            scales[rng.randrange(len(scales))] = rng.choice(INTERESTING_FLOATS)
            q.scale = scales
        elif kind == "zero_point":
            zps = list(q.zeroPoint) if q.zeroPoint is not None and len(q.zeroPoint) else [0]
            choice = rng.choice(["value", "empty", "longer"])
            if choice == "empty":
                zps = []
            elif choice == "longer":
                zps = zps + [0] * rng.choice([1, 3])
            else:
                zps[rng.randrange(len(zps))] = _int_for(rng)
            q.zeroPoint = zps
        elif kind == "quant_dim":
            q.quantizedDimension = rng.choice([0, 1, 2, 3, 4, -1, 100])
        elif kind == "scale_count":
            scales = list(q.scale) if q.scale is not None and len(q.scale) else [0.1]
            q.scale = scales[:-1] if len(scales) > 1 and rng.random() < 0.5 else scales + [0.05] * rng.choice([1, 3])
        else:
            q = None
        t.quantization = q
    elif kind in ("scale_mild", "zero_point_mild"):
        # plausible numbers: the file stays valid, the arithmetic takes another path
        quantized = [tt for tt in tensors if tt.quantization is not None and tt.quantization.scale is not None
                     and len(tt.quantization.scale)]
        if quantized:
            q = rng.choice(quantized).quantization
            if kind == "scale_mild":
                q.scale = [float(np.float32(v * rng.uniform(0.25, 4.0))) for v in q.scale]
            elif q.zeroPoint is not None and len(q.zeroPoint):
                q.zeroPoint = [rng.randrange(-128, 128) for _ in q.zeroPoint]
    elif kind in ("weights_random", "bias_random"):
        dtype = schema.TensorType.INT8 if kind == "weights_random" else schema.TensorType.INT32
        constants = [tt for tt in tensors if tt.type == dtype and 0 < tt.buffer < len(m.buffers)
                     and m.buffers[tt.buffer].data is not None and len(m.buffers[tt.buffer].data)]
        if constants:
            b = m.buffers[rng.choice(constants).buffer]
            size = len(b.data)
            if kind == "weights_random":
                b.data = np.frombuffer(rng.randbytes(size), np.uint8)
            else:
                bound = 2 ** rng.choice([8, 12, 16, 20, 24])
                values = np.array([rng.randrange(-bound, bound) for _ in range(size // 4)], np.int32)
                b.data = np.frombuffer(values.tobytes(), np.uint8)
    elif kind == "opcode_index":
        op.opcodeIndex = rng.choice([len(m.operatorCodes), len(m.operatorCodes) + 7, 2**31 - 1,
                                     rng.randrange(len(m.operatorCodes))])
    elif kind == "builtin_code":
        code = m.operatorCodes[rng.randrange(len(m.operatorCodes))]
        new = rng.choice([0, 1, 3, 4, 9, 17, 22, 25, 40, 97, 126, 150, 200, 1000])
        code.builtinCode = new
        code.deprecatedBuiltinCode = min(new, 127)
    elif kind in ("op_input", "op_output"):
        lst = list(op.inputs if kind == "op_input" else op.outputs)
        value = rng.choice([-1, len(tensors), len(tensors) + 100, 2**31 - 1, rng.randrange(len(tensors))])
        if lst and rng.random() < 0.8:
            lst[rng.randrange(len(lst))] = value
        elif lst and rng.random() < 0.5:
            lst.pop()
        else:
            lst.append(value)
        if kind == "op_input":
            op.inputs = lst
        else:
            op.outputs = lst
    elif kind == "option":
        with_options = [o for o in ops if o.builtinOptions is not None]
        if not with_options:
            op.builtinOptionsType = rng.randrange(1, 60)
        else:
            o = rng.choice(with_options).builtinOptions
            fields = [f for f in _TFLITE_OPTION_FIELDS if hasattr(o, f)]
            if fields:
                f = rng.choice(fields)
                cur = getattr(o, f)
                if isinstance(cur, float):
                    setattr(o, f, rng.choice(INTERESTING_FLOATS))
                elif isinstance(cur, bool):
                    setattr(o, f, not cur)
                elif isinstance(cur, (list, np.ndarray)) or cur is None and f in ("newShape", "squeezeDims"):
                    setattr(o, f, [_int_for(rng) for _ in range(rng.randrange(0, 6))])
                else:
                    value = _int_for(rng, cur)
                    if f in ("padding", "fusedActivationFunction", "weightsFormat"):
                        value = rng.randrange(0, 8)
                    setattr(o, f, value)
    elif kind == "options_table":
        op.builtinOptionsType = rng.randrange(0, 60)
        if rng.random() < 0.3:
            op.builtinOptions = None
    elif kind == "buffer_data":
        with_data = [b for b in m.buffers if b.data is not None and len(b.data)]
        if with_data:
            b = rng.choice(with_data)
            arr = np.asarray(b.data, np.uint8)
            b.data = rng.choice([arr[: rng.randrange(len(arr))], np.concatenate([arr, arr[:7]]),
                                 np.full_like(arr, 0x7F), np.zeros(0, np.uint8)])
    elif kind == "buffer_index":
        t.buffer = rng.choice([0, len(m.buffers), len(m.buffers) + 5, rng.randrange(len(m.buffers))])
    elif kind == "graph_io":
        which = rng.choice(["inputs", "outputs"])
        lst = list(getattr(sg, which) if getattr(sg, which) is not None else [])
        choice = rng.choice(["empty", "out_of_range", "other", "duplicate"])
        if choice == "empty":
            lst = []
        elif choice == "out_of_range":
            lst = lst + [len(tensors) + rng.choice([0, 3])]
        elif choice == "other" and tensors:
            lst = [rng.randrange(len(tensors))] + lst[1:]
        elif lst:
            lst = lst + [lst[0]]
        setattr(sg, which, lst)
    elif kind == "name":
        name = rng.choice(HOSTILE_NAMES)
        where = rng.choice(["tensor", "tensor", "subgraph", "all"])
        if where == "tensor":
            t.name = name
        elif where == "subgraph":
            sg.name = name
        else:
            for i, tt in enumerate(tensors):
                tt.name = f"{name}{i}"
            sg.name = name
    elif kind == "drop_op":
        ops.pop(rng.randrange(len(ops)))
    elif kind == "swap_ops" and len(ops) > 1:
        i, j = rng.sample(range(len(ops)), 2)
        ops[i], ops[j] = ops[j], ops[i]
    elif kind == "duplicate_op":
        ops.insert(rng.randrange(len(ops) + 1), copy.deepcopy(op))
    return pack(m), f"tflite:{kind}"


# -- structured ONNX ---------------------------------------------------------------------

_ONNX_INT_ATTRS = ["kernel_shape", "strides", "dilations", "pads", "group", "axis", "axes", "auto_pad", "ceil_mode",
                   "count_include_pad", "transA", "transB", "keepdims", "perm", "storage_order"]
_OP_TYPES = ["Conv", "QLinearConv", "Gemm", "MatMul", "AveragePool", "MaxPool", "GlobalAveragePool", "Relu", "Clip",
             "Add", "Mul", "Concat", "Reshape", "Flatten", "Softmax", "QuantizeLinear", "DequantizeLinear",
             "Transpose", "Pad", "Resize", "Sigmoid", "HardSwish", "NoSuchOp", "", "conv", "Loop", "If"]


def _onnx_structured(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    import onnx
    from onnx import helper

    m = onnx.ModelProto()
    m.ParseFromString(data)
    g = m.graph
    kind = rng.choice(["attr", "attr", "op_type", "node_input", "node_output", "init_dims", "init_type", "init_data",
                       "external_data", "input_shape", "input_type", "opset", "ir_version", "drop_output",
                       "drop_node", "duplicate_node", "scale", "zero_point", "domain", "name", "swap_nodes",
                       "scale_mild", "zero_point_mild", "weights_random", "bias_random"])
    node = g.node[rng.randrange(len(g.node))] if len(g.node) else None
    init = g.initializer[rng.randrange(len(g.initializer))] if len(g.initializer) else None
    if node is None or init is None:
        kind = rng.choice(["opset", "input_shape", "drop_output"])
    if kind == "attr":
        name = rng.choice(_ONNX_INT_ATTRS + [a.name for a in node.attribute])
        existing = [a for a in node.attribute if a.name == name]
        for a in existing:
            node.attribute.remove(a)
        if name == "auto_pad":
            value = rng.choice(["SAME_UPPER", "SAME_LOWER", "VALID", "NOTSET", "BOGUS", b"\xff\xfe"])
        elif name in ("group", "axis", "ceil_mode", "count_include_pad", "transA", "transB", "keepdims",
                      "storage_order"):
            value = _int_for(rng)
        elif name in ("alpha", "beta", "min", "max", "epsilon"):
            value = rng.choice(INTERESTING_FLOATS)
        else:
            length = rng.choice([0, 1, 2, 3, 4, 6])
            value = [rng.choice(INTERESTING_INTS[:10] + [2**31 - 1, 46000]) for _ in range(length)]
        if rng.random() < 0.9:
            node.attribute.append(helper.make_attribute(name, value))
    elif kind == "op_type":
        node.op_type = rng.choice(_OP_TYPES)
    elif kind in ("node_input", "node_output"):
        names = [i.name for i in g.initializer] + [n for nd in g.node for n in nd.output] + ["", "missing"]
        lst = node.input if kind == "node_input" else node.output
        if len(lst) and rng.random() < 0.7:
            lst[rng.randrange(len(lst))] = rng.choice(names)
        elif len(lst) and rng.random() < 0.5:
            lst.pop()
        else:
            lst.append(rng.choice(names))
    elif kind == "init_dims":
        dims = list(init.dims)
        if dims and rng.random() < 0.6:
            dims[rng.randrange(len(dims))] = rng.choice([0, -1, 1, 2, 2**31 - 1, 2**40, dims[0] + 1])
        elif dims and rng.random() < 0.5:
            dims.pop()
        else:
            dims.append(rng.choice([1, 2, 3]))
        del init.dims[:]
        init.dims.extend(dims)
    elif kind == "init_type":
        init.data_type = rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 16, 17, 21, 22, 99])
    elif kind == "init_data":
        if init.raw_data:
            raw = init.raw_data
            init.raw_data = rng.choice([raw[: rng.randrange(len(raw))], raw + raw[:3], b"", b"\xff" * len(raw)])
        else:
            for field in ("float_data", "int32_data", "int64_data"):
                values = getattr(init, field)
                if len(values):
                    del values[rng.randrange(len(values)):]
    elif kind == "external_data":
        init.data_location = onnx.TensorProto.EXTERNAL
        entry = init.external_data.add()
        entry.key = "location"
        entry.value = rng.choice(["missing.bin", "../../../../etc/passwd", "/dev/zero", "/proc/self/mem", ""])
        if rng.random() < 0.5:
            length = init.external_data.add()
            length.key, length.value = "length", rng.choice(["0", "-1", "99999999999", "x"])
        if rng.random() < 0.5:
            init.ClearField("raw_data")
    elif kind in ("input_shape", "input_type"):
        inputs = [i for i in g.input if i.name not in {x.name for x in g.initializer}]
        if not inputs:
            return m.SerializeToString(), "onnx:noop"
        tt = rng.choice(inputs).type.tensor_type
        if kind == "input_type":
            tt.elem_type = rng.choice([0, 1, 2, 3, 5, 6, 7, 9, 10, 11, 16])
        else:
            dims = tt.shape.dim
            if len(dims) and rng.random() < 0.7:
                d = dims[rng.randrange(len(dims))]
                if rng.random() < 0.2:
                    d.dim_param = "batch"
                else:
                    d.dim_value = rng.choice([0, 1, 2, 46000, 16384, 2**31 - 1, 2**40])
            elif len(dims) and rng.random() < 0.5:
                del dims[rng.randrange(len(dims))]
            else:
                dims.add().dim_value = rng.choice([1, 3])
    elif kind == "opset":
        m.opset_import[0].version = rng.choice([1, 7, 10, 12, 13, 19, 21, 22, 99])
    elif kind == "ir_version":
        m.ir_version = rng.choice([0, 1, 3, 7, 10, 11, 99])
    elif kind == "drop_output":
        if len(g.output):
            del g.output[rng.randrange(len(g.output))]
    elif kind == "drop_node":
        del g.node[rng.randrange(len(g.node))]
    elif kind == "duplicate_node":
        extra = copy.deepcopy(node)
        g.node.insert(rng.randrange(len(g.node) + 1), extra)
    elif kind == "swap_nodes" and len(g.node) > 1:
        i, j = rng.sample(range(len(g.node)), 2)
        a, b = copy.deepcopy(g.node[i]), copy.deepcopy(g.node[j])
        g.node[i].CopyFrom(b)
        g.node[j].CopyFrom(a)
    elif kind in ("scale", "zero_point"):
        from onnx import numpy_helper

        scalars = [i for i in g.initializer if i.data_type == (1 if kind == "scale" else i.data_type)
                   and (kind == "scale") == (i.data_type == 1)]
        if scalars:
            target = rng.choice(scalars)
            arr = numpy_helper.to_array(target).copy()
            if arr.size:
                flat = arr.reshape(-1)
                if kind == "scale":
                    flat[rng.randrange(flat.size)] = rng.choice(INTERESTING_FLOATS)
                else:
                    info = np.iinfo(arr.dtype) if arr.dtype.kind in "iu" else None
                    if info is not None:
                        flat[rng.randrange(flat.size)] = rng.choice([info.min, info.max, 0, 1, -1 % (info.max + 1)])
                target.CopyFrom(numpy_helper.from_array(arr, target.name))
    elif kind in ("scale_mild", "zero_point_mild", "weights_random", "bias_random"):
        from onnx import numpy_helper

        want = {"scale_mild": ("f",), "zero_point_mild": ("i", "u"), "weights_random": ("i", "u"),
                "bias_random": ("i",)}[kind]
        pool = []
        for i in g.initializer:
            try:
                arr = numpy_helper.to_array(i)
            except Exception:
                continue
            if arr.dtype.kind not in want or arr.size == 0:
                continue
            if kind == "zero_point_mild" and (arr.size > 64 or arr.dtype.itemsize != 1):
                continue
            if kind == "weights_random" and (arr.dtype.itemsize != 1 or arr.size < 9):
                continue
            if kind == "bias_random" and arr.dtype != np.int32:
                continue
            pool.append((i, arr))
        if pool:
            target, arr = rng.choice(pool)
            nprng = np.random.default_rng(rng.randrange(2**32))
            if kind == "scale_mild":
                arr = (arr * nprng.uniform(0.25, 4.0, arr.shape)).astype(arr.dtype)
            elif kind == "bias_random":
                bound = 2 ** rng.choice([8, 12, 16, 20, 24])
                arr = nprng.integers(-bound, bound, arr.shape).astype(np.int32)
            else:
                info = np.iinfo(arr.dtype)
                arr = nprng.integers(info.min, int(info.max) + 1, arr.shape).astype(arr.dtype)
            target.CopyFrom(numpy_helper.from_array(arr, target.name))
    elif kind == "domain":
        node.domain = rng.choice(["com.microsoft", "ai.onnx.ml", "bogus", ""])
    elif kind == "name":
        name = rng.choice(HOSTILE_NAMES)
        where = rng.choice(["node", "tensor", "graph"])
        if where == "node":
            node.name = name
        elif where == "graph":
            g.name = name
        else:  # rename one value everywhere it is used, so the graph stays connected
            old = rng.choice([o for nd in g.node for o in nd.output] or [g.input[0].name])
            for nd in g.node:
                for lst in (nd.input, nd.output):
                    for i, v in enumerate(lst):
                        if v == old:
                            lst[i] = name
            for vi in list(g.input) + list(g.output) + list(g.value_info):
                if vi.name == old:
                    vi.name = name
    return m.SerializeToString(), f"onnx:{kind}"


def mutate_structured(rng: random.Random, base: Base) -> tuple[bytes, str]:
    return (_tflite_structured if base.format == "tflite" else _onnx_structured)(rng, base.data)


def make_case(rng: random.Random, fmt: str, structured: bool) -> tuple[Base, bytes, str]:
    """(base, mutated bytes, mutation label). A structured edit that the writer itself
    cannot serialize (a value outside the field's type) falls back to a byte mutation."""
    base = pick_base(rng, fmt)
    if structured:
        for _ in range(3):
            try:
                data, label = mutate_structured(rng, base)
                return base, data, label
            except Exception:  # the writer refused the value: not mcuc's business
                continue
    data, label = mutate_bytes(rng, base.data)
    return base, data, f"bytes:{label}"
