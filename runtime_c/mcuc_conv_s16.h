/* mcuc_conv_s16.h: 16x8 (int16 activations, int8 weights) CONV_2D, DEPTHWISE_CONV_2D
 * and FULLY_CONNECTED in portable C, as tflite-micro's reference kernels compute them
 * (conv.cc, depthwise_conv.cc, fully_connected.cc; mcuc.ir.ops.int16_stage states the
 * rule once). Every layer is a grouped convolution over OHWI weights, one output element
 * at a time: a depthwise conv has one input channel per group, a fully connected layer a
 * 1x1 window over rows of `depth` channels; padding taps are skipped. The sum is kept in
 * the bias's type: int64 (or no bias) with TFLite's int64 output stage (the multiplier
 * reduced to 15 bits, one rounding shift), or int32, wrapping as the C++ loop would,
 * with the Q31 stage. No scratch. */
#ifndef MCUC_CONV_S16_H
#define MCUC_CONV_S16_H

#include "mcuc_fixedpoint.h"
#include "mcuc_params.h"

typedef struct {
    const int64_t *bias64; /* the int64 bias (NULL: none), or NULL with bias32 */
    const int32_t *bias32; /* an int32 bias: int32 sums and the Q31 stage */
    const int32_t *mult;   /* per output channel: the 15-bit multiplier (int64 stage) or Q31's */
    const int32_t *shift;  /* per output channel: 15 - shift (int64 stage) or TFLite's shift */
    int32_t in_zp;         /* subtracted from the inputs (FULLY_CONNECTED; 0 for the convs) */
    int32_t out_zp;        /* added to the outputs (FULLY_CONNECTED; 0 for the convs) */
    int32_t act_min, act_max;
} mcuc_quant16_t;

MCUC_INLINE int32_t mcuc_output_stage16(int64_t acc, const mcuc_quant16_t *q, int c) {
    int32_t y;
    if (q->bias32) {
        y = mcuc_mbqm((int32_t)acc, q->mult[c], q->shift[c]);
    } else {
        y = mcuc_mbqm64(acc, q->mult[c], q->shift[c]);
    }
    return mcuc_clamp(y + q->out_zp, q->act_min, q->act_max);
}

/* One tap's `cg` products into the sum: int8 weights one product at a time (the input
 * zero point subtracted: FULLY_CONNECTED), or int16 weights (`w16`, DSP cores, input zero
 * point 0) two per SMLALD into the int64 sum or SMLAD into the int32 one, an odd
 * group's last channel alone. The int32 sum wraps as the C++ loop's does. */
MCUC_INLINE void mcuc_tap16(const int16_t *x, const void *w, int cg, int w16, const mcuc_quant16_t *q,
                            uint32_t *acc32, int64_t *acc64) {
    int k = 0;
#if MCUC_DSP
    if (w16) {
        const int16_t *wt = (const int16_t *)w;
        int32_t a32 = (int32_t)*acc32;
        int64_t a64 = *acc64;
        for (; k + 2 <= cg; k += 2) {
            const uint32_t xv = mcuc_load32(x + k), wv = mcuc_load32(wt + k);
            if (q->bias32) {
                a32 = __smlad((int32_t)xv, (int32_t)wv, a32);
            } else {
                a64 = __smlald((int32_t)xv, (int32_t)wv, a64);
            }
        }
        *acc32 = (uint32_t)a32;
        *acc64 = a64;
    }
#endif
    for (; k < cg; k++) {
        const int32_t product = (x[k] - q->in_zp) * mcuc_get_s8s16(w, k, w16);
        if (q->bias32) {
            *acc32 += (uint32_t)product;
        } else {
            *acc64 += product;
        }
    }
}

/* `in_per_group` input channels per group (the weights' last dimension); output channel o
 * reads group o / (out channels per group). `w`: int8 OHWI weights, or with `w16` (DSP
 * cores for speed: twice the flash) the same sign-extended to int16. */
MCUC_INLINE void mcuc_conv_s16x8(const int16_t *in, int16_t *out, const mcuc_dims_t *in_dims,
                                 const mcuc_dims_t *out_dims, const mcuc_window_t *win, int in_per_group,
                                 const void *w, int w16, const mcuc_quant16_t *q) {
    const int n = in_dims->n, h = in_dims->h, wd = in_dims->w, c = in_dims->c;
    const int oh = out_dims->h, ow = out_dims->w, oc = out_dims->c;
    const int kh = win->kh, kw = win->kw, cg = in_per_group, per_group = oc / (c / in_per_group);
    const int item = w16 ? 2 : 1;
    int b, oy, ox, o, ky, kx;
    for (b = 0; b < n; b++) {
        for (oy = 0; oy < oh; oy++) {
            for (ox = 0; ox < ow; ox++) {
                int16_t *y = out + ((b * oh + oy) * ow + ox) * oc;
                for (o = 0; o < oc; o++) {
                    const int first = (o / per_group) * cg;
                    int64_t acc64 = q->bias64 ? q->bias64[o] : 0;
                    uint32_t acc32 = q->bias32 ? (uint32_t)q->bias32[o] : 0u;
                    for (ky = 0; ky < kh; ky++) {
                        const int iy = oy * win->stride_h - win->pad_top + ky * win->dil_h;
                        if (iy < 0 || iy >= h) {
                            continue;
                        }
                        for (kx = 0; kx < kw; kx++) {
                            const int ix = ox * win->stride_w - win->pad_left + kx * win->dil_w;
                            if (ix < 0 || ix >= wd) {
                                continue;
                            }
                            mcuc_tap16(in + ((b * h + iy) * wd + ix) * c + first,
                                       (const int8_t *)w + ((o * kh + ky) * kw + kx) * cg * item, cg, w16, q, &acc32,
                                       &acc64);
                        }
                    }
                    y[o] = (int16_t)mcuc_output_stage16(q->bias32 ? (int64_t)(int32_t)acc32 : acc64, q, o);
                }
            }
        }
    }
}

#if MCUC_DSP
/* The window's kernel rows [*first, *stop) whose input row lies inside 0..size-1. */
MCUC_INLINE void mcuc_window_inside(int origin, int taps, int dilation, int size, int *first, int *stop) {
    int a = 0, b = taps;
    while (a < taps && origin + a * dilation < 0) {
        a++;
    }
    while (b > a && origin + (b - 1) * dilation >= size) {
        b--;
    }
    *first = a;
    *stop = b;
}

/* 16x8 DEPTHWISE_CONV_2D with depth multiplier 1 on DSP cores, two channels per pass: per
 * tap one 32-bit load of the pair's int16 inputs and one of its int16 weights (`w`: the
 * HWC weights [kh][kw][ch] sign-extended at compile time), SMLABB into the even
 * channel's sum and SMLATT into the odd one's; an odd channel count's last channel
 * alone. The window (clipped to the input once per output pixel: padding taps skipped)
 * is summed in int32: |x w| <= 2^22, so up to 511 taps cannot leave it (the emitter
 * checks), and the sum then joins the int64 bias exactly as tflite-micro's int64 sum
 * does. The generic mcuc_conv_s16x8 took one product per tap and channel with the group
 * arithmetic around it (0.06 MAC/cycle). */
MCUC_INLINE void mcuc_depthwise_s16x8(const int16_t *in, int16_t *out, const mcuc_dims_t *in_dims,
                                      const mcuc_dims_t *out_dims, const mcuc_window_t *win, const int16_t *w,
                                      const mcuc_quant16_t *q) {
    const int h = in_dims->h, wd = in_dims->w, ch = in_dims->c, oh = out_dims->h, ow = out_dims->w;
    const int kw = win->kw, tap_step = win->dil_w * ch, row_step = win->dil_h * wd * ch;
    int b, oy, ox, c, ky, kx, ky0, ky1, kx0, kx1;
    for (b = 0; b < in_dims->n; b++) {
        for (oy = 0; oy < oh; oy++) {
            const int y0 = oy * win->stride_h - win->pad_top;
            mcuc_window_inside(y0, win->kh, win->dil_h, h, &ky0, &ky1);
            for (ox = 0; ox < ow; ox++) {
                const int x0 = ox * win->stride_w - win->pad_left;
                int16_t *y = out + ((b * oh + oy) * ow + ox) * ch;
                mcuc_window_inside(x0, kw, win->dil_w, wd, &kx0, &kx1);
                const int rows_stop = kx0 < kx1 ? ky1 : ky0; /* no column inside: no tap */
                /* the first tap inside the input, channel 0 */
                const int first = ((b * h + y0 + ky0 * win->dil_h) * wd + x0 + kx0 * win->dil_w) * ch;
                for (c = 0; c < ch; c += 2) {
                    int32_t s0 = 0, s1 = 0;
                    for (ky = ky0; ky < rows_stop; ky++) {
                        const int16_t *xp = in + first + (ky - ky0) * row_step + c;
                        const int16_t *wp = w + (ky * kw + kx0) * ch + c;
                        if (c + 2 <= ch) {
                            for (kx = kx0; kx < kx1; kx++, xp += tap_step, wp += ch) {
                                const int32_t xv = (int32_t)mcuc_load32(xp), wv = (int32_t)mcuc_load32(wp);
                                s0 = __smlabb(xv, wv, s0);
                                s1 = __smlatt(xv, wv, s1);
                            }
                        } else {
                            for (kx = kx0; kx < kx1; kx++, xp += tap_step, wp += ch) {
                                s0 += *xp * *wp;
                            }
                        }
                    }
                    y[c] = (int16_t)mcuc_output_stage16((q->bias64 ? q->bias64[c] : 0) + s0, q, c);
                    if (c + 1 < ch) {
                        y[c + 1] = (int16_t)mcuc_output_stage16((q->bias64 ? q->bias64[c + 1] : 0) + s1, q, c + 1);
                    }
                }
            }
        }
    }
}
#endif

#endif /* MCUC_CONV_S16_H */
