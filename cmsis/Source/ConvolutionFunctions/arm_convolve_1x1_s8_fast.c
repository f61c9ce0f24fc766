/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_convolve_1x1_s8_fast: 1x1 kernel, stride 1, no padding: a matrix product of the [pixels][C_IN] input with
 * the [C_OUT][C_IN] filter. Needs no scratch buffer.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

arm_cmsis_nn_status arm_convolve_1x1_s8_fast(const cmsis_nn_context *ctx,
                                             const cmsis_nn_conv_params *conv_params,
                                             const cmsis_nn_per_channel_quant_params *quant_params,
                                             const cmsis_nn_dims *input_dims,
                                             const int8_t *input_data,
                                             const cmsis_nn_dims *filter_dims,
                                             const int8_t *filter_data,
                                             const cmsis_nn_dims *bias_dims,
                                             const int32_t *bias_data,
                                             const cmsis_nn_dims *output_dims,
                                             int8_t *output_data)
{
    (void)bias_dims;
    if (conv_params->padding.w != 0 || conv_params->padding.h != 0 || conv_params->stride.w != 1 ||
        conv_params->stride.h != 1 || filter_dims->w != 1 || filter_dims->h != 1)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    return arm_nn_conv_generic_s8(
        arm_nn_conv_1x1_column(ctx, input_dims),
        conv_params, quant_params, input_dims, input_data, filter_dims, filter_data, bias_data, output_dims, output_data);
}
