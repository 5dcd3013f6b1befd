/* mcuc_svdf.h: tflite-micro's integer SVDF (svdf_common.cc, EvalIntegerSvdfReference) over a
 * state kept between invocations (int16 or int8, the time weights' type).
 *
 * Per invocation: the state moves left by one element; each filter's feature sum, through
 * MultiplyByQuantizedMultiplier(scale_1), clamped to the state's type, plus the state's zero
 * point, becomes the filter's newest state element; each filter's time sum goes to `times`
 * (p->filters int32 of scratch); each unit adds its rank's time sums to its bias, and the
 * output stage (scale_2, zero point, int8 clamp) writes it. The int32 sums wrap, as
 * tflite-micro's compiled loops do: they are summed as uint32 here, so no overflow is
 * undefined.
 *
 * The zero points' share of the feature and time sums (the input's and the state's zero
 * point times the row's weight sum) is folded at compile time into per-filter start values,
 * `feature_start` and `time_start` (NULL where all zero): each sum is then a plain dot
 * product (mcuc_dot.h, SMLAD where the core has it). */
#ifndef MCUC_SVDF_H
#define MCUC_SVDF_H

#include "mcuc_dot.h"
#include "mcuc_elementwise.h"

typedef struct {
    int32_t batch, inputs, filters, units, memory, rank;
    int32_t state_zero_point, output_zero_point;
    int32_t multiplier_1, shift_1; /* feature sums to state values */
    int32_t multiplier_2, shift_2; /* unit sums to outputs */
} mcuc_svdf_params_t;

/* The int32 scratch mcuc_svdf_* needs: one time sum per filter. */
MCUC_INLINE int32_t mcuc_svdf_get_buffer_size(const mcuc_svdf_params_t *p) {
    return p->filters * (int32_t)sizeof(int32_t);
}

#define MCUC_SVDF_KERNEL(NAME, T, DOT, T_MIN, T_MAX)                                                       \
    MCUC_INLINE void NAME(const mcuc_svdf_params_t *p, const int8_t *input, const int8_t *weights_feature, \
                          const T *weights_time, const int32_t *bias, const int32_t *feature_start,        \
                          const int32_t *time_start, T *state, int32_t *times, int8_t *output) {           \
        const int32_t row = p->filters * p->memory;                                                        \
        int32_t b, f, k, u;                                                                                \
        mcuc_move_down_bytes((uint8_t *)state, (const uint8_t *)(state + 1),                               \
                             (p->batch * row - 1) * (int32_t)sizeof(T));                                   \
        for (b = 0; b < p->batch; ++b) {                                                                   \
            const int8_t *x = input + b * p->inputs;                                                       \
            T *s = state + b * row;                                                                        \
            for (f = 0; f < p->filters; f += 2) {                                                          \
                const int32_t count = p->filters - f < 2 ? p->filters - f : 2;                             \
                uint32_t sums[2];                                                                          \
                mcuc_dot_rows_s8(weights_feature + f * p->inputs, x, p->inputs, count,                     \
                                 feature_start ? feature_start + f : NULL, sums);                          \
                for (k = 0; k < count; ++k) {                                                              \
                    const int32_t v = mcuc_clamp(mcuc_mbqm((int32_t)sums[k], p->multiplier_1, p->shift_1), \
                                                 T_MIN, T_MAX);                                            \
                    s[(f + k) * p->memory + p->memory - 1] = (T)(v + p->state_zero_point);                 \
                }                                                                                          \
            }                                                                                              \
            for (f = 0; f < p->filters; ++f) {                                                             \
                times[f] = (int32_t)DOT(weights_time + f * p->memory, s + f * p->memory, p->memory,        \
                                        time_start ? (uint32_t)time_start[f] : 0u);                        \
            }                                                                                              \
            for (u = 0; u < p->units; ++u) {                                                               \
                uint32_t acc = (uint32_t)bias[u];                                                          \
                int32_t v;                                                                                 \
                for (k = 0; k < p->rank; ++k) {                                                            \
                    acc += (uint32_t)times[u * p->rank + k];                                               \
                }                                                                                          \
                /* clamped before the zero point is added: int8's clamp of the sum, no overflow */         \
                v = mcuc_clamp(mcuc_mbqm((int32_t)acc, p->multiplier_2, p->shift_2),                       \
                               -128 - p->output_zero_point, 127 - p->output_zero_point);                   \
                output[b * p->units + u] = (int8_t)(v + p->output_zero_point);                             \
            }                                                                                              \
        }                                                                                                  \
    }

/* int16 time weights and state (the converter's choice for int8 SVDF). */
MCUC_SVDF_KERNEL(mcuc_svdf_s8_s16, int16_t, mcuc_dot_s16, -32768, 32767)
/* int8 time weights and state. */
MCUC_SVDF_KERNEL(mcuc_svdf_s8_s8, int8_t, mcuc_dot_s8, -128, 127)

#endif /* MCUC_SVDF_H */
