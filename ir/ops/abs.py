"""ABS, int8 in, int8 out, as TFLite Micro computes it (kernels/elementwise.cc,
PrepareAbsRsqrt and AbsEvalQuantized).

- Prepare: needs_rescale is input_scale != output_scale (float32 compare); when it
  rescales, (multiplier, shift) = QuantizeMultiplier(double(in_scale) / double(out_scale))
  (the division in double, as SetAbsOutputMultiplier widens both scales first).
- Eval, per element: v = |x - in_zp|; without rescale y = v + out_zp, with rescale
  y = MultiplyByQuantizedMultiplier(v, multiplier, shift) + out_zp; clamped to int8.
TFLM also has int16 ABS (zero points 0); mcuc does int8 only.
"""
from __future__ import annotations

import numpy as np

from ..fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier
from ..op import Op
from . import OpDef, Trait, register
from .common import int8_unary_shapes, no_macs, same_region
from .kinds import ABS


def abs_params(op: Op) -> tuple[bool, int, int]:
    """(needs_rescale, multiplier, shift) of TFLM's Prepare."""
    s_in, s_out = np.float32(op.input.quant.scale[0]), np.float32(op.output.quant.scale[0])
    if s_in == s_out:
        return False, 0, 0
    multiplier, shift = quantize_multiplier(float(s_in) / float(s_out))
    return True, multiplier, shift


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    needs_rescale, multiplier, shift = abs_params(op)
    v = np.abs(inputs[0].astype(np.int64) - op.input.quant.scalar_zero_point)
    if needs_rescale:
        v = multiply_by_quantized_multiplier(v, multiplier, shift)
    y = np.clip(v + op.output.quant.scalar_zero_point, -128, 127)
    return [y.astype(np.int8)]


OPDEF = register(OpDef(ABS, None, int8_unary_shapes, no_macs, same_region, evaluate,
                        traits={Trait.ELEMENTWISE, Trait.POSITIONAL, Trait.PATCHABLE}))
