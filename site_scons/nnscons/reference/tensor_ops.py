"""The reference interpreter's ops over whole tensors or axes (part of :mod:`nnscons.reference`): softmax and
mean (accumulated in float64), reshape, pad and concat."""
from __future__ import annotations

import numpy as np

from .call import Call, batched


def softmax(call: Call) -> np.ndarray:
    logits = call.args[0].astype(np.float64) * float(call.attr("beta", 1.0))
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def mean(call: Call) -> np.ndarray:
    axes = tuple(int(a) for a in call.attr("axes"))
    keepdims = bool(call.attr("keepdims", False))
    return call.args[0].mean(axis=axes, dtype=np.float64, keepdims=keepdims).astype(np.float32)


def reshape(call: Call) -> np.ndarray:
    return call.args[0].reshape(batched(list(call.attr("shape")), call.batch, call.op.outputs[0]))


def pad(call: Call) -> np.ndarray:
    x = call.args[0]
    pads = [(int(before), int(after)) for before, after in call.attr("pads")]
    if len(pads) != x.ndim or min(min(p) for p in pads) < 0:
        raise ValueError(f"pads {pads} do not fit an input of shape {list(x.shape)}")
    return np.pad(x, pads, constant_values=np.float32(call.attr("value", 0.0)))


def concat(call: Call) -> np.ndarray:
    return np.concatenate(call.args, axis=int(call.attr("axis")))
