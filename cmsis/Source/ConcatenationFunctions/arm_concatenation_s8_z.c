/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_concatenation_s8_z: copies an input into an output with output_z elements along z, starting at
 * z = offset_z.
 * Tensors are seen as [w][z][y][x] with x varying fastest (for NHWC: x = C, y = W, z = H, w = N).
 */
#include <string.h>

#include "arm_nnfunctions.h"

void arm_concatenation_s8_z(const int8_t *input,
                            const uint16_t input_x,
                            const uint16_t input_y,
                            const uint16_t input_z,
                            const uint16_t input_w,
                            int8_t *output,
                            const uint16_t output_z,
                            const uint32_t offset_z)
{
    const uint32_t plane = (uint32_t)input_x * input_y;
    const uint32_t volume_in = plane * input_z;
    const uint32_t volume_out = plane * output_z;
    uint32_t i;

    output += offset_z * plane;
    for (i = 0; i < input_w; i++)
    {
        memcpy(output, input, volume_in);
        input += volume_in;
        output += volume_out;
    }
}
