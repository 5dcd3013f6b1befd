"""PRELU of int8 or int16 tensors with an int8 alpha, broadcast either way (TFLM's
prelu.cc, reference_ops::BroadcastPrelu4DSlow through BroadcastBinaryOpSimple).

    (M1, s1) = QuantizeMultiplier(double(in_scale) / double(out_scale))
    (M2, s2) = QuantizeMultiplier(double(in_scale) * double(alpha_scale) / double(out_scale))
    v = x - in_zp
    y = clamp((v >= 0 ? MultiplyByQuantizedMultiplier(v, M1, s1)
                      : MultiplyByQuantizedMultiplier(v * (alpha - alpha_zp), M2, s2)) + out_zp)

clamped to the output type (int16 output: int16 input, int8 alpha, as Prepare requires;
no zero-point rule).

with MultiplyByQuantizedMultiplier the double-rounding one (positive shifts scale up
first, wrapping). Prepare checks nothing else for int8; mcuc refuses per-channel
quantization (the kernel reads one scale and zero point) and ratios of 2^31 or more (a
shift beyond 31 the int32 kernels do not compute alike). Elementwise: may run in place
and inside patch stages, like MAXIMUM.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier
from ..op import Op
from . import OpDef, Trait, register
from .add import binary_input_regions, broadcast_shape
from .common import dtype_range, no_macs, require
from .kinds import PRELU


@dataclass(frozen=True)
class PreluAttrs:
    pass


@dataclass(frozen=True)
class PreluParams:
    input_zero_point: int
    alpha_zero_point: int
    output_zero_point: int
    multiplier1: int
    shift1: int
    multiplier2: int
    shift2: int


def prelu_params(op: Op) -> PreluParams:
    x, alpha, y = op.inputs[0], op.inputs[1], op.output
    for what, t in (("input", x), ("alpha", alpha), ("output", y)):
        require(t.quant is not None and not t.quant.per_channel, op, f"{what} {t.name!r} must be quantized per tensor")
    sx, sa, so = (float(np.float64(t.quant.scale[0])) for t in (x, alpha, y))
    pairs = []
    for what, real in (("input scale / output scale", sx / so), ("input scale x alpha scale / output scale",
                                                                  sx * sa / so)):
        require(np.isfinite(real) and 0.0 <= real < 2.0**31, op,
                f"{what} = {real:g} is outside [0, 2^31): the quantization scales are inconsistent")
        pairs.append(quantize_multiplier(real))
    (m1, s1), (m2, s2) = pairs
    return PreluParams(x.quant.scalar_zero_point, alpha.quant.scalar_zero_point, y.quant.scalar_zero_point,
                       m1, s1, m2, s2)


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    require(len(op.inputs) == 2 and all(t is not None for t in op.inputs) and len(op.outputs) == 1, op,
            "takes an input, alpha and one output")
    x, alpha, y = op.inputs[0], op.inputs[1], op.output
    require(x.dtype in ("int8", "int16") and y.dtype == x.dtype and alpha.dtype == "int8", op,
            f"input {x.dtype}, alpha {alpha.dtype} and output {y.dtype}: PRELU takes int8 or int16 input and "
            "output of one type and an int8 alpha")
    prelu_params(op)
    return [tuple(x.shape) if x.shape == alpha.shape else broadcast_shape(op, x.shape, alpha.shape)]


def prelu_values(p: PreluParams, x, alpha, dtype: str = "int8") -> np.ndarray:
    v = np.asarray(x, np.int64) - p.input_zero_point
    a = np.asarray(alpha, np.int64) - p.alpha_zero_point
    positive = multiply_by_quantized_multiplier(v, p.multiplier1, p.shift1)
    negative = multiply_by_quantized_multiplier(v * a, p.multiplier2, p.shift2)
    return np.clip(np.where(v >= 0, positive, negative) + p.output_zero_point, *dtype_range(dtype))


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    x, alpha = np.broadcast_arrays(np.asarray(inputs[0]), np.asarray(inputs[1]))
    y = prelu_values(prelu_params(op), x, alpha, op.output.dtype)
    return [np.ascontiguousarray(np.broadcast_to(y, op.output.shape)).astype(op.output.dtype)]


OPDEF = register(OpDef(PRELU, PreluAttrs, infer_shapes, no_macs, binary_input_regions, evaluate,
                       traits={Trait.ELEMENTWISE, Trait.POSITIONAL, Trait.PATCHABLE}))
