"""What every part of the quantization tables shares (package :mod:`nnscons.quantize`).

The parameter records (:class:`TensorQ` per tensor, :class:`QTable` the stage's output), the state every rule
reads and writes while one table is built (:class:`QState`, with the integer words the scheme fixed once in
:class:`Words`), value quantization helpers, per-tensor or per-channel Q-format arithmetic, the tensors' roles
and the op checks. Every other module of the package builds on this one; it imports none of them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from .. import ir
from .. import ranges as rg
from ..errors import NnsconsError
from ..ranges import q_format_name, round_half_away

Frac = int | list[int]                # fractional bits: per tensor, or one per channel along an axis

Q_BITS = {"q7": 8, "q15": 16}        # the Q-format schemes and their activation word

WEIGHTED = ("conv2d", "depthwise_conv2d", "fully_connected")
# ops whose output keeps its (first, or for concat every) input's parameters, in every calibrated scheme
KEEP = ("max_pool2d", "avg_pool2d", "reshape", "pad", "relu", "relu6", "clip", "concat", "quantize", "dequantize")


# ---- records ---------------------------------------------------------------------------------------------------
@dataclass
class TensorQ:
    """How one tensor is stored: ``real = scale * (q - zero_point)``."""

    role: str                                  # input | output | activation | weight | bias | constant
    dtype: str
    scale: list[float] = field(default_factory=list)
    zero_point: list[int] = field(default_factory=list)
    axis: Optional[int] = None
    range: Optional[tuple[float, float]] = None  # the real range the parameters were chosen for (activations)
    frac_bits: Optional[int | list[int]] = None  # Q schemes (a list: one per channel along ``axis``)
    bits: int = 8

    @property
    def quantized(self) -> bool:
        return bool(self.scale)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"role": self.role, "dtype": self.dtype, "scale": [float(s) for s in self.scale],
                             "zero_point": [int(z) for z in self.zero_point], "axis": self.axis}
        if self.range is not None:
            d["range"] = [float(self.range[0]), float(self.range[1])]
        if isinstance(self.frac_bits, list):
            d["frac_bits"] = [int(f) for f in self.frac_bits]
            d["qformat"] = q_formats_name(self.frac_bits, self.bits)
        elif self.frac_bits is not None:
            d["frac_bits"] = int(self.frac_bits)
            d["qformat"] = q_format_name(self.frac_bits, self.bits)
        return d


def q_formats_name(fracs: list[int], bits: int) -> str:
    """Per-channel Q-formats in a few characters: the coarsest..the finest and the channel count."""
    coarse, fine = q_format_name(min(fracs), bits), q_format_name(max(fracs), bits)
    return f"{coarse if coarse == fine else coarse + '..' + fine} (x{len(fracs)})"


@dataclass
class QTable:
    tables: dict[str, Any]            # becomes qtable.json
    qparams: dict[str, np.ndarray]    # quantized constants by tensor name
    text: str                         # qtable.txt


@dataclass(frozen=True)
class Words:
    """The integer words a scheme stores tensors in, fixed once when its table starts."""

    bits: int                         # activation word (the W of the Q-format rules)
    act_dtype: str
    grid: Optional[rg.Grid] = None    # calibrated schemes: the grid activation ranges are mapped to
    weight_bits: int = 8
    wide_bias: bool = False           # q15 on the s16 kernels: int8 weights, int64 biases (package docstring)
    legacy: bool = False              # the legacy q7/q15 kernels (api=legacy): W-bit weights and biases


@dataclass
class QState:
    """One table while it is built: every rule reads and writes it. ``tq`` and ``qparams`` are the results; the
    rest is what the calibrated schemes keep on the way (groups of tensors sharing parameters, Q-formats)."""

    graph: ir.Graph
    params: dict[str, np.ndarray]
    ranges: Optional[rg.RangeTable]
    scheme: str
    words: Words
    roles: dict[str, str]
    tq: dict[str, TensorQ] = field(default_factory=dict)
    qparams: dict[str, np.ndarray] = field(default_factory=dict)
    real: dict[str, np.ndarray] = field(default_factory=dict)       # constants' real values
    group_of: dict[str, str] = field(default_factory=dict)          # tensor -> its group's root
    pinned: set[str] = field(default_factory=set)                   # groups with a fixed output format
    group_frac: dict[str, int] = field(default_factory=dict)        # Q schemes: fractional bits per group
    fw_values: dict[str, Frac] = field(default_factory=dict)        # Q schemes: weight formats from values alone
    warnings: list[str] = field(default_factory=list)               # what was clamped or zeroed (qtable.txt)

    @property
    def bits(self) -> int:
        return self.words.bits

    def frac(self, name: str) -> Frac:
        """Q schemes: a tensor's fractional bits (its group's, while the constraints settle); an int, or a list
        for per-channel weights and biases."""
        if name in self.group_of:
            return self.group_frac[self.group_of[name]]
        return self.tq[name].frac_bits  # type: ignore[return-value]

    def act_frac(self, name: str) -> int:
        """Q schemes: an activation's (or other per-tensor value's) fractional bits."""
        frac = self.frac(name)
        assert isinstance(frac, int), name
        return frac

    def tensor_json(self, name: str) -> dict[str, Any]:
        d = self.tq[name].to_json()
        d["shape"] = [int(s) for s in self.graph.tensors[name].shape]
        if self.ranges is not None and name in self.ranges.tensors:
            r = self.ranges.tensors[name]
            d["stats"] = {"min": r.min, "max": r.max}
        return d


def new_state(graph: ir.Graph, params: dict[str, np.ndarray], ranges: Optional[rg.RangeTable], scheme: str,
              words: Words) -> QState:
    """An empty table for ``graph``, after checking that every constant it uses has data."""
    state = QState(graph, params, ranges, scheme, words, roles(graph))
    for name in used_tensors(graph):
        if graph.tensors[name].is_const and name not in params:
            raise NnsconsError(None, f"quantize: no data for constant tensor {name}")
    return state


def word_dtype(bits: int) -> str:
    return "int8" if bits == 8 else "int16"


# ---- values in the integer domain ----------------------------------------------------------------------------
def round_array(x: np.ndarray) -> np.ndarray:
    """Element-wise round half away from zero (float64 in, float64 out); exact, unlike floor(x + 0.5)."""
    a = np.abs(x)
    n = np.floor(a)
    n = n + (a - n >= 0.5)
    return np.where(x < 0, -n, n)


def dtype_range(dtype: str) -> tuple[int, int]:
    info = np.iinfo(np.dtype(dtype))
    return int(info.min), int(info.max)


def quantize_value(value: float, scale: float, zero_point: int, dtype: str) -> int:
    """A real value in the integer domain, TFLite-style (float32 division, round half away, clamped)."""
    qmin, qmax = dtype_range(dtype)
    q = zero_point + round_half_away(float(np.float32(value) / np.float32(scale)))
    return min(qmax, max(qmin, q))


def to_int(values: np.ndarray, scale: np.ndarray, zero_point: int, dtype: str,
           limits: Optional[tuple[int, int]] = None) -> np.ndarray:
    """Real values stored as ``dtype`` integers (rounded half away, clamped to ``limits`` or the dtype's)."""
    qmin, qmax = limits if limits is not None else dtype_range(dtype)
    q = round_array(values / scale) + zero_point
    return np.clip(q, qmin, qmax).astype(dtype)


# ---- weights too small to matter ---------------------------------------------------------------------------------
def dead_channels(state: QState, op: ir.Op, values: np.ndarray, axis: Optional[int]) -> np.ndarray:
    """Per weight channel along ``axis`` (one entry for weights quantized per tensor), whether its weights are
    non-zero yet cannot move the layer's output by half an output step for any input the input's format holds:
    ``sum |w| * max |x| < s_out / 2`` for every output they feed. Such a channel (dead after training, weights
    near 1e-30) would otherwise get a scale so small that its multiplier underflows and its bias overflows; it
    is quantized as zeros instead, as TFLite's converter does. Exact zeros are not reported."""
    if not values.size:
        return np.zeros(values.shape[axis] if axis is not None else 1, dtype=bool)
    x_q, y_q = state.tq[op.inputs[0]], state.tq[op.outputs[0]]
    qmin, qmax = dtype_range(x_q.dtype)
    reach = max(x_q.zero_point[0] - qmin, qmax - x_q.zero_point[0]) * x_q.scale[0]
    rows = axis if axis is not None else (values.ndim - 1 if op.type == "depthwise_conv2d" else 0)
    others = tuple(a for a in range(values.ndim) if a != rows)
    sums, largest = np.abs(values).sum(axis=others), np.abs(values).max(axis=others)
    if axis is None:
        sums, largest = sums.max(keepdims=True), largest.max(keepdims=True)
    return (largest > 0) & (sums * reach < y_q.scale[0] / 2)


def zero_dead_channels(state: QState, op: ir.Op, values: np.ndarray, axis: Optional[int]) -> np.ndarray:
    """``values`` with the :func:`dead_channels` zeroed, each such layer reported in ``state.warnings``."""
    dead = dead_channels(state, op, values, axis)
    if not dead.any():
        return values
    kept = values.copy()
    if axis is None:
        kept[...] = 0.0
        what = "all its weights"
    else:
        index = [slice(None)] * values.ndim
        index[axis] = np.flatnonzero(dead)
        kept[tuple(index)] = 0.0
        what = f"{int(dead.sum())} of {dead.size} output channels ({channel_list(np.flatnonzero(dead))})"
    state.warnings.append(f"{op.name}: {what} zeroed: their weights (largest |w| {np.abs(values - kept).max():.3g}) "
                          f"cannot move the output by half a step for any input")
    return kept


def channel_list(indices: np.ndarray, limit: int = 12) -> str:
    """Channel numbers as ranges, ``0-3, 7, 9-12``; at most ``limit`` ranges, then how many channels more."""
    runs: list[list[int]] = []
    for i in (int(v) for v in indices):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    text = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs[:limit])
    rest = sum(b - a + 1 for a, b in runs[limit:])
    return text + (f" and {rest} more" if rest else "")


# ---- Q-formats per tensor or per channel -------------------------------------------------------------------------
def coarsest(frac: Frac) -> int:
    """The fewest fractional bits of a per-tensor or per-channel format."""
    return min(frac) if isinstance(frac, list) else frac


def add_fracs(a: Frac, b: Frac) -> Frac:
    """Element-wise ``a + b`` of formats, each per tensor (int) or per channel (list)."""
    if isinstance(a, list) or isinstance(b, list):
        n = len(a) if isinstance(a, list) else len(b)  # type: ignore[arg-type]
        a_list = a if isinstance(a, list) else [a] * n
        b_list = b if isinstance(b, list) else [b] * n
        return [x + y for x, y in zip(a_list, b_list)]
    return a + b


def axis_scales(frac: Frac, axis: Optional[int], ndim: int) -> np.ndarray:
    """``2^-frac`` shaped to broadcast along ``axis`` (a per-channel format) or a scalar."""
    if not isinstance(frac, list):
        return np.array(2.0 ** -frac)
    shape = [1] * ndim
    shape[axis if axis is not None else 0] = -1
    return (2.0 ** -np.array(frac, dtype=np.float64)).reshape(shape)


# ---- the graph: op checks, roles, order --------------------------------------------------------------------------
def check_ops(graph: ir.Graph) -> None:
    for op in graph.ops:
        if op.type not in ir.OP_TYPES:
            raise NnsconsError(None, f"quantize: op {op.name} has unknown type {op.type!r}")
        if op.type in WEIGHTED:
            if len(op.inputs) < 2 or not graph.tensors[op.inputs[1]].is_const:
                raise NnsconsError(None, f"quantize: op {op.name} ({op.type}) needs constant weights")
            if len(op.inputs) > 2 and not graph.tensors[op.inputs[2]].is_const:
                raise NnsconsError(None, f"quantize: op {op.name} ({op.type}) needs a constant bias")


def roles(graph: ir.Graph) -> dict[str, str]:
    """Each tensor's role: weight and bias of a weighted op, constant, input, output or activation."""
    found: dict[str, str] = {}
    for op in graph.ops:
        if op.type in WEIGHTED:
            found[op.inputs[1]] = "weight"
            if len(op.inputs) > 2:
                found[op.inputs[2]] = "bias"
        if op.type == "lstm":                     # x, 4 input and 4 recurrent weights, 4 biases
            found.update({name: "weight" for name in op.inputs[1:9]})
            found.update({name: "bias" for name in op.inputs[9:13]})
        if op.type == "gru":                      # x, 3 input and 3 recurrent weights, 3 input and 3 recurrent biases
            found.update({name: "weight" for name in op.inputs[1:7]})
            found.update({name: "bias" for name in op.inputs[7:13]})
    for name, tensor in graph.tensors.items():
        if name in found:
            continue
        if tensor.is_const:
            found[name] = "constant"
        elif name in graph.inputs:
            found[name] = "input"
        elif name in graph.outputs:
            found[name] = "output"
        else:
            found[name] = "activation"
    return found


def used_tensors(graph: ir.Graph) -> list[str]:
    """Tensors in a deterministic order: graph inputs, then as ops read and write them."""
    names = list(graph.inputs)
    for op in graph.ops:
        names.extend(t for t in op.inputs + op.outputs if t not in names)
    return names
