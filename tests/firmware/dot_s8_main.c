/*
 * Runs arm_nn_dot_s8 on the cases of dot_s8_cases.h (written by tests/test_cmsis_cortex_m.py) and prints one
 * line per case: "dot <case> <value>". On a core with the DSP extension this is the SIMD path.
 */
#include <stdio.h>

#include "arm_nnsupportfunctions.h"
#include "dot_s8_cases.h"

int main(void)
{
    int32_t i;
    for (i = 0; i < DOT_CASES; i++)
    {
        const dot_case *c = &dot_cases[i];
        printf("dot %ld %ld\n", (long)i, (long)arm_nn_dot_s8(dot_x + c->x_at, dot_w + c->w_at, c->length, c->offset));
    }
    return 0;
}
