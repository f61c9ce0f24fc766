/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_softmax_q15: the legacy softmax with base 2 (2^x instead of e^x), output Q0.15. In integer steps:
 *     base = max(x) - 16
 *     sum  = sum over x[i] > base of 2^USAT(x[i] - base, 5)     (USAT(v, n) clamps v to [0, 2^n - 1])
 *     out  = x[i] > base ? SSAT((int32)(2^32 / sum) >> USAT(17 + base - x[i], 5), 16) : 0
 * The input's Q format does not matter to the kernel: one input unit is one power of two. Rows of up to 65535
 * values never overflow the sum here (it is unsigned); bit-exactness with Arm's library is only claimed for
 * rows of up to 32767 values.
 */
#include "arm_nn_legacy_support.h"

void arm_softmax_q15(const q15_t *vec_in, const uint16_t dim_vec, q15_t *p_out)
{
    int32_t max = INT16_MIN;
    int32_t base;
    uint32_t sum = 0;
    int32_t one_over_sum;
    uint16_t i;

    if (dim_vec == 0)
    {
        return;
    }
    for (i = 0; i < dim_vec; i++)
    {
        max = vec_in[i] > max ? vec_in[i] : max;
    }
    base = max - 16;
    for (i = 0; i < dim_vec; i++)
    {
        if (vec_in[i] > base)
        {
            sum += (uint32_t)1 << arm_nn_legacy_usat(vec_in[i] - base, 5);
        }
    }
    one_over_sum = (int32_t)(((uint64_t)1 << 32) / sum);
    for (i = 0; i < dim_vec; i++)
    {
        p_out[i] = vec_in[i] > base
                       ? arm_nn_legacy_sat_q15(one_over_sum >> arm_nn_legacy_usat(17 + base - vec_in[i], 5))
                       : 0;
    }
}
