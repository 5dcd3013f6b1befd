"""LOGISTIC (sigmoid), int8 in, int8 out, with TFLite Micro's fixed-point algorithm; int16
in and out with its interpolated sigmoid table (sigmoid_int16.py).

TFLM's int8 LOGISTIC (logistic_common.cc CalculateArithmeticOpDataLogistic,
reference/integer_ops/logistic.h) is the gemmlowp path, not a lookup table:
- Prepare: input_scale * 2^27 is split by frexp into a Q31 multiplier (std::round) and a
  left shift, with no clamping; input_range_radius = CalculateInputRadius(4, shift).
- Eval, per element: d = x - input_zero_point; d <= -radius gives -128, d >= radius
  gives 127; otherwise d is rescaled to Q4.27 by MultiplyByQuantizedMultiplier, gemmlowp
  logistic gives a Q0.31 result, which is RoundingDivideByPOT'ed by 23 bits, offset by
  -128 and clamped.
- The output zero point must be -128. The output scale is not checked: the kernel
  always produces 1/256 steps, whatever the tensor says, and so does mcuc.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fixedpoint import multiply_by_quantized_multiplier, rounding_divide_by_pot
from ..fixedpoint_exp import calculate_input_radius, logistic, std_round
from ..op import Op
from . import OpDef, Trait, register
from .common import no_macs, require, require_int8_per_tensor_unary, same_region
from .kinds import LOGISTIC
from .sigmoid_int16 import evaluate_int16, sigmoid16_params

# Integer bits of the rescaled input (Q4.27) and of the int8 output's scale (2^-8).
INPUT_INTEGER_BITS = 4
OUTPUT_INTEGER_BITS = 8
OUTPUT_ZERO_POINT = -128


@dataclass(frozen=True)
class LogisticParams:
    """The integer constants of one int8 LOGISTIC, as TFLM's Prepare computes them;
    backends emit these, the interpreter uses them."""

    input_zero_point: int
    input_range_radius: int
    input_multiplier: int
    input_left_shift: int


def logistic_params(op: Op) -> LogisticParams:
    input_scale = float(np.float32(op.input.quant.scalar_scale))
    real = input_scale * float(1 << (31 - INPUT_INTEGER_BITS))
    fraction, left_shift = np.frexp(real)
    multiplier = std_round(float(fraction) * (1 << 31))
    # TFLM computes (1LL << left_shift) in CalculateInputRadius: undefined for negative
    # shifts (input scale below 2^-28) and for shifts past 62. From shift 31 on (scale
    # >= 8) the radius is 0 and the op is a step function, which is well defined.
    require(0 <= int(left_shift) <= 62, op,
            f"input scale {input_scale:g} is outside what TFLite's int8 logistic handles "
            f"(2^-28 .. 2^35): requantize the input")
    radius = calculate_input_radius(INPUT_INTEGER_BITS, int(left_shift), 31)
    return LogisticParams(op.input.quant.scalar_zero_point, radius, multiplier, int(left_shift))


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    require(len(op.inputs) == 1 and op.inputs[0] is not None and len(op.outputs) == 1, op,
            "takes exactly one input and one output")
    require_int8_per_tensor_unary(op, ("int8", "int16"))
    y = op.output
    if y.dtype == "int16":
        sigmoid16_params(op)
        return [op.input.shape]
    require(y.quant.scalar_zero_point == OUTPUT_ZERO_POINT, op,
            f"output zero point must be -128 (TFLite's fixed logistic output), got {y.quant.scalar_zero_point}")
    logistic_params(op)
    return [op.input.shape]


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    if op.input.dtype == "int16":
        return [evaluate_int16(op, inputs[0])]
    p = logistic_params(op)
    d = inputs[0].astype(np.int64) - p.input_zero_point
    inside = (d > -p.input_range_radius) & (d < p.input_range_radius)
    # Inside the radius |d| * 2^shift < 15 * 2^27, so the left shift cannot overflow.
    input_in_q4 = multiply_by_quantized_multiplier(np.where(inside, d, 0), p.input_multiplier, p.input_left_shift)
    output_in_q0 = logistic(input_in_q4, INPUT_INTEGER_BITS)
    scaled = rounding_divide_by_pot(output_in_q0, 31 - OUTPUT_INTEGER_BITS) + OUTPUT_ZERO_POINT
    y = np.where(inside, np.clip(scaled, -128, 127), np.where(d <= -p.input_range_radius, -128, 127))
    return [y.astype(np.int8)]


OPDEF = register(OpDef(LOGISTIC, None, infer_shapes, no_macs, same_region, evaluate,
                        traits={Trait.ELEMENTWISE, Trait.POSITIONAL, Trait.PATCHABLE}))
