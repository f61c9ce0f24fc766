"""What the ONNX op handlers share: the conversion :class:`Context` and the functions that read and extend it.

One ``Context`` is made per import (:func:`new_context`). It holds the prepared ONNX model (read only) and the IR
graph being built; handlers (:mod:`.ops`) receive it with the node to convert and use the functions below to look
up activations and constants, emit IR ops and record where each ONNX tensor went.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np

from ... import ir
from ...errors import NnsconsError
from .constants import Const
from .decode import Node
from .layout import Value, ir_order, ir_shape
from .shapes import Prepared

MAX_TENSOR_ELEMENTS = 1 << 26   # activations far beyond any microcontroller (the importer indexes them)


@dataclass(eq=False)
class Context:
    """The state of one conversion. The ONNX side: ``prepared``, who reads what (``consumers``) and which nodes are
    ``done`` (converted or fused into an earlier op). The IR side: the graph's tensors, constant data, ops and
    inputs so far, plus where each ONNX tensor lives (``values``, ``consts``, ``aliases``)."""

    path: str
    prepared: Prepared
    consts: dict[str, Const]                        # ONNX name -> constant data (initializers, folded, Q/DQ'd)
    consumers: dict[str, list[int]]                 # ONNX name -> positions of the nodes that read it
    graph_outputs: set[str]                         # ONNX names of the graph outputs
    done: set[int] = field(default_factory=set)                      # positions converted or fused
    names: ir.NameTable = field(default_factory=ir.NameTable)
    tensors: dict[str, ir.Tensor] = field(default_factory=dict)
    params: dict[str, np.ndarray] = field(default_factory=dict)
    ops: list[ir.Op] = field(default_factory=list)
    values: dict[str, Value] = field(default_factory=dict)           # ONNX activation -> its IR tensor
    aliases: dict[str, list[str]] = field(default_factory=dict)      # IR tensor -> ONNX names that map to it
    ir_inputs: list[str] = field(default_factory=list)               # the IR graph's inputs so far
    activation_dtypes: set[str] = field(default_factory=set)         # integer dtypes of quantized activations
    relayouts: dict[tuple[str, tuple[int, ...]], str] = field(default_factory=dict)   # (IR tensor, perm) -> reshape


# A handler converts one node (at position ``pos`` of ``ctx.prepared.nodes``) into IR ops.
Handler = Callable[[Context, int, Node], None]


def new_context(path: str, prepared: Prepared) -> Context:
    consumers: dict[str, list[int]] = {}
    for pos, node in enumerate(prepared.nodes):
        for name in node.inputs:
            if name:
                consumers.setdefault(name, []).append(pos)
    return Context(path, prepared, {name: Const(data) for name, data in prepared.consts.items()}, consumers,
                   set(prepared.outputs))


def fail(ctx: Context, node: Optional[Node], message: str) -> NnsconsError:
    """The error to raise for a problem at ``node`` (use as ``raise fail(ctx, ...)``)."""
    return NnsconsError(ctx.path, f"{node.where()}: {message}" if node else message)


# ---- tensors, values, ops -----------------------------------------------------------------------------------------
def _label(text: str) -> str:
    """A tensor label: the model's own name (untrusted; consumers sanitize it), capped in length."""
    return str(text)[:200]


def new_tensor(ctx: Context, label: str, shape: Sequence[int], dtype: str, quant: Optional[ir.Quant] = None,
               data: Optional[np.ndarray] = None) -> str:
    name = ctx.names.unique(label, "t")
    ctx.tensors[name] = ir.Tensor(name, [int(d) for d in shape], dtype, label=_label(label),
                                  is_const=data is not None, quant=quant)
    if data is not None:
        ctx.params[name] = np.ascontiguousarray(data)
    return name


def const_tensor(ctx: Context, label: str, const: Const) -> str:
    data = const.data if const.quantized else const.data.astype(np.float32)
    if data.dtype.name not in ir.DTYPES:
        raise fail(ctx, None, f"constant '{ir.c_comment(label)}' has unsupported type {data.dtype.name}")
    return new_tensor(ctx, label, data.shape, data.dtype.name, const.quant(), data)


def const_operand(ctx: Context, name: str, const: Const, rank: int, perm: Sequence[int]) -> str:
    """An IR constant for a broadcast operand: expanded to ``rank`` then permuted like the activations."""
    if const.data.ndim > rank:
        raise fail(ctx, None, f"constant '{ir.c_comment(name)}' has more dimensions than the result")
    return const_tensor(ctx, name, const.expanded(rank).transposed(perm))


def emit(ctx: Context, ir_type: str, inputs: list[str], outputs: list[str], attrs: dict[str, Any],
         label: str) -> ir.Op:
    op = ir.Op(ctx.names.unique(f"{ir_type}_{len(ctx.ops)}", "op"), ir_type, inputs, outputs, attrs,
               ir.c_comment(label, 80))
    ctx.ops.append(op)
    return op


def emit_from(ctx: Context, ir_type: str, inputs: list[str], out_name: str, out_shape_ir: Sequence[int],
              attrs: dict[str, Any], nodes: list[Node], inherit_quant_of: Optional[str] = None) -> str:
    """Emit one op whose output is a new activation named after the ONNX tensor ``out_name``. Ops that keep
    their input's quantization (reshape, max pooling, pad) pass ``inherit_quant_of``."""
    dtype, quant = "float32", None
    if inherit_quant_of is not None and ctx.tensors[inherit_quant_of].quant is not None:
        source = ctx.tensors[inherit_quant_of]
        dtype, quant = source.dtype, ir.Quant.from_json(source.quant.to_json())
    out = new_tensor(ctx, out_name, out_shape_ir, dtype, quant)
    label = nodes[0].label() + "".join(f" +{n.op_type}" for n in nodes[1:])
    emit(ctx, ir_type, inputs, [out], attrs, label)
    return out


def set_value(ctx: Context, onnx_name: str, value: Value) -> None:
    ctx.values[onnx_name] = value
    ctx.aliases.setdefault(value.ir, []).append(onnx_name)


# ---- looking up ONNX tensors --------------------------------------------------------------------------------------
def shape_of(ctx: Context, node: Node, name: str) -> list[int]:
    """The static ONNX shape of tensor ``name`` (an error for a dynamic, unknown or absurdly large one)."""
    found = ctx.prepared.shapes.get(name)
    if found is None:
        if name in ctx.prepared.dynamic:
            raise fail(ctx, node, f"dynamic shape: tensor '{ir.c_comment(name)}' has shape "
                                  f"{ctx.prepared.dynamic[name]}; only static shapes are supported")
        raise fail(ctx, node, f"could not determine the shape of tensor '{ir.c_comment(name)}'")
    if np.prod(found, dtype=np.float64) > MAX_TENSOR_ELEMENTS:
        raise fail(ctx, node, f"tensor '{ir.c_comment(name)}' of shape {found} is too large")
    return found


def value_of(ctx: Context, node: Node, name: str) -> Value:
    """The IR side of an activation input."""
    found = ctx.values.get(name)
    if found is None:
        if name in ctx.consts:
            raise fail(ctx, node, f"constant input '{ir.c_comment(name)}' where an activation is expected; "
                                  "not supported")
        raise fail(ctx, node, f"input '{ir.c_comment(name)}' is not produced before it is used")
    return found


def const_of(ctx: Context, node: Node, name: str, what: str) -> Const:
    found = ctx.consts.get(name)
    if found is None:
        raise fail(ctx, node, f"{what} '{ir.c_comment(name)}' must be a constant (initializer)")
    return found


def const_array_of(ctx: Context, node: Node, name: str, what: str) -> np.ndarray:
    return const_of(ctx, node, name, what).real()


def sole_consumer(ctx: Context, name: str, op_types: Iterable[str]) -> Optional[tuple[int, Node]]:
    """The node that alone reads ``name`` (and is of one of ``op_types``), unless ``name`` is a graph output."""
    users = ctx.consumers.get(name, [])
    if name in ctx.graph_outputs or len(users) != 1 or users[0] in ctx.done:
        return None
    node = ctx.prepared.nodes[users[0]]
    return (users[0], node) if node.op_type in op_types else None


# ---- layouts ------------------------------------------------------------------------------------------------------
def in_layout(ctx: Context, node: Node, name: str, perm: Sequence[int]) -> str:
    """The IR tensor holding activation ``name`` as ``onnx.transpose(perm)``, adding an IR reshape when only the
    shape differs (same element order)."""
    held = value_of(ctx, node, name)
    perm = tuple(perm)
    reject_flattened(ctx, node, name, held)
    if held.perm == perm:
        return held.ir
    onnx_shape = shape_of(ctx, node, name)
    if not np.array_equal(ir_order(onnx_shape, held.perm), ir_order(onnx_shape, perm)):
        raise fail(ctx, node, f"layout change not supported: input '{ir.c_comment(name)}' comes from a "
                              "transpose or reshape that changes the element order of its NCHW/NHWC data")
    key = (held.ir, perm)
    if key not in ctx.relayouts:
        ctx.relayouts[key] = emit_from(ctx, "reshape", [held.ir], name, ir_shape(onnx_shape, perm),
                                       {"shape": ir_shape(onnx_shape, perm)}, [node], inherit_quant_of=held.ir)
    return ctx.relayouts[key]


def reject_flattened(ctx: Context, node: Node, name: str, held: Value) -> None:
    """An NCHW tensor flattened in (C, H, W) order may only reach a Gemm/MatMul (through elementwise ops)."""
    if held.order is not None:
        raise fail(ctx, node, f"layout change not supported: '{ir.c_comment(name)}' is an NCHW tensor "
                              "flattened in (C, H, W) order, which only a following fully-connected layer "
                              f"(Gemm/MatMul) can absorb by reordering its weights, but it feeds "
                              f"{ir.c_comment(node.op_type)}")
