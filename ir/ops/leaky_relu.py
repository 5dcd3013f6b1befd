"""LEAKY_RELU, int8 or int16 in and out (any zero points), as TFLite Micro computes it
(kernels/leaky_relu_common.cc CalculateOpDataLeakyRelu, reference/leaky_relu.h
QuantizeLeakyRelu).

- Prepare, in float32 as the C does, widened to double for QuantizeMultiplier:
  alpha multiplier = in_scale * alpha / out_scale, identity multiplier =
  in_scale / out_scale (each a float32 product/quotient, left to right).
- Eval, per element: d = x - in_zp; d >= 0 gives out_zp + MBQM(d, identity), d < 0
  gives out_zp + MBQM(d, alpha) (MultiplyByQuantizedMultiplier, a negative alpha gives
  a negative Q31 multiplier); clamped to the type's range.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier
from ..op import Op
from . import OpDef, Trait, register
from .common import dtype_range, int8_unary_shapes, no_macs, require, same_region
from .kinds import LEAKY_RELU


@dataclass(frozen=True)
class LeakyReluAttrs:
    alpha: float = 0.2


@dataclass(frozen=True)
class LeakyReluParams:
    input_zero_point: int
    output_zero_point: int
    multiplier_alpha: int
    shift_alpha: int
    multiplier_identity: int
    shift_identity: int


def leaky_relu_params(op: Op) -> LeakyReluParams:
    s_in, s_out = np.float32(op.input.quant.scale[0]), np.float32(op.output.quant.scale[0])
    alpha = np.float32(op.attrs.alpha)
    with np.errstate(over="ignore", under="ignore"):
        alpha_real = np.float32(np.float32(s_in * alpha) / s_out)
        identity_real = np.float32(s_in / s_out)
    require(bool(np.isfinite(alpha_real)), op, f"alpha {float(alpha):g} times the scale ratio is not finite")
    m_a, s_a = quantize_multiplier(float(alpha_real))
    m_i, s_i = quantize_multiplier(float(identity_real))
    return LeakyReluParams(op.input.quant.scalar_zero_point, op.output.quant.scalar_zero_point, m_a, s_a, m_i, s_i)


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    require(isinstance(op.attrs, LeakyReluAttrs), op, "needs LeakyReluAttrs")
    require(bool(np.isfinite(np.float32(op.attrs.alpha))), op, f"alpha {op.attrs.alpha} must be finite")
    shapes = int8_unary_shapes(op, ("int8", "int16"))
    leaky_relu_params(op)
    return shapes


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    p = leaky_relu_params(op)
    d = inputs[0].astype(np.int64) - p.input_zero_point
    positive = multiply_by_quantized_multiplier(d, p.multiplier_identity, p.shift_identity)
    negative = multiply_by_quantized_multiplier(d, p.multiplier_alpha, p.shift_alpha)
    lo, hi = dtype_range(op.output.dtype)
    y = np.clip(p.output_zero_point + np.where(d >= 0, positive, negative), lo, hi)
    return [y.astype(op.output.dtype)]


OPDEF = register(OpDef(LEAKY_RELU, LeakyReluAttrs, infer_shapes, no_macs, same_region, evaluate,
                        traits={Trait.ELEMENTWISE, Trait.POSITIONAL, Trait.PATCHABLE}))
