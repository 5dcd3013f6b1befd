"""onnxruntime's float-scale requantization, vectorized over numpy arrays.

The OrtInteger rule of the IR (ir/numerics.py): onnxruntime's CPU
execution provider requantizes an exact int32 accumulator with a float32 scale, rounds
half to even (cvtps2dq / nearbyintf) and clamps to the output type. Every step here is
a float32 operation in the order MLAS performs it, so numpy reproduces its bytes:

- MlasRequantizeOutput (QLinearConv, QLinearMatMul, QGemm, QLinearGlobalAveragePool):
  y = clamp(rne(float32(acc) * scale), lo - zp, hi - zp) + zp, with the scale already
  rounded to float32 by the kernel's own formula (e.g. x_scale * w_scale / y_scale).
- MlasQuantizeLinear (QuantizeLinear): y = rne(clamp(x / scale, lo - zp, hi - zp)) + zp,
  a float32 division.
- fused multiply-add (QLinearAdd's AVX2 kernel) rounds once: `fma_f32` emulates it
  exactly with a float64 sum rounded to odd, then one rounding to float32.
- elementwise float functions as onnxruntime evaluates them (MLAS's logistic, HardSwish,
  LeakyRelu) and `build_lookup_table`, the 256-entry tables of QLinearSigmoid,
  QLinearLeakyRelu, QLinearConcat and DQ -> float op -> Q groups (the LOOKUP_TABLE op);
- `qlinear_softmax`, MLAS's AVX2 QLinearSoftmax.

Op-specific formulas (QLinearAdd, QLinearMul, QLinearAveragePool, the u8 x s8 int16
pairs in ir/ops/ort_u8s8.py) live in their op modules' onnxruntime branches.
This module is the one Python statement of the shared pieces; backends mirror them.
"""
from __future__ import annotations

import numpy as np



def f32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def int_to_f32(x) -> np.ndarray:
    """C's (float)int32: round to nearest even (cvtdq2ps)."""
    return np.asarray(x, dtype=np.int64).astype(np.float64).astype(np.float32)


def rne_to_int(x) -> np.ndarray:
    """cvtps2dq under the default rounding mode: nearest, ties to even, as int64."""
    return np.rint(np.asarray(x, dtype=np.float32)).astype(np.int64)


def requantize_output(acc, scale, zero_point: int, lo: int, hi: int) -> np.ndarray:
    """MlasRequantizeOutput: float32(acc) * scale (float32, broadcast along the last
    axis when per channel), clamp to the output range around the zero point, round half
    to even, add the zero point. Returns int64 values in [lo, hi]."""
    product = int_to_f32(acc) * f32(scale)
    clamped = np.minimum(np.maximum(product, np.float32(lo - zero_point)), np.float32(hi - zero_point))
    return rne_to_int(clamped) + zero_point


# -- the same requantization in integer arithmetic (no FPU, no soft-float) -----------------

# The integer form is exact for outputs within 255 of the zero point (every 8-bit type: the
# IR's int8, and uint8 through its offset of 128): a magnitude of 256 or more saturates.
REQUANT_INTEGER_BOUND = 255
_TINY_SCALE = 2.0**-32   # below: |float32(acc) * scale| < 0.5 for every int32, so always 0
_HUGE_SCALE = 2.0**22    # at or above: every acc != 0 gives |value| >= 2^22, saturation


def requant_integer_constants(scale) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The per-channel constants of `requantize_output_integer` for float32 scales, three
    int64 arrays of the scale's shape: `mult`, the scale's 24-bit significand M
    (2^23 <= M < 2^24, scale = M * 2^E) times 2^8; `limit`, the accumulator magnitude from
    which the fast path does not apply; `shift`, L = E + 47 (the fast path's left shift;
    the general path's C is 15 - L).

    - 2^-24 <= scale < 2^8: limit = min(ceil(256 / scale), 2^24): below it the value is
      under 256 in magnitude and float32(acc) = acc; from it on everything saturates,
      except at limit 2^24 (scales up to 2^-16), where the general path decides.
    - other scales take the general path for every accumulator (limit 0), with two
      substitutions that change no 8-bit output: a scale below 2^-32 (zero and subnormals
      included) has mult 0 and C 32 (every value is below 0.5 in magnitude, so 0); a scale
      of 2^22 or more is 2^22 (every nonzero accumulator saturates).
    Raises ValueError for a negative, infinite or NaN scale."""
    s = np.asarray(scale, dtype=np.float32).astype(np.float64)
    if not np.all(np.isfinite(s)) or np.any(s < 0):
        raise ValueError(f"onnxruntime requantization scales must be finite and >= 0, got {s.ravel().tolist()}")
    s = np.minimum(s, _HUGE_SCALE)
    frac, exp = np.frexp(s)  # s = frac * 2^exp, 0.5 <= frac < 1; exact for a normal float32
    significand = (frac * 2.0**24).astype(np.int64)
    exp = exp.astype(np.int64)
    tiny = s < _TINY_SCALE
    mult = np.where(tiny, 0, significand << 8)
    shift = np.where(tiny, 15 - 32, exp + 23)  # E = exp - 24
    fast = (s >= 2.0**-24) & (s < 2.0**8)
    limit = np.zeros(s.shape, np.int64)
    for i in zip(*np.nonzero(fast)) if s.ndim else ([()] if fast else []):
        m, e = int(significand[i]), int(exp[i]) - 24
        limit[i] = min(-((-(1 << (8 - e))) // m), 1 << 24)  # ceil(2^8 / (m * 2^e))
    return mult, limit, shift


def _bit_length(a: np.ndarray) -> np.ndarray:
    """Bit lengths of int64 values in [1, 2^53): the exponent field of their (exact) float64."""
    return (a.astype(np.float64).view(np.int64) >> 52) - 1022


def _rne_shift(x: np.ndarray, k) -> np.ndarray:
    """x / 2^k rounded half to even for non-negative x and 1 <= k; the C's formula:
    (x + 2^(k-1) - 1 + bit k of x) >> k."""
    k = np.asarray(k, dtype=np.int64)
    return (x + (np.int64(1) << (k - 1)) - 1 + ((x >> k) & 1)) >> k


def requantize_general_integer(a: np.ndarray, mult7, shift) -> np.ndarray:
    """The general path: |rne(float32(float32(a) * scale))| for a = |acc| (int64 in
    [0, 2^31]), mult7 = M * 2^7 and shift C = -E - 32 (scale = M * 2^E), or a magnitude
    of at least 2^23 - 1 where the value is 2^23 or more:

    1. n = clz32(a | 1), m = a << n (the top bit at bit 31 for a > 0);
    2. float32(a): m rounded half to even at bit 8 (a no-op below 2^24, where m's low 8
       bits are zero); a carry out of bit 31 gives 2^32, kept as 2^31 with n - 1;
    3. q = m * mult7 < 2^63 is exact (24 significant bits each, the product's 48 at
       62..15);
    4. float32(product): x, the high word of q with the low word folded into bit 0 as a
       sticky bit, in [2^29, 2^31); below 2^30 it moves up one bit (n + 1), then
       rounding to 24 significant bits drops its low 7 bits, half to even: r in
       [2^23, 2^24];
    5. the value is r * 2^-k, k = n + C: rounded half to even at the binary point with
       the same formula, k clamped to [0, 31]. k <= 0 means r * 2^-k >= 2^23 (k = 0 leaves
       r or r - 1); k >= 26 gives 0 either way. Both roundings are emulated, as the
       float path rounds twice."""
    a = np.asarray(a, dtype=np.int64)
    n = 32 - _bit_length(a | 1)
    m = a << n
    x = m + 127 + ((m >> 8) & 1)
    carry = x >= 2**32
    x = np.where(carry, 2**31, x) & ~np.int64(255)
    n = n - carry
    q = x * np.asarray(mult7, dtype=np.int64)
    x = (q >> 32) | ((q & 0xFFFFFFFF) != 0)
    low = x < 2**30
    x = np.where(low, x << 1, x)
    n = n + low
    r = _rne_shift(x, 7)
    k = np.clip(n + np.asarray(shift, dtype=np.int64), 0, 31)
    return (r + ((np.int64(1) << k) >> 1) - 1 + ((r >> k) & 1)) >> k


def requantize_output_integer(acc, mult, limit, shift, zero_point: int, lo: int, hi: int) -> np.ndarray:
    """`requantize_output` in integer arithmetic, the statement runtime_c/mcuc_ort.h's
    mcuc_ort_requant_int mirrors step for step; the constants come from
    `requant_integer_constants` (broadcast along the last axis when per channel), and
    |lo - zp|, |hi - zp| <= REQUANT_INTEGER_BOUND. With a = |acc|:

    - fast path, a < limit: the value v = a * scale is below 256 and exact in
      hi = floor(v * 2^23) = the high word of (a << L) * mult (a << L < 2^32). Away from a
      half-integer, float32's rounding (at most 2^-17 for v < 256) cannot cross one, so
      round half up of v is the answer: t = hi + 2^22 + 2^7, |y| = t >> 23, unless t's low
      23 bits are below 2^8 (v within about 2^-16 of a half-integer: a tie, or a double
      rounding hazard), which goes to the general path;
    - a >= limit with 0 < limit < 2^24: |v| >= 256, so |y| = 256 (it saturates);
    - otherwise the general path, `requantize_general_integer` (mult7 = mult / 2,
      C = 15 - L).
    Then the sign, the zero point and the clamp to [lo, hi]. Returns int64 values in
    [lo, hi]."""
    if max(zero_point - lo, hi - zero_point) > REQUANT_INTEGER_BOUND:
        raise ValueError(f"integer requantization needs outputs within {REQUANT_INTEGER_BOUND} of the zero "
                         f"point, got [{lo}, {hi}] around {zero_point}")
    acc = np.asarray(acc, dtype=np.int64)
    a = np.abs(acc)
    mult, limit, shift = (np.broadcast_to(np.asarray(v, dtype=np.int64), a.shape) for v in (mult, limit, shift))
    fast = a < limit
    t = (((a << np.where(fast, shift, 0)) * mult) >> 32) + (2**22 + 2**7)
    hazard = (t & 0x7FFF00) == 0
    saturated = ~fast & (limit >= 1) & (limit < 2**24)
    y = np.where(saturated, 256, t >> 23)
    slow = np.nonzero((fast & hazard) | (~fast & ~saturated))
    y[slow] = requantize_general_integer(a[slow], mult[slow] >> 1, 15 - shift[slow])
    return np.clip(np.where(acc < 0, -y, y) + zero_point, lo, hi)


# The signed fast path's range of L = E + 47: from 8 on, an accumulator whose shift by L - 1
# does not overflow is below 2^24 (float32(acc) exact); to 32, the shift is defined.
SIGNED_SHIFT_RANGE = (8, 32)
# Zero points the signed path folds into its rounding constant without overflowing int32.
SIGNED_ZERO_POINT_BOUND = 255
# The bounded form's largest d (k = 21 - d fraction bits): the floor's error 2^-k stays
# below the hazard window's half-width 2^-15 less float32's error 2^-17.
SIGNED_MAX_DROP = 5
# The accumulators of a bounded channel must be exact in float32.
SIGNED_MAX_BOUND = 2**24


def signed_requant_applies(shift, zero_point: int) -> bool:
    """Whether `requantize_output_signed` serves every channel of `shift` (L from
    requant_integer_constants: scales in [2^-16, 2^9)) with this zero point."""
    shift = np.asarray(shift, dtype=np.int64)
    low, high = SIGNED_SHIFT_RANGE
    return bool(np.all((shift >= low) & (shift <= high))) and abs(zero_point) <= SIGNED_ZERO_POINT_BOUND


def signed_drop(shift, bounds) -> int | None:
    """The bounded form's d for channels of L = `shift` whose accumulators never exceed
    `bounds` in magnitude: the least d in [0, SIGNED_MAX_DROP] with
    bound << (L - 1 - d) < 2^31 on every channel, or None (no such d, or a bound beyond
    SIGNED_MAX_BOUND): the shift must then be checked at run time."""
    shift = np.asarray(shift, dtype=np.int64)
    bounds = np.asarray(bounds, dtype=np.int64)
    if np.any(bounds > SIGNED_MAX_BOUND):
        return None
    for d in range(SIGNED_MAX_DROP + 1):
        if np.all(bounds << (shift - 1 - d) < 2**31):
            return d
    return None


def signed_rounding(zero_point: int, frac: int = 21) -> int:
    """The signed path's rounding constant for k = `frac`: 2^(k-1) + 2^(k-15) + zero_point * 2^k."""
    return 2**(frac - 1) + 2**(frac - 15) + (zero_point << frac)


def requantize_output_signed(acc, mult7, pre, zero_point: int, low: int, high: int, frac: int = 21,
                             checked: bool = True) -> np.ndarray:
    """`requantize_output` in integers with the accumulator kept signed, the statement
    runtime_c/mcuc_ort.h's mcuc_ort_requant_signed mirrors step for step; mult7 = M * 2^7
    (mult / 2 of `requant_integer_constants`), every L in SIGNED_SHIFT_RANGE
    (`signed_requant_applies`), outputs within 255 of the zero point, k = `frac` = 21 - d
    and `pre` = L - 1 - d per channel:

    - t = acc << pre and h = floor(t * mult7 / 2^32) = floor(v * 2^k), exact where t fits
      int32. `checked` (d = 0): where it does not, |v| >= 256 and the output saturates
      towards acc's sign; where it does, |acc| < 2^24 (float32(acc) = acc). Unchecked
      (bounded): the caller guarantees that t fits and |acc| <= 2^24 (`signed_drop`);
    - h + 2^(k-1) + 2^(k-15) = floor((v + 0.5 + 2^-15) * 2^k): unless its low k bits are
      below 2^(k-14) (v within about 2^-15 of a half-integer, where float32's rounding, at
      most 2^-17, the floor's 2^-k or a tie could decide), floor(v + 0.5) is the answer
      for either sign, and the zero point rides in the rounding constant
      (`signed_rounding`);
    - the ties and hazards take the general path of |acc| (`requantize_general_integer`,
      C = 15 - L = k - 7 - pre), then the sign and the zero point.
    Then one clamp to [low, high]. Returns int64 values."""
    acc = np.asarray(acc, dtype=np.int64)
    mult7, pre = (np.broadcast_to(np.asarray(v, dtype=np.int64), acc.shape) for v in (mult7, pre))
    t = acc << pre
    fits = (t >= -2**31) & (t < 2**31)
    if not checked and not np.all(fits):
        raise ValueError("an unchecked shift overflows: the accumulators exceed the channel's bound")
    h = ((np.where(fits, t, 0) * mult7) >> 32) + signed_rounding(zero_point, frac)
    hazard = fits & ((h & ((1 << frac) - 1)) < 2**(frac - 14))
    y = np.where(fits, h >> frac, np.where(acc < 0, low, high))
    slow = np.nonzero(hazard)
    general = requantize_general_integer(np.abs(acc[slow]), mult7[slow], frac - 7 - pre[slow])
    y[slow] = np.where(acc[slow] < 0, -general, general) + zero_point
    return np.clip(y, low, high)


def quantize_linear(x, scale, zero_point: int, lo: int, hi: int) -> np.ndarray:
    """MlasQuantizeLinear: float32 division by the scale, clamp, round half to even,
    add the zero point. NaN inputs give the low end (cvtps2dq's integer indefinite,
    then saturation), as the x86 kernel does."""
    quotient = f32(x) / np.float32(scale)
    clamped = np.minimum(np.maximum(quotient, np.float32(lo - zero_point)), np.float32(hi - zero_point))
    out = np.where(np.isnan(clamped), np.float32(lo - zero_point), clamped)
    return rne_to_int(out) + zero_point


def fma_f32(a, b, c) -> np.ndarray:
    """float32 fused multiply-add (one rounding), exact for float32 operands.

    a * b is exact in float64 (24 + 24 bits); the float64 sum is made round-to-odd
    (its error term decides the last bit), and round-to-odd at 53 bits followed by one
    rounding to 24 bits equals a single correct rounding."""
    a64, b64, c64 = (np.asarray(v, np.float32).astype(np.float64) for v in (a, b, c))
    p = a64 * b64
    s = p + c64
    # TwoSum: s + err == p + c exactly.
    bv = s - p
    err = (p - (s - bv)) + (c64 - bv)
    mantissa_odd = (s.view(np.int64) & 1) == 1 if s.ndim else (np.array(s).view(np.int64) & 1) == 1
    toward = np.where(err > 0, np.inf, -np.inf)
    nudged = np.where((err != 0) & ~mantissa_odd, np.nextafter(s, toward), s)
    return nudged.astype(np.float32)


def channel_scales(input_scale, weight_scales, output_scale, channels: int) -> np.ndarray:
    """QLinearConv / QLinearMatMul / QGemm output scales: x_scale * w_scale[c] / y_scale,
    float32 left to right, one per output channel (a per-tensor weight scale repeats)."""
    ws = f32(weight_scales).reshape(-1)
    if ws.size == 1:
        ws = np.repeat(ws, channels)
    return (np.float32(input_scale) * ws) / np.float32(output_scale)


def requantize_accumulator(op, acc: np.ndarray) -> np.ndarray:
    """The onnxruntime output stage of a conv/depthwise/FC op of the IR: its inputs[0]
    is the activation, inputs[1] the weights; the clamp is the op's act_min/act_max."""
    x_t, w_t, out_t = op.inputs[0], op.inputs[1], op.output
    scales = channel_scales(x_t.quant.scale[0], w_t.quant.scale, out_t.quant.scale[0], out_t.shape[-1])
    info = np.iinfo(np.dtype(out_t.dtype))
    y = requantize_output(acc, scales, out_t.quant.scalar_zero_point, int(info.min), int(info.max))
    return np.clip(y, op.attrs.act_min, op.attrs.act_max)


# -- QLinearAdd and QLinearMul in integers ---------------------------------------------------
#
# Their value v is float32 arithmetic on an exact value z (one rounding for QLinearAdd's
# fused multiply-add, two for QLinearMul's product and sum); when the 8-bit output does not
# saturate, |v| <= 256 and |z| < 2^10, so v is within 2^-14 of z.
# - QLinearAdd: where z is farther than that from every half-integer, rne(v) =
#   floor(z + 1/2). t holds z in fixed point with `frac` fraction bits (within 2^-frac, from
#   two tables), plus 1/2 + 2^-13, minus the output offset: y = t >> frac, unless t's bits
#   [frac - 12, frac) are all zero (z within 2^-13 of a half-integer), where the float form
#   decides (`fixed_point_round`); when the tables are exact, an exact tie (z a
#   half-integer, so v = z) rounds to even in integers too. Saturated values stay
#   saturated: t is off by less than one.
# - QLinearMul: the answer is floor(z) or floor(z) + 1, and it never decreases as the
#   exact product d grows; floor(z) + 1 is exact in integers and a table of thresholds on
#   d picks between the two (`threshold_round`), with no float at all.

ROUND_WINDOW_BITS = 13  # the window around a half-integer: 2^-13


def fixed_point_round(t, frac: int, exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(the output, where it is the answer): t >> frac, except False where t's bits
    [frac - 12, frac) are all zero, the value within 2^-13 of a half-integer (t holds the
    +1/2 + 2^-13); with `exact` (t is the exact value) an exact tie, t's low frac bits
    2^(frac-13), answers the even neighbour, (t >> frac) & ~1."""
    t = np.asarray(t, dtype=np.int64)
    away = ((t >> (frac - ROUND_WINDOW_BITS + 1)) & ((1 << (ROUND_WINDOW_BITS - 1)) - 1)) != 0
    y = t >> frac
    if exact:
        tie = (t & ((1 << frac) - 1)) == (1 << (frac - ROUND_WINDOW_BITS))
        return np.where(tie, y & ~np.int64(1), y), away | tie
    return y, away


def _fixed_bits(largest: float, least: int) -> int | None:
    """The most fraction bits (at most 30) with which int32 holds `largest` and one more,
    None below `least`."""
    bits = 30 - int(np.ceil(np.log2(largest + 2.0)))
    return min(bits, 30) if bits >= least else None


def qlinear_add_tables(outer_values, outer_ratio, inner_u, y_offset: int):
    """QLinearAdd's y = rne(fma(a, ra, u)) - offset in integers (u = fma(b, rb, fixed), one
    float32 per value of the inner input): t = outer[a] + inner[b] with
    outer[a] = round(a * ra * 2^frac) (a * ra is exact in float64) and
    inner[b] = round(u * 2^frac) + 2^(frac-1) + 2^(frac-13) - offset * 2^frac; together
    within 2^-frac of the exact value, which frac >= 16 keeps inside the window. Returns
    (outer, inner, frac) as int64 arrays and an int, None when the values need fewer than
    16 fraction bits. `exact` (the fourth value) says both tables hold their values
    exactly."""
    p = np.asarray(outer_values, np.float64) * np.float64(np.float32(outer_ratio))
    u = np.asarray(inner_u, np.float32).astype(np.float64)
    if not (np.all(np.isfinite(p)) and np.all(np.isfinite(u))):
        return None
    frac = _fixed_bits(float(np.max(np.abs(p)) + np.max(np.abs(u)) + abs(y_offset) + 1.0), 16)
    if frac is None:
        return None
    exact = bool(np.all(np.rint(p * 2.0**frac) == p * 2.0**frac) and np.all(np.rint(u * 2.0**frac) == u * 2.0**frac))
    outer = np.rint(p * 2.0**frac).astype(np.int64)
    inner = (np.rint(u * 2.0**frac).astype(np.int64) + (1 << (frac - 1)) + (1 << (frac - ROUND_WINDOW_BITS))
             - (y_offset << frac))
    return outer, inner, frac, exact


def qlinear_mul_constants(ratio, y_zero_point: int, largest_product: int):
    """QLinearMul's floor(z) + 1, z = d * ratio + y_zero_point (d the exact product of the
    centred inputs, |d| <= largest_product <= 2^16; y_zero_point the output's in the IR),
    exactly in integers: (high word of (d << shift) * mult + add) >> frac, with mult the
    ratio's 24-bit significand shifted left by 0..7 (a positive int32), shift 0..15,
    add = (y_zero_point + 1) << frac. Returns (mult, shift, add, frac), None when the ratio
    is beyond what those shifts reach (below about 2^-30, or 2^14 and more) or not finite."""
    r = float(np.float32(ratio))
    if not np.isfinite(r) or r < 0 or largest_product > 2**16:
        return None
    top = _fixed_bits(largest_product * r + abs(y_zero_point) + 2.0, 0)
    if top is None:
        return None
    if r == 0.0:
        return 0, 0, (y_zero_point + 1) << top, top
    m, e = np.frexp(r)
    significand, exp = int(m * 2**24), int(e) - 24  # ratio = significand * 2^exp
    # (d << shift) * (significand << left) = d * ratio * 2^(shift + left - exp) = ... * 2^(32 + frac)
    frac = max(0, min(top, 15 + 7 - 32 - exp))
    total = 32 + frac + exp
    if total < 0 or total > 22:
        return None
    left = min(total, 7)
    return significand << left, total - left, (y_zero_point + 1) << frac, frac


def qlinear_mul_ceiling(d, mult: int, shift: int, add: int, frac: int) -> np.ndarray:
    """floor(d * ratio + y_zero_point) + 1 from `qlinear_mul_constants`, as the C computes it."""
    d = np.asarray(d, dtype=np.int64)
    return ((((d << shift) * mult) >> 32) + add) >> frac


def threshold_round(k1, d, thresholds, low: int, high: int) -> np.ndarray:
    """QLinearMul's output from k1 = floor(z) + 1: the answer is floor(z) or floor(z) + 1
    (float32 moves z by far less than 1/2 where it matters) and does not decrease with d.
    So with k1 clamped to [low, high] (the output type's and the activation's range),
    y = k1 - (d < thresholds[k1 + 128]), thresholds[j + 128] the least d whose output is j
    or more (for j = low: below every product)."""
    k1 = np.clip(np.asarray(k1, np.int64), low, high)
    return k1 - (np.asarray(d, np.int64) < np.asarray(thresholds, np.int64)[k1 + 128])


# -- elementwise functions as onnxruntime computes them on float32 --------------------------

# MlasLogisticConstants (Eigen's rational approximation of the logistic function).
_LOGISTIC_RANGE = (np.float32(-18.0), np.float32(18.0))
_LOGISTIC_ALPHA = tuple(np.float32(v) for v in (4.37031012579801e-11, 1.15627324459942e-07, 6.08574864600143e-05,
                                                8.51377133304701e-03, 2.48287947061529e-01))
_LOGISTIC_BETA = tuple(np.float32(v) for v in (6.10247389755681e-13, 5.76102136993427e-09, 6.29106785017040e-06,
                                               1.70198817374094e-03, 1.16817656904453e-01, 9.93151921023180e-01))


def logistic_f32(x) -> np.ndarray:
    """MlasComputeLogistic on x86-64 with FMA3 (MlasLogisticKernelFma3): clamp to
    [-18, 18], odd/even polynomials in x^2 by fused multiply-adds, p * x / q + 0.5,
    clamped to [0, 1]."""
    v = np.minimum(np.maximum(f32(x), _LOGISTIC_RANGE[0]), _LOGISTIC_RANGE[1])
    v2 = v * v
    p = fma_f32(v2, _LOGISTIC_ALPHA[0], _LOGISTIC_ALPHA[1])
    for c in _LOGISTIC_ALPHA[2:]:
        p = fma_f32(p, v2, c)
    p = p * v
    q = fma_f32(v2, _LOGISTIC_BETA[0], _LOGISTIC_BETA[1])
    for c in _LOGISTIC_BETA[2:]:
        q = fma_f32(q, v2, c)
    return np.minimum(np.maximum(p / q + np.float32(0.5), np.float32(0.0)), np.float32(1.0))


def hard_swish_f32(x) -> np.ndarray:
    """ONNX HardSwish as onnxruntime's CPU kernel computes it: x * clamp(x / 6 + 0.5, 0, 1)
    with alpha = float32(1/6), the multiply and add rounded separately."""
    x = f32(x)
    hs = np.minimum(np.maximum(x * np.float32(1.0 / 6.0) + np.float32(0.5), np.float32(0.0)), np.float32(1.0))
    return x * hs


def leaky_relu_f32(x, alpha: float) -> np.ndarray:
    x = f32(x)
    return np.where(x >= 0, x, x * np.float32(alpha))


def build_lookup_table(function, x_scale: float, x_zero_point: int, y_scale: float,
                       y_zero_point: int) -> tuple[int, ...]:
    """QlinearBuildLookupTable (and DequantizeLinear -> float op -> QuantizeLinear): the 256
    inputs dequantized in float32 (x_scale * (x - zp)), `function` applied, QuantizeLinear
    back. Both steps only see differences to the zero points, so the IR's int8 values give
    a uint8 model's table too. Returns the table indexed by int8 input + 128."""
    q = np.arange(-128, 128, dtype=np.int64)
    real = np.float32(x_scale) * int_to_f32(q - x_zero_point)
    y = quantize_linear(function(real), y_scale, y_zero_point, -128, 127)
    return tuple(int(v) for v in y)


def qlinear_softmax(x: np.ndarray, x_scale: float, y_scale: float, y_zero_point: int, uint8: bool,
                    fused: bool = True) -> np.ndarray:
    """onnxruntime's QLinearSoftmax over the last axis on x86-64 with AVX2 (MLAS
    qsoftmax_kernel_avx2.cpp, table from contrib_ops qlinear_softmax.cc):
    - a float32 table of exp((i - 255 + shift) * x_scale) (computed in double), read at
      255 - (row max - x): the input zero point never matters;
    - the row sum in the kernel's order: 8 float32 lanes over blocks of 16 (first 8, then
      the next 8), the tail summed alone, then tail + lane 0 + ... + lane 7;
    - scale = (1 / sum) * floor(1 / y_scale); y = round(e * scale + zero point), fused
      multiply-add when `fused` (GCC contracts the two AVX2 intrinsics);
    - saturation to the type (measured on the pinned build for tail elements too, where
      the scalar source reads as a plain cast).
    `x` and the zero point are the model's own (uint8 or int8) values as int64."""
    import math

    length = x.shape[-1]
    shift = max(0.0, math.log(float(np.finfo(np.float32).max) / length) - 5.0) / float(np.float32(x_scale))
    table = np.exp((np.arange(256, dtype=np.float64) - 255 + shift) * float(np.float32(x_scale))).astype(np.float32)
    exps = table[255 - (x.max(axis=-1, keepdims=True) - x)]
    blocks = length // 16 * 16
    lanes = np.zeros(x.shape[:-1] + (8,), np.float32)
    for start in range(0, blocks, 8):
        lanes = lanes + exps[..., start:start + 8]
    total = np.zeros(x.shape[:-1] + (1,), np.float32)
    for k in range(blocks, length):
        total = total + exps[..., k:k + 1]
    for j in range(8):
        total = total + lanes[..., j:j + 1]
    inverse = np.float32(1.0) / total
    scale = inverse * np.float32(np.floor(np.float32(1.0) / np.float32(y_scale)))
    zp = np.float32(y_zero_point)
    with np.errstate(over="ignore", invalid="ignore"):
        value = fma_f32(exps, scale, zp) if fused else exps * scale + zp
        rounded = np.rint(value).astype(np.float64)
    fits = np.isfinite(rounded) & (rounded >= -2.0**31) & (rounded < 2.0**31)
    as_int = np.where(fits, rounded, -2.0**31).astype(np.int64)  # cvt*2dq: INT32_MIN when out of range
    lo, hi = (0, 255) if uint8 else (-128, 127)
    return np.clip(as_int, lo, hi)
