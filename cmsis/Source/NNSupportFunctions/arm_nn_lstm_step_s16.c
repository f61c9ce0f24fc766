/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_nn_lstm_step_s16: one time step of the s16 LSTM ("int16x8_16": int16 data at zero point 0, int8 weights,
 * int64 effective biases, int16 cell state) for every batch: arm_nn_lstm_step with the int16 gate part
 * (arm_nn_lstm_gate_part_s16).
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

arm_cmsis_nn_status arm_nn_lstm_step_s16(const int16_t *data_in,
                                         const int16_t *hidden_in,
                                         int16_t *hidden_out,
                                         const cmsis_nn_lstm_params *params,
                                         cmsis_nn_lstm_context *buffers,
                                         const int32_t batch_offset)
{
    const arm_nn_lstm_step_args args = {arm_nn_lstm_gate_part_s16, 2, data_in, hidden_in, hidden_out, params,
                                        buffers, batch_offset};
    return arm_nn_lstm_step(&args);
}
