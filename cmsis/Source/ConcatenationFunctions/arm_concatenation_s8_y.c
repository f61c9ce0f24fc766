/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_concatenation_s8_y: copies an input into an output with output_y elements along y, starting at
 * y = offset_y.
 * Tensors are seen as [w][z][y][x] with x varying fastest (for NHWC: x = C, y = W, z = H, w = N).
 */
#include <string.h>

#include "arm_nnfunctions.h"

void arm_concatenation_s8_y(const int8_t *input,
                            const uint16_t input_x,
                            const uint16_t input_y,
                            const uint16_t input_z,
                            const uint16_t input_w,
                            int8_t *output,
                            const uint16_t output_y,
                            const uint32_t offset_y)
{
    const uint32_t planes = (uint32_t)input_z * input_w;
    const uint32_t plane_in = (uint32_t)input_x * input_y;
    const uint32_t plane_out = (uint32_t)input_x * output_y;
    uint32_t i;

    output += offset_y * input_x;
    for (i = 0; i < planes; i++)
    {
        memcpy(output, input, plane_in);
        input += plane_in;
        output += plane_out;
    }
}
