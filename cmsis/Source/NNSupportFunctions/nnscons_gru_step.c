/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * nnscons_gru_step: one GRU time step for every batch (nnscons' own; shared by nnscons_gru_step_s8/_s16), built
 * from the LSTM's pieces as Arm's conversion guide builds a GRU from fully connected layers, sigmoid, tanh and
 * element-wise products. Every gate pre-activation is int16 at 2^-12 (the gate parts of the LSTM), the gates Q0.15
 * after arm_nn_activation_s16:
 *   z = sigmoid(x part + h part), r = sigmoid(x part + h part)
 *   linear_before_reset: n = tanh(x part + r * (h part))   else: n = tanh(x part + (r * h) part)
 *   h' = n + z * (h - n), with h in Q0.15 for the blend (a GRU's state stays within (-1, 1)).
 * A product of a Q0.15 value and a value at any scale is brought back to that scale by a rounding shift of 15
 * (multiplier 2^30, shift -14).
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#define Q15_PRODUCT_MULTIPLIER (1 << 30)  /* with Q15_PRODUCT_SHIFT: times 2^-15 */
#define Q15_PRODUCT_SHIFT (-14)

/* Value k of a row of int8 or int16 data. */
static int32_t load(const void *data, int32_t data_bytes, int32_t k)
{
    return data_bytes == 1 ? ((const int8_t *)data)[k] : ((const int16_t *)data)[k];
}

/* The x part of gate g for every batch into out[b * hidden_size + r], plus (unless hidden is NULL) the recurrent
 * part over hidden rows hidden_stride values apart (before the gate's sigmoid or tanh). */
static void gate(const cmsis_nn_lstm_gate *g, const nnscons_gru_step_args *args, const void *hidden,
                 int32_t hidden_stride, int16_t *out)
{
    const nnscons_gru_params *params = args->params;
    const int32_t units = params->hidden_size;
    int32_t b;
    for (b = 0; b < params->batch_size; b++)
    {
        args->part((const int8_t *)g->input_weights, g->input_effective_bias,
                   (const char *)args->data_in + b * args->batch_offset * params->input_size * args->data_bytes,
                   params->input_size, units, g->input_multiplier, g->input_shift, false, out + b * units);
        if (hidden != NULL)
        {
            args->part((const int8_t *)g->hidden_weights, g->hidden_effective_bias,
                       (const char *)hidden + b * hidden_stride * args->data_bytes, units, units,
                       g->hidden_multiplier, g->hidden_shift, true, out + b * units);
        }
    }
}

/* The recurrent part of gate g alone (no bias from the x side) for every batch. */
static void hidden_part(const cmsis_nn_lstm_gate *g, const nnscons_gru_step_args *args, int16_t *out)
{
    const int32_t units = args->params->hidden_size;
    int32_t b;
    for (b = 0; b < args->params->batch_size; b++)
    {
        args->part((const int8_t *)g->hidden_weights, g->hidden_effective_bias,
                   (const char *)args->hidden_in + b * args->batch_offset * units * args->data_bytes, units, units,
                   g->hidden_multiplier, g->hidden_shift, false, out + b * units);
    }
}

static int32_t q15_product(int32_t q15, int32_t value)
{
    return arm_nn_requantize(q15 * value, Q15_PRODUCT_MULTIPLIER, Q15_PRODUCT_SHIFT);
}

/* r * (h - zero point), back at the hidden state's quantization, into scratch rows of hidden_size values. */
static void reset_hidden(const nnscons_gru_step_args *args, const int16_t *reset, void *scratch)
{
    const nnscons_gru_params *params = args->params;
    const int32_t units = params->hidden_size;
    const int32_t lo = args->data_bytes == 1 ? INT8_MIN : INT16_MIN;
    const int32_t hi = args->data_bytes == 1 ? INT8_MAX : INT16_MAX;
    int32_t b;
    int32_t k;
    for (b = 0; b < params->batch_size; b++)
    {
        const char *h = (const char *)args->hidden_in + b * args->batch_offset * units * args->data_bytes;
        for (k = 0; k < units; k++)
        {
            const int32_t i = b * units + k;
            const int32_t v = arm_nn_clamp_i32(
                q15_product(reset[i], load(h, args->data_bytes, k) - params->hidden_offset) + params->hidden_offset,
                lo, hi);
            if (args->data_bytes == 1)
            {
                ((int8_t *)scratch)[i] = (int8_t)v;
            }
            else
            {
                ((int16_t *)scratch)[i] = (int16_t)v;
            }
        }
    }
}

arm_cmsis_nn_status nnscons_gru_step(const nnscons_gru_step_args *args)
{
    const nnscons_gru_params *params = args->params;
    const int32_t units = params->hidden_size;
    const int32_t count = params->batch_size * units;
    const int32_t lo = args->data_bytes == 1 ? INT8_MIN : INT16_MIN;
    const int32_t hi = args->data_bytes == 1 ? INT8_MAX : INT16_MAX;
    int16_t *update = (int16_t *)args->buffers->update;
    int16_t *reset = (int16_t *)args->buffers->reset;
    int16_t *candidate = (int16_t *)args->buffers->candidate;
    int16_t *scratch = (int16_t *)args->buffers->scratch;
    const int32_t stride = args->batch_offset * units;
    int32_t b;
    int32_t k;

    gate(&params->update_gate, args, args->hidden_in, stride, update);
    arm_nn_activation_s16(update, update, count, 0, ARM_SIGMOID);
    gate(&params->reset_gate, args, args->hidden_in, stride, reset);
    arm_nn_activation_s16(reset, reset, count, 0, ARM_SIGMOID);
    if (params->linear_before_reset)
    {
        hidden_part(&params->candidate_gate, args, scratch);
        gate(&params->candidate_gate, args, NULL, 0, candidate);
        for (k = 0; k < count; k++)
        {
            candidate[k] = arm_nn_sat_s16(candidate[k] + q15_product(reset[k], scratch[k]));
        }
    }
    else
    {
        reset_hidden(args, reset, scratch);
        gate(&params->candidate_gate, args, scratch, units, candidate);
    }
    arm_nn_activation_s16(candidate, candidate, count, 0, ARM_TANH);
    for (b = 0; b < params->batch_size; b++)
    {
        const char *h = (const char *)args->hidden_in + b * stride * args->data_bytes;
        for (k = 0; k < units; k++)
        {
            const int32_t i = b * units + k;
            const int32_t h15 = arm_nn_sat_s16(arm_nn_requantize(load(h, args->data_bytes, k) - params->hidden_offset,
                                                                 params->to_q15_multiplier, params->to_q15_shift));
            const int32_t blend = candidate[i] + q15_product(update[i], h15 - candidate[i]);
            const int32_t v = arm_nn_clamp_i32(arm_nn_requantize(blend, params->from_q15_multiplier,
                                                                 params->from_q15_shift) + params->hidden_offset,
                                               lo, hi);
            if (args->data_bytes == 1)
            {
                ((int8_t *)args->hidden_out)[b * stride + k] = (int8_t)v;
            }
            else
            {
                ((int16_t *)args->hidden_out)[b * stride + k] = (int16_t)v;
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}
