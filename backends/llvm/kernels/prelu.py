"""PRELU (int8 or int16 with an int8 alpha, mcuc.ir.ops.prelu): the two output stages chosen per element by the sign of
x - x_zp, with broadcasting through the elementwise loop of ADD and MUL."""
from __future__ import annotations

from llvmlite import ir

from mcuc.ir.numerics import TFLiteQ31
from mcuc.ir.ops import kinds
from mcuc.ir.ops.common import dtype_range
from mcuc.ir.ops.prelu import prelu_params

from ..codegen import KernelCall
from ..fixedpoint import multiply_by_quantized_multiplier, split_shift
from . import register
from .elementwise import _binary_loop


@register(kinds.PRELU, numerics=TFLiteQ31)
def prelu(call: KernelCall) -> None:
    em = call.em
    p = prelu_params(call.op)
    l1, r1 = (int(v) for v in split_shift(p.shift1))
    l2, r2 = (int(v) for v in split_shift(p.shift2))

    def body(x: ir.Value, alpha: ir.Value) -> ir.Value:
        v = em.add(x, -p.input_zero_point)
        positive = multiply_by_quantized_multiplier(em, v, p.multiplier1, l1, r1)
        negative = multiply_by_quantized_multiplier(em, em.b.mul(v, em.add(alpha, -p.alpha_zero_point)),
                                                    p.multiplier2, l2, r2)
        raw = em.b.select(em.b.icmp_signed(">=", v, em.i32(0)), positive, negative)
        return em.clamp(em.add(raw, p.output_zero_point), *dtype_range(call.op.output.dtype))

    _binary_loop(call, body)
