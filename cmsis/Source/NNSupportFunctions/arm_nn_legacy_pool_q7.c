/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_nn_legacy_pool_q7: square HWC max / average pooling of q7 values for arm_maxpool_q7_HWC and
 * arm_avepool_q7_HWC. The window of output o covers [o * stride - padding, o * stride - padding + kernel) on each
 * axis; only taps inside the image count. The average is sum / count with C's truncating division, as in Arm's
 * reference code (no rounding). The output keeps the input's Q format.
 */
#include "arm_nn_legacy_support.h"

/** The part of the window of output position o that lies inside [0, dim_in). */
static void window(int32_t o, uint16_t kernel, uint16_t padding, uint16_t stride, uint16_t dim_in,
                   int32_t *start, int32_t *end)
{
    const int32_t origin = o * stride - padding;
    *start = origin < 0 ? 0 : origin;
    *end = origin + kernel > dim_in ? dim_in : origin + kernel;
}

void arm_nn_legacy_pool_q7(const q7_t *in, uint16_t dim_in, uint16_t channels, uint16_t kernel, uint16_t padding,
                           uint16_t stride, uint16_t dim_out, bool is_max, q7_t *out)
{
    int32_t oy;
    for (oy = 0; oy < dim_out; oy++)
    {
        int32_t y_start, y_end, ox;
        window(oy, kernel, padding, stride, dim_in, &y_start, &y_end);
        for (ox = 0; ox < dim_out; ox++)
        {
            int32_t x_start, x_end, c;
            window(ox, kernel, padding, stride, dim_in, &x_start, &x_end);
            for (c = 0; c < channels; c++)
            {
                int32_t max = INT8_MIN;
                int32_t sum = 0;
                int32_t count = 0;
                int32_t y;
                for (y = y_start; y < y_end; y++)
                {
                    int32_t x;
                    for (x = x_start; x < x_end; x++)
                    {
                        const int32_t v = in[(y * dim_in + x) * channels + c];
                        max = v > max ? v : max;
                        sum += v;
                        count++;
                    }
                }
                if (count == 0)
                {
                    *out++ = 0;
                }
                else
                {
                    *out++ = (q7_t)(is_max ? max : sum / count);
                }
            }
        }
    }
}
