"""The Python API: compile a model into something callable on numpy arrays."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from mcuc.backend_registry import build
from mcuc.ir.errors import MCUCError
from mcuc.model import Model, check_input_shapes, load_model, reloaded
from mcuc.pipeline import CompileOptions
from mcuc.report import program_report


class CompiledModel:
    """A compiled model: call it with one array per graph input; `.report` holds the
    compilation's figures (arena bytes, MACs, buffers); `.quantized_onnx` the model
    `calibrate=` quantized (bytes), else None."""

    def __init__(self, model: Model, backend: str, options: CompileOptions):
        self.quantized_onnx: bytes | None = None
        self.model = model
        self.backend = backend
        self.options = options
        built = build(backend, model, options)
        # The figures of the program this backend runs (its scratch included), not of a plan
        # made apart from it.
        self.report = program_report(built.program, options.target, model.layout)
        self._run = built.run

    @property
    def inputs(self):
        return self.model.graph.inputs

    @property
    def outputs(self):
        return self.model.graph.outputs

    def __call__(self, *inputs: np.ndarray) -> np.ndarray | list[np.ndarray]:
        if len(inputs) == 1 and isinstance(inputs[0], (list, tuple)):
            inputs = tuple(inputs[0])
        check_input_shapes(self.model, inputs)  # e.g. an NCHW array for a --layout nhwc model
        outputs = self._run(list(inputs))
        return outputs[0] if len(outputs) == 1 else outputs

    def __repr__(self) -> str:
        return (f"CompiledModel({self.model.name}, backend={self.backend}, "
                f"arena={self.report['arena_bytes']} B, MACs={self.report['macs']})")


def compile(model: str | os.PathLike | bytes | Model, backend: str = "llvm",
            target: str = "cortex-m4", io: str | None = None, layout: str | None = None,
            calibrate: str | os.PathLike | np.ndarray | None = None,
            calibrate_activations: str = "int8", optimize: str = "speed",
            onnx_numerics: str = "exact", max_tensor_bytes: int | None = None) -> CompiledModel:
    """Compile a .tflite/.onnx model (path, bytes or loaded Model) for `backend`.
    `layout` ("nchw" | "nhwc", None: the model's own) is the layout of 4-D inputs and
    outputs: layout="nhwc" lets an ONNX model take and give NHWC arrays, with no transpose.
    `calibrate` (samples: an array, a .npy file or a folder of them) quantizes a float
    .onnx file first, as `mcuc compile --calibrate` does; the quantized model's bytes are
    then `compiled.quantized_onnx`, for onnxruntime or for saving. `optimize` ("speed" or
    "size") is `--optimize`: what the Cortex-M backends build. `onnx_numerics` ("exact" or
    "ort-x86-avx2[:threads=N]") is `--onnx-numerics`: which onnxruntime an ONNX model's
    compiled code reproduces (mcuc.frontend.onnx_numerics). `max_tensor_bytes` is
    `--max-tensor-bytes`: models with a larger tensor are refused (None: 64 MiB)."""
    options = CompileOptions(target=target, io=io, layout=layout, optimize=optimize, onnx_numerics=onnx_numerics,
                             max_tensor_bytes=max_tensor_bytes)
    quantized = None
    if calibrate is not None:
        if not isinstance(model, (str, os.PathLike)):
            raise MCUCError("calibrate= quantizes a float .onnx file: pass the model's path")
        from mcuc.calibrate import quantize_onnx

        with tempfile.TemporaryDirectory() as tmp:
            quantized = quantize_onnx(model, calibrate, Path(tmp) / "model.quant.onnx",
                                      calibrate_activations).read_bytes()
        model = load_model(quantized, format="onnx", layout=layout, onnx_numerics=onnx_numerics,
                           max_tensor_bytes=max_tensor_bytes)
    elif isinstance(model, Model):
        model = reloaded(model, layout, onnx_numerics)
    else:
        model = load_model(model, layout=layout, onnx_numerics=onnx_numerics, max_tensor_bytes=max_tensor_bytes)
    compiled = CompiledModel(model, backend, options)
    compiled.quantized_onnx = quantized
    return compiled


def verify(model: str | os.PathLike | bytes | Model, backends: Sequence[str] | None = None,
           samples: int = 10, seed: int = 0, io: str | None = None, layout: str | None = None,
           onnx_numerics: str = "exact", max_tensor_bytes: int | None = None, target: str = "cortex-m4",
           optimize: str = "speed", patch: str | None = None, sram: int | None = None) -> dict:
    """The `mcuc verify` report as a dict. `backends` None (the default) checks what `mcuc
    verify` without --backends does: reference, llvm, c-host and `target`'s emulated core
    when their toolchains are present (the report's `backends_checked` and
    `backends_skipped` say which ran and why one did not)."""
    from mcuc.verify import verify_model

    return verify_model(model, backends, samples, seed, io, layout, onnx_numerics, max_tensor_bytes, target,
                        optimize, patch, sram)


__all__ = ["compile", "verify", "CompiledModel", "MCUCError"]
