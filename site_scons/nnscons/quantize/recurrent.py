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
from typing import Any

import numpy as np

from .. import ir
from ..errors import NnsconsError
from . import affine, bounds
from ..ranges import q_frac_bits
from .common import QState, TensorQ, to_int

GATES = ("input", "forget", "cell", "output")        # the IR's input order (TFLite's)
GATE_SCALE = 2.0 ** -12                               # the int16 gate pre-activation
PRODUCT_SCALE = 2.0 ** -30                            # a product of two Q0.15 values
CELL_SCALE_POWERS = range(-15, 4)                     # cell scales 2^-15..2^3: tanh's input shift stays in 0..15
INT16_MAX = 32767
# a requantized gate part plus the other part (an int16) must stay in int32
GATE_PART_LIMIT = (1 << 31) - 1 - (1 << 15)
INT8_REACH = 256                                      # |x - zero point| + |zero point| for int8 values, at most
INT16_REACH = 32768                                   # |x| for int16 values at zero point 0


SCHEMES = ("int8", "int16x8", "q7", "q15")        # a float LSTM quantized by nnscons
GATE_SHIFT_MAX_S64 = 14                               # arm_nn_requantize_s64 shifts right by 15 - shift, at least 1


def quantize_constants(state: QState, op: ir.Op) -> None:
    """A float LSTM quantized as TFLite's converter quantizes it for the int8x8_16 (``int8``) and int16x8_16
    (``int16x8``) kernels: each of the eight weight matrices symmetric int8 per tensor, each gate's bias at the
    input's scale times its input weights' (int32, or int64 for int16 activations). ``q7`` and ``q15`` (the seed's
    power-of-two formats) run on the same kernels with every scale a power of two: a weight matrix in the Q-format
    its largest value needs (int8), the biases in the accumulator's format."""
    if op.type != "lstm" or state.scheme not in SCHEMES:
        raise NnsconsError(None, f"quantize: layer {op.name} ({op.type}): GRU layers cannot be quantized yet (the "
                                 f"float lowering onto fully connected layers, sigmoid, tanh and element-wise "
                                 f"products is not done)")
    for name in op.inputs[1:9]:
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
    for k, name in enumerate(op.inputs[9:13]):
        affine.quantize_bias_of(state, op, op.inputs[0], op.inputs[1 + k], name)


def _states(state: QState, op: ir.Op) -> tuple[Any, Any]:
    """The hidden and cell states' quantization: the model's (``quant=model``), or for a float LSTM the output's
    (every step's hidden state) and a power-of-two int16 scale covering every cell value of the calibration set."""
    if state.scheme == "model":
        return op.attrs.get("hidden_state"), op.attrs.get("cell_state")
    out = state.tq[op.outputs[0]]
    cell = state.ranges.tensors.get(op.outputs[0] + ir.CELL_STATE_SUFFIX) if state.ranges is not None else None
    if cell is None:
        raise NnsconsError(None, f"quantize: layer {op.name} (lstm): the statistics have no cell state values; "
                                 f"rebuild stats.npz for this graph")
    reach = max(abs(cell.min), abs(cell.max), 2.0 ** -15)
    power = min(max(math.ceil(math.log2(reach)) - 15, CELL_SCALE_POWERS[0]), CELL_SCALE_POWERS[-1])
    return {"scale": float(out.scale[0]), "zero_point": int(out.zero_point[0])}, {"scale": 2.0 ** power}


def lstm(state: QState, op: ir.Op) -> dict[str, Any]:
    if state.scheme not in ("model",) + SCHEMES:
        raise NnsconsError(None, f"quantize: layer {op.name} (lstm): quant={state.scheme} is not supported for "
                                 f"LSTM layers")
    x = state.tq[op.inputs[0]]
    hidden, cell = _states(state, op)
    wide = x.dtype == "int16"
    if x.dtype not in ("int8", "int16") or hidden is None or cell is None:
        raise NnsconsError(None, f"quantize: layer {op.name} (lstm): the LSTM kernels need int8 or int16 "
                                 f"activations and quantized states")
    s_x, zp_x = float(x.scale[0]), int(x.zero_point[0])
    s_h, zp_h, s_c = float(hidden["scale"]), int(hidden["zero_point"]), float(cell["scale"])
    if wide and (zp_x or zp_h):
        raise NnsconsError(None, f"quantize: layer {op.name} (lstm): the int16 LSTM needs its input and hidden "
                                 f"state at zero point 0")
    gates = {}
    for k, gate in enumerate(GATES):
        wx, wh = state.tq[op.inputs[1 + k]], state.tq[op.inputs[5 + k]]
        if len(wx.scale) != 1 or len(wh.scale) != 1:
            raise NnsconsError(None, f"quantize: layer {op.name} (lstm): the {gate} gate's weights must be quantized "
                                     f"per tensor")
        gates[gate] = {"input": list(bounds.multiplier(op, s_x * float(wx.scale[0]) / GATE_SCALE,
                                                       f"the {gate} gate's input rescale")),
                       "hidden": list(bounds.multiplier(op, s_h * float(wh.scale[0]) / GATE_SCALE,
                                                        f"the {gate} gate's recurrent rescale"))}
        (_check_wide_gate_reach if wide else _check_gate_reach)(state, op, k, gate, gates[gate])
    power = round(math.log(s_c) / math.log(2.0))
    if power not in CELL_SCALE_POWERS:
        raise NnsconsError(None, f"quantize: layer {op.name} (lstm): cell state scale {s_c!r} is outside "
                                 f"2^-15..2^3")
    clip = float(op.attrs.get("cell_clip") or 0.0)
    return {
        "time_major": bool(op.attrs.get("time_major", False)), "input_zero_point": zp_x, "hidden_zero_point": zp_h,
        "gates": gates,
        "forget_to_cell": list(bounds.multiplier(op, 2.0 ** -15, "the forget gate's cell rescale")),
        "input_to_cell": _product_rescale(op, PRODUCT_SCALE / s_c, "the input gate's cell rescale"),
        "output": _product_rescale(op, PRODUCT_SCALE / s_h, "the hidden state's rescale"),
        "cell_scale_power": power,
        "cell_clip": int(min(clip / s_c, INT16_MAX)) if clip > 0 else 0,
    }


def _check_wide_gate_reach(state: QState, op: ir.Op, k: int, gate: str, rescales: dict[str, list[int]]) -> None:
    """The int16 LSTM's gate parts are int64 sums requantized by arm_nn_requantize_s64: its shift must leave a
    right shift (at most 14), and the sum times the 16-bit multiplier must stay in int64."""
    for part, weights_at, bias_at in (("input", 1 + k, 9 + k), ("hidden", 5 + k, None)):
        shift = rescales[part][1]
        w = np.abs(np.asarray(state.qparams[op.inputs[weights_at]], np.int64)).sum(axis=1).max()
        bias = 0 if bias_at is None else int(np.abs(np.asarray(state.qparams[op.inputs[bias_at]], np.int64)).max())
        reach = bias + INT16_REACH * int(w)
        if shift > GATE_SHIFT_MAX_S64 or reach >= 1 << 46:
            raise NnsconsError(None, f"quantize: layer {op.name} (lstm): the {gate} gate's {part} part reaches "
                                     f"{reach} with shift {shift}, beyond what the 64-bit requantization takes "
                                     f"(shift <= {GATE_SHIFT_MAX_S64}, sum < 2^46; the model's weights, biases or "
                                     f"scales are out of range)")


def _check_gate_reach(state: QState, op: ir.Op, k: int, gate: str, rescales: dict[str, list[int]]) -> None:
    """Each part of a gate's pre-activation (effective bias plus the weights times int8 values) stays in int32, and
    so does its requantization before the other part is added (a left shift multiplies it): else one line."""
    for part, weights_at, bias_at in (("input", 1 + k, 9 + k), ("hidden", 5 + k, None)):
        w = np.abs(np.asarray(state.qparams[op.inputs[weights_at]], np.int64)).sum(axis=1).max()
        bias = 0 if bias_at is None else int(np.abs(np.asarray(state.qparams[op.inputs[bias_at]], np.int64)).max())
        reach = bias + INT8_REACH * int(w)
        shift = max(rescales[part][1], 0)
        if reach > GATE_PART_LIMIT or reach << shift > GATE_PART_LIMIT:
            raise NnsconsError(None, f"quantize: layer {op.name} (lstm): the {gate} gate's {part} part reaches "
                                     f"{reach} (shifted left by {shift}), beyond int32 (the model's weights, biases "
                                     f"or scales are out of range)")


def _product_rescale(op: ir.Op, real: float, what: str) -> list[int]:
    """The rescale of a product of two Q0.15 values, a right shift (a left one would leave int32)."""
    m, shift = bounds.multiplier(op, real, what)
    if shift > 0:
        raise NnsconsError(None, f"quantize: layer {op.name} (lstm): {what} is {real:.3g}, the state's scale is "
                                 f"below 2^-30 (out of range)")
    return [m, shift]


def gru(state: QState, op: ir.Op) -> dict[str, Any]:
    raise NnsconsError(None, f"quantize: layer {op.name} (gru): GRU layers cannot be quantized yet (the float "
                             f"lowering onto fully connected layers, sigmoid, tanh and element-wise products is "
                             f"not done)")


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
