/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_nn_dw_mve_block_outputs: every output of one block of (up to) sixteen neighbouring output channels of an s8
 * depthwise convolution on Helium (MVE); the block's constants come from arm_nn_depthwise_conv_mve_s8.
 *
 * A tap is one load of eight input values and one of eight weights per half block, sign-extended to int16 lanes,
 * and their products widened to int32 (VMULLB/VMULLT: the even and the odd channels in two vectors; Helium has no
 * vector-by-vector multiply-accumulate) and added: 12 instructions for 16 MACs. With channel multiplier 1 the eight
 * input values are neighbours; otherwise one gather load reads each output channel's input channel. All taps of an
 * output position are summed first; the sums of DW_CHUNK positions then wait in a buffer and are requantized
 * together (arm_nn_requantize_mve), one vector of channels at a time so that its multipliers and shifts stay in
 * registers, and a saturating narrow interleaves the even and odd channels again.
 *
 * A window inside the input starts from bias + input_offset * the sum of the channel's weights and multiplies the
 * raw input (a 3x3 one unrolled over the block's packed weights); a window overhanging the input starts from the
 * bias and reads only its taps inside (found once per output position, outside the tap loops), the offset added
 * in the int16 lanes. The sums wrap modulo 2^32 like the plain C loop's, in whatever order they are added: the
 * same integers.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#if NNSCONS_MVE

#define DW_BLOCK ARM_NN_DW_MVE_BLOCK
#define DW_CHUNK ARM_NN_DW_MVE_CHUNK

typedef arm_nn_dw_mve_block dw_block;
typedef arm_nn_dw_mve_geometry dw_geometry;

/** The sums of a block: e0 of channels 0, 2, 4, 6, o0 of 1, 3, 5, 7; e1 and o1 the same for channels 8..15. */
typedef struct
{
    int32x4_t e0;
    int32x4_t o0;
    int32x4_t e1;
    int32x4_t o1;
} dw_sums;

/** How a block's loops read: ``halves`` of eight channels (1 or 2), ``gather`` (channel multiplier above 1),
 * ``tail`` (fewer than eight channels: predicated loads and stores). Constants where the loops are inlined. */
typedef struct
{
    int32_t halves;
    bool gather;
    bool tail;
} dw_kind;

#if defined(__GNUC__)
/*
 * A tap in assembly: GCC 12 hoists the loads of a window's taps and reassociates its sums into a tree of products,
 * more live vectors than Helium's eight registers, and spills; here three scratch registers do (a VMULLB/VMULLT
 * product may not overlap its operands), the gather's offsets and an offset from memory passing through the third.
 */
#define DW_X_NEXT(HALF) "vldrb.s16 %q[xv], [%[x], #" HALF "]\n\t"
#define DW_X_GATHER(HALF) "vldrh.u16 %q[p], [%[index], #2*" HALF "]\n\tvldrb.s16 %q[xv], [%[x], %q[p]]\n\t"
#define DW_ADD_REG "vadd.i16 %q[xv], %q[xv], %q[offset]\n\t"
#define DW_ADD_MEM "vldrh.u16 %q[p], [%[offsets]]\n\tvadd.i16 %q[xv], %q[xv], %q[p]\n\t"
#define DW_HALF(LOAD_X, HALF, ADD, E, O)                                                                               \
    LOAD_X(HALF) "vldrb.s16 %q[wv], [%[w], #" HALF "]\n\t" ADD "vmullb.s16 %q[p], %q[xv], %q[wv]\n\t"                 \
                 "vadd.i32 %q[" E "], %q[" E "], %q[p]\n\t"                                                           \
                 "vmullt.s16 %q[p], %q[xv], %q[wv]\n\t"                                                               \
                 "vadd.i32 %q[" O "], %q[" O "], %q[p]\n\t"
#define DW_SUMS2 [e0] "+w"(s.e0), [o0] "+w"(s.o0), [e1] "+w"(s.e1), [o1] "+w"(s.o1)
#define DW_SUMS1 [e0] "+w"(s.e0), [o0] "+w"(s.o0)
#define DW_MEMORY "m"(*(const int8_t(*)[DW_BLOCK])x), "m"(*(const int8_t(*)[DW_BLOCK])w)
/* the input operands: function-like, so that a name passed through DW_TAP expands only inside DW_ASM */
#define DW_IN_NEXT() [x] "l"(x), [w] "l"(w), DW_MEMORY
#define DW_IN_NEXT_OFFSET() [x] "l"(x), [w] "l"(w), [offset] "w"(offset), DW_MEMORY
#define DW_IN_GATHER() [x] "l"(x), [w] "l"(w), [index] "r"(b->index), "m"(b->index), DW_MEMORY
#define DW_IN_GATHER_OFFSET() DW_IN_GATHER(), [offsets] "r"(b->offset), "m"(b->offset)
#define DW_ASM(TEXT, SUMS, INPUTS)                                                                                     \
    __asm__(TEXT : SUMS, [xv] "=&w"(xv), [wv] "=&w"(wv), [p] "=&w"(product) : INPUTS())
#define DW_TAP(LOAD_X, ADD, INPUTS)                                                                                    \
    if (k.halves == 2)                                                                                                 \
    {                                                                                                                  \
        DW_ASM(DW_HALF(LOAD_X, "0", ADD, "e0", "o0") DW_HALF(LOAD_X, "8", ADD, "e1", "o1"), DW_SUMS2, INPUTS);         \
    }                                                                                                                  \
    else                                                                                                               \
    {                                                                                                                  \
        DW_ASM(DW_HALF(LOAD_X, "0", ADD, "e0", "o0"), DW_SUMS1, INPUTS);                                               \
    }
#endif

/** Eight input values of the half block (predicated in the tail block). */
static NNSCONS_ALWAYS_INLINE int16x8_t dw_input(const int8_t *x, int32_t half, const dw_block *b, dw_kind k)
{
    if (k.gather)
    {
        const uint16x8_t index = vld1q_u16(b->index + 8 * half);
        return k.tail ? vldrbq_gather_offset_z_s16(x, index, b->lanes) : vldrbq_gather_offset_s16(x, index);
    }
    return k.tail ? vldrbq_z_s16(x + 8 * half, b->lanes) : vldrbq_s16(x + 8 * half);
}

/** The tap in intrinsics (the tail block, and compilers without GCC's asm). */
static NNSCONS_ALWAYS_INLINE dw_sums dw_tap_c(dw_sums s, const int8_t *x, const int8_t *w, const dw_block *b,
                                              bool with_offset, bool packed, dw_kind k)
{
    int32_t half;
    for (half = 0; half < k.halves; half++)
    {
        int16x8_t xv = dw_input(x, half, b, k);
        const int16x8_t wv = packed || !k.tail ? vldrbq_s16(w + 8 * half) : vldrbq_z_s16(w, b->lanes);
        int32x4_t *e = half == 0 ? &s.e0 : &s.e1;
        int32x4_t *o = half == 0 ? &s.o0 : &s.o1;
        if (with_offset)
        {
            xv = vaddq_s16(xv, vld1q_s16(b->offset));
        }
        *e = vaddq_s32(*e, vmullbq_int_s16(xv, wv));
        *o = vaddq_s32(*o, vmulltq_int_s16(xv, wv));
    }
    return s;
}

/** One tap: input at x (plus the input offset when ``with_offset``; ``offset`` holds it in the int16 lanes) times
 * the weights at w (``packed``: the block's copy, readable unpredicated), added to the sums. */
static NNSCONS_ALWAYS_INLINE dw_sums dw_tap(dw_sums s, const int8_t *x, const int8_t *w, const dw_block *b,
                                            bool with_offset, int16x8_t offset, bool packed, dw_kind k)
{
#if defined(__GNUC__)
    if (!k.tail)
    {
        int16x8_t xv;
        int16x8_t wv;
        int32x4_t product;
        if (k.gather && with_offset)
        {
            DW_TAP(DW_X_GATHER, DW_ADD_MEM, DW_IN_GATHER_OFFSET);
        }
        else if (k.gather)
        {
            DW_TAP(DW_X_GATHER, "", DW_IN_GATHER);
        }
        else if (with_offset)
        {
            DW_TAP(DW_X_NEXT, DW_ADD_REG, DW_IN_NEXT_OFFSET);
        }
        else
        {
            DW_TAP(DW_X_NEXT, "", DW_IN_NEXT);
        }
        return s;
    }
#endif
    (void)offset;
    return dw_tap_c(s, x, w, b, with_offset, packed, k);
}

/** Adds input (+ offset when ``with_offset``) * weight over a rectangle of taps (rows x cols) starting at input x
 * and weights w (in the filter's layout). */
static NNSCONS_ALWAYS_INLINE dw_sums dw_taps(dw_sums s, const int8_t *x, const int8_t *w, int32_t rows,
                                             int32_t cols, const dw_geometry *g, const dw_block *b, bool with_offset,
                                             dw_kind k)
{
    const int16x8_t offset = vdupq_n_s16((int16_t)(with_offset ? g->input_offset : 0));
    int32_t r;
    for (r = 0; r < rows; r++)
    {
        const int8_t *xc = x;
        const int8_t *wc = w;
        int32_t c;
        for (c = 0; c < cols; c++)
        {
            s = dw_tap(s, xc, wc, b, with_offset, offset, false, k);
            xc += g->x_col;
            wc += g->out_c;
        }
        x += g->x_row;
        w += g->w_row;
    }
    return s;
}

/** A whole 3x3 window (unrolled) over the packed weights, the input offset folded into the starting sums. */
static NNSCONS_ALWAYS_INLINE dw_sums dw_taps_3x3(dw_sums s, const int8_t *x, const dw_geometry *g, const dw_block *b,
                                                 dw_kind k)
{
    const int16x8_t unused = vdupq_n_s16(0);
    const int32_t x_col = g->x_col;
    int32_t r;
    for (r = 0; r < 3; r++)
    {
        const int8_t *w = b->w3x3 + 3 * DW_BLOCK * r;
        s = dw_tap(s, x, w, b, false, unused, true, k);
        s = dw_tap(s, x + x_col, w + DW_BLOCK, b, false, unused, true, k);
        s = dw_tap(s, x + 2 * x_col, w + 2 * DW_BLOCK, b, false, unused, true, k);
        x += g->x_row;
    }
    return s;
}

/** [first, end) of the kernel taps along one axis that fall inside the input, for a window starting at ``base``. */
static void dw_inside_taps(int32_t *first, int32_t *end, int32_t base, int32_t dilation, int32_t kernel,
                           int32_t size)
{
    const int32_t lo = base < 0 ? (-base + dilation - 1) / dilation : 0;
    int32_t hi = size - 1 - base < 0 ? 0 : (size - 1 - base) / dilation + 1;
    hi = arm_nn_min_i32(hi, kernel);
    *first = arm_nn_min_i32(lo, kernel);
    *end = arm_nn_max_i32(hi, *first);
}

static NNSCONS_ALWAYS_INLINE dw_sums dw_load_sums(const int32_t *v)
{
    dw_sums s;
    s.e0 = vld1q_s32(v);
    s.o0 = vld1q_s32(v + 4);
    s.e1 = vld1q_s32(v + 8);
    s.o1 = vld1q_s32(v + 12);
    return s;
}

/** The sums of the window at (base_y, base_x): kernel rows [ky0, ky1) inside, all its taps when ``whole``. */
static NNSCONS_ALWAYS_INLINE dw_sums dw_window(const int8_t *input, const int8_t *filter, int32_t base_y,
                                               int32_t base_x, int32_t ky0, int32_t ky1, bool whole,
                                               const dw_geometry *g, const dw_block *b, dw_kind k)
{
    int32_t kx0;
    int32_t kx1;
    if (whole)
    {
        const int8_t *x = input + (base_y * g->in_w + base_x) * g->in_c;
        if (g->k_h == 3 && g->k_w == 3 && !k.gather)
        {
            return dw_taps_3x3(dw_load_sums(b->start), x, g, b, k);
        }
        return dw_taps(dw_load_sums(b->start), x, filter, g->k_h, g->k_w, g, b, false, k);
    }
    dw_inside_taps(&kx0, &kx1, base_x, g->dil_w, g->k_w, g->in_w);
    if (ky1 > ky0 && kx1 > kx0)
    {
        const int32_t iy = base_y + ky0 * g->dil_h;
        const int32_t ix = base_x + kx0 * g->dil_w;
        return dw_taps(dw_load_sums(b->bias), input + (iy * g->in_w + ix) * g->in_c,
                       filter + ky0 * g->w_row + kx0 * g->out_c, ky1 - ky0, kx1 - kx0, g, b, true, k);
    }
    return dw_load_sums(b->bias);
}

/**
 * The outputs of ``count`` consecutive positions (from out, one output row of the layer apart) from their sums,
 * channels 8 * half .. 8 * half + 7: the even channels' vectors requantized and narrowed first, then the odd ones,
 * so that each loop keeps one vector's multipliers and shifts in registers.
 */
static NNSCONS_ALWAYS_INLINE void dw_requantize_half(int8_t *out, const int32_t (*sums)[DW_BLOCK], int32_t count,
                                                     int32_t half, const dw_block *b, const dw_geometry *g, dw_kind k)
{
    const int32_t first = 8 * half;
    int16x8_t narrow[DW_CHUNK];
    int32_t i;
    {
        const int32x4_t multiplier = vld1q_s32(b->multiplier + first);
        const int32x4_t shift = vld1q_s32(b->shift + first);
        for (i = 0; i < count; i++)
        {
            const int32x4_t r = vaddq_n_s32(arm_nn_requantize_mve(vld1q_s32(sums[i] + first), multiplier, shift),
                                            g->output_offset);
            /* saturated to int16 (the activation bounds lie inside), into the bottom halves */
            narrow[i] = vqmovnbq_s32(vreinterpretq_s16_s32(r), r);
        }
    }
    {
        const int32x4_t multiplier = vld1q_s32(b->multiplier + first + 4);
        const int32x4_t shift = vld1q_s32(b->shift + first + 4);
        const int16x8_t act_min = vdupq_n_s16((int16_t)g->act_min);
        const int16x8_t act_max = vdupq_n_s16((int16_t)g->act_max);
        for (i = 0; i < count; i++)
        {
            const int32x4_t r = vaddq_n_s32(arm_nn_requantize_mve(vld1q_s32(sums[i] + first + 4), multiplier, shift),
                                            g->output_offset);
            const int16x8_t both = vminq_s16(vmaxq_s16(vqmovntq_s32(narrow[i], r), act_min), act_max);
            if (k.tail)
            {
                vstrbq_p_s16(out + first, both, b->lanes);
            }
            else
            {
                vstrbq_s16(out + first, both);
            }
            out += g->out_c;
        }
    }
}

/** The output row being summed: its window's first input row and the kernel rows [ky0, ky1) inside the input. */
typedef struct
{
    int32_t base_y;
    int32_t ky0;
    int32_t ky1;
    bool whole; /* every kernel row inside */
} dw_row;

static NNSCONS_ALWAYS_INLINE dw_row dw_row_at(int32_t oy, const dw_geometry *g)
{
    dw_row row;
    row.base_y = oy * g->stride_h - g->pad_h;
    dw_inside_taps(&row.ky0, &row.ky1, row.base_y, g->dil_h, g->k_h, g->in_h);
    row.whole = row.ky0 == 0 && row.ky1 == g->k_h;
    return row;
}

/** Every output of the block. The output positions of a batch are taken in order, DW_CHUNK at a time across rows:
 * their sums, then their outputs. */
static NNSCONS_ALWAYS_INLINE void dw_block_outputs(arm_nn_dw_mve_work *work, const dw_geometry *geo,
                                                   const int8_t *input, const int8_t *filter, int8_t *output,
                                                   dw_kind k)
{
    const dw_geometry g = *geo;
    const dw_block *b = &work->block;
    const int32_t in_batch = g.in_h * g.in_w * g.in_c;
    const int32_t positions = g.out_h * g.out_w;
    int32_t(*sums)[DW_BLOCK] = work->sums;
    int32_t batch;
    input += b->in_channel;
    filter += b->channel;
    output += b->channel;
    for (batch = 0; batch < g.batches; batch++)
    {
        int32_t oy = 0;
        int32_t ox = 0;
        dw_row row = dw_row_at(0, &g);
        int32_t done;
        for (done = 0; done < positions; done += DW_CHUNK)
        {
            const int32_t count = arm_nn_min_i32(DW_CHUNK, positions - done);
            int32_t i;
            for (i = 0; i < count; i++)
            {
                const bool whole = row.whole && ox >= g.ox_first && ox < g.ox_end;
                const dw_sums s = dw_window(input, filter, row.base_y, ox * g.stride_w - g.pad_w, row.ky0, row.ky1,
                                            whole, &g, b, k);
                vst1q_s32(sums[i], s.e0);
                vst1q_s32(sums[i] + 4, s.o0);
                vst1q_s32(sums[i] + 8, s.e1);
                vst1q_s32(sums[i] + 12, s.o1);
                if (++ox == g.out_w)
                {
                    ox = 0;
                    row = dw_row_at(++oy, &g);
                }
            }
            for (i = 0; i < k.halves; i++)
            {
                dw_requantize_half(output, (const int32_t(*)[DW_BLOCK])sums, count, i, b, &g, k);
            }
            output += count * g.out_c;
        }
        input += in_batch;
    }
}

#define DW_INSTANCE(NAME, HALVES, GATHER, TAIL)                                                                        \
    static NNSCONS_NOINLINE void NAME(arm_nn_dw_mve_work *work, const dw_geometry *g, const int8_t *input,           \
                                      const int8_t *filter, int8_t *output)                                            \
    {                                                                                                                  \
        const dw_kind k = {HALVES, GATHER, TAIL};                                                                      \
        dw_block_outputs(work, g, input, filter, output, k);                                                           \
    }
DW_INSTANCE(dw_outputs_16, 2, false, false)
DW_INSTANCE(dw_outputs_8, 1, false, false)
DW_INSTANCE(dw_outputs_gather_16, 2, true, false)
DW_INSTANCE(dw_outputs_gather_8, 1, true, false)
/* the tail block (the last, under eight channels) reads either way */
DW_INSTANCE(dw_outputs_tail, 1, g->ch_mult != 1, true)

void arm_nn_dw_mve_block_outputs(arm_nn_dw_mve_work *work, const arm_nn_dw_mve_geometry *g, const int8_t *input,
                                 const int8_t *filter, int8_t *output)
{
    const bool gather = g->ch_mult != 1;
    if (work->block.count == DW_BLOCK)
    {
        (gather ? dw_outputs_gather_16 : dw_outputs_16)(work, g, input, filter, output);
    }
    else if (work->block.count == DW_BLOCK / 2)
    {
        (gather ? dw_outputs_gather_8 : dw_outputs_8)(work, g, input, filter, output);
    }
    else
    {
        dw_outputs_tail(work, g, input, filter, output);
    }
}
#endif
