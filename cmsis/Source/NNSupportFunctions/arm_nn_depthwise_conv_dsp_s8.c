/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_nn_depthwise_conv_dsp_s8: the s8 depthwise convolution (any kernel, stride, padding, dilation, batches) on
 * cores with the DSP extension, for a channel multiplier of 1 or a multiple of 4.
 *
 * Four neighbouring output channels at a time, the block of channels in the outer loop (their requantization
 * constants computed once). They read four neighbouring input channels (multiplier 1: one word of the input per
 * tap, sign-extended with the offset added into two pairs of int16 lanes) or the same input channel (a multiplier
 * divisible by 4: one value per tap); each tap is one word of the filter, sign-extended, and four 16x16
 * multiply-accumulates. For every output position the taps inside the input are found once, so the padding costs
 * nothing in the inner loop. With multiplier 1 and a channel count that is not a multiple of 4 the last block
 * overlaps the previous one (those channels are written twice, with the same values).
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#if NNSCONS_DSP

/** Four output channels c..c+3 and what they share over the layer. */
typedef struct
{
    int32_t channel;
    int32_t input_channel;  /* the first input channel they read */
    int32_t bias[4];
    arm_nn_requant rq[4];
    bool fast;              /* all four take arm_nn_requantize_fast */
} dw_block;

/** The layer's shapes as the loops use them. */
typedef struct
{
    const cmsis_nn_dw_conv_params *params;
    const cmsis_nn_per_channel_quant_params *quant_params;
    const cmsis_nn_dims *input_dims;
    const cmsis_nn_dims *filter_dims;
    const cmsis_nn_dims *output_dims;
    uint32_t offset_lanes;
    uint32_t act_min4;
    uint32_t act_max4;
} dw_geometry;

/** [first, end) of the kernel taps along one axis that fall inside the input, for a window starting at ``base``. */
static void inside_taps(int32_t *first, int32_t *end, int32_t base, int32_t dilation, int32_t kernel, int32_t size)
{
    int32_t lo = base < 0 ? (-base + dilation - 1) / dilation : 0;
    int32_t hi = size - 1 - base < 0 ? 0 : (size - 1 - base) / dilation + 1;
    hi = arm_nn_min_i32(hi, kernel);
    *first = lo;
    *end = arm_nn_max_i32(hi, lo);
}

/**
 * All output positions of one batch for the block: ``shared`` (a constant where this is inlined) tells whether the
 * four channels read one input channel.
 */
static NNSCONS_ALWAYS_INLINE void dw_block_outputs(const dw_block *block, const dw_geometry *geo, const int8_t *input,
                                                   const int8_t *filter, int8_t *output, bool shared)
{
    const cmsis_nn_dw_conv_params *params = geo->params;
    const int32_t in_w = geo->input_dims->w;
    const int32_t in_c = geo->input_dims->c;
    const int32_t out_c = geo->output_dims->c;
    const int32_t k_w = geo->filter_dims->w;
    const int32_t x_step = params->dilation.w * in_c;
    const uint32_t lanes = geo->offset_lanes;
    const int32_t offset = params->input_offset;
    int32_t oy;
    input += block->input_channel;
    filter += block->channel;
    output += block->channel;
    for (oy = 0; oy < geo->output_dims->h; oy++)
    {
        const int32_t base_y = oy * params->stride.h - params->padding.h;
        int32_t ky0;
        int32_t ky1;
        int32_t ox;
        inside_taps(&ky0, &ky1, base_y, params->dilation.h, geo->filter_dims->h, geo->input_dims->h);
        for (ox = 0; ox < geo->output_dims->w; ox++)
        {
            const int32_t base_x = ox * params->stride.w - params->padding.w;
            int32_t a0 = block->bias[0];
            int32_t a1 = block->bias[1];
            int32_t a2 = block->bias[2];
            int32_t a3 = block->bias[3];
            int32_t kx0;
            int32_t kx1;
            int32_t ky;
            inside_taps(&kx0, &kx1, base_x, params->dilation.w, k_w, in_w);
            for (ky = kx0 < kx1 ? ky0 : ky1; ky < ky1; ky++)
            {
                const int32_t iy = base_y + ky * params->dilation.h;
                const int8_t *x = input + (iy * in_w + base_x + kx0 * params->dilation.w) * in_c;
                const int8_t *w = filter + (ky * k_w + kx0) * out_c;
                const int8_t *const w_end = w + (kx1 - kx0) * out_c;
                for (; w != w_end; w += out_c)
                {
                    const uint32_t ws = arm_nn_read_s8x4(w);
                    const int16x2_t w_even = arm_nn_sxtb16_even(ws);   /* channels c, c+2 */
                    const int16x2_t w_odd = arm_nn_sxtb16_odd(ws);     /* channels c+1, c+3 */
                    if (shared)
                    {
                        const int32_t v = (int32_t)x[0] + offset;
                        a0 = __smlabb(v, w_even, a0);
                        a2 = __smlabt(v, w_even, a2);
                        a1 = __smlabb(v, w_odd, a1);
                        a3 = __smlabt(v, w_odd, a3);
                    }
                    else
                    {
                        const uint32_t xs = arm_nn_read_s8x4(x);
                        const int16x2_t x_even = __sxtab16(lanes, xs);
                        const int16x2_t x_odd = arm_nn_sxtab16_odd(lanes, xs);
                        a0 = __smlabb(x_even, w_even, a0);
                        a2 = __smlatt(x_even, w_even, a2);
                        a1 = __smlabb(x_odd, w_odd, a1);
                        a3 = __smlatt(x_odd, w_odd, a3);
                    }
                    x += x_step;
                }
            }
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
                a0 = arm_nn_requantize_offset(a0, multiplier[0], shift[0], params->output_offset);
                a1 = arm_nn_requantize_offset(a1, multiplier[1], shift[1], params->output_offset);
                a2 = arm_nn_requantize_offset(a2, multiplier[2], shift[2], params->output_offset);
                a3 = arm_nn_requantize_offset(a3, multiplier[3], shift[3], params->output_offset);
            }
            arm_nn_store4_s8(output + (oy * geo->output_dims->w + ox) * out_c, a0, a1, a2, a3, geo->act_min4,
                             geo->act_max4);
        }
    }
}

static NNSCONS_NOINLINE void dw_block_outputs_own(const dw_block *block, const dw_geometry *geo, const int8_t *input,
                                                  const int8_t *filter, int8_t *output)
{
    dw_block_outputs(block, geo, input, filter, output, false);
}

static NNSCONS_NOINLINE void dw_block_outputs_shared(const dw_block *block, const dw_geometry *geo,
                                                     const int8_t *input, const int8_t *filter, int8_t *output)
{
    dw_block_outputs(block, geo, input, filter, output, true);
}

arm_cmsis_nn_status arm_nn_depthwise_conv_dsp_s8(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                 const cmsis_nn_per_channel_quant_params *quant_params,
                                                 const cmsis_nn_dims *input_dims,
                                                 const int8_t *input_data,
                                                 const cmsis_nn_dims *filter_dims,
                                                 const int8_t *filter_data,
                                                 const int32_t *bias_data,
                                                 const cmsis_nn_dims *output_dims,
                                                 int8_t *output_data)
{
    const int32_t out_c = output_dims->c;
    const int32_t ch_mult = dw_conv_params->ch_mult;
    const bool shared = ch_mult != 1;
    const int32_t in_batch = input_dims->h * input_dims->w * input_dims->c;
    const int32_t out_batch = output_dims->h * output_dims->w * out_c;
    dw_geometry geo;
    int32_t c = 0;

    geo.params = dw_conv_params;
    geo.quant_params = quant_params;
    geo.input_dims = input_dims;
    geo.filter_dims = filter_dims;
    geo.output_dims = output_dims;
    geo.offset_lanes = arm_nn_dup_s16(dw_conv_params->input_offset);
    geo.act_min4 = arm_nn_dup_s8x4(dw_conv_params->activation.min);
    geo.act_max4 = arm_nn_dup_s8x4(dw_conv_params->activation.max);
    while (c < out_c)
    {
        dw_block block;
        int32_t k;
        int32_t b;
        c = arm_nn_min_i32(c, out_c - 4); /* the last block may overlap the previous one (multiplier 1) */
        block.channel = c;
        block.input_channel = c / ch_mult;
        block.fast = true;
        for (k = 0; k < 4; k++)
        {
            block.bias[k] = bias_data != NULL ? bias_data[c + k] : 0;
            block.fast = arm_nn_requantize_fast_init(&block.rq[k], quant_params->multiplier[c + k],
                                                     quant_params->shift[c + k], dw_conv_params->output_offset) &&
                block.fast;
        }
        for (b = 0; b < input_dims->n; b++)
        {
            if (shared)
            {
                dw_block_outputs_shared(&block, &geo, input_data + b * in_batch, filter_data,
                                        output_data + b * out_batch);
            }
            else
            {
                dw_block_outputs_own(&block, &geo, input_data + b * in_batch, filter_data,
                                     output_data + b * out_batch);
            }
        }
        c += 4;
    }
    return ARM_CMSIS_NN_SUCCESS;
}
#endif
