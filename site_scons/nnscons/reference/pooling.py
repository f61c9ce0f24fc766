"""The pooling ops of the reference interpreter (part of :mod:`nnscons.reference`): avg_pool2d (padding
excluded from the average) and max_pool2d."""
from __future__ import annotations

import numpy as np

from .call import Call, pair
from .windows import windows


def _pool_geometry(call: Call) -> tuple[tuple[int, int], tuple[int, int], list[int]]:
    kernel = pair(call, "kernel")
    pad = [int(p) for p in call.attr("pad", [0, 0, 0, 0])]
    # With pads below the kernel size every window holds at least one input element
    if pad[0] >= kernel[0] or pad[1] >= kernel[0] or pad[2] >= kernel[1] or pad[3] >= kernel[1]:
        raise ValueError(f"pad {pad} is not smaller than the kernel {list(kernel)}")
    return kernel, pair(call, "stride", (1, 1)), pad


def avg_pool2d(call: Call) -> np.ndarray:
    x = call.args[0]
    kernel, stride, pad = _pool_geometry(call)
    sums = windows(x, kernel, stride, (1, 1), pad, 0.0).sum(axis=(4, 5), dtype=np.float64)
    # padding excluded: divide by the number of real input elements under each window
    inside = np.ones((1, x.shape[1], x.shape[2], 1), np.float64)
    counts = windows(inside, kernel, stride, (1, 1), pad, 0.0).sum(axis=(4, 5))
    return (sums / counts).astype(np.float32)


def max_pool2d(call: Call) -> np.ndarray:
    kernel, stride, pad = _pool_geometry(call)
    return windows(call.args[0], kernel, stride, (1, 1), pad, -np.inf).max(axis=(4, 5))
