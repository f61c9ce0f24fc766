"""ONNX ``Gemm`` and ``MatMul`` (by a constant matrix) -> IR ``fully_connected``.

Weights become ``[out, in]``; a MatMul followed by a constant Add is one fully_connected with a bias (:mod:`.fusion`).
An input that is an NCHW tensor flattened in (C, H, W) order (see :func:`~.shape_ops.convert_reshape`) is read as the
NHWC tensor it is, with the weight columns reordered to match:
``W.reshape(out, C, H, W).transpose(0, 2, 3, 1).reshape(out, -1)``, computed as a column permutation.
"""
from __future__ import annotations

import numpy as np

from .constants import Const
from .context import Context, const_of, fail, in_layout, shape_of, value_of
from .decode import Node
from .fusion import Layer, emit_layer, fuse_followers
from .layout import identity


def convert_gemm(ctx: Context, pos: int, node: Node) -> None:
    if node.attrs.get("transA", 0):
        raise fail(ctx, node, "Gemm with transA=1 is not supported")
    b = const_of(ctx, node, node.input(1), "B (weights)")
    if b.data.ndim != 2:
        raise fail(ctx, node, "B must be a matrix")
    weight = b if node.attrs.get("transB", 0) else b.transposed((1, 0))     # -> [out, in]
    alpha, beta = float(node.attrs.get("alpha", 1.0)), float(node.attrs.get("beta", 1.0))
    n_out = weight.data.shape[0]
    if alpha != 1.0:
        if weight.quantized:
            raise fail(ctx, node, "alpha != 1 with quantized weights is not supported")
        weight = Const((weight.data.astype(np.float64) * alpha).astype(np.float32))
    bias = None
    if node.input(2):
        c = const_of(ctx, node, node.input(2), "C (bias)")
        if c.data.size not in (1, n_out) or (c.data.ndim == 2 and c.data.shape[0] != 1):
            raise fail(ctx, node, f"C of shape {list(c.data.shape)} is not a per-output bias")
        if c.quantized:
            if beta != 1.0 or c.data.size != n_out:
                raise fail(ctx, node, "a quantized C needs beta = 1 and one value per output")
            bias = c.with_data(c.data.reshape(n_out), 0 if c.axis is not None else None)
        else:
            bias = Const((np.broadcast_to(c.data.reshape(-1), (n_out,)) * beta).astype(np.float32))
    fully_connected(ctx, node, Layer("fully_connected", weight, node.input(1), bias, node.outputs[0], [node],
                                     bias_label=node.input(2)))


def convert_matmul(ctx: Context, pos: int, node: Node) -> None:
    if node.input(1) not in ctx.consts:
        raise fail(ctx, node, "MatMul of two activations is not supported (the second input must be a "
                              "constant weight matrix)")
    b = const_of(ctx, node, node.input(1), "weights")
    if b.data.ndim != 2:
        raise fail(ctx, node, "the weight matrix must be 2-D")
    layer = Layer("fully_connected", b.transposed((1, 0)), node.input(1), None, node.outputs[0], [node])
    fully_connected(ctx, node, layer)


def fully_connected(ctx: Context, node: Node, layer: Layer) -> None:
    """Fuse what follows ``layer`` and emit it, absorbing a (C, H, W)-order flatten of its input if there is one."""
    a = node.inputs[0]
    a_shape = shape_of(ctx, node, a)
    value = value_of(ctx, node, a)
    n_in = layer.weight.data.shape[1]
    if not a_shape or a_shape[-1] != n_in:
        raise fail(ctx, node, f"input of shape {a_shape} does not match weights with {n_in} inputs")
    if value.order is not None:
        # The seed guide's reordering: IR column j holds ONNX column order[j], so the weights follow suit
        w = layer.weight
        if w.axis == 1:
            raise fail(ctx, node, "weights quantized per input channel are not supported")
        layer.weight = w.with_data(w.data[:, value.order], w.axis)
        x_ir = value.ir
    else:
        x_ir = in_layout(ctx, node, a, identity(len(a_shape)))
    out_rank = len(shape_of(ctx, node, layer.out))
    fuse_followers(ctx, layer, channel_axis=out_rank - 1)
    emit_layer(ctx, layer, x_ir, layer.weight, {}, identity(out_rank))
