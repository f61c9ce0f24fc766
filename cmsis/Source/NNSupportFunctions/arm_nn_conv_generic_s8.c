/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * The s8 convolution shared by every s8 convolution entry point.
 *
 * out[b, oy, ox, oc] = clamp(requantize(bias[oc] + sum (in[b, iy, ix, ic] + input_offset) * w[oc, ky, kx, ic])
 *                            + output_offset)
 * with iy = oy * stride.h - pad.h + ky * dilation.h (likewise ix); taps outside the input contribute nothing.
 * Grouped convolution: groups = C_IN / filter C; output channel oc reads input channels of group
 * oc / (C_OUT / groups).
 *
 * With a scratch column (the entry points that get Arm's im2col buffer) and one group, each output position's
 * receptive field is first gathered into it in the filter's (ky, kx, ic) order, taps outside the input set to
 * -input_offset (which adds nothing); a 1x1 kernel's receptive field is one input pixel, contiguous already. Either
 * way every output channel is one inner product over KH*KW*C_IN values, two channels per pass (arm_nn_dot2_s8).
 * Otherwise the receptive field is read in place, one dot product per contiguous run of taps.
 *
 * With the DSP extension and one group, a convolution with that scratch goes to arm_nn_conv_im2col_dsp_s8 (int16
 * columns, two output positions by two output channels at a time) and a 1x1 convolution without it to
 * arm_nn_conv_1x1_dsp_s8.
 *
 * With Helium (MVE) and one group, those go first (arm_nn_conv_mve_s8) to arm_nn_conv_1x1_mve_s8 (a 1x1 convolution
 * without padding, input read in place) and arm_nn_conv_im2col_mve_s8 (int8 columns, three output positions by
 * two output channels at a time), when the scratch holds their columns.
 */
#include <string.h>

#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

/** Where one output position's receptive field starts, and the shapes around it. */
typedef struct
{
    int32_t base_y;
    int32_t base_x;
    const cmsis_nn_conv_params *conv_params;
    const cmsis_nn_dims *input_dims;
    const cmsis_nn_dims *filter_dims;
} receptive_field;

/** Sum over the receptive field of one output position for one output channel, read in place. */
static int32_t receptive_field_dot_s8(const receptive_field *field, const int8_t *input_group, const int8_t *filter)
{
    const cmsis_nn_conv_params *conv_params = field->conv_params;
    const int32_t in_h = field->input_dims->h;
    const int32_t in_w = field->input_dims->w;
    const int32_t in_c = field->input_dims->c;
    const int32_t k_w = field->filter_dims->w;
    const int32_t k_c = field->filter_dims->c;
    const int32_t dilation_w = conv_params->dilation.w;
    int32_t acc = 0;
    int32_t ky;

    for (ky = 0; ky < field->filter_dims->h; ky++)
    {
        const int32_t iy = field->base_y + ky * conv_params->dilation.h;
        const int8_t *row;
        const int8_t *row_taps;
        int32_t kx;
        if (iy < 0 || iy >= in_h)
        {
            continue;
        }
        row = input_group + iy * in_w * in_c;
        row_taps = filter + ky * k_w * k_c;
        if (dilation_w == 1 && k_c == in_c && field->base_x >= 0 && field->base_x + k_w <= in_w)
        {
            /* the whole kernel row lies inside the input and is contiguous there, as in the filter */
            acc += arm_nn_dot_s8(row + field->base_x * in_c, row_taps, k_w * k_c, conv_params->input_offset);
            continue;
        }
        for (kx = 0; kx < k_w; kx++)
        {
            const int32_t ix = field->base_x + kx * dilation_w;
            if (ix >= 0 && ix < in_w)
            {
                acc += arm_nn_dot_s8(row + ix * in_c, row_taps + kx * k_c, k_c, conv_params->input_offset);
            }
        }
    }
    return acc;
}

/** The receptive field of one output position as one column (one group only), outside taps = -input_offset. */
static void gather_column_s8(int8_t *column, const receptive_field *field, const int8_t *input)
{
    const cmsis_nn_conv_params *conv_params = field->conv_params;
    const int32_t in_h = field->input_dims->h;
    const int32_t in_w = field->input_dims->w;
    const int32_t in_c = field->input_dims->c;
    const int8_t outside = (int8_t)(-conv_params->input_offset);
    int32_t ky;

    for (ky = 0; ky < field->filter_dims->h; ky++)
    {
        const int32_t iy = field->base_y + ky * conv_params->dilation.h;
        int32_t kx;
        for (kx = 0; kx < field->filter_dims->w; kx++)
        {
            const int32_t ix = field->base_x + kx * conv_params->dilation.w;
            if (iy < 0 || iy >= in_h || ix < 0 || ix >= in_w)
            {
                memset(column, outside, (size_t)in_c);
            }
            else
            {
                memcpy(column, input + (iy * in_w + ix) * in_c, (size_t)in_c);
            }
            column += in_c;
        }
    }
}

/** One output value from its sum: bias, requantization, output offset, activation clamp. */
static int8_t conv_output_s8(int32_t acc, int32_t oc, const cmsis_nn_conv_params *conv_params,
                             const cmsis_nn_per_channel_quant_params *quant_params, const int32_t *bias_data)
{
    return arm_nn_output_s8(acc + (bias_data != NULL ? bias_data[oc] : 0), quant_params->multiplier[oc],
                            quant_params->shift[oc], conv_params->output_offset, conv_params->activation.min,
                            conv_params->activation.max);
}

/* The portable convolution is arm_nn_conv_generic_s8 itself but on Helium, where that function tries the vector
 * paths first: the same definition either way, so that the other builds compile exactly as before (GCC allocates
 * registers differently for a static function called once, 1.7% more instructions on the Cortex-M0). */
#if NNSCONS_MVE
#define CONV_PORTABLE_S8 static arm_cmsis_nn_status conv_portable_s8
#else
#define CONV_PORTABLE_S8 arm_cmsis_nn_status arm_nn_conv_generic_s8
#endif

CONV_PORTABLE_S8(int8_t *column,
                                            const cmsis_nn_conv_params *conv_params,
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
    const int32_t offset = conv_params->input_offset;
    receptive_field field;
    int32_t groups;
    int32_t out_c_per_group;
    int32_t b;
    bool use_column;
    bool pointwise;

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
#if NNSCONS_DSP
    if (column != NULL && ((uintptr_t)column & 3u) == 0 && groups == 1 && offset >= -INT8_MAX && offset <= -INT8_MIN)
    {
        return arm_nn_conv_im2col_dsp_s8((int16_t *)(void *)column, conv_params, quant_params, input_dims,
                                         input_data, filter_dims, filter_data, bias_data, output_dims, output_data);
    }
    if (groups == 1 && filter_dims->h == 1 && filter_dims->w == 1 && conv_params->padding.h == 0 &&
        conv_params->padding.w == 0 && out_c >= 2 && arm_nn_offset_fits_s16(offset))
    {
        return arm_nn_conv_1x1_dsp_s8(conv_params, quant_params, input_dims, input_data, filter_data, bias_data,
                                      output_dims, output_data);
    }
#endif
    /* a column pays off when the kernel has several taps; the outside value must be an int8 */
    use_column = column != NULL && groups == 1 && filter_dims->h * filter_dims->w > 1 && offset >= -INT8_MAX &&
        offset <= -INT8_MIN;
    /* one tap, one group: the receptive field is one input pixel, contiguous already */
    pointwise = groups == 1 && filter_dims->h == 1 && filter_dims->w == 1;
    field.conv_params = conv_params;
    field.input_dims = input_dims;
    field.filter_dims = filter_dims;

    for (b = 0; b < input_dims->n; b++)
    {
        const int8_t *batch_in = input_data + b * input_dims->h * input_dims->w * in_c;
        int32_t oy;
        for (oy = 0; oy < out_h; oy++)
        {
            int32_t ox;
            field.base_y = oy * conv_params->stride.h - conv_params->padding.h;
            for (ox = 0; ox < out_w; ox++)
            {
                /* the receptive field as one run of filter_size values when it is one (else read in place);
                 * a pointwise tap in the padding sees nothing */
                const int8_t *run = NULL;
                bool nothing = false;
                int32_t oc = 0;
                field.base_x = ox * conv_params->stride.w - conv_params->padding.w;
                if (use_column)
                {
                    gather_column_s8(column, &field, batch_in);
                    run = column;
                }
                else if (pointwise)
                {
                    nothing = field.base_y < 0 || field.base_y >= input_dims->h || field.base_x < 0 ||
                        field.base_x >= input_dims->w;
                    run = nothing ? NULL : batch_in + (field.base_y * input_dims->w + field.base_x) * in_c;
                }
                for (; run != NULL && oc + 2 <= out_c; oc += 2)     /* two output channels per pass over x */
                {
                    int32_t sum0;
                    int32_t sum1;
                    arm_nn_dot2_s8(run, filter_data + oc * filter_size, filter_data + (oc + 1) * filter_size,
                                   filter_size, offset, &sum0, &sum1);
                    *output_data++ = conv_output_s8(sum0, oc, conv_params, quant_params, bias_data);
                    *output_data++ = conv_output_s8(sum1, oc + 1, conv_params, quant_params, bias_data);
                }
                for (; oc < out_c; oc++)
                {
                    const int8_t *filter = filter_data + oc * filter_size;
                    const int32_t acc = run != NULL ? arm_nn_dot_s8(run, filter, filter_size, offset)
                        : nothing ? 0
                        : receptive_field_dot_s8(&field, batch_in + (oc / out_c_per_group) * k_c, filter);
                    *output_data++ = conv_output_s8(acc, oc, conv_params, quant_params, bias_data);
                }
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}

#if NNSCONS_MVE
arm_cmsis_nn_status arm_nn_conv_mve_s8(int8_t *column,
                                       int32_t size,
                                       const cmsis_nn_conv_params *conv_params,
                                       const cmsis_nn_per_channel_quant_params *quant_params,
                                       const cmsis_nn_dims *input_dims,
                                       const int8_t *input_data,
                                       const cmsis_nn_dims *filter_dims,
                                       const int8_t *filter_data,
                                       const int32_t *bias_data,
                                       const cmsis_nn_dims *output_dims,
                                       int8_t *output_data)
{
    const int32_t row_size = filter_dims->h * filter_dims->w * input_dims->c;
    /* what arm_nn_conv_generic_s8's column holds: two int16 columns */
    const int32_t portable_size = 4 * arm_nn_align(row_size, 4);
    const int32_t offset = conv_params->input_offset;
    const bool one_group = filter_dims->c == input_dims->c && filter_dims->c > 0;

    if (column == NULL)
    {
        size = 0;
    }
    else if (size <= 0)
    {
        size = portable_size; /* not stated: the caller sized it with a getter, every one of which gives this */
    }
    if (one_group && filter_dims->h == 1 && filter_dims->w == 1 && conv_params->padding.h == 0 &&
        conv_params->padding.w == 0)
    {
        return arm_nn_conv_1x1_mve_s8(conv_params, quant_params, input_dims, input_data, filter_data, bias_data,
                                      output_dims, output_data);
    }
    if (one_group && size >= ARM_NN_CONV_MVE_ROWS * row_size && offset >= -INT8_MAX && offset <= -INT8_MIN)
    {
        return arm_nn_conv_im2col_mve_s8(column, conv_params, quant_params, input_dims, input_data,
                                         filter_dims, filter_data, bias_data, output_dims, output_data);
    }
    /* a buffer smaller than the portable path's column: read the receptive fields in place */
    return conv_portable_s8(size >= portable_size ? column : NULL, conv_params, quant_params, input_dims,
                            input_data, filter_dims, filter_data, bias_data, output_dims, output_data);
}

arm_cmsis_nn_status arm_nn_conv_generic_s8(int8_t *column,
                                           const cmsis_nn_conv_params *conv_params,
                                           const cmsis_nn_per_channel_quant_params *quant_params,
                                           const cmsis_nn_dims *input_dims,
                                           const int8_t *input_data,
                                           const cmsis_nn_dims *filter_dims,
                                           const int8_t *filter_data,
                                           const int32_t *bias_data,
                                           const cmsis_nn_dims *output_dims,
                                           int8_t *output_data)
{
    return arm_nn_conv_mve_s8(column, 0, conv_params, quant_params, input_dims, input_data, filter_dims,
                              filter_data, bias_data, output_dims, output_data);
}
#endif
