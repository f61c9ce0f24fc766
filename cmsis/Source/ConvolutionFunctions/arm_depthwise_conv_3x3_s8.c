/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_depthwise_conv_3x3_s8: s8 depthwise convolution with a 3x3 kernel, channel multiplier 1 and at most one
 * row/column of padding.
 *
 * With the DSP extension, four neighbouring channels at a time, the block of channels in the outer loop: their 9
 * filter words are sign-extended once into int16 lanes (channels c, c+2 and c+1, c+3) and their requantization
 * constants computed once (arm_nn_requantize_fast), then every output position of those channels is 9 word reads
 * of the input, two extending adds of the input offset each and 4 16x16 multiply-accumulates. Output positions
 * whose 3x3 window lies inside the input take an unrolled path; the border ones loop over the taps inside only,
 * so the padding costs nothing in the inner loop. The last block overlaps the previous one when the channel count
 * is not a multiple of 4 (the overlapping channels are written twice with the same values); fewer than four
 * channels, or an input offset the int16 lanes cannot hold, take the generic kernel.
 *
 * With Helium (MVE), every shape takes arm_nn_depthwise_conv_mve_s8 (blocks of sixteen channels in vectors).
 */
#include <string.h>

#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#if NNSCONS_DSP && !NNSCONS_MVE

/**
 * Everything four neighbouring channels c..c+3 share over the layer. The 3x3 filter taps sit in the middle of a
 * 5x5 grid of zeros: a window that overhangs the input by one row or column reads the three rows/columns next to
 * it inside the input instead, with the weights shifted by one place in the grid (the row or column read outside
 * the window gets zeros).
 */
typedef struct
{
    int16x2_t w[5][5][2];       /* grid row, column: channels c, c+2 (even lanes) and c+1, c+3 (odd lanes) */
    int32_t bias[4];
    arm_nn_requant rq[4];
    int32_t channel;
    bool fast;                  /* all four channels take arm_nn_requantize_fast */
} dw_block;

/** The layer's shapes as the inner loops use them. */
typedef struct
{
    int32_t channels;
    int32_t row_step;           /* input bytes from one row to the next */
    int32_t in_w;
    uint32_t offset_lanes;      /* input_offset in both int16 lanes */
    int32_t output_offset;
    uint32_t act_min4;
    uint32_t act_max4;
    const cmsis_nn_per_channel_quant_params *quant_params;
} dw_geometry;

static void dw_block_init(dw_block *block, int32_t c, int32_t channels, const int8_t *filter, const int32_t *bias,
                          const cmsis_nn_per_channel_quant_params *quant_params, int32_t output_offset)
{
    int32_t k;
    memset(block->w, 0, sizeof(block->w));
    block->channel = c;
    for (k = 0; k < 9; k++)
    {
        const uint32_t ws = arm_nn_read_s8x4(filter + k * channels + c);
        block->w[1 + k / 3][1 + k % 3][0] = arm_nn_sxtb16_even(ws);
        block->w[1 + k / 3][1 + k % 3][1] = arm_nn_sxtb16_odd(ws);
    }
    block->fast = true;
    for (k = 0; k < 4; k++)
    {
        block->bias[k] = bias != NULL ? bias[c + k] : 0;
        block->fast = arm_nn_requantize_fast_init(&block->rq[k], quant_params->multiplier[c + k],
                                                  quant_params->shift[c + k], output_offset) &&
            block->fast;
    }
}

/** One tap of four channels: the input word at x (channels c..c+3, input offset added in the lanes) times the
 * tap's weights w[0] (even lanes) and w[1] (odd lanes), added to a0..a3. */
#define DW_TAP(x, w)                                                                                                   \
    do                                                                                                                 \
    {                                                                                                                  \
        const uint32_t xs_ = arm_nn_read_s8x4(x);                                                                      \
        const int16x2_t even_ = __sxtab16(lanes, xs_);                                                                 \
        const int16x2_t odd_ = arm_nn_sxtab16_odd(lanes, xs_);                                                         \
        a0 = __smlabb(even_, (w)[0], a0);                                                                              \
        a2 = __smlatt(even_, (w)[0], a2);                                                                              \
        a1 = __smlabb(odd_, (w)[1], a1);                                                                               \
        a3 = __smlatt(odd_, (w)[1], a3);                                                                               \
    } while (0)

/** The three taps of one kernel row: input words ``channels`` bytes apart from x, weights w[0..2] of a grid row. */
#define DW_ROW(x, w)                                                                                                   \
    do                                                                                                                 \
    {                                                                                                                  \
        DW_TAP((x), (w)[0]);                                                                                           \
        DW_TAP((x) + channels, (w)[1]);                                                                                \
        DW_TAP((x) + 2 * channels, (w)[2]);                                                                            \
    } while (0)

/**
 * One output row of the four channels of ``block``: ``x`` is the input row the three rows read start at (inside the
 * input), ``grid_row`` the weight grid row of its first row (1, or 0/2 for a window overhanging by one row above /
 * below); the input column of output position ox is ox * stride - pad.
 */
static NNSCONS_NOINLINE void dw_output_row(int8_t *out, const int8_t *x, int32_t grid_row, int32_t out_w,
                                           int32_t stride, int32_t pad, const dw_block *block, const dw_geometry *geo)
{
    const int32_t channels = geo->channels;
    const int32_t row_step = geo->row_step;
    const int32_t last = geo->in_w - 3;
    const uint32_t lanes = geo->offset_lanes;
    int32_t ix = -pad;
    for (; out_w > 0; out_w--)
    {
        /* the three columns read: inside the input, next to the window when it overhangs */
        const int32_t read_x = ix < 0 ? 0 : (ix > last ? last : ix);
        const int16x2_t(*w)[2] = block->w[grid_row] + (1 + read_x - ix);
        const int8_t *r = x + read_x * channels;
        int32_t a0 = block->bias[0];
        int32_t a1 = block->bias[1];
        int32_t a2 = block->bias[2];
        int32_t a3 = block->bias[3];
        DW_ROW(r, w);
        DW_ROW(r + row_step, w + 5);
        DW_ROW(r + 2 * row_step, w + 10);
        if (block->fast)
        {
            a0 = arm_nn_requantize_fast(a0, &block->rq[0]);
            a1 = arm_nn_requantize_fast(a1, &block->rq[1]);
            a2 = arm_nn_requantize_fast(a2, &block->rq[2]);
            a3 = arm_nn_requantize_fast(a3, &block->rq[3]);
        }
        else
        {
            const int32_t *multiplier = geo->quant_params->multiplier + block->channel;
            const int32_t *shift = geo->quant_params->shift + block->channel;
            a0 = arm_nn_requantize_offset(a0, multiplier[0], shift[0], geo->output_offset);
            a1 = arm_nn_requantize_offset(a1, multiplier[1], shift[1], geo->output_offset);
            a2 = arm_nn_requantize_offset(a2, multiplier[2], shift[2], geo->output_offset);
            a3 = arm_nn_requantize_offset(a3, multiplier[3], shift[3], geo->output_offset);
        }
        arm_nn_store4_s8(out, a0, a1, a2, a3, geo->act_min4, geo->act_max4);
        out += channels;
        ix += stride;
    }
}

/** Whether every window overhangs the input by at most one row and column on each side, with three rows and
 * columns to read instead: the shapes the grid covers (others take the generic kernel). */
static bool dw_grid_covers(const cmsis_nn_dw_conv_params *params, const cmsis_nn_dims *input_dims,
                           const cmsis_nn_dims *output_dims)
{
    const int32_t last_y = (output_dims->h - 1) * params->stride.h - params->padding.h;
    const int32_t last_x = (output_dims->w - 1) * params->stride.w - params->padding.w;
    return input_dims->h >= 3 && input_dims->w >= 3 && last_y <= input_dims->h - 2 && last_x <= input_dims->w - 2 &&
        params->padding.h >= 0 && params->padding.w >= 0;
}
#endif

arm_cmsis_nn_status arm_depthwise_conv_3x3_s8(const cmsis_nn_context *ctx,
                                              const cmsis_nn_dw_conv_params *dw_conv_params,
                                              const cmsis_nn_per_channel_quant_params *quant_params,
                                              const cmsis_nn_dims *input_dims,
                                              const int8_t *input_data,
                                              const cmsis_nn_dims *filter_dims,
                                              const int8_t *filter_data,
                                              const cmsis_nn_dims *bias_dims,
                                              const int32_t *bias_data,
                                              const cmsis_nn_dims *output_dims,
                                              int8_t *output_data)
{
    (void)ctx;
    (void)bias_dims;
    if (dw_conv_params->ch_mult != 1 || input_dims->c != output_dims->c || filter_dims->w != 3 ||
        filter_dims->h != 3 || dw_conv_params->padding.w > 1 || dw_conv_params->padding.h > 1)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
#if NNSCONS_MVE
    return arm_nn_depthwise_conv_mve_s8(ctx, dw_conv_params, quant_params, input_dims, input_data, filter_dims,
                                        filter_data, bias_data, output_dims, output_data);
#elif NNSCONS_DSP
    if (input_dims->c >= 4 && arm_nn_offset_fits_s16(dw_conv_params->input_offset) &&
        dw_conv_params->dilation.w == 1 && dw_conv_params->dilation.h == 1 &&
        dw_grid_covers(dw_conv_params, input_dims, output_dims))
    {
        const int32_t channels = input_dims->c;
        const int32_t in_h = input_dims->h;
        dw_geometry geo;
        int32_t c = 0;
        geo.channels = channels;
        geo.row_step = input_dims->w * channels;
        geo.in_w = input_dims->w;
        geo.offset_lanes = arm_nn_dup_s16(dw_conv_params->input_offset);
        geo.output_offset = dw_conv_params->output_offset;
        geo.act_min4 = arm_nn_dup_s8x4(dw_conv_params->activation.min);
        geo.act_max4 = arm_nn_dup_s8x4(dw_conv_params->activation.max);
        geo.quant_params = quant_params;
        while (c < channels)
        {
            dw_block block;
            int32_t b;
            c = arm_nn_min_i32(c, channels - 4); /* the last block may overlap the previous one */
            dw_block_init(&block, c, channels, filter_data, bias_data, quant_params, dw_conv_params->output_offset);
            for (b = 0; b < input_dims->n; b++)
            {
                const int8_t *input = input_data + b * in_h * geo.row_step + c;
                int8_t *output = output_data + (b * output_dims->h * output_dims->w) * channels + c;
                int32_t oy;
                for (oy = 0; oy < output_dims->h; oy++)
                {
                    const int32_t iy = oy * dw_conv_params->stride.h - dw_conv_params->padding.h;
                    const int32_t read_y = arm_nn_clamp_i32(iy, 0, in_h - 3);
                    dw_output_row(output + oy * output_dims->w * channels, input + read_y * geo.row_step,
                                  1 + read_y - iy, output_dims->w, dw_conv_params->stride.w,
                                  dw_conv_params->padding.w, &block, &geo);
                }
            }
            c += 4;
        }
        return ARM_CMSIS_NN_SUCCESS;
    }
#endif
    return arm_nn_depthwise_conv_generic_s8(dw_conv_params, quant_params, input_dims, input_data, filter_dims,
                                            filter_data, bias_data, output_dims, output_data);
}
