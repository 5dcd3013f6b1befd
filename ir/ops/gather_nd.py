"""GATHER_ND of int8 params with constant int32 indices (TFLM's gather_nd.cc).

tflite-micro takes int8 (or float32) params and int32 indices; params and indices of
rank >= 1, an index depth (indices' last extent) of at most the params' rank and at most
5. Output shape: indices.shape[:-1] + params.shape[depth:]. Each index tuple selects
the slice at flat position sum(index[j] * (elements per step of axis j)); tflite-micro
checks only that flat position (0 <= position, position + slice <= params size: an
index outside its own axis but inside the params is read as that flat position) and
fails the invocation otherwise, which mcuc refuses at compile time. Indices computed at
run time are refused (no backend kernel reads them).
"""
from __future__ import annotations

import numpy as np

from ..op import Op
from ..region import Region
from . import OpDef, register
from .common import no_macs, require
from .kinds import GATHER_ND
from .movement import Move, register_moves, require_same_dtype

MAX_INDEX_DEPTH = 5  # tflite-micro's MAX_INDICES_ND


def positions(op: Op) -> tuple[np.ndarray, int]:
    """(the flat params position of every slice, the slice's element count), checked as
    tflite-micro's Prepare and Eval check them."""
    require(len(op.inputs) == 2 and all(t is not None for t in op.inputs) and len(op.outputs) == 1, op,
            "takes params and indices, and one output")
    params, indices = op.inputs
    require_same_dtype(op, ("int8",))
    require(indices.dtype == "int32", op,
            f"indices {indices.name!r} are {indices.dtype}; tflite-micro's GATHER_ND takes int32 indices only")
    require(len(params.shape) >= 1 and len(indices.shape) >= 1, op, "params and indices must have rank >= 1")
    depth = indices.shape[-1]
    require(depth <= len(params.shape) and depth <= MAX_INDEX_DEPTH, op,
            f"index depth {depth} exceeds the params rank {len(params.shape)} or tflite-micro's {MAX_INDEX_DEPTH}")
    require(indices.is_constant, op, f"indices {indices.name!r} are computed at run time; mcuc's GATHER_ND needs "
            "constant indices")
    steps = [int(np.prod(params.shape[j + 1:], dtype=np.int64)) for j in range(depth)]
    slice_size = int(np.prod(params.shape[depth:], dtype=np.int64))
    tuples = indices.data.astype(np.int64).reshape(-1, depth) if depth else np.zeros((indices.size, 0), np.int64)
    where = tuples @ np.asarray(steps, np.int64) if depth else np.zeros(len(tuples), np.int64)
    bad = np.flatnonzero((where < 0) | (where + slice_size > params.size))
    require(bad.size == 0, op, f"index {tuples[bad[0]].tolist() if bad.size else []} lies outside params of shape "
            f"{list(params.shape)} (tflite-micro fails the invocation)")
    return where, slice_size


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    positions(op)
    params, indices = op.inputs
    return [tuple(indices.shape[:-1]) + tuple(params.shape[indices.shape[-1]:])]


def input_regions(op: Op, out: Region) -> list[Region | None]:
    return [None if t.is_constant else Region.full(t.shape) for t in op.inputs]


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    where, size = positions(op)
    flat = np.asarray(inputs[0]).reshape(-1)
    y = np.stack([flat[p:p + size] for p in where]) if len(where) else np.zeros((0, size), flat.dtype)
    return [y.reshape(op.output.shape)]


def moves(op: Op) -> list[Move]:
    where, size = positions(op)
    return [Move(0, 0, (size,), int(p), (1,), k * size, (1,)) for k, p in enumerate(where)]


register_moves(GATHER_ND, moves)
OPDEF = register(OpDef(GATHER_ND, None, infer_shapes, no_macs, input_regions, evaluate))
