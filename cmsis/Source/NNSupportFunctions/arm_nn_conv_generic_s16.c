/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * Direct s16 convolution (int16 activations, int8 weights) shared by the s16 convolution entry points.
 *
 * Activations are symmetric (zero point 0), so the input and output offsets are not used. With an int64 bias
 * (or none) the sum is accumulated in 64 bits and requantized with the reduced 16-bit multiplier; with an int32
 * bias it is accumulated in 32 bits and requantized like the s8 kernels, as TFLite does for each bias type.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

/** Sum over the receptive field of one output position for one output channel (64-bit). */
static int64_t receptive_field_dot_s16(const int16_t *input_group,
                                       const int8_t *filter,
                                       int32_t base_y,
                                       int32_t base_x,
                                       const cmsis_nn_conv_params *conv_params,
                                       const cmsis_nn_dims *input_dims,
                                       const cmsis_nn_dims *filter_dims)
{
    const int32_t in_w = input_dims->w;
    const int32_t in_c = input_dims->c;
    const int32_t k_w = filter_dims->w;
    const int32_t k_c = filter_dims->c;
    int64_t acc = 0;
    int32_t ky;

    for (ky = 0; ky < filter_dims->h; ky++)
    {
        const int32_t iy = base_y + ky * conv_params->dilation.h;
        int32_t kx;
        if (iy < 0 || iy >= input_dims->h)
        {
            continue;
        }
        for (kx = 0; kx < k_w; kx++)
        {
            const int32_t ix = base_x + kx * conv_params->dilation.w;
            const int16_t *pixel;
            const int8_t *taps;
            int32_t ic;
            if (ix < 0 || ix >= in_w)
            {
                continue;
            }
            pixel = input_group + (iy * in_w + ix) * in_c;
            taps = filter + (ky * k_w + kx) * k_c;
            for (ic = 0; ic < k_c; ic++)
            {
                acc += (int64_t)((int32_t)pixel[ic] * (int32_t)taps[ic]);
            }
        }
    }
    return acc;
}

/** Requantize one accumulator according to the bias type. */
static int32_t requantize_s16_acc(int64_t acc, int32_t channel, const cmsis_nn_bias_data *bias_data,
                                  const cmsis_nn_per_channel_quant_params *quant_params)
{
    const int32_t multiplier = quant_params->multiplier[channel];
    const int32_t shift = quant_params->shift[channel];

    if (bias_data != NULL && bias_data->data != NULL && bias_data->is_int32_bias)
    {
        /* The reference accumulates in 32 bits: keep the low 32 bits of the exact sum. */
        const int64_t biased = acc + ((const int32_t *)bias_data->data)[channel];
        const int32_t acc32 = (int32_t)(uint32_t)biased;
        return arm_nn_requantize(acc32, multiplier, shift);
    }
    if (bias_data != NULL && bias_data->data != NULL)
    {
        acc += ((const int64_t *)bias_data->data)[channel];
    }
    return arm_nn_requantize_s64(acc, arm_nn_reduce_multiplier(multiplier), shift);
}

arm_cmsis_nn_status arm_nn_conv_generic_s16(const cmsis_nn_conv_params *conv_params,
                                            const cmsis_nn_per_channel_quant_params *quant_params,
                                            const cmsis_nn_dims *input_dims,
                                            const int16_t *input_data,
                                            const cmsis_nn_dims *filter_dims,
                                            const int8_t *filter_data,
                                            const cmsis_nn_bias_data *bias_data,
                                            const cmsis_nn_dims *output_dims,
                                            int16_t *output_data)
{
    const int32_t in_c = input_dims->c;
    const int32_t k_c = filter_dims->c;
    const int32_t out_c = output_dims->c;
    const int32_t filter_size = filter_dims->h * filter_dims->w * k_c;
    int32_t groups;
    int32_t out_c_per_group;
    int32_t b;

    if (k_c <= 0 || in_c % k_c != 0)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    groups = in_c / k_c;
    if (out_c % groups != 0)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    out_c_per_group = out_c / groups;

    for (b = 0; b < input_dims->n; b++)
    {
        const int16_t *batch_in = input_data + b * input_dims->h * input_dims->w * in_c;
        int32_t oy;
        for (oy = 0; oy < output_dims->h; oy++)
        {
            const int32_t base_y = oy * conv_params->stride.h - conv_params->padding.h;
            int32_t ox;
            for (ox = 0; ox < output_dims->w; ox++)
            {
                const int32_t base_x = ox * conv_params->stride.w - conv_params->padding.w;
                int32_t oc;
                for (oc = 0; oc < out_c; oc++)
                {
                    const int16_t *input_group = batch_in + (oc / out_c_per_group) * k_c;
                    const int64_t acc = receptive_field_dot_s16(
                        input_group, filter_data + oc * filter_size, base_y, base_x, conv_params, input_dims, filter_dims);
                    const int32_t result = requantize_s16_acc(acc, oc, bias_data, quant_params);
                    *output_data++ = (int16_t)arm_nn_clamp_i32(
                        result, conv_params->activation.min, conv_params->activation.max);
                }
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}
