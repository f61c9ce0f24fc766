"""What an op function of the reference interpreter receives (part of :mod:`nnscons.reference`): :class:`Call`,
plus the attribute and shape helpers the op families share."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from .. import ir


@dataclass(frozen=True)
class Call:
    """What an op function gets: its op (for attributes), its input values and the output shape it must have."""

    op: ir.Op
    args: list[np.ndarray]
    out_shape: tuple[int, ...]  # the output tensor's shape with this run's batch size
    batch: int

    def attr(self, name: str, default: Any = None) -> Any:
        value = self.op.attrs.get(name)
        if value is not None:
            return value
        if default is None:
            raise ValueError(f"missing attribute '{name}'")
        return default


# One op kind's implementation: real values in (the Call), the real-valued float32 output out.
OpFunction = Callable[[Call], np.ndarray]


def batched(shape: list[int], batch: int, name: str) -> tuple[int, ...]:
    """A graph shape (batch 1 in axis 0) with this run's batch size."""
    if shape and shape[0] == 1:
        return (batch, *shape[1:])
    if batch == 1 or (shape and shape[0] == batch):       # one sample of a graph without a batch axis of 1
        return tuple(shape)
    raise ValueError(f"tensor {name} (shape {list(shape)}) has no batch axis, so the graph only runs with batch 1")


def pair(call: Call, name: str, default: Optional[tuple[int, int]] = None) -> tuple[int, int]:
    """A two-value attribute (kernel, stride, dilation) as ints."""
    value = call.attr(name, list(default) if default else None)
    if len(value) != 2:
        raise ValueError(f"attribute '{name}' must hold two values, got {list(value)}")
    return int(value[0]), int(value[1])
