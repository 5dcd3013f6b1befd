"""The oracle for ONNX models: onnxruntime's CPU execution provider, all graph
optimizations on (its QDQ fusions decide which QLinear* kernels run), with the session
options that make it compute the chosen OnnxNumerics: int8 QDQ groups kept int8 (the
session option session.qdqisint8allowed) or converted to uint8 as x86 builds do by
default, and the numerics' intra-op thread count.

Two facts of the host's MLAS kernels remain outside any session option: whether its u8 x s8
GEMMs sum products in saturating int16 pairs (x86-64 without VNNI or AMX) and its NCHWc
block (16 floats with AVX-512F). `host_numerics` says what onnxruntime on this machine
computes for given numerics; this module is the only place in mcuc that reads the host,
and only to explain onnxruntime's answer, never to decide what mcuc compiles.

onnxruntime always runs the model as it is (NCHW); a model compiled with `--layout nhwc`
takes and gives its 4-D tensors NHWC, and this oracle is the one place that moves them:
4-D inputs to NCHW before onnxruntime, its 4-D outputs to NHWC after."""
from __future__ import annotations

import platform
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np

from mcuc.frontend.onnx_numerics import OnnxNumerics, parse_onnx_numerics
from mcuc.ir.errors import MCUCError

NHWC_TO_NCHW = (0, 3, 1, 2)
NCHW_TO_NHWC = (0, 2, 3, 1)


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError as e:  # pragma: no cover - depends on the install
        raise MCUCError("the oracle for ONNX models is onnxruntime; install the test extras: "
                        "pip install -e '.[test]'") from e
    return onnxruntime


def session_options(numerics: OnnxNumerics):
    """onnxruntime SessionOptions that compute `numerics` (up to the host's kernel facts)."""
    options = _onnxruntime().SessionOptions()
    # Only fatal messages: warnings about optimizations are not the user's concern, and an
    # error is reported once, as the MCUCError that OnnxOracle raises for it.
    options.log_severity_level = 4
    # "1": fuse int8 QDQ groups as int8 (the default on ARM builds); "0": convert them to
    # uint8 first (the default on x86-64 builds). Stated either way, so the host's build
    # does not choose.
    options.add_session_config_entry("session.qdqisint8allowed", "0" if numerics.qdq_int8_as_uint8 else "1")
    options.intra_op_num_threads = numerics.threads
    return options


class OnnxOracle:
    """One onnxruntime session, reusable over many inputs: a list of arrays in the model's
    input order (the model's own dtypes; 4-D tensors in `layout`) -> the list of its
    outputs (4-D ones in `layout`)."""

    def __init__(self, model_bytes: bytes, layout: str = "nchw", numerics: OnnxNumerics | str | None = None):
        if layout not in ("nchw", "nhwc"):
            raise MCUCError(f"unknown layout {layout!r} for the onnxruntime oracle; choose nchw or nhwc")
        self.nhwc = layout == "nhwc"
        self.numerics = parse_onnx_numerics(numerics)
        ort = _onnxruntime()
        options = session_options(self.numerics)
        try:
            self._session = ort.InferenceSession(bytes(model_bytes), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise MCUCError(f"onnxruntime (the oracle) cannot load this model: {_first_line(e)}") from None
        self._inputs = [i.name for i in self._session.get_inputs()]
        self._input_ranks = [len(i.shape) for i in self._session.get_inputs()]
        self.num_outputs = len(self._session.get_outputs())

    def __call__(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        if len(inputs) != len(self._inputs):
            raise MCUCError(f"the model takes {len(self._inputs)} inputs, got {len(inputs)}")
        if self.nhwc:
            inputs = [self._to_nchw(name, x) if rank == 4 else x
                      for name, rank, x in zip(self._inputs, self._input_ranks, inputs)]
        feed = {name: np.ascontiguousarray(x) for name, x in zip(self._inputs, inputs)}
        run_options = _onnxruntime().RunOptions()
        run_options.log_severity_level = 4  # the failure is reported once, below
        try:
            outputs = [np.asarray(y) for y in self._session.run(None, feed, run_options)]
        except Exception as e:  # Fail, InvalidArgument, RuntimeException, ...: the oracle's failure
            raise MCUCError(f"onnxruntime (the oracle) failed running this model: {_first_line(e)}") from None
        if self.nhwc:
            outputs = [np.ascontiguousarray(y.transpose(NCHW_TO_NHWC)) if y.ndim == 4 else y for y in outputs]
        return outputs

    @staticmethod
    def _to_nchw(name: str, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 4:
            raise MCUCError(f"input {name!r} is 4-D in the model; with layout nhwc give it as a 4-D NHWC array, "
                            f"got shape {list(x.shape)}")
        return x.transpose(NHWC_TO_NCHW)


def _first_line(error: Exception, limit: int = 200) -> str:
    """onnxruntime's message, on one line and at most `limit` characters."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


def describe_session(numerics: OnnxNumerics) -> str:
    """The onnxruntime configuration OnnxOracle runs for `numerics`, in words."""
    import onnxruntime

    int8 = "0 (int8 QDQ converted to uint8)" if numerics.qdq_int8_as_uint8 else "1 (int8 QDQ fused as int8)"
    return (f"onnxruntime {onnxruntime.__version__} CPU, session.qdqisint8allowed={int8}, "
            f"{numerics.threads} intra-op thread{'s' if numerics.threads != 1 else ''}")


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("flags", "Features"):
                return set(value.split())
    except OSError:
        pass
    return set()


def host_facts(machine: str | None = None, cpu_flags: set[str] | None = None) -> dict:
    """The two facts of this host's MLAS kernels that no session option sets (arguments
    override the detection, for tests)."""
    machine = (machine or platform.machine()).lower()
    flags = _cpu_flags() if cpu_flags is None else cpu_flags
    x86 = machine in ("x86_64", "amd64", "i386", "i686")
    return {
        # MLAS's u8 x s8 kernels without VNNI/AMX use VPMADDUBSW: int16 pair sums saturate.
        "u8s8_pairs_saturate": x86 and not flags & {"avx512_vnni", "avx_vnni", "amx_int8"},
        "nchwc_block": 16 if x86 and "avx512f" in flags else 8,
    }


def host_numerics(numerics: OnnxNumerics, machine: str | None = None,
                  cpu_flags: set[str] | None = None) -> OnnxNumerics:
    """What onnxruntime on this host computes when OnnxOracle runs it for `numerics`:
    `numerics` itself, or the same with this host's kernel facts."""
    facts = host_facts(machine, cpu_flags)
    if all(getattr(numerics, k) == v for k, v in facts.items()):
        return numerics
    return replace(numerics, name=f"{numerics.name} as this host's onnxruntime runs it", **facts)


def explain_host_difference(numerics: OnnxNumerics, host: OnnxNumerics) -> str:
    """Why onnxruntime on this host may compute other bytes than `numerics`."""
    reasons = []
    if host.u8s8_pairs_saturate and not numerics.u8s8_pairs_saturate:
        reasons.append("this CPU has no VNNI, so MLAS sums u8 x s8 products in saturating int16 pairs")
    if numerics.u8s8_pairs_saturate and not host.u8s8_pairs_saturate:
        reasons.append("this CPU's MLAS sums u8 x s8 products exactly (VNNI, AMX or not x86)")
    if host.nchwc_block != numerics.nchwc_block:
        reasons.append(f"MLAS's NCHWc block here is {host.nchwc_block} floats, not {numerics.nchwc_block}")
    return "; ".join(reasons)
