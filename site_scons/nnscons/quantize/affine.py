"""TFLite-style affine schemes ``int8`` and ``int16x8`` from ranges (package :mod:`nnscons.quantize`).

The affine family's steps of :mod:`.calibrated`: activations on TFLite's grids (asymmetric int8 with a nudged
zero point, symmetric int16), TFLite's fixed softmax / logistic / tanh outputs, symmetric int8 weights in
[-127, 127] (per output channel for conv2d and depthwise_conv2d, per tensor for fully_connected) and int32 /
int64 biases with scale ``s_in * s_w[c]``. No Q-formats: a group has none, nothing settles after the weights
and the layers carry only the kernel parameters of :mod:`.layers`.

As TFLite's converter, a channel whose weights cannot matter (:func:`~.common.dead_channels`, e.g. weights near
1e-30 after training) is quantized as zeros with the layer's largest channel scale (1.0 if every channel is), and
a weight scale is raised where the bias would not fit half the bias word; both are listed in ``qtable.txt``.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .. import ir
from .. import ranges as rg
from ..errors import NnsconsError
from .common import QState, TensorQ, Words, channel_list, to_int, word_dtype, zero_dead_channels

_GRIDS = {"int8": rg.Grid("asymmetric", 8), "int16x8": rg.Grid("symmetric", 16)}

# Fixed output parameters TFLite requires: (scale, zero point) per scheme and op
_FIXED_OUTPUTS = {
    "int8": {"softmax": (1 / 256, -128), "logistic": (1 / 256, -128), "tanh": (1 / 128, 0)},
    "int16x8": {"softmax": (1 / 32768, 0), "logistic": (1 / 32768, 0), "tanh": (1 / 32768, 0)},
}

# Half the usable range of the bias word, which the bias may take at most (the rest: the sum's headroom)
_BIAS_HALF_RANGE = {"int8": float(1 << 30), "int16x8": float(1 << 46)}


def words(scheme: str, api: str) -> Words:
    """The same words for both kernel APIs: int8 (resp. int16) activations, int8 weights."""
    grid = _GRIDS[scheme]
    return Words(grid.bits, word_dtype(grid.bits), grid)


def fixed_output(state: QState, op: ir.Op) -> tuple[float, int]:
    return _FIXED_OUTPUTS[state.scheme][op.type]


def group_format(state: QState, root: str, lo: float, hi: float) -> Optional[int]:
    """Affine tensors have no Q-format."""
    return None


def quantize_weights(state: QState, op: ir.Op) -> None:
    w = op.inputs[1]
    # per output channel (axis 0 of OHWI, 3 of 1HWC); fully_connected per tensor
    axis = {"conv2d": 0, "depthwise_conv2d": state.real[w].ndim - 1}.get(op.type)
    values = state.real[w] = zero_dead_channels(state, op, state.real[w], axis)
    if axis is None:
        max_abs = np.array([np.max(np.abs(values)) if values.size else 0.0])
    else:
        max_abs = np.max(np.abs(values), axis=tuple(a for a in range(values.ndim) if a != axis))
    scales = _fit_bias(state, op, symmetric_weight_scales(max_abs))
    shape = [1] * values.ndim
    if axis is not None:
        shape[axis] = -1
    state.tq[w] = TensorQ("weight", "int8", [float(s) for s in scales], [0] * len(scales), axis, bits=8)
    state.qparams[w] = to_int(values, scales.reshape(shape), 0, "int8", (-127, 127))


def symmetric_weight_scales(max_abs: np.ndarray) -> np.ndarray:
    """Per-channel scales ``max|w| / 127`` (float32 values); an all-zero channel (a dead one, zeroed) borrows the
    largest scale (any scale represents zeros, this one keeps its multiplier ordinary and gives its bias the
    layer's resolution), 1.0 if all are zero."""
    max_abs = np.asarray(max_abs, dtype=np.float64).reshape(-1)
    fallback = float(max_abs.max()) if max_abs.size and max_abs.max() > 0 else 127.0
    max_abs = np.where(max_abs > 0, max_abs, fallback)
    return (max_abs / 127.0).astype(np.float32).astype(np.float64)


def _fit_bias(state: QState, op: ir.Op, scales: np.ndarray) -> np.ndarray:
    """Weight scales raised where the bias, at scale ``s_in * s_w``, would take more than half the bias word's
    usable range (TFLite's converter does the same, AdjustWeightsForBiasScale): the rest is headroom for the sum.
    A raised scale is reported in ``state.warnings``."""
    if len(op.inputs) < 3:
        return scales
    bias = np.abs(state.real[op.inputs[2]].astype(np.float64).reshape(-1))
    if scales.size == 1:
        bias = bias.max(initial=0.0, keepdims=True)
    elif bias.size != scales.size:
        return scales                                  # quantize_bias refuses it
    s_in = state.tq[op.inputs[0]].scale[0]
    half = _BIAS_HALF_RANGE[state.scheme]
    needed = (bias / (s_in * half)).astype(np.float32).astype(np.float64)
    raised = np.flatnonzero(needed > scales)
    if not raised.size:
        return scales
    first = int(raised[0])
    state.warnings.append(f"{op.name}: weight scale raised on {raised.size} of {scales.size} channels "
                          f"({channel_list(raised)}; channel {first}: {scales[first]:.3g} -> {needed[first]:.3g}) "
                          f"so that the bias fits half the accumulator (|bias| {bias[first]:.3g})")
    return np.maximum(scales, needed)


def settle(state: QState) -> None:
    """Nothing to settle: every affine tensor's parameters are final once chosen."""


def quantize_bias(state: QState, op: ir.Op) -> None:
    """int32 (int8) or int64 (int16x8) with scale ``s_in * s_w[c]`` rounded to float32, zero point 0."""
    quantize_bias_of(state, op, *op.inputs[:3])


def quantize_bias_of(state: QState, op: ir.Op, x: str, w: str, b: str) -> None:
    """:func:`quantize_bias` of bias ``b`` added to weights ``w`` times input ``x`` (an LSTM has four)."""
    values = state.real[b].reshape(-1)
    s_in = state.tq[x].scale[0]
    products = [s_in * s_w for s_w in state.tq[w].scale]
    if max(products) > float(np.finfo(np.float32).max):
        raise NnsconsError(None, f"quantize: op {op.name}: the bias scale (input scale x weight scale) "
                                 f"{max(products):.3g} exceeds float32 (the model's scales or weights are "
                                 "inconsistent)")
    scales = [float(np.float32(p)) for p in products]
    per_channel = len(scales) > 1
    if per_channel and len(scales) != values.size:
        raise NnsconsError(None, f"quantize: op {op.name}: bias {b} has {values.size} values for "
                                 f"{len(scales)} channels")
    dtype = "int32" if state.bits == 8 else "int64"     # the kernels' bias word for 8- and 16-bit activations
    state.tq[b] = TensorQ("bias", dtype, scales, [0] * len(scales), 0 if per_channel else None,
                          bits=np.dtype(dtype).itemsize * 8)
    scale = np.array(scales).reshape(state.real[b].shape) if per_channel else np.array(scales[0])
    state.qparams[b] = to_int(state.real[b], scale, 0, dtype)


def layer_fields(state: QState, op: ir.Op) -> dict[str, Any]:
    """No fields beyond the kernel parameters every scheme has."""
    return {}
