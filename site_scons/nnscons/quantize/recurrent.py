"""The recurrent layers' kernel parameters (package :mod:`nnscons.quantize`), as TFLite Micro derives them for
CMSIS-NN's ``arm_lstm_unidirectional_s8/_s16`` and ``arm_svdf_s8`` (../shared/reference/cmsis-nn-recurrent-facts.md
sections 2.6, 3): every LSTM gate's input and recurrent parts requantized to the int16 pre-activation at scale
2^-12, the products of two Q0.15 values (scale 2^-30) to the cell state's scale and to the hidden state's, the cell
clip and tanh's shift from the cell scale. Scales are multiplied and divided in double precision, as the tflite_micro
interpreter does. A model-quantized LSTM's hidden state is its ``hidden_state`` attribute (the model's state
tensor), not the output tensor's; a float LSTM quantized here (``int8``, ``int16x8``, ``q7``, ``q15``) gets its
constants from :func:`quantize_constants` and its hidden state from the output's statistics.
"""
from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from .. import ir
from ..errors import NnsconsError
from . import affine, bounds, recurrent_legacy
from ..ranges import q_frac_bits
from .common import QState, TensorQ, to_int

GATE_SCALE = 2.0 ** -12                               # the int16 gate pre-activation
PRODUCT_SCALE = 2.0 ** -30                            # a product of two Q0.15 values
Q15 = 2.0 ** -15
CELL_SCALE_POWERS = range(-15, 4)                     # cell scales 2^-15..2^3: tanh's input shift stays in 0..15
INT16_MAX = 32767
# a requantized gate part plus the other part (an int16) must stay in int32
GATE_PART_LIMIT = (1 << 31) - 1 - (1 << 15)
INT8_REACH = 256                                      # |x - zero point| + |zero point| for int8 values, at most
INT16_REACH = 32768                                   # |x| for int16 values at zero point 0
WIDE_SUM_LIMIT = 1 << 46                              # an int64 gate sum times a 16-bit multiplier stays in int64
SCHEMES = ("int8", "int16x8", "q7", "q15")           # a float LSTM or GRU quantized by nnscons


def quantize_constants(state: QState, op: ir.Op) -> None:
    """A float LSTM or GRU quantized as TFLite's converter quantizes an LSTM for the int8x8_16 (``int8``) and
    int16x8_16 (``int16x8``) kernels: each weight matrix symmetric int8 per tensor, each bias at the scale of the
    values its weights multiply (the input, or for a GRU's recurrent biases the hidden state) times the weights'
    (int32, or int64 for int16 activations). ``q7`` and ``q15`` (the seed's power-of-two formats) run on the same
    kernels with every scale a power of two: a weight matrix in the Q-format its largest value needs (int8)."""
    if state.scheme not in SCHEMES:
        raise NnsconsError(None, f"quantize: layer {op.name} ({op.type}): quant={state.scheme} is not supported")
    if state.words.legacy:
        recurrent_legacy.quantize_constants(state, op)
        return
    layout = ir.RECURRENT_LAYOUTS[op.type]
    gates = range(len(layout.gates))
    for name in [op.inputs[at + k] for at in (layout.input_weights, layout.hidden_weights) for k in gates]:
        values = state.real[name]
        max_abs = float(np.max(np.abs(values), initial=0.0))
        if state.scheme in ("q7", "q15"):
            frac = q_frac_bits(max_abs, 8)
            scale = 2.0 ** -frac
            state.tq[name] = TensorQ("weight", "int8", [scale], [0], None, frac_bits=frac, bits=8)
        else:
            [scale] = affine.symmetric_weight_scales(max_abs)
            state.tq[name] = TensorQ("weight", "int8", [float(scale)], [0], None, bits=8)
        state.qparams[name] = to_int(values, np.array(scale), 0, "int8", (-127, 127))
    for k in gates:
        affine.quantize_bias_of(state, op, op.inputs[0], op.inputs[layout.input_weights + k],
                                op.inputs[layout.input_biases + k])
        hidden_bias = layout.constant(op, layout.hidden_biases, k)
        if hidden_bias is not None:
            affine.quantize_bias_of(state, op, op.outputs[0], op.inputs[layout.hidden_weights + k], hidden_bias)


def _states(state: QState, op: ir.Op) -> tuple[Any, Any]:
    """The hidden and cell states' quantization: the model's (``quant=model``), or for a float LSTM the output's
    (every step's hidden state) and a power-of-two int16 scale covering every cell value of the calibration set."""
    if state.scheme == "model":
        return op.attrs.get("hidden_state"), op.attrs.get("cell_state")
    out = state.tq[op.outputs[0]]
    hidden = {"scale": float(out.scale[0]), "zero_point": int(out.zero_point[0])}
    if op.type == "gru":
        return hidden, None
    cell = state.ranges.tensors.get(op.outputs[0] + ir.CELL_STATE_SUFFIX) if state.ranges is not None else None
    if cell is None:
        raise NnsconsError(None, f"quantize: layer {op.name} (lstm): the statistics have no cell state values; "
                                 f"rebuild stats.npz for this graph")
    reach = max(abs(cell.min), abs(cell.max), 2.0 ** -15)
    power = min(max(math.ceil(math.log2(reach)) - 15, CELL_SCALE_POWERS[0]), CELL_SCALE_POWERS[-1])
    return hidden, {"scale": 2.0 ** power}


def _sequence(state: QState, op: ir.Op) -> tuple[float, int, float, int, bool, Any]:
    """The input's and the hidden state's (scale, zero point), whether the data is int16, and the cell state."""
    if state.scheme not in ("model",) + SCHEMES:
        raise NnsconsError(None, f"quantize: layer {op.name} ({op.type}): quant={state.scheme} is not supported for "
                                 f"recurrent layers")
    x = state.tq[op.inputs[0]]
    hidden, cell = _states(state, op)
    wide = x.dtype == "int16"
    if x.dtype not in ("int8", "int16") or hidden is None or (op.type == "lstm" and cell is None):
        raise NnsconsError(None, f"quantize: layer {op.name} ({op.type}): the recurrent kernels need int8 or int16 "
                                 f"activations and quantized states")
    s_x, zp_x = float(x.scale[0]), int(x.zero_point[0])
    s_h, zp_h = float(hidden["scale"]), int(hidden["zero_point"])
    if wide and (zp_x or zp_h):
        raise NnsconsError(None, f"quantize: layer {op.name} ({op.type}): int16 data must be at zero point 0")
    return s_x, zp_x, s_h, zp_h, wide, cell


def _gates(state: QState, op: ir.Op, s_x: float, s_h: float, wide: bool) -> dict[str, dict[str, list[int]]]:
    """Each gate's two rescales to the int16 pre-activation at 2^-12, checked against what the sums reach."""
    layout = ir.RECURRENT_LAYOUTS[op.type]
    gates = {}
    for k, gate in enumerate(layout.gates):
        wx, wh = (op.inputs[at + k] for at in (layout.input_weights, layout.hidden_weights))
        if len(state.tq[wx].scale) != 1 or len(state.tq[wh].scale) != 1:
            raise NnsconsError(None, f"quantize: layer {op.name} ({op.type}): the {gate} gate's weights must be "
                                     f"quantized per tensor")
        parts = (("input", s_x, wx, op.inputs[layout.input_biases + k]),
                 ("hidden", s_h, wh, layout.constant(op, layout.hidden_biases, k)))
        gates[gate] = {}
        for part, scale, weights, bias in parts:
            rescale = bounds.multiplier(op, scale * float(state.tq[weights].scale[0]) / GATE_SCALE,
                                        f"the {gate} gate's {part} rescale", wide=wide)
            _check_part_reach(state, op, f"the {gate} gate's {part} part", weights, bias, rescale[1], wide)
            gates[gate][part] = list(rescale)
    return gates


def _check_part_reach(state: QState, op: ir.Op, what: str, weights: str, bias: Optional[str], shift: int,
                      wide: bool) -> None:
    """A gate part (effective bias plus the weights times any data value) stays in its accumulator: int32 also
    after the requantization's left shift and the other part added (s8), int64 after the 16-bit multiplier (s16)."""
    w = np.abs(np.asarray(state.qparams[weights], np.int64)).sum(axis=1).max()
    b = 0 if bias is None else int(np.abs(np.asarray(state.qparams[bias], np.int64)).max())
    reach = b + (INT16_REACH if wide else INT8_REACH) * int(w)
    if wide:
        bad = reach >= WIDE_SUM_LIMIT
    else:
        bad = reach > GATE_PART_LIMIT or reach << max(shift, 0) > GATE_PART_LIMIT
    if bad:
        raise NnsconsError(None, f"quantize: layer {op.name} ({op.type}): {what} reaches {reach} (shift {shift}), "
                                 f"beyond its accumulator (the model's weights, biases or scales are out of range)")


def lstm(state: QState, op: ir.Op) -> dict[str, Any]:
    if state.words.legacy:
        return recurrent_legacy.layer(state, op)
    s_x, zp_x, s_h, zp_h, wide, cell = _sequence(state, op)
    s_c = float(cell["scale"])
    gates = _gates(state, op, s_x, s_h, wide)
    power = round(math.log(s_c) / math.log(2.0))
    if power not in CELL_SCALE_POWERS:
        raise NnsconsError(None, f"quantize: layer {op.name} (lstm): cell state scale {s_c!r} is outside "
                                 f"2^-15..2^3")
    clip = float(op.attrs.get("cell_clip") or 0.0)
    return {
        "time_major": bool(op.attrs.get("time_major", False)), "input_zero_point": zp_x, "hidden_zero_point": zp_h,
        "gates": gates,
        "forget_to_cell": list(bounds.multiplier(op, 2.0 ** -15, "the forget gate's cell rescale")),
        "input_to_cell": _rescale(op, PRODUCT_SCALE / s_c, "the input gate's cell rescale", 0),
        "output": _rescale(op, PRODUCT_SCALE / s_h, "the hidden state's rescale", 0),
        "cell_scale_power": power,
        "cell_clip": int(min(clip / s_c, INT16_MAX)) if clip > 0 else 0,
    }


def gru(state: QState, op: ir.Op) -> dict[str, Any]:
    """The GRU (nnscons' own step, ``nnscons_gru_step_s8/_s16``): the LSTM's gate rescales, and the hidden state's
    two rescales to Q0.15 and back for the final blend ``n + z * (h - n)``."""
    if state.words.legacy:
        return recurrent_legacy.layer(state, op)
    s_x, zp_x, s_h, zp_h, wide, _ = _sequence(state, op)
    to_q15 = _rescale(op, s_h / Q15, "the hidden state's rescale to Q0.15", 15)
    from_q15 = _rescale(op, Q15 / s_h, "the hidden state's rescale from Q0.15", 15)
    return {
        "time_major": bool(op.attrs.get("time_major", False)), "input_zero_point": zp_x, "hidden_zero_point": zp_h,
        "linear_before_reset": bool(op.attrs.get("linear_before_reset", False)),
        "gates": _gates(state, op, s_x, s_h, wide),
        "to_q15": to_q15, "from_q15": from_q15,
    }


def _rescale(op: ir.Op, real: float, what: str, max_shift: int) -> list[int]:
    """A rescale whose left shift must stay at most ``max_shift``: 0 for a product of two Q0.15 values (a left
    shift would leave int32), 15 for a GRU's hidden state to and from Q0.15 (a 16-bit value stays in int32)."""
    m, shift = bounds.multiplier(op, real, what)
    if shift > max_shift:
        raise NnsconsError(None, f"quantize: layer {op.name} ({op.type}): {what} is {real:.3g}, the state's scale "
                                 f"is out of range")
    return [m, shift]


def svdf(state: QState, op: ir.Op) -> dict[str, Any]:
    """The SVDF's two rescales as TFLite Micro derives them: the feature sums to the state's scale, the time sums
    (state times time weights, plus the bias) to the output's; offsets: the input's zero point (added back, as
    arm_svdf_s8 takes it) and the output's."""
    if state.scheme != "model":
        raise NnsconsError(None, f"quantize: layer {op.name} (svdf): only a model's own int8 quantization "
                                 f"(quant=model) is supported for SVDF layers so far")
    memory = op.attrs.get("state")
    x, wf, wt, y = (state.tq[t] for t in (op.inputs[0], op.inputs[1], op.inputs[2], op.outputs[0]))
    if memory is None or x.dtype != "int8" or y.dtype != "int8":
        raise NnsconsError(None, f"quantize: layer {op.name} (svdf): the int8 SVDF needs int8 activations and a "
                                 f"quantized state")
    if memory["zero_point"] != 0 and memory["dtype"] != "int8":
        raise NnsconsError(None, f"quantize: layer {op.name} (svdf): its {memory['dtype']} state has zero point "
                                 f"{memory['zero_point']}; arm_svdf_state_s16_s8 computes with a state at zero point 0")
    s_state = float(memory["scale"])
    _check_time_reach(state, op, memory["dtype"], int(memory["zero_point"]))
    return {
        "rank": int(op.attrs["rank"]), "memory": int(op.attrs["memory"]), "state_dtype": memory["dtype"],
        "state_zero_point": int(memory["zero_point"]),
        "input_offset": int(x.zero_point[0]), "output_offset": int(y.zero_point[0]),
        "input_rescale": list(bounds.multiplier(op, float(x.scale[0]) * float(wf.scale[0]) / s_state,
                                                "the feature rescale")),
        "output_rescale": list(bounds.multiplier(op, s_state * float(wt.scale[0]) / float(y.scale[0]),
                                                 "the output rescale")),
    }


def _check_time_reach(state: QState, op: ir.Op, state_dtype: str, zero_point: int) -> None:
    """The time sums (weights times any state value less its zero point, over the memory and the rank, plus the
    bias) stay in int32."""
    top = (32768 if state_dtype == "int16" else 128) + abs(zero_point)
    weights = np.abs(np.asarray(state.qparams[op.inputs[2]], np.int64)).sum(axis=1).max()
    bias = int(np.abs(np.asarray(state.qparams[op.inputs[3]], np.int64)).max()) if len(op.inputs) > 3 else 0
    reach = int(op.attrs["rank"]) * int(weights) * top + bias
    if reach > (1 << 31) - 1:
        raise NnsconsError(None, f"quantize: layer {op.name} (svdf): its time sums reach {reach}, beyond int32 (the "
                                 f"model's time weights or bias are out of range)")
