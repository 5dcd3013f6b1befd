/* mcuc_softmax.h: TFLM's int8 SOFTMAX (reference/softmax.h) with the exps tabulated at
 * compile time.
 *
 * A row's outputs depend on the differences d = x - max(row) in [-255, 0]. The compiler
 * evaluates gemmlowp's exp_on_negative_values for all 256 of them (zero where d < diff_min)
 * into `exps` (Q0.31) and `exps_q12` (the same rescaled to Q12.19, what the sum adds), so
 * only the sum, the reciprocal and the final scaling run here, with the same fixed-point
 * steps as the reference.
 */
#ifndef MCUC_SOFTMAX_H
#define MCUC_SOFTMAX_H

#include "mcuc_fixedpoint.h"

/* gemmlowp SaturatingRoundingMultiplyByPOT<exponent> for exponent > 0. */
MCUC_INLINE int32_t mcuc_sat_shl(int32_t x, int exponent) {
    const int32_t threshold = (int32_t)((1u << (31 - exponent)) - 1u);
    if (x > threshold) return INT32_MAX;
    if (x < -threshold) return INT32_MIN;
    return (int32_t)((uint32_t)x << exponent);
}

MCUC_INLINE int32_t mcuc_rounding_half_sum(int32_t a, int32_t b) {
    const int64_t sum = (int64_t)a + (int64_t)b;
    const int64_t sign = sum >= 0 ? 1 : -1;
    return (int32_t)((sum + sign) / 2);
}

/* gemmlowp one_over_one_plus_x_for_x_in_0_1 (Newton-Raphson in Q2.29). */
MCUC_INLINE int32_t mcuc_one_over_one_plus_x(int32_t a) {
    const int32_t half_denominator = mcuc_rounding_half_sum(a, INT32_MAX);
    int32_t x = (int32_t)(1515870810u + (uint32_t)mcuc_srdhm(half_denominator, -1010580540));
    int i;
    for (i = 0; i < 3; i++) {
        const int32_t hdx = mcuc_srdhm(half_denominator, x);
        const int32_t one_minus = (int32_t)((uint32_t)(1 << 29) - (uint32_t)hdx);
        x = (int32_t)((uint32_t)x + (uint32_t)mcuc_sat_shl(mcuc_srdhm(x, one_minus), 2));
    }
    return mcuc_sat_shl(x, 1);
}

/* rows x depth int8 in; out is int8 (out_bits 8) or int16 (out_bits 16). */
MCUC_INLINE void mcuc_softmax_s8(const int8_t *in, void *out, int rows, int depth, int out_bits,
                                 const int32_t *exps, const int32_t *exps_q12) {
    int r, i;
    for (r = 0; r < rows; r++) {
        const int8_t *x = in + r * depth;
        int32_t max = -128;
        uint32_t sum = 0;
        for (i = 0; i < depth; i++) {
            max = x[i] > max ? x[i] : max;
        }
        for (i = 0; i < depth; i++) {
            sum += (uint32_t)exps_q12[max - x[i]];
        }
        {
            const int headroom_plus_one = mcuc_clz32(sum);
            const int num_bits_over_unit = 12 - headroom_plus_one;
            const uint32_t shifted = headroom_plus_one >= 32 ? 0u : (sum << headroom_plus_one);
            const int32_t reciprocal = mcuc_one_over_one_plus_x((int32_t)(shifted - 0x80000000u));
            int exponent = num_bits_over_unit + 31 - out_bits;
            if (exponent < 0) exponent = 0;   /* the reference aborts there; the compiler */
            if (exponent > 31) exponent = 31; /* rejects such models before emitting code */
            for (i = 0; i < depth; i++) {
                const int32_t e = exps[max - x[i]];
                const int32_t v = mcuc_rdbpot(mcuc_srdhm(reciprocal, e), exponent);
                if (out_bits == 8) {
                    ((int8_t *)out)[r * depth + i] = (int8_t)mcuc_clamp(v - 128, -128, 127);
                } else {
                    ((int16_t *)out)[r * depth + i] = (int16_t)mcuc_clamp(v - 32768, -32768, 32767);
                }
            }
        }
    }
}

/* tflite-micro's LUTLookup of an int16 value in a 513-entry table: the high 9 bits
 * index, the low 7 interpolate (the slope kept in an int16, as there). */
MCUC_INLINE int32_t mcuc_lut_lookup16(int32_t value, const int16_t *lut) {
    const int32_t biased = value + 32768; /* in [0, 65535]: 256 + (value >> 7) without a negative shift */
    const int index = biased >> 7;
    const int32_t base = lut[index];
    const int16_t slope = (int16_t)(lut[index + 1] - base);
    return (int16_t)(base + ((slope * (biased & 0x7f) + 64) >> 7));
}

/* tflite-micro's int16 SOFTMAX (mcuc.ir.ops.softmax_int16): each difference from the row
 * maximum scaled by MultiplyByQuantizedMultiplier, recentered and looked up in the exp
 * table (the exps wait in the output row); the sum of exps, normalized by its leading
 * zeros, through the 1/(1 + x) table; each exp times that reciprocal, rounded and shifted
 * back. Both tables are the fixed 513-entry ones the compiler emits. */
MCUC_INLINE void mcuc_softmax_s16(const int16_t *in, int16_t *out, int rows, int depth, int32_t multiplier,
                                  int32_t shift, const int16_t *exp_lut, const int16_t *recip_lut) {
    int r, i;
    for (r = 0; r < rows; r++) {
        const int16_t *x = in + r * depth;
        int16_t *y = out + r * depth;
        int32_t max = -32768, sum = 0, recentered, reciprocal;
        int headroom_plus_one, right_shift;
        int64_t rounding;
        for (i = 0; i < depth; i++) {
            max = x[i] > max ? x[i] : max;
        }
        for (i = 0; i < depth; i++) {
            const int32_t scaled = mcuc_mbqm(x[i] - max, multiplier, shift) + 32767;
            y[i] = (int16_t)mcuc_lut_lookup16(scaled < -32768 ? -32768 : scaled > 32767 ? 32767 : scaled, exp_lut);
            sum += y[i];
        }
        headroom_plus_one = mcuc_clz32((uint32_t)sum);
        recentered = (int32_t)((((int64_t)sum << (headroom_plus_one - 1)) + (1 << 13)) >> 14) - ((1 << 15) + (1 << 16));
        reciprocal = mcuc_lut_lookup16(recentered < -32768 ? -32768 : recentered > 32767 ? 32767 : recentered,
                                       recip_lut);
        right_shift = 31 - headroom_plus_one;
        rounding = (int64_t)1 << (right_shift - 1);
        for (i = 0; i < depth; i++) {
            const int32_t result = (int32_t)(((int64_t)y[i] * reciprocal + rounding) >> right_shift);
            y[i] = (int16_t)(result < 0 ? 0 : result > 32767 ? 32767 : result);
        }
    }
}

#endif /* MCUC_SOFTMAX_H */
