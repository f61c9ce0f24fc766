/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_max_pool_s8: maximum over the valid (non-padded) taps of each window, clamped to the activation range.
 * On Helium: arm_pool_mve_s8.c.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

arm_cmsis_nn_status arm_max_pool_s8(const cmsis_nn_context *ctx,
                                    const cmsis_nn_pool_params *pool_params,
                                    const cmsis_nn_dims *input_dims,
                                    const int8_t *src,
                                    const cmsis_nn_dims *filter_dims,
                                    const cmsis_nn_dims *output_dims,
                                    int8_t *dst)
{
    const int32_t in_h = input_dims->h;
    const int32_t in_w = input_dims->w;
    const int32_t channels = input_dims->c;
    int32_t b;

    (void)ctx;
    if (input_dims->n < 1)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
#if NNSCONS_MVE
    {
        const arm_cmsis_nn_status status =
            arm_nn_max_pool_mve_s8(pool_params, input_dims, src, filter_dims, output_dims, dst);
        if (status != ARM_CMSIS_NN_NO_IMPL_ERROR)
        {
            return status;
        }
    }
#endif
    for (b = 0; b < input_dims->n; b++)
    {
        const int8_t *batch_in = src + b * in_h * in_w * channels;
        int32_t oy;
        for (oy = 0; oy < output_dims->h; oy++)
        {
            const arm_nn_window rows =
                arm_nn_pool_window(oy, pool_params->stride.h, pool_params->padding.h, filter_dims->h, in_h);
            int32_t ox;
            for (ox = 0; ox < output_dims->w; ox++)
            {
                const arm_nn_window cols =
                    arm_nn_pool_window(ox, pool_params->stride.w, pool_params->padding.w, filter_dims->w, in_w);
                int32_t c;
                for (c = 0; c < channels; c++)
                {
                    int32_t max = INT32_MIN;
                    int32_t y;
                    for (y = rows.start; y < rows.end; y++)
                    {
                        int32_t x;
                        for (x = cols.start; x < cols.end; x++)
                        {
                            max = arm_nn_max_i32(max, batch_in[(y * in_w + x) * channels + c]);
                        }
                    }
                    *dst++ = (int8_t)arm_nn_clamp_i32(max, pool_params->activation.min, pool_params->activation.max);
                }
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}
