"""Bounds on every number a model gets into the kernels' integer arithmetic (package :mod:`nnscons.quantize`).

The s8/s16 kernels compute in fixed-width integers where an overflow is undefined behaviour, and they accept
only a range of shifts. A sane model never comes near these limits (the example models keep four orders of
magnitude of headroom), so the bounds change nothing for it; a broken or hostile one is clamped, with a warning
line in ``qtable.txt``, or refused with one line naming the layer. For each requantized sum:

* the shift (``quantize_multiplier``'s exponent) is at most ``SHIFT_MAX`` (30, TFLite's QuantizeMultiplier range;
  the s16 kernels' 64-bit requantization: 14); a real multiplier below 2^-32 becomes 0 as in TFLite. A larger
  shift means the scales are inconsistent (an input step times a weight step is 2^30 output steps): an error.
* int8 activations (int32 accumulator): the bias plus any partial sum of ``(x - zero point) * w`` over any input
  the input type holds stays within +-(2^31 - 1 - 128), the 128 being room for the output offset added after the
  requantization (whose result is never larger than its input for a right shift). A bias outside that is clamped
  (:func:`bound_biases`): TFLite Micro would overflow on the same inputs. The same for int16 activations with an
  int64 bias: +-(2^47 - 1), the range TFLite's 64-bit MultiplyByQuantizedMultiplier takes.
* a left shift (shift > 0) wraps in the kernels (as in TFLite Micro) when the worst-case sum times 2^shift leaves
  int32; the wrapped product is then at most the Q31 multiplier in size, so a multiplier within 2^31 - 1 - the
  output offset's room keeps the addition of the offset defined (:func:`requantization`): it is clamped there,
  with a warning that such a layer wraps for extreme inputs.

Ops whose integers are computed here (lookup tables) need only the shift range; the Q-format schemes' W-bit biases
are bounded by :mod:`.headroom` (and their output offset is 0).
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from .. import ir
from ..errors import NnsconsError
from ..fixedpoint import SHIFT_MAX, SHIFT_MAX_S64, multiply_by_quantized_multiplier, quantize_multiplier
from .common import Q_BITS, WEIGHTED, QState, channel_list, dtype_range

INT32_MAX = (1 << 31) - 1
OUTPUT_OFFSET_ROOM = 128                      # |output zero point| of int8 activations, at most
ACC_LIMIT = {"int8": INT32_MAX - OUTPUT_OFFSET_ROOM, "int16": (1 << 47) - 1}
_BIAS_TYPES = {"int8": "int32", "int16": "int64"}   # the bias each kernel family accumulates into


def multiplier(op: ir.Op, real: float, what: str, wide: bool = False) -> tuple[int, int]:
    """:func:`quantize_multiplier` of ``real``, refused when its shift is beyond what the kernels take
    (``wide``: the s16 kernels' 64-bit requantization)."""
    limit = SHIFT_MAX_S64 if wide else SHIFT_MAX
    if not math.isfinite(real):
        raise NnsconsError(None, f"quantize: layer {op.name} ({op.type}): {what} is {real} (the model's scales are "
                                 f"out of range)")
    m, shift = quantize_multiplier(real)
    if shift > limit:
        raise NnsconsError(None, f"quantize: layer {op.name} ({op.type}): {what} is {real:.3g}, a requantization "
                                 f"shift of {shift}; the kernels take at most {limit} (the model's scales or "
                                 f"weights are inconsistent)")
    return m, shift


def wide_accumulator(state: QState, op: ir.Op) -> bool:
    """Whether a weighted layer runs on the s16 kernels (int16 activations, 64-bit requantization)."""
    return state.tq[op.inputs[0]].dtype == "int16"


def _accumulator_limit(state: QState, op: ir.Op) -> Optional[int]:
    """The largest |sum| a weighted layer's accumulator may hold, or None where this module does not bound it
    (Q-formats on 32-bit accumulators: :mod:`.headroom`, and their output offset is 0; int16 activations with an
    int32 bias: the kernel wraps by design)."""
    x, w = state.tq[op.inputs[0]], state.tq[op.inputs[1]]
    act = x.dtype
    if act not in ACC_LIMIT or (state.scheme in Q_BITS and act == "int8") or not (x.quantized and w.quantized):
        return None                               # (the layer rules refuse unquantized operands)
    if len(op.inputs) > 2 and state.tq[op.inputs[2]].dtype != _BIAS_TYPES[act]:
        return None
    return ACC_LIMIT[act]


def partial_sums(state: QState, op: ir.Op) -> tuple[np.ndarray, np.ndarray]:
    """Per output channel, the largest and smallest partial sum of ``(x - zero point) * (w - weight zero point)``
    over every input value the input type holds (each tap at its worse end)."""
    x, w = op.inputs[0], op.inputs[1]
    qmin, qmax = dtype_range(state.tq[x].dtype)
    zero_point = int(state.tq[x].zero_point[0])
    weights = np.asarray(state.qparams[w]).astype(np.int64) - int(state.tq[w].zero_point[0])
    rows = np.moveaxis(weights, -1, 0) if op.type == "depthwise_conv2d" else weights
    rows = rows.reshape(rows.shape[0], -1)
    high, low = rows * (qmax - zero_point), rows * (qmin - zero_point)
    return np.maximum(high, low).sum(axis=1), np.minimum(high, low).sum(axis=1)


def _bias_values(state: QState, op: ir.Op, channels: int) -> np.ndarray:
    if len(op.inputs) < 3:
        return np.zeros(channels, dtype=np.int64)
    values = np.asarray(state.qparams[op.inputs[2]]).astype(np.int64).reshape(-1)
    return values if values.size == channels else np.resize(values, channels)


def reach(state: QState, op: ir.Op) -> Optional[np.ndarray]:
    """Per output channel, the largest |bias + partial sum| (None where this module does not bound the layer)."""
    if _accumulator_limit(state, op) is None:
        return None
    top, bottom = partial_sums(state, op)
    bias = _bias_values(state, op, top.size)
    return np.maximum(np.abs(bias + top), np.abs(bias + bottom))


def bound_biases(state: QState) -> None:
    """Clamp every weighted layer's integer bias so that no partial sum can overflow its accumulator (a warning
    per clamped layer); refuse a layer whose weights alone can overflow it."""
    for op in state.graph.ops:
        limit = _accumulator_limit(state, op) if op.type in WEIGHTED else None
        if limit is None:
            continue
        top, bottom = partial_sums(state, op)
        if top.size and (int(top.max()) > limit or int(bottom.min()) < -limit):
            raise NnsconsError(None, f"quantize: layer {op.name} ({op.type}): its weights alone can sum to "
                                     f"{max(int(top.max()), -int(bottom.min()))}, beyond its accumulator's "
                                     f"{limit}")
        if len(op.inputs) > 2:
            _clamp_bias(state, op, top, bottom, limit)


def _clamp_bias(state: QState, op: ir.Op, top: np.ndarray, bottom: np.ndarray, limit: int) -> None:
    b = op.inputs[2]
    values = np.asarray(state.qparams[b])
    flat = values.astype(np.int64).reshape(-1)
    if flat.size not in (1, top.size):
        return                                    # the layer rules refuse such a bias
    low, high = (-limit - bottom, limit - top) if flat.size == top.size else \
        (-limit - int(bottom.min()), limit - int(top.max()))
    clamped = np.clip(flat, low, high)
    changed = np.flatnonzero(clamped != flat)
    if not changed.size:
        return
    state.qparams[b] = clamped.astype(values.dtype).reshape(values.shape)   # a copy: the model's data stays
    first = int(changed[0])
    state.warnings.append(
        f"{op.name}: bias {b} clamped on {changed.size} of {flat.size} channels ({channel_list(changed)}; "
        f"channel {first}: {int(flat[first])} -> {int(clamped[first])}) so that no input can overflow the "
        f"accumulator (|bias + sum| <= {limit})")


def requantization(state: QState, op: ir.Op, multipliers: list[int], shifts: list[int],
                   largest: np.ndarray, offset_room: int) -> list[int]:
    """The multipliers of a requantization whose input reaches ``largest`` (per multiplier, or one for all)
    in size, clamped where a left shift can wrap and the output offset's addition could then overflow."""
    limit = INT32_MAX - offset_room
    largest = np.broadcast_to(np.asarray(largest, dtype=np.int64), (len(shifts),))
    wraps = [i for i, s in enumerate(shifts) if s > 0 and (int(largest[i]) << s) > limit]
    if not wraps:
        return multipliers
    clamped = [min(m, limit) if i in wraps else m for i, m in enumerate(multipliers)]
    moved = [i for i in wraps if clamped[i] != multipliers[i]]
    where = f"channels {channel_list(np.array(wraps))}" if len(shifts) > 1 else "its output"
    note = f"; multiplier clamped to {limit} so the output offset cannot overflow" if moved else ""
    state.warnings.append(f"{op.name}: {where}: the requantization's left shift (up to {max(shifts)}) wraps for "
                          f"extreme inputs, as TFLite Micro's does{note}")
    return clamped


def requantized_reach(values: tuple[int, int], m: int, shift: int) -> int:
    """The largest |requantized value| of inputs in ``values`` (the requantization is monotone)."""
    return int(np.max(np.abs(multiply_by_quantized_multiplier(np.array(values, dtype=np.int64), m, shift))))
