/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_fully_connected_s8: for each of input_dims->n batches, out[o] = clamp(requantize(bias[o] +
 * sum_i (in[i] + input_offset) * (w[o][i] + filter_offset)) + output_offset), with filter_dims->n inputs per
 * batch and output_dims->c outputs; the weights are row-major [C_OUT][C_IN].
 * On Helium (arm_fully_connected_mve_s8.c) ctx->buf, when given, holds the C_OUT kernel sums of arm_vector_sum_s8
 * (bias folded in) as in Arm's MVE build; elsewhere ctx is not used.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

/** One output: the dot product of one input row with one weight row (arm_nn_dot_s8 when the weights have no
 * offset, as TFLite's int8 weights never do). */
static int32_t fc_dot_s8(const int8_t *input, const int8_t *weights, int32_t depth, int32_t input_offset,
                         int32_t filter_offset)
{
    int32_t acc = 0;
    int32_t i;
    if (filter_offset == 0)
    {
        return arm_nn_dot_s8(input, weights, depth, input_offset);
    }
    for (i = 0; i < depth; i++)
    {
        acc += ((int32_t)input[i] + input_offset) * ((int32_t)weights[i] + filter_offset);
    }
    return acc;
}

/** One output value from its sum: bias, requantization, output offset, activation clamp. */
static int8_t fc_output_s8(int32_t acc, int32_t o, const cmsis_nn_fc_params *fc_params,
                           const cmsis_nn_per_tensor_quant_params *quant_params, const int32_t *bias_data)
{
    return arm_nn_output_s8(acc + (bias_data != NULL ? bias_data[o] : 0), quant_params->multiplier,
                            quant_params->shift, fc_params->output_offset, fc_params->activation.min,
                            fc_params->activation.max);
}

#if NNSCONS_MVE
/** The kernel sums in ctx->buf when it holds C_OUT of them (a size of 0 is trusted, as Arm's library does), else
 * NULL. */
static const int32_t *fc_kernel_sums(const cmsis_nn_context *ctx, int32_t out_c)
{
    if (ctx == NULL || ctx->buf == NULL || ((uintptr_t)ctx->buf & 3u) != 0u || ctx->size < 0 ||
        (ctx->size > 0 && ctx->size < out_c * (int32_t)sizeof(int32_t)))
    {
        return NULL;
    }
    return (const int32_t *)ctx->buf;
}
#endif

#if NNSCONS_DSP && !NNSCONS_MVE
/**
 * With the DSP extension: two weight rows per pass over the input, one word (4 values) of the input and of each row
 * per step, sign-extended into pairs of int16 lanes (the input offset added to the input's lanes) and four dual
 * multiply-accumulates; the per-tensor requantization constants computed once (arm_nn_requantize_fast).
 */
static NNSCONS_ALWAYS_INLINE void fc_dot2(const int8_t *x, const int8_t *w0, const int8_t *w1, int32_t depth,
                                          uint32_t lanes, int32_t offset, int32_t *acc0, int32_t *acc1)
{
    int32_t a0 = *acc0;
    int32_t a1 = *acc1;
    const int8_t *end = x + (depth & ~3);
    while (x != end)
    {
        const uint32_t xs = arm_nn_read_s8x4(x);
        const int16x2_t x_even = __sxtab16(lanes, xs);
        const int16x2_t x_odd = arm_nn_sxtab16_odd(lanes, xs);
        uint32_t ws = arm_nn_read_s8x4(w0);
        a0 = __smlad(x_even, arm_nn_sxtb16_even(ws), a0);
        a0 = __smlad(x_odd, arm_nn_sxtb16_odd(ws), a0);
        ws = arm_nn_read_s8x4(w1);
        a1 = __smlad(x_even, arm_nn_sxtb16_even(ws), a1);
        a1 = __smlad(x_odd, arm_nn_sxtb16_odd(ws), a1);
        x += 4;
        w0 += 4;
        w1 += 4;
    }
    for (depth &= 3; depth > 0; depth--)
    {
        const int32_t v = *x++ + offset;
        a0 += v * *w0++;
        a1 += v * *w1++;
    }
    *acc0 = a0;
    *acc1 = a1;
}

/** One output value from its sum: requantized (constants of arm_nn_requantize_fast_init when ``rq`` is not NULL),
 * offset, clamped. */
static NNSCONS_ALWAYS_INLINE int8_t fc_output_dsp(int32_t acc, const arm_nn_requant *rq,
                                                  const cmsis_nn_fc_params *fc_params,
                                                  const cmsis_nn_per_tensor_quant_params *quant_params)
{
    const int32_t value = rq != NULL ? arm_nn_requantize_fast(acc, rq)
                                     : arm_nn_requantize_offset(acc, quant_params->multiplier, quant_params->shift,
                                                                fc_params->output_offset);
    return (int8_t)arm_nn_clamp_i32(value, fc_params->activation.min, fc_params->activation.max);
}

static NNSCONS_NOINLINE void fc_dsp_s8(const cmsis_nn_fc_params *fc_params,
                                       const cmsis_nn_per_tensor_quant_params *quant_params, int32_t batches,
                                       const int8_t *input_data, int32_t depth, const int8_t *filter_data,
                                       const int32_t *bias_data, int32_t out_c, int8_t *output_data)
{
    const uint32_t lanes = arm_nn_dup_s16(fc_params->input_offset);
    const int32_t offset = fc_params->input_offset;
    arm_nn_requant fast;
    const arm_nn_requant *rq =
        arm_nn_requantize_fast_init(&fast, quant_params->multiplier, quant_params->shift, fc_params->output_offset)
        ? &fast
        : NULL;
    for (; batches > 0; batches--)
    {
        const int8_t *w = filter_data;
        int32_t o;
        for (o = 0; o < out_c; o += 2)
        {
            /* an odd last row: itself twice */
            const int32_t second = o + 1 < out_c ? depth : 0;
            int32_t acc0 = bias_data != NULL ? bias_data[o] : 0;
            int32_t acc1 = bias_data != NULL ? bias_data[o + (second != 0)] : 0;
            fc_dot2(input_data, w, w + second, depth, lanes, offset, &acc0, &acc1);
            output_data[o] = fc_output_dsp(acc0, rq, fc_params, quant_params);
            output_data[o + (second != 0)] = fc_output_dsp(acc1, rq, fc_params, quant_params);
            w += 2 * depth;
        }
        input_data += depth;
        output_data += out_c;
    }
}
#endif

arm_cmsis_nn_status arm_fully_connected_s8(const cmsis_nn_context *ctx,
                                           const cmsis_nn_fc_params *fc_params,
                                           const cmsis_nn_per_tensor_quant_params *quant_params,
                                           const cmsis_nn_dims *input_dims,
                                           const int8_t *input_data,
                                           const cmsis_nn_dims *filter_dims,
                                           const int8_t *filter_data,
                                           const cmsis_nn_dims *bias_dims,
                                           const int32_t *bias_data,
                                           const cmsis_nn_dims *output_dims,
                                           int8_t *output_data)
{
    const int32_t depth = filter_dims->n;
    const int32_t out_c = output_dims->c;
    int32_t b;

    (void)ctx;
    (void)bias_dims;
#if NNSCONS_MVE
    if (depth >= 0 && fc_params->activation.min <= fc_params->activation.max) /* the vector clamp: the plain one */
    {
        arm_nn_fully_connected_mve_s8(fc_params, quant_params, input_dims->n, input_data, depth, filter_data,
                                      fc_kernel_sums(ctx, out_c), bias_data, out_c, output_data);
        return ARM_CMSIS_NN_SUCCESS;
    }
#elif NNSCONS_DSP
    if (fc_params->filter_offset == 0 && arm_nn_offset_fits_s16(fc_params->input_offset))
    {
        fc_dsp_s8(fc_params, quant_params, input_dims->n, input_data, depth, filter_data, bias_data, out_c,
                  output_data);
        return ARM_CMSIS_NN_SUCCESS;
    }
#endif
    for (b = 0; b < input_dims->n; b++)
    {
        int32_t o = 0;
        for (; fc_params->filter_offset == 0 && o + 2 <= out_c; o += 2)      /* two outputs per pass over the input */
        {
            int32_t sums[2];
            int32_t k;
            arm_nn_dot2_s8(input_data, filter_data + o * depth, filter_data + (o + 1) * depth, depth,
                           fc_params->input_offset, &sums[0], &sums[1]);
            for (k = 0; k < 2; k++)
            {
                output_data[o + k] = fc_output_s8(sums[k], o + k, fc_params, quant_params, bias_data);
            }
        }
        for (; o < out_c; o++)
        {
            const int32_t acc = fc_dot_s8(
                input_data, filter_data + o * depth, depth, fc_params->input_offset, fc_params->filter_offset);
            output_data[o] = fc_output_s8(acc, o, fc_params, quant_params, bias_data);
        }
        input_data += depth;
        output_data += out_c;
    }
    return ARM_CMSIS_NN_SUCCESS;
}
