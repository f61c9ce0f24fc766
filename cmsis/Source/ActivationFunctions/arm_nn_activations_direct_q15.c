/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_nn_activations_direct_q15: sigmoid or tanh in place by interpolated table look-up. The input is
 * Q(int_width).(15-int_width). With shift = 11 - int_width, x >> shift is its value on the tables' 1/16 grid over
 * [-8, 8) (as an unsigned byte, the table index) and the low `shift` bits are the fraction between two entries:
 *     out = ((2^shift - frac) * T[idx] + frac * T[idx + 1]) >> shift
 * except at idx 0x7F (the top of the grid, whose byte successor wraps to -8), where out = T[idx]. Output Q0.15.
 */
#include "arm_nn_legacy_support.h"

/** One value through table T (int_width <= 11: Arm's arithmetic, index wrapping included). */
static q15_t interpolate(const q15_t *table, q15_t x, uint16_t int_width)
{
    const uint32_t shift = 11u - int_width;
    const uint8_t idx = (uint8_t)(x >> shift);
    const int32_t frac_mask = 0x7FF >> int_width;
    const int32_t frac = x & frac_mask;
    if (idx == 0x7Fu)
    {
        return table[idx];
    }
    return (q15_t)(((frac_mask + 1 - frac) * table[idx] + frac * table[(uint8_t)(idx + 1u)]) >> shift);
}

void arm_nn_activations_direct_q15(q15_t *data, uint16_t size, uint16_t int_width, arm_nn_activation_type type)
{
    const q15_t *table = type == ARM_SIGMOID ? sigmoidTable_q15 : tanhTable_q15;
    uint16_t i;
    for (i = 0; i < size; i++)
    {
        if (int_width <= 11u)
        {
            data[i] = interpolate(table, data[i], int_width);
        }
        else
        {
            /* Undefined in Arm's code (a negative shift): saturate x * 2^(int_width - 11) to the table's range. */
            const uint32_t up = int_width - 11u > 8u ? 8u : int_width - 11u;
            data[i] = table[(uint8_t)arm_nn_legacy_sat_q7((int32_t)data[i] * ((int32_t)1 << up))];
        }
    }
}
