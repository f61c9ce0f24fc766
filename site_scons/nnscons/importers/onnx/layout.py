"""NCHW -> NHWC for the ONNX import: how an ONNX tensor's dimensions and elements map to its IR tensor.

Every ONNX activation lives in the IR as ``ir_array = onnx_array.transpose(perm)`` (a :class:`Value`): ``NHWC`` for a
4-D NCHW tensor, the identity for the others. The functions here are pure arithmetic on shapes and permutations;
the converter's layout decisions that emit ops (relayout reshapes) are in :mod:`.context`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

NHWC = (0, 2, 3, 1)          # ir = onnx.transpose(NHWC) for a 4-D NCHW tensor
FROM_NHWC = (0, 3, 1, 2)     # its inverse


@dataclass(eq=False)
class Value:
    """How an ONNX activation lives in the IR: ``ir_array = onnx_array.transpose(perm)``, and, for a 2-D tensor
    made by flattening NCHW data, ``order`` (IR column j holds ONNX column ``order[j]``)."""

    ir: str
    perm: tuple[int, ...]
    order: Optional[np.ndarray] = None


def ir_shape(onnx_shape: Sequence[int], perm: Sequence[int]) -> list[int]:
    return [int(onnx_shape[p]) for p in perm]


def identity(rank: int) -> tuple[int, ...]:
    return tuple(range(rank))


def inverse(perm: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argsort(perm))


def default_perm(rank: int) -> tuple[int, ...]:
    return NHWC if rank == 4 else identity(rank)


def ir_order(onnx_shape: Sequence[int], perm: Sequence[int]) -> np.ndarray:
    """The ONNX (row-major) flat index of each element, in the order the IR stores them."""
    return np.arange(int(np.prod(onnx_shape, dtype=np.int64))).reshape(onnx_shape).transpose(perm).ravel()


def flatten_order(held: np.ndarray, out_shape: Sequence[int]) -> Optional[np.ndarray]:
    """For a reshape to ``[N, K]`` that keeps each sample's elements in its own row but reorders them (an NCHW
    flatten): the ONNX column that each IR column holds, the same for every row. None otherwise."""
    if len(out_shape) != 2 or out_shape[0] < 1:
        return None
    rows, k = out_shape
    columns = held.reshape(rows, k) - (np.arange(rows) * k)[:, None]
    if np.any(columns < 0) or np.any(columns >= k) or not np.all(columns == columns[0]):
        return None
    return columns[0].copy()
