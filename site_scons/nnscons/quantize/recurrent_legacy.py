"""The seed guide's lowering of a float LSTM or GRU onto the legacy q7/q15 kernels (package :mod:`nnscons.quantize`,
``quant=q7|q15`` with ``api=legacy``).

Arm's conversion guide expresses a layer CMSIS-NN lacks with what it has: "a LSTM layer can be expressed with
CMSIS-NN and CMSIS-DSP using fully connected layers, sigmoid and hyperbolic tangent activations, elementwise vector
product". Each time step is, per gate, two fully connected layers (``arm_fully_connected_q7/q15``: the input
weights with the gate's bias, the recurrent weights), their saturated sum in Q3.(W-4) (the input format of
``arm_nn_activations_direct_q7/q15``, whose tables cover [-8, 8)), the gate's sigmoid or tanh to Q0.(W-1), and the
element-wise products and sums of the cell (int16, in the Q-format its calibration range needs) and the hidden state
as generated loops, each product brought back by a rounding shift. Everything is a power-of-two Q-format, so every
rescale is a shift this module computes from the formats (W = 8 for q7, 16 for q15):

- gate part ``out_shift = f_data + f_weights - f_gate`` and ``bias_shift = f_data + f_weights - f_bias`` (the
  legacy FC kernels' own arguments; the data is the input or the hidden state);
- LSTM: ``c = (f c) >> (W-1) + (i g) >> (2(W-1) - f_cell)``, tanh's input ``c >> (f_cell - f_gate)``, and the hidden
  state ``(o tanh(c)) >> (2(W-1) - f_hidden)``;
- GRU: ``r (h Rh + b)`` or ``(r h) Rh`` by ``>> (W-1)``, and ``h' = n + (z (h - n)) >> (W-1)`` with h brought to
  Q0.(W-1) and back.

A negative shift is a left shift (the generated loops take either). Weights are W-bit in the Q-format their largest
value needs, per matrix; biases W-bit, never finer than the accumulator they are added to.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import ir
from ..errors import NnsconsError
from ..ranges import q_frac_bits
from .common import QState, TensorQ, to_int

TABLE_INT_WIDTH = 3                 # the direct activation tables read Q3.(W-4)
ACCUMULATOR_LOG2 = 30               # a gate part's products summed stay below 2^30 (int32 with headroom)
MAX_FRAC = 40
CELL_BITS = 16                      # the cell state is int16 whatever the word


def quantize_constants(state: QState, op: ir.Op) -> None:
    """W-bit weights per matrix and W-bit biases, each in the Q-format its largest value needs (a bias no finer
    than its accumulator: the input's or the hidden state's format plus its weights')."""
    bits, dtype = state.bits, state.words.act_dtype
    layout = ir.RECURRENT_LAYOUTS[op.type]
    gates = range(len(layout.gates))
    for name in [op.inputs[at + k] for at in (layout.input_weights, layout.hidden_weights) for k in gates]:
        _fit(state, name, "weight", bits, dtype, _accumulator_frac(state.real[name], bits))
    for k in gates:
        _fit(state, op.inputs[layout.input_biases + k], "bias", bits, dtype,
             state.act_frac(op.inputs[0]) + _frac(state, op.inputs[layout.input_weights + k]))
        hidden_bias = layout.constant(op, layout.hidden_biases, k)
        if hidden_bias is not None:
            _fit(state, hidden_bias, "bias", bits, dtype,
                 state.act_frac(op.outputs[0]) + _frac(state, op.inputs[layout.hidden_weights + k]))


def _accumulator_frac(weights: np.ndarray, bits: int) -> int:
    """The finest weight format whose row sums times any W-bit value stay below 2^30 in the kernels' int32
    accumulator (the rest is the bias's and the rounding's headroom): a q15 row of 28 inputs near 1 would overflow
    at the format the largest weight alone asks for."""
    row_sum = float(np.max(np.sum(np.abs(weights), axis=1), initial=0.0))
    if row_sum == 0:
        return MAX_FRAC
    return math.floor(ACCUMULATOR_LOG2 - (bits - 1) - math.log2(row_sum))


def _fit(state: QState, name: str, role: str, bits: int, dtype: str, finest: Any) -> None:
    values = state.real[name]
    max_abs = float(np.max(np.abs(values), initial=0.0))
    frac = q_frac_bits(max_abs, bits) if max_abs > 0 else (finest if finest is not None else bits - 1)
    if finest is not None:
        frac = min(frac, finest)
    state.tq[name] = TensorQ(role, dtype, [2.0 ** -frac], [0], None, frac_bits=frac, bits=bits)
    state.qparams[name] = to_int(values, np.array(2.0 ** -frac), 0, dtype)


def _frac(state: QState, name: str) -> int:
    return int(state.tq[name].frac_bits)  # type: ignore[arg-type]


def layer(state: QState, op: ir.Op) -> dict[str, Any]:
    """The legacy step's shifts (module docstring), checked to be ones the kernels and loops take."""
    bits = state.bits
    layout = ir.RECURRENT_LAYOUTS[op.type]
    f_x, f_h = state.act_frac(op.inputs[0]), state.act_frac(op.outputs[0])
    f_gate = bits - 1 - TABLE_INT_WIDTH
    top = bits - 1                                       # Q0.(W-1): the gates after their activation
    gates = {}
    for k, gate in enumerate(layout.gates):
        parts = {}
        for part, f_data, weights_at, bias in (
                ("input", f_x, layout.input_weights, op.inputs[layout.input_biases + k]),
                ("hidden", f_h, layout.hidden_weights, layout.constant(op, layout.hidden_biases, k))):
            accumulator = f_data + _frac(state, op.inputs[weights_at + k])
            parts[part] = {"out_shift": _check(op, f"the {gate} gate's {part} out_shift", accumulator - f_gate),
                           "bias_shift": 0 if bias is None else
                           _check(op, f"the {gate} gate's {part} bias_shift", accumulator - _frac(state, bias))}
            _check_accumulator(state, op, f"the {gate} gate's {part} part", op.inputs[weights_at + k], bias,
                               parts[part]["bias_shift"])
        gates[gate] = parts
    entry: dict[str, Any] = {"legacy": True, "time_major": bool(op.attrs.get("time_major", False)),
                             "input_frac": f_x, "hidden_frac": f_h, "gate_frac": f_gate, "gates": gates}
    if op.type == "lstm":
        f_c = _cell_frac(state, op)
        entry.update({"cell_frac": f_c, "cell_product_shift": 2 * top - f_c, "tanh_input_shift": f_c - f_gate,
                      "hidden_shift": 2 * top - f_h})
    else:
        entry.update({"linear_before_reset": bool(op.attrs.get("linear_before_reset", False)),
                      "hidden_to_top_shift": f_h - top})
    return entry


def _cell_frac(state: QState, op: ir.Op) -> int:
    """The cell state's int16 Q-format, from every cell value of the calibration set."""
    cell = state.ranges.tensors.get(op.outputs[0] + ir.CELL_STATE_SUFFIX) if state.ranges is not None else None
    if cell is None:
        raise NnsconsError(None, f"quantize: layer {op.name} (lstm): the statistics have no cell state values; "
                                 f"rebuild stats.npz for this graph")
    return min(q_frac_bits(max(abs(cell.min), abs(cell.max)), CELL_BITS), CELL_BITS - 1)


def _check_accumulator(state: QState, op: ir.Op, what: str, weights: str, bias: Any, bias_shift: int) -> None:
    """The legacy kernels' int32 sum: the bias shifted left plus the weights times any W-bit value."""
    w = int(np.abs(np.asarray(state.qparams[weights], np.int64)).sum(axis=1).max(initial=0))
    b = 0 if bias is None else int(np.abs(np.asarray(state.qparams[bias], np.int64)).max(initial=0))
    reach = (b << bias_shift) + w * (1 << (state.bits - 1))
    if reach >= 1 << 31:
        raise NnsconsError(None, f"quantize: layer {op.name} ({op.type}): {what} reaches {reach}, beyond the legacy "
                                 f"kernels' int32 sum (the model's weights or biases are out of range)")


def _check(op: ir.Op, what: str, shift: int) -> int:
    if not 0 <= shift <= 31:
        raise NnsconsError(None, f"quantize: layer {op.name} ({op.type}): {what} is {shift}, outside 0..31 (its "
                                 f"input, weight and gate formats are too far apart)")
    return shift

