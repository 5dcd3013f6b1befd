"""ELU, int8 in, int8 out, as TFLite Micro computes it (kernels/elu.cc): a 256-entry
table filled in float32 at Prepare (PopulateLookupTable), then looked up.

Per input value v, all in float32 as the C does:
  dequantized = in_scale * float(v - in_zp)
  transformed = dequantized < 0 ? expf(dequantized) - 1 : dequantized
  rescaled    = roundf(transformed * (1 / out_scale))      (ties away from zero)
  y = clamp(int32(rescaled + float(out_zp)), -128, 127)
expf is taken as the correctly rounded float32 exp (exp in double, rounded once to
float32; glibc's expf agrees on all but rare hard cases). The conversion to int32 of a
float beyond its range gives INT32_MIN, as x86-64 executes it (then clamped to -128).
"""
from __future__ import annotations

import numpy as np

from ..fixedpoint import round_half_away
from ..op import Op
from . import OpDef, Trait, register
from .common import int8_unary_shapes, no_macs, same_region
from .kinds import ELU


def elu_table(op: Op) -> np.ndarray:
    """TFLM's table: the int8 output for input values -128..127, in that order."""
    s_in, s_out = np.float32(op.input.quant.scale[0]), np.float32(op.output.quant.scale[0])
    zp_in, zp_out = op.input.quant.scalar_zero_point, op.output.quant.scalar_zero_point
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        inverse_scale = np.float32(np.float32(1.0) / s_out)
        values = np.arange(-128, 128, dtype=np.int64)
        dequantized = (s_in * (values - zp_in).astype(np.float32)).astype(np.float32)
        expm1 = (np.exp(dequantized.astype(np.float64)).astype(np.float32) - np.float32(1.0)).astype(np.float32)
        transformed = np.where(dequantized < np.float32(0.0), expm1, dequantized).astype(np.float32)
        # roundf is exact: round the float32 product in double, where x + 0.5 cannot round.
        rescaled = round_half_away((transformed * inverse_scale).astype(np.float32).astype(np.float64)).astype(np.float32)
        shifted = (rescaled + np.float32(zp_out)).astype(np.float32)
        inside = (shifted >= np.float32(-2.0**31)) & (shifted < np.float32(2.0**31))
        quantized = np.where(inside, np.where(inside, shifted, 0).astype(np.int64), -(2**31))
    return np.clip(quantized, -128, 127).astype(np.int8)


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    table = elu_table(op)
    return [table[inputs[0].astype(np.int64) + 128]]


OPDEF = register(OpDef(ELU, None, int8_unary_shapes, no_macs, same_region, evaluate,
                        traits={Trait.ELEMENTWISE, Trait.POSITIONAL, Trait.PATCHABLE}))
