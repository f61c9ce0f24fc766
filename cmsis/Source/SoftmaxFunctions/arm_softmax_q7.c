/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_softmax_q7: the legacy softmax with base 2 (2^x instead of e^x), output Q0.7. In integer steps:
 *     base = max(x) - 8
 *     sum  = sum over all i of 2^USAT(x[i] - base, 3)          (USAT(v, n) clamps v to [0, 2^n - 1])
 *     out  = SSAT(((2^20) / sum) >> USAT(13 + base - x[i], 5), 8)
 * The input's Q format does not matter to the kernel: one input unit is one power of two.
 */
#include "arm_nn_legacy_support.h"

void arm_softmax_q7(const q7_t *vec_in, const uint16_t dim_vec, q7_t *p_out)
{
    int32_t max = INT8_MIN;
    int32_t base;
    int32_t sum = 0;
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
    base = max - 8;
    for (i = 0; i < dim_vec; i++)
    {
        sum += (int32_t)1 << arm_nn_legacy_usat(vec_in[i] - base, 3);
    }
    one_over_sum = ((int32_t)1 << 20) / sum;
    for (i = 0; i < dim_vec; i++)
    {
        p_out[i] = arm_nn_legacy_sat_q7(one_over_sum >> arm_nn_legacy_usat(13 + base - vec_in[i], 5));
    }
}
