"""MAXIMUM and MINIMUM of two int8 or int16 tensors with broadcasting (TFLM's
maximum_minimum.cc).

tflite-micro registers these ops without a Prepare: nothing checks or uses the
quantization, and the kernel compares the stored integers (`a > b ? a : b`,
`a < b ? a : b`), so the output bytes are the larger (smaller) stored value whatever the
scales and zero points say. mcuc computes exactly that. The TFLite converter only
writes these ops with one quantization on both inputs and the output, where comparing
stored integers is comparing real values. Equal shapes run flat at any rank; otherwise
numpy's broadcasting (TFLM's BroadcastBinaryOpSimple) up to the backends' 6 axes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..op import Op
from . import OpDef, Trait, register
from .add import binary_input_regions, broadcast_shape
from .common import no_macs, require
from .kinds import MAXIMUM, MINIMUM


@dataclass(frozen=True)
class MaximumMinimumAttrs:
    """No attributes: the kind says which of the two the op keeps."""


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    require(len(op.inputs) == 2 and all(t is not None for t in op.inputs) and len(op.outputs) == 1, op,
            "takes exactly two inputs and one output")
    x1, x2, y = op.inputs[0], op.inputs[1], op.output
    require(y.dtype in ("int8", "int16"), op, f"output {y.name!r} is {y.dtype}; only int8 and int16 are supported")
    for t in (x1, x2):
        require(t.dtype == y.dtype, op, f"input {t.name!r} is {t.dtype} but the output is {y.dtype}")
    if x1.shape == x2.shape:
        return [tuple(x1.shape)]
    return [broadcast_shape(op, x1.shape, x2.shape)]


def pick(op: Op):
    """The numpy function of the op's kind."""
    return np.maximum if op.kind == MAXIMUM else np.minimum


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    y = pick(op)(np.asarray(inputs[0]), np.asarray(inputs[1]))
    return [np.ascontiguousarray(np.broadcast_to(y, op.output.shape)).astype(op.output.dtype)]


_TRAITS = {Trait.ELEMENTWISE, Trait.POSITIONAL, Trait.PATCHABLE}
MAXIMUM_OPDEF = register(OpDef(MAXIMUM, MaximumMinimumAttrs, infer_shapes, no_macs, binary_input_regions, evaluate,
                               traits=_TRAITS))
MINIMUM_OPDEF = register(OpDef(MINIMUM, MaximumMinimumAttrs, infer_shapes, no_macs, binary_input_regions, evaluate,
                               traits=_TRAITS))
