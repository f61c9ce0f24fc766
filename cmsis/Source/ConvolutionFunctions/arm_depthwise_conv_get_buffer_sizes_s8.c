/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * Scratch buffer sizes of the s8 depthwise convolutions, in bytes (Arm's requirements per feature set; this
 * portable library's depthwise kernels use none).
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

/** Input-channel block of Arm's MVE depthwise kernel. */
#define DW_MVE_CHANNEL_BLOCK 124

static int32_t depthwise_opt_buffer_size(arm_nn_feature_set features,
                                         const cmsis_nn_dims *input_dims,
                                         const cmsis_nn_dims *filter_dims)
{
    switch (features)
    {
    case ARM_NN_FEATURES_DSP:
        return input_dims->c * filter_dims->w * filter_dims->h * (int32_t)sizeof(int16_t);
    case ARM_NN_FEATURES_MVE:
        return 4 * DW_MVE_CHANNEL_BLOCK * filter_dims->w * filter_dims->h;
    default:
        return 0;
    }
}

/**
 * Arm's MVE wrapper turns a depthwise convolution of a single input channel into a regular convolution when
 * the output has more than one channel: that convolution's scratch, followed by the transposed filter
 * (KH * KW * C_OUT bytes) it keeps in the same buffer.
 */
static int32_t depthwise_as_conv_buffer_size(const cmsis_nn_dw_conv_params *dw_conv_params,
                                             const cmsis_nn_dims *input_dims,
                                             const cmsis_nn_dims *filter_dims,
                                             const cmsis_nn_dims *output_dims)
{
    cmsis_nn_conv_params conv_params;
    cmsis_nn_dims conv_filter;

    conv_params.input_offset = dw_conv_params->input_offset;
    conv_params.output_offset = dw_conv_params->output_offset;
    conv_params.stride = dw_conv_params->stride;
    conv_params.padding = dw_conv_params->padding;
    conv_params.dilation = dw_conv_params->dilation;
    conv_params.activation = dw_conv_params->activation;
    conv_filter.n = output_dims->c;
    conv_filter.h = filter_dims->h;
    conv_filter.w = filter_dims->w;
    conv_filter.c = 1;
    return arm_nn_convolve_wrapper_s8_buffer_size(
               ARM_NN_FEATURES_MVE, &conv_params, input_dims, &conv_filter, output_dims) +
        filter_dims->h * filter_dims->w * output_dims->c;
}

int32_t arm_nn_depthwise_conv_wrapper_s8_buffer_size(arm_nn_feature_set features,
                                                     const cmsis_nn_dw_conv_params *dw_conv_params,
                                                     const cmsis_nn_dims *input_dims,
                                                     const cmsis_nn_dims *filter_dims,
                                                     const cmsis_nn_dims *output_dims)
{
    const bool one_to_one = input_dims->c == output_dims->c && input_dims->n == 1 &&
        dw_conv_params->dilation.w == 1 && dw_conv_params->dilation.h == 1;

    int32_t size = 0;

    if (one_to_one && !(features != ARM_NN_FEATURES_MVE && arm_nn_dw_is_3x3(dw_conv_params, filter_dims)))
    {
        size = depthwise_opt_buffer_size(features, input_dims, filter_dims);
    }
    if (features == ARM_NN_FEATURES_MVE && input_dims->c == 1 && output_dims->c > 1)
    {
        const int32_t as_conv = depthwise_as_conv_buffer_size(dw_conv_params, input_dims, filter_dims, output_dims);
        size = as_conv > size ? as_conv : size;
    }
    return size;
}

int32_t arm_depthwise_conv_s8_opt_get_buffer_size(const cmsis_nn_dims *input_dims, const cmsis_nn_dims *filter_dims)
{
    return depthwise_opt_buffer_size(ARM_NN_FEATURES_PURE_C, input_dims, filter_dims);
}

int32_t arm_depthwise_conv_wrapper_s8_get_buffer_size(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                      const cmsis_nn_dims *input_dims,
                                                      const cmsis_nn_dims *filter_dims,
                                                      const cmsis_nn_dims *output_dims)
{
    return arm_nn_depthwise_conv_wrapper_s8_buffer_size(
        ARM_NN_FEATURES_PURE_C, dw_conv_params, input_dims, filter_dims, output_dims);
}

int32_t arm_depthwise_conv_wrapper_s8_get_buffer_size_dsp(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                          const cmsis_nn_dims *input_dims,
                                                          const cmsis_nn_dims *filter_dims,
                                                          const cmsis_nn_dims *output_dims)
{
    return arm_nn_depthwise_conv_wrapper_s8_buffer_size(
        ARM_NN_FEATURES_DSP, dw_conv_params, input_dims, filter_dims, output_dims);
}

int32_t arm_depthwise_conv_wrapper_s8_get_buffer_size_mve(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                          const cmsis_nn_dims *input_dims,
                                                          const cmsis_nn_dims *filter_dims,
                                                          const cmsis_nn_dims *output_dims)
{
    return arm_nn_depthwise_conv_wrapper_s8_buffer_size(
        ARM_NN_FEATURES_MVE, dw_conv_params, input_dims, filter_dims, output_dims);
}
