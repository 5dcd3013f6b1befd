/* mcuc_log_softmax.h: TFLM's int8 LOG_SOFTMAX (reference/log_softmax.h,
 * LogSoftmaxQuantized) with what depends on one difference tabulated at compile time.
 *
 * For d = x - max(row) in [-255, 0] (index -d) the compiler stores d in Q5.26 (`q5`) and
 * its share of the sum of exps in Q12.19 (`shares`, zero below diff_min), computed by
 * mcuc.ir.ops.log_softmax. Here run the row's sum (wrapping int32 adds), TFLite's
 * log_x_for_x_greater_than_or_equal_to_1<5>(sum of Q12) and the output stage.
 */
#ifndef MCUC_LOG_SOFTMAX_H
#define MCUC_LOG_SOFTMAX_H

#include "mcuc_softmax.h"

MCUC_INLINE int32_t mcuc_sat_add32(int32_t a, int32_t b) {
    const int64_t s = (int64_t)a + (int64_t)b;
    return s > INT32_MAX ? INT32_MAX : (s < INT32_MIN ? INT32_MIN : (int32_t)s);
}

MCUC_INLINE int32_t mcuc_add_wrap(int32_t a, int32_t b) {
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

/* log(x) for a raw Q12.19 x >= 1, as raw Q5.26 (common.h's _impl<5, 12>: accumulation
 * in Q6.25). */
MCUC_INLINE int32_t mcuc_log_x_q12_to_q5(int32_t z_a) {
    const int32_t shifted_quarter = 1 << 23;
    const int ha = mcuc_clz32((uint32_t)z_a);
    const int32_t r_a = mcuc_sat_shl(mcuc_srdhm(mcuc_sat_shl(z_a, ha - 1), 1518500250), 1);
    const int32_t z_a_adj = mcuc_sat_add32(mcuc_sat_shl(12 - ha, 25), shifted_quarter);
    const int32_t z_b = mcuc_srdhm(z_a, 1518500250);
    const int hb = mcuc_clz32((uint32_t)z_b) - 1;
    const int32_t r_b = mcuc_sat_shl(z_a, hb);
    const int32_t z_b_adj = mcuc_sat_add32(mcuc_sat_shl(12 - hb, 25), -shifted_quarter);
    const int32_t r = r_a < r_b ? r_a : r_b;
    const int32_t z_adj = z_a_adj > z_b_adj ? z_a_adj : z_b_adj;
    const int32_t p = mcuc_rounding_half_sum(r, 1805811301);
    int32_t q = mcuc_add_wrap(r, -1805811301);
    int32_t common_sq, num, denom_minus_one, recip, num_scaled;
    q = mcuc_add_wrap(q, q);
    common_sq = mcuc_srdhm(q, q);
    num = mcuc_add_wrap(mcuc_srdhm(q, r), mcuc_srdhm(mcuc_srdhm(q, common_sq), 117049297));
    denom_minus_one = mcuc_add_wrap(
        mcuc_srdhm(p, mcuc_add_wrap(mcuc_add_wrap(1057819769, q), mcuc_srdhm(127690142, common_sq))),
        mcuc_srdhm(638450708, q));
    recip = mcuc_one_over_one_plus_x(denom_minus_one);
    num_scaled = mcuc_rdbpot(num, 6);
    return mcuc_sat_shl(mcuc_add_wrap(mcuc_srdhm(z_adj, 1488522236), mcuc_srdhm(num_scaled, recip)), 1);
}

/* rows x depth int8 in and out. */
MCUC_INLINE void mcuc_log_softmax_s8(const int8_t *in, int8_t *out, int rows, int depth, const int32_t *q5,
                                     const int32_t *shares, int32_t diff_min, int32_t reverse_divisor,
                                     int32_t reverse_shift) {
    int r, i;
    for (r = 0; r < rows; r++) {
        const int8_t *x = in + r * depth;
        int8_t *y = out + r * depth;
        int32_t max = -128, log_sum, adjusted;
        uint32_t sum = 0;
        for (i = 0; i < depth; i++) {
            max = x[i] > max ? x[i] : max;
        }
        for (i = 0; i < depth; i++) {
            sum += (uint32_t)shares[max - x[i]];
        }
        log_sum = mcuc_log_x_q12_to_q5((int32_t)sum);
        adjusted = mcuc_mbqm(mcuc_add_wrap(log_sum, INT32_MIN), reverse_divisor, reverse_shift);
        if (adjusted < diff_min - 1) adjusted = diff_min - 1;
        for (i = 0; i < depth; i++) {
            const int32_t d = max - x[i];
            if (-d > adjusted) {
                y[i] = (int8_t)mcuc_clamp(mcuc_rdbpot(mcuc_add_wrap(q5[d], -log_sum), 22) + 127, -128, 127);
            } else {
                y[i] = -128;
            }
        }
    }
}

#endif /* MCUC_LOG_SOFTMAX_H */
