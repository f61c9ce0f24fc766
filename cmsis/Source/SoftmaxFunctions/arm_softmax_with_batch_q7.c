/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_softmax_with_batch_q7: arm_softmax_q7 on each of nb_batches consecutive rows of dim_vec values.
 */
#include "arm_nn_legacy_support.h"

void arm_softmax_with_batch_q7(const q7_t *vec_in, const uint16_t nb_batches, const uint16_t dim_vec, q7_t *p_out)
{
    uint16_t b;
    for (b = 0; b < nb_batches; b++)
    {
        arm_softmax_q7(vec_in + (size_t)b * dim_vec, dim_vec, p_out + (size_t)b * dim_vec);
    }
}
