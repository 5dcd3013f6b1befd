/* mcuc_params.h: the parameter structs that several kernel families share.
 *
 * A kernel takes its shapes and window as pointers to these instead of a long list of
 * integers: the generated step declares each one `static const` with designated
 * initializers right beside the call. Every kernel is an always-inline body, so the C
 * compiler reads each field of such a struct as the constant it was initialized with and
 * specializes the loops exactly as it would for literal arguments; the struct itself
 * then needs no storage.
 */
#ifndef MCUC_PARAMS_H
#define MCUC_PARAMS_H

/* The extents of an NHWC activation: batch, rows, columns, channels. */
typedef struct {
    int n;
    int h;
    int w;
    int c;
} mcuc_dims_t;

/* Where a sliding window (convolution or pooling) reads its input: the window's extent
 * in taps, the step between neighbouring outputs, the distance between taps, and the
 * padding rows and columns before the input's first. Padding after the last row or
 * column needs no field: the input and output extents imply it. */
typedef struct {
    int kh;
    int kw;
    int stride_h;
    int stride_w;
    int dil_h;
    int dil_w;
    int pad_top;
    int pad_left;
} mcuc_window_t;

#endif /* MCUC_PARAMS_H */
