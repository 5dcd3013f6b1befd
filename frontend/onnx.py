"""load_onnx: a quantized ONNX model (QDQ or operator-oriented, int8/uint8) -> mcuc IR.

What onnxruntime's CPU execution provider runs decides what the IR computes (DESIGN.md,
Numerics): QDQ groups that onnxruntime fuses into QLinear* kernels become one IR op with
the "onnxruntime" rounding rule; groups it only strips (MaxPool, Reshape, Flatten, ...)
become the IR's data-movement ops. Everything else is rejected with the node's name, its
op type and what to do.

Layout: 4-D activations are NHWC in the IR. A float NCHW graph input is quantized in
the user's layout and transposed once (int8) to NHWC; a 4-D graph output is transposed
back before its DequantizeLinear. Weights are transposed at compile time.

uint8 maps onto int8 exactly: data and zero points move down by 128. The float kernels
whose rounding sees the raw values (QLinearAdd) carry the offset in their attributes.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mcuc.ir.errors import MCUCError
from mcuc.ir.graph import Graph
from mcuc.ir.op import Op
from mcuc.ir.ops import op_def
from mcuc.ir.ops._common import Padding2D
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
from mcuc.ir.ops.quantize import QuantizeAttrs
from mcuc.ir.ops.reshape import ReshapeAttrs
from mcuc.ir.ops.transpose import TransposeAttrs
from mcuc.ir.ort_numerics import (ONNXRUNTIME, build_lookup_table, hard_swish_f32, leaky_relu_f32,
                                  logistic_f32, quantize_linear)
from mcuc.ir.tensor import Quantization, Tensor

MIN_OPSET = 13
UINT8_OFFSET = 128
NCHW_TO_NHWC = (0, 2, 3, 1)
NHWC_TO_NCHW = (0, 3, 1, 2)
# An ONNX axis of a 4-D NCHW tensor -> the same axis of the NHWC tensor the IR holds.
NCHW_AXIS_IN_NHWC = {0: 0, 1: 3, 2: 1, 3: 2}



def _host_runs_qdq_int8_as_uint8() -> bool:
    """Whether onnxruntime on this machine (where `mcuc verify` runs the oracle) converts
    int8 QDQ activations to uint8 before fusing (its QDQS8ToU8Transformer, active on
    x86-64 without VNNI, where u8 x s8 products are summed in int16). Kernels whose float
    rounding sees the raw values (QLinearAveragePool adds the zero point before
    rounding) then compute on values 128 higher."""
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686"):
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return True
    return not any(f in flags for f in ("avx512_vnni", "avx_vnni", "amx_int8"))


ORT_QDQ_INT8_RUNS_AS_UINT8 = _host_runs_qdq_int8_as_uint8()

# QDQ groups onnxruntime only strips (DropQDQNodesRules): the op runs on the integers.
_DATA_MOVEMENT = {"MaxPool", "Reshape", "Flatten", "Transpose", "Resize"}
_INT_TYPES = {"int8", "uint8"}
# What onnxruntime.quantization.quantize_dynamic writes: int32 results rescaled in float.
_DYNAMIC_QUANTIZATION = {"DynamicQuantizeLinear", "MatMulInteger", "ConvInteger", "DynamicQuantizeMatMul"}


@dataclass(frozen=True)
class QParams:
    """Scale and zero point of an ONNX quantized value, in the model's own dtype."""

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int
    dtype: str  # "int8" | "uint8" | "int32"

    def ir_quant(self, axis: int | None = None) -> Quantization:
        """The IR quantization: uint8 zero points move down by 128."""
        zp = self.zero_point.astype(np.int64) - (UINT8_OFFSET if self.dtype == "uint8" else 0)
        return Quantization(self.scale.astype(np.float32), zp, self.axis if axis is None else axis)

    @property
    def ir_dtype(self) -> str:
        return "int8" if self.dtype in _INT_TYPES else self.dtype

    def same_as(self, other: "QParams") -> bool:
        return (self.dtype == other.dtype and np.array_equal(self.scale, other.scale)
                and np.array_equal(self.zero_point, other.zero_point))


@dataclass
class Value:
    """An ONNX tensor as the IR holds it. `nchw` marks a 4-D ONNX tensor stored NHWC."""

    tensor: Tensor
    qparams: QParams | None = None
    nchw: bool = False


@dataclass(frozen=True)
class QInput:
    """An operand of a quantized op: an activation Value or a constant array."""

    qparams: QParams
    value: Value | None = None
    data: np.ndarray | None = None

    @property
    def is_constant(self) -> bool:
        return self.data is not None


def load_onnx(data: bytes) -> Graph:
    """Read a quantized .onnx model into the IR, or raise MCUCError."""
    try:
        import onnx
    except ImportError as e:  # pragma: no cover - onnx is an install requirement
        raise MCUCError("reading .onnx models needs the onnx package: pip install onnx") from e
    try:
        model = onnx.load_model_from_string(bytes(data))
    except Exception as e:  # protobuf raises its own DecodeError type
        raise MCUCError(f"this is not a readable ONNX model: {e}") from None
    return _Importer(model).run()


def _onnx_dtype(elem_type: int) -> str:
    from onnx import helper

    try:
        return str(np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)))
    except Exception:
        return f"onnx type {elem_type}"


class _Importer:
    def __init__(self, model):
        import onnx

        self.model = model
        self._check_opset()
        try:
            model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        except Exception as e:
            raise MCUCError(f"ONNX shape inference failed: {e}; export the model with static shapes") from None
        self.graph = model.graph
        self.constants: dict[str, np.ndarray] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.dtypes: dict[str, str] = {}
        self.values: dict[str, Value] = {}
        self.dequantized: dict[str, tuple[str, QParams]] = {}  # DQ output -> (DQ input, params)
        self.ops: list[Op] = []
        self.names: set[str] = set()
        self.consumers: dict[str, list] = {}
        self.absorbed: set[int] = set()  # ids of Q nodes folded into their producer
        from onnx import numpy_helper

        for init in self.graph.initializer:
            self.constants[init.name] = numpy_helper.to_array(init)
        for info in [*self.graph.input, *self.graph.value_info, *self.graph.output]:
            self._record_type(info)
        for node in self.graph.node:
            for name in node.input:
                if name:
                    self.consumers.setdefault(name, []).append(node)

    # -- model-level checks ----------------------------------------------------------

    def _check_opset(self) -> None:
        for imp in self.model.opset_import:
            if imp.domain in ("", "ai.onnx") and imp.version < MIN_OPSET:
                raise MCUCError(f"the model uses opset {imp.version}; mcuc reads opset {MIN_OPSET} and newer: "
                                "convert it with onnx.version_converter.convert_version(model, 13)")

    def _record_type(self, info) -> None:
        t = info.type.tensor_type
        if not t.HasField("shape"):
            return
        dims = []
        for d in t.shape.dim:
            if not d.HasField("dim_value") or d.dim_value <= 0:
                dims = None
                break
            dims.append(int(d.dim_value))
        if dims is not None:
            self.shapes[info.name] = tuple(dims)
        self.dtypes[info.name] = _onnx_dtype(t.elem_type)

    # -- helpers ---------------------------------------------------------------------

    def _error(self, node, what: str) -> MCUCError:
        return MCUCError(f"ONNX node {node.name or node.output[0]!r} ({node.op_type}): {what}")

    def _unique(self, name: str) -> str:
        base, n = name or "t", 1
        while name in self.names:
            name = f"{base}_{n}"
            n += 1
        self.names.add(name)
        return name

    def _constant(self, node, name: str, what: str) -> np.ndarray:
        if name not in self.constants:
            raise self._error(node, f"{what} {name!r} is computed at run time; mcuc needs it as a constant "
                                    "initializer (fold it with onnxruntime's optimizer or onnx-simplifier)")
        return self.constants[name]

    def _attrs(self, node) -> dict:
        from onnx import helper

        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def _emit(self, kind: str, inputs, attrs, out_name: str, dtype: str, quant: Quantization | None,
              node_name: str = "") -> Tensor:
        """Append one IR op; its output shape comes from the op's own shape rule."""
        probe = Tensor(self._unique(out_name), (1,), dtype, quant)
        op = Op(kind, tuple(inputs), (probe,), attrs, name=node_name)
        shape = op_def(kind).infer_shapes(op)[0]
        out = probe.with_(shape=shape)
        self.ops.append(op.with_(outputs=(out,)))
        return out

    def _qparams(self, node, scale_name: str, zp_name: str | None, axis: int, dtype: str) -> QParams:
        scale = np.atleast_1d(self._constant(node, scale_name, "scale")).astype(np.float32)
        if zp_name:
            zp_arr = self._constant(node, zp_name, "zero point")
            dtype = str(zp_arr.dtype)
            zp = np.atleast_1d(zp_arr).astype(np.int64)
        else:
            zp = np.zeros(scale.shape, np.int64)
        if np.any(scale <= 0) or not np.all(np.isfinite(scale)):
            raise self._error(node, f"scale {scale_name!r} must be positive and finite")
        return QParams(scale, zp, axis, dtype)

    # -- the walk --------------------------------------------------------------------

    def run(self) -> Graph:
        inputs = []
        for info in self.graph.input:
            if info.name in self.constants:
                continue
            shape = self.shapes.get(info.name)
            if shape is None:
                raise MCUCError(f"ONNX graph input {info.name!r} has a dynamic or unknown shape; mcuc compiles "
                                "static shapes: export with fixed dimensions or set them with "
                                "onnx.tools.update_model_dims")
            dtype = self.dtypes.get(info.name, "?")
            if dtype != "float32":
                raise MCUCError(f"ONNX graph input {info.name!r} is {dtype}; mcuc reads models with float32 "
                                "inputs followed by QuantizeLinear (what onnxruntime.quantization writes)")
            t = Tensor(self._unique(info.name), shape, "float32")
            inputs.append(t)
            self.values[info.name] = Value(t)
        for node in self.graph.node:
            if id(node) in self.absorbed:
                continue
            self._convert(node)
        outputs = [self._graph_output(info.name) for info in self.graph.output]
        graph = Graph(tuple(self.ops), tuple(inputs), tuple(outputs), name=self.graph.name or "model")
        graph.verify()
        return graph

    def _convert(self, node) -> None:
        domain = node.domain if node.domain not in ("ai.onnx",) else ""
        kind = node.op_type
        if kind == "Constant":
            from onnx import numpy_helper

            self.constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        elif kind == "QuantizeLinear":
            self._quantize_linear(node)
        elif kind == "DequantizeLinear":
            self._dequantize_linear(node)
        elif kind.startswith("QLinear") or kind in ("QGemm",):
            self._qoperator(node, domain)
        elif kind in _FLOAT_OPS:
            self._qdq_group(node)
        elif kind in _DYNAMIC_QUANTIZATION:
            raise self._error(node, "this is a dynamically quantized model (activation scales computed at run "
                                    "time); mcuc compiles statically quantized models: quantize with "
                                    "onnxruntime.quantization.quantize_static, or compile the float model with "
                                    "--calibrate")
        else:
            raise self._error(node, f"op type {kind} is not supported by mcuc's ONNX frontend (supported: "
                                    f"{', '.join(sorted(_FLOAT_OPS))} in QDQ form, QLinearConv, QLinearMatMul, "
                                    "QGemm, QLinearAdd, QLinearMul, QLinearGlobalAveragePool, QLinearAveragePool, QLinearConcat, "
                                    "QLinearSigmoid, QLinearLeakyRelu, QLinearSoftmax); replace it or "
                                    "keep it outside the quantized model")

    # QuantizeLinear / DequantizeLinear --------------------------------------------------

    def _qdq_params(self, node) -> QParams:
        a = self._attrs(node)
        zp = node.input[2] if len(node.input) > 2 and node.input[2] else None
        qp = self._qparams(node, node.input[1], zp, int(a.get("axis", 1)), "uint8")
        if qp.dtype not in (*_INT_TYPES, "int32"):
            raise self._error(node, f"quantized type {qp.dtype} is not supported; use int8 or uint8 activations")
        return qp

    def _quantize_linear(self, node) -> None:
        qp = self._qdq_params(node)
        src = self.values.get(node.input[0])
        if src is None or src.tensor.dtype != "float32":
            raise self._error(node, f"input {node.input[0]!r} is not a float graph input; mcuc supports "
                                    "QuantizeLinear on graph inputs and after the ops it fuses")
        if qp.scale.size != 1:
            raise self._error(node, "per-channel activation quantization is not supported")
        q = self._emit("QUANTIZE", [src.tensor], QuantizeAttrs(rounding=ONNXRUNTIME), node.output[0],
                       "int8", qp.ir_quant(0), node.name)
        if len(q.shape) == 4:
            q = self._emit("TRANSPOSE", [q], TransposeAttrs(NCHW_TO_NHWC), node.output[0] + "_nhwc",
                           "int8", q.quant, node.name)
            self.values[node.output[0]] = Value(q, qp, nchw=True)
        else:
            self.values[node.output[0]] = Value(q, qp)

    def _dequantize_linear(self, node) -> None:
        qp = self._qdq_params(node)
        self.dequantized[node.output[0]] = (node.input[0], qp)

    def _graph_output(self, name: str) -> Tensor:
        if name in self.dequantized:
            src_name, qp = self.dequantized[name]
            src = self.values.get(src_name)
            if src is None:
                raise MCUCError(f"ONNX graph output {name!r} dequantizes a constant; mcuc needs computed outputs")
            t = src.tensor
            if src.nchw:
                t = self._emit("TRANSPOSE", [t], TransposeAttrs(NHWC_TO_NCHW), name + "_nchw", "int8", t.quant)
            return self._emit("DEQUANTIZE", [t], None, name, "float32", None)
        raise MCUCError(f"ONNX graph output {name!r} is not the result of a DequantizeLinear; mcuc compiles "
                        "quantized models with float outputs (what onnxruntime.quantization writes)")

    # QDQ groups ------------------------------------------------------------------------

    def _dq_input(self, node, name: str) -> QInput:
        if name not in self.dequantized:
            raise self._error(node, f"input {name!r} does not come from a DequantizeLinear: the op would run in "
                                    "float; quantize the whole model (onnxruntime.quantization.quantize_static)")
        src_name, qp = self.dequantized[name]
        if src_name in self.constants:
            return QInput(qp, data=self.constants[src_name])
        if src_name not in self.values:
            raise self._error(node, f"input {src_name!r} is not computed by a supported op")
        return QInput(qp, value=self.values[src_name])

    def _output_q(self, node) -> tuple[QParams, str]:
        """The QuantizeLinear that consumes the node's output (absorbed into the op)."""
        out = node.output[0]
        users = self.consumers.get(out, [])
        graph_outputs = {o.name for o in self.graph.output}
        if out in graph_outputs or len(users) != 1 or users[0].op_type != "QuantizeLinear":
            raise self._error(node, f"output {out!r} is not consumed by exactly one QuantizeLinear; onnxruntime "
                                    "would run this op in float; quantize the whole model")
        q = users[0]
        self.absorbed.add(id(q))
        qp = self._qdq_params(q)
        if qp.scale.size != 1:
            raise self._error(q, "per-channel activation quantization is not supported")
        return qp, q.output[0]

    def _qdq_group(self, node) -> None:
        kind = node.op_type
        if kind in (*_DATA_MOVEMENT, "Pad") and node.input[0] in self.values:
            # Operator-oriented models run these directly on the integers.
            value = self.values[node.input[0]]
            if value.qparams is None:
                raise self._error(node, "runs on a float tensor; mcuc compiles quantized graphs")
            return self._build(node, kind, [QInput(value.qparams, value=value)], value.qparams, node.output[0])
        if kind in ("Relu", "Clip"):
            return self._relu(node)
        if kind in ("Conv", "Gemm", "MatMul"):  # an activation, then dequantized constants
            ins = [self._dq_input(node, node.input[0])] + [self._const_operand(node, n) if n else None
                                                           for n in node.input[1:]]
        elif kind in ("Add", "Mul", "Concat"):  # every operand is dequantized
            ins = [self._dq_input(node, n) for n in node.input]
        else:  # one dequantized activation; other inputs are constants the builder reads
            ins = [self._dq_input(node, node.input[0])]
        out_qp, out_name = self._output_q(node)
        if kind in _DATA_MOVEMENT:
            if not ins[0].qparams.same_as(out_qp):
                raise self._error(node, "input and output quantization differ; onnxruntime then runs it in "
                                        "float: requantize with equal parameters around this op")
        self._build(node, kind, ins, out_qp, out_name)

    def _const_operand(self, node, name: str) -> QInput:
        if name in self.dequantized:
            src, qp = self.dequantized[name]
            if src not in self.constants:
                raise self._error(node, f"weight {src!r} is computed at run time; mcuc needs constant weights")
            return QInput(qp, data=self.constants[src])
        raise self._error(node, f"weight {name!r} is not a dequantized constant (float weights); quantize the "
                                "model with onnxruntime.quantization.quantize_static")

    def _relu(self, node) -> None:
        """Relu/Clip between DQ and Q, in one quantization: onnxruntime's DQ -> float
        clamp -> Q returns the input integers clamped to the quantized bounds, which
        mcuc folds into the clamp of the op that produced the input. Otherwise (other
        quantizations, a shared input) it becomes the same function as a LOOKUP_TABLE."""
        x = self._dq_input(node, node.input[0])
        out_qp, out_name = self._output_q(node)
        if x.is_constant or not x.qparams.same_as(out_qp):
            return self._build(node, node.op_type, [x], out_qp, out_name)
        src_name = self.dequantized[node.input[0]][0]
        shared = (len(self.consumers.get(src_name, [])) != 1 or len(self.consumers.get(node.input[0], [])) != 1
                  or src_name in {o.name for o in self.graph.output})
        value = x.value
        producer = next((i for i in range(len(self.ops) - 1, -1, -1) if self.ops[i].outputs[0] is value.tensor), None)
        op = self.ops[producer] if producer is not None else None
        if shared or op is None or not hasattr(op.attrs, "act_min"):
            # Not foldable: the same float function, as a table.
            return self._build(node, node.op_type, [x], out_qp, out_name)
        bounds = [0.0, np.inf]
        if node.op_type == "Clip":
            for k in (1, 2):
                if len(node.input) > k and node.input[k]:
                    bounds[k - 1] = float(self._constant(node, node.input[k], "Clip bound"))
            if node.input[1:2] == [""] or len(node.input) < 2:
                bounds[0] = -np.inf
        scale, zp = np.float32(out_qp.scale[0]), int(value.tensor.quant.scalar_zero_point)
        # The integers q whose dequantized value lies inside [lo, hi].
        grid = np.arange(-128, 128)
        real = (grid - zp).astype(np.float32) * scale
        inside = grid[(real >= np.float32(bounds[0])) & (real <= np.float32(bounds[1]))]
        if inside.size == 0:
            raise self._error(node, f"clip range {bounds} contains no quantized value")
        attrs = replace(op.attrs, act_min=max(op.attrs.act_min, int(inside.min())),
                        act_max=min(op.attrs.act_max, int(inside.max())))
        self.ops[producer] = op.with_(attrs=attrs)
        self.values[out_name] = value

    # QOperator nodes -------------------------------------------------------------------

    def _q_operand(self, node, value_name: str, scale_name: str, zp_name: str, axis: int = 0) -> QInput:
        qp = self._qparams(node, scale_name, zp_name or None, axis, "uint8")
        if value_name in self.constants:
            return QInput(qp, data=self.constants[value_name])
        if value_name not in self.values:
            raise self._error(node, f"input {value_name!r} is not computed by a supported op")
        return QInput(qp, value=self.values[value_name])

    def _qoperator(self, node, domain: str) -> None:
        kind = node.op_type
        i = list(node.input) + [""] * 9
        if kind == "QLinearConv":
            ins = [self._q_operand(node, i[0], i[1], i[2]), self._q_operand(node, i[3], i[4], i[5], 0)]
            bias = QInput(QParams(np.ones(1, np.float32), np.zeros(1, np.int64), 0, "int32"),
                          data=self._constant(node, i[8], "bias")) if i[8] else None
            out = self._qparams(node, i[6], i[7], 0, "uint8")
            return self._build(node, "Conv", ins + [bias], out, node.output[0])
        if kind == "QLinearMatMul":
            ins = [self._q_operand(node, i[0], i[1], i[2]), self._q_operand(node, i[3], i[4], i[5], 1)]
            out = self._qparams(node, i[6], i[7], 0, "uint8")
            return self._build(node, "MatMul", ins, out, node.output[0])
        if kind == "QGemm":
            ins = [self._q_operand(node, i[0], i[1], i[2]), self._q_operand(node, i[3], i[4], i[5], 0)]
            bias = QInput(QParams(np.ones(1, np.float32), np.zeros(1, np.int64), 0, "int32"),
                          data=self._constant(node, i[6], "bias")) if i[6] else None
            if not i[7]:
                raise self._error(node, "QGemm without an output scale produces float; mcuc needs quantized output")
            out = self._qparams(node, i[7], i[8] or None, 0, "uint8")
            return self._build(node, "Gemm", ins + [bias], out, node.output[0])
        if kind in ("QLinearAdd", "QLinearMul"):
            ins = [self._q_operand(node, i[0], i[1], i[2]), self._q_operand(node, i[3], i[4], i[5])]
            out = self._qparams(node, i[6], i[7] or None, 0, "uint8")
            return self._build(node, kind[len("QLinear"):], ins, out, node.output[0])
        if kind == "QLinearGlobalAveragePool":
            if int(self._attrs(node).get("channels_last", 0)):
                raise self._error(node, "channels_last=1 is not supported; export NCHW")
            ins = [self._q_operand(node, i[0], i[1], i[2])]
            out = self._qparams(node, i[3], i[4] or None, 0, "uint8")
            return self._build(node, "GlobalAveragePool", ins, out, node.output[0])
        if kind == "QLinearAveragePool":
            ins = [self._q_operand(node, i[0], i[1], i[2])]
            out = self._qparams(node, i[3], i[4] or None, 0, "uint8")
            return self._build(node, "AveragePool", ins, out, node.output[0])
        if kind == "QLinearSoftmax":
            ins = [self._q_operand(node, i[0], i[1], i[2])]
            out = self._qparams(node, i[3], i[4] or None, 0, "uint8")
            return self._build(node, "Softmax", ins, out, node.output[0])
        if kind in ("QLinearSigmoid", "QLinearLeakyRelu"):
            ins = [self._q_operand(node, i[0], i[1], i[2])]
            out = self._qparams(node, i[3], i[4] or None, 0, "uint8")
            return self._build(node, kind[len("QLinear"):], ins, out, node.output[0])
        if kind == "QLinearConcat":
            out = self._qparams(node, i[0], i[1], 0, "uint8")
            names = list(node.input[2:])
            ins = [self._q_operand(node, names[k], names[k + 1], names[k + 2]) for k in range(0, len(names), 3)]
            return self._build(node, "Concat", ins, out, node.output[0])
        raise self._error(node, f"operator-format op {kind} is not supported yet (supported: QLinearConv, "
                                "QLinearMatMul, QGemm, QLinearAdd, QLinearMul, QLinearGlobalAveragePool, "
                                "QLinearAveragePool, QLinearConcat, QLinearSigmoid, QLinearLeakyRelu, QLinearSoftmax); "
                                "quantize in QDQ format or keep the op outside the quantized model")

    # building IR ops ---------------------------------------------------------------------

    def _activation(self, node, q: QInput) -> Value:
        if q.is_constant or q.value is None:
            raise self._error(node, "this operand must be computed at run time, not a constant")
        if q.qparams.dtype not in _INT_TYPES:
            raise self._error(node, f"activations of type {q.qparams.dtype} are not supported; use int8 or uint8")
        held, read = q.value.tensor.quant, q.qparams.ir_quant(0)
        if not (np.array_equal(held.scale, read.scale) and np.array_equal(held.zero_point, read.zero_point)):
            raise self._error(node, f"reads {q.value.tensor.name!r} with quantization {read!r}, but it was "
                                    f"quantized with {held!r}; requantize explicitly")
        return q.value

    def _build(self, node, kind: str, ins: list[QInput | None], out: QParams, out_name: str) -> None:
        if out.dtype not in _INT_TYPES:
            raise self._error(node, f"output type {out.dtype} is not supported; use int8 or uint8")
        builder = _BUILDERS[kind]
        value = builder(self, node, ins, out, out_name)
        self.values[out_name] = value

    def _weights(self, node, w: QInput, channel_axis: int) -> tuple[np.ndarray, Quantization]:
        if w.qparams.dtype != "int8":
            raise self._error(node, f"weights are {w.qparams.dtype}; mcuc needs int8 weights "
                                    "(quantize_static(..., weight_type=QuantType.QInt8))")
        if np.any(w.qparams.zero_point != 0):
            raise self._error(node, "weights have a non-zero zero point; mcuc needs symmetric weights "
                                    "(quantize_static's default for int8 weights)")
        if w.qparams.scale.size not in (1, w.data.shape[channel_axis]):
            raise self._error(node, f"weights have {w.qparams.scale.size} scales for "
                                    f"{w.data.shape[channel_axis]} output channels")
        return w.data, Quantization(w.qparams.scale, np.zeros(w.qparams.scale.size, np.int64), 0)

    def _bias(self, node, b: QInput | None, x: QInput, w_quant: Quantization, channels: int) -> Tensor | None:
        if b is None:
            return None
        data = np.asarray(b.data)
        if data.dtype != np.int32 or data.size != channels:
            raise self._error(node, f"bias must be int32 with {channels} values, got {data.dtype} x {data.size}")
        scale = np.float32(x.qparams.scale[0]) * w_quant.scale
        return Tensor(self._unique(node.name + "_bias"), (channels,), "int32",
                      Quantization(scale, np.zeros(scale.size, np.int64)), data.reshape(channels))


def _window_attrs(imp: _Importer, node, in_hw: tuple[int, int], kernel: tuple[int, int]):
    a = imp._attrs(node)
    strides = tuple(int(s) for s in a.get("strides", (1, 1)))
    dilations = tuple(int(d) for d in a.get("dilations", (1, 1)))
    if len(strides) != 2 or len(dilations) != 2:
        raise imp._error(node, "only 2-D windows (4-D NCHW tensors) are supported")
    auto_pad = a.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad in ("NOTSET", ""):
        p = [int(v) for v in a.get("pads", (0, 0, 0, 0))]
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
        raise imp._error(node, f"auto_pad {auto_pad!r} is not supported")
    if int(a.get("ceil_mode", 0)):
        raise imp._error(node, "ceil_mode=1 is not supported; export with ceil_mode=0")
    return strides, dilations, padding


def _build_conv(imp: _Importer, node, ins, out: QParams, out_name: str) -> Value:
    xq, wq = ins[0], ins[1]
    bq = ins[2] if len(ins) > 2 else None
    x = imp._activation(node, xq)
    if len(x.tensor.shape) != 4 or not x.nchw:
        raise imp._error(node, "only 2-D convolutions of 4-D NCHW tensors are supported")
    w, wquant = imp._weights(node, wq, 0)
    if w.ndim != 4:
        raise imp._error(node, f"weights of shape {list(w.shape)} are not 4-D [M, C/group, kH, kW]")
    group = int(imp._attrs(node).get("group", 1))
    strides, dilations, padding = _window_attrs(imp, node, x.tensor.shape[1:3], w.shape[2:])
    cin, m = x.tensor.shape[3], w.shape[0]
    bias = imp._bias(node, bq, xq, wquant, m)
    outq = out.ir_quant(0)
    if group > 1 and group == cin and w.shape[1] == 1:
        weights = Tensor(imp._unique(node.name + "_weights"), (1, *w.shape[2:], m), "int8",
                         Quantization(wquant.scale, wquant.zero_point, 3), w.transpose(1, 2, 3, 0))
        attrs = DepthwiseConv2DAttrs(stride=strides, dilation=dilations, padding=padding,
                                     depth_multiplier=m // cin, rounding=ONNXRUNTIME)
        kind = "DEPTHWISE_CONV_2D"
    else:
        weights = Tensor(imp._unique(node.name + "_weights"), (m, *w.shape[2:], w.shape[1]), "int8",
                         wquant, w.transpose(0, 2, 3, 1))
        attrs = Conv2DAttrs(stride=strides, dilation=dilations, padding=padding, rounding=ONNXRUNTIME)
        kind = "CONV_2D"
    inputs = [x.tensor, weights] + ([bias] if bias is not None else [])
    y = imp._emit(kind, inputs, attrs, out_name, "int8", outq, node.name)
    return Value(y, out, nchw=True)


def _build_fc(imp: _Importer, node, x: Value, xq: QInput, w: np.ndarray, wquant: Quantization,
              bq: QInput | None, out: QParams, out_name: str) -> Value:
    """FULLY_CONNECTED with weights [units, depth]."""
    if x.nchw:
        raise imp._error(node, "a matrix product of a 4-D tensor is not supported; Flatten it first")
    bias = imp._bias(node, bq, xq, wquant, w.shape[0])
    weights = Tensor(imp._unique(node.name + "_weights"), w.shape, "int8", wquant, w)
    keep = len(x.tensor.shape) > 2
    attrs = FullyConnectedAttrs(keep_num_dims=keep, rounding=ONNXRUNTIME)
    inputs = [x.tensor, weights] + ([bias] if bias is not None else [])
    y = imp._emit("FULLY_CONNECTED", inputs, attrs, out_name, "int8", out.ir_quant(0), node.name)
    return Value(y, out)


def _build_gemm(imp: _Importer, node, ins, out: QParams, out_name: str) -> Value:
    a = imp._attrs(node)
    if int(a.get("transA", 0)) or float(a.get("alpha", 1.0)) != 1.0 or float(a.get("beta", 1.0)) != 1.0:
        raise imp._error(node, "only transA=0, alpha=1, beta=1 are supported")
    x = imp._activation(node, ins[0])
    trans_b = int(a.get("transB", 0))
    w, wquant = imp._weights(node, ins[1], 0 if trans_b else 1)
    w = w if trans_b else w.T
    bq = ins[2] if len(ins) > 2 else None
    if bq is not None and np.asarray(bq.data).size == 1 and w.shape[0] != 1:
        bq = QInput(bq.qparams, data=np.full(w.shape[0], np.asarray(bq.data).reshape(()), np.int32))
    return _build_fc(imp, node, x, ins[0], np.ascontiguousarray(w), wquant, bq, out, out_name)


def _build_matmul(imp: _Importer, node, ins, out: QParams, out_name: str) -> Value:
    x = imp._activation(node, ins[0])
    if not ins[1].is_constant:
        raise imp._error(node, "the second operand is computed at run time; mcuc needs constant weights")
    w, wquant = imp._weights(node, ins[1], 1)
    if w.ndim != 2:
        raise imp._error(node, f"weights of shape {list(w.shape)} are not 2-D")
    return _build_fc(imp, node, x, ins[0], np.ascontiguousarray(w.T), wquant, None, out, out_name)


def _build_add(imp: _Importer, node, ins, out: QParams, out_name: str) -> Value:
    """Add and Mul (QLinearAdd / QLinearMul): two operands, one may be a one-element constant."""
    offsets = {q.qparams.dtype for q in ins} | {out.dtype}
    if len(offsets) != 1:
        raise imp._error(node, "inputs and output mix int8 and uint8")
    operands, nchw = [], False
    for q in ins:
        if q.is_constant:
            if q.qparams.dtype not in _INT_TYPES or np.asarray(q.data).size != 1:
                raise imp._error(node, "a constant operand must be a single quantized value")
            data = np.asarray(q.data).astype(np.int64).reshape(1) - (UINT8_OFFSET if q.qparams.dtype == "uint8" else 0)
            operands.append(Tensor(imp._unique(node.name + "_const"), (1,), "int8", q.qparams.ir_quant(0), data))
        else:
            v = imp._activation(node, q)
            nchw = nchw or v.nchw
            operands.append(v.tensor)
    # QLinearAdd's and QLinearMul's float rounding sees the model's own values: uint8 ones
    # are 128 higher.
    offset = UINT8_OFFSET if out.dtype == "uint8" else 0
    if node.op_type.endswith("Mul"):
        kind, attrs = "MUL", MulAttrs(rounding=ONNXRUNTIME, ort_offset=offset)
    else:
        kind, attrs = "ADD", AddAttrs(rounding=ONNXRUNTIME, ort_offset=offset)
    y = imp._emit(kind, operands, attrs, out_name, "int8", out.ir_quant(0), node.name)
    return Value(y, out, nchw=nchw)


def _build_gap(imp: _Importer, node, ins, out: QParams, out_name: str) -> Value:
    x = imp._activation(node, ins[0])
    if not x.nchw:
        raise imp._error(node, "only 4-D NCHW inputs are supported")
    y = imp._emit("MEAN", [x.tensor], MeanAttrs(axes=(1, 2), keep_dims=True, rounding=ONNXRUNTIME),
                  out_name, "int8", out.ir_quant(0), node.name)
    return Value(y, out, nchw=True)


def _build_maxpool(imp: _Importer, node, ins, out: QParams, out_name: str) -> Value:
    x = imp._activation(node, ins[0])
    a = imp._attrs(node)
    kernel = tuple(int(k) for k in a["kernel_shape"])
    if not x.nchw or len(kernel) != 2:
        raise imp._error(node, "only 2-D pooling of 4-D NCHW tensors is supported")
    if int(a.get("storage_order", 0)) or len(node.output) > 1 and node.output[1]:
        raise imp._error(node, "the Indices output and storage_order are not supported")
    strides, dilations, padding = _window_attrs(imp, node, x.tensor.shape[1:3], kernel)
    if dilations != (1, 1):
        raise imp._error(node, "dilated pooling is not supported")
    y = imp._emit("MAX_POOL_2D", [x.tensor], Pool2DAttrs(filter=kernel, stride=strides, padding=padding),
                  out_name, "int8", x.tensor.quant, node.name)
    return Value(y, out, nchw=True)


def _build_avgpool(imp: _Importer, node, ins, out: QParams, out_name: str) -> Value:
    x = imp._activation(node, ins[0])
    a = imp._attrs(node)
    kernel = tuple(int(k) for k in a["kernel_shape"])
    if not x.nchw or len(kernel) != 2:
        raise imp._error(node, "only 2-D pooling of 4-D NCHW tensors is supported")
    if int(a.get("channels_last", 0)):
        raise imp._error(node, "channels_last=1 is not supported; export NCHW")
    if out.dtype != ins[0].qparams.dtype:
        raise imp._error(node, "input and output mix int8 and uint8")
    strides, dilations, padding = _window_attrs(imp, node, x.tensor.shape[1:3], kernel)
    if dilations != (1, 1):
        raise imp._error(node, "dilated pooling is not supported")
    # A QDQ group's int8 may run as uint8 in onnxruntime (see _host_runs_qdq_int8_as_uint8).
    # (QDQ int8 Adds are left alone: on such hosts onnxruntime mostly keeps them in float,
    # the conversion breaking their fusion, and the int8-domain formula matches those.)
    on_uint8 = out.dtype == "uint8" or (ORT_QDQ_INT8_RUNS_AS_UINT8 and node.op_type == "AveragePool")
    attrs = Pool2DAttrs(filter=kernel, stride=strides, padding=padding, rounding=ONNXRUNTIME,
                        ort_offset=UINT8_OFFSET if on_uint8 else 0,
                        count_include_pad=bool(int(a.get("count_include_pad", 0))))
    y = imp._emit("AVERAGE_POOL_2D", [x.tensor], attrs, out_name, "int8", out.ir_quant(0), node.name)
    return Value(y, out, nchw=True)


def _build_reshape(imp: _Importer, node, ins, out: QParams, out_name: str) -> Value:
    x = imp._activation(node, ins[0])
    t = x.tensor
    onnx_shape = tuple(t.shape[i] for i in NHWC_TO_NCHW) if x.nchw else t.shape
    if node.op_type == "Flatten":
        axis = int(imp._attrs(node).get("axis", 1)) % (len(onnx_shape) + 1)
        target = (int(np.prod(onnx_shape[:axis], dtype=np.int64)), int(np.prod(onnx_shape[axis:], dtype=np.int64)))
    else:
        target = _reshape_target(imp, node, onnx_shape)
    if x.nchw:
        n, h, w, c = t.shape
        if len(target) == 4:
            raise imp._error(node, "reshaping a 4-D tensor to 4-D is not supported")
        if not (h == 1 and w == 1):
            # ONNX flattens C, H, W in NCHW order: move the channels back first.
            t = imp._emit("TRANSPOSE", [t], TransposeAttrs(NHWC_TO_NCHW), out_name + "_nchw", "int8", t.quant,
                          node.name)
    y = imp._emit("RESHAPE", [t], ReshapeAttrs(shape=tuple(target)), out_name, "int8", t.quant, node.name)
    return Value(y, out, nchw=False)


def _table_value(imp: _Importer, node, x: Value, function, label: str, out: QParams, out_name: str) -> Value:
    """A LOOKUP_TABLE op computing `function` (float32 -> float32, as onnxruntime does)
    between x's quantization and `out`."""
    xq, oq = x.tensor.quant, out.ir_quant(0)
    table = build_lookup_table(function, float(xq.scale[0]), xq.scalar_zero_point,
                               float(oq.scale[0]), oq.scalar_zero_point)
    y = imp._emit("LOOKUP_TABLE", [x.tensor], LookupTableAttrs(table=table, function=label), out_name, "int8", oq,
                  node.name)
    return Value(y, out, nchw=x.nchw)


def _build_elementwise(imp: _Importer, node, ins, out: QParams, out_name: str) -> Value:
    """Sigmoid, LeakyRelu (QLinearSigmoid / QLinearLeakyRelu tables), HardSwish, Relu, Clip
    (DequantizeLinear -> float op -> QuantizeLinear): one LOOKUP_TABLE."""
    x = imp._activation(node, ins[0])
    if ins[0].qparams.dtype != out.dtype:
        raise imp._error(node, "input and output mix int8 and uint8")
    kind = node.op_type.removeprefix("QLinear")
    if kind == "Sigmoid":
        function = logistic_f32
    elif kind == "HardSwish":
        function = hard_swish_f32
    elif kind == "LeakyRelu":
        alpha = float(imp._attrs(node).get("alpha", 0.01))
        function = lambda r: leaky_relu_f32(r, alpha)  # noqa: E731
    elif kind == "Relu":
        function = lambda r: np.maximum(r, np.float32(0.0))  # noqa: E731
    elif kind == "Clip":
        lo = float(imp._constant(node, node.input[1], "Clip bound")) if len(node.input) > 1 and node.input[1] else -np.inf
        hi = float(imp._constant(node, node.input[2], "Clip bound")) if len(node.input) > 2 and node.input[2] else np.inf
        function = lambda r: np.minimum(np.maximum(r, np.float32(lo)), np.float32(hi))  # noqa: E731
    else:
        raise imp._error(node, f"no table rule for {node.op_type}")
    return _table_value(imp, node, x, function, kind, out, out_name)


def _build_transpose(imp: _Importer, node, ins, out: QParams, out_name: str) -> Value:
    """Transpose of the ONNX tensor. A 4-D NCHW value is NHWC in the IR, so the ONNX perm
    is composed with that layout; NCHW -> NHWC (the usual edge transpose) costs nothing."""
    x = imp._activation(node, ins[0])
    rank = len(x.tensor.shape)
    perm = tuple(int(p) for p in imp._attrs(node).get("perm", tuple(reversed(range(rank)))))
    ir_perm = tuple(NHWC_TO_NCHW[p] for p in perm) if x.nchw else perm
    if ir_perm == tuple(range(rank)):
        return Value(x.tensor, out, nchw=False)
    y = imp._emit("TRANSPOSE", [x.tensor], TransposeAttrs(ir_perm), out_name, "int8", x.tensor.quant, node.name)
    return Value(y, out, nchw=False)


def _build_pad(imp: _Importer, node, ins, out: QParams, out_name: str) -> Value:
    """Constant Pad. Between DequantizeLinear and QuantizeLinear onnxruntime pads in float:
    the inside requantizes (a table when the parameters differ) and the border is
    QuantizeLinear(constant_value)."""
    x = imp._activation(node, ins[0])
    a = imp._attrs(node)
    mode = a.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode != "constant":
        raise imp._error(node, f"mode {mode!r} is not supported; only constant padding")
    if len(node.input) > 3 and node.input[3]:
        raise imp._error(node, "the axes input is not supported; give pads for every axis")
    pads = [int(v) for v in np.asarray(imp._constant(node, node.input[1], "pads")).reshape(-1)]
    rank = len(x.tensor.shape)
    if len(pads) != 2 * rank or min(pads) < 0:
        raise imp._error(node, f"pads {pads} must be {2 * rank} non-negative values")
    pairs = [(pads[i], pads[i + rank]) for i in range(rank)]
    if x.nchw:  # the IR's axis j is ONNX axis NCHW_TO_NHWC[j]
        pairs = [pairs[i] for i in NCHW_TO_NHWC]
    constant = 0.0
    if len(node.input) > 2 and node.input[2]:
        name = node.input[2]
        if name in imp.dequantized:  # a quantized constant: its real value
            src, qp = imp.dequantized[name]
            raw = np.asarray(imp._constant(node, src, "constant_value")).astype(np.int64).reshape(-1)[0]
            constant = float(np.float32(qp.scale[0]) * np.float32(raw - qp.zero_point[0]))
        else:
            raw_value = np.asarray(imp._constant(node, name, "constant_value"))
            if np.issubdtype(raw_value.dtype, np.integer) and ins[0].qparams.dtype in _INT_TYPES:
                # operator-oriented: the pad value is already in the tensor's quantization
                qp = ins[0].qparams
                constant = float(np.float32(qp.scale[0]) * np.float32(int(raw_value.reshape(-1)[0]) - qp.zero_point[0]))
            else:
                constant = float(raw_value.reshape(-1)[0])
    if not ins[0].qparams.same_as(out):
        x = _table_value(imp, node, x, lambda r: r, "requantize", out, out_name + "_requantized")
    oq = out.ir_quant(0)
    value = int(quantize_linear(np.float32(constant), oq.scale[0], oq.scalar_zero_point, -128, 127))
    y = imp._emit("PAD", [x.tensor], PadAttrs(pads=tuple(pairs), value=value), out_name, "int8", oq, node.name)
    return Value(y, out, nchw=x.nchw)


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


def _build_resize(imp: _Importer, node, ins, out: QParams, out_name: str) -> Value:
    """Resize, mode nearest, on H and W: RESIZE_NEAREST_NEIGHBOR when one of its index rules
    reproduces onnxruntime's indices exactly for these sizes (checked here), else an error."""
    from mcuc.ir.ops.resize_nearest import ResizeNearestAttrs, source_indices

    x = imp._activation(node, ins[0])
    a = imp._attrs(node)

    def text(key: str, default: str) -> str:
        v = a.get(key, default)
        return v.decode() if isinstance(v, bytes) else v

    mode, transform, nearest = text("mode", "nearest"), text("coordinate_transformation_mode", "half_pixel"), \
        text("nearest_mode", "round_prefer_floor")
    if mode != "nearest" or not x.nchw:
        raise imp._error(node, f"only mode 'nearest' on 4-D NCHW tensors is supported (got {mode!r})")
    if transform not in ("half_pixel", "pytorch_half_pixel", "asymmetric", "tf_half_pixel_for_nn", "align_corners") \
            or nearest not in _NEAREST_MODES:
        raise imp._error(node, f"coordinate_transformation_mode {transform!r} with nearest_mode {nearest!r} is not supported")
    n, h, w, c = x.tensor.shape
    names = list(node.input) + ["", "", ""]
    if names[3]:
        sizes = [int(v) for v in np.asarray(imp._constant(node, names[3], "sizes")).reshape(-1)]
        scales = [np.float32(o) / np.float32(i) for o, i in zip(sizes, (n, c, h, w))]
    elif names[2]:
        scales = [np.float32(v) for v in np.asarray(imp._constant(node, names[2], "scales")).reshape(-1)]
        sizes = [int(np.floor(np.float32(d) * s)) for d, s in zip((n, c, h, w), scales)]
    else:
        raise imp._error(node, "needs constant scales or sizes")
    if len(sizes) != 4 or sizes[0] != n or sizes[1] != c:
        raise imp._error(node, f"only the spatial axes may be resized (sizes {sizes})")
    wanted = [_onnx_nearest_indices(i, o, s, transform, nearest) for i, o, s in ((h, sizes[2], scales[2]), (w, sizes[3], scales[3]))]
    for align, half in ((False, False), (False, True), (True, False)):
        if all(np.array_equal(source_indices(i, o, align, half), idx) for i, o, idx in ((h, sizes[2], wanted[0]), (w, sizes[3], wanted[1]))):
            attrs = ResizeNearestAttrs(size=(sizes[2], sizes[3]), align_corners=align, half_pixel_centers=half)
            y = imp._emit("RESIZE_NEAREST_NEIGHBOR", [x.tensor], attrs, out_name, "int8", x.tensor.quant, node.name)
            return Value(y, out, nchw=True)
    raise imp._error(node, f"{transform} / {nearest} resizing {h}x{w} to {sizes[2]}x{sizes[3]} picks input pixels that "
                           "no RESIZE_NEAREST_NEIGHBOR rule reproduces; use asymmetric/floor or integer scales")


def _build_softmax(imp: _Importer, node, ins, out: QParams, out_name: str) -> Value:
    """Softmax / QLinearSoftmax over the innermost axis of the IR tensor."""
    from mcuc.ir.ops.softmax import SoftmaxAttrs

    x = imp._activation(node, ins[0])
    if ins[0].qparams.dtype != out.dtype:
        raise imp._error(node, "input and output mix int8 and uint8")
    a = imp._attrs(node)
    rank = len(x.tensor.shape)
    if node.op_type == "QLinearSoftmax" and int(a.get("opset", 13)) < 13:
        raise imp._error(node, "QLinearSoftmax of opset < 13 (softmax over flattened axes) is not supported")
    axis = int(a.get("axis", -1)) % rank
    ir_axis = NCHW_AXIS_IN_NHWC[axis] if x.nchw else axis
    if ir_axis != rank - 1:
        raise imp._error(node, f"softmax over axis {axis} is not supported; mcuc computes it over the innermost "
                               "(channel) axis")
    # onnxruntime runs int8 QDQ softmax as uint8 on hosts that convert (it then clamps
    # instead of keeping the low byte).
    on_uint8 = out.dtype == "uint8" or (node.op_type == "Softmax" and ORT_QDQ_INT8_RUNS_AS_UINT8)
    attrs = SoftmaxAttrs(beta=1.0, rounding=ONNXRUNTIME, ort_uint8=on_uint8)
    y = imp._emit("SOFTMAX", [x.tensor], attrs, out_name, "int8", out.ir_quant(0), node.name)
    return Value(y, out, nchw=x.nchw)


def _reshape_target(imp: _Importer, node, in_shape: tuple[int, ...]) -> tuple[int, ...]:
    """ONNX Reshape's output shape: 0 copies the input dimension (allowzero=0), -1 is inferred."""
    spec = [int(d) for d in np.asarray(imp._constant(node, node.input[1], "shape")).reshape(-1)]
    if int(imp._attrs(node).get("allowzero", 0)):
        raise imp._error(node, "allowzero=1 is not supported")
    dims = [in_shape[i] if d == 0 else d for i, d in enumerate(spec)]
    total = int(np.prod(in_shape, dtype=np.int64))
    if dims.count(-1) == 1:
        known = int(np.prod([d for d in dims if d != -1], dtype=np.int64))
        dims[dims.index(-1)] = total // known if known else 0
    if any(d <= 0 for d in dims) or int(np.prod(dims, dtype=np.int64)) != total:
        raise imp._error(node, f"shape {spec} does not fit an input of shape {list(in_shape)}")
    return tuple(dims)


def _build_concat(imp: _Importer, node, ins, out: QParams, out_name: str) -> Value:
    values = [imp._activation(node, q) for q in ins]
    if any(q.qparams.dtype != out.dtype for q in ins):
        raise imp._error(node, "inputs and output mix int8 and uint8")
    # QLinearConcat requantizes an input of other parameters through a lookup table
    # (DequantizeLinear -> QuantizeLinear of its 256 values).
    values = [v if q.qparams.same_as(out) else
              _table_value(imp, node, v, lambda r: r, "requantize", out, out_name + f"_in{k}")
              for k, (q, v) in enumerate(zip(ins, values))]
    axis = int(imp._attrs(node).get("axis", 1))
    nchw = values[0].nchw
    if any(v.nchw != nchw for v in values):
        raise imp._error(node, "inputs mix layouts")
    rank = len(values[0].tensor.shape)
    axis = axis % rank
    if nchw:
        axis = NCHW_AXIS_IN_NHWC[axis]
    y = imp._emit("CONCATENATION", [v.tensor for v in values], ConcatAttrs(axis=axis), out_name, "int8",
                  out.ir_quant(0), node.name)
    return Value(y, out, nchw=nchw)


_BUILDERS = {
    "Conv": _build_conv,
    "Gemm": _build_gemm,
    "MatMul": _build_matmul,
    "Add": _build_add,
    "Mul": _build_add,
    "GlobalAveragePool": _build_gap,
    "MaxPool": _build_maxpool,
    "AveragePool": _build_avgpool,
    "Reshape": _build_reshape,
    "Flatten": _build_reshape,
    "Concat": _build_concat,
    "Transpose": _build_transpose,
    "Pad": _build_pad,
    "Resize": _build_resize,
    "Softmax": _build_softmax,
    "Sigmoid": _build_elementwise,
    "HardSwish": _build_elementwise,
    "LeakyRelu": _build_elementwise,
    "Relu": _build_elementwise,
    "Clip": _build_elementwise,
}
_FLOAT_OPS = set(_BUILDERS)
