"""`mcuc verify`: every requested backend against the oracle, byte for byte (for ONNX
models: against mcuc's reference, itself checked against onnxruntime)."""
from __future__ import annotations

import shutil
import sys
import types
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from mcuc.backend_registry import make_runner
from mcuc.ir.errors import MCUCError
from mcuc.ir.graph import Graph
from mcuc.model import Model, reloaded
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
        # A worker process of its own (compiler/oracle.py): no other model ran in it.
        return TFLiteOracle(model.source, fresh_process=True)
    if model.format == "onnx":
        from mcuc.oracle_onnx import OnnxOracle

        # onnxruntime runs the NCHW model; the oracle moves 4-D tensors to the model's layout,
        # and runs with the session options of the model's numerics.
        return OnnxOracle(model.source, model.layout, model.onnx_numerics)
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


class OnnxruntimeCheck:
    """mcuc's reference against onnxruntime, for an ONNX model.

    The reference computes the chosen OnnxNumerics; onnxruntime runs with the session
    options that select the same numerics. Its bytes may still differ where this host's
    MLAS kernels differ from the numerics' (oracle_onnx.host_facts). The rule: a difference
    is explained only when mcuc's reference compiled with this host's facts equals
    onnxruntime byte for byte on every sample; anything else is a mismatch."""

    def __init__(self, model: Model, compiled: Graph, options: CompileOptions):
        from mcuc.oracle_onnx import describe_session, host_numerics

        self.model, self.options = model, options
        self.oracle = EdgeOracle(model, compiled)
        self.numerics = model.onnx_numerics
        self.host = host_numerics(self.numerics)
        self.session = describe_session(self.numerics)
        self.differing_bytes = 0
        self.max_abs_diff: float = 0
        self.differing_samples: list[int] = []
        self.host_agrees = True
        self._host_reference = None

    def record(self, sample: int, inputs: list[np.ndarray], ours: list[np.ndarray]) -> None:
        theirs = self.oracle(inputs)
        if same_bytes(theirs, ours):
            return
        self.differing_samples.append(sample)
        self.max_abs_diff = max(self.max_abs_diff, max_abs_diff(theirs, ours), key=float)
        self.differing_bytes += sum(int(np.count_nonzero(t.view(np.uint8) != o.view(np.uint8)))
                                    if t.shape == o.shape and t.dtype == o.dtype else max(t.nbytes, o.nbytes)
                                    for t, o in zip(theirs, ours))
        as_host = self._run_as_host(inputs)
        self.host_agrees = self.host_agrees and as_host is not None and same_bytes(theirs, as_host)

    def _run_as_host(self, inputs: list[np.ndarray]) -> list[np.ndarray] | None:
        if self.host == self.numerics:
            return None
        if self._host_reference is None:
            try:
                self._host_reference = make_runner("reference", reloaded(self.model, None, self.host), self.options)
            except MCUCError:  # e.g. a float pooling group this host's NCHWc block refuses
                self._host_reference = lambda inputs: None
        return self._host_reference(inputs)

    @property
    def explanation(self) -> str | None:
        from mcuc.oracle_onnx import explain_host_difference

        if not self.differing_samples or not self.host_agrees or self.host == self.numerics:
            return None
        return (f"{explain_host_difference(self.numerics, self.host)}; mcuc's reference with this host's "
                f"kernels equals onnxruntime byte for byte on every sample")

    @property
    def ok(self) -> bool:
        return not self.differing_samples or self.explanation is not None

    def report(self) -> dict:
        return {"runtime": self.session, "numerics": self.numerics.spec, "ok": self.ok,
                "equal": not self.differing_samples, "differing_bytes": self.differing_bytes,
                "max_abs_diff": self.max_abs_diff,
                **({"differing_samples": self.differing_samples} if self.differing_samples else {}),
                **({"explained_by": self.explanation} if self.explanation else {})}


class Expected:
    """What every backend must output for a model, sample by sample: tflite-micro's bytes
    (TFLite), or mcuc's reference, itself checked against onnxruntime (ONNX:
    OnnxruntimeCheck, whose verdict is `onnxruntime`). `reference` reuses a built
    reference runner; `runner` is the reference runner whose outputs are the expectation
    (ONNX), so a caller need not run it again, else None."""

    def __init__(self, model: Model, compiled: Graph, options: CompileOptions, reference=None):
        self.onnxruntime = None
        self.runner = None
        if model.format == "onnx":
            self.runner = self._expected = reference or make_runner("reference", model, options)
            self.onnxruntime = OnnxruntimeCheck(model, compiled, options)
        else:
            self._expected = EdgeOracle(model, compiled)

    def __call__(self, sample: int, inputs: list[np.ndarray]) -> list[np.ndarray]:
        expected = self._expected(inputs)
        if self.onnxruntime is not None:
            self.onnxruntime.record(sample, inputs, expected)
        return expected

    @property
    def ok(self) -> bool:
        return self.onnxruntime is None or self.onnxruntime.ok


def _progress_bar(total: int, description: str):
    """A tqdm bar on stderr (None without tqdm): the CLI asks for one only on a terminal
    and never with --json."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=description, unit="run", file=sys.stderr, leave=False, dynamic_ncols=True)


def default_backends(target: str = "cortex-m4") -> tuple[list[str], dict[str, str]]:
    """What `mcuc verify` checks when no backend is named: the reference interpreter, the
    llvm JIT and the generated C, compiled for this host (c-host, with the sanitizers) and
    for `target`'s core, run in the emulator. A backend whose toolchain this machine lacks
    is left out: returns (backends to run, {backend left out: why})."""
    from mcuc.backend_registry import EMULATED

    backends, skipped = ["reference", "llvm"], {}
    try:
        from mcuc.backends.cortexm.chost import find_host_gcc

        find_host_gcc()
        if shutil.which("make") is None:
            raise MCUCError("make was not found: install the Debian package make")
        backends.append("c-host")
    except (MCUCError, ImportError) as e:
        skipped["c-host"] = str(e)
    if target in EMULATED:
        try:
            from mcuc.backends.cortexm.toolchain import find_arm_gcc

            find_arm_gcc()
            if shutil.which("make") is None:
                raise MCUCError("make was not found: install the Debian package make")
            backends.append(target)
        except (MCUCError, ImportError) as e:
            skipped[target] = str(e)
    return backends, skipped


def verify(model: Model, backends: list[str] | None = None, samples: int = 10, seed: int = 0,
           options: CompileOptions | None = None, progress: bool = False) -> dict:
    """Run the oracle and each backend on `samples` random inputs; report per backend.

    TFLite: every backend against tflite-micro. ONNX: every backend against mcuc's
    reference byte for byte, and the reference against onnxruntime (OnnxruntimeCheck); a
    backend is bit-exact when it equals the reference and the reference passed that check."""
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise MCUCError(f"--samples must be a whole number of at least 1, got {samples!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise MCUCError(f"--seed must be a whole number of at least 0, got {seed!r}")
    options = options or CompileOptions()
    skipped: dict[str, str] = {}
    chosen_by_default = backends is None
    if chosen_by_default:
        backends, skipped = default_backends(options.target)
    if not backends:
        raise MCUCError("no backend to verify: name at least one (e.g. reference)")
    model = reloaded(model, options.layout, options.onnx_numerics)
    compiled = prepare(model.graph, options) if options.io == "int8" else model.graph
    # The bar covers building each backend (a patch search, a C build, a firmware link can
    # take most of the time) and then samples x backends.
    bar = _progress_bar(len(backends) * (samples + 1), f"verify {model.name}") if progress else None
    runners = {}
    for name in backends:
        if bar is not None:
            bar.set_postfix_str(f"building {name}", refresh=True)
        runners[name] = make_runner(name, model, options)
        if bar is not None:
            bar.update(1)
    verdicts = {name: BackendVerdict() for name in backends}
    expected_of = Expected(model, compiled, options, runners.get("reference"))
    rng = np.random.default_rng(seed)
    for sample in range(samples):
        inputs = random_inputs(compiled, rng)
        expected = expected_of(sample, inputs)
        for name, run in runners.items():
            if bar is not None:
                bar.set_postfix_str(f"sample {sample + 1}/{samples} on {name}", refresh=False)
            # (for ONNX the reference's outputs are the expectation: not run twice)
            verdicts[name].record(sample, expected, expected if run is expected_of.runner else run(inputs))
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    check = expected_of.onnxruntime
    if not expected_of.ok:
        for v in verdicts.values():
            v.bit_exact = False
            v.mismatched_samples = sorted(set(v.mismatched_samples) | set(check.differing_samples))
            v.max_abs_diff = max(v.max_abs_diff, check.max_abs_diff, key=float)
    return {
        "model": model.name,
        "samples": samples,
        "seed": seed,
        # A model that keeps state runs its samples in order as one stream on every backend
        # and on the oracle (one interpreter invoked again and again).
        **({"stream": True} if compiled.states else {}),
        "backends_checked": list(verdicts),
        "backends_default": chosen_by_default,
        **({"backends_skipped": skipped} if skipped else {}),
        **({"onnxruntime": check.report()} if check is not None else {}),
        "backends": {
            name: {"bit_exact": v.bit_exact, "max_abs_diff": v.max_abs_diff,
                   **({"mismatched_samples": v.mismatched_samples} if v.mismatched_samples else {})}
            for name, v in verdicts.items()},
    }


def format_verdict(report: dict) -> str:
    lines = [f"verify {report['model']}: {report['samples']} random samples (seed {report['seed']})"
             + (", in order as one stream (the model keeps state between invocations)" if report.get("stream")
                else "")]
    ort = report.get("onnxruntime")
    if ort is not None:
        lines.append(f"  ONNX numerics {ort['numerics']}; oracle: {ort['runtime']}")
        if ort["equal"]:
            status = "reference equals onnxruntime byte for byte"
        else:
            status = (f"reference differs from onnxruntime in {ort['differing_bytes']} bytes on samples "
                      f"{ort['differing_samples']}, max |diff| {ort['max_abs_diff']}: "
                      + (f"explained: {ort['explained_by']}" if ort["ok"] else "NOT explained by this host"))
        lines.append(f"  {'onnxruntime':<12} {status}")
    against = "reference" if ort is not None else "oracle"
    for name, v in report["backends"].items():
        status = "bit-exact" if v["bit_exact"] else f"MISMATCH on samples {v['mismatched_samples']}"
        lines.append(f"  {name:<12} {status:<30} max |diff| {v['max_abs_diff']} (vs {against})")
    for name, why in report.get("backends_skipped", {}).items():
        lines.append(f"  {name:<12} skipped: {why}")
    checked = ", ".join(report["backends"])
    lines.append(f"checked {checked}" + (" (the default; --backends chooses)" if report.get("backends_default")
                                         else ""))
    return "\n".join(lines)


def verify_model(model, backends: Sequence[str] | None = None, samples: int = 10, seed: int = 0,
                 io: str | None = None, layout: str | None = None, onnx_numerics: str = "exact",
                 max_tensor_bytes: int | None = None, target: str = "cortex-m4", optimize: str = "speed",
                 patch: str | None = None, sram: int | None = None, io_buffers: str = "arena",
                 memory: str | None = None, weights_in_ram: str | None = None) -> dict:
    """The API's verify (mcuc.verify / mcuc.api.verify): a model path, bytes or Model and
    the options as keywords -> the `mcuc verify` report as a dict. `backends` None checks
    what `mcuc verify` checks without --backends (default_backends(target))."""
    from mcuc.model import check_io_option, load_model

    options = CompileOptions(target=target, io=io, patch=patch, sram=sram, layout=layout, optimize=optimize,
                             onnx_numerics=onnx_numerics, max_tensor_bytes=max_tensor_bytes, io_buffers=io_buffers,
                             memory=memory, weights_in_ram=weights_in_ram)
    if isinstance(backends, str):
        backends = [b.strip() for b in backends.split(",") if b.strip()]
    model = (reloaded(model, layout, onnx_numerics) if isinstance(model, Model)
             else load_model(model, layout=layout, onnx_numerics=onnx_numerics, max_tensor_bytes=max_tensor_bytes))
    check_io_option(model, io)
    return verify(model, None if backends is None else list(backends), samples, seed, options)


class _CallableModule(types.ModuleType):
    """`mcuc.verify` is the API function and the name of this module: once this module is
    imported, Python binds the package attribute `mcuc.verify` to it, so the module
    answers calls as the API function does."""

    def __call__(self, *args, **kwargs) -> dict:
        return verify_model(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
