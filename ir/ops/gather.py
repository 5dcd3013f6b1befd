"""GATHER of int8 params along one axis with constant int32 indices (TFLM's gather.cc).

tflite-micro accepts int32 indices only and int8 (or float32) params; batch_dims
(negative: + rank of the indices) must satisfy 0 <= batch_dims <= axis, batch_dims <
rank(params), batch_dims <= rank(indices), with the leading batch_dims extents of params
and indices equal. Output shape: params[:axis] + indices[batch_dims:] + params[axis+1:].
tflite-micro checks indices only with debug assertions (a release build reads outside
params), so mcuc refuses any index outside [0, params extent along axis) at compile
time. Indices computed at run time are read as they come: an index outside the axis is
undefined in tflite-micro (it reads outside params), and mcuc clamps it into
[0, extent - 1] on every backend, so a kernel never reads outside params.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..op import Op
from ..region import Region
from . import OpDef, register
from .common import no_macs, require
from .kinds import GATHER
from .movement import Move, register_moves, require_same_dtype


@dataclass(frozen=True)
class GatherAttrs:
    axis: int
    batch_dims: int = 0


def geometry(op: Op) -> tuple[int, int, int, int, int, int]:
    """(axis, batch_dims, batch, outer, inner, coords per batch), checked as tflite-micro's
    Prepare does."""
    require(len(op.inputs) == 2 and all(t is not None for t in op.inputs) and len(op.outputs) == 1, op,
            "takes params and indices, and one output")
    params, indices = op.inputs
    require_same_dtype(op, ("int8",))
    require(indices.dtype == "int32", op,
            f"indices {indices.name!r} are {indices.dtype}; tflite-micro's GATHER takes int32 indices only")
    rank, irank = len(params.shape), len(indices.shape)
    axis = op.attrs.axis + rank if op.attrs.axis < 0 else op.attrs.axis
    require(0 <= axis < rank, op, f"axis {op.attrs.axis} is out of range for params of rank {rank}")
    bd = op.attrs.batch_dims + irank if op.attrs.batch_dims < 0 else op.attrs.batch_dims
    require(0 <= bd <= axis and bd < rank and bd <= irank, op,
            f"batch_dims {op.attrs.batch_dims} must lie in [0, axis {axis}] and below both ranks")
    require(params.shape[:bd] == indices.shape[:bd], op,
            f"the first batch_dims {bd} extents of params {list(params.shape)} and indices "
            f"{list(indices.shape)} differ")
    if indices.is_constant:
        data = indices.data.reshape(-1)
        bad = np.flatnonzero((data < 0) | (data >= params.shape[axis]))
        require(bad.size == 0, op,
                f"index {int(data[bad[0]]) if bad.size else 0} is outside [0, {params.shape[axis]}) along axis "
                f"{axis} (tflite-micro would read outside params)")
    batch = int(np.prod(params.shape[:bd], dtype=np.int64))
    outer = int(np.prod(params.shape[bd:axis], dtype=np.int64))
    inner = int(np.prod(params.shape[axis + 1:], dtype=np.int64))
    coords = int(np.prod(indices.shape[bd:], dtype=np.int64))
    return axis, bd, batch, outer, inner, coords


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    axis, bd, *_ = geometry(op)
    params, indices = op.inputs
    return [params.shape[:axis] + indices.shape[bd:] + params.shape[axis + 1:]]


def input_regions(op: Op, out: Region) -> list[Region | None]:
    return [None if t.is_constant else Region.full(t.shape) for t in op.inputs]


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    axis, bd, batch, outer, inner, coords = geometry(op)
    params = np.asarray(inputs[0]).reshape(batch, outer, op.inputs[0].shape[axis], inner)
    idx = np.clip(np.asarray(inputs[1], np.int64), 0, op.inputs[0].shape[axis] - 1).reshape(batch, coords)
    y = np.stack([params[b][:, idx[b], :] for b in range(batch)])
    return [np.ascontiguousarray(y).reshape(op.output.shape)]


def dynamic(op: Op) -> bool:
    """Whether the indices are computed at run time (then the op has no static moves:
    backends run `geometry`'s loops, reading and clamping each index)."""
    return not op.inputs[1].is_constant


def moves(op: Op) -> list[Move]:
    axis, bd, batch, outer, inner, coords = geometry(op)
    require(not dynamic(op), op, "indices computed at run time have no static copies")
    size = op.inputs[0].shape[axis]
    idx = op.inputs[1].data.reshape(batch, coords)
    return [Move(0, 0, (outer, inner), (b * outer * size + int(idx[b, k])) * inner, (size * inner, 1),
                 (b * outer * coords + k) * inner, (coords * inner, 1))
            for b in range(batch) for k in range(coords)]


register_moves(GATHER, moves)
OPDEF = register(OpDef(GATHER, GatherAttrs, infer_shapes, no_macs, input_regions, evaluate))
