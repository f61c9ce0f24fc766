/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_nn_lstm_step_s16: one time step of the s16 LSTM ("int16x8_16": int16 data at zero point 0, int8 weights,
 * int64 effective biases, int16 cell state) for every batch: arm_nn_lstm_step with the int16 gate part below, whose
 * sums are int64 and requantized with the 64-bit rule (arm_nn_requantize_s64, the multiplier reduced to 16 bits).
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

/* An arm_nn_lstm_gate_part_fn on int16 data. */
static void gate_part_s16(const int8_t *weights, const void *bias, const void *x, int32_t cols, int32_t rows,
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

arm_cmsis_nn_status arm_nn_lstm_step_s16(const int16_t *data_in,
                                         const int16_t *hidden_in,
                                         int16_t *hidden_out,
                                         const cmsis_nn_lstm_params *params,
                                         cmsis_nn_lstm_context *buffers,
                                         const int32_t batch_offset)
{
    const arm_nn_lstm_step_args args = {gate_part_s16, 2, data_in, hidden_in, hidden_out, params, buffers,
                                        batch_offset};
    return arm_nn_lstm_step(&args);
}
