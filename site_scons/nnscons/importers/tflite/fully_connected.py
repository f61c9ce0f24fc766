"""TFLite handler for FULLY_CONNECTED (weights ``[out, in]`` as in the IR; the input is read as rows of ``in``)."""
from __future__ import annotations

import math

from .context import ConversionContext
from .lowering import (Lowered, activation, constant_weights, expect_inputs, expect_shape, input_index, op_options,
                       shape_of, shape_of_rank)
from .records import OpRec


def convert_fully_connected(ctx: ConversionContext, rec: OpRec) -> Lowered:
    expect_inputs(ctx, rec, 2, 3)
    options = op_options(ctx, rec)
    x, w, b = input_index(ctx, rec, 0), input_index(ctx, rec, 1), input_index(ctx, rec, 2, required=False)
    units, depth = shape_of_rank(ctx, w, 2, "the weights")
    constant_weights(ctx, w)
    if int(options.get("WeightsFormat", 0)) != 0:
        raise ctx.fail("shuffled weights format is not supported")
    numel = math.prod(shape_of(ctx, x))
    if depth <= 0 or numel % depth:
        raise ctx.fail(f"input shape {shape_of(ctx, x)} cannot be read as rows of {depth}")
    if b >= 0 and shape_of(ctx, b) != [units]:
        raise ctx.fail(f"bias shape {shape_of(ctx, b)} does not fit {units} outputs")
    # keep_num_dims keeps the input's leading axes; otherwise the output is [rows, units]
    keep = bool(options.get("KeepNumDims", False))
    expect_shape(ctx, rec, shape_of(ctx, x)[:-1] + [units] if keep else [numel // depth, units])
    return Lowered([x, w] + ([b] if b >= 0 else []), {"activation": activation(ctx, options)})
