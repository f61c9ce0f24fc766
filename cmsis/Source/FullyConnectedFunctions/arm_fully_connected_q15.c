/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_fully_connected_q15: q15 vector, q15 matrix and bias, q15 output.
 *     pOut[r] = saturate(((bias[r] << bias_shift) + NN_ROUND(out_shift) + sum_c pM[r][c] * pV[c]) >> out_shift)
 * with a wrapping 32-bit sum; pM is row-major [num_of_rows][dim_vec].
 */
#include "arm_nn_legacy_support.h"

arm_status arm_fully_connected_q15(const q15_t *pV,
                                   const q15_t *pM,
                                   const uint16_t dim_vec,
                                   const uint16_t num_of_rows,
                                   const uint16_t bias_shift,
                                   const uint16_t out_shift,
                                   const q15_t *bias,
                                   q15_t *pOut,
                                   q15_t *vec_buffer)
{
    uint16_t r = 0;

    (void)vec_buffer; /* scratch of Arm's DSP code; this implementation needs none */
    for (; r < num_of_rows; r++)
    {
        const q15_t *row = pM + (size_t)r * dim_vec;
        uint32_t acc = arm_nn_legacy_acc_init(bias != NULL ? bias[r] : 0, bias_shift, out_shift);
        uint16_t c;
        for (c = 0; c < dim_vec; c++)
        {
            acc = arm_nn_legacy_mac(acc, pV[c], row[c]);
        }
        pOut[r] = arm_nn_legacy_sat_q15(arm_nn_legacy_scale(acc, out_shift));
    }
    return ARM_MATH_SUCCESS;
}
