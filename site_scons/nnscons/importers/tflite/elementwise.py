"""TFLite handlers for the element-wise operators: ADD, SUB, MUL (broadcasting, with a fused activation) and the
activations SOFTMAX, LOGISTIC, TANH, RELU, RELU6, RELU_N1_TO_1, RELU_0_TO_1, LEAKY_RELU."""
from __future__ import annotations

import numpy as np

from .context import ConversionContext
from .lowering import Lowered, activation, expect_inputs, expect_shape, input_index, op_options, shape_of, unary
from .records import OpRec


def convert_add(ctx: ConversionContext, rec: OpRec) -> Lowered:
    return _binary(ctx, rec)


def convert_sub(ctx: ConversionContext, rec: OpRec) -> Lowered:
    return _binary(ctx, rec)


def convert_mul(ctx: ConversionContext, rec: OpRec) -> Lowered:
    return _binary(ctx, rec)


def _binary(ctx: ConversionContext, rec: OpRec) -> Lowered:
    expect_inputs(ctx, rec, 2, 2)
    a, b = input_index(ctx, rec, 0), input_index(ctx, rec, 1)
    try:
        broadcast = list(np.broadcast_shapes(tuple(shape_of(ctx, a)), tuple(shape_of(ctx, b))))
    except ValueError:
        raise ctx.fail(f"input shapes {shape_of(ctx, a)} and {shape_of(ctx, b)} do not broadcast") from None
    expect_shape(ctx, rec, broadcast)
    return Lowered([a, b], {"activation": activation(ctx, op_options(ctx, rec))})


def convert_softmax(ctx: ConversionContext, rec: OpRec) -> Lowered:
    return unary(ctx, rec, {"beta": float(op_options(ctx, rec, required=True)["Beta"])})


def convert_logistic(ctx: ConversionContext, rec: OpRec) -> Lowered:
    return unary(ctx, rec)


def convert_tanh(ctx: ConversionContext, rec: OpRec) -> Lowered:
    return unary(ctx, rec)


def convert_relu(ctx: ConversionContext, rec: OpRec) -> Lowered:
    return unary(ctx, rec)


def convert_relu6(ctx: ConversionContext, rec: OpRec) -> Lowered:
    return unary(ctx, rec)


def convert_relu_n1_to_1(ctx: ConversionContext, rec: OpRec) -> Lowered:
    return unary(ctx, rec, {"min": -1.0, "max": 1.0})


def convert_relu_0_to_1(ctx: ConversionContext, rec: OpRec) -> Lowered:
    return unary(ctx, rec, {"min": 0.0, "max": 1.0})


def convert_leaky_relu(ctx: ConversionContext, rec: OpRec) -> Lowered:
    return unary(ctx, rec, {"alpha": float(op_options(ctx, rec, required=True)["Alpha"])})
