"""PAD / PADV2: constant padding. `pads` holds (before, after) per axis; `value` is the
quantized pad value (None: the output zero point, as PAD without constant_values).

TFLite Micro pads int8 tensors with PADV2's constant or, without one, the output's
zero point; other dtypes without a constant pad with 0. Both kinds share this module:
the frontend turns PADV2's constant_values input into `value`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..op import Op
from ..region import Region
from . import OpDef, Trait, register
from .common import require
from .kinds import PAD


@dataclass(frozen=True)
class PadAttrs:
    pads: tuple[tuple[int, int], ...]
    value: int | None = None


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    x = op.input
    a: PadAttrs = op.attrs
    require(len(a.pads) == len(x.shape), op,
            f"pads give {len(a.pads)} (before, after) pairs for a {len(x.shape)}-D input")
    require(all(len(p) == 2 and p[0] >= 0 and p[1] >= 0 for p in a.pads), op,
            f"pads {a.pads} must be non-negative (before, after) pairs")
    if a.value is not None and np.issubdtype(np.dtype(op.output.dtype), np.integer):
        info = np.iinfo(np.dtype(op.output.dtype))
        require(info.min <= a.value <= info.max, op, f"pad value {a.value} does not fit {op.output.dtype}")
    return [tuple(d + before + after for d, (before, after) in zip(x.shape, a.pads))]


def macs(op: Op) -> int:
    """PAD counts no MACs (the project's MAC figures count conv, depthwise and FC)."""
    return 0


def input_regions(op: Op, out: Region) -> list[Region | None]:
    """Shift the output region back by the leading pads and clip to the input: the
    part of the output that is padding reads nothing."""
    x = op.input
    shifted = Region(tuple(s - p[0] for s, p in zip(out.start, op.attrs.pads)),
                     tuple(e - p[0] for e, p in zip(out.stop, op.attrs.pads))).clip(x.shape)
    return [shifted] + [None] * (len(op.inputs) - 1)


def pad_value(op: Op) -> int | float:
    a: PadAttrs = op.attrs
    if a.value is not None:
        return a.value
    out = op.output
    if out.dtype == "int8" and out.quant is not None:
        return out.quant.scalar_zero_point
    return 0


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    y = np.pad(inputs[0], op.attrs.pads, constant_values=pad_value(op))
    return [y.astype(op.output.dtype)]


OPDEF = register(OpDef(PAD, PadAttrs, infer_shapes, macs, input_regions, evaluate,
                        traits={Trait.PATCHABLE}))
