"""The elementwise ops of the reference interpreter (part of :mod:`nnscons.reference`): arithmetic (add, sub,
mul), the activation functions (logistic, tanh, relu, relu6, leaky_relu, clip) and quantize / dequantize, the
identity on real values."""
from __future__ import annotations

import numpy as np

from .call import Call


def add(call: Call) -> np.ndarray:
    return np.add(call.args[0], call.args[1])


def sub(call: Call) -> np.ndarray:
    return np.subtract(call.args[0], call.args[1])


def mul(call: Call) -> np.ndarray:
    return np.multiply(call.args[0], call.args[1])


def identity(call: Call) -> np.ndarray:
    # quantize / dequantize: the interpreter works on real values, where both are the identity
    return call.args[0]


def logistic(call: Call) -> np.ndarray:
    x = call.args[0].astype(np.float64)
    e = np.exp(-np.abs(x))  # never overflows; the two branches are the same function
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(np.float32)


def tanh(call: Call) -> np.ndarray:
    return np.tanh(call.args[0].astype(np.float64)).astype(np.float32)


def relu(call: Call) -> np.ndarray:
    return np.maximum(call.args[0], np.float32(0))


def relu6(call: Call) -> np.ndarray:
    return np.clip(call.args[0], np.float32(0), np.float32(6))


def leaky_relu(call: Call) -> np.ndarray:
    x = call.args[0]
    return np.where(x >= 0, x, x * np.float32(call.attr("alpha"))).astype(np.float32)


def clip(call: Call) -> np.ndarray:
    y = call.args[0]
    low, high = call.op.attrs.get("min"), call.op.attrs.get("max")
    if low is not None:
        y = np.maximum(y, np.float32(low))
    if high is not None:
        y = np.minimum(y, np.float32(high))
    return y
