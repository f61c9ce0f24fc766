/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_nn_lstm_step_s8: one time step of the s8 LSTM for every batch. Each gate's pre-activation is int16 at scale
 * 2^-12: the input part (weights times the raw int8 input plus the effective bias, requantized, saturated) plus,
 * after the first step, the recurrent part (the same for the previous hidden state, requantized, not saturated on
 * its own), saturated; then sigmoid (forget, input, output) or tanh (cell) to Q0.15. In this order: the forget gate
 * scales the cell state, the input and cell gates add their product to it (clipped), the output gate times tanh of
 * the cell state, requantized with the hidden state's zero point, is the new hidden state.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#define GATE_SCALE_POWER 12      /* gate pre-activations are Q3.12: tanh of the cell state shifts by the difference */

static int32_t clamp_s16(int32_t v)
{
    return v < INT16_MIN ? INT16_MIN : (v > INT16_MAX ? INT16_MAX : v);
}

/* Weights row r times x plus bias[r], requantized, saturated to int16 and, with accumulate, added to out[r] and
 * saturated again: the rows two at a time, x read once per pair (arm_nn_dot2_s8, SIMD on the DSP and Helium cores). */
static void gate_part_s8(const int8_t *weights, const int32_t *bias, const int8_t *x, int32_t cols, int32_t rows,
                         int32_t multiplier, int32_t shift, bool accumulate, int16_t *out)
{
    int32_t r = 0;
    while (r < rows)
    {
        int32_t sums[2];
        const int32_t count = rows - r >= 2 ? 2 : 1;
        int32_t k;
        if (count == 2)
        {
            arm_nn_dot2_s8(x, weights + r * cols, weights + (r + 1) * cols, cols, 0, &sums[0], &sums[1]);
        }
        else
        {
            sums[0] = arm_nn_dot_s8(x, weights + r * cols, cols, 0);
        }
        for (k = 0; k < count; k++)
        {
            const int32_t part = arm_nn_requantize(bias[r + k] + sums[k], multiplier, shift);
            out[r + k] = (int16_t)clamp_s16(accumulate ? part + out[r + k] : part);
        }
        r += count;
    }
}

/* The gate for every batch into out[b * hidden_size + r]. */
static void gate_s8(const cmsis_nn_lstm_gate *gate, const cmsis_nn_lstm_params *params, const int8_t *data_in,
                    const int8_t *hidden_in, int32_t batch_offset, int16_t *out)
{
    const int32_t units = params->hidden_size;
    int32_t b;
    for (b = 0; b < params->batch_size; b++)
    {
        int16_t *const gate_out = out + b * units;
        gate_part_s8((const int8_t *)gate->input_weights, (const int32_t *)gate->input_effective_bias,
                     data_in + b * batch_offset * params->input_size, params->input_size, units,
                     gate->input_multiplier, gate->input_shift, false, gate_out);
        if (hidden_in != NULL)
        {
            /* the recurrent part is not saturated on its own before it is added (CMSIS-NN v7's order) */
            gate_part_s8((const int8_t *)gate->hidden_weights, (const int32_t *)gate->hidden_effective_bias,
                         hidden_in + b * batch_offset * units, units, units, gate->hidden_multiplier,
                         gate->hidden_shift, true, gate_out);
        }
    }
    arm_nn_activation_s16(out, out, params->batch_size * units, 0, gate->activation_type);
}

arm_cmsis_nn_status arm_nn_lstm_step_s8(const int8_t *data_in,
                                        const int8_t *hidden_in,
                                        int8_t *hidden_out,
                                        const cmsis_nn_lstm_params *params,
                                        cmsis_nn_lstm_context *buffers,
                                        const int32_t batch_offset)
{
    const int32_t units = params->hidden_size;
    const int32_t count = params->batch_size * units;
    const int32_t clip_hi = params->cell_clip > 0 ? params->cell_clip : INT16_MAX;
    const int32_t clip_lo = params->cell_clip > 0 ? -params->cell_clip : INT16_MIN;
    int16_t *temp1 = (int16_t *)buffers->temp1;
    int16_t *temp2 = (int16_t *)buffers->temp2;
    int16_t *cell = (int16_t *)buffers->cell_state;
    int32_t k;

    gate_s8(&params->forget_gate, params, data_in, hidden_in, batch_offset, temp1);
    for (k = 0; k < count; k++)
    {
        cell[k] = (int16_t)clamp_s16(arm_nn_requantize((int32_t)temp1[k] * cell[k],
                                                       params->forget_to_cell_multiplier,
                                                       params->forget_to_cell_shift));
    }
    gate_s8(&params->input_gate, params, data_in, hidden_in, batch_offset, temp1);
    gate_s8(&params->cell_gate, params, data_in, hidden_in, batch_offset, temp2);
    for (k = 0; k < count; k++)
    {
        const int32_t v = arm_nn_requantize((int32_t)temp1[k] * temp2[k], params->input_to_cell_multiplier,
                                            params->input_to_cell_shift) + cell[k];
        cell[k] = (int16_t)(v < clip_lo ? clip_lo : (v > clip_hi ? clip_hi : v));
    }
    gate_s8(&params->output_gate, params, data_in, hidden_in, batch_offset, temp1);
    arm_nn_activation_s16(cell, temp2, count, params->cell_scale_power + GATE_SCALE_POWER, ARM_TANH);
    for (k = 0; k < count; k++)
    {
        const int32_t b = k / units;
        const int32_t v = arm_nn_requantize((int32_t)temp1[k] * temp2[k], params->output_multiplier,
                                            params->output_shift) + params->output_offset;
        hidden_out[b * batch_offset * units + k % units] = (int8_t)(v < INT8_MIN ? INT8_MIN
                                                                             : (v > INT8_MAX ? INT8_MAX : v));
    }
    return ARM_CMSIS_NN_SUCCESS;
}
