"""`mcuc verify`: the oracle against every requested backend, byte for byte."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mcuc.backend_registry import make_runner
from mcuc.ir.errors import MCUCError
from mcuc.ir.graph import Graph
from mcuc.model import Model, in_layout
from mcuc.oracle import TFLiteOracle
from mcuc.pipeline import CompileOptions, prepare
from mcuc.samples import random_inputs


@dataclass
class BackendVerdict:
    bit_exact: bool = True
    max_abs_diff: float = 0
    mismatched_samples: list[int] = field(default_factory=list)

    def record(self, sample: int, expected: list[np.ndarray], actual: list[np.ndarray]) -> None:
        diff = max_abs_diff(expected, actual)
        self.max_abs_diff = max(self.max_abs_diff, diff, key=float)
        if not same_bytes(expected, actual):
            self.bit_exact = False
            self.mismatched_samples.append(sample)


def same_bytes(expected: list[np.ndarray], actual: list[np.ndarray]) -> bool:
    return len(expected) == len(actual) and all(
        e.dtype == a.dtype and e.size == a.size and e.tobytes() == a.tobytes()
        for e, a in zip(expected, actual))


def max_abs_diff(expected: list[np.ndarray], actual: list[np.ndarray]) -> float:
    if len(expected) != len(actual):
        return float("inf")
    worst = 0.0
    for e, a in zip(expected, actual):
        if e.size != a.size:
            return float("inf")
        d = np.abs(e.astype(np.float64).ravel() - a.astype(np.float64).ravel())
        worst = max(worst, float(np.nanmax(d)) if d.size else 0.0)
    return int(worst) if worst.is_integer() else worst


def make_oracle(model: Model):
    if model.format == "tflite":
        return TFLiteOracle(model.source)
    if model.format == "onnx":
        from mcuc.oracle_onnx import OnnxOracle

        # onnxruntime runs the NCHW model; the oracle moves 4-D tensors to the model's layout.
        return OnnxOracle(model.source, model.layout)
    raise MCUCError(f"no oracle for {model.format} models")


class EdgeOracle:
    """The oracle seen through the compiled graph's edges.

    With `--io int8` the compiled graph takes and returns int8 where the model has float
    QUANTIZE/DEQUANTIZE edges. The oracle still runs the original model: int8 inputs are
    dequantized for it (its QUANTIZE recovers them exactly) and its float outputs are
    quantized back (exact too: they are DEQUANTIZE results of int8 values). Both are
    elementwise, so they hold in either layout (`--layout`: make_oracle's oracle gives
    and takes 4-D tensors in the model's layout)."""

    def __init__(self, model: Model, compiled: Graph):
        self.oracle = make_oracle(model)
        self.original = model.graph
        self.compiled = compiled

    def __call__(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        feed = [_convert(x, t_model, t_ours) for x, t_model, t_ours
                in zip(inputs, self.original.inputs, self.compiled.inputs)]
        outputs = self.oracle(feed)
        return [_convert(y, t_ours, t_model) for y, t_model, t_ours
                in zip(outputs, self.original.outputs, self.compiled.outputs)]


def _convert(x: np.ndarray, to, frm) -> np.ndarray:
    """`x`, a value of tensor `frm`, as tensor `to` holds it (float <-> int8 edges)."""
    if to.dtype == frm.dtype:
        return x
    if to.dtype == "float32":  # dequantize int8 -> float, as DEQUANTIZE computes it
        q = frm.quant
        return (np.float32(q.scalar_scale) * (x.astype(np.int32) - q.scalar_zero_point).astype(np.float32)
                ).astype(np.float32)
    q = to.quant  # quantize float -> int8: exact for values that came from int8
    info = np.iinfo(np.dtype(to.dtype))
    y = np.round(x.astype(np.float64) / np.float64(q.scalar_scale)) + q.scalar_zero_point
    return np.clip(y, info.min, info.max).astype(to.dtype)


def verify(model: Model, backends: list[str], samples: int = 10, seed: int = 0,
           options: CompileOptions | None = None) -> dict:
    """Run the oracle and each backend on `samples` random inputs; report per backend."""
    if samples < 1:
        raise MCUCError("--samples must be at least 1")
    options = options or CompileOptions()
    model = in_layout(model, options.layout)
    compiled = prepare(model.graph, options) if options.io == "int8" else model.graph
    oracle = EdgeOracle(model, compiled)
    runners = {name: make_runner(name, model, options) for name in backends}
    verdicts = {name: BackendVerdict() for name in backends}
    rng = np.random.default_rng(seed)
    for sample in range(samples):
        inputs = random_inputs(compiled, rng)
        expected = oracle(inputs)
        for name, run in runners.items():
            verdicts[name].record(sample, expected, run(inputs))
    return {
        "model": model.name,
        "samples": samples,
        "seed": seed,
        "backends": {
            name: {"bit_exact": v.bit_exact, "max_abs_diff": v.max_abs_diff,
                   **({"mismatched_samples": v.mismatched_samples} if v.mismatched_samples else {})}
            for name, v in verdicts.items()},
    }


def format_verdict(report: dict) -> str:
    lines = [f"verify {report['model']}: {report['samples']} random samples (seed {report['seed']})"]
    for name, v in report["backends"].items():
        status = "bit-exact" if v["bit_exact"] else f"MISMATCH on samples {v['mismatched_samples']}"
        lines.append(f"  {name:<12} {status:<30} max |diff| {v['max_abs_diff']}")
    return "\n".join(lines)
