"""SOFTMAX with int16 input and output, as tflite-micro computes it (softmax_common.cc
InitializeLutForInt16 / CalculateSoftmaxParams, reference/softmax.h SoftmaxInt16,
kernels/internal/common.h LUTPopulate and LUTLookup), stated once for every backend.

- Prepare: two fixed 513-entry int16 tables, the same for every model: exp(x) sampled
  on [-10, 0] and 1 / (1 + x) on [0, 1], each by LUTPopulateInt16 in float32 (512 steps,
  every sample corrected by half the rounding error of the linear interpolation at its
  midpoint, see `lut`). tflite-micro fills them with the host's std::exp(float); mcuc
  with the correctly rounded float32 exp (computed in double, then rounded once), which
  equals glibc's expf at every sample (tests/ir/test_softmax_int16.py holds the outputs
  to tflite-micro's over every difference). An input multiplier and shift quantize
  input_scale * beta / (10 / 65535): a difference of -65535 scaled that way is -10.
- Eval, per row: d = x - row max; scaled = MultiplyByQuantizedMultiplier(d); the exp is
  LUTLookup(clamp(scaled + 32767)) of the exp table (Q0.15); the sum of exps (int32, Q16.15)
  is normalized by its leading zeros, recentered and looked up in the 1/(1 + x) table;
  each output is (exp * reciprocal + round) >> (31 - leading zeros), clamped to
  [0, 32767].
- Quantization: input and output zero points 0, output scale 1/32768 (within 0.1%).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
import math

import numpy as np

from ..fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier, round_half_away
from ..fixedpoint_exp import count_leading_zeros_uint32
from ..op import Op
from .common import require

LUT_SIZE = 513
_INT16_RANGE = 65535  # int16 max - int16 min, as the Prepare computes `range`


def _round(x: np.ndarray) -> np.ndarray:
    """TfLiteRound (std::round) of float32 values: ties away from zero, in double (where
    adding 1/2 to a float32 is exact)."""
    return round_half_away(np.asarray(x, np.float64))


def lut(transform, input_scale: np.float32, input_zero_point: int, output_scale: np.float32,
        output_zero_point: int) -> tuple[int, ...]:
    """LUTPopulateInt16<float>: every step of the C++ in float32 (numpy's float32 scalar
    arithmetic rounds each operation as the compiled code does, without fused
    multiply-adds); `transform` maps a float32 array to float32."""
    f = np.float32
    input_min = f(input_scale * f(-32768 - input_zero_point))
    input_max = f(input_scale * f(32767 - input_zero_point))
    output_min = f(output_scale * f(-32768 - output_zero_point))
    output_max = f(output_scale * f(32767 - output_zero_point))
    steps = 512
    step = f(f(input_max - input_min) / f(steps))
    half_step = f(step / f(2))
    inverse = f(f(65536) / f(output_max - output_min))
    i = np.arange(steps, dtype=np.float32)
    at = (input_min + i * step).astype(np.float32)
    value = transform(at)
    midpoint = transform((at + half_step).astype(np.float32))
    following = transform((input_min + (i + f(1)) * step).astype(np.float32))
    sample = _round(value * inverse)
    interpolated = _round((following * inverse + sample.astype(np.float32)).astype(np.float32) / f(2))
    err = interpolated - _round(midpoint * inverse)
    bias = _round((err / 2).astype(np.float32))
    table = np.clip(sample - bias, -32768, 32767)
    last = np.clip(_round(transform(np.array([input_max], np.float32)) * inverse), -32768, 32767)
    return tuple(int(v) for v in np.concatenate([table, last]))


def _exp_f32(x: np.ndarray) -> np.ndarray:
    """exp of float32 values, correctly rounded to float32 (double, then one rounding):
    the same on every host, unlike a libm's expf."""
    return np.array([math.exp(float(v)) for v in x], np.float64).astype(np.float32)


def _one_over_one_plus_x(x: np.ndarray) -> np.ndarray:
    f = np.float32
    return (f(1) / (f(1) + x.astype(np.float32))).astype(np.float32)


@lru_cache(maxsize=1)
def exp_lut() -> tuple[int, ...]:
    """exp on [-10, 0]: LUTPopulate(10 / range, 32767, 2 / range, 0, exp)."""
    f = np.float32
    return lut(_exp_f32, f(f(10.0) / f(_INT16_RANGE)), 32767, f(f(2.0) / f(_INT16_RANGE)), 0)


@lru_cache(maxsize=1)
def one_over_one_plus_x_lut() -> tuple[int, ...]:
    """1 / (1 + x) on [0, 1]: LUTPopulate(1 / range, -32768, 2 / range, 0, ...)."""
    f = np.float32
    return lut(_one_over_one_plus_x, f(f(1.0) / f(_INT16_RANGE)), -32768, f(f(2.0) / f(_INT16_RANGE)), 0)


def lut_lookup(value: np.ndarray, table: tuple[int, ...]) -> np.ndarray:
    """LUTLookup(int16, lut): the high 9 bits index, the low 7 interpolate (int16 slope)."""
    t = np.asarray(table, np.int64)
    value = np.asarray(value, np.int64)
    index = 256 + (value >> 7)
    offset = value & 0x7F
    base = t[index]
    slope = ((t[index + 1] - base + 32768) & 0xFFFF) - 32768  # stored in an int16_t
    delta = (slope * offset + 64) >> 7
    return ((base + delta + 32768) & 0xFFFF) - 32768


@dataclass(frozen=True)
class Int16SoftmaxParams:
    input_multiplier: int
    input_shift: int  # TFLite's shift: positive scales up


def int16_params(op: Op) -> Int16SoftmaxParams:
    """CalculateSoftmaxParams for int16: the zero points and output scale checked, the
    multiplier of input_scale * beta / (10 / 65535) (both widened from float32)."""
    x, y = op.input, op.output
    require(x.quant.scalar_zero_point == 0, op,
            f"int16 input zero point {x.quant.scalar_zero_point}: tflite-micro's int16 SOFTMAX needs 0")
    target = np.float32(1.0 / 32768)
    require(y.quant.scalar_zero_point == 0 and abs(np.float32(y.quant.scalar_scale) - target)
            <= np.float32(0.001) * target, op,
            f"int16 output quantization must be scale 1/32768, zero point 0 (tflite-micro's), got scale "
            f"{float(y.quant.scalar_scale):g}, zero point {y.quant.scalar_zero_point}")
    require(x.shape[-1] <= 65536, op, f"rows of {x.shape[-1]} values: the int32 sum of exps of tflite-micro's "
            "int16 SOFTMAX holds at most 65536")
    real = float(np.float32(x.quant.scalar_scale)) * float(np.float32(op.attrs.beta)) / (10.0 / 65535.0)
    multiplier, shift = quantize_multiplier(real)
    return Int16SoftmaxParams(multiplier, shift)


def evaluate_int16(op: Op, x: np.ndarray) -> np.ndarray:
    p = int16_params(op)
    x = np.asarray(x, np.int64)
    diff = x - x.max(axis=-1, keepdims=True)
    scaled = multiply_by_quantized_multiplier(diff, p.input_multiplier, p.input_shift)
    exps = lut_lookup(np.clip(scaled + 32767, -32768, 32767), exp_lut())
    total = exps.sum(axis=-1, keepdims=True)  # int32 in C: at most 65536 * 32767
    headroom_plus_one = count_leading_zeros_uint32(total)
    shifted = ((total << (headroom_plus_one - 1)) + (1 << 13)) >> 14
    reciprocal = lut_lookup(np.clip(shifted - ((1 << 15) + (1 << 16)), -32768, 32767), one_over_one_plus_x_lut())
    right_shift = 31 - headroom_plus_one
    y = (exps * reciprocal + (np.int64(1) << (right_shift - 1))) >> right_shift
    return np.clip(y, 0, 32767).astype(np.int16)
