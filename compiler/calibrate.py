"""`mcuc compile model.onnx --calibrate samples.npy`: quantize a float ONNX model with
onnxruntime.quantization (static, QDQ, per-channel int8 weights, int8 activations by
default) on the user's calibration samples, then compile the quantized model.

The float model first goes through onnxruntime's quantization pre-processing (its basic
graph optimizations: constant folding, Identity removal, Conv+BatchNormalization fusion), as
onnxruntime recommends: torch.onnx's legacy exporter writes biases behind Identity nodes that
quantize_static would otherwise leave in float. The weights keep quantize_static's full
8-bit range: with the default --onnx-numerics exact their sums are exact; with ort-x86-avx2
mcuc reproduces the saturating int16 pairs of onnxruntime's u8 x s8 kernels on x86-64
without VNNI (ir/ops/ort_u8s8.py) and the int8 QDQ groups it leaves in float there
(ir/ops/ort_float.py). uint8 activations
(`activations="uint8"`) are the other choice onnxruntime.quantization offers.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from mcuc.ir.errors import MCUCError


def load_samples(source: str | os.PathLike | np.ndarray, input_shape: tuple[int, ...]) -> list[np.ndarray]:
    """Calibration samples from an array (the Python API), a .npy file or a folder of
    .npy files. Each array is one sample of `input_shape`, or a stack of them ([count,
    *input_shape], or [count, *input_shape[1:]] for a batch-1 model)."""
    if isinstance(source, np.ndarray):
        return _split(source, input_shape, "the calibration array")
    path = Path(source)
    if path.is_dir():
        files = sorted(path.glob("*.npy"))
        if not files:
            raise MCUCError(f"calibration folder {str(path)!r} has no .npy files")
    elif path.is_file():
        files = [path]
    else:
        raise MCUCError(f"calibration data {str(path)!r} does not exist")
    samples: list[np.ndarray] = []
    for f in files:
        try:
            array = np.load(f, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise MCUCError(f"cannot read calibration file {str(f)!r}: {e}") from None
        samples += _split(array, input_shape, f"calibration file {str(f)!r}")
    return samples


def _split(array: np.ndarray, input_shape: tuple[int, ...], what: str) -> list[np.ndarray]:
    """One sample or a stack of samples of `input_shape`, as float32 samples."""
    array = np.asarray(array, np.float32)
    if array.shape == tuple(input_shape):
        return [array]
    if array.shape[1:] == tuple(input_shape):
        return list(array)
    if input_shape[0] == 1 and array.shape[1:] == tuple(input_shape[1:]):
        return [a[None] for a in array]
    raise MCUCError(f"{what} has shape {list(array.shape)}; the model's input is {list(input_shape)} "
                    "(give one sample or a stack of samples)")


ACTIVATION_TYPES = ("int8", "uint8")


def quantize_onnx(model_path: str | os.PathLike, samples_source: str | os.PathLike | np.ndarray,
                  output_path: str | os.PathLike, activations: str = "int8") -> Path:
    """Quantize the float model at `model_path` and write it to `output_path`."""
    if activations not in ACTIVATION_TYPES:
        raise MCUCError(f"calibration activations {activations!r}: choose int8 or uint8")
    try:
        import onnx
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as e:
        raise MCUCError("--calibrate needs onnxruntime: pip install onnxruntime") from e
    model_path = Path(model_path)
    if model_path.suffix.lower() != ".onnx":
        raise MCUCError(f"--calibrate quantizes float ONNX models; {model_path.name} is not .onnx")
    try:
        model = onnx.load(str(model_path))  # tensors saved as external data load from beside the file
    except Exception as e:
        raise MCUCError(f"cannot read {str(model_path)!r} as ONNX: {e}") from None
    inputs = [i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    if len(inputs) != 1:
        raise MCUCError(f"--calibrate supports models with one input; {model_path.name} has {len(inputs)}")
    dims = inputs[0].type.tensor_type.shape.dim
    if any(not d.HasField("dim_value") or d.dim_value <= 0 for d in dims):
        raise MCUCError(f"input {inputs[0].name!r} has a dynamic shape; export the model with fixed dimensions")
    shape = tuple(int(d.dim_value) for d in dims)
    samples = load_samples(samples_source, shape)
    name = inputs[0].name

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(samples)

        def get_next(self):
            sample = next(self._it, None)
            return None if sample is None else {name: sample}

    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        # quantize_static writes beside its input while it works: give it a private copy.
        whole, src = Path(tmp) / "whole.onnx", Path(tmp) / "float.onnx"
        # One self-contained file (external data folded in): handed a ModelProto,
        # quant_pre_process moves every initializer out of the graph, and onnxruntime's
        # shape inference then cannot read constant inputs such as ReduceMean's axes.
        onnx.save_model(model, str(whole))
        try:
            # Symbolic shape inference (sympy) is for dynamic shapes; mcuc's are static.
            quant_pre_process(str(whole), str(src), skip_symbolic_shape=True)
        except Exception as e:  # onnxruntime reports its own error types
            raise MCUCError(f"onnxruntime's quantization pre-processing failed on {model_path.name}: {e}") from None
        try:
            quantize_static(str(src), str(output_path), Reader(), quant_format=QuantFormat.QDQ,
                            activation_type=QuantType.QInt8 if activations == "int8" else QuantType.QUInt8,
                            weight_type=QuantType.QInt8, per_channel=True)
        except Exception as e:  # onnxruntime reports its own error types
            raise MCUCError(f"onnxruntime.quantization failed on {model_path.name}: {e}") from None
    return output_path


def quantized_path_for(model_path: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Where `mcuc compile --calibrate` writes the quantized model: inside the output
    folder, with the project, named after the model (out/<model>.quant.onnx)."""
    return Path(out_dir) / f"{Path(model_path).stem}.quant.onnx"
