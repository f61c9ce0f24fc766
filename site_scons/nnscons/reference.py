"""The float reference interpreter of the IR (stage 2): the seed's "float version of CMSIS-NN".

It runs a :class:`~nnscons.ir.Graph` with numpy, in the IR's own layout: NHWC activations and weights already
reordered to the CMSIS-NN layouts (conv2d OHWI, depthwise 1HWC, fully_connected ``[out][in]``). Agreeing with
LiteRT / onnxruntime on the original model therefore proves both the import and the weight reordering, and its
activations are what the statistics stage measures.

* Batched: every graph input holds N samples in axis 0 (the graph itself says batch 1); all activations carry the
  same N. Shapes in attributes (``reshape``'s target) and in the graph get their leading 1 replaced by N.
* Quantized models (int8 / int16x8 TFLite, QDQ ONNX) run "in float": integer constants are dequantized first
  (:func:`dequantize_params`) and ``quantize`` / ``dequantize`` are the identity on real values. Integer input
  arrays are dequantized with the input tensor's ``quant``; float input arrays are taken as real values.
  Outputs are always real values (float32).
* Activations are float32 between ops (as in LiteRT); sums of products (conv, fully connected, pooling, mean,
  softmax) are accumulated in float64 so that the interpreter itself adds no noticeable error.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import ir
from .errors import NnsconsError

# Upper bound for one im2col buffer (float64); a large batch is processed in slices of samples below it.
_IM2COL_BYTES = 64 << 20


# ---- public API ------------------------------------------------------------------------------------------------
def run(graph: ir.Graph, params: dict[str, np.ndarray], inputs: dict[str, np.ndarray],
        keep: bool = False) -> dict[str, np.ndarray]:
    """Run the graph on a batch. Returns the graph outputs (name -> float32, batch N in axis 0), or with
    ``keep=True`` every activation tensor, graph inputs included."""
    feeds, batch = _prepare_inputs(graph, inputs)
    values: dict[str, np.ndarray] = dict(feeds) if keep else {}
    for op, produced in _execute(graph, dequantize_params(graph, params), feeds, batch):
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
    """Run the graph op by op, yielding ``(op, {output_name: value})`` in execution order. Activations are
    released as soon as no later op reads them, so a caller that looks at each value and drops it keeps only
    the live tensors in memory. Graph inputs are not yielded."""
    feeds, batch = _prepare_inputs(graph, inputs)
    yield from _execute(graph, dequantize_params(graph, params), feeds, batch)


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
@dataclass(frozen=True)
class _Call:
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


def _execute(graph: ir.Graph, consts: dict[str, np.ndarray], feeds: dict[str, np.ndarray],
             batch: int) -> Iterator[tuple[ir.Op, dict[str, np.ndarray]]]:
    path = graph.source_file or None
    for op in graph.ops:
        if op.type not in _OPS:
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
            call = _Call(op, args, _batched(graph.tensors[out_name].shape, batch, out_name), batch)
            result = _apply_activation(_OPS[op.type](call), op.attrs.get("activation", "none"))
        except (ValueError, IndexError, TypeError) as exc:  # a malformed op: name it instead of a traceback
            raise NnsconsError(path, f"op {op.name} ({op.type}): {exc}") from None
        if result.shape != call.out_shape:
            raise NnsconsError(path, f"op {op.name} ({op.type}) computes shape {list(result.shape)}, "
                                     f"the graph says {list(call.out_shape)}")
        live[out_name] = result
        yield op, {out_name: result}
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


def _batched(shape: list[int], batch: int, name: str) -> tuple[int, ...]:
    """A graph shape (batch 1 in axis 0) with this run's batch size."""
    if shape and shape[0] == 1:
        return (batch, *shape[1:])
    if batch == 1:
        return tuple(shape)
    raise ValueError(f"tensor {name} (shape {list(shape)}) has no batch axis, so the graph only runs with batch 1")


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


# ---- helpers shared by the windowed ops ------------------------------------------------------------------------
def _pair(call: _Call, name: str, default: Optional[tuple[int, int]] = None) -> tuple[int, int]:
    value = call.attr(name, list(default) if default else None)
    if len(value) != 2:
        raise ValueError(f"attribute '{name}' must hold two values, got {list(value)}")
    return int(value[0]), int(value[1])


def _windows(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
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


def _conv_windows(call: _Call, kernel: tuple[int, int]) -> np.ndarray:
    return _windows(call.args[0], kernel, _pair(call, "stride", (1, 1)), _pair(call, "dilation", (1, 1)),
                    call.attr("pad", [0, 0, 0, 0]), 0.0)


def _sample_slices(batch: int, bytes_per_sample: int) -> Iterator[slice]:
    """Slices of the batch whose im2col buffer stays under ``_IM2COL_BYTES``."""
    step = max(1, _IM2COL_BYTES // max(1, bytes_per_sample))
    for start in range(0, batch, step):
        yield slice(start, start + step)


def _bias(call: _Call, channels: int) -> np.ndarray:
    if len(call.args) < 3:
        return np.zeros(channels)
    bias = call.args[2].astype(np.float64).reshape(-1)
    if bias.size != channels:
        raise ValueError(f"bias has {bias.size} values for {channels} output channels")
    return bias


# ---- one function per op type --------------------------------------------------------------------------------------
def _conv2d(call: _Call) -> np.ndarray:
    x, w = call.args[0], call.args[1]
    c_out, kh, kw, c_in = w.shape
    if x.ndim != 4 or x.shape[3] != c_in:
        raise ValueError(f"input shape {list(x.shape)} does not match OHWI weights {list(w.shape)}")
    patches = _conv_windows(call, (kh, kw))            # [N, OH, OW, C, KH, KW]
    n, oh, ow = patches.shape[:3]
    weights = w.reshape(c_out, -1).T.astype(np.float64)  # [(KH KW C), Cout], the OHWI order
    bias = _bias(call, c_out)
    out = np.empty((n, oh, ow, c_out), np.float32)
    for part in _sample_slices(n, oh * ow * weights.shape[0] * 8):
        # im2col: one row per output pixel, in the weights' (KH, KW, C) order; a single copy to float64
        cols = np.ascontiguousarray(patches[part].transpose(0, 1, 2, 4, 5, 3), dtype=np.float64)
        out[part] = (cols.reshape(-1, weights.shape[0]) @ weights + bias).reshape(-1, oh, ow, c_out)
    return out


def _depthwise_conv2d(call: _Call) -> np.ndarray:
    x, w = call.args[0], call.args[1]
    _, kh, kw, c_total = w.shape
    c_in = x.shape[3] if x.ndim == 4 else -1
    multiplier = int(call.attr("multiplier", 1))
    if w.shape[0] != 1 or c_in * multiplier != c_total:
        raise ValueError(f"input shape {list(x.shape)} and multiplier {multiplier} do not match 1HWC weights "
                         f"{list(w.shape)}")
    patches = _conv_windows(call, (kh, kw))            # [N, OH, OW, C, KH, KW]
    n, oh, ow = patches.shape[:3]
    # output channel c*multiplier + m reads input channel c
    weights = w.reshape(kh, kw, c_in, multiplier).transpose(2, 0, 1, 3).astype(np.float64)  # [C, KH, KW, M]
    bias = _bias(call, c_total).reshape(c_in, multiplier)
    out = np.empty((n, oh, ow, c_in, multiplier), np.float32)
    for part in _sample_slices(n, oh * ow * c_in * kh * kw * 8):
        cols = np.ascontiguousarray(patches[part], dtype=np.float64)
        for m in range(multiplier):
            out[part, ..., m] = np.einsum("nhwcij,cij->nhwc", cols, weights[..., m]) + bias[:, m]
    return out.reshape(n, oh, ow, c_total)


def _fully_connected(call: _Call) -> np.ndarray:
    x, w = call.args[0], call.args[1]
    n_out, n_in = w.shape
    if x.size % n_in:
        raise ValueError(f"input of {x.size} values cannot be read as rows of {n_in}")
    rows = x.reshape(-1, n_in).astype(np.float64)
    y = rows @ w.T.astype(np.float64) + _bias(call, n_out)
    return y.astype(np.float32).reshape(call.out_shape)


def _pool_geometry(call: _Call) -> tuple[tuple[int, int], tuple[int, int], list[int]]:
    kernel = _pair(call, "kernel")
    pad = [int(p) for p in call.attr("pad", [0, 0, 0, 0])]
    # With pads below the kernel size every window holds at least one input element
    if pad[0] >= kernel[0] or pad[1] >= kernel[0] or pad[2] >= kernel[1] or pad[3] >= kernel[1]:
        raise ValueError(f"pad {pad} is not smaller than the kernel {list(kernel)}")
    return kernel, _pair(call, "stride", (1, 1)), pad


def _avg_pool2d(call: _Call) -> np.ndarray:
    x = call.args[0]
    kernel, stride, pad = _pool_geometry(call)
    sums = _windows(x, kernel, stride, (1, 1), pad, 0.0).sum(axis=(4, 5), dtype=np.float64)
    # padding excluded: divide by the number of real input elements under each window
    inside = np.ones((1, x.shape[1], x.shape[2], 1), np.float64)
    counts = _windows(inside, kernel, stride, (1, 1), pad, 0.0).sum(axis=(4, 5))
    return (sums / counts).astype(np.float32)


def _max_pool2d(call: _Call) -> np.ndarray:
    kernel, stride, pad = _pool_geometry(call)
    return _windows(call.args[0], kernel, stride, (1, 1), pad, -np.inf).max(axis=(4, 5))


def _add(call: _Call) -> np.ndarray:
    return np.add(call.args[0], call.args[1])


def _sub(call: _Call) -> np.ndarray:
    return np.subtract(call.args[0], call.args[1])


def _mul(call: _Call) -> np.ndarray:
    return np.multiply(call.args[0], call.args[1])


def _softmax(call: _Call) -> np.ndarray:
    logits = call.args[0].astype(np.float64) * float(call.attr("beta", 1.0))
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def _reshape(call: _Call) -> np.ndarray:
    return call.args[0].reshape(_batched(list(call.attr("shape")), call.batch, call.op.outputs[0]))


def _identity(call: _Call) -> np.ndarray:
    # quantize / dequantize: the interpreter works on real values, where both are the identity
    return call.args[0]


def _pad(call: _Call) -> np.ndarray:
    x = call.args[0]
    pads = [(int(before), int(after)) for before, after in call.attr("pads")]
    if len(pads) != x.ndim or min(min(p) for p in pads) < 0:
        raise ValueError(f"pads {pads} do not fit an input of shape {list(x.shape)}")
    return np.pad(x, pads, constant_values=np.float32(call.attr("value", 0.0)))


def _mean(call: _Call) -> np.ndarray:
    axes = tuple(int(a) for a in call.attr("axes"))
    keepdims = bool(call.attr("keepdims", False))
    return call.args[0].mean(axis=axes, dtype=np.float64, keepdims=keepdims).astype(np.float32)


def _concat(call: _Call) -> np.ndarray:
    return np.concatenate(call.args, axis=int(call.attr("axis")))


def _logistic(call: _Call) -> np.ndarray:
    x = call.args[0].astype(np.float64)
    e = np.exp(-np.abs(x))  # never overflows; the two branches are the same function
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(np.float32)


def _tanh(call: _Call) -> np.ndarray:
    return np.tanh(call.args[0].astype(np.float64)).astype(np.float32)


def _relu(call: _Call) -> np.ndarray:
    return np.maximum(call.args[0], np.float32(0))


def _relu6(call: _Call) -> np.ndarray:
    return np.clip(call.args[0], np.float32(0), np.float32(6))


def _leaky_relu(call: _Call) -> np.ndarray:
    x = call.args[0]
    return np.where(x >= 0, x, x * np.float32(call.attr("alpha"))).astype(np.float32)


def _clip(call: _Call) -> np.ndarray:
    y = call.args[0]
    low, high = call.op.attrs.get("min"), call.op.attrs.get("max")
    if low is not None:
        y = np.maximum(y, np.float32(low))
    if high is not None:
        y = np.minimum(y, np.float32(high))
    return y


_OPS: dict[str, Callable[[_Call], np.ndarray]] = {
    "conv2d": _conv2d,
    "depthwise_conv2d": _depthwise_conv2d,
    "fully_connected": _fully_connected,
    "avg_pool2d": _avg_pool2d,
    "max_pool2d": _max_pool2d,
    "add": _add,
    "sub": _sub,
    "mul": _mul,
    "softmax": _softmax,
    "reshape": _reshape,
    "quantize": _identity,
    "dequantize": _identity,
    "pad": _pad,
    "mean": _mean,
    "concat": _concat,
    "logistic": _logistic,
    "tanh": _tanh,
    "relu": _relu,
    "relu6": _relu6,
    "leaky_relu": _leaky_relu,
    "clip": _clip,
}
assert set(_OPS) == set(ir.OP_TYPES), "every IR op type needs a reference implementation"
