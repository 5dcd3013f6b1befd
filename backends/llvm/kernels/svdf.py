"""SVDF (mcuc.ir.ops.svdf): tflite-micro's integer SVDF over the state area.

The state moves left by one element, each filter's feature sum becomes its newest state
element, each filter's time sum goes into a stack array, and each unit sums its rank's
time sums onto its bias before the output stage. The int32 sums wrap (LLVM's add and mul
without nsw), as the op's evaluate does.
"""
from __future__ import annotations

import numpy as np

from mcuc.ir.ops import kinds
from mcuc.ir.ops.svdf import STATE_INPUT, svdf_params

from ..codegen import KernelCall
from ..emitter import I32
from ..fixedpoint import multiply_by_quantized_multiplier
from . import register


def _rescale(em, acc, multiplier: int, shift: int):
    return multiply_by_quantized_multiplier(em, acc, multiplier, max(shift, 0), max(-shift, 0))


@register(kinds.SVDF)
def svdf(call: KernelCall) -> None:
    em, op = call.em, call.op
    b = em.b
    p = svdf_params(op)
    x_t, wf_t, wt_t, bias_t, state_t = op.inputs
    x, wf, wt, bias = (call.value_ptr(t) for t in (x_t, wf_t, wt_t, bias_t))
    state, y = call.ptr(state_t), call.ptr(op.output)
    assert op.inputs[STATE_INPUT] is state_t
    info = np.iinfo(p.state_dtype)
    # The whole buffer moves left by one element (memmove: the ranges overlap).
    em.memcpy(state, b.gep(state, [em.i64(1)], inbounds=True), (state_t.size - 1) * state_t.itemsize)
    times = em.slot(I32, "times", count=p.filters)
    acc = em.slot(I32, "acc")
    row = p.filters * p.memory
    with em.loop(p.batch, "batch") as n:
        with em.loop(p.filters, "f") as f:
            b.store(em.i32(0), acc)
            with em.loop(p.inputs, "c") as c:
                xv = em.add(em.load_i32(x, em.index([(n, p.inputs), (c, 1)]), x_t.dtype), -p.input_zero_point)
                wv = em.load_i32(wf, em.index([(f, p.inputs), (c, 1)]), wf_t.dtype)
                b.store(b.add(b.load(acc), b.mul(wv, xv)), acc)
            newest = em.clamp(_rescale(em, b.load(acc), p.multiplier_1, p.shift_1), int(info.min), int(info.max))
            at = em.index([(n, row), (f, p.memory)], base=p.memory - 1)
            em.store(em.narrow(em.add(newest, p.state_zero_point), p.state_dtype), state, at)
        with em.loop(p.filters, "f") as f:
            b.store(em.i32(0), acc)
            with em.loop(p.memory, "m") as m:
                sv = em.add(em.load_i32(state, em.index([(n, row), (f, p.memory), (m, 1)]), p.state_dtype),
                            -p.state_zero_point)
                wv = em.load_i32(wt, em.index([(f, p.memory), (m, 1)]), wt_t.dtype)
                b.store(b.add(b.load(acc), b.mul(wv, sv)), acc)
            em.store(b.load(acc), times, f)
        with em.loop(p.units, "u") as u:
            b.store(em.load_i32(bias, u, bias_t.dtype), acc)
            with em.loop(p.rank, "r") as r:
                b.store(b.add(b.load(acc), em.load(times, em.index([(u, p.rank), (r, 1)]))), acc)
            # Clamped before the zero point is added: the same as int8's clamp of the sum, with no overflow.
            scaled = em.clamp(_rescale(em, b.load(acc), p.multiplier_2, p.shift_2),
                              -128 - p.output_zero_point, 127 - p.output_zero_point)
            em.store(em.narrow(em.add(scaled, p.output_zero_point), "int8"), y, em.index([(n, p.units), (u, 1)]))
