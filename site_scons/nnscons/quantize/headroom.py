"""Q-format constraints between layers (package :mod:`nnscons.quantize`): the last step of q7 / q15 formats.

Once :mod:`.qformat` has given every tensor a format from its own range or values, :func:`settle` keeps every
shift a legal non-negative legacy shift and every accumulator within int32:

* an output may not be finer than its layer can produce without a left shift (``fo <= fi + fw``, the coarser
  aligned input for add/sub, ``f1 + f2`` for mul); lowering one output lowers later bounds, so this repeats
  until stable (``OUTPUT_BOUNDS``: the ops that bound their output);
* the weights give way (``fw`` is lowered) when a W-bit bias shifted into the accumulator would overflow
  (``bias_shift <= 32 - W``) or when a row's extreme sum, for any input the input format holds, would: the legacy
  kernels wrap silently. Inputs that cannot be negative (``NONNEGATIVE_OUTPUT``: after a ReLU or another clamp at
  zero) reach half as far. On the s16 kernels (int64 accumulation) per-channel weight formats are only capped so
  that every ``out_shift[c]`` stays within 31.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np

from .. import ir
from ..errors import NnsconsError
from ..ranges import q_frac_bits
from .common import WEIGHTED, Frac, QState, axis_scales, coarsest, round_array, to_int

OutputBound = Callable[[QState, ir.Op], int]
NonNegative = Callable[[QState, ir.Op], bool]


def settle(state: QState) -> None:
    """Lower output formats to their bounds, repeating until stable (a lowered input lowers later bounds), then
    fix the weights' formats and requantize every tensor whose format moved."""
    graph = state.graph
    for _ in range(len(graph.ops) + 2):
        changed = False
        for op in graph.ops:
            bound = output_bound(state, op)
            root = state.group_of[op.outputs[0]]
            if bound is not None and state.group_frac[root] > bound:
                if root in state.pinned:
                    raise NnsconsError(None, f"quantize: op {op.name} cannot produce the fixed format of "
                                             f"{op.outputs[0]} (it shares it with a softmax/logistic/tanh)")
                state.group_frac[root] = bound
                changed = True
        if not changed:
            break
    else:
        raise NnsconsError(None, "quantize: the Q-format constraints do not settle (a layer feeds a tensor "
                                 "that must share its input's format)")
    final = dict(state.group_frac)
    weight_fracs: dict[str, Frac] = {}
    for op in graph.ops:
        if op.type in WEIGHTED:
            w = op.inputs[1]
            previous = weight_fracs.get(w, state.fw_values[w])
            if isinstance(previous, list):
                weight_fracs[w] = [min(f, _channel_limit(state, op)) for f in previous]
            else:
                weight_fracs[w] = min(previous, weight_frac(state, op))
    for name, root in state.group_of.items():
        _set_frac(state, name, final[root])
    for name, frac in weight_fracs.items():
        _set_frac(state, name, frac)


def _channel_limit(state: QState, op: ir.Op) -> int:
    """Per-channel weight formats: the finest a channel may take so that its ``out_shift = fi + fw[c] - fo``
    stays at most 31 (a channel of tiny weights would otherwise ask for a longer shift)."""
    return state.act_frac(op.outputs[0]) - state.act_frac(op.inputs[0]) + 31


def _set_frac(state: QState, name: str, frac: Frac) -> None:
    entry = state.tq[name]
    if entry.frac_bits != frac:
        entry.frac_bits = frac
        entry.scale = [2.0 ** -f for f in frac] if isinstance(frac, list) else [2.0 ** -frac]
        if name in state.real:
            scale = axis_scales(frac, entry.axis, state.real[name].ndim)
            state.qparams[name] = to_int(state.real[name], scale, 0, entry.dtype)


# ---- output bounds -----------------------------------------------------------------------------------------------
def output_bound(state: QState, op: ir.Op) -> Optional[int]:
    """The finest output format the op can produce without a left shift (None: no bound)."""
    rule = OUTPUT_BOUNDS.get(op.type)
    return None if rule is None else rule(state, op)


def _accumulator_bound(state: QState, op: ir.Op) -> int:
    return state.act_frac(op.inputs[0]) + weight_frac(state, op)


def _aligned_bound(state: QState, op: ir.Op) -> int:
    return min(state.act_frac(x) for x in op.inputs[:2])


def _product_bound(state: QState, op: ir.Op) -> int:
    return state.act_frac(op.inputs[0]) + state.act_frac(op.inputs[1])


OUTPUT_BOUNDS: dict[str, OutputBound] = {
    "conv2d": _accumulator_bound, "depthwise_conv2d": _accumulator_bound, "fully_connected": _accumulator_bound,
    "add": _aligned_bound, "sub": _aligned_bound, "mul": _product_bound,
}


# ---- weight formats the accumulator can hold -------------------------------------------------------------------
def weight_frac(state: QState, op: ir.Op) -> int:
    """fw: from the weights' values, but lowered when the 32-bit accumulator could overflow:
    a W-bit bias shifted left by ``bias_shift = fi + fw - fb`` overflows int32 unless ``bias_shift <= 32 - W``;
    and the sum itself must fit (:func:`_headroom_frac`)."""
    fw = state.fw_values[op.inputs[1]]
    if state.words.wide_bias:  # int64 accumulation (s16 kernels): no 32-bit limit; per channel, the coarsest counts
        return coarsest(fw)
    assert isinstance(fw, int)
    fi = state.act_frac(op.inputs[0])
    if len(op.inputs) > 2:
        bias = state.real[op.inputs[2]]
        max_abs = float(np.max(np.abs(bias))) if bias.size else 0.0
        if max_abs > 0:
            fw = min(fw, 32 - state.bits + q_frac_bits(max_abs, state.bits) - fi)
    return min(fw, _headroom_frac(state, op, fi))


def _headroom_frac(state: QState, op: ir.Op, fi: int) -> int:
    """The finest weight format whose int32 accumulator cannot overflow for any input the input format holds
    (inputs may saturate anywhere in it): the legacy kernels wrap silently otherwise. A row's extremes are
    ``sum(w+) * hi + sum(w-) * lo`` and the reverse, plus the bias, with ``[lo, hi]`` the input format's
    integer range, or ``[0, hi]`` when the input cannot be negative (:func:`nonnegative`: after a ReLU,
    half the bound, one bit more for the weights). A first estimate from the real values, then lowered until
    the quantized weights and bias fit exactly."""
    w = state.real[op.inputs[1]]
    if w.size == 0:
        return coarsest(state.fw_values[op.inputs[1]])
    rows = np.moveaxis(w, 3, 0) if op.type == "depthwise_conv2d" else w
    rows = rows.reshape(rows.shape[0], -1)
    positive, negative = np.where(rows > 0, rows, 0.0).sum(axis=1), np.where(rows < 0, -rows, 0.0).sum(axis=1)
    reach = 2.0 ** (state.bits - 1 - fi)
    low = 0.0 if nonnegative(state, op.inputs[0]) else reach
    bound = np.maximum(positive * reach + negative * low, negative * reach + positive * low)
    bias = state.real[op.inputs[2]].reshape(-1) if len(op.inputs) > 2 else np.zeros(0)
    if bias.size:
        bound = bound + np.abs(bias)
    largest = float(np.max(bound))
    if largest <= 0:
        return coarsest(state.fw_values[op.inputs[1]])
    fw = 30 - fi - math.floor(math.log2(largest))
    while fw > -64 and not _accumulator_fits(state, op, rows, bias, fi, fw):
        fw -= 1
    return fw


def _accumulator_fits(state: QState, op: ir.Op, rows: np.ndarray, bias: np.ndarray, fi: int, fw: int) -> bool:
    """The integer check behind :func:`_headroom_frac`: every row's extreme sums with the weights and bias
    quantized as they would be at ``fw`` (the bias at its own format, shifted left into the accumulator's),
    plus the rounding constant of the current output format, within int32."""
    limit = 1 << (state.bits - 1)
    wq = np.clip(round_array(rows * 2.0 ** fw), -limit, limit - 1).astype(np.int64)
    hi, lo = limit - 1, 0 if nonnegative(state, op.inputs[0]) else -limit
    positive, negative = np.where(wq > 0, wq, 0).sum(axis=1), np.where(wq < 0, wq, 0).sum(axis=1)
    top, bottom = positive * hi + negative * lo, negative * hi + positive * lo
    if bias.size:
        max_abs = float(np.max(np.abs(bias)))
        fb = min(q_frac_bits(max_abs, state.bits), fi + fw) if max_abs > 0 else fi + fw
        bq = np.clip(round_array(bias * 2.0 ** fb), -limit, limit - 1).astype(np.int64) << (fi + fw - fb)
        top, bottom = top + bq, bottom + bq
    out_shift = fi + fw - state.act_frac(op.outputs[0])
    rounding = 1 << (out_shift - 1) if 0 < out_shift <= 32 else 0       # NN_ROUND(out_shift)
    return int(np.max(top)) + rounding < (1 << 31) and int(np.min(bottom)) >= -(1 << 31)


# ---- inputs that cannot be negative ------------------------------------------------------------------------------
def nonnegative(state: QState, name: str) -> bool:
    """Whether a tensor cannot hold negative values whatever the input: it comes out of a clamp at zero or
    above (a fused or separate ReLU/ReLU6, clip with min >= 0), softmax or logistic, possibly through ops
    that keep values (pooling, reshape, zero padding, concat of such tensors). Ops not in
    ``NONNEGATIVE_OUTPUT`` may give anything."""
    op = state.graph.producer(name)
    if op is None:
        return False
    rule = NONNEGATIVE_OUTPUT.get(op.type)
    return rule is not None and rule(state, op)


def _always(state: QState, op: ir.Op) -> bool:
    return True


def _clip_at_zero(state: QState, op: ir.Op) -> bool:
    return op.attrs.get("min") is not None and float(op.attrs["min"]) >= 0.0


def _fused_clamp_at_zero(state: QState, op: ir.Op) -> bool:
    low = ir.ACTIVATION_RANGES.get(op.attrs.get("activation", "none"), (None, None))[0]
    return low is not None and low >= 0.0


def _input_nonnegative(state: QState, op: ir.Op) -> bool:
    return nonnegative(state, op.inputs[0])


def _zero_pad_nonnegative(state: QState, op: ir.Op) -> bool:
    return float(op.attrs.get("value", 0.0)) >= 0.0 and nonnegative(state, op.inputs[0])


def _inputs_nonnegative(state: QState, op: ir.Op) -> bool:
    return all(nonnegative(state, x) for x in op.inputs if not state.graph.tensors[x].is_const)


NONNEGATIVE_OUTPUT: dict[str, NonNegative] = {
    "relu": _always, "relu6": _always, "softmax": _always, "logistic": _always,
    "clip": _clip_at_zero,
    "conv2d": _fused_clamp_at_zero, "depthwise_conv2d": _fused_clamp_at_zero,
    "fully_connected": _fused_clamp_at_zero, "add": _fused_clamp_at_zero, "sub": _fused_clamp_at_zero,
    "mul": _fused_clamp_at_zero,
    "max_pool2d": _input_nonnegative, "avg_pool2d": _input_nonnegative, "reshape": _input_nonnegative,
    "pad": _zero_pad_nonnegative,
    "concat": _inputs_nonnegative,
}
