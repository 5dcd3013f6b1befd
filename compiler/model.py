"""Loading a model file: the graph for the compiler plus what the oracle needs."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mcuc.frontend.onnx_numerics import OnnxNumerics, parse_onnx_numerics
from mcuc.ir.errors import MCUCError
from mcuc.ir.graph import Graph
from mcuc.ir.tensor import cut_name, quoted
from mcuc.pipeline import LAYOUTS

# The layout of 4-D graph inputs and outputs each format has of its own.
NATIVE_LAYOUT = {"tflite": "nhwc", "onnx": "nchw"}
_NCHW_TO_NHWC = (0, 2, 3, 1)
_NHWC_TO_NCHW = (0, 3, 1, 2)


@dataclass(frozen=True)
class Model:
    """A model as read from a file: its graph, its format and its original bytes (the
    oracle runs the original file, never our reading of it), and the layout of the
    graph's 4-D inputs and outputs ("nchw" or "nhwc"), which the oracle must follow."""

    graph: Graph
    format: str  # "tflite" | "onnx"
    source: bytes
    path: Path | None = None
    layout: str | None = None  # None: the format's own (NATIVE_LAYOUT)
    # What an ONNX model computes (mcuc.frontend.onnx_numerics.OnnxNumerics); None for .tflite.
    onnx_numerics: OnnxNumerics | None = None
    # The size limit the model was read under (`--max-tensor-bytes`; None: the default of
    # mcuc.frontend.validate), kept so that reading it again applies the same one.
    max_tensor_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.layout is None:
            object.__setattr__(self, "layout", NATIVE_LAYOUT.get(self.format, "nhwc"))

    @property
    def name(self) -> str:
        return self.path.stem if self.path is not None else self.graph.name


def load_model(source: str | os.PathLike | bytes, format: str | None = None, layout: str | None = None,
               onnx_numerics=None, max_tensor_bytes: int | None = None) -> Model:
    """Read a .tflite or .onnx model (by extension, or `format` for bytes). `layout` is
    the layout of 4-D graph inputs and outputs at the API (`--layout`): None keeps the
    model's own (NCHW for ONNX, NHWC for TFLite). `onnx_numerics` (`--onnx-numerics`: a
    name or an OnnxNumerics; None: exact) is the onnxruntime behaviour an ONNX model's
    compiled code reproduces; it means nothing for .tflite. `max_tensor_bytes`
    (`--max-tensor-bytes`; None: 64 MiB) bounds every tensor of the model, checked on its
    shapes before anything of that size exists (mcuc.frontend.validate)."""
    if layout is not None and layout not in LAYOUTS:
        raise MCUCError(f"unknown --layout {layout!r}; choose nchw or nhwc")
    from mcuc.frontend.validate import max_tensor_bytes_or_default

    max_tensor_bytes_or_default(max_tensor_bytes)  # a bad limit is an error before any reading
    path = None
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    else:
        path = Path(source)
        if path.is_dir():
            raise MCUCError(f"model {quoted(str(path))} is a directory, not a .tflite or .onnx file")
        if not path.exists():
            raise MCUCError(f"model file {quoted(str(path))} does not exist")
        try:
            data = path.read_bytes()
        except OSError as e:
            raise MCUCError(f"cannot read model file {quoted(str(path))}: {e.strerror or e}") from None
        format = format or path.suffix.lower().lstrip(".")
    if format is None:
        format = "onnx" if data[4:8] != b"TFL3" and not data[:8].endswith(b"TFL3") else "tflite"
    if format == "tflite":
        from mcuc.frontend.tflite import load_tflite

        if layout == "nchw":
            raise MCUCError("--layout nchw: a .tflite model is NHWC and mcuc keeps it so (no transposes are "
                            "added); give NHWC inputs, or leave --layout out (nhwc is the only layout for .tflite)")
        graph = load_tflite(data, max_tensor_bytes)
    elif format == "onnx":
        try:
            from mcuc.frontend.onnx import load_onnx
        except ImportError as e:
            raise MCUCError("this mcuc has no ONNX frontend yet") from e
        onnx_numerics = parse_onnx_numerics(onnx_numerics)
        graph = load_onnx(data, layout or NATIVE_LAYOUT["onnx"], onnx_numerics, max_tensor_bytes)
    else:
        raise MCUCError(f"unknown model format {quoted(format)}: mcuc reads .tflite and .onnx files")
    # The name prefixes C identifiers: from the file name, else the model's own, either way
    # reduced to a C identifier (a name inside a model file is untrusted text).
    graph = graph.with_(name=_c_identifier(path.stem if path is not None else graph.name))
    return Model(graph, format, data, path, layout or NATIVE_LAYOUT[format],
                 onnx_numerics if format == "onnx" else None, max_tensor_bytes)


def load_with_options(source: str | os.PathLike | bytes, options) -> Model:
    """`load_model` with the compile options that act when a model is read (a
    CompileOptions: --layout, --onnx-numerics and --max-tensor-bytes); `--io float` on a
    model without float edges is refused (check_io_option)."""
    model = load_model(source, layout=options.layout, onnx_numerics=options.onnx_numerics,
                       max_tensor_bytes=getattr(options, "max_tensor_bytes", None))
    check_io_option(model, getattr(options, "io", None))
    return model


def check_io_option(model: Model, io: str | None) -> None:
    """`--io float` keeps a model's float inputs and outputs; mcuc adds none. On a model
    whose inputs and outputs are all integers it would change nothing: say so instead of
    ignoring it."""
    if io != "float":
        return
    edges = [*model.graph.inputs, *model.graph.outputs]
    if not any(t.dtype.startswith("float") for t in edges):
        types = sorted({t.dtype for t in edges})
        raise MCUCError(f"--io float: {model.name} takes and gives {'/'.join(types)}, with no float inputs or "
                        "outputs to keep (mcuc does not add QUANTIZE/DEQUANTIZE edges); leave --io out "
                        "and pass integer arrays")


def reloaded(model: Model, layout: str | None, onnx_numerics=None) -> Model:
    """`model` with its 4-D graph inputs and outputs in `layout` and, for ONNX, computing
    `onnx_numerics` (None: as it is), read again from its source when it was loaded
    otherwise."""
    same_layout = layout is None or layout == model.layout
    same_numerics = (model.format != "onnx" or onnx_numerics is None
                     or parse_onnx_numerics(onnx_numerics) == model.onnx_numerics)
    if same_layout and same_numerics:
        return model
    return load_model(model.path if model.path is not None else model.source, model.format,
                      layout or model.layout, onnx_numerics if onnx_numerics is not None else model.onnx_numerics,
                      model.max_tensor_bytes)


def _c_identifier(name: str) -> str:
    """A model name usable as a C prefix."""
    out = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    return out if out and not out[0].isdigit() else f"m_{out}"


def check_input_shapes(model: Model, inputs) -> None:
    """MCUCError unless every input has exactly the shape of its graph input: another
    rank (a 0-d or flat array), or the same tensor in the other layout, has the right
    element count, so the runners would read it in some order without a word."""
    tensors = model.graph.inputs
    name = cut_name(model.name)
    if len(inputs) != len(tensors):
        raise MCUCError(f"{name} takes {len(tensors)} inputs, got {len(inputs)}")
    for t, x in zip(tensors, inputs):
        shape = tuple(np.shape(x))
        if shape == tuple(t.shape):
            continue
        if len(shape) != len(t.shape):
            raise MCUCError(f"input {quoted(t.name)} of {name}: expected a {len(t.shape)}-D array of shape "
                            f"{list(t.shape)}, got {len(shape)}-D shape {list(shape)}; reshape it to {list(t.shape)}")
        advice = "give an array of that shape"
        for looks, perm, other in (("NCHW", _NCHW_TO_NHWC, "nchw"), ("NHWC", _NHWC_TO_NCHW, "nhwc")):
            if len(shape) == 4 and tuple(shape[i] for i in perm) == tuple(t.shape):
                advice = f"it looks {looks}: transpose it with x.transpose{perm}"
                if model.format == "onnx":
                    advice += f", or compile the model with --layout {other} (layout='{other}')"
        layout = f", layout {model.layout.upper()}" if len(t.shape) == 4 else ""
        raise MCUCError(f"input {quoted(t.name)} of {name}: expected shape {list(t.shape)}{layout}, "
                        f"got {list(shape)}; {advice}")
