/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * Direct (im2col-free) s8 convolution shared by every s8 convolution entry point.
 *
 * out[b, oy, ox, oc] = clamp(requantize(bias[oc] + sum (in[b, iy, ix, ic] + input_offset) * w[oc, ky, kx, ic])
 *                            + output_offset)
 * with iy = oy * stride.h - pad.h + ky * dilation.h (likewise ix); taps outside the input contribute nothing.
 * Grouped convolution: groups = C_IN / filter C; output channel oc reads input channels of group
 * oc / (C_OUT / groups).
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

/** Sum over the receptive field of one output position for one output channel. */
static int32_t receptive_field_dot_s8(const int8_t *input_group,
                                      const int8_t *filter,
                                      int32_t input_offset,
                                      int32_t base_y,
                                      int32_t base_x,
                                      const cmsis_nn_conv_params *conv_params,
                                      const cmsis_nn_dims *input_dims,
                                      const cmsis_nn_dims *filter_dims)
{
    const int32_t in_h = input_dims->h;
    const int32_t in_w = input_dims->w;
    const int32_t in_c = input_dims->c;
    const int32_t k_w = filter_dims->w;
    const int32_t k_c = filter_dims->c;
    int32_t acc = 0;
    int32_t ky;

    for (ky = 0; ky < filter_dims->h; ky++)
    {
        const int32_t iy = base_y + ky * conv_params->dilation.h;
        int32_t kx;
        if (iy < 0 || iy >= in_h)
        {
            continue;
        }
        for (kx = 0; kx < k_w; kx++)
        {
            const int32_t ix = base_x + kx * conv_params->dilation.w;
            const int8_t *pixel;
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
                acc += ((int32_t)pixel[ic] + input_offset) * (int32_t)taps[ic];
            }
        }
    }
    return acc;
}

arm_cmsis_nn_status arm_nn_conv_generic_s8(const cmsis_nn_conv_params *conv_params,
                                           const cmsis_nn_per_channel_quant_params *quant_params,
                                           const cmsis_nn_dims *input_dims,
                                           const int8_t *input_data,
                                           const cmsis_nn_dims *filter_dims,
                                           const int8_t *filter_data,
                                           const int32_t *bias_data,
                                           const cmsis_nn_dims *output_dims,
                                           int8_t *output_data)
{
    const int32_t in_c = input_dims->c;
    const int32_t k_c = filter_dims->c;
    const int32_t out_h = output_dims->h;
    const int32_t out_w = output_dims->w;
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
        const int8_t *batch_in = input_data + b * input_dims->h * input_dims->w * in_c;
        int32_t oy;
        for (oy = 0; oy < out_h; oy++)
        {
            const int32_t base_y = oy * conv_params->stride.h - conv_params->padding.h;
            int32_t ox;
            for (ox = 0; ox < out_w; ox++)
            {
                const int32_t base_x = ox * conv_params->stride.w - conv_params->padding.w;
                int32_t oc;
                for (oc = 0; oc < out_c; oc++)
                {
                    const int8_t *input_group = batch_in + (oc / out_c_per_group) * k_c;
                    int32_t acc = receptive_field_dot_s8(input_group,
                                                         filter_data + oc * filter_size,
                                                         conv_params->input_offset,
                                                         base_y,
                                                         base_x,
                                                         conv_params,
                                                         input_dims,
                                                         filter_dims);
                    if (bias_data != NULL)
                    {
                        acc += bias_data[oc];
                    }
                    acc = arm_nn_requantize(acc, quant_params->multiplier[oc], quant_params->shift[oc]);
                    acc += conv_params->output_offset;
                    *output_data++ = (int8_t)arm_nn_clamp_i32(
                        acc, conv_params->activation.min, conv_params->activation.max);
                }
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}
