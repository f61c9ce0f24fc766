"""Pass 2 of the TFLite import: decoded records (:mod:`.records`) -> :class:`ir.Graph`, one TFLite operator ->
one IR op.

The driver checks the graph's structure (supported operators, who writes which tensor, graph inputs and outputs),
folds DEQUANTIZE operators of constant data, names the IR ops, dispatches each operator to its handler in
:data:`.ops.OP_HANDLERS` and checks the resulting type mix against what the kernels can run.
"""
from __future__ import annotations

import os
from typing import Optional

import numpy as np

from ... import ir
from ...errors import NnsconsError
from .context import ConversionContext
from .lowering import Handler, Lowered
from .ops import IR_OP_TYPES, OP_HANDLERS, supported_operators
from .records import QUANTIZED_DTYPES, ModelRec, OpRec
from .tensors import describe, tensor


def convert(path: str, model: ModelRec) -> tuple[ir.Graph, dict[str, np.ndarray]]:
    """The IR graph and its constant data for a decoded model; raises NnsconsError naming ``path``."""
    ctx = ConversionContext(path=path, model=model)
    if not model.ops:
        raise ctx.fail("the model has no operators")
    for rec in model.ops:  # reject the first unsupported operator before converting any
        operator_handler(path, rec)
    index_producers(ctx)
    ctx.folded = constant_dequantize_ops(model)
    folded_ops = {ctx.producer[t] for t in ctx.folded}
    kept = [rec for rec in model.ops if rec.index not in folded_ops]
    # Op names first, so that a tensor whose label happens to read "conv2d_0" gets the suffix, not the op
    op_names = [ctx.names.unique(f"{IR_OP_TYPES[rec.name]}_{i}") for i, rec in enumerate(kept)]
    inputs = [graph_input(ctx, i) for i in model.inputs]
    for rec, op_name in zip(kept, op_names):
        ctx.ops.append(convert_op(ctx, rec, op_name))
    ctx.op = None
    outputs = [graph_output(ctx, i) for i in model.outputs]
    if not inputs or not outputs:
        raise ctx.fail("the model has no graph inputs or no graph outputs")
    graph = ir.Graph(tensors=ctx.tensors, ops=ctx.ops, inputs=inputs, outputs=outputs, source="tflite",
                     source_file=os.path.basename(path), layout="NHWC", quantized=quantized_kind(ctx))
    ir.validate(graph, ctx.params)
    return graph, ctx.params


def operator_handler(path: str, rec: OpRec) -> Handler:
    """The handler that converts ``rec``, or the error naming an operator the importer does not convert."""
    if rec.name == "CUSTOM":
        raise NnsconsError(path, f"custom operator '{ir.c_comment(rec.custom_code, 40)}' "
                                 f"(operator #{rec.index}) is not supported")
    handler = OP_HANDLERS.get(rec.name)
    if handler is None:
        raise NnsconsError(path, f"unsupported operator {ir.c_comment(rec.name, 40)} "
                                 f"(operator #{rec.index}); supported: {', '.join(supported_operators())}")
    return handler


def index_producers(ctx: ConversionContext) -> None:
    """Fill ``ctx.producer``, checking that every tensor reference is in range and each tensor has one writer."""
    model, path = ctx.model, ctx.path
    n = len(model.tensors)
    for rec in model.ops:
        for t in rec.inputs + rec.outputs:
            if not -1 <= t < n:
                raise NnsconsError(path, f"corrupt TFLite file (operator #{rec.index} refers to "
                                         f"tensor #{t} of {n})")
        for t in rec.outputs:
            if t < 0 or t in ctx.producer:
                raise NnsconsError(path, f"corrupt TFLite file (tensor #{t} is written by operator "
                                         f"#{ctx.producer.get(t, '?')} and #{rec.index})")
            ctx.producer[t] = rec.index
    for t in model.inputs + model.outputs:
        if not 0 <= t < n:
            raise NnsconsError(path, f"corrupt TFLite file (graph input/output is tensor #{t} of {n})")


def constant_dequantize_ops(model: ModelRec) -> dict[int, int]:
    """DEQUANTIZE operators applied to constant data (float16 or weight-only int8 models): their outputs
    become float32 constants and the operators disappear. Returns output -> input tensor index."""
    folded = {}
    for rec in model.ops:
        if rec.name == "DEQUANTIZE" and len(rec.inputs) == 1 and len(rec.outputs) == 1 \
                and rec.inputs[0] >= 0 and model.tensors[rec.inputs[0]].data is not None:
            folded[rec.outputs[0]] = rec.inputs[0]
    return folded


def graph_input(ctx: ConversionContext, index: int) -> str:
    rec = ctx.model.tensors[index]
    if rec.data is not None or index in ctx.producer:
        raise ctx.fail(f"graph input {describe(rec)} is a constant or computed by an operator")
    return tensor(ctx, index)


def graph_output(ctx: ConversionContext, index: int) -> str:
    rec = ctx.model.tensors[index]
    if (rec.data is not None and index not in ctx.producer) or index in ctx.folded:
        raise ctx.fail(f"graph output {describe(rec)} is a constant")
    return tensor(ctx, index)


def quantized_kind(ctx: ConversionContext) -> str:
    """``Graph.quantized``: int16x8 if an op computes on int16 activations, int8 if on int8 (or uint8), else none;
    a quantize op's types do not count (an int8 network may take int16 in or give int32 out through one), unless
    the model is quantize ops alone."""
    computed = {t for op in ctx.ops if op.type != "quantize" for t in op.inputs} or set(ctx.tensors)
    activations = {t.dtype for name, t in ctx.tensors.items()
                   if name in computed and not t.is_const and t.quant is not None}
    if "int16" in activations:
        return "int16x8"
    if activations & {"int8", "uint8"}:
        return "int8"
    return "none"


def convert_op(ctx: ConversionContext, rec: OpRec, op_name: str) -> ir.Op:
    """One TFLite operator -> one IR op, through its handler in OP_HANDLERS."""
    ctx.op = rec
    if len(rec.outputs) != 1:
        raise ctx.fail(f"expected one output, found {len(rec.outputs)}")
    for t in rec.inputs:
        producer = ctx.producer.get(t)
        if producer is not None and producer >= rec.index:
            raise ctx.fail(f"reads tensor #{t} before operator #{producer} computes it")
    handler = operator_handler(ctx.path, rec)
    lowered: Lowered = handler(ctx, rec)
    inputs = [tensor(ctx, t) for t in lowered.inputs]
    output = tensor(ctx, rec.outputs[0])
    ir_type = IR_OP_TYPES[rec.name]
    check_types(ctx, ir_type, [ctx.tensors[n] for n in inputs], ctx.tensors[output])
    if ctx.tensors[output].is_const:
        raise ctx.fail("writes a tensor that holds constant data")
    return ir.Op(name=op_name, type=ir_type, inputs=inputs, outputs=[output], attrs=lowered.attrs,
                 label=f"{rec.name} #{rec.index}")


def check_types(ctx: ConversionContext, ir_type: str, inputs: list[ir.Tensor], output: ir.Tensor) -> None:
    """Reject the type mixes the kernels cannot run: hybrid models, uint8 arithmetic, odd weight types."""
    if ir_type == "quantize":
        if output.dtype == "int32" and inputs[0].dtype in ("int8", "int16"):
            return                               # a requantization to int32 (TFLite Micro's last op of some models)
        if output.dtype not in QUANTIZED_DTYPES:
            raise ctx.fail(f"quantizes to {output.dtype}, expected int8, uint8 or int16 (or int32 from int8 or "
                           f"int16)")
        return
    if ir_type == "dequantize":
        if inputs[0].dtype not in QUANTIZED_DTYPES or output.dtype != "float32":
            raise ctx.fail(f"dequantizes {inputs[0].dtype} to {output.dtype}, expected an integer "
                           "input and a float32 output")
        return
    if output.dtype == "float32" and any(t.dtype in QUANTIZED_DTYPES for t in inputs):
        raise ctx.fail("hybrid model (int8 weights, float activations) is not supported")
    activations = [output] + [t for t in inputs if not t.is_const]
    if ir_type == "softmax" and (inputs[0].dtype, output.dtype) == ("int8", "int16"):
        return                                   # int8 in, int16 out: arm_softmax_s8_s16
    kinds = {t.dtype for t in activations}
    if "uint8" in kinds:
        raise ctx.fail("uint8 quantized operators are not supported (convert the model to int8)")
    if len(kinds) != 1 or not kinds <= {"float32", "int8", "int16"}:
        raise ctx.fail(f"unsupported tensor types {sorted(kinds)} (expected all float32, int8 or int16)")
    if ir_type in ("conv2d", "depthwise_conv2d", "fully_connected"):
        _check_weight_types(ctx, kinds.pop(), inputs[1], inputs[2] if len(inputs) > 2 else None)
    if ir_type == "svdf" and kinds == {"int8"}:
        if inputs[1].dtype != "int8" or inputs[2].dtype not in ("int8", "int16") or \
                (len(inputs) > 3 and inputs[3].dtype != "int32"):
            raise ctx.fail("an int8 SVDF needs int8 feature weights, int8 or int16 time weights and an int32 bias")
    if ir_type == "lstm":
        kind = kinds.pop()
        for position, weights in enumerate(inputs[1:9]):
            _check_weight_types(ctx, kind, weights, inputs[9 + position % 4])


def _check_weight_types(ctx: ConversionContext, activation: str, weights: ir.Tensor,
                        bias: Optional[ir.Tensor]) -> None:
    allowed = {"float32": ("float32", ("float32",)), "int8": ("int8", ("int32",)),
               "int16": ("int8", ("int64", "int32"))}[activation]
    if weights.dtype != allowed[0] or (bias is not None and bias.dtype not in allowed[1]):
        found = f"{weights.dtype} weights" + (f" and {bias.dtype} bias" if bias is not None else "")
        raise ctx.fail(f"{activation} activations with {found} are not supported")
