/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_nn_conv_im2col_mve_s8: the s8 convolution (one group; any kernel, stride, padding, dilation, batches) on
 * Helium, through the scratch buffer of arm_convolve_s8: ARM_NN_CONV_MVE_ROWS (3) output positions at a time, each
 * one's receptive field is gathered into an int8 column in the weights' (ky, kx, ic) order, then the columns are
 * the rows of arm_nn_conv_mve_rows_s8. Taps in the padding hold -input_offset, which the offset correction there
 * turns into 0: (-offset) * w + offset * w. The columns follow each other: 3 * KH*KW*C_IN bytes, less than what
 * any of the getters asks for.
 *
 * Most receptive fields lie inside the input: KH runs of KW*C_IN contiguous values (without horizontal dilation),
 * copied by vectors, a short run (a first layer's) by one masked vector. The others are filled with the padding
 * value, then their taps inside the input copied.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#if NNSCONS_MVE

/** The layer's shapes as the column builders use them, copied out of the parameter structs (int8 stores into
 * the columns could alias those, so that the compiler would read them again after each one). */
typedef struct
{
    int32_t in_h;
    int32_t in_w;
    int32_t in_c;
    int32_t k_h;
    int32_t k_w;
    int32_t dilation_h;
    int32_t dilation_w;
    int32_t span_h;             /* input rows one receptive field covers: (KH - 1) * dilation.h + 1 */
    int32_t span_w;
    int32_t row_size;           /* KW * C_IN: the values of one kernel row */
    int32_t input_step;         /* input bytes from one kernel row to the next: dilation.h * W * C_IN */
    int8x16_t outside;          /* -input_offset in every lane */
} im2col_geometry;

static void copy_s8(int8_t *dst, const int8_t *src, int32_t n)
{
    for (; n >= 16; n -= 16)
    {
        vst1q_s8(dst, vld1q_s8(src));
        dst += 16;
        src += 16;
    }
    if (n > 0)
    {
        const mve_pred16_t p = vctp8q((uint32_t)n);
        vstrbq_p_s8(dst, vldrbq_z_s8(src, p), p);
    }
}

static void fill_s8(int8_t *dst, int8x16_t value, int32_t n)
{
    for (; n > 0; n -= 16)
    {
        vstrbq_p_s8(dst, value, vctp8q((uint32_t)n));
        dst += 16;
    }
}

/** A receptive field inside the input (no horizontal dilation): KH runs of row_size values from ``src`` on. */
static NNSCONS_NOINLINE void build_inside(int8_t *col, const int8_t *src, const im2col_geometry *geo)
{
    const int32_t row_size = geo->row_size;
    const int32_t step = geo->input_step;
    int32_t rows = geo->k_h;
    if (row_size <= 16)
    {
        const mve_pred16_t p = vctp8q((uint32_t)row_size);
        for (; rows > 0; rows--)
        {
            vstrbq_p_s8(col, vldrbq_z_s8(src, p), p);
            col += row_size;
            src += step;
        }
        return;
    }
    for (; rows > 0; rows--)
    {
        copy_s8(col, src, row_size);
        col += row_size;
        src += step;
    }
}

/** The taps of one kernel row inside the input (the others keep the padding value); ``src``: the input row. */
static void copy_row_taps(int8_t *col, const int8_t *src, int32_t base_x, const im2col_geometry *geo)
{
    const int32_t in_c = geo->in_c;
    int32_t kx;
    for (kx = 0; kx < geo->k_w; kx++)
    {
        const int32_t ix = base_x + kx * geo->dilation_w;
        if (ix >= 0 && ix < geo->in_w)
        {
            copy_s8(col + kx * in_c, src + ix * in_c, in_c);
        }
    }
}

/**
 * A receptive field that overhangs the input or is dilated horizontally, with origin (base_y, base_x) in the batch
 * at ``input``: the whole column is the padding value (-input_offset) first, then the taps inside the input are
 * copied over it: without dilation one run per kernel row (the same columns of every row are inside).
 */
static NNSCONS_NOINLINE void build_clipped(int8_t *col, const int8_t *input, int32_t base_y, int32_t base_x,
                                           const im2col_geometry *geo)
{
    const int32_t row_bytes = geo->in_w * geo->in_c;
    const int32_t in_c = geo->in_c;
    const int32_t kx0 = arm_nn_clamp_i32(-base_x, 0, geo->k_w);
    const int32_t kx1 = arm_nn_clamp_i32(geo->in_w - base_x, kx0, geo->k_w);
    int32_t ky;
    fill_s8(col, geo->outside, geo->k_h * geo->row_size);
    for (ky = 0; ky < geo->k_h; ky++)
    {
        const int32_t iy = base_y + ky * geo->dilation_h;
        if (iy >= 0 && iy < geo->in_h)
        {
            if (geo->dilation_w == 1)
            {
                copy_s8(col + kx0 * in_c, input + iy * row_bytes + (base_x + kx0) * in_c, (kx1 - kx0) * in_c);
            }
            else
            {
                copy_row_taps(col, input + iy * row_bytes, base_x, geo);
            }
        }
        col += geo->row_size;
    }
}

/** Walks the output positions in output order: batch, row, column, and each one's receptive field origin. */
typedef struct
{
    const int8_t *batch;        /* the current batch's input */
    int32_t batch_bytes;
    int32_t ox;
    int32_t oy;
    int32_t out_w;
    int32_t out_h;
    int32_t base_x;
    int32_t base_y;
    int32_t stride_w;
    int32_t stride_h;
    int32_t first_x;            /* base_x of column 0: -padding.w */
    int32_t first_y;
} position_walk;

static void walk_start(position_walk *walk, const int8_t *input, const cmsis_nn_conv_params *conv_params,
                       const cmsis_nn_dims *input_dims, const cmsis_nn_dims *output_dims)
{
    walk->batch = input;
    walk->batch_bytes = input_dims->h * input_dims->w * input_dims->c;
    walk->ox = 0;
    walk->oy = 0;
    walk->out_w = output_dims->w;
    walk->out_h = output_dims->h;
    walk->stride_w = conv_params->stride.w;
    walk->stride_h = conv_params->stride.h;
    walk->first_x = -conv_params->padding.w;
    walk->first_y = -conv_params->padding.h;
    walk->base_x = walk->first_x;
    walk->base_y = walk->first_y;
}

static void walk_next(position_walk *walk)
{
    walk->base_x += walk->stride_w;
    if (++walk->ox < walk->out_w)
    {
        return;
    }
    walk->ox = 0;
    walk->base_x = walk->first_x;
    walk->base_y += walk->stride_h;
    if (++walk->oy < walk->out_h)
    {
        return;
    }
    walk->oy = 0;
    walk->base_y = walk->first_y;
    walk->batch += walk->batch_bytes;
}

/** The receptive field of the walk's current position into ``col``. */
static void build_column(int8_t *col, const position_walk *walk, const im2col_geometry *geo)
{
    const int32_t x = walk->base_x;
    const int32_t y = walk->base_y;
    if (x >= 0 && y >= 0 && x + geo->span_w <= geo->in_w && y + geo->span_h <= geo->in_h && geo->dilation_w == 1)
    {
        build_inside(col, walk->batch + (y * geo->in_w + x) * geo->in_c, geo);
    }
    else
    {
        build_clipped(col, walk->batch, y, x, geo);
    }
}

static void geometry_init(im2col_geometry *geo, const cmsis_nn_conv_params *conv_params,
                          const cmsis_nn_dims *input_dims, const cmsis_nn_dims *filter_dims)
{
    geo->in_h = input_dims->h;
    geo->in_w = input_dims->w;
    geo->in_c = input_dims->c;
    geo->k_h = filter_dims->h;
    geo->k_w = filter_dims->w;
    geo->dilation_h = conv_params->dilation.h;
    geo->dilation_w = conv_params->dilation.w;
    geo->span_h = (filter_dims->h - 1) * conv_params->dilation.h + 1;
    geo->span_w = (filter_dims->w - 1) * conv_params->dilation.w + 1;
    geo->row_size = filter_dims->w * input_dims->c;
    geo->input_step = conv_params->dilation.h * input_dims->w * input_dims->c;
    geo->outside = vdupq_n_s8((int8_t)(-conv_params->input_offset));
}

arm_cmsis_nn_status arm_nn_conv_im2col_mve_s8(int8_t *columns,
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
    const int32_t out_c = output_dims->c;
    const int32_t row_size = filter_dims->h * filter_dims->w * input_dims->c;
    const int32_t positions = input_dims->n * output_dims->h * output_dims->w;
    im2col_geometry geo;
    arm_nn_conv_mve_block block;
    int32_t first;

    geometry_init(&geo, conv_params, input_dims, filter_dims);
    for (first = 0; first < out_c; first += ARM_NN_CONV_MVE_BLOCK)
    {
        position_walk walk;
        int32_t p;
        arm_nn_conv_mve_block_init(&block, filter_data, row_size, first,
                                   arm_nn_min_i32(out_c - first, ARM_NN_CONV_MVE_BLOCK), bias_data, quant_params,
                                   conv_params);
        walk_start(&walk, input_data, conv_params, input_dims, output_dims);
        for (p = 0; p < positions; p += ARM_NN_CONV_MVE_ROWS)
        {
            const int32_t count = arm_nn_min_i32(positions - p, ARM_NN_CONV_MVE_ROWS);
            const int8_t *rows[ARM_NN_CONV_MVE_ROWS];
            int32_t k;
            for (k = 0; k < ARM_NN_CONV_MVE_ROWS; k++)
            {
                /* past the last position: column 0 again (its results are not stored) */
                rows[k] = columns + (k < count ? k : 0) * row_size;
            }
            for (k = 0; k < count; k++)
            {
                build_column(columns + k * row_size, &walk, &geo);
                walk_next(&walk);
            }
            arm_nn_conv_mve_rows_s8(&block, rows, count, output_data + p * out_c + first, out_c);
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}
#endif
