/*
 * Overlapping placement (issue 13) kernel by kernel: runs the trials of overlap_trials.h (written by
 * tests/test_overlap_kernels.py) on the host (plain C paths) and on every Cortex-M core (DSP and Helium paths).
 *
 * A trial is one case of kernels_cases.h (the table and data pools of tests/test_kernels_on_core.py, whose
 * tests/firmware/kernels_case.h describes a case), a scratch buffer mode (KC_SCRATCH_* or OV_SCRATCH_SMALL) and a
 * list of lags D. It first runs the
 * kernel with input and output in buffers of their own (the reference), then once per D inside one arena poisoned
 * with 0xA5: the input at a 16-byte boundary, the output starting D bytes below it (input 2 of add and mul in a
 * region of its own, or the input itself for the aliased trials). Per D it counts the output bytes that differ
 * from the reference and the arena bytes outside the output that changed (poison, input, input 2). Lines:
 *
 *     ov features=<c|dsp|mve>
 *     ref <trial> status=<s> scratch=<ctx.size> out=<hex of the reference output>
 *     ov <trial> <D> status=<s> wrong=<output bytes differing> first=<first one, -1: none> stray=<bytes changed>
 *     ov done
 *
 * The exit status is 0 unless a trial could not be set up (arena or scratch too small).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "arm_nnfunctions.h"
#include "kernels_args.h"
#include "kernels_case.h"
#include "kernels_cases.h"
#include "overlap_trials.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#define OV_FEATURES "mve"
#elif defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1)
#define OV_FEATURES "dsp"
#else
#define OV_FEATURES "c"
#endif

#define OV_POISON 0xA5u
/* a scratch mode beside kernels_case.h's: the buffer, its size stated as 1 byte (too small for any column: the
 * Helium convolution then reads the receptive fields in place; the other builds ignore the size) */
#define OV_SCRATCH_SMALL 3

static uint8_t arena[OV_ARENA_BYTES] __attribute__((aligned(16)));
static uint8_t before[OV_ARENA_BYTES];
static int8_t ref_in[OV_TENSOR_BYTES] __attribute__((aligned(16)));
static int8_t ref_in2[OV_TENSOR_BYTES] __attribute__((aligned(16)));
static int8_t ref_out[OV_TENSOR_BYTES] __attribute__((aligned(16)));
static uint8_t scratch[KC_SCRATCH_BYTES] __attribute__((aligned(16)));

static int32_t align16(int32_t v) { return (v + 15) & ~15; }

/** ctx for the trial's mode: the getter's size (as generated code), that plus KC_ROOMY_EXTRA, none, or the whole
 * buffer stated as 1 byte. */
static int scratch_for(const ov_trial *t, cmsis_nn_context *ctx)
{
    const int32_t size = getter_size(&kc_cases[t->index]) + (t->scratch == KC_SCRATCH_ROOMY ? KC_ROOMY_EXTRA : 0);
    ctx->buf = NULL;
    ctx->size = 0;
    if (t->scratch == KC_SCRATCH_NULL || size == 0)
    {
        return 1;
    }
    if (size < 0 || size > KC_SCRATCH_BYTES)
    {
        return 0;
    }
    ctx->buf = scratch;
    ctx->size = t->scratch == OV_SCRATCH_SMALL ? 1 : size;
    memset(scratch, 0x3C, (size_t)size);
    return 1;
}

static arm_cmsis_nn_status run(const kc_case *c, const cmsis_nn_context *ctx, const int8_t *in, const int8_t *in2,
                               int8_t *out)
{
    const cmsis_nn_dims input = dims(c->input);
    const cmsis_nn_dims filter = dims(c->filter);
    const cmsis_nn_dims output = dims(c->output);
    const int32_t bias_c[4] = {1, 1, 1, c->output[3]};
    const cmsis_nn_dims bias = dims(bias_c);
    const int32_t *b = c->bias_at < 0 ? NULL : &kc_words[c->bias_at];
    const int32_t *q = c->params;
    cmsis_nn_per_channel_quant_params quant;
    quant.multiplier = (int32_t *)(uintptr_t)&kc_words[c->quant_at];
    quant.shift = (int32_t *)(uintptr_t)&kc_words[c->quant_at + c->output[3]];
    if (c->kind == KC_CONV)
    {
        cmsis_nn_conv_params p;
        p.input_offset = c->input_offset;
        p.output_offset = c->output_offset;
        p.stride = tile(c->stride);
        p.padding = tile(c->padding);
        p.dilation = tile(c->dilation);
        p.activation.min = c->act_min;
        p.activation.max = c->act_max;
        return arm_convolve_wrapper_s8(ctx, &p, &quant, &input, in, &filter, &kc_bytes[c->filter_at], &bias, b,
                                       &output, out);
    }
    if (c->kind == KC_DEPTHWISE)
    {
        cmsis_nn_dw_conv_params p;
        p.input_offset = c->input_offset;
        p.output_offset = c->output_offset;
        p.ch_mult = c->ch_mult;
        p.stride = tile(c->stride);
        p.padding = tile(c->padding);
        p.dilation = tile(c->dilation);
        p.activation.min = c->act_min;
        p.activation.max = c->act_max;
        return arm_depthwise_conv_wrapper_s8(ctx, &p, &quant, &input, in, &filter, &kc_bytes[c->filter_at], &bias,
                                             b, &output, out);
    }
    if (c->kind == KC_ADD)
    {
        return arm_elementwise_add_s8(in, in2, c->input_offset, q[0], q[1], c->input2_offset, q[2], q[3], q[4], out,
                                      c->output_offset, q[5], q[6], c->act_min, c->act_max, elements(c->input));
    }
    return arm_elementwise_mul_s8(in, in2, c->input_offset, c->input2_offset, out, c->output_offset, q[0], q[1],
                                  c->act_min, c->act_max, elements(c->input));
}

static void print_hex(const uint8_t *bytes, int32_t count)
{
    static const char hex[] = "0123456789abcdef";
    char chunk[129];
    int32_t i;
    int32_t used = 0;
    for (i = 0; i < count; i++)
    {
        chunk[used++] = hex[bytes[i] >> 4];
        chunk[used++] = hex[bytes[i] & 15u];
        if (used == (int32_t)sizeof(chunk) - 1 || i + 1 == count)
        {
            chunk[used] = '\0';
            fputs(chunk, stdout);
            used = 0;
        }
    }
}

static int has_input2(const kc_case *c) { return c->kind == KC_ADD || c->kind == KC_MUL; }

/** Separate buffers: the output every placement must reproduce. */
static arm_cmsis_nn_status reference(const ov_trial *t, const cmsis_nn_context *ctx)
{
    const kc_case *c = &kc_cases[t->index];
    memcpy(ref_in, &kc_bytes[c->input_at], (size_t)elements(c->input));
    if (has_input2(c))
    {
        memcpy(ref_in2, &kc_bytes[t->alias ? c->input_at : c->input2_at], (size_t)elements(c->input));
    }
    memset(ref_out, 0x5A, (size_t)elements(c->output));
    return run(c, ctx, ref_in, ref_in2, ref_out);
}

/** One placement: the output D bytes below the input in the poisoned arena. */
static void overlapped(const ov_trial *t, const cmsis_nn_context *ctx, int32_t lag)
{
    const kc_case *c = &kc_cases[t->index];
    const int32_t in_bytes = elements(c->input);
    const int32_t out_bytes = elements(c->output);
    const int32_t in_at = align16(OV_GUARD + t->max_lag);
    const int32_t out_at = in_at - lag;
    const int32_t in2_at = align16(in_at + in_bytes + OV_GUARD);
    const int8_t *in2 = NULL;
    arm_cmsis_nn_status status;
    int32_t wrong = 0;
    int32_t first = -1;
    int32_t stray = 0;
    const int32_t used = in2_at + in_bytes + OV_GUARD;
    int32_t i;
    memset(arena, OV_POISON, (size_t)used);
    memcpy(arena + in_at, &kc_bytes[c->input_at], (size_t)in_bytes);
    if (has_input2(c))
    {
        if (t->alias)
        {
            in2 = (const int8_t *)(arena + in_at);
        }
        else
        {
            memcpy(arena + in2_at, &kc_bytes[c->input2_at], (size_t)in_bytes);
            in2 = (const int8_t *)(arena + in2_at);
        }
    }
    memcpy(before, arena, (size_t)used);
    status = run(c, ctx, (const int8_t *)(arena + in_at), in2, (int8_t *)(arena + out_at));
    for (i = 0; i < out_bytes; i++)
    {
        if ((int8_t)arena[out_at + i] != ref_out[i])
        {
            first = first < 0 ? i : first;
            wrong++;
        }
    }
    for (i = 0; i < used; i++)
    {
        stray += (i < out_at || i >= out_at + out_bytes) && arena[i] != before[i];
    }
    printf("ov %ld %ld status=%d wrong=%ld first=%ld stray=%ld\n", (long)(t - ov_trials), (long)lag, (int)status,
           (long)wrong, (long)first, (long)stray);
}

static int run_trial(int32_t index)
{
    const ov_trial *t = &ov_trials[index];
    const kc_case *c = &kc_cases[t->index];
    cmsis_nn_context ctx;
    arm_cmsis_nn_status status;
    int32_t k;
    if (!scratch_for(t, &ctx) || elements(c->input) > OV_TENSOR_BYTES || elements(c->output) > OV_TENSOR_BYTES ||
        align16(align16(OV_GUARD + t->max_lag) + elements(c->input) + OV_GUARD) + elements(c->input) + OV_GUARD >
            OV_ARENA_BYTES)
    {
        printf("ov %ld error: arena, tensor or scratch buffer too small\n", (long)index);
        return 1;
    }
    status = reference(t, &ctx);
    printf("ref %ld status=%d scratch=%ld out=", (long)index, (int)status, (long)ctx.size);
    print_hex((const uint8_t *)ref_out, elements(c->output));
    fputs("\n", stdout);
    for (k = 0; k < t->lag_count; k++)
    {
        overlapped(t, &ctx, ov_lags[t->lag_at + k]);
    }
    fflush(stdout);
    return 0;
}

int main(void)
{
    int32_t i;
    int failed = 0;
    printf("ov features=%s\n", OV_FEATURES);
    for (i = 0; i < OV_TRIALS; i++)
    {
        failed |= run_trial(i);
    }
    puts("ov done");
    fflush(stdout);
    return failed;
}
