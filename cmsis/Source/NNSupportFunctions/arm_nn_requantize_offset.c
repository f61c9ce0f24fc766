/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_nn_requantize_offset: arm_nn_requantize(val, multiplier, shift) + output_offset, out of line: the general
 * requantization of the channels arm_nn_requantize_fast_init() does not take, called from the kernels' fast loops
 * instead of copying the inline function into each of them.
 */
#include "arm_nnsupportfunctions.h"

int32_t arm_nn_requantize_offset(int32_t val, int32_t multiplier, int32_t shift, int32_t output_offset)
{
    return arm_nn_requantize(val, multiplier, shift) + output_offset;
}
