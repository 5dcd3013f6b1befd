/* mcuc_elementwise.h: per-element, pooling, reduction and data-movement kernels.
 *
 * Always-inline bodies specialized per layer by the generated wrappers. Shapes of
 * broadcasting and data-movement kernels are passed as up to six loop extents with
 * element strides (unit extents fold away).
 */
#ifndef MCUC_ELEMENTWISE_H
#define MCUC_ELEMENTWISE_H

#include "mcuc_conv.h"

/* y[i] = table[(uint8_t)x[i]]: every int8 -> int8 op whose output depends on one input
 * element only (LOGISTIC, HARD_SWISH, RELU, RELU6, int8 QUANTIZE); the compiler
 * tabulates the op's reference semantics, so the kernel is exact by construction. */
MCUC_INLINE void mcuc_lut_s8(const int8_t *in, int8_t *out, int n, const int8_t *table) {
    int i;
    for (i = 0; i < n; i++) {
        out[i] = table[(uint8_t)in[i]];
    }
}

/* 16- or 32-bit outputs of a per-element int8 op (DEQUANTIZE to float32 stores the
 * float's bits; int8 -> int16 QUANTIZE). */
MCUC_INLINE void mcuc_lut_s8_to32(const int8_t *in, uint32_t *out, int n, const uint32_t *table) {
    int i;
    for (i = 0; i < n; i++) {
        out[i] = table[(uint8_t)in[i]];
    }
}

MCUC_INLINE void mcuc_lut_s8_to16(const int8_t *in, int16_t *out, int n, const int16_t *table) {
    int i;
    for (i = 0; i < n; i++) {
        out[i] = table[(uint8_t)in[i]];
    }
}

/* int16 per-element maps (a 65536-entry table would not pay): TFLM's requantization
 * out_zp + MultiplyByQuantizedMultiplier(d = x - in_zp) clamped to [lo, hi] (RELU,
 * QUANTIZE int16 -> int8/int16; LEAKY_RELU with its alpha multiplier where d < 0), or
 * with rescale 0 the clamp alone (RELU6). */
typedef struct {
    int32_t in_zp, out_zp, mult, shift, mult_neg, shift_neg, lo, hi, rescale;
} mcuc_map16_params_t;

MCUC_INLINE int32_t mcuc_map16_one(int32_t x, const mcuc_map16_params_t *p) {
    const int32_t d = x - p->in_zp;
    int32_t y = x;
    if (p->rescale) {
        y = p->out_zp + (d >= 0 ? mcuc_mbqm(d, p->mult, p->shift) : mcuc_mbqm(d, p->mult_neg, p->shift_neg));
    }
    return mcuc_clamp(y, p->lo, p->hi);
}

/* An int8 output, or int16 with `wide` (element i written after element i was read: in
 * place is safe) */
MCUC_INLINE void mcuc_map_s16(const int16_t *in, void *out, int n, const mcuc_map16_params_t *p, int wide) {
    int i;
    for (i = 0; i < n; i++) {
        mcuc_set_s8s16(out, i, mcuc_map16_one(in[i], p), wide);
    }
}

/* An offset int8 value on the scale ADD_N and CUMSUM sum on (mcuc.ir.ops.add_n.rescaled):
 * shifted left by 20 bits, times the input multiplier. */
MCUC_INLINE int32_t mcuc_sum_rescaled(int32_t v, int32_t in_mult, int32_t in_shift) {
    return mcuc_mbqm_small(mcuc_shl_wrap(v, 20), in_mult, in_shift);
}

/* A sum back to int8 (mcuc.ir.ops.add_n.output_of). */
MCUC_INLINE int8_t mcuc_sum_output(int32_t total, int32_t out_mult, int32_t out_shift, int32_t out_offset) {
    return (int8_t)mcuc_clamp(mcuc_mbqm_small(total, out_mult, out_shift) + out_offset, -128, 127);
}

/* tflite-micro's int8 ADD_N (mcuc.ir.ops.add_n): the sum starts from the rescaled input
 * offset once (as tflite-micro's loop does), adds every input's rescaled (x - zero point),
 * and is rescaled to the output. */
MCUC_INLINE void mcuc_add_n_s8(const int8_t *const *in, int inputs, int8_t *out, int n, int32_t in_offset,
                               int32_t in_mult, int32_t in_shift, int32_t out_mult, int32_t out_shift,
                               int32_t out_offset) {
    const int32_t start = mcuc_sum_rescaled(in_offset, in_mult, in_shift);
    int i, j;
    for (i = 0; i < n; i++) {
        int32_t total = start;
        for (j = 0; j < inputs; j++) {
            total += mcuc_sum_rescaled(in[j][i] + in_offset, in_mult, in_shift);
        }
        out[i] = mcuc_sum_output(total, out_mult, out_shift, out_offset);
    }
}

/* tflite-micro's int8 CUMSUM (mcuc.ir.ops.cumsum) over `pre` x `depth` x `post` elements
 * along the middle extent (from its end with `reverse`): per line the sum from the
 * rescaled input offset, wrapping in int32 (unsigned here: defined in C) as tflite-micro's
 * loop does, each output rescaled after (or, `exclusive`, before) its element. */
MCUC_INLINE void mcuc_cumsum_s8(const int8_t *in, int8_t *out, int pre, int depth, int post, int exclusive,
                                int reverse, int32_t in_offset, int32_t in_mult, int32_t in_shift, int32_t out_mult,
                                int32_t out_shift, int32_t out_offset) {
    const uint32_t start = (uint32_t)mcuc_sum_rescaled(in_offset, in_mult, in_shift);
    int i, k, d;
    for (i = 0; i < pre; i++) {
        for (k = 0; k < post; k++) {
            uint32_t total = start;
            for (d = 0; d < depth; d++) {
                const int at = (i * depth + (reverse ? depth - 1 - d : d)) * post + k;
                const uint32_t before = total;
                total += (uint32_t)mcuc_sum_rescaled(in[at] + in_offset, in_mult, in_shift);
                out[at] = mcuc_sum_output((int32_t)(exclusive ? before : total), out_mult, out_shift, out_offset);
            }
        }
    }
}

/* tflite-micro's int16 LOGISTIC (`tanh` 0) and TANH (`tanh` 1), mcuc.ir.ops.sigmoid_int16:
 * the input rescaled by (x * multiplier + round) >> shift, its magnitude interpolated in
 * the 256-entry Q0.16 sigmoid table (high bits index: >> 9 for LOGISTIC, >> 8 for TANH;
 * the low ones weight the slope), folded by the sign around 1/2 or 0 and rounded back
 * to Q0.15. */
MCUC_INLINE void mcuc_sigmoid_s16(const int16_t *in, int16_t *out, int n, int32_t multiplier, int32_t shift,
                                  int tanh, const uint16_t *table) {
    const int32_t round = shift > 0 ? (int32_t)1 << (shift - 1) : 0;
    const int bits = tanh ? 8 : 9;
    int i;
    for (i = 0; i < n; i++) {
        const int32_t v = (in[i] * multiplier + round) >> shift;
        const uint32_t a = (uint32_t)(v < 0 ? -v : v), high = a >> bits, low = a & ((1u << bits) - 1u);
        const uint32_t interpolated =
            high >= 255 ? 0 : ((uint32_t)table[high] << bits) + low * (uint32_t)(table[high + 1] - table[high]);
        if (tanh) {
            int32_t r = high >= 255 ? 0xFFFF << 8 : (int32_t)interpolated;
            r = v >= 0 ? r - (1 << 23) + (1 << 7) : -r + (1 << 23) + (1 << 7) - 1;
            out[i] = (int16_t)(r >> 8);
        } else {
            uint32_t r = high >= 255 ? 0x7FFFu << 10 : interpolated;
            r = v >= 0 ? r + (1u << 9) : (1u << 25) - r + (1u << 9) - 1u;
            out[i] = (int16_t)(r >> 10);
        }
    }
}

/* DEQUANTIZE of int16: (x - zp) * scale in float32. TFLM multiplies in double and casts
 * to float, but a 17-bit integer times a float32 scale is exact in double, so both are
 * one rounding of the exact product (subnormals kept: the FPSCR as reset, or soft-float). */
MCUC_INLINE void mcuc_dequantize_s16(const int16_t *in, float *out, int n, int32_t zp, float scale) {
    int i;
    for (i = 0; i < n; i++) {
        out[i] = (float)(in[i] - zp) * scale;
    }
}

/* QUANTIZE float32 -> integer: q = (int32)roundf(x / scale) + zero_point, clamped, where
 * values beyond int32 (and NaN) become INT32_MIN as in the oracle's build. */
MCUC_INLINE int32_t mcuc_quantize_float(float x, float scale, int32_t zero_point, int32_t lo, int32_t hi) {
    const float v = x / scale;
    int32_t q = INT32_MIN;
    if (v >= -2147483648.0f && v < 2147483648.0f) {
        const int32_t t = (int32_t)v;
        const float r = v - (float)t;
        q = t;
        if (r >= 0.5f) {
            q = t + 1;
        } else if (r <= -0.5f) {
            q = t - 1;
        }
    }
    q = (int32_t)((uint32_t)q + (uint32_t)zero_point);
    return mcuc_clamp(q, lo, hi);
}

/* Broadcasting binary ops iterate the output over six extents; s1/s2 are the inputs'
 * element strides (0 along broadcast axes). */
#define MCUC_FOR6(e, body)                                                              \
    do {                                                                                \
        int i0, i1, i2, i3, i4, i5, o = 0;                                              \
        for (i0 = 0; i0 < (e)[0]; i0++)                                                 \
            for (i1 = 0; i1 < (e)[1]; i1++)                                             \
                for (i2 = 0; i2 < (e)[2]; i2++)                                         \
                    for (i3 = 0; i3 < (e)[3]; i3++)                                     \
                        for (i4 = 0; i4 < (e)[4]; i4++)                                 \
                            for (i5 = 0; i5 < (e)[5]; i5++, o++) {                      \
                                body                                                    \
                            }                                                       \
    } while (0)

#define MCUC_IDX(s) (i0 * (s)[0] + i1 * (s)[1] + i2 * (s)[2] + i3 * (s)[3] + i4 * (s)[4] + i5 * (s)[5])

typedef struct {
    int32_t offset1, mult1, shift1;
    int32_t offset2, mult2, shift2;
    int32_t subtract; /* SUB: the rescaled second input is subtracted */
    int32_t left_shift;
    int32_t out_offset, out_mult, out_shift;
    int32_t act_min, act_max;
} mcuc_add_params_t;

/* TFLM's ADD and SUB of int16 values (left_shift 15; the int8 ones run through tables
 * below): both inputs scaled to a common 2^left_shift fixed point, summed (or
 * subtracted), rescaled to the output and clamped. */
MCUC_INLINE int32_t mcuc_add_one(int32_t x1, int32_t x2, const mcuc_add_params_t *p) {
    const int32_t a = mcuc_mbqm_small((x1 + p->offset1) * (1 << p->left_shift), p->mult1, p->shift1);
    const int32_t b = mcuc_mbqm_small((x2 + p->offset2) * (1 << p->left_shift), p->mult2, p->shift2);
    const int32_t y = mcuc_mbqm_small(p->subtract ? a - b : a + b, p->out_mult, p->out_shift) + p->out_offset;
    return mcuc_clamp(y, p->act_min, p->act_max);
}

MCUC_INLINE void mcuc_add_s16(const int16_t *in1, const int16_t *in2, int16_t *out, const int *extents,
                              const int *s1, const int *s2, const mcuc_add_params_t *p) {
    MCUC_FOR6(extents, { out[o] = (int16_t)mcuc_add_one(in1[MCUC_IDX(s1)], in2[MCUC_IDX(s2)], p); });
}

/* ADD through tables: each input's rescaled value ((x + offset) << left_shift, high-
 * multiplied and shifted: a function of the int8 value alone) is tabulated at compile
 * time, so only the sum and TFLite's output stage (q, channel 0) run per element. */
MCUC_INLINE void mcuc_add_s8_tables(const int8_t *in1, const int8_t *in2, int8_t *out, const int *extents,
                                    const int *s1, const int *s2, const int32_t *t1, const int32_t *t2,
                                    const mcuc_requant_t *q) {
    MCUC_FOR6(extents, {
        const int32_t sum = t1[(uint8_t)in1[MCUC_IDX(s1)]] + t2[(uint8_t)in2[MCUC_IDX(s2)]];
        out[o] = (int8_t)mcuc_requant_channel(sum, q, 0);
    });
}

MCUC_INLINE void mcuc_add_s8_tables_flat(const int8_t *in1, const int8_t *in2, int8_t *out, int n,
                                         const int32_t *t1, const int32_t *t2, const mcuc_requant_t *q) {
    int i;
    for (i = 0; i < n; i++) {
        out[i] = (int8_t)mcuc_requant_channel(t1[(uint8_t)in1[i]] + t2[(uint8_t)in2[i]], q, 0);
    }
}

typedef struct {
    int32_t offset1, offset2, out_offset, out_mult, out_shift, act_min, act_max;
} mcuc_mul_params_t;

/* TFLM's MUL: the product of the offset inputs (an int16 product still fits int32),
 * TFLite's output stage, the clamp. */
MCUC_INLINE int32_t mcuc_mul_one(int32_t x1, int32_t x2, const mcuc_mul_params_t *p) {
    const int32_t y = mcuc_mbqm((x1 + p->offset1) * (x2 + p->offset2), p->out_mult, p->out_shift) + p->out_offset;
    return mcuc_clamp(y, p->act_min, p->act_max);
}

MCUC_INLINE void mcuc_mul_s8(const int8_t *in1, const int8_t *in2, int8_t *out, const int *extents,
                             const int *s1, const int *s2, const mcuc_mul_params_t *p) {
    MCUC_FOR6(extents, { out[o] = (int8_t)mcuc_mul_one(in1[MCUC_IDX(s1)], in2[MCUC_IDX(s2)], p); });
}

MCUC_INLINE void mcuc_mul_s16(const int16_t *in1, const int16_t *in2, int16_t *out, const int *extents,
                              const int *s1, const int *s2, const mcuc_mul_params_t *p) {
    MCUC_FOR6(extents, { out[o] = (int16_t)mcuc_mul_one(in1[MCUC_IDX(s1)], in2[MCUC_IDX(s2)], p); });
}

/* `words` words from src to dst in ascending order, dst at or before src (they may
 * overlap: a line band's kept rows moved to its top). On DSP cores eight words per pass
 * by LDM/STM (4 instructions and 21 estimated cycles per 32 bytes; newlib-nano's memmove
 * takes about 22 and 26); every word is read before any later word is written over, so
 * the overlap is safe. */
MCUC_INLINE void mcuc_move_down_words(uint32_t *dst, const uint32_t *src, int words) {
    int i = 0;
#if MCUC_DSP
    int passes = words / 8;
    if (passes > 0) {
        /* LDM/STM take their registers in ascending order: each word has its own */
        register uint32_t a __asm__("r0"), b __asm__("r1"), c __asm__("r2"), d __asm__("r3");
        register uint32_t e __asm__("r4"), f __asm__("r5"), g __asm__("r6"), h __asm__("r7");
        __asm__ volatile("1:\n\t"
                         "ldm %[s]!, {%[a], %[b], %[c], %[d], %[e], %[f], %[g], %[h]}\n\t"
                         "stm %[t]!, {%[a], %[b], %[c], %[d], %[e], %[f], %[g], %[h]}\n\t"
                         "subs %[n], %[n], #1\n\t"
                         "bne 1b\n\t"
                         : [a] "=&r"(a), [b] "=&r"(b), [c] "=&r"(c), [d] "=&r"(d), [e] "=&r"(e), [f] "=&r"(f),
                           [g] "=&r"(g), [h] "=&r"(h), [s] "+r"(src), [t] "+r"(dst), [n] "+r"(passes)
                         :
                         : "cc", "memory");
        i = 8 * (words / 8);
        src -= i, dst -= i;
    }
#endif
    for (; i < words; i++) {
        dst[i] = src[i];
    }
}

/* `bytes` bytes from src to dst in ascending order, dst before src, at any alignment (an
 * SVDF state moved down by one element: source and destination 1 or 2 bytes apart, where
 * newlib-nano's memmove goes a byte at a time: on a 4 KB int16 state 21,500 estimated
 * Cortex-M4 cycles more than this). Where the core loads unaligned words, a word per load
 * and store; each word is read before it is written over. */
MCUC_INLINE void mcuc_move_down_bytes(uint8_t *dst, const uint8_t *src, int32_t bytes) {
    int32_t i = 0;
#if defined(__ARM_FEATURE_UNALIGNED) && __ARM_FEATURE_UNALIGNED
    for (; i + 4 <= bytes; i += 4) {
        mcuc_store32(dst + i, mcuc_load32(src + i));
    }
#endif
    for (; i < bytes; i++) {
        dst[i] = src[i];
    }
}

/* Copy of up to six nested extents: element (i0..i5) of the source at MCUC_IDX(src_strides)
 * goes to MCUC_IDX(dst_strides) of the destination, `run` contiguous bytes at a time
 * (strides in bytes). TRANSPOSE, CONCATENATION slices, PAD interiors, RESHAPE. */
MCUC_INLINE void mcuc_copy6(uint8_t *dst, const uint8_t *src, const int *extents,
                            const int *dst_strides, const int *src_strides, int run) {
    MCUC_FOR6(extents, {
        (void)o;
        const uint8_t *s = src + MCUC_IDX(src_strides);
        uint8_t *d = dst + MCUC_IDX(dst_strides);
        if (run == 1) {
            *d = *s;
        } else {
            memcpy(d, s, (size_t)run);
        }
    });
}

/* RESIZE_NEAREST_NEIGHBOR: source row/column tables computed at compile time. */
MCUC_INLINE void mcuc_resize_nearest(const uint8_t *in, uint8_t *out, int batches, int in_h, int in_w,
                                     int out_h, int out_w, int pixel_bytes,
                                     const int16_t *rows, const int16_t *cols) {
    int b, y, x;
    for (b = 0; b < batches; b++) {
        for (y = 0; y < out_h; y++) {
            const uint8_t *src_row = in + ((b * in_h + rows[y]) * in_w) * pixel_bytes;
            uint8_t *dst = out + ((b * out_h + y) * out_w) * pixel_bytes;
            for (x = 0; x < out_w; x++) {
                memcpy(dst + x * pixel_bytes, src_row + cols[x] * pixel_bytes, (size_t)pixel_bytes);
            }
        }
    }
}

/* AVERAGE_POOL_2D / MAX_POOL_2D over NHWC int8 (int16 with `wide`: the same formula, as
 * TFLM's reference kernels), only valid (non-padding) elements; the window's dilation
 * is 1. `wide` is a constant in every call, so each build keeps one path. */
MCUC_INLINE void mcuc_pool(const void *in, void *out, const mcuc_dims_t *in_dims, const mcuc_dims_t *out_dims,
                           const mcuc_window_t *win, int is_max, int32_t act_min, int32_t act_max, int wide) {
    const int batches = in_dims->n, in_h = in_dims->h, in_w = in_dims->w, ch = in_dims->c;
    const int out_h = out_dims->h, out_w = out_dims->w;
    const int fh = win->kh, fw = win->kw, stride_h = win->stride_h, stride_w = win->stride_w;
    const int pad_top = win->pad_top, pad_left = win->pad_left;
    int b, oy, ox, c, ky, kx;
    for (b = 0; b < batches; b++) {
        const int base = b * in_h * in_w * ch;
        for (oy = 0; oy < out_h; oy++) {
            const int iy0 = oy * stride_h - pad_top;
            const int ky0 = iy0 < 0 ? -iy0 : 0;
            const int ky1 = iy0 + fh > in_h ? in_h - iy0 : fh;
            for (ox = 0; ox < out_w; ox++) {
                const int ix0 = ox * stride_w - pad_left;
                const int kx0 = ix0 < 0 ? -ix0 : 0;
                const int kx1 = ix0 + fw > in_w ? in_w - ix0 : fw;
                const int at = ((b * out_h + oy) * out_w + ox) * ch;
                for (c = 0; c < ch; c++) {
                    int32_t acc = is_max ? (wide ? -32768 : -128) : 0;
                    for (ky = ky0; ky < ky1; ky++) {
                        const int row = base + ((iy0 + ky) * in_w + ix0) * ch + c;
                        for (kx = kx0; kx < kx1; kx++) {
                            const int32_t v = mcuc_get_s8s16(in, row + kx * ch, wide);
                            if (is_max) {
                                acc = v > acc ? v : acc;
                            } else {
                                acc += v;
                            }
                        }
                    }
                    if (!is_max) {
                        const int32_t count = (ky1 - ky0) * (kx1 - kx0);
                        acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                    }
                    mcuc_set_s8s16(out, at + c, mcuc_clamp(acc, act_min, act_max), wide);
                }
            }
        }
    }
}

/* The loops of a reduction over up to four kept (outer) and four reduced (inner) axes,
 * extents with their strides in elements (unit extents fold away). */
typedef struct {
    int outer[4];
    int outer_strides[4];
    int inner[4];
    int inner_strides[4];
} mcuc_reduce_t;

/* MEAN: for each of the outer (kept) index tuples, the sum over the inner (reduced)
 * extents less count * in_zp; then q's output stage on channel 0: TFLM's requantization
 * with 1/count folded into the multiplier, or onnxruntime's (QLinearGlobalAveragePool:
 * float32 scale, half to even). int8, or int16 with `wide` (a constant in every call); the
 * sum wraps in 32 bits as TFLM's int32 does. */
MCUC_INLINE void mcuc_mean(const void *in, void *out, const mcuc_reduce_t *r, const mcuc_quant_t *q, int wide) {
    const int *outer = r->outer, *outer_strides = r->outer_strides;
    const int *inner = r->inner, *inner_strides = r->inner_strides;
    const int32_t count = inner[0] * inner[1] * inner[2] * inner[3];
    int a0, a1, a2, a3, o = 0;
    for (a0 = 0; a0 < outer[0]; a0++)
        for (a1 = 0; a1 < outer[1]; a1++)
            for (a2 = 0; a2 < outer[2]; a2++)
                for (a3 = 0; a3 < outer[3]; a3++, o++) {
                    const int base = a0 * outer_strides[0] + a1 * outer_strides[1] + a2 * outer_strides[2] +
                                     a3 * outer_strides[3];
                    uint32_t sum = 0;
                    int b0, b1, b2, b3;
                    for (b0 = 0; b0 < inner[0]; b0++)
                        for (b1 = 0; b1 < inner[1]; b1++)
                            for (b2 = 0; b2 < inner[2]; b2++)
                                for (b3 = 0; b3 < inner[3]; b3++) {
                                    const int at = base + b0 * inner_strides[0] + b1 * inner_strides[1] +
                                                   b2 * inner_strides[2] + b3 * inner_strides[3];
                                    sum += (uint32_t)mcuc_get_s8s16(in, at, wide);
                                }
                    const int32_t shifted = (int32_t)(sum - (uint32_t)q->in_zp * (uint32_t)count);
                    mcuc_set_s8s16(out, o, mcuc_output_stage(shifted, q, 0), wide);
                }
}

#endif /* MCUC_ELEMENTWISE_H */
