/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * Scratch buffer sizes of the s16 depthwise convolutions, in bytes. Arm's DSP/MVE builds use a faster kernel
 * with an im2col buffer for channel multiplier 1 without dilation and fewer than DW_S16_FAST_MAX_TAPS kernel
 * taps; the generic kernel (and this library) needs
 * none. The MVE figure (four columns plus 8 bytes of over-read) is an upper bound.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

/** Arm's fast s16 depthwise kernel handles kernels with fewer taps (KH * KW) than this. */
#define DW_S16_FAST_MAX_TAPS 512

int32_t arm_nn_depthwise_conv_wrapper_s16_buffer_size(arm_nn_feature_set features,
                                                      const cmsis_nn_dw_conv_params *dw_conv_params,
                                                      const cmsis_nn_dims *input_dims,
                                                      const cmsis_nn_dims *filter_dims)
{
    const int32_t column = input_dims->c * filter_dims->w * filter_dims->h * (int32_t)sizeof(int16_t);
    const bool fast_path =
        dw_conv_params->ch_mult == 1 && dw_conv_params->dilation.w == 1 && dw_conv_params->dilation.h == 1 &&
        filter_dims->w * filter_dims->h < DW_S16_FAST_MAX_TAPS;

    if (!fast_path)
    {
        return 0;
    }
    switch (features)
    {
    case ARM_NN_FEATURES_DSP:
        return column;
    case ARM_NN_FEATURES_MVE:
        return 4 * column + 8;
    default:
        return 0;
    }
}

int32_t arm_depthwise_conv_wrapper_s16_get_buffer_size(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                       const cmsis_nn_dims *input_dims,
                                                       const cmsis_nn_dims *filter_dims,
                                                       const cmsis_nn_dims *output_dims)
{
    (void)output_dims;
    return arm_nn_depthwise_conv_wrapper_s16_buffer_size(ARM_NN_FEATURES_PURE_C, dw_conv_params, input_dims, filter_dims);
}

int32_t arm_depthwise_conv_wrapper_s16_get_buffer_size_dsp(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                           const cmsis_nn_dims *input_dims,
                                                           const cmsis_nn_dims *filter_dims,
                                                           const cmsis_nn_dims *output_dims)
{
    (void)output_dims;
    return arm_nn_depthwise_conv_wrapper_s16_buffer_size(ARM_NN_FEATURES_DSP, dw_conv_params, input_dims, filter_dims);
}

int32_t arm_depthwise_conv_wrapper_s16_get_buffer_size_mve(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                           const cmsis_nn_dims *input_dims,
                                                           const cmsis_nn_dims *filter_dims,
                                                           const cmsis_nn_dims *output_dims)
{
    (void)output_dims;
    return arm_nn_depthwise_conv_wrapper_s16_buffer_size(ARM_NN_FEATURES_MVE, dw_conv_params, input_dims, filter_dims);
}
