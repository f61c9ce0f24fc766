/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_relu_q15: x = max(x, 0) in place, on raw int16 values.
 */
#include "arm_nnfunctions.h"

void arm_relu_q15(int16_t *data, uint16_t size)
{
    uint16_t i;
    for (i = 0; i < size; i++)
    {
        if (data[i] < 0)
        {
            data[i] = 0;
        }
    }
}
