"""ONNX pooling and reductions -> IR ``max_pool2d`` / ``avg_pool2d`` / ``mean``.

``GlobalAveragePool`` becomes ``avg_pool2d`` with the whole H x W as kernel (CMSIS-NN's average pooling runs it
directly), ``GlobalMaxPool`` likewise ``max_pool2d``. ``ReduceMean`` keeps its input's layout and numbers the
reduced axes as the IR stores them.
"""
from __future__ import annotations

from typing import Sequence

from .context import Context, const_array_of, emit_from, fail, in_layout, set_value, shape_of, value_of
from .conv import window
from .decode import Node
from .layout import NHWC, Value, ir_shape


def convert_pool(ctx: Context, pos: int, node: Node) -> None:
    x = node.inputs[0]
    in_shape = shape_of(ctx, node, x)
    if len(in_shape) != 4:
        raise fail(ctx, node, "only 2-D pooling (4-D NCHW input) is supported")
    if len(node.outputs) > 1 and node.outputs[1]:
        raise fail(ctx, node, "MaxPool's Indices output is not supported")
    kernel = [int(k) for k in node.attrs.get("kernel_shape", [])]
    stride, _, pad = window(ctx, node, in_shape, kernel, allow_dilation=False)
    is_max = node.op_type == "MaxPool"
    if not is_max and node.attrs.get("count_include_pad", 0) and any(pad):
        raise fail(ctx, node, "AveragePool with count_include_pad=1 and non-zero pads is not supported "
                              "(CMSIS-NN averages over the input elements only)")
    if pad[0] >= kernel[0] or pad[1] >= kernel[0] or pad[2] >= kernel[1] or pad[3] >= kernel[1]:
        raise fail(ctx, node, "pads must be smaller than the kernel")
    emit_pool(ctx, node, x, "max_pool2d" if is_max else "avg_pool2d", kernel, stride, pad)


def convert_global_pool(ctx: Context, pos: int, node: Node) -> None:
    x = node.inputs[0]
    in_shape = shape_of(ctx, node, x)
    if len(in_shape) != 4:
        raise fail(ctx, node, "only 4-D NCHW input is supported")
    kind = "max_pool2d" if node.op_type == "GlobalMaxPool" else "avg_pool2d"
    emit_pool(ctx, node, x, kind, in_shape[2:], [1, 1], [0, 0, 0, 0])


def emit_pool(ctx: Context, node: Node, x: str, kind: str, kernel: Sequence[int], stride: Sequence[int],
              pad: Sequence[int]) -> None:
    x_ir = in_layout(ctx, node, x, NHWC)
    out = node.outputs[0]
    attrs = {"kernel": [int(k) for k in kernel], "stride": [int(s) for s in stride],
             "pad": [int(p) for p in pad], "activation": "none"}
    inherit = x_ir if kind == "max_pool2d" else None
    ir_out = emit_from(ctx, kind, [x_ir], out, ir_shape(shape_of(ctx, node, out), NHWC), attrs, [node], inherit)
    set_value(ctx, out, Value(ir_out, NHWC))


def convert_reduce_mean(ctx: Context, pos: int, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    shape = shape_of(ctx, node, x)
    rank = len(shape)
    if ctx.prepared.opset >= 18:
        axes = ([int(a) for a in const_array_of(ctx, node, node.input(1), "axes").ravel()]
                if node.input(1) else [])
        if not axes and node.attrs.get("noop_with_empty_axes", 0):
            raise fail(ctx, node, "ReduceMean with no axes and noop_with_empty_axes=1 is not supported")
    else:
        axes = [int(a) for a in node.attrs.get("axes", [])]
    axes = sorted({a % rank for a in axes}) if axes else list(range(rank))
    keepdims = bool(node.attrs.get("keepdims", 1))
    value = value_of(ctx, node, x)
    x_ir = in_layout(ctx, node, x, value.perm)
    if keepdims:
        out_perm = value.perm
    else:   # the kept axes, in the order the IR stores them, numbered as the ONNX output's axes
        kept = [a for a in value.perm if a not in axes]
        out_perm = tuple(sorted(kept).index(a) for a in kept)
    attrs = {"axes": sorted(value.perm.index(a) for a in axes), "keepdims": keepdims}
    ir_out = emit_from(ctx, "mean", [x_ir], out, ir_shape(shape_of(ctx, node, out), out_perm), attrs, [node])
    set_value(ctx, out, Value(ir_out, out_perm))
