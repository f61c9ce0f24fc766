/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * Internal helpers of the legacy q7/q15 kernels (arm_nnfunctions_legacy.h): the bias_shift / out_shift
 * arithmetic, saturation, the generic convolution and depthwise kernels that the public variants share, and the
 * activation tables. Not part of the public API.
 *
 * Accumulators are uint32_t so that overflow wraps modulo 2^32 as on the target (signed overflow would be
 * undefined behaviour in C); the final conversion back to int32_t relies on the two's-complement conversion that
 * GCC and Clang define.
 */
#ifndef NNSCONS_ARM_NN_LEGACY_SUPPORT_H
#define NNSCONS_ARM_NN_LEGACY_SUPPORT_H

#include "arm_nnfunctions_legacy.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Arm's library sets ARM_MATH_DSP from __ARM_FEATURE_DSP; its DSP builds check a few more constraints. */
#if defined(ARM_MATH_DSP) || (defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1))
#define NNSCONS_LEGACY_DSP_CHECKS 1
#else
#define NNSCONS_LEGACY_DSP_CHECKS 0
#endif

/* ----------------------------------------------------------------------------------------------------------------
 * Shifts with the Cortex-M meaning of register shifts by 32 or more (undefined in C)
 * -------------------------------------------------------------------------------------------------------------- */

/** x << s, wrapping; 0 for s >= 32. */
static inline uint32_t arm_nn_legacy_lsl(int32_t x, uint32_t s)
{
    return s > 31u ? 0u : (uint32_t)x << s;
}

/** x >> s, arithmetic (floor); the sign (0 or -1) for s >= 32. */
static inline int32_t arm_nn_legacy_asr(int32_t x, uint32_t s)
{
    if (s > 31u)
    {
        return x < 0 ? -1 : 0;
    }
    return x >> s;
}

/** NN_ROUND(s): 2^(s-1), the half unit that makes the final >> round half up; 0 under ARM_NN_TRUNCATE. */
static inline uint32_t arm_nn_legacy_round(uint32_t s)
{
#if defined(ARM_NN_TRUNCATE)
    (void)s;
    return 0u;
#else
    return (s == 0u || s > 31u) ? 0u : (1u << (s - 1u));
#endif
}

/* ----------------------------------------------------------------------------------------------------------------
 * The accumulator of every conv / depthwise / FC output
 * -------------------------------------------------------------------------------------------------------------- */

/** (bias << bias_shift) + NN_ROUND(out_shift). Callers pass 0 for a NULL bias (Arm's code needs a bias). */
static inline uint32_t arm_nn_legacy_acc_init(int32_t bias, uint16_t bias_shift, uint16_t out_shift)
{
    return arm_nn_legacy_lsl(bias, bias_shift) + arm_nn_legacy_round(out_shift);
}

/** acc + a * b, wrapping modulo 2^32 (|a * b| <= 2^30 always fits int32). */
static inline uint32_t arm_nn_legacy_mac(uint32_t acc, int32_t a, int32_t b)
{
    return acc + (uint32_t)(a * b);
}

/** The accumulator shifted right by out_shift (as a signed value). */
static inline int32_t arm_nn_legacy_scale(uint32_t acc, uint16_t out_shift)
{
    return arm_nn_legacy_asr((int32_t)acc, out_shift);
}

static inline q7_t arm_nn_legacy_sat_q7(int32_t v)
{
    return (q7_t)(v < INT8_MIN ? INT8_MIN : (v > INT8_MAX ? INT8_MAX : v));
}

static inline q15_t arm_nn_legacy_sat_q15(int32_t v)
{
    return (q15_t)(v < INT16_MIN ? INT16_MIN : (v > INT16_MAX ? INT16_MAX : v));
}

/** Unsigned saturation to `bits` bits: [0, 2^bits - 1] (the USAT instruction). */
static inline int32_t arm_nn_legacy_usat(int32_t v, uint32_t bits)
{
    const int32_t hi = (int32_t)((1u << bits) - 1u);
    return v < 0 ? 0 : (v > hi ? hi : v);
}

/* ----------------------------------------------------------------------------------------------------------------
 * Generic kernels behind the public variants (the variants only add their constraint checks)
 * -------------------------------------------------------------------------------------------------------------- */

/** Geometry and shifts of one HWC convolution (x = width, y = height). */
typedef struct
{
    uint16_t in_x, in_y, ch_in;
    uint16_t ch_out;
    uint16_t kernel_x, kernel_y;
    uint16_t pad_x, pad_y;
    uint16_t stride_x, stride_y;
    uint16_t out_x, out_y;
    uint16_t bias_shift, out_shift;
} arm_nn_legacy_conv_geometry;

/** Convolution with weights [ch_out][ky][kx][ch_in]; taps outside the image count as zero. */
void arm_nn_legacy_conv_q7(const arm_nn_legacy_conv_geometry *g, const q7_t *in, const q7_t *wt,
                           const q7_t *bias, q7_t *out);
void arm_nn_legacy_conv_q15(const arm_nn_legacy_conv_geometry *g, const q15_t *in, const q15_t *wt,
                            const q15_t *bias, q15_t *out);

/** Depthwise convolution (ch_out == ch_in) with weights [ky][kx][ch]. */
void arm_nn_legacy_depthwise_q7(const arm_nn_legacy_conv_geometry *g, const q7_t *in, const q7_t *wt,
                                const q7_t *bias, q7_t *out);

/** Square HWC pooling of q7 values: the maximum (is_max) or the truncated average of each window's valid taps;
 *  a window without valid taps gives 0. */
void arm_nn_legacy_pool_q7(const q7_t *in, uint16_t dim_in, uint16_t channels, uint16_t kernel, uint16_t padding,
                           uint16_t stride, uint16_t dim_out, bool is_max, q7_t *out);

/* ----------------------------------------------------------------------------------------------------------------
 * Activation tables: entry i = saturate(floor(f(s / 16) * 2^B + 0.5)) with s = (int8_t)i, B = 7 or 15
 * (a 1/16 grid over [-8, 8), indexed by the two's-complement byte). Generated by tests/legacy_model.py.
 * -------------------------------------------------------------------------------------------------------------- */

extern const q7_t sigmoidTable_q7[256];
extern const q7_t tanhTable_q7[256];
extern const q15_t sigmoidTable_q15[256];
extern const q15_t tanhTable_q15[256];

#ifdef __cplusplus
}
#endif

#endif /* NNSCONS_ARM_NN_LEGACY_SUPPORT_H */
