/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_nn_lstm_step: one LSTM time step for every batch, shared by the s8 and s16 steps, in the facts' order
 * (../shared/reference/cmsis-nn-recurrent-facts.md 2.4). Each gate's pre-activation is int16 at scale 2^-12: the
 * input part (the caller's gate-part function: weights times the raw input plus the effective bias, requantized,
 * saturated) plus, after the first step, the recurrent part (the same for the previous hidden state, not saturated
 * on its own before it is added), saturated; then sigmoid (forget, input, output) or tanh (cell) to Q0.15. The
 * forget gate scales the cell state, the input and cell gates add their product to it (clipped), and the output
 * gate times tanh of the cell state, requantized with the hidden state's zero point, is the new hidden state.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#define GATE_SCALE_POWER 12      /* gate pre-activations are Q3.12: tanh of the cell state shifts by the difference */

/* The gate for every batch into out[b * hidden_size + r]. */
static void gate(const cmsis_nn_lstm_gate *g, const arm_nn_lstm_step_args *args, int16_t *out)
{
    const cmsis_nn_lstm_params *params = args->params;
    const int32_t units = params->hidden_size;
    const int32_t row_bytes_in = args->batch_offset * params->input_size * args->data_bytes;
    const int32_t row_bytes_hidden = args->batch_offset * units * args->data_bytes;
    int32_t b;
    for (b = 0; b < params->batch_size; b++)
    {
        int16_t *const gate_out = out + b * units;
        args->part((const int8_t *)g->input_weights, g->input_effective_bias,
                   (const char *)args->data_in + b * row_bytes_in, params->input_size, units, g->input_multiplier,
                   g->input_shift, false, gate_out);
        if (args->hidden_in != NULL)
        {
            args->part((const int8_t *)g->hidden_weights, g->hidden_effective_bias,
                       (const char *)args->hidden_in + b * row_bytes_hidden, units, units, g->hidden_multiplier,
                       g->hidden_shift, true, gate_out);
        }
    }
    arm_nn_activation_s16(out, out, params->batch_size * units, 0, g->activation_type);
}

arm_cmsis_nn_status arm_nn_lstm_step(const arm_nn_lstm_step_args *args)
{
    const cmsis_nn_lstm_params *params = args->params;
    const int32_t units = params->hidden_size;
    const int32_t count = params->batch_size * units;
    const int32_t clip_hi = params->cell_clip > 0 ? params->cell_clip : INT16_MAX;
    const int32_t clip_lo = params->cell_clip > 0 ? -params->cell_clip : INT16_MIN;
    int16_t *temp1 = (int16_t *)args->buffers->temp1;
    int16_t *temp2 = (int16_t *)args->buffers->temp2;
    int16_t *cell = (int16_t *)args->buffers->cell_state;
    int32_t b;
    int32_t k;

    gate(&params->forget_gate, args, temp1);
    for (k = 0; k < count; k++)
    {
        cell[k] = arm_nn_sat_s16(arm_nn_requantize((int32_t)temp1[k] * cell[k], params->forget_to_cell_multiplier,
                                                   params->forget_to_cell_shift));
    }
    gate(&params->input_gate, args, temp1);
    gate(&params->cell_gate, args, temp2);
    for (k = 0; k < count; k++)
    {
        const int32_t v = arm_nn_requantize((int32_t)temp1[k] * temp2[k], params->input_to_cell_multiplier,
                                            params->input_to_cell_shift) + cell[k];
        cell[k] = (int16_t)arm_nn_clamp_i32(v, clip_lo, clip_hi);
    }
    gate(&params->output_gate, args, temp1);
    arm_nn_activation_s16(cell, temp2, count, params->cell_scale_power + GATE_SCALE_POWER, ARM_TANH);
    for (b = 0; b < params->batch_size; b++)
    {
        /* batch b's hidden state, batch_offset rows after batch b - 1's */
        const int16_t *output_gate = temp1 + b * units;
        const int16_t *cell_tanh = temp2 + b * units;
        const int32_t at = b * args->batch_offset * units;
        for (k = 0; k < units; k++)
        {
            const int32_t v = arm_nn_requantize((int32_t)output_gate[k] * cell_tanh[k], params->output_multiplier,
                                                params->output_shift) + params->output_offset;
            if (args->data_bytes == 1)
            {
                ((int8_t *)args->hidden_out)[at + k] = arm_nn_sat_s8(v);
            }
            else
            {
                ((int16_t *)args->hidden_out)[at + k] = arm_nn_sat_s16(v);
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}
