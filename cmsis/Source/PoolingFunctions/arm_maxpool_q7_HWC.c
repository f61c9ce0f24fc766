/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_maxpool_q7_HWC: square q7 HWC pooling, the maximum of each window's valid taps.
 * The output keeps the input's Q format. Arm's DSP code pools in place: callers must treat Im_in as destroyed
 * (this implementation only reads it).
 */
#include "arm_nn_legacy_support.h"

void arm_maxpool_q7_HWC(q7_t *Im_in,
                        const uint16_t dim_im_in,
                        const uint16_t ch_im_in,
                        const uint16_t dim_kernel,
                        const uint16_t padding,
                        const uint16_t stride,
                        const uint16_t dim_im_out,
                        q7_t *bufferA,
                        q7_t *Im_out)
{
    (void)bufferA; /* unused here and by Arm's code */
    arm_nn_legacy_pool_q7(Im_in, dim_im_in, ch_im_in, dim_kernel, padding, stride, dim_im_out, true, Im_out);
}
