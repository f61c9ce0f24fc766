/* SPDX-License-Identifier: Apache-2.0 */
/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */

/*
 * Types of the CMSIS-NN API subset implemented by nnscons' portable kernel library.
 *
 * The field order of every struct follows the published CMSIS-NN v7.0.0 API exactly, so that code written
 * against this header (with positional or designated initializers) also compiles against Arm's library.
 */
#ifndef NNSCONS_ARM_NN_TYPES_H
#define NNSCONS_ARM_NN_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Status returned by the kernels. */
typedef enum
{
    ARM_CMSIS_NN_SUCCESS = 0,
    ARM_CMSIS_NN_ARG_ERROR = -1,
    ARM_CMSIS_NN_NO_IMPL_ERROR = -2,
    ARM_CMSIS_NN_FAILURE = -3
} arm_cmsis_nn_status;

/** Activation selector of the s16 sigmoid/tanh (arm_nn_activation_s16, the LSTM gates). */
typedef enum
{
    ARM_SIGMOID = 0,
    ARM_TANH = 1
} arm_nn_activation_type;

/** A 2-D extent: note the order, width first. */
typedef struct
{
    int32_t w;
    int32_t h;
} cmsis_nn_tile;

/** Caller-owned scratch buffer; size is informative only. */
typedef struct
{
    void *buf;
    int32_t size;
} cmsis_nn_context;

/** Tensor dimensions, NHWC. */
typedef struct
{
    int32_t n;
    int32_t h;
    int32_t w;
    int32_t c;
} cmsis_nn_dims;

/** Inclusive output clamp range, in output quantized units. */
typedef struct
{
    int32_t min;
    int32_t max;
} cmsis_nn_activation;

/** One (Q31 multiplier, shift) pair per output channel; shift > 0 is a left shift. */
typedef struct
{
    int32_t *multiplier;
    int32_t *shift;
} cmsis_nn_per_channel_quant_params;

/** A single (Q31 multiplier, shift) pair. */
typedef struct
{
    int32_t multiplier;
    int32_t shift;
} cmsis_nn_per_tensor_quant_params;

/** Convolution parameters; padding is the top/left pad. */
typedef struct
{
    int32_t input_offset;  /* -input zero point */
    int32_t output_offset; /* +output zero point, added after requantization */
    cmsis_nn_tile stride;
    cmsis_nn_tile padding;
    cmsis_nn_tile dilation;
    cmsis_nn_activation activation;
} cmsis_nn_conv_params;

/** Depthwise convolution parameters. */
typedef struct
{
    int32_t input_offset;
    int32_t output_offset;
    int32_t ch_mult; /* output channels per input channel */
    cmsis_nn_tile stride;
    cmsis_nn_tile padding;
    cmsis_nn_tile dilation;
    cmsis_nn_activation activation;
} cmsis_nn_dw_conv_params;

/** Pooling parameters. */
typedef struct
{
    cmsis_nn_tile stride;
    cmsis_nn_tile padding;
    cmsis_nn_activation activation;
} cmsis_nn_pool_params;

/** Fully-connected parameters. */
typedef struct
{
    int32_t input_offset;
    int32_t filter_offset;
    int32_t output_offset;
    cmsis_nn_activation activation;
} cmsis_nn_fc_params;

/** The two 513-entry lookup tables of the s16 softmax. */
typedef struct
{
    const int16_t *exp_lut;
    const int16_t *one_by_one_lut;
} cmsis_nn_softmax_lut_s16;

/** s16 convolution bias: int32 when is_int32_bias is true, else int64. */
typedef struct
{
    const void *data;
    const bool is_int32_bias;
} cmsis_nn_bias_data;

/** Per-tensor or per-channel quantization (CMSIS-NN v7.0.0). */
typedef struct
{
    int32_t *multiplier;
    int32_t *shift;
    int32_t is_per_channel;
} cmsis_nn_quant_params;

/** One LSTM gate: its input and recurrent weights ([H][I], [H][H] int8), their requantization to the int16 gate
 * pre-activation (scale 2^-12) and their effective biases (the bias with the zero points' terms folded in, int32
 * for s8); bias is informational (never read). */
typedef struct
{
    int32_t input_multiplier;
    int32_t input_shift;
    const void *input_weights;
    const void *input_effective_bias;
    int32_t hidden_multiplier;
    int32_t hidden_shift;
    const void *hidden_weights;
    const void *hidden_effective_bias;
    const void *bias;
    arm_nn_activation_type activation_type;
} cmsis_nn_lstm_gate;

/** An LSTM layer (CMSIS-NN v7.0.0 field order; the gates forget, input, cell, output). */
typedef struct
{
    int32_t time_major;
    int32_t batch_size;
    int32_t time_steps;
    int32_t input_size;
    int32_t hidden_size;
    int32_t input_offset;
    int32_t forget_to_cell_multiplier;
    int32_t forget_to_cell_shift;
    int32_t input_to_cell_multiplier;
    int32_t input_to_cell_shift;
    int32_t cell_clip;
    int32_t cell_scale_power;
    int32_t output_multiplier;
    int32_t output_shift;
    int32_t output_offset;
    cmsis_nn_lstm_gate forget_gate;
    cmsis_nn_lstm_gate input_gate;
    cmsis_nn_lstm_gate cell_gate;
    cmsis_nn_lstm_gate output_gate;
} cmsis_nn_lstm_params;

/** nnscons' own (not in CMSIS-NN): a GRU layer (ONNX's gates z, r, h; see nnscons_gru_step_s8). Each gate's parts
 * are requantized to the int16 pre-activation at 2^-12 as an LSTM gate's; the hidden state moves to Q0.15 and back
 * for the final blend. */
typedef struct
{
    int32_t batch_size;
    int32_t input_size;
    int32_t hidden_size;
    int32_t linear_before_reset;            /* 1: the candidate's recurrent part is computed before the reset gate */
    int32_t hidden_offset;                  /* the hidden state's zero point */
    int32_t to_q15_multiplier;              /* hidden state -> Q0.15 */
    int32_t to_q15_shift;
    int32_t from_q15_multiplier;            /* Q0.15 -> hidden state */
    int32_t from_q15_shift;
    cmsis_nn_lstm_gate update_gate;         /* z: sigmoid */
    cmsis_nn_lstm_gate reset_gate;          /* r: sigmoid */
    cmsis_nn_lstm_gate candidate_gate;      /* h: tanh */
} nnscons_gru_params;

/** The GRU's working buffers: batch_size * hidden_size int16 values each. */
typedef struct
{
    void *update;
    void *reset;
    void *candidate;
    void *scratch;
} nnscons_gru_context;

/** The LSTM's working buffers: batch_size * hidden_size int16 values each. */
typedef struct
{
    void *temp1;
    void *temp2;
    void *cell_state;
} cmsis_nn_lstm_context;

/** An SVDF layer: rank, the offsets (input_offset is the input's zero point, subtracted), the clamps of the state's
 * new values and of the output. */
typedef struct
{
    int32_t rank;
    int32_t input_offset;
    int32_t output_offset;
    cmsis_nn_activation input_activation;
    cmsis_nn_activation output_activation;
} cmsis_nn_svdf_params;

/** LSTM dimensions (part of the API; the kernels do not read it). */
typedef struct
{
    int32_t max_time;
    int32_t num_inputs;
    int32_t num_batches;
    int32_t num_outputs;
} cmsis_nn_lstm_dims;

#ifdef __cplusplus
}
#endif

#endif /* NNSCONS_ARM_NN_TYPES_H */
