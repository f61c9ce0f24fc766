/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_nn_depthwise_conv_rows_mve_s8: the s8 depthwise convolution on Helium (MVE) for a channel multiplier that is a
 * multiple of 4 and a kernel 4 to 16 taps wide (a first layer spreading one input channel over many, as in
 * micro_speech: 1 -> 8 channels, 10x8 kernel).
 *
 * Here the channels share their input: each kernel row of one input channel, up to eight taps, is one (gather)
 * load into int16 lanes with the input offset added, and serves four output channels, whose weights along the row
 * (C_OUT bytes apart) are one gather load each; one VMLADAVA per output channel sums the row's products into a
 * scalar: 10 instructions for 32 MACs (8 taps, 4 channels), against 24 in the channel-vector kernel. A window
 * overhanging the input reads only its rows inside and predicates the columns outside (not read; zeros in their
 * lanes add nothing). The four sums are requantized together (arm_nn_requantize_mve). They wrap modulo 2^32 like
 * the plain C loop's: the same integers.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#if NNSCONS_MVE

/** One output position's window: the first input byte (of input channel 0) and weight of the kernel rows inside
 * the input, their count, and the lanes of the columns inside (per chunk of eight taps). */
typedef struct
{
    const int8_t *x;
    const int8_t *w;
    int32_t rows;
    mve_pred16_t columns[2];
    bool full;          /* one chunk, all eight lanes inside: no predication */
} dw_window;

/** The layer's shapes as the loops use them. */
typedef struct
{
    const cmsis_nn_dw_conv_params *params;
    const cmsis_nn_per_channel_quant_params *quant_params;
    const int32_t *bias;
    int32_t in_h, in_w, in_c, out_c, k_h, k_w, chunks;
    int32_t x_row;        /* input bytes from one kernel row to the next */
    int32_t w_row;        /* filter bytes from one kernel row to the next */
    int32_t x_chunk;      /* input bytes from one chunk of eight taps to the next */
    uint16x8_t x_lanes;   /* input bytes of the taps of a chunk, from its first */
    uint16x8_t w_lanes[2]; /* filter bytes of the taps of each chunk from its first (lanes beyond the kernel: 0) */
} dw_rows_geometry;

/** The four sums of output channels oc..oc+3 over the window's rows: x and w at the window's first tap of their
 * input channel and of oc. ``full`` (a constant where this is inlined): every lane of one chunk inside, no
 * predication. Otherwise the input lanes outside are zeros (not read, the offset not added), so that the weights,
 * whose lanes beyond the kernel read its first tap again, can be read and multiplied unpredicated. */
static NNSCONS_ALWAYS_INLINE int32x4_t dw_rows_sums(const int8_t *x, const int8_t *w, const dw_window *win,
                                                    const dw_rows_geometry *g, bool full)
{
    const int16_t offset = (int16_t)g->params->input_offset;
    const uint16x8_t x_lanes = g->x_lanes;
    const int32_t x_row = g->x_row;
    const int32_t w_row = g->w_row;
    int32_t a0 = 0;
    int32_t a1 = 0;
    int32_t a2 = 0;
    int32_t a3 = 0;
    int32_t row;
    int32x4_t sums;
    int32_t chunk;
    for (chunk = 0; chunk < (full ? 1 : g->chunks); chunk++)
    {
        /* the four channels' weights: the same lanes one byte apart */
        const uint16x8_t w0 = g->w_lanes[chunk];
        const uint16x8_t w1 = vaddq_n_u16(w0, 1);
        const uint16x8_t w2 = vaddq_n_u16(w0, 2);
        const uint16x8_t w3 = vaddq_n_u16(w0, 3);
        const mve_pred16_t p = win->columns[chunk];
        const int8_t *xc = x + chunk * g->x_chunk;
        const int8_t *wc = w + chunk * 8 * g->out_c;
        for (row = 0; row < win->rows; row++)
        {
            int16x8_t xv;
            if (full)
            {
                xv = vaddq_n_s16(vldrbq_gather_offset_s16(xc, x_lanes), offset);
            }
            else
            {
                xv = vldrbq_gather_offset_z_s16(xc, x_lanes, p);
                xv = vaddq_m_n_s16(xv, xv, offset, p);
            }
            a0 = vmladavaq_s16(a0, xv, vldrbq_gather_offset_s16(wc, w0));
            a1 = vmladavaq_s16(a1, xv, vldrbq_gather_offset_s16(wc, w1));
            a2 = vmladavaq_s16(a2, xv, vldrbq_gather_offset_s16(wc, w2));
            a3 = vmladavaq_s16(a3, xv, vldrbq_gather_offset_s16(wc, w3));
            xc += x_row;
            wc += w_row;
        }
    }
    sums = vsetq_lane_s32(a1, vdupq_n_s32(a0), 1);
    sums = vsetq_lane_s32(a2, sums, 2);
    return vsetq_lane_s32(a3, sums, 3);
}

/** [first, end) of the kernel taps along one axis that fall inside the input, for a window starting at ``base``. */
static void dw_rows_inside(int32_t *first, int32_t *end, int32_t base, int32_t dilation, int32_t kernel,
                           int32_t size)
{
    const int32_t lo = base < 0 ? (-base + dilation - 1) / dilation : 0;
    int32_t hi = size - 1 - base < 0 ? 0 : (size - 1 - base) / dilation + 1;
    hi = arm_nn_min_i32(hi, kernel);
    *first = arm_nn_min_i32(lo, kernel);
    *end = arm_nn_max_i32(hi, *first);
}

/** All output channels of one output position. */
static NNSCONS_ALWAYS_INLINE void dw_rows_position(int8_t *out, const dw_window *win, const dw_rows_geometry *g,
                                                   bool full)
{
    const cmsis_nn_dw_conv_params *params = g->params;
    const int32_t *multiplier = g->quant_params->multiplier;
    const int32_t *shift = g->quant_params->shift;
    const int32x4_t act_min = vdupq_n_s32(params->activation.min);
    const int32x4_t act_max = vdupq_n_s32(params->activation.max);
    const int32_t output_offset = params->output_offset;
    const int32_t ch_mult = params->ch_mult;
    const int32_t out_c = g->out_c;
    int32_t oc;
    for (oc = 0; oc < out_c; oc += 4)
    {
        int32x4_t r = dw_rows_sums(win->x + oc / ch_mult, win->w + oc, win, g, full);
        if (g->bias != NULL)
        {
            r = vaddq_s32(r, vld1q_s32(g->bias + oc));
        }
        r = arm_nn_requantize_mve(r, vld1q_s32(multiplier + oc), vld1q_s32(shift + oc));
        r = vminq_s32(vmaxq_s32(vaddq_n_s32(r, output_offset), act_min), act_max);
        vstrbq_s32(out + oc, r);
    }
}

static NNSCONS_NOINLINE void dw_rows_position_full(int8_t *out, const dw_window *win, const dw_rows_geometry *g)
{
    dw_rows_position(out, win, g, true);
}

static NNSCONS_NOINLINE void dw_rows_position_clipped(int8_t *out, const dw_window *win, const dw_rows_geometry *g)
{
    dw_rows_position(out, win, g, false);
}

arm_cmsis_nn_status arm_nn_depthwise_conv_rows_mve_s8(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                      const cmsis_nn_per_channel_quant_params *quant_params,
                                                      const cmsis_nn_dims *input_dims,
                                                      const int8_t *input_data,
                                                      const cmsis_nn_dims *filter_dims,
                                                      const int8_t *filter_data,
                                                      const int32_t *bias_data,
                                                      const cmsis_nn_dims *output_dims,
                                                      int8_t *output_data)
{
    const int32_t in_batch = input_dims->h * input_dims->w * input_dims->c;
    dw_rows_geometry g;
    int32_t batch;
    int32_t lane;
    uint16_t x_lanes[8];
    uint16_t w_lanes[2][8];

    if (!arm_nn_dw_rows_mve_fits(dw_conv_params, input_dims->c, filter_dims) ||
        output_dims->c != input_dims->c * dw_conv_params->ch_mult)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    g.params = dw_conv_params;
    g.quant_params = quant_params;
    g.bias = bias_data;
    g.in_h = input_dims->h;
    g.in_w = input_dims->w;
    g.in_c = input_dims->c;
    g.out_c = output_dims->c;
    g.k_h = filter_dims->h;
    g.k_w = filter_dims->w;
    g.chunks = (filter_dims->w + 7) / 8;
    g.x_row = dw_conv_params->dilation.h * input_dims->w * input_dims->c;
    g.w_row = filter_dims->w * output_dims->c;
    g.x_chunk = 8 * dw_conv_params->dilation.w * input_dims->c;
    for (lane = 0; lane < 8; lane++)
    {
        x_lanes[lane] = (uint16_t)(lane * dw_conv_params->dilation.w * input_dims->c);
        w_lanes[0][lane] = (uint16_t)(lane < filter_dims->w ? lane * output_dims->c : 0);
        w_lanes[1][lane] = (uint16_t)(lane + 8 < filter_dims->w ? lane * output_dims->c : 0);
    }
    g.x_lanes = vld1q_u16(x_lanes);
    g.w_lanes[0] = vld1q_u16(w_lanes[0]);
    g.w_lanes[1] = vld1q_u16(w_lanes[1]);
    for (batch = 0; batch < input_dims->n; batch++)
    {
        int32_t oy;
        for (oy = 0; oy < output_dims->h; oy++)
        {
            const int32_t base_y = oy * dw_conv_params->stride.h - dw_conv_params->padding.h;
            int32_t ky0;
            int32_t ky1;
            int32_t ox;
            dw_rows_inside(&ky0, &ky1, base_y, dw_conv_params->dilation.h, g.k_h, g.in_h);
            for (ox = 0; ox < output_dims->w; ox++)
            {
                const int32_t base_x = ox * dw_conv_params->stride.w - dw_conv_params->padding.w;
                const int32_t iy = base_y + ky0 * dw_conv_params->dilation.h;
                dw_window win;
                int32_t kx0;
                int32_t kx1;
                int32_t chunk;
                dw_rows_inside(&kx0, &kx1, base_x, dw_conv_params->dilation.w, g.k_w, g.in_w);
                /* the columns outside are never read: their lanes are off */
                win.x = input_data + (iy * g.in_w + base_x) * g.in_c;
                win.w = filter_data + ky0 * g.w_row;
                win.rows = ky1 - ky0;
                for (chunk = 0; chunk < 2; chunk++)
                {
                    /* the lanes of taps [kx0, kx1) among the chunk's eight (two predicate bits per lane) */
                    const uint32_t from = (uint32_t)arm_nn_clamp_i32(kx0 - 8 * chunk, 0, 8);
                    const uint32_t to = (uint32_t)arm_nn_clamp_i32(kx1 - 8 * chunk, 0, 8);
                    win.columns[chunk] = (mve_pred16_t)(vctp16q(to) & ~vctp16q(from));
                }
                win.full = g.chunks == 1 && win.columns[0] == 0xFFFF;
                if (win.full)
                {
                    dw_rows_position_full(output_data, &win, &g);
                }
                else
                {
                    dw_rows_position_clipped(output_data, &win, &g);
                }
                output_data += g.out_c;
            }
        }
        input_data += in_batch;
    }
    return ARM_CMSIS_NN_SUCCESS;
}
#endif
