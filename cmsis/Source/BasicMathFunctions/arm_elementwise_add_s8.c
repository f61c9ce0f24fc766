/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_elementwise_add_s8: quantized addition of two same-shaped tensors (no broadcasting).
 * Each input, offset and scaled up by 2^left_shift for headroom, is brought to a common scale with its own
 * (multiplier, shift); the sum is requantized to the output scale, offset and clamped.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

arm_cmsis_nn_status arm_elementwise_add_s8(const int8_t *input_1_vect,
                                           const int8_t *input_2_vect,
                                           const int32_t input_1_offset,
                                           const int32_t input_1_mult,
                                           const int32_t input_1_shift,
                                           const int32_t input_2_offset,
                                           const int32_t input_2_mult,
                                           const int32_t input_2_shift,
                                           const int32_t left_shift,
                                           int8_t *output,
                                           const int32_t out_offset,
                                           const int32_t out_mult,
                                           const int32_t out_shift,
                                           const int32_t out_activation_min,
                                           const int32_t out_activation_max,
                                           const int32_t block_size)
{
    int32_t i;

    for (i = 0; i < block_size; i++)
    {
        const int32_t a = arm_nn_shift_left_wrap((int32_t)input_1_vect[i] + input_1_offset, left_shift);
        const int32_t b = arm_nn_shift_left_wrap((int32_t)input_2_vect[i] + input_2_offset, left_shift);
        const int32_t sum =
            arm_nn_requantize(a, input_1_mult, input_1_shift) + arm_nn_requantize(b, input_2_mult, input_2_shift);
        const int32_t result = arm_nn_requantize(sum, out_mult, out_shift) + out_offset;
        output[i] = (int8_t)arm_nn_clamp_i32(result, out_activation_min, out_activation_max);
    }
    return ARM_CMSIS_NN_SUCCESS;
}
