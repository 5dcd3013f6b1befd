"""The ops that keep state between invocations, over the state area: SVDF
(mcuc.ir.ops.svdf) and UNIDIRECTIONAL_SEQUENCE_LSTM (mcuc.ir.ops.lstm). The int32 sums
wrap (LLVM's add and mul without nsw), as the ops' evaluate do.

SVDF: the state moves left by one element, each filter's feature sum becomes its newest
state element, each filter's time sum goes into a stack array, and each unit sums its
rank's time sums onto its bias before the output stage.

LSTM: per batch and time step, each gate's two products (the input's with its bias, the
hidden state's) to int16, their saturated sum through a 65536-entry table of the gate's
activation (sigmoid_int16.sigmoid16 of every int16), into a stack array; then per unit
the cell update, the cell's tanh (a table as well) and the hidden state, which is also
the step's output.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir

from mcuc.ir.ops import kinds, lstm
from mcuc.ir.ops.common import dtype_range
from mcuc.ir.ops.sigmoid_int16 import sigmoid16
from mcuc.ir.ops.svdf import svdf_params

from ..codegen import KernelCall
from ..emitter import I32, I64
from ..fixedpoint import multiply_by_quantized_multiplier, multiply_int64_constant
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


INT16 = lstm.INT16
_INT16_VALUES = np.arange(INT16[0], INT16[1] + 1, dtype=np.int64)


def _table16(em, multiplier: int, shift: int, tanh: bool, hint: str):
    """A pointer to the activation of every int16 (index: value + 32768)."""
    return em.const_ptr(sigmoid16(_INT16_VALUES, multiplier, shift, tanh), hint, "int16")


def _lookup16(em, table, value):
    """table[value + 32768] widened to i32 (value: an i32 within int16)."""
    index = em.b.zext(em.add(value, 32768), I64)
    return em.load_i32(table, index, "int16")


def _mul16(em, a, b_, rescale: "lstm.Rescale", zero_point: int, lo: int, hi: int):
    """MulElementwise of two symmetric int16 values, clamped before the zero point is
    added (the same as the clamp of the sum, with no overflow)."""
    product = _rescale(em, em.b.mul(a, b_), rescale.multiplier, rescale.shift)
    return em.add(em.clamp(product, lo - zero_point, hi - zero_point), zero_point)


def _gate_stage(em, wide: bool, total, rescale: "lstm.Rescale"):
    """A gate product's sum to int16: Q31 MultiplyByQuantizedMultiplier of the int32 sum,
    or (16x8) the int64 one (mcuc.ir.ops.batch_matmul.multiply_int64), then the clamp."""
    if not wide:
        return em.clamp(_rescale(em, total, rescale.multiplier, rescale.shift), *INT16)
    return em.clamp(multiply_int64_constant(em, total, rescale.multiplier, rescale.shift), *INT16)


@register(kinds.UNIDIRECTIONAL_SEQUENCE_LSTM)
def unidirectional_sequence_lstm(call: KernelCall) -> None:
    em, op = call.em, call.op
    b = em.b
    p = lstm.lstm_params(op)
    wide = p.dtype == "int16"  # 16x8: int64 sums and stage
    acc_type = I64 if wide else I32

    def widen(v):
        return b.sext(v, I64) if wide else v

    x_t, y_t = op.inputs[lstm.INPUT], op.output
    hidden_t, cell_t = op.inputs[lstm.HIDDEN_STATE], op.inputs[lstm.CELL_STATE]
    x, y, hidden, cell = call.value_ptr(x_t), call.ptr(y_t), call.ptr(hidden_t), call.ptr(cell_t)
    w_in = [call.value_ptr(op.inputs[k]) for k in lstm.INPUT_WEIGHTS]
    w_rec = [call.value_ptr(op.inputs[k]) for k in lstm.RECURRENT_WEIGHTS]
    biases = [call.value_ptr(op.inputs[k]) for k in lstm.BIASES]
    sigmoid = _table16(em, 3, 0, False, call.hint("sigmoid"))
    gate_tanh = _table16(em, 3, 0, True, call.hint("tanh"))
    cell_tanh = _table16(em, p.cell_tanh_multiplier, p.cell_tanh_shift, True, call.hint("cell_tanh"))
    gates = em.slot(I32, "gates", count=4 * p.units)
    acc = em.slot(acc_type, "acc")
    lo, hi = INT16
    units, inputs = p.units, p.inputs
    with em.loop(p.batch, "batch") as n, em.loop(p.time, "t") as t:
        step = em.index([(t, p.batch), (n, 1)]) if op.attrs.time_major else em.index([(n, p.time), (t, 1)])
        for g in range(4):
            with em.loop(units, f"u{g}") as u:
                b.store(em.widen(em.load(biases[g], u), op.inputs[lstm.BIASES[g]].dtype, acc_type), acc)
                with em.loop(inputs, "k") as k:
                    xv = em.add(em.load_i32(x, b.add(b.mul(step, em.i64(inputs)), k), x_t.dtype),
                                -p.input_zero_point)
                    wv = em.load_i32(w_in[g], em.index([(u, inputs), (k, 1)]), "int8")
                    b.store(b.add(b.load(acc), widen(b.mul(wv, xv))), acc)
                from_input = _gate_stage(em, wide, b.load(acc), p.input_fc[g])
                b.store(ir.Constant(acc_type, 0), acc)
                with em.loop(units, "k") as k:
                    hv = em.add(em.load_i32(hidden, em.index([(n, units), (k, 1)]), hidden_t.dtype),
                                -p.hidden_zero_point)
                    wv = em.load_i32(w_rec[g], em.index([(u, units), (k, 1)]), "int8")
                    b.store(b.add(b.load(acc), widen(b.mul(wv, hv))), acc)
                from_hidden = _gate_stage(em, wide, b.load(acc), p.recurrent_fc[g])
                total = em.clamp(b.add(from_input, from_hidden), lo, hi)
                em.store(_lookup16(em, gate_tanh if g == 2 else sigmoid, total), gates,
                         em.index([(u, 1)], base=g * units))
        with em.loop(units, "u") as u:
            def gate(g):
                return em.load(gates, em.index([(u, 1)], base=g * units))

            at = em.index([(n, units), (u, 1)])
            c = _mul16(em, gate(1), em.load_i32(cell, at, "int16"), p.forget_cell, 0, lo, hi)
            c = em.clamp(b.add(c, _mul16(em, gate(0), gate(2), p.input_cell, 0, lo, hi)), lo, hi)
            if p.cell_clip:
                c = em.clamp(c, -p.cell_clip, p.cell_clip)
            em.store(em.narrow(c, "int16"), cell, at)
            h = _mul16(em, _lookup16(em, cell_tanh, c), gate(3), p.hidden, p.hidden_zero_point, *dtype_range(p.dtype))
            em.store(em.narrow(h, p.dtype), hidden, at)
            em.store(em.narrow(h, p.dtype), y, b.add(b.mul(step, em.i64(units)), u))
