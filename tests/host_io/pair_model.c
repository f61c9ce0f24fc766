/*
 * A hand-written stand-in for a generated model with two inputs and two outputs (tests/test_host_binary.py): the
 * descriptor a generated model exports, and a network simple enough to compute in numpy:
 *
 *     x0 int8 [1,2,3] (scale 0.5, zero point 1), x1 int16 [1,4] (scale 0.25, zero point 0)
 *     y0 int8 [1,2,3]  = saturate(-x0)
 *     y1 int16 [1,2]   = saturate(x1[0] + x1[1] + x0[0]), saturate(x1[2] + x1[3])
 *
 * Compiled with -DPAIR_SINGLE it has only x0 and y0 (the one-input, one-output contract).
 */
#include <stdint.h>

#include "pair_model.h"

#ifdef PAIR_SINGLE
#define PAIR_INPUTS 1
#define PAIR_OUTPUTS 1
#else
#define PAIR_INPUTS 2
#define PAIR_OUTPUTS 2
#endif

static const nnscons_io_info_t pair_inputs[2] = {
    {1, 1, 3, {1, 2, 3, 0, 0, 0}, 6, 0.5f, 1},
    {2, 1, 2, {1, 4, 0, 0, 0, 0}, 4, 0.25f, 0},
};
static const nnscons_io_info_t pair_outputs[2] = {
    {1, 1, 3, {1, 2, 3, 0, 0, 0}, 6, 0.5f, 0},
    {2, 1, 2, {1, 2, 0, 0, 0, 0}, 2, 0.25f, 0},
};

static int32_t clamp(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static int pair_invoke(const void *const *inputs, void *const *outputs)
{
    const int8_t *x0 = (const int8_t *)inputs[0];
    int8_t *y0 = (int8_t *)outputs[0];
    int i;
    for (i = 0; i < 6; i++) {
        y0[i] = (int8_t)clamp(-(int32_t)x0[i], -128, 127);
    }
    if (PAIR_INPUTS > 1) {
        const int16_t *x1 = (const int16_t *)inputs[1];
        int16_t *y1 = (int16_t *)outputs[1];
        y1[0] = (int16_t)clamp((int32_t)x1[0] + x1[1] + x0[0], -32768, 32767);
        y1[1] = (int16_t)clamp((int32_t)x1[2] + x1[3], -32768, 32767);
    }
    return 0;
}

/* no state between calls: the runner's reset before each input does nothing */
static void pair_reset(void)
{
}

const nnscons_model_info_t pair_info = {"pair", "0000000000000000", 0, PAIR_INPUTS, PAIR_OUTPUTS, pair_inputs,
                                        pair_outputs, pair_invoke, pair_reset};
