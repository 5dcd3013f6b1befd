"""HARD_SWISH, x * relu6(x + 3) / 6, int8 in, int8 out, with TFLite Micro's int16
fixed-point algorithm.

TFLM's int8 HARD_SWISH (hard_swish_common.cc HardSwishPrepare, reference/hard_swish.h):
- Prepare, in float32 as the C does: hires_input_scale = input_scale / 128; the output
  multiplier hires_input_scale / output_scale and the "reluish" multiplier
  hires_input_scale / (3 / 32768) are quantized (QuantizeMultiplier) and rounded down to
  Q15 (DownScaleInt32ToInt16Multiplier). The output exponent must be <= 0.
- Eval, per element, all in int16: v = (x - zp) * 128; the output-scale value is
  SQRDMULH16(v, output_multiplier); the reluish value is v rescaled to [-1, 1] for x in
  [-3, 3] (a saturating left shift by exponent - 1, SQRDMULH16, a last saturating shift
  by 1, or a rounding right shift) and then mapped to [0, 1] by (r + 2^15) >> 1; the
  product of the two uses the truncating SQDMULH16; a rounding right shift by the output
  exponent, the output zero point (added in int16), and a clamp to int8 finish it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fixedpoint import quantize_multiplier
from ..fixedpoint_exp import (
    down_scale_int32_to_int16_multiplier,
    rounding_divide_by_pot_int16,
    saturating_doubling_high_mul_int16,
    saturating_left_shift_int16,
    saturating_rounding_doubling_high_mul_int16,
    wrap_int16,
)
from ..op import Op
from . import OpDef, Trait, register
from .common import no_macs, require, require_int8_per_tensor_unary, same_region
from .kinds import HARD_SWISH


@dataclass(frozen=True)
class HardSwishParams:
    """The integer constants of one int8 HARD_SWISH, as TFLM's Prepare computes them;
    backends emit these, the interpreter uses them."""

    input_zero_point: int
    output_zero_point: int
    output_multiplier_fixedpoint_int16: int
    output_multiplier_exponent: int
    reluish_multiplier_fixedpoint_int16: int
    reluish_multiplier_exponent: int


def hard_swish_params(op: Op) -> HardSwishParams:
    # float32 arithmetic, exactly as HardSwishPrepare, then widened to double.
    input_scale = np.float32(op.input.quant.scalar_scale)
    output_scale = np.float32(op.output.quant.scalar_scale)
    hires_input_scale = np.float32(np.float32(1.0 / 128.0) * input_scale)
    reluish_scale = np.float32(np.float32(3.0) / np.float32(32768.0))
    output_multiplier, output_exponent = quantize_multiplier(float(np.float32(hires_input_scale / output_scale)))
    reluish_multiplier, reluish_exponent = quantize_multiplier(float(np.float32(hires_input_scale / reluish_scale)))
    require(output_exponent <= 0, op,
            f"input scale {float(input_scale):g} / output scale {float(output_scale):g} is too large: "
            f"TFLite's int8 hard swish needs input_scale / (128 * output_scale) < 1")
    # The kernel computes 1 << (exponent - 1) in int: undefined past 31.
    require(reluish_exponent <= 31, op,
            f"input scale {float(input_scale):g} is too large for TFLite's int8 hard swish")
    return HardSwishParams(
        op.input.quant.scalar_zero_point, op.output.quant.scalar_zero_point,
        down_scale_int32_to_int16_multiplier(output_multiplier), output_exponent,
        down_scale_int32_to_int16_multiplier(reluish_multiplier), reluish_exponent)


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    require(len(op.inputs) == 1 and op.inputs[0] is not None and len(op.outputs) == 1, op,
            "takes exactly one input and one output")
    require_int8_per_tensor_unary(op)
    hard_swish_params(op)
    return [op.input.shape]


def reluish_value(hires: np.ndarray, p: HardSwishParams) -> np.ndarray:
    """The input rescaled so that [-3, 3] maps onto int16 [-32768, 32767], saturating,
    then to [0, 1] in Q0.15. A left shift saturates early by exponent - 1 bits and the last
    bit after the multiply, so saturation in the first shift never shows in the result."""
    r = hires
    exponent = p.reluish_multiplier_exponent
    if exponent > 0:
        r = saturating_left_shift_int16(r, exponent - 1)
    r = saturating_rounding_doubling_high_mul_int16(r, p.reluish_multiplier_fixedpoint_int16)
    if exponent > 0:
        r = saturating_left_shift_int16(r, 1)
    if exponent < 0:
        r = rounding_divide_by_pot_int16(r, -exponent)
    return (r + (1 << 15)) >> 1


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    p = hard_swish_params(op)
    # (x - zp) fits int16 and so does (x - zp) * 128: |x - zp| <= 255.
    hires = (inputs[0].astype(np.int64) - p.input_zero_point) * (1 << 7)
    preshift_output_scale = saturating_rounding_doubling_high_mul_int16(hires, p.output_multiplier_fixedpoint_int16)
    preshift_output = saturating_doubling_high_mul_int16(reluish_value(hires, p), preshift_output_scale)
    y = rounding_divide_by_pot_int16(preshift_output, -p.output_multiplier_exponent)
    y = wrap_int16(y + p.output_zero_point)  # `output_value += zero_point` on an int16_t
    return [np.clip(y, -128, 127).astype(np.int8)]


OPDEF = register(OpDef(HARD_SWISH, None, infer_shapes, no_macs, same_region, evaluate,
                        traits={Trait.ELEMENTWISE, Trait.POSITIONAL, Trait.PATCHABLE}))
