/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_depthwise_conv_s8: the general s8 depthwise convolution (any channel multiplier, stride, padding,
 * dilation and batch count).
 *
 * With Helium (MVE): arm_nn_depthwise_conv_mve_s8 (blocks of sixteen output channels in vectors, a gather load for
 * the input channel of each when the multiplier is above 1). Otherwise the generic kernel.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

arm_cmsis_nn_status arm_depthwise_conv_s8(const cmsis_nn_context *ctx,
                                          const cmsis_nn_dw_conv_params *dw_conv_params,
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
    (void)ctx;
    (void)bias_dims;
#if NNSCONS_MVE
    return arm_nn_depthwise_conv_mve_s8(ctx, dw_conv_params, quant_params, input_dims, input_data, filter_dims,
                                        filter_data, bias_data, output_dims, output_data);
#else
    return arm_nn_depthwise_conv_generic_s8(dw_conv_params, quant_params, input_dims, input_data, filter_dims,
                                            filter_data, bias_data, output_dims, output_data);
#endif
}
