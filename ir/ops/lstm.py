"""UNIDIRECTIONAL_SEQUENCE_LSTM with int8 activations, int8 weights, int32 biases and an
int16 cell state, or 16x8 (int16 activations with zero point 0, int8 weights, int64
biases), as tflite-micro computes it (unidirectional_sequence_lstm.cc Prepare,
lstm_eval_common.cc PrepareGateParametersInteger, lstm_eval.h/.cc LstmStep).

Inputs (tflite-micro's 24, lstm_shared.h): 0 the input [batch, time, in] ([time, batch,
in] with time_major), 1-4 the input weights and 5-8 the recurrent weights of the input,
forget, cell and output gates ([units, in] and [units, units], int8, zero point 0, one
scale each), 12-15 the gates' biases [units] (int32; int64 for 16x8), 18 the hidden
state (the input's type) and 19 the cell state (int16): both state tensors
(Tensor.state) the op rewrites. No peephole (9-11), projection (16, 17) or layer norm
(20-23): tflite-micro refuses them. Output [batch, time, units] ([time, batch, units]),
the input's type.

- Prepare: each gate's input and recurrent products go to int16 at scale 2^-12
  (QuantizeMultiplier of double(s_x) * double(s_w) / 2^-12; the bias's scale is not
  read); the products of gate outputs (Q0.15, scale 2^-15) to the cell state's scale
  (forget x cell, input x cell gate) and to the hidden state's (with its zero point);
  the cell's tanh takes the rounded log2 p of the cell scale (CheckedLog2): multiplier
  3 << (12 + p), or 3 with a right shift of -(12 + p) when that is negative; the cell clip
  quantized as int16(cell_clip / s_cell), truncated. 16x8: the products are summed in
  int64 with the int64 bias and scaled by the int64 MultiplyByQuantizedMultiplier
  (batch_matmul.multiply_int64); the int16 activations' zero points must be 0.
- Eval, per batch and time step: each gate = int16-saturated sum of the input FC (with
  its bias) and the recurrent FC of the hidden state, each MultiplyByQuantizedMultiplier'd
  and clamped to int16; sigmoid (tanh for the cell gate: the fused activation, TANH in
  every file tflite-micro runs) with tflite-micro's int16 table
  (sigmoid_int16.sigmoid16); cell = sat16(forget x cell + input x cell gate), clipped;
  hidden = tanh(cell) x output gate, to the activations' type with the hidden zero point;
  the output at this step is the hidden state. The int32 sums wrap (tflite-micro's
  compiled loops do).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier, wrap_int32
from ..op import Op
from ..region import Region
from . import OpDef, Trait, register
from .batch_matmul import multiply_int64
from .common import dtype_range, require
from .kinds import UNIDIRECTIONAL_SEQUENCE_LSTM
from .sigmoid_int16 import checked_log2, sigmoid16

INPUT = 0
INPUT_WEIGHTS = (1, 2, 3, 4)  # input, forget, cell, output gate
RECURRENT_WEIGHTS = (5, 6, 7, 8)
BIASES = (12, 13, 14, 15)
HIDDEN_STATE = 18
CELL_STATE = 19
ABSENT = (9, 10, 11, 16, 17, 20, 21, 22, 23)
GATE_SCALE = 2.0 ** -12  # the int16 gate sums (Q3.12)
GATE_OUTPUT_SCALE = 2.0 ** -15  # the gate activations (Q0.15)
INT16 = dtype_range("int16")


@dataclass(frozen=True)
class LstmAttrs:
    cell_clip: float = 0.0
    time_major: bool = False


@dataclass(frozen=True)
class Rescale:
    """MultiplyByQuantizedMultiplier's (multiplier, shift)."""

    multiplier: int
    shift: int

    @staticmethod
    def of(real: float) -> "Rescale":
        return Rescale(*quantize_multiplier(real))

    def apply(self, x):
        return multiply_by_quantized_multiplier(x, self.multiplier, self.shift)

    def apply_int64(self, x):
        """The int64 form (16x8 sums)."""
        return multiply_int64(x, self.multiplier, self.shift)


@dataclass(frozen=True)
class LstmParams:
    dtype: str  # the activations': int8, or int16 (16x8: int64 sums)
    batch: int
    time: int
    inputs: int
    units: int
    input_zero_point: int
    hidden_zero_point: int
    input_fc: tuple[Rescale, ...]  # per gate: input, forget, cell, output
    recurrent_fc: tuple[Rescale, ...]
    forget_cell: Rescale  # forget gate x cell state -> cell state
    input_cell: Rescale  # input gate x cell gate -> cell state
    hidden: Rescale  # tanh(cell) x output gate -> hidden state
    cell_tanh_multiplier: int
    cell_tanh_shift: int
    cell_clip: int  # 0: none


def _scale(t) -> float:
    return float(np.float32(t.quant.scalar_scale))


def _gate_rescale(op: Op, real: float, dtype: str, weights) -> Rescale:
    """A gate product's rescale (double(s_x) * double(s_w) / 2^-12), within the shifts
    tflite-micro's MultiplyByQuantizedMultiplier computes (the int64 form's rounding
    shift 15 - shift must stay positive)."""
    r = Rescale.of(real)
    top = 14 if dtype == "int16" else 30
    require(-31 <= r.shift <= top, op, f"input scale x weight scale / 2^-12 = {real:g} for {weights.name!r} is "
            "outside what tflite-micro's gate rescale computes: the quantization scales are inconsistent")
    return r


def lstm_params(op: Op) -> LstmParams:
    require(len(op.inputs) == 24 and len(op.outputs) == 1, op, "takes tflite-micro's 24 inputs and one output")
    x, y = op.inputs[INPUT], op.output
    hidden, cell = op.inputs[HIDDEN_STATE], op.inputs[CELL_STATE]
    require(x is not None and hidden is not None and cell is not None, op,
            "the input, the hidden state (18) and the cell state (19) are required")
    for k in ABSENT:
        require(op.inputs[k] is None, op, f"input {k} is given: peephole (9-11), projection (16, 17) and layer "
                "norm (20-23) LSTMs are refused by tflite-micro")
    dtype = x.dtype
    require(dtype in ("int8", "int16") and y.dtype == dtype and hidden.dtype == dtype, op,
            f"the input, output and hidden state must all be int8 or all int16 (got {x.dtype}, {y.dtype}, "
            f"{hidden.dtype}), tflite-micro's integer LSTMs")
    bias_dtype = "int32" if dtype == "int8" else "int64"
    require(cell.dtype == "int16", op, f"the cell state must be int16 (got {cell.dtype}), tflite-micro's quantized "
            "LSTM's only cell type")
    require(hidden.state and cell.state, op, "the hidden and cell states (inputs 18 and 19) must be variable tensors")
    require(len(x.shape) == 3 and len(y.shape) == 3, op, "the input and output must be 3-D")
    time, batch = (x.shape[0], x.shape[1]) if op.attrs.time_major else (x.shape[1], x.shape[0])
    inputs = x.shape[2]
    require(len(hidden.shape) == 2, op, f"the hidden state {list(hidden.shape)} must be 2-D: tflite-micro reads "
            "the units from its second dimension")
    units = hidden.shape[1]
    require(batch * units == hidden.size == cell.size and units >= 1, op,
            f"the hidden and cell states must hold batch x units = {batch} x {units} elements")
    require(tuple(y.shape) == (*x.shape[:2], units), op, f"the output must be {[*x.shape[:2], units]}")
    for t in (x, y, hidden, cell):
        require(t.quant is not None and not t.quant.per_channel, op, f"{t.name!r} must be quantized per tensor")
    require(cell.quant.scalar_zero_point == 0, op, "the cell state's zero point must be 0 (symmetric int16)")
    if dtype == "int16":
        zps = [t.quant.scalar_zero_point for t in (x, y, hidden)]
        require(zps == [0, 0, 0], op, f"16x8 input, output and hidden state zero points {zps} must be 0 "
                "(tflite-micro's int16 products take no offsets)")
    input_fc, recurrent_fc = [], []
    for k_in, k_rec, k_bias in zip(INPUT_WEIGHTS, RECURRENT_WEIGHTS, BIASES):
        w_in, w_rec, bias = op.inputs[k_in], op.inputs[k_rec], op.inputs[k_bias]
        require(w_in is not None and w_rec is not None and bias is not None, op,
                f"inputs {k_in}, {k_rec} and {k_bias} (a gate's weights and bias) are required by tflite-micro")
        require(w_in.is_constant and w_rec.is_constant and bias.is_constant, op, "weights and biases must be constant")
        require(tuple(w_in.shape) == (units, inputs) and tuple(w_rec.shape) == (units, units), op,
                f"gate weights {list(w_in.shape)} and {list(w_rec.shape)} must be [{units}, {inputs}] and "
                f"[{units}, {units}]")
        require(tuple(bias.shape) == (units,) and bias.dtype == bias_dtype, op,
                f"gate bias {bias.name!r} must be {bias_dtype} [{units}] for {dtype} activations")
        for w in (w_in, w_rec):
            require(w.dtype == "int8" and w.quant is not None and not w.quant.per_channel, op,
                    f"weights {w.name!r} must be int8 with one scale (tflite-micro's LSTM reads one)")
            require(w.quant.scalar_zero_point == 0, op, f"weights {w.name!r} must have zero point 0")
        input_fc.append(_gate_rescale(op, _scale(x) * _scale(w_in) / GATE_SCALE, dtype, w_in))
        recurrent_fc.append(_gate_rescale(op, _scale(hidden) * _scale(w_rec) / GATE_SCALE, dtype, w_rec))
    s_cell = _scale(cell)
    _, power = checked_log2(s_cell)
    left = 12 + power
    require(left <= 14, op, f"the cell state's scale {s_cell:g} is too coarse for tflite-micro's int16 tanh "
            "(its input multiplier leaves int32)")
    tanh_multiplier, tanh_shift = (3 << left, 0) if left >= 0 else (3, -left)
    clip = 0
    if op.attrs.cell_clip > 0:
        clip = int(min(max(float(np.float32(op.attrs.cell_clip)) / s_cell, -32768.0), 32767.0))
    return LstmParams(
        dtype, batch, time, inputs, units, x.quant.scalar_zero_point, hidden.quant.scalar_zero_point,
        tuple(input_fc), tuple(recurrent_fc),
        Rescale.of(GATE_OUTPUT_SCALE * s_cell / s_cell),
        Rescale.of(GATE_OUTPUT_SCALE * GATE_OUTPUT_SCALE / s_cell),
        Rescale.of(GATE_OUTPUT_SCALE * GATE_OUTPUT_SCALE / _scale(hidden)),
        tanh_multiplier, tanh_shift, clip)


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    p = lstm_params(op)
    x = op.inputs[INPUT]
    return [(*x.shape[:2], p.units)]


def macs(op: Op) -> int:
    p = lstm_params(op)
    return p.batch * p.time * 4 * p.units * (p.inputs + p.units)


def input_regions(op: Op, out: Region) -> list[Region | None]:
    """Every output reads the whole input and both states (not patchable)."""
    regions: list[Region | None] = [None] * len(op.inputs)
    for k in (INPUT, HIDDEN_STATE, CELL_STATE):
        regions[k] = Region.full(op.inputs[k].shape)
    return regions


def _clamp16(v):
    return np.clip(v, *INT16)


def _mul(a, b, rescale: Rescale, zero_point: int, lo: int, hi: int):
    """reference_integer_ops::MulElementwise of symmetric int16 inputs."""
    return np.clip(zero_point + rescale.apply(np.asarray(a, np.int64) * b), lo, hi)


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    p = lstm_params(op)
    x = np.asarray(inputs[INPUT], np.int64)
    if not op.attrs.time_major:
        x = x.transpose(1, 0, 2)  # [time, batch, in]: batches are independent
    hidden = np.asarray(inputs[HIDDEN_STATE], np.int64).reshape(p.batch, p.units)
    cell = np.asarray(inputs[CELL_STATE], np.int64).reshape(p.batch, p.units)
    w_in = [np.asarray(inputs[k], np.int64) for k in INPUT_WEIGHTS]
    w_rec = [np.asarray(inputs[k], np.int64) for k in RECURRENT_WEIGHTS]
    biases = [np.asarray(inputs[k], np.int64) for k in BIASES]
    outputs = np.zeros((p.time, p.batch, p.units), np.int64)
    lo, hi = dtype_range(p.dtype)

    def product(values, weights, rescale: Rescale, bias=0):
        total = values @ weights.T + bias
        return _clamp16(rescale.apply(wrap_int32(total)) if p.dtype == "int8" else rescale.apply_int64(total))

    for t in range(p.time):
        gates = []
        for g in range(4):
            a = product(x[t] - p.input_zero_point, w_in[g], p.input_fc[g], biases[g])
            r = product(hidden - p.hidden_zero_point, w_rec[g], p.recurrent_fc[g])
            gates.append(sigmoid16(_clamp16(a + r), 3, 0, tanh=g == 2).astype(np.int64))
        i_gate, f_gate, c_gate, o_gate = gates
        cell = _mul(f_gate, cell, p.forget_cell, 0, *INT16)
        cell = _clamp16(cell + _mul(i_gate, c_gate, p.input_cell, 0, *INT16))
        if p.cell_clip:
            cell = np.maximum(np.minimum(cell, p.cell_clip), -p.cell_clip)
        squashed = sigmoid16(cell, p.cell_tanh_multiplier, p.cell_tanh_shift, tanh=True).astype(np.int64)
        hidden = _mul(squashed, o_gate, p.hidden, p.hidden_zero_point, lo, hi)
        outputs[t] = hidden
    if not op.attrs.time_major:
        outputs = outputs.transpose(1, 0, 2)
    hidden_t, cell_t = op.inputs[HIDDEN_STATE], op.inputs[CELL_STATE]
    return [outputs.astype(p.dtype), hidden.reshape(hidden_t.shape).astype(p.dtype),
            cell.reshape(cell_t.shape).astype(np.int16)]


OPDEF = register(OpDef(UNIDIRECTIONAL_SEQUENCE_LSTM, LstmAttrs, infer_shapes, macs, input_regions, evaluate,
                       traits={Trait.STATEFUL}, state_inputs=(HIDDEN_STATE, CELL_STATE)))
