/* mcuc_lstm.h: tflite-micro's integer UNIDIRECTIONAL_SEQUENCE_LSTM (lstm_eval.h LstmStep:
 * int8 activations with int32 biases, or 16x8: int16 activations with int64 biases; int8
 * weights, an int16 cell state), over the hidden and cell states kept between invocations.
 *
 * Per batch and time step: each gate (input, forget, cell, output) is the int16-saturated
 * sum of its input product (with its bias) and its hidden-state product, each rescaled
 * and clamped to int16, through the int16 sigmoid (tanh for the cell gate) of
 * mcuc_sigmoid_s16 at Q3.12 in; then per unit cell = sat16(forget x cell + input x cell
 * gate), clipped; hidden = tanh(cell) x output gate, to int8 with the hidden zero point;
 * the step's output is the hidden state. The int32 sums are summed as uint32 (they wrap,
 * as tflite-micro's compiled loops do, and no overflow is undefined).
 *
 * The zero points' share of each product, offset x the row's weight sum, is folded at
 * compile time into the per-unit start values `input_biases` (with the bias) and
 * `recurrent_biases` (NULL where all zero), as tflite-micro folds them into its effective
 * biases: the rows are then plain dot products (mcuc_dot.h, SMLAD where the core has it). */
#ifndef MCUC_LSTM_H
#define MCUC_LSTM_H

#include "mcuc_dot.h"
#include "mcuc_elementwise.h"
#include "mcuc_fixedpoint.h"

/* A MultiplyByQuantizedMultiplier: TFLite's Q31 (multiplier, shift), or for the 16x8
 * products the int64 form's (15-bit multiplier, 15 - shift) of mcuc_mbqm64. */
typedef struct {
    int32_t multiplier, shift;
} mcuc_rescale_t;

typedef struct {
    int32_t batch, time, inputs, units;
    int32_t time_major;
    int32_t hidden_zero_point;
    mcuc_rescale_t input_fc[4], recurrent_fc[4]; /* per gate: input, forget, cell, output */
    mcuc_rescale_t forget_cell, input_cell, hidden;
    int32_t cell_tanh_multiplier, cell_tanh_shift;
    int32_t cell_clip; /* 0: none */
} mcuc_lstm_params_t;

/* Bytes of the int16 scratch mcuc_lstm_s8/s16 need: the four gates of one step. */
MCUC_INLINE int32_t mcuc_lstm_get_buffer_size(const mcuc_lstm_params_t *p) {
    return 4 * p->units * (int32_t)sizeof(int16_t);
}

/* MulElementwise of two symmetric int16 values to [lo, hi] around zero_point (clamped
 * before the zero point is added: the clamp of the sum, with no overflow). */
MCUC_INLINE int32_t mcuc_lstm_mul(int32_t a, int32_t b, mcuc_rescale_t r, int32_t zero_point, int32_t lo,
                                  int32_t hi) {
    return mcuc_clamp(mcuc_mbqm(a * b, r.multiplier, r.shift), lo - zero_point, hi - zero_point) + zero_point;
}

/* The gate products of `count` (1 or 2) consecutive units, whose rows of `n` weights start
 * at `w`: start + row . x as uint32 (wrapping; `start` NULL: 0), MultiplyByQuantizedMultiplier,
 * the int16 clamp. */
MCUC_INLINE void mcuc_lstm_gates_s8(const int8_t *w, const int8_t *x, int32_t n, int32_t count, const int32_t *start,
                                    mcuc_rescale_t r, int32_t out[2]) {
    uint32_t sums[2];
    int32_t i;
    mcuc_dot_rows_s8(w, x, n, count, start, sums);
    for (i = 0; i < count; ++i) {
        out[i] = mcuc_clamp(mcuc_mbqm((int32_t)sums[i], r.multiplier, r.shift), -32768, 32767);
    }
}

/* The 16x8 form: int64 sums from the int64 biases (zero points 0), TFLite's int64
 * MultiplyByQuantizedMultiplier (`r` holds mcuc_mbqm64's reduced multiplier and total
 * shift), the int16 clamp. */
MCUC_INLINE void mcuc_lstm_gates_s16(const int8_t *w, const int16_t *x, int32_t n, int32_t count,
                                     const int64_t *start, mcuc_rescale_t r, int32_t out[2]) {
    int32_t i;
    for (i = 0; i < count; ++i) {
        const int64_t sum = mcuc_dot_s8_s16(w + i * n, x, n, start ? start[i] : 0);
        out[i] = mcuc_clamp(mcuc_mbqm64(sum, r.multiplier, r.shift), -32768, 32767);
    }
}

/* mcuc_lstm_s8 (int8 activations, int32 biases) and mcuc_lstm_s16 (16x8: int16 activations,
 * int64 biases): the same step around their gate products. */
#define MCUC_LSTM_KERNEL(NAME, T, BIAS_T, GATES, T_MIN, T_MAX)                                                 \
    MCUC_INLINE void NAME(const mcuc_lstm_params_t *p, const T *input, const int8_t *const input_weights[4],   \
                          const int8_t *const recurrent_weights[4], const BIAS_T *const input_biases[4],       \
                          const BIAS_T *const recurrent_biases[4], T *hidden_state, int16_t *cell_state,       \
                          int16_t *gates, T *output, const uint16_t *sigmoid_table) {                          \
        const int32_t units = p->units;                                                                        \
        int32_t b, t, g, u;                                                                                    \
        for (b = 0; b < p->batch; ++b) {                                                                       \
            T *hidden = hidden_state + b * units;                                                              \
            int16_t *cell = cell_state + b * units;                                                            \
            for (t = 0; t < p->time; ++t) {                                                                    \
                const int32_t step = p->time_major ? t * p->batch + b : b * p->time + t;                       \
                const T *x = input + step * p->inputs;                                                         \
                for (g = 0; g < 4; ++g) {                                                                      \
                    int16_t *gate = gates + g * units;                                                         \
                    for (u = 0; u < units; u += 2) {                                                           \
                        const int32_t count = units - u < 2 ? units - u : 2;                                   \
                        const BIAS_T *rec_start = recurrent_biases[g] ? recurrent_biases[g] + u : NULL;        \
                        int32_t from_input[2], from_hidden[2], i;                                              \
                        GATES(input_weights[g] + u * p->inputs, x, p->inputs, count, input_biases[g] + u,      \
                              p->input_fc[g], from_input);                                                     \
                        GATES(recurrent_weights[g] + u * units, hidden, units, count, rec_start,               \
                              p->recurrent_fc[g], from_hidden);                                                \
                        for (i = 0; i < count; ++i) {                                                          \
                            gate[u + i] = (int16_t)mcuc_clamp(from_input[i] + from_hidden[i], -32768, 32767);  \
                        }                                                                                      \
                    }                                                                                          \
                    mcuc_sigmoid_s16(gate, gate, units, 3, 0, g == 2, sigmoid_table);                          \
                }                                                                                              \
                for (u = 0; u < units; ++u) {                                                                  \
                    int32_t c = mcuc_lstm_mul(gates[units + u], cell[u], p->forget_cell, 0, -32768, 32767);    \
                    int16_t squashed;                                                                          \
                    c = mcuc_clamp(c + mcuc_lstm_mul(gates[u], gates[2 * units + u], p->input_cell, 0, -32768, \
                                                     32767),                                                   \
                                   -32768, 32767);                                                             \
                    if (p->cell_clip) {                                                                        \
                        c = mcuc_clamp(c, -p->cell_clip, p->cell_clip);                                        \
                    }                                                                                          \
                    cell[u] = (int16_t)c;                                                                      \
                    mcuc_sigmoid_s16(&cell[u], &squashed, 1, p->cell_tanh_multiplier, p->cell_tanh_shift, 1,   \
                                     sigmoid_table);                                                           \
                    hidden[u] = (T)mcuc_lstm_mul(squashed, gates[3 * units + u], p->hidden,                    \
                                                 p->hidden_zero_point, T_MIN, T_MAX);                          \
                    output[step * units + u] = hidden[u];                                                      \
                }                                                                                              \
            }                                                                                                  \
        }                                                                                                      \
    }

MCUC_LSTM_KERNEL(mcuc_lstm_s8, int8_t, int32_t, mcuc_lstm_gates_s8, -128, 127)
MCUC_LSTM_KERNEL(mcuc_lstm_s16, int16_t, int64_t, mcuc_lstm_gates_s16, -32768, 32767)

#endif /* MCUC_LSTM_H */
