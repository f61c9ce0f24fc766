/*
 * One case of tests/firmware/kernels_main.c: a call of a public s8 kernel, described by numbers only, so that
 * the generated kernels_cases.h (tests/test_kernels_on_core.py) is a table of these plus two data pools:
 *
 *     static const int8_t kc_bytes[];    inputs and weights
 *     static const int32_t kc_words[];   biases, per-channel multipliers and shifts
 *     static const kc_case kc_cases[KC_CASES];
 *     #define KC_ARENA_BYTES ...          room for every case's tensors at their arena positions
 *     #define KC_SCRATCH_BYTES ...        room for the largest scratch buffer any feature set asks for
 *
 * Dimensions are {n, h, w, c} as cmsis_nn_dims takes them for the kernel (FC: filter {C_IN, 1, 1, C_OUT};
 * add, mul, softmax: input {1, 1, rows, row size}); pairs are {h, w}.
 */
#ifndef KERNELS_CASE_H
#define KERNELS_CASE_H

#include <stdint.h>

enum
{
    KC_CONV = 0,     /* arm_convolve_wrapper_s8 */
    KC_DEPTHWISE,    /* arm_depthwise_conv_wrapper_s8 */
    KC_FC,           /* arm_fully_connected_s8 */
    KC_AVGPOOL,      /* arm_avgpool_s8 */
    KC_MAXPOOL,      /* arm_max_pool_s8 */
    KC_ADD,          /* arm_elementwise_add_s8 */
    KC_MUL,          /* arm_elementwise_mul_s8 */
    KC_SOFTMAX       /* arm_softmax_s8 */
};

/* The scratch buffer a case gets: what the build's getter asks for (as a network with only this layer), that
 * plus room to spare (as in a network whose largest layer needs more), or none (ctx.buf NULL, size 0). */
enum
{
    KC_SCRATCH_EXACT = 0,
    KC_SCRATCH_ROOMY = 1,
    KC_SCRATCH_NULL = 2
};

/* A tensor that (on a core) ends at the last byte of RAM, where on QEMU's mps3-an547 (m55) a read past it faults */
enum
{
    KC_EDGE_NONE = 0,
    KC_EDGE_INPUT = 1,
    KC_EDGE_WEIGHTS = 2,
    KC_EDGE_INPUT2 = 3
};

/* Extra bytes of the roomy scratch buffer over the getter's size */
#define KC_ROOMY_EXTRA 1024

typedef struct
{
    int32_t kind;        /* KC_CONV ... */
    int32_t scratch;     /* KC_SCRATCH_* */
    int32_t edge;        /* KC_EDGE_* */
    int32_t input[4];
    int32_t filter[4];
    int32_t output[4];
    int32_t stride[2];
    int32_t padding[2];
    int32_t dilation[2];
    int32_t ch_mult;
    int32_t input_offset;  /* add, mul: input 1's */
    int32_t input2_offset; /* add, mul: input 2's; FC: the filter offset */
    int32_t output_offset;
    int32_t act_min;
    int32_t act_max;
    /* FC: multiplier, shift; add: input 1 multiplier, shift, input 2 multiplier, shift, left shift, output
     * multiplier, shift; mul: output multiplier, shift; softmax: mult, shift, diff_min */
    int32_t params[7];
    int32_t input_at;    /* kc_bytes index of input (1) */
    int32_t input2_at;   /* kc_bytes index of input 2 (add, mul) */
    int32_t filter_at;   /* kc_bytes index of the weights */
    int32_t bias_at;     /* kc_words index of the bias, -1: NULL */
    int32_t quant_at;    /* kc_words index of the per-channel multipliers, followed by as many shifts */
    int32_t input_pos;   /* arena byte offsets (any alignment) of input (1), input 2 and the output */
    int32_t input2_pos;
    int32_t output_pos;
} kc_case;

#endif
