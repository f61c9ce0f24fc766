/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_nn_lstm_gate_part_s8: one part of a recurrent gate (input or recurrent weights times int8 data plus the int32
 * effective bias) requantized to the int16 pre-activation at 2^-12; the s8 LSTM and GRU steps' gate part.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

/* An arm_nn_lstm_gate_part_fn on int8 data: the rows two at a time, x read once per pair (arm_nn_dot2_s8, SIMD on
 * the DSP and Helium cores), each sum requantized with the 32-bit rule. */
void arm_nn_lstm_gate_part_s8(const int8_t *weights, const void *bias, const void *x, int32_t cols, int32_t rows,
                              int32_t multiplier, int32_t shift, bool accumulate, int16_t *out)
{
    const int32_t *bias32 = (const int32_t *)bias;
    const int8_t *x8 = (const int8_t *)x;
    int32_t r = 0;
    while (r < rows)
    {
        int32_t sums[2];
        const int32_t count = rows - r >= 2 ? 2 : 1;
        int32_t k;
        if (count == 2)
        {
            arm_nn_dot2_s8(x8, weights + r * cols, weights + (r + 1) * cols, cols, 0, &sums[0], &sums[1]);
        }
        else
        {
            sums[0] = arm_nn_dot_s8(x8, weights + r * cols, cols, 0);
        }
        for (k = 0; k < count; k++)
        {
            const int32_t part = arm_nn_requantize(bias32[r + k] + sums[k], multiplier, shift);
            out[r + k] = arm_nn_sat_s16(accumulate ? part + out[r + k] : part);
        }
        r += count;
    }
}
