/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_nn_lstm_gate_part_s16: one part of a recurrent gate (input or recurrent weights times int16 data plus the
 * int64 effective bias) requantized to the int16 pre-activation at 2^-12; the s16 LSTM and GRU steps' gate part.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

/* An arm_nn_lstm_gate_part_fn on int16 data: int64 sums, requantized with the 64-bit rule (arm_nn_requantize_s64, the
 * multiplier reduced to 16 bits). */
void arm_nn_lstm_gate_part_s16(const int8_t *weights, const void *bias, const void *x, int32_t cols, int32_t rows,
                               int32_t multiplier, int32_t shift, bool accumulate, int16_t *out)
{
    const int64_t *bias64 = (const int64_t *)bias;
    const int16_t *x16 = (const int16_t *)x;
    const int32_t reduced = arm_nn_reduce_multiplier(multiplier);
    int32_t r;
    for (r = 0; r < rows; r++)
    {
        const int8_t *row = weights + r * cols;
        int64_t sum = bias64[r];
        int32_t c;
        int32_t part;
        for (c = 0; c < cols; c++)
        {
            sum += (int32_t)row[c] * x16[c];
        }
        part = arm_nn_requantize_s64(sum, reduced, shift);
        out[r] = arm_nn_sat_s16(accumulate ? part + out[r] : part);
    }
}
