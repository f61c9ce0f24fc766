/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_concatenation_s8_w: copies an input into an output along the outermost axis w, starting at
 * w = offset_w (one contiguous copy).
 * Tensors are seen as [w][z][y][x] with x varying fastest (for NHWC: x = C, y = W, z = H, w = N).
 */
#include <string.h>

#include "arm_nnfunctions.h"

void arm_concatenation_s8_w(const int8_t *input,
                            const uint16_t input_x,
                            const uint16_t input_y,
                            const uint16_t input_z,
                            const uint16_t input_w,
                            int8_t *output,
                            const uint32_t offset_w)
{
    const uint32_t volume = (uint32_t)input_x * input_y * input_z;

    memcpy(output + offset_w * volume, input, volume * input_w);
}
