/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_fully_connected_s8: for each of input_dims->n batches, out[o] = clamp(requantize(bias[o] +
 * sum_i (in[i] + input_offset) * (w[o][i] + filter_offset)) + output_offset), with filter_dims->n inputs per
 * batch and output_dims->c outputs; the weights are row-major [C_OUT][C_IN].
 * In this pure-C build ctx->buf is not used (Arm's MVE build expects arm_vector_sum_s8 results there).
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

/** One output: the dot product of one input row with one weight row (arm_nn_dot_s8 when the weights have no
 * offset, as TFLite's int8 weights never do). */
static int32_t fc_dot_s8(const int8_t *input, const int8_t *weights, int32_t depth, int32_t input_offset,
                         int32_t filter_offset)
{
    int32_t acc = 0;
    int32_t i;
    if (filter_offset == 0)
    {
        return arm_nn_dot_s8(input, weights, depth, input_offset);
    }
    for (i = 0; i < depth; i++)
    {
        acc += ((int32_t)input[i] + input_offset) * ((int32_t)weights[i] + filter_offset);
    }
    return acc;
}

/** One output value from its sum: bias, requantization, output offset, activation clamp. */
static int8_t fc_output_s8(int32_t acc, int32_t o, const cmsis_nn_fc_params *fc_params,
                           const cmsis_nn_per_tensor_quant_params *quant_params, const int32_t *bias_data)
{
    return arm_nn_output_s8(acc + (bias_data != NULL ? bias_data[o] : 0), quant_params->multiplier,
                            quant_params->shift, fc_params->output_offset, fc_params->activation.min,
                            fc_params->activation.max);
}

arm_cmsis_nn_status arm_fully_connected_s8(const cmsis_nn_context *ctx,
                                           const cmsis_nn_fc_params *fc_params,
                                           const cmsis_nn_per_tensor_quant_params *quant_params,
                                           const cmsis_nn_dims *input_dims,
                                           const int8_t *input_data,
                                           const cmsis_nn_dims *filter_dims,
                                           const int8_t *filter_data,
                                           const cmsis_nn_dims *bias_dims,
                                           const int32_t *bias_data,
                                           const cmsis_nn_dims *output_dims,
                                           int8_t *output_data)
{
    const int32_t depth = filter_dims->n;
    const int32_t out_c = output_dims->c;
    int32_t b;

    (void)ctx;
    (void)bias_dims;
    for (b = 0; b < input_dims->n; b++)
    {
        int32_t o = 0;
        for (; fc_params->filter_offset == 0 && o + 2 <= out_c; o += 2)      /* two outputs per pass over the input */
        {
            int32_t sums[2];
            int32_t k;
            arm_nn_dot2_s8(input_data, filter_data + o * depth, filter_data + (o + 1) * depth, depth,
                           fc_params->input_offset, &sums[0], &sums[1]);
            for (k = 0; k < 2; k++)
            {
                output_data[o + k] = fc_output_s8(sums[k], o + k, fc_params, quant_params, bias_data);
            }
        }
        for (; o < out_c; o++)
        {
            const int32_t acc = fc_dot_s8(
                input_data, filter_data + o * depth, depth, fc_params->input_offset, fc_params->filter_offset);
            output_data[o] = fc_output_s8(acc, o, fc_params, quant_params, bias_data);
        }
        input_data += depth;
        output_data += out_c;
    }
    return ARM_CMSIS_NN_SUCCESS;
}
