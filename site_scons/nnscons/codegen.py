"""Code generation (stage 6): C sources that run the quantized network with CMSIS-NN.

From the graph, the quantization table and the quantized constants this stage writes four files:

``<name>.h``          the public C API (DESIGN.md section 3): I/O types, sizes, shapes and quantization as macros,
                      the arena size for the target's feature set, ``<name>_invoke``, ``<name>_invoke_with_arena``,
                      the float conversion helpers, and the generic ``<name>_info`` descriptor test runners use.
``<name>_model.c``    one CMSIS-NN call per layer, parameters from ``qtable.json``, buffers as named pointers into
                      one statically planned arena (:mod:`nnscons.planner`), kernel scratch after it.
``<name>_weights.c``  every constant (weights, biases, per-channel multipliers and shifts, lookup tables), ``const``
                      and 16-byte aligned, in the layouts the kernels read (the IR's layouts already are).
``plan.json``         the arena plan, plus the scratch size per feature set.

The C text lives in jinja2 templates (``templates/``); this module turns the tables into plain values for them
(:mod:`nnscons.kernels` decides which function each layer calls and how much scratch it needs). Text that came
from the model (labels) only reaches the C through :func:`nnscons.ir.c_comment`; names are C identifiers already.
Output is deterministic: the same inputs give the same bytes.

Two ops need no kernel: a leading ``quantize`` from a float graph input and a trailing ``dequantize`` to a float
graph output are *absorbed*: the network's input and output are their integer tensors, and the generated
``<name>_quantize_input`` / ``<name>_dequantize_output`` helpers do the conversion with their parameters.

Two backends share everything but the layer code (option ``api``): ``s8`` (this module and ``layers.j2``: the
current CMSIS-NN API, every scheme) and ``legacy`` (:mod:`nnscons.codegen_legacy`, ``legacy_model.c.j2`` and
``legacy_layers.j2``: the q7/q15 functions of CMSIS_5 5.9.0 for the Q-format schemes). ``legacy_model.c.j2``
extends ``model.c.j2``, overriding its blocks (includes, helpers, locals, scratch set-up, one layer's code).

Trace hook (both backends): compiled with ``-DNNSCONS_TRACE``, ``<name>_invoke_with_arena`` calls
``nnscons_trace(model, layer_index, layer_name, output, element_size, count)`` after every layer (declared in
``<name>.h``, implemented by the program: the host test runner writes the outputs to files for diagnostics).
``layer_index`` is the op's position in ``graph.json``, ``layer_name`` its IR name, ``output`` its output buffer
(for a reshape, the buffer it aliases), ``count`` its elements at batch 1. Without the macro nothing is compiled in.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

import jinja2
import numpy as np

from . import fileio, fixedpoint, ir, kernels, planner
from .errors import NnsconsError

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
TEMPLATES = {"header": "model.h.j2", "model": "model.c.j2", "weights": "weights.c.j2"}
APIS = ("s8", "legacy")
MAX_RANK = 6
UINT16_MAX = 0xFFFF            # the concatenation functions take their sizes as uint16_t
VALUES_PER_LINE = 16

CTYPES = {"int8": "int8_t", "int16": "int16_t", "int32": "int32_t", "int64": "int64_t"}
# layer kinds whose CMSIS-NN function returns a status (arm_softmax_s8 returns nothing)
_WEIGHT_LAYOUTS = {"conv2d": "OHWI", "depthwise_conv2d": "1HWC",
                   "fully_connected": "[out][in] (OHWI of a 1x1 convolution)"}
_STATUS_KINDS = ("conv", "depthwise", "fc", "avgpool", "maxpool", "add", "mul")
_MVE_CHECK = "defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)"
_DSP_CHECK = "defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1)"


# every template either backend reads (the folder also holds other stages' templates)
CODEGEN_TEMPLATES = ("layers.j2", "legacy_layers.j2", "legacy_model.c.j2", "model.c.j2", "model.h.j2", "weights.c.j2")


def codegen_sources() -> list[str]:
    """The template files this stage reads (generated sources depend on them)."""
    return [str(TEMPLATE_DIR / name) for name in CODEGEN_TEMPLATES]


def generate(name: str, graph: ir.Graph, qtable: dict[str, Any], qparams: dict[str, np.ndarray], api: str,
             hash_text: str, legacy_softmax: str = "input") -> dict[str, str]:
    """The generated files, by file name: ``<name>.h``, ``<name>_model.c``, ``<name>_weights.c``, ``plan.json``.
    ``api`` picks the backend: ``s8`` (this module) or ``legacy`` (:mod:`nnscons.codegen_legacy`, which also
    takes the ``legacy_softmax`` option)."""
    _check_name(name)
    if api not in APIS:
        raise NnsconsError(None, f"api={api!r} is not one of {', '.join(APIS)}")
    if api == "legacy":
        from .codegen_legacy import LegacyModelCode
        model: ModelCode = LegacyModelCode(name, graph, qtable, qparams, hash_text, legacy_softmax)
    else:
        model = ModelCode(name, graph, qtable, qparams, hash_text)
    env = _environment()
    context = model.context()
    return {
        f"{name}.h": env.get_template(model.templates["header"]).render(context),
        f"{name}_model.c": env.get_template(model.templates["model"]).render(context),
        f"{name}_weights.c": env.get_template(model.templates["weights"]).render(context),
        "plan.json": fileio.canonical_json(model.plan_json()),
    }


# ---- small helpers -------------------------------------------------------------------------------------------------
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
    env.filters["c_int"] = c_int
    env.filters["macro_int"] = macro_int
    env.filters["c_float"] = c_float
    env.filters["comment"] = ir.c_comment
    return env


def _check_name(name: str) -> None:
    if not isinstance(name, str) or ir.c_identifier(name) != name or len(name) > ir.MAX_IDENTIFIER:
        raise NnsconsError(None, f"model name {ir.c_comment(str(name))!r} is not a C identifier (letters, digits "
                                 f"and _, not starting with a digit or __, at most {ir.MAX_IDENTIFIER} characters)")


def c_int(value: int) -> str:
    """A C integer literal; the most negative int32/int64 values are written as expressions (``-2147483648`` would
    be the negation of a wider constant)."""
    value = int(value)
    if value == -(1 << 31):
        return "(-2147483647 - 1)"
    if value == -(1 << 63):
        return "(-9223372036854775807LL - 1)"
    if not -(1 << 63) <= value < (1 << 63):
        raise ValueError(f"{value} does not fit int64")
    return str(value)


def macro_int(value: int) -> str:
    """An integer literal safe as a macro body (negative values parenthesized)."""
    text = c_int(value)
    return f"({text})" if text.startswith("-") else text


def c_float(value: float) -> str:
    """A float literal that reads back as the same float32 (9 significant digits)."""
    value = float(np.float32(value))
    if not math.isfinite(value):
        raise NnsconsError(None, f"codegen: cannot write the non-finite number {value} into C")
    text = f"{value:.9g}"
    if not any(ch in text for ch in ".en"):
        text += ".0"
    return text + "f"


def c_string(text: str) -> str:
    """A C string literal of printable ASCII (anything else becomes ``?``)."""
    safe = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in str(text))
    safe = safe.replace("\\", "\\\\").replace('"', '\\"').replace("??", "?\\?")
    return f'"{safe}"'


def value_rows(values: np.ndarray, per_line: int = VALUES_PER_LINE) -> list[str]:
    """An array's values as C initializer rows, right-aligned, ``per_line`` to a row."""
    literals = [c_int(v) for v in np.asarray(values).reshape(-1).tolist()]
    width = max((len(s) for s in literals), default=0)
    rows = []
    for start in range(0, len(literals), per_line):
        rows.append(", ".join(s.rjust(width) for s in literals[start:start + per_line]) + ",")
    return rows


def _shape_text(shape: list[int]) -> str:
    return "x".join(str(int(s)) for s in shape) if shape else "scalar"


# ---- the model -------------------------------------------------------------------------------------------------------
@dataclass
class _IO:
    """One network input or output as the C API presents it."""

    tensor: str
    index: str             # "" for a single input/output, else "0", "1", ...
    ctype: str
    dtype: str
    shape: list[int]
    size: int
    scale: float
    zero_point: int
    frac_bits: Optional[int]
    qmin: int
    qmax: int
    pointer: str = ""      # the arena pointer holding it


@dataclass
class _Array:
    """One constant array of ``<name>_weights.c``."""

    cname: str
    ctype: str
    values: np.ndarray
    comment: list[str]

    def context(self) -> dict[str, Any]:
        per_line = VALUES_PER_LINE if self.ctype in ("int8_t", "int16_t") else VALUES_PER_LINE // 2
        return {"cname": self.cname, "ctype": self.ctype, "length": int(self.values.size), "comment": self.comment,
                "rows": value_rows(self.values, per_line)}


@dataclass
class _Lowered:
    """The graph the C runs: absorbed input quantize / output dequantize ops removed."""

    graph: ir.Graph
    absorbed: list[ir.Op] = field(default_factory=list)


class ModelCode:
    """Everything the templates need, computed once: the lowered graph, each layer's kernel and parameters, the
    arena plan, the constant arrays and the network's inputs and outputs.

    This class is the s8/s16 backend and the part every backend shares (lowering, arena, constants, network I/O,
    the trace hook); a backend overrides :meth:`_kernel`, the ``_layer_<kind>`` builders, :meth:`_scratch_sizes`,
    :meth:`context` and ``templates`` (see :mod:`nnscons.codegen_legacy`)."""

    templates = TEMPLATES

    def __init__(self, name: str, graph: ir.Graph, qtable: dict[str, Any], qparams: dict[str, np.ndarray],
                 hash_text: str) -> None:
        self.name, self.qtable, self.qparams, self.hash_text = name, qtable, qparams, hash_text
        self.tensors: dict[str, Any] = qtable.get("tensors", {})
        self.layers_q: dict[str, Any] = qtable.get("layers", {})
        self.source = graph
        self.lowered = _lower(graph, self.tensors)
        self.graph = self.lowered.graph
        self.op_index = {op.name: index for index, op in enumerate(graph.ops)}    # positions in graph.json
        self.plan = planner.plan(self.graph, qtable)
        self.kernels = {op.name: self._kernel(op) for op in self.graph.ops}
        self.scratch = self._scratch_sizes()
        self.arrays: list[_Array] = []
        self.array_names: dict[str, str] = {}           # constant key -> C array (shared weights emitted once)
        self.pointers = self._pointers()
        self.inputs = [self._io(t, i, len(self.graph.inputs)) for i, t in enumerate(self.graph.inputs)]
        self.outputs = [self._io(t, i, len(self.graph.outputs)) for i, t in enumerate(self.graph.outputs)]
        self.layers = [self._layer(op) for op in self.graph.ops]

    # ---- tensors -----------------------------------------------------------------------------------------------
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
        return f"{tensor} [{_shape_text(t.shape)}] {self.tq(tensor)['dtype']} {self.quant_text(tensor)}"

    # ---- kernels -----------------------------------------------------------------------------------------------
    def _kernel(self, op: ir.Op) -> kernels.Kernel:
        """The layer's kernel; its word size is its output's (or, for an op that outputs floats, its input's)."""
        dtype = self.act_dtype(op.outputs[0])
        if dtype not in ("int8", "int16"):
            dtype = next((self.act_dtype(t) for t in op.inputs if not self.graph.tensors[t].is_const), dtype)
        multiplier = self.layers_q.get(op.name, {}).get("multiplier")
        per_channel = op.type in kernels.WEIGHTED_OPS and isinstance(multiplier, list) and len(multiplier) > 1
        kernel = kernels.layer_kernel(self.graph, op, dtype, per_channel)
        for name in op.inputs:
            t = self.graph.tensors[name]
            if not t.is_const and self.act_dtype(name) != dtype:
                raise kernels.unsupported(op, kernel.suffix, f"its input {name} is {self.act_dtype(name)} but its "
                                                             f"output is {dtype}")
        return kernel

    def _scratch_sizes(self) -> dict[str, int]:
        """Bytes of kernel scratch after the activations, per feature set: the largest any layer needs."""
        return {f: max((k.scratch[f] for k in self.kernels.values()), default=0) for f in kernels.FEATURE_SETS}

    # ---- buffers -----------------------------------------------------------------------------------------------
    def _pointers(self) -> dict[str, str]:
        """Tensor -> the name of its pointer into the arena."""
        names: dict[str, str] = {}
        for i, t in enumerate(self.graph.inputs):
            names.setdefault(t, f"net_in{i}")
        for op in self.graph.ops:
            for k, t in enumerate(op.outputs):
                names.setdefault(t, f"{op.name}_out" + (str(k) if k else ""))
        return names

    def _buffer_context(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The offset macros (one per buffer) and the pointers the invoke function declares (only those it
        uses: a pointer no call reads or writes would be an unused variable)."""
        used: set[str] = set(self.graph.inputs) | set(self.graph.outputs)
        for op in self.graph.ops:
            if self.kernels[op.name].kind != "alias":
                used.update(t for t in op.inputs + op.outputs if not self.graph.tensors[t].is_const)
        offsets, pointers = [], []
        for buffer in self.plan.buffers:
            macro = f"OFFSET_{self.pointers[buffer.name]}"
            offsets.append({"macro": macro, "offset": buffer.offset, "size": buffer.size,
                            "tensors": ", ".join(buffer.tensors), "first": buffer.first, "last": buffer.last})
            for tensor in buffer.tensors:
                if tensor in used:
                    pointers.append({"name": self.pointers[tensor], "macro": macro,
                                     "ctype": CTYPES[self.act_dtype(tensor)],
                                     "alias": self.pointers[buffer.name] if tensor != buffer.name else ""})
        return offsets, pointers

    # ---- network I/O -------------------------------------------------------------------------------------------
    def _io(self, tensor: str, position: int, count: int) -> _IO:
        dtype = self.act_dtype(tensor)
        if dtype not in ("int8", "int16"):
            raise NnsconsError(None, f"codegen: network input/output {tensor} is {dtype}; only int8 and int16 "
                                     f"are supported (a float input needs a leading quantize op)")
        shape = [int(s) for s in self.graph.tensors[tensor].shape]
        if len(shape) > MAX_RANK:
            raise NnsconsError(None, f"codegen: tensor {tensor} has rank {len(shape)} (at most {MAX_RANK})")
        scale, zero_point = self.scale_zp(tensor)
        info = np.iinfo(np.dtype(dtype))
        return _IO(tensor, str(position) if count > 1 else "", CTYPES[dtype], dtype, shape,
                   int(np.prod(shape, dtype=np.int64)) if shape else 1, scale, zero_point,
                   self.tq(tensor).get("frac_bits"), int(info.min), int(info.max), self.pointers[tensor])

    # ---- constants ---------------------------------------------------------------------------------------------
    def constant(self, tensor: str, cname: str, ctype: str, values: np.ndarray, comment: list[str]) -> str:
        """Add a constant array (once per tensor) and return its C name."""
        key = f"{tensor}:{ctype}"
        if key in self.array_names:
            return self.array_names[key]
        self.arrays.append(_Array(cname, ctype, values, comment))
        self.array_names[key] = cname
        return cname

    def qparam(self, op: ir.Op, tensor: str) -> np.ndarray:
        if tensor not in self.qparams:
            raise NnsconsError(None, f"codegen: layer {op.name}: no quantized data for constant {tensor}; "
                                     f"rebuild qparams.npz")
        return np.asarray(self.qparams[tensor])

    # ---- layers ------------------------------------------------------------------------------------------------
    def _layer(self, op: ir.Op) -> dict[str, Any]:
        kernel = self.kernels[op.name]
        q = self.layers_q.get(op.name)
        if q is None:
            raise NnsconsError(None, f"codegen: the quantization table has no entry for layer {op.name}")
        ctx: dict[str, Any] = {
            "name": op.name, "kind": kernel.kind, "function": kernel.function, "suffix": kernel.suffix,
            "ctype": CTYPES[self.act_dtype(op.outputs[0])],
            "comment": self._comment(op, kernel),
            "inputs": [self.pointers.get(t, "") for t in op.inputs if not self.graph.tensors[t].is_const],
            "output": self.pointers[op.outputs[0]],
        }
        ctx.update(self._trace(op))
        builder = getattr(self, f"_layer_{kernel.kind}")
        ctx.update(builder(op, q, kernel))
        return ctx

    def _trace(self, op: ir.Op) -> dict[str, Any]:
        """The trace hook's arguments for a layer: its IR position and its output buffer (a reshape's output is
        the buffer it aliases, whose pointer the function declares)."""
        out = op.outputs[0]
        return {"index": self.op_index[op.name], "trace_pointer": self.pointers[self.plan.by_tensor[out].name],
                "element_size": np.dtype(self.act_dtype(out)).itemsize, "count": self.graph.tensors[out].size}

    def _comment(self, op: ir.Op, kernel: kernels.Kernel) -> list[str]:
        label = f" \"{ir.c_comment(op.label)}\"" if op.label else ""
        lines = [f"{op.name}: {op.type}{label}"]
        for t in op.inputs:
            role = "in " if not self.graph.tensors[t].is_const else self.tq(t).get("role", "const")[:6].ljust(3)
            lines.append(f"  {role} {self.tensor_text(t)}")
        for t in op.outputs:
            lines.append(f"  out {self.tensor_text(t)}")
        if kernel.function:
            sizes = "/".join(str(kernel.scratch[f]) for f in kernels.FEATURE_SETS)
            lines.append(f"  {kernel.function}, scratch c/dsp/mve {sizes} bytes")
        if kernel.kind in ("mean", "sub"):
            lines.append(f"  generated loop (CMSIS-NN has no {op.type}), TFLite's integer arithmetic")
        if kernel.kind == "pad":
            lines.append("  generated loop: the pad value everywhere, then the input copied in")
        if kernel.kind == "lookup":
            lines.append(f"  table lookup (CMSIS-NN has no s8 {op.type}), TFLite's integer arithmetic")
        if op.type == "fully_connected" and kernel.kind == "conv":
            lines.append("  as a 1x1 convolution: one multiplier per output (the fully connected kernel takes one)")
        return lines

    def _check_offsets(self, op: ir.Op, kernel: kernels.Kernel, *offsets: int) -> None:
        if kernel.suffix == "s16" and any(offsets):
            raise kernels.unsupported(op, "s16", "int16 activations must have zero point 0")

    def _weighted_common(self, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
        """Weights, bias and per-channel requantization of a conv / depthwise layer (or a fully connected one
        run as a 1x1 convolution)."""
        prefix = f"{self.name}_{op.name}"
        weights = self.qparam(op, op.inputs[1])
        if weights.dtype != np.int8:
            raise kernels.unsupported(op, kernel.suffix, f"its weights are {weights.dtype}, the kernels take int8 "
                                                         f"(for q15 rebuild the quantization table with api=s8)")
        if int(q.get("filter_offset", 0)) != 0:
            raise kernels.unsupported(op, kernel.suffix, "its weights have a non-zero zero point")
        w_name = self.constant(op.inputs[1], f"{prefix}_weights", "int8_t", weights,
                               [f"{op.name} weights: {self.tensor_text(op.inputs[1])}, layout "
                                f"{_WEIGHT_LAYOUTS[op.type]}"])
        channels = len(q["multiplier"])
        mult = self.constant(f"{op.name}.multiplier", f"{prefix}_multiplier", "int32_t",
                             np.asarray(q["multiplier"], np.int64),
                             [f"{op.name}: per-channel requantization multipliers (Q31), {channels} channels"])
        shift = self.constant(f"{op.name}.shift", f"{prefix}_shift", "int32_t", np.asarray(q["shift"], np.int64),
                              [f"{op.name}: per-channel requantization shifts (positive = left), {channels} "
                               f"channels"])
        self._check_offsets(op, kernel, q["input_offset"], q["output_offset"])
        ctx = {"weights": w_name, "multiplier": mult, "shift": shift, "act_min": q["act_min"],
               "act_max": q["act_max"], "input_offset": q["input_offset"], "output_offset": q["output_offset"]}
        ctx.update(self._bias(op, q, kernel, prefix, channels))
        return ctx

    def _bias(self, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel, prefix: str,
              channels: int) -> dict[str, Any]:
        """The bias array the kernel takes: int32 for s8; int64 for s16 (int32 allowed for conv s16). A Q-format
        bias is shifted into the accumulator's format here (``bias_shift``)."""
        b = q.get("bias")
        if not b:
            return {"bias": "NULL", "bias_is_int32": kernel.suffix == "s8", "bias_length": channels}
        values = self.qparam(op, b).astype(np.int64).reshape(-1)
        shift = int(q.get("bias_shift", 0) or 0)
        if shift:
            values = values << shift
        wide = kernel.suffix == "s16" and not (kernel.kind == "conv" and self.qparam(op, b).dtype == np.int32
                                                and not shift)
        ctype, limit = ("int64_t", 1 << 63) if wide else ("int32_t", 1 << 31)
        if values.size and (values.min() < -limit or values.max() >= limit):
            raise NnsconsError(None, f"codegen: layer {op.name}: the bias does not fit {ctype} after its shift "
                                     f"by {shift}")
        note = f", shifted left by bias_shift {shift}" if shift else ""
        name = self.constant(f"{b}<<{shift}", f"{prefix}_bias", ctype, values,
                             [f"{op.name} bias: {self.tensor_text(b)}{note}, as {ctype}"])
        return {"bias": name, "bias_is_int32": ctype == "int32_t", "bias_length": int(values.size)}

    def _layer_conv(self, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
        ctx = self._weighted_common(op, q, kernel)
        ctx.update(self._geometry(kernel.geometry))
        return ctx

    def _layer_depthwise(self, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
        return self._layer_conv(op, q, kernel)

    @staticmethod
    def _geometry(g: kernels.ConvGeometry) -> dict[str, Any]:
        return {"input_dims": g.input.as_tuple(), "filter_dims": g.filter.as_tuple(),
                "output_dims": g.output.as_tuple(), "bias_dims": (1, 1, 1, g.output.c),
                "stride": g.stride, "padding": g.padding, "dilation": g.dilation, "ch_mult": g.ch_mult}

    def _layer_fc(self, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
        prefix = f"{self.name}_{op.name}"
        if len(q["multiplier"]) != 1:
            raise kernels.unsupported(op, kernel.suffix, "per-channel fully connected weights are not supported")
        weights = self.qparam(op, op.inputs[1])
        if weights.dtype != np.int8:
            raise kernels.unsupported(op, kernel.suffix, f"its weights are {weights.dtype}, the kernels take int8 "
                                                         f"(for q15 rebuild the quantization table with api=s8)")
        self._check_offsets(op, kernel, q["input_offset"], q["output_offset"], q.get("filter_offset", 0))
        w_name = self.constant(op.inputs[1], f"{prefix}_weights", "int8_t", weights,
                               [f"{op.name} weights: {self.tensor_text(op.inputs[1])}, layout [out][in]"])
        f = kernel.geometry
        numel = self.graph.tensors[op.inputs[0]].size
        if numel % f.n:
            raise kernels.unsupported(op, kernel.suffix, f"its input has {numel} values, not a multiple of {f.n}")
        batches = numel // f.n
        ctx = {"weights": w_name, "multiplier": q["multiplier"][0], "shift": q["shift"][0],
               "input_offset": q["input_offset"], "output_offset": q["output_offset"],
               "filter_offset": q.get("filter_offset", 0), "act_min": q["act_min"], "act_max": q["act_max"],
               "input_dims": (batches, 1, 1, f.n), "filter_dims": f.as_tuple(), "bias_dims": (1, 1, 1, f.c),
               "output_dims": (batches, 1, 1, f.c), "kernel_sums": kernel.scratch["mve"] > 0}
        ctx.update(self._bias(op, q, kernel, prefix, f.c))
        return ctx

    def _layer_avgpool(self, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
        if self.scale_zp(op.inputs[0]) != self.scale_zp(op.outputs[0]):
            raise kernels.unsupported(op, kernel.suffix, "its input and output quantizations differ")
        x, y = self.graph.tensors[op.inputs[0]], self.graph.tensors[op.outputs[0]]
        pad = op.attrs.get("pad", [0, 0, 0, 0])
        kh, kw = op.attrs["kernel"]
        return {"input_dims": tuple(x.shape), "output_dims": tuple(y.shape), "filter_dims": (1, kh, kw, 1),
                "stride": tuple(op.attrs.get("stride", [1, 1])), "padding": (pad[0], pad[2]),
                "act_min": q["act_min"], "act_max": q["act_max"]}

    _layer_maxpool = _layer_avgpool

    def _layer_softmax(self, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
        x = self.graph.tensors[op.inputs[0]]
        row = int(x.shape[-1]) if x.shape else 1
        ctx: dict[str, Any] = {"rows": x.size // max(row, 1), "row_size": row, "mult": q["input_multiplier"],
                               "shift": q["input_left_shift"], "q7_output": False}
        out = self.scale_zp(op.outputs[0])
        if kernel.suffix == "s8":
            ctx["diff_min"] = q["diff_min"]
            if out == (2.0 ** -7, 0):
                ctx["q7_output"] = True              # the table's Q0.7 from the kernel's 1/256, -128
            elif out != (1.0 / 256, -128):
                raise kernels.unsupported(op, "s8", "arm_softmax_s8 outputs scale 1/256 zero point -128")
            return ctx
        if out != (1.0 / 32768, 0) or self.scale_zp(op.inputs[0])[1] != 0:
            raise kernels.unsupported(op, "s16", "arm_softmax_s16 needs input zero point 0 and outputs scale "
                                                 "1/32768 zero point 0")
        exp_lut, one_by_one_lut = kernels.softmax_s16_luts()
        ctx["exp_lut"] = self.constant("softmax.exp_lut", f"{self.name}_softmax_exp_lut", "int16_t", exp_lut,
                                       ["exp(x) for x in [-10, 0], 513 entries Q0.15 (arm_softmax_s16)"])
        ctx["one_by_one_lut"] = self.constant("softmax.one_by_one_lut", f"{self.name}_softmax_one_by_one_lut",
                                              "int16_t", one_by_one_lut,
                                              ["1 / (1 + x) for x in [0, 1], 513 entries Q0.15 (arm_softmax_s16)"])
        return ctx

    def _same_shapes(self, op: ir.Op, kernel: kernels.Kernel) -> int:
        shapes = {tuple(self.graph.tensors[t].shape) for t in op.inputs + op.outputs}
        if len(shapes) != 1 or any(self.graph.tensors[t].is_const for t in op.inputs):
            raise kernels.unsupported(op, kernel.suffix, "CMSIS-NN elementwise kernels need two same-shaped "
                                                         "activation inputs (no broadcasting, no constants)")
        return self.graph.tensors[op.outputs[0]].size

    def _layer_add(self, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
        size = self._same_shapes(op, kernel)
        self._check_offsets(op, kernel, q["input1_offset"], q["input2_offset"], q["output_offset"])
        keys = ("input1_offset", "input1_multiplier", "input1_shift", "input2_offset", "input2_multiplier",
                "input2_shift", "left_shift", "output_offset", "output_multiplier", "output_shift", "act_min",
                "act_max")
        return {"size": size, **{k: q[k] for k in keys}}

    def _layer_sub(self, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
        """input 1 - input 2 in a generated loop with the table's add/sub parameters (TFLite's arithmetic)."""
        if kernel.suffix != "s8":
            raise kernels.unsupported(op, kernel.suffix, "the generated sub loop is for int8 activations")
        return self._layer_add(op, q, kernel)

    def _layer_mul(self, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
        size = self._same_shapes(op, kernel)
        self._check_offsets(op, kernel, q["input1_offset"], q["input2_offset"], q["output_offset"])
        keys = ("input1_offset", "input2_offset", "output_offset", "output_multiplier", "output_shift", "act_min",
                "act_max")
        return {"size": size, **{k: q[k] for k in keys}}

    def _layer_concat(self, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
        """One copy per input: along ``axis`` every tensor is [outer][axis][inner], which is the [z][y][x] of
        ``arm_concatenation_s8_y`` with x counted in bytes (so int16 values copy as byte pairs)."""
        out = self.graph.tensors[op.outputs[0]]
        rank = len(out.shape)
        axis = int(op.attrs.get("axis", -1))
        axis = axis + rank if axis < 0 else axis
        if not 0 <= axis < rank:
            raise kernels.unsupported(op, kernel.suffix, f"axis {op.attrs.get('axis')} of a rank-{rank} tensor")
        element = np.dtype(self.act_dtype(op.outputs[0])).itemsize
        copies, offset = [], 0
        for name in op.inputs:
            tensor = self.graph.tensors[name]
            if tensor.is_const:
                raise kernels.unsupported(op, kernel.suffix, f"input {name} is a constant")
            if self.scale_zp(name) != self.scale_zp(op.outputs[0]):
                raise kernels.unsupported(op, kernel.suffix, f"input {name} is quantized differently from the "
                                                             f"output (concatenation copies values unchanged)")
            shape = [int(s) for s in tensor.shape]
            inner = int(np.prod(shape[axis + 1:], dtype=np.int64)) * element
            outer = int(np.prod(shape[:axis], dtype=np.int64))
            sizes = {"inner bytes": inner, "axis length": shape[axis], "outer count": outer,
                     "output axis length": int(out.shape[axis])}
            too_big = [what for what, value in sizes.items() if value > UINT16_MAX]
            if too_big:
                raise kernels.unsupported(op, kernel.suffix, f"its {too_big[0]} exceeds {UINT16_MAX} (uint16_t "
                                                             f"arguments of {kernel.function})")
            copies.append({"input": self.pointers[name], "x": inner, "y": shape[axis], "z": outer,
                           "offset": offset, "tensor": name})
            offset += shape[axis]
        if offset != out.shape[axis]:
            raise NnsconsError(None, f"codegen: concat {op.name}: inputs add up to {offset} along axis {axis}, "
                                     f"the output has {out.shape[axis]}")
        return {"copies": copies, "output_y": int(out.shape[axis]), "axis": axis,
                "byte_pointers": element != 1}

    def _layer_mean(self, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
        """MEAN over H and W of an NHWC int8 tensor as TFLite computes it: the table's multiplier (input scale /
        output scale) divided by the pixel count with as many extra bits as that count needs (up to 32, keeping
        the shift >= -31), then one requantization of the sum of (x - input zero point)."""
        x = self.graph.tensors[op.inputs[0]]
        if kernel.suffix != "s8":
            raise kernels.unsupported(op, kernel.suffix, "the generated mean loop is for int8 activations")
        if len(x.shape) != 4 or list(op.attrs.get("axes", [])) != [1, 2]:
            raise kernels.unsupported(op, kernel.suffix, f"it averages axes {op.attrs.get('axes')} of a rank-"
                                                         f"{len(x.shape)} tensor (only H and W of NHWC)")
        batches, height, width, channels = (int(d) for d in x.shape)
        pixels = height * width
        extra = min(pixels.bit_length() - 1, 32, 31 + int(q["shift"]))
        multiplier = (int(q["multiplier"]) << extra) // pixels
        shift = int(q["shift"]) - extra
        if not -31 <= shift <= 31 or multiplier <= 0:
            raise kernels.unsupported(op, kernel.suffix, f"its scales need a shift of {shift} (outside -31..31)")
        return {"batches": batches, "pixels": pixels, "channels": channels, "input_offset": q["input_offset"],
                "output_offset": q["output_offset"], "multiplier": multiplier, "shift": shift}

    def _layer_pad(self, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
        """Shapes and padding widened to rank 4 (leading axes of 1) for the generated pad loop."""
        x = self.graph.tensors[op.inputs[0]]
        rank = len(x.shape)
        pads = [[int(before), int(after)] for before, after in op.attrs.get("pads", [])]
        if rank > 4 or len(pads) != rank:
            raise kernels.unsupported(op, kernel.suffix, f"it pads a rank-{rank} tensor (at most 4)")
        if self.scale_zp(op.inputs[0]) != self.scale_zp(op.outputs[0]):
            raise kernels.unsupported(op, kernel.suffix, "its input and output quantizations differ")
        widen = [[0, 0]] * (4 - rank)
        in_shape = [1] * (4 - rank) + [int(d) for d in x.shape]
        before = [p[0] for p in widen + pads]
        out_shape = [d + b + a for d, (b, a) in zip(in_shape, widen + pads)]
        if out_shape != [1] * (4 - rank) + [int(d) for d in self.graph.tensors[op.outputs[0]].shape]:
            raise NnsconsError(None, f"codegen: pad {op.name}: its output shape does not match its paddings")
        return {"in_shape": in_shape, "before": before, "out_shape": out_shape, "value": int(q["pad_value"])}

    def _layer_lookup(self, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
        """logistic / tanh / leaky_relu on int8: one table of the 256 results (TFLite Micro's arithmetic,
        nnscons.fixedpoint)."""
        if kernel.suffix != "s8":
            raise kernels.unsupported(op, kernel.suffix, "the lookup table is for int8 activations")
        if op.type == "leaky_relu":
            return self._lookup_table(op, self._leaky_relu_table(op, q, kernel), "leaky ReLU")
        if op.type == "quantize":
            table = fixedpoint.requantize_s8(int(q["input_offset"]), int(q["output_offset"]),
                                      (int(q["multiplier"]), int(q["shift"])))
            return self._lookup_table(op, table, "requantization")
        scale, zero_point = self.scale_zp(op.inputs[0])
        required = {"logistic": (1.0 / 256, -128), "tanh": (1.0 / 128, 0)}[op.type]
        if self.scale_zp(op.outputs[0]) != required:
            raise kernels.unsupported(op, kernel.suffix, f"its output must have scale {required[0]:g} and zero "
                                                         f"point {required[1]} (TFLite's int8 {op.type})")
        try:
            table = (fixedpoint.logistic_s8 if op.type == "logistic" else fixedpoint.tanh_s8)(zero_point, scale)
        except ValueError as e:
            raise kernels.unsupported(op, kernel.suffix, str(e)) from None
        return self._lookup_table(op, table, op.type)

    @staticmethod
    def _leaky_relu_table(op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> np.ndarray:
        if "alpha_multiplier" not in q:
            raise kernels.unsupported(op, kernel.suffix, f"alpha {q.get('alpha')} (a negative slope) is not "
                                                         f"supported")
        return fixedpoint.leaky_relu_s8(int(q["input_offset"]), int(q["output_offset"]),
                                 (int(q["multiplier"]), int(q["shift"])),
                                 (int(q["alpha_multiplier"]), int(q["alpha_shift"])))

    def _lookup_table(self, op: ir.Op, table: np.ndarray, what: str) -> dict[str, Any]:
        in_scale, in_zero_point = self.scale_zp(op.inputs[0])
        name = self.constant(f"{op.name}.table", f"{self.name}_{op.name}_table", "int8_t", table.astype(np.int64),
                             [f"{op.name}: {what} of every int8 input -128..127 (input scale {in_scale:.6g} zero "
                              f"point {in_zero_point}), TFLite's integer arithmetic"])
        return {"table": name, "size": self.graph.tensors[op.outputs[0]].size}

    def _layer_clamp(self, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
        if self.scale_zp(op.inputs[0]) != self.scale_zp(op.outputs[0]):
            raise kernels.unsupported(op, kernel.suffix, "its input and output quantizations differ")
        return {"size": self.graph.tensors[op.outputs[0]].size, "act_min": q["act_min"], "act_max": q["act_max"]}

    def _layer_alias(self, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
        if self.graph.tensors[op.inputs[0]].is_const:
            raise kernels.unsupported(op, kernel.suffix, "it reshapes a constant")
        if self.plan.by_tensor[op.inputs[0]] is not self.plan.by_tensor[op.outputs[0]]:
            raise NnsconsError(None, f"codegen: reshape {op.name} does not alias its input")
        if self.scale_zp(op.inputs[0]) != self.scale_zp(op.outputs[0]):
            raise kernels.unsupported(op, kernel.suffix, "its input and output quantizations differ")
        return {}

    # ---- rendering context -----------------------------------------------------------------------------------------
    def context(self) -> dict[str, Any]:
        offsets, pointers = self._buffer_context()
        kinds = {layer["kind"] for layer in self.layers}
        uses_ctx = bool(kinds & {"conv", "depthwise", "fc", "avgpool", "maxpool"})
        uses_status = any(layer["kind"] in _STATUS_KINDS or (layer["kind"] == "softmax" and layer["suffix"] == "s16")
                          for layer in self.layers)
        return {
            "name": self.name, "NAME": self.name.upper(), "hash": c_string(self.hash_text),
            "source_file": ir.c_comment(self.source.source_file) or "(unnamed)",
            "scheme": ir.c_comment(self.qtable.get("scheme", "")),
            "inputs": [vars(io) for io in self.inputs], "outputs": [vars(io) for io in self.outputs],
            "activation_arena_size": self.plan.arena_size, "scratch": self.scratch,
            "mve_check": _MVE_CHECK, "dsp_check": _DSP_CHECK,
            "offsets": offsets, "pointers": pointers, "layers": self.layers,
            "arrays": [a.context() for a in self.arrays],
            "absorbed": [self._absorbed_text(op) for op in self.lowered.absorbed],
            "uses_ctx": uses_ctx, "uses_status": uses_status,
            "clamp_types": sorted({layer["ctype"] for layer in self.layers if layer["kind"] == "clamp"}),
            "uses_mean": any(layer["kind"] == "mean" for layer in self.layers),
            "uses_sub": any(layer["kind"] == "sub" for layer in self.layers),
            "uses_lookup": any(layer["kind"] == "lookup" for layer in self.layers),
            "pad_types": sorted({layer["ctype"] for layer in self.layers if layer["kind"] == "pad"}),
            "max_rank": MAX_RANK,
        }

    def _absorbed_text(self, op: ir.Op) -> str:
        label = f" \"{ir.c_comment(op.label)}\"" if op.label else ""
        return f"{op.name}: {op.type}{label} ({op.inputs[0]} -> {op.outputs[0]})"

    def plan_json(self) -> dict[str, Any]:
        d = self.plan.to_json()
        d["scratch"] = dict(self.scratch)
        d["model"] = self.name
        d["pointers"] = {t: self.pointers[t] for t in sorted(self.plan.by_tensor) if t in self.pointers}
        return d


# ---- absorbing float conversions at the edges ------------------------------------------------------------------------
def _is_float(graph: ir.Graph, tensors: dict[str, Any], name: str) -> bool:
    entry = tensors.get(name)
    dtype = entry["dtype"] if entry is not None else graph.tensors[name].dtype
    return graph.tensors[name].dtype == "float32" and dtype == "float32"


def _lower(graph: ir.Graph, tensors: dict[str, Any]) -> _Lowered:
    """Drop a ``quantize`` that reads a float graph input (its output becomes the network input) and a
    ``dequantize`` that writes a float graph output (its input becomes the network output)."""
    inputs, outputs, ops, absorbed = list(graph.inputs), list(graph.outputs), [], []
    for op in graph.ops:
        source = op.inputs[0] if op.inputs else ""
        target = op.outputs[0] if op.outputs else ""
        if (op.type == "quantize" and source in inputs and _is_float(graph, tensors, source)
                and len(graph.consumers(source)) == 1 and source not in outputs):
            inputs[inputs.index(source)] = target
            absorbed.append(op)
        elif (op.type == "dequantize" and target in outputs and _is_float(graph, tensors, target)
              and not graph.consumers(target)):
            outputs[outputs.index(target)] = source
            absorbed.append(op)
        else:
            ops.append(op)
    lowered = replace(graph, ops=ops, inputs=inputs, outputs=outputs)
    return _Lowered(lowered, absorbed)
