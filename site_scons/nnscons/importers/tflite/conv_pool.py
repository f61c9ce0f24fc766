"""TFLite handlers for the sliding-window operators: CONV_2D, DEPTHWISE_CONV_2D, AVERAGE_POOL_2D, MAX_POOL_2D.

TFLite already uses the IR's layouts (NHWC activations, OHWI conv filters, 1HWC depthwise filters), so no data is
reordered; SAME padding becomes explicit ``pad [top, bottom, left, right]`` (:func:`.lowering.window_geometry`).
"""
from __future__ import annotations

from typing import Any

from .context import ConversionContext
from .lowering import (Lowered, activation, constant_weights, expect_inputs, expect_shape, input_index, op_options,
                       positive, shape_of, shape_of_rank, window_geometry)
from .records import OpRec


def convert_conv_2d(ctx: ConversionContext, rec: OpRec) -> Lowered:
    return _convolution(ctx, rec, depthwise=False)


def convert_depthwise_conv_2d(ctx: ConversionContext, rec: OpRec) -> Lowered:
    return _convolution(ctx, rec, depthwise=True)


def _convolution(ctx: ConversionContext, rec: OpRec, depthwise: bool) -> Lowered:
    expect_inputs(ctx, rec, 2, 3)
    options = op_options(ctx, rec, required=True)
    x, w, b = input_index(ctx, rec, 0), input_index(ctx, rec, 1), input_index(ctx, rec, 2, required=False)
    n, h, wd, c = shape_of_rank(ctx, x, 4, "the input")
    cout, kh, kw, cin = shape_of_rank(ctx, w, 4, "the filter")
    constant_weights(ctx, w)
    if depthwise:
        # 1HWC filter: output channel c*multiplier + m reads input channel c
        if cout != 1 or cin % c != 0:
            raise ctx.fail(f"filter shape {[cout, kh, kw, cin]} does not fit {c} input channels")
        cout, multiplier = cin, cin // c
    elif cin != c:
        raise ctx.fail(f"grouped convolution ({c} input channels, filter for {cin}) is not supported")
    if b >= 0 and shape_of(ctx, b) != [cout]:
        raise ctx.fail(f"bias shape {shape_of(ctx, b)} does not fit {cout} output channels")
    dilation = [positive(ctx, options["DilationHFactor"], "dilation"),
                positive(ctx, options["DilationWFactor"], "dilation")]
    stride, pad, (oh, ow) = window_geometry(ctx, options, [h, wd], [kh, kw], dilation)
    expect_shape(ctx, rec, [n, oh, ow, cout])
    attrs: dict[str, Any] = {"stride": stride, "dilation": dilation, "pad": pad,
                             "activation": activation(ctx, options)}
    if depthwise:
        attrs["multiplier"] = multiplier
    return Lowered([x, w] + ([b] if b >= 0 else []), attrs)


def convert_average_pool_2d(ctx: ConversionContext, rec: OpRec) -> Lowered:
    return _pooling(ctx, rec)


def convert_max_pool_2d(ctx: ConversionContext, rec: OpRec) -> Lowered:
    return _pooling(ctx, rec)


def _pooling(ctx: ConversionContext, rec: OpRec) -> Lowered:
    expect_inputs(ctx, rec, 1, 1)
    options = op_options(ctx, rec, required=True)
    x = input_index(ctx, rec, 0)
    n, h, w, c = shape_of_rank(ctx, x, 4, "the input")
    kernel = [positive(ctx, options["FilterHeight"], "filter height"),
              positive(ctx, options["FilterWidth"], "filter width")]
    stride, pad, (oh, ow) = window_geometry(ctx, options, [h, w], kernel, [1, 1])
    expect_shape(ctx, rec, [n, oh, ow, c])
    return Lowered([x], {"kernel": kernel, "stride": stride, "pad": pad, "activation": activation(ctx, options)})
