/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * Internal helpers of nnscons' portable CMSIS-NN subset: fixed-point arithmetic (requantization, gemmlowp-style
 * Q-format helpers for softmax), saturation, the scratch-buffer size formulas per feature set, and the generic
 * kernels that the public entry points share. Not part of the public API.
 *
 * Integer conventions relied on (true for GCC and Clang on every target we build for): >> on a negative signed
 * value is an arithmetic shift, and converting an out-of-range value to a signed type wraps modulo 2^N.
 */
#ifndef NNSCONS_ARM_NNSUPPORTFUNCTIONS_H
#define NNSCONS_ARM_NNSUPPORTFUNCTIONS_H

#include <string.h>

#include "arm_nn_types.h"

/* The DSP extension's SIMD instructions (Cortex-M4/M7/M33/M55), used through the ACLE intrinsics: the only
 * target-specific code of the library; every kernel also has the plain C loop, with the same results. */
#if defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1) && defined(__ARM_FEATURE_SIMD32)
#define NNSCONS_DSP 1
#include <arm_acle.h>
#else
#define NNSCONS_DSP 0
#endif

/* Helium (MVE, integer vectors: Cortex-M55/M85), used through arm_mve.h: the kernels' vector paths. A Helium core
 * also has the DSP extension, so a kernel without a vector path keeps its DSP one. */
#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#define NNSCONS_MVE 1
#include <arm_mve.h>
#else
#define NNSCONS_MVE 0
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define NN_Q31_MAX ((int32_t)0x7FFFFFFF)
#define NN_Q31_MIN ((int32_t)(-0x7FFFFFFF - 1))

/* A helper the compiler should copy into each call, so that a constant argument selects its loop body. */
#if defined(__GNUC__)
#define NNSCONS_ALWAYS_INLINE __attribute__((always_inline)) inline
#else
#define NNSCONS_ALWAYS_INLINE inline
#endif

/* A hot loop kept in a function of its own, so that the registers are allocated for it alone. */
#if defined(__GNUC__)
#define NNSCONS_NOINLINE __attribute__((noinline))
#else
#define NNSCONS_NOINLINE
#endif

/** Whether int8 values plus this offset stay within int16 (the lanes __sxtab16 adds them in). */
static inline bool arm_nn_offset_fits_s16(int32_t offset) { return offset >= -32640 && offset <= 32640; }

#if NNSCONS_DSP
/** Four int8 values as one word (memcpy: one load, unaligned allowed on these cores). */
static inline uint32_t arm_nn_read_s8x4(const int8_t *p)
{
    uint32_t word;
    memcpy(&word, p, sizeof(word));
    return word;
}

/** A word rotated right by one byte: bytes 1 and 3 move to where __sxtb16 / __sxtab16 take them from. */
static inline uint32_t arm_nn_ror8(uint32_t word) { return (word >> 8) | (word << 24); }

/** Bytes 0 and 2 of a word, sign-extended into the two int16 lanes (SXTB16). */
static inline int16x2_t arm_nn_sxtb16_even(uint32_t word) { return __sxtb16(word); }

/** Bytes 1 and 3 of a word, sign-extended into the two int16 lanes: SXTB16 with its built-in rotation (the
 * intrinsic has none, and GCC does not merge a separate rotate into it). */
static inline int16x2_t arm_nn_sxtb16_odd(uint32_t word)
{
#if defined(__GNUC__)
    int16x2_t lanes;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(lanes) : "r"(word));
    return lanes;
#else
    return __sxtb16(arm_nn_ror8(word));
#endif
}

/** Bytes 1 and 3 of a word, sign-extended and added to the int16 lanes of ``lanes`` (SXTAB16 with rotation). */
static inline int16x2_t arm_nn_sxtab16_odd(uint32_t lanes, uint32_t word)
{
#if defined(__GNUC__)
    int16x2_t sum;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(sum) : "r"(lanes), "r"(word));
    return sum;
#else
    return __sxtab16(lanes, arm_nn_ror8(word));
#endif
}

/** An int16 value in both halves of a word (the offset operand of __sxtab16). */
static inline uint32_t arm_nn_dup_s16(int32_t value)
{
    return ((uint32_t)(uint16_t)value << 16) | (uint16_t)value;
}
#endif

/* ----------------------------------------------------------------------------------------------------------------
 * Small integer helpers
 * -------------------------------------------------------------------------------------------------------------- */

static inline int32_t arm_nn_max_i32(int32_t a, int32_t b) { return a > b ? a : b; }
static inline int32_t arm_nn_min_i32(int32_t a, int32_t b) { return a < b ? a : b; }

static inline int32_t arm_nn_clamp_i32(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

static inline int8_t arm_nn_sat_s8(int32_t v) { return (int8_t)arm_nn_clamp_i32(v, INT8_MIN, INT8_MAX); }
static inline int16_t arm_nn_sat_s16(int32_t v) { return (int16_t)arm_nn_clamp_i32(v, INT16_MIN, INT16_MAX); }

/** x * 2^e for e >= 0, wrapping like the int32 multiply of the TFLite reference (without undefined behaviour). */
static inline int32_t arm_nn_shift_left_wrap(int32_t x, int32_t e) { return (int32_t)((uint32_t)x << e); }

/** Number of leading zero bits of a 32-bit value (32 for 0). */
static inline int32_t arm_nn_clz(uint32_t x)
{
#if defined(__GNUC__)
    return x == 0u ? 32 : (int32_t)__builtin_clz(x);
#else
    int32_t n = 0;
    if (x == 0u)
    {
        return 32;
    }
    while ((x & 0x80000000u) == 0u)
    {
        x <<= 1;
        n++;
    }
    return n;
#endif
}

static inline int32_t arm_nn_align(int32_t value, int32_t multiple)
{
    return ((value + multiple - 1) / multiple) * multiple;
}

/* ----------------------------------------------------------------------------------------------------------------
 * Fixed-point arithmetic
 * -------------------------------------------------------------------------------------------------------------- */

/** round(a * b / 2^31), rounding halves up; wraps only for a == b == INT32_MIN (see the saturating variant). */
static inline int32_t arm_nn_doubling_high_mult_no_sat(int32_t a, int32_t b)
{
    const int64_t product = (int64_t)a * (int64_t)b + ((int64_t)1 << 30);
    return (int32_t)(product >> 31);
}

/** Saturating rounding doubling high multiply: as above, with INT32_MIN * INT32_MIN giving INT32_MAX. */
static inline int32_t arm_nn_doubling_high_mult(int32_t a, int32_t b)
{
    if (a == NN_Q31_MIN && b == NN_Q31_MIN)
    {
        return NN_Q31_MAX;
    }
    return arm_nn_doubling_high_mult_no_sat(a, b);
}

/** x / 2^e rounded to nearest, ties away from zero; e >= 0. */
static inline int32_t arm_nn_divide_by_power_of_two(int32_t x, int32_t e)
{
    if (e >= 32)
    {
        /* |x| / 2^e <= 1/2: only -2^31 / 2^32 is a tie (away from zero gives -1); everything else rounds to 0. */
        return (e == 32 && x == NN_Q31_MIN) ? -1 : 0;
    }
    {
        const int32_t mask = (int32_t)((1u << e) - 1u);
        const int32_t remainder = x & mask;
        int32_t result = x >> e;
        const int32_t threshold = (mask >> 1) + (result < 0 ? 1 : 0);
        if (remainder > threshold)
        {
            result++;
        }
        return result;
    }
}

/** Saturating x * 2^e for e >= 0. */
static inline int32_t arm_nn_sat_left_shift(int32_t x, int32_t e)
{
    const int64_t shifted = (int64_t)x * ((int64_t)1 << e);
    if (shifted > NN_Q31_MAX)
    {
        return NN_Q31_MAX;
    }
    if (shifted < NN_Q31_MIN)
    {
        return NN_Q31_MIN;
    }
    return (int32_t)shifted;
}

/**
 * val * multiplier * 2^(shift - 31), with multiplier a Q31 value and shift > 0 a left shift.
 * Default: TFLite's double rounding (rounding high multiply, then rounding right shift).
 * With CMSIS_NN_USE_SINGLE_ROUNDING (pair it with TFLITE_SINGLE_ROUNDING): one round-half-up.
 */
static inline int32_t arm_nn_requantize(int32_t val, int32_t multiplier, int32_t shift)
{
#if defined(CMSIS_NN_USE_SINGLE_ROUNDING)
    const int32_t total_shift = 31 - shift;
    const int64_t scaled = ((int64_t)val * (int64_t)multiplier) >> (total_shift - 1);
    return (int32_t)((scaled + 1) >> 1);
#else
    const int32_t left_shift = shift > 0 ? shift : 0;
    const int32_t right_shift = shift > 0 ? 0 : -shift;
    const int32_t high = arm_nn_doubling_high_mult_no_sat(arm_nn_shift_left_wrap(val, left_shift), multiplier);
    return arm_nn_divide_by_power_of_two(high, right_shift);
#endif
}

/**
 * arm_nn_requantize(val, multiplier, shift) + output_offset for one output channel, with everything that depends
 * only on the channel computed once by arm_nn_requantize_fast_init(): then one 32x32+64-bit multiply-accumulate
 * (SMLAL) and one shift of its high word per value. For the channels the init accepts (it returns false for the
 * others, which keep arm_nn_requantize): a right shift e = -shift in 2..23 and an output offset in -128..128; with
 * double rounding also a multiplier of 0 or >= 2^30 (every multiplier TFLite's QuantizeMultiplier makes).
 *
 * Double rounding (the default): with P = a*m + 2^30, the high multiply is h = floor(P / 2^31) and the rounding
 * divide by 2^e (ties away from zero) is floor((h - [h < 0] + 2^(e-1)) / 2^e); as h < 0 exactly when P < 0, the
 * result plus the offset o is floor(S / 2^(31+e)) with S = a*m + 2^30 + 2^(30+e) + o*2^(31+e) - [P < 0]*2^31,
 * which fits in 64 bits for these e and o. [P < 0] equals [a < 0] for such multipliers, except for a = -1,
 * m = 2^30 and for m = 0, where both give the same result. So S starts as high word 2^(e-2) + o*2^(e-1) (minus 1
 * when a < 0) and low word 2^30 (plus 2^31 when a < 0), a*m is added, and the high word shifted right by e - 1.
 * Single rounding: floor((a*m + 2^(t-1) + o*2^t) / 2^t) with t = 31 + e: the same high word without the sign
 * terms and a zero low word.
 */
typedef struct
{
    int32_t high;       /* the high word S starts from (before the sign term) */
    int32_t multiplier;
    int32_t shift;      /* right shift of the high word */
} arm_nn_requant;

static inline bool arm_nn_requantize_fast_init(arm_nn_requant *rq, int32_t multiplier, int32_t shift,
                                               int32_t output_offset)
{
    const uint32_t e_minus_2 = 0xFFFFFFFEu - (uint32_t)shift; /* -shift - 2, without overflow */
    if (e_minus_2 > 21u || (uint32_t)(output_offset + 128) > 256u)
    {
        return false;
    }
#if !defined(CMSIS_NN_USE_SINGLE_ROUNDING)
    if (multiplier != 0 && multiplier < (1 << 30))
    {
        return false;
    }
#endif
    /* 2^(e-2) + output_offset * 2^(e-1) = (1 + 2 * output_offset) * 2^(e-2) */
    rq->high = (int32_t)((uint32_t)(1 + 2 * output_offset) << e_minus_2);
    rq->multiplier = multiplier;
    rq->shift = (int32_t)e_minus_2 + 1;
    return true;
}

/** arm_nn_requantize(val, multiplier, shift) + output_offset, out of line (the other channels' path). */
int32_t arm_nn_requantize_offset(int32_t val, int32_t multiplier, int32_t shift, int32_t output_offset);

/** arm_nn_requantize(val, multiplier, shift) + output_offset for a channel arm_nn_requantize_fast_init() accepted. */
static inline int32_t arm_nn_requantize_fast(int32_t val, const arm_nn_requant *rq)
{
#if defined(CMSIS_NN_USE_SINGLE_ROUNDING)
    const uint64_t start = (uint64_t)(uint32_t)rq->high << 32;
#else
    const uint32_t low = ((uint32_t)val & 0x80000000u) | 0x40000000u;
    const uint64_t start = ((uint64_t)(uint32_t)(rq->high + (val >> 31)) << 32) | low;
#endif
    const uint64_t sum = start + (uint64_t)((int64_t)val * rq->multiplier);
    return (int32_t)(uint32_t)(sum >> 32) >> rq->shift;
}

#if NNSCONS_DSP
/** An int8 value in all four bytes of a word (the activation bounds of arm_nn_store4_s8). */
static inline uint32_t arm_nn_dup_s8x4(int32_t value) { return (uint32_t)(uint8_t)value * 0x01010101u; }

/**
 * Four s8 outputs from their requantized values r0..r3 (output offset included) as one word, r0 in the low byte:
 * saturated to int8, packed, clamped bytewise to the activation bounds (act_min4/act_max4: arm_nn_dup_s8x4).
 */
static inline uint32_t arm_nn_pack4_s8(int32_t r0, int32_t r1, int32_t r2, int32_t r3, uint32_t act_min4,
                                       uint32_t act_max4)
{
    /* lanes (r0, r2) and (r1, r3) as int16 (PKHBT), then their low bytes interleaved */
    const uint32_t even = ((uint32_t)__ssat(r0, 8) & 0xFFFFu) | ((uint32_t)__ssat(r2, 8) << 16);
    const uint32_t odd = ((uint32_t)__ssat(r1, 8) & 0xFFFFu) | ((uint32_t)__ssat(r3, 8) << 16);
    uint32_t word = __uxtb16(even) | (__uxtb16(odd) << 8);
    (void)__ssub8(word, act_min4); /* GE per byte where word >= min */
    word = __sel(word, act_min4);
    (void)__ssub8(act_max4, word); /* GE per byte where max >= word */
    return __sel(word, act_max4);
}

/**
 * Four values of two positions (x0, x1: each as its even and odd int16 pairs) times four values of two weight
 * rows (w0, w1: int8, sign-extended here), added to the 2x2 sums a00 = x0.w0, a01 = x0.w1, a10 = x1.w0,
 * a11 = x1.w1: 8 SMLAD for 16 MACs (the inner step of the DSP convolutions).
 */
static NNSCONS_ALWAYS_INLINE void arm_nn_mac2x2_s8x4(int16x2_t x0_even, int16x2_t x0_odd, int16x2_t x1_even,
                                                     int16x2_t x1_odd, const int8_t *w0, const int8_t *w1,
                                                     int32_t *a00, int32_t *a01, int32_t *a10, int32_t *a11)
{
    uint32_t ws = arm_nn_read_s8x4(w0);
    int16x2_t w_even = arm_nn_sxtb16_even(ws);
    int16x2_t w_odd = arm_nn_sxtb16_odd(ws);
    *a00 = __smlad(x0_even, w_even, *a00);
    *a00 = __smlad(x0_odd, w_odd, *a00);
    *a10 = __smlad(x1_even, w_even, *a10);
    *a10 = __smlad(x1_odd, w_odd, *a10);
    ws = arm_nn_read_s8x4(w1);
    w_even = arm_nn_sxtb16_even(ws);
    w_odd = arm_nn_sxtb16_odd(ws);
    *a01 = __smlad(x0_even, w_even, *a01);
    *a01 = __smlad(x0_odd, w_odd, *a01);
    *a11 = __smlad(x1_even, w_even, *a11);
    *a11 = __smlad(x1_odd, w_odd, *a11);
}

/** arm_nn_pack4_s8 stored at out (unaligned allowed). */
static inline void arm_nn_store4_s8(int8_t *out, int32_t r0, int32_t r1, int32_t r2, int32_t r3, uint32_t act_min4,
                                    uint32_t act_max4)
{
    const uint32_t word = arm_nn_pack4_s8(r0, r1, r2, r3, act_min4, act_max4);
    memcpy(out, &word, sizeof(word));
}
#endif

#if NNSCONS_MVE
/**
 * arm_nn_requantize on four lanes, the same integers: the left part of the shift (wrapping, as the scalar
 * arm_nn_shift_left_wrap), the rounding doubling high multiply (VQRDMULH; it saturates only for INT32_MIN *
 * INT32_MIN, which no multiplier of QuantizeMultiplier's range [2^30, 2^31) or 0 reaches), then the divide by
 * 2^e rounding ties away from zero: VRSHL rounds ties up, so a negative value is first lowered by one (the
 * saturating add keeps INT32_MIN exact). Shifts in -31..30 (quantize/bounds.py).
 */
static inline int32x4_t arm_nn_requantize_mve(int32x4_t val, int32x4_t multiplier, int32x4_t shift)
{
#if defined(CMSIS_NN_USE_SINGLE_ROUNDING)
    int32_t lane[4];
    int32_t m[4];
    int32_t s[4];
    int32_t i;
    vst1q_s32(lane, val);
    vst1q_s32(m, multiplier);
    vst1q_s32(s, shift);
    for (i = 0; i < 4; i++)
    {
        lane[i] = arm_nn_requantize(lane[i], m[i], s[i]);
    }
    return vld1q_s32(lane);
#else
    const int32x4_t zero = vdupq_n_s32(0);
    const int32x4_t left = vmaxq_s32(shift, zero);
    const int32x4_t right = vminq_s32(shift, zero); /* -e */
    const int32x4_t high = vqrdmulhq_s32(vshlq_s32(val, left), multiplier);
    /* -1 where the value is negative and e > 0: the sign bit of (value & -e) */
    const int32x4_t fixup = vshrq_n_s32(vandq_s32(high, right), 31);
    return vrshlq_s32(vqaddq_s32(high, fixup), right);
#endif
}

/** arm_nn_requantize_mve with one multiplier and shift for all four lanes (per-tensor requantization). */
static inline int32x4_t arm_nn_requantize_mve_n(int32x4_t val, int32_t multiplier, int32_t shift)
{
    return arm_nn_requantize_mve(val, vdupq_n_s32(multiplier), vdupq_n_s32(shift));
}

/** Sixteen s8 outputs from four int32x4 vectors of requantized values (output offset included), saturated to
 * int8 and clamped to the activation bounds, in lane order. */
static inline int8x16_t arm_nn_narrow16_s8(int32x4_t r0, int32x4_t r1, int32x4_t r2, int32x4_t r3, int32_t act_min,
                                           int32_t act_max)
{
    const int32x4_t lo = vdupq_n_s32(act_min);
    const int32x4_t hi = vdupq_n_s32(act_max);
    int8_t bytes[16];
    vstrbq_s32(bytes, vminq_s32(vmaxq_s32(r0, lo), hi));
    vstrbq_s32(bytes + 4, vminq_s32(vmaxq_s32(r1, lo), hi));
    vstrbq_s32(bytes + 8, vminq_s32(vmaxq_s32(r2, lo), hi));
    vstrbq_s32(bytes + 12, vminq_s32(vmaxq_s32(r3, lo), hi));
    return vld1q_s8(bytes);
}
#endif

/** An s8 kernel's output value from its sum (bias included): requantized, offset, clamped to the activation. */
static inline int8_t arm_nn_output_s8(int32_t acc, int32_t multiplier, int32_t shift, int32_t output_offset,
                                      int32_t act_min, int32_t act_max)
{
    return (int8_t)arm_nn_clamp_i32(arm_nn_requantize(acc, multiplier, shift) + output_offset, act_min, act_max);
}

/** The 16-bit multiplier used with 64-bit accumulators: a Q31 multiplier rounded to Q15 (capped at 0x7FFF). */
static inline int32_t arm_nn_reduce_multiplier(int32_t multiplier)
{
    return multiplier < 0x7FFF0000 ? ((multiplier + (1 << 15)) >> 16) : 0x7FFF;
}

/**
 * 64-bit accumulator requantization (int16 activations with int64 bias): val * reduced_multiplier * 2^(shift-15),
 * rounded half up, as TFLite's int64 MultiplyByQuantizedMultiplier. reduced_multiplier comes from
 * arm_nn_reduce_multiplier(); shift must be <= 14.
 */
static inline int32_t arm_nn_requantize_s64(int64_t val, int32_t reduced_multiplier, int32_t shift)
{
    const int32_t total_shift = 15 - shift;
    const int64_t scaled = val * (int64_t)reduced_multiplier + ((int64_t)1 << (total_shift - 1));
    return (int32_t)(scaled >> total_shift);
}

/* gemmlowp-style fixed point: a raw int32 with N integer bits holds value raw / 2^(31 - N). */

/** (a + b) / 2 rounded to nearest, ties away from zero. */
static inline int32_t arm_nn_rounding_half_sum(int32_t a, int32_t b)
{
    const int64_t sum = (int64_t)a + (int64_t)b;
    const int64_t sign = sum >= 0 ? 1 : -1;
    return (int32_t)((sum + sign) / 2);
}

/**
 * exp(a) for a in [-1/4, 0), Q0.31 in and out: exp(-1/8) * exp(x) with x = a + 1/8, exp(x) by its Taylor
 * polynomial to the 4th order (1 + x + x^2/2 + x^3/6 + x^4/24).
 */
static inline int32_t arm_nn_exp_on_quarter_interval(int32_t a)
{
    const int32_t exp_minus_one_eighth = 1895147668; /* round(exp(-1/8) * 2^31) */
    const int32_t one_third = 715827883;             /* round(2^31 / 3) */
    const int32_t x = a + (1 << 28);                 /* + 1/8 */
    const int32_t x2 = arm_nn_doubling_high_mult(x, x);
    const int32_t x3 = arm_nn_doubling_high_mult(x2, x);
    const int32_t x4 = arm_nn_doubling_high_mult(x2, x2);
    const int32_t x4_over_4 = arm_nn_divide_by_power_of_two(x4, 2);
    /* ((x^4/4 + x^3) / 3 + x^2) / 2 = x^4/24 + x^3/6 + x^2/2 */
    const int32_t higher_terms =
        arm_nn_divide_by_power_of_two(arm_nn_doubling_high_mult(x4_over_4 + x3, one_third) + x2, 1);
    return exp_minus_one_eighth + arm_nn_doubling_high_mult(exp_minus_one_eighth, x + higher_terms);
}

/**
 * exp(a) for a <= 0 given in Q5.26, result in Q0.31 (exp(0) gives INT32_MAX).
 * a = r + q with r in [-1/4, 0) and q a non-positive multiple of 1/4: exp(r) by the polynomial, then one
 * multiplication by exp(-2^k) for every bit 2^k set in -q.
 */
static inline int32_t arm_nn_exp_on_negative_values(int32_t a)
{
    /* round(exp(-2^k) * 2^31) for k = -2 .. 4 */
    static const int32_t exp_of_minus_power_of_two[7] = {
        1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    const int32_t fractional_bits = 26;
    const int32_t quarter = (int32_t)1 << (fractional_bits - 2);
    const int32_t r_minus_quarter = (a & (quarter - 1)) - quarter; /* in [-1/4, 0) */
    const int32_t minus_q = r_minus_quarter - a;                    /* multiple of 1/4, >= 0 */
    int32_t result = arm_nn_exp_on_quarter_interval(arm_nn_sat_left_shift(r_minus_quarter, 5));
    int32_t k;

    for (k = 0; k < 7; k++)
    {
        if ((minus_q & ((int32_t)1 << (fractional_bits - 2 + k))) != 0)
        {
            result = arm_nn_doubling_high_mult(result, exp_of_minus_power_of_two[k]);
        }
    }
    return a == 0 ? NN_Q31_MAX : result;
}

/**
 * 1 / (1 + x) for x in [0, 1), Q0.31 in and out, by three Newton-Raphson steps on d = (1 + x) / 2 in [1/2, 1):
 * start from 48/17 - 32/17 * d, iterate y += y * (1 - d * y) (all in Q2.29), result 1/(1+x) = y / 2.
 */
static inline int32_t arm_nn_one_over_one_plus_x_for_x_in_0_1(int32_t a)
{
    const int32_t half_denominator = arm_nn_rounding_half_sum(a, NN_Q31_MAX); /* Q0.31 */
    const int32_t forty_eight_seventeenths = 1515870810;                     /* round(48/17 * 2^29) */
    const int32_t minus_thirty_two_seventeenths = -1010580540;               /* round(-32/17 * 2^29) */
    const int32_t one_q2_29 = (int32_t)1 << 29;
    int32_t y = forty_eight_seventeenths + arm_nn_doubling_high_mult(half_denominator, minus_thirty_two_seventeenths);
    int32_t i;

    for (i = 0; i < 3; i++)
    {
        const int32_t one_minus_dy = one_q2_29 - arm_nn_doubling_high_mult(half_denominator, y); /* Q2.29 */
        y = y + arm_nn_sat_left_shift(arm_nn_doubling_high_mult(y, one_minus_dy), 2);           /* Q4.27 -> Q2.29 */
    }
    /* y / 2 in Q1.30 has the raw bits of y; rescaling Q1.30 to Q0.31 is a saturating doubling. */
    return arm_nn_sat_left_shift(y, 1);
}

/* ---- the s8 softmaxes' shared arithmetic (arm_softmax_s8, arm_softmax_s8_s16) ---- */
#define ARM_NN_SOFTMAX_ACCUM_INTEGER_BITS 12 /* integer bits of the Q12.19 sum of exponentials */

/** exp(beta * input_scale * diff) in Q0.31, diff <= 0 and diff >= diff_min. */
static inline int32_t arm_nn_softmax_exp(int32_t diff, int32_t mult, int32_t shift)
{
    const int32_t scaled_diff = arm_nn_doubling_high_mult(arm_nn_shift_left_wrap(diff, shift), mult); /* Q5.26 */
    return arm_nn_exp_on_negative_values(scaled_diff);
}

/** One row of int8 logits to probabilities: int8 (wide false: arm_softmax_s8's units) or int16 (wide true:
 * arm_softmax_s8_s16's) outputs. */
void arm_nn_softmax_row_s8(const int8_t *input, int32_t row_size, int32_t mult, int32_t shift, int32_t diff_min,
                           void *output, bool wide);

/** 1 / sum in Q0.31 for the Q12.19 sum of a row's exponentials, and the right shift that turns exp * (1 / sum)
 * into units of 2^-output_bits. */
static inline int32_t arm_nn_softmax_reciprocal(int32_t sum, int32_t output_bits, int32_t *output_shift)
{
    /* sum = 2^(12 - headroom) * (1 + x) with x in [0, 1); 1 / (1 + x) in Q0.31: exp * reciprocal (Q0.31) still
     * divided by 2^(12 - headroom), in units of 2^-output_bits */
    const int32_t headroom = arm_nn_clz((uint32_t)sum);
    *output_shift = ARM_NN_SOFTMAX_ACCUM_INTEGER_BITS - headroom + 31 - output_bits;
    return arm_nn_one_over_one_plus_x_for_x_in_0_1((int32_t)(((uint32_t)sum << headroom) - 0x80000000u));
}

/* ----------------------------------------------------------------------------------------------------------------
 * Scratch buffer sizes (bytes) per feature set: plain C (the portable build), Arm DSP extension, Arm MVE.
 * -------------------------------------------------------------------------------------------------------------- */

typedef enum
{
    ARM_NN_FEATURES_PURE_C = 0,
    ARM_NN_FEATURES_DSP = 1,
    ARM_NN_FEATURES_MVE = 2
} arm_nn_feature_set;

int32_t arm_nn_convolve_s8_buffer_size(arm_nn_feature_set features,
                                       const cmsis_nn_dims *input_dims,
                                       const cmsis_nn_dims *filter_dims);
int32_t arm_nn_convolve_wrapper_s8_buffer_size(arm_nn_feature_set features,
                                               const cmsis_nn_conv_params *conv_params,
                                               const cmsis_nn_dims *input_dims,
                                               const cmsis_nn_dims *filter_dims,
                                               const cmsis_nn_dims *output_dims);
int32_t arm_nn_convolve_wrapper_s16_buffer_size(arm_nn_feature_set features,
                                                const cmsis_nn_dims *input_dims,
                                                const cmsis_nn_dims *filter_dims);
int32_t arm_nn_depthwise_conv_wrapper_s8_buffer_size(arm_nn_feature_set features,
                                                     const cmsis_nn_dw_conv_params *dw_conv_params,
                                                     const cmsis_nn_dims *input_dims,
                                                     const cmsis_nn_dims *filter_dims,
                                                     const cmsis_nn_dims *output_dims);
int32_t arm_nn_depthwise_conv_wrapper_s16_buffer_size(arm_nn_feature_set features,
                                                      const cmsis_nn_dw_conv_params *dw_conv_params,
                                                      const cmsis_nn_dims *input_dims,
                                                      const cmsis_nn_dims *filter_dims);

/* ----------------------------------------------------------------------------------------------------------------
 * Wrapper dispatch predicates (shared by the kernels and the buffer-size functions)
 * -------------------------------------------------------------------------------------------------------------- */

/** True when arm_convolve_wrapper_s8 uses a 1x1 kernel (stride 1: arm_convolve_1x1_s8_fast). */
static inline bool arm_nn_conv_is_1x1(const cmsis_nn_conv_params *conv_params,
                                      const cmsis_nn_dims *input_dims,
                                      const cmsis_nn_dims *filter_dims)
{
    return conv_params->padding.w == 0 && conv_params->padding.h == 0 && filter_dims->w == 1 &&
        filter_dims->h == 1 && conv_params->dilation.w == 1 && conv_params->dilation.h == 1 &&
        input_dims->c == filter_dims->c;
}

/** True when arm_convolve_wrapper_s8 uses arm_convolve_1_x_n_s8 (checked after the 1x1 case). */
static inline bool arm_nn_conv_is_1_x_n(const cmsis_nn_conv_params *conv_params,
                                        const cmsis_nn_dims *input_dims,
                                        const cmsis_nn_dims *filter_dims)
{
    return input_dims->h == 1 && conv_params->dilation.w == 1 && filter_dims->h == 1 &&
        (conv_params->stride.w * input_dims->c) % 4 == 0 && input_dims->c == filter_dims->c;
}

/** True when arm_depthwise_conv_wrapper_s8 uses a specialised (3x3 or _opt) kernel. */
static inline bool arm_nn_dw_is_specialised(const cmsis_nn_dw_conv_params *dw_conv_params,
                                            const cmsis_nn_dims *input_dims)
{
    return dw_conv_params->ch_mult == 1 && input_dims->n == 1 && dw_conv_params->dilation.w == 1 &&
        dw_conv_params->dilation.h == 1;
}

/** True when a specialised depthwise convolution is the 3x3 one (non-MVE builds). */
static inline bool arm_nn_dw_is_3x3(const cmsis_nn_dw_conv_params *dw_conv_params, const cmsis_nn_dims *filter_dims)
{
    return filter_dims->w == 3 && filter_dims->h == 3 && dw_conv_params->padding.h <= 1 &&
        dw_conv_params->padding.w <= 1;
}

/* ----------------------------------------------------------------------------------------------------------------
 * Generic kernels shared by the public entry points (defined in Source/NNSupportFunctions)
 * -------------------------------------------------------------------------------------------------------------- */

/** sum_i (x[i] + x_offset) * w[i] over int8 vectors (with a DSP-extension path; same result either way). */
int32_t arm_nn_dot_s8(const int8_t *x, const int8_t *w, int32_t length, int32_t x_offset);

/** arm_nn_dot_s8 of one x with two weight rows (x read once): *sum0 for w0, *sum1 for w1. */
void arm_nn_dot2_s8(const int8_t *x, const int8_t *w0, const int8_t *w1, int32_t length, int32_t x_offset,
                    int32_t *sum0, int32_t *sum1);

/** s8 convolution (batches, stride, padding, dilation, groups = C_IN / filter C). ``column``: the scratch of
 * arm_convolve_s8 (2 * align4(KH*KW*C_IN) int16 values: what arm_convolve_s8_get_buffer_size() returns for the
 * plain C and DSP builds) for im2col columns, or NULL (each receptive field is then read in place). */
arm_cmsis_nn_status arm_nn_conv_generic_s8(int8_t *column,
                                           const cmsis_nn_conv_params *conv_params,
                                           const cmsis_nn_per_channel_quant_params *quant_params,
                                           const cmsis_nn_dims *input_dims,
                                           const int8_t *input_data,
                                           const cmsis_nn_dims *filter_dims,
                                           const int8_t *filter_data,
                                           const int32_t *bias_data,
                                           const cmsis_nn_dims *output_dims,
                                           int8_t *output_data);

#if NNSCONS_DSP
/** s8 1x1 convolution (no padding, one group, any stride, batches, at least 2 output channels) with the DSP
 * extension, no scratch memory;
 * the input offset must fit arm_nn_offset_fits_s16. */
arm_cmsis_nn_status arm_nn_conv_1x1_dsp_s8(const cmsis_nn_conv_params *conv_params,
                                           const cmsis_nn_per_channel_quant_params *quant_params,
                                           const cmsis_nn_dims *input_dims,
                                           const int8_t *input_data,
                                           const int8_t *filter_data,
                                           const int32_t *bias_data,
                                           const cmsis_nn_dims *output_dims,
                                           int8_t *output_data);

/** s8 depthwise convolution with the DSP extension, for a channel multiplier of 1 (at least 4 channels) or a
 * multiple of 4; the input offset must fit arm_nn_offset_fits_s16. */
arm_cmsis_nn_status arm_nn_depthwise_conv_dsp_s8(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                 const cmsis_nn_per_channel_quant_params *quant_params,
                                                 const cmsis_nn_dims *input_dims,
                                                 const int8_t *input_data,
                                                 const cmsis_nn_dims *filter_dims,
                                                 const int8_t *filter_data,
                                                 const int32_t *bias_data,
                                                 const cmsis_nn_dims *output_dims,
                                                 int8_t *output_data);

/** s8 convolution (one group; any kernel, stride, padding, dilation, batches) with the DSP extension through
 * ``columns``: 4-byte aligned scratch of 2 * align4(KH*KW*C_IN) int16 values (Arm's DSP im2col buffer); the input
 * offset must be in -127..128. */
arm_cmsis_nn_status arm_nn_conv_im2col_dsp_s8(int16_t *columns,
                                              const cmsis_nn_conv_params *conv_params,
                                              const cmsis_nn_per_channel_quant_params *quant_params,
                                              const cmsis_nn_dims *input_dims,
                                              const int8_t *input_data,
                                              const cmsis_nn_dims *filter_dims,
                                              const int8_t *filter_data,
                                              const int32_t *bias_data,
                                              const cmsis_nn_dims *output_dims,
                                              int8_t *output_data);
#endif

/**
 * The im2col scratch a 1x1 convolution entry point may pass on (DSP builds): ctx->buf when ctx->size says it holds
 * the two int16 columns arm_nn_conv_generic_s8 needs (4 * align4(C_IN) bytes), else NULL. Those entry points need
 * no scratch (their getters return 0 but for armclang's DSP build), so only a caller that states the size of its
 * buffer, as generated code does with the one scratch area all its layers share, gets the faster path.
 */
static inline int8_t *arm_nn_conv_1x1_column(const cmsis_nn_context *ctx, const cmsis_nn_dims *input_dims)
{
#if NNSCONS_DSP
    const int32_t needed = 4 * arm_nn_align(input_dims->c, 4);
    return ctx != NULL && ctx->buf != NULL && ctx->size >= needed ? (int8_t *)ctx->buf : NULL;
#else
    (void)ctx;
    (void)input_dims;
    return NULL; /* the plain C loops read a 1x1 convolution's input in place */
#endif
}

/** Direct s16 convolution; bias int64 (64-bit accumulation) or int32 (32-bit accumulation); bias may be NULL. */
arm_cmsis_nn_status arm_nn_conv_generic_s16(const cmsis_nn_conv_params *conv_params,
                                            const cmsis_nn_per_channel_quant_params *quant_params,
                                            const cmsis_nn_dims *input_dims,
                                            const int16_t *input_data,
                                            const cmsis_nn_dims *filter_dims,
                                            const int8_t *filter_data,
                                            const cmsis_nn_bias_data *bias_data,
                                            const cmsis_nn_dims *output_dims,
                                            int16_t *output_data);

/** Direct s8 depthwise convolution (any channel multiplier, dilation, batches). */
arm_cmsis_nn_status arm_nn_depthwise_conv_generic_s8(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                     const cmsis_nn_per_channel_quant_params *quant_params,
                                                     const cmsis_nn_dims *input_dims,
                                                     const int8_t *input_data,
                                                     const cmsis_nn_dims *filter_dims,
                                                     const int8_t *filter_data,
                                                     const int32_t *bias_data,
                                                     const cmsis_nn_dims *output_dims,
                                                     int8_t *output_data);

/** Direct s16 depthwise convolution, int64 bias (may be NULL), 64-bit accumulation. */
arm_cmsis_nn_status arm_nn_depthwise_conv_generic_s16(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                      const cmsis_nn_per_channel_quant_params *quant_params,
                                                      const cmsis_nn_dims *input_dims,
                                                      const int16_t *input_data,
                                                      const cmsis_nn_dims *filter_dims,
                                                      const int8_t *filter_data,
                                                      const int64_t *bias_data,
                                                      const cmsis_nn_dims *output_dims,
                                                      int16_t *output_data);

/** Pooling window of one output position, clipped to the input: [start, end) along one axis. */
typedef struct
{
    int32_t start;
    int32_t end;
} arm_nn_window;

static inline arm_nn_window arm_nn_pool_window(int32_t out_pos, int32_t stride, int32_t pad, int32_t kernel,
                                               int32_t in_size)
{
    arm_nn_window window;
    const int32_t origin = out_pos * stride - pad;
    window.start = arm_nn_max_i32(origin, 0);
    window.end = arm_nn_min_i32(origin + kernel, in_size);
    return window;
}

/** TFLite average: sum / count rounded to nearest, ties away from zero. */
static inline int32_t arm_nn_rounded_average(int32_t sum, int32_t count)
{
    return sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
}

/* ----------------------------------------------------------------------------------------------------------------
 * Helium (MVE) kernels shared by the public entry points
 * -------------------------------------------------------------------------------------------------------------- */
#if NNSCONS_MVE
/* MVE: convolutions */

/** Output channels whose starting sums a Helium s8 convolution keeps at once (on the stack: 4 bytes each). */
#define ARM_NN_CONV_MVE_BLOCK 64

/** A block of output channels of a Helium s8 convolution's matrix product: weight rows, starting sums (bias +
 * input_offset * sum of the weight row, modulo 2^32) and requantization. */
typedef struct
{
    const int8_t *filter;       /* the block's first weight row; rows of row_size values */
    int32_t row_size;
    int32_t channels;           /* 1..ARM_NN_CONV_MVE_BLOCK */
    const int32_t *multiplier;  /* the block's first channel's */
    const int32_t *shift;
    int32_t output_offset;
    int32_t act_min;
    int32_t act_max;
    int32_t start[ARM_NN_CONV_MVE_BLOCK];
} arm_nn_conv_mve_block;

/** The block of ``channels`` output channels from ``first_channel`` on. */
void arm_nn_conv_mve_block_init(arm_nn_conv_mve_block *block,
                                const int8_t *filter,
                                int32_t row_size,
                                int32_t first_channel,
                                int32_t channels,
                                const int32_t *bias,
                                const cmsis_nn_per_channel_quant_params *quant_params,
                                const cmsis_nn_conv_params *conv_params);

/** Output positions arm_nn_conv_mve_rows_s8 computes at once. */
#define ARM_NN_CONV_MVE_ROWS 3

/** The block's outputs of ``count`` (1..3) positions whose int8 rows of row_size values are rows[0..count-1]
 * (rows[count..2]: any readable rows, results dropped): position p's first output at out + p * out_step. */
void arm_nn_conv_mve_rows_s8(const arm_nn_conv_mve_block *block,
                             const int8_t *const rows[ARM_NN_CONV_MVE_ROWS],
                             int32_t count,
                             int8_t *out,
                             int32_t out_step);

/** arm_nn_conv_generic_s8 on Helium for a caller whose ``column`` holds ``size`` bytes (ctx->size; 0 when the
 * caller does not state it: then what arm_nn_conv_generic_s8 assumes). A buffer too small for any path's columns
 * is not used (the receptive fields are then read in place). */
arm_cmsis_nn_status arm_nn_conv_mve_s8(int8_t *column,
                                       int32_t size,
                                       const cmsis_nn_conv_params *conv_params,
                                       const cmsis_nn_per_channel_quant_params *quant_params,
                                       const cmsis_nn_dims *input_dims,
                                       const int8_t *input_data,
                                       const cmsis_nn_dims *filter_dims,
                                       const int8_t *filter_data,
                                       const int32_t *bias_data,
                                       const cmsis_nn_dims *output_dims,
                                       int8_t *output_data);

/** s8 1x1 convolution on Helium (no padding, one group, any stride, batches), input pixels read in place. */
arm_cmsis_nn_status arm_nn_conv_1x1_mve_s8(const cmsis_nn_conv_params *conv_params,
                                           const cmsis_nn_per_channel_quant_params *quant_params,
                                           const cmsis_nn_dims *input_dims,
                                           const int8_t *input_data,
                                           const int8_t *filter_data,
                                           const int32_t *bias_data,
                                           const cmsis_nn_dims *output_dims,
                                           int8_t *output_data);

/** s8 convolution on Helium (one group; any kernel, stride, padding, dilation, batches) through im2col columns in
 * ``columns`` (ARM_NN_CONV_MVE_ROWS * KH*KW*C_IN bytes, any alignment); the input offset must be in -127..128. */
arm_cmsis_nn_status arm_nn_conv_im2col_mve_s8(int8_t *columns,
                                              const cmsis_nn_conv_params *conv_params,
                                              const cmsis_nn_per_channel_quant_params *quant_params,
                                              const cmsis_nn_dims *input_dims,
                                              const int8_t *input_data,
                                              const cmsis_nn_dims *filter_dims,
                                              const int8_t *filter_data,
                                              const int32_t *bias_data,
                                              const cmsis_nn_dims *output_dims,
                                              int8_t *output_data);

/* MVE: depthwise convolutions */

/** s8 depthwise convolution, any channel multiplier, kernel, stride, padding, dilation and batch count: blocks of
 * sixteen output channels in vectors. ctx (may be NULL): a scratch buffer of ctx->size bytes holds its working data
 * (arm_nn_dw_mve_work) when large enough, else the stack does. Then the arguments of
 * arm_nn_depthwise_conv_generic_s8. */
arm_cmsis_nn_status arm_nn_depthwise_conv_mve_s8(const cmsis_nn_context *ctx,
                                                 const cmsis_nn_dw_conv_params *dw_conv_params,
                                                 const cmsis_nn_per_channel_quant_params *quant_params,
                                                 const cmsis_nn_dims *input_dims,
                                                 const int8_t *input_data,
                                                 const cmsis_nn_dims *filter_dims,
                                                 const int8_t *filter_data,
                                                 const int32_t *bias_data,
                                                 const cmsis_nn_dims *output_dims,
                                                 int8_t *output_data);

/** Whether arm_nn_depthwise_conv_rows_mve_s8 takes the layer: a channel multiplier that is a multiple of 4 (output
 * channels sharing an input channel, four at a time), a kernel 4 to 16 taps wide, 16-bit gather offsets. */
static inline bool arm_nn_dw_rows_mve_fits(const cmsis_nn_dw_conv_params *dw_conv_params, int32_t in_c,
                                           const cmsis_nn_dims *filter_dims)
{
    return dw_conv_params->ch_mult > 0 && dw_conv_params->ch_mult % 4 == 0 && filter_dims->w >= 4 &&
        filter_dims->w <= 16 && dw_conv_params->dilation.w >= 1 && dw_conv_params->dilation.h >= 1 &&
        arm_nn_offset_fits_s16(dw_conv_params->input_offset) &&
        7 * dw_conv_params->dilation.w * in_c <= 0xFFFF && 7 * in_c * dw_conv_params->ch_mult <= 0xFFFF;
}

/** s8 depthwise convolution for layers arm_nn_dw_rows_mve_fits takes: a kernel row of an input channel serves four
 * output channels (the arguments of arm_nn_depthwise_conv_generic_s8). */
arm_cmsis_nn_status arm_nn_depthwise_conv_rows_mve_s8(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                      const cmsis_nn_per_channel_quant_params *quant_params,
                                                      const cmsis_nn_dims *input_dims,
                                                      const int8_t *input_data,
                                                      const cmsis_nn_dims *filter_dims,
                                                      const int8_t *filter_data,
                                                      const int32_t *bias_data,
                                                      const cmsis_nn_dims *output_dims,
                                                      int8_t *output_data);

#define ARM_NN_DW_MVE_BLOCK 16
#define ARM_NN_DW_MVE_CHUNK 7 /* output positions whose sums wait for their requantization together */

/** A depthwise layer's shapes and constants as arm_nn_depthwise_conv_mve_s8's loops use them. */
typedef struct
{
    int32_t batches, in_h, in_w, in_c, out_c, ch_mult, k_h, k_w, out_h, out_w;
    int32_t stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
    int32_t x_col;    /* input bytes from one tap to the next along a row */
    int32_t x_row;    /* input bytes from one tap row to the next */
    int32_t w_row;    /* filter bytes from one tap row to the next */
    int32_t ox_first; /* output columns [ox_first, ox_end) have every tap column inside the input */
    int32_t ox_end;
    int32_t input_offset, output_offset, act_min, act_max;
} arm_nn_dw_mve_geometry;

/** What a block of ``count`` (16, 8, or fewer than 8) output channels shares over the layer. Per-channel values
 * are in the order of the sums' vectors (even channels of the first eight, odd ones, then the same for the next
 * eight); channels beyond ``count`` hold zeros. */
typedef struct
{
    int8_t w3x3[9 * ARM_NN_DW_MVE_BLOCK];   /* a 3x3 filter's taps, one after the other */
    uint16_t index[ARM_NN_DW_MVE_BLOCK];    /* multiplier above 1: input channel of each, from in_channel */
    int16_t offset[8];                      /* input_offset in eight int16 lanes */
    int32_t start[ARM_NN_DW_MVE_BLOCK];     /* bias + input_offset * the sum of the channel's weights */
    int32_t bias[ARM_NN_DW_MVE_BLOCK];
    int32_t multiplier[ARM_NN_DW_MVE_BLOCK];
    int32_t shift[ARM_NN_DW_MVE_BLOCK];
    mve_pred16_t lanes;                     /* the channels that exist (a block of fewer than 8) */
    int32_t count;
    int32_t channel;                        /* first output channel */
    int32_t in_channel;                     /* its input channel */
} arm_nn_dw_mve_block;

/** The working data of arm_nn_depthwise_conv_mve_s8 (912 bytes: in the 960-byte scratch of a depthwise layer with
 * one input channel, as in micro_speech). */
typedef struct
{
    arm_nn_dw_mve_block block;
    int32_t sums[ARM_NN_DW_MVE_CHUNK][ARM_NN_DW_MVE_BLOCK];
} arm_nn_dw_mve_work;

/** Every output of the block of channels in ``work`` (arm_nn_depthwise_conv_blocks_mve_s8.c). */
void arm_nn_dw_mve_block_outputs(arm_nn_dw_mve_work *work, const arm_nn_dw_mve_geometry *g, const int8_t *input,
                                 const int8_t *filter, int8_t *output);

/* MVE: fully connected, pooling, elementwise, softmax */
/**
 * arm_nn_requantize_mve_n with the per-tensor constants as scalars (general-purpose registers, so that a loop's
 * vector registers stay free), set up once by arm_nn_requant_mve_init: the left shift, VQRDMULH by the
 * multiplier, then the rounding divide by 2^e with ties away from zero as a negative value lowered by one
 * (round_fix = 1 when e > 0) before VRSHL. The lowering cannot wrap: VQRDMULH never returns INT32_MIN (the
 * doubled product is at least -2^63 + 2^32, and INT32_MIN * INT32_MIN saturates upwards).
 * With CMSIS_NN_USE_SINGLE_ROUNDING: left is 0 and ``right`` the whole shift, for arm_nn_requantize_mve_n.
 */
typedef struct
{
    int32_t left;      /* left shift, >= 0 */
    int32_t multiplier;
    int32_t round_fix; /* 1 when a right shift follows, else 0 */
    int32_t right;     /* -e, <= 0 */
} arm_nn_requant_mve;

static inline arm_nn_requant_mve arm_nn_requant_mve_init(int32_t multiplier, int32_t shift)
{
    arm_nn_requant_mve rq;
    rq.multiplier = multiplier;
    rq.round_fix = shift < 0 ? 1 : 0;
#if defined(CMSIS_NN_USE_SINGLE_ROUNDING)
    rq.left = 0;
    rq.right = shift;
#else
    rq.left = shift > 0 ? shift : 0;
    rq.right = shift < 0 ? shift : 0;
#endif
    return rq;
}

/** The requantization of a value already shifted left by the ``left`` of arm_nn_requant_mve_init (wrapping), so
 * that a caller can merge that shift with one of its own. */
static inline int32x4_t arm_nn_requantize_shifted_mve_s(int32x4_t shifted, int32_t multiplier, int32_t round_fix,
                                                        int32_t right)
{
#if defined(CMSIS_NN_USE_SINGLE_ROUNDING)
    (void)round_fix;
    return arm_nn_requantize_mve_n(shifted, multiplier, right);
#else
    const int32x4_t high = vqrdmulhq_n_s32(shifted, multiplier);
    return vrshlq_n_s32(vmlaq_n_s32(high, vshrq_n_s32(high, 31), round_fix), right);
#endif
}

/** arm_fully_connected_s8 on Helium: ``kernel_sums`` C_OUT values of arm_vector_sum_s8 (bias folded in, bias_data
 * then unused) or NULL (bias and offsets folded in on the fly). */
void arm_nn_fully_connected_mve_s8(const cmsis_nn_fc_params *fc_params,
                                   const cmsis_nn_per_tensor_quant_params *quant_params,
                                   int32_t batches,
                                   const int8_t *input_data,
                                   int32_t depth,
                                   const int8_t *filter_data,
                                   const int32_t *kernel_sums,
                                   const int32_t *bias_data,
                                   int32_t out_c,
                                   int8_t *output_data);

/** arm_max_pool_s8 / arm_avgpool_s8 on Helium, the same outputs and statuses; ARM_CMSIS_NN_NO_IMPL_ERROR, with
 * nothing written, for what they leave to the plain loops: activation bounds that are not int8 values in order,
 * and (average) windows wider than 256 or of more than 4095 taps. */
arm_cmsis_nn_status arm_nn_max_pool_mve_s8(const cmsis_nn_pool_params *pool_params,
                                           const cmsis_nn_dims *input_dims,
                                           const int8_t *src,
                                           const cmsis_nn_dims *filter_dims,
                                           const cmsis_nn_dims *output_dims,
                                           int8_t *dst);
arm_cmsis_nn_status arm_nn_avgpool_mve_s8(const cmsis_nn_pool_params *pool_params,
                                          const cmsis_nn_dims *input_dims,
                                          const int8_t *input_data,
                                          const cmsis_nn_dims *filter_dims,
                                          const cmsis_nn_dims *output_dims,
                                          int8_t *output_data);

#endif

/* ----------------------------------------------------------------------------------------------------------------
 * LSTM
 * -------------------------------------------------------------------------------------------------------------- */

/** sigmoid(k / 24) for k = 0..255 in unsigned Q0.16 (arm_nn_activation_s16's table). */
extern const uint16_t arm_nn_sigmoid_table_uint16[256];

/** One LSTM time step for every batch: the gates from data_in and (unless NULL) hidden_in, the cell state in
 * buffers->cell_state updated, the new hidden state written to hidden_out. batch_offset: the distance between two
 * batches' rows in units of a row (1 time-major, time_steps batch-major). */
arm_cmsis_nn_status arm_nn_lstm_step_s8(const int8_t *data_in,
                                        const int8_t *hidden_in,
                                        int8_t *hidden_out,
                                        const cmsis_nn_lstm_params *params,
                                        cmsis_nn_lstm_context *buffers,
                                        const int32_t batch_offset);

/** arm_nn_lstm_step_s8's twin for int16 data at zero point 0 (int64 effective biases, 64-bit requantization). */
arm_cmsis_nn_status arm_nn_lstm_step_s16(const int16_t *data_in,
                                         const int16_t *hidden_in,
                                         int16_t *hidden_out,
                                         const cmsis_nn_lstm_params *params,
                                         cmsis_nn_lstm_context *buffers,
                                         const int32_t batch_offset);

/** One part of an LSTM gate (input or recurrent) for one batch: rows of int8 weights times x (int8 or int16, as the
 * step that passes it) plus the effective bias (int32 or int64), requantized to int16 at 2^-12 and saturated; with
 * accumulate added to out[r] and saturated again. */
typedef void (*arm_nn_lstm_gate_part_fn)(const int8_t *weights,
                                         const void *bias,
                                         const void *x,
                                         int32_t cols,
                                         int32_t rows,
                                         int32_t multiplier,
                                         int32_t shift,
                                         bool accumulate,
                                         int16_t *out);

/** The s8 and s16 gate parts (arm_nn_lstm_gate_part_fn) of the LSTM and GRU steps. */
void arm_nn_lstm_gate_part_s8(const int8_t *weights, const void *bias, const void *x, int32_t cols, int32_t rows,
                              int32_t multiplier, int32_t shift, bool accumulate, int16_t *out);
void arm_nn_lstm_gate_part_s16(const int8_t *weights, const void *bias, const void *x, int32_t cols, int32_t rows,
                               int32_t multiplier, int32_t shift, bool accumulate, int16_t *out);

/** What arm_nn_lstm_step needs: the s8 or s16 step's gate part and data size, and the step's arguments. */
typedef struct
{
    arm_nn_lstm_gate_part_fn part;
    int32_t data_bytes;                     /* 1 (int8 data) or 2 (int16 data) */
    const void *data_in;
    const void *hidden_in;                  /* NULL: no recurrent term (the first step after a reset) */
    void *hidden_out;
    const cmsis_nn_lstm_params *params;
    cmsis_nn_lstm_context *buffers;
    int32_t batch_offset;
} arm_nn_lstm_step_args;

/** One LSTM time step for every batch, shared by arm_nn_lstm_step_s8 and arm_nn_lstm_step_s16. */
arm_cmsis_nn_status arm_nn_lstm_step(const arm_nn_lstm_step_args *args);

/** What nnscons_gru_step needs: the s8 or s16 step's gate part and data size, and the step's arguments. */
typedef struct
{
    arm_nn_lstm_gate_part_fn part;
    int32_t data_bytes;                     /* 1 (int8 data) or 2 (int16 data) */
    const void *data_in;
    const void *hidden_in;                  /* the previous hidden state (the carried one at the first step) */
    void *hidden_out;
    const nnscons_gru_params *params;
    nnscons_gru_context *buffers;
    int32_t batch_offset;
} nnscons_gru_step_args;

/** One GRU time step for every batch, shared by nnscons_gru_step_s8 and nnscons_gru_step_s16. */
arm_cmsis_nn_status nnscons_gru_step(const nnscons_gru_step_args *args);

/* ----------------------------------------------------------------------------------------------------------------
 * SVDF
 * -------------------------------------------------------------------------------------------------------------- */

/** The arguments arm_svdf_s8 and arm_svdf_state_s16_s8 share (all but the state and the time weights). */
typedef struct
{
    const cmsis_nn_context *input_ctx;      /* B x F int32 */
    const cmsis_nn_context *output_ctx;     /* B x F / rank int32 (checked, not used) */
    const cmsis_nn_svdf_params *params;
    const cmsis_nn_per_tensor_quant_params *input_quant;
    const cmsis_nn_per_tensor_quant_params *output_quant;
    const cmsis_nn_dims *input_dims;        /* n: B, h: I */
    const int8_t *input;
    const cmsis_nn_dims *feature_dims;      /* n: F */
    const int8_t *feature_weights;
    const cmsis_nn_dims *time_dims;         /* h: M */
    const int32_t *bias;
    int8_t *output;
    int32_t state_offset;                   /* the state's zero point (0 in CMSIS-NN's two functions) */
} arm_nn_svdf_args;

/** An SVDF step on an int8 (wide false) or int16 (wide true) state and time weights of the same type. A state
 * value is the new feature value (clamped to input_activation) plus state_offset, cast to the state's type; the
 * time sums read each value less state_offset. */
arm_cmsis_nn_status arm_nn_svdf_s8(const arm_nn_svdf_args *args, void *state, const void *time_weights, bool wide);

#ifdef __cplusplus
}
#endif

#endif /* NNSCONS_ARM_NNSUPPORTFUNCTIONS_H */
