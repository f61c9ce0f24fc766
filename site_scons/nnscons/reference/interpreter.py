"""Driving a graph through the reference interpreter (part of :mod:`nnscons.reference`): :func:`run`,
:func:`iterate` and :func:`dequantize_params`.

Checks the inputs, turns integer data into real values, runs the ops in graph order through the registry
:data:`~nnscons.reference.ops.REFERENCE_OPS`, applies fused activations, checks every result's shape and
releases activations as soon as no later op reads them.
"""
from __future__ import annotations

from typing import Iterator, Optional

import numpy as np

from .. import ir
from ..errors import NnsconsError
from .call import Call, batched
from .ops import REFERENCE_OPS, WITH_INTERNALS


# ---- public API ------------------------------------------------------------------------------------------------
def run(graph: ir.Graph, params: dict[str, np.ndarray], inputs: dict[str, np.ndarray],
        keep: bool = False) -> dict[str, np.ndarray]:
    """Run the graph on a batch. Returns the graph outputs (name -> float32, batch N in axis 0), or with
    ``keep=True`` every activation tensor, graph inputs included."""
    feeds, batch = _prepare_inputs(graph, inputs)
    values: dict[str, np.ndarray] = dict(feeds) if keep else {}
    for op, produced in _execute(graph, dequantize_params(graph, params), feeds, batch, internals=False):
        if keep:
            values.update(produced)
        else:
            values.update((name, v) for name, v in produced.items() if name in graph.outputs)
    # A graph output may also be a graph input (no op in between)
    values.update((name, feeds[name]) for name in graph.outputs if name in feeds)
    if keep:
        return values
    return {name: values[name] for name in graph.outputs}


def iterate(graph: ir.Graph, params: dict[str, np.ndarray],
            inputs: dict[str, np.ndarray]) -> Iterator[tuple[ir.Op, dict[str, np.ndarray]]]:
    """Run the graph op by op, yielding ``(op, {output_name: value})`` in execution order (plus the op's
    :data:`~.ops.WITH_INTERNALS`, e.g. an LSTM's cell state, under its output's name and a suffix). Activations are
    released as soon as no later op reads them, so a caller that looks at each value and drops it keeps only
    the live tensors in memory. Graph inputs are not yielded."""
    feeds, batch = _prepare_inputs(graph, inputs)
    yield from _execute(graph, dequantize_params(graph, params), feeds, batch, internals=True)


def dequantize_params(graph: ir.Graph, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Real-valued float32 copies of the graph's constant tensors: integer data with a ``quant`` becomes
    ``scale * (q - zero_point)``; anything else is converted to float32 as is (so the result can be passed
    in again without changing)."""
    real: dict[str, np.ndarray] = {}
    for tensor in graph.tensors.values():
        if not tensor.is_const:
            continue
        if tensor.name not in params:
            raise NnsconsError(graph.source_file or None, f"no data for constant tensor {tensor.name}")
        data = np.asarray(params[tensor.name])
        if list(data.shape) != list(tensor.shape):
            raise NnsconsError(graph.source_file or None,
                               f"constant {tensor.name} has shape {list(data.shape)}, the graph says {tensor.shape}")
        real[tensor.name] = _to_real(data, tensor, graph.source_file)
    return real


# ---- driving the graph -------------------------------------------------------------------------------------------
def _execute(graph: ir.Graph, consts: dict[str, np.ndarray], feeds: dict[str, np.ndarray],
             batch: int, internals: bool) -> Iterator[tuple[ir.Op, dict[str, np.ndarray]]]:
    """The ops in order, each with its output (and with ``internals`` the values inside it :data:`WITH_INTERNALS`
    gives)."""
    path = graph.source_file or None
    for op in graph.ops:
        if op.type not in REFERENCE_OPS:
            raise NnsconsError(path, f"op {op.name}: unknown op type '{op.type}'")
        if len(op.outputs) != 1:
            raise NnsconsError(path, f"op {op.name}: expected one output, got {len(op.outputs)}")
    last_use = _last_use(graph)
    live: dict[str, np.ndarray] = dict(feeds)
    for index, op in enumerate(graph.ops):
        args = []
        for name in op.inputs:
            value = consts.get(name, live.get(name))
            if value is None:
                raise NnsconsError(path, f"op {op.name}: input {name} is not computed before it is used")
            args.append(value)
        out_name = op.outputs[0]
        if out_name not in graph.tensors:
            raise NnsconsError(path, f"op {op.name}: output {out_name} is not a tensor of the graph")
        try:
            call = Call(op, args, batched(graph.tensors[out_name].shape, batch, out_name), batch)
            if internals and op.type in WITH_INTERNALS:
                value, inside = WITH_INTERNALS[op.type](call)
            else:
                value, inside = REFERENCE_OPS[op.type](call), {}
            result = _apply_activation(value, op.attrs.get("activation", "none"))
        except (ValueError, IndexError, TypeError) as exc:  # a malformed op: name it instead of a traceback
            raise NnsconsError(path, f"op {op.name} ({op.type}): {exc}") from None
        if result.shape != call.out_shape:
            raise NnsconsError(path, f"op {op.name} ({op.type}) computes shape {list(result.shape)}, "
                                     f"the graph says {list(call.out_shape)}")
        live[out_name] = result
        yield op, {out_name: result, **{out_name + suffix: v for suffix, v in inside.items()}}
        for name in op.inputs + op.outputs:
            if last_use.get(name, -1) <= index and name not in graph.outputs:
                live.pop(name, None)


def _last_use(graph: ir.Graph) -> dict[str, int]:
    """Index of the last op reading each tensor (or producing it, if nothing reads it)."""
    last: dict[str, int] = {}
    for index, op in enumerate(graph.ops):
        for name in op.inputs + op.outputs:
            last[name] = index
    return last


def _prepare_inputs(graph: ir.Graph, inputs: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int]:
    """Check the user's arrays against the graph inputs; return them as real float32 and the batch size."""
    path = graph.source_file or None
    unknown = sorted(set(inputs) - set(graph.inputs))
    if unknown:
        raise NnsconsError(path, f"unknown input(s) {', '.join(unknown)}; the graph inputs are "
                                 f"{', '.join(graph.inputs)}")
    feeds: dict[str, np.ndarray] = {}
    batch: Optional[int] = None
    for name in graph.inputs:
        if name not in inputs:
            raise NnsconsError(path, f"no value for graph input {name}")
        tensor = graph.tensors[name]
        data = np.asarray(inputs[name])
        if data.ndim != len(tensor.shape) or data.ndim == 0 or list(data.shape[1:]) != list(tensor.shape[1:]):
            raise NnsconsError(path, f"input {name} has shape {list(data.shape)}, expected [N, "
                                     f"{', '.join(str(d) for d in tensor.shape[1:])}]")
        if batch is not None and data.shape[0] != batch:
            raise NnsconsError(path, f"input {name} has batch size {data.shape[0]}, other inputs {batch}")
        batch = data.shape[0]
        feeds[name] = _to_real(data, tensor, graph.source_file)
    if not batch:
        raise NnsconsError(path, "empty batch: the inputs hold no samples")
    return feeds, batch


def _to_real(data: np.ndarray, tensor: ir.Tensor, path: str) -> np.ndarray:
    """float32 real values of a tensor's data (dequantized when it is integer data with a ``quant``)."""
    if data.dtype.kind not in "fiub":
        raise NnsconsError(path or None, f"tensor {tensor.name}: unsupported data type {data.dtype}")
    if data.dtype.kind == "f" or tensor.quant is None:
        return data.astype(np.float32)
    quant = tensor.quant
    scale, zero_point = np.asarray(quant.scale), np.asarray(quant.zero_point)
    if quant.axis is not None:
        axis = quant.axis
        if not 0 <= axis < data.ndim or data.shape[axis] != scale.size or zero_point.size not in (1, scale.size):
            raise NnsconsError(path or None, f"tensor {tensor.name}: per-channel quantization along axis {axis} "
                                             f"does not fit shape {list(data.shape)}")
    elif scale.size < 1 or zero_point.size < 1:
        raise NnsconsError(path or None, f"tensor {tensor.name}: quantization without a scale")
    return ir.dequantize(data, scale, zero_point, quant.axis).astype(np.float32)


def _apply_activation(y: np.ndarray, activation: str) -> np.ndarray:
    if activation not in ir.ACTIVATION_RANGES:
        raise ValueError(f"unknown fused activation '{activation}'")
    low, high = ir.ACTIVATION_RANGES[activation]
    if low is not None:
        y = np.maximum(y, np.float32(low))
    if high is not None:
        y = np.minimum(y, np.float32(high))
    return y
