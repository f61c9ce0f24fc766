"""Per-layer kernel parameters every scheme carries (package :mod:`nnscons.quantize`).

Once every tensor has its scale and zero point, each layer gets the TFLite-style numbers the s8/s16 kernels
take: offsets, Q31 multipliers and shifts from :func:`~nnscons.fixedpoint.quantize_multiplier`, activation clamps.
A Q-format tensor is scale ``2^-n``, zero point 0, so the Q schemes get these too (their own fields, the
shifts of the legacy kernels, come from :mod:`.qlayers`). ``LAYER_RULES`` is the registry: one rule per op kind.
Every multiplier goes through :mod:`.bounds` (shift range, and what a left shift of the largest sum can do).
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from .. import ir
from ..errors import NnsconsError
from ..fixedpoint import quantize_multiplier
from . import bounds, recurrent
from .common import QState, dtype_range, quantize_value

LayerRule = Callable[[QState, ir.Op], dict[str, Any]]

_INT32_MAX = (1 << 31) - 1
_ADD_LEFT_SHIFT = {8: 20, 16: 15}
_SOFTMAX_DIFF_INT_BITS = 5          # integer bits of the scaled logit differences in TFLite's int8 softmax


def quantize_multiplier_greater_than_one(real: float, what: str) -> tuple[int, int]:
    """:func:`quantize_multiplier` for a real above 1, so the shift is a left shift (>= 0)."""
    if not real > 1.0:
        raise NnsconsError(None, f"quantize: {what}: multiplier {real!r} must exceed 1 (input scale too small)")
    return quantize_multiplier(real)


def layer_entry(state: QState, op: ir.Op) -> dict[str, Any]:
    """A layer's entry in ``qtable.json``: its type, tensors and kernel parameters."""
    entry: dict[str, Any] = {"type": op.type, "inputs": list(op.inputs), "outputs": list(op.outputs)}
    rule = LAYER_RULES.get(op.type)
    if rule is None:
        raise NnsconsError(None, f"quantize: op {op.name}: no layer rule for op type {op.type!r}")
    entry.update(rule(state, op))
    return entry


def _sz(state: QState, op: ir.Op, name: str) -> tuple[float, int]:
    """A per-tensor quantized tensor's (scale, zero point)."""
    t = state.tq[name]
    if not t.quantized:
        raise NnsconsError(None, f"quantize: op {op.name} ({op.type}): tensor {name} is not quantized")
    if len(t.scale) != 1:
        raise NnsconsError(None, f"quantize: op {op.name} ({op.type}): tensor {name} must be quantized per "
                                 f"tensor, it has {len(t.scale)} scales")
    return float(t.scale[0]), int(t.zero_point[0])


def _act_range(state: QState, op: ir.Op, low: Optional[float], high: Optional[float]) -> dict[str, int]:
    """A real clamp range in the output's integer domain, intersected with the dtype range."""
    out = op.outputs[0]
    scale, zero_point = _sz(state, op, out)
    dtype = state.tq[out].dtype
    qmin, qmax = dtype_range(dtype)
    act_min = qmin if low is None else max(qmin, quantize_value(low, scale, zero_point, dtype))
    act_max = qmax if high is None else min(qmax, quantize_value(high, scale, zero_point, dtype))
    return {"act_min": act_min, "act_max": act_max}


def _centred(state: QState, op: ir.Op, name: str) -> tuple[int, int]:
    """The smallest and largest ``q - zero point`` a per-tensor quantized tensor's type holds."""
    _, zero_point = _sz(state, op, name)
    qmin, qmax = dtype_range(state.tq[name].dtype)
    return qmin - zero_point, qmax - zero_point


def _magnitude(state: QState, op: ir.Op, name: str) -> int:
    """The largest ``|q - zero point|`` a per-tensor quantized tensor's type holds."""
    return max(abs(v) for v in _centred(state, op, name))


def _fused(state: QState, op: ir.Op) -> dict[str, int]:
    activation = op.attrs.get("activation", "none")
    if activation not in ir.ACTIVATION_RANGES:
        raise NnsconsError(None, f"quantize: op {op.name}: unknown fused activation {activation!r}")
    return _act_range(state, op, *ir.ACTIVATION_RANGES[activation])


# ---- the rules -------------------------------------------------------------------------------------------------
def weighted(state: QState, op: ir.Op) -> dict[str, Any]:
    """conv2d / depthwise_conv2d: one multiplier and shift per output channel; fully_connected: per weight scale."""
    x, w, y = op.inputs[0], op.inputs[1], op.outputs[0]
    s_in, zp_in = _sz(state, op, x)
    s_out, zp_out = _sz(state, op, y)
    wq = state.tq[w]
    w_scales = [float(s) for s in wq.scale]
    if len(set(wq.zero_point)) != 1:
        raise NnsconsError(None, f"quantize: op {op.name}: weights {w} have several zero points")
    channels = state.graph.tensors[w].shape[0 if op.type == "conv2d" else -1]
    if op.type != "fully_connected" and len(w_scales) == 1:
        w_scales = w_scales * channels                 # conv kernels always take per-channel parameters
    wide = bounds.wide_accumulator(state, op)
    multipliers, shifts = [], []
    for c, s_w in enumerate(w_scales):
        where = f"output channel {c}'s multiplier" if len(w_scales) > 1 else "the multiplier"
        m, s = bounds.multiplier(op, s_in * s_w / s_out, f"{where} (input scale {s_in:.3g} x weight scale "
                                                         f"{s_w:.3g} / output scale {s_out:.3g})", wide)
        multipliers.append(m)
        shifts.append(s)
    largest = None if wide else bounds.reach(state, op)
    if largest is not None:
        multipliers = bounds.requantization(state, op, multipliers, shifts,
                                            largest if len(shifts) > 1 else largest.max(initial=0), abs(zp_out))
    entry: dict[str, Any] = {
        "input_offset": -zp_in, "output_offset": zp_out, "filter_offset": -int(wq.zero_point[0]),
        "multiplier": multipliers, "shift": shifts, "per_channel": len(w_scales) > 1,
        "weights": w, "bias": op.inputs[2] if len(op.inputs) > 2 else None,
    }
    entry.update(_fused(state, op))
    return entry


def pool(state: QState, op: ir.Op) -> dict[str, Any]:
    return _fused(state, op)


def add_sub(state: QState, op: ir.Op) -> dict[str, Any]:
    (s1, zp1), (s2, zp2) = _sz(state, op, op.inputs[0]), _sz(state, op, op.inputs[1])
    s_out, zp_out = _sz(state, op, op.outputs[0])
    left_shift = _ADD_LEFT_SHIFT[state.bits]
    twice_max = 2.0 * max(s1, s2)
    m1, sh1 = bounds.multiplier(op, s1 / twice_max, "input 1's multiplier")
    m2, sh2 = bounds.multiplier(op, s2 / twice_max, "input 2's multiplier")
    mo, sho = bounds.multiplier(op, twice_max / ((1 << left_shift) * s_out), "the output multiplier")
    aligned = [bounds.requantized_reach(tuple(v << left_shift for v in _centred(state, op, x)), m, sh)
               for x, m, sh in ((op.inputs[0], m1, sh1), (op.inputs[1], m2, sh2))]
    [mo] = bounds.requantization(state, op, [mo], [sho], np.int64(sum(aligned)), abs(zp_out))
    entry: dict[str, Any] = {
        "left_shift": left_shift, "input1_offset": -zp1, "input2_offset": -zp2, "output_offset": zp_out,
        "input1_multiplier": m1, "input1_shift": sh1, "input2_multiplier": m2, "input2_shift": sh2,
        "output_multiplier": mo, "output_shift": sho,
    }
    entry.update(_fused(state, op))
    return entry


def mul(state: QState, op: ir.Op) -> dict[str, Any]:
    (s1, zp1), (s2, zp2) = _sz(state, op, op.inputs[0]), _sz(state, op, op.inputs[1])
    s_out, zp_out = _sz(state, op, op.outputs[0])
    mo, sho = bounds.multiplier(op, s1 * s2 / s_out, "the output multiplier")
    product = _magnitude(state, op, op.inputs[0]) * _magnitude(state, op, op.inputs[1])
    [mo] = bounds.requantization(state, op, [mo], [sho], np.int64(product), abs(zp_out))
    entry: dict[str, Any] = {"input1_offset": -zp1, "input2_offset": -zp2, "output_offset": zp_out,
                             "output_multiplier": mo, "output_shift": sho}
    entry.update(_fused(state, op))
    return entry


def softmax(state: QState, op: ir.Op) -> dict[str, Any]:
    s_in, _ = _sz(state, op, op.inputs[0])
    beta = float(op.attrs.get("beta", 1.0))
    if state.tq[op.inputs[0]].dtype == "int8":           # int8 in: int8 or int16 out (arm_softmax_s8[_s16])
        real = min(beta * s_in * float(1 << (31 - _SOFTMAX_DIFF_INT_BITS)), float(_INT32_MAX))
        mult, left_shift = quantize_multiplier_greater_than_one(real, f"softmax {op.name}")
        # the radius of the logit differences that still contribute: floor((2^5-1) * 2^(31-5) / 2^shift)
        radius = (((1 << _SOFTMAX_DIFF_INT_BITS) - 1) << (31 - _SOFTMAX_DIFF_INT_BITS)) >> left_shift
        return {"beta": beta, "input_multiplier": mult, "input_left_shift": left_shift, "diff_min": -radius}
    # int16: logit differences are rescaled so that [-10, 0] maps onto [-65535, 0] (exp lookup table), then
    # centred on the table by adding 32767
    mult, shift = bounds.multiplier(op, s_in * beta / (10.0 / 65535.0), "the logit multiplier")
    [mult] = bounds.requantization(state, op, [mult], [shift], np.int64(65535), 32767)
    return {"beta": beta, "input_multiplier": mult, "input_left_shift": shift}


def relu(state: QState, op: ir.Op) -> dict[str, Any]:
    return _act_range(state, op, 0.0, None)


def relu6(state: QState, op: ir.Op) -> dict[str, Any]:
    return _act_range(state, op, 0.0, 6.0)


def clip(state: QState, op: ir.Op) -> dict[str, Any]:
    low, high = op.attrs.get("min"), op.attrs.get("max")
    return _act_range(state, op, None if low is None else float(low), None if high is None else float(high))


def pad(state: QState, op: ir.Op) -> dict[str, Any]:
    out = op.outputs[0]
    scale, zero_point = _sz(state, op, out)
    return {"pad_value": quantize_value(float(op.attrs.get("value", 0.0)), scale, zero_point, state.tq[out].dtype)}


def rescale(state: QState, op: ir.Op) -> dict[str, Any]:
    """One requantization ``s_in / s_out`` (mean, integer -> integer quantize)."""
    x, y = op.inputs[0], op.outputs[0]
    if not (state.tq[x].quantized and state.tq[y].quantized):
        return {}
    (s_in, zp_in), (s_out, zp_out) = _sz(state, op, x), _sz(state, op, y)
    m, s = bounds.multiplier(op, s_in / s_out, "the multiplier")
    if op.type == "mean":      # a generated loop requantizes the sum over the averaged axes
        count = int(np.prod([state.graph.tensors[x].shape[a] for a in op.attrs.get("axes", [])], dtype=np.int64))
        [m] = bounds.requantization(state, op, [m], [s], np.int64(_magnitude(state, op, x) * count), abs(zp_out))
    elif (state.tq[x].dtype, state.tq[y].dtype) != ("int8", "int8"):   # a loop, not a table (kernels.requantizes)
        [m] = bounds.requantization(state, op, [m], [s], np.int64(_magnitude(state, op, x)), abs(zp_out))
    return {"input_offset": -zp_in, "output_offset": zp_out, "multiplier": m, "shift": s}


def leaky_relu(state: QState, op: ir.Op) -> dict[str, Any]:
    """Two multipliers, for x >= 0 (s_in / s_out) and x < 0 (alpha s_in / s_out), with the ratios taken
    in float32 as TFLite's kernel takes them (so the results are bit-exact with it). A negative alpha
    keeps no multiplier (code generation refuses the layer)."""
    x, y = op.inputs[0], op.outputs[0]
    if not (state.tq[x].quantized and state.tq[y].quantized):
        return {}
    (s_in, zp_in), (s_out, zp_out) = _sz(state, op, x), _sz(state, op, y)
    alpha = float(op.attrs.get("alpha", 0.0))
    m, s = bounds.multiplier(op, float(np.float32(s_in) / np.float32(s_out)), "the multiplier")
    entry: dict[str, Any] = {"input_offset": -zp_in, "output_offset": zp_out, "multiplier": m, "shift": s,
                             "alpha": alpha}
    if alpha >= 0:
        m_alpha, s_alpha = bounds.multiplier(op, float(np.float32(s_in) * np.float32(alpha) / np.float32(s_out)),
                                             "the alpha multiplier")
        entry.update({"alpha_multiplier": m_alpha, "alpha_shift": s_alpha})
    return entry


def offsets(state: QState, op: ir.Op) -> dict[str, Any]:
    """The input and output offsets alone (the lookup-table ops and dequantize)."""
    entry: dict[str, Any] = {}
    if state.tq[op.inputs[0]].quantized:
        entry["input_offset"] = -_sz(state, op, op.inputs[0])[1]
    if state.tq[op.outputs[0]].quantized:
        entry["output_offset"] = _sz(state, op, op.outputs[0])[1]
    return entry


def no_params(state: QState, op: ir.Op) -> dict[str, Any]:
    """Ops that move values without arithmetic (their output shares the input's parameters)."""
    return {}


LAYER_RULES: dict[str, LayerRule] = {
    "conv2d": weighted, "depthwise_conv2d": weighted, "fully_connected": weighted,
    "avg_pool2d": pool, "max_pool2d": pool,
    "add": add_sub, "sub": add_sub, "mul": mul,
    "softmax": softmax,
    "relu": relu, "relu6": relu6, "clip": clip,
    "pad": pad, "mean": rescale, "quantize": rescale,
    "leaky_relu": leaky_relu,
    "logistic": offsets, "tanh": offsets, "dequantize": offsets,
    "reshape": no_params, "concat": no_params,
    "lstm": recurrent.lstm, "gru": recurrent.gru, "svdf": recurrent.svdf,
}
