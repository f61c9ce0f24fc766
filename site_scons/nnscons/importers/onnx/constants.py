"""Constant data during the ONNX conversion: :class:`Const`, an ONNX-layout array with its quantization, if any.

Initializers, folded values and DequantizeLinear'd integer weights all become a ``Const``; the handlers transpose
and reshape them into the IR layouts and :func:`~.context.const_tensor` turns them into IR constants.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ... import ir


@dataclass(eq=False)
class Const:
    """Constant data in ONNX layout; ``scale``/``zero_point``/``axis`` are set for a DequantizeLinear'd integer
    constant (``real = scale * (data - zero_point)``, per channel along ``axis`` if it is not None)."""

    data: np.ndarray
    scale: Optional[np.ndarray] = None
    zero_point: Optional[np.ndarray] = None
    axis: Optional[int] = None

    @property
    def quantized(self) -> bool:
        return self.scale is not None

    def with_data(self, data: np.ndarray, axis: Optional[int]) -> "Const":
        """The same quantization over new data; ``axis`` is where the per-channel axis went (if there is one)."""
        return Const(np.ascontiguousarray(data), self.scale, self.zero_point,
                     axis if self.axis is not None else None)

    def transposed(self, perm: Sequence[int]) -> "Const":
        axis = list(perm).index(self.axis) if self.axis is not None else None
        return self.with_data(self.data.transpose(perm), axis)

    def expanded(self, rank: int) -> "Const":
        """With leading 1-dimensions up to ``rank`` (numpy broadcasting's view of it)."""
        extra = rank - self.data.ndim
        axis = self.axis + extra if self.axis is not None else None
        return self.with_data(self.data.reshape((1,) * extra + self.data.shape), axis)

    def real(self) -> np.ndarray:
        if not self.quantized:
            return self.data.astype(np.float64)
        shape = [1] * self.data.ndim
        if self.axis is not None:
            shape[self.axis] = -1
        scale = self.scale.astype(np.float64).reshape(shape)
        zero_point = self.zero_point.astype(np.float64).reshape(shape)
        return scale * (self.data.astype(np.float64) - zero_point)

    def quant(self) -> Optional[ir.Quant]:
        if not self.quantized:
            return None
        scale = [float(s) for s in np.ravel(self.scale).astype(np.float32)]
        zero_point = [int(z) for z in np.broadcast_to(np.ravel(self.zero_point), (len(scale),))]
        return ir.Quant(scale, zero_point, self.axis)
