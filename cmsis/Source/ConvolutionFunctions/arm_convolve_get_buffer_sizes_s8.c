/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * Scratch buffer sizes of the s8 convolutions, in bytes.
 *
 * This portable library needs no scratch memory at all, but the plain getters return what Arm's pure-C build
 * needs, and the _dsp/_mve getters what Arm's DSP and MVE builds need, so that generated code sized with these
 * functions is also correct against Arm's library on any Cortex-M.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

int32_t arm_nn_convolve_s8_buffer_size(arm_nn_feature_set features,
                                       const cmsis_nn_dims *input_dims,
                                       const cmsis_nn_dims *filter_dims)
{
    const int32_t columns = input_dims->c * filter_dims->w * filter_dims->h;

    if (features == ARM_NN_FEATURES_MVE)
    {
        return 4 * arm_nn_align(columns, 16);
    }
    /* Two im2col columns of int16 values, each padded to a multiple of four. */
    return 2 * arm_nn_align(columns, 4) * (int32_t)sizeof(int16_t);
}

/** arm_convolve_1x1_s8_fast: none, except Arm's DSP build compiled with armclang (two int16 columns). */
static int32_t convolve_1x1_fast_buffer_size(arm_nn_feature_set features, const cmsis_nn_dims *input_dims)
{
    /* The DSP figure covers armclang; with GCC that build needs 0, so this only over-allocates a little. */
    return features == ARM_NN_FEATURES_DSP ? 2 * input_dims->c * (int32_t)sizeof(int16_t) : 0;
}

/** arm_convolve_1_x_n_s8: as arm_convolve_s8 (for MVE, Arm uses its own formula, bounded by this one). */
static int32_t convolve_1_x_n_buffer_size(arm_nn_feature_set features,
                                          const cmsis_nn_dims *input_dims,
                                          const cmsis_nn_dims *filter_dims)
{
    return arm_nn_convolve_s8_buffer_size(features, input_dims, filter_dims);
}

int32_t arm_nn_convolve_wrapper_s8_buffer_size(arm_nn_feature_set features,
                                               const cmsis_nn_conv_params *conv_params,
                                               const cmsis_nn_dims *input_dims,
                                               const cmsis_nn_dims *filter_dims,
                                               const cmsis_nn_dims *output_dims)
{
    (void)output_dims;
    if (arm_nn_conv_is_1x1(conv_params, input_dims, filter_dims))
    {
        const bool unit_stride = conv_params->stride.w == 1 && conv_params->stride.h == 1;
        return unit_stride ? convolve_1x1_fast_buffer_size(features, input_dims) : 0;
    }
    if (arm_nn_conv_is_1_x_n(conv_params, input_dims, filter_dims))
    {
        return convolve_1_x_n_buffer_size(features, input_dims, filter_dims);
    }
    return arm_nn_convolve_s8_buffer_size(features, input_dims, filter_dims);
}

int32_t arm_convolve_s8_get_buffer_size(const cmsis_nn_dims *input_dims, const cmsis_nn_dims *filter_dims)
{
    return arm_nn_convolve_s8_buffer_size(ARM_NN_FEATURES_PURE_C, input_dims, filter_dims);
}

int32_t arm_convolve_1x1_s8_fast_get_buffer_size(const cmsis_nn_dims *input_dims)
{
    return convolve_1x1_fast_buffer_size(ARM_NN_FEATURES_PURE_C, input_dims);
}

int32_t arm_convolve_1_x_n_s8_get_buffer_size(const cmsis_nn_conv_params *conv_params,
                                              const cmsis_nn_dims *input_dims,
                                              const cmsis_nn_dims *filter_dims,
                                              const cmsis_nn_dims *output_dims)
{
    (void)conv_params;
    (void)output_dims;
    return convolve_1_x_n_buffer_size(ARM_NN_FEATURES_PURE_C, input_dims, filter_dims);
}

int32_t arm_convolve_wrapper_s8_get_buffer_size(const cmsis_nn_conv_params *conv_params,
                                                const cmsis_nn_dims *input_dims,
                                                const cmsis_nn_dims *filter_dims,
                                                const cmsis_nn_dims *output_dims)
{
    return arm_nn_convolve_wrapper_s8_buffer_size(
        ARM_NN_FEATURES_PURE_C, conv_params, input_dims, filter_dims, output_dims);
}

int32_t arm_convolve_wrapper_s8_get_buffer_size_dsp(const cmsis_nn_conv_params *conv_params,
                                                    const cmsis_nn_dims *input_dims,
                                                    const cmsis_nn_dims *filter_dims,
                                                    const cmsis_nn_dims *output_dims)
{
    return arm_nn_convolve_wrapper_s8_buffer_size(ARM_NN_FEATURES_DSP, conv_params, input_dims, filter_dims, output_dims);
}

int32_t arm_convolve_wrapper_s8_get_buffer_size_mve(const cmsis_nn_conv_params *conv_params,
                                                    const cmsis_nn_dims *input_dims,
                                                    const cmsis_nn_dims *filter_dims,
                                                    const cmsis_nn_dims *output_dims)
{
    return arm_nn_convolve_wrapper_s8_buffer_size(ARM_NN_FEATURES_MVE, conv_params, input_dims, filter_dims, output_dims);
}
