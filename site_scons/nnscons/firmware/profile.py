"""Per-layer profile of a firmware run (part of :mod:`nnscons.firmware`): which layer costs what.

The profile image is the firmware image with every model library compiled with ``-DNNSCONS_TRACE``: after each
layer the generated code calls ``nnscons_trace``, which the runner implements by printing, for the first input,
``nnscons layer model=M index=I name=N ticks=T instructions=K``: the count from the end of the previous layer
(or the start of the inference) to the end of this one, to within one SysTick tick (1e9 / clock_hz instructions).
Here each layer gets its kind of kernel and its multiply-accumulates from the IR graph, so that a report can say
instructions per MAC per kernel type.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Mapping

import numpy as np

from .. import ir

# The kernel types a profile groups layers by, in the order tables list them
KERNEL_TYPES = ("conv 1x1", "conv im2col", "depthwise", "fc", "pooling", "add", "mul", "softmax", "other")

_POOLING = {"avg_pool2d", "max_pool2d", "mean"}
_SIMPLE = {"add": "add", "sub": "add", "mul": "mul", "softmax": "softmax", "fully_connected": "fc",
           "depthwise_conv2d": "depthwise"}


def kernel_type(graph: ir.Graph, op: ir.Op) -> str:
    """The kernel type of a layer: a convolution is ``conv 1x1`` when its filter is 1x1 (no im2col), else
    ``conv im2col``."""
    if op.type == "conv2d":
        _, kh, kw, _ = graph.tensors[op.inputs[1]].shape
        return "conv 1x1" if (kh, kw) == (1, 1) else "conv im2col"
    if op.type in _POOLING:
        return "pooling"
    return _SIMPLE.get(op.type, "other")


def layer_macs(graph: ir.Graph, op: ir.Op) -> int:
    """Multiply-accumulates of a convolution, depthwise convolution or fully connected layer (0 for the others)."""
    out = graph.tensors[op.outputs[0]]
    if op.type in ("conv2d", "depthwise_conv2d"):
        w = graph.tensors[op.inputs[1]].shape       # OHWI (conv) or 1HWC (depthwise)
        taps = w[1] * w[2] * (w[3] if op.type == "conv2d" else 1)
        return int(np.prod(out.shape)) * int(taps)
    if op.type == "fully_connected":
        return int(out.size) * int(graph.tensors[op.inputs[1]].shape[1])
    return 0


def layer_rows(graph: ir.Graph, counts: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The profile of one model: per traced layer (``index``, ``name``, ``instructions``; a layer of a stream
    traces each band, its counts add up) its op type, kernel type, MACs, output values, instructions per MAC and
    share of the layers' total, in graph order."""
    summed: dict[int, int] = {}
    for c in counts:
        summed[int(c["index"])] = summed.get(int(c["index"]), 0) + int(c["instructions"])
    rows = [{"index": index, "instructions": summed[index]} for index in sorted(summed)]
    total = sum(summed.values()) or 1
    profile = []
    for c in rows:
        index = int(c["index"])
        if not 0 <= index < len(graph.ops):
            raise ValueError(f"layer index {index} is not in the graph ({len(graph.ops)} ops)")
        op = graph.ops[index]
        macs = layer_macs(graph, op)
        instructions = int(c["instructions"])
        profile.append({"index": index, "name": op.name, "op": op.type, "kernel": kernel_type(graph, op),
                        "macs": macs, "outputs": int(graph.tensors[op.outputs[0]].size), "instructions": instructions,
                        "per_mac": round(instructions / macs, 3) if macs else None,
                        "share": round(instructions / total, 4)})
    return profile


def by_kernel_type(layers: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Layers summed by kernel type: instructions, MACs, output values, layers, and instructions per MAC (where
    there are MACs)."""
    totals: dict[str, dict[str, Any]] = defaultdict(lambda: {"instructions": 0, "macs": 0, "outputs": 0,
                                                             "layers": 0})
    for layer in layers:
        t = totals[layer["kernel"]]
        t["instructions"] += int(layer["instructions"])
        t["macs"] += int(layer["macs"])
        t["outputs"] += int(layer["outputs"])
        t["layers"] += 1
    for t in totals.values():
        t["per_mac"] = round(t["instructions"] / t["macs"], 3) if t["macs"] else None
    return {k: totals[k] for k in KERNEL_TYPES if k in totals}
