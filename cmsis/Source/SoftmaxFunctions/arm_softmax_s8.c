/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_softmax_s8: softmax of each row, output scale 1/256 and zero point -128, in fixed point only.
 *
 * For each element, diff = x - max(row) (<= 0). Elements with diff < diff_min contribute nothing and output
 * -128. Otherwise diff * 2^shift is scaled by the Q31 multiplier `mult` (which folds in beta and the input
 * scale) into a Q5.26 value whose exponential is taken in Q0.31. The exponentials are summed in Q12.19;
 * the sum is normalised to [1, 2) and inverted by Newton-Raphson, and each output is exp * (1 / sum) rescaled
 * to units of 1/256.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#define SOFTMAX_ACCUM_INTEGER_BITS 12 /* integer bits of the Q12.19 sum of exponentials */

/** exp(beta * input_scale * diff) in Q0.31, diff <= 0 and diff >= diff_min. */
static int32_t scaled_exp(int32_t diff, int32_t mult, int32_t shift)
{
    const int32_t scaled_diff = arm_nn_doubling_high_mult(arm_nn_shift_left_wrap(diff, shift), mult); /* Q5.26 */
    return arm_nn_exp_on_negative_values(scaled_diff);
}

static int8_t row_max(const int8_t *row, int32_t row_size)
{
    int8_t max = row[0];
    int32_t i;
    for (i = 1; i < row_size; i++)
    {
        max = row[i] > max ? row[i] : max;
    }
    return max;
}

void arm_softmax_s8(const int8_t *input,
                    const int32_t num_rows,
                    const int32_t row_size,
                    const int32_t mult,
                    const int32_t shift,
                    const int32_t diff_min,
                    int8_t *output)
{
    int32_t r;

    if (row_size <= 0)
    {
        return;
    }
    for (r = 0; r < num_rows; r++)
    {
        const int32_t max = row_max(input, row_size);
        int32_t sum = 0; /* Q12.19 */
        int32_t headroom;
        int32_t reciprocal;
        int32_t output_shift;
        int32_t i;

        for (i = 0; i < row_size; i++)
        {
            const int32_t diff = input[i] - max;
            if (diff >= diff_min)
            {
                sum += arm_nn_divide_by_power_of_two(scaled_exp(diff, mult, shift), SOFTMAX_ACCUM_INTEGER_BITS);
            }
        }

        /* sum = 2^(12 - headroom) * (1 + x) with x in [0, 1); 1 / (1 + x) in Q0.31. */
        headroom = arm_nn_clz((uint32_t)sum);
        reciprocal = arm_nn_one_over_one_plus_x_for_x_in_0_1(
            (int32_t)(((uint32_t)sum << headroom) - 0x80000000u));
        /* exp * reciprocal is in Q0.31 and must still be divided by 2^(12 - headroom), then expressed in
         * units of 2^-8: a right shift by (12 - headroom) + 31 - 8. */
        output_shift = SOFTMAX_ACCUM_INTEGER_BITS - headroom + 31 - 8;

        for (i = 0; i < row_size; i++)
        {
            const int32_t diff = input[i] - max;
            int32_t result = INT8_MIN;
            if (diff >= diff_min)
            {
                const int32_t probability = arm_nn_doubling_high_mult(reciprocal, scaled_exp(diff, mult, shift));
                result = arm_nn_divide_by_power_of_two(probability, output_shift) + INT8_MIN;
            }
            output[i] = arm_nn_sat_s8(result);
        }
        input += row_size;
        output += row_size;
    }
}
