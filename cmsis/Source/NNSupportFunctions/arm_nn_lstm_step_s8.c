/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_nn_lstm_step_s8: one time step of the s8 LSTM ("int8x8_16": int8 data, int32 effective biases) for every
 * batch: arm_nn_lstm_step with the int8 gate part (arm_nn_lstm_gate_part_s8).
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

arm_cmsis_nn_status arm_nn_lstm_step_s8(const int8_t *data_in,
                                        const int8_t *hidden_in,
                                        int8_t *hidden_out,
                                        const cmsis_nn_lstm_params *params,
                                        cmsis_nn_lstm_context *buffers,
                                        const int32_t batch_offset)
{
    const arm_nn_lstm_step_args args = {arm_nn_lstm_gate_part_s8, 1, data_in, hidden_in, hidden_out, params, buffers,
                                        batch_offset};
    return arm_nn_lstm_step(&args);
}
