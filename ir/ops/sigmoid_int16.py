"""LOGISTIC and TANH with int16 input and output, as tflite-micro computes them
(logistic_common.cc / tanh.cc Prepare for int16, reference/integer_ops/logistic.h and
tanh.h), stated once for every backend.

- The table: tflite-micro interpolates one fixed 256-entry uint16 table of sigmoid(i/24)
  in Q0.16 (kernels/internal/common.h sigmoid_table_uint16, tanh(x) = 2 sigmoid(2x) - 1).
  Its entries are not roundings of sigmoid(i/24) (44 of them differ from those) but the
  samples corrected by half the error of linear interpolation at each interval's
  midpoint: round(65536 (s_i - ((s_i + s_(i+1)) / 2 - s_(i+1/2)) / 2)) with
  s_x = sigmoid(x/24), ties away from zero (the nearest tie is 0.004 away, so double
  arithmetic on any host gives the same table), and the last entry the uint16 maximum
  65535 (sigmoid at the end of the range, saturated). mcuc derives the table this way
  (`sigmoid_table`); tests/ir/test_sigmoid_int16.py holds every int16 input at several
  scales to tflite-micro's outputs.
- Prepare: zero points 0; the output scale a power of two 2^-15 (CheckedLog2); an input
  scale of 2^-12 (LOGISTIC) or 2^-12 / 2^-11 (TANH) takes the multiplier 3 << shift and
  no shift, any other scale the multiplier trunc(scale * 4096 * 3 * 2^k) with the
  smallest k (<= 31) that brings it above 32767 / 2.
- Eval, per element: v = (x * multiplier + round) >> shift; |v| indexes the table by its
  high bits (>> 9 for LOGISTIC, >> 8 for TANH) and interpolates with the low ones; the
  sign folds the result around 1/2 (LOGISTIC) or 0 (TANH), rounded back to Q0.15.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
import math

import numpy as np

from ..fixedpoint_exp import std_round
from ..op import Op
from .common import require
from .kinds import LOGISTIC

OUTPUT_LOG2 = -15  # the output scale tflite-micro requires: 2^-15


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


@lru_cache(maxsize=1)
def sigmoid_table() -> tuple[int, ...]:
    """tflite-micro's sigmoid_table_uint16, derived (see the module docstring)."""
    table = []
    for i in range(255):
        s, following, midpoint = _sigmoid(i / 24), _sigmoid((i + 1) / 24), _sigmoid((i + 0.5) / 24)
        corrected = 65536 * (s - ((s + following) / 2 - midpoint) / 2)
        table.append(std_round(corrected))
    return tuple(table + [65535])


def checked_log2(x: float) -> tuple[bool, int]:
    """CheckedLog2(float): log2 rounded (ties away from zero), and whether it is within
    1e-3 of an integer (float32 steps as the C++; the libm log's last bit never moves a
    scale across that tolerance in practice)."""
    f = np.float32
    log2 = f(f(math.log(float(f(x)))) * f(f(1.0) / f(math.log(2.0))))
    rounded = std_round(float(log2))
    return abs(float(f(log2 - f(rounded)))) < 1e-3, rounded


@dataclass(frozen=True)
class Sigmoid16Params:
    """The kernel's (multiplier, shift) after its power-of-two substitution."""

    multiplier: int
    shift: int


def sigmoid16_params(op: Op) -> Sigmoid16Params:
    x, y = op.input, op.output
    require(x.quant.scalar_zero_point == 0 and y.quant.scalar_zero_point == 0, op,
            f"int16 {op.kind} needs zero points 0 (tflite-micro's Prepare), got input {x.quant.scalar_zero_point} "
            f"and output {y.quant.scalar_zero_point}")
    pot, log2 = checked_log2(float(y.quant.scalar_scale))
    require(pot and log2 == OUTPUT_LOG2, op,
            f"int16 {op.kind} needs the output scale 2^-15 (tflite-micro's Prepare), got {float(y.quant.scalar_scale):g}")
    pot, log2 = checked_log2(float(x.quant.scalar_scale))
    shift = 12 + log2
    if pot and shift in ((0,) if op.kind == LOGISTIC else (0, 1)):
        return Sigmoid16Params(3 << shift, 0)
    multiplier, shift = float(np.float32(x.quant.scalar_scale)) * 4096.0 * 3.0, 0
    while multiplier <= 32767.0 / 2.0 and shift <= 30:
        shift += 1
        multiplier *= 2.0
    require(multiplier <= 32767, op,
            f"input scale {float(x.quant.scalar_scale):g} is above what tflite-micro's int16 {op.kind} takes "
            "(its multiplier must stay within 32767): requantize the input")
    return Sigmoid16Params(int(multiplier), shift)


def evaluate_int16(op: Op, x: np.ndarray) -> np.ndarray:
    p = sigmoid16_params(op)
    return sigmoid16(x, p.multiplier, p.shift, tanh=op.kind != LOGISTIC)


def sigmoid16(x: np.ndarray, multiplier: int, shift: int, tanh: bool) -> np.ndarray:
    """reference_integer_ops::Logistic / Tanh of int16 `x` with the kernel's (multiplier,
    shift) after its power-of-two substitution (also the LSTM's gate activations)."""
    table = np.asarray(sigmoid_table(), np.int64)
    rounding = (1 << (shift - 1)) if shift > 0 else 0
    v = (np.asarray(x, np.int64) * multiplier + rounding) >> shift
    magnitude = np.abs(v)
    bits = 8 if tanh else 9
    high = np.minimum(magnitude >> bits, 254)
    low = magnitude & ((1 << bits) - 1)
    interpolated = (table[high] << bits) + low * (table[high + 1] - table[high])
    if not tanh:
        r = np.where(magnitude >> 9 >= 255, 0x7FFF << 10, interpolated)
        r = np.where(v >= 0, r + (1 << 9), (1 << 25) - r + (1 << 9) - 1) >> 10
    else:
        r = np.where(magnitude >> 8 >= 255, 0xFFFF << 8, interpolated)
        r = np.where(v >= 0, r - (1 << 23) + (1 << 7), -r + (1 << 23) + (1 << 7) - 1) >> 8
    return r.astype(np.int16)
