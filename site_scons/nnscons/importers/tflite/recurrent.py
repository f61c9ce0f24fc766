"""TFLite handlers for UNIDIRECTIONAL_SEQUENCE_LSTM (builtin 44): one IR ``lstm`` op, and SVDF (builtin 27): one IR
``svdf`` op (inputs 0 the frame [B, I], 1 the feature weights [F, I], 2 the time weights [F, M], 3 the bias
[F / rank], 4 the state [B, F * M], a variable whose quantization becomes the ``state`` attribute).

The operator's 24 inputs (``lstm_shared.h`` order): 0 the sequence, 1-4 the input weights of the gates i, f, c, o
([H, I]), 5-8 their recurrent weights ([H, H]), 9-11 peephole weights, 12-15 the gate biases ([H]), 16-17 the
projection, 18-19 the hidden and cell states (variable tensors), 20-23 layer-norm coefficients. nnscons takes the
plain LSTM: every gate (no CIFG), no peephole, projection or layer norm, a TANH cell activation; each absence is
checked and what is present named. The state tensors hold no data: their quantization (the hidden state's scale
and zero point, the cell's scale) becomes attributes, and the op starts every inference from zero state, as TFLite
Micro does after ``reset()`` and as CMSIS-NN's ``arm_lstm_unidirectional_s8`` does on every call.
"""
from __future__ import annotations

from typing import Any, Optional

from ...errors import NnsconsError
from .context import ConversionContext
from .lowering import (Lowered, activation, constant_weights, expect_inputs, input_index, op_options, shape_of,
                       shape_of_rank)
from .records import OpRec

INPUT_WEIGHTS = (1, 2, 3, 4)          # i, f, c, o
RECURRENT_WEIGHTS = (5, 6, 7, 8)
BIASES = (12, 13, 14, 15)
HIDDEN_STATE, CELL_STATE = 18, 19
ABSENT_PARTS = {(9, 10, 11): "peephole weights", (16, 17): "a projection", (20, 21, 22, 23): "layer normalization"}
TANH = 4                              # ActivationFunctionType.TANH


def convert_unidirectional_sequence_lstm(ctx: ConversionContext, rec: OpRec) -> Lowered:
    expect_inputs(ctx, rec, 24, 24)
    options = op_options(ctx, rec, required=True)
    for positions, what in ABSENT_PARTS.items():
        if any(input_index(ctx, rec, p, required=False) >= 0 for p in positions):
            raise ctx.fail(f"has {what}, which nnscons does not support (plain LSTM only)")
    if any(input_index(ctx, rec, p, required=False) < 0 for p in INPUT_WEIGHTS[:1] + RECURRENT_WEIGHTS[:1]):
        raise ctx.fail("has no input gate (CIFG), which nnscons does not support (plain LSTM only)")
    if int(options.get("FusedActivationFunction", 0)) != TANH:
        raise ctx.fail("the cell activation must be TANH")
    x = input_index(ctx, rec, 0)
    time_major = bool(options.get("TimeMajor", False))
    outer, inner, features = shape_of_rank(ctx, x, 3, "the input sequence")
    batch, steps = (inner, outer) if time_major else (outer, inner)
    weights = [input_index(ctx, rec, p) for p in INPUT_WEIGHTS + RECURRENT_WEIGHTS]
    biases = [input_index(ctx, rec, p) for p in BIASES]
    hidden = _units(ctx, weights, biases, features)
    for w in weights + biases:
        constant_weights(ctx, w)
    h_state, c_state = input_index(ctx, rec, HIDDEN_STATE), input_index(ctx, rec, CELL_STATE)
    for index, what in ((h_state, "hidden state"), (c_state, "cell state")):
        if not ctx.model.tensors[index].is_variable or shape_of(ctx, index) != [batch, hidden]:
            raise ctx.fail(f"the {what} must be a variable tensor of shape [{batch}, {hidden}]")
    out = ctx.model.tensors[rec.outputs[0]]
    expected = [steps, batch, hidden] if time_major else [batch, steps, hidden]
    if list(out.shape) != expected:
        raise ctx.fail(f"output shape {out.shape} does not match the computed shape {expected}")
    clip = float(options.get("CellClip", 0.0))
    if not clip >= 0.0 or clip == float("inf"):
        raise ctx.fail(f"cell clip {clip} is not a finite value >= 0")
    attrs: dict[str, Any] = {"time_major": time_major, "cell_clip": clip,
                             "hidden_state": _state_quant(ctx, h_state), "cell_state": _state_quant(ctx, c_state)}
    return Lowered([x] + weights + biases, attrs)


def _units(ctx: ConversionContext, weights: list[int], biases: list[int], features: int) -> int:
    """H, checked against every weight and bias shape."""
    hidden = shape_of_rank(ctx, weights[0], 2, "the input weights")[0]
    for position, w in enumerate(weights):
        expected = [hidden, features] if position < 4 else [hidden, hidden]
        if shape_of(ctx, w) != expected:
            raise ctx.fail(f"weights shape {shape_of(ctx, w)}, expected {expected}")
    for b in biases:
        if shape_of(ctx, b) != [hidden]:
            raise ctx.fail(f"bias shape {shape_of(ctx, b)}, expected [{hidden}]")
    return hidden


def _state_quant(ctx: ConversionContext, index: int) -> Optional[dict[str, Any]]:
    """A state tensor's per-tensor scale and zero point (None for a float model)."""
    q = ctx.model.tensors[index].quant
    if q is None or not q.scale:
        return None
    if len(q.scale) != 1:
        raise NnsconsError(ctx.path, f"operator #{ctx.op.index if ctx.op else '?'}: the LSTM states must be "
                                     f"quantized per tensor")
    return {"scale": float(q.scale[0]), "zero_point": int(q.zero_point[0]) if q.zero_point else 0}


def convert_svdf(ctx: ConversionContext, rec: OpRec) -> Lowered:
    expect_inputs(ctx, rec, 5, 5)
    options = op_options(ctx, rec, required=True)
    x, wf, wt = input_index(ctx, rec, 0), input_index(ctx, rec, 1), input_index(ctx, rec, 2)
    bias, state = input_index(ctx, rec, 3, required=False), input_index(ctx, rec, 4)
    batch, features = shape_of_rank(ctx, x, 2, "the input")
    filters = shape_of_rank(ctx, wf, 2, "the feature weights")[0]
    memory = shape_of_rank(ctx, wt, 2, "the time weights")[1]
    rank = int(options.get("Rank", 0))
    if shape_of(ctx, wf) != [filters, features] or shape_of(ctx, wt) != [filters, memory]:
        raise ctx.fail(f"weights shapes {shape_of(ctx, wf)} and {shape_of(ctx, wt)} do not fit {features} inputs")
    if rank <= 0 or filters % rank:
        raise ctx.fail(f"rank {rank} does not divide the {filters} filters")
    for w in [wf, wt] + ([bias] if bias >= 0 else []):
        constant_weights(ctx, w)
    if bias >= 0 and shape_of(ctx, bias) != [filters // rank]:
        raise ctx.fail(f"bias shape {shape_of(ctx, bias)}, expected [{filters // rank}]")
    if not ctx.model.tensors[state].is_variable or shape_of(ctx, state) != [batch, filters * memory]:
        raise ctx.fail(f"the state must be a variable tensor of shape [{batch}, {filters * memory}]")
    quant = _state_quant(ctx, state)
    if quant is not None:
        quant["dtype"] = "int16" if ctx.model.tensors[state].type == 7 else "int8"
    return Lowered([x, wf, wt] + ([bias] if bias >= 0 else []),
                   {"rank": rank, "memory": memory, "state": quant, "activation": activation(ctx, options)})
