"""Power-of-two Q-format schemes ``q7`` and ``q15`` (package :mod:`nnscons.quantize`).

The Q-format family's steps of :mod:`.calibrated`: a tensor of range R gets ``n = W-1-ceil(log2 R)`` fractional
bits (scale ``2^-n``, zero point 0); activations from their group's range, fixed outputs Q0.(W-1); weights and
biases from their values (per output channel for q15 on the s16 kernels, which then take int8 weights and int64
biases in the accumulator's format). :mod:`.headroom` then settles the formats between layers, and the layer
entries get the legacy kernels' fields (``fi``, ``fw``, ``fb``, ``fo``, ``bias_shift``, ``out_shift``,
``align_shift``), one rule per op kind in ``Q_LAYER_RULES``.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from .. import ir
from .. import ranges as rg
from ..errors import NnsconsError
from ..ranges import q_frac_bits
from .common import (Q_BITS, Frac, QState, TensorQ, Words, add_fracs, axis_scales, to_int, word_dtype,
                     zero_dead_channels)

QLayerRule = Callable[[QState, ir.Op], dict[str, Any]]


def words(scheme: str, api: str) -> Words:
    """W-bit activations; q15 on the s16 kernels (``api="s8"``) has int8 weights and int64 biases."""
    bits = Q_BITS[scheme]
    wide_bias = bits == 16 and api == "s8"
    return Words(bits, word_dtype(bits), rg.Grid("pow2", bits), 8 if wide_bias else bits, wide_bias,
                 legacy=api == "legacy")


def fixed_output(state: QState, op: ir.Op) -> tuple[float, int]:
    """softmax, logistic and tanh give Q0.(W-1)."""
    return 2.0 ** -(state.bits - 1), 0


def group_format(state: QState, root: str, lo: float, hi: float) -> int:
    """A group's fractional bits from its range (Q0.(W-1) when pinned to a fixed output), recorded per group."""
    frac = state.bits - 1 if root in state.pinned else q_frac_bits(max(-min(lo, 0.0), max(hi, 0.0)), state.bits)
    state.group_frac[root] = frac
    return frac


# ---- weights and biases from their values ----------------------------------------------------------------------
def quantize_weights(state: QState, op: ir.Op) -> None:
    """Weight formats from their values alone (``fw_values``; :mod:`.headroom` may lower them later)."""
    w = op.inputs[1]
    bits = state.words.weight_bits
    dtype = "int8" if bits == 8 else "int16"
    axis = _channel_axis(state, op, state.real[w])
    # dead channels become zeros (an all-zero channel takes the tensor's format): the headroom rules read these
    values = state.real[w] = zero_dead_channels(state, op, state.real[w], axis)
    frac: Frac
    if axis is None:
        frac = q_frac_bits(float(np.max(np.abs(values))) if values.size else 0.0, bits)
        scales, zero_points = [2.0 ** -frac], [0]
    else:
        frac = _channel_frac_bits(values, axis, bits)
        scales, zero_points = [2.0 ** -f for f in frac], [0] * len(frac)
    state.tq[w] = TensorQ("weight", dtype, scales, zero_points, axis, frac_bits=frac, bits=bits)
    state.qparams[w] = to_int(values, axis_scales(frac, axis, values.ndim), 0, dtype)
    state.fw_values[w] = frac


def _channel_axis(state: QState, op: ir.Op, values: np.ndarray) -> Optional[int]:
    """The axis of per-channel Q-format weights on the s16 kernels (which take per-channel multipliers;
    a fully connected layer is then run as a 1x1 convolution), else None (the legacy kernels take one shift
    per layer)."""
    if not state.words.wide_bias:
        return None
    if op.type == "fully_connected" and values.ndim == 2:
        return 0
    return {"conv2d": 0, "depthwise_conv2d": 3}.get(op.type) if values.ndim == 4 else None


def _channel_frac_bits(values: np.ndarray, axis: int, bits: int) -> list[int]:
    """One Q-format per channel along ``axis`` from that channel's largest |value|; an all-zero channel takes
    the whole tensor's format (any format holds zeros, and this one keeps its shift ordinary)."""
    other = tuple(a for a in range(values.ndim) if a != axis)
    max_abs = np.max(np.abs(values), axis=other) if values.size else np.zeros(values.shape[axis])
    overall = float(np.max(max_abs)) if max_abs.size else 0.0
    return [q_frac_bits(float(m) if m > 0 else overall, bits) for m in max_abs]


def quantize_bias(state: QState, op: ir.Op) -> None:
    """A W-bit bias from its values, never finer than the accumulator (``fb <= fi + fw``); on the s16 kernels an
    int64 bias in the accumulator's own format."""
    x, w, b = op.inputs[0], op.inputs[1], op.inputs[2]
    values = state.real[b].reshape(-1)
    accumulator = add_fracs(state.tq[x].frac_bits, state.tq[w].frac_bits)  # type: ignore[arg-type]
    if state.words.wide_bias:
        _wide_bias(state, op, b, accumulator)
        return
    assert isinstance(accumulator, int)  # per-channel formats are for the s16 kernels (wide biases) only
    max_abs = float(np.max(np.abs(values))) if values.size else 0.0
    # an all-zero bias fits any format: take the accumulator's (bias_shift 0)
    frac = min(q_frac_bits(max_abs, state.bits), accumulator) if max_abs > 0 else accumulator
    if b in state.tq and state.tq[b].frac_bits != frac:
        raise NnsconsError(None, f"quantize: bias {b} is shared by layers that need different formats")
    act_dtype = state.words.act_dtype
    state.tq[b] = TensorQ("bias", act_dtype, [2.0 ** -frac], [0], None, frac_bits=frac, bits=state.bits)
    state.qparams[b] = to_int(state.real[b], np.array(2.0 ** -frac), 0, act_dtype)


def _wide_bias(state: QState, op: ir.Op, b: str, frac: Frac) -> None:
    """An int64 bias in the accumulator's own format (bias_shift 0), for the s16 kernels; per channel when
    the weights' formats are."""
    if b in state.tq and state.tq[b].frac_bits != frac:
        raise NnsconsError(None, f"quantize: bias {b} is shared by layers that need different formats")
    values = state.real[b]
    if isinstance(frac, list):
        if values.size != len(frac):
            raise NnsconsError(None, f"quantize: op {op.name}: bias {b} has {values.size} values for "
                                     f"{len(frac)} channels")
        state.tq[b] = TensorQ("bias", "int64", [2.0 ** -f for f in frac], [0] * len(frac), 0, frac_bits=frac,
                              bits=64)
        scale = axis_scales(frac, 0, 1).reshape(values.shape)
    else:
        state.tq[b] = TensorQ("bias", "int64", [2.0 ** -frac], [0], None, frac_bits=frac, bits=64)
        scale = np.array(2.0 ** -frac)
    state.qparams[b] = to_int(values, scale, 0, "int64")


# ---- the Q-format fields of the layer entries ------------------------------------------------------------------
def layer_fields(state: QState, op: ir.Op) -> dict[str, Any]:
    rule = Q_LAYER_RULES.get(op.type)
    if rule is None:
        raise NnsconsError(None, f"quantize: op {op.name}: no Q-format rule for op type {op.type!r}")
    return rule(state, op)


def _input_fracs(state: QState, op: ir.Op) -> list[int]:
    return [state.act_frac(x) for x in op.inputs if x in state.group_of or x in state.tq]


def weighted_shifts(state: QState, op: ir.Op) -> dict[str, Any]:
    """fi, fw, fb, fo and the shifts of a conv / depthwise / FC layer; with per-channel weight formats
    ``fw``, ``fb`` and ``out_shift`` are lists (``bias_shift`` is 0 for every channel: the bias is int64 in the
    accumulator's format)."""
    fo = state.act_frac(op.outputs[0])
    fi, fw = state.act_frac(op.inputs[0]), state.frac(op.inputs[1])
    fws = fw if isinstance(fw, list) else [fw]
    fb = state.frac(op.inputs[2]) if len(op.inputs) > 2 else None
    fbs = fb if isinstance(fb, list) else [fb] * len(fws)
    bias_shifts = [fi + w - b if b is not None else 0 for w, b in zip(fws, fbs)]
    out_shifts = [fi + w - fo for w in fws]
    for value in bias_shifts:
        _check_shift(op, "bias_shift", value)
    for value in out_shifts:
        _check_shift(op, "out_shift", value)
    if len(set(bias_shifts)) != 1:
        raise NnsconsError(None, f"quantize: layer {op.name} would need a bias_shift per channel")
    out_shift: Frac = out_shifts if isinstance(fw, list) else out_shifts[0]
    return {"fi": fi, "fw": fw, "fb": fb, "fo": fo, "bias_shift": bias_shifts[0], "out_shift": out_shift,
            "bias_lshift": bias_shifts[0]}


def aligned_add(state: QState, op: ir.Op) -> dict[str, Any]:
    """add / sub: both inputs aligned to the coarser format (``align_shift`` each), then ``out_shift`` to fo."""
    fo = state.act_frac(op.outputs[0])
    fis = _input_fracs(state, op)
    common = min(fis[:2])
    out_shift = common - fo
    _check_shift(op, "out_shift", out_shift)
    return {"fi": fis[:2], "fo": fo, "align_shift": [f - common for f in fis[:2]], "out_shift": out_shift}


def product(state: QState, op: ir.Op) -> dict[str, Any]:
    """mul: ``out_shift = (f1 + f2) - fo``."""
    fo = state.act_frac(op.outputs[0])
    fis = _input_fracs(state, op)
    out_shift = fis[0] + fis[1] - fo
    _check_shift(op, "out_shift", out_shift)
    return {"fi": fis[:2], "fo": fo, "out_shift": out_shift}


def formats(state: QState, op: ir.Op) -> dict[str, Any]:
    """The input format(s) and the output's, nothing to shift."""
    fo = state.act_frac(op.outputs[0])
    fis = _input_fracs(state, op)
    return {"fi": fis[0] if len(fis) == 1 else fis, "fo": fo}


def sequence_formats(state: QState, op: ir.Op) -> dict[str, Any]:
    """An LSTM or GRU: its sequence's format and its output's (its weights and biases carry their own)."""
    return {"fi": state.act_frac(op.inputs[0]), "fo": state.act_frac(op.outputs[0])}


def lookup(state: QState, op: ir.Op) -> dict[str, Any]:
    """logistic / tanh: the legacy direct tables read Q(int_width).(7-int_width)."""
    entry = formats(state, op)
    entry["int_width"] = state.bits - 1 - _input_fracs(state, op)[0]
    return entry


def _check_shift(op: ir.Op, what: str, value: int) -> None:
    if not 0 <= value <= 31:
        raise NnsconsError(None, f"quantize: layer {op.name} needs {what} = {value}, outside 0..31 "
                                 f"(its input, weight and output ranges are too far apart)")


Q_LAYER_RULES: dict[str, QLayerRule] = {
    "conv2d": weighted_shifts, "depthwise_conv2d": weighted_shifts, "fully_connected": weighted_shifts,
    "add": aligned_add, "sub": aligned_add, "mul": product,
    "logistic": lookup, "tanh": lookup,
    "avg_pool2d": formats, "max_pool2d": formats, "softmax": formats, "reshape": formats, "pad": formats,
    "mean": formats, "concat": formats, "relu": formats, "relu6": formats, "leaky_relu": formats, "clip": formats,
    "quantize": formats, "dequantize": formats, "lstm": sequence_formats, "gru": sequence_formats,
}
