/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_convolve_1_x_n_s8: convolution of a one-row input with a 1xN kernel (any stride and horizontal padding).
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

arm_cmsis_nn_status arm_convolve_1_x_n_s8(const cmsis_nn_context *ctx,
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
    /* Like Arm's kernel, require the scratch buffer (its im2col column). */
    if (ctx == NULL || ctx->buf == NULL)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    if (input_dims->h != 1 || filter_dims->h != 1 || output_dims->h != 1)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
#if NNSCONS_MVE
    /* Helium: the scratch is used only if the size the caller states (if it does) holds the columns */
    return arm_nn_conv_mve_s8((int8_t *)ctx->buf, ctx->size, conv_params, quant_params, input_dims, input_data,
                              filter_dims, filter_data, bias_data, output_dims, output_data);
#else
    return arm_nn_conv_generic_s8(
        (int8_t *)ctx->buf,
        conv_params, quant_params, input_dims, input_data, filter_dims, filter_data, bias_data, output_dims, output_data);
#endif
}
