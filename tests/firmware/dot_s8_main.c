/*
 * Runs arm_nn_dot_s8 and arm_nn_dot2_s8 on the cases of dot_s8_cases.h (written by tests/test_cmsis_cortex_m.py)
 * and prints one line per case: "dot <case> <dot> <dot2 sum0> <dot2 sum1>". On a core with the DSP extension these
 * are the SIMD paths.
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
        int32_t sum0;
        int32_t sum1;
        /* the second weight row of dot2 starts 5 bytes further: another alignment */
        arm_nn_dot2_s8(dot_x + c->x_at, dot_w + c->w_at, dot_w + c->w_at + 5, c->length, c->offset, &sum0, &sum1);
        printf("dot %ld %ld %ld %ld\n", (long)i, (long)arm_nn_dot_s8(dot_x + c->x_at, dot_w + c->w_at, c->length,
                                                                  c->offset), (long)sum0, (long)sum1);
    }
    return 0;
}
