/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_nn_softmax_row_s8: one row of int8 logits to probabilities, the plain C form of arm_softmax_s8 (int8 out,
 * units of 2^-8 less 128) and of arm_softmax_s8_s16 (int16 out, units of 2^-16 less 32768): the Q12.19 sum of
 * the exponentials of the differences from the row's maximum (those from diff_min on), its reciprocal, each
 * probability rounded to the output's units; a difference below diff_min gives the output's minimum.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

void arm_nn_softmax_row_s8(const int8_t *input, int32_t row_size, int32_t mult, int32_t shift, int32_t diff_min,
                           void *output, bool wide)
{
    const int32_t output_min = wide ? INT16_MIN : INT8_MIN;
    const int32_t output_max = wide ? INT16_MAX : INT8_MAX;
    int32_t max = input[0];
    int32_t sum = 0; /* Q12.19 */
    int32_t reciprocal;
    int32_t output_shift;
    int32_t i;
    for (i = 1; i < row_size; i++)
    {
        max = input[i] > max ? input[i] : max;
    }
    for (i = 0; i < row_size; i++)
    {
        const int32_t diff = input[i] - max;
        if (diff >= diff_min)
        {
            sum += arm_nn_divide_by_power_of_two(arm_nn_softmax_exp(diff, mult, shift),
                                                 ARM_NN_SOFTMAX_ACCUM_INTEGER_BITS);
        }
    }
    reciprocal = arm_nn_softmax_reciprocal(sum, wide ? 16 : 8, &output_shift);
    for (i = 0; i < row_size; i++)
    {
        const int32_t diff = input[i] - max;
        int32_t result = output_min;
        if (diff >= diff_min)
        {
            const int32_t probability =
                arm_nn_doubling_high_mult(reciprocal, arm_nn_softmax_exp(diff, mult, shift));
            result = arm_nn_clamp_i32(arm_nn_divide_by_power_of_two(probability, output_shift) + output_min,
                                      output_min, output_max);
        }
        if (wide)
        {
            ((int16_t *)output)[i] = (int16_t)result;
        }
        else
        {
            ((int8_t *)output)[i] = (int8_t)result;
        }
    }
}
