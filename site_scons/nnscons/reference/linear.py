"""The weighted ops of the reference interpreter (part of :mod:`nnscons.reference`): conv2d (OHWI weights),
depthwise_conv2d (1HWC weights) and fully_connected (``[out][in]`` weights), summed in float64.

Convolutions run as im2col and one matrix product; a large batch is cut into slices of samples so that one
im2col buffer stays under :data:`_IM2COL_BYTES`.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from .call import Call, pair
from .windows import windows

# Upper bound for one im2col buffer (float64); a large batch is processed in slices of samples below it.
_IM2COL_BYTES = 64 << 20


def _conv_windows(call: Call, kernel: tuple[int, int]) -> np.ndarray:
    return windows(call.args[0], kernel, pair(call, "stride", (1, 1)), pair(call, "dilation", (1, 1)),
                   call.attr("pad", [0, 0, 0, 0]), 0.0)


def _sample_slices(batch: int, bytes_per_sample: int) -> Iterator[slice]:
    """Slices of the batch whose im2col buffer stays under ``_IM2COL_BYTES``."""
    step = max(1, _IM2COL_BYTES // max(1, bytes_per_sample))
    for start in range(0, batch, step):
        yield slice(start, start + step)


def _bias(call: Call, channels: int) -> np.ndarray:
    if len(call.args) < 3:
        return np.zeros(channels)
    bias = call.args[2].astype(np.float64).reshape(-1)
    if bias.size != channels:
        raise ValueError(f"bias has {bias.size} values for {channels} output channels")
    return bias


def conv2d(call: Call) -> np.ndarray:
    x, w = call.args[0], call.args[1]
    c_out, kh, kw, c_in = w.shape
    if x.ndim != 4 or x.shape[3] != c_in:
        raise ValueError(f"input shape {list(x.shape)} does not match OHWI weights {list(w.shape)}")
    patches = _conv_windows(call, (kh, kw))            # [N, OH, OW, C, KH, KW]
    n, oh, ow = patches.shape[:3]
    weights = w.reshape(c_out, -1).T.astype(np.float64)  # [(KH KW C), Cout], the OHWI order
    bias = _bias(call, c_out)
    out = np.empty((n, oh, ow, c_out), np.float32)
    for part in _sample_slices(n, oh * ow * weights.shape[0] * 8):
        # im2col: one row per output pixel, in the weights' (KH, KW, C) order; a single copy to float64
        cols = np.ascontiguousarray(patches[part].transpose(0, 1, 2, 4, 5, 3), dtype=np.float64)
        out[part] = (cols.reshape(-1, weights.shape[0]) @ weights + bias).reshape(-1, oh, ow, c_out)
    return out


def depthwise_conv2d(call: Call) -> np.ndarray:
    x, w = call.args[0], call.args[1]
    _, kh, kw, c_total = w.shape
    c_in = x.shape[3] if x.ndim == 4 else -1
    multiplier = int(call.attr("multiplier", 1))
    if w.shape[0] != 1 or c_in * multiplier != c_total:
        raise ValueError(f"input shape {list(x.shape)} and multiplier {multiplier} do not match 1HWC weights "
                         f"{list(w.shape)}")
    patches = _conv_windows(call, (kh, kw))            # [N, OH, OW, C, KH, KW]
    n, oh, ow = patches.shape[:3]
    # output channel c*multiplier + m reads input channel c
    weights = w.reshape(kh, kw, c_in, multiplier).transpose(2, 0, 1, 3).astype(np.float64)  # [C, KH, KW, M]
    bias = _bias(call, c_total).reshape(c_in, multiplier)
    out = np.empty((n, oh, ow, c_in, multiplier), np.float32)
    for part in _sample_slices(n, oh * ow * c_in * kh * kw * 8):
        cols = np.ascontiguousarray(patches[part], dtype=np.float64)
        for m in range(multiplier):
            out[part, ..., m] = np.einsum("nhwcij,cij->nhwc", cols, weights[..., m]) + bias[:, m]
    return out.reshape(n, oh, ow, c_total)


def fully_connected(call: Call) -> np.ndarray:
    x, w = call.args[0], call.args[1]
    n_out, n_in = w.shape
    if x.size % n_in:
        raise ValueError(f"input of {x.size} values cannot be read as rows of {n_in}")
    rows = x.reshape(-1, n_in).astype(np.float64)
    y = rows @ w.T.astype(np.float64) + _bias(call, n_out)
    return y.astype(np.float32).reshape(call.out_shape)
