"""Code generation for the legacy q7/q15 CMSIS-NN API (``api=legacy``): the seed guide's power-of-two kernels.

With ``quant=q7`` or ``q15`` and ``api=legacy`` the network runs on the q7/q15 functions of CMSIS_5 5.9.0 (CMSIS-NN
3.1.0, the last release that has them; nnscons' portable ``cmsis/`` implements them too). Every tensor is a
Q-format (real = q * 2^-n, no zero point) and every conv / FC layer gets its ``bias_shift = (fi + fw) - fb`` and
``out_shift = (fi + fw) - fo`` from ``qtable.json``. This module is a backend of :mod:`nnscons.codegen`: the C API,
the header, the weights file, the arena plan, the absorbed float conversions and the trace hook are shared; only the
layer calls (``templates/legacy_layers.j2``) and the ``_model.c`` preamble (``templates/legacy_model.c.j2``) differ.

How each IR op is expressed (the first variant whose constraints the layer meets, in the order of
:func:`nnscons.legacy_layouts.pick_conv_function`, checked as Arm's DSP build checks them, so the same code runs
on Arm's library on a Cortex-M4 as on the portable one):

=====================  ==============================================================================================
``conv2d``             ``arm_convolve_1x1_HWC_q7_fast_nonsquare`` / ``_HWC_q7_RGB`` / ``_q7_fast`` /
                       ``_q7_fast_nonsquare`` / ``_q7_basic`` / ``_q7_basic_nonsquare``; q15: ``_HWC_q15_fast`` /
                       ``_q15_fast_nonsquare`` / ``_q15_basic``. Weights OHWI (the IR's layout). No dilation, no
                       groups, batch 1.
``depthwise_conv2d``   ``arm_depthwise_separable_conv_HWC_q7`` (``_nonsquare``), q7 and channel multiplier 1 only.
``fully_connected``    ``arm_fully_connected_q7_opt`` / ``arm_fully_connected_q15_opt``, the weights interleaved by
                       :func:`~nnscons.legacy_layouts.interleave_fc_weights`; one call per batch row.
fused ``relu``         ``arm_relu_q7`` / ``arm_relu_q15`` in place on the layer's output; ``relu6`` and
                       ``relu_n1_to_1`` clamp in a generated loop (bounds from the table).
``max_pool2d``         ``arm_maxpool_q7_HWC`` / ``arm_avepool_q7_HWC`` when square (input, kernel, stride, padding,
``avg_pool2d``         output) with padding <= stride; otherwise, and for q15 (the API has no q15 pooling), a
                       generated loop with the reference arithmetic: max, or sum / count with C's truncating
                       division, over the taps inside the input. The output keeps the input's format. Arm's DSP
                       build pools in place and destroys its input: an input still needed later is copied to the
                       scratch memory first. (Arm's DSP ``arm_avepool_q7_HWC`` truncates after each axis, so on a
                       DSP target with Arm's library its averages can differ by one from the reference.)
``softmax``            ``arm_softmax_q7`` (``_with_batch_q7``) / ``arm_softmax_q15``, output Q0.7 / Q0.15. These are
                       base-2 softmaxes of the raw integers: on an input with f fractional bits they compute
                       softmax(2^f ln2 * v), whatever beta. Option ``legacy_softmax``:
                       ``input`` (default), the seed's method: the kernel reads the logits in the format their layer
                       wrote them, so the largest logit wins at that layer's precision (a q15 FC output has ~10
                       fractional bits), and the probabilities are much sharper than float's (the runners-up
                       within 16 steps of the winner get the rest). ``calibrated``: the input is first brought to
                       f = round(log2(beta log2 e)) fractional bits (1 for beta = 1: effective beta 1.39) by a
                       shift (right: rounded half up; left: saturated) into the output buffer, and the kernel runs
                       in place there: the probabilities closest to float's the base-2 kernel can give
                       (:func:`softmax_input_frac_bits`), at the price of ties between logits that round to the
                       same half unit (digits_cnn q15: 2 of 360 test images tie, one of them then loses its class).
``logistic``, ``tanh`` ``arm_nn_activations_direct_q7`` / ``_q15`` (``ARM_SIGMOID`` / ``ARM_TANH``) in place on the
                       output, output Q0.7 / Q0.15. Their tables cover [-8, 8): an input with more than 3 integer
                       bits (``int_width`` in the table) is first shifted to Q3.x with saturation (the functions are
                       flat beyond 8 to within an LSB of Q0.7; for q15 sigmoid(8) = 1 - 3.4e-4).
``add``, ``sub``,      a generated loop (the legacy API has no element-wise kernels), in the table's formats: with
``mul``                ``align_shift`` and ``out_shift`` from ``qtable.json``, y = sat(((a << (t - align_a)) +/-
                       (b << (t - align_b)) + NN_ROUND(s)) >> s), t = max(align), s = out_shift + t (one rounding,
                       half up like the kernels); mul: y = sat((a * b + NN_ROUND(out_shift)) >> out_shift). Fused
                       activations clamp to the table's bounds. Same-shaped activation inputs only.
``relu``               copied to the output, then ``arm_relu_q7`` / ``_q15`` in place.
``relu6``, ``clip``    the clamp loop shared with the s8 backend.
``reshape``            no code: the output aliases the input.
=====================  ==============================================================================================

Anything else (pad, mean, concat, leaky_relu, a quantize or dequantize between layers, q15 depthwise, a channel
multiplier, dilation) is an :class:`~nnscons.errors.NnsconsError` naming the layer and the reason.

Header: Arm's CMSIS_5 5.9.0 declares the legacy functions in ``arm_nnfunctions.h``; the portable library keeps them
in ``arm_nnfunctions_legacy.h``. The generated C includes ``arm_nnfunctions.h`` and then, only when that was the
portable one (recognized by its include guard ``NNSCONS_ARM_NNFUNCTIONS_H``) or when ``NNSCONS_LEGACY_HEADER`` is
defined, ``arm_nnfunctions_legacy.h``: no compiler extension (``__has_include``) is needed and both libraries
build unchanged.

Scratch memory follows the activation arena, as for the s8 backend: first the copies of pooling inputs that Arm's
in-place pooling would destroy (every build), then the ``bufferA`` / ``vec_buffer`` Arm's DSP code paths use
(sized by :func:`~nnscons.legacy_layouts.legacy_buffer_sizes`; reserved and passed only when the target has the
DSP extension, NULL otherwise: Arm's pure-C paths and the portable library read none).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from . import codegen, ir, kernels, legacy_layouts
from .errors import NnsconsError
from .legacy_layouts import LegacyConvGeometry, ScratchBuffer
from .options import LEGACY_SOFTMAX
from .planner import align

BITS = {"q7": 8, "q15": 16}
UINT16_MAX = 0xFFFF
CHUNK = 32768                  # arm_relu_* and the direct activations count in uint16_t: longer tensors in chunks
DSP_CHECK = "(defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1)) || defined(ARM_MATH_DSP)"
TEMPLATES = {**codegen.TEMPLATES, "model": "legacy_model.c.j2"}

_ACTIVATION_TYPE = {"logistic": "ARM_SIGMOID", "tanh": "ARM_TANH"}
_TABLE_INT_WIDTH = 3           # the direct activation tables cover Q3.x inputs ([-8, 8))


def softmax_input_frac_bits(beta: float) -> int:
    """The fractional bits the legacy softmax input is given: the kernels compute 2^q on the raw integers, i.e.
    softmax(2^f ln2 * v) for f fractional bits; f = round(log2(beta log2 e)) makes that closest to softmax(beta v)."""
    return int(round(math.log2(beta * math.log2(math.e))))


@dataclass
class LegacyLayer:
    """What a legacy layer needs besides its function (kept in :attr:`kernels.Kernel.geometry`)."""

    geometry: Optional[LegacyConvGeometry] = None
    buffers: dict[str, ScratchBuffer] = field(default_factory=dict)   # Arm's DSP scratch arguments
    copy_bytes: int = 0                                                # input copy (in-place pooling)
    note: str = ""                                                     # why a generated loop (C comment)

    @property
    def arm_bytes(self) -> int:
        """Bytes of Arm's scratch arguments, laid out one after the other (16-byte aligned)."""
        return sum(align(b.nbytes) for b in self.buffers.values())


def _call(function: str, groups: list[tuple[list[str], list[Any]]], status: bool = False,
          loop: Optional[tuple[str, int]] = None) -> dict[str, Any]:
    """One C statement of a layer: ``function`` with its arguments in commented groups (parameter names)."""
    return {"kind": "call", "function": function, "status": status,
            "groups": [{"params": ", ".join(names), "args": ", ".join(str(v) for v in values)}
                       for names, values in groups],
            "loop": {"var": loop[0], "count": loop[1]} if loop else None}


def _memcpy(destination: str, source: str, nbytes: int) -> dict[str, Any]:
    return {"kind": "memcpy", "destination": destination, "source": source, "bytes": nbytes, "loop": None}


def _chunks(size: int) -> list[tuple[int, int]]:
    return [(start, min(CHUNK, size - start)) for start in range(0, size, CHUNK)]


def _at(pointer: str, offset: int) -> str:
    return f"{pointer} + {offset}" if offset else pointer


class LegacyModelCode(codegen.ModelCode):
    """The legacy q7/q15 backend (see the module docstring)."""

    templates = TEMPLATES

    def __init__(self, name: str, graph: ir.Graph, qtable: dict[str, Any], qparams: dict[str, np.ndarray],
                 hash_text: str, softmax: str = "input") -> None:
        if softmax not in LEGACY_SOFTMAX:
            raise NnsconsError(None, f"legacy_softmax={softmax!r} is not one of {', '.join(LEGACY_SOFTMAX)}")
        self.softmax = softmax
        scheme = qtable.get("scheme")
        if scheme not in BITS:
            raise NnsconsError(None, f"api=legacy: the legacy q7/q15 CMSIS-NN kernels compute in power-of-two "
                                     f"Q-formats; use quant=q7 or quant=q15 (this table is {scheme})")
        self.suffix = str(scheme)
        self.bits = BITS[self.suffix]
        self.dtype = "int8" if self.bits == 8 else "int16"
        self.ctype = codegen.CTYPES[self.dtype]
        self.helpers: set[str] = set()           # generated loops the model needs: shift, pool, add, mul, clamp
        self.copy_region = 0
        super().__init__(name, graph, qtable, qparams, hash_text)

    # ---- kernels -------------------------------------------------------------------------------------------------
    def unsupported(self, op: ir.Op, why: str = "") -> NnsconsError:
        return kernels.unsupported(op, f"legacy {self.suffix}", why)

    def _kernel(self, op: ir.Op) -> kernels.Kernel:
        """The legacy function (or generated loop) for one op, with its scratch needs."""
        for t in op.inputs + op.outputs:
            if not self.graph.tensors[t].is_const and self.act_dtype(t) != self.dtype:
                raise self.unsupported(op, f"tensor {t} is {self.act_dtype(t)}, not the {self.dtype} of "
                                           f"quant={self.suffix}")
        chooser = {"conv2d": self._conv_kernel, "depthwise_conv2d": self._conv_kernel,
                   "fully_connected": self._fc_kernel, "max_pool2d": self._pool_kernel,
                   "avg_pool2d": self._pool_kernel}.get(op.type)
        if chooser is not None:
            return chooser(op)
        simple = {"softmax": ("softmax", "arm_softmax_" + self.suffix),
                  "logistic": ("activation", "arm_nn_activations_direct_" + self.suffix),
                  "tanh": ("activation", "arm_nn_activations_direct_" + self.suffix),
                  "add": ("eltwise", ""), "sub": ("eltwise", ""), "mul": ("eltwise", ""),
                  "relu": ("relu", "arm_relu_" + self.suffix), "relu6": ("clamp", ""), "clip": ("clamp", ""),
                  "reshape": ("alias", "")}
        if op.type not in simple:
            raise self.unsupported(op, _WHY_UNSUPPORTED.get(op.type, "the legacy API has no such kernel"))
        kind, function = simple[op.type]
        note = {"eltwise": "generated loop: the legacy API has no element-wise kernels",
                "clamp": "generated clamp loop"}.get(kind, "")
        return self._make_kernel(kind, function, LegacyLayer(note=note))

    def _make_kernel(self, kind: str, function: str, layer: LegacyLayer) -> kernels.Kernel:
        dsp = layer.copy_bytes + layer.arm_bytes
        return kernels.Kernel(kind, function, self.suffix, {"c": layer.copy_bytes, "dsp": dsp, "mve": dsp}, layer)

    def _check_uint16(self, op: ir.Op, **values: int) -> None:
        for what, value in values.items():
            if not 0 <= int(value) <= UINT16_MAX:
                raise self.unsupported(op, f"its {what} {value} does not fit the uint16_t argument")

    def _conv_kernel(self, op: ir.Op) -> kernels.Kernel:
        x, w, y = (self.graph.tensors[t] for t in (op.inputs[0], op.inputs[1], op.outputs[0]))
        depthwise = op.type == "depthwise_conv2d"
        if x.shape[0] != 1:
            raise self.unsupported(op, "the legacy kernels take batch 1")
        if tuple(op.attrs.get("dilation", [1, 1])) != (1, 1):
            raise self.unsupported(op, "the legacy kernels have no dilation")
        if not depthwise and w.shape[3] != x.shape[3]:
            raise self.unsupported(op, "grouped convolution (the legacy kernels read every input channel)")
        if depthwise and self.bits == 16:
            raise self.unsupported(op, "the legacy API has no q15 depthwise convolution")
        pad = op.attrs.get("pad", [0, 0, 0, 0])
        kh, kw = (w.shape[1], w.shape[2])
        g = LegacyConvGeometry(ch_im_in=x.shape[3], ch_im_out=y.shape[3], dim_im_in=(x.shape[1], x.shape[2]),
                               dim_kernel=(kh, kw), padding=(pad[0], pad[2]),
                               stride=tuple(op.attrs.get("stride", [1, 1])), dim_im_out=(y.shape[1], y.shape[2]))
        self._check_geometry(op, g)
        function = legacy_layouts.pick_conv_function(g, bits=self.bits, depthwise=depthwise)
        if function is None:
            family = [f for f in legacy_layouts.CONV_FUNCTIONS
                      if ("depthwise" in f) == depthwise and f"_{self.suffix}" in f]
            reasons = "; ".join(f"{f}: {legacy_layouts.constraint_error(f, g)}" for f in family)
            raise self.unsupported(op, f"no legacy function accepts its shape ({reasons})")
        layer = LegacyLayer(g, legacy_layouts.legacy_buffer_sizes(function, g))
        return self._make_kernel("depthwise" if depthwise else "conv", function, layer)

    def _check_geometry(self, op: ir.Op, g: LegacyConvGeometry) -> None:
        self._check_uint16(op, channels=max(g.ch_im_in, g.ch_im_out), size=max(g.dim_im_in + g.dim_im_out),
                           kernel=max(g.dim_kernel), padding=max(g.padding), stride=max(g.stride))

    def _fc_kernel(self, op: ir.Op) -> kernels.Kernel:
        rows, cols = self.graph.tensors[op.inputs[1]].shape
        self._check_uint16(op, **{"input length": cols, "output length": rows})
        function = f"arm_fully_connected_{self.suffix}_opt"
        return self._make_kernel("fc", function, LegacyLayer(None, legacy_layouts.legacy_buffer_sizes(
            function, dim_vec=cols)))

    def _pool_kernel(self, op: ir.Op) -> kernels.Kernel:
        x, y = self.graph.tensors[op.inputs[0]], self.graph.tensors[op.outputs[0]]
        if x.shape[0] != 1 or len(x.shape) != 4:
            raise self.unsupported(op, "the legacy pooling takes one HWC image (batch 1)")
        pad = op.attrs.get("pad", [0, 0, 0, 0])
        g = LegacyConvGeometry(x.shape[3], y.shape[3], (x.shape[1], x.shape[2]), tuple(op.attrs["kernel"]),
                               (pad[0], pad[2]), tuple(op.attrs.get("stride", [1, 1])), (y.shape[1], y.shape[2]))
        self._check_geometry(op, g)
        function = ""
        if self.bits == 8 and g.is_square and g.padding[0] <= g.stride[0] and not _has_empty_window(g):
            function = "arm_maxpool_q7_HWC" if op.type == "max_pool2d" else "arm_avepool_q7_HWC"
        if not function:
            self.helpers.add("pool")
            why = ("the legacy API has no q15 pooling" if self.bits == 16 else
                   "arm_*pool_q7_HWC need a square layer with padding <= stride and no window in the padding")
            return self._make_kernel("pool", "", LegacyLayer(g, note=f"generated loop: {why}"))
        copy = x.size * (self.bits // 8) if self._read_later(op) else 0
        return self._make_kernel("pool", function, LegacyLayer(g, legacy_layouts.legacy_buffer_sizes(function, g),
                                                               copy))

    def _read_later(self, op: ir.Op) -> bool:
        """Whether the op's input is still needed after it (read by a later op or a network output)."""
        buffer = self.plan.by_tensor[op.inputs[0]]
        position = self.graph.ops.index(op)
        return buffer.last > position or any(t in self.graph.outputs for t in buffer.tensors)

    def _scratch_sizes(self) -> dict[str, int]:
        """Copies first (every build), then Arm's DSP buffers; the region is the largest any layer needs."""
        layers = [k.geometry for k in self.kernels.values() if isinstance(k.geometry, LegacyLayer)]
        self.copy_region = align(max((layer.copy_bytes for layer in layers), default=0))
        dsp = self.copy_region + max((layer.arm_bytes for layer in layers), default=0)
        return {"c": self.copy_region, "dsp": dsp, "mve": dsp}

    def _buffer_arguments(self, layer: LegacyLayer) -> list[str]:
        """The C expressions of a call's scratch arguments, in signature order."""
        values, offset = [], self.copy_region
        for buffer in layer.buffers.values():
            if buffer.count == 0:
                values.append("NULL")
                continue
            ctype = "int16_t" if buffer.ctype == "q15_t" else "int8_t"
            values.append(f"NNSCONS_ARM_BUFFER({ctype}, {offset})")
            offset += align(buffer.nbytes)
        return values

    # ---- constants -----------------------------------------------------------------------------------------------
    def _weights(self, op: ir.Op, values: Optional[np.ndarray] = None, layout: str = "") -> str:
        w = op.inputs[1]
        data = self.qparam(op, w)
        if data.dtype != np.dtype(self.dtype):
            raise self.unsupported(op, f"its weights are {data.dtype}, the legacy {self.suffix} kernels take "
                                       f"{self.dtype} (rebuild the quantization table with api=legacy)")
        return self.constant(w, f"{self.name}_{op.name}_weights", self.ctype, data if values is None else values,
                             [f"{op.name} weights: {self.tensor_text(w)}, {layout}"])

    def _bias(self, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel, prefix: str,
              channels: int) -> dict[str, Any]:
        """The bias in the activations' word size (the kernels shift it left by bias_shift); a layer without bias
        gets zeros (the kernels always read one)."""
        b = q.get("bias")
        if not b:
            name = self.constant(f"{op.name}.zero_bias", f"{prefix}_bias", self.ctype,
                                 np.zeros(channels, self.dtype), [f"{op.name}: no bias in the model (zeros)"])
            return {"bias": name}
        values = self.qparam(op, b)
        if values.dtype != np.dtype(self.dtype):
            raise self.unsupported(op, f"its bias is {values.dtype}, the legacy {self.suffix} kernels take "
                                       f"{self.dtype} (rebuild the quantization table with api=legacy)")
        name = self.constant(b, f"{prefix}_bias", self.ctype, values.reshape(-1),
                             [f"{op.name} bias: {self.tensor_text(b)}, shifted left by bias_shift "
                              f"{q['bias_shift']} in the kernel"])
        return {"bias": name}

    def _shifts(self, op: ir.Op, q: dict[str, Any]) -> tuple[int, int]:
        """bias_shift and out_shift from the table, checked against the seed's formulas."""
        bias_shift, out_shift = int(q["bias_shift"]), int(q["out_shift"])
        fi, fw, fb, fo = (q.get(k) for k in ("fi", "fw", "fb", "fo"))
        if (fb is not None and bias_shift != fi + fw - fb) or out_shift != fi + fw - fo:
            raise NnsconsError(None, f"codegen: layer {op.name}: the table's shifts ({bias_shift}, {out_shift}) do "
                                     f"not follow from its formats; rebuild qtable.json")
        return bias_shift, out_shift

    # ---- layers --------------------------------------------------------------------------------------------------
    def _comment(self, op: ir.Op, kernel: kernels.Kernel) -> list[str]:
        lines = super()._comment(op, kernel)
        if kernel.geometry.note:
            lines.append(f"  {kernel.geometry.note}")
        return lines

    def _layer(self, op: ir.Op) -> dict[str, Any]:
        ctx = super()._layer(op)
        ctx.setdefault("steps", [])
        return ctx

    def _frac(self, tensor: str) -> int:
        return int(self.tq(tensor)["frac_bits"])

    def _same_format(self, op: ir.Op) -> None:
        if self._frac(op.inputs[0]) != self._frac(op.outputs[0]):
            raise self.unsupported(op, "its input and output Q-formats differ")

    def _activation_steps(self, op: ir.Op, q: dict[str, Any], pointer: str, size: int) -> list[dict[str, Any]]:
        """A fused activation, in place on the layer's output."""
        activation = op.attrs.get("activation", "none")
        if activation == "none":
            return []
        if activation == "relu":
            return [_call(f"arm_relu_{self.suffix}", [(["data", "size"], [_at(pointer, start), count])])
                    for start, count in _chunks(size)]
        return [self._clamp_call(pointer, pointer, size, q)]

    def _clamp_call(self, source: str, destination: str, size: int, q: dict[str, Any]) -> dict[str, Any]:
        self.helpers.add("clamp")
        suffix = "s8" if self.bits == 8 else "s16"
        return _call(f"{self.name}_clamp_{suffix}", [(["x", "y", "count"], [source, destination, size]),
                                                      (["lo", "hi"], [q["act_min"], q["act_max"]])])

    def _layer_conv(self, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
        layer: LegacyLayer = kernel.geometry
        g = layer.geometry
        prefix = f"{self.name}_{op.name}"
        layout = "[ky][kx][ch] (depthwise)" if kernel.kind == "depthwise" else "OHWI"
        weights = self._weights(op, layout=layout)
        bias = self._bias(op, q, kernel, prefix, g.ch_im_out)["bias"]
        bias_shift, out_shift = self._shifts(op, q)
        x, y = self.pointers[op.inputs[0]], self.pointers[op.outputs[0]]
        buffer_a, buffer_b = self._buffer_arguments(layer)
        if kernel.function in legacy_layouts.SQUARE_CONV:
            groups = [(["Im_in", "dim_im_in", "ch_im_in"], [x, g.dim_im_in[0], g.ch_im_in]),
                      (["wt", "ch_im_out", "dim_kernel", "padding", "stride"],
                       [weights, g.ch_im_out, g.dim_kernel[0], g.padding[0], g.stride[0]]),
                      (["bias", "bias_shift", "out_shift"], [bias, bias_shift, out_shift]),
                      (["Im_out", "dim_im_out"], [y, g.dim_im_out[0]])]
        else:  # the _nonsquare functions take x (width) before y (height)
            groups = [(["Im_in", "dim_im_in_x", "dim_im_in_y", "ch_im_in"],
                       [x, g.dim_im_in[1], g.dim_im_in[0], g.ch_im_in]),
                      (["wt", "ch_im_out", "dim_kernel_x", "dim_kernel_y"],
                       [weights, g.ch_im_out, g.dim_kernel[1], g.dim_kernel[0]]),
                      (["padding_x", "padding_y", "stride_x", "stride_y"],
                       [g.padding[1], g.padding[0], g.stride[1], g.stride[0]]),
                      (["bias", "bias_shift", "out_shift"], [bias, bias_shift, out_shift]),
                      (["Im_out", "dim_im_out_x", "dim_im_out_y"], [y, g.dim_im_out[1], g.dim_im_out[0]])]
        groups.append((["bufferA", "bufferB"], [buffer_a, buffer_b]))
        size = self.graph.tensors[op.outputs[0]].size
        return {"steps": [_call(kernel.function, groups, status=True)] + self._activation_steps(op, q, y, size)}

    _layer_depthwise = _layer_conv

    def _layer_fc(self, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
        rows, cols = self.graph.tensors[op.inputs[1]].shape
        numel = self.graph.tensors[op.inputs[0]].size
        if numel % cols:
            raise self.unsupported(op, f"its input has {numel} values, not a multiple of {cols}")
        batches = numel // cols
        matrix = self.qparam(op, op.inputs[1])
        weights = self._weights(op, legacy_layouts.interleave_fc_weights(kernel.function, matrix),
                                f"[out][in] interleaved for {kernel.function}")
        bias = self._bias(op, q, kernel, f"{self.name}_{op.name}", rows)["bias"]
        bias_shift, out_shift = self._shifts(op, q)
        x, y = self.pointers[op.inputs[0]], self.pointers[op.outputs[0]]
        (vec_buffer,) = self._buffer_arguments(kernel.geometry)
        loop = ("row", batches) if batches > 1 else None
        pv, pout = (f"{x} + row * {cols}", f"{y} + row * {rows}") if loop else (x, y)
        call = _call(kernel.function, [(["pV", "pM", "dim_vec", "num_of_rows"], [pv, weights, cols, rows]),
                                       (["bias_shift", "out_shift", "bias"], [bias_shift, out_shift, bias]),
                                       (["pOut", "vec_buffer"], [pout, vec_buffer])], status=True, loop=loop)
        return {"steps": [call] + self._activation_steps(op, q, y, rows * batches)}

    def _layer_pool(self, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
        self._same_format(op)
        layer: LegacyLayer = kernel.geometry
        g = layer.geometry
        x, y = self.pointers[op.inputs[0]], self.pointers[op.outputs[0]]
        steps = []
        if not kernel.function:
            steps.append(_call(f"{self.name}_pool_{self.suffix}", [
                (["x", "in_h", "in_w", "channels"], [x, g.dim_im_in[0], g.dim_im_in[1], g.ch_im_in]),
                (["kernel_h", "kernel_w", "pad_top", "pad_left", "stride_h", "stride_w"],
                 [g.dim_kernel[0], g.dim_kernel[1], g.padding[0], g.padding[1], g.stride[0], g.stride[1]]),
                (["out_h", "out_w", "average", "y"], [g.dim_im_out[0], g.dim_im_out[1],
                                                      int(op.type == "avg_pool2d"), y])]))
        else:
            source = x
            if layer.copy_bytes:
                steps.append(_memcpy("scratch", x, layer.copy_bytes))
                source = f"({self.ctype} *)(void *)scratch"
            (buffer_a,) = self._buffer_arguments(layer)
            steps.append(_call(kernel.function, [
                (["Im_in", "dim_im_in", "ch_im_in"], [source, g.dim_im_in[0], g.ch_im_in]),
                (["dim_kernel", "padding", "stride", "dim_im_out"],
                 [g.dim_kernel[0], g.padding[0], g.stride[0], g.dim_im_out[0]]),
                (["bufferA", "Im_out"], [buffer_a, y])]))
        size = self.graph.tensors[op.outputs[0]].size
        return {"steps": steps + self._activation_steps(op, q, y, size)}

    def _layer_softmax(self, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
        x_tensor = self.graph.tensors[op.inputs[0]]
        beta = float(op.attrs.get("beta", 1.0))
        if not beta > 0:
            raise self.unsupported(op, f"softmax with beta {beta}")
        if self._frac(op.outputs[0]) != self.bits - 1:
            raise self.unsupported(op, f"its output must be Q0.{self.bits - 1}")
        dim = int(x_tensor.shape[-1]) if x_tensor.shape else 1
        rows = x_tensor.size // max(dim, 1)
        self._check_uint16(op, **{"row length": dim, "row count": rows})
        x, y = self.pointers[op.inputs[0]], self.pointers[op.outputs[0]]
        steps, source = [], x
        shift = 0
        if self.softmax == "calibrated":
            shift = self._clamped_shift(self._frac(op.inputs[0]) - softmax_input_frac_bits(beta))
        if shift:
            steps.append(self._shift_call(x, y, x_tensor.size, shift))
            source = y
        if self.bits == 8 and rows > 1:
            steps.append(_call("arm_softmax_with_batch_q7", [(["vec_in", "nb_batches", "dim_vec", "p_out"],
                                                              [source, rows, dim, y])]))
        else:
            loop = ("row", rows) if rows > 1 else None
            src, dst = (f"{source} + row * {dim}", f"{y} + row * {dim}") if loop else (source, y)
            steps.append(_call(kernel.function, [(["vec_in", "dim_vec", "p_out"], [src, dim, dst])], loop=loop))
        return {"steps": steps}

    def _clamped_shift(self, shift: int) -> int:
        """A shift for the shift loop, limited to what still changes a saturated W-bit result (and keeps the
        int32 arithmetic in range): right by at most W, left by at most W - 1."""
        return max(-(self.bits - 1), min(self.bits, shift))

    def _shift_call(self, source: str, destination: str, size: int, shift: int) -> dict[str, Any]:
        self.helpers.add("shift")
        return _call(f"{self.name}_shift_{self.suffix}", [(["x", "y", "count", "shift"],
                                                            [source, destination, size, shift])])

    def _layer_activation(self, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
        if self._frac(op.outputs[0]) != self.bits - 1:
            raise self.unsupported(op, f"its output must be Q0.{self.bits - 1}")
        int_width = int(q.get("int_width", self.bits - 1 - self._frac(op.inputs[0])))
        table_width = max(0, min(_TABLE_INT_WIDTH, int_width))
        size = self.graph.tensors[op.outputs[0]].size
        x, y = self.pointers[op.inputs[0]], self.pointers[op.outputs[0]]
        shift = self._clamped_shift(table_width - int_width)
        steps = [self._shift_call(x, y, size, shift) if shift else _memcpy(y, x, size * self.bits // 8)]
        steps += [_call(kernel.function, [(["data", "size", "int_width", "type"],
                                           [_at(y, start), count, table_width, _ACTIVATION_TYPE[op.type]])])
                  for start, count in _chunks(size)]
        return {"steps": steps}

    def _layer_eltwise(self, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
        shapes = {tuple(self.graph.tensors[t].shape) for t in op.inputs + op.outputs}
        if len(shapes) != 1 or any(self.graph.tensors[t].is_const for t in op.inputs):
            raise self.unsupported(op, "the generated element-wise loop needs two same-shaped activation inputs "
                                       "(no broadcasting, no constants)")
        size = self.graph.tensors[op.outputs[0]].size
        a, b, y = (self.pointers[t] for t in (op.inputs[0], op.inputs[1], op.outputs[0]))
        clamp = (["lo", "hi"], [q["act_min"], q["act_max"]])
        if op.type == "mul":
            out_shift = int(q["out_shift"])
            if out_shift > 30:
                raise self.unsupported(op, f"out_shift {out_shift} is above 30")
            self.helpers.add("mul")
            return {"steps": [_call(f"{self.name}_mul_{self.suffix}", [
                (["a", "b", "y", "count"], [a, b, y, size]), (["out_shift"], [out_shift]), clamp])]}
        align_shift = [int(s) for s in q["align_shift"]]
        top = max(align_shift)
        shifts = [top - s for s in align_shift]
        total = int(q["out_shift"]) + top
        if max(shifts) > 29 - self.bits or total > 31:
            raise self.unsupported(op, f"its input formats are {top} bits apart, too far for the 32-bit loop")
        self.helpers.add("add")
        return {"steps": [_call(f"{self.name}_add_{self.suffix}", [
            (["a", "b", "y", "count"], [a, b, y, size]),
            (["shift_a", "shift_b", "subtract", "out_shift"], [shifts[0], shifts[1], int(op.type == "sub"), total]),
            clamp])]}

    def _layer_relu(self, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
        self._same_format(op)
        size = self.graph.tensors[op.outputs[0]].size
        x, y = self.pointers[op.inputs[0]], self.pointers[op.outputs[0]]
        steps = [_memcpy(y, x, size * self.bits // 8)]
        steps += [_call(kernel.function, [(["data", "size"], [_at(y, start), count])]) for start, count in
                  _chunks(size)]
        return {"steps": steps}

    def _layer_clamp(self, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
        self._same_format(op)
        size = self.graph.tensors[op.outputs[0]].size
        return {"steps": [self._clamp_call(self.pointers[op.inputs[0]], self.pointers[op.outputs[0]], size, q)]}

    def _layer_alias(self, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
        if self.graph.tensors[op.inputs[0]].is_const:
            raise self.unsupported(op, "it reshapes a constant")
        if self.plan.by_tensor[op.inputs[0]] is not self.plan.by_tensor[op.outputs[0]]:
            raise NnsconsError(None, f"codegen: reshape {op.name} does not alias its input")
        self._same_format(op)
        return {}

    # ---- rendering context ---------------------------------------------------------------------------------------
    def context(self) -> dict[str, Any]:
        ctx = super().context()
        steps = [s for layer in self.layers for s in layer["steps"]]
        arm_buffers = any("NNSCONS_ARM_BUFFER" in g["args"] for s in steps if s["kind"] == "call"
                          for g in s["groups"])
        ctx.update({
            "dsp_check": DSP_CHECK, "uses_ctx": False,
            "uses_status": any(s["kind"] == "call" and s["status"] for s in steps),
            "uses_copies": self.copy_region > 0, "uses_arm_buffers": arm_buffers,
            "helpers": sorted(self.helpers - {"clamp"}), "suffix": self.suffix, "ctype": self.ctype,
            "qmin": -(1 << (self.bits - 1)), "qmax": (1 << (self.bits - 1)) - 1,
            "clamp_types": [self.ctype] if "clamp" in self.helpers else [],
        })
        return ctx


def _has_empty_window(g: LegacyConvGeometry) -> bool:
    """Whether some pooling window lies entirely in the padding (undefined in Arm's legacy pooling)."""
    for axis in (0, 1):
        for o in range(g.dim_im_out[axis]):
            start = o * g.stride[axis] - g.padding[axis]
            if start + g.dim_kernel[axis] <= 0 or start >= g.dim_im_in[axis]:
                return True
    return False


_WHY_UNSUPPORTED = {
    "quantize": "a quantize op is only supported as the first op, from a float graph input",
    "dequantize": "a dequantize op is only supported as the last op, to a float graph output",
    "pad": "the legacy API has no padding kernel (a pad before a convolution could be folded into its padding, "
           "which nnscons does not do yet)",
    "concat": "the legacy API has no concatenation",
    "mean": "the legacy API has no mean (an average pool over the whole image would express it)",
    "leaky_relu": "the legacy API has no leaky relu",
}
