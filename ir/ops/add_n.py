"""ADD_N: the sum of two or more int8 tensors of one shape and one quantization, as
tflite-micro computes it (kernels/add_n.cc Prepare, reference_ops::AddN for int8).

- Prepare: every input has the first's shape, type, zero point and scale; with s that
  scale, each input is rescaled by s / 2s (QuantizeMultiplierSmallerThanOneExp of 0.5)
  after a shift left by 20 bits, and the sum by 2s / (2^20 * output scale), which must be
  below 1 (tflite-micro aborts otherwise).
- Eval, per element: the sum starts from the rescaled input offset (-zero point) once,
  as tflite-micro's loop does (its `x = input1_offset` term), then adds each input's
  rescaled (x_j - zero point); the sum is rescaled to the output, offset and clamped to
  int8. With more than 15 inputs that sum can leave int32 (undefined in tflite-micro's
  C++): refused.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fixedpoint import multiply_by_quantized_multiplier_smaller_than_one, quantize_multiplier
from ..op import Op
from . import OpDef, register
from .common import require
from .kinds import ADD_N

LEFT_SHIFT = 20  # kAddNIntegerShift
MAX_INPUTS = 15  # (inputs + 1) * 255 * 2^19 stays within int32


@dataclass(frozen=True)
class AddNParams:
    input_offset: int
    input_multiplier: int
    input_shift: int
    output_multiplier: int
    output_shift: int
    output_offset: int


def _smaller_than_one(op: Op, real: float, what: str) -> tuple[int, int]:
    require(0.0 < real < 1.0, op, f"the {what} rescale {real:g} is not in (0, 1) (tflite-micro's Prepare aborts): "
            "the output scale is too small for the inputs'")
    return quantize_multiplier(real)


def rescale_params(op: Op, x, y) -> AddNParams:
    """The constants tflite-micro's ADD_N and CUMSUM Prepare compute from input x's and
    output y's quantization (int8, per tensor)."""
    for t in (x, y):
        require(t.dtype == "int8" and t.quant is not None and not t.quant.per_channel, op,
                f"{t.name!r} must be int8, quantized per tensor (tflite-micro's quantized {op.kind})")
    scale = float(np.float32(x.quant.scalar_scale))
    twice = 2 * scale
    in_mult, in_shift = _smaller_than_one(op, scale / twice, "input")
    out_mult, out_shift = _smaller_than_one(op, twice / ((1 << LEFT_SHIFT) * float(np.float32(y.quant.scalar_scale))),
                                            "output")
    return AddNParams(-x.quant.scalar_zero_point, in_mult, in_shift, out_mult, out_shift, y.quant.scalar_zero_point)


def add_n_params(op: Op) -> AddNParams:
    require(2 <= len(op.inputs) <= MAX_INPUTS and all(t is not None for t in op.inputs) and len(op.outputs) == 1,
            op, f"takes 2 to {MAX_INPUTS} inputs (more can overflow tflite-micro's int32 sum) and one output")
    first = op.inputs[0]
    for t in op.inputs[1:]:
        require(t.shape == first.shape, op, f"input {t.name!r} has shape {list(t.shape)}, the first "
                f"{list(first.shape)}: ADD_N's inputs have one shape")
        require(t.dtype == first.dtype and t.quant is not None and first.quant is not None
                and t.quant.scalar_zero_point == first.quant.scalar_zero_point
                and np.float32(t.quant.scalar_scale) == np.float32(first.quant.scalar_scale), op,
                f"input {t.name!r} is quantized differently from the first: tflite-micro's ADD_N needs one scale "
                "and zero point")
    return rescale_params(op, first, op.output)


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    add_n_params(op)
    return [op.inputs[0].shape]


def macs(op: Op) -> int:
    return 0


def input_regions(op: Op, out) -> list:
    """Each output element reads that element of every input."""
    return [out] * len(op.inputs)


def rescaled(v, p: AddNParams) -> np.ndarray:
    """An offset input value on the sum's scale: (v << 20) times the input multiplier
    (MultiplyByQuantizedMultiplierSmallerThanOneExp), as ADD_N and CUMSUM add it."""
    return multiply_by_quantized_multiplier_smaller_than_one(np.asarray(v, np.int64) << LEFT_SHIFT,
                                                             p.input_multiplier, p.input_shift)


def output_of(total, p: AddNParams) -> np.ndarray:
    """A sum rescaled to the output, offset and clamped to int8."""
    y = multiply_by_quantized_multiplier_smaller_than_one(total, p.output_multiplier, p.output_shift)
    return np.clip(y + p.output_offset, -128, 127)


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    p = add_n_params(op)
    total = rescaled(np.full(op.output.shape, p.input_offset), p)  # tflite-micro's extra offset term
    for x in inputs:
        total = total + rescaled(np.asarray(x, np.int64) + p.input_offset, p)
    return [output_of(total, p).astype(np.int8)]


OPDEF = register(OpDef(ADD_N, None, infer_shapes, macs, input_regions, evaluate))
