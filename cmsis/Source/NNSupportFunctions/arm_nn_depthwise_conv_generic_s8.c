/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * Direct s8 depthwise convolution shared by every s8 depthwise entry point.
 *
 * Output channel oc = ic * ch_mult + m reads input channel ic only; the filter is [1][KH][KW][C_OUT]:
 * out[b, oy, ox, oc] = clamp(requantize(bias[oc] + sum (in[b, iy, ix, ic] + input_offset) * w[ky, kx, oc])
 *                            + output_offset)
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

/** Sum over the receptive field of one output position for one output channel. */
static int32_t depthwise_dot_s8(const int8_t *batch_in,
                                const int8_t *filter_data,
                                int32_t ic,
                                int32_t oc,
                                int32_t base_y,
                                int32_t base_x,
                                const cmsis_nn_dw_conv_params *dw_conv_params,
                                const cmsis_nn_dims *input_dims,
                                const cmsis_nn_dims *filter_dims,
                                int32_t out_c)
{
    const int32_t in_w = input_dims->w;
    const int32_t in_c = input_dims->c;
    int32_t acc = 0;
    int32_t ky;

    for (ky = 0; ky < filter_dims->h; ky++)
    {
        const int32_t iy = base_y + ky * dw_conv_params->dilation.h;
        int32_t kx;
        if (iy < 0 || iy >= input_dims->h)
        {
            continue;
        }
        for (kx = 0; kx < filter_dims->w; kx++)
        {
            const int32_t ix = base_x + kx * dw_conv_params->dilation.w;
            if (ix < 0 || ix >= in_w)
            {
                continue;
            }
            acc += ((int32_t)batch_in[(iy * in_w + ix) * in_c + ic] + dw_conv_params->input_offset) *
                (int32_t)filter_data[(ky * filter_dims->w + kx) * out_c + oc];
        }
    }
    return acc;
}

arm_cmsis_nn_status arm_nn_depthwise_conv_generic_s8(const cmsis_nn_dw_conv_params *dw_conv_params,
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
    const int32_t ch_mult = dw_conv_params->ch_mult;
    const int32_t out_c = output_dims->c;
    int32_t b;

    if (ch_mult <= 0 || out_c != in_c * ch_mult)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }

    for (b = 0; b < input_dims->n; b++)
    {
        const int8_t *batch_in = input_data + b * input_dims->h * input_dims->w * in_c;
        int32_t oy;
        for (oy = 0; oy < output_dims->h; oy++)
        {
            const int32_t base_y = oy * dw_conv_params->stride.h - dw_conv_params->padding.h;
            int32_t ox;
            for (ox = 0; ox < output_dims->w; ox++)
            {
                const int32_t base_x = ox * dw_conv_params->stride.w - dw_conv_params->padding.w;
                int32_t oc;
                for (oc = 0; oc < out_c; oc++)
                {
                    int32_t acc = depthwise_dot_s8(batch_in, filter_data, oc / ch_mult, oc, base_y, base_x,
                                                   dw_conv_params, input_dims, filter_dims, out_c);
                    if (bias_data != NULL)
                    {
                        acc += bias_data[oc];
                    }
                    acc = arm_nn_requantize(acc, quant_params->multiplier[oc], quant_params->shift[oc]);
                    acc += dw_conv_params->output_offset;
                    *output_data++ = (int8_t)arm_nn_clamp_i32(
                        acc, dw_conv_params->activation.min, dw_conv_params->activation.max);
                }
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}
