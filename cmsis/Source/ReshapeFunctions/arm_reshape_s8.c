/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_reshape_s8: a reshape does not move data in NHWC order; copy total_size bytes (nothing when in place).
 */
#include <string.h>

#include "arm_nnfunctions.h"

void arm_reshape_s8(const int8_t *input, int8_t *output, const uint32_t total_size)
{
    if (input != output)
    {
        memmove(output, input, total_size);
    }
}
