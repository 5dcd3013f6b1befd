"""Cortex-M C for the ops that keep state between invocations: SVDF (int8, int16 or int8
state; runtime_c/mcuc_svdf.h) and UNIDIRECTIONAL_SEQUENCE_LSTM (int8 or 16x8, an int16
cell; runtime_c/mcuc_lstm.h). Their weight rows are dot products (runtime_c/mcuc_dot.h:
SMLAD on DSP cores, portable C elsewhere) from start values folded here (the zero points'
share). The state tensors' addresses lie in the state area, which caller_io.relocate maps
to the model's state array. `emit` returns (declarations, call, runtime headers) for
kernels.py's emitter table, as kernels_norm.py does."""
from __future__ import annotations

import numpy as np

from mcuc.ir.errors import MCUCError
from mcuc.ir.ops import kinds, lstm
from mcuc.ir.ops.batch_matmul import reduced_multiplier
from mcuc.ir.ops.sigmoid_int16 import sigmoid_table
from mcuc.ir.ops.svdf import svdf_params
from mcuc.ir.program import Program, ScratchRequest, Step

from .c_syntax import c_comment
from .constants import folded_bias
from .kernels_binary import arena_offset, c_array

SVDF_H = "mcuc_svdf.h"
LSTM_H = "mcuc_lstm.h"
_STATE_KERNELS = {"int16": ("mcuc_svdf_s8_s16", "int16_t"), "int8": ("mcuc_svdf_s8_s8", "int8_t")}


def scratch_requests(op) -> list[ScratchRequest]:
    """SVDF: one int32 time sum per filter (mcuc_svdf_get_buffer_size); LSTM: the four
    int16 gates of one step (mcuc_lstm_get_buffer_size)."""
    if op.kind == kinds.UNIDIRECTIONAL_SEQUENCE_LSTM:
        return [ScratchRequest(f"{op.name or 'lstm'}.gates", 4 * lstm.lstm_params(op).units * 2, 4)]
    return [ScratchRequest(f"{op.name or 'svdf'}.times", svdf_params(op).filters * 4, 4)]


def _scratch_offset(step: Step, size: int) -> int:
    if len(step.scratch) != 1 or step.scratch[0].size < size:
        raise MCUCError(f"{step.op.label}: the plan has no scratch of {size} B for it; plan with the Cortex-M "
                        "backend's scratch requests")
    return step.scratch[0].offset


def emit(site, step: Step, program: Program) -> tuple[str, str, tuple[str, ...]]:
    op = step.op
    if op.kind == kinds.UNIDIRECTIONAL_SEQUENCE_LSTM:
        return _emit_lstm(site, step, program)
    if op.kind != kinds.SVDF:
        raise MCUCError(f"{op.label}: kernels_recurrent has no kernel for {op.kind}")
    p = svdf_params(op)
    x, wf, wt, bias, state = op.inputs
    kernel, ctype = _STATE_KERNELS[p.state_dtype]
    name, fn = site.name, site.fn
    decls = [f"/* {c_comment(op.label)}: rank {p.rank}, memory {p.memory}, {p.state_dtype} state */\n"]
    starts = {"feature_start": _nonzero(folded_bias(None, wf.data, p.input_zero_point)),
              "time_start": _nonzero(folded_bias(None, wt.data, p.state_zero_point))}
    if site.first:
        fields = (p.batch, p.inputs, p.filters, p.units, p.memory, p.rank, p.state_zero_point,
                  p.output_zero_point, p.multiplier_1, p.shift_1, p.multiplier_2, p.shift_2)
        decls.append(f"static const mcuc_svdf_params_t {fn}_params = {{{', '.join(str(int(v)) for v in fields)}}};\n")
        decls.append(c_array("int8_t", f"{fn}_weights_feature", wf.data))
        decls.append(c_array(ctype, f"{fn}_weights_time", wt.data))
        decls.append(c_array("int32_t", f"{fn}_bias", bias.data))
        decls += [c_array("int32_t", f"{fn}_{label}", start) for label, start in starts.items() if start is not None]
    start_args = ", ".join("NULL" if start is None else f"{fn}_{label}" for label, start in starts.items())
    x_at, y_at = arena_offset(program, x, op.label), arena_offset(program, op.output, op.label)
    state_at = arena_offset(program, state, op.label)
    times_at = _scratch_offset(step, p.filters * 4)
    decls.append(f"MCUC_STEP void {name}(uint8_t *arena)\n{{\n"
                 f"    {kernel}(&{fn}_params, (const int8_t *)(const void *)(arena + {x_at}), {fn}_weights_feature, "
                 f"{fn}_weights_time, {fn}_bias, {start_args}, ({ctype} *)(void *)(arena + {state_at}), "
                 f"(int32_t *)(void *)(arena + {times_at}), (int8_t *)(void *)(arena + {y_at}));\n}}\n")
    return "".join(decls), f"{name}(arena);", (SVDF_H,)


def _emit_lstm(site, step: Step, program: Program) -> tuple[str, str, tuple[str, ...]]:
    op = step.op
    p = lstm.lstm_params(op)
    name, fn = site.name, site.fn
    decls = [f"/* {c_comment(op.label)}: {p.units} units, {p.time} steps x {p.batch} batch, int16 cell */\n"]
    if site.first:
        def rescales(values, wide: bool = False) -> str:
            # 16x8 gate products: mcuc_mbqm64's (15-bit multiplier, total shift)
            pairs = [(reduced_multiplier(r.multiplier), 15 - r.shift) if wide else (r.multiplier, r.shift)
                     for r in values]
            return ", ".join(f"{{{m}, {s}}}" for m, s in pairs)

        wide = p.dtype == "int16"
        fields = (f"{p.batch}, {p.time}, {p.inputs}, {p.units}, {int(op.attrs.time_major)}, {p.hidden_zero_point}, "
                  f"{{{rescales(p.input_fc, wide)}}}, {{{rescales(p.recurrent_fc, wide)}}}, "
                  f"{rescales((p.forget_cell, p.input_cell, p.hidden))}, "
                  f"{p.cell_tanh_multiplier}, {p.cell_tanh_shift}, {p.cell_clip}")
        decls.append(f"static const mcuc_lstm_params_t {fn}_params = {{{fields}}};\n")
        for label, positions in (("w_in", lstm.INPUT_WEIGHTS), ("w_rec", lstm.RECURRENT_WEIGHTS)):
            decls.append(_pointer_table("int8_t", f"{fn}_{label}", [op.inputs[k].data for k in positions]))
        decls.append(_pointer_table("int64_t" if wide else "int32_t", f"{fn}_bias_in", _lstm_input_biases(op, p)))
        decls.append(_pointer_table("int64_t" if wide else "int32_t", f"{fn}_bias_rec",
                                    _lstm_recurrent_biases(op, p)))
        decls.append(c_array("uint16_t", f"{fn}_sigmoid", sigmoid_table()))
    at = {k: arena_offset(program, op.inputs[k], op.label) for k in (lstm.INPUT, lstm.HIDDEN_STATE, lstm.CELL_STATE)}
    y_at = arena_offset(program, op.output, op.label)
    gates_at = _scratch_offset(step, 4 * p.units * 2)
    kernel, ctype = ("mcuc_lstm_s8", "int8_t") if p.dtype == "int8" else ("mcuc_lstm_s16", "int16_t")
    decls.append(f"MCUC_STEP void {name}(uint8_t *arena)\n{{\n"
                 f"    {kernel}(&{fn}_params, (const {ctype} *)(const void *)(arena + {at[lstm.INPUT]}), "
                 f"{fn}_w_in, {fn}_w_rec, {fn}_bias_in, {fn}_bias_rec, "
                 f"({ctype} *)(void *)(arena + {at[lstm.HIDDEN_STATE]}), "
                 f"(int16_t *)(void *)(arena + {at[lstm.CELL_STATE]}), (int16_t *)(void *)(arena + {gates_at}), "
                 f"({ctype} *)(void *)(arena + {y_at}), {fn}_sigmoid);\n}}\n")
    return "".join(decls), f"{name}(arena);", (LSTM_H,)


def _pointer_table(ctype: str, name: str, rows: list) -> str:
    """One constant array per gate (`name`0..3; a None row is a NULL pointer) and the table
    of the four, `name`."""
    arrays = [c_array(ctype, f"{name}{g}", row) for g, row in enumerate(rows) if row is not None]
    pointers = ", ".join("NULL" if row is None else f"{name}{g}" for g, row in enumerate(rows))
    return "".join(arrays) + f"static const {ctype} *const {name}[4] = {{{pointers}}};\n"


def _lstm_input_biases(op, p: lstm.LstmParams) -> list[np.ndarray]:
    """Per gate, the input product's start value per unit: the bias minus the input zero
    point times the row's weight sum (int32, wrapped; 16x8 has zero points 0 and int64 biases)."""
    biases = [op.inputs[k].data for k in lstm.BIASES]
    if p.dtype == "int16":
        return biases
    return [folded_bias(b, op.inputs[k].data, p.input_zero_point) for b, k in zip(biases, lstm.INPUT_WEIGHTS)]


def _lstm_recurrent_biases(op, p: lstm.LstmParams) -> list[np.ndarray | None]:
    """Per gate, the recurrent product's start value per unit (minus the hidden zero point
    times the row's weight sum), None where it is 0 for every unit."""
    return [_nonzero(folded_bias(None, op.inputs[k].data, p.hidden_zero_point)) for k in lstm.RECURRENT_WEIGHTS]


def _nonzero(start: np.ndarray) -> np.ndarray | None:
    """Start values of a dot product, or None (NULL in C: start from 0) when all are 0."""
    return start if start.any() else None
