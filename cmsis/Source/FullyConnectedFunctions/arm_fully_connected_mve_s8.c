/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_fully_connected_s8 on Helium (MVE). Per output r of a batch:
 *     acc[r] = bias[r] + sum_c (x[c] + input_offset) * (w[r][c] + filter_offset)
 *            = kernel_sum[r] + sum_c x[c] * w[r][c] + filter_offset * sum_c x[c]
 * with kernel_sum[r] = bias[r] + input_offset * (sum_c w[r][c] + cols * filter_offset), what arm_vector_sum_s8
 * writes into ctx->buf on MVE builds. Every term wraps modulo 2^32 as the plain C sum does, so the integers are
 * the same. Without the precomputed sums, the weight-row sums are taken in the same pass as the products.
 *
 * Four weight rows per pass over an input row: one 16-byte load of the input and of each row feeds four VMLADAVA
 * (64 MACs); the last partial block is a predicated (zeroing) load, so nothing past a row is read. The four sums
 * are requantized together (arm_nn_requantize_mve_n) and stored as four bytes.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#if NNSCONS_MVE

/** The weight rows' sums (when ``with_wsum``) of a pass, for the outputs without precomputed kernel sums. */
typedef struct
{
    int32_t s0, s1, s2, s3;
} fc_wsums;

/** Dot products of one input row with four consecutive weight rows (and their sums into *ws when ``with_wsum``,
 * a constant after inlining). */
static NNSCONS_ALWAYS_INLINE int32x4_t fc_dot4(const int8_t *x, const int8_t *w, int32_t depth, bool with_wsum,
                                               fc_wsums *ws)
{
    const int8_t *w0 = w;
    const int8_t *w1 = w0 + depth;
    const int8_t *w2 = w1 + depth;
    const int8_t *w3 = w2 + depth;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int32_t blocks;
    int8x16_t xv;
    int8x16_t wv;
    int32x4_t acc;

    /* a block counter of its own, so that the pointers advance by post-increment */
    for (blocks = depth >> 4; blocks > 0; blocks--)
    {
        xv = vld1q_s8(x);
        x += 16;
        wv = vld1q_s8(w0);
        w0 += 16;
        a0 = vmladavaq_s8(a0, xv, wv);
        s0 = with_wsum ? vaddvaq_s8(s0, wv) : 0;
        wv = vld1q_s8(w1);
        w1 += 16;
        a1 = vmladavaq_s8(a1, xv, wv);
        s1 = with_wsum ? vaddvaq_s8(s1, wv) : 0;
        wv = vld1q_s8(w2);
        w2 += 16;
        a2 = vmladavaq_s8(a2, xv, wv);
        s2 = with_wsum ? vaddvaq_s8(s2, wv) : 0;
        wv = vld1q_s8(w3);
        w3 += 16;
        a3 = vmladavaq_s8(a3, xv, wv);
        s3 = with_wsum ? vaddvaq_s8(s3, wv) : 0;
    }
    if ((depth & 15) != 0)
    {
        /* the masked lanes load as 0 and are not read */
        const mve_pred16_t p = vctp8q((uint32_t)(depth & 15));
        xv = vldrbq_z_s8(x, p);
        wv = vldrbq_z_s8(w0, p);
        a0 = vmladavaq_s8(a0, xv, wv);
        s0 = with_wsum ? vaddvaq_s8(s0, wv) : 0;
        wv = vldrbq_z_s8(w1, p);
        a1 = vmladavaq_s8(a1, xv, wv);
        s1 = with_wsum ? vaddvaq_s8(s1, wv) : 0;
        wv = vldrbq_z_s8(w2, p);
        a2 = vmladavaq_s8(a2, xv, wv);
        s2 = with_wsum ? vaddvaq_s8(s2, wv) : 0;
        wv = vldrbq_z_s8(w3, p);
        a3 = vmladavaq_s8(a3, xv, wv);
        s3 = with_wsum ? vaddvaq_s8(s3, wv) : 0;
    }
    ws->s0 = s0;
    ws->s1 = s1;
    ws->s2 = s2;
    ws->s3 = s3;
    acc = vsetq_lane_s32(a1, vdupq_n_s32(a0), 1);
    acc = vsetq_lane_s32(a2, acc, 2);
    return vsetq_lane_s32(a3, acc, 3);
}

/** The dot product of one input row with one weight row (and the row's sum into *wsum when ``with_wsum``). */
static NNSCONS_ALWAYS_INLINE int32_t fc_dot1(const int8_t *x, const int8_t *w, int32_t depth, bool with_wsum,
                                             int32_t *wsum)
{
    int32_t a = 0;
    int32_t s = 0;
    int32_t blocks;
    for (blocks = depth >> 4; blocks > 0; blocks--)
    {
        const int8x16_t wv = vld1q_s8(w);
        a = vmladavaq_s8(a, vld1q_s8(x), wv);
        s = with_wsum ? vaddvaq_s8(s, wv) : 0;
        x += 16;
        w += 16;
    }
    if ((depth & 15) != 0)
    {
        const mve_pred16_t p = vctp8q((uint32_t)(depth & 15));
        const int8x16_t wv = vldrbq_z_s8(w, p);
        a = vmladavaq_s8(a, vldrbq_z_s8(x, p), wv);
        s = with_wsum ? vaddvaq_s8(s, wv) : 0;
    }
    *wsum = s;
    return a;
}

/** sum_c x[c] over one input row (the filter-offset term). */
static int32_t fc_row_sum(const int8_t *x, int32_t depth)
{
    int32_t sum = 0;
    int32_t blocks;
    for (blocks = depth >> 4; blocks > 0; blocks--, x += 16)
    {
        sum = vaddvaq_s8(sum, vld1q_s8(x));
    }
    if ((depth & 15) != 0)
    {
        sum = vaddvaq_s8(sum, vldrbq_z_s8(x, vctp8q((uint32_t)(depth & 15))));
    }
    return sum;
}

/** What stays the same for all outputs of a call. */
typedef struct
{
    const int32_t *kernel_sums; /* C_OUT values, or NULL: then bias and offsets are folded in on the fly */
    const int32_t *bias;
    int32_t depth;
    int32_t input_offset;
    int32_t wsum_offset; /* cols * filter_offset, added to each weight row's sum */
    int32x4_t multiplier;
    int32x4_t shift;
    int32x4_t output_offset;
    int32x4_t act_min;
    int32x4_t act_max;
} fc_mve_args;

/** Outputs from their sums: requantized, offset, clamped (the store truncates to int8 as the plain C cast). */
static NNSCONS_ALWAYS_INLINE int32x4_t fc_requantize(const fc_mve_args *args, int32x4_t acc)
{
    acc = vaddq_s32(arm_nn_requantize_mve(acc, args->multiplier, args->shift), args->output_offset);
    return vminq_s32(vmaxq_s32(acc, args->act_min), args->act_max);
}

/** bias + input_offset * (sum_c w + cols * filter_offset) added to four (predicate p) sums, without kernel sums. */
static NNSCONS_ALWAYS_INLINE int32x4_t fc_fold_offsets(const fc_mve_args *args, int32x4_t acc, int32x4_t wsum,
                                                       int32_t o, mve_pred16_t p)
{
    acc = vmlaq_n_s32(acc, vaddq_n_s32(wsum, args->wsum_offset), args->input_offset);
    return args->bias != NULL ? vaddq_s32(acc, vldrwq_z_s32(args->bias + o, p)) : acc;
}

/** One batch: all outputs of one input row. ``with_sums`` (kernel sums given) and ``with_wsum`` (weight-row
 * sums needed): constants after inlining. */
static NNSCONS_ALWAYS_INLINE void fc_batch(const fc_mve_args *args, const int8_t *x, const int8_t *w, int32_t out_c,
                                           int32_t x_term, bool with_sums, bool with_wsum, int8_t *out)
{
    const int32_t depth = args->depth;
    const int32_t *sums = args->kernel_sums;
    int32_t o;
    for (o = 0; o + 4 <= out_c; o += 4)
    {
        fc_wsums ws;
        int32x4_t acc = vaddq_n_s32(fc_dot4(x, w, depth, with_wsum, &ws), x_term);
        if (with_sums)
        {
            acc = vaddq_s32(acc, vldrwq_s32(sums + o));
        }
        else
        {
            int32x4_t wsum = vsetq_lane_s32(ws.s1, vdupq_n_s32(ws.s0), 1);
            wsum = vsetq_lane_s32(ws.s3, vsetq_lane_s32(ws.s2, wsum, 2), 3);
            acc = fc_fold_offsets(args, acc, wsum, o, vctp32q(4u));
        }
        vstrbq_s32(out + o, fc_requantize(args, acc));
        w += 4 * depth;
    }
    if (o < out_c)
    {
        /* the last 1..3 outputs one row at a time, through memory into one vector */
        const int32_t n = out_c - o;
        const mve_pred16_t p = vctp32q((uint32_t)n);
        int32_t dot[4];
        int32_t wsum[4];
        int32x4_t acc;
        int32_t k;
        for (k = 0; k < n; k++)
        {
            dot[k] = fc_dot1(x, w, depth, with_wsum, &wsum[k]) + x_term;
            w += depth;
        }
        acc = vldrwq_z_s32(dot, p);
        acc = with_sums ? vaddq_s32(acc, vldrwq_z_s32(sums + o, p))
                        : fc_fold_offsets(args, acc, vldrwq_z_s32(wsum, p), o, p);
        vstrbq_p_s32(out + o, fc_requantize(args, acc), p);
    }
}

/** All batches; the with_* flags select a loop body at compile time. The call's constants are set up here, in
 * the function that runs the loops, so that they stay in registers or in its own stack frame. */
static NNSCONS_ALWAYS_INLINE void fc_batches(const cmsis_nn_fc_params *fc_params,
                                             const cmsis_nn_per_tensor_quant_params *quant_params, int32_t batches,
                                             const int8_t *input, int32_t depth, const int8_t *filter,
                                             const int32_t *kernel_sums, const int32_t *bias, int32_t out_c,
                                             bool with_sums, bool with_wsum, int8_t *output)
{
    fc_mve_args args;
    args.kernel_sums = kernel_sums;
    args.bias = bias;
    args.depth = depth;
    args.input_offset = fc_params->input_offset;
    args.wsum_offset = depth * fc_params->filter_offset;
    args.multiplier = vdupq_n_s32(quant_params->multiplier);
    args.shift = vdupq_n_s32(quant_params->shift);
    args.output_offset = vdupq_n_s32(fc_params->output_offset);
    args.act_min = vdupq_n_s32(fc_params->activation.min);
    args.act_max = vdupq_n_s32(fc_params->activation.max);
    for (; batches > 0; batches--, input += depth, output += out_c)
    {
        const int32_t x_term =
            fc_params->filter_offset != 0 ? fc_params->filter_offset * fc_row_sum(input, depth) : 0;
        fc_batch(&args, input, filter, out_c, x_term, with_sums, with_wsum, output);
    }
}

#define FC_MVE_PARAMS                                                                                               \
    const cmsis_nn_fc_params *fc_params, const cmsis_nn_per_tensor_quant_params *quant_params, int32_t batches,    \
        const int8_t *input, int32_t depth, const int8_t *filter, const int32_t *kernel_sums, const int32_t *bias, \
        int32_t out_c, int8_t *output
#define FC_MVE_ARGS fc_params, quant_params, batches, input, depth, filter, kernel_sums, bias, out_c

static NNSCONS_NOINLINE void fc_with_kernel_sums(FC_MVE_PARAMS)
{
    fc_batches(FC_MVE_ARGS, true, false, output);
}

static NNSCONS_NOINLINE void fc_with_weight_sums(FC_MVE_PARAMS)
{
    fc_batches(FC_MVE_ARGS, false, true, output);
}

void arm_nn_fully_connected_mve_s8(const cmsis_nn_fc_params *fc_params,
                                   const cmsis_nn_per_tensor_quant_params *quant_params,
                                   int32_t batches,
                                   const int8_t *input,
                                   int32_t depth,
                                   const int8_t *filter,
                                   const int32_t *kernel_sums,
                                   const int32_t *bias,
                                   int32_t out_c,
                                   int8_t *output)
{
    if (kernel_sums != NULL)
    {
        fc_with_kernel_sums(FC_MVE_ARGS, output);
    }
    else
    {
        /* the callers that give no kernel sums: a quarter more instructions per MAC, no third loop body */
        fc_with_weight_sums(FC_MVE_ARGS, output);
    }
}

#else
typedef int arm_fully_connected_mve_s8_unused; /* ISO C: a translation unit is not empty */
#endif
