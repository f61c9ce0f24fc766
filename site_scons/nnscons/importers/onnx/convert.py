"""The ONNX import driver: load (:mod:`.decode`), make static (:func:`prepare`), convert (:func:`convert`).

:func:`convert` makes the conversion :class:`~.context.Context`, adds the graph inputs, walks the remaining nodes in
order dispatching each through :data:`.ops.OP_HANDLERS` (nodes fused into an earlier op are already ``done``), then
finishes the graph outputs and checks the whole graph.
"""
from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import numpy_helper

from ... import ir
from ...errors import NnsconsError
from .context import MAX_TENSOR_ELEMENTS, Context, emit, fail, new_context, new_tensor, set_value
from .decode import FLOAT, QUANT_TYPES, decode_nodes, default_opset, first_line, load_model
from .folding import fold_constants
from .layout import FROM_NHWC, Value, default_perm, identity, inverse, ir_shape
from .ops import OP_HANDLERS, check_supported
from .qdq import check_fully_quantized, check_not_hybrid
from .shapes import Prepared, infer_shapes, rebuild, static_model

MAX_FOLD_ROUNDS = 4


def import_onnx(path: str) -> tuple[ir.Graph, dict[str, np.ndarray]]:
    """Import an ONNX model as an IR graph and its constant data (see the package docstring)."""
    path = os.fspath(path)
    model = load_model(path)
    graph, params = convert(path, prepare(path, model))
    graph.source = "onnx"
    graph.source_file = os.path.basename(path)
    return graph, params


def prepare(path: str, model: onnx.ModelProto) -> Prepared:
    """Check every node is supported, then alternate shape inference and constant folding until nothing folds."""
    opset = default_opset(path, model)
    graph = model.graph
    consts = {}
    for tensor in graph.initializer:
        try:
            consts[tensor.name] = numpy_helper.to_array(tensor)
        except Exception as e:
            raise NnsconsError(path, f"initializer '{ir.c_comment(tensor.name)}' is unreadable "
                                     f"({first_line(e)})") from None
        if consts[tensor.name].dtype.kind == "f" and not np.isfinite(consts[tensor.name]).all():
            raise NnsconsError(path, f"initializer '{ir.c_comment(tensor.name)}' holds NaN or infinity")
    inputs = [vi.name for vi in graph.input if vi.name not in consts]
    outputs = [vi.name for vi in graph.output]
    nodes = decode_nodes(model)
    check_supported(path, nodes)

    static = static_model(path, model, set(inputs))
    for _ in range(MAX_FOLD_ROUNDS):
        shapes, dynamic, elem_types = infer_shapes(path, static)
        nodes, folded = fold_constants(path, nodes, consts, shapes, opset)
        if not folded:
            break
        static = rebuild(static, nodes, consts, inputs)
    return Prepared(nodes, consts, shapes, dynamic, elem_types, inputs, outputs, opset)


def convert(path: str, prepared: Prepared) -> tuple[ir.Graph, dict[str, np.ndarray]]:
    """Build the IR graph from the prepared nodes, in order."""
    ctx = new_context(path, prepared)
    check_not_hybrid(ctx)
    inputs = [add_input(ctx, name) for name in prepared.inputs]
    convert_nodes(ctx)
    outputs = [finish_output(ctx, name) for name in prepared.outputs]
    quantized = "none"
    if ctx.activation_dtypes:
        quantized = "int16x8" if "int16" in ctx.activation_dtypes else "int8"
        check_fully_quantized(ctx)
    # an input kept as it is while 4-D is NHWC data that the model itself transposes to NCHW (see add_input)
    layout = "NHWC" if any(perm == identity(4) for _, perm in inputs) else "NCHW"
    graph = ir.Graph(tensors=ctx.tensors, ops=ctx.ops, inputs=ctx.ir_inputs, outputs=[t for t, _ in outputs],
                     layout=layout,
                     input_perm={t: list(perm) for t, perm in inputs if perm != identity(len(perm))},
                     output_perm={t: list(inverse(perm)) for t, perm in outputs if perm != identity(len(perm))},
                     quantized=quantized)
    ir.validate(graph, ctx.params)
    return graph, ctx.params


def convert_nodes(ctx: Context) -> None:
    """Dispatch every node not yet fused into an earlier op to its handler in OP_HANDLERS."""
    for pos, node in enumerate(ctx.prepared.nodes):
        if pos in ctx.done:
            continue
        ctx.done.add(pos)
        handler = OP_HANDLERS.get(node.op_type)
        if handler is None:
            raise fail(ctx, node, f"no converter for op {ir.c_comment(node.op_type)}")
        handler(ctx, pos, node)


def add_input(ctx: Context, name: str) -> tuple[str, tuple[int, ...]]:
    """A graph input: float32 (or the integer type of a quantized model), NHWC unless the model says otherwise.
    Returns its IR tensor and ``perm`` (``ir_array = onnx_array.transpose(perm)``).

    A 4-D input whose only consumers are ``Transpose(perm=[0, 3, 1, 2])`` is taken as NHWC already (models
    converted from TensorFlow), so it gets no input permutation."""
    p = ctx.prepared
    shape = p.shapes.get(name)
    if shape is None:
        raise fail(ctx, None, f"dynamic shape: input '{ir.c_comment(name)}' has no static shape")
    if np.prod(shape, dtype=np.float64) > MAX_TENSOR_ELEMENTS:
        raise fail(ctx, None, f"input '{ir.c_comment(name)}' of shape {shape} is too large")
    elem = p.elem_types.get(name)
    if elem == FLOAT:
        dtype = "float32"
    elif elem in QUANT_TYPES and all(p.nodes[pos].op_type == "DequantizeLinear"
                                     for pos in ctx.consumers.get(name, [])):
        dtype = QUANT_TYPES[elem]
    else:
        type_name = onnx.TensorProto.DataType.Name(elem) if elem in onnx.TensorProto.DataType.values() else elem
        raise fail(ctx, None, f"input '{ir.c_comment(name)}' has type {type_name}; only float32 inputs "
                              "(or integer inputs of a quantized model) are supported")
    perm = default_perm(len(shape))
    users = [p.nodes[pos] for pos in ctx.consumers.get(name, [])]
    if len(shape) == 4 and users and all(u.op_type == "Transpose" and list(u.attrs.get("perm", [])) ==
                                         list(FROM_NHWC) for u in users):
        perm = identity(4)     # an NHWC input that the model itself transposes to NCHW
    ir_name = new_tensor(ctx, name, ir_shape(shape, perm), dtype)
    ctx.ir_inputs.append(ir_name)
    set_value(ctx, name, Value(ir_name, perm))
    return ir_name, perm


def finish_output(ctx: Context, name: str) -> tuple[str, tuple[int, ...]]:
    """The IR tensor of graph output ``name`` (dequantized when the model's output is float) and its ``perm``."""
    where = f"graph output '{ir.c_comment(name)}'"
    if name in ctx.consts:
        raise fail(ctx, None, f"{where} is a constant; nothing to compute")
    value = ctx.values.get(name)
    if value is None:
        raise fail(ctx, None, f"{where} is not produced by any node")
    if value.order is not None:
        raise fail(ctx, None, f"{where} is an NCHW tensor flattened in (C, H, W) order; layout change not "
                              "supported")
    tensor = ctx.tensors[value.ir]
    if ctx.prepared.elem_types.get(name) == FLOAT and tensor.dtype != "float32":
        out = new_tensor(ctx, name, tensor.shape, "float32")
        emit(ctx, "dequantize", [value.ir], [out], {}, "DequantizeLinear (graph output)")
        value = Value(out, value.perm)
    if value.ir in ctx.ir_inputs:
        raise fail(ctx, None, f"{where} is a graph input; nothing to compute")
    return value.ir, value.perm
