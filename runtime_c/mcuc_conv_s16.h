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
        const int32_t total = q->shift[c];
        y = (int32_t)((acc * q->mult[c] + ((int64_t)1 << (total - 1))) >> total);
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

#endif /* MCUC_CONV_S16_H */
