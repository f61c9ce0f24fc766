/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_softmax_s8: softmax of each row, output scale 1/256 and zero point -128, in fixed point only.
 *
 * For each element, diff = x - max(row) (<= 0). Elements with diff < diff_min contribute nothing and output
 * -128. Otherwise diff * 2^shift is scaled by the Q31 multiplier `mult` (which folds in beta and the input
 * scale) into a Q5.26 value whose exponential is taken in Q0.31. The exponentials are summed in Q12.19;
 * the sum is normalised to [1, 2) and inverted by Newton-Raphson, and each output is exp * (1 / sum) rescaled
 * to units of 1/256. On Helium the row maximum and the exponentials take four elements per vector, the same
 * fixed-point steps lane by lane (see softmax_exp_mve); the reciprocal stays scalar (once per row).
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#if NNSCONS_MVE
/**
 * arm_nn_exp_on_negative_values(arm_nn_doubling_high_mult(diff << shift, mult)) on four lanes, the same steps:
 * every arm_nn_doubling_high_mult is VQRDMULH (the same rounding, and the same saturation of INT32_MIN squared),
 * arm_nn_sat_left_shift VQSHL, the divisions by powers of two VRSHR on values that are not negative (x^4, the
 * exponentials) or with the ties-away correction of a negative value (the polynomial's higher terms), the
 * conditional multiplications by exp(-2^k) predicated on the bits of -q, in the same order.
 */
static int32x4_t softmax_exp_mve(int32x4_t diff, int32_t mult, int32_t shift)
{
    static const int32_t exp_of_minus_power_of_two[7] = {
        1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242}; /* round(exp(-2^k) * 2^31) */
    const int32_t quarter = (int32_t)1 << 24;                                  /* 1/4 in Q5.26 */
    const int32x4_t a = vqrdmulhq_n_s32(vshlq_r_s32(diff, shift), mult);
    const int32x4_t r_minus_quarter = vsubq_n_s32(vandq_s32(a, vdupq_n_s32(quarter - 1)), quarter);
    const int32x4_t minus_q = vsubq_s32(r_minus_quarter, a);
    /* exp on [-1/4, 0): exp(-1/8) * exp(x), x = r + 1/8, by the 4th-order Taylor polynomial */
    const int32x4_t x = vaddq_n_s32(vqshlq_n_s32(r_minus_quarter, 5), 1 << 28);
    const int32x4_t x2 = vqrdmulhq_s32(x, x);
    const int32x4_t x3 = vqrdmulhq_s32(x2, x);
    const int32x4_t x4_over_4 = vrshrq_n_s32(vqrdmulhq_s32(x2, x2), 2);
    const int32x4_t t = vaddq_s32(vqrdmulhq_n_s32(vaddq_s32(x4_over_4, x3), 715827883), x2);
    const int32x4_t higher_terms = vrshrq_n_s32(vqaddq_s32(t, vshrq_n_s32(t, 31)), 1);
    int32x4_t result = vaddq_n_s32(vqrdmulhq_n_s32(vaddq_s32(x, higher_terms), 1895147668), 1895147668);
    /* the lanes with bit 24 + k of -q set (k = 0..6) take the product with exp(-2^k): a mask from that bit moved
     * to the sign bit selects it arithmetically (GCC moves predicates through core registers) */
#define SOFTMAX_EXP_BIT(k)                                                                                          \
    do                                                                                                             \
    {                                                                                                              \
        const int32x4_t lanes = vshrq_n_s32(vshlq_n_s32(minus_q, 7 - (k)), 31);                                   \
        const int32x4_t product = vqrdmulhq_n_s32(result, exp_of_minus_power_of_two[k]);                           \
        result = vaddq_s32(result, vandq_s32(vsubq_s32(product, result), lanes));                                  \
    } while (0)
    SOFTMAX_EXP_BIT(0);
    SOFTMAX_EXP_BIT(1);
    SOFTMAX_EXP_BIT(2);
    SOFTMAX_EXP_BIT(3);
    SOFTMAX_EXP_BIT(4);
    SOFTMAX_EXP_BIT(5);
    SOFTMAX_EXP_BIT(6);
#undef SOFTMAX_EXP_BIT
    return vpselq_s32(vdupq_n_s32(NN_Q31_MAX), result, vcmpeqq_n_s32(a, 0));
}

/** The maximum of a row: VMAXV over 16 values at a time, the last ones predicated. */
static int32_t softmax_row_max_mve(const int8_t *row, int32_t row_size)
{
    int8_t max = row[0];
    for (; row_size > 0; row_size -= 16, row += 16)
    {
        const mve_pred16_t p = vctp8q((uint32_t)row_size);
        max = vmaxvq_p_s8(max, vldrbq_z_s8(row, p), p);
    }
    return max;
}

/** One row on Helium: the sum of the exponentials (Q12.19), then the outputs. */
static void softmax_row_mve(const int8_t *input, int32_t row_size, int32_t mult, int32_t shift, int32_t diff_min,
                            int8_t *output)
{
    const int32_t max = softmax_row_max_mve(input, row_size);
    int32_t sum = 0;
    int32_t reciprocal;
    int32_t output_shift;
    int32_t i;
    for (i = 0; i < row_size; i += 4)
    {
        const mve_pred16_t p = vctp32q((uint32_t)(row_size - i));
        const int32x4_t diff = vsubq_n_s32(vldrbq_z_s32(input + i, p), max);
        const mve_pred16_t used = vcmpgeq_m_n_s32(diff, diff_min, p);
        /* exp / 2^12 (exp >= 0: VRSHR's ties up are ties away) */
        sum = vaddvaq_p_s32(sum, vrshrq_n_s32(softmax_exp_mve(diff, mult, shift), ARM_NN_SOFTMAX_ACCUM_INTEGER_BITS),
                            used);
    }
    reciprocal = arm_nn_softmax_reciprocal(sum, 8, &output_shift);
    for (i = 0; i < row_size; i += 4)
    {
        const mve_pred16_t p = vctp32q((uint32_t)(row_size - i));
        const int32x4_t diff = vsubq_n_s32(vldrbq_z_s32(input + i, p), max);
        const mve_pred16_t used = vcmpgeq_n_s32(diff, diff_min);
        const int32x4_t probability = vqrdmulhq_n_s32(softmax_exp_mve(diff, mult, shift), reciprocal);
        /* probability >= 0, so VRSHL rounds as arm_nn_divide_by_power_of_two; from a shift of 32 on, it gives 0 */
        const int32x4_t scaled = output_shift < 32 ? vrshlq_n_s32(probability, -output_shift) : vdupq_n_s32(0);
        int32x4_t result = vaddq_n_s32(scaled, INT8_MIN);
        result = vminq_s32(vmaxq_s32(result, vdupq_n_s32(INT8_MIN)), vdupq_n_s32(INT8_MAX));
        vstrbq_p_s32(output + i, vpselq_s32(result, vdupq_n_s32(INT8_MIN), used), p);
    }
}
#endif

void arm_softmax_s8(const int8_t *input,
                    const int32_t num_rows,
                    const int32_t row_size,
                    const int32_t mult,
                    const int32_t shift,
                    const int32_t diff_min,
                    int8_t *output)
{
    int32_t r;

    if (row_size <= 0)
    {
        return;
    }
#if NNSCONS_MVE
    for (r = 0; r < num_rows; r++, input += row_size, output += row_size)
    {
        softmax_row_mve(input, row_size, mult, shift, diff_min, output);
    }
    return;
#endif
    for (r = 0; r < num_rows; r++)
    {
        arm_nn_softmax_row_s8(input + r * row_size, row_size, mult, shift, diff_min, output + r * row_size, false);
    }
}
