/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_relu6_s8: x = min(max(x, 0), 6) in place, on raw int8 values (not zero-point aware: for a quantized
 * RELU6 use the activation range of the producing kernel instead).
 */
#include "arm_nnfunctions.h"

void arm_relu6_s8(int8_t *data, uint16_t size)
{
    uint16_t i;
    for (i = 0; i < size; i++)
    {
        if (data[i] < 0)
        {
            data[i] = 0;
        }
        else if (data[i] > 6)
        {
            data[i] = 6;
        }
    }
}
