"""`mcuc validate`: the compiled model on the user's own samples.

Runs every sample through the compiled model on one backend and reports

- bit-exactness against the oracle on the same samples (as `mcuc verify` defines it:
  tflite-micro's bytes for .tflite, mcuc's reference checked against onnxruntime for .onnx);
- against a float reference model, when one is given (a float .tflite run by tflite-micro's
  float kernels, a float .onnx run by onnxruntime; for an ONNX model quantized with
  `--calibrate`, its float original), per output, on dequantized values: top-1 agreement,
  RMSE, cosine similarity, L2 relative error, max and mean absolute error; with labels, the
  accuracy of both; with `per_layer`, the same errors per intermediate tensor whose name
  (and shape) the float model has too.

Samples come as .npy (one input), .npz (one array per input name) or a folder of images,
in float (quantized with the model's input scale and zero point) or already quantized
integers. This module is not frontend/validate.py (the checks on a model file read).

Definitions, over all samples of one tensor at once (q: the compiled model's values,
dequantized; f: the float reference's), as tests/compiler/test_validate.py recomputes them:
rmse = sqrt(mean((q - f)^2)); cosine = sum(q f) / (|q| |f|); l2_relative = |q - f| / |f|;
max_abs_error = max |q - f|; mean_abs_error = mean |q - f|; top-1 agreement: the share of
samples whose flattened output has its largest value at the same index in q and f;
accuracy: the share whose index equals the label.
"""
from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from mcuc.ir.errors import MCUCError
from mcuc.ir.graph import Graph
from mcuc.ir.tensor import Tensor, cut_name, quoted
from mcuc.model import Model, reloaded
from mcuc.pipeline import CompileOptions, prepare

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".webp", ".tif", ".tiff")
# Suffixes onnxruntime.quantization gives the quantized copy of a float tensor, and mcuc's
# ONNX frontend the NHWC copy of an NCHW one: the per-layer match looks past them.
_DERIVED_SUFFIXES = ("_nhwc", "_QuantizeLinear_Output", "_DequantizeLinear_Output")


# -- metrics ---------------------------------------------------------------------------------

@dataclass
class ErrorStats:
    """Running sums over (value, reference) pairs, in float64."""

    count: int = 0
    sq_err: float = 0.0
    sq_ref: float = 0.0
    sq_val: float = 0.0
    dot: float = 0.0
    abs_err: float = 0.0
    max_abs: float = 0.0

    def add(self, value: np.ndarray, reference: np.ndarray) -> None:
        q = np.asarray(value, np.float64).ravel()
        f = np.asarray(reference, np.float64).ravel()
        d = q - f
        self.count += q.size
        self.sq_err += float(d @ d)
        self.sq_ref += float(f @ f)
        self.sq_val += float(q @ q)
        self.dot += float(q @ f)
        self.abs_err += float(np.abs(d).sum())
        self.max_abs = max(self.max_abs, float(np.abs(d).max()) if d.size else 0.0)

    def summary(self) -> dict:
        if not self.count:
            return {"rmse": None, "cosine": None, "l2_relative": None, "max_abs_error": None,
                    "mean_abs_error": None}
        norms = np.sqrt(self.sq_val) * np.sqrt(self.sq_ref)
        cosine = self.dot / norms if norms > 0 else (1.0 if self.sq_val == self.sq_ref == 0 else 0.0)
        l2 = np.sqrt(self.sq_err) / np.sqrt(self.sq_ref) if self.sq_ref > 0 else (0.0 if self.sq_err == 0 else None)
        return {"rmse": float(np.sqrt(self.sq_err / self.count)), "cosine": float(cosine),
                "l2_relative": None if l2 is None else float(l2), "max_abs_error": self.max_abs,
                "mean_abs_error": self.abs_err / self.count}


@dataclass
class OutputMetrics:
    """One graph output over all samples. Reference-based fields are None without one;
    accuracies None without labels (labels apply to the first output)."""

    name: str
    shape: list[int]
    top1_agreement: float | None = None
    accuracy: float | None = None
    reference_accuracy: float | None = None
    rmse: float | None = None
    cosine: float | None = None
    l2_relative: float | None = None
    max_abs_error: float | None = None
    mean_abs_error: float | None = None


@dataclass
class LayerMetrics:
    """One intermediate tensor of the compiled graph against the float tensor of the same name."""

    name: str
    reference_name: str
    op: str
    shape: list[int]
    rmse: float | None = None
    cosine: float | None = None
    l2_relative: float | None = None
    max_abs_error: float | None = None
    mean_abs_error: float | None = None


@dataclass
class ValidationResult:
    """What `mcuc validate` reports (`to_dict()` is its --json)."""

    model: str
    backend: str
    samples: int
    data: str
    reference: str | None
    labels: bool
    bit_exact: bool  # the backend's bytes equal the oracle's on every sample
    oracle: str
    max_abs_diff: float = 0
    mismatched_samples: list[int] = field(default_factory=list)
    onnxruntime: dict | None = None
    outputs: list[OutputMetrics] = field(default_factory=list)
    layers: list[LayerMetrics] | None = None
    unmatched_layers: list[dict] | None = None  # compiled tensors with no float counterpart, and why

    def to_dict(self) -> dict:
        d = asdict(self)
        if self.onnxruntime is None:
            del d["onnxruntime"]
        if self.layers is None:
            del d["layers"], d["unmatched_layers"]
        return d


# -- the samples -----------------------------------------------------------------------------

@dataclass
class Samples:
    """Per input, a stack [count, *shape] of the user's values as given (float or integer)."""

    arrays: list[np.ndarray]
    labels: np.ndarray | None
    description: str

    @property
    def count(self) -> int:
        return len(self.arrays[0])


def _stack(array: np.ndarray, tensor: Tensor, model: Model, what: str) -> np.ndarray:
    """`array` as a stack of samples of `tensor`'s shape: one sample, [count, *shape], or
    [count, *shape[1:]] for a batch-1 input."""
    shape = tuple(tensor.shape)
    if array.dtype.kind not in "fiu":
        raise MCUCError(f"{what} holds {array.dtype} values; give float or integer samples")
    if array.shape == shape:
        return array[None]
    if array.ndim == len(shape) + 1 and array.shape[1:] == shape:
        return array
    if shape and shape[0] == 1 and array.ndim == len(shape) and array.shape[1:] == shape[1:]:
        return array[:, None]
    advice = "give one sample or a stack of samples"
    if len(shape) == 4 and array.ndim in (4, 5):
        tail = array.shape[-3:]
        for looks, perm, other in (("NCHW", (1, 2, 0), "nchw"), ("NHWC", (2, 0, 1), "nhwc")):
            if tuple(tail[i] for i in perm) == shape[1:] and tail != shape[1:]:
                advice = f"the samples look {looks}: transpose them"
                if model.format == "onnx":
                    advice += f", or compile with --layout {other}"
    layout = f" ({model.layout.upper()})" if len(shape) == 4 else ""
    raise MCUCError(f"{what} has shape {list(array.shape)}; input {quoted(tensor.name)} of {cut_name(model.name)} "
                    f"is {list(shape)}{layout}; {advice}")


def _load_array(path: Path, what: str):
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise MCUCError(f"cannot read {what} {str(path)!r}: {e}") from None


def read_samples(data, model: Model, graph: Graph, labels=None,
                 image_range: tuple[float, float] = (0.0, 1.0)) -> Samples:
    """The samples of `data`: an .npy file or array (one input), an .npz file or a dict
    {input name: array}, or a folder of images (one 4-D input with 1 or 3 channels; its
    subfolders, if any, are the classes, sorted by name, which give the labels)."""
    inputs = graph.inputs
    folder_labels = None
    if isinstance(data, dict):
        arrays, description = _by_name(dict(data), inputs, "data"), "arrays"
    elif isinstance(data, np.ndarray):
        arrays, description = _one_input([data], inputs, model, "data"), "array"
    else:
        path = Path(data)
        description = str(path)
        if path.is_dir():
            arrays, folder_labels = _read_images(path, inputs, model, image_range)
        elif not path.exists():
            raise MCUCError(f"--data {str(path)!r} does not exist")
        elif path.suffix.lower() == ".npz":
            archive = _load_array(path, "--data")
            arrays = _by_name({k: archive[k] for k in archive.files}, inputs, f"--data {str(path)!r}")
        elif path.suffix.lower() == ".npy":
            arrays = _one_input([_load_array(path, "--data")], inputs, model, f"--data {str(path)!r}")
        else:
            raise MCUCError(f"--data {str(path)!r}: give a .npy file, an .npz file (one array per input name) "
                            "or a folder of images")
    stacks = [_stack(np.asarray(a), t, model, f"the samples of input {quoted(t.name)}") for a, t in zip(arrays, inputs)]
    counts = {len(s) for s in stacks}
    if len(counts) != 1:
        raise MCUCError(f"the inputs have different sample counts: {sorted(counts)}")
    if 0 in counts:
        raise MCUCError("--data holds no samples")
    count = counts.pop()
    label_values = folder_labels if labels is None else _read_labels(labels)
    if label_values is not None and len(label_values) != count:
        raise MCUCError(f"--labels has {len(label_values)} labels for {count} samples")
    return Samples(stacks, label_values, description)


def _one_input(arrays, inputs, model: Model, what: str) -> list[np.ndarray]:
    if len(inputs) != 1:
        names = ", ".join(quoted(t.name) for t in inputs)
        raise MCUCError(f"{what}: {cut_name(model.name)} has {len(inputs)} inputs ({names}); give an .npz file "
                        "with one array per input name")
    return arrays


def _by_name(archive: dict, inputs, what: str) -> list[np.ndarray]:
    if len(inputs) == 1 and len(archive) == 1:
        return [np.asarray(next(iter(archive.values())))]
    missing = [t.name for t in inputs if t.name not in archive]
    if missing:
        raise MCUCError(f"{what} has no array named {', '.join(quoted(n) for n in missing)}; it holds "
                        f"{', '.join(quoted(k) for k in archive) or 'nothing'} (one array per input name)")
    return [np.asarray(archive[t.name]) for t in inputs]


def _read_labels(labels) -> np.ndarray:
    """Class indices [count], or one-hot / scores [count, classes] (their argmax)."""
    array = np.asarray(labels) if not isinstance(labels, (str, os.PathLike)) else None
    if array is None:
        path = Path(labels)
        if not path.is_file():
            raise MCUCError(f"--labels {str(path)!r} does not exist")
        array = _load_array(path, "--labels")
    if array.dtype.kind not in "fiub" or array.ndim not in (1, 2):
        raise MCUCError(f"--labels holds {array.dtype}{list(array.shape)}; give class indices [count] or "
                        "one-hot rows [count, classes]")
    if array.ndim == 2:
        return array.argmax(axis=1)
    if array.dtype.kind == "f" and not np.all(array == np.round(array)):
        raise MCUCError("--labels: class indices must be whole numbers")
    return array.astype(np.int64)


def _read_images(folder: Path, inputs, model: Model, value_range) -> tuple[list[np.ndarray], np.ndarray | None]:
    """A folder of images as float samples of the model's one 4-D input: each image
    converted to grayscale or RGB as the input's channels say, resized to its height and
    width (bilinear), and its pixels p mapped to lo + (hi - lo) * p / 255."""
    if len(inputs) != 1 or len(inputs[0].shape) != 4:
        raise MCUCError(f"a folder of images feeds a model with one 4-D input; {cut_name(model.name)} has "
                        f"{len(inputs)} inputs of shapes {[list(t.shape) for t in inputs]}")
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise MCUCError("reading a folder of images needs Pillow: pip install 'mcuc[images]'") from None
    shape = inputs[0].shape
    nchw = model.layout == "nchw"
    channels, height, width = (shape[1], shape[2], shape[3]) if nchw else (shape[3], shape[1], shape[2])
    if channels not in (1, 3):
        raise MCUCError(f"input {quoted(inputs[0].name)} has {channels} channels; images give 1 (grayscale) or 3 (RGB)")
    classes = sorted(p for p in folder.iterdir() if p.is_dir())

    def images(d: Path) -> list[Path]:
        return sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)

    files = [(f, i) for i, d in enumerate(classes) for f in images(d)] if classes else [(f, -1) for f in images(folder)]
    if not files:
        raise MCUCError(f"--data {str(folder)!r} holds no images ({', '.join(IMAGE_SUFFIXES)}), "
                        "neither itself nor in class subfolders")
    lo, hi = value_range
    samples = []
    for f, _ in files:
        try:
            with Image.open(f) as image:
                pixels = image.convert("L" if channels == 1 else "RGB").resize((width, height), Image.BILINEAR)
                array = np.asarray(pixels, np.float32).reshape(height, width, channels)
        except (OSError, UnidentifiedImageError, ValueError) as e:
            raise MCUCError(f"cannot read image {str(f)!r}: {e}") from None
        array = np.float32(lo) + np.float32(hi - lo) * array / np.float32(255)
        samples.append(array.transpose(2, 0, 1)[None] if nchw else array[None])
    labels = np.array([i for _, i in files], np.int64) if classes else None
    return [np.stack(samples).astype(np.float32)], labels


def _grid(graph: Graph, t: Tensor) -> tuple[float, int] | None:
    """The (scale, zero point) that relates `t`'s values to floats: its own quantization,
    or, for a float input, that of the QUANTIZE reading it."""
    from mcuc.ir.ops.kinds import QUANTIZE

    if t.quant is not None and not t.quant.per_channel and np.issubdtype(np.dtype(t.dtype), np.integer):
        return float(t.quant.scalar_scale), int(t.quant.scalar_zero_point)
    for op in graph.consumers(t):
        if op.kind == QUANTIZE and op.outputs[0].quant is not None:
            q = op.outputs[0].quant
            return float(q.scalar_scale), int(q.scalar_zero_point)
    return None


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype: str, fmt: str) -> np.ndarray:
    """Float samples on an integer input's grid, rounded as the model's format does
    (TFLite: half away from zero; ONNX QuantizeLinear: half to even), saturated."""
    v = np.asarray(x, np.float32) / np.float32(scale)
    r = np.rint(v) if fmt == "onnx" else np.trunc(v + np.copysign(np.float32(0.5), v))
    info = np.iinfo(np.dtype(dtype))
    return np.clip(r.astype(np.float64) + zero_point, info.min, info.max).astype(dtype)


def dequantize(x: np.ndarray, grid: tuple[float, int] | None) -> np.ndarray:
    if grid is None or np.issubdtype(x.dtype, np.floating):
        return np.asarray(x, np.float32)
    scale, zero_point = grid
    return (np.float32(scale) * (x.astype(np.int32) - zero_point).astype(np.float32)).astype(np.float32)


def compiled_inputs(samples: Samples, graph: Graph, fmt: str) -> list[list[np.ndarray]]:
    """Per sample, the compiled graph's inputs: floats quantized for integer inputs,
    integers checked against the input's range (or dequantized for a float input)."""
    per_input = []
    for t, stack in zip(graph.inputs, samples.arrays):
        what = f"the samples of input {quoted(t.name)}"
        dtype = np.dtype(t.dtype)
        grid = _grid(graph, t)
        if np.issubdtype(dtype, np.integer):
            if stack.dtype.kind == "f":
                if grid is None:
                    raise MCUCError(f"{what} are float but the input is {t.dtype} without one scale and zero "
                                    f"point to quantize them with; give {t.dtype} samples")
                stack = quantize(stack, *grid, t.dtype, fmt)
            else:
                info = np.iinfo(dtype)
                if stack.size and (stack.min() < info.min or stack.max() > info.max):
                    raise MCUCError(f"{what} are integers in [{stack.min()}, {stack.max()}], outside {t.dtype}'s "
                                    f"range; give {t.dtype} values, or floats to quantize")
                stack = stack.astype(dtype)
        elif stack.dtype.kind != "f":
            if grid is None:
                raise MCUCError(f"{what} are integers but the input is {t.dtype} with no quantization to read them "
                                "by; give float samples")
            stack = dequantize(stack, grid)
        else:
            stack = stack.astype(dtype)
        per_input.append(stack)
    return [[s[i] for s in per_input] for i in range(samples.count)]


def float_inputs(samples: Samples, graph: Graph) -> list[list[np.ndarray]]:
    """Per sample, the inputs as floats (integer samples dequantized): what the float
    reference model takes (in the compiled model's layout)."""
    per_input = [dequantize(s, _grid(graph, t)) if s.dtype.kind != "f" else s.astype(np.float32)
                 for t, s in zip(graph.inputs, samples.arrays)]
    return [[s[i] for s in per_input] for i in range(samples.count)]


# -- the float reference ---------------------------------------------------------------------

class FloatReference:
    """A float model run on float inputs: (outputs, {tensor name: value} of its
    intermediates when `per_layer`). Inputs and outputs are in `layout` (the compiled
    model's); an ONNX reference runs NCHW and this class moves 4-D tensors."""

    def __init__(self, path: str | os.PathLike, layout: str, n_inputs: int, per_layer: bool):
        self.path = Path(path)
        if not self.path.is_file():
            raise MCUCError(f"--reference {str(path)!r} does not exist")
        self.per_layer = per_layer
        self.nhwc_onnx = False
        suffix = self.path.suffix.lower()
        if suffix == ".onnx":
            self._init_onnx(layout)
        elif suffix == ".tflite":
            self._init_tflite()
        else:
            raise MCUCError(f"--reference {self.path.name}: give a float .tflite or .onnx model")
        if self.n_inputs != n_inputs:
            raise MCUCError(f"--reference {self.path.name} takes {self.n_inputs} inputs; the model takes {n_inputs}")

    def _init_onnx(self, layout: str) -> None:
        import onnx

        from mcuc.oracle_onnx import _onnxruntime

        try:
            proto = onnx.load_model_from_string(self.path.read_bytes())
        except Exception as e:  # onnx raises its own types
            raise MCUCError(f"cannot read --reference {self.path.name} as ONNX: {e}") from None
        initializers = {t.name for t in proto.graph.initializer}
        graph_inputs = [i for i in proto.graph.input if i.name not in initializers]
        float_type = onnx.TensorProto.FLOAT
        not_float = [i.name for i in graph_inputs if i.type.tensor_type.elem_type != float_type]
        if not_float:
            raise MCUCError(f"--reference {self.path.name} is not a float model: input(s) {', '.join(not_float)} "
                            "are not float32")
        self.n_inputs = len(graph_inputs)
        self.nhwc_onnx = layout == "nhwc"
        self.layer_names: list[str] = []
        if self.per_layer:
            proto = self._with_intermediate_outputs(proto)
        ort = _onnxruntime()
        options = ort.SessionOptions()
        options.log_severity_level = 4
        try:
            self._session = ort.InferenceSession(proto.SerializeToString(), options,
                                                 providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own types
            raise MCUCError(f"onnxruntime cannot load --reference {self.path.name}: {str(e).splitlines()[0]}") from None
        self._inputs = [i.name for i in self._session.get_inputs()]
        self._outputs = [o.name for o in self._session.get_outputs()]
        self.n_outputs = len(self._outputs) - len(self.layer_names)
        self.tensor_names = [*self._inputs, *self._outputs]  # every float tensor a run gives by name
        self._run = self._run_onnx

    def _with_intermediate_outputs(self, proto):
        """The model with every float node output as a graph output too (its float
        intermediates come back from one run)."""
        import onnx

        try:
            inferred = onnx.shape_inference.infer_shapes(proto)
        except Exception:  # a model shape inference cannot follow: per layer, only what is typed
            inferred = proto
        typed = {v.name: v for v in [*inferred.graph.value_info, *inferred.graph.output]}
        existing = {o.name for o in proto.graph.output}
        for node in proto.graph.node:
            for name in node.output:
                info = typed.get(name)
                if name and name not in existing and info is not None and \
                        info.type.tensor_type.elem_type == onnx.TensorProto.FLOAT:
                    proto.graph.output.append(info)
                    existing.add(name)
                    self.layer_names.append(name)
        return proto

    def _run_onnx(self, inputs):
        feed = {name: (x.transpose(0, 3, 1, 2) if self.nhwc_onnx and x.ndim == 4 else x)
                for name, x in zip(self._inputs, inputs)}
        feed = {k: np.ascontiguousarray(v, np.float32) for k, v in feed.items()}
        values = self._session.run(None, feed)
        outputs = [y.transpose(0, 2, 3, 1) if self.nhwc_onnx and y.ndim == 4 else y for y in values[:self.n_outputs]]
        if not self.per_layer:
            return outputs, {}
        return outputs, {**feed, **dict(zip(self._outputs, values))}

    def _init_tflite(self) -> None:
        import tflite

        from mcuc.oracle import TFLiteOracle

        data = self.path.read_bytes()
        try:
            graph = tflite.Model.GetRootAsModel(data, 0).Subgraphs(0)
            tensors = [graph.Tensors(i) for i in range(graph.TensorsLength())]
            inputs, outputs = list(graph.InputsAsNumpy()), list(graph.OutputsAsNumpy())
        except Exception as e:  # a malformed flatbuffer
            raise MCUCError(f"cannot read --reference {self.path.name} as TFLite: {e}") from None
        float32 = tflite.TensorType.FLOAT32
        not_float = [tensors[i].Name().decode(errors="replace") for i in inputs if tensors[i].Type() != float32]
        if not_float:
            raise MCUCError(f"--reference {self.path.name} is not a float model: input(s) {', '.join(not_float)} "
                            "are not float32")
        self.n_inputs, self.n_outputs = len(inputs), len(outputs)
        model = tflite.Model.GetRootAsModel(data, 0)
        produced = {int(o) for i in range(graph.OperatorsLength()) for o in graph.Operators(i).OutputsAsNumpy()}
        self._layer_indices = [i for i in sorted(produced - set(outputs))
                               if tensors[i].Type() == float32 and model.Buffers(tensors[i].Buffer()).DataLength() == 0]
        self.layer_names = [tensors[i].Name().decode(errors="replace") for i in self._layer_indices]
        self._input_names = [tensors[i].Name().decode(errors="replace") for i in inputs]
        self._output_names = [tensors[i].Name().decode(errors="replace") for i in outputs]
        self.tensor_names = [*self._input_names, *self._output_names, *self.layer_names]
        self._oracle = TFLiteOracle(data, preserve_tensors=self.per_layer)
        self._run = self._run_tflite

    def _run_tflite(self, inputs):
        inputs = [np.ascontiguousarray(x, np.float32) for x in inputs]
        if not self.per_layer:
            return self._oracle(inputs), {}
        outputs, values = self._oracle.run_with_tensors(inputs, self._layer_indices)
        return outputs, {**dict(zip(self._input_names, inputs)), **dict(zip(self._output_names, outputs)),
                         **dict(zip(self.layer_names, values))}

    def __call__(self, inputs: Sequence[np.ndarray]):
        return self._run(list(inputs))


# -- per layer -------------------------------------------------------------------------------

def _candidates(name: str) -> list[str]:
    """`name` and the float names it may stand for (quantized or transposed copies)."""
    names, changed = [name], True
    while changed:
        changed = False
        for suffix in _DERIVED_SUFFIXES:
            if names[-1].endswith(suffix) and len(names[-1]) > len(suffix):
                names.append(names[-1][:-len(suffix)])
                changed = True
    return names


class LayerMatcher:
    """The compiled graph's tensors (each op's outputs, evaluated by mcuc's reference
    interpreter, which every backend equals byte for byte) matched by name to the float
    model's inputs, outputs and intermediates."""

    def __init__(self, graph: Graph, reference_names: Sequence[str]):
        known = set(reference_names)
        self.graph = graph
        self.matched: dict[Tensor, tuple[str, str]] = {}  # tensor -> (reference name, op)
        self.unmatched: list[dict] = []
        for op in graph.ops:
            for t in op.outputs:
                name = next((n for n in _candidates(t.name) if n in known), None)
                if name is None:
                    self.unmatched.append({"name": t.name, "op": op.kind, "why": "no float tensor of this name"})
                elif np.issubdtype(np.dtype(t.dtype), np.integer) and _grid(graph, t) is None:
                    self.unmatched.append({"name": t.name, "op": op.kind, "why": f"{t.dtype} without one scale"})
                else:
                    self.matched[t] = (name, op.kind)
        self.stats: dict[Tensor, ErrorStats] = {t: ErrorStats() for t in self.matched}
        self._shape_mismatch: dict[Tensor, list[int]] = {}

    def record(self, inputs: list[np.ndarray], reference: dict[str, np.ndarray]) -> None:
        from mcuc.ir.interpreter import run

        values: dict[Tensor, np.ndarray] = {}

        def observe(op, outputs):
            for t, y in zip(op.outputs, outputs):
                if t in self.matched:
                    values[t] = y

        run(self.graph, inputs, observe)
        for t, y in values.items():
            f = reference.get(self.matched[t][0])
            if f is None or t in self._shape_mismatch:
                continue
            f = np.asarray(f)
            if f.shape != tuple(t.shape):
                if f.ndim == 4 and f.transpose(0, 2, 3, 1).shape == tuple(t.shape):
                    f = f.transpose(0, 2, 3, 1)  # an NCHW float tensor against mcuc's NHWC
                elif f.size == t.size and f.ndim != len(t.shape):
                    f = f.reshape(t.shape)
                else:
                    self._shape_mismatch[t] = list(f.shape)
                    continue
            self.stats[t].add(dequantize(y, _grid(self.graph, t)), f)

    def results(self) -> tuple[list[LayerMetrics], list[dict]]:
        layers = [LayerMetrics(t.name, self.matched[t][0], self.matched[t][1], list(t.shape), **s.summary())
                  for t, s in self.stats.items() if t not in self._shape_mismatch and s.count]
        unmatched = list(self.unmatched) + [
            {"name": t.name, "op": self.matched[t][1], "why": f"the float tensor has shape {shape}"}
            for t, shape in self._shape_mismatch.items()]
        return layers, unmatched


# -- the run ---------------------------------------------------------------------------------

def _flat_argmax(x: np.ndarray) -> int:
    return int(np.argmax(np.asarray(x).reshape(-1)))


def validate(model: Model, data, labels=None, reference: str | os.PathLike | None = None,
             backend: str = "llvm", per_layer: bool = False, options: CompileOptions | None = None,
             image_range: tuple[float, float] = (0.0, 1.0), progress: bool = False) -> ValidationResult:
    """Run `data`'s samples through `model` compiled for `backend`; see the module docstring."""
    from mcuc.backend_registry import make_runner
    from mcuc.verify import BackendVerdict, Expected

    options = options or CompileOptions()
    if per_layer and reference is None:
        raise MCUCError("--per-layer compares intermediate tensors with the float model: give --reference")
    if len(image_range) != 2 or not image_range[0] < image_range[1]:
        raise MCUCError(f"--image-range {image_range!r}: give LO,HI with LO < HI")
    model = reloaded(model, options.layout, options.onnx_numerics)
    compiled = prepare(model.graph, options) if options.io == "int8" else model.graph
    samples = read_samples(data, model, compiled, labels, tuple(map(float, image_range)))
    inputs = compiled_inputs(samples, compiled, model.format)
    ref = FloatReference(reference, model.layout, len(compiled.inputs), per_layer) if reference is not None else None
    if ref is not None and ref.n_outputs != len(compiled.outputs):
        raise MCUCError(f"--reference {ref.path.name} gives {ref.n_outputs} outputs; {cut_name(model.name)} gives "
                        f"{len(compiled.outputs)}")
    ref_inputs = float_inputs(samples, compiled) if ref is not None else None
    bar = _progress_bar(samples.count + 1, f"validate {model.name} on {backend}") if progress else None
    if bar is not None:  # building the backend (a C build, a firmware link) is one step
        bar.set_postfix_str(f"building {backend}", refresh=True)
    run = make_runner(backend, model, options)
    if bar is not None:
        bar.update(1)
        bar.set_postfix_str("", refresh=False)
    expected_of = Expected(model, compiled, options, run if backend == "reference" else None)
    verdict = BackendVerdict()
    matcher = LayerMatcher(compiled, ref.tensor_names) if ref is not None and per_layer else None
    out_stats = [ErrorStats() for _ in compiled.outputs]
    agree = [0] * len(compiled.outputs)
    correct = ref_correct = 0
    if samples.labels is not None:
        classes = int(np.prod(compiled.outputs[0].shape))
        if samples.labels.min() < 0 or samples.labels.max() >= classes:
            raise MCUCError(f"--labels range over [{samples.labels.min()}, {samples.labels.max()}]; output "
                            f"{quoted(compiled.outputs[0].name)} has {classes} classes")
    for i, x in enumerate(inputs):
        expected = expected_of(i, x)
        ours = expected if run is expected_of.runner else run(x)
        verdict.record(i, expected, ours)
        values = [dequantize(y, _grid(compiled, t)) for y, t in zip(ours, compiled.outputs)]
        if ref is not None:
            ref_outputs, ref_layers = ref(ref_inputs[i])
            for k, (q, f) in enumerate(zip(values, ref_outputs)):
                f = np.asarray(f, np.float32)
                if f.size != q.size:
                    raise MCUCError(f"--reference {ref.path.name}'s output {k} has shape {list(f.shape)}; "
                                    f"{cut_name(model.name)}'s is {list(q.shape)}")
                f = f.reshape(q.shape)
                out_stats[k].add(q, f)
                agree[k] += _flat_argmax(q) == _flat_argmax(f)
                if k == 0 and samples.labels is not None:
                    ref_correct += _flat_argmax(f) == samples.labels[i]
            if matcher is not None:
                matcher.record(x, ref_layers)
        if samples.labels is not None:
            correct += _flat_argmax(values[0]) == samples.labels[i]
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    n = samples.count
    outputs = []
    for k, t in enumerate(compiled.outputs):
        m = OutputMetrics(t.name, list(t.shape))
        if ref is not None:
            for key, value in out_stats[k].summary().items():
                setattr(m, key, value)
            m.top1_agreement = agree[k] / n
        if k == 0 and samples.labels is not None:
            m.accuracy = correct / n
            m.reference_accuracy = ref_correct / n if ref is not None else None
        outputs.append(m)
    check = expected_of.onnxruntime
    bit_exact = verdict.bit_exact and expected_of.ok
    layers, unmatched = matcher.results() if matcher is not None else (None, None)
    return ValidationResult(
        model=model.name, backend=backend, samples=n, data=samples.description,
        reference=str(reference) if reference is not None else None, labels=samples.labels is not None,
        bit_exact=bit_exact,
        oracle="onnxruntime (through mcuc's reference)" if model.format == "onnx" else "tflite-micro",
        max_abs_diff=verdict.max_abs_diff,
        mismatched_samples=sorted(set(verdict.mismatched_samples) | set(check.differing_samples
                                                                        if check and not check.ok else [])),
        onnxruntime=check.report() if check is not None else None,
        outputs=outputs, layers=layers, unmatched_layers=unmatched)


def _progress_bar(total: int, description: str):
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=description, unit="sample", file=sys.stderr, leave=False, dynamic_ncols=True)


def _num(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def _share(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def format_validation(result: ValidationResult) -> str:
    """The human table of a ValidationResult."""
    lines = [f"validate {result.model} on {result.backend}: {result.samples} samples from {result.data}"
             + (f", float reference {result.reference}" if result.reference else ", no float reference")]
    exact = ("bit-exact" if result.bit_exact else
             f"MISMATCH on samples {result.mismatched_samples} (max |diff| {result.max_abs_diff})")
    lines.append(f"  against {result.oracle}: {exact}")
    if result.reference is None and not result.labels:
        lines.append("  (--reference FLOAT_MODEL adds the errors against the float model, --labels the accuracy)")
        return "\n".join(lines)
    names = [cut_name(o.name, 28) for o in result.outputs]
    width = max(6, *map(len, names))
    header = (f"  {'output':<{width}} {'top-1 agree':>11} {'accuracy':>8} {'ref acc':>8} {'RMSE':>10} "
              f"{'cosine':>8} {'L2 rel':>8} {'max |err|':>10} {'mean |err|':>10}")
    lines += [header, "  " + "-" * (len(header) - 2)]
    for o, name in zip(result.outputs, names):
        lines.append(f"  {name:<{width}} {_share(o.top1_agreement):>11} {_share(o.accuracy):>8} "
                     f"{_share(o.reference_accuracy):>8} {_num(o.rmse):>10} {_num(o.cosine, 6):>8} "
                     f"{_num(o.l2_relative):>8} {_num(o.max_abs_error):>10} {_num(o.mean_abs_error):>10}")
    if result.layers is not None:
        lnames = [cut_name(layer.name, 40) for layer in result.layers]
        lw = max(6, *map(len, lnames)) if lnames else 6
        lines += ["", f"  per layer: {len(result.layers)} tensors matched by name to the float model"]
        header = f"  {'tensor':<{lw}} {'op':<18} {'RMSE':>10} {'cosine':>8} {'L2 rel':>8} {'max |err|':>10}"
        lines += [header, "  " + "-" * (len(header) - 2)]
        for layer, name in zip(result.layers, lnames):
            lines.append(f"  {name:<{lw}} {layer.op[:18]:<18} {_num(layer.rmse):>10} {_num(layer.cosine, 6):>8} "
                         f"{_num(layer.l2_relative):>8} {_num(layer.max_abs_error):>10}")
        if result.unmatched_layers:
            lines.append(f"  not matched ({len(result.unmatched_layers)}): " + "; ".join(
                f"{cut_name(u['name'], 40)} ({u['why']})" for u in result.unmatched_layers))
    lines.append("errors on dequantized values; exit status 1 when the backend is not bit-exact")
    return "\n".join(lines)
