"""The network a backend generates code for, and the parts of the generated code that do not depend on the backend.

A :class:`Model` holds the lowered graph (a leading ``quantize`` from a float input and a trailing ``dequantize``
to a float output absorbed: the C API's conversion helpers do them), the quantization table, the arena plan with
one named pointer per buffer, the constant arrays of ``<name>_weights.c`` and the network's inputs and outputs.
Each backend (:mod:`~nnscons.codegen.s8`, :mod:`~nnscons.codegen.legacy`) opens one with :func:`open_model`,
fills in the kernel of every layer and the scratch sizes, and builds each layer's context on top of
:func:`layer_header` and the template context on top of :func:`shared_context`.

Part of :mod:`nnscons.codegen`, on top of :mod:`~nnscons.codegen.common`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Optional

import numpy as np

from .. import ir, order, patches, planner
from ..overlap import overlaps
from ..errors import NnsconsError
from ..kernels import FEATURE_SETS, Kernel
from .common import CTYPES, IO, LINE_WIDTH, MAX_RANK, Array, c_string, shape_text

MVE_CHECK = "defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)"


@dataclass
class Lowered:
    """The graph the C runs: absorbed input quantize / output dequantize ops removed."""

    graph: ir.Graph
    absorbed: list[ir.Op] = field(default_factory=list)


@dataclass
class Model:
    """Everything the layers of one network share while its code is generated."""

    name: str
    qtable: dict[str, Any]
    qparams: dict[str, np.ndarray]
    hash_text: str
    source: ir.Graph                   # the graph as imported (positions and shapes of graph.json)
    lowered: Lowered
    plan: planner.Plan
    op_index: dict[str, int]           # op name -> its position in graph.json
    pointers: dict[str, str]           # tensor -> the name of its pointer into the arena
    kernels: dict[str, Kernel] = field(default_factory=dict)       # op name -> kernel (the backend's choice)
    scratch: dict[str, int] = field(default_factory=dict)          # bytes past the activations, per feature set
    scratch_at: dict[str, dict[str, planner.Scratch]] = field(default_factory=dict)   # feature set -> layer ->
    inputs: list[IO] = field(default_factory=list)
    outputs: list[IO] = field(default_factory=list)
    arrays: list[Array] = field(default_factory=list)
    array_names: dict[str, str] = field(default_factory=dict)      # constant key -> C array (shared ones once)
    streams: list[patches.Stream] = field(default_factory=list)    # layers run a few rows at a time
    states: list[dict[str, Any]] = field(default_factory=list)     # what recurrent layers carry between calls

    @property
    def graph(self) -> ir.Graph:
        return self.lowered.graph

    @property
    def tensors(self) -> dict[str, Any]:
        return self.qtable.get("tensors", {})

    @property
    def layers_q(self) -> dict[str, Any]:
        return self.qtable.get("layers", {})

    # ---- the quantization table ------------------------------------------------------------------------------------
    def tq(self, tensor: str) -> dict[str, Any]:
        if tensor not in self.tensors:
            raise NnsconsError(None, f"codegen: the quantization table has no entry for tensor {tensor}; "
                                     f"rebuild qtable.json for this graph")
        return self.tensors[tensor]

    def act_dtype(self, tensor: str) -> str:
        return str(self.tq(tensor)["dtype"])

    def scale_zp(self, tensor: str) -> tuple[float, int]:
        t = self.tq(tensor)
        if len(t["scale"]) != 1:
            raise NnsconsError(None, f"codegen: tensor {tensor} must be quantized per tensor")
        return float(t["scale"][0]), int(t["zero_point"][0])

    def quant_text(self, tensor: str) -> str:
        t = self.tq(tensor)
        if "qformat" in t:
            return str(t["qformat"])
        scales = t["scale"]
        if not scales:
            return "not quantized"
        if len(scales) == 1:
            return f"scale {scales[0]:.6g} zp {t['zero_point'][0]}"
        return f"per-channel scales {min(scales):.6g}..{max(scales):.6g} ({len(scales)})"

    def tensor_text(self, tensor: str) -> str:
        t = self.source.tensors[tensor]
        return f"{tensor} [{shape_text(t.shape)}] {self.tq(tensor)['dtype']} {self.quant_text(tensor)}"

    def layer_table(self, op: ir.Op) -> dict[str, Any]:
        """The layer's entry of the quantization table."""
        q = self.layers_q.get(op.name)
        if q is None:
            raise NnsconsError(None, f"codegen: the quantization table has no entry for layer {op.name}")
        return q

    # ---- constants -------------------------------------------------------------------------------------------------
    def constant(self, tensor: str, cname: str, ctype: str, values: np.ndarray, comment: list[str]) -> str:
        """Add a constant array (once per tensor) and return its C name."""
        key = f"{tensor}:{ctype}"
        if key in self.array_names:
            return self.array_names[key]
        self.arrays.append(Array(cname, ctype, values, comment))
        self.array_names[key] = cname
        return cname

    def qparam(self, op: ir.Op, tensor: str) -> np.ndarray:
        if tensor not in self.qparams:
            raise NnsconsError(None, f"codegen: layer {op.name}: no quantized data for constant {tensor}; "
                                     f"rebuild qparams.npz")
        return np.asarray(self.qparams[tensor])


def open_model(name: str, graph: ir.Graph, qtable: dict[str, Any], qparams: dict[str, np.ndarray],
               hash_text: str, overlap: bool = False, bands: Optional[int] = None,
               by_memory: bool = False) -> Model:
    """The lowered graph with its arena plan and pointers (``overlap``: with the outputs the bundled kernels may
    write over their inputs so placed; ``bands``: :func:`nnscons.patches.parse`'s reading of option patches;
    ``by_memory``: its ops in :func:`nnscons.order.memory_order` where that lowers the arena); the backend adds
    kernels, scratch and I/O."""
    lowered = lower(graph, qtable.get("tensors", {}))
    op_index = {op.name: index for index, op in enumerate(graph.ops)}
    plan, rules = _plan(lowered.graph, qtable, overlap)
    if by_memory:
        found = order.memory_order(lowered.graph, {t: planner.tensor_bytes(lowered.graph, qtable, t)
                                                   for t in lowered.graph.activations()})
        if found is not None and found != list(range(len(found))):
            graph_in_order = order.reordered(lowered.graph, found)
            plan_in_order, rules_in_order = _plan(graph_in_order, qtable, overlap)
            if plan_in_order.arena_size < plan.arena_size:
                lowered.graph, plan, rules = graph_in_order, plan_in_order, rules_in_order
    streams: list[patches.Stream] = []
    if bands is not None:
        int8 = {t for t, q in qtable.get("tensors", {}).items() if q.get("dtype") == "int8"}
        found = patches.find(lowered.graph, int8, bands)
        streamed = planner.plan(lowered.graph, qtable, rules, found)
        if found and (bands or streamed.arena_size < plan.arena_size):
            plan, streams = streamed, found
    return Model(name, qtable, qparams, hash_text, graph, lowered, plan, op_index, pointer_names(lowered.graph),
                 streams=streams)


def _plan(graph: ir.Graph, qtable: dict[str, Any], overlap: bool) -> tuple[planner.Plan, Any]:
    rules = overlaps(graph, qtable) if overlap else None
    return planner.plan(graph, qtable, rules), rules


def place_io(model: Model) -> None:
    """The network's inputs and outputs as the C API presents them (after the kernels: a layer's error first)."""
    graph = model.graph
    model.inputs = [network_io(model, t, i, len(graph.inputs), ("int8", "int16")) for i, t in enumerate(graph.inputs)]
    model.outputs = [network_io(model, t, i, len(graph.outputs), ("int8", "int16", "int32"))
                     for i, t in enumerate(graph.outputs)]


# ---- buffers -----------------------------------------------------------------------------------------------------
def pointer_names(graph: ir.Graph) -> dict[str, str]:
    """Tensor -> the name of its pointer into the arena."""
    names: dict[str, str] = {}
    for i, t in enumerate(graph.inputs):
        names.setdefault(t, f"net_in{i}")
    for op in graph.ops:
        for k, t in enumerate(op.outputs):
            names.setdefault(t, f"{op.name}_out" + (str(k) if k else ""))
    return names


def buffer_context(model: Model) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The offset macros (one per buffer) and the pointers the invoke function declares (only those it
    uses: a pointer no call reads or writes would be an unused variable)."""
    graph = model.graph
    used: set[str] = set(graph.inputs) | set(graph.outputs)
    for op in graph.ops:
        if model.kernels[op.name].kind != "alias":
            used.update(t for t in op.inputs + op.outputs if not graph.tensors[t].is_const)
    offsets, pointers = [], []
    for buffer in model.plan.buffers:
        macro = f"OFFSET_{model.pointers.get(buffer.name, buffer.name)}"
        over = ""
        if buffer.overlap:
            over = f" (over {model.pointers[buffer.overlap['over']]}, {buffer.overlap['lag']} B below: " \
                   f"{buffer.overlap['rule']})"
        offsets.append({"macro": macro, "offset": buffer.offset, "size": buffer.size,
                        "tensors": ", ".join(buffer.tensors) + over, "first": buffer.first, "last": buffer.last})
        for tensor in buffer.tensors:
            if tensor in used:
                pointers.append({"name": model.pointers[tensor], "macro": macro,
                                 "ctype": CTYPES[model.act_dtype(tensor)],
                                 "alias": model.pointers[buffer.name] if tensor != buffer.name else ""})
    return offsets, pointers


def network_io(model: Model, tensor: str, position: int, count: int, dtypes: tuple[str, ...]) -> IO:
    """A network input or output, whose type is one of ``dtypes`` (an output may be int32: a model's last
    quantize op can make one)."""
    dtype = model.act_dtype(tensor)
    if dtype not in dtypes:
        raise NnsconsError(None, f"codegen: network input/output {tensor} is {dtype}; only {', '.join(dtypes)} "
                                 f"are supported (a float input needs a leading quantize op)")
    shape = [int(s) for s in model.graph.tensors[tensor].shape]
    if len(shape) > MAX_RANK:
        raise NnsconsError(None, f"codegen: tensor {tensor} has rank {len(shape)} (at most {MAX_RANK})")
    scale, zero_point = model.scale_zp(tensor)
    info = np.iinfo(np.dtype(dtype))
    return IO(tensor, str(position) if count > 1 else "", CTYPES[dtype], dtype, shape,
              int(np.prod(shape, dtype=np.int64)) if shape else 1, scale, zero_point,
              model.tq(tensor).get("frac_bits"), int(info.min), int(info.max), model.pointers[tensor])


# ---- layers ------------------------------------------------------------------------------------------------------
def layer_header(model: Model, op: ir.Op) -> dict[str, Any]:
    """What every layer's context has, whatever the backend: its kernel, its comment (the backend may add lines),
    its activation pointers and the trace hook's arguments."""
    kernel = model.kernels[op.name]
    tensors = model.graph.tensors
    ctx: dict[str, Any] = {
        "name": op.name, "kind": kernel.kind, "function": kernel.function, "suffix": kernel.suffix,
        "ctype": CTYPES[model.act_dtype(op.outputs[0])],
        "comment": comment_lines(model, op, kernel),
        "inputs": [model.pointers.get(t, "") for t in op.inputs if not tensors[t].is_const],
        "output": model.pointers[op.outputs[0]],
    }
    ctx.update(trace_arguments(model, op))
    return ctx


def trace_arguments(model: Model, op: ir.Op) -> dict[str, Any]:
    """The trace hook's arguments for a layer: its IR position and its output buffer (a reshape's output is
    the buffer it aliases, whose pointer the function declares; the hook takes the size of a value from the
    pointer's type)."""
    out = op.outputs[0]
    buffer = model.plan.by_tensor[out].name
    if np.dtype(model.act_dtype(buffer)).itemsize != np.dtype(model.act_dtype(out)).itemsize:
        raise NnsconsError(None, f"codegen: layer {op.name}: its output {out} is {model.act_dtype(out)} in a "
                                 f"buffer of {model.act_dtype(buffer)}")
    return {"index": model.op_index[op.name], "trace_pointer": model.pointers[buffer],
            "count": model.graph.tensors[out].size}


def comment_lines(model: Model, op: ir.Op, kernel: Kernel) -> list[str]:
    """The layer's C comment: the op, its tensors with their quantization, the function and its scratch."""
    label = f" \"{ir.c_comment(op.label)}\"" if op.label else ""
    lines = [f"{op.name}: {op.type}{label}"]
    for t in op.inputs:
        role = "in " if not model.graph.tensors[t].is_const else model.tq(t).get("role", "const")[:6].ljust(3)
        lines.append(f"  {role} {model.tensor_text(t)}")
    for t in op.outputs:
        lines.append(f"  out {model.tensor_text(t)}")
    if kernel.function:
        sizes = "/".join(str(kernel.scratch[f]) for f in FEATURE_SETS)
        lines.append(f"  {kernel.function}, scratch c/dsp/mve {sizes} bytes")
    return lines


def require_alias(model: Model, op: ir.Op) -> None:
    """A reshape runs no code: its output must be its input's buffer (the planner makes it so)."""
    if model.plan.by_tensor[op.inputs[0]] is not model.plan.by_tensor[op.outputs[0]]:
        raise NnsconsError(None, f"codegen: reshape {op.name} does not alias its input")


# ---- the template context and plan.json ----------------------------------------------------------------------------
def shared_context(model: Model, layers: list[dict[str, Any]], dsp_check: str) -> dict[str, Any]:
    """The template context both backends start from (each adds its flags); ``dsp_check`` is the backend's
    preprocessor test for the DSP code paths."""
    offsets, pointers = buffer_context(model)
    return {
        **io_signatures(model),
        "dsp_check": dsp_check, "scratch_branches": scratch_branches(model.scratch, dsp_check),
        "scratch_layers": scratch_layer_branches(model, dsp_check),
        "name": model.name, "NAME": model.name.upper(), "hash": c_string(model.hash_text),
        "source_file": ir.c_comment(model.source.source_file) or "(unnamed)",
        "scheme": ir.c_comment(model.qtable.get("scheme", "")),
        "inputs": [vars(io) for io in model.inputs], "outputs": [vars(io) for io in model.outputs],
        "activation_arena_size": model.plan.arena_size, "scratch": model.scratch, "mve_check": MVE_CHECK,
        "offsets": offsets, "pointers": pointers, "layers": layers,
        "overlapped": any(b.overlap for b in model.plan.buffers),
        "streams": bool(model.streams), "states": model.states,
        "uses_sum_rows": any(model.graph.ops[s.sink].type == "avg_pool2d" for s in model.streams),
        "uses_dot_rows": any(model.graph.ops[s.sink].type == "fully_connected" for s in model.streams),
        "arrays": [a.context() for a in model.arrays],
        "absorbed": [absorbed_text(op) for op in model.lowered.absorbed],
        "max_rank": MAX_RANK,
    }


def io_signatures(model: Model) -> dict[str, list[str]]:
    """The network's inputs and outputs as the public functions' parameters, the arguments passing them on, and
    the casts of the generic descriptor's pointers."""
    name = model.name
    ins = [(f"const {name}_input{io.index}_t", f"input{io.index}") for io in model.inputs]
    outs = [(f"{name}_output{io.index}_t", f"output{io.index}") for io in model.outputs]
    return {"io_params": [f"{ctype} *{arg}" for ctype, arg in ins + outs],
            "io_args": [arg for _, arg in ins + outs],
            "generic_args": [f"({ctype} *)inputs[{k}]" for k, (ctype, _) in enumerate(ins)]
                            + [f"({ctype} *)outputs[{k}]" for k, (ctype, _) in enumerate(outs)]}


def scratch_branches(scratch: dict[str, int], dsp_check: str) -> list[dict[str, Any]]:
    """The header's choice of the scratch size by feature set: :func:`feature_branches` with ``size``."""
    return [{"directive": b["directive"], "size": b["value"]} for b in feature_branches(scratch, dsp_check)]


def scratch_layer_branches(model: Model, dsp_check: str) -> list[dict[str, Any]]:
    """model.c's placement of the layers' scratch buffers by feature set: :func:`feature_branches` whose value is
    the list of ``(layer, offset, size)`` (size 0 where a build needs none), in layer order."""
    order = {op.name: i for i, op in enumerate(model.graph.ops)}
    names = sorted({name for placed in model.scratch_at.values() for name in placed}, key=order.__getitem__)
    if not names:
        return []
    values = {f: tuple((n, placed[n].offset, placed[n].size) if n in placed else (n, 0, 0) for n in names)
              for f, placed in model.scratch_at.items()}
    return feature_branches(values, dsp_check)


def feature_branches(values: dict[str, Any], dsp_check: str) -> list[dict[str, Any]]:
    """A choice by feature set (Helium first, as CMSIS-NN chooses its code paths, then the DSP extension, then
    pure C) with no two branches alike: ``directive`` (``#if``/``#elif``/``#else``, empty for a value that does not
    depend on the build) and ``value``. The last branch is the ``#else``."""
    mve, dsp, c = (values[f] for f in ("mve", "dsp", "c"))
    if mve == dsp == c:
        return [{"directive": "", "value": c}]
    if mve == dsp:
        tests = [(_combine(f"({MVE_CHECK})", "||", f"({dsp_check})"), dsp)]
    elif dsp == c:
        tests = [(MVE_CHECK, mve)]
    elif mve == c:
        tests = [(_combine(f"!({MVE_CHECK})", "&&", f"({dsp_check})"), dsp)]
    else:
        tests = [(MVE_CHECK, mve), (dsp_check, dsp)]
    branches = [{"directive": ("#if " if k == 0 else "#elif ") + test, "value": value}
                for k, (test, value) in enumerate(tests)]
    return branches + [{"directive": "#else", "value": c}]


def _combine(first: str, operator: str, second: str) -> str:
    """A preprocessor condition of two, continued on a second line when one line would be too long."""
    if len(f"#elif {first} {operator} {second}") <= LINE_WIDTH:
        return f"{first} {operator} {second}"
    return f"{first} {operator} \\\n    {second}"


def absorbed_text(op: ir.Op) -> str:
    label = f" \"{ir.c_comment(op.label)}\"" if op.label else ""
    return f"{op.name}: {op.type}{label} ({op.inputs[0]} -> {op.outputs[0]})"


def plan_json(model: Model) -> dict[str, Any]:
    """``plan.json``: the arena plan, the scratch per feature set and every buffer's pointer."""
    d = model.plan.to_json()
    d["scratch"] = dict(model.scratch)
    d["layer_scratch"] = {f: [{"layer": s.layer, "op": s.op_index, "offset": s.offset, "size": s.size}
                              for s in placed.values()] for f, placed in sorted(model.scratch_at.items())}
    d["streams"] = [s.to_json() for s in model.streams]
    d["model"] = model.name
    d["pointers"] = {t: model.pointers[t] for t in sorted(model.plan.by_tensor) if t in model.pointers}
    return d


# ---- absorbing float conversions at the edges --------------------------------------------------------------------
def lower(graph: ir.Graph, tensors: dict[str, Any]) -> Lowered:
    """Drop a ``quantize`` that reads a float graph input (its output becomes the network input) and a
    ``dequantize`` that writes a float graph output (its input becomes the network output)."""
    inputs, outputs, absorbed = ir.absorbed_conversions(graph, tensors)
    ops = [op for op in graph.ops if not any(op is a for a in absorbed)]
    lowered = replace(graph, ops=ops, inputs=inputs, outputs=outputs)
    return Lowered(lowered, absorbed)
