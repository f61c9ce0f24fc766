"""The s8 backend's streams (:mod:`nnscons.patches`): layers that run a few rows at a time, in a loop over steps at
their sink's place, and the sink that sums the anchor's rows as they come.

:func:`stream_layers` replaces, in the list of layer contexts, a stream's layers and its sink by one context of
kind ``stream`` (rendered by ``templates/streams.j2``): the layers' own contexts (their kernels, constants and
parameters are those of the whole-tensor layer) with what their row loop needs, the step tables, the row buffers
and the sink's.
"""
from __future__ import annotations

import textwrap
from typing import Any

from .. import ir, kernels, patches, planner
from ..errors import NnsconsError
from .common import HANGING_INDENT, LINE_WIDTH
from .model import Model

STREAM_KINDS = ("conv", "depthwise", "avgpool", "maxpool", "add", "mul", "clamp", "lookup")


def stream_layers(model: Model, layers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The layer contexts in execution order, each stream's layers folded into one context at its sink's place."""
    if not model.streams:
        return layers
    by_index = dict(enumerate(layers))          # one context per op, in graph order
    streamed = {index for s in model.streams for index in s.ops}
    sinks = {s.sink: s for s in model.streams}
    result = []
    for index in range(len(model.graph.ops)):
        if index in sinks:
            result.append(stream_context(model, sinks[index], by_index))
        elif index not in streamed:
            result.append(by_index[index])
    return result


def stream_context(model: Model, stream: patches.Stream, layers: dict[int, dict[str, Any]]) -> dict[str, Any]:
    graph = model.graph
    sink_op = graph.ops[stream.sink]
    sink = dict(layers[stream.sink])
    tensors = list(stream.inputs) + [graph.ops[i].outputs[0] for i in stream.ops]
    rows = {t: f"{model.pointers[t]}_rows" for t in tensors}
    subs = [_row_layer(model, stream, graph.ops[i], layers[i], rows) for i in stream.ops]
    anchor = stream.bands[stream.anchor]
    sink.update({
        "sink": "sum" if sink["kind"] == "avgpool" else "dot",
        "sums": planner.sums_name(graph, stream.sink),
        "anchor_rows": rows[stream.anchor], "anchor_name": graph.ops[stream.ops[-1]].name,
        "pixels": graph.tensors[stream.anchor].shape[1] * graph.tensors[stream.anchor].shape[2],
        "channels": graph.tensors[stream.anchor].shape[3], "row_values": anchor.row_bytes,
        "sums_count": stream.sums_bytes // 4,
    })
    if sink["kind"] not in ("avgpool", "fc") or sink.get("suffix") != "s8":
        raise NnsconsError(None, f"codegen: layer {sink_op.name}: a stream ends in an int8 average pooling or fully "
                                 f"connected layer with one multiplier, not a {sink['kind']} ({sink.get('suffix')}) "
                                 f"one (build with patches=off)")
    if sink["kind"] == "fc" and (sink["filter_offset"] or sink["input_dims"][0] != 1):
        raise kernels.unsupported(sink_op, "s8", "a stream's fully connected sink takes symmetric weights and "
                                                 "one batch")
    for sub in subs:
        if sub["tensor"] == stream.anchor:
            sub["sink"] = sink
    return {
        "kind": "stream", "name": sink_op.name, "steps": stream.steps, "layers": subs, "sink": sink,
        "comment": _comment(model, stream),
        "buffers": [_rows_buffer(model, stream, t, rows[t]) for t in tensors],
        "index": sink["index"], "trace_pointer": sink["trace_pointer"], "count": sink["count"],
    }


def _row_layer(model: Model, stream: patches.Stream, op: ir.Op, layer: dict[str, Any],
               rows: dict[str, str]) -> dict[str, Any]:
    """A layer's context with its row loop's: its output's row buffer and tables, its inputs' row buffers."""
    if layer["kind"] not in STREAM_KINDS or layer.get("suffix") != "s8":
        raise NnsconsError(None, f"codegen: layer {op.name}: no row code for a {layer['kind']} layer in a stream")
    window = patches.window(model.graph, op)
    assert window is not None
    band = stream.bands[op.outputs[0]]
    acts = [t for t in op.inputs if not model.graph.tensors[t].is_const]
    in_rows = model.graph.tensors[acts[0]].shape[1]
    ctype = "uint8_t" if band.rows <= 255 else "uint16_t"
    return {**layer, "tensor": op.outputs[0], "rows": rows[op.outputs[0]], "sources": [rows[t] for t in acts],
            "stride_rows": window.stride, "pad_top": window.pad_top, "reach": window.reach, "in_rows": in_rows,
            "row_values": band.row_bytes, "sink": None,
            "tables": [_table(ctype, f"{op.name}_until", band.until), _table(ctype, f"{op.name}_keep", band.keep)]}


def _table(ctype: str, name: str, values: list[int], indent: int = 12) -> str:
    """``static const <ctype> <name>[] = {...};`` wrapped within the line width."""
    head = " " * indent + f"static const {ctype} {name}[{len(values)}] = {{"
    body = ", ".join(str(v) for v in values) + "};"
    if len(head) + len(body) <= LINE_WIDTH:
        return head + body
    lines = textwrap.wrap(body, LINE_WIDTH - indent - HANGING_INDENT)
    return "\n".join([head] + [" " * (indent + HANGING_INDENT) + line for line in lines])


def _rows_buffer(model: Model, stream: patches.Stream, tensor: str, name: str) -> dict[str, Any]:
    """A row buffer's declaration: a band (rows made by the stream) or a whole input (every row there)."""
    shape = model.graph.tensors[tensor].shape
    band = stream.bands.get(tensor)
    return {"name": name, "pointer": model.pointers[tensor], "row_bytes": shape[2] * shape[3],
            "done": 0 if band else shape[1],
            "note": f"band of {band.capacity} of {band.rows} rows" if band else f"whole, {shape[1]} rows"}


def _comment(model: Model, stream: patches.Stream) -> list[str]:
    graph = model.graph
    names = [graph.ops[i].name for i in stream.ops]
    sink = graph.ops[stream.sink]
    total = sum(model.plan.by_tensor[t].size for t in stream.bands)
    whole = sum(planner.tensor_bytes(graph, model.qtable, t) for t in stream.bands)
    what = "sums them" if sink.type == "avg_pool2d" else "accumulates its dot products over them"
    return [f"stream: {', '.join(names)} run in {stream.steps} steps, each making the rows of its output the next "
            f"layers read in that step (the anchor {stream.anchor}: {stream.rows_per_step} row(s) a step); "
            f"{sink.name} {what} as they come. The layers' outputs are bands of a few rows ({total} bytes "
            f"instead of {whole}); the tables say, per step, up to which row each layer computes and from which "
            f"row it keeps its band (nnscons.patches)."]
