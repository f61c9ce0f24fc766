/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_softmax_s16: softmax of each row of symmetric int16 values, output scale 1/32768 and zero point 0,
 * using two 513-entry Q0.15 lookup tables made by the caller (as TFLite Micro does):
 *   exp_lut        exp(t) for t in [-10, 0],
 *   one_by_one_lut 1 / (1 + t) for t in [0, 1],
 * each indexed by the top 9 bits of an int16 argument spanning the table range, the low 7 bits interpolating
 * linearly between neighbouring entries.
 *
 * diff = x - max(row) is scaled by (mult, shift) so that -10.0 maps to -65535; adding 32767 centres it on the
 * table's int16 argument range. The Q0.15 exponentials are summed; the sum is normalised to 1 + t with t in
 * [0, 1) for the reciprocal table; each output is exp * reciprocal, shifted back by the normalisation.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

/** Table lookup with linear interpolation; value spans the whole int16 range. */
static int32_t lut_interpolate(int32_t value, const int16_t *lut)
{
    const int32_t index = 256 + (value >> 7); /* 0 .. 511 */
    const int32_t fraction = value & 0x7F;    /* Q0.7 */
    const int32_t base = lut[index];
    const int32_t slope = lut[index + 1] - base;
    return (int16_t)(base + ((slope * fraction + 64) >> 7));
}

/** exp(diff * input scale * beta) in Q0.15 through the table; diff <= 0. */
static int32_t table_exp(int32_t diff, int32_t mult, int32_t shift, const int16_t *exp_lut)
{
    const int32_t scaled = arm_nn_requantize(diff, mult, shift) + INT16_MAX;
    return lut_interpolate(arm_nn_sat_s16(scaled), exp_lut);
}

static int32_t row_max(const int16_t *row, int32_t row_size)
{
    int32_t max = row[0];
    int32_t i;
    for (i = 1; i < row_size; i++)
    {
        max = arm_nn_max_i32(max, row[i]);
    }
    return max;
}

arm_cmsis_nn_status arm_softmax_s16(const int16_t *input,
                                    const int32_t num_rows,
                                    const int32_t row_size,
                                    const int32_t mult,
                                    const int32_t shift,
                                    const cmsis_nn_softmax_lut_s16 *softmax_params,
                                    int16_t *output)
{
    int32_t r;

    if (softmax_params == NULL || softmax_params->exp_lut == NULL || softmax_params->one_by_one_lut == NULL)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    if (row_size <= 0)
    {
        return ARM_CMSIS_NN_SUCCESS;
    }
    for (r = 0; r < num_rows; r++)
    {
        const int32_t max = row_max(input, row_size);
        int32_t sum = 0; /* Q0.15 values; at most 65537 of them fit */
        int32_t headroom;
        int32_t normalised;
        int32_t reciprocal;
        int32_t right_shift;
        int32_t i;

        for (i = 0; i < row_size; i++)
        {
            sum += table_exp(input[i] - max, mult, shift, softmax_params->exp_lut);
        }

        /* sum << (headroom - 1) lies in [2^30, 2^31): keep 17 bits of it (rounded), i.e. [2^16, 2^17) = 1 + t
         * in Q1.16; subtract 1.0 (2^16) and re-centre [0, 2^16) on the int16 range (-2^15). */
        if (sum <= 0)
        {
            /* Only possible with broken tables (exp(0) must be the largest entry). */
            return ARM_CMSIS_NN_ARG_ERROR;
        }
        headroom = arm_nn_clz((uint32_t)sum);
        normalised = (int32_t)((((int64_t)sum << (headroom - 1)) + (1 << 13)) >> 14);
        reciprocal = lut_interpolate(arm_nn_sat_s16(normalised - (1 << 16) - (1 << 15)), softmax_params->one_by_one_lut);

        /* sum ~ (1 + t) * 2^(31 - headroom) and reciprocal ~ 2^15 / (1 + t), so
         * e * reciprocal / 2^(31 - headroom) ~ 2^15 * e / sum: the probability in Q0.15. */
        right_shift = 31 - headroom;
        for (i = 0; i < row_size; i++)
        {
            const int32_t e = table_exp(input[i] - max, mult, shift, softmax_params->exp_lut);
            const int32_t result = (e * reciprocal + (1 << (right_shift - 1))) >> right_shift;
            output[i] = arm_nn_sat_s16(result);
        }
        input += row_size;
        output += row_size;
    }
    return ARM_CMSIS_NN_SUCCESS;
}
