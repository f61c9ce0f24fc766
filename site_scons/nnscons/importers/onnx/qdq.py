"""Quantized (QDQ) ONNX models: the QuantizeLinear / DequantizeLinear handlers and the whole-model checks.

A DequantizeLinear of an integer initializer makes a quantized :class:`~.constants.Const`; a QuantizeLinear ->
DequantizeLinear pair on an activation quantizes the IR tensor it follows (uint8 becomes the equivalent int8);
a QuantizeLinear of a float constant is evaluated here. Hybrid models and float activations left between quantized
ops are rejected (:func:`check_not_hybrid`, :func:`check_fully_quantized`).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from onnx import helper

from ... import ir
from .constants import Const
from .context import Context, const_of, emit_from, fail, set_value, value_of
from .decode import QUANT_TYPES, Node
from .layout import Value


def same_quant(a: ir.Quant, b: ir.Quant) -> bool:
    return (a.axis == b.axis and list(a.zero_point) == list(b.zero_point)
            and np.array_equal(np.float32(a.scale), np.float32(b.scale)))


def qdq_params(ctx: Context, node: Node) -> tuple[np.ndarray, np.ndarray, str, Optional[int]]:
    """(scale, zero_point, integer dtype, per-channel axis or None) of a QuantizeLinear/DequantizeLinear."""
    if node.attrs.get("block_size", 0):
        raise fail(ctx, node, "blocked quantization is not supported")
    scale = const_of(ctx, node, node.input(1), "scale")
    if scale.quantized:
        raise fail(ctx, node, "scale must be a float constant")
    scale_data = scale.data.astype(np.float32)
    if node.input(2):
        zero_point = const_of(ctx, node, node.input(2), "zero point").data
    elif node.op_type == "DequantizeLinear" and node.inputs[0] in ctx.consts:
        zero_point = np.zeros(scale_data.shape, ctx.consts[node.inputs[0]].data.dtype)
    else:
        dtype = helper.tensor_dtype_to_np_dtype(node.attrs["output_dtype"]) if node.attrs.get(
            "output_dtype") else np.uint8
        zero_point = np.zeros(scale_data.shape, dtype)
    axis = None
    if scale_data.size > 1:
        axis = int(node.attrs.get("axis", 1))
    problem = ir.scale_problem(np.ravel(scale.data))
    if problem:
        raise fail(ctx, node, f"invalid {problem}")
    return scale_data, zero_point, zero_point.dtype.name, axis


def activation_quant(ctx: Context, node: Node) -> tuple[str, ir.Quant]:
    """The (IR dtype, quant) a Q/DQ node gives an activation; uint8 becomes the equivalent int8."""
    scale, zero_point, dtype, axis = qdq_params(ctx, node)
    if axis is not None or scale.size != 1:
        raise fail(ctx, node, "per-channel quantization of activations is not supported")
    if dtype not in QUANT_TYPES.values():
        raise fail(ctx, node, f"quantization to {dtype} is not supported (int8, uint8 or int16)")
    zp = int(np.ravel(zero_point)[0])
    if dtype == "uint8":
        dtype, zp = "int8", zp - 128
    return dtype, ir.Quant([float(np.ravel(scale)[0])], [zp], None)


# ---- handlers -----------------------------------------------------------------------------------------------------
def convert_quantize_linear(ctx: Context, pos: int, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    if x in ctx.consts:
        ctx.consts[out] = quantized_const(ctx, node, ctx.consts[x])
        return
    value = value_of(ctx, node, x)
    dtype, quant = activation_quant(ctx, node)
    ctx.activation_dtypes.add(dtype)
    tensor = ctx.tensors[value.ir]
    if tensor.quant is None and tensor.dtype == "float32" and owned_by(ctx, value.ir, pos):
        tensor.dtype, tensor.quant = dtype, quant      # the producing op outputs integers directly
        make_clamp_explicit(ctx, value.ir, dtype, quant)
        set_value(ctx, out, value)
    elif tensor.quant is not None and tensor.dtype == dtype and same_quant(tensor.quant, quant):
        set_value(ctx, out, value)
    else:   # a float graph input, or a requantization
        new = emit_from(ctx, "quantize", [value.ir], out, tensor.shape, {}, [node])
        ctx.tensors[new].dtype, ctx.tensors[new].quant = dtype, quant
        set_value(ctx, out, Value(new, value.perm, value.order))


def convert_dequantize_linear(ctx: Context, pos: int, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    if x in ctx.consts:
        const = ctx.consts[x]
        if const.quantized or not np.issubdtype(const.data.dtype, np.integer):
            raise fail(ctx, node, "DequantizeLinear of a constant needs integer data")
        scale, zero_point, _, axis = qdq_params(ctx, node)
        if axis is not None:
            axis %= const.data.ndim
            if const.data.shape[axis] != scale.size:
                raise fail(ctx, node, f"{scale.size} scales for axis {axis} of shape {list(const.data.shape)}")
        ctx.consts[out] = Const(const.data, np.ravel(scale), np.ravel(zero_point), axis)
        return
    value = value_of(ctx, node, x)
    tensor = ctx.tensors[value.ir]
    if tensor.dtype == "float32":
        raise fail(ctx, node, "DequantizeLinear of a float tensor")
    dtype, quant = activation_quant(ctx, node)
    if tensor.dtype == "uint8":     # an integer graph input keeps its own type
        quant = ir.Quant(quant.scale, [quant.zero_point[0] + 128], None)
    if tensor.quant is None:
        tensor.quant = quant
    elif not same_quant(tensor.quant, quant):
        raise fail(ctx, node, "DequantizeLinear parameters differ from those of the QuantizeLinear that "
                              f"produced '{ir.c_comment(x)}'; not supported")
    set_value(ctx, out, value)


def quantized_const(ctx: Context, node: Node, const: Const) -> Const:
    """QuantizeLinear of a float constant (quantizers emit it for weights computed by folded nodes): the
    integer data, as onnxruntime computes it (round half to even, saturate)."""
    if const.quantized:
        raise fail(ctx, node, "QuantizeLinear of an already quantized constant")
    scale, zero_point, dtype, axis = qdq_params(ctx, node)
    shape = [1] * const.data.ndim
    if axis is not None:
        shape[axis % const.data.ndim] = -1
    info = np.iinfo(dtype)
    q = np.rint(const.data.astype(np.float64) / scale.astype(np.float64).reshape(shape))
    q = q + zero_point.astype(np.float64).reshape(shape if zero_point.size > 1 else [1] * len(shape))
    return Const(np.clip(q, info.min, info.max).astype(dtype))


def make_clamp_explicit(ctx: Context, ir_name: str, dtype: str, quant: ir.Quant) -> None:
    """A quantizer that removed a Relu leaves the output quantization to clamp at zero (zero point = the
    type's minimum, as onnxruntime's quantize_static does). Saying ``relu`` changes nothing for the integer
    kernels (their clamp is the same) and keeps the model's semantics for anything that runs it in float."""
    if quant.zero_point[0] != np.iinfo(dtype).min:
        return
    producer = next((op for op in ctx.ops if ir_name in op.outputs), None)
    if producer is not None and producer.attrs.get("activation") == "none":
        producer.attrs["activation"] = "relu"


def owned_by(ctx: Context, ir_name: str, pos: int) -> bool:
    """True when the IR tensor is computed by an op and node ``pos`` is the only reader of all its names."""
    if ir_name in ctx.ir_inputs:
        return False
    for name in ctx.aliases.get(ir_name, []):
        if name in ctx.graph_outputs or any(user != pos for user in ctx.consumers.get(name, [])):
            return False
    return not any(ir_name in op.inputs for op in ctx.ops)


# ---- whole-model checks -------------------------------------------------------------------------------------------
def check_not_hybrid(ctx: Context) -> None:
    nodes, elem_types = ctx.prepared.nodes, ctx.prepared.elem_types
    has_quantize = any(n.op_type == "QuantizeLinear" for n in nodes)
    int_inputs = any(elem_types.get(n) in QUANT_TYPES for n in ctx.prepared.inputs)
    dq_of_const = any(n.op_type == "DequantizeLinear" and n.inputs[0] in ctx.consts for n in nodes)
    if dq_of_const and not has_quantize and not int_inputs:
        raise fail(ctx, None, "hybrid model (int8 weights, float activations) is not supported")


def check_fully_quantized(ctx: Context) -> None:
    """In a QDQ model every activation between the input quantize and output dequantize must be integer."""
    for op in ctx.ops:
        float_inputs = [t for t in op.inputs if not ctx.tensors[t].is_const and ctx.tensors[t].quant is None]
        float_outputs = [t for t in op.outputs if ctx.tensors[t].quant is None]
        if op.type == "quantize":
            float_inputs = []
        if op.type == "dequantize":
            float_outputs = []
        if not float_inputs and not float_outputs:
            continue
        int_consts = any(ctx.tensors[t].is_const and ctx.tensors[t].quant is not None for t in op.inputs)
        if float_inputs and int_consts:
            raise fail(ctx, None, f"op {op.label}: hybrid model (int8 weights, float activations) is not "
                                  "supported")
        tensor = ctx.tensors[(float_inputs or float_outputs)[0]]
        raise fail(ctx, None, f"tensor '{ir.c_comment(tensor.label)}' ({op.label}) is float in a quantized "
                              "(QDQ) model: mixed float/integer graphs are not supported (is a "
                              "QuantizeLinear/DequantizeLinear pair missing?)")
