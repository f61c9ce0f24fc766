"""TFLite handlers for the operators that move or reduce data: RESHAPE, SQUEEZE, PAD, PADV2, MEAN, CONCATENATION.

Their constant "shape" inputs (RESHAPE's new shape, PAD's paddings, MEAN's axes) become IR attributes instead of
tensors.
"""
from __future__ import annotations

import math

from .context import ConversionContext
from .lowering import (Lowered, activation, constant_ints, expect_inputs, expect_shape, input_index, op_options,
                       out_shape, shape_of)
from .records import DTYPES, OpRec
from .tensors import constant, static_shape, tensor_quant


def convert_reshape(ctx: ConversionContext, rec: OpRec) -> Lowered:
    # The new shape (2nd input or options) may hold a -1; the output tensor's shape is the resolved one.
    expect_inputs(ctx, rec, 1, 2)
    return _reshape(ctx, rec)


def convert_squeeze(ctx: ConversionContext, rec: OpRec) -> Lowered:
    expect_inputs(ctx, rec, 1, 1)
    return _reshape(ctx, rec)


def _reshape(ctx: ConversionContext, rec: OpRec) -> Lowered:
    x = input_index(ctx, rec, 0)
    out = out_shape(ctx, rec)
    if math.prod(out) != math.prod(shape_of(ctx, x)):
        raise ctx.fail(f"cannot reshape {shape_of(ctx, x)} to {out}")
    return Lowered([x], {"shape": out})


def convert_pad(ctx: ConversionContext, rec: OpRec) -> Lowered:
    expect_inputs(ctx, rec, 2, 2)
    return _pad(ctx, rec, value=0.0)  # a quantized PAD fills with the zero point, i.e. real 0


def convert_padv2(ctx: ConversionContext, rec: OpRec) -> Lowered:
    expect_inputs(ctx, rec, 2, 3)
    fill = input_index(ctx, rec, 2, required=False)
    return _pad(ctx, rec, value=_scalar_value(ctx, fill) if fill >= 0 else 0.0)


def _pad(ctx: ConversionContext, rec: OpRec, value: float) -> Lowered:
    x = input_index(ctx, rec, 0)
    shape = shape_of(ctx, x)
    paddings = constant_ints(ctx, input_index(ctx, rec, 1), "the paddings")
    if paddings.shape != (len(shape), 2) or (paddings < 0).any():
        raise ctx.fail(f"paddings {paddings.tolist()} do not fit an input of shape {shape}")
    pads = [[int(before), int(after)] for before, after in paddings]
    expect_shape(ctx, rec, [d + before + after for d, (before, after) in zip(shape, pads)])
    return Lowered([x], {"pads": pads, "value": value})


def _scalar_value(ctx: ConversionContext, index: int) -> float:
    """The real value of a one-element constant (PADV2's fill value)."""
    rec = ctx.model.tensors[index]
    if rec.data is None or rec.type not in DTYPES:
        raise ctx.fail("the pad value must be a constant")
    shape = static_shape(ctx, rec)
    data = constant(ctx, rec, shape, DTYPES[rec.type][1]).reshape(-1)
    if data.size != 1:
        raise ctx.fail(f"the pad value must hold one element, found shape {shape}")
    quant = tensor_quant(ctx, rec, shape, DTYPES[rec.type][0], True)
    if quant is None:
        return float(data[0])
    return float(quant.scale[0] * (int(data[0]) - quant.zero_point[0]))


def convert_mean(ctx: ConversionContext, rec: OpRec) -> Lowered:
    expect_inputs(ctx, rec, 2, 2)
    x = input_index(ctx, rec, 0)
    shape = shape_of(ctx, x)
    raw_axes = constant_ints(ctx, input_index(ctx, rec, 1), "the axes").reshape(-1).tolist()
    if any(not -len(shape) <= a < len(shape) for a in raw_axes):
        raise ctx.fail(f"axes {raw_axes} do not fit an input of shape {shape}")
    axes = sorted({a % len(shape) for a in raw_axes})
    keepdims = bool(op_options(ctx, rec).get("KeepDims", False))
    if keepdims:
        expected = [1 if i in axes else d for i, d in enumerate(shape)]
    else:
        expected = [d for i, d in enumerate(shape) if i not in axes]
    expect_shape(ctx, rec, expected)
    return Lowered([x], {"axes": axes, "keepdims": keepdims})


def convert_concatenation(ctx: ConversionContext, rec: OpRec) -> Lowered:
    if not rec.inputs:
        raise ctx.fail("has no inputs")
    options = op_options(ctx, rec, required=True)
    if activation(ctx, options) != "none":
        raise ctx.fail("a fused activation on CONCATENATION is not supported")
    inputs = [input_index(ctx, rec, i) for i in range(len(rec.inputs))]
    shapes = [shape_of(ctx, t) for t in inputs]
    rank = len(shapes[0])
    axis = int(options["Axis"])
    if not -rank <= axis < rank:
        raise ctx.fail(f"axis {axis} does not fit rank {rank}")
    axis %= rank
    for s in shapes:
        if len(s) != rank or s[:axis] + s[axis + 1:] != shapes[0][:axis] + shapes[0][axis + 1:]:
            raise ctx.fail(f"input shapes {shapes} cannot be joined along axis {axis}")
    expect_shape(ctx, rec, shapes[0][:axis] + [sum(s[axis] for s in shapes)] + shapes[0][axis + 1:])
    return Lowered(inputs, {"axis": axis})
