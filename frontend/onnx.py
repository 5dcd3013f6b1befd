"""load_onnx: a quantized ONNX model (QDQ or operator-oriented, int8/uint8) -> mcuc IR.

What onnxruntime's CPU execution provider runs decides what the IR computes (DESIGN.md,
Numerics): QDQ groups that onnxruntime fuses into QLinear* kernels become one IR op with
the "onnxruntime" rounding rule; groups it only strips (MaxPool, Reshape, Flatten, ...)
become the IR's data-movement ops. Everything else is rejected with the node's name, its
op type and what to do.

Layout and API: 4-D activations are NHWC in the IR. Graph inputs and outputs keep the
model's dtype (float32, int8 or uint8). With layout "nchw" (the default, the model's own)
they keep the NCHW layout too: a float input is quantized in the user's layout and
transposed once (int8) to NHWC; a 4-D output is transposed back before its
DequantizeLinear (or before the exact int8 -> uint8 QUANTIZE of a uint8 output). With
layout "nhwc" every 4-D graph input and output is the ONNX tensor permuted to NHWC, so the
edges need no TRANSPOSE (for firmware whose camera/audio data is NHWC already). Weights are
transposed at compile time; no transpose runs between ops.

uint8 maps onto int8 exactly: data and zero points move down by 128. The float kernels
whose rounding sees the raw values (QLinearAdd, QLinearMul, QLinearAveragePool,
QLinearSoftmax) carry the offset in their attributes.

This module walks the graph and resolves QDQ groups and operator-oriented nodes to
quantized operands; onnx_ops.py builds the IR ops for each op type; onnx_values.py holds
what is known about one ONNX tensor.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from mcuc.ir.errors import MCUCError
from mcuc.ir.graph import Graph
from mcuc.ir.op import Op
from mcuc.ir.ops import kinds, op_def
from mcuc.ir.ops.quantize import QuantizeAttrs
from mcuc.ir.ops.transpose import TransposeAttrs
from mcuc.ir.numerics import ORT_INTEGER
from mcuc.ir.tensor import Quantization, Tensor, cut_name, quoted

from .onnx_ops import BUILDERS, FLOAT_OPS, split_slices, table_value
from .onnx_numerics import OnnxNumerics, parse_onnx_numerics
from .onnx_values import INT_TYPES, NCHW_TO_NHWC, NHWC_TO_NCHW, QInput, QParams, Value
from .validate import check_scales, check_size, max_tensor_bytes_or_default, validate_graph

# The opsets of the default domain whose ops mcuc reads with their semantics (opset 21
# adds blocked quantization and 4-bit types, which mcuc refuses where they appear).
MIN_OPSET = 13
MAX_OPSET = 21
# QDQ groups onnxruntime only strips (DropQDQNodesRules): the op runs on the integers.
_DATA_MOVEMENT = {"MaxPool", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Resize", "Slice", "Gather",
                  "DepthToSpace", "SpaceToDepth"}
# Ops onnxruntime always runs in float (it has no quantized kernel for them). Their float
# result may go on through shape-only ops before its QuantizeLinear (torch.onnx writes
# ReduceMean(keepdims=1) -> Reshape); those commute with a per-tensor QuantizeLinear, so
# mcuc quantizes right after the op and moves the integers.
_ALWAYS_FLOAT = {"ReduceMean"}
_SHAPE_ONLY = ("Reshape", "Flatten", "Squeeze", "Unsqueeze")
# The bias operand of QLinearConv / QGemm, whose scale is implied (x_scale * w_scale).
_IMPLIED_BIAS_QPARAMS = QParams(np.ones(1, np.float32), np.zeros(1, np.int64), 0, "int32")
# Operator-oriented (QOperator) ops mcuc reads.
QOPERATOR_OPS = ("QLinearConv", "QLinearMatMul", "QGemm", "QLinearAdd", "QLinearMul", "QLinearGlobalAveragePool",
                 "QLinearAveragePool", "QLinearConcat", "QLinearSigmoid", "QLinearLeakyRelu", "QLinearSoftmax")
# The attributes (and their AttributeProto types) of the com.microsoft ops mcuc reads
# (onnxruntime's contrib schemas).
_I, _F, _S, _INTS = 2, 1, 3, 7
_CONTRIB_ATTRIBUTES = {
    "QGemm": {"alpha": _F, "transA": _I, "transB": _I},
    "QLinearAdd": {}, "QLinearMul": {}, "QLinearSigmoid": {},
    "QLinearLeakyRelu": {"alpha": _F},
    "QLinearGlobalAveragePool": {"channels_last": _I},
    "QLinearAveragePool": {"auto_pad": _S, "ceil_mode": _I, "channels_last": _I, "count_include_pad": _I,
                           "kernel_shape": _INTS, "pads": _INTS, "strides": _INTS},
    "QLinearConcat": {"axis": _I},
    "QLinearSoftmax": {"axis": _I, "opset": _I},
}
# What onnxruntime.quantization.quantize_dynamic writes: int32 results rescaled in float.
_DYNAMIC_QUANTIZATION = {"DynamicQuantizeLinear", "MatMulInteger", "ConvInteger", "DynamicQuantizeMatMul"}


LAYOUTS = ("nchw", "nhwc")


def load_onnx(data: bytes, layout: str = "nchw", numerics: OnnxNumerics | str | None = None,
              max_tensor_bytes: int | None = None) -> Graph:
    """Read a quantized .onnx model into the IR, or raise MCUCError. `layout` is the
    layout of 4-D graph inputs and outputs at the API: "nchw" (the model's) or "nhwc".
    `numerics` is the onnxruntime behaviour to reproduce (mcuc.frontend.onnx_numerics;
    None: the default, exact). `max_tensor_bytes` bounds every tensor (frontend/validate.py;
    None: its default)."""
    numerics = parse_onnx_numerics(numerics)
    max_tensor_bytes = max_tensor_bytes_or_default(max_tensor_bytes)
    if layout not in LAYOUTS:
        raise MCUCError(f"unknown layout {layout!r} for an ONNX model; choose nchw or nhwc")
    try:
        import onnx
    except ImportError as e:  # pragma: no cover - onnx is an install requirement
        raise MCUCError("reading .onnx models needs the onnx package: pip install onnx") from e
    if not data:
        raise MCUCError("this is not an ONNX model: the file is empty")
    try:
        model = onnx.load_model_from_string(bytes(data))
    except Exception as e:  # protobuf raises its own DecodeError type
        raise MCUCError(f"this is not a readable ONNX model: {_one_line(e)}") from None
    if not model.HasField("graph") or not model.graph.node:
        raise MCUCError("this ONNX model has no graph or no nodes: nothing to compile (not an ONNX model, "
                        "or an empty one)")
    _check_text(model)
    return OnnxImporter(model, layout, numerics, max_tensor_bytes).run()


def _one_line(error: Exception, limit: int = 200) -> str:
    """A library's message on one line of at most `limit` characters."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _op_type_text(op_type: str) -> str:
    """An op type for a message: as it is when it looks like one, else quoted and cut."""
    return op_type if op_type.isidentifier() and len(op_type) <= 40 else quoted(op_type, 40)


def _check_text(model) -> None:
    """Names and op types must be text: protobuf hands proto2 strings that are not
    UTF-8 over as bytes, which no later step expects."""
    g = model.graph
    for i, node in enumerate(g.node):
        fields = [node.op_type, node.domain, node.name, *node.input, *node.output,
                  *(a.name for a in node.attribute)]
        if not all(isinstance(f, str) for f in fields):
            bad = next(f for f in fields if not isinstance(f, str))
            raise MCUCError(f"ONNX node {i}: {quoted(bad)} is not UTF-8 text (a corrupt file?); op types and "
                            "names must be text")
    for info in [*g.input, *g.output, *g.value_info, *g.initializer]:
        if not isinstance(info.name, str):
            raise MCUCError(f"ONNX graph: tensor name {quoted(info.name)} is not UTF-8 text (a corrupt file?)")
    for imp in model.opset_import:
        if not isinstance(imp.domain, str):
            raise MCUCError(f"ONNX opset domain {quoted(imp.domain)} is not UTF-8 text (a corrupt file?)")


def _nhwc(shape: tuple[int, ...]) -> tuple[int, ...]:
    """A 4-D ONNX (NCHW) shape as the NHWC shape the API gives with layout "nhwc"."""
    return tuple(shape[i] for i in NCHW_TO_NHWC)


def _onnx_dtype(elem_type: int) -> str:
    from onnx import helper

    try:
        return str(np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)))
    except Exception:
        return f"onnx type {elem_type}"



def supported_onnx_ops() -> dict[str, list[str]]:
    """The ONNX op types this frontend reads (`mcuc ops`): float ops inside QDQ groups,
    onnxruntime's quantized operators, and the nodes that carry quantization."""
    return {"qdq": sorted(FLOAT_OPS), "qoperator": sorted(QOPERATOR_OPS),
            "quantization": ["Constant", "DequantizeLinear", "Identity", "QuantizeLinear"]}

class OnnxImporter:
    """Reads one ONNX model into the IR; implements onnx_context.BuildContext for the op
    builders of onnx_ops.py."""

    def __init__(self, model, layout: str, numerics: OnnxNumerics, max_tensor_bytes: int | None = None):
        import onnx

        self.model = model
        self.numerics = numerics
        self.max_tensor_bytes = max_tensor_bytes_or_default(max_tensor_bytes)
        self.nhwc_edges = layout == "nhwc"  # 4-D graph inputs/outputs are NHWC at the API
        self._check_opset()
        self._check_attributes(model)
        self._check_initializers(model.graph)
        try:
            model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        except Exception as e:
            raise MCUCError(f"ONNX shape inference failed: {_one_line(e)}; export the model with static shapes") \
                from None
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
            try:
                self.constants[init.name] = numpy_helper.to_array(init)
            except Exception as e:  # a corrupt TensorProto: data that does not fill its dims
                raise MCUCError(f"ONNX initializer {quoted(init.name)} is corrupt: {_one_line(e)}") from None
        for info in [*self.graph.input, *self.graph.value_info, *self.graph.output]:
            self._record_type(info)
        for node in self.graph.node:
            for name in node.input:
                if name:
                    self.consumers.setdefault(name, []).append(node)
        self.contrib_outputs = {o for node in self.graph.node if node.domain not in ("", "ai.onnx") for o in node.output}

    # -- model-level checks ----------------------------------------------------------

    def _known_dtype(self, name: str) -> str | None:
        """The element type of `name` where the file settles it: a constant's, or what
        ONNX shape inference gives the output of a standard op (not of com.microsoft ops,
        which it does not know)."""
        if name in self.constants:
            return str(self.constants[name].dtype)
        if name in self.contrib_outputs:
            return None
        return self.dtypes.get(name)

    def _check_opset(self) -> None:
        for imp in self.model.opset_import:
            if imp.domain in ("", "ai.onnx") and imp.version < MIN_OPSET:
                raise MCUCError(f"the model uses opset {imp.version}; mcuc reads opsets {MIN_OPSET} to {MAX_OPSET}: "
                                f"convert it with onnx.version_converter.convert_version(model, {MIN_OPSET})")
            if imp.domain in ("", "ai.onnx") and imp.version > MAX_OPSET:
                raise MCUCError(f"the model uses opset {imp.version}; mcuc reads opsets {MIN_OPSET} to {MAX_OPSET}: "
                                f"convert it with onnx.version_converter.convert_version(model, {MAX_OPSET})")

    def _check_attributes(self, model) -> None:
        """An attribute the op's schema does not have is an invalid model (onnxruntime
        refuses it); mcuc would otherwise ignore it without a word."""
        from onnx import defs

        opset = next((imp.version for imp in model.opset_import if imp.domain in ("", "ai.onnx")), None)
        if opset is None:
            return
        for node in model.graph.node:
            if not node.output or not node.output[0]:
                raise self.error(node, "the node has no output: an invalid model")
            if node.domain == "com.microsoft" and node.op_type in _CONTRIB_ATTRIBUTES:
                known = _CONTRIB_ATTRIBUTES[node.op_type]
            elif node.domain in ("", "ai.onnx"):
                try:
                    schema = defs.get_schema(node.op_type, opset, "")
                except Exception:  # not a standard op: reported where it is read
                    continue
                known = {name: int(a.type) for name, a in schema.attributes.items()}
                for role, values, lo, hi in (("inputs", node.input, schema.min_input, schema.max_input),
                                             ("outputs", node.output, schema.min_output, schema.max_output)):
                    if not lo <= len(values) <= hi:
                        raise self.error(node, f"{len(values)} {role}, where {node.op_type} (opset {opset}) takes "
                                                f"{lo} to {hi}: an invalid model")
            else:
                continue
            for a in node.attribute:
                if a.name not in known:
                    raise self.error(node, f"attribute {quoted(a.name)} is not an attribute of {node.op_type} "
                                            f"(opset {opset}): an invalid model")
                if int(a.type) != known[a.name]:
                    raise self.error(node, f"attribute {quoted(a.name)} has the wrong type for {node.op_type}: "
                                            "an invalid model")

    def _check_initializers(self, graph) -> None:
        """Before any initializer becomes an array: data inside the file, sizes in the limit."""
        from onnx import TensorProto, helper

        for init in graph.initializer:
            what = f"ONNX initializer {quoted(init.name)}"
            if init.data_location == TensorProto.EXTERNAL or init.external_data:
                raise MCUCError(f"{what} keeps its data in an external file; mcuc reads self-contained models "
                                "(save with onnx.save(model, path, save_as_external_data=False))")
            if init.HasField("segment"):
                raise MCUCError(f"{what} is split into segments; mcuc reads whole tensors")
            try:
                itemsize = np.dtype(helper.tensor_dtype_to_np_dtype(init.data_type)).itemsize
            except Exception:
                raise MCUCError(f"{what} has element type {init.data_type}, which mcuc does not read") from None
            check_size(list(init.dims), itemsize, what, self.max_tensor_bytes)

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

    def error(self, node, what: str) -> MCUCError:
        name = node.name or (node.output[0] if node.output else "")
        return MCUCError(f"ONNX node {quoted(name)} ({_op_type_text(node.op_type)}): {what}")

    def unique(self, name: str) -> str:
        name = cut_name(name)  # model names reach the IR (and every message) cut
        base, n = name or "t", 1
        while name in self.names:
            name = f"{base}_{n}"
            n += 1
        self.names.add(name)
        return name

    def constant(self, node, name: str, what: str) -> np.ndarray:
        if name not in self.constants:
            raise self.error(node, f"{what} {quoted(name)} is computed at run time; mcuc needs it as a constant "
                                    "initializer (fold it with onnxruntime's optimizer or onnx-simplifier)")
        return self.constants[name]

    def attrs(self, node) -> dict:
        from onnx import helper

        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def emit(self, kind: str, inputs, attrs, out_name: str, dtype: str, quant: Quantization | None,
              node_name: str = "") -> Tensor:
        """Append one IR op; its output shape comes from the op's own shape rule."""
        probe = Tensor(self.unique(out_name), (1,), dtype, quant)
        op = Op(kind, tuple(inputs), (probe,), attrs, name=cut_name(node_name))
        shape = op_def(kind).infer_shapes(op)[0]
        # Before anything computes on it: a builder may allocate by this shape.
        check_size(shape, np.dtype(dtype).itemsize, f"the output {quoted(out_name)} of {kind}", self.max_tensor_bytes)
        out = probe.with_(shape=shape)
        self.ops.append(op.with_(outputs=(out,)))
        return out

    def _qparams(self, node, scale_name: str, zp_name: str | None, axis: int, dtype: str) -> QParams:
        scale = np.atleast_1d(self.constant(node, scale_name, "scale")).astype(np.float32)
        if zp_name:
            zp_arr = self.constant(node, zp_name, "zero point")
            dtype = str(zp_arr.dtype)
            zp = np.atleast_1d(zp_arr).astype(np.int64).reshape(-1)
        else:
            zp = np.zeros(scale.shape, np.int64)
        scale = scale.reshape(-1)
        if scale.size == 0:
            raise self.error(node, f"scale {quoted(scale_name)} is empty")
        if zp.size != scale.size:
            raise self.error(node, f"{scale.size} scales but {zp.size} zero points ({quoted(zp_name)})")
        if dtype in ("int8", "uint8", "int32"):
            lo, hi = np.iinfo(np.dtype(dtype)).min, np.iinfo(np.dtype(dtype)).max
            bad = np.flatnonzero((zp < lo) | (zp > hi))
            if bad.size:
                raise self.error(node, f"zero point {int(zp[bad[0]])} is outside the {dtype} range")
        try:
            check_scales(scale, f"scale {quoted(scale_name)}")
        except MCUCError as e:
            raise self.error(node, str(e)) from None
        return QParams(scale, zp, axis, dtype)

    # -- the walk --------------------------------------------------------------------

    def run(self) -> Graph:
        inputs = []
        for info in self.graph.input:
            if info.name in self.constants:
                continue
            shape = self.shapes.get(info.name)
            if shape is None:
                raise MCUCError(f"ONNX graph input {quoted(info.name)} has a dynamic or unknown shape; mcuc compiles "
                                "static shapes: export with fixed dimensions or set them with "
                                "onnx.tools.update_model_dims")
            dtype = self.dtypes.get(info.name, "?")
            check_size(shape, np.dtype(dtype).itemsize if dtype in (*INT_TYPES, "float32") else 4,
                       f"ONNX graph input {quoted(info.name)}", self.max_tensor_bytes)
            if dtype in INT_TYPES:
                inputs.append(self._quantized_graph_input(info.name, shape, dtype))
                continue
            if dtype != "float32":
                raise MCUCError(f"ONNX graph input {quoted(info.name)} is {dtype}; mcuc reads float32 inputs followed "
                                "by QuantizeLinear (what onnxruntime.quantization writes) or int8/uint8 inputs")
            nhwc = self.nhwc_edges and len(shape) == 4
            t = Tensor(self.unique(info.name), _nhwc(shape) if nhwc else shape, "float32")
            inputs.append(t)
            self.values[info.name] = Value(t, nchw=nhwc)
        if not self.graph.output:
            raise MCUCError("the ONNX graph has no outputs: nothing to compute")
        for node in self.graph.node:
            if id(node) in self.absorbed:
                continue
            self._convert(node)
        outputs = [self._graph_output(info.name) for info in self.graph.output]
        graph = Graph(tuple(self.ops), tuple(inputs), tuple(outputs), name=cut_name(self.graph.name or "model"))
        graph.verify()
        return validate_graph(graph, self.max_tensor_bytes)

    def _convert(self, node) -> None:
        kind = node.op_type
        if node.domain not in ("", "ai.onnx", "com.microsoft"):
            raise self.error(node, f"op domain {quoted(node.domain)} is not supported; mcuc reads the standard ONNX "
                                    "ops and onnxruntime's com.microsoft quantized ops")
        if kind == "Constant":
            self.constants[node.output[0]] = self._constant_value(node)
        elif kind == "Identity":
            self._identity(node)
        elif kind == "QuantizeLinear":
            self._quantize_linear(node)
        elif kind == "DequantizeLinear":
            self._dequantize_linear(node)
        elif kind.startswith("QLinear") or kind == "QGemm":
            self._qoperator(node)
        elif kind in FLOAT_OPS:
            self._qdq_group(node)
        elif kind in _DYNAMIC_QUANTIZATION:
            raise self.error(node, "this is a dynamically quantized model (activation scales computed at run "
                                    "time); mcuc compiles statically quantized models: quantize with "
                                    "onnxruntime.quantization.quantize_static, or compile the float model with "
                                    "--calibrate")
        else:
            raise self.error(node, f"op type {_op_type_text(kind)} is not supported (`mcuc ops` lists the ops mcuc "
                                    "reads); replace it or keep it outside the quantized model")

    def _identity(self, node) -> None:
        """Identity (torch.onnx's legacy exporter writes one per shared initializer): the
        output names whatever the input is, a constant, a dequantized tensor or a value."""
        src, out = node.input[0], node.output[0]
        if src in self.dequantized and len(self.consumers.get(src, [])) > 1:
            # What quantize_static writes for a model exported with shared initializers and
            # not pre-processed: after removing the Identity nodes, onnxruntime's optimizer
            # fuses some of the ops sharing that DequantizeLinear and runs others in float.
            raise self.error(node, f"shares the dequantized constant {quoted(src)} among "
                                    f"{len(self.consumers[src])} nodes, which onnxruntime runs partly in float in "
                                    "a way mcuc does not reproduce; quantize after onnxruntime.quantization."
                                    "shape_inference.quant_pre_process (it folds Identity nodes), or compile the "
                                    "float model with --calibrate, which does")
        for table in (self.constants, self.dequantized, self.values):
            if src in table:
                table[out] = table[src]
                return
        raise self.error(node, f"input {quoted(src)} is not computed by a supported op")

    def _constant_value(self, node) -> np.ndarray:
        from onnx import TensorProto, helper, numpy_helper

        value = helper.get_attribute_value(node.attribute[0])
        return numpy_helper.to_array(value) if isinstance(value, TensorProto) else np.asarray(value)

    # QuantizeLinear / DequantizeLinear --------------------------------------------------

    def _qdq_params(self, node) -> QParams:
        a = self.attrs(node)
        if int(a.get("block_size", 0)):
            raise self.error(node, "blocked quantization (block_size) is not supported; quantize per tensor or "
                                    "per channel")
        if len(node.input) < 2 or not node.input[1]:
            raise self.error(node, "has no scale input")
        zp = node.input[2] if len(node.input) > 2 and node.input[2] else None
        # Without a zero point the quantized type is QuantizeLinear's output_dtype (opset 21)
        # or uint8, and DequantizeLinear's input type.
        default = "uint8"
        if node.op_type == "QuantizeLinear" and int(a.get("output_dtype", 0)):
            default = _onnx_dtype(int(a["output_dtype"]))
        elif node.op_type == "DequantizeLinear":
            default = self._known_dtype(node.input[0]) or "uint8"
        qp = self._qparams(node, node.input[1], zp, int(a.get("axis", 1)), default)
        if node.op_type == "DequantizeLinear":
            known = self._known_dtype(node.input[0])
            if known in (*INT_TYPES, "int32") and qp.dtype != known:
                raise self.error(node, f"its zero point is {qp.dtype} but its input is {known}")
        if qp.dtype not in (*INT_TYPES, "int32"):
            raise self.error(node, f"quantized type {qp.dtype} is not supported; use int8 or uint8 activations")
        quantized = node.output[0] if node.op_type == "QuantizeLinear" else node.input[0]
        if self.numerics.qdq_int8_as_uint8 and qp.dtype == "int8" and quantized not in self.constants \
                and self._single_consumer(quantized):
            qp = replace(qp, converted_to_uint8=True)
        return qp

    def _quantize_linear(self, node) -> None:
        qp = self._qdq_params(node)
        src = self.values.get(node.input[0])
        if src is None or src.tensor.dtype != "float32":
            raise self.error(node, f"input {quoted(node.input[0])} is not a float graph input; mcuc supports "
                                    "QuantizeLinear on graph inputs and after the ops it fuses")
        if qp.scale.size != 1:
            raise self.error(node, "per-channel activation quantization is not supported")
        q = self.emit(kinds.QUANTIZE, [src.tensor], QuantizeAttrs(numerics=ORT_INTEGER), node.output[0],
                       "int8", qp.ir_quant(0), node.name)
        if src.nchw:  # a 4-D input the user gives NHWC (layout "nhwc"): nothing to move
            self.values[node.output[0]] = Value(q, qp, nchw=True)
        elif len(q.shape) == 4:
            q = self.emit(kinds.TRANSPOSE, [q], TransposeAttrs(NCHW_TO_NHWC), node.output[0] + "_nhwc",
                           "int8", q.quant, node.name)
            self.values[node.output[0]] = Value(q, qp, nchw=True)
        else:
            self.values[node.output[0]] = Value(q, qp)

    def _dequantize_linear(self, node) -> None:
        qp = self._qdq_params(node)
        src = self.values.get(node.input[0])
        if src is not None and src.qparams is not None and not (
                src.qparams.dtype == qp.dtype
                and np.array_equal(np.asarray(src.qparams.scale, np.float32).reshape(-1),
                                   np.asarray(qp.scale, np.float32).reshape(-1))
                and np.array_equal(np.asarray(src.qparams.zero_point, np.int64).reshape(-1),
                                   np.asarray(qp.zero_point, np.int64).reshape(-1))):
            # (found by the fuzz run: mcuc kept the producer's quantization, onnxruntime used these)
            raise self.error(node, f"dequantizes {quoted(node.input[0])} with another scale or zero point than "
                                    "the ones it was quantized with; mcuc keeps one quantization per tensor")
        self.dequantized[node.output[0]] = (node.input[0], qp)

    def _quantized_graph_input(self, name: str, shape: tuple[int, ...], dtype: str) -> Tensor:
        """An int8/uint8 graph input keeps the model's dtype and NCHW layout at the API: its
        parameters are those its first reader (DequantizeLinear or a QLinear* node, which
        both give scale and zero point right after the tensor) states; uint8 moves onto
        int8 by an exact QUANTIZE, 4-D goes NHWC by one TRANSPOSE (none with layout
        "nhwc", where the user gives it NHWC)."""
        reader = next(iter(self.consumers.get(name, [])), None)
        if reader is None or not (reader.op_type == "DequantizeLinear" or reader.op_type.startswith("QLinear")
                                  or reader.op_type == "QGemm"):
            raise MCUCError(f"ONNX graph input {quoted(name)} ({dtype}) is not read by a DequantizeLinear or QLinear* "
                            "node; mcuc cannot tell its quantization")
        position = list(reader.input).index(name)
        if len(reader.input) <= position + 1:
            raise self.error(reader, f"reads graph input {quoted(name)} without a scale after it; mcuc takes an "
                                     "input's quantization from the node that reads it")
        zp_name = reader.input[position + 2] if len(reader.input) > position + 2 else ""
        qp = self._qparams(reader, reader.input[position + 1], zp_name or None, 0, dtype)
        if qp.scale.size != 1:
            raise self.error(reader, f"per-channel quantization of graph input {quoted(name)} is not supported")
        api_shape = _nhwc(shape) if self.nhwc_edges and len(shape) == 4 else shape
        t = Tensor(self.unique(name), api_shape, dtype, Quantization(qp.scale, qp.zero_point, 0))
        q = t
        if dtype == "uint8":
            q = self.emit(kinds.QUANTIZE, [q], None, name + "_int8", "int8", qp.ir_quant(0))
        if len(shape) == 4 and not self.nhwc_edges:
            q = self.emit(kinds.TRANSPOSE, [q], TransposeAttrs(NCHW_TO_NHWC), name + "_nhwc", "int8", q.quant)
        self.values[name] = Value(q, qp, nchw=len(shape) == 4)
        return t

    def _api_layout(self, name: str, value: Value) -> Tensor:
        """The IR tensor of a graph output in the layout the API gives: NCHW (the model's)
        by default, NHWC for 4-D outputs with layout "nhwc". A 4-D value the IR holds in
        ONNX order (after a Transpose or Reshape node) still moves to NHWC then, so that
        every 4-D output follows the one rule the user was promised."""
        t = value.tensor
        if self.nhwc_edges:
            if len(t.shape) == 4 and not value.nchw:
                t = self.emit(kinds.TRANSPOSE, [t], TransposeAttrs(NCHW_TO_NHWC), name + "_nhwc", "int8", t.quant)
        elif value.nchw:
            t = self.emit(kinds.TRANSPOSE, [t], TransposeAttrs(NHWC_TO_NCHW), name + "_nchw", "int8", t.quant)
        return t

    def _graph_output(self, name: str) -> Tensor:
        value = self.values.get(name)
        if value is not None and value.qparams is not None:
            # A quantized output keeps the model's dtype, in the layout the API gives.
            t = self._api_layout(name, value)
            if value.qparams.dtype == "uint8":
                quant = Quantization(value.qparams.scale, value.qparams.zero_point, 0)
                return self.emit(kinds.QUANTIZE, [t], None, name, "uint8", quant)
            return t
        if name in self.dequantized:
            src_name, qp = self.dequantized[name]
            src = self.values.get(src_name)
            if src is None:
                raise MCUCError(f"ONNX graph output {quoted(name)} dequantizes a constant; mcuc needs computed outputs")
            return self.emit(kinds.DEQUANTIZE, [self._api_layout(name, src)], None, name, "float32", None)
        raise MCUCError(f"ONNX graph output {quoted(name)} is not the result of a DequantizeLinear; mcuc compiles "
                        "quantized models with float outputs (what onnxruntime.quantization writes)")

    # QDQ groups ------------------------------------------------------------------------

    def _dq_input(self, node, name: str) -> QInput:
        if name not in self.dequantized:
            raise self.error(node, f"input {quoted(name)} does not come from a DequantizeLinear: the op would run in "
                                    "float; quantize the whole model (onnxruntime.quantization.quantize_static)")
        src_name, qp = self.dequantized[name]
        if src_name in self.constants:
            return QInput(qp, data=self.constants[src_name])
        if src_name not in self.values:
            raise self.error(node, f"input {quoted(src_name)} is not computed by a supported op")
        return QInput(qp, value=self.values[src_name])

    def _single_consumer(self, quantized_name: str) -> bool:
        """Whether a QuantizeLinear output reaches exactly one op (through one DQ): the
        pairs onnxruntime's QDQS8ToU8Transformer converts (it gives shared DQs one copy
        per consumer first)."""
        outputs = {o.name for o in self.graph.output}
        edges = 0
        for user in self.consumers.get(quantized_name, []):
            if user.op_type == "DequantizeLinear":
                dq_out = user.output[0]
                edges += max(1, len(self.consumers.get(dq_out, [])) + (dq_out in outputs))
            else:
                edges += 1
        return edges == 1 and quantized_name not in outputs

    def _output_q(self, node, index: int = 0) -> tuple[QParams, str]:
        """The QuantizeLinear that consumes the node's output `index` (absorbed into the
        op), through any Identity nodes."""
        out = node.output[index]
        users = self.consumers.get(out, [])
        graph_outputs = {o.name for o in self.graph.output}
        while out not in graph_outputs and len(users) == 1 and users[0].op_type == "Identity":
            self.absorbed.add(id(users[0]))  # onnxruntime removes it; so does mcuc
            out = users[0].output[0]
            users = self.consumers.get(out, [])
        if out in graph_outputs or len(users) != 1 or users[0].op_type != "QuantizeLinear":
            raise self.error(node, f"output {quoted(out)} is not consumed by exactly one QuantizeLinear; onnxruntime "
                                    "would run this op in float; quantize the whole model")
        q = users[0]
        self.absorbed.add(id(q))
        qp = self._qdq_params(q)
        if qp.scale.size != 1:
            raise self.error(q, "per-channel activation quantization is not supported")
        return qp, q.output[0]

    def _qdq_group(self, node) -> None:
        kind = node.op_type
        if kind == "Split":
            return self._split(node)
        if kind in (*_DATA_MOVEMENT, "Pad") and node.input[0] in self.values:
            # Operator-oriented models run these directly on the integers.
            value = self.values[node.input[0]]
            if value.qparams is None:
                raise self.error(node, "runs on a float tensor; mcuc compiles quantized graphs")
            return self._build(node, kind, [QInput(value.qparams, value=value)], value.qparams, node.output[0])
        if kind in ("Relu", "Clip"):
            return self._relu(node)
        if kind in ("Conv", "Gemm", "MatMul"):  # an activation, then dequantized constants
            ins = [self._dq_input(node, node.input[0])] + [
                self._const_operand(node, n, "weights" if k == 0 else "bias") if n else None
                for k, n in enumerate(node.input[1:])]
        elif kind in ("Add", "Mul", "Concat", "Max", "Min"):  # every operand is dequantized
            ins = [self._dq_input(node, n) for n in node.input]
        else:  # one dequantized activation; other inputs are constants the builder reads
            ins = [self._dq_input(node, node.input[0])]
        reshapes = self._float_shape_chain(node) if kind in _ALWAYS_FLOAT else []
        if reshapes:
            out_qp, out_name = self._output_q(reshapes[-1])
            self._build(node, kind, ins, out_qp, node.output[0])
            for r in reshapes:  # each moves the integers of the one before
                self._build(r, r.op_type, [QInput(out_qp, value=self.values[r.input[0]])], out_qp,
                            out_name if r is reshapes[-1] else r.output[0])
            return
        out_qp, out_name = self._output_q(node)
        if kind in _DATA_MOVEMENT and not ins[0].qparams.same_as(out_qp):
            # onnxruntime keeps DQ -> float op -> Q: the op only moves (or, for MaxPool, picks)
            # dequantized values, so it equals the integer op followed by DQ -> Q as a table.
            moved = BUILDERS[kind](self, node, ins, ins[0].qparams, out_name + "_moved")
            self.values[out_name] = table_value(self, node, moved, lambda r: r, "requantize", out_qp, out_name)
            return
        self._build(node, kind, ins, out_qp, out_name)

    def _split(self, node) -> None:
        """Split (onnxruntime strips its QDQ nodes and moves the integers): one slice per
        output along the axis (onnx_ops.split_slices), each with its own QuantizeLinear's
        parameters (a requantizing table where they differ from the input's)."""
        if node.input[0] in self.values:  # operator-oriented: on the integers directly
            value = self.values[node.input[0]]
            if value.qparams is None:
                raise self.error(node, "runs on a float tensor; mcuc compiles quantized graphs")
            x, outputs = QInput(value.qparams, value=value), [(value.qparams, name) for name in node.output]
        else:
            x = self._dq_input(node, node.input[0])
            outputs = [self._output_q(node, i) for i in range(len(node.output))]
        same = [x.qparams.same_as(qp) for qp, _ in outputs]
        names = [name if keep else name + "_moved" for (_, name), keep in zip(outputs, same)]
        for (out_qp, out_name), keep, moved in zip(outputs, same, split_slices(self, node, x, names)):
            self.values[out_name] = moved if keep else \
                table_value(self, node, moved, lambda r: r, "requantize", out_qp, out_name)

    def _float_shape_chain(self, node) -> list:
        """The shape-only nodes (_SHAPE_ONLY) that alone consume the float output of `node`,
        one after another, absorbed into its group."""
        chain, out = [], node.output[0]
        graph_outputs = {o.name for o in self.graph.output}
        while out not in graph_outputs:
            users = self.consumers.get(out, [])
            if len(users) != 1 or users[0].op_type not in _SHAPE_ONLY:
                break
            chain.append(users[0])
            self.absorbed.add(id(users[0]))
            out = users[0].output[0]
        return chain

    def _const_operand(self, node, name: str, role: str) -> QInput:
        """The constant `role` ("weights" or "bias") of a Conv, Gemm or MatMul."""
        if name in self.dequantized:
            src, qp = self.dequantized[name]
            if src not in self.constants:
                raise self.error(node, f"{role} {quoted(src)} is computed at run time; mcuc needs constant weights "
                                       "and bias")
            return QInput(qp, data=self.constants[src])
        raise self.error(node, f"{role} {quoted(name)} is not a dequantized constant (float {role}); quantize the "
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
                    bounds[k - 1] = float(self.constant(node, node.input[k], "Clip bound"))
            if node.input[1:2] == [""] or len(node.input) < 2:
                bounds[0] = -np.inf
        scale, zp = np.float32(out_qp.scale[0]), int(value.tensor.quant.scalar_zero_point)
        # The integers q whose dequantized value lies inside [lo, hi].
        grid = np.arange(-128, 128)
        real = (grid - zp).astype(np.float32) * scale
        inside = grid[(real >= np.float32(bounds[0])) & (real <= np.float32(bounds[1]))]
        if inside.size == 0:
            raise self.error(node, f"clip range {bounds} contains no quantized value")
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
            raise self.error(node, f"input {quoted(value_name)} is not computed by a supported op")
        return QInput(qp, value=self.values[value_name])

    def _qoperator(self, node) -> None:
        kind = node.op_type
        i = list(node.input) + [""] * 9
        if kind == "QLinearConv":
            ins = [self._q_operand(node, i[0], i[1], i[2]), self._q_operand(node, i[3], i[4], i[5], 0)]
            bias = QInput(_IMPLIED_BIAS_QPARAMS,
                          data=self.constant(node, i[8], "bias")) if i[8] else None
            out = self._qparams(node, i[6], i[7], 0, "uint8")
            return self._build(node, "Conv", ins + [bias], out, node.output[0])
        if kind == "QLinearMatMul":
            ins = [self._q_operand(node, i[0], i[1], i[2]), self._q_operand(node, i[3], i[4], i[5], 1)]
            out = self._qparams(node, i[6], i[7], 0, "uint8")
            return self._build(node, "MatMul", ins, out, node.output[0])
        if kind == "QGemm":
            output_axis = 0 if int(self.attrs(node).get("transB", 0)) else 1
            ins = [self._q_operand(node, i[0], i[1], i[2]), self._q_operand(node, i[3], i[4], i[5], output_axis)]
            bias = QInput(_IMPLIED_BIAS_QPARAMS,
                          data=self.constant(node, i[6], "bias")) if i[6] else None
            if not i[7]:
                raise self.error(node, "QGemm without an output scale produces float; mcuc needs quantized output")
            out = self._qparams(node, i[7], i[8] or None, 0, "uint8")
            return self._build(node, "Gemm", ins + [bias], out, node.output[0])
        if kind in ("QLinearAdd", "QLinearMul"):
            ins = [self._q_operand(node, i[0], i[1], i[2]), self._q_operand(node, i[3], i[4], i[5])]
            out = self._qparams(node, i[6], i[7] or None, 0, "uint8")
            return self._build(node, kind[len("QLinear"):], ins, out, node.output[0])
        if kind == "QLinearGlobalAveragePool":
            if int(self.attrs(node).get("channels_last", 0)):
                raise self.error(node, "channels_last=1 is not supported; export NCHW")
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
            names = list(node.input[2:])
            if not names or len(names) % 3:
                raise self.error(node, f"{len(node.input)} inputs; QLinearConcat takes Y_scale, Y_zero_point, then "
                                        "one (X, X_scale, X_zero_point) triple per operand")
            out = self._qparams(node, i[0], i[1], 0, "uint8")
            ins = [self._q_operand(node, names[k], names[k + 1], names[k + 2]) for k in range(0, len(names), 3)]
            return self._build(node, "Concat", ins, out, node.output[0])
        raise self.error(node, f"operator-oriented op {_op_type_text(kind)} is not supported (`mcuc ops` lists "
                                "the ones mcuc reads); quantize in QDQ format or keep the op outside the quantized "
                                "model")

    # building IR ops ---------------------------------------------------------------------

    def activation(self, node, q: QInput) -> Value:
        if q.is_constant or q.value is None:
            raise self.error(node, "this operand must be computed at run time, not a constant")
        if q.qparams.dtype not in INT_TYPES:
            raise self.error(node, f"activations of type {q.qparams.dtype} are not supported; use int8 or uint8")
        held, read = q.value.tensor.quant, q.qparams.ir_quant(0)
        if not (np.array_equal(held.scale, read.scale) and np.array_equal(held.zero_point, read.zero_point)):
            raise self.error(node, f"reads {quoted(q.value.tensor.name)} with quantization {read!r}, but it was "
                                    f"quantized with {held!r}; requantize explicitly")
        return q.value

    def _build(self, node, kind: str, ins: list[QInput | None], out: QParams, out_name: str) -> None:
        if out.dtype not in INT_TYPES:
            raise self.error(node, f"output type {out.dtype} is not supported; use int8 or uint8")
        builder = BUILDERS[kind]
        value = builder(self, node, ins, out, out_name)
        self.values[out_name] = value

    def weights(self, node, w: QInput, channel_axis: int) -> tuple[np.ndarray, Quantization]:
        if not w.is_constant:
            raise self.error(node, "the weights are computed at run time; mcuc needs constant weights (fold them "
                                    "with onnxruntime's optimizer or onnx-simplifier)")
        if w.qparams.dtype != "int8":
            raise self.error(node, f"weights are {w.qparams.dtype}; mcuc needs int8 weights "
                                    "(quantize_static(..., weight_type=QuantType.QInt8))")
        if np.any(w.qparams.zero_point != 0):
            raise self.error(node, "weights have a non-zero zero point; mcuc needs symmetric weights "
                                    "(quantize_static's default for int8 weights)")
        if w.data.ndim <= channel_axis:
            raise self.error(node, f"weights of shape {list(w.data.shape)} have no output-channel axis "
                                    f"{channel_axis}")
        if w.qparams.scale.size not in (1, w.data.shape[channel_axis]):
            raise self.error(node, f"weights have {w.qparams.scale.size} scales for "
                                    f"{w.data.shape[channel_axis]} output channels")
        if w.qparams.scale.size > 1 and w.qparams.axis % w.data.ndim != channel_axis:
            raise self.error(node, f"weights are quantized per channel along axis {w.qparams.axis}; mcuc needs "
                                    f"the output-channel axis {channel_axis}")
        return w.data, Quantization(w.qparams.scale, np.zeros(w.qparams.scale.size, np.int64), 0)

    def bias_in_float(self, node, b: QInput | None, x: QInput, w_quant: Quantization, channels: int) -> bool:
        """Whether a QDQ bias keeps onnxruntime from fusing its Conv group, which then runs
        in float with the bias dequantized by its own parameters (OrtFloat). Measured on the
        pinned onnxruntime (tests/frontend/test_hostile_onnx.py): a Conv fuses exactly when
        every zero point of its bias is 0 and every channel's scale s is within 1e-6 + 1e-2 *
        |x_scale * w_scale| of x_scale * w_scale, and the fused kernel then adds the int32
        values as if their scale were x_scale * w_scale. A Gemm fuses whatever its bias's
        parameters (QGemm adds the raw int32 values). A scale at the edge of the Conv
        tolerance is refused: which side onnxruntime takes there is not certain."""
        if b is None or b.qparams is _IMPLIED_BIAS_QPARAMS or node.op_type != "Conv":
            return False
        if np.any(b.qparams.zero_point != 0):
            return True
        implied = (np.float32(x.qparams.scale[0]) * w_quant.scale.astype(np.float32)).astype(np.float64)
        implied = np.broadcast_to(implied, (channels,))
        stated = np.broadcast_to(b.qparams.scale.astype(np.float64), (channels,))
        ratio = np.abs(stated - implied) / (1e-6 + 1e-2 * np.abs(implied))
        edge = np.flatnonzero((ratio > 0.98) & (ratio < 1.02))
        if edge.size:
            c = int(edge[0])
            raise self.error(node, f"the bias scale {stated[c]:.9g} of channel {c} is at the edge of onnxruntime's "
                                    f"tolerance around input scale x weight scale ({implied[c]:.9g}), where mcuc "
                                    "cannot tell whether onnxruntime fuses the group; quantize the bias with "
                                    "scale input_scale x weight_scale")
        return bool(np.any(ratio >= 1.02))

    def bias(self, node, b: QInput | None, x: QInput, w_quant: Quantization, channels: int,
             in_float: bool = False) -> Tensor | None:
        if b is None:
            return None
        if not b.is_constant:
            raise self.error(node, "the bias is computed at run time; mcuc needs it as a constant initializer")
        data = np.asarray(b.data)
        if data.dtype != np.int32 or data.size != channels:
            raise self.error(node, f"bias must be int32 with {channels} values, got {data.dtype} x {data.size}")
        if b.qparams is _IMPLIED_BIAS_QPARAMS:  # QLinearConv/QGemm: the bias scale is x_scale * w_scale
            scale = np.float32(x.qparams.scale[0]) * w_quant.scale
        else:  # a QDQ bias states its own (a float island dequantizes it with that)
            scale = np.broadcast_to(b.qparams.scale.astype(np.float32), (channels,)).copy()
            zero_point = np.broadcast_to(b.qparams.zero_point, (channels,))
            if in_float and np.any(zero_point != 0):
                # DequantizeLinear subtracts it in int32: the IR's bias holds the difference.
                # (A fused kernel adds the raw values: the zero point is then ignored.)
                shifted = data.reshape(channels).astype(np.int64) - zero_point
                if np.any(shifted != shifted.astype(np.int32)):
                    raise self.error(node, "bias minus its zero point leaves int32")
                data = shifted.astype(np.int32)
        return Tensor(self.unique(node.name + "_bias"), (channels,), "int32",
                      Quantization(scale, np.zeros(scale.size, np.int64)), data.reshape(channels))
