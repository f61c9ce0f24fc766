"""The stage's entry point (package :mod:`nnscons.quantize`): :func:`build_qtable`.

Checks the request, builds every tensor's parameters with the scheme's builder (:mod:`.model` for ``model``,
:mod:`.calibrated` for the others), bounds the integer biases (:mod:`.bounds`), then every layer's entry (the
kernel parameters of :mod:`.layers` plus the scheme's own fields) and assembles ``qtable.json``, ``qparams.npz``
and ``qtable.txt``; what was zeroed or clamped on the way is listed under ``warnings`` in both.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from .. import ir
from .. import ranges as rg
from ..errors import NnsconsError
from ..options import APIS, resolve_scheme_for
from . import bounds, calibrated, model
from .common import QState, QTable, check_ops
from .layers import layer_entry
from .text import render_text

SCHEMES = ("auto", "model", "int8", "int16x8", "q7", "q15")
QTABLE_VERSION = 1


def resolve_scheme(graph: ir.Graph, quant: str) -> str:
    return resolve_scheme_for(graph.quantized, quant)


def build_qtable(graph: ir.Graph, params: dict[str, np.ndarray], ranges: Optional[rg.RangeTable],
                 quant: str, api: str = "s8") -> QTable:
    """Decide every tensor's quantization and every layer's kernel parameters (see the package docstring).
    ``ranges`` (the ranges stage's output for this scheme) is needed by every scheme but ``model``; ``api``
    (``s8`` or ``legacy``) is the kernel family the parameters are for."""
    if api not in APIS:
        raise NnsconsError(None, f"quantize: api={api!r} is not one of {', '.join(APIS)}")
    scheme = resolve_scheme(graph, quant)
    if ranges is not None and ranges.scheme != scheme:
        raise NnsconsError(None, f"quantize: ranges were chosen for scheme {ranges.scheme}, not {scheme}; "
                                 f"rebuild ranges.json")
    check_ops(graph)
    layer_fields: Callable[[QState, ir.Op], dict[str, Any]]
    if scheme == "model":
        state = model.build_model_tensors(graph, params, ranges, scheme)
        layer_fields = model.check_layer
    else:
        family = calibrated.FAMILIES[scheme]
        state = calibrated.build_calibrated_tensors(graph, params, ranges, scheme, api, family)
        layer_fields = family.layer_fields
    bounds.bound_biases(state)
    layers = {}
    for op in graph.ops:
        entry = layer_entry(state, op)
        entry.update(layer_fields(state, op))
        layers[op.name] = entry
    tables = {
        "format": "nnscons-qtable", "version": QTABLE_VERSION,
        "scheme": scheme, "requested": quant, "range": ranges.method if ranges else "none",
        "word_bits": state.bits, "model_quantized": graph.quantized,
        "inputs": list(graph.inputs), "outputs": list(graph.outputs), "order": [op.name for op in graph.ops],
        "tensors": {name: state.tensor_json(name) for name in state.tq},
        "layers": layers,
    }
    if state.warnings:        # what was zeroed or clamped to keep the kernels' arithmetic defined
        tables["warnings"] = list(state.warnings)
    return QTable(tables, state.qparams, render_text(graph, tables, ranges))
