"""The Python API: compile a model into something callable on numpy arrays."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from mcuc.backend_registry import build
from mcuc.ir.errors import MCUCError
from mcuc.model import Model, check_input_shapes, check_io_option, load_model, reloaded
from mcuc.pipeline import CompileOptions
from mcuc.report import program_report


# The core each Cortex-M backend runs on; every other backend runs on this host.
_CORE_BACKENDS = ("cortex-m0", "cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33")


class CompiledModel:
    """A compiled model: call it with one array per graph input; `.report` holds the
    figures of the program `backend` runs (arena bytes with that backend's kernel scratch,
    MACs, buffers; `report["backend"]`, and `report["target"]`: the core of a Cortex-M
    backend, "host" for reference, llvm and c-host); `.write(folder)` writes the C project
    for `options.target` as `mcuc compile` does and returns its report, equal to the
    CLI's. `.quantized_onnx` is the model `calibrate=` quantized (bytes), else None.
    A model that keeps state (SVDF, LSTM) continues one stream from call to call, as the
    generated C does; `.reset_state()` starts a new one."""

    def __init__(self, model: Model, backend: str, options: CompileOptions):
        self.quantized_onnx: bytes | None = None
        self.model = model
        self.backend = backend
        self.options = options
        built = build(backend, model, options)
        # The figures of the program this backend runs (its scratch included), not of a plan
        # made apart from it.
        self.report = {**program_report(built.program, backend if backend in _CORE_BACKENDS else "host",
                                        model.layout), "backend": backend}
        self._run = built.run
        self._reset_state = built.reset_state

    def reset_state(self) -> None:
        """Start a new stream: the next call starts from the reset state (the generated C's
        <name>_reset_state()). Nothing to do for a model without state."""
        self._reset_state()

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

    def write(self, directory: str | os.PathLike, force: bool = False, name: str | None = None) -> dict:
        """Write the C project for `options.target` into `directory` (new, empty, or one
        mcuc wrote; else `force`), as `mcuc compile -o directory` does: model.c, model.h,
        the runtime headers, Makefile, CMakeLists.txt, README.md, report.json,
        memory.svg. `name` (default: compile()'s) prefixes the C symbols. Returns the
        report."""
        from dataclasses import replace

        from mcuc.build import check_output_folder, compile_to_directory

        options = self.options if name is None else replace(self.options, name=name)
        check_output_folder(directory, force)
        return compile_to_directory(self.model, directory, options)

    def __repr__(self) -> str:
        return (f"CompiledModel({self.model.name}, backend={self.backend}, "
                f"arena={self.report['arena_bytes']} B, MACs={self.report['macs']})")


def _target_for(backend: str, target: str | None) -> str:
    """The core a compilation targets: a Cortex-M backend's own core (a different
    `target` is a contradiction), else `target` (default cortex-m4)."""
    if backend in _CORE_BACKENDS:
        if target is not None and target != backend:
            raise MCUCError(f"backend={backend!r} runs on {backend}; target={target!r} contradicts it "
                            f"(leave target out, or choose backend={target!r})")
        return backend
    return target or "cortex-m4"


def compile(model: str | os.PathLike | bytes | Model, backend: str = "llvm",
            target: str | None = None, io: str | None = None, layout: str | None = None,
            calibrate: str | os.PathLike | np.ndarray | None = None,
            calibrate_activations: str = "int8", optimize: str = "speed",
            onnx_numerics: str = "exact", max_tensor_bytes: int | None = None,
            patch: str | None = None, sram: int | None = None, float_abi: str | None = None,
            name: str | None = None, arena: str = "static", io_buffers: str = "arena",
            memory: str | None = None, weights_in_ram: str | None = None) -> CompiledModel:
    """Compile a .tflite/.onnx model (path, bytes or loaded Model) for `backend`.
    `target` is the core `.write()` generates C for (`--target`; default: a Cortex-M
    backend's own core, else cortex-m4). `.report` describes what `backend` runs: for the
    arena `mcuc compile --target T` reports, use backend=T (or `.write()`'s report).
    `patch` ("auto", "off", "RxC@OP,...") and `sram` (bytes) are `--patch` and `--sram`.
    `layout` ("nchw" | "nhwc", None: the model's own) is the layout of 4-D inputs and
    outputs: layout="nhwc" lets an ONNX model take and give NHWC arrays, with no transpose.
    `calibrate` (samples: an array, a .npy file or a folder of them) quantizes a float
    .onnx file first, as `mcuc compile --calibrate` does; the quantized model's bytes are
    then `compiled.quantized_onnx`, for onnxruntime or for saving. `optimize` ("speed" or
    "size") is `--optimize`: what the Cortex-M backends build. `onnx_numerics` ("exact" or
    "ort-x86-avx2[:threads=N]") is `--onnx-numerics`: which onnxruntime an ONNX model's
    compiled code reproduces (mcuc.frontend.onnx_numerics). `max_tensor_bytes` is
    `--max-tensor-bytes`: models with a larger tensor are refused (None: 64 MiB).
    `float_abi` ("soft", "softfp", "hard"; None: the core's default) is `--float-abi`, for
    the Cortex-M backends and `.write()`; `name` (`--name`: the C prefix) and `arena`
    ("static" or "caller": `--arena`) act in `.write()`. `io_buffers` ("arena" or
    "caller": `--io-buffers`) is where the graph inputs and outputs live: with "caller"
    they are buffers of their own outside the arena (every backend runs them so, and
    `.write()`'s C takes them in `<name>_invoke_io`). `memory` ("NAME:SIZE[:COST],...":
    `--memory`) spreads the arena over memory regions (mcuc.passes.regions), and
    `weights_in_ram` (`--weights-in-ram`) names the region that holds the weights too."""
    options = CompileOptions(target=_target_for(backend, target), io=io, patch=patch, sram=sram, layout=layout,
                             optimize=optimize, onnx_numerics=onnx_numerics, max_tensor_bytes=max_tensor_bytes,
                             float_abi=float_abi, name=name, arena=arena, io_buffers=io_buffers, memory=memory,
                             weights_in_ram=weights_in_ram)
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
    check_io_option(model, io)
    compiled = CompiledModel(model, backend, options)
    compiled.quantized_onnx = quantized
    return compiled


def compile_to_directory(model: str | os.PathLike | bytes | Model | Sequence[str | os.PathLike | bytes | Model],
                         directory: str | os.PathLike, target: str = "cortex-m4", force: bool = False,
                         verify: bool | int = False, exclusive: bool = False, library: str | None = None,
                         **options) -> dict:
    """`mcuc compile MODEL -o directory --target target ...`: write the C project and
    return its report (report.json's figures, as the CLI prints with --json). `options`
    are compile()'s keywords io, layout, optimize, onnx_numerics, max_tensor_bytes,
    patch, sram, float_abi, name, arena, io_buffers, memory, weights_in_ram.

    A list of models is `mcuc compile A B ... -o directory`: one folder and one library
    with every model (mcuc.bundle), `name` one name per model (a list, or "a,b"; default:
    the file names), `library` the library's name (default "models"), `exclusive=True`
    the declaration that the models never run at the same time, so that they share one
    arena (the largest of their plans)."""
    from mcuc.build import check_output_folder, compile_to_directory as write

    if isinstance(model, (list, tuple)):
        from mcuc.bundle import DEFAULT_LIBRARY, compile_bundle

        names = options.pop("name", None)
        opts = CompileOptions(target=target, **options)
        check_output_folder(directory, force)
        samples = (10 if verify is True else int(verify)) if verify else None
        return compile_bundle(model, directory, opts, names=names, exclusive=exclusive,
                              library=DEFAULT_LIBRARY if library is None else library, verify_samples=samples)
    if exclusive or library is not None:
        raise MCUCError(f"{'exclusive=' if exclusive else 'library='} is for a folder of several models "
                        "(a list of models); with one model, name= names it")
    opts = CompileOptions(target=target, **options)
    if not isinstance(model, Model):
        model = load_model(model, layout=opts.layout, onnx_numerics=opts.onnx_numerics,
                           max_tensor_bytes=opts.max_tensor_bytes)
    check_io_option(model, opts.io)
    check_output_folder(directory, force)
    # verify=True (10 samples) or N: `mcuc compile --verify [N]`, the result in report["verification"]
    samples = (10 if verify is True else int(verify)) if verify else None
    return write(model, directory, opts, verify_samples=samples)


def verify(model: str | os.PathLike | bytes | Model, backends: Sequence[str] | None = None,
           samples: int = 10, seed: int = 0, io: str | None = None, layout: str | None = None,
           onnx_numerics: str = "exact", max_tensor_bytes: int | None = None, target: str = "cortex-m4",
           optimize: str = "speed", patch: str | None = None, sram: int | None = None,
           io_buffers: str = "arena", memory: str | None = None, weights_in_ram: str | None = None) -> dict:
    """The `mcuc verify` report as a dict. `backends` None (the default) checks what `mcuc
    verify` without --backends does: reference, llvm, c-host and `target`'s emulated core
    when their toolchains are present (the report's `backends_checked` and
    `backends_skipped` say which ran and why one did not). `memory` and `weights_in_ram`
    are `--memory` and `--weights-in-ram`."""
    from mcuc.verify import verify_model

    return verify_model(model, backends, samples, seed, io, layout, onnx_numerics, max_tensor_bytes, target,
                        optimize, patch, sram, io_buffers, memory, weights_in_ram)


def validate(model: str | os.PathLike | bytes | Model, data, labels=None,
             reference: str | os.PathLike | None = None, backend: str = "llvm", per_layer: bool = False,
             image_range: tuple[float, float] = (0.0, 1.0), progress: bool = False, target: str | None = None,
             io: str | None = None, layout: str | None = None, optimize: str = "speed",
             onnx_numerics: str = "exact", max_tensor_bytes: int | None = None, patch: str | None = None,
             sram: int | None = None, io_buffers: str = "arena"):
    """`mcuc validate`: the user's samples through `model` compiled for `backend`, returning
    a `mcuc.validate_data.ValidationResult` (`.to_dict()` is the CLI's --json).
    `data`: a .npy file or array (one input), an .npz file or a dict {input name: array},
    or a folder of images (pixels mapped to `image_range`); floats are quantized with the
    input's scale and zero point. `labels`: class indices (.npy or array; an image folder's
    class subfolders give them). `reference`: the float .tflite/.onnx model the errors are
    measured against (per output; per intermediate tensor with `per_layer`). The result
    also says whether the backend equals the oracle byte for byte on these samples."""
    from mcuc.validate_data import validate as run_validation

    options = CompileOptions(target=_target_for(backend, target), io=io, patch=patch, sram=sram, layout=layout, optimize=optimize,
                             onnx_numerics=onnx_numerics, max_tensor_bytes=max_tensor_bytes, io_buffers=io_buffers)
    model = (reloaded(model, layout, onnx_numerics) if isinstance(model, Model)
             else load_model(model, layout=layout, onnx_numerics=onnx_numerics, max_tensor_bytes=max_tensor_bytes))
    check_io_option(model, io)
    return run_validation(model, data, labels, reference, backend, per_layer, options, image_range, progress)


def bench(models: str | os.PathLike | Sequence[str | os.PathLike], target: str = "cortex-m4",
          progress: bool = False, **options) -> list[dict]:
    """`mcuc bench MODEL... --target target`: per model the figures `mcuc bench --json`
    prints (instructions, estimated cycles, SRAM, flash, bit_exact, per step in `steps`).
    `options` are compile()'s keywords io, layout, optimize, onnx_numerics,
    max_tensor_bytes, patch, sram, io_buffers, memory, weights_in_ram."""
    from mcuc.bench import bench_models

    paths = [str(models)] if isinstance(models, (str, os.PathLike)) else [str(m) for m in models]
    return bench_models(paths, CompileOptions(target=target, **options), progress=progress)


def plan(model: str | os.PathLike, target: str = "cortex-m4", svg: str | os.PathLike | None = None,
         progress: bool = False, compare: str | os.PathLike | None = None, **options) -> dict:
    """`mcuc plan MODEL --json`: the patch schedules' memory / MAC trade-off (the Pareto
    front, the layer-by-layer point, the schedule --patch auto picks); `svg` writes the plot
    there; `compare`: a CSV of points to compare with (as --compare). `options`: io,
    layout, onnx_numerics, max_tensor_bytes, io_buffers."""
    from mcuc.plan_cmd import load_points, plan_model

    points = load_points(Path(compare)) if compare is not None else None
    return plan_model(str(model), CompileOptions(target=target, **options), Path(svg) if svg is not None else None,
                      progress=progress, compare=points)


__all__ = ["compile", "compile_to_directory", "verify", "validate", "bench", "plan", "CompiledModel", "MCUCError"]
