/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_elementwise_add_s8: quantized addition of two same-shaped tensors (no broadcasting).
 * Each input, offset and scaled up by 2^left_shift for headroom, is brought to a common scale with its own
 * (multiplier, shift); the sum is requantized to the output scale, offset and clamped. On Helium the same
 * integers four elements per vector (add_mve_s8), the requantization constants kept in core registers.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#if NNSCONS_MVE
/** The constants of a call as scalars, but for the inputs' scale vectors. An input x becomes
 * (x + offset) << (left_shift + the left part of its own shift) = x * scale + term (one VMLAS; the same value
 * modulo 2^32, as the plain loop's two shifts when they add up to less than 32), then the rest of its
 * requantization (arm_nn_requantize_shifted_mve_s). */
typedef struct
{
    int32_t term1, mult1, fix1, right1;
    int32_t term2, mult2, fix2, right2;
    int32_t left, mult, fix, right, out_offset;
} add_mve_args;

/** Four outputs (lanes of p when ``tail``; ``out_left``: the output requantization shifts left), clamped to
 * lo..hi. ``tail`` and ``out_left`` are constants after inlining. */
static NNSCONS_ALWAYS_INLINE void add4(const add_mve_args *k, const int8_t *in1, const int8_t *in2, int8_t *out,
                                       int32x4_t scale1, int32x4_t scale2, int32x4_t lo, int32x4_t hi,
                                       bool out_left, bool tail, mve_pred16_t p)
{
    const int32x4_t a = vmlasq_n_s32(tail ? vldrbq_z_s32(in1, p) : vldrbq_s32(in1), scale1, k->term1);
    const int32x4_t b = vmlasq_n_s32(tail ? vldrbq_z_s32(in2, p) : vldrbq_s32(in2), scale2, k->term2);
    int32x4_t sum = vaddq_s32(arm_nn_requantize_shifted_mve_s(a, k->mult1, k->fix1, k->right1),
                              arm_nn_requantize_shifted_mve_s(b, k->mult2, k->fix2, k->right2));
    sum = arm_nn_requantize_shifted_mve_s(out_left ? vshlq_r_s32(sum, k->left) : sum, k->mult, k->fix, k->right);
    sum = vminq_s32(vmaxq_s32(vaddq_n_s32(sum, k->out_offset), lo), hi);
    if (tail)
    {
        vstrbq_p_s32(out, sum, p);
    }
    else
    {
        vstrbq_s32(out, sum);
    }
}

/** Eight elements per iteration, the last ones tail-predicated. */
static NNSCONS_ALWAYS_INLINE void add_loop(const add_mve_args *k, const int8_t *in1, const int8_t *in2,
                                           int32x4_t scale1, int32x4_t scale2, int32x4_t lo, int32x4_t hi,
                                           bool out_left, int8_t *out, int32_t size)
{
    int32_t blocks;
    for (blocks = size >> 3; blocks > 0; blocks--, in1 += 8, in2 += 8, out += 8)
    {
        add4(k, in1, in2, out, scale1, scale2, lo, hi, out_left, false, 0);
        add4(k, in1 + 4, in2 + 4, out + 4, scale1, scale2, lo, hi, out_left, false, 0);
    }
    for (size &= 7; size > 0; size -= 4, in1 += 4, in2 += 4, out += 4)
    {
        add4(k, in1, in2, out, scale1, scale2, lo, hi, out_left, true, vctp32q((uint32_t)size));
    }
}

/**
 * Helium: four elements per vector, the same steps in int32 lanes; the constants copied into a local (which the
 * int8 stores cannot alias, so they stay in registers or its stack slots).
 */
static NNSCONS_NOINLINE void add_mve_s8(const add_mve_args *args, int32_t scale1, int32_t scale2, const int8_t *in1,
                                        const int8_t *in2, int32_t act_min, int32_t act_max, int8_t *out,
                                        int32_t size)
{
    const add_mve_args k = *args;
    const int32x4_t s1 = vdupq_n_s32(scale1);
    const int32x4_t s2 = vdupq_n_s32(scale2);
    const int32x4_t lo = vdupq_n_s32(act_min);
    const int32x4_t hi = vdupq_n_s32(act_max);
    if (k.left != 0)
    {
        add_loop(&k, in1, in2, s1, s2, lo, hi, true, out, size);
    }
    else
    {
        add_loop(&k, in1, in2, s1, s2, lo, hi, false, out, size);
    }
}

/** add_mve_s8 with the constants of arm_elementwise_add_s8's arguments. */
static void add_mve_call(const int8_t *in1, const int8_t *in2, int32_t offset1, int32_t mult1, int32_t shift1,
                         int32_t offset2, int32_t mult2, int32_t shift2, int32_t left_shift, int8_t *out,
                         int32_t out_offset, int32_t out_mult, int32_t out_shift, int32_t act_min, int32_t act_max,
                         int32_t size)
{
    const arm_nn_requant_mve rq1 = arm_nn_requant_mve_init(mult1, shift1);
    const arm_nn_requant_mve rq2 = arm_nn_requant_mve_init(mult2, shift2);
    const arm_nn_requant_mve rq = arm_nn_requant_mve_init(out_mult, out_shift);
    add_mve_args args;
    args.term1 = arm_nn_shift_left_wrap(offset1, left_shift + rq1.left);
    args.mult1 = rq1.multiplier;
    args.fix1 = rq1.round_fix;
    args.right1 = rq1.right;
    args.term2 = arm_nn_shift_left_wrap(offset2, left_shift + rq2.left);
    args.mult2 = rq2.multiplier;
    args.fix2 = rq2.round_fix;
    args.right2 = rq2.right;
    args.left = rq.left;
    args.mult = rq.multiplier;
    args.fix = rq.round_fix;
    args.right = rq.right;
    args.out_offset = out_offset;
    add_mve_s8(&args, arm_nn_shift_left_wrap(1, left_shift + rq1.left),
               arm_nn_shift_left_wrap(1, left_shift + rq2.left), in1, in2, act_min, act_max, out, size);
}
#endif

arm_cmsis_nn_status arm_elementwise_add_s8(const int8_t *input_1_vect,
                                           const int8_t *input_2_vect,
                                           const int32_t input_1_offset,
                                           const int32_t input_1_mult,
                                           const int32_t input_1_shift,
                                           const int32_t input_2_offset,
                                           const int32_t input_2_mult,
                                           const int32_t input_2_shift,
                                           const int32_t left_shift,
                                           int8_t *output,
                                           const int32_t out_offset,
                                           const int32_t out_mult,
                                           const int32_t out_shift,
                                           const int32_t out_activation_min,
                                           const int32_t out_activation_max,
                                           const int32_t block_size)
{
    int32_t i;

#if NNSCONS_MVE
    /* the vector path merges left_shift and the inputs' left shifts into one shift below 32, and clamps as the
     * plain loop only for bounds in order */
    if (block_size > 0 && left_shift >= 0 && left_shift <= 31 && input_1_shift <= 31 - left_shift &&
        input_2_shift <= 31 - left_shift && out_activation_min <= out_activation_max)
    {
        add_mve_call(input_1_vect, input_2_vect, input_1_offset, input_1_mult, input_1_shift, input_2_offset,
                     input_2_mult, input_2_shift, left_shift, output, out_offset, out_mult, out_shift,
                     out_activation_min, out_activation_max, block_size);
        return ARM_CMSIS_NN_SUCCESS;
    }
#endif
    for (i = 0; i < block_size; i++)
    {
        const int32_t a = arm_nn_shift_left_wrap((int32_t)input_1_vect[i] + input_1_offset, left_shift);
        const int32_t b = arm_nn_shift_left_wrap((int32_t)input_2_vect[i] + input_2_offset, left_shift);
        const int32_t sum =
            arm_nn_requantize(a, input_1_mult, input_1_shift) + arm_nn_requantize(b, input_2_mult, input_2_shift);
        const int32_t result = arm_nn_requantize(sum, out_mult, out_shift) + out_offset;
        output[i] = (int8_t)arm_nn_clamp_i32(result, out_activation_min, out_activation_max);
    }
    return ARM_CMSIS_NN_SUCCESS;
}
