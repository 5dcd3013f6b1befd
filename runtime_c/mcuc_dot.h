/* mcuc_dot.h: the dot product of two rows, added to a start value: what the recurrent
 * kernels (mcuc_svdf.h, mcuc_lstm.h) compute once per weight row and state.
 *
 * With the DSP extension (Cortex-M4/M7/M33) SMLAD or SMLALD takes two products per
 * instruction, from words of four int8 or two int16 lanes; the row's tail, and every
 * product on other cores, is taken one at a time. Both give the same sum: the int32 forms
 * wrap (uint32 in C; SMLAD adds exactly and keeps the low 32 bits), the int64 form cannot
 * overflow on a row shorter than 2^33 elements. Rows need no alignment: words are read with
 * mcuc_load32 (one LDR where the core allows unaligned loads). */
#ifndef MCUC_DOT_H
#define MCUC_DOT_H

#include "mcuc_fixedpoint.h"

/* start + sum_k a[k] * b[k] over int8 rows, wrapping. */
MCUC_INLINE uint32_t mcuc_dot_s8(const int8_t *a, const int8_t *b, int32_t n, uint32_t start) {
    uint32_t acc = start;
    int32_t k = 0;
#if MCUC_DSP
    int32_t sum = (int32_t)start;
    for (; k + 4 <= n; k += 4) {
        const uint32_t va = mcuc_load32(a + k), vb = mcuc_load32(b + k);
        sum = __smlad((int32_t)mcuc_sxtb16(va), (int32_t)mcuc_sxtb16(vb), sum);
        sum = __smlad((int32_t)mcuc_sxtb16_ror8(va), (int32_t)mcuc_sxtb16_ror8(vb), sum);
    }
    acc = (uint32_t)sum;
#endif
    for (; k < n; ++k) {
        acc += (uint32_t)((int32_t)a[k] * (int32_t)b[k]);
    }
    return acc;
}

/* sums[i] += a_i . b for two int8 rows against one int8 vector, wrapping: each word of the
 * vector is loaded and extended once for both rows (16 instructions per 8 products, against
 * 22 for two mcuc_dot_s8). */
MCUC_INLINE void mcuc_dot2_s8(const int8_t *a0, const int8_t *a1, const int8_t *b, int32_t n, uint32_t sums[2]) {
    uint32_t s0 = sums[0], s1 = sums[1];
    int32_t k = 0;
#if MCUC_DSP
    int32_t d0 = (int32_t)s0, d1 = (int32_t)s1;
    for (; k + 4 <= n; k += 4) {
        const uint32_t vb = mcuc_load32(b + k), v0 = mcuc_load32(a0 + k), v1 = mcuc_load32(a1 + k);
        const int32_t be = (int32_t)mcuc_sxtb16(vb), bo = (int32_t)mcuc_sxtb16_ror8(vb);
        d0 = __smlad((int32_t)mcuc_sxtb16(v0), be, d0);
        d0 = __smlad((int32_t)mcuc_sxtb16_ror8(v0), bo, d0);
        d1 = __smlad((int32_t)mcuc_sxtb16(v1), be, d1);
        d1 = __smlad((int32_t)mcuc_sxtb16_ror8(v1), bo, d1);
    }
    s0 = (uint32_t)d0, s1 = (uint32_t)d1;
#endif
    for (; k < n; ++k) {
        s0 += (uint32_t)((int32_t)a0[k] * (int32_t)b[k]);
        s1 += (uint32_t)((int32_t)a1[k] * (int32_t)b[k]);
    }
    sums[0] = s0, sums[1] = s1;
}

/* sums[i] = start[i] + w_i . x for `count` (1 or 2) consecutive rows of `n` int8 weights
 * from `w` (`start` NULL: from 0), wrapping: a weight matrix against one vector, two rows
 * at a time. */
MCUC_INLINE void mcuc_dot_rows_s8(const int8_t *w, const int8_t *x, int32_t n, int32_t count, const int32_t *start,
                                  uint32_t sums[2]) {
    sums[0] = start ? (uint32_t)start[0] : 0u;
    sums[1] = start && count == 2 ? (uint32_t)start[1] : 0u;
    if (count == 2) {
        mcuc_dot2_s8(w, w + n, x, n, sums);
    } else {
        sums[0] = mcuc_dot_s8(w, x, n, sums[0]);
    }
}

/* start + sum_k a[k] * b[k] over int16 rows, wrapping. */
MCUC_INLINE uint32_t mcuc_dot_s16(const int16_t *a, const int16_t *b, int32_t n, uint32_t start) {
    uint32_t acc = start;
    int32_t k = 0;
#if MCUC_DSP
    int32_t sum = (int32_t)start;
    for (; k + 2 <= n; k += 2) {
        sum = __smlad((int32_t)mcuc_load32(a + k), (int32_t)mcuc_load32(b + k), sum);
    }
    acc = (uint32_t)sum;
#endif
    for (; k < n; ++k) {
        acc += (uint32_t)((int32_t)a[k] * (int32_t)b[k]);
    }
    return acc;
}

/* start + sum_k w[k] * x[k] of int8 weights and int16 values, in int64 (the 16x8 form). */
MCUC_INLINE int64_t mcuc_dot_s8_s16(const int8_t *w, const int16_t *x, int32_t n, int64_t start) {
    int64_t acc = start;
    int32_t k = 0;
#if MCUC_DSP
    for (; k + 4 <= n; k += 4) {
        /* the weights' lanes come out as (w0, w2) and (w1, w3): pair the values likewise */
        const uint32_t vw = mcuc_load32(w + k), x01 = mcuc_load32(x + k), x23 = mcuc_load32(x + k + 2);
        uint32_t x02, x13;
        __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(x02) : "r"(x01), "r"(x23));
        __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(x13) : "r"(x23), "r"(x01));
        acc = __smlald((int32_t)mcuc_sxtb16(vw), (int32_t)x02, acc);
        acc = __smlald((int32_t)mcuc_sxtb16_ror8(vw), (int32_t)x13, acc);
    }
#endif
    for (; k < n; ++k) {
        acc += (int32_t)w[k] * (int32_t)x[k];
    }
    return acc;
}

#endif /* MCUC_DOT_H */
