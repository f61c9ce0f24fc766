"""The scheme ``model`` (package :mod:`nnscons.quantize`): every tensor keeps the quantization the model carries.

A quantized model's own int8 / int16x8 / QDQ parameters are taken as they are and its integer constants copied,
so the C can be bit-exact with TFLite Micro. The layers' kernel parameters then come from :mod:`.layers` as for
any scheme; :func:`check_layer` adds the one check this scheme needs (an integer bias).
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .. import ir
from .. import ranges as rg
from ..errors import NnsconsError
from .common import WEIGHTED, QState, TensorQ, Words, dtype_range, new_state, used_tensors, word_dtype


def build_model_tensors(graph: ir.Graph, params: dict[str, np.ndarray], ranges: Optional[rg.RangeTable],
                        scheme: str) -> QState:
    """Every used tensor's parameters from its ``quant``, integer constants copied into ``qparams``."""
    bits = 16 if graph.quantized == "int16x8" else 8
    state = new_state(graph, params, ranges, scheme, Words(bits, word_dtype(bits)))
    for name in used_tensors(graph):
        tensor = graph.tensors[name]
        role = state.roles[name]
        state.tq[name] = _model_tensor(tensor, role)
        if tensor.is_const:
            data = np.asarray(params[name])
            if data.dtype.kind in "iu":
                state.qparams[name] = data
            elif role in ("weight", "bias"):
                raise NnsconsError(None, f"quant=model: {role} {name} is stored as {data.dtype}, not as "
                                         f"integers; use quant=int8")
    return state


def _model_tensor(tensor: ir.Tensor, role: str) -> TensorQ:
    """A tensor's own quantization; a per-tensor integer activation records the real range its integers span."""
    q = tensor.quant
    entry = TensorQ(role=role, dtype=tensor.dtype, bits=np.dtype(tensor.dtype).itemsize * 8)
    problem = ir.scale_problem(q.scale) if q is not None else None
    if problem:
        raise NnsconsError(None, f"quant=model: tensor {tensor.name} has an invalid {problem}")
    if q is not None:
        entry.scale = [float(s) for s in q.scale]
        entry.zero_point = [int(z) for z in q.zero_point]
        entry.axis = q.axis
        if not tensor.is_const and tensor.dtype != "float32" and len(q.scale) == 1:
            qmin, qmax = dtype_range(tensor.dtype)
            entry.range = ((qmin - entry.zero_point[0]) * entry.scale[0],
                           (qmax - entry.zero_point[0]) * entry.scale[0])
    return entry


def check_layer(state: QState, op: ir.Op) -> dict[str, Any]:
    """No fields of its own: a weighted layer's bias must be int32 or int64 (the kernels take nothing else)."""
    if op.type in WEIGHTED and len(op.inputs) > 2:
        bias = state.tq[op.inputs[2]]
        if bias.dtype not in ("int32", "int64"):
            raise NnsconsError(None, f"quant=model: op {op.name}: bias {op.inputs[2]} is {bias.dtype}, "
                                     f"expected int32 or int64")
    return {}
