"""QUANTIZE: float32 -> int8/int16 (affine quantization), or a requantization between
integer types (int8 -> int8, int16 -> int8, ...), as TFLite Micro's quantize kernels do.

float32 input (reference/quantize.h AffineQuantize): q = (int32)round(x / scale) + zp,
with the division in float32 (the scale is the output's float32 scale), round half away
from zero, then a clamp to the output type.

Integer input (reference/requantize.h): q = MultiplyByQuantizedMultiplier(x - in_zp,
M, shift) + out_zp, clamped, where M, shift = QuantizeMultiplier(double(in_scale) /
double(out_scale)). The one byte trick TFLM has (int8 <-> uint8 at equal scale, zero
points 128 apart: flip the top bit) gives the same bytes as the arithmetic path.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fixedpoint import INT32_MIN, multiply_by_quantized_multiplier, quantize_multiplier, round_half_away
from ..op import Op
from ..numerics import ONNXRUNTIME, TFLITE_Q31, Numerics, rule_of
from ..ort_numerics import quantize_linear
from ..region import Region
from . import OpDef, Trait, register
from .common import dtype_range, require
from .kinds import QUANTIZE

# (input dtype, output dtype) pairs TFLM's QUANTIZE evaluates.
SUPPORTED = {
    ("float32", "int8"), ("float32", "int16"),
    ("int8", "int8"), ("int8", "uint8"), ("int8", "int16"), ("int8", "int32"),
    ("uint8", "int8"),
    ("int16", "int8"), ("int16", "int16"), ("int16", "int32"),
    ("int32", "int8"), ("int32", "int16"),
}


@dataclass(frozen=True)
class QuantizeAttrs:
    """QUANTIZE's one attribute. TFLite models leave attrs None (the TFLite rule)."""

    # TFLiteQ31 (float32 division, round half away from zero) or OrtInteger
    # (QuantizeLinear: float32 division, clamp, round half to even); float input only.
    numerics: Numerics = TFLITE_Q31


@dataclass(frozen=True)
class RequantizeParams:
    """Integer constants of an integer-to-integer QUANTIZE (what backends emit)."""

    input_zero_point: int
    output_zero_point: int
    multiplier: int
    shift: int


def requantize_params(op: Op) -> RequantizeParams:
    x, y = op.input, op.output
    in_scale, out_scale = float(np.float64(x.quant.scale[0])), float(np.float64(y.quant.scale[0]))
    multiplier, shift = quantize_multiplier(in_scale / out_scale)
    return RequantizeParams(x.quant.scalar_zero_point, y.quant.scalar_zero_point, multiplier, shift)


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    require(len(op.inputs) == 1 and op.input is not None, op, "takes exactly one input")
    x, y = op.input, op.output
    require((x.dtype, y.dtype) in SUPPORTED, op,
            f"{x.dtype} -> {y.dtype} is not supported (TFLite Micro runs: "
            f"{', '.join(f'{a}->{b}' for a, b in sorted(SUPPORTED))})")
    require(y.quant is not None and not y.quant.per_channel, op,
            f"output {y.name!r} must have per-tensor quantization")
    require(float(y.quant.scale[0]) > 0.0, op, f"output {y.name!r} has a non-positive scale")
    if x.dtype != "float32":
        require(x.quant is not None and not x.quant.per_channel, op,
                f"input {x.name!r} must have per-tensor quantization")
        require(float(x.quant.scale[0]) > 0.0, op, f"input {x.name!r} has a non-positive scale")
    return [x.shape]


def macs(op: Op) -> int:
    return 0


def identity_regions(op: Op, out: Region) -> list[Region | None]:
    return [None if op.input.is_constant else out]


def _float_to_int32(q: np.ndarray) -> np.ndarray:
    """C's (int32_t) of a rounded float as the oracle's x86-64 build executes it:
    values outside the int32 range and NaN become INT32_MIN (cvttss2si)."""
    out = np.full(q.shape, INT32_MIN, np.int64)
    inside = np.isfinite(q) & (q >= -2.0**31) & (q < 2.0**31)
    out[inside] = q[inside].astype(np.int64)
    return out


def _wrap_int32(x: np.ndarray) -> np.ndarray:
    return ((x + 2**31) & 0xFFFFFFFF) - 2**31


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    x_t, y_t = op.input, op.output
    lo, hi = dtype_range(y_t.dtype)
    if x_t.dtype == "float32" and rule_of(op.attrs) == ONNXRUNTIME:
        y = quantize_linear(inputs[0], y_t.quant.scale[0], y_t.quant.scalar_zero_point, lo, hi)
    elif x_t.dtype == "float32":
        # float32 division, as the kernel divides a float by static_cast<float>(scale);
        # rounding a float32 value in float64 is exact, so round_half_away == roundf.
        quotient = np.asarray(inputs[0], np.float32) / np.float32(y_t.quant.scale[0])
        q = _float_to_int32(round_half_away(quotient.astype(np.float64)))
        y = _wrap_int32(q + y_t.quant.scalar_zero_point)
    else:
        p = requantize_params(op)
        y = multiply_by_quantized_multiplier(inputs[0].astype(np.int64) - p.input_zero_point,
                                             p.multiplier, p.shift) + p.output_zero_point
    return [np.clip(y, lo, hi).astype(y_t.dtype)]


OPDEF = register(OpDef(QUANTIZE, QuantizeAttrs, infer_shapes, macs, identity_regions, evaluate,
                        traits={Trait.ELEMENTWISE, Trait.POSITIONAL, Trait.PATCHABLE}))
