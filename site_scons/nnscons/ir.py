"""The intermediate representation every stage after import works on.

A :class:`Graph` is a list of :class:`Op` in execution (topological) order over named :class:`Tensor` objects.
It is stored as two files, ``graph.json`` (structure, shapes, attributes, quantization) and ``params.npz``
(constant data, keyed by tensor name). Both importers (TFLite and ONNX) produce exactly this, so nothing after
the import step knows which framework a model came from.

Conventions (the contract between importers, the reference interpreter, the quantizer and code generation):

* Activations are NHWC: 4-D tensors are ``[N, H, W, C]``; 2-D tensors are ``[N, C]``. An ONNX model's NCHW
  tensors are permuted at import; ``Graph.input_perm[name]`` is the permutation that turns a user array in the
  model's own layout into the IR layout (``x.transpose(perm)``), ``Graph.output_perm`` likewise for outputs
  (from IR layout back to the model's layout).
* Weights are already in the CMSIS-NN layouts: ``conv2d`` ``[Cout, KH, KW, Cin]`` (OHWI), ``depthwise_conv2d``
  ``[1, KH, KW, Cin * multiplier]`` (1HWC), ``fully_connected`` ``[out, in]`` with ``in`` ordered as the NHWC
  flattening of its input (the seed guide's reordering is done by the ONNX importer).
* Every tensor and op name is a C identifier, unique within the graph (see :func:`c_identifier`); the model's
  own name is kept in ``label`` for people and must never be pasted into generated C unsanitized (use
  :func:`c_comment`).

Op types and their semantics (``x`` = first input, attributes in ``Op.attrs``):

=====================  ====================================================================================
``conv2d``             inputs ``[x, w, b?]``; attrs ``stride [sh, sw]``, ``dilation [dh, dw]``,
                       ``pad [top, bottom, left, right]`` (explicit, zero padding), ``activation``.
``depthwise_conv2d``   as ``conv2d`` plus ``multiplier`` (output channel ``c*multiplier + m`` reads input
                       channel ``c``).
``fully_connected``    inputs ``[x, w, b?]``; x is read as ``[numel(x) // in, in]``; attrs ``activation``.
``avg_pool2d``         attrs ``kernel [kh, kw]``, ``stride``, ``pad``, ``activation``; the average counts only
                       the elements inside the input (padding excluded, as TFLite and ONNX's default).
``max_pool2d``         as ``avg_pool2d``; padded elements never win.
``add``, ``sub``,      two inputs, numpy broadcasting, attrs ``activation``.
``mul``
``softmax``            over the last axis; attrs ``beta`` (logits are multiplied by beta first).
``reshape``            attrs ``shape`` (the output shape); covers TFLite RESHAPE/SQUEEZE and ONNX
                       Flatten/Reshape/Squeeze where the NHWC element order is unchanged.
``quantize``           float -> integer, or integer -> integer requantization, to the output's ``quant``.
``dequantize``         integer -> float32 with the input's ``quant``.
``pad``                attrs ``pads [[before, after], ...]`` per axis (IR layout), constant ``value`` (real).
``mean``               attrs ``axes`` (IR axes), ``keepdims``.
``concat``             attrs ``axis`` (IR axis, non-negative).
``logistic``, ``tanh``, ``relu``, ``relu6``   elementwise, no attrs.
``leaky_relu``         attrs ``alpha``.
``clip``               attrs ``min``, ``max`` (either may be ``None``).
``lstm``               inputs ``[x, wi, wf, wc, wo, ri, rf, rc, ro, bi, bf, bc, bo]``: x ``[B, T, I]`` (or
                       ``[T, B, I]`` with attr ``time_major``), input weights ``[H, I]`` and recurrent weights
                       ``[H, H]`` of the gates input, forget, cell, output, their biases ``[H]``; output ``[B, T, H]``
                       (``[T, B, H]``): every step's hidden state. Per step ``i, f, o = sigmoid(.)``,
                       ``g = tanh(.)`` of ``W x + R h + b``; ``c = f c + i g`` (clamped to +-``cell_clip`` when it is
                       > 0); ``h = o tanh(c)``. h and c start at zero every inference. ``hidden_state`` /
                       ``cell_state``: the quantized model's state scale and zero point (None for float).
``gru``                inputs ``[x, wz, wr, wh, rz, rr, rh, wbz, wbr, wbh, rbz, rbr, rbh]`` (ONNX's GRU, float):
                       ``z, r = sigmoid(W x + wb + R h + rb)``, ``n = tanh(Wh x + wbh + R'(...))`` with
                       ``R'(...) = Rh (r h) + rbh`` or, with attr ``linear_before_reset``, ``r (Rh h + rbh)``;
                       ``h = (1 - z) n + z h``; shapes and ``time_major`` as ``lstm``.
``svdf``               inputs ``[x, wf, wt, b?]``: x ``[B, I]`` one frame, feature weights ``[F, I]``, time weights
                       ``[F, M]`` (attr ``memory`` M), bias ``[F / rank]``; a state ``[B, F, M]`` of the last M
                       feature values (``wf x``, newest last) shifted each call; output ``[B, F / rank]``:
                       the sums over ``rank`` filters of ``wt . state`` plus the bias, then ``activation``. The
                       state starts at zero; attr ``state``: the quantized model's state scale, zero point, dtype.
=====================  ====================================================================================

``activation`` (fused) is one of ``none``, ``relu``, ``relu6``, ``relu_n1_to_1`` (see :data:`ACTIVATION_RANGES`).

Quantization carried by a model (int8 / int16x8 TFLite, QDQ ONNX) is kept per tensor in :class:`Quant`:
``real = scale * (q - zero_point)``, per tensor (``axis is None``, one scale) or per channel along ``axis``.
A float model has ``quant = None`` everywhere. Constant data keeps the model's storage dtype (int8 weights,
int32/int64 biases for a quantized model; float32 for a float model).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional

import numpy as np

from . import fileio
from .cnames import C_KEYWORDS

IR_VERSION = 1

OP_TYPES = (
    "conv2d", "depthwise_conv2d", "fully_connected", "avg_pool2d", "max_pool2d",
    "add", "sub", "mul", "softmax", "reshape", "quantize", "dequantize", "pad", "mean", "concat",
    "logistic", "tanh", "relu", "relu6", "leaky_relu", "clip", "lstm", "gru", "svdf",
)

# Fused activation -> (min, max) on real values; None = unbounded.
ACTIVATION_RANGES: dict[str, tuple[Optional[float], Optional[float]]] = {
    "none": (None, None),
    "relu": (0.0, None),
    "relu6": (0.0, 6.0),
    "relu_n1_to_1": (-1.0, 1.0),
}

DTYPES = ("float32", "int8", "uint8", "int16", "int32", "int64")

# Longest identifier we emit; C99 guarantees 31 significant characters for external names, and the generated
# code prefixes names with the model name, so keep the per-tensor part short.
MAX_IDENTIFIER = 40


@dataclass
class Quant:
    """Affine quantization of one tensor: ``real = scale * (q - zero_point)``."""

    scale: list[float]
    zero_point: list[int]
    axis: Optional[int] = None  # None: per tensor; else the per-channel axis of this tensor

    def to_json(self) -> dict[str, Any]:
        return {"scale": [float(s) for s in self.scale], "zero_point": [int(z) for z in self.zero_point],
                "axis": self.axis}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Quant":
        return cls(scale=list(d["scale"]), zero_point=list(d["zero_point"]), axis=d.get("axis"))


# The smallest normal float32. A smaller (subnormal) scale has lost its precision, and set against other scales it
# asks for multipliers no kernel shift can express (3.8e-42 would need a shift of 125).
SCALE_MIN = float(np.finfo(np.float32).tiny)


def scale_problem(scales: Iterable[float]) -> Optional[str]:
    """Why quantization scales from a model cannot be used (None if they can): each must be a positive, normal
    float32 (finite, and at least :data:`SCALE_MIN`)."""
    for scale in scales:
        value = float(scale)
        if not (np.isfinite(np.float32(value)) and value > 0):
            return f"quantization scale {value!r} is not a finite positive float32"
        if value < SCALE_MIN:
            return f"quantization scale {value:.3g} is below the smallest normal float32 ({SCALE_MIN:.3g})"
    return None


@dataclass
class Tensor:
    name: str                      # unique C identifier
    shape: list[int]               # IR layout (NHWC for 4-D activations)
    dtype: str                     # one of DTYPES
    label: str = ""                # the model's own name (untrusted text)
    is_const: bool = False         # data lives in params.npz under ``name``
    quant: Optional[Quant] = None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    def to_json(self) -> dict[str, Any]:
        return {"shape": [int(s) for s in self.shape], "dtype": self.dtype, "label": self.label,
                "const": self.is_const, "quant": self.quant.to_json() if self.quant else None}

    @classmethod
    def from_json(cls, name: str, d: dict[str, Any]) -> "Tensor":
        return cls(name=name, shape=list(d["shape"]), dtype=d["dtype"], label=d.get("label", ""),
                   is_const=bool(d.get("const", False)),
                   quant=Quant.from_json(d["quant"]) if d.get("quant") else None)


@dataclass
class Op:
    name: str                      # unique C identifier, e.g. ``conv2d_3``
    type: str                      # one of OP_TYPES
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    label: str = ""                # where it came from in the model, e.g. ``CONV_2D #3`` or an ONNX node name

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "inputs": list(self.inputs), "outputs": list(self.outputs),
                "attrs": self.attrs, "label": self.label}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Op":
        return cls(name=d["name"], type=d["type"], inputs=list(d["inputs"]), outputs=list(d["outputs"]),
                   attrs=dict(d.get("attrs", {})), label=d.get("label", ""))


@dataclass
class Graph:
    tensors: dict[str, Tensor]
    ops: list[Op]
    inputs: list[str]
    outputs: list[str]
    source: str = ""               # "tflite" | "onnx"
    source_file: str = ""          # base name of the model file (no directories: outputs must not hold paths)
    layout: str = "NHWC"           # the model's own activation layout
    input_perm: dict[str, list[int]] = field(default_factory=dict)
    output_perm: dict[str, list[int]] = field(default_factory=dict)
    quantized: str = "none"        # "none" | "int8" | "int16x8": what the model itself carries

    # ---- queries -------------------------------------------------------------------------------------------
    def producer(self, tensor: str) -> Optional[Op]:
        for op in self.ops:
            if tensor in op.outputs:
                return op
        return None

    def consumers(self, tensor: str) -> list[Op]:
        return [op for op in self.ops if tensor in op.inputs]

    def activations(self) -> list[str]:
        """Names of all non-constant tensors, graph inputs first, then in the order ops produce them."""
        names = list(self.inputs)
        for op in self.ops:
            names.extend(t for t in op.outputs if t not in names)
        return names

    # ---- serialization ------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "ir_version": IR_VERSION, "source": self.source, "source_file": self.source_file,
            "layout": self.layout, "quantized": self.quantized,
            "inputs": list(self.inputs), "outputs": list(self.outputs),
            "input_perm": self.input_perm, "output_perm": self.output_perm,
            "tensors": {n: t.to_json() for n, t in self.tensors.items()},
            "ops": [op.to_json() for op in self.ops],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Graph":
        return cls(tensors={n: Tensor.from_json(n, t) for n, t in d["tensors"].items()},
                   ops=[Op.from_json(o) for o in d["ops"]], inputs=list(d["inputs"]), outputs=list(d["outputs"]),
                   source=d.get("source", ""), source_file=d.get("source_file", ""), layout=d.get("layout", "NHWC"),
                   input_perm=d.get("input_perm", {}), output_perm=d.get("output_perm", {}),
                   quantized=d.get("quantized", "none"))


def dequantize(q: np.ndarray, scale: Any, zero_point: Any, axis: Optional[int] = None) -> np.ndarray:
    """``scale * (q - zero_point)`` in float64: per tensor, or per channel along ``axis`` (one scale per index;
    a single zero point applies to every channel)."""
    scale = np.asarray(scale, dtype=np.float64).reshape(-1)
    zero_point = np.asarray(zero_point, dtype=np.float64).reshape(-1)
    if axis is not None and scale.size > 1:
        along_axis = [1] * np.ndim(q)
        along_axis[axis] = -1
        scale = scale.reshape(along_axis)
        zero_point = zero_point.reshape(along_axis) if zero_point.size > 1 else zero_point[0]
    else:
        scale, zero_point = scale[0], zero_point[0]
    return scale * (np.asarray(q).astype(np.float64) - zero_point)


# The calibration statistics of an LSTM's cell state (every step's; it sets the state's int16 scale) are kept under
# the op's output name plus this suffix: a value inside the op, not a graph tensor
CELL_STATE_SUFFIX = ":cell"
# ... and, for the diagnostics only, each gate's pre-activation (every step's) under ":gate:<gate>"
GATE_SUFFIX = ":gate:"


@dataclass(frozen=True)
class RecurrentLayout:
    """Where a recurrent op keeps its constants: gate k's input weights are ``inputs[input_weights + k]``, its
    recurrent weights ``inputs[hidden_weights + k]``, its bias ``inputs[input_biases + k]`` (added to the input
    part) and, for a GRU, ``inputs[hidden_biases + k]`` (added to the recurrent part)."""

    gates: tuple[str, ...]
    input_weights: int
    hidden_weights: int
    input_biases: int
    hidden_biases: Optional[int] = None

    def constant(self, op: "Op", first: Optional[int], gate: int) -> Optional[str]:
        return None if first is None else op.inputs[first + gate]


RECURRENT_LAYOUTS = {"lstm": RecurrentLayout(("input", "forget", "cell", "output"), 1, 5, 9),  # TFLite's order
                     "gru": RecurrentLayout(("update", "reset", "candidate"), 1, 4, 7, 10)}   # ONNX's z, r, h


def absorbed_conversions(graph: Graph, tensors: Mapping[str, Any]) -> tuple[list[str], list[str], list[Op]]:
    """The generated network's inputs and outputs, in order, and the ops its C API's conversion helpers absorb: a
    ``quantize`` reading a float graph input (its output becomes the network input) and a ``dequantize`` writing a
    float graph output (its input becomes the network output). ``tensors``: the quantization table's entries (a
    tensor the table gives an integer type is not float). One rule for code generation and the checks."""
    def is_float(name: str) -> bool:
        entry = tensors.get(name)
        return graph.tensors[name].dtype == "float32" and (entry is None or entry["dtype"] == "float32")

    inputs, outputs, absorbed = list(graph.inputs), list(graph.outputs), []
    for op in graph.ops:
        source = op.inputs[0] if op.inputs else ""
        target = op.outputs[0] if op.outputs else ""
        if (op.type == "quantize" and source in inputs and is_float(source)
                and len(graph.consumers(source)) == 1 and source not in outputs):
            inputs[inputs.index(source)] = target
            absorbed.append(op)
        elif op.type == "dequantize" and target in outputs and is_float(target) and not graph.consumers(target):
            outputs[outputs.index(target)] = source
            absorbed.append(op)
    return inputs, outputs, absorbed


def save(graph: Graph, params: dict[str, np.ndarray], graph_path: str | os.PathLike,
         params_path: str | os.PathLike) -> None:
    """Write ``graph.json`` and ``params.npz`` deterministically and atomically."""
    validate(graph, params)
    fileio.write_json(graph_path, graph.to_json())
    fileio.write_npz(params_path, params)


def load(graph_path: str | os.PathLike, params_path: str | os.PathLike) -> tuple[Graph, dict[str, np.ndarray]]:
    return Graph.from_json(fileio.read_json(graph_path)), fileio.read_npz(params_path)


def validate(graph: Graph, params: dict[str, np.ndarray]) -> None:
    """Internal consistency checks; a failure here is a bug in an importer, not bad user input."""
    names = set(graph.tensors)
    for op in graph.ops:
        assert op.type in OP_TYPES, f"unknown IR op type {op.type}"
        assert _IDENT.fullmatch(op.name), op.name
        for t in op.inputs + op.outputs:
            assert t in names, f"{op.name}: unknown tensor {t}"
    for t in graph.tensors.values():
        assert _IDENT.fullmatch(t.name), t.name
        assert t.dtype in DTYPES, t.dtype
        if t.is_const:
            assert t.name in params, f"no data for constant {t.name}"
            assert list(params[t.name].shape) == list(t.shape), f"{t.name}: {params[t.name].shape} vs {t.shape}"
    for t in graph.inputs + graph.outputs:
        assert t in names


# ---- names from models are untrusted --------------------------------------------------------------------------
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def c_identifier(text: str, fallback: str = "t") -> str:
    """A C identifier derived from arbitrary text: other characters become ``_``, a leading digit or a keyword
    gets a prefix, length is capped. Not unique by itself; see :class:`NameTable`."""
    ident = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_")
    ident = re.sub(r"_+", "_", ident)[:MAX_IDENTIFIER].rstrip("_")
    if not ident:
        ident = fallback
    if ident[0].isdigit() or ident in C_KEYWORDS or ident.startswith("__"):
        ident = f"{fallback}_{ident}"
    return ident


# What a name keeps inside a C comment: printable ASCII but the backslash (a line continuation; it becomes '/') and
# '?' (trigraphs: "??/" is a backslash), which comes back alone, standing for each run of characters outside the set.
_COMMENT_UNSAFE = re.compile(r"[^\x20-\x3e\x40-\x5b\x5d-\x7e]+")
# The places between two characters that would make a comment delimiter ("/*", "*/", "//"): a space goes there.
_DELIMITER_JOINTS = re.compile(r"(?<=\*)(?=/)|(?<=/)(?=[*/])")


def c_comment(text: str, limit: int = 60) -> str:
    """Text safe inside a C ``/* */`` or ``//`` comment, whatever ``text`` holds: printable ASCII without ``\\``
    (it becomes ``/``), ``?`` only alone, ``*`` and ``/`` never next to each other or ``/`` to ``/``, at most
    ``limit`` characters. Every step works on the text as a whole, in one pass, so none can create what another
    removed, and sanitizing twice changes nothing."""
    s = _COMMENT_UNSAFE.sub("?", str(text).replace("\\", "/"))
    s = _DELIMITER_JOINTS.sub(" ", s)
    return s if len(s) <= limit else s[: limit - 3] + "..."


class NameTable:
    """Hands out unique C identifiers for untrusted names, deterministically (first come, first served)."""

    def __init__(self, reserved: Iterable[str] = ()) -> None:
        self._used: set[str] = set(reserved)

    def unique(self, text: str, fallback: str = "t") -> str:
        base = c_identifier(text, fallback)
        name, n = base, 1
        while name in self._used:
            name = f"{base}_{n}"
            n += 1
        self._used.add(name)
        return name
