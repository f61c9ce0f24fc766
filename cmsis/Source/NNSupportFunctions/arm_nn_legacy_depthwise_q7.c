/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_nn_legacy_depthwise_q7: the q7 HWC depthwise convolution behind arm_depthwise_separable_conv_HWC_q7[_nonsquare].
 * One filter per channel (no channel multiplier), weights [ky][kx][ch]; each output is
 * saturate_q7(((bias[c] << bias_shift) + NN_ROUND(out_shift) + sum(in[.][.][c] * w[.][.][c])) >> out_shift).
 */
#include "arm_nn_legacy_support.h"

void arm_nn_legacy_depthwise_q7(const arm_nn_legacy_conv_geometry *g, const q7_t *in, const q7_t *wt,
                                const q7_t *bias, q7_t *out)
{
    const int32_t channels = g->ch_out;
    int32_t oy;
    for (oy = 0; oy < g->out_y; oy++)
    {
        int32_t ox;
        for (ox = 0; ox < g->out_x; ox++)
        {
            const int32_t y0 = oy * g->stride_y - g->pad_y;
            const int32_t x0 = ox * g->stride_x - g->pad_x;
            int32_t c;
            for (c = 0; c < channels; c++)
            {
                uint32_t acc = arm_nn_legacy_acc_init(bias != NULL ? bias[c] : 0, g->bias_shift, g->out_shift);
                int32_t ky;
                for (ky = 0; ky < g->kernel_y; ky++)
                {
                    const int32_t iy = y0 + ky;
                    int32_t kx;
                    if (iy < 0 || iy >= g->in_y)
                    {
                        continue;
                    }
                    for (kx = 0; kx < g->kernel_x; kx++)
                    {
                        const int32_t ix = x0 + kx;
                        if (ix < 0 || ix >= g->in_x)
                        {
                            continue;
                        }
                        acc = arm_nn_legacy_mac(acc, in[(iy * g->in_x + ix) * channels + c],
                                                wt[(ky * g->kernel_x + kx) * channels + c]);
                    }
                }
                *out++ = arm_nn_legacy_sat_q7(arm_nn_legacy_scale(acc, g->out_shift));
            }
        }
    }
}
