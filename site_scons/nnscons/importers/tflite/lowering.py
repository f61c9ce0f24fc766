"""What every TFLite operator handler uses: the :class:`Lowered` result it returns, and the checks of its
inputs, options and output shape (each raises through the context, naming the operator).

A handler checks one operator and returns the IR op's inputs (TFLite tensor indices) and attributes; the driver
(:mod:`.convert`) turns the indices into IR tensors and checks the types.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from .context import ConversionContext
from .records import (ACTIVATION_NAMES, ACTIVATIONS, DTYPES, MAX_ELEMENTS, PADDING_SAME, PADDING_VALID, TYPE_NAMES,
                      OpRec)
from .tensors import constant, static_shape


@dataclass
class Lowered:
    """What an operator handler returns: the IR op's inputs (TFLite tensor indices) and attributes."""

    inputs: list[int]
    attrs: dict[str, Any] = field(default_factory=dict)


# An operator handler: checks one TFLite operator and says what IR op it becomes (see ops.OP_HANDLERS)
Handler = Callable[[ConversionContext, OpRec], Lowered]


def input_index(ctx: ConversionContext, rec: OpRec, position: int, required: bool = True) -> int:
    """TFLite tensor index of input ``position``; -1 if the optional input is absent."""
    index = rec.inputs[position] if position < len(rec.inputs) else -1
    if index < 0 and required:
        raise ctx.fail(f"input {position} is missing")
    return index


def expect_inputs(ctx: ConversionContext, rec: OpRec, low: int, high: int) -> None:
    if not low <= len(rec.inputs) <= high:
        expected = str(low) if low == high else f"{low} to {high}"
        raise ctx.fail(f"expected {expected} inputs, found {len(rec.inputs)}")


def shape_of(ctx: ConversionContext, index: int) -> list[int]:
    return static_shape(ctx, ctx.model.tensors[index])


def out_shape(ctx: ConversionContext, rec: OpRec) -> list[int]:
    return static_shape(ctx, ctx.model.tensors[rec.outputs[0]])


def expect_shape(ctx: ConversionContext, rec: OpRec, expected: list[int]) -> None:
    actual = out_shape(ctx, rec)
    if list(actual) != list(expected):
        raise ctx.fail(f"output shape {actual} does not match the computed shape {list(expected)}")


def shape_of_rank(ctx: ConversionContext, index: int, rank: int, what: str) -> list[int]:
    shape = shape_of(ctx, index)
    if len(shape) != rank:
        raise ctx.fail(f"{what} must be {rank}-D, found shape {shape}")
    return shape


def positive(ctx: ConversionContext, value: int, what: str) -> int:
    if value <= 0:
        raise ctx.fail(f"{what} must be positive, found {value}")
    return int(value)


def constant_ints(ctx: ConversionContext, index: int, what: str) -> np.ndarray:
    """The values of a constant integer input that becomes an attribute (shape, paddings, axes)."""
    rec = ctx.model.tensors[index]
    if rec.data is None:
        raise ctx.fail(f"{what} must be a constant tensor")
    if rec.type not in (2, 4):
        raise ctx.fail(f"{what} must be INT32 or INT64, found {TYPE_NAMES.get(rec.type, rec.type)}")
    return constant(ctx, rec, static_shape(ctx, rec), DTYPES[rec.type][1]).astype(np.int64)


def constant_weights(ctx: ConversionContext, w: int) -> None:
    if ctx.model.tensors[w].data is None and w not in ctx.folded:
        raise ctx.fail("weights computed at run time are not supported (the filter must be a constant)")


def op_options(ctx: ConversionContext, rec: OpRec, required: bool = False) -> dict[str, Any]:
    if rec.options is None:
        if required:
            raise ctx.fail("has no options")
        return {}
    return rec.options


def activation(ctx: ConversionContext, options: dict[str, Any]) -> str:
    """The IR name of the operator's fused activation."""
    code = int(options.get("FusedActivationFunction", 0))
    if code not in ACTIVATIONS:
        name = ACTIVATION_NAMES.get(code, f"code {code}")
        raise ctx.fail(f"fused activation {name} is not supported (supported: NONE, RELU, RELU6, RELU_N1_TO_1)")
    return ACTIVATIONS[code]


def unary(ctx: ConversionContext, rec: OpRec, attrs: Optional[dict[str, Any]] = None) -> Lowered:
    """An operator with one input and an output of the same shape."""
    expect_inputs(ctx, rec, 1, 1)
    x = input_index(ctx, rec, 0)
    expect_shape(ctx, rec, shape_of(ctx, x))
    return Lowered([x], attrs or {})


def window_geometry(ctx: ConversionContext, options: dict[str, Any], in_hw: list[int], kernel: list[int],
                    dilation: list[int]) -> tuple[list[int], list[int], list[int]]:
    """(stride, pad [top, bottom, left, right], output [h, w]) of a sliding-window operator."""
    stride = [positive(ctx, options["StrideH"], "stride"), positive(ctx, options["StrideW"], "stride")]
    padding = int(options["Padding"])
    if padding not in (PADDING_SAME, PADDING_VALID):
        raise ctx.fail(f"unknown padding type {padding}")
    pad, out = [], []
    for size, k, s, d in zip(in_hw, kernel, stride, dilation):
        before, after, n = _window_padding(padding == PADDING_SAME, size, k, s, d)
        if n <= 0:
            raise ctx.fail(f"the window ({kernel} dilated {dilation}) is larger than the input {in_hw}")
        pad += [before, after]
        out.append(n)
    if math.prod(d + pad[2 * i] + pad[2 * i + 1] for i, d in enumerate(in_hw)) > MAX_ELEMENTS:
        raise ctx.fail(f"the padding {pad} is implausibly large")
    return stride, pad, out


def _window_padding(same: bool, size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int, int]:
    """(pad before, pad after, output size) along one axis, as TFLite computes them."""
    effective = (kernel - 1) * dilation + 1
    if not same:  # VALID: only windows that lie entirely inside the input
        return 0, 0, (size - effective) // stride + 1 if size >= effective else 0
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2, out
