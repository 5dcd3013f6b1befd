"""RESHAPE: same bytes, new shape (the shape input becomes the `shape` attribute).

One entry of `shape` may be -1 (inferred from the element count), as TFLM's
ReshapeOutput allows. The kernel copies bytes, so mcuc requires the output to carry
the input's dtype and quantization (a reshape never changes what the integers mean).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..op import Op
from ..region import Region
from ..tensor import Tensor
from . import OpDef, Trait, register
from .common import require
from .kinds import RESHAPE


@dataclass(frozen=True)
class ReshapeAttrs:
    shape: tuple[int, ...]


def same_quantization(a: Tensor, b: Tensor) -> bool:
    """Equal dtype and equal (or both absent) quantization parameters."""
    if a.dtype != b.dtype or (a.quant is None) != (b.quant is None):
        return False
    if a.quant is None:
        return True
    return (np.array_equal(a.quant.scale, b.quant.scale) and np.array_equal(a.quant.zero_point, b.quant.zero_point))


def require_same_quantization(op: Op) -> None:
    x, y = op.input, op.output
    require(same_quantization(x, y), op,
            f"output {y.name!r} ({y.dtype}, {y.quant!r}) must have the input {x.name!r}'s dtype and "
            f"quantization ({x.dtype}, {x.quant!r}): the op only moves bytes")


def resolve_shape(op: Op, requested: tuple[int, ...], elements: int) -> tuple[int, ...]:
    """`requested` with its one -1 replaced so the element count is `elements`."""
    stretch = [i for i, d in enumerate(requested) if d == -1]
    require(len(stretch) <= 1, op, f"shape {list(requested)} has more than one -1")
    require(all(d >= 0 or d == -1 for d in requested), op, f"shape {list(requested)} has a negative size")
    known = int(np.prod([d for d in requested if d != -1], dtype=np.int64))
    shape = list(requested)
    if stretch:
        require(known > 0 and elements % known == 0, op,
                f"shape {list(requested)} cannot hold {elements} elements")
        shape[stretch[0]] = elements // known
    require(int(np.prod(shape, dtype=np.int64)) == elements, op,
            f"shape {list(requested)} holds {int(np.prod(shape, dtype=np.int64))} elements, "
            f"the input has {elements}")
    return tuple(shape)


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    require(op.input is not None, op, "needs an input")
    require_same_quantization(op)
    return [resolve_shape(op, tuple(op.attrs.shape), op.input.size)]


def macs(op: Op) -> int:
    return 0


def flat_input_region(in_shape: tuple[int, ...], out_shape: tuple[int, ...], out: Region) -> Region:
    """The bounding box, in the input's shape, of the elements an output box holds when
    both shapes view the same row-major bytes."""
    if out.empty:
        return Region(tuple(0 for _ in in_shape), tuple(0 for _ in in_shape))
    if out == Region.full(out_shape):
        return Region.full(in_shape)
    grids = np.meshgrid(*[np.arange(a, b) for a, b in zip(out.start, out.stop)], indexing="ij")
    flat = np.ravel_multi_index([g.ravel() for g in grids], out_shape)
    coords = np.unravel_index(flat, in_shape)
    return Region(tuple(int(c.min()) for c in coords), tuple(int(c.max()) + 1 for c in coords))


def input_regions(op: Op, out: Region) -> list[Region | None]:
    x = op.input
    return [None if x.is_constant else flat_input_region(x.shape, op.output.shape, out)] + \
        [None] * (len(op.inputs) - 1)


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    return [np.ascontiguousarray(inputs[0]).reshape(op.output.shape)]


OPDEF = register(OpDef(RESHAPE, ReshapeAttrs, infer_shapes, macs, input_regions, evaluate,
                        traits={Trait.VIEW}))
