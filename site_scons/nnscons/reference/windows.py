"""Sliding windows over NHWC activations, shared by the convolutions and the pooling ops of the reference
interpreter (part of :mod:`nnscons.reference`)."""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def windows(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
            pad: list[int], fill: float) -> np.ndarray:
    """A view ``[N, OH, OW, C, KH, KW]`` of the (padded) NHWC input: the input patch under each output pixel."""
    if x.ndim != 4:
        raise ValueError(f"expects a 4-D NHWC input, got shape {list(x.shape)}")
    top, bottom, left, right = (int(p) for p in pad)
    if min(top, bottom, left, right) < 0 or min(stride) < 1 or min(dilation) < 1 or min(kernel) < 1:
        raise ValueError(f"bad window: kernel {list(kernel)}, stride {list(stride)}, dilation {list(dilation)}, "
                         f"pad {list(pad)}")
    padded = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=fill)
    span = (dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1)
    if padded.shape[1] < span[0] or padded.shape[2] < span[1]:
        raise ValueError(f"kernel {list(kernel)} (dilation {list(dilation)}) is larger than the padded input "
                         f"{list(padded.shape[1:3])}")
    view = sliding_window_view(padded, span, axis=(1, 2))
    return view[:, ::stride[0], ::stride[1], :, ::dilation[0], ::dilation[1]]
