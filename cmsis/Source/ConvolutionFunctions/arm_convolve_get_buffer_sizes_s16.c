/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * Scratch buffer sizes of the s16 convolutions, in bytes (see arm_convolve_get_buffer_sizes_s8.c for why a
 * library that needs no scratch returns non-zero sizes). Arm's s16 convolution keeps two int16 im2col columns;
 * the MVE figure (four columns padded to whole 8-lane vectors) is an upper bound.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

int32_t arm_nn_convolve_wrapper_s16_buffer_size(arm_nn_feature_set features,
                                                const cmsis_nn_dims *input_dims,
                                                const cmsis_nn_dims *filter_dims)
{
    const int32_t columns = input_dims->c * filter_dims->w * filter_dims->h;

    if (features == ARM_NN_FEATURES_MVE)
    {
        return 4 * arm_nn_align(columns, 8) * (int32_t)sizeof(int16_t);
    }
    return 2 * columns * (int32_t)sizeof(int16_t);
}

int32_t arm_convolve_s16_get_buffer_size(const cmsis_nn_dims *input_dims, const cmsis_nn_dims *filter_dims)
{
    return arm_nn_convolve_wrapper_s16_buffer_size(ARM_NN_FEATURES_PURE_C, input_dims, filter_dims);
}

int32_t arm_convolve_wrapper_s16_get_buffer_size(const cmsis_nn_conv_params *conv_params,
                                                 const cmsis_nn_dims *input_dims,
                                                 const cmsis_nn_dims *filter_dims,
                                                 const cmsis_nn_dims *output_dims)
{
    (void)conv_params;
    (void)output_dims;
    return arm_nn_convolve_wrapper_s16_buffer_size(ARM_NN_FEATURES_PURE_C, input_dims, filter_dims);
}

int32_t arm_convolve_wrapper_s16_get_buffer_size_dsp(const cmsis_nn_conv_params *conv_params,
                                                     const cmsis_nn_dims *input_dims,
                                                     const cmsis_nn_dims *filter_dims,
                                                     const cmsis_nn_dims *output_dims)
{
    (void)conv_params;
    (void)output_dims;
    return arm_nn_convolve_wrapper_s16_buffer_size(ARM_NN_FEATURES_DSP, input_dims, filter_dims);
}

int32_t arm_convolve_wrapper_s16_get_buffer_size_mve(const cmsis_nn_conv_params *conv_params,
                                                     const cmsis_nn_dims *input_dims,
                                                     const cmsis_nn_dims *filter_dims,
                                                     const cmsis_nn_dims *output_dims)
{
    (void)conv_params;
    (void)output_dims;
    return arm_nn_convolve_wrapper_s16_buffer_size(ARM_NN_FEATURES_MVE, input_dims, filter_dims);
}
