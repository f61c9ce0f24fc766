"""The s8/s16 backend (``api=s8``): the current CMSIS-NN API, for every quantization scheme.

:mod:`nnscons.kernels` picks the function each layer calls and its scratch; :data:`S8_LAYERS` names, per kernel
kind, the function that turns the layer's quantization table entry into the values its ``templates/layers.j2``
macro reads (:mod:`~nnscons.codegen.s8_layers` for the parameterized kernels, :mod:`~nnscons.codegen.s8_loops`
for the generated loops, copies and aliases). The rest (lowering, arena, constants, network I/O, the trace hook)
is :mod:`nnscons.codegen.model`'s.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .. import ir, kernels, planner
from ..overlap import bundled_scratch
from ..errors import NnsconsError
from . import s8_layers, s8_loops, s8_recurrent
from .common import TEMPLATES, Choices, Generated
from .s8_streams import stream_layers
from .model import Model, layer_header, open_model, place_io, plan_json, shared_context

DSP_CHECK = "defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1)"
# layer kinds whose CMSIS-NN function returns a status (arm_softmax_s8 returns nothing)
_STATUS_KINDS = ("conv", "depthwise", "fc", "avgpool", "maxpool", "add", "mul", "lstm", "gru", "svdf")

LayerBuilder = Callable[[Model, ir.Op, dict[str, Any], kernels.Kernel], dict[str, Any]]

# The registry: per kernel kind (nnscons.kernels.Kernel.kind), who builds the layer's template values
S8_LAYERS: dict[str, LayerBuilder] = {
    "conv": s8_layers.layer_conv,
    "depthwise": s8_layers.layer_conv,
    "fc": s8_layers.layer_fc,
    "avgpool": s8_layers.layer_pool,
    "maxpool": s8_layers.layer_pool,
    "softmax": s8_layers.layer_softmax,
    "add": s8_layers.layer_add,
    "sub": s8_layers.layer_sub,
    "mul": s8_layers.layer_mul,
    "concat": s8_loops.layer_concat,
    "mean": s8_loops.layer_mean,
    "pad": s8_loops.layer_pad,
    "lookup": s8_loops.layer_lookup,
    "requantize": s8_loops.layer_requantize,
    "clamp": s8_loops.layer_clamp,
    "alias": s8_loops.layer_alias,
    "lstm": s8_recurrent.layer_lstm,
    "gru": s8_recurrent.layer_gru,
    "svdf": s8_recurrent.layer_svdf,
}


def build(name: str, graph: ir.Graph, qtable: dict[str, Any], qparams: dict[str, np.ndarray], hash_text: str,
          choices: Choices = Choices()) -> Generated:
    """The templates, their context and the arena plan of a network on the s8/s16 kernels (``choices``:
    ``legacy_softmax`` is the legacy backend's, unused here; ``overlap``: outputs planned over consumed inputs where
    the bundled kernels allow it, :mod:`nnscons.overlap`; ``bands``: streams of layers run a few rows at a time,
    :mod:`nnscons.patches`; ``by_memory``: :mod:`nnscons.order`)."""
    model = open_model(name, graph, qtable, qparams, hash_text, choices.overlap, choices.bands, choices.by_memory)
    model.kernels = {op.name: choose_kernel(model, op) for op in model.graph.ops}
    plan_scratch(model, bundled=choices.overlap)
    place_io(model)
    layers = [build_layer(model, op) for op in model.graph.ops]
    ctx = context(model, layers)
    ctx["layers"] = stream_layers(model, layers)
    return Generated(TEMPLATES, ctx, plan_json(model))


def choose_kernel(model: Model, op: ir.Op) -> kernels.Kernel:
    """The layer's kernel; its word size is its output's (or, for an op that outputs floats, its input's)."""
    dtype = model.act_dtype(op.outputs[0])
    if op.type == "softmax" and (model.act_dtype(op.inputs[0]), dtype) == ("int8", "int16"):
        return kernels.softmax_s8_s16_kernel()
    if op.type == "quantize" and kernels.requantizes(model.act_dtype(op.inputs[0]), dtype):
        return kernels.requantize_kernel(model.act_dtype(op.inputs[0]), dtype)
    if dtype not in ("int8", "int16"):
        dtype = next((model.act_dtype(t) for t in op.inputs if not model.graph.tensors[t].is_const), dtype)
    multiplier = model.layers_q.get(op.name, {}).get("multiplier")
    per_channel = op.type in kernels.WEIGHTED_OPS and isinstance(multiplier, list) and len(multiplier) > 1
    kernel = kernels.layer_kernel(model.graph, op, dtype, per_channel)
    for name in op.inputs:
        t = model.graph.tensors[name]
        if not t.is_const and model.act_dtype(name) != dtype:
            raise kernels.unsupported(op, kernel.suffix, f"its input {name} is {model.act_dtype(name)} but its "
                                                         f"output is {dtype}")
    return kernel


def plan_scratch(model: Model, bundled: bool = False) -> None:
    """Each layer's scratch buffer placed in the arena per feature set (:func:`nnscons.planner.place_scratch`), and
    the bytes the arena needs beyond the activations for them (``model.scratch``). ``bundled``: the code runs on
    nnscons' own kernels (overlap=on guarantees it), which need less than Arm's on some Helium paths."""
    def size(kernel: kernels.Kernel, features: str) -> int:
        return bundled_scratch(kernel, features) if bundled else kernel.scratch[features]

    runs_at = {index: s.sink for s in model.streams for index in s.ops}
    for features in kernels.FEATURE_SETS:
        requests = [(op.name, runs_at.get(index, index), size(model.kernels[op.name], features))
                    for index, op in enumerate(model.graph.ops) if size(model.kernels[op.name], features) > 0]
        placed, end = planner.place_scratch(model.plan, requests)
        model.scratch[features] = end - model.plan.arena_size
        model.scratch_at[features] = {s.layer: s for s in placed}


def build_layer(model: Model, op: ir.Op) -> dict[str, Any]:
    """One layer's template values: the shared header, then its kernel kind's builder."""
    kernel = model.kernels[op.name]
    q = model.layer_table(op)
    ctx = layer_header(model, op)
    ctx["comment"] += _comment_notes(op, kernel)
    builder = S8_LAYERS.get(kernel.kind)
    if builder is None:
        raise NnsconsError(None, f"codegen: layer {op.name}: the s8 backend has no code for kernel kind "
                                 f"{kernel.kind!r}")
    ctx.update(builder(model, op, q, kernel))
    ctx["comment"] += ctx.pop("notes", [])
    ctx["scratch"] = any(op.name in placed for placed in model.scratch_at.values())
    return ctx


def _comment_notes(op: ir.Op, kernel: kernels.Kernel) -> list[str]:
    """The comment lines that say how a layer without a kernel of its own runs."""
    lines = []
    if kernel.kind in ("mean", "sub"):
        lines.append(f"  generated loop (CMSIS-NN has no {op.type}), TFLite's integer arithmetic")
    if kernel.kind == "pad":
        lines.append("  generated loop: the pad value everywhere, then the input copied in")
    if kernel.kind == "lookup":
        lines.append(f"  table lookup (CMSIS-NN has no s8 {op.type}), TFLite's integer arithmetic")
    if op.type == "fully_connected" and kernel.kind == "conv":
        lines.append("  as a 1x1 convolution: one multiplier per output (the fully connected kernel takes one)")
    return lines


def context(model: Model, layers: list[dict[str, Any]]) -> dict[str, Any]:
    """The template context: the shared part, and which calls and generated helpers the layers use."""
    kinds = {layer["kind"] for layer in layers}
    return {
        **shared_context(model, layers, DSP_CHECK),
        "uses_ctx": bool(kinds & {"conv", "depthwise", "fc", "avgpool", "maxpool"})
        or any(layer["kind"] == "svdf" and not layer["wide"] and not layer["state_offset"] for layer in layers),
        "own_kernels": sorted({layer["function"] for layer in layers if layer["function"].startswith("nnscons_")}),
        "uses_status": any(layer["kind"] in _STATUS_KINDS or (layer["kind"] == "softmax" and layer["suffix"] == "s16")
                           for layer in layers),
        "clamp_types": sorted({layer["ctype"] for layer in layers if layer["kind"] == "clamp"}),
        "uses_mean": any(layer["kind"] == "mean" for layer in layers),
        "uses_sub": any(layer["kind"] == "sub" for layer in layers),
        "uses_lookup": any(layer["kind"] == "lookup" for layer in layers),
        "requantize_kinds": s8_loops.requantize_kinds(layers),
        "pad_types": sorted({layer["ctype"] for layer in layers if layer["kind"] == "pad"}),
    }
