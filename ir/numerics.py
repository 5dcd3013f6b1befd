"""How an op turns exact integer sums into its output values: one typed value per op.

An op's attributes carry one of these (`attrs.numerics`), chosen by the frontend from the
model and the compile options (never from the machine that compiles). Each type names
one rule, and one module states it in numpy, which the backends mirror:

- TFLiteQ31: TFLite Micro's reference kernels: a Q31 multiplier and shift per channel
  derived from the scales, double rounding (mcuc.ir.fixedpoint).
- OrtInteger: onnxruntime's integer kernels (QLinearConv, QLinearAdd, QLinearSoftmax,
  ...): an int32 accumulator turned into float32, times a float32 scale, rounded half to
  even (mcuc.ir.ort_numerics); optionally on uint8 values and with u8 x s8 products summed
  in saturating int16 pairs (mcuc.ir.ops.ort_u8s8).
- OrtFloat: a QDQ group onnxruntime leaves unfused: DequantizeLinear, the float op in the
  order of one MLAS/Eigen kernel, QuantizeLinear (mcuc.ir.ops.ort_float).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Union

# The two families of rules; each backend declares those it implements (its ROUNDING_RULES).
TFLITE = "tflite"
ONNXRUNTIME = "onnxruntime"

# The float kernels whose order an OrtFloat MEAN follows.
ORT_GLOBAL_AVERAGE_POOL = "global_average_pool"  # MlasPoolGlobalKernel (GlobalAveragePool)
ORT_REDUCE_MEAN = "reduce_mean"  # Eigen's packet sum (ReduceMean)


@dataclass(frozen=True)
class TFLiteQ31:
    """TFLite Micro's requantization: Q31 multiplier and shift, double rounding."""

    rule: ClassVar[str] = TFLITE


@dataclass(frozen=True)
class OrtInteger:
    """onnxruntime's integer kernels: float32 requantization, round half to even.

    `uint8`: the kernel computes on uint8 values (the model's own, or int8 QDQ ones
    onnxruntime converted). The IR holds them 128 lower; float roundings that see the raw
    values (QLinearAdd, QLinearMul, QLinearAveragePool) and QLinearSoftmax's clamp follow
    the uint8 domain. `u8s8_pairs`: the u8 x s8 GEMM sums neighbouring products in
    saturating int16 pairs (MLAS on x86-64 without VNNI)."""

    uint8: bool = False
    u8s8_pairs: bool = False
    rule: ClassVar[str] = ONNXRUNTIME

    @property
    def offset(self) -> int:
        """What the kernel's values exceed the IR's by: 128 on uint8, else 0."""
        return 128 if self.uint8 else 0


@dataclass(frozen=True)
class OrtFloat:
    """A QDQ group onnxruntime runs in float: dequantize, the float op, QuantizeLinear.

    `threads`: onnxruntime's intra-op threads, which fix how MLAS slices a float
    convolution's output columns (and so its sums). `gemm_transposed_b`: the float product
    came from a Gemm with transB=1 (MLAS's transposed-B kernel). `mean_kernel`: for MEAN,
    which float kernel's summation order (ORT_GLOBAL_AVERAGE_POOL or ORT_REDUCE_MEAN)."""

    threads: int = 1
    gemm_transposed_b: bool = False
    mean_kernel: str = ORT_GLOBAL_AVERAGE_POOL
    rule: ClassVar[str] = ONNXRUNTIME

    def __post_init__(self) -> None:
        if self.mean_kernel not in (ORT_GLOBAL_AVERAGE_POOL, ORT_REDUCE_MEAN):
            raise ValueError(f"OrtFloat mean_kernel {self.mean_kernel!r} is not one of "
                             f"{ORT_GLOBAL_AVERAGE_POOL!r}, {ORT_REDUCE_MEAN!r}")


Numerics = Union[TFLiteQ31, OrtInteger, OrtFloat]

TFLITE_Q31 = TFLiteQ31()
ORT_INTEGER = OrtInteger()


def numerics_type(attrs) -> type:
    """The numerics type an op's attributes carry (TFLiteQ31, OrtInteger or OrtFloat);
    TFLiteQ31 for attributes without one (as rule_of). Backends register one emitter per
    (op kind, numerics type), or one for every rule, and look it up with this."""
    numerics = getattr(attrs, "numerics", None)
    return TFLiteQ31 if numerics is None else type(numerics)


def rule_of(attrs) -> str:
    """The rule family of an op's attributes (TFLITE for ops without numerics)."""
    numerics = getattr(attrs, "numerics", None)
    return TFLITE if numerics is None else numerics.rule


def in_float(attrs) -> OrtFloat | None:
    """The op's OrtFloat numerics, if onnxruntime runs its group in float."""
    numerics = getattr(attrs, "numerics", None)
    return numerics if isinstance(numerics, OrtFloat) else None


def uint8_offset(attrs) -> int:
    """128 where onnxruntime's integer kernel computes on uint8 (OrtInteger.offset), else 0."""
    numerics = getattr(attrs, "numerics", None)
    return numerics.offset if isinstance(numerics, OrtInteger) else 0


def u8s8_pairs(attrs) -> bool:
    """Whether the op's u8 x s8 products are summed in saturating int16 pairs."""
    numerics = getattr(attrs, "numerics", None)
    return isinstance(numerics, OrtInteger) and numerics.u8s8_pairs
