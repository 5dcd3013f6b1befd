"""TRANSPOSE with a constant permutation (the perm input becomes the `perm` attribute).

Output axis i is input axis perm[i] (TFLM's reference Transpose, rank 1 to 5). The
bytes only move, so the output keeps the input's dtype and quantization.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..op import Op
from ..region import Region
from . import OpDef, register
from .common import require
from .kinds import TRANSPOSE
from .reshape import require_same_quantization

# TFLM's TransposePrepare limit.
MAX_RANK = 5


@dataclass(frozen=True)
class TransposeAttrs:
    perm: tuple[int, ...]


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    require(op.input is not None, op, "needs an input")
    shape, perm = op.input.shape, tuple(op.attrs.perm)
    require(1 <= len(shape) <= MAX_RANK, op, f"input rank {len(shape)} is not supported (1 to {MAX_RANK})")
    require(sorted(perm) == list(range(len(shape))), op,
            f"perm {list(perm)} is not a permutation of the {len(shape)} input axes")
    require_same_quantization(op)
    return [tuple(shape[p] for p in perm)]


def macs(op: Op) -> int:
    return 0


def input_regions(op: Op, out: Region) -> list[Region | None]:
    if op.input.is_constant:
        return [None] * len(op.inputs)
    perm = op.attrs.perm
    start, stop = [0] * len(perm), [0] * len(perm)
    for i, p in enumerate(perm):
        start[p], stop[p] = out.axis(i)
    return [Region(tuple(start), tuple(stop))] + [None] * (len(op.inputs) - 1)


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    return [np.ascontiguousarray(np.transpose(inputs[0], op.attrs.perm))]


OPDEF = register(OpDef(TRANSPOSE, TransposeAttrs, infer_shapes, macs, input_regions, evaluate))
