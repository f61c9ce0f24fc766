/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * The matrix product at the heart of the s8 convolutions on Helium (MVE): up to three rows of int8 values (three
 * output positions: input pixels read in place by a 1x1 convolution, im2col columns otherwise) times the weight
 * rows of a block of output channels, requantized to s8.
 *
 * Two output channels at a time against the three rows: every 16 values take one vector load of each weight row
 * and of each row and six VMLADAVA (16 multiply-accumulates each, into a scalar per position and channel); the
 * last 1..15 values are masked (tail predication) so that nothing is read past a row. The input offset is not added
 * to every value: sum (x + offset) * w = sum x * w + offset * sum w, and offset * sum w plus the bias is one
 * starting sum per channel, computed once per block. Four channels' sums of one position then make one vector,
 * requantized with the four channels' multipliers and shifts (arm_nn_requantize_mve) and stored as four bytes. The
 * products are exact and the int32 sums wrap modulo 2^32 like the plain loop's: the same integers.
 */
#include <stddef.h>

#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#if NNSCONS_MVE

/** Sum of one weight row (its last 1..15 values through a masked load, which reads nothing past the row). */
static int32_t row_sum_s8(const int8_t *w, int32_t length)
{
    int32_t sum = 0;
    for (; length >= 16; length -= 16)
    {
        sum = vaddvaq_s8(sum, vld1q_s8(w));
        w += 16;
    }
    if (length > 0)
    {
        sum = vaddvaq_s8(sum, vldrbq_z_s8(w, vctp8q((uint32_t)length)));
    }
    return sum;
}

void arm_nn_conv_mve_block_init(arm_nn_conv_mve_block *block,
                                const int8_t *filter,
                                int32_t row_size,
                                int32_t first_channel,
                                int32_t channels,
                                const int32_t *bias,
                                const cmsis_nn_per_channel_quant_params *quant_params,
                                const cmsis_nn_conv_params *conv_params)
{
    int32_t c;
    block->filter = filter + first_channel * row_size;
    block->row_size = row_size;
    block->channels = channels;
    block->multiplier = quant_params->multiplier + first_channel;
    block->shift = quant_params->shift + first_channel;
    block->output_offset = conv_params->output_offset;
    block->act_min = conv_params->activation.min;
    block->act_max = conv_params->activation.max;
    for (c = 0; c < channels; c++)
    {
        /* the generated code folds the offset into the bias of a layer that reads no padding: no sum then */
        const uint32_t sum =
            conv_params->input_offset != 0 ? (uint32_t)row_sum_s8(block->filter + c * row_size, row_size) : 0u;
        const uint32_t b = bias != NULL ? (uint32_t)bias[first_channel + c] : 0u;
        /* modulo 2^32, like the sums */
        block->start[c] = (int32_t)(b + (uint32_t)conv_params->input_offset * sum);
    }
}

/** What the products of one group of positions read and write, at the offsets the assembly below uses. */
typedef struct
{
    const int8_t *rows[ARM_NN_CONV_MVE_ROWS]; /* bytes 0, 4, 8 */
    int32_t size;                             /* byte 12: values per row */
    int32_t sums[4 * ARM_NN_CONV_MVE_ROWS];   /* byte 16: sums[4 * p + k], position p, channel k of four */
} product_args;

/* The assembly's offsets assume 32-bit pointers: the build fails here otherwise. */
typedef char product_args_offsets_check[offsetof(product_args, sums) == 16 ? 1 : -1];

/**
 * ARGS->sums[4 * p + K + k] = ARGS->rows[p] . weight row k, p = 0..2, k = 0 (at W0) and 1 (at W1), over
 * ARGS->size values. Every 16 values take one vector load of each weight row and of each input row and six
 * VMLADAVA: 96 multiply-accumulates for 12 instructions. The last size % 16 values go through masked loads (VCTP),
 * which read nothing past a row. In assembly because the six sums, the five pointers and the loop count take all
 * the core registers but one: written with intrinsics, GCC moves them to and from the stack around every pair of
 * channels, which costs as much as the loop itself for short rows. A macro: K becomes part of the store offsets.
 */
#define ARM_NN_DOT3X2_S8(ARGS, W0, W1, K)                                                                             \
    do                                                                                                                \
    {                                                                                                                 \
        int32_t dot_s00, dot_s01, dot_s10, dot_s11, dot_s20, dot_s21;                                                 \
        const int8_t *dot_w0 = (W0);                                                                                  \
        const int8_t *dot_w1 = (W1);                                                                                  \
        const int8_t *dot_x0, *dot_x1, *dot_x2;                                                                       \
        __asm__ __volatile__("ldr %[x0], [%[a]]\n\t"                                                                  \
                             "ldr %[x1], [%[a], #4]\n\t"                                                              \
                             "ldr %[x2], [%[a], #8]\n\t"                                                              \
                             "ldr lr, [%[a], #12]\n\t"                                                                \
                             "movs %[s00], #0\n\t"                                                                    \
                             "movs %[s01], #0\n\t"                                                                    \
                             "movs %[s10], #0\n\t"                                                                    \
                             "movs %[s11], #0\n\t"                                                                    \
                             "movs %[s20], #0\n\t"                                                                    \
                             "movs %[s21], #0\n\t"                                                                    \
                             "asrs lr, lr, #4\n\t"                                                                    \
                             "wls lr, lr, 2f\n\t"                                                                     \
                             "1:\n"                                                                                   \
                             "vldrb.8 q0, [%[w0]], #16\n\t"                                                           \
                             "vldrb.8 q1, [%[w1]], #16\n\t"                                                           \
                             "vldrb.8 q2, [%[x0]], #16\n\t"                                                           \
                             "vmladava.s8 %[s00], q2, q0\n\t"                                                         \
                             "vldrb.8 q3, [%[x1]], #16\n\t"                                                           \
                             "vmladava.s8 %[s01], q2, q1\n\t"                                                         \
                             "vldrb.8 q2, [%[x2]], #16\n\t"                                                           \
                             "vmladava.s8 %[s10], q3, q0\n\t"                                                         \
                             "vmladava.s8 %[s11], q3, q1\n\t"                                                         \
                             "vmladava.s8 %[s20], q2, q0\n\t"                                                         \
                             "vmladava.s8 %[s21], q2, q1\n\t"                                                         \
                             "le lr, 1b\n\t"                                                                          \
                             "2:\n"                                                                                   \
                             "ldr lr, [%[a], #12]\n\t"                                                                \
                             "ands lr, lr, #15\n\t"                                                                   \
                             "beq 3f\n\t"                                                                             \
                             "vctp.8 lr\n\t"                                                                          \
                             "vpstttt\n\t"                                                                            \
                             "vldrbt.8 q0, [%[w0]]\n\t"                                                               \
                             "vldrbt.8 q1, [%[w1]]\n\t"                                                               \
                             "vldrbt.8 q2, [%[x0]]\n\t"                                                               \
                             "vldrbt.8 q3, [%[x1]]\n\t"                                                               \
                             "vmladava.s8 %[s00], q2, q0\n\t"                                                         \
                             "vmladava.s8 %[s01], q2, q1\n\t"                                                         \
                             "vpst\n\t"                                                                               \
                             "vldrbt.8 q2, [%[x2]]\n\t"                                                               \
                             "vmladava.s8 %[s10], q3, q0\n\t"                                                         \
                             "vmladava.s8 %[s11], q3, q1\n\t"                                                         \
                             "vmladava.s8 %[s20], q2, q0\n\t"                                                         \
                             "vmladava.s8 %[s21], q2, q1\n\t"                                                         \
                             "3:\n"                                                                                   \
                             "strd %[s00], %[s01], [%[a], #" #K "*4+16]\n\t"                                          \
                             "strd %[s10], %[s11], [%[a], #" #K "*4+32]\n\t"                                          \
                             "strd %[s20], %[s21], [%[a], #" #K "*4+48]"                                              \
                             : [s00] "=&Te"(dot_s00), [s01] "=&Te"(dot_s01), [s10] "=&Te"(dot_s10),                   \
                               [s11] "=&Te"(dot_s11), [s20] "=&Te"(dot_s20), [s21] "=&Te"(dot_s21),                   \
                               [w0] "+r"(dot_w0), [w1] "+r"(dot_w1), [x0] "=&r"(dot_x0),                              \
                               [x1] "=&r"(dot_x1), [x2] "=&r"(dot_x2)                                                 \
                             : [a] "r"(ARGS)                                                                          \
                             : "q0", "q1", "q2", "q3", "lr", "cc", "memory");                                         \
    } while (0)

/** What every output of a block shares: the activation bounds and the output offset. */
typedef struct
{
    int32x4_t act_min;
    int32x4_t act_max;
    int32_t output_offset;
} output_bounds;

/** The four channels' constants of one sub-block. */
typedef struct
{
    int32x4_t start;
    int32x4_t multiplier;
    int32x4_t shift;
} channel_constants;

/** One position's outputs of four channels from their sums (lanes: channels), stored as four bytes, or the lanes
 * ``pred`` selects unless ``full``. */
static NNSCONS_ALWAYS_INLINE void store_position(int8_t *out, const int32_t *sums, const channel_constants *k,
                                                 const output_bounds *bounds, mve_pred16_t pred, bool full)
{
    int32x4_t r = arm_nn_requantize_mve(vaddq_s32(vld1q_s32(sums), k->start), k->multiplier, k->shift);
    r = vminq_s32(vmaxq_s32(vaddq_n_s32(r, bounds->output_offset), bounds->act_min), bounds->act_max);
    if (full)
    {
        vstrbq_s32(out, r);
    }
    else
    {
        vstrbq_p_s32(out, r, pred);
    }
}

/**
 * Outputs of ``count`` positions for the block's channels c .. c+3, from sums[4 * p + k] = position p's sum for
 * channel c + k: one vector per position, requantized with the four channels' constants. ``pred`` selects the
 * channels that exist (all four when ``full``).
 */
static NNSCONS_ALWAYS_INLINE void store_outputs(const arm_nn_conv_mve_block *block, int32_t c, mve_pred16_t pred,
                                                bool full, const int32_t sums[12], int32_t count, int8_t *out,
                                                int32_t out_step, const output_bounds *bounds)
{
    channel_constants k;
    k.start = full ? vld1q_s32(block->start + c) : vldrwq_z_s32(block->start + c, pred);
    k.multiplier = full ? vld1q_s32(block->multiplier + c) : vldrwq_z_s32(block->multiplier + c, pred);
    k.shift = full ? vld1q_s32(block->shift + c) : vldrwq_z_s32(block->shift + c, pred);
    store_position(out, sums, &k, bounds, pred, full);
    if (count == ARM_NN_CONV_MVE_ROWS)
    {
        /* every group but the last: straight code */
        store_position(out + out_step, sums + 4, &k, bounds, pred, full);
        store_position(out + 2 * out_step, sums + 8, &k, bounds, pred, full);
    }
    else if (count == 2)
    {
        store_position(out + out_step, sums + 4, &k, bounds, pred, full);
    }
}

void arm_nn_conv_mve_rows_s8(const arm_nn_conv_mve_block *block,
                             const int8_t *const rows[ARM_NN_CONV_MVE_ROWS],
                             int32_t count,
                             int8_t *out,
                             int32_t out_step)
{
    const int32_t size = block->row_size;
    const int32_t channels = block->channels;
    const int8_t *w = block->filter;
    product_args args;
    output_bounds bounds;
    int32_t c;

    args.rows[0] = rows[0];
    args.rows[1] = rows[1];
    args.rows[2] = rows[2];
    args.size = size;
    bounds.act_min = vdupq_n_s32(block->act_min);
    bounds.act_max = vdupq_n_s32(block->act_max);
    bounds.output_offset = block->output_offset;
    for (c = 0; c + 4 <= channels; c += 4)
    {
        ARM_NN_DOT3X2_S8(&args, w, w + size, 0);
        ARM_NN_DOT3X2_S8(&args, w + 2 * size, w + 3 * size, 2);
        w += 4 * size;
        store_outputs(block, c, vctp32q(4), true, args.sums, count, out + c, out_step, &bounds);
    }
    if (c < channels)
    {
        /* 1..3 channels: an odd last one is paired with itself (the second sums are dropped) */
        const int32_t lanes = channels - c;
        ARM_NN_DOT3X2_S8(&args, w, lanes > 1 ? w + size : w, 0);
        if (lanes > 2)
        {
            ARM_NN_DOT3X2_S8(&args, w + 2 * size, w + 2 * size, 2);
        }
        store_outputs(block, c, vctp32q((uint32_t)lanes), false, args.sums, count, out + c, out_step, &bounds);
    }
}
#endif
