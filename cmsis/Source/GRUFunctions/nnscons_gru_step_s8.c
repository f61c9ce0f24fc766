/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * nnscons_gru_step_s8: nnscons' own (CMSIS-NN has no GRU): one GRU time step for every batch
 * (int8 data, int32 effective biases):
 * nnscons_gru_step with the s8 gate part (arm_nn_lstm_gate_part_s8).
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

arm_cmsis_nn_status nnscons_gru_step_s8(const int8_t *data_in,
                                        const int8_t *hidden_in,
                                        int8_t *hidden_out,
                                        const nnscons_gru_params *params,
                                        nnscons_gru_context *buffers,
                                        const int32_t batch_offset)
{
    const nnscons_gru_step_args args = {arm_nn_lstm_gate_part_s8, 1, data_in, hidden_in, hidden_out, params,
                                         buffers, batch_offset};
    return nnscons_gru_step(&args);
}
