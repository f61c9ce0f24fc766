"""The state that the TFLite conversion pass shares between the driver (:mod:`.convert`), the tensor builder
(:mod:`.tensors`) and the per-operator handlers: one :class:`ConversionContext` per imported file."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ... import ir
from ...errors import NnsconsError
from .records import ModelRec, OpRec


@dataclass
class ConversionContext:
    """Decoded records in, IR tensors, constant data and ops out."""

    path: str
    model: ModelRec
    names: ir.NameTable = field(default_factory=ir.NameTable)
    tensors: dict[str, ir.Tensor] = field(default_factory=dict)
    params: dict[str, np.ndarray] = field(default_factory=dict)
    ir_names: dict[int, str] = field(default_factory=dict)  # TFLite tensor index -> IR tensor name
    producer: dict[int, int] = field(default_factory=dict)  # TFLite tensor index -> index of the op writing it
    folded: dict[int, int] = field(default_factory=dict)    # output -> input of a DEQUANTIZE of constant data
    ops: list[ir.Op] = field(default_factory=list)
    op: Optional[OpRec] = None                              # the operator being converted (for error messages)

    def fail(self, message: str) -> NnsconsError:
        """The error to raise, naming the operator being converted if there is one."""
        if self.op is not None:
            message = f"operator #{self.op.index} {self.op.name}: {message}"
        return NnsconsError(self.path, message)
