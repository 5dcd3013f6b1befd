"""MAXIMUM, MINIMUM (stored integers compared, mcuc.ir.ops.maximum_minimum) and
SQUARED_DIFFERENCE (TFLM's int8 requantization, mcuc.ir.ops.squared_difference), with
broadcasting through the elementwise loop of ADD and MUL."""
from __future__ import annotations

from llvmlite import ir

from mcuc.ir.ops import kinds
from mcuc.ir.ops.common import dtype_range
from mcuc.ir.ops.squared_difference import squared_difference_params

from ..codegen import KernelCall
from ..fixedpoint import multiply_by_quantized_multiplier, split_shift
from . import register
from .elementwise import _binary_loop


@register(kinds.MAXIMUM, kinds.MINIMUM)
def maximum_minimum(call: KernelCall) -> None:
    em = call.em
    pick = em.smax if call.op.kind == kinds.MAXIMUM else em.smin
    _binary_loop(call, pick)


@register(kinds.SQUARED_DIFFERENCE)
def squared_difference(call: KernelCall) -> None:
    em = call.em
    p = squared_difference_params(call.op)
    left, right = (int(v) for v in split_shift(p.output_shift))

    def scaled(x: ir.Value, offset: int, multiplier: int, shift: int) -> ir.Value:
        shifted = em.b.shl(em.add(x, offset), em.i32(p.left_shift))
        return multiply_by_quantized_multiplier(em, shifted, multiplier, 0, -shift)

    def body(x1: ir.Value, x2: ir.Value) -> ir.Value:
        diff = em.b.sub(scaled(x1, p.input1_offset, p.input1_multiplier, p.input1_shift),
                        scaled(x2, p.input2_offset, p.input2_multiplier, p.input2_shift))
        raw = multiply_by_quantized_multiplier(em, em.b.mul(diff, diff), p.output_multiplier, left, right)
        return em.clamp(em.add(raw, p.output_offset), *dtype_range(call.op.output.dtype))

    _binary_loop(call, body)
