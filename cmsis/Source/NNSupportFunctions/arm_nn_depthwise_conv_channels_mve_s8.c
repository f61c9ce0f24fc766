/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_nn_depthwise_conv_mve_s8: the s8 depthwise convolution on Helium (MVE) cores, any channel multiplier,
 * kernel, stride, padding, dilation and batch count.
 *
 * The output channels go in blocks of sixteen (then one of eight, then one of fewer, predicated), the block in the
 * outer loop: here each block's constants are set up once (the sums' starting values with the input offset folded
 * in, the requantization, a 3x3 filter's taps packed one after the other, the gather offsets of a multiplier above
 * 1), and arm_nn_dw_mve_block_outputs runs its output positions. The block's constants and the sums waiting for
 * their requantization (arm_nn_dw_mve_work, 912 bytes) go in the scratch buffer when the caller gives one that
 * large (ctx->size), else on the stack. A multiplier of 4 or more with a wide kernel (micro_speech's first layer)
 * takes arm_nn_depthwise_conv_rows_mve_s8 instead.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#if NNSCONS_MVE

/** The block of output channels [c, c + count). */
static void dw_block_init(arm_nn_dw_mve_block *b, int32_t c, int32_t count, const arm_nn_dw_mve_geometry *g,
                          const int8_t *filter, const int32_t *bias,
                          const cmsis_nn_per_channel_quant_params *quant_params)
{
    const int32_t taps = g->k_h * g->k_w;
    const bool is_3x3 = g->k_h == 3 && g->k_w == 3;
    int32_t h;
    int32_t i;
    b->count = count;
    b->channel = c;
    b->in_channel = c / g->ch_mult;
    b->lanes = vctp16q((uint32_t)arm_nn_min_i32(count, 8));
    for (h = 0; h < 2; h++)
    {
        const mve_pred16_t lanes = vctp16q((uint32_t)arm_nn_clamp_i32(count - 8 * h, 0, 8));
        int32x4_t even = vdupq_n_s32(0);
        int32x4_t odd = vdupq_n_s32(0);
        int32_t tap;
        for (tap = 0; tap < taps; tap++)
        {
            const int16x8_t w = vldrbq_z_s16(filter + tap * g->out_c + c + 8 * h, lanes);
            even = vaddq_s32(even, vmovlbq_s16(w));
            odd = vaddq_s32(odd, vmovltq_s16(w));
            if (is_3x3)
            {
                vstrbq_s16(b->w3x3 + tap * ARM_NN_DW_MVE_BLOCK + 8 * h, w);
            }
        }
        vst1q_s32(b->start + 8 * h, vmulq_n_s32(even, g->input_offset));
        vst1q_s32(b->start + 8 * h + 4, vmulq_n_s32(odd, g->input_offset));
    }
    for (i = 0; i < 8; i++)
    {
        b->offset[i] = (int16_t)g->input_offset;
    }
    for (i = 0; i < ARM_NN_DW_MVE_BLOCK; i++)
    {
        const int32_t lane = (i / 8) * 8 + (i % 2) * 4 + (i % 8) / 2;
        const bool exists = i < count;
        b->index[i] = (uint16_t)((c + arm_nn_min_i32(i, count - 1)) / g->ch_mult - b->in_channel);
        b->bias[lane] = exists && bias != NULL ? bias[c + i] : 0;
        b->start[lane] += b->bias[lane];
        b->multiplier[lane] = exists ? quant_params->multiplier[c + i] : 0;
        b->shift[lane] = exists ? quant_params->shift[c + i] : 0;
    }
}

static void dw_geometry_init(arm_nn_dw_mve_geometry *g, const cmsis_nn_dw_conv_params *params,
                             const cmsis_nn_dims *input_dims, const cmsis_nn_dims *filter_dims,
                             const cmsis_nn_dims *output_dims)
{
    /* the last window start whose columns all lie inside the input */
    const int32_t last_base = input_dims->w - 1 - (filter_dims->w - 1) * params->dilation.w;
    g->batches = input_dims->n;
    g->in_h = input_dims->h;
    g->in_w = input_dims->w;
    g->in_c = input_dims->c;
    g->out_c = output_dims->c;
    g->ch_mult = params->ch_mult;
    g->k_h = filter_dims->h;
    g->k_w = filter_dims->w;
    g->out_h = output_dims->h;
    g->out_w = output_dims->w;
    g->stride_h = params->stride.h;
    g->stride_w = params->stride.w;
    g->pad_h = params->padding.h;
    g->pad_w = params->padding.w;
    g->dil_h = params->dilation.h;
    g->dil_w = params->dilation.w;
    g->x_col = g->dil_w * g->in_c;
    g->x_row = g->dil_h * g->in_w * g->in_c;
    g->w_row = g->k_w * g->out_c;
    g->ox_first = arm_nn_min_i32(g->pad_w <= 0 ? 0 : (g->pad_w + g->stride_w - 1) / g->stride_w, g->out_w);
    g->ox_end = last_base + g->pad_w < 0 ? 0 : (last_base + g->pad_w) / g->stride_w + 1;
    g->ox_end = arm_nn_max_i32(arm_nn_min_i32(g->ox_end, g->out_w), g->ox_first);
    g->input_offset = params->input_offset;
    g->output_offset = params->output_offset;
    g->act_min = params->activation.min;
    g->act_max = params->activation.max;
}

/** Every output, block after block of output channels, the working data in ``work``. */
static void dw_blocks(arm_nn_dw_mve_work *work, const arm_nn_dw_mve_geometry *g,
                      const cmsis_nn_per_channel_quant_params *quant_params, const int8_t *input_data,
                      const int8_t *filter_data, const int32_t *bias_data, int8_t *output_data)
{
    int32_t c = 0;
    while (c < g->out_c)
    {
        const int32_t left = g->out_c - c;
        const int32_t count = left >= ARM_NN_DW_MVE_BLOCK ? ARM_NN_DW_MVE_BLOCK : (left >= 8 ? 8 : left);
        dw_block_init(&work->block, c, count, g, filter_data, bias_data, quant_params);
        arm_nn_dw_mve_block_outputs(work, g, input_data, filter_data, output_data);
        c += count;
    }
}

/** dw_blocks with the working data on the stack (no scratch buffer large enough). */
static NNSCONS_NOINLINE void dw_blocks_on_stack(const arm_nn_dw_mve_geometry *g,
                                                const cmsis_nn_per_channel_quant_params *quant_params,
                                                const int8_t *input_data, const int8_t *filter_data,
                                                const int32_t *bias_data, int8_t *output_data)
{
    arm_nn_dw_mve_work work;
    dw_blocks(&work, g, quant_params, input_data, filter_data, bias_data, output_data);
}

arm_cmsis_nn_status arm_nn_depthwise_conv_mve_s8(const cmsis_nn_context *ctx,
                                                 const cmsis_nn_dw_conv_params *dw_conv_params,
                                                 const cmsis_nn_per_channel_quant_params *quant_params,
                                                 const cmsis_nn_dims *input_dims,
                                                 const int8_t *input_data,
                                                 const cmsis_nn_dims *filter_dims,
                                                 const int8_t *filter_data,
                                                 const int32_t *bias_data,
                                                 const cmsis_nn_dims *output_dims,
                                                 int8_t *output_data)
{
    /* the working data at the first 16-byte boundary of the scratch buffer */
    const uintptr_t align = 15u;
    arm_nn_dw_mve_geometry g;

    if (dw_conv_params->ch_mult <= 0 || output_dims->c != input_dims->c * dw_conv_params->ch_mult)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    /* the offset is added in int16 lanes for windows overhanging the input */
    if (dw_conv_params->stride.w <= 0 || dw_conv_params->dilation.w <= 0 || dw_conv_params->dilation.h <= 0 ||
        !arm_nn_offset_fits_s16(dw_conv_params->input_offset))
    {
        return arm_nn_depthwise_conv_generic_s8(dw_conv_params, quant_params, input_dims, input_data, filter_dims,
                                                filter_data, bias_data, output_dims, output_data);
    }
    if (arm_nn_dw_rows_mve_fits(dw_conv_params, input_dims->c, filter_dims))
    {
        return arm_nn_depthwise_conv_rows_mve_s8(dw_conv_params, quant_params, input_dims, input_data, filter_dims,
                                                 filter_data, bias_data, output_dims, output_data);
    }
    dw_geometry_init(&g, dw_conv_params, input_dims, filter_dims, output_dims);
    if (ctx != NULL && ctx->buf != NULL && ctx->size >= (int32_t)(sizeof(arm_nn_dw_mve_work) + align))
    {
        arm_nn_dw_mve_work *work = (arm_nn_dw_mve_work *)(((uintptr_t)ctx->buf + align) & ~align);
        dw_blocks(work, &g, quant_params, input_data, filter_data, bias_data, output_data);
    }
    else
    {
        dw_blocks_on_stack(&g, quant_params, input_data, filter_data, bias_data, output_data);
    }
    return ARM_CMSIS_NN_SUCCESS;
}
#endif
