"""Recurrent ops of the reference interpreter (part of :mod:`nnscons.reference`): the LSTM and the GRU, step by step in
float64 from zero state (TFLite's UNIDIRECTIONAL_SEQUENCE_LSTM after a reset, gates i, f, c, o; ONNX's GRU, gates
z, r, h; see ``ir.OP_TYPES``)."""
from __future__ import annotations

import numpy as np

from .. import ir
from .call import Call


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


def _sequence(call: Call) -> tuple[np.ndarray, list[np.ndarray]]:
    """The input sequence batch-major ``[B, T, I]`` and the constants, in float64."""
    x = call.args[0].astype(np.float64)
    if call.op.attrs.get("time_major", False):
        x = x.transpose(1, 0, 2)
    return x, [a.astype(np.float64) for a in call.args[1:]]


def _output(call: Call, out: np.ndarray) -> np.ndarray:
    """Every step's state ``[B, T, H]`` in the op's layout, float32."""
    if call.op.attrs.get("time_major", False):
        out = out.transpose(1, 0, 2)
    return out.astype(np.float32).reshape(call.out_shape)


def lstm(call: Call) -> np.ndarray:
    return lstm_with_internals(call)[0]


def lstm_with_internals(call: Call) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The output (every step's hidden state, in the op's layout) and, for the calibration statistics, every
    step's cell state ``[B, T, H]`` (float32, under ``ir.CELL_STATE_SUFFIX``); for the diagnostics every step's gate
    pre-activations (under ``ir.GATE_SUFFIX`` + the gate's name)."""
    x, consts = _sequence(call)
    weights, biases = consts[:8], consts[8:12]
    clip = float(call.op.attrs.get("cell_clip") or 0.0)
    batch, steps, _ = x.shape
    units = weights[0].shape[0]
    h = np.zeros((batch, units))
    c = np.zeros((batch, units))
    out = np.empty((batch, steps, units))
    cells = np.empty((batch, steps, units))
    gates = np.empty((4, batch, steps, units))
    for t in range(steps):
        pre = [x[:, t] @ weights[k].T + h @ weights[4 + k].T + biases[k] for k in range(4)]
        gates[:, :, t] = pre
        i, f, g, o = _sigmoid(pre[0]), _sigmoid(pre[1]), np.tanh(pre[2]), _sigmoid(pre[3])
        c = f * c + i * g
        if clip > 0.0:
            c = np.clip(c, -clip, clip)
        h = o * np.tanh(c)
        out[:, t], cells[:, t] = h, c
    return _output(call, out), {ir.CELL_STATE_SUFFIX: cells.astype(np.float32), **_gates("lstm", gates)}


def _gates(op_type: str, pre: np.ndarray) -> dict[str, np.ndarray]:
    return {ir.GATE_SUFFIX + name: values.astype(np.float32)
            for name, values in zip(ir.RECURRENT_LAYOUTS[op_type].gates, pre)}


def gru(call: Call) -> np.ndarray:
    return gru_with_internals(call)[0]


def gru_with_internals(call: Call) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The output and, for the diagnostics, every step's gate pre-activations (under ``ir.GATE_SUFFIX`` + the
    gate's name; the candidate's with the reset gate applied)."""
    x, consts = _sequence(call)
    w, r, wb, rb = consts[0:3], consts[3:6], consts[6:9], consts[9:12]
    before_reset = bool(call.op.attrs.get("linear_before_reset", False))
    batch, steps, _ = x.shape
    h = np.zeros((batch, w[0].shape[0]))
    out = np.empty((batch, steps, w[0].shape[0]))
    gates = np.empty((3, batch, steps, w[0].shape[0]))
    for t in range(steps):
        xt = x[:, t]
        gates[0, :, t] = xt @ w[0].T + wb[0] + h @ r[0].T + rb[0]
        gates[1, :, t] = xt @ w[1].T + wb[1] + h @ r[1].T + rb[1]
        z, reset = _sigmoid(gates[0, :, t]), _sigmoid(gates[1, :, t])
        recurrent = reset * (h @ r[2].T + rb[2]) if before_reset else (reset * h) @ r[2].T + rb[2]
        gates[2, :, t] = xt @ w[2].T + wb[2] + recurrent
        n = np.tanh(gates[2, :, t])
        h = (1.0 - z) * n + z * h
        out[:, t] = h
    return _output(call, out), _gates("gru", gates)


def svdf(call: Call) -> np.ndarray:
    """One frame from a zero state: only the newest slot of the memory holds a feature value."""
    x = call.args[0].astype(np.float64)
    wf, wt = call.args[1].astype(np.float64), call.args[2].astype(np.float64)
    rank = int(call.op.attrs["rank"])
    state = np.zeros((x.shape[0], wf.shape[0], wt.shape[1]))
    state[:, :, -1] = x @ wf.T
    activations = (state * wt[None]).sum(axis=2)                    # [B, F]
    out = activations.reshape(x.shape[0], -1, rank).sum(axis=2)
    if len(call.args) > 3:
        out = out + call.args[3].astype(np.float64)
    return out.astype(np.float32).reshape(call.out_shape)
