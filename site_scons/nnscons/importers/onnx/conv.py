"""ONNX ``Conv`` -> IR ``conv2d`` / ``depthwise_conv2d``, and the 2-D window geometry convs and pools share.

The weights go from OIHW to the IR's OHWI (conv) or 1HWC (depthwise); per-channel constants, BatchNormalization and
an activation that follow are fused first (:mod:`.fusion`). :func:`window` turns ONNX's strides, dilations, pads and
auto_pad into the IR's, checked against the inferred output size.
"""
from __future__ import annotations

from typing import Any, Sequence

from ... import ir
from .context import Context, const_of, fail, in_layout, shape_of
from .decode import Node
from .fusion import Layer, emit_layer, fuse_followers
from .layout import NHWC


def convert_conv(ctx: Context, pos: int, node: Node) -> None:
    x = node.inputs[0]
    in_shape = shape_of(ctx, node, x)
    weight = const_of(ctx, node, node.input(1), "weights")
    if len(in_shape) != 4 or weight.data.ndim != 4:
        raise fail(ctx, node, "only 2-D convolutions (4-D NCHW input) are supported")
    bias = const_of(ctx, node, node.input(2), "bias") if node.input(2) else None
    group = int(node.attrs.get("group", 1))
    c_in = in_shape[1]
    c_out, c_per_group, kh, kw = weight.data.shape
    if group == 1 and c_per_group == c_in:
        kind = "conv2d"
    elif group == c_in and c_per_group == 1 and c_out % c_in == 0:
        kind = "depthwise_conv2d"
    else:
        raise fail(ctx, node, f"grouped convolution (group={group}, {c_in} input channels) is not supported: "
                              "only group=1 and depthwise (group = input channels) map to CMSIS-NN")
    x_ir = in_layout(ctx, node, x, NHWC)
    stride, dilation, pad = window(ctx, node, in_shape, (kh, kw))
    layer = Layer(kind, weight, node.input(1), bias, node.outputs[0], [node], bias_label=node.input(2))
    fuse_followers(ctx, layer, channel_axis=1)
    attrs: dict[str, Any] = {"stride": stride, "dilation": dilation, "pad": pad}
    if kind == "conv2d":
        ir_weight = layer.weight.transposed((0, 2, 3, 1))       # OIHW -> OHWI
    else:
        ir_weight = layer.weight.transposed((1, 2, 3, 0))       # [C*M, 1, KH, KW] -> [1, KH, KW, C*M]
        attrs["multiplier"] = c_out // c_in
    emit_layer(ctx, layer, x_ir, ir_weight, attrs, NHWC)


def window(ctx: Context, node: Node, in_shape: Sequence[int], kernel: Sequence[int],
           allow_dilation: bool = True) -> tuple[list[int], list[int], list[int]]:
    """(stride, dilation, pad [top, bottom, left, right]) of a conv or pool over an NCHW input, checked
    against the inferred output size."""
    a = node.attrs
    stride = [int(s) for s in a.get("strides", [1, 1])]
    dilation = [int(d) for d in a.get("dilations", [1, 1])]
    if len(stride) != 2 or len(dilation) != 2 or len(kernel) != 2:
        raise fail(ctx, node, "only 2-D windows are supported")
    if not allow_dilation and dilation != [1, 1]:
        raise fail(ctx, node, "dilated pooling is not supported")
    if min(stride) < 1 or min(dilation) < 1:
        raise fail(ctx, node, "strides and dilations must be positive")
    spans = [(k - 1) * d + 1 for k, d in zip(kernel, dilation)]
    auto_pad = a.get("auto_pad", "NOTSET")
    if auto_pad == "NOTSET":
        pads = [int(p) for p in a.get("pads", [0, 0, 0, 0])]
        if len(pads) != 4 or min(pads) < 0:
            raise fail(ctx, node, f"pads {pads} are not 4 non-negative values")
        top, left, bottom, right = pads
    elif auto_pad == "VALID":
        top = left = bottom = right = 0
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        (top, bottom), (left, right) = (
            same_pads(size, s, span, auto_pad) for size, s, span in zip(in_shape[2:], stride, spans))
    else:
        raise fail(ctx, node, f"unknown auto_pad '{ir.c_comment(auto_pad)}'")
    floor_size = [(size + p0 + p1 - span) // s + 1
                  for size, p0, p1, span, s in zip(in_shape[2:], (top, left), (bottom, right), spans, stride)]
    inferred = shape_of(ctx, node, node.outputs[0])[2:]
    if floor_size != list(inferred):
        if a.get("ceil_mode", 0):
            raise fail(ctx, node, "ceil_mode=1 changes the output size here; not supported")
        raise fail(ctx, node, f"output size {inferred} does not match the window geometry {floor_size}")
    return stride, dilation, [top, bottom, left, right]


def same_pads(size: int, stride: int, span: int, mode: str) -> tuple[int, int]:
    """SAME padding: the output has ceil(size / stride) elements; the odd pixel goes at the end (UPPER) or at
    the start (LOWER)."""
    total = max((-(-size // stride) - 1) * stride + span - size, 0)
    small, large = total // 2, total - total // 2
    return (small, large) if mode == "SAME_UPPER" else (large, small)
