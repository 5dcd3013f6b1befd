"""RESIZE_NEAREST_NEIGHBOR on NHWC (the size input becomes the `size` attribute).

Source index of output index i along an axis of input size n, output size m, as TFLM's
reference GetNearestNeighbor computes it in float32:
  scale = (n - 1) / float(m - 1) if align_corners and m > 1 else n / float(m)
  offset = 0.5 if half_pixel_centers else 0
  src = round((i + offset) * scale) if align_corners else floor((i + offset) * scale)
  src = min(src, n - 1), and max(src, 0) with half_pixel_centers
(round is half away from zero). The bytes are copied, so the output keeps the input's
dtype and quantization.

A patch stage runs the op on a region of its output reading a region of its input; the
index map then depends on the full sizes, not the region's, so the region's op carries
its map explicitly (`ResizeNearestAttrs.source_map`, set by
ir.patches.region_op) and every kernel reads the map through `source_map`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fixedpoint import round_half_away
from ..op import Op
from ..region import Region
from . import OpDef, Trait, register
from .common import require
from .kinds import RESIZE_NEAREST_NEIGHBOR
from .reshape import require_same_quantization


@dataclass(frozen=True)
class ResizeNearestAttrs:
    """`source_map`: the input row of every output row and the input column of every
    output column, given explicitly (an op on a region of a larger resize); None: from
    the sizes and the two flags."""

    size: tuple[int, int]
    align_corners: bool = False
    half_pixel_centers: bool = False
    source_map: tuple[tuple[int, ...], tuple[int, ...]] | None = None


def source_indices(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool) -> np.ndarray:
    """For every output index along one axis, the input index it copies."""
    if align_corners and out_size > 1:
        scale = np.float32(in_size - 1) / np.float32(out_size - 1)
    else:
        scale = np.float32(in_size) / np.float32(out_size)
    offset = np.float32(0.5 if half_pixel_centers else 0.0)
    position = (np.arange(out_size, dtype=np.float32) + offset) * scale  # float32 throughout
    src = round_half_away(position.astype(np.float64)) if align_corners else np.floor(position)
    src = np.minimum(src.astype(np.int64), in_size - 1)
    if half_pixel_centers:
        src = np.maximum(src, 0)
    return src


def source_map(op: Op) -> tuple[np.ndarray, np.ndarray]:
    """(input row per output row, input column per output column) of a resize op."""
    a: ResizeNearestAttrs = op.attrs
    if a.source_map is not None:
        return tuple(np.asarray(m, np.int64) for m in a.source_map)
    x = op.input
    return (source_indices(x.shape[1], a.size[0], a.align_corners, a.half_pixel_centers),
            source_indices(x.shape[2], a.size[1], a.align_corners, a.half_pixel_centers))


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    require(op.input is not None, op, "needs an input")
    x = op.input
    a: ResizeNearestAttrs = op.attrs
    require(len(x.shape) == 4, op, f"input must be 4-D NHWC, got shape {list(x.shape)}")
    require(len(a.size) == 2 and min(a.size) >= 1, op, f"size {list(a.size)} must be two positive integers")
    require(x.shape[1] >= 1 and x.shape[2] >= 1, op, f"input shape {list(x.shape)} has an empty spatial axis")
    require_same_quantization(op)
    if a.source_map is not None:
        rows, cols = a.source_map
        require(len(rows) == a.size[0] and len(cols) == a.size[1]
                and all(0 <= r < x.shape[1] for r in rows) and all(0 <= c < x.shape[2] for c in cols), op,
                f"source_map does not map {a.size[0]}x{a.size[1]} outputs into {x.shape[1]}x{x.shape[2]} inputs")
    return [(x.shape[0], a.size[0], a.size[1], x.shape[3])]


def macs(op: Op) -> int:
    return 0


def _axis_range(src: np.ndarray, start: int, stop: int) -> tuple[int, int]:
    if stop <= start:
        return 0, 0
    picked = src[start:stop]
    return int(picked.min()), int(picked.max()) + 1


def input_regions(op: Op, out: Region) -> list[Region | None]:
    x = op.input
    if x.is_constant:
        return [None] * len(op.inputs)
    row_map, col_map = source_map(op)
    rows = _axis_range(row_map, *out.axis(1))
    cols = _axis_range(col_map, *out.axis(2))
    region = Region((out.start[0], rows[0], cols[0], out.start[3]), (out.stop[0], rows[1], cols[1], out.stop[3]))
    return [region] + [None] * (len(op.inputs) - 1)


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    rows, cols = source_map(op)
    return [np.ascontiguousarray(inputs[0][:, rows][:, :, cols])]


OPDEF = register(OpDef(RESIZE_NEAREST_NEIGHBOR, ResizeNearestAttrs, infer_shapes, macs, input_regions, evaluate,
                        traits={Trait.PATCHABLE}))
