/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_fully_connected_q7_opt: as arm_fully_connected_q7, with pM in the interleaved
 * layout of the _opt variant (legacy_layouts.py builds it from the row-major matrix). Rows are taken in groups
 * of four (r0..r3); for each group, every block of 4 columns (c0..c3) is stored as the 16 values
 *     W[r0][c0] W[r1][c0] W[r0][c2] W[r1][c2] W[r2][c0] W[r3][c0] W[r2][c2] W[r3][c2]
 *     W[r0][c1] W[r1][c1] W[r0][c3] W[r1][c3] W[r2][c1] W[r3][c1] W[r2][c3] W[r3][c3]
 * then each remaining column c as W[r0][c] W[r1][c] W[r2][c] W[r3][c]. The rows left over after the last group
 * of four follow, row-major. Sums wrap modulo 2^32, so the order of the products does not change the result.
 */
#include "arm_nn_legacy_support.h"

/* Value k of a block is W[r + BLOCK_ROW[k]][c + BLOCK_COL[k]]. */
static const uint8_t BLOCK_ROW[16] = {0, 1, 0, 1, 2, 3, 2, 3, 0, 1, 0, 1, 2, 3, 2, 3};
static const uint8_t BLOCK_COL[16] = {0, 0, 2, 2, 0, 0, 2, 2, 1, 1, 3, 3, 1, 1, 3, 3};

arm_status arm_fully_connected_q7_opt(const q7_t *pV,
                                      const q7_t *pM,
                                      const uint16_t dim_vec,
                                      const uint16_t num_of_rows,
                                      const uint16_t bias_shift,
                                      const uint16_t out_shift,
                                      const q7_t *bias,
                                      q7_t *pOut,
                                      q15_t *vec_buffer)
{
    const q7_t *w = pM; /* walks the interleaved groups */
    uint16_t r = 0;

    (void)vec_buffer; /* scratch of Arm's DSP code; this implementation needs none */
    for (; r + 4 <= num_of_rows; r += 4)
    {
        uint32_t acc[4];
        uint16_t c = 0;
        uint16_t i;
        for (i = 0; i < 4; i++)
        {
            acc[i] = arm_nn_legacy_acc_init(bias != NULL ? bias[r + i] : 0, bias_shift, out_shift);
        }
        for (; c + 4 <= dim_vec; c += 4)
        {
            uint16_t k;
            for (k = 0; k < 16; k++)
            {
                acc[BLOCK_ROW[k]] = arm_nn_legacy_mac(acc[BLOCK_ROW[k]], pV[c + BLOCK_COL[k]], w[k]);
            }
            w += 16;
        }
        for (; c < dim_vec; c++)
        {
            for (i = 0; i < 4; i++)
            {
                acc[i] = arm_nn_legacy_mac(acc[i], pV[c], w[i]);
            }
            w += 4;
        }
        for (i = 0; i < 4; i++)
        {
            pOut[r + i] = arm_nn_legacy_sat_q7(arm_nn_legacy_scale(acc[i], out_shift));
        }
    }
    /* The groups of four filled r * dim_vec values: the leftover rows start right after, row-major. */
    for (; r < num_of_rows; r++)
    {
        const q7_t *row = pM + (size_t)r * dim_vec;
        uint32_t acc = arm_nn_legacy_acc_init(bias != NULL ? bias[r] : 0, bias_shift, out_shift);
        uint16_t c;
        for (c = 0; c < dim_vec; c++)
        {
            acc = arm_nn_legacy_mac(acc, pV[c], row[c]);
        }
        pOut[r] = arm_nn_legacy_sat_q7(arm_nn_legacy_scale(acc, out_shift));
    }
    return ARM_MATH_SUCCESS;
}
