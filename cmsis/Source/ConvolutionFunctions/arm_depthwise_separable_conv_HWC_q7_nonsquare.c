/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_depthwise_separable_conv_HWC_q7_nonsquare: q7 depthwise convolution (one filter per channel, weights
 * [ky][kx][ch]), non-square image and kernel; needs ch_im_in == ch_im_out (there is no channel multiplier).
 * Arithmetic and layouts: see arm_nnfunctions_legacy.h.
 */
#include "arm_nn_legacy_support.h"

arm_status arm_depthwise_separable_conv_HWC_q7_nonsquare(const q7_t *Im_in,
                                                         const uint16_t dim_im_in_x,
                                                         const uint16_t dim_im_in_y,
                                                         const uint16_t ch_im_in,
                                                         const q7_t *wt,
                                                         const uint16_t ch_im_out,
                                                         const uint16_t dim_kernel_x,
                                                         const uint16_t dim_kernel_y,
                                                         const uint16_t padding_x,
                                                         const uint16_t padding_y,
                                                         const uint16_t stride_x,
                                                         const uint16_t stride_y,
                                                         const q7_t *bias,
                                                         const uint16_t bias_shift,
                                                         const uint16_t out_shift,
                                                         q7_t *Im_out,
                                                         const uint16_t dim_im_out_x,
                                                         const uint16_t dim_im_out_y,
                                                         q15_t *bufferA,
                                                         q7_t *bufferB)
{
    const arm_nn_legacy_conv_geometry g = {dim_im_in_x, dim_im_in_y, ch_im_in, ch_im_out, dim_kernel_x,
                                            dim_kernel_y, padding_x, padding_y, stride_x, stride_y,
                                            dim_im_out_x, dim_im_out_y, bias_shift, out_shift};

    (void)bufferA; /* scratch of Arm's DSP code; this implementation needs none */
    (void)bufferB;
    if (!(ch_im_in == ch_im_out))
    {
        return ARM_MATH_SIZE_MISMATCH;
    }
    arm_nn_legacy_depthwise_q7(&g, Im_in, wt, bias, Im_out);
    return ARM_MATH_SUCCESS;
}
