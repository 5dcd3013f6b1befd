/* mcuc_depthwise.h: depthwise convolution kernels (always-inline, specialized per layer).
 *
 * Unlike the GEMM kernels these keep the model's bias and add the input offset
 * (-input zero point, -q->in_zp) to every tap they read, so padding taps are simply
 * skipped (TFLM's semantics). On ARMv7E-M the offset costs nothing: SXTAB16
 * sign-extends two bytes and adds the offset pair in one instruction. The in-place kernel
 * is the exception (it folds the offset into the bias, see there).
 */
#ifndef MCUC_DEPTHWISE_H
#define MCUC_DEPTHWISE_H

#include "mcuc_conv.h"

/* Depth multiplier 1, channels a multiple of 4 (DSP path) processed four at a time.
 * `wq` is reordered at compile time: for channel group g (channels 4g..4g+3) and tap t,
 * four int16 values {w[t][4g], w[t][4g+2], w[t][4g+1], w[t][4g+3]}, i.e. the even and
 * odd lanes the SXTB16 of four input bytes produces. Portable builds read the same
 * layout. */
MCUC_INLINE void mcuc_depthwise_c4(const int8_t *in, int8_t *out, const mcuc_dims_t *in_dims,
                                   const mcuc_dims_t *out_dims, const mcuc_window_t *win,
                                   const int16_t *wq, const mcuc_quant_t *q) {
    const int in_h = in_dims->h, in_w = in_dims->w, ch = in_dims->c, out_h = out_dims->h, out_w = out_dims->w;
    const int kh = win->kh, kw = win->kw, stride_h = win->stride_h, stride_w = win->stride_w;
    const int dil_h = win->dil_h, dil_w = win->dil_w, pad_top = win->pad_top, pad_left = win->pad_left;
    const int32_t in_offset = -q->in_zp;
    const int groups = ch / 4;
    int oy, ox, g, ky, kx;
#if MCUC_DSP
    const uint32_t offset2 = ((uint32_t)(uint16_t)in_offset << 16) | (uint16_t)in_offset;
#endif
    for (oy = 0; oy < out_h; oy++) {
        const int iy0 = oy * stride_h - pad_top;
        for (ox = 0; ox < out_w; ox++) {
            const int ix0 = ox * stride_w - pad_left;
            /* Interior pixels (decided per pixel; the compiler hoists what it can) run the
             * fully unrolled tap loop without bounds checks. */
            const int interior = iy0 >= 0 && iy0 + (kh - 1) * dil_h < in_h && ix0 >= 0 && ix0 + (kw - 1) * dil_w < in_w;
            const int ky0 = interior ? 0 : (iy0 < 0 ? (-iy0 + dil_h - 1) / dil_h : 0);
            const int kx0 = interior ? 0 : (ix0 < 0 ? (-ix0 + dil_w - 1) / dil_w : 0);
            int ky1 = kh, kx1 = kw;
            if (!interior) {
                while (ky1 > ky0 && iy0 + (ky1 - 1) * dil_h >= in_h) ky1--;
                while (kx1 > kx0 && ix0 + (kx1 - 1) * dil_w >= in_w) kx1--;
            }
            int8_t *y = out + (oy * out_w + ox) * ch;
            for (g = 0; g < groups; g++) {
                const int16_t *wg = wq + g * kh * kw * 4;
                int32_t a0 = q->bias[4 * g], a1 = q->bias[4 * g + 1];
                int32_t a2 = q->bias[4 * g + 2], a3 = q->bias[4 * g + 3];
                if (interior) {
                    for (ky = 0; ky < kh; ky++) {
                        const int8_t *xrow = in + ((iy0 + ky * dil_h) * in_w + ix0) * ch + 4 * g;
                        for (kx = 0; kx < kw; kx++) {
                            const int16_t *wt = wg + (ky * kw + kx) * 4;
#if MCUC_DSP
                            const uint32_t xv = mcuc_load32(xrow + kx * dil_w * ch);
                            const int32_t xe = (int32_t)mcuc_sxtab16(offset2, xv);
                            const int32_t xo = (int32_t)mcuc_sxtab16_ror8(offset2, xv);
                            const int32_t we = (int32_t)mcuc_load32(wt);
                            const int32_t wo = (int32_t)mcuc_load32(wt + 2);
                            a0 = __smlabb(xe, we, a0);
                            a2 = __smlatt(xe, we, a2);
                            a1 = __smlabb(xo, wo, a1);
                            a3 = __smlatt(xo, wo, a3);
#else
                            const int8_t *x = xrow + kx * dil_w * ch;
                            a0 += (x[0] + in_offset) * wt[0];
                            a2 += (x[2] + in_offset) * wt[1];
                            a1 += (x[1] + in_offset) * wt[2];
                            a3 += (x[3] + in_offset) * wt[3];
#endif
                        }
                    }
                } else {
                    for (ky = ky0; ky < ky1; ky++) {
                        const int8_t *xrow = in + ((iy0 + ky * dil_h) * in_w + ix0) * ch + 4 * g;
                        for (kx = kx0; kx < kx1; kx++) {
                            const int16_t *wt = wg + (ky * kw + kx) * 4;
                            const int8_t *x = xrow + kx * dil_w * ch;
                            a0 += (x[0] + in_offset) * wt[0];
                            a2 += (x[2] + in_offset) * wt[1];
                            a1 += (x[1] + in_offset) * wt[2];
                            a3 += (x[3] + in_offset) * wt[3];
                        }
                    }
                }
                {
                    const int32_t r0 = mcuc_output_stage(a0, q, 4 * g);
                    const int32_t r1 = mcuc_output_stage(a1, q, 4 * g + 1);
                    const int32_t r2 = mcuc_output_stage(a2, q, 4 * g + 2);
                    const int32_t r3 = mcuc_output_stage(a3, q, 4 * g + 3);
                    mcuc_store32(y + 4 * g, (uint32_t)(uint8_t)r0 | ((uint32_t)(uint8_t)r1 << 8) |
                                            ((uint32_t)(uint8_t)r2 << 16) | ((uint32_t)(uint8_t)r3 << 24));
                }
            }
        }
    }
}

/* Any depthwise convolution: any channel count, depth multiplier, stride and dilation.
 * Weights in the model's layout [kh][kw][ch * mult]. */
MCUC_INLINE void mcuc_depthwise_generic(const int8_t *in, int8_t *out, const mcuc_dims_t *in_dims,
                                        const mcuc_dims_t *out_dims, const mcuc_window_t *win,
                                        const int8_t *weights, const mcuc_quant_t *q) {
    const int in_h = in_dims->h, in_w = in_dims->w, in_ch = in_dims->c;
    const int out_h = out_dims->h, out_w = out_dims->w, out_ch = out_dims->c, mult = out_ch / in_ch;
    const int kh = win->kh, kw = win->kw, stride_h = win->stride_h, stride_w = win->stride_w;
    const int dil_h = win->dil_h, dil_w = win->dil_w, pad_top = win->pad_top, pad_left = win->pad_left;
    const int32_t in_offset = -q->in_zp;
    int oy, ox, oc, ky, kx;
    for (oy = 0; oy < out_h; oy++) {
        for (ox = 0; ox < out_w; ox++) {
            for (oc = 0; oc < out_ch; oc++) {
                const int ic = oc / mult;
                int32_t acc = q->bias[oc];
                for (ky = 0; ky < kh; ky++) {
                    const int iy = oy * stride_h - pad_top + ky * dil_h;
                    if (iy < 0 || iy >= in_h) continue;
                    for (kx = 0; kx < kw; kx++) {
                        const int ix = ox * stride_w - pad_left + kx * dil_w;
                        if (ix < 0 || ix >= in_w) continue;
                        acc += (in[(iy * in_w + ix) * in_ch + ic] + in_offset) * weights[(ky * kw + kx) * out_ch + oc];
                    }
                }
                out[(oy * out_w + ox) * out_ch + oc] = (int8_t)mcuc_output_stage(acc, q, oc);
            }
        }
    }
}

/* In place (output written over the input, depth multiplier 1): channel by channel, the
 * input plane of channel c is first gathered into `plane`; writing output channel c then
 * only overwrites bytes of channel c, which the plane holds.
 *
 * `out_base` may start a whole number of pixels before or after `in` (the plan's
 * in_place_shift, a multiple of ch; batch 1): output channel c is written at
 * out_base + k * ch + c = in + (k + shift / ch) * ch + c, i.e. only on input bytes of channel
 * c (already gathered: the gather loop of channel c ends before its first output byte
 * is stored, and the output loop only reads `plane`) or on bytes outside the input,
 * which the plan keeps free. Channels > c are neither read nor written before their
 * own gather. `in` and `out_base` are not restrict: they alias.
 *
 * The plane is padded: plane_h x pitch bytes cover every row and column a window touches
 * (padding included, rows and columns before the input start at pad_top / pad_left), the
 * padding holds the input zero point (so it adds nothing) and each row has slack for the
 * SIMD loads (mcuc_depthwise_plane_rows / _pitch). No tap needs a bounds check. The
 * padding is written once; per channel only the input's interior is gathered. `q->bias`
 * is folded (bias - zero_point * sum(w)), so raw bytes are multiplied and the zero-point
 * padding cancels exactly.
 *
 * `taps3` (3x3, dilation 1) holds per channel and kernel row r the words
 * (w[r][0] | w[r][2] << 16) and w[r][1]: the DSP path computes four outputs of a row
 * at once from two (stride 1) or three (stride 2) 32-bit loads per kernel row. The
 * compiler doubles them exactly when TFLite's fast output stage applies (that stage then
 * saves its shift). */
MCUC_INLINE int32_t mcuc_pkhbt(int32_t bottom_of, int32_t top_of) {
#if MCUC_DSP
    int32_t r;
    __asm__("pkhbt %0, %1, %2" : "=r"(r) : "r"(bottom_of), "r"(top_of));
    return r;
#else
    return (int32_t)(((uint32_t)bottom_of & 0xFFFFu) | ((uint32_t)top_of & 0xFFFF0000u));
#endif
}

/* Bytes after each padded plane row that the SIMD loads may read. */
#define MCUC_PLANE_SLACK 8

/* The plane's rows: every input row a window touches, padding rows included. */
MCUC_INLINE int mcuc_depthwise_plane_rows(const mcuc_dims_t *out_dims, const mcuc_window_t *win) {
    return (out_dims->h - 1) * win->stride_h + (win->kh - 1) * win->dil_h + 1;
}

/* The plane's row pitch: every column a window touches plus the slack, rounded up to 4. */
MCUC_INLINE int mcuc_depthwise_plane_pitch(const mcuc_dims_t *out_dims, const mcuc_window_t *win) {
    return ((out_dims->w - 1) * win->stride_w + (win->kw - 1) * win->dil_w + 1 + MCUC_PLANE_SLACK + 3) & ~3;
}

MCUC_INLINE int mcuc_depthwise_in_place_get_buffer_size(const mcuc_dims_t *out_dims, const mcuc_window_t *win) {
    return mcuc_depthwise_plane_rows(out_dims, win) * mcuc_depthwise_plane_pitch(out_dims, win);
}

#if MCUC_DSP
/* The in-place 3x3 kernel's DSP inner loop in assembly (gcc spills the C version's
 * accumulators and taps): four outputs x, x+1, x+2, x+3 of one output row per pass.
 * Per kernel row r the two tap words (w[r][0] | w[r][2] << 16, w[r][1]) and two input
 * words (stride 1: bytes b0..b7 from x) are loaded back to back, SXTB16 splits the input
 * into even lanes (b0, b2), (b4, b6) and odd lanes (b1, b3), (b5, b7), and each output
 * takes one SMLAD/SMLADX of a lane pair against (w0, w2) and one SMLAxy of its middle tap:
 *   out0 = (b0,b2).(w0,w2) + b1 w1      out1 = (b1,b3).(w0,w2) + b2 w1
 *   out2 = (b4,b2)x(w2,w0) + b3 w1      out3 = (b5,b3)x(w2,w0) + b4 w1
 * Stride 2 (bytes b0..b8 from 2x) pairs (b0,b2), (b4,b2)x, (b4,b6), (b8,b6)x with middle
 * taps b1, b3, b5, b7, loading the third word after three outputs. Taps, the
 * doubled bias and the output stage's constants are read from the caller's stack
 * (`k`, "m" operands), so the 14 registers hold only the loop's values: 4 accumulators,
 * 7 temporaries, the plane and output pointers and the pass counter. The output stage
 * is the fast one on the doubled accumulators (SMMLAR adds the rounding constant, which
 * holds the output zero point) with SSAT to int8. Row 0 starts every accumulator from
 * the bias in a0, which it updates last. */
/* A kernel row's two tap words into wa, wb: two loads of the "m" operands ta and tb, or
 * one LDRD of the doubleword operand td (fewer operands: gcc takes at most 30). */
#define MCUC_DW3_TAPS(ta, tb) "ldr %[wa], %[" ta "]\n\tldr %[wb], %[" tb "]\n\t"
#define MCUC_DW3_TAPS_D(td) "ldrd %[wa], %[wb], %[" td "]\n\t"

#define MCUC_DW3_ROW_S1(s1, s2, s3, taps, off)                                           \
    taps                                                                              \
    "ldr %[e0], [%[p], #" off "]\n\t"                                                 \
    "ldr %[e1], [%[p], #" off "+4]\n\t"                                               \
    "sxtb16 %[o0], %[e0], ror #8\n\t"                                                 \
    "sxtb16 %[e0], %[e0]\n\t"                                                         \
    "sxtb16 %[o1], %[e1], ror #8\n\t"                                                 \
    "sxtb16 %[e1], %[e1]\n\t"                                                         \
    "smlad %[a1], %[o0], %[wa], %[" s1 "]\n\t"                                    \
    "smlatb %[a1], %[e0], %[wb], %[a1]\n\t"                                           \
    "pkhbt %[t], %[e1], %[e0]\n\t"                                                    \
    "smladx %[a2], %[t], %[wa], %[" s2 "]\n\t"                                    \
    "smlatb %[a2], %[o0], %[wb], %[a2]\n\t"                                           \
    "pkhbt %[t], %[o1], %[o0]\n\t"                                                    \
    "smladx %[a3], %[t], %[wa], %[" s3 "]\n\t"                                    \
    "smlabb %[a3], %[e1], %[wb], %[a3]\n\t"                                           \
    "smlad %[a0], %[e0], %[wa], %[a0]\n\t"                                            \
    "smlabb %[a0], %[o0], %[wb], %[a0]\n\t"

#define MCUC_DW3_ROW_S2(s1, s2, s3, taps, off)                                           \
    taps                                                                              \
    "ldr %[e0], [%[p], #" off "]\n\t"                                                 \
    "ldr %[e1], [%[p], #" off "+4]\n\t"                                               \
    "sxtb16 %[o0], %[e0], ror #8\n\t"                                                 \
    "sxtb16 %[e0], %[e0]\n\t"                                                         \
    "sxtb16 %[o1], %[e1], ror #8\n\t"                                                 \
    "sxtb16 %[e1], %[e1]\n\t"                                                         \
    "pkhbt %[t], %[e1], %[e0]\n\t"                                                    \
    "smladx %[a1], %[t], %[wa], %[" s1 "]\n\t"                                    \
    "smlatb %[a1], %[o0], %[wb], %[a1]\n\t"                                           \
    "smlad %[a2], %[e1], %[wa], %[" s2 "]\n\t"                                    \
    "smlabb %[a2], %[o1], %[wb], %[a2]\n\t"                                           \
    "ldr %[t], [%[p], #" off "+8]\n\t"                                                \
    "sxtb16 %[t], %[t]\n\t"                                                           \
    "pkhbt %[t], %[t], %[e1]\n\t"                                                     \
    "smladx %[a3], %[t], %[wa], %[" s3 "]\n\t"                                    \
    "smlatb %[a3], %[o1], %[wb], %[a3]\n\t"                                           \
    "smlad %[a0], %[e0], %[wa], %[a0]\n\t"                                            \
    "smlabb %[a0], %[o0], %[wb], %[a0]\n\t"

#define MCUC_DW3_STORE(a, off)                                                        \
    "smmlar %[t], %[" a "], %[wa], %[wb]\n\t"                                         \
    "add %[t], %[t], %[" a "], asr #31\n\t"                                           \
    "asr %[t], %[t], %[e0]\n\t"                                                       \
    "ssat %[t], #8, %[t]\n\t"                                                         \
    "strb %[t], [%[out], #" off "]\n\t"

/* onnxruntime's bounded signed stage (mcuc_ort_requant_signed, checked 0) on the plain
 * accumulator: wa = mult7, wb = rounding, e0 = pre, k = frac; a tie or hazard stores the
 * (nonzero) output pointer at `flag` and the caller redoes the row in C. */
#define MCUC_DW3_STORE_ORT(a, off)                                                    \
    "lsl %[t], %[" a "], %[e0]\n\t"                                                   \
    "smmla %[t], %[t], %[wa], %[wb]\n\t"                                              \
    "lsl %[" a "], %[t], #32-%c[frac]\n\t"                                            \
    "cmp %[" a "], #0x40000\n\t"                                                      \
    "it lo\n\t"                                                                       \
    "strlo %[out], %[flag]\n\t"                                                       \
    "ssat %[t], #8, %[t], asr #%c[frac]\n\t"                                          \
    "strb %[t], [%[out], #" off "]\n\t"

#define MCUC_DW3_PASS(ROW, STORE, step, taps0, taps1, taps2)                          \
    "1:\n\t"                                                                          \
    "ldr %[a0], %[bias]\n\t"                                                          \
    ROW("a0", "a0", "a0", taps0, "0")                                                 \
    ROW("a1", "a2", "a3", taps1, "%c[pitch]")                                         \
    ROW("a1", "a2", "a3", taps2, "%c[pitch]*2")                                       \
    "ldr %[wa], %[mult]\n\t"                                                          \
    "ldr %[wb], %[round]\n\t"                                                         \
    "ldr %[e0], %[right]\n\t"                                                         \
    STORE("a0", "0")                                                                  \
    STORE("a1", "%c[ch]")                                                             \
    STORE("a2", "%c[ch]*2")                                                           \
    STORE("a3", "%c[ch]*3")                                                           \
    "add %[p], %[p], #" step "\n\t"                                                   \
    "addw %[out], %[out], #%c[ch]*4\n\t"                                              \
    "subs %[n], %[n], #1\n\t"                                                         \
    "bne 1b\n\t"

#define MCUC_DW3_OUTPUTS                                                              \
    [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [wa] "=&r"(wa),    \
    [wb] "=&r"(wb), [e0] "=&r"(e0), [o0] "=&r"(o0), [e1] "=&r"(e1), [o1] "=&r"(o1),   \
    [t] "=&r"(t), [p] "+r"(p), [out] "+r"(out), [n] "+r"(n)

#define MCUC_DW3_STAGE_INPUTS                                                         \
    [bias] "m"(k[6]), [mult] "m"(k[7]), [round] "m"(k[8]), [right] "m"(k[9]), [pitch] "i"(pitch), [ch] "i"(ch)
#define MCUC_DW3_INPUTS                                                               \
    [t0a] "m"(k[0]), [t0b] "m"(k[1]), [t1a] "m"(k[2]), [t1b] "m"(k[3]), [t2a] "m"(k[4]), \
    [t2b] "m"(k[5]), MCUC_DW3_STAGE_INPUTS
/* the taps as doublewords, read by LDRD (the "memory" clobber orders the stores to k) */
#define MCUC_DW3_INPUTS_D                                                             \
    [t0] "m"(*(const int64_t *)(const void *)(k + 0)), [t1] "m"(*(const int64_t *)(const void *)(k + 2)), \
    [t2] "m"(*(const int64_t *)(const void *)(k + 4)), MCUC_DW3_STAGE_INPUTS
/* expands the tap lists before MCUC_DW3_PASS counts its arguments */
#define MCUC_DW3_PASS_TAPS(...) MCUC_DW3_PASS(__VA_ARGS__)
#define MCUC_DW3_TFLITE_TAPS MCUC_DW3_TAPS("t0a", "t0b"), MCUC_DW3_TAPS("t1a", "t1b"), MCUC_DW3_TAPS("t2a", "t2b")
#define MCUC_DW3_ORT_TAPS MCUC_DW3_TAPS_D("t0"), MCUC_DW3_TAPS_D("t1"), MCUC_DW3_TAPS_D("t2")

/* `n` passes of four outputs of one output row (stride 1 or 2) from the plane row `p`
 * (its first tap) into out, out + ch, ...; `k` on the caller's stack holds the channel's
 * six tap words, its bias (doubled under TFLite's stage), and the stage's three
 * constants: TFLite's multiplier, rounding constant and right shift (`frac` 0), or
 * onnxruntime's mult7, rounding and pre shift (k = `frac`; a hazard sets `flag`). */
MCUC_INLINE void mcuc_dw3_row4(const int8_t *p, int8_t *out, int n, const int32_t *k, int pitch, int ch,
                               int stride, int frac, uint32_t *flag) {
    int32_t a0, a1, a2, a3;
    uint32_t wa, wb, e0, o0, e1, o1, t;
    if (frac && stride == 1) {
        __asm__ volatile(MCUC_DW3_PASS_TAPS(MCUC_DW3_ROW_S1, MCUC_DW3_STORE_ORT, "4", MCUC_DW3_ORT_TAPS)
                         : MCUC_DW3_OUTPUTS, [flag] "+m"(*flag) : MCUC_DW3_INPUTS_D, [frac] "i"(frac)
                         : "cc", "memory");
    } else if (frac) {
        __asm__ volatile(MCUC_DW3_PASS_TAPS(MCUC_DW3_ROW_S2, MCUC_DW3_STORE_ORT, "8", MCUC_DW3_ORT_TAPS)
                         : MCUC_DW3_OUTPUTS, [flag] "+m"(*flag) : MCUC_DW3_INPUTS_D, [frac] "i"(frac)
                         : "cc", "memory");
    } else if (stride == 1) {
        __asm__ volatile(MCUC_DW3_PASS_TAPS(MCUC_DW3_ROW_S1, MCUC_DW3_STORE, "4", MCUC_DW3_TFLITE_TAPS)
                         : MCUC_DW3_OUTPUTS : MCUC_DW3_INPUTS : "cc", "memory");
    } else {
        __asm__ volatile(MCUC_DW3_PASS_TAPS(MCUC_DW3_ROW_S2, MCUC_DW3_STORE, "8", MCUC_DW3_TFLITE_TAPS)
                         : MCUC_DW3_OUTPUTS : MCUC_DW3_INPUTS : "cc", "memory");
    }
    (void)a0, (void)a1, (void)a2, (void)a3, (void)wa, (void)wb, (void)e0, (void)o0, (void)e1, (void)o1, (void)t;
    (void)flag;
}
#endif

#if MCUC_DSP
/* *dst++ = four bytes `stride` apart from *src (a compile-time constant below 1024), src
 * moved past them: the four loads back to back (they pipeline: 5 cycles on a Cortex-M4;
 * compiled from C they interleave with the packing), three ORRs, one store, 10 cycles. */
MCUC_INLINE void mcuc_gather4(const int8_t **src, uint32_t **dst, int stride) {
    uint32_t b0, b1, b2, b3;
    __asm__ volatile("ldrb %[b0], [%[s]]\n\t"
                     "ldrb %[b1], [%[s], #%c[k]]\n\t"
                     "ldrb %[b2], [%[s], #%c[k]*2]\n\t"
                     "ldrb %[b3], [%[s], #%c[k]*3]\n\t"
                     "orr %[b0], %[b0], %[b1], lsl #8\n\t"
                     "orr %[b2], %[b2], %[b3], lsl #8\n\t"
                     "addw %[s], %[s], #%c[k]*4\n\t"
                     "orr %[b0], %[b0], %[b2], lsl #16\n\t"
                     "str %[b0], [%[d]], #4\n\t"
                     : [b0] "=&r"(b0), [b1] "=&r"(b1), [b2] "=&r"(b2), [b3] "=&r"(b3), [s] "+r"(*src), [d] "+r"(*dst)
                     : [k] "i"(stride)
                     : "memory");
}

/* Four words, sixteen bytes `stride` apart from *src (stride * 16 below 4096), as
 * mcuc_gather4 four times in one asm block: 2.2 instructions per byte with the loop
 * against 2.75 (the gathers are most of what a patch's halo rows cost again). */
#define MCUC_GATHER_WORD(w, first)                                                    \
    "ldrb %[" w "], [%[s], #%c[k]*" first "]\n\t"                                     \
    "ldrb %[b1], [%[s], #%c[k]*(" first "+1)]\n\t"                                   \
    "ldrb %[b2], [%[s], #%c[k]*(" first "+2)]\n\t"                                   \
    "ldrb %[b3], [%[s], #%c[k]*(" first "+3)]\n\t"                                   \
    "orr %[" w "], %[" w "], %[b1], lsl #8\n\t"                                       \
    "orr %[b2], %[b2], %[b3], lsl #8\n\t"                                             \
    "orr %[" w "], %[" w "], %[b2], lsl #16\n\t"
MCUC_INLINE void mcuc_gather16(const int8_t **src, uint32_t **dst, int stride) {
    uint32_t w0, w1, w2, w3, b1, b2, b3;
    __asm__ volatile(MCUC_GATHER_WORD("w0", "0") MCUC_GATHER_WORD("w1", "4") MCUC_GATHER_WORD("w2", "8")
                     MCUC_GATHER_WORD("w3", "12")
                     "addw %[s], %[s], #%c[k]*16\n\t"
                     "str %[w0], [%[d]], #4\n\t"
                     "str %[w1], [%[d]], #4\n\t"
                     "str %[w2], [%[d]], #4\n\t"
                     "str %[w3], [%[d]], #4\n\t"
                     : [w0] "=&r"(w0), [w1] "=&r"(w1), [w2] "=&r"(w2), [w3] "=&r"(w3), [b1] "=&r"(b1),
                       [b2] "=&r"(b2), [b3] "=&r"(b3), [s] "+r"(*src), [d] "+r"(*dst)
                     : [k] "i"(stride)
                     : "memory");
}
#endif

MCUC_INLINE void mcuc_depthwise_in_place(const int8_t *in, int8_t *out_base, int8_t *plane,
                                         const mcuc_dims_t *in_dims, const mcuc_dims_t *out_dims,
                                         const mcuc_window_t *win, const int8_t *weights, const int32_t *taps3,
                                         const mcuc_quant_t *q) {
    const int in_h = in_dims->h, in_w = in_dims->w, ch = in_dims->c, out_h = out_dims->h, out_w = out_dims->w;
    const int kh = win->kh, kw = win->kw, stride_h = win->stride_h, stride_w = win->stride_w;
    const int dil_h = win->dil_h, dil_w = win->dil_w, pad_top = win->pad_top, pad_left = win->pad_left;
    const int plane_h = mcuc_depthwise_plane_rows(out_dims, win), pitch = mcuc_depthwise_plane_pitch(out_dims, win);
    const int rows = in_h < plane_h - pad_top ? in_h : plane_h - pad_top;
    const int cols = in_w < pitch - pad_left ? in_w : pitch - pad_left;
    int c, y, x, oy, ox, ky, kx;
    memset(plane, (int8_t)q->in_zp, (size_t)(plane_h * pitch));
    for (c = 0; c < ch; c++) {
        for (y = 0; y < rows; y++) {
            const int8_t *src = in + y * in_w * ch + c;
            int8_t *dst = plane + (y + pad_top) * pitch + pad_left;
            /* four bytes per step through moving pointers: immediate offsets, no index math;
             * on DSP cores the four loads back to back (they pipeline), packed into one store */
            x = 0;
#if MCUC_DSP
            if (__builtin_constant_p(ch) && 16 * ch < 4096) {
                uint32_t *d32 = (uint32_t *)(void *)dst;
                for (; x + 16 <= cols; x += 16) {
                    mcuc_gather16(&src, &d32, ch);
                }
                dst = (int8_t *)d32;
            }
#endif
            for (; x + 4 <= cols; x += 4) {
#if MCUC_DSP
                if (__builtin_constant_p(ch) && 4 * ch < 4096) {
                    uint32_t *d32 = (uint32_t *)(void *)dst;
                    mcuc_gather4(&src, &d32, ch);
                    dst = (int8_t *)d32;
                    continue;
                }
#endif
                dst[0] = src[0];
                dst[1] = src[ch];
                dst[2] = src[2 * ch];
                dst[3] = src[3 * ch];
                src += 4 * ch;
                dst += 4;
            }
            for (; x < cols; x++) {
                *dst++ = *src;
                src += ch;
            }
        }
#if MCUC_DSP
        const int simd3 = kh == 3 && kw == 3 && dil_h == 1 && dil_w == 1 && (stride_w == 1 || stride_w == 2);
        const int32_t *t = simd3 ? taps3 + 6 * c : taps3;
        const int doubled = simd3 && q->tflite && mcuc_channel_fast(q->tflite, c);
        const int32_t bias = doubled ? 2 * q->bias[c] : q->bias[c];
        /* the assembly loop: TFLite's fast stage with the zero point folded, or
         * onnxruntime's bounded signed one, and SSAT to int8; shapes that fit its
         * immediate offsets; under onnxruntime's stage rows of two passes or more (with
         * one, its setup and hazard test cost more than the C loop saves: kws_ds_cnn's
         * 25x5 rows, +3%) */
        const int ort_frac = q->ort && !q->ort->limit && !q->ort->checked && q->ort->low == -128 &&
                                     q->ort->high == 127 ? q->ort->frac : 0;
        const int in_asm = simd3 && (ort_frac || (doubled && q->tflite->zp_folded && q->tflite->act_min == -128 &&
                                                  q->tflite->act_max == 127)) &&
                           __builtin_constant_p(pitch) && __builtin_constant_p(ch) && __builtin_constant_p(ort_frac) &&
                           2 * pitch + 12 < 4096 && 4 * ch < 4096 && out_w >= (ort_frac ? 8 : 4);
        int32_t k[10];
        /* kernels 4 to 8 taps wide (dilation 1 along the row): per kernel row the window's
         * bytes as two words, even lanes (b0, b2), (b4, b6) and odd (b1, b3), (b5, b7)
         * against the tap pairs (w0, w2), (w4, w6), (w1, w3), (w5, w7), zero past the
         * kernel's width, built here once per channel */
        const int wide = !simd3 && kw >= 4 && kw <= 8 && dil_w == 1 && kh <= 8;
        int32_t pairs[8][4];
        if (in_asm) {
            k[0] = t[0], k[1] = t[1], k[2] = t[2], k[3] = t[3], k[4] = t[4], k[5] = t[5];
            k[6] = bias;
            if (ort_frac) {
                k[7] = q->ort->mult7[c], k[8] = q->ort->round, k[9] = q->ort->shift[c];
            } else {
                k[7] = q->tflite->mult[c], k[8] = q->tflite->round[c], k[9] = q->tflite->shift[c];
            }
        }
        if (wide) {
            for (ky = 0; ky < kh; ky++) {
                int16_t tap[8] = {0, 0, 0, 0, 0, 0, 0, 0};
                for (kx = 0; kx < kw; kx++) {
                    tap[kx] = weights[(ky * kw + kx) * ch + c];
                }
                pairs[ky][0] = (int32_t)((uint32_t)(uint16_t)tap[0] | ((uint32_t)(uint16_t)tap[2] << 16));
                pairs[ky][1] = (int32_t)((uint32_t)(uint16_t)tap[4] | ((uint32_t)(uint16_t)tap[6] << 16));
                pairs[ky][2] = (int32_t)((uint32_t)(uint16_t)tap[1] | ((uint32_t)(uint16_t)tap[3] << 16));
                pairs[ky][3] = (int32_t)((uint32_t)(uint16_t)tap[5] | ((uint32_t)(uint16_t)tap[7] << 16));
            }
        }
#endif
        for (oy = 0; oy < out_h; oy++) {
            const int8_t *top = plane + oy * stride_h * pitch;
            int8_t *out = out_base + oy * out_w * ch + c;
            ox = 0;
#if MCUC_DSP
            if (simd3) {
                if (in_asm) {
                    uint32_t hazard = 0; /* stored (and its store kept) only under onnxruntime's stage */
                    mcuc_dw3_row4(top, out, out_w / 4, k, pitch, ch, stride_w, ort_frac, &hazard);
                    /* a tie or hazard: the row again in C, through the exact stage */
                    ox = ort_frac && hazard ? 0 : out_w & ~3;
                }
                for (; ox + 4 <= out_w; ox += 4) {
                    int32_t a0 = bias, a1 = bias, a2 = bias, a3 = bias;
                    int r;
                    for (r = 0; r < 3; r++) {
                        const int8_t *p = top + r * pitch + ox * stride_w;
                        const int32_t w02 = t[2 * r], w1 = t[2 * r + 1];
                        const uint32_t v0 = mcuc_load32(p), v1 = mcuc_load32(p + 4);
                        const int32_t e0 = (int32_t)mcuc_sxtb16(v0), o0 = (int32_t)mcuc_sxtb16_ror8(v0);
                        const int32_t e1 = (int32_t)mcuc_sxtb16(v1);
                        if (stride_w == 1) {
                            const int32_t o1 = (int32_t)mcuc_sxtb16_ror8(v1);
                            a0 = __smlabb(o0, w1, __smlad(e0, w02, a0));
                            a1 = __smlatb(e0, w1, __smlad(o0, w02, a1));
                            a2 = __smlatb(o0, w1, __smladx(mcuc_pkhbt(e1, e0), w02, a2));
                            a3 = __smlabb(e1, w1, __smladx(mcuc_pkhbt(o1, o0), w02, a3));
                        } else {
                            const int32_t o1 = (int32_t)mcuc_sxtb16_ror8(v1);
                            const int32_t e2 = (int32_t)mcuc_sxtb16(mcuc_load32(p + 8));
                            a0 = __smlabb(o0, w1, __smlad(e0, w02, a0));
                            a1 = __smlatb(o0, w1, __smladx(mcuc_pkhbt(e1, e0), w02, a1));
                            a2 = __smlabb(o1, w1, __smlad(e1, w02, a2));
                            a3 = __smlatb(o1, w1, __smladx(mcuc_pkhbt(e2, e1), w02, a3));
                        }
                    }
                    out[(ox + 0) * ch] = (int8_t)(doubled ? mcuc_requant_channel_doubled(a0, q->tflite, c)
                                                            : mcuc_output_stage(a0, q, c));
                    out[(ox + 1) * ch] = (int8_t)(doubled ? mcuc_requant_channel_doubled(a1, q->tflite, c)
                                                            : mcuc_output_stage(a1, q, c));
                    out[(ox + 2) * ch] = (int8_t)(doubled ? mcuc_requant_channel_doubled(a2, q->tflite, c)
                                                            : mcuc_output_stage(a2, q, c));
                    out[(ox + 3) * ch] = (int8_t)(doubled ? mcuc_requant_channel_doubled(a3, q->tflite, c)
                                                            : mcuc_output_stage(a3, q, c));
                }
                /* the last out_w % 4 columns one at a time, still two MACs per kernel row:
                 * (b0, b2).(w0, w2) + b1 w1 */
                for (ox = out_w & ~3; ox < out_w; ox++) {
                    int32_t acc = bias;
                    int r;
                    for (r = 0; r < 3; r++) {
                        const uint32_t v = mcuc_load32(top + r * pitch + ox * stride_w);
                        acc = __smlabb((int32_t)mcuc_sxtb16_ror8(v), t[2 * r + 1], __smlad((int32_t)mcuc_sxtb16(v), t[2 * r], acc));
                    }
                    out[ox * ch] = (int8_t)(doubled ? mcuc_requant_channel_doubled(acc, q->tflite, c)
                                                    : mcuc_output_stage(acc, q, c));
                }
            }
            if (wide) {
                for (; ox < out_w; ox++) {
                    const int8_t *p = top + ox * stride_w;
                    int32_t acc = q->bias[c];
                    for (ky = 0; ky < kh; ky++) {
                        const int8_t *row = p + ky * dil_h * pitch;
                        const uint32_t v0 = mcuc_load32(row), v1 = mcuc_load32(row + 4);
                        acc = __smlad((int32_t)mcuc_sxtb16(v0), pairs[ky][0], acc);
                        acc = __smlad((int32_t)mcuc_sxtb16_ror8(v0), pairs[ky][2], acc);
                        acc = __smlad((int32_t)mcuc_sxtb16(v1), pairs[ky][1], acc);
                        if (kw > 5) {
                            acc = __smlad((int32_t)mcuc_sxtb16_ror8(v1), pairs[ky][3], acc);
                        }
                    }
                    out[ox * ch] = (int8_t)mcuc_output_stage(acc, q, c);
                }
            }
#else
            (void)taps3;
#endif
            for (; ox < out_w; ox++) {
                const int8_t *p = top + ox * stride_w;
                int32_t acc = q->bias[c];
                for (ky = 0; ky < kh; ky++) {
                    for (kx = 0; kx < kw; kx++) {
                        acc += p[ky * dil_h * pitch + kx * dil_w] * weights[(ky * kw + kx) * ch + c];
                    }
                }
                out[ox * ch] = (int8_t)mcuc_output_stage(acc, q, c);
            }
        }
    }
}

#endif /* MCUC_DEPTHWISE_H */
