"""What the ONNX frontend knows about one ONNX tensor: its quantization in the model's own
dtype, where the IR holds it and in which layout; the layout permutations; and which
integer type onnxruntime on this machine really computes int8 QDQ groups in."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mcuc.ir.errors import MCUCError
from mcuc.ir.tensor import Quantization, Tensor

UINT8_OFFSET = 128
NCHW_TO_NHWC = (0, 2, 3, 1)
NHWC_TO_NCHW = (0, 3, 1, 2)
# An ONNX axis of a 4-D NCHW tensor -> the same axis of the NHWC tensor the IR holds.
NCHW_AXIS_IN_NHWC = {0: 0, 1: 3, 2: 1, 3: 2}


# Which onnxruntime the compiled numerics follow: "x86-avx2" (x86-64 without VNNI),
# "exact" (VNNI, ARM: integer kernels without int16 pairs), or unset: this machine's.
ONNXRUNTIME_HOST_ENV = "MCUC_ONNXRUNTIME_HOST"


def _host_runs_qdq_int8_as_uint8() -> bool:
    """Whether onnxruntime on this machine (where `mcuc verify` runs the oracle) converts
    int8 QDQ activations to uint8 before fusing (its QDQS8ToU8Transformer, active on
    x86-64 without VNNI, where u8 x s8 products are summed in int16). Kernels whose float
    rounding sees the raw values (QLinearAveragePool adds the zero point before
    rounding) then compute on values 128 higher. MCUC_ONNXRUNTIME_HOST overrides the
    detection (to match an onnxruntime on another machine)."""
    import os
    import platform

    chosen = os.environ.get(ONNXRUNTIME_HOST_ENV, "").strip().lower()
    if chosen in ("x86-avx2", "exact"):
        return chosen == "x86-avx2"
    if chosen:
        raise MCUCError(f"{ONNXRUNTIME_HOST_ENV}={chosen!r}: use x86-avx2 or exact")
    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686"):
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return True
    return not any(f in flags for f in ("avx512_vnni", "avx_vnni", "amx_int8"))


ORT_QDQ_INT8_RUNS_AS_UINT8 = _host_runs_qdq_int8_as_uint8()
# The same hosts' u8 x s8 GEMM kernels sum neighbouring products in saturating int16
# pairs (ir/ops/_ort_u8s8.py): MLAS calls this "U8S8 overflow".
ORT_U8S8_PAIRS_SATURATE = ORT_QDQ_INT8_RUNS_AS_UINT8

ONNXRUNTIME_THREADS_ENV = "MCUC_ONNXRUNTIME_THREADS"


def _host_onnxruntime_threads() -> int:
    """onnxruntime's default intra-op thread count on this machine: its physical cores
    (distinct physical id / core id pairs of /proc/cpuinfo, else the CPU count).
    MCUC_ONNXRUNTIME_THREADS overrides it (to match an onnxruntime elsewhere, or a session
    created with intra_op_num_threads)."""
    import os

    chosen = os.environ.get(ONNXRUNTIME_THREADS_ENV, "").strip()
    if chosen:
        if not chosen.isdigit() or int(chosen) < 1:
            raise MCUCError(f"{ONNXRUNTIME_THREADS_ENV}={chosen!r}: use a positive thread count")
        return int(chosen)
    try:
        cores, physical = set(), "0"
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "physical id":
                physical = value.strip()
            elif key.strip() == "core id":
                cores.add((physical, value.strip()))
        if cores:
            return len(cores)
    except OSError:
        pass
    return os.cpu_count() or 1


ORT_THREADS = _host_onnxruntime_threads()


def _host_nchwc_block() -> int:
    """MLAS's NCHWc block size on this machine (16 floats with AVX-512F, else 8): float
    pooling of a channel count that is a multiple of it runs as an NCHWc kernel."""
    try:
        return 16 if " avx512f" in Path("/proc/cpuinfo").read_text() else 8
    except OSError:
        return 8


ORT_NCHWC_BLOCK = _host_nchwc_block()


def float_group_error_advice(op_type: str) -> str:
    return (f"onnxruntime on this host (x86-64 without VNNI) converts only single-consumer int8 QDQ pairs to "
            f"uint8, so this int8 {op_type} group mixes int8 and uint8 and onnxruntime runs it in float, which mcuc "
            f"does not reproduce exactly for it; quantize with uint8 activations (quantize_static "
            f"activation_type=QUInt8, or mcuc compile --calibrate-activations uint8), or give the quantized tensors "
            f"of this node a single consumer each, or set {ONNXRUNTIME_HOST_ENV}=exact to compile for an onnxruntime "
            f"that fuses int8 groups (VNNI, ARM)")


def runs_in_float(node, *qparams: "QParams") -> bool:
    """Whether onnxruntime on this host leaves this QDQ group unfused (DQ -> float op -> Q):
    an int8 group whose tensors were converted to uint8 in part, or not at all where int8
    groups are not fused (the same hosts). Operator-oriented nodes always run integer."""
    if node.op_type.startswith("QLinear") or node.op_type == "QGemm" or not ORT_QDQ_INT8_RUNS_AS_UINT8:
        return False
    return not ort_on_uint8(*qparams)


def ort_on_uint8(*qparams: "QParams") -> bool:
    """Whether onnxruntime's integer kernel for an op whose activations have these
    parameters runs on uint8: every one of them is uint8 in the model or converted (an
    int8 QDQ group with some unconverted tensor is not fused: onnxruntime runs it in
    float, which mcuc approximates by the int8 kernel)."""
    return all(q.dtype == "uint8" or q.converted_to_uint8 for q in qparams)

INT_TYPES = frozenset({"int8", "uint8"})


@dataclass(frozen=True)
class QParams:
    """Scale and zero point of an ONNX quantized value, in the model's own dtype."""

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int
    dtype: str  # "int8" | "uint8" | "int32"
    # An int8 QDQ activation that onnxruntime on this host turns into uint8: its
    # QuantizeLinear has a single consumer (QDQS8ToU8Transformer converts only those).
    converted_to_uint8: bool = False

    def ir_quant(self, axis: int | None = None) -> Quantization:
        """The IR quantization: uint8 zero points move down by 128."""
        zp = self.zero_point.astype(np.int64) - (UINT8_OFFSET if self.dtype == "uint8" else 0)
        return Quantization(self.scale.astype(np.float32), zp, self.axis if axis is None else axis)

    def same_as(self, other: "QParams") -> bool:
        return (self.dtype == other.dtype and np.array_equal(self.scale, other.scale)
                and np.array_equal(self.zero_point, other.zero_point))


@dataclass
class Value:
    """An ONNX tensor as the IR holds it. `nchw` marks a 4-D ONNX tensor stored NHWC."""

    tensor: Tensor
    qparams: QParams | None = None
    nchw: bool = False


@dataclass(frozen=True)
class QInput:
    """An operand of a quantized op: an activation Value or a constant array."""

    qparams: QParams
    value: Value | None = None
    data: np.ndarray | None = None

    @property
    def is_constant(self) -> bool:
        return self.data is not None
