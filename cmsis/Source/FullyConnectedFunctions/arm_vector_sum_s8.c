/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_vector_sum_s8: for each weight row r of a [vector_rows][vector_cols] matrix,
 * sum[r] = bias[r] (or 0) + lhs_offset * (sum_c w[r][c] + vector_cols * rhs_offset).
 * This is the input-offset part of a fully-connected sum, precomputed once for Arm's MVE kernel.
 */
#include "arm_nnfunctions.h"

arm_cmsis_nn_status arm_vector_sum_s8(int32_t *vector_sum_buf,
                                      const int32_t vector_cols,
                                      const int32_t vector_rows,
                                      const int8_t *vector_data,
                                      const int32_t lhs_offset,
                                      const int32_t rhs_offset,
                                      const int32_t *bias_data)
{
    int32_t r;

    if (vector_sum_buf == NULL)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    for (r = 0; r < vector_rows; r++)
    {
        int32_t sum = bias_data != NULL ? bias_data[r] : 0;
        if (lhs_offset != 0)
        {
            int32_t row_sum = vector_cols * rhs_offset;
            int32_t c;
            for (c = 0; c < vector_cols; c++)
            {
                row_sum += vector_data[r * vector_cols + c];
            }
            sum += lhs_offset * row_sum;
        }
        vector_sum_buf[r] = sum;
    }
    return ARM_CMSIS_NN_SUCCESS;
}
