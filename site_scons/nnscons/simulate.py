"""A numpy model of the quantized network, for searches that evaluate many quantization tables quickly.

Compiling and running the generated C for every candidate table is the truth but costs a second or more per
candidate; this runs a table in milliseconds. Each op is computed by the float reference interpreter on
*quantized* values: its inputs are the previous layers' outputs as the integer network holds them (dequantized),
its weights and biases are the quantized constants of ``qparams.npz`` (dequantized), and its output is rounded to
the output tensor's grid (round half away from zero, as the kernels' requantization) and clamped to the integer
type. For the power-of-two Q-formats on the s8/s16 kernels this is the C's arithmetic for convolutions and fully
connected layers: their integer accumulator is recovered from the float result (``acc = y / (s_in * s_w)``) and
requantized with the layer's multiplier and shift exactly as the kernels do it (:func:`requantize_s8`, the
double rounding of TFLite's MultiplyByQuantizedMultiplier; :func:`requantize_s16`, the 64-bit path of the s16
kernels, rounding half up; :func:`requantize_legacy`, the legacy q7/q15 kernels' ``NN_ROUND`` and shift). It differs
where the kernels round internally in other ways (average pooling's division, softmax's fixed-point exponent or
the legacy softmax's power-of-two approximation, the alignment shifts of an add), and where a 16-bit network's
accumulator exceeds float32's 24-bit mantissa, so outputs may differ by an LSB there.
``tests/test_experiments.py`` measures the agreement with the C.

Values are float32 between ops (as the reference interpreter); every value of a W-bit grid is exact in float32.
"""
from __future__ import annotations

import json
from typing import Any, Optional

import numpy as np

from . import ir, reference
from .fixedpoint import multiply_by_quantized_multiplier as requantize_s8   # the s8 kernels' requantization


def _round_half_away(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def fake_quantize(values: np.ndarray, tensor: dict[str, Any]) -> np.ndarray:
    """Real values on a tensor's integer grid and back (a tensor that is not quantized passes unchanged)."""
    if not tensor.get("scale") or tensor["dtype"] not in ("int8", "int16", "int32"):
        return values
    scale, zero_point = float(tensor["scale"][0]), int(tensor["zero_point"][0])
    info = np.iinfo(np.dtype(tensor["dtype"]))
    q = np.clip(_round_half_away(values.astype(np.float64) / scale) + zero_point, info.min, info.max)
    return (scale * (q - zero_point)).astype(np.float32)


# ---- the kernels' requantization (accumulator -> output integers) -------------------------------------------------------
_WEIGHTED = ("conv2d", "depthwise_conv2d", "fully_connected")


def requantize_s16(acc: np.ndarray, multiplier: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``arm_nn_requantize_s64``: the multiplier reduced to Q15, one shift rounding half up."""
    multiplier = multiplier.astype(np.int64)
    reduced = np.where(multiplier < 0x7FFF0000, (multiplier + (1 << 15)) >> 16, 0x7FFF)
    total = (15 - shift).astype(np.int64)
    return (acc.astype(np.int64) * reduced + np.left_shift(np.int64(1), total - 1)) >> total


def requantize_legacy(acc: np.ndarray, out_shift: int) -> np.ndarray:
    """The legacy q7/q15 kernels: the accumulator starts at ``NN_ROUND(out_shift)`` (half a unit) and wraps
    modulo 2^32 as the kernels' int32 sums do (q15 products reach 2^30: a few taps can overflow and flip the
    sign, the seed's "sign inversion"), then shifts right: one rounding, half up."""
    acc = acc.astype(np.int64) + ((1 << (out_shift - 1)) if out_shift > 0 else 0)
    acc = ((acc + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
    return acc >> out_shift


def requantize_layer(result: np.ndarray, layer: dict[str, Any], tensors: dict[str, Any],
                     api: str = "s8") -> Optional[np.ndarray]:
    """A conv / depthwise / fully connected float result on its output grid as the kernel computes it (None
    when the layer has no multipliers to apply)."""
    if not layer.get("weights"):
        return None
    x, w, y = tensors[layer["inputs"][0]], tensors[layer["weights"]], tensors[layer["outputs"][0]]
    if y["dtype"] not in ("int8", "int16"):
        return None
    info = np.iinfo(np.dtype(y["dtype"]))
    if api == "legacy" and "out_shift" in layer:
        acc = np.rint(result.astype(np.float64) * 2.0 ** (layer["fi"] + layer["fw"]))
        q = np.clip(requantize_legacy(acc, int(layer["out_shift"])), info.min, info.max)
        q = np.clip(q, layer.get("act_min", info.min), layer.get("act_max", info.max))   # the fused ReLU after
        return (q * 2.0 ** -layer["fo"]).astype(np.float32)
    if "multiplier" not in layer or "shift" not in layer:
        return None
    channels = result.shape[-1]
    w_scale = np.asarray(w["scale"], dtype=np.float64)
    multiplier = np.asarray(layer["multiplier"], dtype=np.int64)
    shift = np.asarray(layer["shift"], dtype=np.int64)
    if multiplier.size not in (1, channels) or w_scale.size not in (1, channels):
        return None
    acc = np.rint(result.astype(np.float64) / (float(x["scale"][0]) * w_scale))
    requantize = requantize_s8 if y["dtype"] == "int8" else requantize_s16
    q = requantize(acc, multiplier, shift) + int(layer.get("output_offset", y["zero_point"][0]))
    q = np.clip(q, layer.get("act_min", info.min), layer.get("act_max", info.max))
    return (float(y["scale"][0]) * (q - int(y["zero_point"][0]))).astype(np.float32)


def dequantized_constants(graph: ir.Graph, params: dict[str, np.ndarray], tables: dict[str, Any],
                          qparams: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every constant as the quantized network holds it, in real values (per-channel scales along their axis);
    constants the table leaves unquantized keep their real values."""
    real = reference.dequantize_params(graph, params)
    for name, q in qparams.items():
        tensor = tables["tensors"].get(name)
        if tensor is None or not tensor.get("scale") or name not in real:
            continue
        axis = tensor.get("axis")
        dequantized = ir.dequantize(q, tensor["scale"], tensor["zero_point"], None if axis is None else int(axis))
        real[name] = dequantized.astype(np.float32).reshape(real[name].shape)
    return real


def op_signature(tables: dict[str, Any], op: ir.Op) -> str:
    """Everything of a table that shapes one op's result (its layer entry, its tensors' formats)."""
    tensors = tables["tensors"]
    return json.dumps([tables["layers"].get(op.name), [tensors.get(t) for t in op.inputs + op.outputs]],
                      sort_keys=True)


def first_difference(graph: ir.Graph, a: dict[str, Any], b: dict[str, Any]) -> Optional[int]:
    """Index of the first op whose result the two tables may compute differently (None: they agree)."""
    for index, op in enumerate(graph.ops):
        if op_signature(a, op) != op_signature(b, op):
            return index
    return None


class Simulator:
    """Runs quantization tables of one graph on one batch of inputs (real values, IR layout)."""

    def __init__(self, graph: ir.Graph, params: dict[str, np.ndarray], inputs: dict[str, np.ndarray],
                 api: str = "s8") -> None:
        self.graph, self.params, self.inputs, self.api = graph, params, inputs, api
        self._subgraphs = {op.name: self._subgraph(op) for op in graph.ops}

    def _subgraph(self, op: ir.Op) -> ir.Graph:
        """One op as a graph of its own (so the reference interpreter runs it on values we choose)."""
        names = list(dict.fromkeys(op.inputs + op.outputs))
        data_inputs = [t for t in dict.fromkeys(op.inputs) if not self.graph.tensors[t].is_const]
        return ir.Graph(tensors={t: self.graph.tensors[t] for t in names}, ops=[op], inputs=data_inputs,
                        outputs=[op.outputs[0]], source=self.graph.source, source_file=self.graph.source_file)

    def run(self, tables: dict[str, Any], qparams: dict[str, np.ndarray], start: int = 0,
            previous: Optional[dict[str, np.ndarray]] = None) -> dict[str, np.ndarray]:
        """Every activation of the quantized network. With ``previous`` (the values of a run of another table
        that computes ops ``[0, start)`` identically) only ops from ``start`` on are recomputed."""
        tensors = tables["tensors"]
        consts = dequantized_constants(self.graph, self.params, tables, qparams)
        if previous is None or start == 0:
            values = {name: fake_quantize(x, tensors[name]) if name in tensors else x
                      for name, x in self.inputs.items()}
            start = 0
        else:
            values = dict(previous)
        for op in self.graph.ops[start:]:
            sub = self._subgraphs[op.name]
            op_consts = {t: consts[t] for t in op.inputs if self.graph.tensors[t].is_const}
            feeds = {t: values[t] for t in sub.inputs}
            out = op.outputs[0]
            result = reference.run(sub, op_consts, feeds)[out]
            exact = (requantize_layer(result, tables["layers"][op.name], tensors, self.api)
                     if op.type in _WEIGHTED else None)
            if exact is not None:
                values[out] = exact
            else:
                values[out] = fake_quantize(result, tensors[out]) if out in tensors else result
        return values
