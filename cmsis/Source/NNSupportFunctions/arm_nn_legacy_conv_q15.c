/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_nn_legacy_conv_q15: the q15 HWC convolution behind every arm_convolve_*_q15_* variant. Each output is
 * saturate_q15(((bias << bias_shift) + NN_ROUND(out_shift) + sum(in * w)) >> out_shift), with a wrapping 32-bit
 * sum over the taps inside the image (padding taps are zero).
 */
#include "arm_nn_legacy_support.h"

void arm_nn_legacy_conv_q15(const arm_nn_legacy_conv_geometry *g, const q15_t *in, const q15_t *wt,
                            const q15_t *bias, q15_t *out)
{
    const int32_t filter_size = (int32_t)g->kernel_y * g->kernel_x * g->ch_in;
    int32_t oy;
    for (oy = 0; oy < g->out_y; oy++)
    {
        int32_t ox;
        for (ox = 0; ox < g->out_x; ox++)
        {
            const int32_t y0 = oy * g->stride_y - g->pad_y;
            const int32_t x0 = ox * g->stride_x - g->pad_x;
            int32_t oc;
            for (oc = 0; oc < g->ch_out; oc++)
            {
                const q15_t *filter = wt + oc * filter_size;
                uint32_t acc = arm_nn_legacy_acc_init(bias != NULL ? bias[oc] : 0, g->bias_shift, g->out_shift);
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
                        const q15_t *pixel;
                        const q15_t *taps;
                        int32_t ci;
                        if (ix < 0 || ix >= g->in_x)
                        {
                            continue;
                        }
                        pixel = in + (iy * g->in_x + ix) * g->ch_in;
                        taps = filter + (ky * g->kernel_x + kx) * g->ch_in;
                        for (ci = 0; ci < g->ch_in; ci++)
                        {
                            acc = arm_nn_legacy_mac(acc, pixel[ci], taps[ci]);
                        }
                    }
                }
                *out++ = arm_nn_legacy_sat_q15(arm_nn_legacy_scale(acc, g->out_shift));
            }
        }
    }
}
