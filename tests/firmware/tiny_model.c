/*
 * A hand-written stand-in for a generated model (tests/test_firmware.py): the descriptor of a generated model, a
 * network of one int8 "layer" y[i] = sat((x[i] * sum_k (k & 7)) >> 12) that takes a few thousand instructions.
 * TINY_MODE selects a misbehaving model for the error tests: 1 fails (status 3) on an input starting with -128,
 * 2 jumps to an invalid address there (a fault), 3 spins forever there.
 */
#include <stdint.h>

#include "nnscons_firmware.h"
#include "tiny_model.h"

#ifndef TINY_MODE
#define TINY_MODE 0
#endif

static const nnscons_io_info_t tiny_inputs[1] = {{1, 1, 2, {1, 4, 0, 0, 0, 0}, 4, 0.5f, 0}};
static const nnscons_io_info_t tiny_outputs[1] = {{1, 1, 2, {1, 4, 0, 0, 0, 0}, 4, 0.5f, 0}};
static int8_t tiny_arena[TINY_ARENA_SIZE];

static int tiny_invoke(const void *const *inputs, void *const *outputs)
{
    const int8_t *x = (const int8_t *)inputs[0];
    int8_t *y = (int8_t *)outputs[0];
    int i, k;
    if (TINY_MODE == 1 && x[0] == -128) {
        return 3;
    }
    if (TINY_MODE == 2 && x[0] == -128) {
        void (*nowhere)(void) = (void (*)(void))(uintptr_t)0xFFFFFFF0u;
        nowhere();
    }
    while (TINY_MODE == 3 && x[0] == -128) {
        __asm volatile("");
    }
    for (i = 0; i < TINY_INPUT_SIZE; i++) {
        int32_t acc = 0;
        for (k = 0; k < 1000; k++) {
            acc += x[i] * (k & 7);
        }
        tiny_arena[i] = (int8_t)(acc >> 12);
        y[i] = tiny_arena[i];
    }
    return 0;
}

/* no state between calls: the runner's reset before each input does nothing */
static void tiny_reset(void)
{
}

const nnscons_model_info_t tiny_info = {"tiny", "0000000000000000", TINY_ARENA_SIZE, 1, 1, tiny_inputs, tiny_outputs,
                                        tiny_invoke, tiny_reset};
