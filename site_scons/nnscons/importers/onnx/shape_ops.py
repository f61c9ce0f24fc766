"""ONNX ops that move data without computing on it: reshape-likes, Transpose, Identity/Dropout, Concat, Pad.

``Transpose`` emits no IR op: it only changes how the ONNX tensor maps to its IR tensor (:class:`~.layout.Value`).
Reshape, Flatten, Squeeze and Unsqueeze become an IR ``reshape`` when the NHWC element order is unchanged; the one
reordering supported is an NCHW ``[N, C, H, W]`` flattened to ``[N, C*H*W]``, whose (C, H, W) column order the
Gemm/MatMul reading it absorbs (:mod:`.dense`). Ops that only fold (:mod:`.folding`) are rejected on activations.
"""
from __future__ import annotations

import numpy as np

from ... import ir
from .context import (Context, const_array_of, const_operand, emit_from, fail, in_layout, reject_flattened,
                      set_value, shape_of, value_of)
from .decode import Node
from .layout import Value, default_perm, flatten_order, identity, inverse, ir_order, ir_shape


def convert_reshape(ctx: Context, pos: int, node: Node) -> None:
    """Reshape, Flatten, Squeeze, Unsqueeze: only the shape changes, in ONNX's row-major element order."""
    x, out = node.inputs[0], node.outputs[0]
    if x in ctx.consts:
        raise fail(ctx, node, "reshaping a quantized constant is not supported")
    value = value_of(ctx, node, x)
    in_shape, out_shape = shape_of(ctx, node, x), shape_of(ctx, node, out)
    if np.prod(in_shape, dtype=np.int64) != np.prod(out_shape, dtype=np.int64):
        raise fail(ctx, node, f"reshaping {in_shape} to {out_shape} changes the number of elements")
    if value.order is not None:
        if in_shape != out_shape:
            reject_flattened(ctx, node, x, value)
        set_value(ctx, out, value)
        return
    held = ir_order(in_shape, value.perm)   # ONNX element indices, in IR memory order
    for perm in dict.fromkeys((default_perm(len(out_shape)), identity(len(out_shape)))):
        if np.array_equal(held, ir_order(out_shape, perm)):
            set_value(ctx, out, reshaped(ctx, node, value, out, ir_shape(out_shape, perm), perm))
            return
    order = flatten_order(held, out_shape)
    if order is None:
        raise fail(ctx, node, f"layout change not supported: reshaping {in_shape} to {out_shape} changes the "
                              "element order of NHWC data")
    flat = reshaped(ctx, node, value, out, list(out_shape), (0, 1))
    set_value(ctx, out, Value(flat.ir, (0, 1), order))


def reshaped(ctx: Context, node: Node, value: Value, out: str, out_ir_shape: list[int],
             perm: tuple[int, ...]) -> Value:
    """``value`` seen with IR shape ``out_ir_shape`` (an IR reshape unless the shape is already that)."""
    if ctx.tensors[value.ir].shape == out_ir_shape:
        return Value(value.ir, perm)
    ir_out = emit_from(ctx, "reshape", [value.ir], out, out_ir_shape, {"shape": out_ir_shape}, [node],
                       inherit_quant_of=value.ir)
    return Value(ir_out, perm)


def convert_transpose(ctx: Context, pos: int, node: Node) -> None:
    """No IR op: the IR array stays as it is and only its relation to the ONNX tensor changes."""
    x, out = node.inputs[0], node.outputs[0]
    rank = ctx.consts[x].data.ndim if x in ctx.consts else len(shape_of(ctx, node, x))
    t = [int(p) for p in node.attrs.get("perm", list(reversed(range(rank))))]
    if x in ctx.consts:
        ctx.consts[out] = ctx.consts[x].transposed(t)
        return
    value = value_of(ctx, node, x)
    reject_flattened(ctx, node, x, value)
    back = inverse(t)
    set_value(ctx, out, Value(value.ir, tuple(back[p] for p in value.perm)))


def convert_passthrough(ctx: Context, pos: int, node: Node) -> None:
    """Identity and inference-mode Dropout."""
    x, out = node.inputs[0], node.outputs[0]
    if len(node.outputs) > 1 and node.outputs[1] and (node.outputs[1] in ctx.consumers or
                                                      node.outputs[1] in ctx.graph_outputs):
        raise fail(ctx, node, "Dropout's mask output is not supported")
    if x in ctx.consts:
        ctx.consts[out] = ctx.consts[x]
    else:
        set_value(ctx, out, value_of(ctx, node, x))


def convert_concat(ctx: Context, pos: int, node: Node) -> None:
    out = node.outputs[0]
    out_shape = shape_of(ctx, node, out)
    rank = len(out_shape)
    axis = int(node.attrs.get("axis", 1)) % rank
    activations = [n for n in node.inputs if n and n not in ctx.consts]
    if not activations:
        raise fail(ctx, node, "all inputs are constants")
    perm = value_of(ctx, node, activations[0]).perm
    ir_inputs = [const_operand(ctx, n, ctx.consts[n], rank, perm) if n in ctx.consts
                 else in_layout(ctx, node, n, perm) for n in node.inputs if n]
    ir_out = emit_from(ctx, "concat", ir_inputs, out, ir_shape(out_shape, perm), {"axis": perm.index(axis)}, [node])
    set_value(ctx, out, Value(ir_out, perm))


def convert_pad(ctx: Context, pos: int, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    rank = len(shape_of(ctx, node, x))
    if node.attrs.get("mode", "constant") != "constant":
        raise fail(ctx, node, f"Pad mode '{ir.c_comment(node.attrs.get('mode'))}' is not supported (only "
                              "constant)")
    if ctx.prepared.opset < 11:
        pads, fill, axes = list(node.attrs.get("pads", [])), float(node.attrs.get("value", 0.0)), None
    else:
        pads = [int(p) for p in const_array_of(ctx, node, node.input(1), "pads").ravel()]
        fill = float(const_array_of(ctx, node, node.input(2), "value").ravel()[0]) if node.input(2) else 0.0
        axes = ([int(a) % rank for a in const_array_of(ctx, node, node.input(3), "axes").ravel()]
                if node.input(3) else None)
    axes = list(range(rank)) if axes is None else axes
    if len(pads) != 2 * len(axes) or min(pads, default=0) < 0:
        raise fail(ctx, node, f"pads {pads} are not {2 * len(axes)} non-negative values")
    before, after = [0] * rank, [0] * rank
    for k, a in enumerate(axes):
        before[a], after[a] = int(pads[k]), int(pads[k + len(axes)])
    value = value_of(ctx, node, x)
    x_ir = in_layout(ctx, node, x, value.perm)
    attrs = {"pads": [[before[p], after[p]] for p in value.perm], "value": fill}
    ir_out = emit_from(ctx, "pad", [x_ir], out, ir_shape(shape_of(ctx, node, out), value.perm), attrs, [node],
                       inherit_quant_of=x_ir)
    set_value(ctx, out, Value(ir_out, value.perm))


def reject_fold_only(ctx: Context, pos: int, node: Node) -> None:
    """Ops the importer evaluates on constants only (:mod:`.folding`), met on an activation."""
    raise fail(ctx, node, f"{ir.c_comment(node.op_type)} is only supported on constants (shape arithmetic), "
                          "not on activations")
