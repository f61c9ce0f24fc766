/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * Direct s8 depthwise convolution shared by every s8 depthwise entry point.
 *
 * Output channel oc = ic * ch_mult + m reads input channel ic only; the filter is [1][KH][KW][C_OUT]:
 * out[b, oy, ox, oc] = clamp(requantize(bias[oc] + sum (in[b, iy, ix, ic] + input_offset) * w[ky, kx, oc])
 *                            + output_offset)
 *
 * Four neighbouring output channels are summed together when they read four neighbouring input channels
 * (multiplier 1) or one input channel (a multiplier divisible by 4): each tap of the receptive field is then one
 * 4-byte read of the filter (and of the input pixel), and on cores with the DSP extension sign extensions into
 * int16 lanes and four 16x16 multiply-accumulates (bottom and top halves). Other channels take one at a time.
 * With the DSP extension those layers (at least four output channels) go to arm_nn_depthwise_conv_dsp_s8, which
 * keeps the block of four channels in the outer loop.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

/** Where one output position's receptive field starts, and the shapes around it. */
typedef struct
{
    int32_t base_y;
    int32_t base_x;
    const cmsis_nn_dw_conv_params *params;
    const cmsis_nn_dims *input_dims;
    const cmsis_nn_dims *filter_dims;
} receptive_field;

/** The sums of output channels c..c+3 over one output position's receptive field; they read input channels
 * c..c+3 (``shared_input`` false, multiplier 1) or all read input channel c / ch_mult (true: a multiplier divisible
 * by 4). */
static NNSCONS_ALWAYS_INLINE void depthwise_dot4_s8(int32_t acc[4], const receptive_field *field,
                                                    const int8_t *batch_in, const int8_t *filter_data, int32_t c,
                                                    bool shared_input)
{
    const int32_t input_c = shared_input ? c / field->params->ch_mult : c;
    const int32_t in_w = field->input_dims->w;
    const int32_t in_c = field->input_dims->c;
    const int32_t out_c = in_c * field->params->ch_mult;
    const int32_t k_w = field->filter_dims->w;
    const int32_t offset = field->params->input_offset;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    int32_t ky;
#if NNSCONS_DSP
    const uint32_t offset_lanes = arm_nn_dup_s16(offset);
#endif

    for (ky = 0; ky < field->filter_dims->h; ky++)
    {
        const int32_t iy = field->base_y + ky * field->params->dilation.h;
        int32_t kx;
        if (iy < 0 || iy >= field->input_dims->h)
        {
            continue;
        }
        for (kx = 0; kx < k_w; kx++)
        {
            const int32_t ix = field->base_x + kx * field->params->dilation.w;
            const int8_t *x;
            const int8_t *w;
            if (ix < 0 || ix >= in_w)
            {
                continue;
            }
            x = batch_in + (iy * in_w + ix) * in_c + input_c;
            w = filter_data + (ky * k_w + kx) * out_c + c;
#if NNSCONS_DSP
            if (shared_input)
            {
                const int16x2_t x_both = (int16x2_t)arm_nn_dup_s16((int32_t)x[0] + offset);
                const uint32_t ws = arm_nn_read_s8x4(w);
                const int16x2_t w_even = __sxtb16(ws);                        /* channels c, c+2 */
                const int16x2_t w_odd = __sxtb16(arm_nn_ror8(ws));            /* channels c+1, c+3 */
                a0 = __smlabb(x_both, w_even, a0);
                a2 = __smlabt(x_both, w_even, a2);
                a1 = __smlabb(x_both, w_odd, a1);
                a3 = __smlabt(x_both, w_odd, a3);
            }
            else
            {
                const uint32_t xs = arm_nn_read_s8x4(x);
                const uint32_t ws = arm_nn_read_s8x4(w);
                const int16x2_t x_even = __sxtab16(offset_lanes, xs);          /* channels c, c+2 */
                const int16x2_t x_odd = __sxtab16(offset_lanes, arm_nn_ror8(xs)); /* channels c+1, c+3 */
                const int16x2_t w_even = __sxtb16(ws);
                const int16x2_t w_odd = __sxtb16(arm_nn_ror8(ws));
                a0 = __smlabb(x_even, w_even, a0);
                a2 = __smlatt(x_even, w_even, a2);
                a1 = __smlabb(x_odd, w_odd, a1);
                a3 = __smlatt(x_odd, w_odd, a3);
            }
#else
            {
                const int32_t step = shared_input ? 0 : 1;       /* input channels of the four outputs */
                a0 += ((int32_t)x[0] + offset) * (int32_t)w[0];
                a1 += ((int32_t)x[step] + offset) * (int32_t)w[1];
                a2 += ((int32_t)x[2 * step] + offset) * (int32_t)w[2];
                a3 += ((int32_t)x[3 * step] + offset) * (int32_t)w[3];
            }
#endif
        }
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

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

/** One output value from its sum: bias, requantization, output offset, activation clamp. */
static int8_t depthwise_output_s8(int32_t acc, int32_t oc, const cmsis_nn_dw_conv_params *dw_conv_params,
                                  const cmsis_nn_per_channel_quant_params *quant_params, const int32_t *bias_data)
{
    return arm_nn_output_s8(acc + (bias_data != NULL ? bias_data[oc] : 0), quant_params->multiplier[oc],
                            quant_params->shift[oc], dw_conv_params->output_offset, dw_conv_params->activation.min,
                            dw_conv_params->activation.max);
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
    /* four channels at a time: multiplier 1 or a multiple of 4, an offset the int16 lanes hold */
    const bool by_four = (ch_mult == 1 || ch_mult % 4 == 0) && arm_nn_offset_fits_s16(dw_conv_params->input_offset);
    receptive_field field;
    int32_t b;

    if (ch_mult <= 0 || out_c != in_c * ch_mult)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
#if NNSCONS_DSP
    if (by_four && out_c >= 4 && dw_conv_params->dilation.h >= 1 && dw_conv_params->dilation.w >= 1)
    {
        return arm_nn_depthwise_conv_dsp_s8(dw_conv_params, quant_params, input_dims, input_data, filter_dims,
                                            filter_data, bias_data, output_dims, output_data);
    }
#endif
    field.params = dw_conv_params;
    field.input_dims = input_dims;
    field.filter_dims = filter_dims;

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
                int32_t oc = 0;
                int32_t sums[4];
                field.base_x = base_x;
                field.base_y = base_y;
                if (by_four)
                {
                    for (; oc + 4 <= out_c; oc += 4)
                    {
                        int32_t k;
                        if (ch_mult == 1)   /* two copies of the inner loop, one for each way of reading */
                        {
                            depthwise_dot4_s8(sums, &field, batch_in, filter_data, oc, false);
                        }
                        else
                        {
                            depthwise_dot4_s8(sums, &field, batch_in, filter_data, oc, true);
                        }
                        for (k = 0; k < 4; k++)
                        {
                            *output_data++ = depthwise_output_s8(sums[k], oc + k, dw_conv_params, quant_params,
                                                                 bias_data);
                        }
                    }
                }
                for (; oc < out_c; oc++)
                {
                    const int32_t acc = depthwise_dot_s8(batch_in, filter_data, oc / ch_mult, oc, base_y, base_x,
                                                         dw_conv_params, input_dims, filter_dims, out_c);
                    *output_data++ = depthwise_output_s8(acc, oc, dw_conv_params, quant_params, bias_data);
                }
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}
