"""What the data movement ops share: they only copy elements, so each one's meaning as
copies is a list of `Move`s (boxes of elements with element strides, negative ones
included), which backends run without knowing the op (llvm
backends/llvm/kernels/movement.py, Cortex-M backends/cortexm/kernels_movement.py).

Every op module defines `evaluate` in numpy on its own terms and registers its
`moves` here; tests/ir/test_ops_movement.py holds the two equal (`run_moves`) and both
equal to tflite-micro. tflite-micro's kernels for these ops check no quantization: they
copy the stored integers, so mcuc requires only the output dtype to equal the input's.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..op import Op
from .common import require


@dataclass(frozen=True)
class Move:
    """Output `output`'s element at dst + sum(i[k] * dst_strides[k]) is input `input`'s
    element at src + sum(i[k] * src_strides[k]), for every index i of `shape` (offsets
    and strides count elements)."""

    input: int
    output: int
    shape: tuple[int, ...]
    src: int
    src_strides: tuple[int, ...]
    dst: int
    dst_strides: tuple[int, ...]


_MOVES: dict[str, Callable[[Op], list[Move]]] = {}


def register_moves(kind: str, fn: Callable[[Op], list[Move]]) -> None:
    _MOVES[kind] = fn


def has_moves(kind: str) -> bool:
    return kind in _MOVES


def moves(op: Op) -> list[Move]:
    """The op's copies, empty boxes left out."""
    return [m for m in _MOVES[op.kind](op) if all(d > 0 for d in m.shape)]


def contiguous_strides(shape) -> tuple[int, ...]:
    strides, step = [], 1
    for d in reversed(tuple(shape)):
        strides.insert(0, step)
        step *= int(d)
    return tuple(strides)


def run_moves(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """The moves executed in numpy (the backends' meaning of the op)."""
    outs = [np.zeros(t.size, t.dtype) for t in op.outputs]
    flats = [np.ascontiguousarray(x).reshape(-1) for x in inputs]
    for m in moves(op):
        idx = np.indices(m.shape).reshape(len(m.shape), -1)
        src = m.src + np.tensordot(np.asarray(m.src_strides, np.int64), idx, 1) if m.shape else np.array([m.src])
        dst = m.dst + np.tensordot(np.asarray(m.dst_strides, np.int64), idx, 1) if m.shape else np.array([m.dst])
        outs[m.output][dst] = flats[m.input][src]
    return [o.reshape(t.shape) for o, t in zip(outs, op.outputs)]


def require_same_dtype(op: Op, dtypes=("int8", "int16")) -> None:
    """Every output carries input 0's dtype, one of `dtypes` (what tflite-micro's kernel
    runs for the op)."""
    x = op.inputs[0]
    require(x is not None, op, "needs an input")
    require(x.dtype in dtypes, op, f"input {x.name!r} is {x.dtype}; supported: {', '.join(dtypes)}")
    for y in op.outputs:
        require(y.dtype == x.dtype, op, f"output {y.name!r} is {y.dtype} but the input is {x.dtype}: the op only "
                                        "moves elements")


def axis_in_range(op: Op, axis: int, rank: int, what: str = "axis") -> int:
    """`axis` counted from the front (negative counts from the back), or MCUCError."""
    require(-rank <= axis < rank, op, f"{what} {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis
