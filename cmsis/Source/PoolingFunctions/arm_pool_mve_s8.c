/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * arm_max_pool_s8 and arm_avgpool_s8 on Helium (MVE): 16 channels per vector (the last block tail-predicated,
 * so nothing past the tensor is read or written), the taps of a window in the inner loop. No scratch memory.
 *
 * Max: VMAX over the taps from -128, then the activation clamp. Average: each window row's taps are summed in
 * int16 lanes (at most 256 taps of int8, so no overflow), folded into int32, then divided by the tap count
 * exactly as the plain C path rounds (nearest, ties away from zero): avg = floor((sum + h) / count) with
 * h = count / 2 for sum >= 0 and (count - 1) / 2 for sum < 0 (the same integers, ties included). The floor
 * division is by multiplication: with n = sum + h + 128 * count in [0, 256 * count) and M = ceil(2^32 / count),
 * floor(n * M / 2^32) = floor(n / count) as long as n * (M * count - 2^32) < 2^32, true for count < 4096 (for
 * count = 1, M = 2^32 - 1 and n + 1). The result minus 128 is avg.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#if NNSCONS_MVE

/* The largest window the exact division covers (see above), and the int16 lanes' tap limit. */
#define POOL_MVE_MAX_COUNT 4095
#define POOL_MVE_S16_TAPS 256

/** Whether the activation bounds are int8 values in order: then clamping int8 lanes is the plain C clamp. */
static bool pool_act_is_s8(const cmsis_nn_activation *act)
{
    return act->min >= INT8_MIN && act->min <= act->max && act->max <= INT8_MAX;
}

/* ---- max pooling ------------------------------------------------------------------------------------------------ */

/** The maximum over a window of 16 channels (lanes of p when ``tail``, a constant after inlining). */
static NNSCONS_ALWAYS_INLINE int8x16_t max_window16(const int8_t *in, int32_t row_stride, int32_t rows,
                                                   int32_t cols, int32_t channels, bool tail, mve_pred16_t p)
{
    int8x16_t max = vdupq_n_s8(INT8_MIN);
    for (; rows > 0; rows--, in += row_stride)
    {
        const int8_t *tap = in;
        int32_t x;
        for (x = cols; x > 0; x--, tap += channels)
        {
            max = vmaxq_s8(max, tail ? vldrbq_z_s8(tap, p) : vld1q_s8(tap));
        }
    }
    return max;
}

/** The outputs of one position: every block of 16 channels (the last one predicated by tail_p). */
static NNSCONS_ALWAYS_INLINE void max_position(const int8_t *in, int32_t row_stride, int32_t rows, int32_t cols,
                                               int32_t channels, int8x16_t act_min, int8x16_t act_max,
                                               mve_pred16_t tail_p, int8_t *dst)
{
    int32_t c;
    for (c = 0; c + 16 <= channels; c += 16)
    {
        const int8x16_t max = max_window16(in + c, row_stride, rows, cols, channels, false, tail_p);
        vst1q_s8(dst + c, vminq_s8(vmaxq_s8(max, act_min), act_max));
    }
    if (c < channels)
    {
        const int8x16_t max = max_window16(in + c, row_stride, rows, cols, channels, true, tail_p);
        vstrbq_p_s8(dst + c, vminq_s8(vmaxq_s8(max, act_min), act_max), tail_p);
    }
}

arm_cmsis_nn_status arm_nn_max_pool_mve_s8(const cmsis_nn_pool_params *pool_params,
                                           const cmsis_nn_dims *input_dims,
                                           const int8_t *src,
                                           const cmsis_nn_dims *filter_dims,
                                           const cmsis_nn_dims *output_dims,
                                           int8_t *dst)
{
    /* in locals: the int8 stores could alias the structs, and the loops would read them again */
    const int32_t in_h = input_dims->h;
    const int32_t in_w = input_dims->w;
    const int32_t channels = input_dims->c;
    const int32_t out_h = output_dims->h;
    const int32_t out_w = output_dims->w;
    const cmsis_nn_tile stride = pool_params->stride;
    const cmsis_nn_tile padding = pool_params->padding;
    const int32_t kh = filter_dims->h;
    const int32_t kw = filter_dims->w;
    const int32_t row_stride = in_w * channels;
    const int8x16_t act_min = vdupq_n_s8((int8_t)pool_params->activation.min);
    const int8x16_t act_max = vdupq_n_s8((int8_t)pool_params->activation.max);
    const mve_pred16_t tail_p = vctp8q((uint32_t)(channels & 15));
    int32_t b;

    if (!pool_act_is_s8(&pool_params->activation))
    {
        return ARM_CMSIS_NN_NO_IMPL_ERROR;
    }
    for (b = 0; b < input_dims->n; b++)
    {
        const int8_t *batch_in = src + b * in_h * row_stride;
        int32_t oy;
        for (oy = 0; oy < out_h; oy++)
        {
            const arm_nn_window rows = arm_nn_pool_window(oy, stride.h, padding.h, kh, in_h);
            const int32_t n_rows = arm_nn_max_i32(rows.end - rows.start, 0);
            int32_t ox;
            for (ox = 0; ox < out_w; ox++, dst += channels)
            {
                const arm_nn_window cols = arm_nn_pool_window(ox, stride.w, padding.w, kw, in_w);
                const int32_t n_cols = arm_nn_max_i32(cols.end - cols.start, 0);
                const int8_t *in = batch_in + rows.start * row_stride + cols.start * channels;
                if (n_rows == 2 && n_cols == 2)
                {
                    /* the most common window, its taps unrolled */
                    max_position(in, row_stride, 2, 2, channels, act_min, act_max, tail_p, dst);
                }
                else
                {
                    max_position(in, row_stride, n_rows, n_cols, channels, act_min, act_max, tail_p, dst);
                }
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}

/* ---- average pooling -------------------------------------------------------------------------------------------- */

/** The sums of a window over 16 channels as int32: channels 0..7 (even and odd lanes), 8..15 likewise. */
typedef struct
{
    int32x4_t lo_even;
    int32x4_t lo_odd;
    int32x4_t hi_even;
    int32x4_t hi_odd;
} avg_sums16;

/** Adds ``rows`` x ``cols`` taps (at most 256) of 16 channels (lanes of p_lo / p_hi when ``tail``) to the int16
 * lanes of *lo (channels 0..7) and *hi (8..15). */
static NNSCONS_ALWAYS_INLINE void avg_taps16(const int8_t *in, int32_t row_stride, int32_t rows, int32_t cols,
                                             int32_t channels, bool tail, mve_pred16_t p_lo, mve_pred16_t p_hi,
                                             int16x8_t *lo, int16x8_t *hi)
{
    int16x8_t l = *lo;
    int16x8_t h = *hi;
    for (; rows > 0; rows--, in += row_stride)
    {
        const int8_t *tap = in;
        int32_t x;
        for (x = cols; x > 0; x--, tap += channels)
        {
            l = vaddq_s16(l, tail ? vldrbq_z_s16(tap, p_lo) : vldrbq_s16(tap));
            h = vaddq_s16(h, tail ? vldrbq_z_s16(tap + 8, p_hi) : vldrbq_s16(tap + 8));
        }
    }
    *lo = l;
    *hi = h;
}

/** The window's sums of 16 channels (lanes of p_lo / p_hi when ``tail``): in int16 lanes ``fold_rows`` rows at a
 * time, each part widened into the int32 sums. */
static NNSCONS_ALWAYS_INLINE void avg_window16(const int8_t *in, int32_t row_stride, int32_t rows, int32_t cols,
                                               int32_t channels, int32_t fold_rows, bool tail, mve_pred16_t p_lo,
                                               mve_pred16_t p_hi, avg_sums16 *sums)
{
    int16x8_t lo = vdupq_n_s16(0);
    int16x8_t hi = vdupq_n_s16(0);
    int32_t r = arm_nn_min_i32(rows, fold_rows);
    avg_taps16(in, row_stride, r, cols, channels, tail, p_lo, p_hi, &lo, &hi);
    sums->lo_even = vmovlbq_s16(lo);
    sums->lo_odd = vmovltq_s16(lo);
    sums->hi_even = vmovlbq_s16(hi);
    sums->hi_odd = vmovltq_s16(hi);
    for (rows -= r, in += r * row_stride; rows > 0; rows -= r, in += r * row_stride)
    {
        /* windows of more than 256 taps */
        r = arm_nn_min_i32(rows, fold_rows);
        lo = vdupq_n_s16(0);
        hi = vdupq_n_s16(0);
        avg_taps16(in, row_stride, r, cols, channels, tail, p_lo, p_hi, &lo, &hi);
        sums->lo_even = vaddq_s32(sums->lo_even, vmovlbq_s16(lo));
        sums->lo_odd = vaddq_s32(sums->lo_odd, vmovltq_s16(lo));
        sums->hi_even = vaddq_s32(sums->hi_even, vmovlbq_s16(hi));
        sums->hi_odd = vaddq_s32(sums->hi_odd, vmovltq_s16(hi));
    }
}

/** The division of one window position: see the file header. */
typedef struct
{
    uint32_t multiplier; /* ceil(2^32 / count), or 2^32 - 1 for count 1 */
    int32_t base;        /* count / 2 + 128 * count (+ 1 for count 1) */
    int32_t even;        /* 1 when count is even: then h is one less for negative sums */
} avg_divisor;

static avg_divisor avg_divisor_of(int32_t count)
{
    avg_divisor d;
    d.multiplier = count == 1 ? 0xFFFFFFFFu : 0xFFFFFFFFu / (uint32_t)count + 1u;
    d.base = count / 2 + 128 * count + (count == 1 ? 1 : 0);
    d.even = (count & 1) == 0 ? 1 : 0;
    return d;
}

/** avg + 128 (0..255) of four sums. */
static NNSCONS_ALWAYS_INLINE int32x4_t avg_divide4(int32x4_t sum, const avg_divisor *d)
{
    /* sum + base, minus 1 where sum < 0 and count is even */
    const int32x4_t n = vmlaq_n_s32(vaddq_n_s32(sum, d->base), vshrq_n_s32(sum, 31), d->even);
    return vreinterpretq_s32_u32(vmulhq_u32(vreinterpretq_u32_s32(n), vdupq_n_u32(d->multiplier)));
}

/** Eight outputs (channel order) from the even/odd lanes' sums: divided, clamped (bounds + 128), minus 128. */
static NNSCONS_ALWAYS_INLINE int16x8_t avg_outputs8(int32x4_t even, int32x4_t odd, const avg_divisor *d,
                                                    int16x8_t act_min, int16x8_t act_max)
{
    int16x8_t r = vmovnbq_s32(vdupq_n_s16(0), avg_divide4(even, d));
    r = vmovntq_s32(r, avg_divide4(odd, d));
    r = vminq_s16(vmaxq_s16(r, act_min), act_max);
    return vsubq_n_s16(r, 128);
}

/** The outputs of one position: every block of 16 channels (the last one predicated by p_lo / p_hi). */
static NNSCONS_ALWAYS_INLINE void avg_position(const int8_t *in, int32_t row_stride, int32_t rows, int32_t cols,
                                               int32_t channels, int16x8_t act_min, int16x8_t act_max,
                                               mve_pred16_t p_lo, mve_pred16_t p_hi, int8_t *out)
{
    const avg_divisor divisor = avg_divisor_of(rows * cols);
    const avg_divisor *d = &divisor;
    const int32_t fold_rows = POOL_MVE_S16_TAPS / cols;
    avg_sums16 s;
    int32_t c;
    for (c = 0; c + 16 <= channels; c += 16)
    {
        avg_window16(in + c, row_stride, rows, cols, channels, fold_rows, false, p_lo, p_hi, &s);
        vstrbq_s16(out + c, avg_outputs8(s.lo_even, s.lo_odd, d, act_min, act_max));
        vstrbq_s16(out + c + 8, avg_outputs8(s.hi_even, s.hi_odd, d, act_min, act_max));
    }
    if (c < channels)
    {
        avg_window16(in + c, row_stride, rows, cols, channels, fold_rows, true, p_lo, p_hi, &s);
        vstrbq_p_s16(out + c, avg_outputs8(s.lo_even, s.lo_odd, d, act_min, act_max), p_lo);
        vstrbq_p_s16(out + c + 8, avg_outputs8(s.hi_even, s.hi_odd, d, act_min, act_max), p_hi);
    }
}

arm_cmsis_nn_status arm_nn_avgpool_mve_s8(const cmsis_nn_pool_params *pool_params,
                                          const cmsis_nn_dims *input_dims,
                                          const int8_t *input_data,
                                          const cmsis_nn_dims *filter_dims,
                                          const cmsis_nn_dims *output_dims,
                                          int8_t *output_data)
{
    /* in locals: the int8 stores could alias the structs, and the loops would read them again */
    const int32_t in_h = input_dims->h;
    const int32_t in_w = input_dims->w;
    const int32_t channels = input_dims->c;
    const int32_t out_h = output_dims->h;
    const int32_t out_w = output_dims->w;
    const cmsis_nn_tile stride = pool_params->stride;
    const cmsis_nn_tile padding = pool_params->padding;
    const int32_t kh = filter_dims->h;
    const int32_t kw = filter_dims->w;
    const int32_t row_stride = in_w * channels;
    const int16x8_t act_min = vdupq_n_s16((int16_t)(pool_params->activation.min + 128));
    const int16x8_t act_max = vdupq_n_s16((int16_t)(pool_params->activation.max + 128));
    const int32_t tail = channels & 15;
    const mve_pred16_t p_lo = vctp16q((uint32_t)arm_nn_min_i32(tail, 8));
    const mve_pred16_t p_hi = vctp16q((uint32_t)arm_nn_max_i32(tail - 8, 0));
    int32_t b;

    if (!pool_act_is_s8(&pool_params->activation) || kw > POOL_MVE_S16_TAPS || kw * kh > POOL_MVE_MAX_COUNT)
    {
        return ARM_CMSIS_NN_NO_IMPL_ERROR;
    }
    for (b = 0; b < input_dims->n; b++)
    {
        const int8_t *batch_in = input_data + b * in_h * in_w * channels;
        int32_t oy;
        for (oy = 0; oy < out_h; oy++)
        {
            const arm_nn_window rows = arm_nn_pool_window(oy, stride.h, padding.h, kh, in_h);
            int32_t ox;
            for (ox = 0; ox < out_w; ox++)
            {
                const arm_nn_window cols = arm_nn_pool_window(ox, stride.w, padding.w, kw, in_w);
                const int32_t n_rows = rows.end - rows.start;
                const int32_t n_cols = cols.end - cols.start;
                const int8_t *in = batch_in + (rows.start * in_w + cols.start) * channels;
                if (n_rows <= 0 || n_cols <= 0)
                {
                    return ARM_CMSIS_NN_ARG_ERROR;
                }
                if (n_rows == 2 && n_cols == 2)
                {
                    /* a common window: its taps unrolled, its divisor a constant */
                    avg_position(in, row_stride, 2, 2, channels, act_min, act_max, p_lo, p_hi, output_data);
                }
                else
                {
                    avg_position(in, row_stride, n_rows, n_cols, channels, act_min, act_max, p_lo, p_hi, output_data);
                }
                output_data += channels;
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}

#else
typedef int arm_pool_mve_s8_unused; /* ISO C: a translation unit is not empty */
#endif
