/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; not a CMSIS-NN function. */

/*
 * nnscons_svdf_state_offset_s8: the s8 SVDF on an int8 state kept at a zero point (TFLite's int8 SVDF state),
 * which arm_svdf_s8 cannot represent: TFLite's reference adds the zero point to each new state value after the
 * clamp and takes it off again in the time sums (facts: ../shared/reference/cmsis-nn-recurrent-facts.md, 3.4).
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

arm_cmsis_nn_status nnscons_svdf_state_offset_s8(const cmsis_nn_context *input_ctx,
                                                 const cmsis_nn_context *output_ctx,
                                                 const cmsis_nn_svdf_params *svdf_params,
                                                 const int32_t state_offset,
                                                 const cmsis_nn_per_tensor_quant_params *input_quant_params,
                                                 const cmsis_nn_per_tensor_quant_params *output_quant_params,
                                                 const cmsis_nn_dims *input_dims,
                                                 const int8_t *input_data,
                                                 const cmsis_nn_dims *state_dims,
                                                 int8_t *state_data,
                                                 const cmsis_nn_dims *weights_feature_dims,
                                                 const int8_t *weights_feature_data,
                                                 const cmsis_nn_dims *weights_time_dims,
                                                 const int8_t *weights_time_data,
                                                 const cmsis_nn_dims *bias_dims,
                                                 const int32_t *bias_data,
                                                 const cmsis_nn_dims *output_dims,
                                                 int8_t *output_data)
{
    const arm_nn_svdf_args args = {input_ctx, output_ctx, svdf_params, input_quant_params, output_quant_params,
                                    input_dims, input_data, weights_feature_dims, weights_feature_data,
                                    weights_time_dims, bias_data, output_data, state_offset};
    (void)state_dims;
    (void)bias_dims;
    (void)output_dims;
    return arm_nn_svdf_s8(&args, state_data, weights_time_data, false);
}
