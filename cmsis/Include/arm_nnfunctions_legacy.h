/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * Legacy q7/q15 API of nnscons' portable CMSIS-NN subset: the power-of-two fixed-point kernels of CMSIS_5 5.9.0
 * (CMSIS-NN 3.1.0, the last release that has them), with the same signatures, argument constraints and
 * arithmetic.
 *
 * Arithmetic of every convolution, depthwise and fully connected kernel (Arm's pure-C reference path):
 *     acc = (bias[o] << bias_shift) + NN_ROUND(out_shift)      NN_ROUND(s) = 2^(s-1), 0 for s == 0
 *     acc += sum(in * w)                                       32-bit, wraps on overflow
 *     out = saturate(acc >> out_shift)                         arithmetic shift; 8 bits (q7) or 16 bits (q15)
 * i.e. round half up. Defining ARM_NN_TRUNCATE makes NN_ROUND 0 (floor), as in Arm's library.
 * Shifts must be 0..31 (larger shifts are undefined behaviour in Arm's C code; here a shift of 32 or more
 * behaves like a Cortex-M register shift: << gives 0, >> gives the sign, NN_ROUND gives 0).
 *
 * Layouts: activations HWC; conv weights [out_ch][ky][kx][in_ch]; depthwise weights [ky][kx][ch]; FC weights
 * [rows][cols] row-major, or the interleaved layouts of the _opt variants (site_scons/nnscons/legacy_layouts.py
 * produces them). "Square" functions use dim_im_in, dim_kernel, padding, stride and dim_im_out on both axes.
 *
 * Variant constraints (a violation returns ARM_MATH_SIZE_MISMATCH and writes nothing), exactly Arm's:
 *   _q7_fast, _q7_fast_nonsquare          ch_im_in % 4 == 0 and ch_im_out % 2 == 0
 *   1x1_HWC_q7_fast_nonsquare             as _fast, plus a 1x1 kernel, no padding, stride 1
 *   _q7_RGB                               ch_im_in == 3
 *   _q15_fast, _q15_fast_nonsquare        ch_im_in % 2 == 0 and ch_im_out % 2 == 0; on DSP builds (ARM_MATH_DSP
 *                                         or __ARM_FEATURE_DSP) _q15_fast also needs dim_im_out % 2 == 0
 *   depthwise_separable_conv              ch_im_in == ch_im_out
 *
 * Scratch buffers (bufferA, bufferB, vec_buffer) are part of the signatures so that generated code links against
 * Arm's library too; this implementation needs none of them (NULL is fine). Size them for Arm's library with
 * legacy_buffer_sizes() in site_scons/nnscons/legacy_layouts.py.
 *
 * Pooling: the output keeps the input's Q format. Arm's DSP builds pool in place, so callers must treat Im_in as
 * destroyed (this implementation leaves it intact). Windows with no valid tap (padding >= kernel) are undefined
 * in Arm's code; they give 0 here.
 *
 * The q7/q15/q31 types and arm_status normally come from CMSIS-DSP's arm_math_types.h. They are declared here
 * unless that header (or an older CMSIS-DSP arm_math.h) was included first, or NNSCONS_HAVE_ARM_MATH_TYPES is
 * defined: include CMSIS-DSP before this header when using both.
 */
#ifndef NNSCONS_ARM_NNFUNCTIONS_LEGACY_H
#define NNSCONS_ARM_NNFUNCTIONS_LEGACY_H

#include <stdint.h>

#include "arm_nnfunctions.h" /* arm_relu_q7, arm_relu_q15 and arm_nn_activation_type are shared with the modern API */

#if !defined(_ARM_MATH_TYPES_H_) && !defined(_ARM_MATH_H) && !defined(NNSCONS_HAVE_ARM_MATH_TYPES)
#define NNSCONS_HAVE_ARM_MATH_TYPES
typedef int8_t q7_t;
typedef int16_t q15_t;
typedef int32_t q31_t;
typedef int64_t q63_t;

/** Status of the legacy kernels (CMSIS-DSP values). */
typedef enum
{
    ARM_MATH_SUCCESS = 0,
    ARM_MATH_ARGUMENT_ERROR = -1,
    ARM_MATH_LENGTH_ERROR = -2,
    ARM_MATH_SIZE_MISMATCH = -3,
    ARM_MATH_NANINF = -4,
    ARM_MATH_SINGULAR = -5,
    ARM_MATH_TEST_FAILURE = -6,
    ARM_MATH_DECOMPOSITION_FAILURE = -7
} arm_status;
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ----------------------------------------------------------------------------------------------------------------
 * Convolution, square images and kernels
 * -------------------------------------------------------------------------------------------------------------- */

arm_status arm_convolve_HWC_q7_basic(const q7_t *Im_in,
                                     const uint16_t dim_im_in,
                                     const uint16_t ch_im_in,
                                     const q7_t *wt,
                                     const uint16_t ch_im_out,
                                     const uint16_t dim_kernel,
                                     const uint16_t padding,
                                     const uint16_t stride,
                                     const q7_t *bias,
                                     const uint16_t bias_shift,
                                     const uint16_t out_shift,
                                     q7_t *Im_out,
                                     const uint16_t dim_im_out,
                                     q15_t *bufferA,
                                     q7_t *bufferB);

arm_status arm_convolve_HWC_q7_fast(const q7_t *Im_in,
                                    const uint16_t dim_im_in,
                                    const uint16_t ch_im_in,
                                    const q7_t *wt,
                                    const uint16_t ch_im_out,
                                    const uint16_t dim_kernel,
                                    const uint16_t padding,
                                    const uint16_t stride,
                                    const q7_t *bias,
                                    const uint16_t bias_shift,
                                    const uint16_t out_shift,
                                    q7_t *Im_out,
                                    const uint16_t dim_im_out,
                                    q15_t *bufferA,
                                    q7_t *bufferB);

arm_status arm_convolve_HWC_q7_RGB(const q7_t *Im_in,
                                   const uint16_t dim_im_in,
                                   const uint16_t ch_im_in,
                                   const q7_t *wt,
                                   const uint16_t ch_im_out,
                                   const uint16_t dim_kernel,
                                   const uint16_t padding,
                                   const uint16_t stride,
                                   const q7_t *bias,
                                   const uint16_t bias_shift,
                                   const uint16_t out_shift,
                                   q7_t *Im_out,
                                   const uint16_t dim_im_out,
                                   q15_t *bufferA,
                                   q7_t *bufferB);

arm_status arm_convolve_HWC_q15_basic(const q15_t *Im_in,
                                      const uint16_t dim_im_in,
                                      const uint16_t ch_im_in,
                                      const q15_t *wt,
                                      const uint16_t ch_im_out,
                                      const uint16_t dim_kernel,
                                      const uint16_t padding,
                                      const uint16_t stride,
                                      const q15_t *bias,
                                      const uint16_t bias_shift,
                                      const uint16_t out_shift,
                                      q15_t *Im_out,
                                      const uint16_t dim_im_out,
                                      q15_t *bufferA,
                                      q7_t *bufferB);

arm_status arm_convolve_HWC_q15_fast(const q15_t *Im_in,
                                     const uint16_t dim_im_in,
                                     const uint16_t ch_im_in,
                                     const q15_t *wt,
                                     const uint16_t ch_im_out,
                                     const uint16_t dim_kernel,
                                     const uint16_t padding,
                                     const uint16_t stride,
                                     const q15_t *bias,
                                     const uint16_t bias_shift,
                                     const uint16_t out_shift,
                                     q15_t *Im_out,
                                     const uint16_t dim_im_out,
                                     q15_t *bufferA,
                                     q7_t *bufferB);

/** Depthwise (no channel multiplier: ch_im_in == ch_im_out), weights [ky][kx][ch]. */
arm_status arm_depthwise_separable_conv_HWC_q7(const q7_t *Im_in,
                                               const uint16_t dim_im_in,
                                               const uint16_t ch_im_in,
                                               const q7_t *wt,
                                               const uint16_t ch_im_out,
                                               const uint16_t dim_kernel,
                                               const uint16_t padding,
                                               const uint16_t stride,
                                               const q7_t *bias,
                                               const uint16_t bias_shift,
                                               const uint16_t out_shift,
                                               q7_t *Im_out,
                                               const uint16_t dim_im_out,
                                               q15_t *bufferA,
                                               q7_t *bufferB);

/* ----------------------------------------------------------------------------------------------------------------
 * Convolution, non-square images and kernels
 * -------------------------------------------------------------------------------------------------------------- */

arm_status arm_convolve_HWC_q7_basic_nonsquare(const q7_t *Im_in,
                                               const uint16_t dim_im_in_x,
                                               const uint16_t dim_im_in_y,
                                               const uint16_t ch_im_in,
                                               const q7_t *wt,
                                               const uint16_t ch_im_out,
                                               const uint16_t dim_kernel_x,
                                               const uint16_t dim_kernel_y,
                                               const uint16_t padding_x,
                                               const uint16_t padding_y,
                                               const uint16_t stride_x,
                                               const uint16_t stride_y,
                                               const q7_t *bias,
                                               const uint16_t bias_shift,
                                               const uint16_t out_shift,
                                               q7_t *Im_out,
                                               const uint16_t dim_im_out_x,
                                               const uint16_t dim_im_out_y,
                                               q15_t *bufferA,
                                               q7_t *bufferB);

arm_status arm_convolve_HWC_q7_fast_nonsquare(const q7_t *Im_in,
                                              const uint16_t dim_im_in_x,
                                              const uint16_t dim_im_in_y,
                                              const uint16_t ch_im_in,
                                              const q7_t *wt,
                                              const uint16_t ch_im_out,
                                              const uint16_t dim_kernel_x,
                                              const uint16_t dim_kernel_y,
                                              const uint16_t padding_x,
                                              const uint16_t padding_y,
                                              const uint16_t stride_x,
                                              const uint16_t stride_y,
                                              const q7_t *bias,
                                              const uint16_t bias_shift,
                                              const uint16_t out_shift,
                                              q7_t *Im_out,
                                              const uint16_t dim_im_out_x,
                                              const uint16_t dim_im_out_y,
                                              q15_t *bufferA,
                                              q7_t *bufferB);

arm_status arm_convolve_1x1_HWC_q7_fast_nonsquare(const q7_t *Im_in,
                                                  const uint16_t dim_im_in_x,
                                                  const uint16_t dim_im_in_y,
                                                  const uint16_t ch_im_in,
                                                  const q7_t *wt,
                                                  const uint16_t ch_im_out,
                                                  const uint16_t dim_kernel_x,
                                                  const uint16_t dim_kernel_y,
                                                  const uint16_t padding_x,
                                                  const uint16_t padding_y,
                                                  const uint16_t stride_x,
                                                  const uint16_t stride_y,
                                                  const q7_t *bias,
                                                  const uint16_t bias_shift,
                                                  const uint16_t out_shift,
                                                  q7_t *Im_out,
                                                  const uint16_t dim_im_out_x,
                                                  const uint16_t dim_im_out_y,
                                                  q15_t *bufferA,
                                                  q7_t *bufferB);

arm_status arm_convolve_HWC_q15_fast_nonsquare(const q15_t *Im_in,
                                               const uint16_t dim_im_in_x,
                                               const uint16_t dim_im_in_y,
                                               const uint16_t ch_im_in,
                                               const q15_t *wt,
                                               const uint16_t ch_im_out,
                                               const uint16_t dim_kernel_x,
                                               const uint16_t dim_kernel_y,
                                               const uint16_t padding_x,
                                               const uint16_t padding_y,
                                               const uint16_t stride_x,
                                               const uint16_t stride_y,
                                               const q15_t *bias,
                                               const uint16_t bias_shift,
                                               const uint16_t out_shift,
                                               q15_t *Im_out,
                                               const uint16_t dim_im_out_x,
                                               const uint16_t dim_im_out_y,
                                               q15_t *bufferA,
                                               q7_t *bufferB);

arm_status arm_depthwise_separable_conv_HWC_q7_nonsquare(const q7_t *Im_in,
                                                         const uint16_t dim_im_in_x,
                                                         const uint16_t dim_im_in_y,
                                                         const uint16_t ch_im_in,
                                                         const q7_t *wt,
                                                         const uint16_t ch_im_out,
                                                         const uint16_t dim_kernel_x,
                                                         const uint16_t dim_kernel_y,
                                                         const uint16_t padding_x,
                                                         const uint16_t padding_y,
                                                         const uint16_t stride_x,
                                                         const uint16_t stride_y,
                                                         const q7_t *bias,
                                                         const uint16_t bias_shift,
                                                         const uint16_t out_shift,
                                                         q7_t *Im_out,
                                                         const uint16_t dim_im_out_x,
                                                         const uint16_t dim_im_out_y,
                                                         q15_t *bufferA,
                                                         q7_t *bufferB);

/* ----------------------------------------------------------------------------------------------------------------
 * Fully connected: pOut[r] = saturate(((bias[r] << bias_shift) + NN_ROUND(out_shift) + sum_c pM[r][c] pV[c])
 * >> out_shift). The _opt variants read pM in their interleaved layout, the others row-major [num_of_rows][dim_vec].
 * -------------------------------------------------------------------------------------------------------------- */

arm_status arm_fully_connected_q7(const q7_t *pV,
                                  const q7_t *pM,
                                  const uint16_t dim_vec,
                                  const uint16_t num_of_rows,
                                  const uint16_t bias_shift,
                                  const uint16_t out_shift,
                                  const q7_t *bias,
                                  q7_t *pOut,
                                  q15_t *vec_buffer);

arm_status arm_fully_connected_q7_opt(const q7_t *pV,
                                      const q7_t *pM,
                                      const uint16_t dim_vec,
                                      const uint16_t num_of_rows,
                                      const uint16_t bias_shift,
                                      const uint16_t out_shift,
                                      const q7_t *bias,
                                      q7_t *pOut,
                                      q15_t *vec_buffer);

arm_status arm_fully_connected_q15(const q15_t *pV,
                                   const q15_t *pM,
                                   const uint16_t dim_vec,
                                   const uint16_t num_of_rows,
                                   const uint16_t bias_shift,
                                   const uint16_t out_shift,
                                   const q15_t *bias,
                                   q15_t *pOut,
                                   q15_t *vec_buffer);

arm_status arm_fully_connected_q15_opt(const q15_t *pV,
                                       const q15_t *pM,
                                       const uint16_t dim_vec,
                                       const uint16_t num_of_rows,
                                       const uint16_t bias_shift,
                                       const uint16_t out_shift,
                                       const q15_t *bias,
                                       q15_t *pOut,
                                       q15_t *vec_buffer);

/** q15 vector, q7 matrix and bias, q15 output. */
arm_status arm_fully_connected_mat_q7_vec_q15(const q15_t *pV,
                                              const q7_t *pM,
                                              const uint16_t dim_vec,
                                              const uint16_t num_of_rows,
                                              const uint16_t bias_shift,
                                              const uint16_t out_shift,
                                              const q7_t *bias,
                                              q15_t *pOut,
                                              q15_t *vec_buffer);

arm_status arm_fully_connected_mat_q7_vec_q15_opt(const q15_t *pV,
                                                  const q7_t *pM,
                                                  const uint16_t dim_vec,
                                                  const uint16_t num_of_rows,
                                                  const uint16_t bias_shift,
                                                  const uint16_t out_shift,
                                                  const q7_t *bias,
                                                  q15_t *pOut,
                                                  q15_t *vec_buffer);

/* ----------------------------------------------------------------------------------------------------------------
 * Pooling (square; windows start at out * stride - padding; only valid taps count)
 * -------------------------------------------------------------------------------------------------------------- */

/** Maximum of each window. */
void arm_maxpool_q7_HWC(q7_t *Im_in,
                        const uint16_t dim_im_in,
                        const uint16_t ch_im_in,
                        const uint16_t dim_kernel,
                        const uint16_t padding,
                        const uint16_t stride,
                        const uint16_t dim_im_out,
                        q7_t *bufferA,
                        q7_t *Im_out);

/** Average of each window: sum / count with C's truncating division (no rounding). */
void arm_avepool_q7_HWC(q7_t *Im_in,
                        const uint16_t dim_im_in,
                        const uint16_t ch_im_in,
                        const uint16_t dim_kernel,
                        const uint16_t padding,
                        const uint16_t stride,
                        const uint16_t dim_im_out,
                        q7_t *bufferA,
                        q7_t *Im_out);

/* ----------------------------------------------------------------------------------------------------------------
 * Activations (in place). arm_relu_q7 / arm_relu_q15 are declared in arm_nnfunctions.h.
 * -------------------------------------------------------------------------------------------------------------- */

/** Sigmoid or tanh by table look-up: input Q(int_width).(7-int_width), int_width <= 3; output Q0.7.
 *  The tables cover [-8, 8) on a 1/16 grid. int_width > 3 is undefined in Arm's code; here the input then
 *  saturates to the table's range. */
void arm_nn_activations_direct_q7(q7_t *data, uint16_t size, uint16_t int_width, arm_nn_activation_type type);

/** Sigmoid or tanh by interpolated table look-up: input Q(int_width).(15-int_width); output Q0.15.
 *  Meaningful for int_width <= 3; as in Arm's code, int_width 4..11 wraps the table index of inputs outside
 *  [-8, 8). int_width > 11 is undefined in Arm's code; here the input then saturates to the table's range. */
void arm_nn_activations_direct_q15(q15_t *data, uint16_t size, uint16_t int_width, arm_nn_activation_type type);

/* ----------------------------------------------------------------------------------------------------------------
 * Softmax with base 2 (2^x instead of e^x); the output is Q0.7 / Q0.15
 * -------------------------------------------------------------------------------------------------------------- */

void arm_softmax_q7(const q7_t *vec_in, const uint16_t dim_vec, q7_t *p_out);
void arm_softmax_with_batch_q7(const q7_t *vec_in, const uint16_t nb_batches, const uint16_t dim_vec, q7_t *p_out);
void arm_softmax_q15(const q15_t *vec_in, const uint16_t dim_vec, q15_t *p_out);

#ifdef __cplusplus
}
#endif

#endif /* NNSCONS_ARM_NNFUNCTIONS_LEGACY_H */
