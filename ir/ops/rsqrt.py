"""RSQRT, int8 in, int8 out, as TFLite Micro computes it (kernels/elementwise.cc,
PrepareAbsRsqrt and RsqrtEvalQuantized; GetInvSqrtQuantizedMultiplierExp in
kernels/internal/common.h).

- Prepare: (multiplier, shift) = QuantizeMultiplier(1 / (sqrt(double(in_scale)) *
  double(out_scale))).
- Eval, per element: v = x - in_zp. v == 0 gives 127. Otherwise (M, s) =
  GetInvSqrtQuantizedMultiplierExp(v, kReverseShift = -1); data = MBQM(1, M, s + 20);
  y = MBQM(data, multiplier, shift - 20) + out_zp, clamped to int8
  (MBQM = MultiplyByQuantizedMultiplier).
- TFLM refuses at run time (Invoke fails) any element below the input zero point
  ("Rsqrt is only defined for positive values"); a compiler cannot see the values, so
  mcuc evaluates those as the formula would (GetInvSqrt of v <= 1 is (INT32_MAX, 0)).
"""
from __future__ import annotations

import math

import numpy as np

from ..fixedpoint import (
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)
from ..fixedpoint_exp import rescale, wrap_int32
from ..op import Op
from . import OpDef, Trait, register
from .common import int8_unary_shapes, no_macs, same_region
from .kinds import RSQRT

INT32_MAX = 2**31 - 1
K_SHIFT = 20          # "Shift to keep value integer"
K_REVERSE_SHIFT = -1  # kReverseShift


def get_inv_sqrt_quantized_multiplier_exp(value: int, reverse_shift: int = K_REVERSE_SHIFT) -> tuple[int, int]:
    """GetInvSqrtQuantizedMultiplierExp: 1/sqrt(value) as a Q31 multiplier and shift,
    by five Newton-Raphson steps in Q3.28 from x = 1."""
    if value <= 1:
        return INT32_MAX, 0
    srdhm = saturating_rounding_doubling_high_mul
    shift = 11
    while value >= (1 << 29):
        value //= 4
        shift += 1
    max_left_shift_bits = (32 - value.bit_length()) - 1
    left_shift_bit_pairs = max_left_shift_bits // 2 - 1
    shift -= left_shift_bit_pairs
    value <<= 2 * left_shift_bit_pairs
    half_input = rounding_divide_by_pot(value >> 1, 1)
    half_three = (1 << 28) + (1 << 27)
    x = 1 << 28
    for _ in range(5):
        x3 = rescale(srdhm(srdhm(x, x), x), 9, 3)
        x = rescale(wrap_int32(srdhm(half_three, x) - srdhm(half_input, x3)), 6, 3)
    x = int(srdhm(x, 1518500250))  # sqrt(2) / 2 in Q0.31
    if shift < 0:
        x = int(wrap_int32(x << -shift))
        shift = 0
    return x, shift * reverse_shift


def rsqrt_params(op: Op) -> tuple[int, int]:
    s_in, s_out = float(np.float32(op.input.quant.scale[0])), float(np.float32(op.output.quant.scale[0]))
    return quantize_multiplier(1.0 / (math.sqrt(s_in) * s_out))


def rsqrt_table(op: Op) -> np.ndarray:
    """The int8 output for input values -128..127, in that order."""
    multiplier, shift = rsqrt_params(op)
    zp_in, zp_out = op.input.quant.scalar_zero_point, op.output.quant.scalar_zero_point
    out = np.empty(256, dtype=np.int64)
    for i, x in enumerate(range(-128, 128)):
        v = x - zp_in
        if v == 0:
            out[i] = 127
            continue
        m, s = get_inv_sqrt_quantized_multiplier_exp(v)
        data = multiply_by_quantized_multiplier(1, m, s + K_SHIFT)
        out[i] = multiply_by_quantized_multiplier(data, multiplier, shift - K_SHIFT) + zp_out
    return np.clip(out, -128, 127).astype(np.int8)


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    return [rsqrt_table(op)[inputs[0].astype(np.int64) + 128]]


OPDEF = register(OpDef(RSQRT, None, int8_unary_shapes, no_macs, same_region, evaluate,
                        traits={Trait.ELEMENTWISE, Trait.POSITIONAL, Trait.PATCHABLE}))
