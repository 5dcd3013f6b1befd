"""Compile-time work for the Cortex-M kernels: bias and zero-point corrections folded
into per-channel constants, weights reordered into the order the kernels read them,
requantization constants, and tables of per-element ops.

Everything here is numpy on the model's constants; the C kernels (runtime_c/) only do
what cannot be known before the input arrives.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcuc.ir.op import Op
from mcuc.ir.ops import op_def
from mcuc.ir.tensor import Tensor

# The fast requantization (mcuc_requant_fast) is exact only for |acc| < 2^30.
_FAST_ACC_LIMIT = 1 << 30


@dataclass(frozen=True)
class Requant:
    """Per-channel output stage constants.

    `fast`: the fast stage (mcuc_requant_fast) runs, on every channel except those
    `slow` marks (None: on every one). A fast channel's `shift` holds its right shift
    (>= 1) and `rounding` 2^(shift-1), plus out_zp << shift when `zp_folded`; a slow
    channel (and every channel when not `fast`) keeps TFLite's signed shift and the
    general stage. `constant`: channels whose accumulator is known at compile time (all
    weights zero, so it is the bias): their fast constants produce the final output from
    an accumulator of 0, so their accumulators must start from 0 (`start`)."""

    multiplier: np.ndarray
    shift: np.ndarray
    rounding: np.ndarray
    fast: bool
    zp_folded: bool = False
    slow: np.ndarray | None = None
    constant: tuple[int, ...] = ()

    @property
    def mode(self) -> int:
        """mcuc_requant_t.fast: 0 general, 1 fast on every channel, 2 per channel."""
        return 0 if not self.fast else (1 if self.slow is None else 2)

    def start(self, bias: np.ndarray) -> np.ndarray:
        """The accumulators' start values: `bias`, 0 on the constant channels."""
        start = np.array(bias, np.int64)
        start[list(self.constant)] = 0
        return start


def requant_constants(multiplier: np.ndarray, shift: np.ndarray, acc_bound, out_zero_point: int = 0,
                      known: dict[int, int] | None = None, act_range: tuple[int, int] = (-128, 127)) -> Requant:
    """Choose the output stage per channel: the fast one where its preconditions hold
    (multiplier positive, a right shift, and no accumulator can reach 2^30: `acc_bound`,
    one proven bound on |acc| for the layer or one per channel), the general one
    elsewhere. The fast stage runs on every channel, per channel (the others marked
    slow), or on none when no channel with a varying accumulator qualifies.

    `known`: channel -> its accumulator where it is a compile-time constant (no weights):
    the channel's output (act_range clamps it) is computed here, and its fast constants
    (multiplier 2^30, right shift 1, rounding twice the output) give it from an
    accumulator of 0, so such a channel never needs the general stage.

    The fast stage also folds the output zero point into the rounding constant when
    (|zp| + 1) * 2^right stays below 2^30 on every fast channel: floor((v + zp * 2^e) / 2^e)
    = floor(v / 2^e) + zp exactly, and no sum can overflow."""
    from mcuc.ir.fixedpoint import multiply_by_quantized_multiplier

    multiplier = np.array(multiplier, np.int64).reshape(-1)
    shift = np.array(shift, np.int64).reshape(-1)
    n = multiplier.size
    bound = np.broadcast_to(np.asarray(acc_bound, np.int64), (n,))
    known = dict(known or {})
    constant = np.zeros(n, bool)
    constant[list(known)] = True
    ok = (multiplier > 0) & (shift <= -1) & (bound < _FAST_ACC_LIMIT)
    if not np.any(ok & ~constant) and not np.all(constant):
        return Requant(multiplier, shift, np.zeros_like(shift), False)
    fast = ok | constant
    right = np.where(fast, -shift, shift)
    right[constant] = 1
    mult = multiplier.copy()
    mult[constant] = 1 << 30
    live = fast & ~constant
    folded = bool(np.all(np.left_shift(np.int64(abs(out_zero_point) + 1), right[live]) < _FAST_ACC_LIMIT))
    rounding = np.where(live, np.left_shift(np.int64(1), np.maximum(right, 1) - 1), 0)
    if folded:
        rounding = np.where(live, rounding + np.left_shift(np.int64(out_zero_point), np.maximum(right, 1)), 0)
    for c, acc in known.items():
        y = int(multiply_by_quantized_multiplier(acc, multiplier[c], shift[c])) + out_zero_point
        y = min(max(y, act_range[0]), act_range[1])
        rounding[c] = 2 * (y - (0 if folded else out_zero_point))
    slow = None if np.all(fast) else ~fast
    return Requant(mult, right, rounding, True, folded, slow, tuple(sorted(known)))


def channel_bounds(weights_per_channel: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """Per channel |bias| + 255 * sum|w|: no int8 input with any zero point can push the
    channel's accumulator beyond it (|x - zero_point| <= 255)."""
    w = np.abs(weights_per_channel.astype(np.int64)).sum(axis=1) * 255
    b = np.zeros_like(w) if bias is None else np.abs(bias.astype(np.int64))
    return w + b


def accumulator_bound(weights_per_channel: np.ndarray, bias: np.ndarray | None) -> int:
    """max over channels of channel_bounds: one bound for the whole layer."""
    return int(channel_bounds(weights_per_channel, bias).max(initial=0))


def constant_channels(weights_per_channel: np.ndarray, start: np.ndarray) -> dict[int, int]:
    """Channels whose weights are all zero, with their accumulator: the start value
    (the bias the kernel begins from), whatever the input."""
    dead = np.flatnonzero(~np.any(weights_per_channel != 0, axis=1))
    return {int(c): int(start[c]) for c in dead}


def folded_bias(bias: np.ndarray | None, weights_per_channel: np.ndarray, input_zero_point: int) -> np.ndarray:
    """bias[c] - input_zero_point * sum(w[c]): the input offset of every tap moved out of
    the inner loop (padding taps must then read as the zero point)."""
    w_sum = weights_per_channel.astype(np.int64).sum(axis=1)
    b = np.zeros_like(w_sum) if bias is None else bias.astype(np.int64)
    return _as_int32(b - input_zero_point * w_sum)


def _as_int32(values: np.ndarray) -> np.ndarray:
    """Two's-complement wrap, as the int32 accumulators in C wrap."""
    return (((values.astype(np.int64) + 2**31) & 0xFFFFFFFF) - 2**31).astype(np.int64)


def round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def channel_pair_weights(w: np.ndarray) -> np.ndarray:
    """[out, depth] int8 -> the GEMM kernels' order: channel pairs, for each pair the
    rows interleaved 4 bytes at a time; depth zero-padded to a multiple of 4, an odd
    channel count padded with a zero channel."""
    out, depth = w.shape
    depth4 = round_up(depth, 4)
    padded = np.zeros((round_up(out, 2), depth4), np.int8)
    padded[:out, :depth] = w
    pairs = padded.reshape(-1, 2, depth4 // 4, 4).transpose(0, 2, 1, 3)
    return np.ascontiguousarray(pairs).reshape(-1)


def pair_streams(w: np.ndarray, start: np.ndarray, multiplier, rounding, shift, *, wide: bool = False) -> np.ndarray:
    """[out, depth] int8 -> uint32 words of the GEMM kernels' stream layout (DSP targets,
    one fast stage on every channel: TFLite's multipliers, rounding constants and right
    shifts, or onnxruntime's mult7, rounding and pre shifts): per channel pair the two
    accumulator start values, the pair's weights in channel_pair_weights order
    (2 * depth4 bytes), then the two multipliers, rounding constants and shifts. An odd
    channel count is padded with a zero channel (start 0, multiplier 2^30, rounding 0,
    shift 1: never stored).

    `wide` (mcuc_gemm_pairs_wide_asm): the start values twice (s0, s1, s0, s1) and the
    weights as int16, per step of four inputs (w0[k], w0[k+2]), (w0[k+1], w0[k+3]), then
    the same for the second channel (the lanes SXTB16 gives the extended rows)."""
    out, depth = w.shape
    pairs = round_up(out, 2) // 2

    def padded(values, fill):
        v = np.full(2 * pairs, fill, np.int64)
        v[:out] = values
        return v.reshape(pairs, 2)

    head = padded(start, 0)
    tail = np.concatenate([padded(multiplier, 1 << 30), padded(rounding, 0), padded(shift, 1)], axis=1)
    if wide:
        depth4 = round_up(depth, 4)
        w16 = np.zeros((2 * pairs, depth4), np.int64)
        w16[:out, :depth] = w
        steps = w16.reshape(pairs, 2, depth4 // 4, 4).transpose(0, 2, 1, 3)  # pair, step, channel, input
        even = (steps[..., 0] & 0xFFFF) | ((steps[..., 2] & 0xFFFF) << 16)
        odd = (steps[..., 1] & 0xFFFF) | ((steps[..., 3] & 0xFFFF) << 16)
        weight_words = np.stack([even, odd], axis=-1).reshape(pairs, -1)  # per step c0e, c0o, c1e, c1o
        head = np.concatenate([head, head], axis=1)
    else:
        weights = channel_pair_weights(w).view(np.uint8).reshape(pairs, -1)
        weight_words = weights.reshape(pairs, -1, 4).astype(np.int64) @ np.array([1, 1 << 8, 1 << 16, 1 << 24],
                                                                                 np.int64)
    words = [np.asarray(head, np.int64) & 0xFFFFFFFF, weight_words, tail & 0xFFFFFFFF]
    return np.concatenate(words, axis=1).reshape(-1)


def unit_quad_weights(w: np.ndarray) -> np.ndarray:
    """[units, depth] int8 -> the fully connected kernel's order: groups of four units,
    for each group the four rows interleaved 4 bytes at a time (depth and units
    zero-padded to multiples of 4)."""
    units, depth = w.shape
    depth4 = round_up(depth, 4)
    padded = np.zeros((round_up(units, 4), depth4), np.int8)
    padded[:units, :depth] = w
    quads = padded.reshape(-1, 4, depth4 // 4, 4).transpose(0, 2, 1, 3)
    return np.ascontiguousarray(quads).reshape(-1)


def depthwise_c4_weights(w: np.ndarray) -> np.ndarray:
    """[kh, kw, ch] int8 -> int16 [ch/4][kh*kw][4] with lanes (c0, c2, c1, c3): the even
    and odd lanes that SXTB16 makes of four input bytes."""
    kh, kw, ch = w.shape
    taps = w.reshape(kh * kw, ch // 4, 4).transpose(1, 0, 2)[:, :, [0, 2, 1, 3]]
    return np.ascontiguousarray(taps).astype(np.int16).reshape(-1)


def depthwise_row_taps3(w: np.ndarray, doubled=False) -> np.ndarray:
    """[3, 3, ch] int8 -> int32 [ch][3][2]: per channel and kernel row r the SMLAD pair
    (w[r][0] in the low half, w[r][2] in the high half) and w[r][1] (the in-place 3x3
    kernel's operands). `doubled` (for every channel, or a mask per channel): 2 * w
    (still int16), so the kernel accumulates 2 * acc, the operand SMMULR wants."""
    w = w.astype(np.int64) * np.where(np.broadcast_to(np.asarray(doubled, bool), w.shape[-1:]), 2, 1)
    low = w[:, 0, :] & 0xFFFF
    pairs = low | (w[:, 2, :] << 16)
    pairs = ((pairs + 2**31) & 0xFFFFFFFF) - 2**31
    taps = np.stack([pairs, w[:, 1, :]], axis=1)  # [3 rows, 2, ch]
    return np.ascontiguousarray(taps.transpose(2, 0, 1)).reshape(-1)


def padded_channels(values: np.ndarray, multiple: int) -> np.ndarray:
    """Per-channel constants extended with zeros to a multiple (the padded channels'
    outputs are never stored)."""
    n = round_up(len(values), multiple)
    out = np.zeros(n, np.int64)
    out[:len(values)] = values
    return out


def per_element_table(op: Op) -> np.ndarray:
    """The op's reference output for each of the 256 int8 (or uint8) inputs, in index
    order (uint8)i, from the op's own numpy semantics: exact by construction."""
    x = op.input
    probe_in = Tensor(x.name, (256,), x.dtype, x.quant)
    probe_out = Tensor(op.output.name, (256,), op.output.dtype, op.output.quant)
    probe = op.with_(inputs=(probe_in,) + tuple(op.inputs[1:]), outputs=(probe_out,))
    values = np.arange(256, dtype=np.uint8)
    return op_def(op.kind).evaluate(probe, [values if x.dtype == "uint8" else values.view(np.int8)])[0]


def add_input_tables(p) -> tuple[np.ndarray, np.ndarray]:
    """ADD's input stage for every int8 value of each input (TFLM: (x + offset) shifted
    left by left_shift, then MultiplyByQuantizedMultiplierSmallerThanOneExp), indexed by
    (uint8)x: the kernel only adds two table entries per element."""
    from mcuc.ir.fixedpoint import multiply_by_quantized_multiplier_smaller_than_one as mbqm_small

    x = np.arange(256, dtype=np.uint8).view(np.int8).astype(np.int64)
    t1 = mbqm_small((x + p.input1_offset) << p.left_shift, p.input1_multiplier, p.input1_shift)
    t2 = mbqm_small((x + p.input2_offset) << p.left_shift, p.input2_multiplier, p.input2_shift)
    return t1.astype(np.int64), t2.astype(np.int64)


def quad_streams16(w: np.ndarray, start: np.ndarray, r: Requant) -> np.ndarray:
    """[units, depth] int8 -> uint32 words of the DSP fully connected kernel's stream
    layout (the fast stage on every unit): per group of four units their four start
    values, the group's int16 lane words as unit_quad_lane_weights16 orders them, then
    the four multipliers, the four rounding constants and the four right shifts. Units
    past the last are zero (start 0, multiplier 2^30, rounding 0, shift 1: never stored)."""
    units, depth = w.shape
    groups = round_up(units, 4) // 4
    lanes = unit_quad_lane_weights16(w).astype(np.int64) & 0xFFFF
    weights = (lanes[0::2] | (lanes[1::2] << 16)).reshape(groups, -1)

    def padded(values, fill):
        v = np.full(4 * groups, fill, np.int64)
        v[:units] = values
        return v.reshape(groups, 4) & 0xFFFFFFFF

    parts = [padded(start, 0), weights, padded(r.multiplier, 1 << 30), padded(r.rounding, 0), padded(r.shift, 1)]
    return np.concatenate(parts, axis=1).reshape(-1)


def unit_quad_lane_weights16(w: np.ndarray) -> np.ndarray:
    """[units, depth] int8 -> int16 for the DSP fully connected kernel: groups of four
    units; per group and step of 4 inputs, each unit's lanes w[k], w[k+2], w[k+1], w[k+3]
    (the order of the sign-extended input row); depth and units zero-padded to
    multiples of 4."""
    units, depth = w.shape
    depth4 = round_up(depth, 4)
    padded = np.zeros((round_up(units, 4), depth4), np.int16)
    padded[:units, :depth] = w
    lanes = padded.reshape(-1, 4, depth4 // 4, 4)[..., [0, 2, 1, 3]]  # [group, unit, step, lane]
    return np.ascontiguousarray(lanes.transpose(0, 2, 1, 3)).reshape(-1)
