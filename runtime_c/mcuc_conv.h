/* mcuc_conv.h: convolution and fully connected kernels (int8 x int8 -> int32 -> int8).
 *
 * Every kernel is an always-inline body: the per-layer wrapper that mcuc generates calls
 * it with the layer's shapes as literal constants, so the C compiler folds them, unrolls
 * the loops and drops the branches that cannot happen for that layer.
 *
 * Conventions shared by the GEMM kernels:
 * - `bias` is the compile-time folded bias: bias[c] - input_zero_point * sum(w[c]), so the
 *   inner loops multiply raw int8 activations (padding taps hold the input zero point and
 *   so contribute nothing after the correction).
 * - weights are reordered at compile time into channel pairs: for channels (c, c+1) the
 *   row is [w[c][0..3], w[c+1][0..3], w[c][4..7], w[c+1][4..7], ...], the depth padded
 *   with zeros to a multiple of 4 and an odd channel count padded with a zero channel.
 * - requantization (mcuc_quant_t): TFLite's rule (mcuc_requant_t), where `fast` selects
 *   per channel the fast stage (mult, round, right; mcuc_stage_fast), which the compiler
 *   chose only where it proved its preconditions for that channel, and otherwise
 *   mcuc_mbqm (mult, shift); or onnxruntime's float32 scales (mcuc_ort_requant_t) on the
 *   same exact int32 accumulators. On DSP targets a layer fast on every channel (TFLite's
 *   fast stage, or onnxruntime's bounded signed one) may carry weights, start values and
 *   stage constants in one pair stream instead (see mcuc_gemm_rows2_streams).
 * - shapes and windows arrive as mcuc_dims_t / mcuc_window_t (mcuc_params.h); a kernel
 *   that needs scratch states its size in <kernel>_get_buffer_size, which the compiler's
 *   scratch requests (backends/cortexm/kernels.py) equal.
 */
#ifndef MCUC_CONV_H
#define MCUC_CONV_H

#include "mcuc_fixedpoint.h"
#include "mcuc_ort.h"
#include "mcuc_params.h"

/* TFLite's per-channel requantization (tflite-micro's integer output stage), with the
 * fused activation. onnxruntime's rule is mcuc_ort_requant_t (mcuc_ort.h). */
typedef struct {
    const int32_t *mult;   /* Q31 multiplier per output channel */
    const int32_t *shift;  /* fast channel: right shift (>= 1); else TFLite's signed shift */
    const int32_t *round;  /* fast channel: 2^(right - 1), plus out_zp << right when zp_folded */
    const uint8_t *slow;   /* fast == 2: 1 for the channels that take the general stage */
    int32_t out_zp;
    int32_t act_min;
    int32_t act_max;
    int fast;              /* 0: the general stage everywhere; 1: the fast stage everywhere;
                            * 2: per channel (slow[]) */
    int zp_folded;         /* fast channels: the output zero point is inside round[] */
} mcuc_requant_t;

/* What an integer GEMM kernel needs to turn int8 inputs into int8 outputs: the input
 * zero point (the value of padding taps, or the offset added to every tap), the int32
 * each output channel's accumulator starts from, and the output stage under exactly one
 * of the two rules (the other pointer is NULL). */
typedef struct {
    int32_t in_zp;
    const int32_t *bias;              /* per output channel; NULL where the kernel has none */
    const mcuc_requant_t *tflite;
    const mcuc_ort_requant_t *ort;
} mcuc_quant_t;

MCUC_INLINE int32_t mcuc_activation(int32_t y, const mcuc_requant_t *q) {
#if MCUC_DSP
    if (q->act_min == -128 && q->act_max == 127) {
        return mcuc_ssat8(y);
    }
#endif
    return mcuc_clamp(y, q->act_min, q->act_max);
}

/* Whether channel c takes the fast stage. */
MCUC_INLINE int mcuc_channel_fast(const mcuc_requant_t *q, int c) {
    return q->fast == 1 || (q->fast == 2 && !q->slow[c]);
}

/* The fast stage on an accumulator held doubled (acc2 = 2 * acc, |acc| < 2^30), the
 * zero point not yet added unless folded into `round`: mcuc_requant_fast with the
 * rounding constant added by the multiply (SMMLAR adds round * 2^32 before its
 * rounding shift) and the sign correction taken from the accumulator instead of the
 * product. The two signs differ only where the product rounds to 0, and there
 * (round - 1) >> e == round >> e, because round = 2^(e-1) + zp * 2^e with e >= 1 (a
 * constant channel's round, 2y with e = 1, meets only acc2 = 0). */
MCUC_INLINE int32_t mcuc_stage_fast2(int32_t acc2, int32_t mult, int32_t round, int32_t right) {
#if MCUC_DSP
    int32_t t;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(t) : "r"(acc2), "r"(mult), "r"(round));
    return (t - (int32_t)(acc2 < 0)) >> right;
#else
    return mcuc_requant_fast_doubled(acc2, mult, round, right);
#endif
}

/* The same on the accumulator itself (|acc| < 2^30). */
MCUC_INLINE int32_t mcuc_stage_fast(int32_t acc, int32_t mult, int32_t round, int32_t right) {
#if MCUC_DSP
    return mcuc_stage_fast2((int32_t)((uint32_t)acc << 1), mult, round, right);
#else
    return mcuc_requant_fast(acc, mult, round, right);
#endif
}

MCUC_INLINE int32_t mcuc_requant_channel_doubled(int32_t acc2, const mcuc_requant_t *q, int c) {
    int32_t y;
    if (mcuc_channel_fast(q, c)) {
        y = mcuc_stage_fast2(acc2, q->mult[c], q->round[c], q->shift[c]);
        if (!q->zp_folded) {
            y += q->out_zp;
        }
    } else {
        y = mcuc_mbqm(acc2 / 2, q->mult[c], q->shift[c]) + q->out_zp;
    }
    return mcuc_activation(y, q);
}

/* For kernels that accumulate acc itself (the fast stage doubles it: |acc| < 2^30 there). */
MCUC_INLINE int32_t mcuc_requant_channel(int32_t acc, const mcuc_requant_t *q, int c) {
    int32_t y;
    if (mcuc_channel_fast(q, c)) {
        y = mcuc_stage_fast(acc, q->mult[c], q->round[c], q->shift[c]);
        if (!q->zp_folded) {
            y += q->out_zp;
        }
    } else {
        y = mcuc_mbqm(acc, q->mult[c], q->shift[c]) + q->out_zp;
    }
    return mcuc_activation(y, q);
}

MCUC_INLINE int32_t mcuc_output_stage(int32_t acc, const mcuc_quant_t *q, int c) {
    if (q->ort) {
        return mcuc_ort_requant_channel(acc, q->ort, c);
    }
    return mcuc_requant_channel(acc, q->tflite, c);
}

/* Sign-extends two rows of depth4 int8 values to int16, interleaved in steps of 4
 * inputs: for each step the halfwords x0[k], x0[k+2], x0[k+1], x0[k+3] (the lane order
 * SXTB16 gives a weight word: even lanes, then odd lanes), then the same for row 1. */
MCUC_INLINE void mcuc_extend_rows2(int16_t *dst, const int8_t *src0, const int8_t *src1, int depth4) {
    int k;
#if MCUC_DSP
    uint32_t *d = (uint32_t *)(void *)dst;
    for (k = 0; k < depth4; k += 4) {
        const uint32_t v0 = mcuc_load32(src0 + k);
        const uint32_t v1 = mcuc_load32(src1 + k);
        d[0] = mcuc_sxtb16(v0);
        d[1] = mcuc_sxtb16_ror8(v0);
        d[2] = mcuc_sxtb16(v1);
        d[3] = mcuc_sxtb16_ror8(v1);
        d += 4;
    }
#else
    for (k = 0; k < depth4; k += 4) {
        int16_t *d = dst + 2 * k;
        d[0] = src0[k];
        d[1] = src0[k + 2];
        d[2] = src0[k + 1];
        d[3] = src0[k + 3];
        d[4] = src1[k];
        d[5] = src1[k + 2];
        d[6] = src1[k + 1];
        d[7] = src1[k + 3];
    }
#endif
}

#if MCUC_DSP
/* The 2 pixels x 2 channels micro-kernel in assembly (gcc 12 spills the accumulators of
 * the C version). One step covers 4 inputs: the four words of the two interleaved
 * extended rows and the two weight words are loaded back to back (single loads pipeline:
 * 7 cycles for 6 words on a Cortex-M4), then four SXTB16 and eight SMLAD. */
#define MCUC_GEMM_STEP                                                                \
    "ldr %[x0e], [%[p]], #4\n\t"                                                      \
    "ldr %[x0o], [%[p]], #4\n\t"                                                      \
    "ldr %[x1e], [%[p]], #4\n\t"                                                      \
    "ldr %[x1o], [%[p]], #4\n\t"                                                      \
    "ldr %[w0], [%[w]], #4\n\t"                                                       \
    "ldr %[w1], [%[w]], #4\n\t"                                                       \
    "sxtb16 %[t], %[w0]\n\t"                                                          \
    "smlad %[b00], %[x0e], %[t], %[b00]\n\t"                                          \
    "smlad %[b10], %[x1e], %[t], %[b10]\n\t"                                          \
    "sxtb16 %[t], %[w0], ror #8\n\t"                                                  \
    "smlad %[b00], %[x0o], %[t], %[b00]\n\t"                                          \
    "smlad %[b10], %[x1o], %[t], %[b10]\n\t"                                          \
    "sxtb16 %[t], %[w1]\n\t"                                                          \
    "smlad %[b01], %[x0e], %[t], %[b01]\n\t"                                          \
    "smlad %[b11], %[x1e], %[t], %[b11]\n\t"                                          \
    "sxtb16 %[w1], %[w1], ror #8\n\t"                                                 \
    "smlad %[b01], %[x0o], %[w1], %[b01]\n\t"                                         \
    "smlad %[b11], %[x1o], %[w1], %[b11]\n\t"

#define MCUC_GEMM_OPERANDS                                                            \
    : [b00] "+r"(a00), [b01] "+r"(a01), [b10] "+r"(a10), [b11] "+r"(a11), [p] "+r"(p),  \
      [w] "+r"(w), [x0e] "=&r"(x0e), [x0o] "=&r"(x0o), [x1e] "=&r"(x1e),              \
      [x1o] "=&r"(x1o), [w0] "=&r"(w0), [w1] "=&r"(w1), [t] "=&r"(t)

/* a00 += x0 . w[c], a01 += x0 . w[c+1], a10 += x1 . w[c], a11 += x1 . w[c+1] over `steps`
 * steps of 4 inputs (a compile-time constant where it is inlined): a loop of four steps
 * per pass (one SUBS/BNE per 64 MACs), the remaining 0-3 steps straight. */
MCUC_INLINE const int8_t *mcuc_gemm_2x2(int32_t *acc, const int16_t *p, const int8_t *w, int steps) {
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    uint32_t x0e, x0o, x1e, x1o, w0, w1, t;
    int n = steps / 4;
    if (n > 0) {
        __asm__ volatile("1:\n\t" MCUC_GEMM_STEP MCUC_GEMM_STEP MCUC_GEMM_STEP MCUC_GEMM_STEP
                         "subs %[n], %[n], #1\n\t"
                         "bne 1b\n\t"
                         MCUC_GEMM_OPERANDS, [n] "+r"(n) : : "cc", "memory");
    }
    switch (steps % 4) {
    case 3:
        __asm__ volatile(MCUC_GEMM_STEP MCUC_GEMM_STEP MCUC_GEMM_STEP MCUC_GEMM_OPERANDS : : "memory");
        break;
    case 2:
        __asm__ volatile(MCUC_GEMM_STEP MCUC_GEMM_STEP MCUC_GEMM_OPERANDS : : "memory");
        break;
    case 1:
        __asm__ volatile(MCUC_GEMM_STEP MCUC_GEMM_OPERANDS : : "memory");
        break;
    default:
        break;
    }
    acc[0] = a00, acc[1] = a01, acc[2] = a10, acc[3] = a11;
    return w;
}
#endif

/* Two pixels x all output channels from their interleaved extended rows (see
 * mcuc_extend_rows2): y0[c] = x0 . w[c], y1[c] = x1 . w[c]; when `two` is 0 only y0 is
 * stored (the odd last pixel, whose row 1 is a copy). */
MCUC_INLINE void mcuc_gemm_rows2(const int16_t *rows, int two, const int8_t *wpairs,
                                 int depth4, int out_ch, const mcuc_quant_t *q,
                                 int8_t *y0, int8_t *y1) {
    const int8_t *w = wpairs;
    int c;
    for (c = 0; c < out_ch; c += 2) {
        int32_t a00 = q->bias[c], a01 = q->bias[c + 1];
        int32_t a10 = a00, a11 = a01;
#if MCUC_DSP
        {
            int32_t acc[4] = {a00, a01, a10, a11};
            w = mcuc_gemm_2x2(acc, rows, w, depth4 / 4);
            a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
        }
#else
        int k;
        for (k = 0; k < depth4; k += 4) {
            const int16_t *x0 = rows + 2 * k, *x1 = x0 + 4;
            a00 += x0[0] * w[0] + x0[1] * w[2] + x0[2] * w[1] + x0[3] * w[3];
            a01 += x0[0] * w[4] + x0[1] * w[6] + x0[2] * w[5] + x0[3] * w[7];
            if (two) {
                a10 += x1[0] * w[0] + x1[1] * w[2] + x1[2] * w[1] + x1[3] * w[3];
                a11 += x1[0] * w[4] + x1[1] * w[6] + x1[2] * w[5] + x1[3] * w[7];
            }
            w += 8;
        }
#endif
        y0[c] = (int8_t)mcuc_output_stage(a00, q, c);
        if (two) {
            y1[c] = (int8_t)mcuc_output_stage(a10, q, c);
        }
        if (c + 1 < out_ch) {
            y0[c + 1] = (int8_t)mcuc_output_stage(a01, q, c + 1);
            if (two) {
                y1[c + 1] = (int8_t)mcuc_output_stage(a11, q, c + 1);
            }
        }
    }
}

/* The pair-stream layout (DSP targets, for layers whose every channel takes TFLite's
 * fast stage with the output zero point folded and clamps to the whole int8 range): per
 * channel pair two int32 start values, the pair's weights as in `wpairs` (2 * depth4
 * bytes), then mult[c], mult[c+1], round[c], round[c+1], right[c], right[c+1]. One
 * pointer walks everything a pair needs. */
#if MCUC_DSP
/* The stream of a layer and the rule of its stage: `frac` 0 for TFLite's fast stage
 * (the constants mult, round, right); onnxruntime's in its bounded signed form
 * (mcuc_ort_requant_signed with `checked` 0) otherwise, k = frac, the constants
 * mult7, rounding (with the output zero point `zp`), pre. */
typedef struct {
    const uint32_t *words;
    int32_t frac;
    int32_t zp;
    int32_t wide;  /* 1: the wide layout (see mcuc_gemm_pairs_wide_asm) */
} mcuc_pair_stream_t;

/* One output of such a stage, SSAT to int8: TFLite's fast stage (mcuc_stage_fast2 on 2a). */
#define MCUC_STREAM_STORE(a, m, r, e, off)                                              \
    "lsl %[t], %[" a "], #1\n\t"                                                         \
    "smmlar %[t], %[t], %[" m "], %[" r "]\n\t"                                          \
    "add %[t], %[t], %[" a "], asr #31\n\t"                                              \
    "asr %[t], %[t], %[" e "]\n\t"                                                       \
    "ssat %[t], #8, %[t]\n\t"                                                            \
    "strb %[t], [%[n], #" off "]\n\t"

/* The same under onnxruntime's bounded signed stage: t = (a << pre) * mult7 high word +
 * rounding, >> k; where its low k bits are below 2^(k-14) (a tie or a double rounding
 * hazard) the word at `flag` becomes nonzero (the caller redoes the two pixels in C). */
#define MCUC_STREAM_STORE_ORT(a, m, r, e, off)                                          \
    "lsl %[t], %[" a "], %[" e "]\n\t"                                                   \
    "smmla %[t], %[t], %[" m "], %[" r "]\n\t"                                           \
    "lsl %[" a "], %[t], #32-%c[frac]\n\t"                                               \
    "cmp %[" a "], #0x40000\n\t"                                                         \
    "it lo\n\t"                                                                          \
    "strlo %[w], %[flag]\n\t"                                                            \
    "ssat %[t], #8, %[t], asr #%c[frac]\n\t"                                             \
    "strb %[t], [%[n], #" off "]\n\t"

/* The end of a channel pair in the pair-stream loops: the four outputs through STORE with
 * the stage constants in x0e..w1 (the output pointer read from and written back to the
 * stack), then back to label 2 until the stream's end. */
#define MCUC_PAIRS_STORE4(STORE)                                                      \
    "ldr %[n], %[ym]\n\t"                                                             \
    STORE("b00", "x0e", "x1e", "w0", "0")                                             \
    STORE("b01", "x0o", "x1o", "w1", "1")                                             \
    STORE("b10", "x0e", "x1e", "w0", "%c[oc]")                                        \
    STORE("b11", "x0o", "x1o", "w1", "%c[oc]+1")                                      \
    "add %[n], %[n], #2\n\t"                                                          \
    "str %[n], %[ym]\n\t"                                                             \
    "ldr %[t], %[wend]\n\t"                                                           \
    "cmp %[w], %[t]\n\t"                                                              \
    "bne 2b\n\t"

/* Two pixels (rows, outputs at y and y + out_ch) through the first `pairs` channel pairs
 * of the stream (both channels stored) in one assembly loop: the micro-kernel of mcuc_gemm_2x2 (four steps per pass
 * while `loops` lasts, `rem` straight), then the six stage constants loaded back to
 * back into the freed registers and four outputs stored. The output pointer and the
 * stream's end live in the caller's stack ("m" operands): the 14 registers hold the
 * micro-kernel. */
#define MCUC_PAIRS_ASM(STORE)                                                         \
    "2:\n\t"                                                                          \
    "ldr %[b00], [%[w]], #4\n\t"                                                      \
    "ldr %[b01], [%[w]], #4\n\t"                                                      \
    "mov %[b10], %[b00]\n\t"                                                          \
    "mov %[b11], %[b01]\n\t"                                                          \
    ".if %c[loops]\n\t"                                                               \
    "movw %[n], #%c[loops]\n\t"                                                       \
    "1:\n\t" MCUC_GEMM_STEP MCUC_GEMM_STEP MCUC_GEMM_STEP MCUC_GEMM_STEP              \
    "subs %[n], %[n], #1\n\t"                                                         \
    "bne 1b\n\t"                                                                      \
    ".endif\n\t"                                                                      \
    ".rept %c[rem]\n\t" MCUC_GEMM_STEP ".endr\n\t"                                    \
    "subw %[p], %[p], #%c[rb]\n\t"                                                    \
    "ldr %[x0e], [%[w]], #4\n\t"                                                      \
    "ldr %[x0o], [%[w]], #4\n\t"                                                      \
    "ldr %[x1e], [%[w]], #4\n\t"                                                      \
    "ldr %[x1o], [%[w]], #4\n\t"                                                      \
    "ldr %[w0], [%[w]], #4\n\t"                                                       \
    "ldr %[w1], [%[w]], #4\n\t"                                                       \
    MCUC_PAIRS_STORE4(STORE)

#define MCUC_PAIRS_OUTPUTS                                                            \
    [b00] "=&r"(a00), [b01] "=&r"(a01), [b10] "=&r"(a10), [b11] "=&r"(a11), [p] "+r"(p), [w] "+r"(w), \
    [x0e] "=&r"(x0e), [x0o] "=&r"(x0o), [x1e] "=&r"(x1e), [x1o] "=&r"(x1o), [w0] "=&r"(w0),       \
    [w1] "=&r"(w1), [t] "=&r"(t), [n] "=&r"(n), [ym] "+m"(ym)

#define MCUC_PAIRS_INPUTS                                                             \
    [wend] "m"(wend), [loops] "i"(steps / 4), [rem] "i"(steps % 4), [rb] "i"(16 * steps), [oc] "i"(out_ch)

/* `frac` 0: TFLite's stage (`flag` not touched); else onnxruntime's with k = frac. */
MCUC_INLINE void mcuc_gemm_pairs_asm(const int16_t *rows, const uint32_t *stream, int pairs, int depth4,
                                     int out_ch, int8_t *y, int frac, uint32_t *flag) {
    const int steps = depth4 / 4;
    const uint32_t *wend = stream + pairs * (8 + depth4 / 2);
    const uint32_t *w = stream;
    const int16_t *p = rows;
    int8_t *ym = y;
    int32_t a00, a01, a10, a11;
    uint32_t x0e, x0o, x1e, x1o, w0, w1, t, n;
    if (frac) {
        __asm__ volatile(MCUC_PAIRS_ASM(MCUC_STREAM_STORE_ORT) : MCUC_PAIRS_OUTPUTS, [flag] "+m"(*flag)
                         : MCUC_PAIRS_INPUTS, [frac] "i"(frac) : "cc", "memory");
    } else {
        __asm__ volatile(MCUC_PAIRS_ASM(MCUC_STREAM_STORE) : MCUC_PAIRS_OUTPUTS : MCUC_PAIRS_INPUTS : "cc", "memory");
        (void)flag;
    }
    (void)a00, (void)a01, (void)a10, (void)a11, (void)x0e, (void)x0o, (void)x1e, (void)x1o, (void)w0, (void)w1,
        (void)t, (void)n;
}

/* The wide layout (layers of at most 64 inputs per output, where the per-output costs
 * outweigh the MACs): per channel pair the start values s0, s1, s0, s1 (one LDM fills all
 * four accumulators), per step of 4 inputs the weights already sign-extended to int16 in
 * the lanes of the extended rows, (w0[k], w0[k+2]), (w0[k+1], w0[k+3]), then the same for
 * the pair's second channel, then the six stage constants. A step is two LDMs and eight
 * SMLADs: 10 instructions and 18 estimated cycles for 16 MACs, against 18 and 19 with
 * int8 weights (four SXTB16s and six single loads). The steps are unrolled (no register
 * is left for a counter), which is why the layout is kept to short rows. LDM takes its
 * registers in ascending order, so every operand has its register: r0-r3 the extended
 * rows (then the multipliers and rounding constants), r4-r7 the weights (then the shifts,
 * the scratch register t and the output pointer n), r8-r11 the accumulators, r12 the
 * rows' pointer and lr the stream's. */
#define MCUC_WIDE_STEP                                                                \
    "ldm %[p]!, {%[x0e], %[x0o], %[x1e], %[x1o]}\n\t"                                 \
    "ldm %[w]!, {%[w0], %[w1], %[t], %[n]}\n\t"                                       \
    "smlad %[b00], %[x0e], %[w0], %[b00]\n\t"                                         \
    "smlad %[b10], %[x1e], %[w0], %[b10]\n\t"                                         \
    "smlad %[b01], %[x0e], %[t], %[b01]\n\t"                                          \
    "smlad %[b11], %[x1e], %[t], %[b11]\n\t"                                          \
    "smlad %[b00], %[x0o], %[w1], %[b00]\n\t"                                         \
    "smlad %[b10], %[x1o], %[w1], %[b10]\n\t"                                         \
    "smlad %[b01], %[x0o], %[n], %[b01]\n\t"                                          \
    "smlad %[b11], %[x1o], %[n], %[b11]\n\t"

#define MCUC_WIDE_ASM(STORE)                                                          \
    "2:\n\t"                                                                          \
    "ldm %[w]!, {%[b00], %[b01], %[b10], %[b11]}\n\t"                                 \
    ".rept %c[steps]\n\t" MCUC_WIDE_STEP ".endr\n\t"                                  \
    "subw %[p], %[p], #%c[rb]\n\t"                                                    \
    "ldm %[w]!, {%[x0e], %[x0o], %[x1e], %[x1o], %[w0], %[w1]}\n\t"                   \
    MCUC_PAIRS_STORE4(STORE)

#define MCUC_WIDE_INPUTS                                                              \
    [wend] "m"(wend), [steps] "i"(steps), [rb] "i"(16 * steps), [oc] "i"(out_ch)

/* The stream's words of one channel pair in the wide layout. */
#define MCUC_WIDE_PAIR_WORDS(depth4) (4 + (depth4) + 6)

MCUC_INLINE void mcuc_gemm_pairs_wide_asm(const int16_t *rows, const uint32_t *stream, int pairs, int depth4,
                                          int out_ch, int8_t *y, int frac, uint32_t *flag) {
    const int steps = depth4 / 4;
    const uint32_t *wend = stream + pairs * MCUC_WIDE_PAIR_WORDS(depth4);
    register const uint32_t *w __asm__("lr") = stream;
    register const int16_t *p __asm__("r12") = rows;
    int8_t *ym = y;
    register int32_t a00 __asm__("r8"), a01 __asm__("r9"), a10 __asm__("r10"), a11 __asm__("r11");
    register uint32_t x0e __asm__("r0"), x0o __asm__("r1"), x1e __asm__("r2"), x1o __asm__("r3");
    register uint32_t w0 __asm__("r4"), w1 __asm__("r5"), t __asm__("r6"), n __asm__("r7");
    if (frac) {
        __asm__ volatile(MCUC_WIDE_ASM(MCUC_STREAM_STORE_ORT) : MCUC_PAIRS_OUTPUTS, [flag] "+m"(*flag)
                         : MCUC_WIDE_INPUTS, [frac] "i"(frac) : "cc", "memory");
    } else {
        __asm__ volatile(MCUC_WIDE_ASM(MCUC_STREAM_STORE) : MCUC_PAIRS_OUTPUTS : MCUC_WIDE_INPUTS : "cc", "memory");
        (void)flag;
    }
    (void)a00, (void)a01, (void)a10, (void)a11, (void)x0e, (void)x0o, (void)x1e, (void)x1o, (void)w0, (void)w1,
        (void)t, (void)n;
}

/* The accumulators of one pair of the wide layout in C (the pairs the assembly leaves):
 * acc the four start values, returns the pair's stage constants. */
MCUC_INLINE const int32_t *mcuc_gemm_2x2_wide(int32_t *acc, const int16_t *rows, const uint32_t *s, int depth4) {
    const uint32_t *x = (const uint32_t *)(const void *)rows;
    const uint32_t *w = s + 4;
    int k;
    acc[0] = (int32_t)s[0], acc[1] = (int32_t)s[1], acc[2] = (int32_t)s[2], acc[3] = (int32_t)s[3];
    for (k = 0; k < depth4 / 4; k++, x += 4, w += 4) {
        acc[0] = __smlad((int32_t)x[1], (int32_t)w[1], __smlad((int32_t)x[0], (int32_t)w[0], acc[0]));
        acc[1] = __smlad((int32_t)x[1], (int32_t)w[3], __smlad((int32_t)x[0], (int32_t)w[2], acc[1]));
        acc[2] = __smlad((int32_t)x[3], (int32_t)w[1], __smlad((int32_t)x[2], (int32_t)w[0], acc[2]));
        acc[3] = __smlad((int32_t)x[3], (int32_t)w[3], __smlad((int32_t)x[2], (int32_t)w[2], acc[3]));
    }
    return (const int32_t *)(const void *)w;
}

/* One output of a pair stream's stage in C: accumulator acc of the pair's channel i
 * (0 or 1), k the pair's six stage constants. */
MCUC_INLINE int8_t mcuc_stream_stage(int32_t acc, const int32_t *k, int i, const mcuc_pair_stream_t *st) {
    if (st->frac) {
        return (int8_t)mcuc_ort_requant_signed(acc, k[i], k[4 + i], st->frac, 0, k[2 + i], st->zp, -128, 127);
    }
    return (int8_t)mcuc_ssat8(mcuc_stage_fast(acc, k[i], k[2 + i], k[4 + i]));
}

/* mcuc_gemm_rows2 on the pair-stream layout: the assembly loop over the channel pairs
 * whose both channels exist where both pixels are stored next to each other and the
 * shapes fit its immediate operands; the rest (an odd last channel, a single pixel, and
 * the two pixels again when the assembly met an onnxruntime hazard) per pair in C
 * around mcuc_gemm_2x2. */
MCUC_INLINE void mcuc_gemm_rows2_streams(const int16_t *rows, int two, const mcuc_pair_stream_t *st, int depth4,
                                         int out_ch, int8_t *y0, int8_t *y1) {
    const uint32_t *s = st->words;
    const int pair_words = st->wide ? MCUC_WIDE_PAIR_WORDS(depth4) : 8 + depth4 / 2;
    int c = 0;
    if (two && y1 == y0 + out_ch && __builtin_constant_p(depth4) && __builtin_constant_p(out_ch) &&
        __builtin_constant_p(st->frac) && __builtin_constant_p(st->wide) && 4 * depth4 < 4096 &&
        out_ch + 1 < 4096 && out_ch >= 2) {
        uint32_t hazard = 0; /* stored (and its store kept) only under onnxruntime's stage */
        if (st->wide) {
            mcuc_gemm_pairs_wide_asm(rows, st->words, out_ch / 2, depth4, out_ch, y0, st->frac, &hazard);
        } else {
            mcuc_gemm_pairs_asm(rows, st->words, out_ch / 2, depth4, out_ch, y0, st->frac, &hazard);
        }
        if (!st->frac || !hazard) { /* TFLite's stage has no hazards */
            c = out_ch & ~1;
            s = st->words + (out_ch / 2) * pair_words;
        }
    }
    for (; c < out_ch; c += 2) {
        int32_t acc[4];
        const int32_t *k;
        if (st->wide) {
            k = mcuc_gemm_2x2_wide(acc, rows, s, depth4);
        } else {
            acc[0] = acc[2] = (int32_t)s[0];
            acc[1] = acc[3] = (int32_t)s[1];
            k = (const int32_t *)(const void *)mcuc_gemm_2x2(acc, rows, (const int8_t *)(const void *)(s + 2),
                                                            depth4 / 4);
        }
        y0[c] = mcuc_stream_stage(acc[0], k, 0, st);
        if (two) {
            y1[c] = mcuc_stream_stage(acc[2], k, 0, st);
        }
        if (c + 1 < out_ch) {
            y0[c + 1] = mcuc_stream_stage(acc[1], k, 1, st);
            if (two) {
                y1[c + 1] = mcuc_stream_stage(acc[3], k, 1, st);
            }
        }
        s = (const uint32_t *)(const void *)(k + 6);
    }
}
#endif

/* Two output pixels' GEMM under either layout: `stream` (the pair streams, DSP only)
 * when not NULL, else `wpairs` with `q`. */
MCUC_INLINE void mcuc_gemm_pixels2(const int16_t *rows, int two, const int8_t *wpairs, const mcuc_quant_t *q,
                                   const void *stream, int depth4, int out_ch, int8_t *y0, int8_t *y1) {
#if MCUC_DSP
    if (stream) {
        mcuc_gemm_rows2_streams(rows, two, (const mcuc_pair_stream_t *)stream, depth4, out_ch, y0, y1);
        return;
    }
#else
    (void)stream;
#endif
    mcuc_gemm_rows2(rows, two, wpairs, depth4, out_ch, q, y0, y1);
}

/* Pointwise (1x1, stride 1, no padding) convolution as a GEMM: pixels are rows of
 * `in_ch` bytes (a multiple of 4); each pixel pair is sign-extended once into the scratch
 * rows (4 * in_ch bytes, interleaved) and then meets every weight row. */
MCUC_INLINE int mcuc_conv_1x1_get_buffer_size(const mcuc_dims_t *in_dims) {
    return 4 * in_dims->c;
}

MCUC_INLINE void mcuc_conv_1x1_body(const int8_t *in, int8_t *out, int8_t *scratch, const mcuc_dims_t *in_dims,
                                    const mcuc_dims_t *out_dims, const int8_t *wpairs, const mcuc_quant_t *q,
                                    const void *stream) {
    int16_t *rows = (int16_t *)(void *)scratch;
    const int pixels = out_dims->h * out_dims->w, in_ch = in_dims->c, out_ch = out_dims->c;
    int p;
    for (p = 0; p + 1 < pixels; p += 2) {
        mcuc_extend_rows2(rows, in + p * in_ch, in + (p + 1) * in_ch, in_ch);
        mcuc_gemm_pixels2(rows, 1, wpairs, q, stream, in_ch, out_ch, out + p * out_ch, out + (p + 1) * out_ch);
    }
    if (pixels & 1) {
        mcuc_extend_rows2(rows, in + p * in_ch, in + p * in_ch, in_ch);
        mcuc_gemm_pixels2(rows, 0, wpairs, q, stream, in_ch, out_ch, out + p * out_ch, out + p * out_ch);
    }
}

MCUC_INLINE void mcuc_conv_1x1(const int8_t *in, int8_t *out, int8_t *scratch, const mcuc_dims_t *in_dims,
                               const mcuc_dims_t *out_dims, const int8_t *wpairs, const mcuc_quant_t *q) {
    mcuc_conv_1x1_body(in, out, scratch, in_dims, out_dims, wpairs, q, (const void *)0);
}

#if MCUC_DSP
/* The same on the pair-stream layout. */
MCUC_INLINE void mcuc_conv_1x1_streams(const int8_t *in, int8_t *out, int8_t *scratch, const mcuc_dims_t *in_dims,
                                       const mcuc_dims_t *out_dims, const mcuc_pair_stream_t *stream) {
    mcuc_conv_1x1_body(in, out, scratch, in_dims, out_dims, (const int8_t *)0, (const mcuc_quant_t *)0, stream);
}
#endif

/* One im2col row: the receptive field of output pixel (oy, ox), taps in (ky, kx, c) order,
 * padding taps filled with the input zero point, tail [kh*kw*in_ch, depth4) zeroed. */
MCUC_INLINE void mcuc_im2col_row(int8_t *row, const int8_t *in, int oy, int ox, const mcuc_dims_t *in_dims,
                                 const mcuc_window_t *win, int8_t in_zp, int depth4) {
    const int in_h = in_dims->h, in_w = in_dims->w, in_ch = in_dims->c, kh = win->kh, kw = win->kw;
    const int stride_h = win->stride_h, stride_w = win->stride_w, dil_h = win->dil_h, dil_w = win->dil_w;
    const int pad_top = win->pad_top, pad_left = win->pad_left;
    int ky, kx;
    int8_t *dst = row;
    for (ky = 0; ky < kh; ky++) {
        const int iy = oy * stride_h - pad_top + ky * dil_h;
        const int ix0 = ox * stride_w - pad_left;
        if (dil_w == 1 && iy >= 0 && iy < in_h && ix0 >= 0 && ix0 + kw <= in_w) {
            /* the whole kernel row inside: one run of kw * in_ch contiguous bytes */
            memcpy(dst, in + (iy * in_w + ix0) * in_ch, (size_t)(kw * in_ch));
            dst += kw * in_ch;
            continue;
        }
        for (kx = 0; kx < kw; kx++) {
            const int ix = ox * stride_w - pad_left + kx * dil_w;
            if (iy >= 0 && iy < in_h && ix >= 0 && ix < in_w) {
                memcpy(dst, in + (iy * in_w + ix) * in_ch, (size_t)in_ch);
            } else {
                memset(dst, in_zp, (size_t)in_ch);
            }
            dst += in_ch;
        }
    }
    if (depth4 > kh * kw * in_ch) {
        memset(dst, 0, (size_t)(depth4 - kh * kw * in_ch));
    }
}

/* The im2col depth: one receptive field's taps (kh * kw * in_ch) rounded up to 4. */
MCUC_INLINE int mcuc_im2col_depth4(const mcuc_dims_t *in_dims, const mcuc_window_t *win) {
    return (win->kh * win->kw * in_dims->c + 3) & ~3;
}

/* Both output pixels' receptive fields (pixels p0 and p1; in_ch a multiple of 4, so each
 * tap fills whole steps of 4 inputs) gathered and sign-extended straight into the
 * interleaved rows of mcuc_extend_rows2, taps in (ky, kx, c) order; padding taps read
 * `zp_row` (in_ch bytes of the input zero point). */
MCUC_INLINE void mcuc_im2col_rows2(int16_t *rows, const int8_t *in, const int8_t *zp_row, int p0, int p1,
                                   const mcuc_dims_t *in_dims, const mcuc_dims_t *out_dims,
                                   const mcuc_window_t *win) {
    const int in_h = in_dims->h, in_w = in_dims->w, in_ch = in_dims->c, out_w = out_dims->w;
    const int kh = win->kh, kw = win->kw, dil_h = win->dil_h, dil_w = win->dil_w;
    const int iy0 = (p0 / out_w) * win->stride_h - win->pad_top, ix0 = (p0 % out_w) * win->stride_w - win->pad_left;
    const int iy1 = (p1 / out_w) * win->stride_h - win->pad_top, ix1 = (p1 % out_w) * win->stride_w - win->pad_left;
    int16_t *d = rows;
    int ky, kx, k;
    for (ky = 0; ky < kh; ky++) {
        const int y0 = iy0 + ky * dil_h, y1 = iy1 + ky * dil_h;
        const int in0 = y0 >= 0 && y0 < in_h, in1 = y1 >= 0 && y1 < in_h;
        for (kx = 0; kx < kw; kx++) {
            const int x0 = ix0 + kx * dil_w, x1 = ix1 + kx * dil_w;
            const int8_t *s0 = in0 && x0 >= 0 && x0 < in_w ? in + (y0 * in_w + x0) * in_ch : zp_row;
            const int8_t *s1 = in1 && x1 >= 0 && x1 < in_w ? in + (y1 * in_w + x1) * in_ch : zp_row;
            for (k = 0; k < in_ch; k += 4) {
#if MCUC_DSP
                const uint32_t v0 = mcuc_load32(s0 + k), v1 = mcuc_load32(s1 + k);
                uint32_t *d32 = (uint32_t *)(void *)d;
                d32[0] = mcuc_sxtb16(v0);
                d32[1] = mcuc_sxtb16_ror8(v0);
                d32[2] = mcuc_sxtb16(v1);
                d32[3] = mcuc_sxtb16_ror8(v1);
#else
                d[0] = s0[k];
                d[1] = s0[k + 2];
                d[2] = s0[k + 1];
                d[3] = s0[k + 3];
                d[4] = s1[k];
                d[5] = s1[k + 2];
                d[6] = s1[k + 1];
                d[7] = s1[k + 3];
#endif
                d += 8;
            }
        }
    }
}

/* General KxK convolution (groups == 1): two output pixels' receptive fields share each
 * pass over the weights as two interleaved int16 rows (4 * depth4 bytes). With in_ch a
 * multiple of 4 they are gathered straight into the rows (mcuc_im2col_rows2; then the
 * scratch also holds one input pixel of zero points for the padding taps, in_ch bytes);
 * otherwise through two int8 im2col rows (2 * depth4 bytes) extended afterwards. */
MCUC_INLINE int mcuc_conv_im2col_get_buffer_size(const mcuc_dims_t *in_dims, const mcuc_window_t *win) {
    const int depth4 = mcuc_im2col_depth4(in_dims, win);
    return in_dims->c % 4 == 0 ? 4 * depth4 + in_dims->c : 6 * depth4;
}

MCUC_INLINE void mcuc_conv_im2col_body(const int8_t *in, int8_t *out, int8_t *scratch, const mcuc_dims_t *in_dims,
                                       const mcuc_dims_t *out_dims, const mcuc_window_t *win, int8_t in_zp,
                                       const int8_t *wpairs, const mcuc_quant_t *q, const void *stream) {
    const int out_w = out_dims->w, out_ch = out_dims->c, pixels = out_dims->h * out_w;
    const int depth4 = mcuc_im2col_depth4(in_dims, win);
    int16_t *rows = (int16_t *)(void *)scratch;
    int8_t *col0 = scratch + 4 * depth4;
    int8_t *col1 = col0 + depth4;
    int p;
    if (in_dims->c % 4 == 0) {
        memset(col0, in_zp, (size_t)in_dims->c);
    }
    for (p = 0; p < pixels; p += 2) {
        const int two = p + 1 < pixels;
        if (in_dims->c % 4 == 0) {
            mcuc_im2col_rows2(rows, in, col0, p, two ? p + 1 : p, in_dims, out_dims, win);
        } else {
            mcuc_im2col_row(col0, in, p / out_w, p % out_w, in_dims, win, in_zp, depth4);
            if (two) {
                mcuc_im2col_row(col1, in, (p + 1) / out_w, (p + 1) % out_w, in_dims, win, in_zp, depth4);
            }
            mcuc_extend_rows2(rows, col0, two ? col1 : col0, depth4);
        }
        mcuc_gemm_pixels2(rows, two, wpairs, q, stream, depth4, out_ch, out + p * out_ch,
                          out + (p + 1 < pixels ? p + 1 : p) * out_ch);
    }
}

MCUC_INLINE void mcuc_conv_im2col(const int8_t *in, int8_t *out, int8_t *scratch, const mcuc_dims_t *in_dims,
                                  const mcuc_dims_t *out_dims, const mcuc_window_t *win,
                                  const int8_t *wpairs, const mcuc_quant_t *q) {
    mcuc_conv_im2col_body(in, out, scratch, in_dims, out_dims, win, (int8_t)q->in_zp, wpairs, q,
                          (const void *)0);
}

#if MCUC_DSP
/* The same on the pair-stream layout (`in_zp`: the input zero point, for padding taps). */
MCUC_INLINE void mcuc_conv_im2col_streams(const int8_t *in, int8_t *out, int8_t *scratch,
                                          const mcuc_dims_t *in_dims, const mcuc_dims_t *out_dims,
                                          const mcuc_window_t *win, int in_zp, const mcuc_pair_stream_t *stream) {
    mcuc_conv_im2col_body(in, out, scratch, in_dims, out_dims, win, (int8_t)in_zp, (const int8_t *)0,
                          (const mcuc_quant_t *)0, stream);
}
#endif

/* Grouped convolution, any shape: the plain direct loop (weights OHWI as in the model,
 * bias folded over the whole window, padding taps read as the input zero point). */
MCUC_INLINE void mcuc_conv_grouped(const int8_t *in, int8_t *out, const mcuc_dims_t *in_dims,
                                   const mcuc_dims_t *out_dims, const mcuc_window_t *win, int groups,
                                   const int8_t *weights, const mcuc_quant_t *q) {
    const int in_h = in_dims->h, in_w = in_dims->w, in_ch = in_dims->c;
    const int out_h = out_dims->h, out_w = out_dims->w, out_ch = out_dims->c;
    const int kh = win->kh, kw = win->kw, stride_h = win->stride_h, stride_w = win->stride_w;
    const int dil_h = win->dil_h, dil_w = win->dil_w, pad_top = win->pad_top, pad_left = win->pad_left;
    const int32_t in_zp = q->in_zp;
    const int cin_g = in_ch / groups;
    const int cout_g = out_ch / groups;
    int oy, ox, oc, ky, kx, ic;
    for (oy = 0; oy < out_h; oy++) {
        for (ox = 0; ox < out_w; ox++) {
            for (oc = 0; oc < out_ch; oc++) {
                const int g = oc / cout_g;
                const int8_t *w = weights + oc * kh * kw * cin_g;
                int32_t acc = q->bias[oc];
                for (ky = 0; ky < kh; ky++) {
                    const int iy = oy * stride_h - pad_top + ky * dil_h;
                    for (kx = 0; kx < kw; kx++) {
                        const int ix = ox * stride_w - pad_left + kx * dil_w;
                        const int inside = iy >= 0 && iy < in_h && ix >= 0 && ix < in_w;
                        const int8_t *x = in + (iy * in_w + ix) * in_ch + g * cin_g;
                        for (ic = 0; ic < cin_g; ic++) {
                            acc += (inside ? x[ic] : in_zp) * w[(ky * kw + kx) * cin_g + ic];
                        }
                    }
                }
                out[(oy * out_w + ox) * out_ch + oc] = (int8_t)mcuc_output_stage(acc, q, oc);
            }
        }
    }
}

/* Fully connected: `rows` input rows of `depth` bytes, weights reordered in groups of four
 * units: [w[u][k..k+3] for u in u0..u0+3] for k in steps of 4 (depth padded with zeros to
 * depth4, units padded to a multiple of 4 with zero units). The tail k in [depth & ~3,
 * depth) is read byte by byte so no byte past the input row is touched. */
MCUC_INLINE void mcuc_fully_connected(const int8_t *in, int8_t *out, int rows, int depth, int units,
                                      const int8_t *wquads, const mcuc_quant_t *q) {
    const int body = depth & ~3;
    int r, u;
    for (r = 0; r < rows; r++) {
        const int8_t *x = in + r * depth;
        const int8_t *w = wquads;
        for (u = 0; u < units; u += 4) {
            int32_t a0 = q->bias[u], a1 = q->bias[u + 1], a2 = q->bias[u + 2], a3 = q->bias[u + 3];
            int k;
#if MCUC_DSP
            for (k = 0; k < body; k += 4) {
                const uint32_t p = mcuc_load32(x + k);
                const int32_t pe = (int32_t)mcuc_sxtb16(p), po = (int32_t)mcuc_sxtb16_ror8(p);
                uint32_t wv = mcuc_load32(w);
                a0 = __smlad(pe, (int32_t)mcuc_sxtb16(wv), a0);
                a0 = __smlad(po, (int32_t)mcuc_sxtb16_ror8(wv), a0);
                wv = mcuc_load32(w + 4);
                a1 = __smlad(pe, (int32_t)mcuc_sxtb16(wv), a1);
                a1 = __smlad(po, (int32_t)mcuc_sxtb16_ror8(wv), a1);
                wv = mcuc_load32(w + 8);
                a2 = __smlad(pe, (int32_t)mcuc_sxtb16(wv), a2);
                a2 = __smlad(po, (int32_t)mcuc_sxtb16_ror8(wv), a2);
                wv = mcuc_load32(w + 12);
                a3 = __smlad(pe, (int32_t)mcuc_sxtb16(wv), a3);
                a3 = __smlad(po, (int32_t)mcuc_sxtb16_ror8(wv), a3);
                w += 16;
            }
#else
            for (k = 0; k < body; k += 4) {
                int j;
                for (j = 0; j < 4; j++) {
                    const int32_t xv = x[k + j];
                    a0 += xv * w[j];
                    a1 += xv * w[4 + j];
                    a2 += xv * w[8 + j];
                    a3 += xv * w[12 + j];
                }
                w += 16;
            }
#endif
            if (body < depth) {
                int j;
                for (j = 0; body + j < depth; j++) {
                    const int32_t xv = x[body + j];
                    a0 += xv * w[j];
                    a1 += xv * w[4 + j];
                    a2 += xv * w[8 + j];
                    a3 += xv * w[12 + j];
                }
                w += 16;
            }
            out[r * units + u] = (int8_t)mcuc_output_stage(a0, q, u);
            if (u + 1 < units) out[r * units + u + 1] = (int8_t)mcuc_output_stage(a1, q, u + 1);
            if (u + 2 < units) out[r * units + u + 2] = (int8_t)mcuc_output_stage(a2, q, u + 2);
            if (u + 3 < units) out[r * units + u + 3] = (int8_t)mcuc_output_stage(a3, q, u + 3);
        }
    }
}

/* Inputs mcuc_fully_connected_w16 sign-extends at a time (a multiple of 4): bounds its
 * scratch on deep layers such as micro_speech's 4000-input one. */
#define MCUC_FC_CHUNK 256

MCUC_INLINE int mcuc_fc_chunk(int depth) {
    const int depth4 = (depth + 3) & ~3;
    return depth4 < MCUC_FC_CHUNK ? depth4 : MCUC_FC_CHUNK;
}

/* The extended chunk (2 bytes per input), then, when the depth spans several chunks, one
 * int32 partial sum per unit rounded up to 4 units. */
MCUC_INLINE int mcuc_fully_connected_w16_get_buffer_size(int depth, int units) {
    const int chunk = mcuc_fc_chunk(depth);
    return 2 * chunk + (((depth + 3) & ~3) > chunk ? 4 * ((units + 3) & ~3) : 0);
}

#if MCUC_DSP
/* One step of the fully connected micro-kernel: 4 inputs (two words of the extended
 * row) x 4 units (two int16 lane words each), loaded in two runs of back-to-back single
 * loads (6 and 4 words: 7 + 5 cycles on a Cortex-M4) with four SMLAD after each. */
#define MCUC_FC_STEP                                                                  \
    "ldr %[xe], [%[px]], #4\n\t"                                                     \
    "ldr %[xo], [%[px]], #4\n\t"                                                     \
    "ldr %[wa], [%[pw]], #4\n\t"                                                     \
    "ldr %[wb], [%[pw]], #4\n\t"                                                     \
    "ldr %[wc], [%[pw]], #4\n\t"                                                     \
    "ldr %[wd], [%[pw]], #4\n\t"                                                     \
    "smlad %[a0], %[xe], %[wa], %[a0]\n\t"                                           \
    "smlad %[a0], %[xo], %[wb], %[a0]\n\t"                                           \
    "smlad %[a1], %[xe], %[wc], %[a1]\n\t"                                           \
    "smlad %[a1], %[xo], %[wd], %[a1]\n\t"                                           \
    "ldr %[wa], [%[pw]], #4\n\t"                                                     \
    "ldr %[wb], [%[pw]], #4\n\t"                                                     \
    "ldr %[wc], [%[pw]], #4\n\t"                                                     \
    "ldr %[wd], [%[pw]], #4\n\t"                                                     \
    "smlad %[a2], %[xe], %[wa], %[a2]\n\t"                                           \
    "smlad %[a2], %[xo], %[wb], %[a2]\n\t"                                           \
    "smlad %[a3], %[xe], %[wc], %[a3]\n\t"                                           \
    "smlad %[a3], %[xo], %[wd], %[a3]\n\t"

#define MCUC_FC_OPERANDS                                                              \
    : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [px] "+r"(px),      \
      [pw] "+r"(w), [xe] "=&r"(xe), [xo] "=&r"(xo), [wa] "=&r"(wa), [wb] "=&r"(wb),   \
      [wc] "=&r"(wc), [wd] "=&r"(wd)

/* acc[j] += x . w[unit j] for the four units of a group over `steps` steps of 4 inputs
 * (a compile-time constant where inlined): four steps per loop pass, the remaining 0-3
 * straight. Returns the weights after the last step. */
MCUC_INLINE const int16_t *mcuc_fc_4x1(int32_t *acc, const int16_t *px, const int16_t *w, int steps) {
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    uint32_t xe, xo, wa, wb, wc, wd;
    int n = steps / 4;
    if (n > 0) {
        __asm__ volatile("1:\n\t" MCUC_FC_STEP MCUC_FC_STEP MCUC_FC_STEP MCUC_FC_STEP
                         "subs %[n], %[n], #1\n\t"
                         "bne 1b\n\t"
                         MCUC_FC_OPERANDS, [n] "+r"(n) : : "cc", "memory");
    }
    switch (steps % 4) {
    case 3:
        __asm__ volatile(MCUC_FC_STEP MCUC_FC_STEP MCUC_FC_STEP MCUC_FC_OPERANDS : : "memory");
        break;
    case 2:
        __asm__ volatile(MCUC_FC_STEP MCUC_FC_STEP MCUC_FC_OPERANDS : : "memory");
        break;
    case 1:
        __asm__ volatile(MCUC_FC_STEP MCUC_FC_OPERANDS : : "memory");
        break;
    default:
        break;
    }
    acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;
    return w;
}

/* Inputs x[c0 .. c0 + n4) sign-extended into x32 (lanes x[k], x[k+2], then x[k+1],
 * x[k+3] per step of 4), zeros past `depth`; no byte past the row is read. */
MCUC_INLINE void mcuc_fc_extend(uint32_t *x32, const int8_t *x, int c0, int n4, int depth) {
    int k;
    for (k = 0; k < n4; k += 4) {
        uint32_t v;
        if (c0 + k + 4 <= depth) {
            v = mcuc_load32(x + c0 + k);
        } else {
            int8_t tail[4] = {0, 0, 0, 0};
            int j;
            for (j = 0; c0 + k + j < depth; j++) {
                tail[j] = x[c0 + k + j];
            }
            v = mcuc_load32(tail);
        }
        x32[k / 2] = mcuc_sxtb16(v);
        x32[k / 2 + 1] = mcuc_sxtb16_ror8(v);
    }
}

/* Fully connected on ARMv7E-M with weights widened to int16 at compile time (twice the
 * flash of int8, for no SXTB16 on the weight side). The input row is sign-extended
 * mcuc_fc_chunk inputs at a time into `xrow` (the scratch's start, lanes x[k], x[k+2],
 * x[k+1], x[k+3]), so the scratch stays small for deep layers; when the depth spans
 * several chunks each unit's int32 sum is carried between chunks in `partial` (after
 * xrow). Weights per group of four units and step of 4 inputs hold each unit's two lane
 * words, a group's steps contiguous. Per step: one LDRD of the input, four LDRD of
 * weights, eight SMLAD. */
MCUC_INLINE void mcuc_fully_connected_w16(const int8_t *in, int8_t *out, int8_t *scratch, int rows, int depth,
                                          int units, const int16_t *wq, const mcuc_quant_t *q) {
    const int depth4 = (depth + 3) & ~3, chunk = mcuc_fc_chunk(depth);
    int16_t *xrow = (int16_t *)(void *)scratch;
    int32_t *partial = (int32_t *)(void *)(scratch + 2 * chunk);
    int r, u, c0;
    uint32_t *x32 = (uint32_t *)(void *)xrow;
    for (r = 0; r < rows; r++) {
        const int8_t *x = in + r * depth;
        for (c0 = 0; c0 < depth4; c0 += chunk) {
            const int n4 = depth4 - c0 < chunk ? depth4 - c0 : chunk;
            const int first = c0 == 0, last = c0 + n4 >= depth4;
            mcuc_fc_extend(x32, x, c0, n4, depth);
            for (u = 0; u < units; u += 4) {
                const int16_t *w = wq + u * depth4 + c0 * 4;
                const int32_t *start = first ? q->bias + u : partial + u;
                int32_t acc[4] = {start[0], start[1], start[2], start[3]};
                int32_t a0, a1, a2, a3;
                const int16_t *px = xrow;
                w = mcuc_fc_4x1(acc, px, w, n4 / 4);
                a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
                if (!last) {
                    partial[u] = a0, partial[u + 1] = a1, partial[u + 2] = a2, partial[u + 3] = a3;
                    continue;
                }
                out[r * units + u] = (int8_t)mcuc_output_stage(a0, q, u);
                if (u + 1 < units) out[r * units + u + 1] = (int8_t)mcuc_output_stage(a1, q, u + 1);
                if (u + 2 < units) out[r * units + u + 2] = (int8_t)mcuc_output_stage(a2, q, u + 2);
                if (u + 3 < units) out[r * units + u + 3] = (int8_t)mcuc_output_stage(a3, q, u + 3);
            }
        }
    }
}

/* Two outputs of a group of four units: their multipliers, rounding constants and
 * shifts loaded back to back (the stream's constants at w: 4 multipliers, 4 rounding
 * constants, 4 shifts), then the fast stage and SSAT, stored at y + j. */
#define MCUC_FC_STORE2(a, b, j, k)                                                      \
    "ldr %[xe], [%[pw], #" j "*4]\n\t"                                                  \
    "ldr %[wa], [%[pw], #16+" j "*4]\n\t"                                               \
    "ldr %[wb], [%[pw], #32+" j "*4]\n\t"                                               \
    "ldr %[xo], [%[pw], #" k "*4]\n\t"                                                  \
    "ldr %[wc], [%[pw], #16+" k "*4]\n\t"                                               \
    "ldr %[wd], [%[pw], #32+" k "*4]\n\t"                                               \
    "lsl %[t], %[" a "], #1\n\t"                                                        \
    "smmlar %[t], %[t], %[xe], %[wa]\n\t"                                               \
    "add %[t], %[t], %[" a "], asr #31\n\t"                                             \
    "asr %[t], %[t], %[wb]\n\t"                                                         \
    "ssat %[t], #8, %[t]\n\t"                                                           \
    "strb %[t], [%[n], #" j "]\n\t"                                                     \
    "lsl %[t], %[" b "], #1\n\t"                                                        \
    "smmlar %[t], %[t], %[xo], %[wc]\n\t"                                               \
    "add %[t], %[t], %[" b "], asr #31\n\t"                                             \
    "asr %[t], %[t], %[wd]\n\t"                                                         \
    "ssat %[t], #8, %[t]\n\t"                                                           \
    "strb %[t], [%[n], #" k "]\n\t"

/* The stream layout of mcuc_fully_connected_w16_streams: per group of four units their
 * four int32 start values, the group's lane words (as `wq` of mcuc_fully_connected_w16
 * holds them), then mult[4], round[4], right[4]. */
MCUC_INLINE int mcuc_fc_stream_words(int depth4) {
    return 16 + 2 * depth4;
}

/* `groups` groups of four units of one extended row (xrow, `depth4` inputs, a
 * compile-time constant) in one assembly loop: the micro-kernel of mcuc_fc_4x1, then the
 * stage of the four units, stored at y .. y + 3 (y and the stream's end in the caller's
 * stack). */
MCUC_INLINE void mcuc_fc_groups_asm(const int16_t *xrow, const uint32_t *stream, int groups, int depth4,
                                    int8_t *y) {
    const int steps = depth4 / 4;
    const uint32_t *wend = stream + groups * mcuc_fc_stream_words(depth4);
    const uint32_t *w = stream;
    const int16_t *px = xrow;
    int8_t *ym = y;
    int32_t a0, a1, a2, a3;
    uint32_t xe, xo, wa, wb, wc, wd, t, n;
    __asm__ volatile(
        "2:\n\t"
        "ldr %[a0], [%[pw]], #4\n\t"
        "ldr %[a1], [%[pw]], #4\n\t"
        "ldr %[a2], [%[pw]], #4\n\t"
        "ldr %[a3], [%[pw]], #4\n\t"
        ".if %c[loops]\n\t"
        "movw %[n], #%c[loops]\n\t"
        "1:\n\t" MCUC_FC_STEP MCUC_FC_STEP MCUC_FC_STEP MCUC_FC_STEP
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        ".endif\n\t"
        ".rept %c[rem]\n\t" MCUC_FC_STEP ".endr\n\t"
        "subw %[px], %[px], #%c[xb]\n\t"
        "ldr %[n], %[ym]\n\t"
        MCUC_FC_STORE2("a0", "a1", "0", "1")
        MCUC_FC_STORE2("a2", "a3", "2", "3")
        "add %[pw], %[pw], #48\n\t"
        "add %[n], %[n], #4\n\t"
        "str %[n], %[ym]\n\t"
        "ldr %[t], %[wend]\n\t"
        "cmp %[pw], %[t]\n\t"
        "bne 2b\n\t"
        : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [px] "+r"(px), [pw] "+r"(w),
          [xe] "=&r"(xe), [xo] "=&r"(xo), [wa] "=&r"(wa), [wb] "=&r"(wb), [wc] "=&r"(wc), [wd] "=&r"(wd),
          [t] "=&r"(t), [n] "=&r"(n), [ym] "+m"(ym)
        : [wend] "m"(wend), [loops] "i"(steps / 4), [rem] "i"(steps % 4), [xb] "i"(8 * steps)
        : "cc", "memory");
    (void)a0, (void)a1, (void)a2, (void)a3, (void)xe, (void)xo, (void)wa, (void)wb, (void)wc, (void)wd, (void)t,
        (void)n;
}

/* Fully connected on the stream layout (DSP targets; the layer's inputs fit one chunk
 * of MCUC_FC_CHUNK and every unit takes TFLite's fast stage, zero point folded, int8
 * range): per row the inputs extended once, the whole groups of four units in the
 * assembly loop, a last partial group in C around mcuc_fc_4x1. Same scratch as
 * mcuc_fully_connected_w16. */
MCUC_INLINE void mcuc_fully_connected_w16_streams(const int8_t *in, int8_t *out, int8_t *scratch, int rows,
                                                  int depth, int units, const uint32_t *stream) {
    const int depth4 = (depth + 3) & ~3, words = mcuc_fc_stream_words(depth4);
    int16_t *xrow = (int16_t *)(void *)scratch;
    int r;
    for (r = 0; r < rows; r++) {
        const uint32_t *s = stream;
        int8_t *y = out + r * units;
        int u = 0;
        mcuc_fc_extend((uint32_t *)(void *)xrow, in + r * depth, 0, depth4, depth);
        if (__builtin_constant_p(depth4) && units >= 4 && 8 * depth4 < 4096) {
            mcuc_fc_groups_asm(xrow, stream, units / 4, depth4, y);
            u = units & ~3;
            s = stream + (units / 4) * words;
        }
        for (; u < units; u += 4) {
            int32_t acc[4] = {(int32_t)s[0], (int32_t)s[1], (int32_t)s[2], (int32_t)s[3]};
            const int32_t *k = (const int32_t *)(const void *)(s + 4 + 2 * depth4);
            int j;
            mcuc_fc_4x1(acc, xrow, (const int16_t *)(const void *)(s + 4), depth4 / 4);
            for (j = 0; j < 4 && u + j < units; j++) {
                y[u + j] = (int8_t)mcuc_ssat8(mcuc_stage_fast(acc[j], k[j], k[4 + j], k[8 + j]));
            }
            s += words;
        }
    }
}
#endif

#endif /* MCUC_CONV_H */
