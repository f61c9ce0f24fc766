"""Recurrent ops of the reference interpreter (part of :mod:`nnscons.reference`): the LSTM, step by step in float64
from zero state (TFLite's UNIDIRECTIONAL_SEQUENCE_LSTM after a reset: gates i, f, c, o; see ``ir.OP_TYPES``)."""
from __future__ import annotations

import numpy as np

from .call import Call


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


def lstm(call: Call) -> np.ndarray:
    x = call.args[0].astype(np.float64)
    weights = [a.astype(np.float64) for a in call.args[1:9]]
    biases = [a.astype(np.float64) for a in call.args[9:13]]
    time_major = bool(call.op.attrs.get("time_major", False))
    clip = float(call.op.attrs.get("cell_clip") or 0.0)
    if time_major:
        x = x.transpose(1, 0, 2)                      # [B, T, I]
    batch, steps, _ = x.shape
    units = weights[0].shape[0]
    h = np.zeros((batch, units))
    c = np.zeros((batch, units))
    out = np.empty((batch, steps, units))
    for t in range(steps):
        pre = [x[:, t] @ weights[k].T + h @ weights[4 + k].T + biases[k] for k in range(4)]
        i, f, g, o = _sigmoid(pre[0]), _sigmoid(pre[1]), np.tanh(pre[2]), _sigmoid(pre[3])
        c = f * c + i * g
        if clip > 0.0:
            c = np.clip(c, -clip, clip)
        h = o * np.tanh(c)
        out[:, t] = h
    if time_major:
        out = out.transpose(1, 0, 2)
    return out.astype(np.float32).reshape(call.out_shape)
