/* mcuc_l2norm.h: TFLM's int8 L2_NORMALIZATION (reference_integer_ops::L2Normalization):
 * per row the sum of squares, common.h's GetInvSqrtQuantizedMultiplierExp(acc, -1), and
 * MultiplyByQuantizedMultiplier(x - zp, inv, shift + 7) clamped to int8. */
#ifndef MCUC_L2NORM_H
#define MCUC_L2NORM_H

#include "mcuc_softmax.h"

/* 1/sqrt(acc) as (multiplier, shift <= 0); acc <= 1 gives (INT32_MAX, 0). */
MCUC_INLINE void mcuc_inv_sqrt(int32_t acc, int32_t *multiplier, int32_t *shift) {
    int32_t input = acc, s = 11, x = 1 << 28, half_input, pairs, i;
    if (acc <= 1) {
        *multiplier = INT32_MAX;
        *shift = 0;
        return;
    }
    while (input >= (1 << 29)) {
        input /= 4;
        ++s;
    }
    pairs = (mcuc_clz32((uint32_t)input) - 1) / 2 - 1;
    s -= pairs;
    input = (int32_t)((uint32_t)input << (2 * pairs));
    half_input = mcuc_rdbpot(input >> 1, 1);
    for (i = 0; i < 5; i++) {
        const int32_t x3 = mcuc_sat_shl(mcuc_srdhm(mcuc_srdhm(x, x), x), 6);
        x = mcuc_sat_shl((int32_t)((uint32_t)mcuc_srdhm((1 << 28) + (1 << 27), x) -
                                   (uint32_t)mcuc_srdhm(half_input, x3)), 3);
    }
    x = mcuc_srdhm(x, 1518500250);
    if (s < 0) {
        x = (int32_t)((uint32_t)x << -s);
        s = 0;
    }
    *multiplier = x;
    *shift = -s;
}

/* rows x depth int8 in and out. */
MCUC_INLINE void mcuc_l2norm_s8(const int8_t *in, int8_t *out, int rows, int depth, int32_t zero_point) {
    int r, i;
    for (r = 0; r < rows; r++) {
        const int8_t *x = in + r * depth;
        int8_t *y = out + r * depth;
        uint32_t acc = 0;
        int32_t multiplier, shift;
        for (i = 0; i < depth; i++) {
            const int32_t v = (int32_t)x[i] - zero_point;
            acc += (uint32_t)(v * v);
        }
        mcuc_inv_sqrt((int32_t)acc, &multiplier, &shift);
        for (i = 0; i < depth; i++) {
            y[i] = (int8_t)mcuc_clamp(mcuc_mbqm((int32_t)x[i] - zero_point, multiplier, shift + 7), -128, 127);
        }
    }
}

#endif /* MCUC_L2NORM_H */
