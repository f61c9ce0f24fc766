"""ONNX elementwise ops and activations -> IR ``add``/``sub``/``mul``, activations, ``softmax``.

Binary ops broadcast constants to the activation's rank and layout; ``Div`` by a constant becomes ``mul`` by its
reciprocal. A ``BatchNormalization`` that follows no conv/FC becomes ``mul`` + ``add`` with per-channel constants.
Unary activations work in any layout, so a (C, H, W)-order flattened tensor may pass through them.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .constants import Const
from .context import (Context, const_operand, emit_from, fail, in_layout, reject_flattened, set_value, shape_of,
                      value_of)
from .decode import Node
from .fusion import batchnorm_affine, clip_activation, clip_bounds, take_activation
from .layout import Value, ir_shape

_BINARY_IR_TYPES = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "mul"}


def convert_binary(ctx: Context, pos: int, node: Node) -> None:
    """Add, Sub, Mul, Div (by a constant); a Relu/Clip that alone follows becomes the fused activation."""
    out = node.outputs[0]
    out_shape = shape_of(ctx, node, out)
    rank = len(out_shape)
    operands = node.inputs[:2]
    if node.op_type == "Div":
        if operands[1] not in ctx.consts:
            raise fail(ctx, node, "Div by a non-constant is not supported")
    activations = [n for n in operands if n not in ctx.consts]
    if not activations:
        raise fail(ctx, node, "both operands are constants")
    same_rank = [n for n in activations if len(shape_of(ctx, node, n)) == rank]
    if len(same_rank) != len(activations):
        raise fail(ctx, node, "broadcasting an activation of lower rank is not supported")
    perm = value_of(ctx, node, same_rank[0]).perm
    ir_inputs = []
    for name in operands:
        if name in ctx.consts:
            const = ctx.consts[name]
            if node.op_type == "Div":
                if const.quantized or np.any(const.data == 0):
                    raise fail(ctx, node, "Div needs a non-zero float constant divisor")
                const = Const((1.0 / const.data.astype(np.float64)).astype(np.float32))
            ir_inputs.append(const_operand(ctx, name, const, rank, perm))
        else:
            ir_inputs.append(in_layout(ctx, node, name, perm))
    activation, final_out, fused = take_activation(ctx, out)
    ir_out = emit_from(ctx, _BINARY_IR_TYPES[node.op_type], ir_inputs, final_out, ir_shape(out_shape, perm),
                       {"activation": activation}, [node] + fused)
    set_value(ctx, final_out, Value(ir_out, perm))


def convert_unary(ctx: Context, pos: int, node: Node) -> None:
    """Relu, Clip, LeakyRelu, Sigmoid, Tanh."""
    value = value_of(ctx, node, node.inputs[0])
    attrs: dict[str, Any] = {}
    if node.op_type == "Relu":
        ir_type = "relu"
    elif node.op_type == "Clip":
        low, high = clip_bounds(ctx, node)
        ir_type = {"relu": "relu", "relu6": "relu6"}.get(clip_activation(low, high) or "", "clip")
        if ir_type == "clip":
            attrs = {"min": low, "max": high}
    elif node.op_type == "LeakyRelu":
        ir_type, attrs = "leaky_relu", {"alpha": float(node.attrs.get("alpha", 0.01))}
    elif node.op_type == "Sigmoid":
        ir_type = "logistic"
    else:
        ir_type = "tanh"
    out = node.outputs[0]
    ir_out = emit_from(ctx, ir_type, [value.ir], out, ctx.tensors[value.ir].shape, attrs, [node])
    set_value(ctx, out, Value(ir_out, value.perm, value.order))   # elementwise: any layout is fine


def convert_batchnorm(ctx: Context, pos: int, node: Node) -> None:
    """A BatchNormalization that follows no conv/FC: ``x * scale + shift`` as IR mul and add."""
    x, out = node.inputs[0], node.outputs[0]
    shape = shape_of(ctx, node, x)
    if len(shape) < 2:
        raise fail(ctx, node, "BatchNormalization needs a channel axis")
    scale, shift = batchnorm_affine(ctx, node, shape[1])
    value = value_of(ctx, node, x)
    x_ir = in_layout(ctx, node, x, value.perm)
    channel_shape = [1] * len(shape)
    channel_shape[1] = shape[1]
    out_shape = ir_shape(shape, value.perm)
    scale_ir = const_operand(ctx, f"{out}_scale", Const(scale.reshape(channel_shape).astype(np.float32)),
                             len(shape), value.perm)
    shift_ir = const_operand(ctx, f"{out}_shift", Const(shift.reshape(channel_shape).astype(np.float32)),
                             len(shape), value.perm)
    scaled = emit_from(ctx, "mul", [x_ir, scale_ir], f"{out}_scaled", out_shape, {"activation": "none"}, [node])
    ir_out = emit_from(ctx, "add", [scaled, shift_ir], out, out_shape, {"activation": "none"}, [node])
    set_value(ctx, out, Value(ir_out, value.perm))


def convert_softmax(ctx: Context, pos: int, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    shape = shape_of(ctx, node, x)
    rank = len(shape)
    value = value_of(ctx, node, x)
    reject_flattened(ctx, node, x, value)
    opset = ctx.prepared.opset
    axis = int(node.attrs.get("axis", 1 if opset < 13 else -1)) % max(rank, 1)
    # before opset 13 the input is coerced to 2-D [prod(dims[:axis]), prod(dims[axis:])]
    axes = [axis] if opset >= 13 else list(range(axis, rank))
    ir_axes = {value.perm.index(a) for a in axes if shape[a] > 1}
    last = value.perm[rank - 1]
    if not ir_axes <= {rank - 1} or (shape[last] > 1 and last not in axes):
        raise fail(ctx, node, "softmax over axes other than the last one in NHWC layout is not supported "
                              "(layout change not supported)")
    ir_out = emit_from(ctx, "softmax", [value.ir], out, ctx.tensors[value.ir].shape, {"beta": 1.0}, [node])
    set_value(ctx, out, Value(ir_out, value.perm))
