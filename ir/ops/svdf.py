"""SVDF (int8 input and output, int16 or int8 time weights and state), as tflite-micro
computes it (kernels/svdf_common.cc: PrepareSvdf, EvalIntegerSvdfReference).

Inputs: x [batch, input] int8, weights_feature [filters, input] int8, weights_time
[filters, memory] of the state's type T, bias [units] int32 (filters = units * rank), and
the state [batch, filters * memory] of type T: a state tensor (Tensor.state) that the op
rewrites at every invocation (tflite-micro's variable tensor). Output [batch, units] int8.

- Prepare: every tensor quantized per tensor; effective_scale_1 = s_x * s_wf / s_state
  and effective_scale_2 = s_state * s_wt / s_y, each computed in float32 and widened
  (QuantizeMultiplier of the double); the bias scale within 1e-5 of s_state * s_wt
  (tflite-micro's Prepare reads the bias's scale, so a model without a bias does not
  run there and is refused here). The weights' zero points are not read.
- Eval, per batch: the state moves left by one element (its whole buffer: every
  filter's oldest value drops out); each filter's feature sum, sum_c wf[f, c] * (x[c] -
  x_zp), goes through MultiplyByQuantizedMultiplier(scale_1), is clamped to T, plus the
  state's zero point (stored as T: it wraps, as tflite-micro's conversion does), into the
  filter's newest state element; each filter's time sum, sum_j wt[f, j] * (state[f, j] -
  state_zp); each unit's bias plus the time sums of its `rank` filters;
  MultiplyByQuantizedMultiplier(scale_2), plus y_zp, clamped to int8. The int32 sums wrap
  (tflite-micro's compiled loops do; mcuc's backends wrap the same way). The fused
  activation is not applied: tflite-micro's integer path ignores it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier, wrap_int32
from ..op import Op
from ..region import Region
from ..tensor import Tensor
from . import OpDef, Trait, register
from .common import require
from .kinds import SVDF

STATE_INPUT = 4
BIAS_SCALE_TOLERANCE = 1e-5


@dataclass(frozen=True)
class SvdfAttrs:
    rank: int


@dataclass(frozen=True)
class SvdfParams:
    """Everything the kernels need, from the op's tensors (PrepareSvdf's OpDataSvdf)."""

    batch: int
    inputs: int
    filters: int
    units: int
    memory: int
    rank: int
    state_dtype: str
    input_zero_point: int
    state_zero_point: int
    output_zero_point: int
    multiplier_1: int
    shift_1: int
    multiplier_2: int
    shift_2: int


def _per_tensor(op: Op, t: Tensor, what: str, dtypes: tuple[str, ...]) -> None:
    require(t.dtype in dtypes, op, f"the {what} {t.name!r} is {t.dtype}; tflite-micro's integer SVDF takes "
            f"{' or '.join(dtypes)}")
    require(t.quant is not None and not t.quant.per_channel, op,
            f"the {what} {t.name!r} must be quantized per tensor (tflite-micro reads one scale)")


def _multiplier(op: Op, real: np.float32, what: str) -> tuple[int, int]:
    multiplier, shift = quantize_multiplier(float(real))
    require(real > 0 and -31 <= shift <= 30, op, f"the {what} rescale {float(real):g} is out of the range "
            "tflite-micro's MultiplyByQuantizedMultiplier computes exactly (2^-32 .. 2^30)")
    return multiplier, shift


def svdf_params(op: Op) -> SvdfParams:
    require(len(op.inputs) == 5 and len(op.outputs) == 1, op,
            "takes five inputs (input, weights_feature, weights_time, bias, state) and one output")
    x, wf, wt, bias, state = op.inputs
    require(x is not None and wf is not None and wt is not None and state is not None, op,
            "the input, both weights and the state are required")
    require(bias is not None, op, "has no bias; tflite-micro's Prepare reads the bias's scale, so it cannot run "
            "such a model: give the SVDF a zero int32 bias")
    y = op.output
    rank = op.attrs.rank
    require(len(x.shape) == 2 and len(wf.shape) == 2 and len(wt.shape) == 2 and len(state.shape) == 2, op,
            "the input, weights and state must be 2-D (tflite-micro's Prepare)")
    batch, inputs = x.shape
    filters, memory = wf.shape[0], wt.shape[1]
    require(rank >= 1 and filters % rank == 0, op, f"rank {rank} must divide the {filters} filters")
    units = filters // rank
    require(wf.shape[1] == inputs and wt.shape[0] == filters, op,
            f"weights_feature {list(wf.shape)} and weights_time {list(wt.shape)} do not fit input {list(x.shape)}")
    require(memory >= 1, op, "weights_time needs at least one memory column")
    require(tuple(state.shape) == (batch, filters * memory), op,
            f"the state {list(state.shape)} must be [{batch}, {filters * memory}] (batch, filters x memory)")
    require(state.state, op, f"input 4 {state.name!r} must be a variable tensor (the state)")
    require(wf.is_constant and wt.is_constant and bias.is_constant, op, "the weights and the bias must be constant")
    require(tuple(bias.shape) == (units,), op, f"the bias {list(bias.shape)} must be [{units}] (one per unit)")
    require(tuple(y.shape) == (batch, units), op, f"the output must be [{batch}, {units}]")
    _per_tensor(op, x, "input", ("int8",))
    _per_tensor(op, y, "output", ("int8",))
    _per_tensor(op, wf, "feature weights", ("int8",))
    _per_tensor(op, wt, "time weights", ("int16", "int8"))
    _per_tensor(op, state, "state", (wt.dtype,))
    require(bias.dtype == "int32" and bias.quant is not None and not bias.quant.per_channel, op,
            "the bias must be int32, quantized per tensor")
    s_x, s_wf, s_wt, s_state, s_y, s_bias = (np.float32(t.quant.scalar_scale) for t in (x, wf, wt, state, y, bias))
    time_scale = np.float32(s_state * s_wt)
    require(abs(float(s_bias) - float(time_scale)) < BIAS_SCALE_TOLERANCE, op,
            f"the bias scale {float(s_bias):g} must be within {BIAS_SCALE_TOLERANCE:g} of state scale x time "
            f"weights scale {float(time_scale):g} (tflite-micro's Prepare)")
    m1, e1 = _multiplier(op, np.float32(np.float32(s_x * s_wf) / s_state), "feature")
    m2, e2 = _multiplier(op, np.float32(time_scale / s_y), "output")
    return SvdfParams(batch, inputs, filters, units, memory, rank, state.dtype, x.quant.scalar_zero_point,
                      state.quant.scalar_zero_point, y.quant.scalar_zero_point, m1, e1, m2, e2)


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    p = svdf_params(op)
    return [(p.batch, p.units)]


def macs(op: Op) -> int:
    p = svdf_params(op)
    return p.batch * p.filters * (p.inputs + p.memory)


def input_regions(op: Op, out: Region) -> list[Region | None]:
    """Every output reads the whole input and state (not patchable)."""
    x, state = op.inputs[0], op.inputs[STATE_INPUT]
    return [Region.full(x.shape), None, None, None, Region.full(state.shape)]


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    p = svdf_params(op)
    x, wf, wt, bias, state = (np.asarray(v, np.int64) for v in inputs)
    flat = state.reshape(-1)
    shifted = np.concatenate([flat[1:], flat[-1:]])  # the whole buffer moves left by one
    state = shifted.reshape(p.batch, p.filters, p.memory)
    features = wrap_int32((x - p.input_zero_point) @ wf.T)  # [batch, filters]
    info = np.iinfo(p.state_dtype)
    newest = np.clip(multiply_by_quantized_multiplier(features, p.multiplier_1, p.shift_1), info.min, info.max)
    state[:, :, -1] = (newest + p.state_zero_point).astype(p.state_dtype)  # wraps, as the C++ conversion
    times = wrap_int32(np.einsum("bfm,fm->bf", state - p.state_zero_point, wt))  # [batch, filters]
    sums = wrap_int32(bias + times.reshape(p.batch, p.units, p.rank).sum(axis=-1))
    y = multiply_by_quantized_multiplier(sums, p.multiplier_2, p.shift_2) + p.output_zero_point
    return [np.clip(y, -128, 127).astype(np.int8), state.reshape(p.batch, -1).astype(p.state_dtype)]


OPDEF = register(OpDef(SVDF, SvdfAttrs, infer_shapes, macs, input_regions, evaluate,
                       traits={Trait.STATEFUL}, state_inputs=(STATE_INPUT,)))
