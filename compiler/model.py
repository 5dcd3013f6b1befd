"""Loading a model file: the graph for the compiler plus what the oracle needs."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mcuc.ir.errors import MCUCError
from mcuc.ir.graph import Graph


@dataclass(frozen=True)
class Model:
    """A model as read from a file: its graph, its format and its original bytes (the
    oracle runs the original file, never our reading of it)."""

    graph: Graph
    format: str  # "tflite" | "onnx"
    source: bytes
    path: Path | None = None

    @property
    def name(self) -> str:
        return self.path.stem if self.path is not None else self.graph.name


def load_model(source: str | os.PathLike | bytes, format: str | None = None) -> Model:
    """Read a .tflite or .onnx model (by extension, or `format` for bytes)."""
    path = None
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise MCUCError(f"model file {str(path)!r} does not exist")
        data = path.read_bytes()
        format = format or path.suffix.lower().lstrip(".")
    if format is None:
        format = "onnx" if data[4:8] != b"TFL3" and not data[:8].endswith(b"TFL3") else "tflite"
    if format == "tflite":
        from mcuc.frontend.tflite import load_tflite

        graph = load_tflite(data)
    elif format == "onnx":
        try:
            from mcuc.frontend.onnx import load_onnx
        except ImportError as e:
            raise MCUCError("this mcuc has no ONNX frontend yet") from e
        graph = load_onnx(data)
    else:
        raise MCUCError(f"unknown model format {format!r}: mcuc reads .tflite and .onnx files")
    if path is not None:
        graph = graph.with_(name=_c_identifier(path.stem))
    return Model(graph, format, data, path)


def _c_identifier(name: str) -> str:
    """A model name usable as a C prefix."""
    out = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    return out if out and not out[0].isdigit() else f"m_{out}"
