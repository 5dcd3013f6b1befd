"""DEQUANTIZE: int8/int16/uint8 -> float32, as TFLite Micro's reference Dequantize:
float(double(scale) * (q - zero_point)), the product in double, one rounding to float32.
"""
from __future__ import annotations

import numpy as np

from ..op import Op
from . import OpDef, Trait, register
from .common import require
from .kinds import DEQUANTIZE
from .quantize import identity_regions

SUPPORTED_INPUTS = ("int8", "int16", "uint8")


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    require(len(op.inputs) == 1 and op.input is not None, op, "takes exactly one input")
    x, y = op.input, op.output
    require(x.dtype in SUPPORTED_INPUTS, op, f"input {x.name!r} is {x.dtype}; expected one of {SUPPORTED_INPUTS}")
    require(y.dtype == "float32", op, f"output {y.name!r} is {y.dtype}; DEQUANTIZE produces float32")
    require(x.quant is not None and not x.quant.per_channel, op,
            f"input {x.name!r} must have per-tensor quantization")
    return [x.shape]


def macs(op: Op) -> int:
    return 0


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    q = op.input.quant
    # The double product of a float32 scale and a 17-bit integer is exact, so the one
    # rounding is the cast to float32, as in the kernel.
    centered = inputs[0].astype(np.int64) - q.scalar_zero_point
    y = np.float64(q.scale[0]) * centered.astype(np.float64)
    return [y.astype(np.float32)]


OPDEF = register(OpDef(DEQUANTIZE, None, infer_shapes, macs, identity_regions, evaluate,
                        traits={Trait.POSITIONAL, Trait.PATCHABLE}))
