/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_nn_dot_s8: sum_i (x[i] + x_offset) * w[i] over int8 vectors, the inner loop of the s8 convolutions and
 * fully connected layers; arm_nn_dot2_s8: the same for two weight rows at once, reading (and extending) x once.
 *
 * On cores with the DSP extension (__ARM_FEATURE_DSP: Cortex-M4/M7/M33/M55) four taps take one 32-bit load of
 * each vector, two sign extensions of each into pairs of int16 lanes (bytes 0 and 2, then bytes 1 and 3; the
 * offset is added to the x lanes by the extending add) and two dual 16x16 multiply-accumulates. x + x_offset stays
 * within int16 for every s8 offset (-128..127 plus -127..128; other offsets take the plain loop), so the lanes are
 * exact and the sum is the same integer as the plain C loop's, whatever the order.
 */
#include "arm_nnsupportfunctions.h"

#if NNSCONS_MVE
/** acc + sum_i (x[i] + x_offset) * w[i] over 16 values at a time (the last ones predicated): the products of the
 * raw values by VMLADAVA, the offset's by the weights' sum (sum (x + o) w = sum x w + o sum w, exact modulo 2^32). */
static int32_t dot_mve_s8(const int8_t *x, const int8_t *w, int32_t length, int32_t x_offset, int32_t acc)
{
    int32_t weights_sum = 0;
    int32_t i;
    for (i = 0; i < length; i += 16)
    {
        const mve_pred16_t p = vctp8q((uint32_t)(length - i));
        const int8x16_t ws = vldrbq_z_s8(w + i, p);
        acc = vmladavaq_p_s8(acc, vldrbq_z_s8(x + i, p), ws, p);
        weights_sum = vaddvaq_p_s8(weights_sum, ws, p);
    }
    return (int32_t)((uint32_t)acc + (uint32_t)x_offset * (uint32_t)weights_sum);
}
#endif

#if NNSCONS_DSP
/** acc + four products: x's lanes (bytes 0/2 and 1/3, offset added) with w's four bytes. */
static inline int32_t mac4_s8(int16x2_t x_even, int16x2_t x_odd, const int8_t *w, int32_t acc)
{
    const uint32_t ws = arm_nn_read_s8x4(w);
    return __smlad(x_odd, __sxtb16(arm_nn_ror8(ws)), __smlad(x_even, __sxtb16(ws), acc));
}
#endif

int32_t arm_nn_dot_s8(const int8_t *x, const int8_t *w, int32_t length, int32_t x_offset)
{
    int32_t acc = 0;
    int32_t i = 0;
#if NNSCONS_MVE
    return dot_mve_s8(x, w, length, x_offset, acc);
#endif
#if NNSCONS_DSP
    const uint32_t offset_lanes = arm_nn_dup_s16(x_offset);
    const int32_t simd_length = arm_nn_offset_fits_s16(x_offset) ? length : 0;
    for (; i + 4 <= simd_length; i += 4)
    {
        const uint32_t xs = arm_nn_read_s8x4(x + i);
        acc = mac4_s8(__sxtab16(offset_lanes, xs), __sxtab16(offset_lanes, arm_nn_ror8(xs)), w + i, acc);
    }
#endif
    for (; i < length; i++)
    {
        acc += ((int32_t)x[i] + x_offset) * (int32_t)w[i];
    }
    return acc;
}

void arm_nn_dot2_s8(const int8_t *x, const int8_t *w0, const int8_t *w1, int32_t length, int32_t x_offset,
                    int32_t *sum0, int32_t *sum1)
{
    int32_t acc0 = 0;
    int32_t acc1 = 0;
    int32_t i = 0;
#if NNSCONS_MVE
    *sum0 = dot_mve_s8(x, w0, length, x_offset, acc0);
    *sum1 = dot_mve_s8(x, w1, length, x_offset, acc1);
    return;
#endif
#if NNSCONS_DSP
    const uint32_t offset_lanes = arm_nn_dup_s16(x_offset);
    const int32_t simd_length = arm_nn_offset_fits_s16(x_offset) ? length : 0;
    for (; i + 4 <= simd_length; i += 4)
    {
        const uint32_t xs = arm_nn_read_s8x4(x + i);
        const int16x2_t x_even = __sxtab16(offset_lanes, xs);
        const int16x2_t x_odd = __sxtab16(offset_lanes, arm_nn_ror8(xs));
        acc0 = mac4_s8(x_even, x_odd, w0 + i, acc0);
        acc1 = mac4_s8(x_even, x_odd, w1 + i, acc1);
    }
#endif
    for (; i < length; i++)
    {
        const int32_t xi = (int32_t)x[i] + x_offset;
        acc0 += xi * (int32_t)w0[i];
        acc1 += xi * (int32_t)w1[i];
    }
    *sum0 = acc0;
    *sum1 = acc1;
}
