/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_lstm_unidirectional_s16: the s16 LSTM over a sequence, one arm_nn_lstm_step_s16 per time step. Every call
 * starts from a zero cell state and no recurrent term (TFLite Micro's state after a reset); each step reads the
 * previous step's output rows as its hidden state, so the output is the state too.
 */
#include <string.h>

#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

arm_cmsis_nn_status arm_lstm_unidirectional_s16(const int16_t *input,
                                               int16_t *output,
                                               const cmsis_nn_lstm_params *params,
                                               cmsis_nn_lstm_context *buffers)
{
    const int32_t batches = params->batch_size;
    const int32_t units = params->hidden_size;
    /* rows of one step: batch b at b * batch_offset rows from the step's first */
    const int32_t batch_offset = params->time_major ? 1 : params->time_steps;
    const int32_t in_step = params->time_major ? batches * params->input_size : params->input_size;
    const int32_t out_step = params->time_major ? batches * units : units;
    int32_t t;

    memset(buffers->cell_state, 0, sizeof(int16_t) * (size_t)(batches * units));
    for (t = 0; t < params->time_steps; t++)
    {
        const int16_t *hidden_in = t == 0 ? NULL : output + (t - 1) * out_step;
        arm_nn_lstm_step_s16(input + t * in_step, hidden_in, output + t * out_step, params, buffers, batch_offset);
    }
    return ARM_CMSIS_NN_SUCCESS;
}
