"""What a conv or fully-connected layer absorbs from the nodes after it (all exact), and how the layer is emitted.

* ``Add``/``Sub``/``Mul``/``Div`` of a per-channel constant, or ``BatchNormalization``, that alone reads the layer's
  output: folded into the float weights and bias (:func:`fuse_followers`).
* ``Relu`` / ``Clip`` equal to a fused activation that alone reads an op's output: the op's ``activation``
  (:func:`take_activation`; the elementwise handlers use it too). In a QDQ model this only happens when the
  activation reads the *unquantized* output, which is exactly when fusing is required to keep the quantization
  semantics; ``Conv -> Q -> DQ -> Relu`` keeps an explicit ``relu`` op.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ... import ir
from .constants import Const
from .context import Context, const_array_of, const_tensor, emit_from, fail, set_value, shape_of, sole_consumer
from .decode import Node
from .layout import Value, ir_shape

FLT_MAX = 3.0e38                # Clip bounds at or beyond this are "unbounded"


@dataclass(eq=False)
class Layer:
    """A conv or fully-connected layer being assembled. ``weight`` has output channels on axis 0 (OIHW for convs,
    ``[out, in]`` for FC); ``out`` is the ONNX name of the layer's output so far (moves on as nodes fuse)."""

    kind: str
    weight: Const
    weight_label: str
    bias: Optional[Const]
    out: str
    nodes: list[Node]
    activation: str = "none"
    bias_label: str = ""

    def apply_affine(self, scale: np.ndarray, shift: np.ndarray) -> None:
        """Fold ``y * scale + shift`` (per output channel) into the float weights and bias."""
        w = self.weight.data.astype(np.float64)
        self.weight = Const((w * scale.reshape((-1,) + (1,) * (w.ndim - 1))).astype(np.float32))
        bias = self.bias.data.astype(np.float64) if self.bias is not None else np.zeros(len(scale))
        self.bias = Const((bias * scale + shift).astype(np.float32))


def fuse_followers(ctx: Context, layer: Layer, channel_axis: int) -> None:
    """Fold per-channel Add/Sub/Mul/BatchNormalization (float weights only), then a fused activation."""
    channels = layer.weight.data.shape[0]
    while not layer.weight.quantized and not (layer.bias is not None and layer.bias.quantized):
        found = sole_consumer(ctx, layer.out, ("Add", "Sub", "Mul", "Div", "BatchNormalization"))
        affine = channel_affine(ctx, found[1], layer.out, channels, channel_axis) if found else None
        if affine is None:
            break
        layer.apply_affine(*affine)
        ctx.done.add(found[0])
        layer.nodes.append(found[1])
        layer.out = found[1].outputs[0]
    layer.activation, layer.out, fused = take_activation(ctx, layer.out)
    layer.nodes.extend(fused)


def channel_affine(ctx: Context, node: Node, x: str, channels: int,
                   channel_axis: int) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """``(scale, shift)`` per channel if ``node`` computes ``x * scale + shift`` with constants, else None."""
    if node.op_type == "BatchNormalization":
        return batchnorm_affine(ctx, node, channels) if channel_axis == 1 and node.inputs[0] == x else None
    other = [n for n in node.inputs if n != x]
    if len(node.inputs) != 2 or len(other) != 1 or other[0] not in ctx.consts:
        return None
    if node.op_type in ("Sub", "Div") and node.inputs[0] != x:
        return None
    const = ctx.consts[other[0]]
    x_shape = shape_of(ctx, node, x)
    if const.quantized or const.data.ndim > len(x_shape) or shape_of(ctx, node, node.outputs[0]) != x_shape:
        return None
    c = const.data.reshape((1,) * (len(x_shape) - const.data.ndim) + const.data.shape).astype(np.float64)
    per_channel = c.shape[channel_axis] in (1, channels)
    if not per_channel or any(d != 1 for k, d in enumerate(c.shape) if k != channel_axis):
        return None
    vec = np.broadcast_to(c.reshape(-1), (channels,))
    ones, zeros = np.ones(channels), np.zeros(channels)
    if node.op_type == "Div" and np.any(vec == 0):
        return None
    return {"Add": (ones, vec), "Sub": (ones, -vec), "Mul": (vec, zeros), "Div": (1.0 / vec, zeros)}[node.op_type]


def batchnorm_affine(ctx: Context, node: Node, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """``(scale, shift)`` per channel of an inference-mode BatchNormalization with constant parameters."""
    if node.attrs.get("training_mode", 0) or any(o for o in node.outputs[1:]):
        raise fail(ctx, node, "BatchNormalization in training mode is not supported")
    if not all(n in ctx.consts and not ctx.consts[n].quantized for n in node.inputs[1:5]):
        raise fail(ctx, node, "BatchNormalization needs constant scale, bias, mean and variance")
    gamma, beta, mean, var = (ctx.consts[n].data.astype(np.float64).reshape(-1) for n in node.inputs[1:5])
    if not all(v.size == channels for v in (gamma, beta, mean, var)):
        raise fail(ctx, node, f"BatchNormalization parameters do not have {channels} channels")
    scale = gamma / np.sqrt(var + float(node.attrs.get("epsilon", 1e-5)))
    return scale, beta - mean * scale


def take_activation(ctx: Context, out: str) -> tuple[str, str, list[Node]]:
    """A Relu/Clip that alone reads ``out`` and equals a fused activation: (activation, new output, nodes)."""
    found = sole_consumer(ctx, out, ("Relu", "Clip"))
    if found is None:
        return "none", out, []
    pos, node = found
    activation = "relu" if node.op_type == "Relu" else clip_activation(*clip_bounds(ctx, node))
    if activation is None:
        return "none", out, []
    ctx.done.add(pos)
    return activation, node.outputs[0], [node]


def clip_bounds(ctx: Context, node: Node) -> tuple[Optional[float], Optional[float]]:
    """A Clip's (min, max), None for an unbounded side."""
    if ctx.prepared.opset < 11:
        low, high = node.attrs.get("min"), node.attrs.get("max")
    else:
        low = float(const_array_of(ctx, node, node.input(1), "min").ravel()[0]) if node.input(1) else None
        high = float(const_array_of(ctx, node, node.input(2), "max").ravel()[0]) if node.input(2) else None
    low = None if low is None or low <= -FLT_MAX else float(low)
    high = None if high is None or high >= FLT_MAX else float(high)
    return low, high


def clip_activation(low: Optional[float], high: Optional[float]) -> Optional[str]:
    """The fused activation equal to clipping to [low, high], if there is one."""
    for name, bounds in ir.ACTIVATION_RANGES.items():
        if name != "none" and (low, high) == bounds:
            return name
    return None


def emit_layer(ctx: Context, layer: Layer, x_ir: str, ir_weight: Const, attrs: dict[str, Any],
               out_perm: tuple[int, ...]) -> None:
    """Emit the assembled layer reading ``x_ir`` with its weights already in the IR layout."""
    x_tensor = ctx.tensors[x_ir]
    if ir_weight.quantized and x_tensor.quant is None:
        raise fail(ctx, layer.nodes[0], "hybrid model (int8 weights, float activations) is not supported")
    if x_tensor.quant is not None and not ir_weight.quantized:
        raise fail(ctx, layer.nodes[0], "float weights with quantized activations are not supported")
    inputs = [x_ir, const_tensor(ctx, layer.weight_label, ir_weight)]
    if layer.bias is not None:
        inputs.append(const_tensor(ctx, layer.bias_label or layer.weight_label + "_bias", layer.bias))
    attrs = dict(attrs, activation=layer.activation)
    out_shape = ir_shape(shape_of(ctx, layer.nodes[-1], layer.out), out_perm)
    out = emit_from(ctx, layer.kind, inputs, layer.out, out_shape, attrs, layer.nodes)
    set_value(ctx, layer.out, Value(out, out_perm))
