"""Static memory plan (part of the codegen stage): where every activation lives in the arena.

The generated C has no malloc: all activations share one statically sized arena. Following the seed guide
("reuse buffers not used at the same time"), each activation tensor gets a byte range, and two tensors may share
bytes only if their lifetimes do not overlap:

* A tensor lives from the op that produces it to the last op that reads it (op indices, inclusive). An op's
  inputs and outputs are therefore live together and never overlap (the kernels do not work in place).
  Graph inputs live from the start (they are copied in before the first op), graph outputs to the end (they
  are copied out after the last op).
* A ``reshape`` only reinterprets its input, so its output *aliases* the input: one buffer, whose lifetime is
  the union of its tensors' lifetimes.
* Size is ``numel * element size`` (batch 1), the element size from the tensor's quantized dtype in the
  qtable (a float model's tensors become int8/int16 there).
* Placement is greedy: buffers in order of decreasing size, each at the lowest 16-byte-aligned offset that does
  not overlap any already placed buffer whose lifetime overlaps its own.

A stream's layers (:mod:`nnscons.patches`, option ``patches``) run at their sink's place, so their reads and writes
count there; their outputs are bands of a few rows (sized by the stream's tables), and the sink's int32 sums a
buffer of their own (``<sink>_sums``), live during the sink.

Kernel scratch memory is planned after the activations (:func:`place_scratch`): a layer's scratch buffer lives
only while its layer runs, so it goes, per feature set (its size depends on the kernels' code paths), at the
lowest aligned offset where no activation live at that layer is; the arena grows past the activations only when
no such gap is large enough. ``plan.json`` lists the buffers, the activation arena size and each layer's scratch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from . import ir
from .errors import NnsconsError

ALIGNMENT = 16
PLAN_VERSION = 1

# ops whose output is the input reinterpreted, sharing its memory
ALIAS_OPS = ("reshape",)


@dataclass
class Buffer:
    """One region of the arena, shared by a tensor and its aliases."""

    name: str                    # the buffer's first tensor (graph input or the output of the op making it)
    tensors: list[str]           # every tensor stored here, in creation order
    size: int                    # bytes
    first: int                   # first op index the buffer is live at (0 for graph inputs)
    last: int                    # last op index the buffer is live at
    offset: int = -1
    overlap: Optional[dict[str, Any]] = None    # placed over the buffer ``over`` it is made from: lag, rule

    def overlaps_in_time(self, other: "Buffer") -> bool:
        return self.first <= other.last and other.first <= self.last

    def overlaps_in_memory(self, other: "Buffer") -> bool:
        return self.offset < other.offset + other.size and other.offset < self.offset + self.size

    def to_json(self) -> dict[str, Any]:
        d = {"name": self.name, "tensors": list(self.tensors), "offset": self.offset, "size": self.size,
             "first_op": self.first, "last_op": self.last}
        if self.overlap:
            d["overlap"] = dict(self.overlap)
        return d


@dataclass
class Plan:
    buffers: list[Buffer]                       # in creation order
    arena_size: int                             # activation arena, bytes, a multiple of ALIGNMENT
    by_tensor: dict[str, Buffer] = field(default_factory=dict)

    def offset(self, tensor: str) -> int:
        return self.by_tensor[tensor].offset

    def to_json(self) -> dict[str, Any]:
        return {"format": "nnscons-plan", "version": PLAN_VERSION, "alignment": ALIGNMENT,
                "activation_arena_size": self.arena_size, "buffers": [b.to_json() for b in self.buffers]}


def align(value: int, alignment: int = ALIGNMENT) -> int:
    return (value + alignment - 1) // alignment * alignment


def tensor_bytes(graph: ir.Graph, qtable: Optional[dict[str, Any]], name: str) -> int:
    """Bytes of one activation at batch 1, in the dtype it is stored as."""
    tensor = graph.tensors[name]
    dtype = tensor.dtype
    if qtable is not None and name in qtable.get("tensors", {}):
        dtype = qtable["tensors"][name]["dtype"]
    return tensor.size * np.dtype(dtype).itemsize


def plan(graph: ir.Graph, qtable: Optional[dict[str, Any]] = None, overlaps: Optional[dict[int, Any]] = None,
         streams: Sequence[Any] = ()) -> Plan:
    """The arena plan of a graph's activations (see the module docstring). ``overlaps``: op index -> an
    :class:`nnscons.overlap.Overlap` (``source`` tensor, ``lag`` bytes, ``rule``) for the layers whose output may
    start ``lag`` bytes below their input, used where that input dies at the layer. ``streams``:
    :class:`nnscons.patches.Stream` objects, whose layers run at their sink's place and whose tensors are bands of
    a few rows; each adds its sink's int32 sums (``<sink>_sums``), live during the sink."""
    at = {index: s.sink for s in streams for index in s.ops}
    sizes = {t: band.size for s in streams for t, band in s.bands.items()}
    buffers = _buffers(graph, qtable, at, sizes)
    for s in streams:
        buffers.append(Buffer(sums_name(graph, s.sink), [sums_name(graph, s.sink)], s.sums_bytes, s.sink, s.sink))
    overlaps = {i: o for i, o in (overlaps or {}).items() if i not in at}
    units = _overlap_units(graph, buffers, overlaps)
    _place_units(units)
    end = max((b.offset + b.size for b in buffers), default=0)
    result = Plan(buffers, align(end))
    for buffer in buffers:
        for name in buffer.tensors:
            result.by_tensor[name] = buffer
    return result


def sums_name(graph: ir.Graph, sink: int) -> str:
    """The buffer of a stream sink's sums."""
    return f"{graph.ops[sink].name}_sums"


# ---- lifetimes ---------------------------------------------------------------------------------------------------
def _buffers(graph: ir.Graph, qtable: Optional[dict[str, Any]], at: Mapping[int, int],
             sizes: Mapping[str, int]) -> list[Buffer]:
    """Every activation's buffer and lifetime; ``at``: op index -> the index it runs at (a stream's layers run at
    its sink's), ``sizes``: tensor -> bytes where not the whole tensor (a stream's bands)."""
    last_op = max(len(graph.ops) - 1, 0)
    owner: dict[str, Buffer] = {}      # tensor -> its buffer
    buffers: list[Buffer] = []

    def new_buffer(name: str, first: int) -> None:
        size = sizes[name] if name in sizes else tensor_bytes(graph, qtable, name)
        buffer = Buffer(name, [name], size, first, first)
        buffers.append(buffer)
        owner[name] = buffer

    def touch(name: str, index: int) -> None:
        buffer = owner[name]
        buffer.first, buffer.last = min(buffer.first, index), max(buffer.last, index)

    for name in graph.inputs:
        if name not in owner:
            new_buffer(name, 0)
    for position, op in enumerate(graph.ops):
        index = at.get(position, position)
        for name in op.inputs:
            tensor = graph.tensors[name]
            if tensor.is_const:
                continue
            if name not in owner:
                raise NnsconsError(None, f"plan: op {op.name} reads tensor {name} before anything writes it")
            touch(name, index)
        for name in op.outputs:
            if name in owner:
                raise NnsconsError(None, f"plan: tensor {name} is written twice (op {op.name})")
            source = op.inputs[0] if op.inputs else None
            if op.type in ALIAS_OPS and source in owner:
                buffer = owner[source]
                buffer.tensors.append(name)
                buffer.size = max(buffer.size, tensor_bytes(graph, qtable, name))
                owner[name] = buffer
                touch(name, index)
            else:
                new_buffer(name, index)
    for name in graph.outputs:
        if name not in owner:
            raise NnsconsError(None, f"plan: graph output {name} is never written")
        touch(name, last_op)
    return buffers


# ---- overlapping outputs -----------------------------------------------------------------------------------------
def _overlap_units(graph: ir.Graph, buffers: list[Buffer], overlaps: dict[int, Any]) -> list[list[tuple[Buffer, int]]]:
    """The buffers in placement units: a buffer alone, or a chain of layers' inputs and outputs at fixed distances
    (each output ``lag`` bytes below its input, which must die at that layer and not be a graph output)."""
    owner = {name: b for b in buffers for name in b.tensors}
    outputs = {id(owner[name]) for name in graph.outputs}
    below: dict[int, tuple[Buffer, int, str]] = {}      # id(input buffer) -> (output buffer, lag, rule)
    for index, o in sorted(overlaps.items()):
        source, result = owner.get(o.source), owner.get(graph.ops[index].outputs[0])
        if source is None or result is None or source is result or id(source) in outputs or source.last != index:
            continue
        if id(source) in below or any(result is r for r, _, _ in below.values()):
            continue
        below[id(source)] = (result, o.lag, o.rule)
        result.overlap = {"over": source.name, "lag": o.lag, "rule": o.rule}
    heads = [b for b in buffers if not any(b is r for r, _, _ in below.values())]
    units = []
    for head in heads:
        unit, offset, buffer = [(head, 0)], 0, head
        while id(buffer) in below:
            buffer, lag, _ = below[id(buffer)]
            offset -= lag
            unit.append((buffer, offset))
        lowest = min(rel for _, rel in unit)
        units.append([(b, rel - lowest) for b, rel in unit])
    return units


# ---- placement ---------------------------------------------------------------------------------------------------
def _place_units(units: list[list[tuple[Buffer, int]]]) -> None:
    """Greedy: largest first (ties by creation order), each unit at the lowest aligned offset where every member is
    free during its lifetime."""
    def extent(unit: list[tuple[Buffer, int]]) -> int:
        return max(rel + b.size for b, rel in unit)

    order = sorted(range(len(units)), key=lambda i: (-extent(units[i]), units[i][0][0].first, i))
    placed: list[Buffer] = []
    for i in order:
        unit = units[i]
        candidates = {0}
        for member, rel in unit:
            for other in placed:
                if other.overlaps_in_time(member):
                    candidates.add(max(0, align(other.offset + other.size - rel)))
        for offset in sorted(candidates):
            if all(_free(placed, member, offset + rel) for member, rel in unit):
                break
        for member, rel in unit:
            member.offset = offset + rel
            placed.append(member)


def _free(placed: list[Buffer], buffer: Buffer, offset: int) -> bool:
    """No placed buffer live at the same time as ``buffer`` uses its bytes if it starts at ``offset``."""
    return all(not other.overlaps_in_time(buffer) or offset + buffer.size <= other.offset
               or other.offset + other.size <= offset for other in placed)


# ---- kernel scratch ----------------------------------------------------------------------------------------------
@dataclass
class Scratch:
    """One layer's scratch buffer in one feature set's arena."""

    layer: str
    op_index: int
    size: int
    offset: int


def place_scratch(plan: Plan, requests: list[tuple[str, int, int]]) -> tuple[list[Scratch], int]:
    """Each ``(layer, op_index, size)`` scratch buffer at the lowest aligned offset that no buffer live at its op
    occupies; and the arena size with them (at least the activations')."""
    placed = []
    end = plan.arena_size
    for layer, index, size in requests:
        live = sorted((b for b in plan.buffers if b.first <= index <= b.last), key=lambda b: b.offset)
        offset = 0
        for other in live:
            if offset + size <= other.offset:
                break
            offset = max(offset, align(other.offset + other.size))
        placed.append(Scratch(layer, index, size, offset))
        end = max(end, align(offset + size))
    return placed, end
