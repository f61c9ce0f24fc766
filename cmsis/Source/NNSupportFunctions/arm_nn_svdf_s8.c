/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_nn_svdf_s8: what arm_svdf_s8 (int8 state and time weights) and arm_svdf_state_s16_s8 (int16) compute, the
 * state's type being the only difference. The whole state [B][F][M] moves one value towards its start (each
 * filter's oldest value leaves; the next filter's oldest lands in its newest slot and is overwritten), the new
 * feature values (feature weights times the input less its zero point, requantized to the state's scale, clamped
 * to input_activation, then cast to the state's type) go to the newest slots, each filter's time sum is its time
 * weights times its M state values (less the state's zero point: 0 but in nnscons_svdf_state_offset_s8), and
 * each output the sum of rank filters' time sums plus the bias, requantized, offset and clamped to
 * output_activation.
 */
#include <string.h>

#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

/* one state value or time weight of either type */
static int32_t value_at(const void *data, bool wide, int32_t index)
{
    return wide ? ((const int16_t *)data)[index] : ((const int8_t *)data)[index];
}

static void store_at(void *data, bool wide, int32_t index, int32_t value)
{
    if (wide)
    {
        ((int16_t *)data)[index] = (int16_t)value;
    }
    else
    {
        ((int8_t *)data)[index] = (int8_t)value;
    }
}

static void outputs_s8(const int32_t *time_sums, const int32_t *bias, int32_t batches, int32_t filters,
                       const cmsis_nn_svdf_params *params, const cmsis_nn_per_tensor_quant_params *quant,
                       int8_t *output)
{
    const int32_t units = filters / params->rank;
    int32_t b;
    for (b = 0; b < batches; b++)
    {
        int32_t u;
        for (u = 0; u < units; u++)
        {
            int32_t sum = bias != NULL ? bias[u] : 0;
            int32_t k;
            for (k = 0; k < params->rank; k++)
            {
                sum += time_sums[b * filters + u * params->rank + k];
            }
            sum = arm_nn_requantize(sum, quant->multiplier, quant->shift) + params->output_offset;
            output[b * units + u] = (int8_t)arm_nn_clamp_i32(sum, params->output_activation.min,
                                                             params->output_activation.max);
        }
    }
}

arm_cmsis_nn_status arm_nn_svdf_s8(const arm_nn_svdf_args *args, void *state, const void *time_weights, bool wide)
{
    const cmsis_nn_svdf_params *params = args->params;
    const int32_t batches = args->input_dims->n;
    const int32_t inputs = args->input_dims->h;
    const int32_t filters = args->feature_dims->n;
    const int32_t memory = args->time_dims->h;
    const size_t size = wide ? sizeof(int16_t) : sizeof(int8_t);
    int32_t *const sums = (int32_t *)(args->input_ctx != NULL ? args->input_ctx->buf : NULL);
    int32_t k;
    if (sums == NULL || args->output_ctx == NULL || args->output_ctx->buf == NULL)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    memmove(state, (int8_t *)state + size, size * (size_t)(batches * filters * memory - 1));
    for (k = 0; k < batches * filters; k++)
    {
        const int32_t b = k / filters;
        const int32_t f = k % filters;
        const int32_t acc = arm_nn_dot_s8(args->input + b * inputs, args->feature_weights + f * inputs, inputs,
                                          -params->input_offset);
        const int32_t feature = arm_nn_clamp_i32(arm_nn_requantize(acc, args->input_quant->multiplier,
                                                                   args->input_quant->shift),
                                                 params->input_activation.min, params->input_activation.max);
        int32_t m;
        int32_t sum = 0;
        store_at(state, wide, k * memory + memory - 1, feature + args->state_offset);
        for (m = 0; m < memory; m++)
        {
            sum += value_at(time_weights, wide, f * memory + m) *
                   (value_at(state, wide, k * memory + m) - args->state_offset);
        }
        sums[k] = sum;
    }
    outputs_s8(sums, args->bias, batches, filters, params, args->output_quant, args->output);
    return ARM_CMSIS_NN_SUCCESS;
}
