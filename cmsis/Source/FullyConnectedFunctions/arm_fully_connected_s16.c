/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_fully_connected_s16: int16 activations, int8 weights [C_OUT][C_IN], int64 bias; sums are 64-bit and
 * requantized with the reduced 16-bit multiplier. Zero points are 0, so the offsets are not used.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

/** One output: the 64-bit dot product of one input row with one weight row. */
static int64_t fc_dot_s16(const int16_t *input, const int8_t *weights, int32_t depth)
{
    int64_t acc = 0;
    int32_t i;
    for (i = 0; i < depth; i++)
    {
        acc += (int64_t)((int32_t)input[i] * (int32_t)weights[i]);
    }
    return acc;
}

arm_cmsis_nn_status arm_fully_connected_s16(const cmsis_nn_context *ctx,
                                            const cmsis_nn_fc_params *fc_params,
                                            const cmsis_nn_per_tensor_quant_params *quant_params,
                                            const cmsis_nn_dims *input_dims,
                                            const int16_t *input_data,
                                            const cmsis_nn_dims *filter_dims,
                                            const int8_t *filter_data,
                                            const cmsis_nn_dims *bias_dims,
                                            const int64_t *bias_data,
                                            const cmsis_nn_dims *output_dims,
                                            int16_t *output_data)
{
    const int32_t depth = filter_dims->n;
    const int32_t out_c = output_dims->c;
    const int32_t reduced_multiplier = arm_nn_reduce_multiplier(quant_params->multiplier);
    int32_t b;

    (void)ctx;
    (void)bias_dims;
    for (b = 0; b < input_dims->n; b++)
    {
        int32_t o;
        for (o = 0; o < out_c; o++)
        {
            int64_t acc = fc_dot_s16(input_data, filter_data + o * depth, depth);
            int32_t result;
            if (bias_data != NULL)
            {
                acc += bias_data[o];
            }
            result = arm_nn_requantize_s64(acc, reduced_multiplier, quant_params->shift);
            output_data[o] = (int16_t)arm_nn_clamp_i32(result, fc_params->activation.min, fc_params->activation.max);
        }
        input_data += depth;
        output_data += out_c;
    }
    return ARM_CMSIS_NN_SUCCESS;
}
