/* mcuc_ort.h: onnxruntime's requantization rule (the IR's "onnxruntime" rounding), exactly.
 *
 * onnxruntime's CPU execution provider requantizes with float32 scales and rounds half
 * to even; some groups it even leaves in float (dequantize, float op, quantize) and its
 * u8 x s8 GEMM saturates pairs of products in int16. mcuc.ir.ort_numerics and
 * mcuc.ir.ops._ort_*.py state every formula; this file mirrors them operation by
 * operation. Float is allowed for this rule only. It must give the same bytes with or
 * without an FPU, so:
 * - only IEEE-exact operations are used (+, -, *, / and int <-> float conversions, which
 *   libgcc's soft-float also rounds correctly), never libm;
 * - a fused multiply-add is emulated exactly in double (mcuc_fmaf), as newlib's fmaf
 *   rounds twice; the code is built as ISO C (-std=c11), where GCC does not contract
 *   a * b + c into an FMA on its own;
 * - rounding half to even works on the float's bits (mcuc_rne_f32), not on rintf.
 */
#ifndef MCUC_ORT_H
#define MCUC_ORT_H

#include <string.h>

#include "mcuc_fixedpoint.h"
#include "mcuc_params.h"

/* Round half to even of a float32 with |v| < 2^31 (callers clamp first): cvtps2dq. On a
 * single-precision FPU one VCVTR, which rounds as the FPSCR says: to nearest, ties to
 * even, as the core resets it (the assumption mcuc_fmaf states). */
MCUC_INLINE int32_t mcuc_rne_f32(float v) {
#if defined(__ARM_FP) && (__ARM_FP & 4) && defined(__GNUC__)
    float r;
    int32_t i;
    __asm__("vcvtr.s32.f32 %0, %1" : "=t"(r) : "t"(v));
    memcpy(&i, &r, sizeof i);
    return i;
#else
    uint32_t b, m, r;
    int e;
    memcpy(&b, &v, sizeof b);
    e = (int)((b >> 23) & 0xFFu) - 127;
    m = (b & 0x7FFFFFu) | 0x800000u;
    if (e < -1) {
        return 0; /* |v| < 0.5, zeros and subnormals included */
    }
    if (e >= 23) {
        r = m << (e - 23);
    } else {
        const int s = 23 - e; /* 1..24 */
        const uint32_t rem = m & ((1u << s) - 1u), half = 1u << (s - 1);
        r = m >> s;
        if (rem > half || (rem == half && (r & 1u))) {
            r++;
        }
    }
    return (b >> 31) ? -(int32_t)r : (int32_t)r;
#endif
}

MCUC_INLINE float mcuc_clampf(float v, float lo, float hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}

/* float32 fused multiply-add, one rounding (mcuc.ir.ort_numerics.fma_f32), in double:
 * a * b is exact; the double sum is made round-to-odd from its exact error (TwoSum),
 * and round-to-odd at 53 bits then one rounding to 24 bits is the correct rounding.
 * The general path (zeros, subnormals, infinities, NaN). */
MCUC_INLINE float mcuc_fmaf_double(float a, float b, float c) {
    const double p = (double)a * (double)b;
    double s = p + (double)c;
    const double bv = s - p;
    const double err = (p - (s - bv)) + ((double)c - bv);
    uint64_t bits;
    memcpy(&bits, &s, sizeof bits);
    if (err != 0.0 && (bits & 1u) == 0) {
        bits = ((err > 0.0) == (s > 0.0)) ? bits + 1u : bits - 1u;
        memcpy(&s, &bits, sizeof s);
    }
    return (float)s;
}

MCUC_INLINE int mcuc_msb64(uint64_t x) {
    return 63 - __builtin_clzll(x);
}

/* The same fused multiply-add in 64-bit integers, several times cheaper than soft
 * double on cores without an FPU: for normal finite nonzero operands and a normal
 * result; everything else goes to mcuc_fmaf_double. Both terms are scaled so their
 * leading bit is bit 62 (the product's 48 bits and c's 24 bits leave at least 14 zero
 * low bits, so an alignment by up to 14 is exact and a larger one cancels at most one
 * leading bit); the bits shifted out only count as sticky. Where the FPU has a fused
 * multiply-add (VFPv4 and later: Cortex-M4F, M7, M33 with their FPU and a hard or
 * softfp float ABI) it is that one instruction, VFMA.F32, one rounding as IEEE 754
 * states it, with the FPSCR as the core resets it (round to nearest, no flush to zero),
 * as the other float operations here assume. */
MCUC_INLINE float mcuc_fmaf(float a, float b, float c) {
#if defined(__ARM_FEATURE_FMA) && defined(__ARM_FP) && (__ARM_FP & 4)
    return __builtin_fmaf(a, b, c);
#else
    uint32_t ua, ub, uc, ea, eb, ec, sign;
    uint64_t h, l, r, m;
    int32_t eh, el, d, shift, biased;
    int sticky = 0, sh, sl;
    memcpy(&ua, &a, 4);
    memcpy(&ub, &b, 4);
    memcpy(&uc, &c, 4);
    ea = (ua >> 23) & 0xFFu;
    eb = (ub >> 23) & 0xFFu;
    ec = (uc >> 23) & 0xFFu;
    if (ea == 0 || eb == 0 || ec == 0 || ea == 0xFFu || eb == 0xFFu || ec == 0xFFu) {
        return mcuc_fmaf_double(a, b, c);
    }
    h = (uint64_t)((ua & 0x7FFFFFu) | 0x800000u) * ((ub & 0x7FFFFFu) | 0x800000u); /* 2^46 <= h < 2^48 */
    eh = (int32_t)ea + (int32_t)eb - 300;
    sh = (int)((ua ^ ub) >> 31);
    shift = 62 - mcuc_msb64(h);
    h <<= shift;
    eh -= shift;
    l = (uint64_t)((uc & 0x7FFFFFu) | 0x800000u) << 39;
    el = (int32_t)ec - 150 - 39;
    sl = (int)(uc >> 31);
    if (el > eh || (el == eh && l > h)) { /* h: the larger magnitude */
        uint64_t t = h;
        int32_t te = eh;
        int ts = sh;
        h = l, eh = el, sh = sl;
        l = t, el = te, sl = ts;
    }
    d = eh - el;
    if (d >= 64) {
        sticky = 1;
        l = 0;
    } else if (d > 0) {
        sticky = (l & ((1ull << d) - 1u)) != 0;
        l >>= d;
    }
    if (sh == sl) {
        r = h + l;
    } else {
        r = h - l - (uint64_t)sticky; /* the dropped fraction makes the true value r + (1 - frac) */
        if (r == 0 && !sticky) {
            return 0.0f; /* exact cancellation: +0 when rounding to nearest */
        }
    }
    sign = (uint32_t)sh << 31;
    shift = mcuc_msb64(r) - 23;
    if (shift > 0) {
        const uint64_t rest = r & ((1ull << shift) - 1u), half = 1ull << (shift - 1);
        m = r >> shift;
        if (rest > half || (rest == half && (sticky || (m & 1u)))) {
            m++;
        }
        if (m == (1ull << 24)) {
            m >>= 1;
            shift++;
        }
    } else {
        m = r << -shift; /* exact: no bits were dropped (small alignments only) */
    }
    biased = eh + shift + 150;
    if (biased <= 0 || biased >= 255) {
        return mcuc_fmaf_double(a, b, c);
    }
    {
        const uint32_t bits = sign | ((uint32_t)biased << 23) | ((uint32_t)m & 0x7FFFFFu);
        float f;
        memcpy(&f, &bits, 4);
        return f;
    }
#endif
}

/* MlasRequantizeOutput, clamp(rne(float32(float32(acc) * scale)), lo - zp, hi - zp) + zp,
 * as a function of the int32 accumulator computed exactly in integers: no FPU, no soft-float.
 * mcuc.ir.ort_numerics.requantize_output_integer states it in numpy step by step and
 * tests/runtime_c/test_ort_requant_exact.py compares this C with float32 arithmetic over all
 * 2^32 accumulators for a set of scales. Per channel, from requant_integer_constants: `mult`,
 * the scale's 24-bit significand M << 8 (scale = M * 2^E); `limit`; `shift`, L = E + 47.
 * Outputs within 255 of the zero point (8-bit types). */

#if defined(__GNUC__)
#define MCUC_COLD static __attribute__((noinline, cold, unused))
#else
#define MCUC_COLD static
#endif

/* The general path: |rne(float32(float32(a) * scale))| for a = |acc| <= 2^31, or a value of
 * at least 2^23 - 1 where it is 2^23 or more (which saturates). mult7 = M << 7, shift
 * C = -E - 32. Both float roundings are emulated: to 24 significant bits, then to an
 * integer. */
MCUC_COLD uint32_t mcuc_ort_requant_general(uint32_t a, uint32_t mult7, int32_t shift) {
    int32_t n = __builtin_clz(a | 1u), k;
    uint32_t x, r, m = a << n;                      /* the top bit at bit 31 (a > 0) */
    uint64_t q;
    /* float32(a): m rounded half to even at bit 8 (a no-op below 2^24, where the low 8 bits
     * are zero); a carry out of bit 31 makes it 2^32, which is 2^31 one bit up */
    x = m + 127u + ((m >> 8) & 1u);
    if (x < m) {
        x = 1u << 31;
        n--;
    }
    q = (uint64_t)(x & ~255u) * mult7;              /* exact: 24 x 24 significant bits at 62..15 */
    x = (uint32_t)(q >> 32) | ((uint32_t)q != 0u);  /* the low word as a sticky bit */
    if (x < (1u << 30)) {                           /* x in [2^30, 2^31): 24 bits above bit 7 */
        x <<= 1;
        n++;
    }
    r = (x + 63u + ((x >> 7) & 1u)) >> 7;           /* float32's rounding: r in [2^23, 2^24] */
    k = n + shift;                                  /* the value is r * 2^-k */
    k = k < 0 ? 0 : (k > 31 ? 31 : k);              /* k <= 0: >= 2^23, saturates; k >= 26: 0 */
    return (r + ((1u << k) >> 1) - 1u + ((r >> k) & 1u)) >> k;
}

/* MlasRequantizeOutput in integers. The fast path (a < limit): the value v = a * scale is
 * below 256, hi = floor(v * 2^23) is the high word of (a << L) * mult, and away from a
 * half-integer float32's rounding of v (at most 2^-17) cannot cross one, so v rounded half
 * up is the answer: t = hi + 2^22 + 2^7, |y| = t >> 23, unless t's low 23 bits are below
 * 2^8 (within about 2^-16 of a half-integer: ties and double rounding hazards). From
 * limit on (1 <= limit < 2^24) |v| >= 256 and the output saturates; everything else (zero,
 * tiny and huge scales, accumulators of 2^24 and more for scales up to 2^-16, the hazards)
 * takes the general path. */
MCUC_INLINE int32_t mcuc_ort_requant_int(int32_t acc, uint32_t mult, uint32_t limit, int32_t shift, int32_t zp,
                                         int32_t lo, int32_t hi) {
    const uint32_t sgn = 0u - (uint32_t)(acc < 0);  /* all ones for a negative acc */
    const uint32_t a = ((uint32_t)acc ^ sgn) - sgn;
    uint32_t y;
    if (a < limit) {
        const uint32_t t = (uint32_t)(((uint64_t)(a << shift) * mult) >> 32) + 0x400080u;
        y = ((t >> 8) & 0x7FFFu) != 0u ? t >> 23 : mcuc_ort_requant_general(a, mult >> 1, 15 - shift);
    } else if (limit - 1u < 0xFFFFFFu) {
        y = 256u;
    } else {
        y = mcuc_ort_requant_general(a, mult >> 1, 15 - shift);
    }
    return mcuc_clamp((int32_t)((y ^ sgn) - sgn) + zp, lo, hi);
}

/* The same requantization with the accumulator kept signed, for scales in [2^-16, 2^9)
 * (8 <= L <= 32), about a third of the instructions. Per layer `frac` = k = 21 - d
 * (0 <= d <= 5) and per channel `pre` = L - 1 - d, so that h = the high word of
 * (acc << pre) * (M << 7) = floor(v * 2^k), exact while the shift does not overflow.
 * Away from a half-integer (the low k bits of h + 2^(k-1) + 2^(k-15) at least 2^(k-14):
 * v at least 2^-15 from one, more than float32's rounding error of at most 2^-17 plus
 * the floor's 2^-k) the answer is (h + 2^(k-1) + 2^(k-15)) >> k, floor(v + 0.5) for
 * either sign; `rounding` adds zp << k to that constant, so the shift gives the output
 * with its zero point, and SMMLA adds it with the multiply. Two ways to know the shift
 * does not overflow:
 * - bounded (checked 0): the compiler proved it for every accumulator the channel can
 *   reach (|acc| <= its bound, at most 2^24, so float32(acc) is exact), choosing d;
 * - checked: d = 0 and the shift is undone and compared; an overflow means |acc| >=
 *   2^(32-L), |v| >= 256, and the output saturates towards acc's sign; otherwise
 *   |acc| < 2^24.
 * Ties and hazards take the general path of the magnitude (C = 15 - L = k - 7 - pre).
 * The result is clamped to [low, high]. mcuc.ir.ort_numerics.requantize_output_signed
 * states it in numpy. */
MCUC_COLD int32_t mcuc_ort_requant_signed_slow(int32_t acc, int32_t mult7, int32_t c_shift, int32_t zp,
                                               int32_t low, int32_t high) {
    const uint32_t sgn = 0u - (uint32_t)(acc < 0);
    const uint32_t y = mcuc_ort_requant_general(((uint32_t)acc ^ sgn) - sgn, (uint32_t)mult7, c_shift);
    /* |acc| <= 2^24 here, so y <= 2^24: the sign and zero point cannot overflow */
    return mcuc_clamp((int32_t)((y ^ sgn) - sgn) + zp, low, high);
}

#if defined(__GNUC__)
#define MCUC_LIKELY(x) __builtin_expect(!!(x), 1)
#else
#define MCUC_LIKELY(x) (x)
#endif

MCUC_INLINE int32_t mcuc_ort_requant_signed(int32_t acc, int32_t mult7, int32_t pre, int32_t frac, int checked,
                                            int32_t rounding, int32_t zp, int32_t low, int32_t high) {
    const int32_t t = (int32_t)((uint32_t)acc << pre);
    /* the fast path falls through: gcc otherwise lays it out behind two taken branches */
    if (MCUC_LIKELY(!checked || (t >> pre) == acc)) {
#if MCUC_DSP
        int32_t h; /* SMMLA: the high word of the product plus the rounding, one instruction */
        __asm__("smmla %0, %1, %2, %3" : "=r"(h) : "r"(t), "r"(mult7), "r"(rounding));
#else
        const int32_t h = (int32_t)(((int64_t)t * mult7) >> 32) + rounding;
#endif
        if (MCUC_LIKELY(((uint32_t)h << (32 - frac)) >= (1u << 18))) {
#if MCUC_DSP
            if (low == -128 && high == 127) {
                return mcuc_ssat8(h >> frac);
            }
#endif
            return mcuc_clamp(h >> frac, low, high);
        }
        return mcuc_ort_requant_signed_slow(acc, mult7, frac - 7 - pre, zp, low, high);
    }
    return acc < 0 ? low : high;
}

/* onnxruntime's output stage of an exact int32 accumulator (the integer GEMM kernels of
 * mcuc_conv.h and mcuc_depthwise.h, and MEAN, under the "onnxruntime" rule): a float32
 * scale per output channel as integer constants, then the fused activation. With
 * `limit` NULL every channel's scale is in mcuc_ort_requant_signed's range and takes it;
 * otherwise mcuc_ort_requant_int. TFLite's rule is mcuc_requant_t. */
typedef struct {
    const int32_t *mult7;  /* per output channel, for x_scale * w_scale / y_scale: M << 7 */
    const uint32_t *limit; /* mcuc_ort_requant_int's bound on |acc|; NULL: the signed path */
    const int32_t *shift;  /* L = E + 47; the signed path: pre = L - 1 - d */
    int32_t round;         /* the signed path's 2^(k-1) + 2^(k-15) + (out_zp << k) */
    int32_t frac;          /* the signed path's k = 21 - d */
    int32_t checked;       /* the signed path checks its shift (else the compiler proved it) */
    int32_t out_zp;
    int32_t lo;            /* the output type's range, which MlasRequantizeOutput clamps to */
    int32_t hi;
    int32_t low;           /* [lo, hi] and then the activation's range as one clamp */
    int32_t high;
} mcuc_ort_requant_t;

MCUC_INLINE int32_t mcuc_ort_requant_channel(int32_t acc, const mcuc_ort_requant_t *r, int c) {
    if (!r->limit) {
        return mcuc_ort_requant_signed(acc, r->mult7[c], r->shift[c], r->frac, r->checked, r->round, r->out_zp,
                                       r->low, r->high);
    }
    return mcuc_clamp(mcuc_ort_requant_int(acc, (uint32_t)r->mult7[c] << 1, r->limit[c], r->shift[c], r->out_zp,
                                           r->lo, r->hi),
                      r->low, r->high);
}

/* MlasQuantizeLinear: float32 division, clamp (NaN gives the low end), rne, + zp. */
MCUC_INLINE int32_t mcuc_ort_quantize_linear(float x, float scale, int32_t zp, int32_t lo, int32_t hi) {
    const float v = x / scale;
    if (v != v) {
        return lo;
    }
    return mcuc_rne_f32(mcuc_clampf(v, (float)(lo - zp), (float)(hi - zp))) + zp;
}

/* rne of a float that may be out of range, then - offset, clamped to [lo, hi]. */
MCUC_INLINE int32_t mcuc_ort_round_clamp(float v, int32_t offset, int32_t lo, int32_t hi) {
    return mcuc_clamp(mcuc_rne_f32(mcuc_clampf(v, -1048576.0f, 1048576.0f)) - offset, lo, hi);
}

/* The output stage of the conv-like kernels below: per channel scale (pairs rule) or
 * QuantizeLinear of a float sum (float rule), then the activation clamp. */
typedef struct {
    const int32_t *bias;   /* pairs: bias - (zp + 128) * sum(w) per channel */
    const uint32_t *mult;  /* pairs: x_scale * w_scale / y_scale per channel as mcuc_ort_requant_int's */
    const uint32_t *limit; /* constants (mcuc_ort_requant_t) */
    const int32_t *shift;
    const float *fbias;    /* float: dequantized bias per channel (NULL: none) */
    const float *xdeq;     /* float: dequantized input, indexed by int8 value + 128 */
    float out_scale;       /* float: the output scale */
    int32_t in_zp;         /* the input zero point (int8) */
    int32_t out_zp, lo, hi, act_min, act_max;
} mcuc_ort_conv_t;

/* A grouped convolution over NHWC input (a fully connected layer is the 1x1 case with
 * the rows as pixels, a depthwise conv the case of one input channel per group) with
 * onnxruntime's u8 x s8 GEMM: the reduction in (ky, kx, channel) order, products of the
 * uint8 activation (int8 + 128, padding at the zero point) and the weight summed in
 * saturating int16 pairs (an odd last product pairs with zero). Weights [oc][kh][kw][cin_g]. */
MCUC_INLINE void mcuc_ort_conv_pairs(const int8_t *in, int8_t *out, const mcuc_dims_t *in_dims,
                                     const mcuc_dims_t *out_dims, const mcuc_window_t *win, int groups,
                                     const int8_t *w, const mcuc_ort_conv_t *p) {
    const int in_h = in_dims->h, in_w = in_dims->w, in_ch = in_dims->c;
    const int out_h = out_dims->h, out_w = out_dims->w, out_ch = out_dims->c;
    const int kh = win->kh, kw = win->kw, stride_h = win->stride_h, stride_w = win->stride_w;
    const int dil_h = win->dil_h, dil_w = win->dil_w, pad_top = win->pad_top, pad_left = win->pad_left;
    const int cin_g = in_ch / groups, cout_g = out_ch / groups;
    const int32_t pad_u8 = p->in_zp + 128;
    int oy, ox, oc;
    for (oy = 0; oy < out_h; oy++) {
        for (ox = 0; ox < out_w; ox++) {
            for (oc = 0; oc < out_ch; oc++) {
                const int8_t *wc = w + oc * kh * kw * cin_g;
                const int c0 = (oc / cout_g) * cin_g;
                int32_t acc = 0, pending = 0;
                int k = 0, ky, kx, c;
                for (ky = 0; ky < kh; ky++) {
                    const int iy = oy * stride_h - pad_top + ky * dil_h;
                    for (kx = 0; kx < kw; kx++) {
                        const int ix = ox * stride_w - pad_left + kx * dil_w;
                        const int inside = iy >= 0 && iy < in_h && ix >= 0 && ix < in_w;
                        const int8_t *px = in + (iy * in_w + ix) * in_ch + c0;
                        for (c = 0; c < cin_g; c++, k++) {
                            const int32_t v = inside ? px[c] + 128 : pad_u8;
                            const int32_t prod = v * wc[k];
                            if (k & 1) {
                                acc += mcuc_clamp(pending + prod, -32768, 32767);
                            } else {
                                pending = prod;
                            }
                        }
                    }
                }
                if (k & 1) {
                    acc += mcuc_clamp(pending, -32768, 32767);
                }
                acc += p->bias[oc];
                out[(oy * out_w + ox) * out_ch + oc] = (int8_t)mcuc_clamp(
                    mcuc_ort_requant_int(acc, p->mult[oc], p->limit[oc], p->shift[oc], p->out_zp, p->lo, p->hi),
                    p->act_min, p->act_max);
            }
        }
    }
}

/* MlasSgemmKernelM1Avx's sum over rounded products p[0..K) (mcuc.ir.ops.ort_float.m1_sum):
 * blocks of four ((p0 + p1) + p2) + p3 added to the output, then a pair, then a single.
 * Fed one product at a time: `t` is the product's index, `total` K. */
typedef struct {
    float out, buf[4];
} mcuc_m1_t;

MCUC_INLINE void mcuc_m1_add(mcuc_m1_t *s, float p, int t, int total) {
    const int full4 = total / 4 * 4;
    s->buf[t & 3] = p;
    if (t < full4) {
        if ((t & 3) == 3) {
            s->out = (((s->buf[0] + s->buf[1]) + s->buf[2]) + s->buf[3]) + s->out;
        }
        return;
    }
    if (t == total - 1) {
        const int rem = total - full4;
        if (rem >= 2) {
            s->out = (s->buf[0] + s->buf[1]) + s->out;
        }
        if (rem & 1) {
            s->out = s->buf[rem - 1] + s->out;
        }
    }
}

/* The same convolution as onnxruntime's float Conv computes it on dequantized values
 * (mcuc.ir.ops.ort_float.conv_float), taps in NCHW im2col order (channel, ky, kx;
 * padding is 0.0): with one output channel per group the M == 1 kernel's rounded
 * products (mcuc_m1_add); otherwise the FMA3 kernel, fused multiply-add chains from
 * zero over blocks of `blocks[pixel]` taps (`block` for every pixel when NULL), each
 * added to the output. Then the float bias, then QuantizeLinear. Weights dequantized at
 * compile time, [oc][cin_g][kh][kw]. */
MCUC_INLINE void mcuc_ort_conv_float(const int8_t *in, int8_t *out, const mcuc_dims_t *in_dims,
                                     const mcuc_dims_t *out_dims, const mcuc_window_t *win, int groups,
                                     const uint16_t *blocks, int block, const float *w, const mcuc_ort_conv_t *p) {
    const int in_h = in_dims->h, in_w = in_dims->w, in_ch = in_dims->c;
    const int out_h = out_dims->h, out_w = out_dims->w, out_ch = out_dims->c;
    const int kh = win->kh, kw = win->kw, stride_h = win->stride_h, stride_w = win->stride_w;
    const int dil_h = win->dil_h, dil_w = win->dil_w, pad_top = win->pad_top, pad_left = win->pad_left;
    const int cin_g = in_ch / groups, cout_g = out_ch / groups, taps = cin_g * kh * kw;
    int oy, ox, oc;
    for (oy = 0; oy < out_h; oy++) {
        for (ox = 0; ox < out_w; ox++) {
            const int kblock = blocks ? blocks[oy * out_w + ox] : block;
            for (oc = 0; oc < out_ch; oc++) {
                const float *wc = w + oc * taps;
                const int c0 = (oc / cout_g) * cin_g;
                mcuc_m1_t m1 = {0.0f, {0.0f, 0.0f, 0.0f, 0.0f}};
                float acc = 0.0f, total = 0.0f;
                int ky, kx, c, t = 0, inblock = 0, have = 0;
                for (c = 0; c < cin_g; c++) {
                    for (ky = 0; ky < kh; ky++) {
                        const int iy = oy * stride_h - pad_top + ky * dil_h;
                        for (kx = 0; kx < kw; kx++, t++) {
                            const int ix = ox * stride_w - pad_left + kx * dil_w;
                            const float v = (iy >= 0 && iy < in_h && ix >= 0 && ix < in_w)
                                                ? p->xdeq[in[(iy * in_w + ix) * in_ch + c0 + c] + 128]
                                                : 0.0f;
                            if (cout_g == 1) {
                                mcuc_m1_add(&m1, wc[t] * v, t, taps);
                                continue;
                            }
                            acc = mcuc_fmaf(wc[t], v, acc);
                            if (++inblock == kblock || t == taps - 1) {
                                total = have ? acc + total : acc;
                                have = 1;
                                acc = 0.0f;
                                inblock = 0;
                            }
                        }
                    }
                }
                if (cout_g == 1) {
                    total = m1.out;
                }
                if (p->fbias) {
                    total = total + p->fbias[oc];
                }
                out[(oy * out_w + ox) * out_ch + oc] = (int8_t)mcuc_clamp(
                    mcuc_ort_quantize_linear(total, p->out_scale, p->out_zp, p->lo, p->hi), p->act_min, p->act_max);
            }
        }
    }
}

/* onnxruntime's float Gemm/MatMul (mcuc.ir.ops.ort_float.fully_connected_float) on
 * [rows, depth] x [units][depth] (dequantized weights), the output starting at the
 * float bias (zero without one): one row through the M == 1 kernel (mcuc_m1_add), or
 * for a Gemm with transB (`transposed`) its eight lanes over k mod 8 reduced in the
 * tree of the unit's position; more rows through FMA3 blocks of `block` terms (the
 * first block is the output when there is no bias). */
MCUC_INLINE void mcuc_ort_fc_float(const int8_t *in, int8_t *out, int rows, int depth, int units, int transposed,
                                   int block, const float *w, const mcuc_ort_conv_t *p) {
    int r, u, k;
    for (r = 0; r < rows; r++) {
        const int8_t *x = in + r * depth;
        for (u = 0; u < units; u++) {
            const float *wu = w + u * depth;
            const float start = p->fbias ? p->fbias[u] : 0.0f;
            float total;
            if (rows == 1 && transposed) {
                float l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
                for (k = 0; k < depth; k++) {
                    l[k & 7] = l[k & 7] + wu[k] * p->xdeq[x[k] + 128];
                }
                if (u < units / 4 * 4) {
                    total = (((l[0] + l[1]) + l[2]) + l[3]) + (((l[4] + l[5]) + l[6]) + l[7]);
                } else if (u < units / 4 * 4 + (units % 4) / 2 * 2) {
                    total = ((l[0] + l[2]) + (l[4] + l[6])) + ((l[1] + l[3]) + (l[5] + l[7]));
                } else {
                    total = ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
                }
                total = total + start;
            } else if (rows == 1) {
                mcuc_m1_t m1 = {0.0f, {0.0f, 0.0f, 0.0f, 0.0f}};
                m1.out = start;
                for (k = 0; k < depth; k++) {
                    mcuc_m1_add(&m1, p->xdeq[x[k] + 128] * wu[k], k, depth);
                }
                total = m1.out;
            } else {
                float acc = 0.0f;
                int inblock = 0, have = p->fbias != 0;
                total = start;
                for (k = 0; k < depth; k++) {
                    acc = mcuc_fmaf(p->xdeq[x[k] + 128], wu[k], acc);
                    if (++inblock == block || k == depth - 1) {
                        total = have ? acc + total : acc;
                        have = 1;
                        acc = 0.0f;
                        inblock = 0;
                    }
                }
            }
            out[r * units + u] = (int8_t)mcuc_clamp(
                mcuc_ort_quantize_linear(total, p->out_scale, p->out_zp, p->lo, p->hi), p->act_min, p->act_max);
        }
    }
}

/* QLinearAdd and QLinearMul in integers (mcuc.ir.ort_numerics: fixed_point_round,
 * qlinear_add_tables, qlinear_mul_constants). Their float32 value v is within 2^-14 of an
 * exact value z when the 8-bit output does not saturate; t holds z in fixed point with
 * `frac` fraction bits, plus 1/2 + 2^-13, minus the output offset. Away from a half-integer
 * (t's bits [frac - 12, frac) not all zero) the answer is t >> frac; within 2^-13 of one the
 * float form decides, except for an exact tie of an exact t (z a half-integer, which float32
 * holds exactly), which rounds to the even neighbour, (t >> frac) & ~1. tests/runtime_c/test_ort_binary_exact.py compares both ops with their
 * float definition over all 65536 input pairs. */
MCUC_INLINE int mcuc_ort_away_from_half(int32_t t, int32_t frac) {
    return (((uint32_t)t >> (frac - 12)) & 0xFFFu) != 0u;
}

MCUC_INLINE int mcuc_ort_exact_tie(int32_t t, int32_t frac) {
    return ((uint32_t)t & ((1u << frac) - 1u)) == (1u << (frac - 13));
}

/* t >> frac clamped to the output type's range [lo, hi] and the activation's, one SSAT
 * where both are int8's. */
MCUC_INLINE int32_t mcuc_ort_fixed_out(int32_t t, int32_t frac, int32_t lo, int32_t hi, int32_t act_min,
                                      int32_t act_max) {
    const int32_t low = lo > act_min ? lo : act_min, high = hi < act_max ? hi : act_max;
#if MCUC_DSP
    if (low == -128 && high == 127) {
        return mcuc_ssat8(t >> frac);
    }
#endif
    return mcuc_clamp(t >> frac, low, high);
}

/* QLinearAdd (MLAS AVX2): y = rne(fma(a, ra, fma(b, rb, fixed))) on the model's own
 * values (int8 + offset); with a one-element first input `swap` folds it first. The
 * integer form (t1 not NULL): t = t1[x1] + t2[x2], the outer input's a * ra and the inner
 * one's fma(b, rb, fixed) in fixed point (t2 holds the offsets), the tables indexed by the
 * int8 value's byte (0..127, then -128..-1). Returns the int8 output as int32. */
typedef struct {
    float ra, rb, fixed;
    int32_t offset, lo, hi, act_min, act_max, swap;
    const int32_t *t1;     /* indexed by (uint8_t)x1; NULL: the float form only */
    const int32_t *t2;
    int32_t frac;
    int32_t exact;         /* the tables hold their values exactly */
} mcuc_ort_add_t;

MCUC_COLD int32_t mcuc_ort_add_float(int32_t x1, int32_t x2, const mcuc_ort_add_t *p) {
    const float va = (float)(x1 + p->offset), vb = (float)(x2 + p->offset);
    if (p->t1 && p->exact) {
        const int32_t t = p->t1[(uint8_t)x1] + p->t2[(uint8_t)x2];
        if (mcuc_ort_exact_tie(t, p->frac)) {
            return mcuc_clamp((t >> p->frac) & ~1, p->lo, p->hi);
        }
    }
    const float v = p->swap ? mcuc_fmaf(vb, p->rb, mcuc_fmaf(va, p->ra, p->fixed))
                            : mcuc_fmaf(va, p->ra, mcuc_fmaf(vb, p->rb, p->fixed));
    return mcuc_ort_round_clamp(v, p->offset, p->lo, p->hi);
}

MCUC_INLINE int32_t mcuc_ort_add_one(int32_t x1, int32_t x2, const mcuc_ort_add_t *p) {
    const uint8_t b1 = (uint8_t)x1, b2 = (uint8_t)x2; /* the slow path signs them again */
    if (p->t1) {
        const int32_t t = p->t1[b1] + p->t2[b2];
        if (mcuc_ort_away_from_half(t, p->frac)) {
            return mcuc_ort_fixed_out(t, p->frac, p->lo, p->hi, p->act_min, p->act_max);
        }
    }
    return mcuc_clamp(mcuc_ort_add_float((int8_t)b1, (int8_t)b2, p), p->act_min, p->act_max);
}

/* QLinearMul (MLAS SSE2): float(exact product of the centred inputs) * ratio + float(zc),
 * rounded half to even, on the model's own values. The integer form (thresholds not NULL;
 * mcuc.ir.ort_numerics.qlinear_mul_ceiling, threshold_round): k1 = floor(d * ratio + zp) + 1
 * for the exact product d, exactly: the high word of (d << shift) * mult plus add, >> frac.
 * The answer is k1 - 1 or k1 and does not decrease with d: with k1 clamped to [low, high]
 * (the output type's range and the activation's) it is k1 unless d is below
 * thresholds[k1 + 128], the least product whose output is k1 or more. Returns the int8
 * output as int32. */
typedef struct {
    int32_t za, zb;
    float ratio, zc;
    int32_t offset, lo, hi, act_min, act_max;
    const int32_t *thresholds; /* 256, indexed by output + 128; NULL: the float form only */
    int32_t mult;          /* the ratio's significand << 0..7 */
    int32_t shift;
    int32_t add;           /* (the output zero point + 1) << frac */
    int32_t frac;
} mcuc_ort_mul_t;

MCUC_COLD int32_t mcuc_ort_mul_float(int32_t x1, int32_t x2, const mcuc_ort_mul_t *p) {
    const float product = (float)((x1 - p->za) * (x2 - p->zb)) * p->ratio;
    const float v = product + p->zc;
    return mcuc_clamp(mcuc_ort_round_clamp(v, p->offset, p->lo, p->hi), p->act_min, p->act_max);
}

MCUC_INLINE int32_t mcuc_ort_mul_one(int32_t x1, int32_t x2, const mcuc_ort_mul_t *p) {
    if (p->thresholds) {
        const int32_t *thresholds = p->thresholds + 128;
        const int32_t d = (x1 - p->za) * (x2 - p->zb);
        const int32_t t = (int32_t)(((int64_t)(int32_t)((uint32_t)d << p->shift) * p->mult) >> 32) + p->add;
        const int32_t k1 = mcuc_ort_fixed_out(t, p->frac, p->lo, p->hi, p->act_min, p->act_max);
        return k1 - (int32_t)(d < thresholds[k1]);
    }
    return mcuc_ort_mul_float(x1, x2, p);
}

/* A DQ -> float Add/Mul -> Q group: both inputs dequantized by table, one float op,
 * QuantizeLinear. */
typedef struct {
    const float *deq1, *deq2;
    float out_scale;
    int32_t out_zp, lo, hi, act_min, act_max, is_mul;
} mcuc_ort_float_binary_t;

MCUC_INLINE int8_t mcuc_ort_float_binary_one(int32_t x1, int32_t x2, const mcuc_ort_float_binary_t *p) {
    const float a = p->deq1[x1 + 128], b = p->deq2[x2 + 128];
    const float v = p->is_mul ? a * b : a + b;
    return (int8_t)mcuc_clamp(mcuc_ort_quantize_linear(v, p->out_scale, p->out_zp, p->lo, p->hi), p->act_min,
                              p->act_max);
}

/* QLinearAveragePool's arithmetic; the window is the kernel's mcuc_window_t (dilation 1). */
typedef struct {
    const float *xdeq;     /* dequantized input, indexed by int8 value + 128 */
    float out_scale;
    float out_zp;          /* the model's own zero point (+ offset); the IR's in a float group */
    int32_t offset;        /* 128 for uint8 values, else 0 */
    int32_t lo;            /* the range of the model's own values */
    int32_t hi;
    int count_include_pad;
    int float_group;       /* a DQ -> AveragePool -> Q group left in float */
    int32_t act_min;       /* float group only: the fused activation */
    int32_t act_max;
} mcuc_ort_pool_t;

/* QLinearAveragePool: the window's dequantized values summed in float32 row by row
 * (padding adds 0.0), divided by the count (whole window with count_include_pad), then
 * rne(mean / y_scale + y_zp) on the model's own values. */
MCUC_INLINE void mcuc_ort_avg_pool(const int8_t *in, int8_t *out, const mcuc_dims_t *in_dims,
                                   const mcuc_dims_t *out_dims, const mcuc_window_t *win, const mcuc_ort_pool_t *p) {
    const int batches = in_dims->n, in_h = in_dims->h, in_w = in_dims->w, ch = in_dims->c;
    const int out_h = out_dims->h, out_w = out_dims->w;
    const int fh = win->kh, fw = win->kw, stride_h = win->stride_h, stride_w = win->stride_w;
    const int pad_top = win->pad_top, pad_left = win->pad_left;
    int b, oy, ox, c;
    for (b = 0; b < batches; b++) {
        for (oy = 0; oy < out_h; oy++) {
            for (ox = 0; ox < out_w; ox++) {
                for (c = 0; c < ch; c++) {
                    float total = 0.0f;
                    int count = 0, ky, kx;
                    for (ky = 0; ky < fh; ky++) {
                        const int iy = oy * stride_h - pad_top + ky;
                        for (kx = 0; kx < fw; kx++) {
                            const int ix = ox * stride_w - pad_left + kx;
                            if (iy >= 0 && iy < in_h && ix >= 0 && ix < in_w) {
                                total = total + p->xdeq[in[((b * in_h + iy) * in_w + ix) * ch + c] + 128];
                                count++;
                            } else {
                                total = total + 0.0f;
                            }
                        }
                    }
                    {
                        const float n = (float)(p->count_include_pad ? fh * fw : count);
                        const float mean = total / n;
                        const float v = mean / p->out_scale + p->out_zp;
                        /* a DQ -> AveragePool -> Q group left in float: the same mean, then
                           QuantizeLinear (out_zp is then the IR's zero point, no offset) */
                        out[((b * out_h + oy) * out_w + ox) * ch + c] = (int8_t)(
                            p->float_group
                                ? mcuc_clamp(mcuc_ort_quantize_linear(mean, p->out_scale, (int32_t)p->out_zp, p->lo,
                                                                      p->hi),
                                             p->act_min, p->act_max)
                                : mcuc_ort_round_clamp(v, p->offset, p->lo, p->hi));
                    }
                }
            }
        }
    }
}

/* A DQ -> GlobalAveragePool -> Q group left in float (MlasPoolGlobalKernel, mcuc.ir.ops.
 * ort_float.global_average_pool_float): per channel the hw dequantized values in four
 * float32 lanes (whole blocks of four), reduced (l0 + l2) + (l1 + l3), the rest added one
 * by one, divided by float(hw); then QuantizeLinear. NHWC input [n][hw][ch]. */
MCUC_INLINE void mcuc_ort_global_avg_float(const int8_t *in, int8_t *out, int n, int hw, int ch, const float *xdeq,
                                           float out_scale, int32_t out_zp, int32_t lo, int32_t hi) {
    const int full = hw / 4 * 4;
    int b, c, i;
    for (b = 0; b < n; b++) {
        for (c = 0; c < ch; c++) {
            const int8_t *x = in + b * hw * ch + c;
            float l[4] = {0.0f, 0.0f, 0.0f, 0.0f}, total;
            for (i = 0; i < full; i++) {
                l[i & 3] = l[i & 3] + xdeq[x[i * ch] + 128];
            }
            total = (l[0] + l[2]) + (l[1] + l[3]);
            for (i = full; i < hw; i++) {
                total = total + xdeq[x[i * ch] + 128];
            }
            out[b * ch + c] = (int8_t)mcuc_ort_quantize_linear(total / (float)hw, out_scale, out_zp, lo, hi);
        }
    }
}

/* The Eigen (SSE2, 4-float packets) sum onnxruntime's float ReduceMean takes of one row of
 * `count` dequantized values x[i * stride], whose element `first_aligned` is the row's first
 * on a 16-byte boundary (mcuc.ir.ops.ort_float.eigen_sum): without a whole aligned
 * packet, in order from element 0; else lane-wise packet sums (two accumulators taking
 * every other packet, added, then the last odd packet), reduced (l0 + l2) + (l1 + l3),
 * then the unaligned head, then the tail, one by one. */
MCUC_INLINE float mcuc_ort_eigen_sum(const int8_t *x, int stride, int count, int first_aligned, const float *xdeq) {
    const int packets = (count - first_aligned) / 4;
    float p0[4], p1[4], total;
    int i, k, l;
    if (packets == 0) {
        total = xdeq[x[0] + 128];
        for (i = 1; i < count; i++) {
            total = total + xdeq[x[i * stride] + 128];
        }
        return total;
    }
    for (l = 0; l < 4; l++) {
        p0[l] = xdeq[x[(first_aligned + l) * stride] + 128];
    }
    if (packets > 1) {
        for (l = 0; l < 4; l++) {
            p1[l] = xdeq[x[(first_aligned + 4 + l) * stride] + 128];
        }
        for (k = 2; k + 1 < packets; k += 2) {
            const int8_t *q = x + (first_aligned + 4 * k) * stride;
            for (l = 0; l < 4; l++) {
                p0[l] = p0[l] + xdeq[q[l * stride] + 128];
                p1[l] = p1[l] + xdeq[q[(4 + l) * stride] + 128];
            }
        }
        for (l = 0; l < 4; l++) {
            p0[l] = p0[l] + p1[l];
        }
        if (packets & 1) {
            const int8_t *q = x + (first_aligned + 4 * (packets - 1)) * stride;
            for (l = 0; l < 4; l++) {
                p0[l] = p0[l] + xdeq[q[l * stride] + 128];
            }
        }
    }
    total = (p0[0] + p0[2]) + (p0[1] + p0[3]);
    for (i = 0; i < first_aligned; i++) {
        total = total + xdeq[x[i * stride] + 128];
    }
    for (i = first_aligned + 4 * packets; i < count; i++) {
        total = total + xdeq[x[i * stride] + 128];
    }
    return total;
}

/* A DQ -> ReduceMean(H, W) -> Q group (always float in onnxruntime: ReduceAggregatorMean,
 * mcuc.ir.ops.ort_float.reduce_mean_float): NCHW row d = image * ch + channel starts at
 * float d * hw of a 64-byte aligned buffer, so its first aligned element is (-d * hw) mod 4
 * (at most hw); the Eigen sum, divided by float(hw), QuantizeLinear. NHWC input [n][hw][ch],
 * output [n][ch]. */
MCUC_INLINE void mcuc_ort_reduce_mean_float(const int8_t *in, int8_t *out, int n, int hw, int ch, const float *xdeq,
                                            float out_scale, int32_t out_zp, int32_t lo, int32_t hi) {
    int b, c;
    for (b = 0; b < n; b++) {
        for (c = 0; c < ch; c++) {
            const unsigned row = (unsigned)(b * ch + c);
            int first_aligned = (int)((4u - (row * (unsigned)hw) % 4u) % 4u);
            float total;
            if (first_aligned > hw) {
                first_aligned = hw;
            }
            total = mcuc_ort_eigen_sum(in + b * hw * ch + c, ch, hw, first_aligned, xdeq);
            out[b * ch + c] = (int8_t)mcuc_ort_quantize_linear(total / (float)hw, out_scale, out_zp, lo, hi);
        }
    }
}

/* QLinearSoftmax (MLAS AVX2) over rows of `depth`: exps from a float table at 255 -
 * (row max - x); the sum in the kernel's order (8 lanes over blocks of 16, the tail
 * alone, then tail + lanes 0..7); scale = (1 / sum) * floor(1 / y_scale); y =
 * rne(fma(e, scale, zp)) (INT32_MIN beyond int32), clamped to [lo, hi], - offset. */
MCUC_INLINE void mcuc_ort_softmax(const int8_t *in, int8_t *out, int rows, int depth, const float *table,
                                  float floor_inv_scale, float zp, int32_t offset, int32_t lo, int32_t hi) {
    const int blocks = depth / 16 * 16;
    int r, k, j;
    for (r = 0; r < rows; r++) {
        const int8_t *x = in + r * depth;
        float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        float total = 0.0f, scale;
        int32_t m = x[0];
        for (k = 1; k < depth; k++) {
            m = x[k] > m ? x[k] : m;
        }
        for (k = 0; k < blocks; k += 8) {
            for (j = 0; j < 8; j++) {
                lanes[j] = lanes[j] + table[255 - (m - x[k + j])];
            }
        }
        for (k = blocks; k < depth; k++) {
            total = total + table[255 - (m - x[k])];
        }
        for (j = 0; j < 8; j++) {
            total = total + lanes[j];
        }
        scale = (1.0f / total) * floor_inv_scale;
        if (floor_inv_scale < 1048576.0f && zp > -1048576.0f && zp < 1048576.0f) {
            /* A constant test (the call's literals): 0 < e <= 1 (the row's maximum is
             * table[255] = 1, so total >= 1) and scale <= floor_inv_scale, so every v is
             * finite and below 2^21 in magnitude: no NaN, no range checks. */
            for (k = 0; k < depth; k++) {
                const float v = mcuc_fmaf(table[255 - (m - x[k])], scale, zp);
                out[r * depth + k] = (int8_t)(mcuc_clamp(mcuc_rne_f32(v), lo, hi) - offset);
            }
            continue;
        }
        for (k = 0; k < depth; k++) {
            const float v = mcuc_fmaf(table[255 - (m - x[k])], scale, zp);
            int32_t q = INT32_MIN;
            if (v == v && v > -2147483904.0f && v < 2147483648.0f) {
                /* rne within int32 (2^31 - 128 is the largest float below 2^31) */
                q = mcuc_rne_f32(mcuc_clampf(v, -1048576.0f, 1048576.0f));
            }
            out[r * depth + k] = (int8_t)(mcuc_clamp(q, lo, hi) - offset);
        }
    }
}

#endif /* MCUC_ORT_H */
