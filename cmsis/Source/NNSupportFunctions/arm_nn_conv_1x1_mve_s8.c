/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_nn_conv_1x1_mve_s8: the s8 1x1 convolution (no padding, one group, any stride, batches) on Helium, without
 * scratch memory. A 1x1 kernel's receptive field is one input pixel, C_IN contiguous values already: the pixels
 * of ARM_NN_CONV_MVE_ROWS output positions at a time are the rows of arm_nn_conv_mve_rows_s8, read in place.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#if NNSCONS_MVE

/** Walks the output positions (batch, row, column) in output order, giving each one's input pixel. */
typedef struct
{
    const int8_t *pixel;        /* the current position's */
    const int8_t *row;          /* the current output row's first pixel */
    const int8_t *batch;        /* the current batch's input */
    int32_t ox;
    int32_t oy;
    int32_t out_w;
    int32_t out_h;
    int32_t x_step;             /* input bytes between neighbouring positions of a row */
    int32_t y_step;             /* between output rows */
    int32_t batch_step;
} position_walk;

static void walk_start(position_walk *walk, const int8_t *input, const cmsis_nn_conv_params *conv_params,
                       const cmsis_nn_dims *input_dims, const cmsis_nn_dims *output_dims)
{
    walk->pixel = input;
    walk->row = input;
    walk->batch = input;
    walk->ox = 0;
    walk->oy = 0;
    walk->out_w = output_dims->w;
    walk->out_h = output_dims->h;
    walk->x_step = conv_params->stride.w * input_dims->c;
    walk->y_step = conv_params->stride.h * input_dims->w * input_dims->c;
    walk->batch_step = input_dims->h * input_dims->w * input_dims->c;
}

/** The current position's pixel, then on to the next position. */
static const int8_t *walk_next(position_walk *walk)
{
    const int8_t *pixel = walk->pixel;
    if (++walk->ox < walk->out_w)
    {
        walk->pixel += walk->x_step;
        return pixel;
    }
    walk->ox = 0;
    if (++walk->oy < walk->out_h)
    {
        walk->row += walk->y_step;
    }
    else
    {
        walk->oy = 0;
        walk->batch += walk->batch_step;
        walk->row = walk->batch;
    }
    walk->pixel = walk->row;
    return pixel;
}

arm_cmsis_nn_status arm_nn_conv_1x1_mve_s8(const cmsis_nn_conv_params *conv_params,
                                           const cmsis_nn_per_channel_quant_params *quant_params,
                                           const cmsis_nn_dims *input_dims,
                                           const int8_t *input_data,
                                           const int8_t *filter_data,
                                           const int32_t *bias_data,
                                           const cmsis_nn_dims *output_dims,
                                           int8_t *output_data)
{
    const int32_t out_c = output_dims->c;
    const int32_t positions = input_dims->n * output_dims->h * output_dims->w;
    arm_nn_conv_mve_block block;
    int32_t first;

    for (first = 0; first < out_c; first += ARM_NN_CONV_MVE_BLOCK)
    {
        position_walk walk;
        int32_t p;
        arm_nn_conv_mve_block_init(&block, filter_data, input_dims->c, first,
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
                /* past the last position: the last pixel again (its results are not stored) */
                rows[k] = k < count ? walk_next(&walk) : rows[count - 1];
            }
            arm_nn_conv_mve_rows_s8(&block, rows, count, output_data + p * out_c + first, out_c);
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}
#endif
