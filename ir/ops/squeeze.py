"""SQUEEZE: drop size-1 axes (all of them when `axes` is empty), as TFLM's squeeze.cc:
negative axes count from the back, every named axis must have size 1, and the bytes
are copied unchanged (so the output keeps the input's dtype and quantization).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..op import Op
from ..region import Region
from . import OpDef, Trait, register
from .common import require
from .kinds import SQUEEZE
from .reshape import require_same_quantization

# TFLM's max_squeeze_dims.
MAX_RANK = 8


@dataclass(frozen=True)
class SqueezeAttrs:
    axes: tuple[int, ...] = ()


def squeezed_axes(op: Op) -> set[int]:
    shape = op.input.shape
    if not op.attrs.axes:
        return {i for i, d in enumerate(shape) if d == 1}
    return {a + len(shape) if a < 0 else a for a in op.attrs.axes}


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    require(len(op.inputs) == 1 and op.input is not None, op, "takes exactly one input")
    shape = op.input.shape
    require(len(shape) <= MAX_RANK, op, f"input rank {len(shape)} exceeds {MAX_RANK}")
    for a in op.attrs.axes:
        axis = a + len(shape) if a < 0 else a
        require(0 <= axis < len(shape), op, f"axis {a} is out of range for input shape {list(shape)}")
        require(shape[axis] == 1, op, f"axis {a} has size {shape[axis]}, only size-1 axes can be squeezed")
    require_same_quantization(op)
    drop = squeezed_axes(op)
    return [tuple(d for i, d in enumerate(shape) if i not in drop)]


def macs(op: Op) -> int:
    return 0


def input_regions(op: Op, out: Region) -> list[Region | None]:
    if op.input.is_constant:
        return [None]
    drop = squeezed_axes(op)
    kept = iter(range(len(out.start)))
    start, stop = [], []
    for i in range(len(op.input.shape)):
        if i in drop:
            start.append(0)
            stop.append(0 if out.empty else 1)
        else:
            j = next(kept)
            start.append(out.start[j])
            stop.append(out.stop[j])
    return [Region(tuple(start), tuple(stop))]


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    return [np.ascontiguousarray(inputs[0]).reshape(op.output.shape)]


OPDEF = register(OpDef(SQUEEZE, SqueezeAttrs, infer_shapes, macs, input_regions, evaluate,
                        traits={Trait.VIEW}))
