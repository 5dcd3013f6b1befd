"""RESIZE_BILINEAR of int8 NHWC tensors (TFLM's resize_bilinear.cc,
reference_ops::ResizeBilinearInteger: no floating point).

Per axis (in -> out, with align_corners / half_pixel_centers):
    scale = (1024 * in + out / 2) / out, or with align_corners and out > 1
            (1024 * (in - 1) + (out - 1) / 2) / (out - 1)                  (C integer division)
    v     = o * scale, or with half_pixel_centers o * scale + scale / 2 - 512
    lo    = max(v / 1024, 0),  hi = min((v + 1023) / 1024, in - 1)     (division truncating toward 0)
    f     = v - 1024 * lo    (may be negative near the first row with half_pixel_centers)
and each output is the sum of the four corner values times (1024 - fy or fy) x (1024 - fx
or fx), rounded as (s + (s > 0 ? 2^19 : -2^19)) / 2^20 (truncating; the reference's build
without TFLITE_SINGLE_ROUNDING), cast to int8 (wrapping). The corner rows and columns and
the fractions are constants per output row and column (`axis_table`); the backends read
them from tables. tflite-micro checks no quantization (the bytes are interpolated as
stored), so neither does mcuc; it refuses align_corners with half_pixel_centers (as
Prepare does), a size input that is not the output's height and width, and geometry
whose corner row or column would lie outside the input (the reference would read beyond
it).

A patch stage runs the op on a region of its output reading the rows and columns its
corners span; the corners and fractions depend on the full sizes, so the region's op
carries its tables explicitly (`ResizeBilinearAttrs.table`, set by ir.patches.region_op,
corners relative to the input region) and every kernel reads them through `tables`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..op import Op
from ..region import Region
from . import OpDef, Trait, register
from .common import no_macs, require
from .kinds import RESIZE_BILINEAR
from .movement import require_same_dtype


@dataclass(frozen=True)
class ResizeBilinearAttrs:
    """`table`: (rows, columns), each a (lo, hi, f) triple per output row / column, given
    explicitly (an op on a region of a larger resize); None: from the sizes and flags."""

    size: tuple[int, int]
    align_corners: bool = False
    half_pixel_centers: bool = False
    table: tuple[tuple[tuple[int, int, int], ...], tuple[tuple[int, int, int], ...]] | None = None


def _div(a: int, b: int) -> int:
    """C's integer division (truncating toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def axis_table(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool) -> np.ndarray:
    """[out_size, 3] int64: (lo, hi, f) per output coordinate."""
    scale = _div(1024 * in_size + out_size // 2, out_size)
    if align_corners and out_size > 1:
        scale = _div(1024 * (in_size - 1) + (out_size - 1) // 2, out_size - 1)
    rows = []
    for o in range(out_size):
        v = o * scale + scale // 2 - (1 << 9) if half_pixel_centers else o * scale
        lo = max(_div(v, 1024), 0)
        hi = min(_div(v + 1023, 1024), in_size - 1)
        rows.append((lo, hi, v - 1024 * lo))
    return np.array(rows, np.int64).reshape(out_size, 3)


def tables(op: Op) -> tuple[np.ndarray, np.ndarray]:
    """([out_h, 3], [out_w, 3]) int64: (lo, hi, f) per output row and column."""
    a: ResizeBilinearAttrs = op.attrs
    if a.table is not None:
        return tuple(np.array(t, np.int64).reshape(len(t), 3) for t in a.table)
    x = op.input
    return (axis_table(x.shape[1], a.size[0], a.align_corners, a.half_pixel_centers),
            axis_table(x.shape[2], a.size[1], a.align_corners, a.half_pixel_centers))


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    require(len(op.inputs) == 1 and len(op.outputs) == 1, op, "takes one input (and a constant size) and one output")
    require_same_dtype(op, ("int8",))
    a: ResizeBilinearAttrs = op.attrs
    x = op.input
    require(len(x.shape) == 4, op, f"input {x.name!r} must be 4-D NHWC, got shape {x.shape}")
    require(not x.is_constant, op, f"input {x.name!r} is a constant; mcuc compiles ops on computed values")
    require(not (a.align_corners and a.half_pixel_centers), op,
            "align_corners and half_pixel_centers are both set; tflite-micro requires align_corners to be False "
            "when half_pixel_centers is True")
    require(min(a.size) >= 1 and min(x.shape[1:3]) >= 1, op, f"size {a.size} and input {x.shape} must be positive")
    require(max(a.size) * 1024 * max(x.shape[1:3]) < 2**31, op, f"size {a.size}: the fixed-point positions leave "
                                                                "int32")
    for axis, table, out_size in zip(("height", "width"), tables(op), a.size):
        size = x.shape[1] if axis == "height" else x.shape[2]
        require(table.shape[0] == out_size and bool(np.all(table[:, :2] < size)) and bool(np.all(table[:, :2] >= 0)),
                op, f"an output {axis} position maps beyond the input's {size} (the reference would read outside it)")
    return [(x.shape[0], a.size[0], a.size[1], x.shape[3])]


def input_regions(op: Op, out: Region) -> list[Region | None]:
    """The rows and columns the output region's corners span (channels and batches as the
    output region's)."""
    if any(a >= b for a, b in zip(out.start, out.stop)):
        return [Region(tuple(0 for _ in out.start), tuple(0 for _ in out.start))]
    ty, tx = tables(op)
    rows, cols = ty[out.start[1]:out.stop[1]], tx[out.start[2]:out.stop[2]]
    return [Region((out.start[0], int(rows[:, 0].min()), int(cols[:, 0].min()), out.start[3]),
                   (out.stop[0], int(rows[:, 1].max()) + 1, int(cols[:, 1].max()) + 1, out.stop[3]))]


def region_table(op: Op, out: Region, x: Region) -> tuple:
    """The explicit table of the op computing output region `out` from input region `x`."""
    ty, tx = tables(op)

    def part(table, start, stop, origin):
        return tuple((int(lo) - origin, int(hi) - origin, int(f)) for lo, hi, f in table[start:stop])

    return (part(ty, out.start[1], out.stop[1], x.start[1]), part(tx, out.start[2], out.stop[2], x.start[2]))


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    x = np.asarray(inputs[0], np.int64)
    ty, tx = tables(op)
    fy = ty[:, 2][None, :, None, None]
    fx = tx[:, 2][None, None, :, None]
    rows0, rows1 = x[:, ty[:, 0]], x[:, ty[:, 1]]
    v00, v01 = rows0[:, :, tx[:, 0]], rows0[:, :, tx[:, 1]]
    v10, v11 = rows1[:, :, tx[:, 0]], rows1[:, :, tx[:, 1]]
    total = (v00 * (1024 - fy) * (1024 - fx) + v10 * fy * (1024 - fx) + v01 * (1024 - fy) * fx + v11 * fy * fx)
    q = round_by_2_20(total)
    return [(((q + 128) & 0xFF) - 128).astype(np.int8).reshape(op.output.shape)]


def round_by_2_20(total: np.ndarray) -> np.ndarray:
    """(s + (s > 0 ? 2^19 : -2^19)) / 2^20 with C's truncating division."""
    rounded = total + np.where(total > 0, 1 << 19, -(1 << 19))
    return np.where(rounded >= 0, rounded >> 20, -((-rounded) >> 20))


OPDEF = register(OpDef(RESIZE_BILINEAR, ResizeBilinearAttrs, infer_shapes, no_macs, input_regions, evaluate,
                       traits={Trait.PATCHABLE}))
