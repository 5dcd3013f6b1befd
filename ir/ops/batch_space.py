"""SPACE_TO_BATCH_ND and BATCH_TO_SPACE_ND on int8 tensors of rank 3 or 4 (TFLM's
space_to_batch_nd.cc and batch_to_space_nd.cc; a rank-3 [N, H, C] tensor is [N, H, 1, C]
with a block width of 1). Block shape, paddings and crops are constant int32, as
tflite-micro reads them.

SPACE_TO_BATCH_ND: output batch (sh * bw + sw) * N + n, row oh, column ow is input
[n, oh * bh + sh - pad_top, ow * bw + sw - pad_left]. tflite-micro fills padded
positions with `SpaceToBatchParams.output_offset`, a field its kernel never sets (the
persistent buffer is left uninitialized), so mcuc refuses non-zero paddings instead of
guessing the fill. BATCH_TO_SPACE_ND: input batch s * N' + n (s = sh * bw + sw) lands at
output [n, h * bh + sh - crop_top, w * bw + sw - crop_left] where that lies in the output.
Elements are copied unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..op import Op
from ..region import Region
from . import OpDef, register
from .common import no_macs, require
from .kinds import BATCH_TO_SPACE_ND, SPACE_TO_BATCH_ND
from .movement import Move, contiguous_strides, register_moves, require_same_dtype


@dataclass(frozen=True)
class BatchSpaceAttrs:
    block: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]  # paddings (SPACE_TO_BATCH_ND) or crops (BATCH_TO_SPACE_ND)


def _geometry(op: Op) -> tuple[tuple[int, int, int, int], int, int, tuple[int, int, int, int]]:
    """(input as NHWC, bh, bw, (top, bottom, left, right))."""
    require(len(op.inputs) == 1 and len(op.outputs) == 1, op, "takes one input and one output")
    require_same_dtype(op, ("int8",))
    shape = op.input.shape
    rank = len(shape)
    require(rank in (3, 4), op, f"input rank {rank} is not supported (3 or 4, as tflite-micro)")
    a: BatchSpaceAttrs = op.attrs
    spatial = rank - 2
    require(len(a.block) == spatial and len(a.pads) == spatial, op,
            f"block shape {list(a.block)} and {len(a.pads)} padding rows must have one entry per spatial axis "
            f"({spatial})")
    require(all(b >= 1 for b in a.block), op, f"block shape {list(a.block)} must be positive")
    require(all(p >= 0 for row in a.pads for p in row), op, f"paddings/crops {list(a.pads)} must not be negative")
    nhwc = (shape[0], shape[1], shape[2] if rank == 4 else 1, shape[-1])
    bh, bw = a.block[0], (a.block[1] if rank == 4 else 1)
    (top, bottom), (left, right) = a.pads[0], (a.pads[1] if rank == 4 else (0, 0))
    return nhwc, bh, bw, (top, bottom, left, right)


def _shaped(op: Op, nhwc: tuple[int, int, int, int]) -> tuple[int, ...]:
    return nhwc if len(op.input.shape) == 4 else (nhwc[0], nhwc[1], nhwc[3])


def space_to_batch_shapes(op: Op) -> list[tuple[int, ...]]:
    (n, h, w, c), bh, bw, (top, bottom, left, right) = _geometry(op)
    require(top == bottom == left == right == 0, op,
            f"paddings {list(op.attrs.pads)} are not zero: tflite-micro fills padding with a value its kernel "
            "never sets (SpaceToBatchParams.output_offset is uninitialized), so mcuc cannot reproduce it")
    require(h % bh == 0 and w % bw == 0, op, f"spatial extent {h}x{w} is not a multiple of the block {bh}x{bw}")
    return [_shaped(op, (n * bh * bw, h // bh, w // bw, c))]


def batch_to_space_shapes(op: Op) -> list[tuple[int, ...]]:
    (n, h, w, c), bh, bw, (top, bottom, left, right) = _geometry(op)
    require(n % (bh * bw) == 0, op, f"input batch {n} is not a multiple of the block size {bh * bw}")
    oh, ow = h * bh - top - bottom, w * bw - left - right
    require(oh > 0 and ow > 0, op, f"crops {list(op.attrs.pads)} remove the whole {h * bh}x{w * bw} output")
    return [_shaped(op, (n // (bh * bw), oh, ow, c))]


def full_input(op: Op, out: Region) -> list[Region | None]:
    return [None if op.input.is_constant else Region.full(op.input.shape)]


def space_to_batch_evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    (n, h, w, c), bh, bw, _ = _geometry(op)
    x = np.asarray(inputs[0]).reshape(n, h // bh, bh, w // bw, bw, c)
    y = x.transpose(2, 4, 0, 1, 3, 5)  # [sh, sw, n, oh, ow, c]
    return [np.ascontiguousarray(y).reshape(op.output.shape)]


def batch_to_space_evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    (n, h, w, c), bh, bw, (top, bottom, left, right) = _geometry(op)
    on = n // (bh * bw)
    x = np.asarray(inputs[0]).reshape(bh, bw, on, h, w, c).transpose(2, 3, 0, 4, 1, 5)
    full = x.reshape(on, h * bh, w * bw, c)
    y = full[:, top:h * bh - bottom, left:w * bw - right, :]
    return [np.ascontiguousarray(y).reshape(op.output.shape)]


def space_to_batch_moves(op: Op) -> list[Move]:
    (n, h, w, c), bh, bw, _ = _geometry(op)
    oh, ow = h // bh, w // bw
    sn, sh_, sw_, _ = contiguous_strides((n, h, w, c))
    on, oh_s, ow_s, _ = contiguous_strides((n * bh * bw, oh, ow, c))
    return [Move(0, 0, (n, oh, ow, c), sh * sh_ + sw * sw_, (sn, bh * sh_, bw * sw_, 1),
                 (sh * bw + sw) * n * on, (on, oh_s, ow_s, 1))
            for sh in range(bh) for sw in range(bw)]


def batch_to_space_moves(op: Op) -> list[Move]:
    (n, h, w, c), bh, bw, (top, _, left, _) = _geometry(op)
    on = n // (bh * bw)
    out = batch_to_space_shapes(op)[0]
    out_h, out_w = out[1], (out[2] if len(out) == 4 else 1)
    sn, sh_, sw_, _ = contiguous_strides((n, h, w, c))
    yn, yh, yw, _ = contiguous_strides((on, out_h, out_w, c))
    result = []
    for sh in range(bh):
        for sw in range(bw):
            # The input rows (columns) whose output row (column) lies inside the output.
            h0, h1 = max(0, -(-(top - sh) // bh)), min(h - 1, (out_h - 1 + top - sh) // bh)
            w0, w1 = max(0, -(-(left - sw) // bw)), min(w - 1, (out_w - 1 + left - sw) // bw)
            if h1 < h0 or w1 < w0:
                continue
            result.append(Move(0, 0, (on, h1 - h0 + 1, w1 - w0 + 1, c),
                               (sh * bw + sw) * on * sn + h0 * sh_ + w0 * sw_, (sn, sh_, sw_, 1),
                               (h0 * bh + sh - top) * yh + (w0 * bw + sw - left) * yw, (yn, bh * yh, bw * yw, 1)))
    return result


register_moves(SPACE_TO_BATCH_ND, space_to_batch_moves)
register_moves(BATCH_TO_SPACE_ND, batch_to_space_moves)
SPACE_TO_BATCH_OPDEF = register(OpDef(SPACE_TO_BATCH_ND, BatchSpaceAttrs, space_to_batch_shapes, no_macs, full_input,
                                      space_to_batch_evaluate))
BATCH_TO_SPACE_OPDEF = register(OpDef(BATCH_TO_SPACE_ND, BatchSpaceAttrs, batch_to_space_shapes, no_macs, full_input,
                                      batch_to_space_evaluate))
