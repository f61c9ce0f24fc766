"""Row streaming (part of the codegen stage, beside the planner): the first stages of a network run a few rows at a
time, so that their large activations never exist whole (MCUNetV2's patch-based inference, in horizontal bands
that keep their halo rows instead of recomputing them).

A *stream* is a set of row-local layers feeding one *sink* that reduces their last output (the *anchor*) over its
rows: a global average pooling (per-channel sums) or a fully connected layer (partial dot products). Row-local
layers are the ones whose output row ``y`` reads only input rows ``[y * stride - pad_top, ... + reach)``:
convolutions (not 1xN), depthwise convolutions, windowed pooling, and the element-wise add / mul / clamp / lookup
on equal shapes. Every tensor a stream makes is read only inside it, so it can be kept as a *band*: the rows still
needed, in a buffer of ``capacity`` rows.

The stream runs at the sink's place in ``steps`` steps. Step ``k`` computes anchor rows up to ``(k + 1) * rows``;
walking back from it, every layer computes the rows its consumers will read in that step (``until[k]``), after
dropping the rows none of them will read again (those below ``keep[k]``: the kept rows move to the band's start).
A layer computes each row once; the cost is the kernels' per-call overhead on a few rows and the moves. The
tables are computed here, verified (every read falls inside what the band holds), and emitted into the C, whose
loop follows them.

Option ``patches``: ``off`` (the default: the kernels' per-call work, paid once per step, costs instructions);
``auto`` (one anchor row per step, where it lowers the arena); or ``N``, the anchor cut into N bands of rows.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from . import ir
from .errors import NnsconsError
from .kernels import conv_geometry

ELEMENTWISE = ("add", "mul", "relu", "relu6", "clip", "logistic", "tanh", "leaky_relu")
SINKS = ("avg_pool2d", "fully_connected")


@dataclass(frozen=True)
class Window:
    """Output row ``y`` of a row-local layer reads input rows ``[y * stride - pad_top, y * stride - pad_top +
    reach)`` (clipped to the input)."""

    stride: int
    pad_top: int
    reach: int

    def first_row(self, y: int, in_rows: int) -> int:
        """The first input row output row ``y`` reads."""
        return min(max(y * self.stride - self.pad_top, 0), in_rows)

    def rows_until(self, y_end: int, in_rows: int) -> int:
        """The input rows output rows ``[0, y_end)`` read: up to this one."""
        return 0 if y_end <= 0 else min((y_end - 1) * self.stride - self.pad_top + self.reach, in_rows)


@dataclass
class Band:
    """A tensor of a stream: ``rows`` rows of ``row_bytes``, kept ``capacity`` rows at a time."""

    tensor: str
    rows: int
    row_bytes: int
    capacity: int = 0
    until: list[int] = field(default_factory=list)     # rows computed by the end of each step
    keep: list[int] = field(default_factory=list)      # the first row kept when a step computes new ones

    @property
    def size(self) -> int:
        return self.capacity * self.row_bytes


@dataclass
class Stream:
    """Layers ``ops`` (op indices, in graph order) run in ``steps`` steps at the place of ``sink``, which reduces
    ``anchor`` as its rows come."""

    ops: list[int]
    sink: int
    anchor: str
    steps: int
    rows_per_step: int
    bands: dict[str, Band]
    inputs: list[str]                 # whole tensors the stream reads (made before it)
    sums_bytes: int                   # the sink's int32 accumulators

    def to_json(self) -> dict[str, Any]:
        return {"ops": list(self.ops), "sink": self.sink, "anchor": self.anchor, "steps": self.steps,
                "rows_per_step": self.rows_per_step, "inputs": list(self.inputs), "sums_bytes": self.sums_bytes,
                "bands": {t: {"rows": b.rows, "row_bytes": b.row_bytes, "capacity": b.capacity}
                          for t, b in self.bands.items()}}


def parse(option: str) -> Optional[int]:
    """``off`` -> None, ``auto`` -> 0, ``N`` -> N bands."""
    if option == "off":
        return None
    if option == "auto":
        return 0
    if option.isdigit() and int(option) >= 1:
        return int(option)
    raise NnsconsError(None, f"option patches={option!r}: expected off, auto or a number of bands >= 1")


# ---- which layers stream ------------------------------------------------------------------------------------------
def window(graph: ir.Graph, op: ir.Op) -> Optional[Window]:
    """The layer's row window if it is row-local on batch-1 NHWC tensors, else None."""
    acts = [t for t in op.inputs if not graph.tensors[t].is_const]
    if len(op.outputs) != 1 or not acts:
        return None
    shapes = [graph.tensors[t].shape for t in acts + op.outputs]
    if any(len(s) != 4 or s[0] != 1 for s in shapes):
        return None
    if op.type in ("conv2d", "depthwise_conv2d"):
        g = conv_geometry(graph, op)
        if g.filter.h == 1 and g.filter.w > 1:
            return None             # arm_convolve_1_x_n_s8 on a one-row band would need other scratch
        return Window(g.stride[0], g.padding[0], (g.filter.h - 1) * g.dilation[0] + 1)
    if op.type in ("avg_pool2d", "max_pool2d"):
        if is_global_pool(graph, op):
            return None
        return Window(int(op.attrs.get("stride", [1, 1])[0]), int(op.attrs.get("pad", [0])[0]),
                      int(op.attrs["kernel"][0]))
    if op.type in ELEMENTWISE and all(s == shapes[-1] for s in shapes):
        return Window(1, 0, 1)
    return None


def is_global_pool(graph: ir.Graph, op: ir.Op) -> bool:
    x = graph.tensors[op.inputs[0]].shape
    return (op.type == "avg_pool2d" and len(x) == 4 and list(op.attrs["kernel"]) == [x[1], x[2]]
            and not any(op.attrs.get("pad", [0, 0, 0, 0])) and graph.tensors[op.outputs[0]].size == x[3])


def is_sink(graph: ir.Graph, op: ir.Op) -> bool:
    """A global average pooling, or a fully connected layer, over a batch-1 NHWC tensor."""
    x = graph.tensors[op.inputs[0]].shape
    if len(x) != 4 or x[0] != 1:
        return False
    if op.type == "avg_pool2d":
        return is_global_pool(graph, op)
    return op.type == "fully_connected" and graph.tensors[op.inputs[1]].shape[1] == x[1] * x[2] * x[3]


def find(graph: ir.Graph, int8: set[str], bands: int) -> list[Stream]:
    """Every stream of the graph (``int8``: the tensors stored as int8, the only ones the bands handle; ``bands``:
    0 for one anchor row per step, else the number of bands)."""
    streams = []
    for index, op in enumerate(graph.ops):
        if is_sink(graph, op) and op.inputs[0] in int8:
            ops = _region(graph, index, int8)
            if ops:
                streams.append(schedule(graph, ops, index, bands))
    return streams


def _region(graph: ir.Graph, sink: int, int8: set[str]) -> list[int]:
    """The largest set of row-local layers before ``sink`` whose outputs only the set or the sink read, containing
    the producer of the sink's input (the anchor); [] if there is none."""
    anchor = graph.ops[sink].inputs[0]
    region: set[int] = set()
    index_of = {op.name: i for i, op in enumerate(graph.ops)}
    for index in range(sink - 1, -1, -1):
        op = graph.ops[index]
        out = op.outputs[0] if len(op.outputs) == 1 else None
        if out is None or out in graph.outputs or window(graph, op) is None:
            continue
        if not all(t in int8 for t in op.inputs + op.outputs if not graph.tensors[t].is_const):
            continue
        readers = {index_of[c.name] for c in graph.consumers(out)}
        if readers and readers <= region | {sink} and (sink not in readers or out == anchor):
            region.add(index)
    producer = graph.producer(anchor)
    if producer is None or index_of[producer.name] not in region:
        return []
    return sorted(region)


# ---- the schedule -------------------------------------------------------------------------------------------------
def schedule(graph: ir.Graph, ops: list[int], sink: int, bands: int) -> Stream:
    """The step tables of a stream (see the module docstring), verified."""
    anchor = graph.ops[sink].inputs[0]
    rows = graph.tensors[anchor].shape[1]
    per_step = 1 if bands == 0 else -(-rows // min(bands, rows))
    made = {graph.ops[i].outputs[0]: i for i in ops}
    result = {t: _band(graph, t) for t in made}
    rates = _rates(graph, ops, anchor, per_step, made)
    while not result[anchor].until or result[anchor].until[-1] < rows:
        k = len(result[anchor].until)
        if k > 4 * sum(b.rows for b in result.values()):
            raise NnsconsError(None, f"patches: the stream into {graph.ops[sink].name} makes no progress")
        for index in ops:
            op = graph.ops[index]
            band = result[op.outputs[0]]
            before = band.until[-1] if band.until else 0
            band.until.append(min(_computable(graph, op, result), before + rates[op.outputs[0]]))
    steps = len(result[anchor].until)
    for tensor, band in result.items():
        band.keep = [_keep(graph, tensor, band, k, made, result) for k in range(steps)]
        band.capacity = max(band.until[k] - band.keep[k] for k in range(steps)
                            if band.until[k] > (band.until[k - 1] if k else 0))
    inputs = sorted({t for i in ops for t in graph.ops[i].inputs if t not in made and not graph.tensors[t].is_const})
    stream = Stream(list(ops), sink, anchor, steps, per_step, result, inputs, 4 * _sums(graph, graph.ops[sink]))
    verify(graph, stream)
    return stream


def _rates(graph: ir.Graph, ops: list[int], anchor: str, per_step: int, made: dict[str, int]) -> dict[str, int]:
    """Rows per step of every tensor of the stream: the anchor's ``per_step``, and a producer as many as its
    fastest reader consumes (``stride`` rows per output row)."""
    rates = {anchor: per_step}
    for index in reversed(ops):
        tensor = graph.ops[index].outputs[0]
        if tensor != anchor:
            rates[tensor] = max(_window(graph, c).stride * rates[c.outputs[0]] for c in _readers(graph, tensor, made))
    return rates


def _computable(graph: ir.Graph, op: ir.Op, bands: dict[str, Band]) -> int:
    """How many output rows ``op`` can have made, given the rows its inputs have so far in this step."""
    w = _window(graph, op)
    out_rows = graph.tensors[op.outputs[0]].shape[1]
    result = out_rows
    for tensor in (t for t in op.inputs if t in bands):
        band = bands[tensor]
        have = band.until[-1] if band.until else 0
        if have < band.rows:
            result = min(result, max(0, (have - w.reach + w.pad_top) // w.stride + 1))
    return result


def _window(graph: ir.Graph, op: ir.Op) -> Window:
    w = window(graph, op)
    if w is None:
        raise NnsconsError(None, f"patches: {op.name} is not row-local")
    return w


def _band(graph: ir.Graph, tensor: str) -> Band:
    _, h, w, c = graph.tensors[tensor].shape
    return Band(tensor, h, w * c)


def _readers(graph: ir.Graph, tensor: str, made: dict[str, int]) -> list[ir.Op]:
    return [c for c in graph.consumers(tensor) if c.outputs[0] in made]


def _keep(graph: ir.Graph, tensor: str, band: Band, k: int, made: dict[str, int], bands: dict[str, Band]) -> int:
    """The first row of ``tensor`` a reader will read from step ``k`` on (never above what is already made)."""
    before = band.until[k - 1] if k else 0
    readers = _readers(graph, tensor, made)
    if not readers:                              # the anchor: the sink reads each step's new rows
        return before
    firsts = []
    for reader in readers:
        done = bands[reader.outputs[0]].until[k - 1] if k else 0
        w = _window(graph, reader)
        out_rows = graph.tensors[reader.outputs[0]].shape[1]
        firsts.append(band.rows if done >= out_rows else w.first_row(done, band.rows))
    return min(min(firsts), before)


def _sums(graph: ir.Graph, sink: ir.Op) -> int:
    """The sink's accumulators: one per channel (pooling) or per output (fully connected)."""
    return graph.tensors[sink.outputs[0]].size


def verify(graph: ir.Graph, stream: Stream) -> None:
    """Every read of every step falls inside the rows its band holds then, and no band outgrows its capacity."""
    for k in range(stream.steps):
        for index in stream.ops:
            op = graph.ops[index]
            out = stream.bands[op.outputs[0]]
            done = out.until[k - 1] if k else 0
            if out.until[k] <= done:
                continue
            if out.until[k] - min(out.keep[k], done) > out.capacity:
                raise NnsconsError(None, f"patches: {op.name} outgrows its band at step {k}")
            w = _window(graph, op)
            for tensor in (t for t in op.inputs if t in stream.bands):
                band = stream.bands[tensor]
                first, end = w.first_row(done, band.rows), w.rows_until(out.until[k], band.rows)
                held_from = _held_from(band, k)
                if first < held_from or end > band.until[k]:
                    raise NnsconsError(None, f"patches: {op.name} reads rows {first}..{end} of {tensor} at step "
                                             f"{k}, which holds {held_from}..{band.until[k]}")


def _held_from(band: Band, k: int) -> int:
    """The first row the band holds during step ``k`` (set by the last step that computed rows)."""
    for j in range(k, -1, -1):
        before = band.until[j - 1] if j else 0
        if band.until[j] > before:
            return min(band.keep[j], before)
    return 0
