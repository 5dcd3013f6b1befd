"""BATCH_MATMUL of int8 or int16 tensors (TFLM's batch_matmul.cc, reference BatchMatMul
with FullyConnectedParams).

    lhs [..., M, K] (adj_x: [..., K, M]),  rhs [..., K, N] (adj_y: [..., N, K])
    acc[b, i, j] = sum_k (lhs[b, i, k] - lhs_zp) * (rhs[b, k, j] - rhs_zp)      (int32)
    y[b, i, j]   = clamp(MultiplyByQuantizedMultiplier(acc, M, s) + out_zp, -128, 127)

int16 (all three int16, every zero point 0, as Prepare requires) sums in int64 and
scales with the int64 MultiplyByQuantizedMultiplier (double-rounding build: the
multiplier reduced to 15 bits, (acc * m15 + 2^(14 - shift)) >> (15 - shift), truncated to
int32; `multiply_int64`), clamped to int16. Either operand may be computed or constant.
Ranks 2..5; the batch dimensions (all but the last two, ranks aligned at the back)
broadcast where one side has 1, as Prepare checks. (M, s) = QuantizeMultiplier(double(lhs_scale) * double(rhs_scale) /
double(out_scale)): the pinned tflite-micro multiplies the scales in double, although
the GetQuantizedConvolutionMultipler source we read multiplies them in float32 before
widening (tests/ir/test_ops_matmul.py keeps scales whose bytes tell the two apart, as
tests/ir/test_ops_reduce.py does for FULLY_CONNECTED). TFLM transposes
operands into scratch and may fold a batch dimension into the rows
(ReshapeToFlattenBatchDimsIfPossible); the sums are exact integers, so neither changes a
value. mcuc refuses what Prepare refuses (types, ranks, broadcasting, depths) and, like
the convolutions, per-channel quantization, a scale ratio of 2^30 or more and depths
whose sum could leave int32.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier, wrap_int32
from ..op import Op
from ..region import Region
from . import OpDef, register
from .common import require
from .kinds import BATCH_MATMUL


@dataclass(frozen=True)
class BatchMatMulAttrs:
    adj_x: bool = False
    adj_y: bool = False


@dataclass(frozen=True)
class MatMulGeometry:
    """Element strides of one BATCH_MATMUL, batch axes of the output first.

    batch: the output's batch extents; lhs_batch / rhs_batch: each operand's element
    stride along them (0 where it broadcasts). rows (M), cols (N), depth (K); lhs element
    (i, k) sits at lhs_row * i + lhs_depth * k of its matrix, rhs element (k, j) at
    rhs_depth * k + rhs_col * j."""

    batch: tuple[int, ...]
    lhs_batch: tuple[int, ...]
    rhs_batch: tuple[int, ...]
    rows: int
    cols: int
    depth: int
    lhs_row: int
    lhs_depth: int
    rhs_depth: int
    rhs_col: int


@dataclass(frozen=True)
class MatMulQuant:
    lhs_zero_point: int
    rhs_zero_point: int
    multiplier: int
    shift: int
    output_zero_point: int


def _strides(shape: tuple[int, ...]) -> list[int]:
    out, step = [0] * len(shape), 1
    for i in range(len(shape) - 1, -1, -1):
        out[i] = step
        step *= shape[i]
    return out


def geometry(op: Op) -> MatMulGeometry:
    lhs, rhs = op.inputs[0], op.inputs[1]
    a: BatchMatMulAttrs = op.attrs
    for what, t in (("lhs", lhs), ("rhs", rhs)):
        require(2 <= len(t.shape) <= 5, op,
                f"{what} {t.name!r} has rank {len(t.shape)}; tflite-micro takes ranks 2 to 5")
    rank = max(len(lhs.shape), len(rhs.shape))
    ls = (1,) * (rank - len(lhs.shape)) + tuple(lhs.shape)
    rs = (1,) * (rank - len(rhs.shape)) + tuple(rhs.shape)
    lst, rst = _strides(ls), _strides(rs)
    batch = []
    for i in range(rank - 2):
        require(ls[i] == rs[i] or ls[i] == 1 or rs[i] == 1, op,
                f"batch dimension {i} of lhs {lhs.shape} and rhs {rhs.shape} ({ls[i]} vs {rs[i]}) does not broadcast")
        batch.append(max(ls[i], rs[i]) if min(ls[i], rs[i]) != 0 else 0)
    lhs_batch = tuple(lst[i] if ls[i] != 1 else 0 for i in range(rank - 2))
    rhs_batch = tuple(rst[i] if rs[i] != 1 else 0 for i in range(rank - 2))
    m, k_l = (ls[-1], ls[-2]) if a.adj_x else (ls[-2], ls[-1])
    k_r, n = (rs[-1], rs[-2]) if a.adj_y else (rs[-2], rs[-1])
    require(k_l == k_r, op, f"the depth of lhs {lhs.shape} (adj_x={a.adj_x}) is {k_l} but the depth of rhs "
                            f"{rhs.shape} (adj_y={a.adj_y}) is {k_r}")
    lhs_row, lhs_depth = (1, ls[-1]) if a.adj_x else (ls[-1], 1)
    rhs_depth, rhs_col = (1, rs[-1]) if a.adj_y else (rs[-1], 1)
    return MatMulGeometry(tuple(batch), lhs_batch, rhs_batch, m, n, k_l, lhs_row, lhs_depth, rhs_depth, rhs_col)


def quant(op: Op) -> MatMulQuant:
    lhs, rhs, y = op.inputs[0], op.inputs[1], op.output
    for what, t in (("lhs", lhs), ("rhs", rhs), ("output", y)):
        require(t.quant is not None and not t.quant.per_channel, op,
                f"{what} {t.name!r} must be quantized per tensor")
    real = float(np.float64(lhs.quant.scale[0])) * float(np.float64(rhs.quant.scale[0])) / float(
        np.float64(y.quant.scale[0]))
    require(np.isfinite(real) and 0.0 < real < 2.0**30, op,
            f"lhs scale x rhs scale / output scale = {real:g} is outside (0, 2^30): the quantization scales are "
            "inconsistent")
    multiplier, shift = quantize_multiplier(real)
    return MatMulQuant(lhs.quant.scalar_zero_point, rhs.quant.scalar_zero_point, multiplier, shift,
                       y.quant.scalar_zero_point)


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    require(len(op.inputs) == 2 and all(t is not None for t in op.inputs) and len(op.outputs) == 1, op,
            "takes two inputs (lhs, rhs) and one output")
    lhs, rhs, y = op.inputs[0], op.inputs[1], op.output
    require(lhs.dtype == rhs.dtype == y.dtype and y.dtype in ("int8", "int16"), op,
            f"lhs {lhs.dtype}, rhs {rhs.dtype} and output {y.dtype}: BATCH_MATMUL takes int8 or int16, one type "
            "for all three (tflite-micro's rule)")
    g = geometry(op)
    if y.dtype == "int8":
        # |lhs - zp| and |rhs - zp| are at most 255: depth x 255^2 must stay in int32.
        require(g.depth * 255 * 255 < 2**31, op,
                f"depth {g.depth}: a sum of that many int8 products could leave int32 (at most "
                f"{(2**31 - 1) // 65025})")
    else:
        # the int64 stage assumes |acc| < 2^47 (2^30 per product)
        require(g.depth < 2**17, op, f"depth {g.depth}: a sum of that many int16 products could leave the int64 "
                                     "output stage's range (at most 131071)")
    q = quant(op)
    if y.dtype == "int16":
        require(q.lhs_zero_point == q.rhs_zero_point == q.output_zero_point == 0, op,
                f"int16 zero points {q.lhs_zero_point}, {q.rhs_zero_point}, {q.output_zero_point}: tflite-micro "
                "requires 0 for lhs, rhs and output")
        require(-31 <= q.shift <= 7, op, f"lhs scale x rhs scale / output scale gives the shift {q.shift}: the int64 "
                                         "output stage takes shifts -31 to 7 (a ratio below 128)")
    return [g.batch + (g.rows, g.cols)]


def macs(op: Op) -> int:
    g = geometry(op)
    return int(np.prod(g.batch, dtype=np.int64)) * g.rows * g.cols * g.depth


def full_inputs(op: Op, out: Region) -> list[Region | None]:
    return [None if t.is_constant else Region.full(t.shape) for t in op.inputs]


def reduced_multiplier(multiplier):
    """The 15-bit multiplier of the int64 MultiplyByQuantizedMultiplier (scalar or array)."""
    m = np.asarray(multiplier, np.int64)
    reduced = np.where(m < 0x7FFF0000, (m + (1 << 15)) >> 16, 0x7FFF)
    return int(reduced) if reduced.ndim == 0 else reduced


def multiply_int64(acc, multiplier, shift) -> np.ndarray:
    """TFLite's MultiplyByQuantizedMultiplier(int64_t x, ...) of the double-rounding build:
    (x * reduced + 2^(total - 1)) >> total with total = 15 - shift, truncated to int32
    (multiplier and shift scalars or per-channel arrays along the last axis)."""
    total = 15 - np.asarray(shift, np.int64)
    x = np.asarray(acc, np.int64) * reduced_multiplier(multiplier) + (np.int64(1) << (total - 1))
    return wrap_int32(x >> total)


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    a: BatchMatMulAttrs = op.attrs
    q = quant(op)
    lhs = np.asarray(inputs[0], np.int64) - q.lhs_zero_point
    rhs = np.asarray(inputs[1], np.int64) - q.rhs_zero_point
    if a.adj_x:
        lhs = np.swapaxes(lhs, -1, -2)
    if a.adj_y:
        rhs = np.swapaxes(rhs, -1, -2)
    acc = np.matmul(lhs, rhs)
    if op.output.dtype == "int16":
        y = multiply_int64(acc, q.multiplier, q.shift)
        return [np.clip(y, -32768, 32767).astype(np.int16).reshape(op.output.shape)]
    y = multiply_by_quantized_multiplier(acc, q.multiplier, q.shift) + q.output_zero_point
    return [np.clip(y, -128, 127).astype(np.int8).reshape(op.output.shape)]


OPDEF = register(OpDef(BATCH_MATMUL, BatchMatMulAttrs, infer_shapes, macs, full_inputs, evaluate))
