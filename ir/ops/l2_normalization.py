"""L2_NORMALIZATION over the last axis, int8 in and out (TFLM's l2norm.cc,
reference_integer_ops::L2Normalization).

Per row: acc = sum of (x - in_zp)^2 (int32); (inv, shift) =
GetInvSqrtQuantizedMultiplierExp(acc, kReverseShift = -1) (common.h: 1/sqrt(acc) by five
Newton-Raphson steps in Q3.28 on acc normalised to [2^27, 2^29), times sqrt(2)/2; acc <= 1
gives (INT32_MAX, 0)); each output is clamp(MultiplyByQuantizedMultiplier(x - in_zp, inv,
shift + 7), -128, 127): q/128 in [-1, 127/128].

tflite-micro checks neither the input scale nor the output quantization (the kernel writes
q whatever the output's scale and zero point say; the converter writes scale 1/128, zero
point 0), so mcuc computes the same bytes under any; it requires int8 in and out, rank
<= 4 and no fused activation, as Prepare does, and refuses rows whose sum of squares could
leave int32 (more than 33025 elements). Rows run along the last axis, which patch regions
never split: the op is POSITIONAL and may run inside patch stages (like SOFTMAX).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fixedpoint import (
    INT32_MAX,
    multiply_by_quantized_multiplier,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul as srdhm,
)
from ..fixedpoint_exp import count_leading_zeros_uint32, saturating_rounding_multiply_by_pot, wrap_int32
from ..op import Op
from ..region import Region
from . import OpDef, Trait, register
from .common import int8_unary_shapes, no_macs, require
from .kinds import L2_NORMALIZATION

OUTPUT_SCALE_SHIFT = 7
HALF_THREE_Q3 = (1 << 28) + (1 << 27)
HALF_SQRT_2 = 1518500250
MAX_DEPTH = (2**31 - 1) // (255 * 255)


@dataclass(frozen=True)
class L2NormAttrs:
    pass


def inv_sqrt(acc) -> tuple[np.ndarray, np.ndarray]:
    """GetInvSqrtQuantizedMultiplierExp(acc, -1) on int32 arrays: (multiplier, shift) with
    the shift already in MultiplyByQuantizedMultiplier's sense (<= 0)."""
    acc = np.asarray(acc, np.int64)
    small = acc <= 1
    x_in = np.where(small, 1 << 28, acc)
    bits = 32 - count_leading_zeros_uint32(x_in)
    k = np.maximum(0, (bits - 29 + 1) // 2)
    x_in = x_in >> (2 * k)
    shift = 11 + k
    pairs = (count_leading_zeros_uint32(x_in) - 1) // 2 - 1
    shift = shift - pairs
    x_in = x_in << (2 * pairs)
    half_input = rounding_divide_by_pot(x_in >> 1, 1)
    x = np.full_like(x_in, 1 << 28)
    for _ in range(5):
        x3 = saturating_rounding_multiply_by_pot(srdhm(srdhm(x, x), x), 6)
        x = saturating_rounding_multiply_by_pot(wrap_int32(srdhm(HALF_THREE_Q3, x) - srdhm(half_input, x3)), 3)
    result = srdhm(x, HALF_SQRT_2)
    result = np.where(shift < 0, wrap_int32(result << np.maximum(-shift, 0)), result)
    shift = np.maximum(shift, 0)
    return np.where(small, INT32_MAX, result), np.where(small, 0, -shift)


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    shapes = int8_unary_shapes(op)
    require(not op.input.is_constant, op, f"input {op.input.name!r} is a constant; mcuc compiles ops on computed "
                                          "values")
    x = op.input
    require(1 <= len(x.shape) <= 4, op, f"input rank {len(x.shape)}: tflite-micro takes ranks 1 to 4")
    require(x.shape[-1] <= MAX_DEPTH, op, f"rows of {x.shape[-1]} elements: the sum of squares could leave int32 "
                                          f"(at most {MAX_DEPTH})")
    return shapes


def channel_rows(op: Op, out: Region) -> list[Region | None]:
    return [Region(out.start[:-1] + (0,), out.stop[:-1] + (op.input.shape[-1],))]


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    x = np.asarray(inputs[0], np.int64) - op.input.quant.scalar_zero_point
    rows = x.reshape(-1, x.shape[-1])
    acc = np.sum(rows * rows, axis=1, keepdims=True)
    mult, shift = inv_sqrt(acc)
    y = multiply_by_quantized_multiplier(rows, mult, shift + OUTPUT_SCALE_SHIFT)
    return [np.clip(y, -128, 127).astype(np.int8).reshape(op.output.shape)]


OPDEF = register(OpDef(L2_NORMALIZATION, L2NormAttrs, infer_shapes, no_macs, channel_rows, evaluate,
                       traits={Trait.POSITIONAL, Trait.PATCHABLE}))
