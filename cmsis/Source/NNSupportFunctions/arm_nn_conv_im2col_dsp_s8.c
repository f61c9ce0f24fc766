/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_nn_conv_im2col_dsp_s8: the s8 convolution (one group; any kernel, stride, padding, dilation, batches) on
 * cores with the DSP extension, through the scratch buffer Arm's arm_convolve_s8 gets for its DSP build: two
 * columns of align4(KH*KW*C_IN) int16 values.
 *
 * Output positions go two at a time. Each one's receptive field is gathered once into a column, the input offset
 * added and every value widened to int16 (taps in the padding become 0), in the order the weights are read: per 4
 * values, values 0 and 2 in one word, then 1 and 3 (what SXTB16 makes of a word of weights and, rotated, of its odd
 * bytes); the two columns are interleaved, 4 words per 4 values. Then every pair of output channels reads one word
 * of each weight row per 4 values, extends it into two pairs of int16 lanes, and makes 8 dual multiply-accumulates
 * (SMLAD) with the two columns: 16 MACs for about 16 instructions. The products are exact and the int32 sums wrap
 * like the plain loop's: same integers.
 */
#include <string.h>

#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#if NNSCONS_DSP

/** The layer's shapes as the loops use them. */
typedef struct
{
    const cmsis_nn_conv_params *params;
    const cmsis_nn_dims *input_dims;
    const cmsis_nn_dims *filter_dims;
    int32_t size;           /* KH * KW * C_IN values per column */
    int32_t padded;         /* size rounded up to a multiple of 4 */
    uint32_t offset_lanes;  /* input_offset in both int16 lanes */
} im2col_geometry;

/** Four int8 values (a word) with the input offset, widened into col[0] (values 0, 2) and col[1] (values 1, 3). */
static NNSCONS_ALWAYS_INLINE void widen4(uint32_t *col, uint32_t word, uint32_t offset_lanes)
{
    col[0] = (uint32_t)__sxtab16(offset_lanes, word);
    col[1] = (uint32_t)arm_nn_sxtab16_odd(offset_lanes, word);
}

/** A column being written: int8 values are appended, four at a time widened into it (words 0, 1 of every 4: the
 * two columns of a pair are interleaved per 4 values). */
typedef struct
{
    uint32_t *col;
    uint32_t word;      /* values appended since the last widened word, from the low byte up */
    int32_t bits;       /* 8 times their count: 0, 8, 16 or 24 */
    uint32_t lanes;     /* input_offset in both int16 lanes */
} column_stream;

/** Appends four values (a word, lowest byte first). */
static NNSCONS_ALWAYS_INLINE void stream_word(column_stream *s, uint32_t word)
{
    if (s->bits == 0)
    {
        widen4(s->col, word, s->lanes);
    }
    else
    {
        widen4(s->col, s->word | (word << s->bits), s->lanes);
        s->word = word >> (32 - s->bits);
    }
    s->col += 4;
}

static NNSCONS_ALWAYS_INLINE void stream_byte(column_stream *s, uint32_t byte)
{
    s->word |= byte << s->bits;
    s->bits += 8;
    if (s->bits == 32)
    {
        widen4(s->col, s->word, s->lanes);
        s->col += 4;
        s->word = 0;
        s->bits = 0;
    }
}

/** Appends n values read from src. */
static NNSCONS_ALWAYS_INLINE void stream_run(column_stream *s, const int8_t *src, int32_t n)
{
    for (; n >= 4; n -= 4)
    {
        stream_word(s, arm_nn_read_s8x4(src));
        src += 4;
    }
    for (; n > 0; n--)
    {
        stream_byte(s, (uint8_t)*src++);
    }
}

/** Appends n copies of the byte replicated in fill4. */
static NNSCONS_ALWAYS_INLINE void stream_fill(column_stream *s, uint32_t fill4, int32_t n)
{
    for (; n >= 4; n -= 4)
    {
        stream_word(s, fill4);
    }
    for (; n > 0; n--)
    {
        stream_byte(s, fill4 & 0xFFu);
    }
}

/**
 * The receptive field of the output position with origin (base_y, base_x) of the batch starting at ``input``,
 * widened into ``col``; taps in the padding hold -input_offset, which widens to 0. Every kernel row inside the
 * input is one run of input bytes between two runs of padding (no dilation across), so whole words are read and
 * widened wherever the row allows.
 */
static void build_column(uint32_t *col, const int8_t *input, int32_t base_y, int32_t base_x,
                         const im2col_geometry *geo)
{
    const cmsis_nn_conv_params *params = geo->params;
    const int32_t in_h = geo->input_dims->h;
    const int32_t in_w = geo->input_dims->w;
    const int32_t in_c = geo->input_dims->c;
    const int32_t k_w = geo->filter_dims->w;
    const int32_t row_size = k_w * in_c;
    const uint32_t outside4 = arm_nn_dup_s8x4(-params->input_offset);
    column_stream s;
    int32_t ky;

    s.col = col;
    s.word = 0;
    s.bits = 0;
    s.lanes = geo->offset_lanes;
    for (ky = 0; ky < geo->filter_dims->h; ky++)
    {
        const int32_t iy = base_y + ky * params->dilation.h;
        if (iy < 0 || iy >= in_h)
        {
            stream_fill(&s, outside4, row_size);
        }
        else if (params->dilation.w == 1)
        {
            const int32_t kx0 = arm_nn_clamp_i32(-base_x, 0, k_w);
            const int32_t kx1 = arm_nn_clamp_i32(in_w - base_x, kx0, k_w);
            stream_fill(&s, outside4, kx0 * in_c);
            stream_run(&s, input + (iy * in_w + base_x + kx0) * in_c, (kx1 - kx0) * in_c);
            stream_fill(&s, outside4, (k_w - kx1) * in_c);
        }
        else
        {
            int32_t kx;
            for (kx = 0; kx < k_w; kx++)
            {
                const int32_t ix = base_x + kx * params->dilation.w;
                if (ix < 0 || ix >= in_w)
                {
                    stream_fill(&s, outside4, in_c);
                }
                else
                {
                    stream_run(&s, input + (iy * in_w + ix) * in_c, in_c);
                }
            }
        }
    }
    if (s.bits != 0)
    {
        /* the last word: completed with values that widen to 0 */
        stream_fill(&s, outside4, (32 - s.bits) / 8);
    }
}

/** sums[0..3] += x0.w0, x0.w1, x1.w0, x1.w1 over ``size`` values: the two interleaved widened columns at ``cols``,
 * int8 weight rows w0, w1. */
static NNSCONS_ALWAYS_INLINE void dot_2x2_s16(int32_t sums[4], const uint32_t *cols, const int8_t *w0,
                                              const int8_t *w1, int32_t size)
{
    int32_t a00 = sums[0];
    int32_t a01 = sums[1];
    int32_t a10 = sums[2];
    int32_t a11 = sums[3];
    const uint32_t *end = cols + (size >> 2) * 4;
    while (cols != end)
    {
        const int16x2_t x0_even = (int16x2_t)cols[0];
        const int16x2_t x0_odd = (int16x2_t)cols[1];
        const int16x2_t x1_even = (int16x2_t)cols[2];
        const int16x2_t x1_odd = (int16x2_t)cols[3];
        arm_nn_mac2x2_s8x4(x0_even, x0_odd, x1_even, x1_odd, w0, w1, &a00, &a01, &a10, &a11);
        cols += 4;
        w0 += 4;
        w1 += 4;
    }
    {
        /* the last 1..3 values: value e of a group is in word e & 1 (2 + (e & 1) for x1), lane e >> 1 */
        int32_t e;
        for (e = 0; e < (size & 3); e++)
        {
            const int32_t x0 = (int16_t)(cols[e & 1] >> (16 * (e >> 1)));
            const int32_t x1 = (int16_t)(cols[2 + (e & 1)] >> (16 * (e >> 1)));
            a00 += x0 * w0[e];
            a01 += x0 * w1[e];
            a10 += x1 * w0[e];
            a11 += x1 * w1[e];
        }
    }
    sums[0] = a00;
    sums[1] = a01;
    sums[2] = a10;
    sums[3] = a11;
}

/** Output channel oc's value (offset included) before the activation clamp: arm_nn_requantize_fast when ``fast``. */
static NNSCONS_ALWAYS_INLINE int32_t requantize_channel(int32_t acc, bool fast, const arm_nn_requant *rq, int32_t oc,
                                                        const cmsis_nn_per_channel_quant_params *quant_params,
                                                        int32_t output_offset)
{
    return fast ? arm_nn_requantize_fast(acc, rq)
                : arm_nn_requantize_offset(acc, quant_params->multiplier[oc], quant_params->shift[oc], output_offset);
}

/** Every output channel of the one or two output positions (``pair``: two) whose columns are ``cols``. */
static NNSCONS_NOINLINE void column_outputs(int8_t *out0, int8_t *out1, bool pair, const uint32_t *cols,
                                            const int8_t *filter, const int32_t *bias,
                                            const cmsis_nn_per_channel_quant_params *quant_params,
                                            const cmsis_nn_dims *output_dims, const im2col_geometry *geo)
{
    const cmsis_nn_conv_params *params = geo->params;
    const int32_t out_c = output_dims->c;
    const int32_t size = geo->size;
    const int32_t output_offset = params->output_offset;
    const uint32_t act_min4 = arm_nn_dup_s8x4(params->activation.min);
    const uint32_t act_max4 = arm_nn_dup_s8x4(params->activation.max);
    int32_t oc;
    for (oc = 0; oc < out_c; oc += 2)
    {
        /* an odd last channel: its weight row twice, the second result dropped */
        const int32_t oc1 = oc + 1 < out_c ? oc + 1 : oc;
        int32_t sums[4];
        uint32_t word;
        arm_nn_requant rq0;
        arm_nn_requant rq1;
        bool fast0;
        bool fast1;
        sums[0] = bias != NULL ? bias[oc] : 0;
        sums[1] = bias != NULL ? bias[oc1] : 0;
        sums[2] = sums[0];
        sums[3] = sums[1];
        dot_2x2_s16(sums, cols, filter + oc * size, filter + oc1 * size, size);
        fast0 = arm_nn_requantize_fast_init(&rq0, quant_params->multiplier[oc], quant_params->shift[oc], output_offset);
        fast1 = arm_nn_requantize_fast_init(&rq1, quant_params->multiplier[oc1], quant_params->shift[oc1],
                                            output_offset);
        word = arm_nn_pack4_s8(requantize_channel(sums[0], fast0, &rq0, oc, quant_params, output_offset),
                               requantize_channel(sums[1], fast1, &rq1, oc1, quant_params, output_offset),
                               requantize_channel(sums[2], fast0, &rq0, oc, quant_params, output_offset),
                               requantize_channel(sums[3], fast1, &rq1, oc1, quant_params, output_offset), act_min4,
                               act_max4);
        out0[oc] = (int8_t)word;
        if (pair)
        {
            out1[oc] = (int8_t)(word >> 16);
        }
        if (oc1 != oc)
        {
            out0[oc1] = (int8_t)(word >> 8);
            if (pair)
            {
                out1[oc1] = (int8_t)(word >> 24);
            }
        }
    }
}

arm_cmsis_nn_status arm_nn_conv_im2col_dsp_s8(int16_t *columns,
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
    const int32_t out_h = output_dims->h;
    const int32_t out_w = output_dims->w;
    const int32_t per_batch = out_h * out_w;
    const int32_t positions = input_dims->n * per_batch;
    const int32_t in_batch = input_dims->h * input_dims->w * input_dims->c;
    im2col_geometry geo;
    uint32_t *const cols = (uint32_t *)(void *)columns;
    int32_t p;

    geo.params = conv_params;
    geo.input_dims = input_dims;
    geo.filter_dims = filter_dims;
    geo.size = filter_dims->h * filter_dims->w * input_dims->c;
    geo.padded = arm_nn_align(geo.size, 4);
    geo.offset_lanes = arm_nn_dup_s16(conv_params->input_offset);
    for (p = 0; p < positions; p += 2)
    {
        const bool pair = p + 1 < positions;
        int32_t k;
        for (k = 0; k < (pair ? 2 : 1); k++)
        {
            const int32_t q = p + k;
            const int32_t b = q / per_batch;
            const int32_t oy = (q - b * per_batch) / out_w;
            const int32_t ox = q - b * per_batch - oy * out_w;
            build_column(cols + 2 * k, input_data + b * in_batch,
                         oy * conv_params->stride.h - conv_params->padding.h,
                         ox * conv_params->stride.w - conv_params->padding.w, &geo);
        }
        if (!pair)
        {
            /* a last position alone: its column twice */
            int32_t g;
            for (g = 0; g < geo.padded; g += 4)
            {
                cols[g + 2] = cols[g];
                cols[g + 3] = cols[g + 1];
            }
        }
        column_outputs(output_data + p * output_dims->c, output_data + (p + 1) * output_dims->c, pair, cols,
                       filter_data, bias_data, quant_params, output_dims, &geo);
    }
    return ARM_CMSIS_NN_SUCCESS;
}
#endif
