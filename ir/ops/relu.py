"""RELU and RELU6 on int8/int16 tensors, as TFLite Micro computes them (activations.cc).

The two differ in TFLM:
- RELU requantizes: y = out_zp + MultiplyByQuantizedMultiplier(x - in_zp, M, shift),
  clamped to [max(type_min, out_zp), type_max], with M, shift = QuantizeMultiplier of
  in_scale / out_scale in double (see relu_params for why double).
- RELU6 does not requantize: it clamps x to [in_zp, six] in the input's own
  quantization, six = clamp(round(6.0f / in_scale) + in_zp), and writes the input's
  integers unchanged. The kernel ignores the output's quantization, and so does mcuc:
  the output bytes are the oracle's even when a model gives the output other params.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier, round_half_away
from ..op import Op
from . import OpDef, Trait, register
from .common import dtype_range, require
from .kinds import RELU, RELU6
from .quantize import identity_regions


@dataclass(frozen=True)
class ReluParams:
    """RELU's integer constants (TFLM's CalculateReluOpData)."""

    input_zero_point: int
    output_zero_point: int
    multiplier: int
    shift: int
    act_min: int
    act_max: int


@dataclass(frozen=True)
class Relu6Params:
    """RELU6's clamp bounds in the input's quantization (TFLM's Relu6Prepare)."""

    zero: int
    six: int


def _check_common(op: Op) -> None:
    require(len(op.inputs) == 1 and op.input is not None, op, "takes exactly one input")
    x, y = op.input, op.output
    require(x.dtype in ("int8", "int16"), op, f"input {x.name!r} is {x.dtype}; only int8 and int16 are supported")
    require(y.dtype == x.dtype, op, f"output {y.name!r} is {y.dtype} but the input is {x.dtype}")
    for t in (x, y):
        require(t.quant is not None and not t.quant.per_channel and float(t.quant.scale[0]) > 0.0, op,
                f"tensor {t.name!r} must have per-tensor quantization with a positive scale")
        # TFLM's ReluPrepare insists on this; Relu6Prepare does not.
        require(op.kind != RELU or t.dtype != "int16" or t.quant.scalar_zero_point == 0, op,
                f"int16 tensor {t.name!r} must have zero point 0")


def relu_params(op: Op) -> ReluParams:
    x, y = op.input, op.output
    # The source reads as a float32 division widened to double, but the pinned oracle
    # computes the ratio in double: over full-range int16 inputs, double matches it on
    # every scale pair tried and float32 on about a third (tests/ir/test_ops_elementwise.py).
    ratio = float(np.float64(x.quant.scale[0])) / float(np.float64(y.quant.scale[0]))
    multiplier, shift = quantize_multiplier(ratio)
    lo, hi = dtype_range(y.dtype)
    zp = y.quant.scalar_zero_point
    # act_min = max(type_min, zp + (int)roundf(0 / scale)) = max(type_min, zp).
    return ReluParams(x.quant.scalar_zero_point, zp, multiplier, shift, max(lo, zp), hi)


def relu6_params(op: Op) -> Relu6Params:
    x = op.input
    lo, hi = dtype_range(x.dtype)
    zp = x.quant.scalar_zero_point
    six = int(round_half_away(np.float64(np.float32(6.0) / np.float32(x.quant.scale[0])))) + zp
    return Relu6Params(zp, min(max(six, lo), hi))


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    _check_common(op)
    return [op.input.shape]


def macs(op: Op) -> int:
    return 0


def relu_evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    p = relu_params(op)
    y = p.output_zero_point + multiply_by_quantized_multiplier(
        inputs[0].astype(np.int64) - p.input_zero_point, p.multiplier, p.shift)
    return [np.clip(y, p.act_min, p.act_max).astype(op.output.dtype)]


def relu6_evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    p = relu6_params(op)
    x = inputs[0].astype(np.int64)
    # The kernel's `val > six ? six : val < zero ? zero : val` (six >= zero always).
    y = np.where(x > p.six, p.six, np.where(x < p.zero, p.zero, x))
    return [y.astype(op.output.dtype)]


RELU_OPDEF = register(OpDef(RELU, None, infer_shapes, macs, identity_regions, relu_evaluate,
                             traits={Trait.ELEMENTWISE, Trait.POSITIONAL, Trait.PATCHABLE}))
RELU6_OPDEF = register(OpDef(RELU6, None, infer_shapes, macs, identity_regions, relu6_evaluate,
                              traits={Trait.ELEMENTWISE, Trait.POSITIONAL, Trait.PATCHABLE}))
