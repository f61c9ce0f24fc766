/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_avgpool_s8: average over the valid (non-padded) taps of each window, rounded to nearest with ties away
 * from zero, then clamped to the activation range. Input and output share scale and zero point. On Helium:
 * arm_pool_mve_s8.c (no scratch memory).
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

arm_cmsis_nn_status arm_avgpool_s8(const cmsis_nn_context *ctx,
                                   const cmsis_nn_pool_params *pool_params,
                                   const cmsis_nn_dims *input_dims,
                                   const int8_t *input_data,
                                   const cmsis_nn_dims *filter_dims,
                                   const cmsis_nn_dims *output_dims,
                                   int8_t *output_data)
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
            arm_nn_avgpool_mve_s8(pool_params, input_dims, input_data, filter_dims, output_dims, output_data);
        if (status != ARM_CMSIS_NN_NO_IMPL_ERROR)
        {
            return status;
        }
    }
#endif
    for (b = 0; b < input_dims->n; b++)
    {
        const int8_t *batch_in = input_data + b * in_h * in_w * channels;
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
                const int32_t count = (rows.end - rows.start) * (cols.end - cols.start);
                int32_t c;
                if (rows.end <= rows.start || cols.end <= cols.start)
                {
                    return ARM_CMSIS_NN_ARG_ERROR;
                }
                for (c = 0; c < channels; c++)
                {
                    int32_t sum = 0;
                    int32_t y;
                    for (y = rows.start; y < rows.end; y++)
                    {
                        int32_t x;
                        for (x = cols.start; x < cols.end; x++)
                        {
                            sum += batch_in[(y * in_w + x) * channels + c];
                        }
                    }
                    *output_data++ = (int8_t)arm_nn_clamp_i32(arm_nn_rounded_average(sum, count),
                                                          pool_params->activation.min,
                                                          pool_params->activation.max);
                }
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}
