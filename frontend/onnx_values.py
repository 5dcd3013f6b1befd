"""What the ONNX frontend knows about one ONNX tensor: its quantization in the model's own
dtype, where the IR holds it and in which layout; the layout permutations; and, under the
chosen OnnxNumerics, which integer type onnxruntime computes int8 QDQ groups in."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcuc.ir.tensor import Quantization, Tensor

from .onnx_numerics import OnnxNumerics

UINT8_OFFSET = 128
NCHW_TO_NHWC = (0, 2, 3, 1)
NHWC_TO_NCHW = (0, 3, 1, 2)
# An ONNX axis of a 4-D NCHW tensor -> the same axis of the NHWC tensor the IR holds.
NCHW_AXIS_IN_NHWC = {0: 0, 1: 3, 2: 1, 3: 2}


def float_group_error_advice(op_type: str) -> str:
    return (f"with --onnx-numerics ort-x86-avx2, onnxruntime converts only single-consumer int8 QDQ pairs to uint8, "
            f"so this int8 {op_type} group mixes int8 and uint8 and onnxruntime runs it in float, which mcuc does "
            f"not reproduce exactly for it; compile with --onnx-numerics exact (the default), or quantize with "
            f"uint8 activations (quantize_static activation_type=QUInt8), or give the quantized tensors of this "
            f"node a single consumer each")


def runs_in_float(node, numerics: OnnxNumerics, *qparams: "QParams") -> bool:
    """Whether onnxruntime leaves this QDQ group unfused (DQ -> float op -> Q) under
    `numerics`: an int8 group whose tensors were converted to uint8 in part, or not at
    all, where int8 groups are converted. Operator-oriented nodes always run integer."""
    if node.op_type.startswith("QLinear") or node.op_type == "QGemm" or not numerics.qdq_int8_as_uint8:
        return False
    return not ort_on_uint8(*qparams)


def mixed_float_group(node, numerics: OnnxNumerics, *qparams: "QParams") -> bool:
    """Whether this QDQ group runs in float because onnxruntime converted some of its int8
    tensors to uint8 and not others (the only unfused groups mcuc reproduces)."""
    return runs_in_float(node, numerics, *qparams) and len({ort_on_uint8(q) for q in qparams}) > 1


def ort_on_uint8(*qparams: "QParams") -> bool:
    """Whether onnxruntime's integer kernel for an op whose activations have these
    parameters runs on uint8: every one of them is uint8 in the model or converted (an
    int8 QDQ group with some unconverted tensor is not fused: onnxruntime runs it in
    float, which mcuc approximates by the int8 kernel)."""
    return all(q.dtype == "uint8" or q.converted_to_uint8 for q in qparams)


def u8s8_pairs_saturate(numerics: OnnxNumerics, *qparams: "QParams") -> bool:
    """Whether onnxruntime's u8 x s8 GEMM for these activations sums products in
    saturating int16 pairs: activations on uint8, on a CPU whose MLAS kernels saturate."""
    return numerics.u8s8_pairs_saturate and ort_on_uint8(*qparams)

INT_TYPES = frozenset({"int8", "uint8"})


@dataclass(frozen=True)
class QParams:
    """Scale and zero point of an ONNX quantized value, in the model's own dtype."""

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int
    dtype: str  # "int8" | "uint8" | "int32"
    # An int8 QDQ activation that onnxruntime turns into uint8 under the chosen numerics
    # (qdq_int8_as_uint8): its QuantizeLinear has a single consumer (QDQS8ToU8Transformer
    # converts only those).
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

    @property
    def onnx_shape(self) -> tuple[int, ...]:
        """The shape the ONNX model sees (NCHW for a 4-D value held NHWC)."""
        shape = self.tensor.shape
        return tuple(shape[i] for i in NHWC_TO_NCHW) if self.nchw else tuple(shape)


@dataclass(frozen=True)
class QInput:
    """An operand of a quantized op: an activation Value or a constant array."""

    qparams: QParams
    value: Value | None = None
    data: np.ndarray | None = None

    @property
    def is_constant(self) -> bool:
        return self.data is not None
