/*
 * Runs the cases of kernels_cases.h (written by tests/test_kernels_on_core.py) through the public s8 kernels and
 * prints one line per case, the same program on the host (plain C paths, the reference) and on every Cortex-M core
 * (DSP and Helium paths):
 *
 *     kc <case> status=<s> instructions=<n> scratch=<bytes> guards=<mask> out=<hex of the output bytes>
 *
 * The tensors sit in a RAM arena at the positions the case gives (any alignment), the weights and parameters in
 * flash; on a core, the case's "edge" tensor instead ends at the last byte of RAM (-DKC_DATA_END), where a read
 * past it faults on QEMU's mps3-an547 (m55). Under AddressSanitizer every tensor gets a heap block of its own size.
 * The scratch buffer is what the build's getter asks for (_mve with Helium, _dsp with the DSP extension, the plain
 * one otherwise, as generated code chooses), that plus spare room, or none, per case. Around the output and after
 * the scratch buffer lie guard bytes; `guards` is 0 when they and the inputs are untouched (bits: 1 before the
 * output, 2 after it, 4 after the scratch buffer, 8 input changed, 16 input 2 changed). `instructions` counts the
 * kernel call alone (SysTick under QEMU -icount shift=0: ticks * 1e9 / NNSCONS_CLOCK_HZ; 0 on the host).
 * The exit status is 0 unless a case could not be set up.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "arm_nnfunctions.h"
#include "kernels_args.h"
#include "kernels_case.h"
#include "kernels_cases.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#define KC_MVE 1
#else
#define KC_MVE 0
#endif

#if defined(__arm__)
#include "nnscons_firmware.h"
#ifndef NNSCONS_CLOCK_HZ
#error "compile with -DNNSCONS_CLOCK_HZ=<the processor clock in Hz>"
#endif
#define KC_INSTRUCTIONS(ticks) ((ticks) * 1000000000u / (uint64_t)NNSCONS_CLOCK_HZ)
#else
static void nnscons_counter_start(void) {}
static uint64_t nnscons_counter_sync(void) { return 0; }
static uint64_t nnscons_counter_ticks(void) { return 0; }
#define KC_INSTRUCTIONS(ticks) (ticks)
#endif

#define KC_GUARD_BEFORE 16
#define KC_GUARD_AFTER 32

/* 16 bytes of slack to align the start of the buffer to 16 */
static uint8_t scratch_space[KC_SCRATCH_BYTES + KC_GUARD_AFTER + 16];

static uint8_t *aligned16(uint8_t *p) { return p + ((16u - ((uintptr_t)p & 15u)) & 15u); }

/** A byte of the guard pattern: position-dependent, so that a shifted copy shows too. */
static uint8_t guard_byte(int32_t i) { return (uint8_t)(0xA5u ^ (uint32_t)(i * 37)); }

static void fill_guard(uint8_t *p, int32_t count)
{
    int32_t i;
    for (i = 0; i < count; i++)
    {
        p[i] = guard_byte(i);
    }
}

static int guard_intact(const uint8_t *p, int32_t count)
{
    int32_t i;
    for (i = 0; i < count; i++)
    {
        if (p[i] != guard_byte(i))
        {
            return 0;
        }
    }
    return 1;
}

static int has_input2(const kc_case *c) { return c->kind == KC_ADD || c->kind == KC_MUL; }

/* Where a case's tensors live: the arena and the constant pools, or (under AddressSanitizer) one heap block per
 * tensor of exactly its size, so that a read or write past any of them is reported. */
typedef struct
{
    int8_t *in;
    int8_t *in2;
    int8_t *out;
    const int8_t *filter;
    const int32_t *bias;
    const int32_t *quant;
} kc_buffers;

#if defined(__SANITIZE_ADDRESS__)
#include <stdlib.h>
#define KC_EXACT_BLOCKS 1

/** A heap block holding `bytes` bytes at `misalign` bytes from its (aligned) start. */
static void *exact_block(const void *data, int32_t bytes, int32_t misalign)
{
    uint8_t *block = (uint8_t *)malloc((size_t)(misalign + bytes));
    if (data != NULL && bytes > 0)
    {
        memcpy(block + misalign, data, (size_t)bytes);
    }
    return block + misalign;
}

static void place(const kc_case *c, kc_buffers *b)
{
    const int32_t count = elements(c->input);
    const int32_t channels = c->kind == KC_FC ? c->filter[3] : c->output[3];
    b->in = (int8_t *)exact_block(&kc_bytes[c->input_at], count, c->input_pos & 15);
    b->in2 = has_input2(c) ? (int8_t *)exact_block(&kc_bytes[c->input2_at], count, c->input2_pos & 15) : NULL;
    b->out = (int8_t *)exact_block(NULL, elements(c->output), c->output_pos & 15);
    b->filter = c->filter_at < 0 ? NULL : (const int8_t *)exact_block(&kc_bytes[c->filter_at], elements(c->filter),
                                                                      c->filter_at & 3);
    b->bias = c->bias_at < 0 ? NULL : (const int32_t *)exact_block(&kc_words[c->bias_at], channels * 4, 0);
    b->quant = c->quant_at < 0 ? NULL : (const int32_t *)exact_block(&kc_words[c->quant_at], channels * 8, 0);
}

static void release(const kc_case *c, const kc_buffers *b)
{
    free(b->in - (c->input_pos & 15));
    free(b->in2 == NULL ? NULL : b->in2 - (c->input2_pos & 15));
    free(b->out - (c->output_pos & 15));
    free(b->filter == NULL ? NULL : (void *)(uintptr_t)(b->filter - (c->filter_at & 3)));
    free((void *)(uintptr_t)b->bias);
    free((void *)(uintptr_t)b->quant);
}

static void *exact_scratch(int32_t size) { return malloc((size_t)size); }

static void release_scratch(const cmsis_nn_context *ctx) { free(ctx->buf); }
#else
#define KC_EXACT_BLOCKS 0

/* 16 bytes of slack to align the start of the arena to 16 */
static uint8_t arena_space[KC_ARENA_BYTES + 16];

#if defined(KC_DATA_END)
extern uint32_t __stack_top__[];

/** `bytes` bytes ending at the end of the RAM region, past the stack (NULL if they do not fit there). */
static uint8_t *ram_end(int32_t bytes)
{
    uint8_t *start = (uint8_t *)(uintptr_t)KC_DATA_END - bytes;
    return start >= (uint8_t *)__stack_top__ ? start : NULL;
}
#else
static uint8_t *ram_end(int32_t bytes)
{
    (void)bytes;
    return NULL;
}
#endif

/** The case's edge tensor moved to the end of RAM, where a read past it leaves the memory map. */
static void place_at_edge(const kc_case *c, kc_buffers *b)
{
    const int32_t count = c->edge == KC_EDGE_WEIGHTS ? elements(c->filter) : elements(c->input);
    uint8_t *edge = ram_end(count);
    if (edge == NULL || c->edge == KC_EDGE_NONE || (c->edge == KC_EDGE_WEIGHTS && b->filter == NULL))
    {
        return;
    }
    if (c->edge == KC_EDGE_WEIGHTS)
    {
        memcpy(edge, b->filter, (size_t)count);
        b->filter = (const int8_t *)edge;
    }
    else if (c->edge == KC_EDGE_INPUT)
    {
        memcpy(edge, b->in, (size_t)count);
        b->in = (int8_t *)edge;
    }
    else
    {
        memcpy(edge, b->in2, (size_t)count);
        b->in2 = (int8_t *)edge;
    }
}

static void place(const kc_case *c, kc_buffers *b)
{
    uint8_t *arena = aligned16(arena_space);
    b->in = (int8_t *)(arena + c->input_pos);
    b->in2 = (int8_t *)(arena + c->input2_pos);
    b->out = (int8_t *)(arena + c->output_pos);
    b->filter = c->filter_at < 0 ? NULL : &kc_bytes[c->filter_at];
    b->bias = c->bias_at < 0 ? NULL : &kc_words[c->bias_at];
    b->quant = c->quant_at < 0 ? NULL : &kc_words[c->quant_at];
    memcpy(b->in, &kc_bytes[c->input_at], (size_t)elements(c->input));
    if (has_input2(c))
    {
        memcpy(b->in2, &kc_bytes[c->input2_at], (size_t)elements(c->input));
    }
    place_at_edge(c, b);
}

static void release(const kc_case *c, const kc_buffers *b)
{
    (void)c;
    (void)b;
}

static void *exact_scratch(int32_t size)
{
    (void)size;
    return NULL;
}

static void release_scratch(const cmsis_nn_context *ctx) { (void)ctx; }
#endif

static arm_cmsis_nn_status run_conv(const kc_case *c, const kc_buffers *b, const cmsis_nn_context *ctx)
{
    const cmsis_nn_dims input = dims(c->input);
    const cmsis_nn_dims filter = dims(c->filter);
    const cmsis_nn_dims output = dims(c->output);
    const int32_t bias_c[4] = {1, 1, 1, c->output[3]};
    const cmsis_nn_dims bias = dims(bias_c);
    cmsis_nn_per_channel_quant_params quant;
    quant.multiplier = (int32_t *)(uintptr_t)b->quant;
    quant.shift = (int32_t *)(uintptr_t)(b->quant + c->output[3]);
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
        return arm_convolve_wrapper_s8(ctx, &p, &quant, &input, b->in, &filter, b->filter, &bias, b->bias, &output,
                                       b->out);
    }
    else
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
        return arm_depthwise_conv_wrapper_s8(ctx, &p, &quant, &input, b->in, &filter, b->filter, &bias, b->bias,
                                             &output, b->out);
    }
}

/** Helium builds read per-row kernel sums (bias folded in) from the scratch buffer: filled as generated code does,
 * before the measured call. */
static arm_cmsis_nn_status prepare_fc(const kc_case *c, const kc_buffers *b, const cmsis_nn_context *ctx)
{
    if (!KC_MVE || ctx->buf == NULL)
    {
        return ARM_CMSIS_NN_SUCCESS;
    }
    return arm_vector_sum_s8((int32_t *)ctx->buf, c->filter[0], c->filter[3], b->filter, c->input_offset,
                             c->input2_offset, b->bias);
}

static arm_cmsis_nn_status run_fc(const kc_case *c, const kc_buffers *b, const cmsis_nn_context *ctx)
{
    const cmsis_nn_dims input = dims(c->input);
    const cmsis_nn_dims filter = dims(c->filter);
    const cmsis_nn_dims output = dims(c->output);
    const int32_t bias_c[4] = {1, 1, 1, c->filter[3]};
    const cmsis_nn_dims bias = dims(bias_c);
    cmsis_nn_fc_params p;
    cmsis_nn_per_tensor_quant_params quant;
    p.input_offset = c->input_offset;
    p.filter_offset = c->input2_offset;
    p.output_offset = c->output_offset;
    p.activation.min = c->act_min;
    p.activation.max = c->act_max;
    quant.multiplier = c->params[0];
    quant.shift = c->params[1];
    return arm_fully_connected_s8(ctx, &p, &quant, &input, b->in, &filter, b->filter, &bias, b->bias, &output,
                                  b->out);
}

static arm_cmsis_nn_status run_pool(const kc_case *c, const kc_buffers *b, const cmsis_nn_context *ctx)
{
    const cmsis_nn_dims input = dims(c->input);
    const cmsis_nn_dims filter = dims(c->filter);
    const cmsis_nn_dims output = dims(c->output);
    cmsis_nn_pool_params p;
    p.stride = tile(c->stride);
    p.padding = tile(c->padding);
    p.activation.min = c->act_min;
    p.activation.max = c->act_max;
    if (c->kind == KC_AVGPOOL)
    {
        return arm_avgpool_s8(ctx, &p, &input, b->in, &filter, &output, b->out);
    }
    return arm_max_pool_s8(ctx, &p, &input, b->in, &filter, &output, b->out);
}

static arm_cmsis_nn_status run_elementwise(const kc_case *c, const kc_buffers *b)
{
    const int32_t *q = c->params;
    if (c->kind == KC_ADD)
    {
        return arm_elementwise_add_s8(b->in, b->in2, c->input_offset, q[0], q[1], c->input2_offset, q[2], q[3], q[4],
                                      b->out, c->output_offset, q[5], q[6], c->act_min, c->act_max,
                                      elements(c->input));
    }
    if (c->kind == KC_MUL)
    {
        return arm_elementwise_mul_s8(b->in, b->in2, c->input_offset, c->input2_offset, b->out, c->output_offset,
                                      q[0], q[1], c->act_min, c->act_max, elements(c->input));
    }
    arm_softmax_s8(b->in, c->input[2], c->input[3], q[0], q[1], q[2], b->out);
    return ARM_CMSIS_NN_SUCCESS;
}

static arm_cmsis_nn_status run(const kc_case *c, const kc_buffers *b, const cmsis_nn_context *ctx)
{
    switch (c->kind)
    {
    case KC_CONV:
    case KC_DEPTHWISE:
        return run_conv(c, b, ctx);
    case KC_FC:
        return run_fc(c, b, ctx);
    case KC_AVGPOOL:
    case KC_MAXPOOL:
        return run_pool(c, b, ctx);
    default:
        return run_elementwise(c, b);
    }
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

/** The scratch buffer of a case (NULL, or the aligned start of scratch_space, or under AddressSanitizer a block of
 * exactly the stated size) and its stated size; 0 when it does not fit. */
static int scratch_for(const kc_case *c, cmsis_nn_context *ctx)
{
    const int32_t size = getter_size(c) + (c->scratch == KC_SCRATCH_ROOMY ? KC_ROOMY_EXTRA : 0);
    ctx->buf = NULL;
    ctx->size = 0;
    if (c->scratch == KC_SCRATCH_NULL)
    {
        return 1;
    }
    if (size < 0 || size > KC_SCRATCH_BYTES)
    {
        return 0;
    }
    ctx->buf = KC_EXACT_BLOCKS ? exact_scratch(size) : aligned16(scratch_space);
    ctx->size = size;
    memset(ctx->buf, 0x3C, (size_t)size);
    if (!KC_EXACT_BLOCKS)
    {
        fill_guard((uint8_t *)ctx->buf + size, KC_GUARD_AFTER);
    }
    return 1;
}

/** The guard bits of the line (see the file's header); under AddressSanitizer only the inputs are compared. */
static unsigned check_guards(const kc_case *c, const kc_buffers *b, const cmsis_nn_context *ctx)
{
    const int32_t count = elements(c->input);
    const uint8_t *out = (const uint8_t *)b->out;
    unsigned guards = 0;
    if (!KC_EXACT_BLOCKS)
    {
        guards |= guard_intact(out - KC_GUARD_BEFORE, KC_GUARD_BEFORE) ? 0u : 1u;
        guards |= guard_intact(out + elements(c->output), KC_GUARD_AFTER) ? 0u : 2u;
        guards |= ctx->buf == NULL || guard_intact((uint8_t *)ctx->buf + ctx->size, KC_GUARD_AFTER) ? 0u : 4u;
    }
    guards |= memcmp(b->in, &kc_bytes[c->input_at], (size_t)count) == 0 ? 0u : 8u;
    guards |= !has_input2(c) || memcmp(b->in2, &kc_bytes[c->input2_at], (size_t)count) == 0 ? 0u : 16u;
    return guards;
}

static int run_case(int32_t index)
{
    const kc_case *c = &kc_cases[index];
    const int32_t out_bytes = elements(c->output);
    kc_buffers b;
    cmsis_nn_context ctx;
    arm_cmsis_nn_status status;
    uint64_t start, ticks;
    unsigned guards;
    if (!scratch_for(c, &ctx))
    {
        printf("kc %ld error: scratch %ld bytes > KC_SCRATCH_BYTES\n", (long)index, (long)getter_size(c));
        return 1;
    }
    place(c, &b);
    memset(b.out, 0x5A, (size_t)out_bytes);
    if (!KC_EXACT_BLOCKS)
    {
        fill_guard((uint8_t *)b.out - KC_GUARD_BEFORE, KC_GUARD_BEFORE);
        fill_guard((uint8_t *)b.out + out_bytes, KC_GUARD_AFTER);
    }
    status = c->kind == KC_FC ? prepare_fc(c, &b, &ctx) : ARM_CMSIS_NN_SUCCESS;
    start = nnscons_counter_sync();
    if (status == ARM_CMSIS_NN_SUCCESS)
    {
        status = run(c, &b, &ctx);
    }
    ticks = nnscons_counter_ticks() - start;
    guards = check_guards(c, &b, &ctx);
    printf("kc %ld status=%d instructions=%lu scratch=%ld guards=%u out=", (long)index, (int)status,
           (unsigned long)KC_INSTRUCTIONS(ticks), (long)ctx.size, guards);
    print_hex((const uint8_t *)b.out, out_bytes);
    fputs("\n", stdout);
    fflush(stdout);     /* a fault or a sanitizer report next still shows which case was running */
    release(c, &b);
    release_scratch(&ctx);
    return 0;
}

int main(void)
{
    int32_t i;
    int failed = 0;
    nnscons_counter_start();
    printf("kc start cases=%d\n", KC_CASES);
    for (i = 0; i < KC_CASES; i++)
    {
        failed |= run_case(i);
    }
    puts("kc done");
    fflush(stdout);
    return failed;
}
