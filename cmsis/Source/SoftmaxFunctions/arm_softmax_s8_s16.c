/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_softmax_s8_s16: softmax of each int8 row into int16, output scale 1/65536 and zero point -32768 (TFLite's
 * int8-in int16-out SOFTMAX): arm_softmax_s8's arithmetic (arm_nn_softmax_row_s8), each probability in units of
 * 2^-16 less 32768.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

void arm_softmax_s8_s16(const int8_t *input,
                        const int32_t num_rows,
                        const int32_t row_size,
                        const int32_t mult,
                        const int32_t shift,
                        const int32_t diff_min,
                        int16_t *output)
{
    int32_t r;
    for (r = 0; r < num_rows && row_size > 0; r++)
    {
        arm_nn_softmax_row_s8(input + r * row_size, row_size, mult, shift, diff_min, output + r * row_size, true);
    }
}
