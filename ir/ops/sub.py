"""SUB of two int8 (or int16) tensors with broadcasting (TFLite Micro's quantized SUB).

The same two-stage rescale as ADD (ir/ops/add.py): each input offset, shifted left by 20
bits (15 for int16) and rescaled onto twice the larger input scale; the difference
rescaled to the output, offset and clamped. The pinned tflite-micro's Prepare computes
the three real factors in double, exactly as ADD's does (later tflite-micro releases
compute SUB's in float32, which changes a few outputs; tests/ir/test_ops_elementwise.py
holds which). Broadcasting follows numpy's rules, as ADD's.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..op import Op
from . import OpDef, Trait, register
from .add import add_params, binary_infer_shapes, binary_input_regions, evaluate_rescaled
from .kinds import SUB


@dataclass(frozen=True)
class SubAttrs:
    act_min: int = -128
    act_max: int = 127


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    shapes = binary_infer_shapes(op)
    add_params(op)  # rejects scales TFLM would refuse
    return shapes


def macs(op: Op) -> int:
    return 0


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    return [evaluate_rescaled(op, add_params(op), inputs, np.subtract)]


OPDEF = register(OpDef(SUB, SubAttrs, infer_shapes, macs, binary_input_regions, evaluate,
                       traits={Trait.ELEMENTWISE, Trait.POSITIONAL, Trait.PATCHABLE}))
