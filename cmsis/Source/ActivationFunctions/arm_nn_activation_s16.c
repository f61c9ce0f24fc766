/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_nn_activation_s16: int16 sigmoid or tanh, TFLite's int16 LOGISTIC / TANH arithmetic. The input, Q3.12 scaled
 * by 2^left_shift, is brought to the table's step (1/24 in units of 2^-9 for sigmoid, 2^-8 for tanh: a multiply by
 * 3, the left shift applied, a rounding right shift for a negative one); its magnitude indexes
 * arm_nn_sigmoid_table_uint16 and the fraction interpolates linearly between two entries. The odd symmetry gives
 * the negative side (sigmoid(-a) = 1 - sigmoid(a), tanh(-a) = -tanh(a)); magnitudes past the table saturate. The
 * output is Q0.15.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#define SIGMOID_FRACTION_BITS 9
#define TANH_FRACTION_BITS 8
#define TABLE_LAST 255

static int16_t activation_one(int32_t x, int32_t multiplier, int32_t right_shift, arm_nn_activation_type type)
{
    const int32_t rounding = right_shift > 0 ? 1 << (right_shift - 1) : 0;
    const int32_t v = (x * multiplier + rounding) >> right_shift;
    const uint32_t a = (uint32_t)(v < 0 ? -v : v);
    const int32_t n = type == ARM_SIGMOID ? SIGMOID_FRACTION_BITS : TANH_FRACTION_BITS;
    const uint32_t k = a >> n;
    uint32_t r;
    if (k >= TABLE_LAST)
    {
        r = type == ARM_SIGMOID ? 0x7FFFu << 10 : 0xFFFFu << 8;
    }
    else
    {
        const uint32_t low = arm_nn_sigmoid_table_uint16[k];
        const uint32_t high = arm_nn_sigmoid_table_uint16[k + 1];
        r = (low << n) + (a & ((1u << n) - 1u)) * (high - low);
    }
    if (type == ARM_SIGMOID)
    {
        r = v >= 0 ? r + (1u << 9) : (1u << 25) - r + (1u << 9) - 1u;
        return (int16_t)(uint16_t)(r >> 10);
    }
    r = v >= 0 ? r - (1u << 23) + (1u << 7) : (1u << 23) - r + (1u << 7) - 1u;
    return (int16_t)(uint16_t)(r >> 8);
}

void arm_nn_activation_s16(const int16_t *input,
                           int16_t *output,
                           const int32_t size,
                           const int32_t left_shift,
                           const arm_nn_activation_type type)
{
    const int32_t multiplier = left_shift < 0 ? 3 : 3 << left_shift;
    const int32_t right_shift = left_shift < 0 ? -left_shift : 0;
    int32_t i;
    for (i = 0; i < size; i++)
    {
        output[i] = activation_one(input[i], multiplier, right_shift, type);
    }
}
