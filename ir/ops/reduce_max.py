"""REDUCE_MAX and REDUCE_MIN of int8 over constant axes (TFLM's reduce.cc /
reduce_common.cc, reference ReduceGeneric).

tflite-micro requires the output's scale and zero point to equal the input's for int8
(its Eval checks them), starts every output at -128 (REDUCE_MIN: 127) and keeps the larger
(smaller) stored value.
Axes are int32, negative ones count from the back, repeats count once; keep_dims keeps
the reduced axes with extent 1. `reduction_geometry` is the loop structure backends run
(ARG_MAX and ARG_MIN reduce one axis the same way).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..op import Op
from ..region import Region
from . import OpDef, register
from .common import no_macs, require
from .kinds import REDUCE_MAX, REDUCE_MIN
from .movement import contiguous_strides, require_same_dtype


@dataclass(frozen=True)
class ReduceMaxAttrs:
    axes: tuple[int, ...]
    keep_dims: bool = False


def resolved_axes(op: Op, axes: tuple[int, ...]) -> tuple[int, ...]:
    rank = len(op.input.shape)
    for a in axes:
        require(-rank <= a < rank, op, f"axis {a} is out of range for an input of rank {rank}")
    return tuple(sorted({a + rank if a < 0 else a for a in axes}))


def reduction_geometry(shape: tuple[int, ...], axes: tuple[int, ...]):
    """(kept extents, their element strides, reduced extents, their strides): output
    element k (row-major over the kept axes) reduces input elements
    sum(k_i * kept_stride_i) + sum(r_j * reduced_stride_j)."""
    strides = contiguous_strides(shape)
    kept = [i for i in range(len(shape)) if i not in axes]
    return ([shape[i] for i in kept], [strides[i] for i in kept],
            [shape[i] for i in axes], [strides[i] for i in axes])


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    require(len(op.inputs) == 1 and len(op.outputs) == 1, op, "takes one input and one output")
    require_same_dtype(op, ("int8",))
    x, y = op.input, op.output
    require(x.quant is not None and y.quant is not None and not x.quant.per_channel and not y.quant.per_channel, op,
            "input and output must be quantized per tensor")
    require(np.float64(x.quant.scale[0]) == np.float64(y.quant.scale[0])
            and x.quant.scalar_zero_point == y.quant.scalar_zero_point, op,
            f"output quantization {y.quant!r} differs from the input's {x.quant!r}; tflite-micro's int8 "
            f"{op.kind} requires them equal")
    axes = resolved_axes(op, op.attrs.axes)
    if op.attrs.keep_dims:
        return [tuple(1 if i in axes else d for i, d in enumerate(x.shape))]
    return [tuple(d for i, d in enumerate(x.shape) if i not in axes)]


def full_input(op: Op, out: Region) -> list[Region | None]:
    return [None if op.input.is_constant else Region.full(op.input.shape)]


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    axes = resolved_axes(op, op.attrs.axes)
    x = np.asarray(inputs[0])
    if op.kind == REDUCE_MAX:
        y = np.max(x, axis=axes, initial=-128) if axes else x
    else:
        y = np.min(x, axis=axes, initial=127) if axes else x
    return [np.ascontiguousarray(y).astype(np.int8).reshape(op.output.shape)]


OPDEF = register(OpDef(REDUCE_MAX, ReduceMaxAttrs, infer_shapes, no_macs, full_input, evaluate))
REDUCE_MIN_OPDEF = register(OpDef(REDUCE_MIN, ReduceMaxAttrs, infer_shapes, no_macs, full_input, evaluate))
