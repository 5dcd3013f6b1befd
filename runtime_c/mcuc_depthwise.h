/* mcuc_depthwise.h: depthwise convolution kernels (always-inline, specialized per layer).
 *
 * Unlike the GEMM kernels these keep the model's bias and add the input offset
 * (-input zero point) to every tap they read, so padding taps are simply skipped
 * (TFLM's semantics). On ARMv7E-M the offset costs nothing: SXTAB16 sign-extends two
 * bytes and adds the offset pair in one instruction.
 */
#ifndef MCUC_DEPTHWISE_H
#define MCUC_DEPTHWISE_H

#include "mcuc_conv.h"

/* Depth multiplier 1, channels a multiple of 4 (DSP path) processed four at a time.
 * `wq` is reordered at compile time: for channel group g (channels 4g..4g+3) and tap t,
 * four int16 values {w[t][4g], w[t][4g+2], w[t][4g+1], w[t][4g+3]}, i.e. the even and
 * odd lanes the SXTB16 of four input bytes produces. Portable builds read the same
 * layout. */
MCUC_INLINE void mcuc_depthwise_c4(const int8_t *in, int8_t *out,
                                   int in_h, int in_w, int ch, int out_h, int out_w,
                                   int kh, int kw, int stride_h, int stride_w, int dil_h, int dil_w,
                                   int pad_top, int pad_left, int32_t in_offset,
                                   const int16_t *wq, const mcuc_requant_t *q) {
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
                            const int32_t xe = (int32_t)__sxtab16(offset2, xv);
                            const int32_t xo = (int32_t)__sxtab16(offset2, mcuc_ror(xv, 8));
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
MCUC_INLINE void mcuc_depthwise_generic(const int8_t *in, int8_t *out,
                                        int in_h, int in_w, int in_ch, int out_h, int out_w, int mult,
                                        int kh, int kw, int stride_h, int stride_w, int dil_h, int dil_w,
                                        int pad_top, int pad_left, int32_t in_offset,
                                        const int8_t *weights, const mcuc_requant_t *q) {
    const int out_ch = in_ch * mult;
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
 * input plane of channel c is first gathered into `plane` (in_h * in_w bytes); writing
 * output channel c then only overwrites bytes of channel c, which the plane holds. */
MCUC_INLINE void mcuc_depthwise_in_place(int8_t *data, int8_t *plane,
                                         int in_h, int in_w, int ch, int out_h, int out_w,
                                         int kh, int kw, int stride_h, int stride_w, int dil_h, int dil_w,
                                         int pad_top, int pad_left, int32_t in_offset,
                                         const int8_t *weights, const mcuc_requant_t *q) {
    int c, i, oy, ox, ky, kx;
    for (c = 0; c < ch; c++) {
        for (i = 0; i < in_h * in_w; i++) {
            plane[i] = data[i * ch + c];
        }
        for (oy = 0; oy < out_h; oy++) {
            for (ox = 0; ox < out_w; ox++) {
                int32_t acc = q->bias[c];
                for (ky = 0; ky < kh; ky++) {
                    const int iy = oy * stride_h - pad_top + ky * dil_h;
                    if (iy < 0 || iy >= in_h) continue;
                    for (kx = 0; kx < kw; kx++) {
                        const int ix = ox * stride_w - pad_left + kx * dil_w;
                        if (ix < 0 || ix >= in_w) continue;
                        acc += (plane[iy * in_w + ix] + in_offset) * weights[(ky * kw + kx) * ch + c];
                    }
                }
                data[(oy * out_w + ox) * ch + c] = (int8_t)mcuc_output_stage(acc, q, c);
            }
        }
    }
}

#endif /* MCUC_DEPTHWISE_H */
