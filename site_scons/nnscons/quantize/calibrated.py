"""Schemes calibrated from statistics: ``int8``, ``int16x8``, ``q7``, ``q15`` (package :mod:`nnscons.quantize`).

Every calibrated scheme takes the same steps: the constants' real values; activations and other non-weight
tensors grouped (a pass-through op's output shares its input's parameters, concat's inputs and output share
one set) and quantized per group from the union of the members' ranges, or pinned to a fixed softmax / logistic
/ tanh output; the weights; constraints between layers; the biases. Where the affine schemes (:mod:`.affine`)
and the Q-format schemes (:mod:`.qformat`, :mod:`.headroom`) differ, the step comes from the scheme's
:class:`Family`, chosen once in ``FAMILIES``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from .. import ir
from .. import ranges as rg
from ..errors import NnsconsError
from . import affine, headroom, qformat, recurrent
from .common import KEEP, WEIGHTED, QState, TensorQ, Words, new_state, to_int, used_tensors

FIXED = ("softmax", "logistic", "tanh")      # ops whose output parameters the scheme fixes


@dataclass(frozen=True)
class Family:
    """The steps in which one family of calibrated schemes differs from the other, as plain functions."""

    words: Callable[[str, str], Words]                           # (scheme, api) -> the integer words
    keep: tuple[str, ...]                                        # ops whose output shares its input's parameters
    fixed_output: Callable[[QState, ir.Op], tuple[float, int]]   # (scale, zero point) of a FIXED op's output
    group_format: Callable[[QState, str, float, float], Optional[int]]  # (root, lo, hi) -> a group's Q-format
    quantize_weights: Callable[[QState, ir.Op], None]
    settle: Callable[[QState], None]                             # constraints between layers, after the weights
    quantize_bias: Callable[[QState, ir.Op], None]
    layer_fields: Callable[[QState, ir.Op], dict[str, Any]]      # the family's own fields of a layer entry


AFFINE = Family(words=affine.words, keep=KEEP, fixed_output=affine.fixed_output,
                group_format=affine.group_format, quantize_weights=affine.quantize_weights, settle=affine.settle,
                quantize_bias=affine.quantize_bias, layer_fields=affine.layer_fields)

Q_FORMAT = Family(words=qformat.words, keep=KEEP + ("mean", "leaky_relu"), fixed_output=qformat.fixed_output,
                  group_format=qformat.group_format, quantize_weights=qformat.quantize_weights,
                  settle=headroom.settle, quantize_bias=qformat.quantize_bias, layer_fields=qformat.layer_fields)

FAMILIES: dict[str, Family] = {"int8": AFFINE, "int16x8": AFFINE, "q7": Q_FORMAT, "q15": Q_FORMAT}


def build_calibrated_tensors(graph: ir.Graph, params: dict[str, np.ndarray], ranges: Optional[rg.RangeTable],
                             scheme: str, api: str, family: Family) -> QState:
    """Every used tensor's parameters and every constant's integers, step by step (module docstring)."""
    state = new_state(graph, params, ranges, scheme, family.words(scheme, api))
    state.real = {name: _real_constant(graph, params, name) for name in used_tensors(graph)
                  if graph.tensors[name].is_const}
    _check_ranges(state)
    _value_tensors(state, family)
    for op in graph.ops:
        if op.type in WEIGHTED and op.inputs[1] not in state.tq:   # weights shared by layers: quantized once
            family.quantize_weights(state, op)
    family.settle(state)
    for op in graph.ops:
        if op.type in WEIGHTED and len(op.inputs) > 2:
            family.quantize_bias(state, op)
        if op.type in ("lstm", "gru"):
            recurrent.quantize_constants(state, op)
    return state


def _real_constant(graph: ir.Graph, params: dict[str, np.ndarray], name: str) -> np.ndarray:
    """A constant's real values (integer data of a quantized model dequantized with its ``quant``)."""
    data = np.asarray(params[name])
    tensor = graph.tensors[name]
    if data.dtype.kind == "f" or tensor.quant is None:
        return data.astype(np.float64)
    return ir.dequantize(data, tensor.quant.scale, tensor.quant.zero_point, tensor.quant.axis)


def _check_ranges(state: QState) -> None:
    if state.ranges is None:
        raise NnsconsError(None, f"quant={state.scheme} needs activation statistics: add a calibration set "
                                 f"(calib.npz) to the model folder")
    for name in state.graph.activations():
        if name not in state.ranges.tensors:
            raise NnsconsError(None, f"quantize: the statistics have no values for tensor {name}; "
                                     f"rebuild stats.npz and ranges.json for this graph")


# ---- activations and non-weight constants, group by group -------------------------------------------------------
class _Groups:
    """Union-find over tensor names: tensors that must share their quantization."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, name: str) -> str:
        self.parent.setdefault(name, name)
        root = name
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[name] != root:
            self.parent[name], name = root, self.parent[name]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def _value_tensors(state: QState, family: Family) -> None:
    """Quantize activations and other constants per tensor, group by group."""
    groups = _Groups()
    names = [n for n in used_tensors(state.graph) if state.roles[n] not in ("weight", "bias")]
    for name in names:
        groups.find(name)
    fixed: dict[str, tuple[float, int, str]] = {}
    for op in state.graph.ops:
        if op.type in family.keep:
            for x in (op.inputs if op.type == "concat" else op.inputs[:1]):
                groups.union(x, op.outputs[0])
        elif op.type in FIXED:
            fixed[op.outputs[0]] = (*family.fixed_output(state, op), op.name)
    members: dict[str, list[str]] = {}
    for name in names:
        members.setdefault(groups.find(name), []).append(name)
    state.group_of = {name: groups.find(name) for name in names}
    for group in members.values():
        _quantize_group(state, family, group, fixed)


def _own_range(state: QState, name: str) -> tuple[float, float]:
    if name in state.real:
        values = state.real[name]
        return (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    r = state.ranges.tensors[name]  # type: ignore[union-attr]
    return r.lo, r.hi


def _quantize_group(state: QState, family: Family, group: list[str],
                    fixed: dict[str, tuple[float, int, str]]) -> None:
    ranges = [_own_range(state, n) for n in group]
    lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
    pinned = {fixed[n][:2] for n in group if n in fixed}
    if len(pinned) > 1:
        ops = ", ".join(sorted(fixed[n][2] for n in group if n in fixed))
        raise NnsconsError(None, f"quantize: ops {ops} have fixed, different output quantizations but "
                                 f"their outputs must share one (concat or a pass-through op joins them)")
    root = state.group_of[group[0]]
    grid = state.words.grid
    assert grid is not None
    if pinned:
        scale, zero_point = pinned.pop()
        lo, hi = (grid.qmin - zero_point) * scale, (grid.qmax - zero_point) * scale
        state.pinned.add(root)
    else:
        scale, zero_point = grid.params(lo, hi)
    frac = family.group_format(state, root, lo, hi)
    dtype = state.words.act_dtype
    for name in group:
        state.tq[name] = TensorQ(role=state.roles[name], dtype=dtype, scale=[scale], zero_point=[zero_point],
                                 range=(lo, hi), frac_bits=frac, bits=state.bits)
        if name in state.real:
            state.qparams[name] = to_int(state.real[name], np.array(scale), zero_point, dtype)
