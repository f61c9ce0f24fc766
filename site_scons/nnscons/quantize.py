"""Quantization tables (stage 5): ``qtable.json``, ``qtable.txt`` and ``qparams.npz``.

From the graph, its constants and the activation statistics this stage decides how every tensor is stored as
integers and computes, per layer, every number code generation passes to CMSIS-NN. Schemes (option ``quant``):

``model``     the model's own int8 / int16x8 / QDQ parameters, unchanged (so the C can be bit-exact with
              TFLite Micro). An error on a float model.
``auto``      ``model`` for a quantized model, else ``int8``.
``int8``      TFLite's int8 spec: asymmetric int8 activations (real 0 exactly representable: the zero point is
              "nudged" to an integer), symmetric int8 weights in [-127, 127], per output channel for conv2d (axis 0
              of OHWI) and depthwise_conv2d (axis 3 of 1HWC), per tensor for fully_connected; int32 biases with
              scale ``s_in * s_w[c]`` and zero point 0.
``int16x8``   as int8, with symmetric int16 activations (zero point 0) and int64 biases.
``q7``/``q15`` the seed guide's power-of-two Q-formats on 8 / 16-bit words (legacy CMSIS-NN q7/q15 API): a
              tensor of range R gets ``n = W-1-ceil(log2 R)`` fractional bits (:func:`~nnscons.ranges.q_frac_bits`);
              weights, biases and other constants (W-bit, per tensor) from their values, activations from the
              statistics and the range method. Per conv/depthwise/FC layer
              ``bias_shift = (fi + fw) - fb`` and ``out_shift = (fi + fw) - fo``.

The ``api`` option (the kernels the code will call) matters for ``q15`` only: the legacy q15 kernels take int16
weights and W-bit biases, but the modern s16 kernels take int8 weights and int64 biases. With ``api="s8"`` a
q15 model therefore gets 8-bit Q-format weights (``fw`` from their values on 8 bits) and int64 biases in the
accumulator's format (``fb = fi + fw``, ``bias_shift`` 0: no precision is lost to a W-bit bias); activations stay
Q-formats on 16 bits. As the s16 conv and depthwise kernels take one multiplier and shift per output channel anyway,
their weights get one Q-format per output channel (``fw[c]`` from that channel's largest value, axis 0 of OHWI
resp. 3 of 1HWC): every channel then uses all 8 bits, where one format per tensor leaves channels with small
weights a few levels. Their bias is per channel too (``fb[c] = fi + fw[c]``) and so is ``out_shift[c] =
fi + fw[c] - fo``; ``fo <= fi + min(fw)`` and ``fw[c] <= fo - fi + 31`` keep every shift in 0..31.
fully_connected weights get one format per output too (axis 0 of ``[out][in]``); as the s16 fully connected kernel
takes a single multiplier, code generation runs such a layer as a 1x1 convolution (:mod:`nnscons.kernels`).
Every other scheme is the same for both APIs; the legacy API keeps one format per layer (its kernels take one
``bias_shift`` / ``out_shift``).

Layer constraints (which outputs may be chosen freely):

* conv2d, depthwise_conv2d, fully_connected, add, sub, mul choose their output from its statistics (in affine
  schemes also mean and leaky_relu).
* max/avg pool, reshape, pad, relu, relu6, clip, quantize, dequantize (and in Q schemes mean and leaky_relu)
  keep their input's parameters; concat's inputs and output share one set. Such tensors form a group whose range
  is the union of its members' ranges, so the format covers the largest range and no requantization is needed
  (the producers write the common format directly).
* Fixed outputs: softmax, logistic and tanh give Q0.(W-1) in Q schemes; in int8 softmax and logistic give scale
  1/256 zero point -128, tanh 1/128 zero point 0 (TFLite's requirements); in int16x8 all three 1/32768, 0.
* add/sub in Q schemes take two inputs in different formats: they are aligned to the coarser one (the larger
  range), ``align_shift`` records each input's right shift to it, and ``out_shift`` the shift from it to the
  output. mul: ``out_shift = (f1 + f2) - fo``.
* Q schemes keep every shift a legal non-negative legacy shift: ``fb <= fi + fw`` (a bias finer than the
  accumulator would need a right shift) and ``fo <= fi + fw`` (resp. the aligned input format for add/sub,
  ``f1 + f2`` for mul): neither loses anything, the accumulator has no finer bits. And the shifted W-bit bias
  must fit the int32 accumulator (``bias_shift <= 32 - W``): if it would not, ``fw`` gives way (the weights lose
  their lowest bits rather than the bias overflowing). The sum itself must fit too, for any input the input
  format holds (the legacy kernels wrap silently): ``fw`` is lowered until every row's extreme sum does, counting
  only non-negative inputs after a ReLU (or other clamp at zero), where the extremes are half as far.
  An all-zero bias takes the accumulator's format.
  A shift that still falls outside 0..31 is an error naming the layer.

Every scheme is also expressed for the modern s8/s16 kernels: each layer gets TFLite-style parameters (offsets,
Q31 multipliers and shifts from :func:`quantize_multiplier`, activation clamps). conv2d / depthwise_conv2d carry
one multiplier and shift per output channel (a per-tensor weight scale is repeated, as the kernels take
per-channel arrays); fully_connected one per weight scale (usually one). For a Q-format, scale 2^-n and
zero point 0 make the conv requantization 2^-out_shift = multiplier 2^30 with shift ``1 - out_shift``, and the
int32 bias for an s8 kernel is the W-bit bias shifted left by ``bias_shift``.

``qtable.json`` (canonical JSON): ``tensors`` (per tensor: role, dtype, scale, zero_point, axis, chosen range and
statistics for activations, ``frac_bits`` / ``qformat`` in Q schemes; a per-channel Q-format has ``frac_bits`` a
list along ``axis``, one per scale, and ``qformat`` a summary such as ``Q0.7..Q-2.10 (x16)``), ``layers`` (per op,
keyed by op name; a layer with per-channel weight formats has ``fw``, ``fb`` and ``out_shift`` lists),
``order``, and the scheme. ``qparams.npz``: the quantized constants by tensor name (weights in IR layout).
``qtable.txt``: the same for people, the seed's table to check by hand.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from . import fileio, ir
from . import ranges as rg
from .errors import NnsconsError
from .fixedpoint import quantize_multiplier  # re-exported: part of this stage's API
from .options import APIS, resolve_scheme_for
from .ranges import q_format_name, q_frac_bits, round_half_away  # re-exported: part of this stage's API

SCHEMES = ("auto", "model", "int8", "int16x8", "q7", "q15")
QTABLE_VERSION = 1

_AFFINE_GRIDS = {"int8": rg.Grid("asymmetric", 8), "int16x8": rg.Grid("symmetric", 16)}
_Q_BITS = {"q7": 8, "q15": 16}

_WEIGHTED = ("conv2d", "depthwise_conv2d", "fully_connected")
_KEEP = ("max_pool2d", "avg_pool2d", "reshape", "pad", "relu", "relu6", "clip", "concat", "quantize", "dequantize")
_KEEP_Q_ONLY = ("mean", "leaky_relu")
_FIXED = ("softmax", "logistic", "tanh")

# Fixed output parameters TFLite requires: (scale, zero point) per scheme and op
_FIXED_AFFINE = {
    "int8": {"softmax": (1 / 256, -128), "logistic": (1 / 256, -128), "tanh": (1 / 128, 0)},
    "int16x8": {"softmax": (1 / 32768, 0), "logistic": (1 / 32768, 0), "tanh": (1 / 32768, 0)},
}

_INT32_MAX = (1 << 31) - 1
_ADD_LEFT_SHIFT = {8: 20, 16: 15}
_SOFTMAX_DIFF_INT_BITS = 5          # integer bits of the scaled logit differences in TFLite's int8 softmax


# ---- integer arithmetic ---------------------------------------------------------------------------------------
def quantize_multiplier_greater_than_one(real: float, what: str) -> tuple[int, int]:
    """:func:`quantize_multiplier` for a real above 1, so the shift is a left shift (>= 0)."""
    if not real > 1.0:
        raise NnsconsError(None, f"quantize: {what}: multiplier {real!r} must exceed 1 (input scale too small)")
    return quantize_multiplier(real)


def _round_array(x: np.ndarray) -> np.ndarray:
    """Element-wise round half away from zero (float64 in, float64 out); exact, unlike floor(x + 0.5)."""
    a = np.abs(x)
    n = np.floor(a)
    n = n + (a - n >= 0.5)
    return np.where(x < 0, -n, n)


def _dtype_range(dtype: str) -> tuple[int, int]:
    info = np.iinfo(np.dtype(dtype))
    return int(info.min), int(info.max)


def _quantize_value(value: float, scale: float, zero_point: int, dtype: str) -> int:
    """A real value in the integer domain, TFLite-style (float32 division, round half away, clamped)."""
    qmin, qmax = _dtype_range(dtype)
    q = zero_point + round_half_away(float(np.float32(value) / np.float32(scale)))
    return min(qmax, max(qmin, q))


# ---- tables ------------------------------------------------------------------------------------------------------
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


def _coarsest(frac: int | list[int]) -> int:
    """The fewest fractional bits of a per-tensor or per-channel format."""
    return min(frac) if isinstance(frac, list) else frac


def _add_fracs(a: int | list[int], b: int | list[int]) -> int | list[int]:
    """Element-wise ``a + b`` of formats, each per tensor (int) or per channel (list)."""
    if isinstance(a, list) or isinstance(b, list):
        n = len(a) if isinstance(a, list) else len(b)  # type: ignore[arg-type]
        a_list = a if isinstance(a, list) else [a] * n
        b_list = b if isinstance(b, list) else [b] * n
        return [x + y for x, y in zip(a_list, b_list)]
    return a + b


def _axis_scales(frac: int | list[int], axis: Optional[int], ndim: int) -> np.ndarray:
    """``2^-frac`` shaped to broadcast along ``axis`` (a per-channel format) or a scalar."""
    if not isinstance(frac, list):
        return np.array(2.0 ** -frac)
    shape = [1] * ndim
    shape[axis if axis is not None else 0] = -1
    return (2.0 ** -np.array(frac, dtype=np.float64)).reshape(shape)


@dataclass
class QTable:
    tables: dict[str, Any]            # becomes qtable.json
    qparams: dict[str, np.ndarray]    # quantized constants by tensor name
    text: str                         # qtable.txt


def write_qtable(qtable: QTable, json_path: str | os.PathLike, txt_path: str | os.PathLike,
                 qparams_path: str | os.PathLike) -> None:
    fileio.write_json(json_path, qtable.tables)
    fileio.write_text(txt_path, qtable.text)
    fileio.write_npz(qparams_path, qtable.qparams)


def resolve_scheme(graph: ir.Graph, quant: str) -> str:
    return resolve_scheme_for(graph.quantized, quant)


def build_qtable(graph: ir.Graph, params: dict[str, np.ndarray], ranges: Optional[rg.RangeTable],
                 quant: str, api: str = "s8") -> QTable:
    """Decide every tensor's quantization and every layer's kernel parameters (see the module docstring).
    ``ranges`` (the ranges stage's output for this scheme) is needed by every scheme but ``model``; ``api``
    (``s8`` or ``legacy``) is the kernel family the parameters are for."""
    if api not in APIS:
        raise NnsconsError(None, f"quantize: api={api!r} is not one of {', '.join(APIS)}")
    scheme = resolve_scheme(graph, quant)
    if ranges is not None and ranges.scheme != scheme:
        raise NnsconsError(None, f"quantize: ranges were chosen for scheme {ranges.scheme}, not {scheme}; "
                                 f"rebuild ranges.json")
    _check_ops(graph)
    if scheme == "model":
        builder: _Builder = _ModelBuilder(graph, params, ranges, scheme)
    else:
        builder = _CalibratedBuilder(graph, params, ranges, scheme, api)
    builder.build()
    layers = {op.name: builder.layer(op) for op in graph.ops}
    tables = {
        "format": "nnscons-qtable", "version": QTABLE_VERSION,
        "scheme": scheme, "requested": quant, "range": ranges.method if ranges else "none",
        "word_bits": builder.bits, "model_quantized": graph.quantized,
        "inputs": list(graph.inputs), "outputs": list(graph.outputs), "order": [op.name for op in graph.ops],
        "tensors": {name: builder.tensor_json(name) for name in builder.tq},
        "layers": layers,
    }
    return QTable(tables, builder.qparams, render_text(graph, tables, ranges))


def _check_ops(graph: ir.Graph) -> None:
    for op in graph.ops:
        if op.type not in ir.OP_TYPES:
            raise NnsconsError(None, f"quantize: op {op.name} has unknown type {op.type!r}")
        if op.type in _WEIGHTED:
            if len(op.inputs) < 2 or not graph.tensors[op.inputs[1]].is_const:
                raise NnsconsError(None, f"quantize: op {op.name} ({op.type}) needs constant weights")
            if len(op.inputs) > 2 and not graph.tensors[op.inputs[2]].is_const:
                raise NnsconsError(None, f"quantize: op {op.name} ({op.type}) needs a constant bias")


def _roles(graph: ir.Graph) -> dict[str, str]:
    roles: dict[str, str] = {}
    for op in graph.ops:
        if op.type in _WEIGHTED:
            roles[op.inputs[1]] = "weight"
            if len(op.inputs) > 2:
                roles[op.inputs[2]] = "bias"
    for name, tensor in graph.tensors.items():
        if name in roles:
            continue
        if tensor.is_const:
            roles[name] = "constant"
        elif name in graph.inputs:
            roles[name] = "input"
        elif name in graph.outputs:
            roles[name] = "output"
        else:
            roles[name] = "activation"
    return roles


def _used_tensors(graph: ir.Graph) -> list[str]:
    """Tensors in a deterministic order: graph inputs, then as ops read and write them."""
    names = list(graph.inputs)
    for op in graph.ops:
        names.extend(t for t in op.inputs + op.outputs if t not in names)
    return names


# ---- building ----------------------------------------------------------------------------------------------------
class _Builder:
    """Shared by the schemes: tensor parameters in ``tq``, quantized constants in ``qparams``; layer entries
    computed from the final parameters."""

    bits: int = 8

    def __init__(self, graph: ir.Graph, params: dict[str, np.ndarray], ranges: Optional[rg.RangeTable],
                 scheme: str, api: str = "s8") -> None:
        self.graph, self.params, self.ranges, self.scheme, self.api = graph, params, ranges, scheme, api
        self.wide_bias = False       # q15 on the s16 kernels (set by the calibrated builder)
        self.weight_bits = 8
        self.roles = _roles(graph)
        self.tq: dict[str, TensorQ] = {}
        self.qparams: dict[str, np.ndarray] = {}
        for name in _used_tensors(graph):
            if graph.tensors[name].is_const and name not in params:
                raise NnsconsError(None, f"quantize: no data for constant tensor {name}")

    def build(self) -> None:
        raise NotImplementedError

    @property
    def is_q(self) -> bool:
        return self.scheme in _Q_BITS

    def tensor_json(self, name: str) -> dict[str, Any]:
        d = self.tq[name].to_json()
        d["shape"] = [int(s) for s in self.graph.tensors[name].shape]
        if self.ranges is not None and name in self.ranges.tensors:
            r = self.ranges.tensors[name]
            d["stats"] = {"min": r.min, "max": r.max}
        return d

    # ---- per-layer parameters ----------------------------------------------------------------------------------
    def _sz(self, op: ir.Op, name: str) -> tuple[float, int]:
        t = self.tq[name]
        if not t.quantized:
            raise NnsconsError(None, f"quantize: op {op.name} ({op.type}): tensor {name} is not quantized")
        if len(t.scale) != 1:
            raise NnsconsError(None, f"quantize: op {op.name} ({op.type}): tensor {name} must be quantized per "
                                     f"tensor, it has {len(t.scale)} scales")
        return float(t.scale[0]), int(t.zero_point[0])

    def _act_range(self, op: ir.Op, low: Optional[float], high: Optional[float]) -> dict[str, int]:
        """A real clamp range in the output's integer domain, intersected with the dtype range."""
        out = op.outputs[0]
        scale, zero_point = self._sz(op, out)
        dtype = self.tq[out].dtype
        qmin, qmax = _dtype_range(dtype)
        act_min = qmin if low is None else max(qmin, _quantize_value(low, scale, zero_point, dtype))
        act_max = qmax if high is None else min(qmax, _quantize_value(high, scale, zero_point, dtype))
        return {"act_min": act_min, "act_max": act_max}

    def _fused(self, op: ir.Op) -> dict[str, int]:
        activation = op.attrs.get("activation", "none")
        if activation not in ir.ACTIVATION_RANGES:
            raise NnsconsError(None, f"quantize: op {op.name}: unknown fused activation {activation!r}")
        return self._act_range(op, *ir.ACTIVATION_RANGES[activation])

    def layer(self, op: ir.Op) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": op.type, "inputs": list(op.inputs), "outputs": list(op.outputs)}
        handler = _LAYER_HANDLERS.get(op.type)
        if handler is not None:
            entry.update(handler(self, op))
        return entry

    def _weighted(self, op: ir.Op) -> dict[str, Any]:
        x, w, y = op.inputs[0], op.inputs[1], op.outputs[0]
        s_in, zp_in = self._sz(op, x)
        s_out, zp_out = self._sz(op, y)
        wq = self.tq[w]
        w_scales = [float(s) for s in wq.scale]
        if len(set(wq.zero_point)) != 1:
            raise NnsconsError(None, f"quantize: op {op.name}: weights {w} have several zero points")
        channels = self.graph.tensors[w].shape[0 if op.type == "conv2d" else -1]
        if op.type != "fully_connected" and len(w_scales) == 1:
            w_scales = w_scales * channels                 # conv kernels always take per-channel parameters
        multipliers, shifts = [], []
        for s_w in w_scales:
            m, s = quantize_multiplier(s_in * s_w / s_out)
            multipliers.append(m)
            shifts.append(s)
        entry: dict[str, Any] = {
            "input_offset": -zp_in, "output_offset": zp_out, "filter_offset": -int(wq.zero_point[0]),
            "multiplier": multipliers, "shift": shifts, "per_channel": len(w_scales) > 1,
            "weights": w, "bias": op.inputs[2] if len(op.inputs) > 2 else None,
        }
        entry.update(self._fused(op))
        return entry

    def _pool(self, op: ir.Op) -> dict[str, Any]:
        return self._fused(op)

    def _add_sub(self, op: ir.Op) -> dict[str, Any]:
        (s1, zp1), (s2, zp2) = self._sz(op, op.inputs[0]), self._sz(op, op.inputs[1])
        s_out, zp_out = self._sz(op, op.outputs[0])
        left_shift = _ADD_LEFT_SHIFT[self.bits]
        twice_max = 2.0 * max(s1, s2)
        m1, sh1 = quantize_multiplier(s1 / twice_max)
        m2, sh2 = quantize_multiplier(s2 / twice_max)
        mo, sho = quantize_multiplier(twice_max / ((1 << left_shift) * s_out))
        entry: dict[str, Any] = {
            "left_shift": left_shift, "input1_offset": -zp1, "input2_offset": -zp2, "output_offset": zp_out,
            "input1_multiplier": m1, "input1_shift": sh1, "input2_multiplier": m2, "input2_shift": sh2,
            "output_multiplier": mo, "output_shift": sho,
        }
        entry.update(self._fused(op))
        return entry

    def _mul(self, op: ir.Op) -> dict[str, Any]:
        (s1, zp1), (s2, zp2) = self._sz(op, op.inputs[0]), self._sz(op, op.inputs[1])
        s_out, zp_out = self._sz(op, op.outputs[0])
        mo, sho = quantize_multiplier(s1 * s2 / s_out)
        entry: dict[str, Any] = {"input1_offset": -zp1, "input2_offset": -zp2, "output_offset": zp_out,
                                 "output_multiplier": mo, "output_shift": sho}
        entry.update(self._fused(op))
        return entry

    def _softmax(self, op: ir.Op) -> dict[str, Any]:
        s_in, _ = self._sz(op, op.inputs[0])
        beta = float(op.attrs.get("beta", 1.0))
        if self.bits == 8:
            real = min(beta * s_in * float(1 << (31 - _SOFTMAX_DIFF_INT_BITS)), float(_INT32_MAX))
            mult, left_shift = quantize_multiplier_greater_than_one(real, f"softmax {op.name}")
            # the radius of the logit differences that still contribute: floor((2^5-1) * 2^(31-5) / 2^shift)
            radius = (((1 << _SOFTMAX_DIFF_INT_BITS) - 1) << (31 - _SOFTMAX_DIFF_INT_BITS)) >> left_shift
            return {"beta": beta, "input_multiplier": mult, "input_left_shift": left_shift, "diff_min": -radius}
        # int16: logit differences are rescaled so that [-10, 0] maps onto [-65535, 0] (exp lookup table)
        mult, shift = quantize_multiplier(s_in * beta / (10.0 / 65535.0))
        return {"beta": beta, "input_multiplier": mult, "input_left_shift": shift}

    def _clamp_op(self, op: ir.Op) -> dict[str, Any]:
        if op.type == "relu":
            return self._act_range(op, 0.0, None)
        if op.type == "relu6":
            return self._act_range(op, 0.0, 6.0)
        low, high = op.attrs.get("min"), op.attrs.get("max")
        return self._act_range(op, None if low is None else float(low), None if high is None else float(high))

    def _pad(self, op: ir.Op) -> dict[str, Any]:
        out = op.outputs[0]
        scale, zero_point = self._sz(op, out)
        return {"pad_value": _quantize_value(float(op.attrs.get("value", 0.0)), scale, zero_point,
                                             self.tq[out].dtype)}

    def _rescale(self, op: ir.Op, factor: float = 1.0) -> dict[str, Any]:
        """One requantization ``factor * s_in / s_out`` (mean, leaky_relu, integer -> integer quantize)."""
        x, y = op.inputs[0], op.outputs[0]
        if not (self.tq[x].quantized and self.tq[y].quantized):
            return {}
        (s_in, zp_in), (s_out, zp_out) = self._sz(op, x), self._sz(op, y)
        m, s = quantize_multiplier(factor * s_in / s_out)
        return {"input_offset": -zp_in, "output_offset": zp_out, "multiplier": m, "shift": s}

    def _leaky_relu(self, op: ir.Op) -> dict[str, Any]:
        """Two multipliers, for x >= 0 (s_in / s_out) and x < 0 (alpha s_in / s_out), with the ratios taken
        in float32 as TFLite's kernel takes them (so the results are bit-exact with it). A negative alpha
        keeps no multiplier (code generation refuses the layer)."""
        x, y = op.inputs[0], op.outputs[0]
        if not (self.tq[x].quantized and self.tq[y].quantized):
            return {}
        (s_in, zp_in), (s_out, zp_out) = self._sz(op, x), self._sz(op, y)
        alpha = float(op.attrs.get("alpha", 0.0))
        m, s = quantize_multiplier(float(np.float32(s_in) / np.float32(s_out)))
        entry: dict[str, Any] = {"input_offset": -zp_in, "output_offset": zp_out, "multiplier": m, "shift": s,
                                 "alpha": alpha}
        if alpha >= 0:
            m_alpha, s_alpha = quantize_multiplier(float(np.float32(s_in) * np.float32(alpha) / np.float32(s_out)))
            entry.update({"alpha_multiplier": m_alpha, "alpha_shift": s_alpha})
        return entry

    def _offsets(self, op: ir.Op) -> dict[str, Any]:
        entry: dict[str, Any] = {}
        if self.tq[op.inputs[0]].quantized:
            entry["input_offset"] = -self._sz(op, op.inputs[0])[1]
        if self.tq[op.outputs[0]].quantized:
            entry["output_offset"] = self._sz(op, op.outputs[0])[1]
        return entry


_LAYER_HANDLERS: dict[str, Callable[[_Builder, ir.Op], dict[str, Any]]] = {
    "conv2d": _Builder._weighted, "depthwise_conv2d": _Builder._weighted, "fully_connected": _Builder._weighted,
    "avg_pool2d": _Builder._pool, "max_pool2d": _Builder._pool,
    "add": _Builder._add_sub, "sub": _Builder._add_sub, "mul": _Builder._mul,
    "softmax": _Builder._softmax,
    "relu": _Builder._clamp_op, "relu6": _Builder._clamp_op, "clip": _Builder._clamp_op,
    "pad": _Builder._pad, "mean": _Builder._rescale, "quantize": _Builder._rescale,
    "leaky_relu": _Builder._leaky_relu,
    "logistic": _Builder._offsets, "tanh": _Builder._offsets, "dequantize": _Builder._offsets,
}


# ---- the model's own parameters ------------------------------------------------------------------------------------
class _ModelBuilder(_Builder):
    """``quant=model``: every tensor keeps the quantization the model carries; constants are copied."""

    def build(self) -> None:
        self.bits = 16 if self.graph.quantized == "int16x8" else 8
        for name in _used_tensors(self.graph):
            tensor = self.graph.tensors[name]
            role = self.roles[name]
            q = tensor.quant
            entry = TensorQ(role=role, dtype=tensor.dtype, bits=np.dtype(tensor.dtype).itemsize * 8)
            if q is not None:
                entry.scale = [float(s) for s in q.scale]
                entry.zero_point = [int(z) for z in q.zero_point]
                entry.axis = q.axis
                if not tensor.is_const and tensor.dtype != "float32" and len(q.scale) == 1:
                    qmin, qmax = _dtype_range(tensor.dtype)
                    entry.range = ((qmin - entry.zero_point[0]) * entry.scale[0],
                                   (qmax - entry.zero_point[0]) * entry.scale[0])
            self.tq[name] = entry
            if tensor.is_const:
                data = np.asarray(self.params[name])
                if data.dtype.kind in "iu":
                    self.qparams[name] = data
                elif role in ("weight", "bias"):
                    raise NnsconsError(None, f"quant=model: {role} {name} is stored as {data.dtype}, not as "
                                             f"integers; use quant=int8")

    def layer(self, op: ir.Op) -> dict[str, Any]:
        entry = super().layer(op)
        if op.type in _WEIGHTED and len(op.inputs) > 2:
            self._check_bias(op)
        return entry

    def _check_bias(self, op: ir.Op) -> None:
        bias = self.tq[op.inputs[2]]
        if bias.dtype not in ("int32", "int64"):
            raise NnsconsError(None, f"quant=model: op {op.name}: bias {op.inputs[2]} is {bias.dtype}, "
                                     f"expected int32 or int64")


# ---- schemes calibrated from statistics ------------------------------------------------------------------------------
class _Groups:
    """Union-find over tensor names: tensors that must share their quantization."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, name: str) -> str:
        self.parent.setdefault(name, name)
        root = name
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[name] != root:
            self.parent[name], name = root, self.parent[name]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


class _CalibratedBuilder(_Builder):
    """``int8``, ``int16x8``, ``q7``, ``q15``: parameters from the statistics and the constants' values."""

    def build(self) -> None:
        if self.is_q:
            self.bits = _Q_BITS[self.scheme]
            self.grid = rg.Grid("pow2", self.bits)
            self.act_dtype = "int8" if self.bits == 8 else "int16"
            # q15 on the s16 kernels: int8 weights, int64 biases in the accumulator's format (module docstring)
            self.wide_bias = self.bits == 16 and self.api == "s8"
            self.weight_bits = 8 if self.wide_bias else self.bits
        else:
            self.grid = _AFFINE_GRIDS[self.scheme]
            self.bits = self.grid.bits
            self.act_dtype = "int8" if self.bits == 8 else "int16"
        self.fw_values: dict[str, int | list[int]] = {}  # Q schemes: weight formats from their values alone
        self.real = {name: self._real_constant(name) for name in _used_tensors(self.graph)
                     if self.graph.tensors[name].is_const}
        self._check_ranges()
        self._value_tensors()
        for op in self.graph.ops:
            if op.type in _WEIGHTED:
                self._weights(op)
        if self.is_q:
            self._q_constraints()
        for op in self.graph.ops:
            if op.type in _WEIGHTED and len(op.inputs) > 2:
                self._bias(op)

    def _real_constant(self, name: str) -> np.ndarray:
        """A constant's real values (integer data of a quantized model dequantized with its ``quant``)."""
        data = np.asarray(self.params[name])
        tensor = self.graph.tensors[name]
        if data.dtype.kind == "f" or tensor.quant is None:
            return data.astype(np.float64)
        return ir.dequantize(data, tensor.quant.scale, tensor.quant.zero_point, tensor.quant.axis)

    def _check_ranges(self) -> None:
        if self.ranges is None:
            raise NnsconsError(None, f"quant={self.scheme} needs activation statistics: add a calibration set "
                                     f"(calib.npz) to the model folder")
        for name in self.graph.activations():
            if name not in self.ranges.tensors:
                raise NnsconsError(None, f"quantize: the statistics have no values for tensor {name}; "
                                         f"rebuild stats.npz and ranges.json for this graph")

    # ---- activations and non-weight constants ---------------------------------------------------------------------
    def _value_tensors(self) -> None:
        """Quantize activations and other constants per tensor, group by group."""
        keep = _KEEP + (_KEEP_Q_ONLY if self.is_q else ())
        groups = _Groups()
        names = [n for n in _used_tensors(self.graph) if self.roles[n] not in ("weight", "bias")]
        for name in names:
            groups.find(name)
        fixed: dict[str, tuple[float, int, str]] = {}
        for op in self.graph.ops:
            if op.type in keep:
                for x in (op.inputs if op.type == "concat" else op.inputs[:1]):
                    groups.union(x, op.outputs[0])
            elif op.type in _FIXED:
                fixed[op.outputs[0]] = self._fixed_params(op)
        members: dict[str, list[str]] = {}
        for name in names:
            members.setdefault(groups.find(name), []).append(name)
        self.group_of = {name: groups.find(name) for name in names}
        self.group_frac: dict[str, int] = {}        # Q schemes: fractional bits per group
        self.pinned: set[str] = set()                # groups with a fixed output format
        for group in members.values():
            self._quantize_group(group, fixed)

    def _fixed_params(self, op: ir.Op) -> tuple[float, int, str]:
        if self.is_q:
            return 2.0 ** -(self.bits - 1), 0, op.name
        scale, zero_point = _FIXED_AFFINE[self.scheme][op.type]
        return scale, zero_point, op.name

    def _own_range(self, name: str) -> tuple[float, float]:
        if name in self.real:
            values = self.real[name]
            return (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        r = self.ranges.tensors[name]  # type: ignore[union-attr]
        return r.lo, r.hi

    def _quantize_group(self, group: list[str], fixed: dict[str, tuple[float, int, str]]) -> None:
        ranges = [self._own_range(n) for n in group]
        lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
        pinned = {fixed[n][:2] for n in group if n in fixed}
        if len(pinned) > 1:
            ops = ", ".join(sorted(fixed[n][2] for n in group if n in fixed))
            raise NnsconsError(None, f"quantize: ops {ops} have fixed, different output quantizations but "
                                     f"their outputs must share one (concat or a pass-through op joins them)")
        root = self.group_of[group[0]]
        if pinned:
            scale, zero_point = pinned.pop()
            lo, hi = (self.grid.qmin - zero_point) * scale, (self.grid.qmax - zero_point) * scale
            self.pinned.add(root)
        else:
            scale, zero_point = self.grid.params(lo, hi)
        frac = None
        if self.is_q:
            frac = self.bits - 1 if root in self.pinned else q_frac_bits(max(-min(lo, 0.0), max(hi, 0.0)), self.bits)
            self.group_frac[root] = frac
        for name in group:
            self.tq[name] = TensorQ(role=self.roles[name], dtype=self.act_dtype, scale=[scale],
                                    zero_point=[zero_point], range=(lo, hi), frac_bits=frac, bits=self.bits)
            if name in self.real:
                self.qparams[name] = self._to_int(self.real[name], np.array(scale), zero_point, self.act_dtype)

    @staticmethod
    def _to_int(values: np.ndarray, scale: np.ndarray, zero_point: int, dtype: str,
                limits: Optional[tuple[int, int]] = None) -> np.ndarray:
        qmin, qmax = limits if limits is not None else _dtype_range(dtype)
        q = _round_array(values / scale) + zero_point
        return np.clip(q, qmin, qmax).astype(dtype)

    # ---- weights and biases ------------------------------------------------------------------------------------------
    def _weights(self, op: ir.Op) -> None:
        w = op.inputs[1]
        if w in self.tq:
            return                                         # shared by several layers: quantized once
        values = self.real[w]
        if self.is_q:
            bits = self.weight_bits
            dtype = "int8" if bits == 8 else "int16"
            axis = self._q_channel_axis(op, values)
            frac: int | list[int]
            if axis is None:
                frac = q_frac_bits(float(np.max(np.abs(values))) if values.size else 0.0, bits)
                scales, zero_points = [2.0 ** -frac], [0]
            else:
                frac = _channel_frac_bits(values, axis, bits)
                scales, zero_points = [2.0 ** -f for f in frac], [0] * len(frac)
            self.tq[w] = TensorQ("weight", dtype, scales, zero_points, axis, frac_bits=frac, bits=bits)
            self.qparams[w] = self._to_int(values, _axis_scales(frac, axis, values.ndim), 0, dtype)
            self.fw_values[w] = frac
            return
        axis = {"conv2d": 0, "depthwise_conv2d": values.ndim - 1}.get(op.type)
        if axis is None:
            max_abs = np.array([np.max(np.abs(values)) if values.size else 0.0])
        else:
            max_abs = np.max(np.abs(values), axis=tuple(a for a in range(values.ndim) if a != axis))
        scales = _symmetric_weight_scales(max_abs)
        shape = [1] * values.ndim
        if axis is not None:
            shape[axis] = -1
        self.tq[w] = TensorQ("weight", "int8", [float(s) for s in scales], [0] * len(scales), axis, bits=8)
        self.qparams[w] = self._to_int(values, scales.reshape(shape), 0, "int8", (-127, 127))

    def _q_channel_axis(self, op: ir.Op, values: np.ndarray) -> Optional[int]:
        """The axis of per-channel Q-format weights on the s16 kernels (which take per-channel multipliers;
        a fully connected layer is then run as a 1x1 convolution), else None (the legacy kernels take one shift
        per layer)."""
        if not self.wide_bias:
            return None
        if op.type == "fully_connected" and values.ndim == 2:
            return 0
        return {"conv2d": 0, "depthwise_conv2d": 3}.get(op.type) if values.ndim == 4 else None

    def _bias(self, op: ir.Op) -> None:
        x, w, b = op.inputs[0], op.inputs[1], op.inputs[2]
        values = self.real[b].reshape(-1)
        if self.is_q:
            accumulator = _add_fracs(self.tq[x].frac_bits, self.tq[w].frac_bits)  # type: ignore[arg-type]
            if self.wide_bias:
                self._wide_q_bias(op, b, accumulator)
                return
            assert isinstance(accumulator, int)  # per-channel formats are for the s16 kernels (wide biases) only
            max_abs = float(np.max(np.abs(values))) if values.size else 0.0
            # an all-zero bias fits any format: take the accumulator's (bias_shift 0)
            frac = min(q_frac_bits(max_abs, self.bits), accumulator) if max_abs > 0 else accumulator
            if b in self.tq and self.tq[b].frac_bits != frac:
                raise NnsconsError(None, f"quantize: bias {b} is shared by layers that need different formats")
            self.tq[b] = TensorQ("bias", self.act_dtype, [2.0 ** -frac], [0], None, frac_bits=frac, bits=self.bits)
            self.qparams[b] = self._to_int(self.real[b], np.array(2.0 ** -frac), 0, self.act_dtype)
            return
        s_in = self.tq[x].scale[0]
        scales = [float(np.float32(s_in * s_w)) for s_w in self.tq[w].scale]
        per_channel = len(scales) > 1
        if per_channel and len(scales) != values.size:
            raise NnsconsError(None, f"quantize: op {op.name}: bias {b} has {values.size} values for "
                                     f"{len(scales)} channels")
        dtype = "int32" if self.scheme == "int8" else "int64"
        self.tq[b] = TensorQ("bias", dtype, scales, [0] * len(scales), 0 if per_channel else None,
                             bits=np.dtype(dtype).itemsize * 8)
        scale = np.array(scales).reshape(self.real[b].shape) if per_channel else np.array(scales[0])
        self.qparams[b] = self._to_int(self.real[b], scale, 0, dtype)

    def _wide_q_bias(self, op: ir.Op, b: str, frac: int | list[int]) -> None:
        """An int64 bias in the accumulator's own format (bias_shift 0), for the s16 kernels; per channel when
        the weights' formats are."""
        if b in self.tq and self.tq[b].frac_bits != frac:
            raise NnsconsError(None, f"quantize: bias {b} is shared by layers that need different formats")
        values = self.real[b]
        if isinstance(frac, list):
            if values.size != len(frac):
                raise NnsconsError(None, f"quantize: op {op.name}: bias {b} has {values.size} values for "
                                         f"{len(frac)} channels")
            self.tq[b] = TensorQ("bias", "int64", [2.0 ** -f for f in frac], [0] * len(frac), 0, frac_bits=frac,
                                 bits=64)
            scale = _axis_scales(frac, 0, 1).reshape(values.shape)
        else:
            self.tq[b] = TensorQ("bias", "int64", [2.0 ** -frac], [0], None, frac_bits=frac, bits=64)
            scale = np.array(2.0 ** -frac)
        self.qparams[b] = self._to_int(values, scale, 0, "int64")

    # ---- Q-format layer constraints ----------------------------------------------------------------------------------
    def _frac(self, name: str) -> int | list[int]:
        """A tensor's fractional bits: an int, or a list for per-channel weights and biases."""
        if name in self.group_of:
            return self.group_frac[self.group_of[name]]
        return self.tq[name].frac_bits  # type: ignore[return-value]

    def _act_frac(self, name: str) -> int:
        """An activation's (or other per-tensor value's) fractional bits."""
        frac = self._frac(name)
        assert isinstance(frac, int), name
        return frac

    def _weight_frac(self, op: ir.Op) -> int:
        """fw: from the weights' values, but lowered when the 32-bit accumulator could overflow:
        a W-bit bias shifted left by ``bias_shift = fi + fw - fb`` overflows int32 unless ``bias_shift <= 32 - W``;
        and the sum itself must fit (:meth:`_headroom_frac`)."""
        fw = self.fw_values[op.inputs[1]]
        if self.wide_bias:  # int64 accumulation (s16 kernels): no 32-bit limit; per channel, the coarsest counts
            return _coarsest(fw)
        assert isinstance(fw, int)
        fi = self._act_frac(op.inputs[0])
        if len(op.inputs) > 2:
            max_abs = float(np.max(np.abs(self.real[op.inputs[2]]))) if self.real[op.inputs[2]].size else 0.0
            if max_abs > 0:
                fw = min(fw, 32 - self.bits + q_frac_bits(max_abs, self.bits) - fi)
        return min(fw, self._headroom_frac(op, fi))

    def _headroom_frac(self, op: ir.Op, fi: int) -> int:
        """The finest weight format whose int32 accumulator cannot overflow for any input the input format holds
        (inputs may saturate anywhere in it): the legacy kernels wrap silently otherwise. A row's extremes are
        ``sum(w+) * hi + sum(w-) * lo`` and the reverse, plus the bias, with ``[lo, hi]`` the input format's
        integer range, or ``[0, hi]`` when the input cannot be negative (:meth:`_nonnegative`: after a ReLU,
        half the bound, one bit more for the weights). A first estimate from the real values, then lowered until
        the quantized weights and bias fit exactly."""
        w = self.real[op.inputs[1]]
        if w.size == 0:
            return _coarsest(self.fw_values[op.inputs[1]])
        rows = np.moveaxis(w, 3, 0) if op.type == "depthwise_conv2d" else w
        rows = rows.reshape(rows.shape[0], -1)
        positive, negative = np.where(rows > 0, rows, 0.0).sum(axis=1), np.where(rows < 0, -rows, 0.0).sum(axis=1)
        reach = 2.0 ** (self.bits - 1 - fi)
        low = 0.0 if self._nonnegative(op.inputs[0]) else reach
        bound = np.maximum(positive * reach + negative * low, negative * reach + positive * low)
        bias = self.real[op.inputs[2]].reshape(-1) if len(op.inputs) > 2 else np.zeros(0)
        if bias.size:
            bound = bound + np.abs(bias)
        largest = float(np.max(bound))
        if largest <= 0:
            return _coarsest(self.fw_values[op.inputs[1]])
        fw = 30 - fi - math.floor(math.log2(largest))
        while fw > -64 and not self._accumulator_fits(op, rows, bias, fi, fw):
            fw -= 1
        return fw

    def _accumulator_fits(self, op: ir.Op, rows: np.ndarray, bias: np.ndarray, fi: int, fw: int) -> bool:
        """The integer check behind :meth:`_headroom_frac`: every row's extreme sums with the weights and bias
        quantized as they would be at ``fw`` (the bias at its own format, shifted left into the accumulator's),
        plus the rounding constant of the current output format, within int32."""
        limit = 1 << (self.bits - 1)
        wq = np.clip(_round_array(rows * 2.0 ** fw), -limit, limit - 1).astype(np.int64)
        hi, lo = limit - 1, 0 if self._nonnegative(op.inputs[0]) else -limit
        positive, negative = np.where(wq > 0, wq, 0).sum(axis=1), np.where(wq < 0, wq, 0).sum(axis=1)
        top, bottom = positive * hi + negative * lo, negative * hi + positive * lo
        if bias.size:
            max_abs = float(np.max(np.abs(bias)))
            fb = min(q_frac_bits(max_abs, self.bits), fi + fw) if max_abs > 0 else fi + fw
            bq = np.clip(_round_array(bias * 2.0 ** fb), -limit, limit - 1).astype(np.int64) << (fi + fw - fb)
            top, bottom = top + bq, bottom + bq
        out_shift = fi + fw - self._act_frac(op.outputs[0])
        rounding = 1 << (out_shift - 1) if 0 < out_shift <= 32 else 0       # NN_ROUND(out_shift)
        return int(np.max(top)) + rounding < (1 << 31) and int(np.min(bottom)) >= -(1 << 31)

    def _nonnegative(self, name: str) -> bool:
        """Whether a tensor cannot hold negative values whatever the input: it comes out of a clamp at zero or
        above (a fused or separate ReLU/ReLU6, clip with min >= 0), softmax or logistic, possibly through ops
        that keep values (pooling, reshape, zero padding, concat of such tensors)."""
        op = self.graph.producer(name)
        if op is None:
            return False
        if op.type in ("relu", "relu6", "softmax", "logistic"):
            return True
        if op.type == "clip":
            return op.attrs.get("min") is not None and float(op.attrs["min"]) >= 0.0
        if op.type in _WEIGHTED + ("add", "sub", "mul"):
            low = ir.ACTIVATION_RANGES.get(op.attrs.get("activation", "none"), (None, None))[0]
            return low is not None and low >= 0.0
        if op.type in ("max_pool2d", "avg_pool2d", "reshape"):
            return self._nonnegative(op.inputs[0])
        if op.type == "pad":
            return float(op.attrs.get("value", 0.0)) >= 0.0 and self._nonnegative(op.inputs[0])
        if op.type == "concat":
            return all(self._nonnegative(x) for x in op.inputs if not self.graph.tensors[x].is_const)
        return False

    def _output_bound(self, op: ir.Op) -> Optional[int]:
        """The finest output format the op can produce without a left shift (None: no bound)."""
        if op.type in _WEIGHTED:
            return self._act_frac(op.inputs[0]) + self._weight_frac(op)
        if op.type in ("add", "sub"):
            return min(self._act_frac(x) for x in op.inputs[:2])
        if op.type == "mul":
            return self._act_frac(op.inputs[0]) + self._act_frac(op.inputs[1])
        return None

    def _q_constraints(self) -> None:
        """Lower output formats to their bounds, repeating until stable (a lowered input lowers later bounds)."""
        for _ in range(len(self.graph.ops) + 2):
            changed = False
            for op in self.graph.ops:
                bound = self._output_bound(op)
                root = self.group_of[op.outputs[0]]
                if bound is not None and self.group_frac[root] > bound:
                    if root in self.pinned:
                        raise NnsconsError(None, f"quantize: op {op.name} cannot produce the fixed format of "
                                                 f"{op.outputs[0]} (it shares it with a softmax/logistic/tanh)")
                    self.group_frac[root] = bound
                    changed = True
            if not changed:
                break
        else:
            raise NnsconsError(None, "quantize: the Q-format constraints do not settle (a layer feeds a tensor "
                                     "that must share its input's format)")
        final = dict(self.group_frac)
        weight_frac: dict[str, int | list[int]] = {}
        for op in self.graph.ops:
            if op.type in _WEIGHTED:
                w = op.inputs[1]
                previous = weight_frac.get(w, self.fw_values[w])
                if isinstance(previous, list):
                    weight_frac[w] = [min(f, self._channel_limit(op)) for f in previous]
                else:
                    weight_frac[w] = min(previous, self._weight_frac(op))
        for name, root in self.group_of.items():
            self._set_frac(name, final[root])
        for name, frac in weight_frac.items():
            self._set_frac(name, frac)

    def _channel_limit(self, op: ir.Op) -> int:
        """Per-channel weight formats: the finest a channel may take so that its ``out_shift = fi + fw[c] - fo``
        stays at most 31 (a channel of tiny weights would otherwise ask for a longer shift)."""
        return self._act_frac(op.outputs[0]) - self._act_frac(op.inputs[0]) + 31

    def _set_frac(self, name: str, frac: int | list[int]) -> None:
        entry = self.tq[name]
        if entry.frac_bits != frac:
            entry.frac_bits = frac
            entry.scale = [2.0 ** -f for f in frac] if isinstance(frac, list) else [2.0 ** -frac]
            if name in self.real:
                scale = _axis_scales(frac, entry.axis, self.real[name].ndim)
                self.qparams[name] = self._to_int(self.real[name], scale, 0, entry.dtype)

    # ---- Q-format fields of the layer entries ----------------------------------------------------------------------
    def layer(self, op: ir.Op) -> dict[str, Any]:
        entry = super().layer(op)
        if self.is_q:
            entry.update(self._q_layer(op))
        return entry

    def _q_layer(self, op: ir.Op) -> dict[str, Any]:
        fo = self._act_frac(op.outputs[0])
        if op.type in _WEIGHTED:
            return self._q_weighted(op, fo)
        inputs = [x for x in op.inputs if x in self.group_of or x in self.tq]
        fis = [self._act_frac(x) for x in inputs]
        if op.type in ("add", "sub"):
            common = min(fis[:2])
            out_shift = common - fo
            self._check_shift(op, "out_shift", out_shift)
            return {"fi": fis[:2], "fo": fo, "align_shift": [f - common for f in fis[:2]], "out_shift": out_shift}
        if op.type == "mul":
            out_shift = fis[0] + fis[1] - fo
            self._check_shift(op, "out_shift", out_shift)
            return {"fi": fis[:2], "fo": fo, "out_shift": out_shift}
        entry: dict[str, Any] = {"fi": fis[0] if len(fis) == 1 else fis, "fo": fo}
        if op.type in ("logistic", "tanh"):
            entry["int_width"] = self.bits - 1 - fis[0]        # legacy direct tables: Q(int_width).(7-int_width)
        return entry

    def _q_weighted(self, op: ir.Op, fo: int) -> dict[str, Any]:
        """fi, fw, fb, fo and the shifts of a conv / depthwise / FC layer; with per-channel weight formats
        ``fw``, ``fb`` and ``out_shift`` are lists (``bias_shift`` is 0 for every channel: the bias is int64 in the
        accumulator's format)."""
        fi, fw = self._act_frac(op.inputs[0]), self._frac(op.inputs[1])
        fws = fw if isinstance(fw, list) else [fw]
        fb = self._frac(op.inputs[2]) if len(op.inputs) > 2 else None
        fbs = fb if isinstance(fb, list) else [fb] * len(fws)
        bias_shifts = [fi + w - b if b is not None else 0 for w, b in zip(fws, fbs)]
        out_shifts = [fi + w - fo for w in fws]
        for value in bias_shifts:
            self._check_shift(op, "bias_shift", value)
        for value in out_shifts:
            self._check_shift(op, "out_shift", value)
        if len(set(bias_shifts)) != 1:
            raise NnsconsError(None, f"quantize: layer {op.name} would need a bias_shift per channel")
        out_shift: int | list[int] = out_shifts if isinstance(fw, list) else out_shifts[0]
        return {"fi": fi, "fw": fw, "fb": fb, "fo": fo, "bias_shift": bias_shifts[0], "out_shift": out_shift,
                "bias_lshift": bias_shifts[0]}

    @staticmethod
    def _check_shift(op: ir.Op, what: str, value: int) -> None:
        if not 0 <= value <= 31:
            raise NnsconsError(None, f"quantize: layer {op.name} needs {what} = {value}, outside 0..31 "
                                     f"(its input, weight and output ranges are too far apart)")


def _symmetric_weight_scales(max_abs: np.ndarray) -> np.ndarray:
    """Per-channel scales ``max|w| / 127`` (float32 values); an all-zero channel borrows the largest scale
    (any scale represents zeros, and this one keeps its multiplier ordinary), 1.0 if all are zero."""
    max_abs = np.asarray(max_abs, dtype=np.float64).reshape(-1)
    fallback = float(max_abs.max()) if max_abs.size and max_abs.max() > 0 else 127.0
    max_abs = np.where(max_abs > 0, max_abs, fallback)
    return (max_abs / 127.0).astype(np.float32).astype(np.float64)


def _channel_frac_bits(values: np.ndarray, axis: int, bits: int) -> list[int]:
    """One Q-format per channel along ``axis`` from that channel's largest |value|; an all-zero channel takes
    the whole tensor's format (any format holds zeros, and this one keeps its shift ordinary)."""
    other = tuple(a for a in range(values.ndim) if a != axis)
    max_abs = np.max(np.abs(values), axis=other) if values.size else np.zeros(values.shape[axis])
    overall = float(np.max(max_abs)) if max_abs.size else 0.0
    return [q_frac_bits(float(m) if m > 0 else overall, bits) for m in max_abs]


# ---- the readable table ------------------------------------------------------------------------------------------
def render_text(graph: ir.Graph, tables: dict[str, Any], ranges: Optional[rg.RangeTable]) -> str:
    """``qtable.txt``: one row per layer in execution order, then one per activation tensor."""
    scheme = tables["scheme"]
    q = scheme in _Q_BITS
    tensors = tables["tensors"]
    lines = [f"nnscons quantization table: scheme {scheme} (requested {tables['requested']}), range "
             f"{tables['range']}, {tables['word_bits']}-bit activations, model {tables['model_quantized']}", ""]
    if q:
        lines.append("Q-formats Qm.n: n fractional bits, m integer bits (sign excluded); real = q * 2^-n.")
        lines.append("bias_shift = (fi + fw) - fb, out_shift = (fi + fw) - fo; on s8/s16 kernels a Q-format is "
                     "scale 2^-n, zero point 0.")
        if any(isinstance(layer.get("out_shift"), list) for layer in tables["layers"].values()):
            lines.append("Per-channel formats: coarsest..finest (x channels); their out_shift: smallest..largest "
                         "(x channels).")
    else:
        lines.append("Formats scale/zero_point (real = scale * (q - zero_point)); per-channel: first scale "
                     "and (xN) channels. mult/shift: first channel and count.")
    lines.append("")
    header = ["layer", "type", "input", "weight", "bias", "output"]
    header += ["bias_shift", "out_shift"] if q else ["multiplier", "shift", "act"]
    rows = [header]
    for name in tables["order"]:
        layer = tables["layers"][name]
        ins = layer["inputs"]
        data_inputs = [x for x in ins if tensors[x]["role"] not in ("weight", "bias")]
        weight = layer.get("weights")
        bias = layer.get("bias")
        row = [name, layer["type"], ", ".join(_fmt(tensors[x]) for x in data_inputs) or "-",
               _fmt(tensors[weight]) if weight else "-", _fmt(tensors[bias]) if bias else "-",
               ", ".join(_fmt(tensors[y]) for y in layer["outputs"])]
        if q:
            row += [str(layer.get("bias_shift", "-")) if weight else "-", _q_out_shift(layer)]
        else:
            mult, shift = _first_mult(layer)
            row += [mult, shift, f"[{layer['act_min']}, {layer['act_max']}]" if "act_min" in layer else "-"]
        rows.append(row)
    lines += fileio.text_table(rows)
    lines += ["", "activations"]
    rows = [["tensor", "role", "shape", "min", "max", "range", "format"]]
    for name in graph.activations():
        if name not in tensors:
            continue
        t = tensors[name]
        ts = ranges.tensors.get(name) if ranges is not None else None
        have = ts is not None
        rows.append([name, t["role"], "x".join(map(str, t["shape"])),
                     f"{ts.min:.6g}" if have else "-", f"{ts.max:.6g}" if have else "-",  # type: ignore[union-attr]
                     f"[{t['range'][0]:.6g}, {t['range'][1]:.6g}]" if "range" in t else "-", _fmt(t)])
    lines += fileio.text_table(rows)
    return "\n".join(lines) + "\n"


def _fmt(t: dict[str, Any]) -> str:
    if "qformat" in t:
        return t["qformat"]
    if not t["scale"]:
        return t["dtype"]
    text = f"{t['scale'][0]:.6g}/{t['zero_point'][0]}"
    return text + (f" (x{len(t['scale'])})" if len(t["scale"]) > 1 else "")


def _q_out_shift(layer: dict[str, Any]) -> str:
    if "out_shift" not in layer:
        return "-"
    if "align_shift" in layer:
        return f"{layer['out_shift']} (align {layer['align_shift']})"
    shift = layer["out_shift"]
    if isinstance(shift, list):
        low, high = str(min(shift)), str(max(shift))
        return f"{low if low == high else low + '..' + high} (x{len(shift)})"
    return str(shift)


def _first_mult(layer: dict[str, Any]) -> tuple[str, str]:
    if isinstance(layer.get("multiplier"), list):
        count = len(layer["multiplier"])
        suffix = f" (x{count})" if count > 1 else ""
        return f"{layer['multiplier'][0]}{suffix}", str(layer["shift"][0])
    if "multiplier" in layer:
        return str(layer["multiplier"]), str(layer["shift"])
    if "output_multiplier" in layer:
        return str(layer["output_multiplier"]), str(layer["output_shift"])
    if "input_multiplier" in layer:
        return str(layer["input_multiplier"]), str(layer["input_left_shift"])
    return "-", "-"
