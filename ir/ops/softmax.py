"""SOFTMAX over the last axis, int8 in, int8 out (or int16 out), with TFLite Micro's
fixed-point algorithm; int16 in and out with its tables (softmax_int16.py).

TFLM's int8 SOFTMAX (softmax_common.cc CalculateSoftmaxParams, reference/softmax.h):
- Prepare: beta * input_scale * 2^26 (capped at 2^31 - 1) becomes a Q31 multiplier and a
  left shift (PreprocessSoftmaxScaling with kScaledDiffIntegerBits = 5); differences from
  the row maximum below diff_min = -CalculateInputRadius(5, left_shift) count as exp = 0.
- Eval, per row: each difference d = x - max (d >= diff_min) is rescaled to Q5.26 by
  (d << left_shift) high-multiplied by the multiplier; gemmlowp exp_on_negative_values
  gives exp(d) in Q0.31; the exps are summed in Q12.19; GetReciprocal gives 1/sum as a
  Q0.31 fraction and num_bits_over_unit; each output is
  RoundingDivideByPOT(exp * reciprocal, num_bits_over_unit + 31 - output_bits) + type
  min, clamped. Elements below diff_min give the type minimum.
- The output quantization is fixed: int8 scale exactly 1/256 zero point -128, or int16
  scale 1/65536 (within 0.1%) zero point -32768.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from ..fixedpoint import quantize_multiplier, rounding_divide_by_pot, saturating_rounding_doubling_high_mul
from ..fixedpoint_exp import (
    calculate_input_radius,
    exp_on_negative_values,
    get_reciprocal,
    rescale,
    wrap_int32,
)
from ..op import Op
from ..numerics import ONNXRUNTIME, TFLITE_Q31, Numerics
from ..ort_numerics import qlinear_softmax
from ..region import Region
from . import OpDef, Trait, register
from .common import dtype_range, require
from .kinds import SOFTMAX
from .softmax_int16 import evaluate_int16, int16_params

# Integer bits of the rescaled differences (Q5.26) and of the sum of exps (Q12.19).
SCALED_DIFF_INTEGER_BITS = 5
ACCUMULATION_INTEGER_BITS = 12


@dataclass(frozen=True)
class SoftmaxAttrs:
    beta: float = 1.0
    # TFLiteQ31: TFLM's fixed-point softmax. OrtInteger: QLinearSoftmax's float table
    # (ort_numerics.qlinear_softmax); with uint8, onnxruntime ran it on uint8 (it clamps
    # there; its int8 kernel keeps the low byte).
    numerics: Numerics = TFLITE_Q31


@dataclass(frozen=True)
class SoftmaxParams:
    """The integer constants of one int8 SOFTMAX, as TFLM's Prepare computes them;
    backends emit these, the interpreter uses them."""

    input_multiplier: int
    input_left_shift: int
    diff_min: int
    output_bits: int  # 8 or 16: the output type's width, which sets the final shift


def softmax_params(op: Op) -> SoftmaxParams:
    """CalculateSoftmaxParams for int8 input: beta and the input scale are widened from
    float32 to double, multiplied by 2^26, capped at 2^31 - 1, and quantized with
    QuantizeMultiplierGreaterThanOne (which requires the product to exceed 1)."""
    beta = float(np.float32(op.attrs.beta))
    input_scale = float(np.float32(op.input.quant.scalar_scale))
    real = min(beta * input_scale * float(1 << (31 - SCALED_DIFF_INTEGER_BITS)), float((1 << 31) - 1))
    require(real > 1.0, op,
            f"beta {beta:g} times input scale {input_scale:g} is {beta * input_scale:g}; TFLite needs "
            f"it above 2^-26 (QuantizeMultiplierGreaterThanOne): use a larger beta or input scale")
    multiplier, left_shift = quantize_multiplier(real)
    diff_min = -calculate_input_radius(SCALED_DIFF_INTEGER_BITS, left_shift)
    return SoftmaxParams(multiplier, left_shift, diff_min, np.dtype(op.output.dtype).itemsize * 8)


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    require(len(op.inputs) == 1 and op.inputs[0] is not None and len(op.outputs) == 1, op,
            "takes exactly one input and one output")
    x, y = op.input, op.output
    require(len(x.shape) >= 1, op, "input must have at least one dimension")
    require(x.dtype in ("int8", "int16"), op, f"input dtype {x.dtype} is not supported (int8 or int16)")
    require(y.dtype in ("int8", "int16"), op, f"output dtype {y.dtype} is not supported (int8 or int16)")
    require(x.quant is not None and y.quant is not None, op, "input and output must be quantized")
    require(not x.quant.per_channel and not y.quant.per_channel, op, "quantization must be per-tensor")
    require(op.attrs is not None and isinstance(op.attrs.beta, numbers.Real), op, "attribute beta is missing")
    if x.dtype == "int16":
        require(y.dtype == "int16" and op.attrs.numerics.rule != ONNXRUNTIME, op,
                f"an int16 input needs an int16 output (tflite-micro's int16 SOFTMAX), not {y.dtype}")
        int16_params(op)  # checks the quantization
        return [x.shape]
    if op.attrs.numerics.rule == ONNXRUNTIME:
        require(y.dtype == "int8" and op.attrs.beta == 1.0, op, "onnxruntime's QLinearSoftmax maps int8 to int8 with beta 1")
        return [x.shape]
    out_scale, out_zp = np.float32(y.quant.scalar_scale), y.quant.scalar_zero_point
    if y.dtype == "int8":
        require(out_zp == -128 and out_scale == np.float32(1.0 / 256), op,
                f"int8 output quantization must be scale 1/256, zero point -128 (TFLite's fixed "
                f"softmax output), got scale {float(out_scale):g}, zero point {out_zp}")
    else:
        # TF_LITE_ENSURE_NEAR in float: |scale - 1/65536| <= 0.001 / 65536.
        target = np.float32(1.0 / 65536)
        require(out_zp == -32768 and abs(out_scale - target) <= np.float32(0.001) * target, op,
                f"int16 output quantization must be scale 1/65536, zero point -32768, "
                f"got scale {float(out_scale):g}, zero point {out_zp}")
    softmax_params(op)  # raises for a beta * scale TFLite cannot represent
    return [x.shape]


def macs(op: Op) -> int:
    return 0


def input_regions(op: Op, out: Region) -> list[Region | None]:
    """Each output needs its whole row: the full last axis of the input."""
    if out.empty:
        return [out]
    return [out.with_axis(len(out.start) - 1, 0, op.input.shape[-1])]


def exps_of_row_differences(diff: np.ndarray, params: SoftmaxParams) -> np.ndarray:
    """exp(beta * scale * diff) in Q0.31 for differences from the row max (<= 0)."""
    # MultiplyByQuantizedMultiplierGreaterThanOne: (diff * 2^left_shift) wraps to int32
    # in C; only left_shift = 31 can wrap, and then diff_min = 0 keeps only diff = 0.
    scaled = wrap_int32(diff * (1 << params.input_left_shift))
    rescaled = saturating_rounding_doubling_high_mul(scaled, params.input_multiplier)
    return exp_on_negative_values(rescaled, SCALED_DIFF_INTEGER_BITS)


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    if op.attrs.numerics.rule == ONNXRUNTIME:
        offset = op.attrs.numerics.offset
        y = qlinear_softmax(inputs[0].astype(np.int64) + offset, float(op.input.quant.scale[0]),
                            float(op.output.quant.scale[0]), op.output.quant.scalar_zero_point + offset,
                            op.attrs.numerics.uint8)
        return [(y - offset).astype(op.output.dtype)]
    if op.input.dtype == "int16":
        return [evaluate_int16(op, inputs[0])]
    params = softmax_params(op)
    x = inputs[0].astype(np.int64)
    diff = x - x.max(axis=-1, keepdims=True)
    in_range = diff >= params.diff_min
    exps = np.where(in_range, exps_of_row_differences(np.where(in_range, diff, 0), params), 0)
    # The sum accumulates Rescale<12>(exp) in int32 (a plain add in gemmlowp: it wraps).
    sum_of_exps = wrap_int32(rescale(exps, 0, ACCUMULATION_INTEGER_BITS).sum(axis=-1, keepdims=True))
    reciprocal, num_bits_over_unit = get_reciprocal(sum_of_exps, ACCUMULATION_INTEGER_BITS)
    exponent = num_bits_over_unit + 31 - params.output_bits
    # TFLM aborts (TFLITE_CHECK) when a row's sum of exps needs a shift beyond 31 bits.
    require(bool(np.all((exponent >= 0) & (exponent <= 31))), op,
            "a row's sum of exps exceeds what TFLite's int8 softmax represents (its kernel aborts): "
            "use an int16 output, a larger beta or fewer classes")
    unsaturated = rounding_divide_by_pot(saturating_rounding_doubling_high_mul(reciprocal, exps), exponent)
    lo, hi = dtype_range(op.output.dtype)
    y = np.where(in_range, np.clip(unsaturated + lo, lo, hi), lo)
    return [y.astype(op.output.dtype)]


OPDEF = register(OpDef(SOFTMAX, SoftmaxAttrs, infer_shapes, macs, input_regions, evaluate,
                        traits={Trait.POSITIONAL, Trait.PATCHABLE}))
