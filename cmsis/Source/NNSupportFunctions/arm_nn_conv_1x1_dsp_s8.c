/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_nn_conv_1x1_dsp_s8: the s8 1x1 convolution (no padding, one group, any stride, at least 2 output channels)
 * on cores with the DSP extension, without scratch memory.
 *
 * Two output channels at a time in the outer loop (their requantization constants computed once, and the input
 * offset folded into their starting sums: sum (x + offset) * w = sum x * w + offset * sum w), then two output
 * positions at a time: every step reads one word (4 input channels) of each of the two input pixels and of the two
 * weight rows, sign-extends each into two pairs of int16 lanes and makes 8 dual multiply-accumulates (SMLAD): 16
 * MACs for 20 instructions. Same integers as the plain loop: the products are exact and the int32 sums wrap alike.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#if NNSCONS_DSP

/** Two output channels: weight rows, starting sums, requantization. */
typedef struct
{
    const int8_t *w0;
    const int8_t *w1;
    int32_t start0;         /* bias + input_offset * sum of the weight row */
    int32_t start1;
    arm_nn_requant rq0;
    arm_nn_requant rq1;
    bool fast;
    int32_t channel;
} pair_channels;

/** The layer's shapes as the loops use them. */
typedef struct
{
    int32_t depth;          /* input channels */
    int32_t out_c;
    int32_t out_w;
    int32_t x_step;         /* input bytes between neighbouring output positions of a row */
    int32_t row_step;       /* input bytes between output rows */
    int32_t output_offset;
    uint32_t act_min4;
    uint32_t act_max4;
    const cmsis_nn_per_channel_quant_params *quant_params;
} pointwise_geometry;

static int32_t row_sum_s8(const int8_t *w, int32_t length)
{
    int32_t sum = 0;
    int32_t i;
    for (i = 0; i < length; i++)
    {
        sum += w[i];
    }
    return sum;
}

static void pair_init(pair_channels *pair, int32_t oc, const int8_t *filter, const int32_t *bias, int32_t input_offset,
                      const pointwise_geometry *geo)
{
    const int32_t *multiplier = geo->quant_params->multiplier;
    const int32_t *shift = geo->quant_params->shift;
    pair->channel = oc;
    pair->w0 = filter + oc * geo->depth;
    pair->w1 = pair->w0 + geo->depth;
    /* modulo 2^32, like the sums */
    pair->start0 = (int32_t)((uint32_t)(bias != NULL ? bias[oc] : 0) +
                             (uint32_t)input_offset * (uint32_t)row_sum_s8(pair->w0, geo->depth));
    pair->start1 = (int32_t)((uint32_t)(bias != NULL ? bias[oc + 1] : 0) +
                             (uint32_t)input_offset * (uint32_t)row_sum_s8(pair->w1, geo->depth));
    pair->fast = arm_nn_requantize_fast_init(&pair->rq0, multiplier[oc], shift[oc], geo->output_offset);
    pair->fast = arm_nn_requantize_fast_init(&pair->rq1, multiplier[oc + 1], shift[oc + 1], geo->output_offset) &&
        pair->fast;
}

/** Requantized value (output offset included) of the pair's channel ``k`` (0 or 1). */
static NNSCONS_ALWAYS_INLINE int32_t pair_requantize(int32_t acc, int32_t k, const pair_channels *pair,
                                                     const pointwise_geometry *geo)
{
    if (pair->fast)
    {
        return arm_nn_requantize_fast(acc, k == 0 ? &pair->rq0 : &pair->rq1);
    }
    return arm_nn_requantize_offset(acc, geo->quant_params->multiplier[pair->channel + k],
                                    geo->quant_params->shift[pair->channel + k], geo->output_offset);
}

/** sums[0..3] += x0.w0, x0.w1, x1.w0, x1.w1 over ``depth`` int8 values (no offset). */
static NNSCONS_ALWAYS_INLINE void dot_2x2(int32_t sums[4], const int8_t *x0, const int8_t *x1, const int8_t *w0,
                                          const int8_t *w1, int32_t depth)
{
    int32_t a00 = sums[0];
    int32_t a01 = sums[1];
    int32_t a10 = sums[2];
    int32_t a11 = sums[3];
    const int8_t *end = x0 + (depth & ~3);
    while (x0 != end)
    {
        const uint32_t x0s = arm_nn_read_s8x4(x0);
        const uint32_t x1s = arm_nn_read_s8x4(x1);
        const int16x2_t x0_even = arm_nn_sxtb16_even(x0s);
        const int16x2_t x0_odd = arm_nn_sxtb16_odd(x0s);
        const int16x2_t x1_even = arm_nn_sxtb16_even(x1s);
        const int16x2_t x1_odd = arm_nn_sxtb16_odd(x1s);
        arm_nn_mac2x2_s8x4(x0_even, x0_odd, x1_even, x1_odd, w0, w1, &a00, &a01, &a10, &a11);
        x0 += 4;
        x1 += 4;
        w0 += 4;
        w1 += 4;
    }
    for (depth &= 3; depth > 0; depth--)
    {
        const int32_t v0 = *x0++;
        const int32_t v1 = *x1++;
        const int32_t u0 = *w0++;
        const int32_t u1 = *w1++;
        a00 += v0 * u0;
        a01 += v0 * u1;
        a10 += v1 * u0;
        a11 += v1 * u1;
    }
    sums[0] = a00;
    sums[1] = a01;
    sums[2] = a10;
    sums[3] = a11;
}

/** Input index of output position ``p`` (batches, rows and columns counted together). */
static NNSCONS_ALWAYS_INLINE int32_t input_index(int32_t p, const pointwise_geometry *geo)
{
    const int32_t row = p / geo->out_w;
    return row * geo->row_step + (p - row * geo->out_w) * geo->x_step;
}

/** Every output position of the two channels of ``pair``. */
static NNSCONS_NOINLINE void pair_outputs(int8_t *output, const int8_t *input, int32_t positions,
                                          const pair_channels *pair, const pointwise_geometry *geo)
{
    const int32_t out_c = geo->out_c;
    int32_t p;
    output += pair->channel;
    for (p = 0; p < positions; p += 2)
    {
        /* an odd last position: itself twice, the second results dropped */
        const bool two = p + 1 < positions;
        int32_t sums[4];
        uint32_t word;
        sums[0] = pair->start0;
        sums[1] = pair->start1;
        sums[2] = pair->start0;
        sums[3] = pair->start1;
        dot_2x2(sums, input + input_index(p, geo), input + input_index(two ? p + 1 : p, geo), pair->w0, pair->w1,
                geo->depth);
        word = arm_nn_pack4_s8(pair_requantize(sums[0], 0, pair, geo), pair_requantize(sums[1], 1, pair, geo),
                               pair_requantize(sums[2], 0, pair, geo), pair_requantize(sums[3], 1, pair, geo),
                               geo->act_min4, geo->act_max4);
        output[0] = (int8_t)word;
        output[1] = (int8_t)(word >> 8);
        if (two)
        {
            output[out_c] = (int8_t)(word >> 16);
            output[out_c + 1] = (int8_t)(word >> 24);
        }
        output += 2 * out_c;
    }
}

arm_cmsis_nn_status arm_nn_conv_1x1_dsp_s8(const cmsis_nn_conv_params *conv_params,
                                           const cmsis_nn_per_channel_quant_params *quant_params,
                                           const cmsis_nn_dims *input_dims,
                                           const int8_t *input_data,
                                           const int8_t *filter_data,
                                           const int32_t *bias_data,
                                           const cmsis_nn_dims *output_dims,
                                           int8_t *output_data)
{
    const int32_t out_h = output_dims->h;
    const int32_t positions = input_dims->n * out_h * output_dims->w;
    pointwise_geometry geo;
    int32_t oc = 0;

    geo.depth = input_dims->c;
    geo.out_c = output_dims->c;
    geo.out_w = output_dims->w;
    geo.x_step = conv_params->stride.w * input_dims->c;
    geo.row_step = conv_params->stride.h * input_dims->w * input_dims->c;
    geo.output_offset = conv_params->output_offset;
    geo.act_min4 = arm_nn_dup_s8x4(conv_params->activation.min);
    geo.act_max4 = arm_nn_dup_s8x4(conv_params->activation.max);
    geo.quant_params = quant_params;
    if (input_dims->n > 1 && out_h * conv_params->stride.h != input_dims->h)
    {
        /* output rows of consecutive batches are not evenly spaced in the input: one batch at a time */
        const cmsis_nn_dims one = {1, input_dims->h, input_dims->w, input_dims->c};
        const cmsis_nn_dims one_out = {1, out_h, output_dims->w, output_dims->c};
        int32_t b;
        for (b = 0; b < input_dims->n; b++)
        {
            (void)arm_nn_conv_1x1_dsp_s8(conv_params, quant_params, &one,
                                         input_data + b * input_dims->h * input_dims->w * input_dims->c, filter_data,
                                         bias_data, &one_out, output_data + b * out_h * output_dims->w * geo.out_c);
        }
        return ARM_CMSIS_NN_SUCCESS;
    }
    for (; oc < geo.out_c; oc += 2)
    {
        pair_channels pair;
        /* an odd last channel: the pair before it again (its channel is written twice, with the same values) */
        const int32_t first = oc + 2 <= geo.out_c ? oc : oc - 1;
        pair_init(&pair, first, filter_data, bias_data, conv_params->input_offset, &geo);
        pair_outputs(output_data, input_data, positions, &pair, &geo);
    }
    return ARM_CMSIS_NN_SUCCESS;
}
#endif
