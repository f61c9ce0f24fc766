# SPDX-License-Identifier: Apache-2.0
# Part of nnscons; written from the published CMSIS-NN API, not derived from its source.
"""Single-operator recurrent ``.tflite`` models built in memory (with :mod:`tflite_builder`): SVDF (int8, an int16
or int8 state) and UNIDIRECTIONAL_SEQUENCE_LSTM,
float32 or int8x8_16 (int8 activations and weights, int32 biases, an int16 cell state), batch- or time-major, and
the variants nnscons refuses (peephole, projection, CIFG, another cell activation) for the import's messages.

Operand order (TFLite's ``lstm_shared.h``): 0 the sequence, 1-4 input weights i, f, c, o, 5-8 recurrent weights,
9-11 peephole, 12-15 biases, 16-17 projection, 18 hidden state, 19 cell state (variables), 20-23 layer norm.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import tflite

from tflite_builder import Quant, Tensor, single_op_model

TANH = tflite.ActivationFunctionType.TANH


def lstm(batch: int, steps: int, features: int, units: int, *, time_major: bool = False, int8: bool = True,
         cell_clip: float = 0.0, seed: int = 0, peephole: bool = False, projection: bool = False, cifg: bool = False,
         activation: int = TANH, input_scale: float = 1 / 128, bias_max: int = 4000, int16: bool = False) -> bytes:
    """An LSTM with random weights (int8: input scale 1/128 zero point 3, hidden scale 1/100 zero point -5, cell
    scale 2^-11, biases within +-4000, the first one at the limit; int16 (int16x8_16, int64 biases): input scale
    1/128 / 256, hidden scale 1/25600, zero points 0)."""
    rng = np.random.default_rng(seed)
    act = np.int16 if int16 else np.int8 if int8 else np.float32
    int8 = int8 or int16                                       # quantized: int8 weights either way
    if int16:
        x_quant, h_quant = Quant([input_scale / 256], [0]), Quant([1 / 25600], [0])
    else:
        x_quant, h_quant = (Quant([input_scale], [3]), Quant([1 / 100], [-5])) if int8 else (None, None)
    seq = [steps, batch, features] if time_major else [batch, steps, features]
    out = [steps, batch, units] if time_major else [batch, steps, units]

    def weights(rows: int, cols: int, scale: float) -> Tensor:
        if not int8:
            return Tensor([rows, cols], np.float32, None, rng.normal(0, 0.4, (rows, cols)).astype(np.float32))
        return Tensor([rows, cols], np.int8, Quant([scale], [0]), rng.integers(-127, 127, (rows, cols)).astype(np.int8))

    def bias(scale: float) -> Tensor:
        if not int8:
            return Tensor([units], np.float32, None, rng.normal(0, 0.2, units).astype(np.float32))
        values = rng.integers(-bias_max, bias_max, units)
        values[0] = bias_max                                   # the largest one there
        if int16:
            return Tensor([units], np.int64, Quant([scale / 256], [0]), values.astype(np.int64) * 256)
        return Tensor([units], np.int32, Quant([scale], [0]), values.astype(np.int32))

    scales = [0.004, 0.005, 0.006, 0.007]
    inputs: list[Optional[Tensor]] = [Tensor(seq, act, x_quant)]
    inputs += [weights(units, features, s) for s in scales] + [weights(units, units, s * 1.5) for s in scales]
    inputs += [Tensor([units], act, Quant([0.01], [0]) if int8 else None, np.ones(units, act)) if peephole else None
               for _ in range(3)]
    inputs += [bias(s / 128) for s in scales]
    inputs += [Tensor([units, units], np.int8 if int8 else np.float32, Quant([0.01], [0]) if int8 else None,
                      np.ones((units, units), np.int8 if int8 else np.float32)) if projection else None, None]
    inputs += [Tensor([batch, units], act, h_quant, None, variable=True),
               Tensor([batch, units], np.int16 if int8 else np.float32, Quant([2.0 ** -11], [0]) if int8 else None,
                      None, variable=True)]
    inputs += [None] * 4
    if cifg:
        inputs[1] = inputs[5] = None

    def options(builder) -> int:
        tflite.UnidirectionalSequenceLSTMOptionsStart(builder)
        tflite.UnidirectionalSequenceLSTMOptionsAddFusedActivationFunction(builder, activation)
        tflite.UnidirectionalSequenceLSTMOptionsAddCellClip(builder, cell_clip)
        tflite.UnidirectionalSequenceLSTMOptionsAddTimeMajor(builder, time_major)
        return tflite.UnidirectionalSequenceLSTMOptionsEnd(builder)

    return single_op_model(tflite.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM, inputs, Tensor(out, act, h_quant),
                           tflite.BuiltinOptions.UnidirectionalSequenceLSTMOptions, options)


def svdf(batch: int, features: int, filters: int, memory: int, rank: int, *, wide: bool = True,
         state_zero_point: int = 0, seed: int = 0) -> bytes:
    """An int8 SVDF with random weights: input scale 1/64 zero point 5, state scale 1/32 (int16 time weights and
    state when ``wide``, else int8 with ``state_zero_point``), output scale 1/8 zero point -3."""
    rng = np.random.default_rng(seed)
    s_in, s_wf, s_state, s_wt, s_out = 1 / 64, 0.01, 1 / 32, 0.002 if wide else 0.02, 1 / 8
    time_type = np.int16 if wide else np.int8
    time_top = 2000 if wide else 100
    operands = [Tensor([batch, features], np.int8, Quant([s_in], [5])),
                Tensor([filters, features], np.int8, Quant([s_wf], [0]),
                       rng.integers(-100, 100, (filters, features)).astype(np.int8)),
                Tensor([filters, memory], time_type, Quant([s_wt], [0]),
                       rng.integers(-time_top, time_top, (filters, memory)).astype(time_type)),
                Tensor([filters // rank], np.int32, Quant([s_state * s_wt], [0]),
                       rng.integers(-3000, 3000, filters // rank).astype(np.int32)),
                Tensor([batch, filters * memory], time_type, Quant([s_state], [state_zero_point]), None,
                       variable=True)]

    def options(builder) -> int:
        tflite.SVDFOptionsStart(builder)
        tflite.SVDFOptionsAddRank(builder, rank)
        return tflite.SVDFOptionsEnd(builder)

    return single_op_model(tflite.BuiltinOperator.SVDF, operands,
                           Tensor([batch, filters // rank], np.int8, Quant([s_out], [-3])),
                           tflite.BuiltinOptions.SVDFOptions, options)
