/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_elementwise_mul_s16: quantized product of two same-shaped tensors (no broadcasting): the product of the
 * offset inputs is requantized with (out_mult, out_shift), offset and clamped.
 * Used with symmetric int16 tensors: the offsets are then 0.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

arm_cmsis_nn_status arm_elementwise_mul_s16(const int16_t *input_1_vect,
                                            const int16_t *input_2_vect,
                                            const int32_t input_1_offset,
                                            const int32_t input_2_offset,
                                            int16_t *output,
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
        const int32_t product =
            ((int32_t)input_1_vect[i] + input_1_offset) * ((int32_t)input_2_vect[i] + input_2_offset);
        const int32_t result = arm_nn_requantize(product, out_mult, out_shift) + out_offset;
        output[i] = (int16_t)arm_nn_clamp_i32(result, out_activation_min, out_activation_max);
    }
    return ARM_CMSIS_NN_SUCCESS;
}
