/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_nn_activations_direct_q7: sigmoid or tanh in place by table look-up. The input is Q(int_width).(7-int_width);
 * shifting it right by 3 - int_width gives its value on the tables' 1/16 grid over [-8, 8), and that byte (as
 * unsigned) is the table index. The output is Q0.7.
 */
#include "arm_nn_legacy_support.h"

/** The table index of x: x * 2^(int_width - 3) as a two's-complement byte. */
static uint8_t table_index(q7_t x, uint16_t int_width)
{
    int32_t scaled;
    if (int_width <= 3u)
    {
        return (uint8_t)(x >> (3u - int_width));
    }
    /* Undefined in Arm's code (a negative shift): saturate to the table's range instead. */
    scaled = (int32_t)x * ((int32_t)1 << (int_width - 3u > 8u ? 8u : int_width - 3u));
    return (uint8_t)arm_nn_legacy_sat_q7(scaled);
}

void arm_nn_activations_direct_q7(q7_t *data, uint16_t size, uint16_t int_width, arm_nn_activation_type type)
{
    const q7_t *table = type == ARM_SIGMOID ? sigmoidTable_q7 : tanhTable_q7;
    uint16_t i;
    for (i = 0; i < size; i++)
    {
        data[i] = table[table_index(data[i], int_width)];
    }
}
