/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_elementwise_mul_s8: quantized product of two same-shaped tensors (no broadcasting): the product of the
 * offset inputs is requantized with (out_mult, out_shift), offset and clamped. On Helium the same integers eight
 * elements per vector (mul_mve_s8).
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#if NNSCONS_MVE
/** Eight outputs (lanes of p when ``tail``; ``shift_left``: the requantization shifts left; both constants after
 * inlining). */
static NNSCONS_ALWAYS_INLINE void mul8(const int8_t *in1, const int8_t *in2, int8_t *out, int16_t offset1,
                                       int16_t offset2, arm_nn_requant_mve rq, int32_t out_offset, int32x4_t lo,
                                       int32x4_t hi, bool shift_left, bool tail, mve_pred16_t p)
{
    const int16x8_t a = vaddq_n_s16(tail ? vldrbq_z_s16(in1, p) : vldrbq_s16(in1), offset1);
    const int16x8_t b = vaddq_n_s16(tail ? vldrbq_z_s16(in2, p) : vldrbq_s16(in2), offset2);
    const int32x4_t even_product = vmullbq_int_s16(a, b);
    const int32x4_t odd_product = vmulltq_int_s16(a, b);
    const int32x4_t even = arm_nn_requantize_shifted_mve_s(
        shift_left ? vshlq_r_s32(even_product, rq.left) : even_product, rq.multiplier, rq.round_fix, rq.right);
    const int32x4_t odd = arm_nn_requantize_shifted_mve_s(
        shift_left ? vshlq_r_s32(odd_product, rq.left) : odd_product, rq.multiplier, rq.round_fix, rq.right);
    const int16x8_t r = vmovnbq_s32(vdupq_n_s16(0), vminq_s32(vmaxq_s32(vaddq_n_s32(even, out_offset), lo), hi));
    const int16x8_t r2 = vmovntq_s32(r, vminq_s32(vmaxq_s32(vaddq_n_s32(odd, out_offset), lo), hi));
    if (tail)
    {
        vstrbq_p_s16(out, r2, p);
    }
    else
    {
        vstrbq_s16(out, r2);
    }
}

/**
 * Helium: eight elements per vector; the offset inputs in int16 lanes (exact: the offsets fit
 * arm_nn_offset_fits_s16), their products widened to int32 (VMULLB/VMULLT: even and odd lanes), requantized
 * (constants as scalars, arm_nn_requantize_shifted_mve_s), clamped, narrowed back in lane order (the byte store
 * truncates as the plain C cast); the last vector tail-predicated.
 */
static NNSCONS_ALWAYS_INLINE void mul_loop(const int8_t *in1, const int8_t *in2, int16_t offset1, int16_t offset2,
                                           arm_nn_requant_mve rq, int32_t out_offset, int32x4_t lo, int32x4_t hi,
                                           bool shift_left, int8_t *out, int32_t size)
{
    int32_t blocks;
    for (blocks = size >> 3; blocks > 0; blocks--, in1 += 8, in2 += 8, out += 8)
    {
        mul8(in1, in2, out, offset1, offset2, rq, out_offset, lo, hi, shift_left, false, 0);
    }
    if ((size & 7) != 0)
    {
        mul8(in1, in2, out, offset1, offset2, rq, out_offset, lo, hi, shift_left, true, vctp16q((uint32_t)(size & 7)));
    }
}

static NNSCONS_NOINLINE void mul_mve_s8(const int8_t *in1, const int8_t *in2, int32_t offset1, int32_t offset2,
                                        int32_t out_mult, int32_t out_shift, int32_t out_offset, int32_t act_min,
                                        int32_t act_max, int8_t *out, int32_t size)
{
    const arm_nn_requant_mve rq = arm_nn_requant_mve_init(out_mult, out_shift);
    const int32x4_t lo = vdupq_n_s32(act_min);
    const int32x4_t hi = vdupq_n_s32(act_max);
    if (rq.left != 0)
    {
        mul_loop(in1, in2, (int16_t)offset1, (int16_t)offset2, rq, out_offset, lo, hi, true, out, size);
    }
    else
    {
        mul_loop(in1, in2, (int16_t)offset1, (int16_t)offset2, rq, out_offset, lo, hi, false, out, size);
    }
}
#endif

arm_cmsis_nn_status arm_elementwise_mul_s8(const int8_t *input_1_vect,
                                           const int8_t *input_2_vect,
                                           const int32_t input_1_offset,
                                           const int32_t input_2_offset,
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
    if (block_size > 0 && arm_nn_offset_fits_s16(input_1_offset) && arm_nn_offset_fits_s16(input_2_offset) &&
        out_activation_min <= out_activation_max)
    {
        mul_mve_s8(input_1_vect, input_2_vect, input_1_offset, input_2_offset, out_mult, out_shift, out_offset,
                   out_activation_min, out_activation_max, output, block_size);
        return ARM_CMSIS_NN_SUCCESS;
    }
#endif
    for (i = 0; i < block_size; i++)
    {
        const int32_t product =
            ((int32_t)input_1_vect[i] + input_1_offset) * ((int32_t)input_2_vect[i] + input_2_offset);
        const int32_t result = arm_nn_requantize(product, out_mult, out_shift) + out_offset;
        output[i] = (int8_t)arm_nn_clamp_i32(result, out_activation_min, out_activation_max);
    }
    return ARM_CMSIS_NN_SUCCESS;
}
