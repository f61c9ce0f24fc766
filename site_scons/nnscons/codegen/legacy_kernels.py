"""The legacy q7/q15 backend's state and its kernel choice: which legacy function (or generated loop) runs each
op, and the scratch memory after the activation arena.

:class:`LegacyModel` is the shared :class:`~nnscons.codegen.model.Model` plus what the legacy layers share (the
Q-format word size, the softmax option, the generated helpers the C needs, the copy region);
:data:`LEGACY_KERNELS` is the registry of the ops the backend runs, and :func:`choose_kernel` dispatches on it.
Part of :mod:`nnscons.codegen` (see :mod:`~nnscons.codegen.legacy` for the whole backend).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable, Optional

from .. import ir, kernels
from ..errors import NnsconsError
from ..planner import align
from . import legacy_layouts
from .common import UINT16_MAX
from .legacy_layouts import LegacyConvGeometry, ScratchBuffer
from .model import Model


@dataclass
class LegacyModel:
    """The model as the legacy layers see it: the shared model, the scheme's word size and what the layers add
    to the generated C (helper loops, the copy region of in-place pooling)."""

    model: Model
    softmax: str                       # option legacy_softmax: input | calibrated
    suffix: str                        # q7 | q15
    bits: int                          # 8 | 16
    dtype: str                         # int8 | int16
    ctype: str                         # int8_t | int16_t
    helpers: set[str] = field(default_factory=set)   # generated loops the C needs: shift, pool, add, mul, clamp
    copy_region: int = 0                             # scratch bytes for copies of pooling inputs

    def unsupported(self, op: ir.Op, why: str = "") -> NnsconsError:
        return kernels.unsupported(op, f"legacy {self.suffix}", why)


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


def choose_kernel(lm: LegacyModel, op: ir.Op) -> kernels.Kernel:
    """The legacy function (or generated loop) for one op, with its scratch needs."""
    model = lm.model
    for t in op.inputs + op.outputs:
        if not model.graph.tensors[t].is_const and model.act_dtype(t) != lm.dtype:
            raise lm.unsupported(op, f"tensor {t} is {model.act_dtype(t)}, not the {lm.dtype} of "
                                     f"quant={lm.suffix}")
    choose = LEGACY_KERNELS.get(op.type)
    if choose is None:
        raise lm.unsupported(op, _WHY_UNSUPPORTED.get(op.type, "the legacy API has no such kernel"))
    return choose(lm, op)


def make_kernel(lm: LegacyModel, kind: str, function: str, layer: LegacyLayer) -> kernels.Kernel:
    dsp = layer.copy_bytes + layer.arm_bytes
    return kernels.Kernel(kind, function, lm.suffix, {"c": layer.copy_bytes, "dsp": dsp, "mve": dsp}, layer)


def check_uint16(lm: LegacyModel, op: ir.Op, **values: int) -> None:
    for what, value in values.items():
        if not 0 <= int(value) <= UINT16_MAX:
            raise lm.unsupported(op, f"its {what} {value} does not fit the uint16_t argument")


def _check_geometry(lm: LegacyModel, op: ir.Op, g: LegacyConvGeometry) -> None:
    check_uint16(lm, op, channels=max(g.ch_im_in, g.ch_im_out), size=max(g.dim_im_in + g.dim_im_out),
                  kernel=max(g.dim_kernel), padding=max(g.padding), stride=max(g.stride))


def _conv_kernel(lm: LegacyModel, op: ir.Op) -> kernels.Kernel:
    x, w, y = (lm.model.graph.tensors[t] for t in (op.inputs[0], op.inputs[1], op.outputs[0]))
    depthwise = op.type == "depthwise_conv2d"
    if x.shape[0] != 1:
        raise lm.unsupported(op, "the legacy kernels take batch 1")
    if tuple(op.attrs.get("dilation", [1, 1])) != (1, 1):
        raise lm.unsupported(op, "the legacy kernels have no dilation")
    if not depthwise and w.shape[3] != x.shape[3]:
        raise lm.unsupported(op, "grouped convolution (the legacy kernels read every input channel)")
    if depthwise and lm.bits == 16:
        raise lm.unsupported(op, "the legacy API has no q15 depthwise convolution")
    pad = op.attrs.get("pad", [0, 0, 0, 0])
    kh, kw = (w.shape[1], w.shape[2])
    g = LegacyConvGeometry(ch_im_in=x.shape[3], ch_im_out=y.shape[3], dim_im_in=(x.shape[1], x.shape[2]),
                           dim_kernel=(kh, kw), padding=(pad[0], pad[2]),
                           stride=tuple(op.attrs.get("stride", [1, 1])), dim_im_out=(y.shape[1], y.shape[2]))
    _check_geometry(lm, op, g)
    function = legacy_layouts.pick_conv_function(g, bits=lm.bits, depthwise=depthwise)
    if function is None:
        family = [f for f in legacy_layouts.CONV_FUNCTIONS
                  if ("depthwise" in f) == depthwise and f"_{lm.suffix}" in f]
        reasons = "; ".join(f"{f}: {legacy_layouts.constraint_error(f, g)}" for f in family)
        raise lm.unsupported(op, f"no legacy function accepts its shape ({reasons})")
    layer = LegacyLayer(g, legacy_layouts.legacy_buffer_sizes(function, g))
    return make_kernel(lm, "depthwise" if depthwise else "conv", function, layer)


def _fc_kernel(lm: LegacyModel, op: ir.Op) -> kernels.Kernel:
    rows, cols = lm.model.graph.tensors[op.inputs[1]].shape
    check_uint16(lm, op, **{"input length": cols, "output length": rows})
    function = f"arm_fully_connected_{lm.suffix}_opt"
    return make_kernel(lm, "fc", function, LegacyLayer(None, legacy_layouts.legacy_buffer_sizes(
        function, dim_vec=cols)))


def _pool_kernel(lm: LegacyModel, op: ir.Op) -> kernels.Kernel:
    x, y = lm.model.graph.tensors[op.inputs[0]], lm.model.graph.tensors[op.outputs[0]]
    if x.shape[0] != 1 or len(x.shape) != 4:
        raise lm.unsupported(op, "the legacy pooling takes one HWC image (batch 1)")
    pad = op.attrs.get("pad", [0, 0, 0, 0])
    g = LegacyConvGeometry(x.shape[3], y.shape[3], (x.shape[1], x.shape[2]), tuple(op.attrs["kernel"]),
                           (pad[0], pad[2]), tuple(op.attrs.get("stride", [1, 1])), (y.shape[1], y.shape[2]))
    _check_geometry(lm, op, g)
    function = ""
    if lm.bits == 8 and g.is_square and g.padding[0] <= g.stride[0] and not _has_empty_window(g):
        function = "arm_maxpool_q7_HWC" if op.type == "max_pool2d" else "arm_avepool_q7_HWC"
    if not function:
        lm.helpers.add("pool")
        why = ("the legacy API has no q15 pooling" if lm.bits == 16 else
               "arm_*pool_q7_HWC need a square layer with padding <= stride and no window in the padding")
        return make_kernel(lm, "pool", "", LegacyLayer(g, note=f"generated loop: {why}"))
    copy = x.size * (lm.bits // 8) if _read_later(lm.model, op) else 0
    return make_kernel(lm, "pool", function, LegacyLayer(g, legacy_layouts.legacy_buffer_sizes(function, g), copy))


def _has_empty_window(g: LegacyConvGeometry) -> bool:
    """Whether some pooling window lies entirely in the padding (undefined in Arm's legacy pooling)."""
    for axis in (0, 1):
        for o in range(g.dim_im_out[axis]):
            start = o * g.stride[axis] - g.padding[axis]
            if start + g.dim_kernel[axis] <= 0 or start >= g.dim_im_in[axis]:
                return True
    return False


def _read_later(model: Model, op: ir.Op) -> bool:
    """Whether the op's input is still needed after it (read by a later op or a network output)."""
    buffer = model.plan.by_tensor[op.inputs[0]]
    position = model.graph.ops.index(op)
    return buffer.last > position or any(t in model.graph.outputs for t in buffer.tensors)


RECURRENT_WORK_ROWS = 5     # a recurrent step's working rows of hidden_size values: the gates and one part


def _recurrent_kernel(lm: LegacyModel, op: ir.Op) -> kernels.Kernel:
    """The generated LSTM / GRU step (nnscons.codegen.legacy_recurrent) and its scratch: the working rows (every
    build) and Arm's vec_buffer for the fully connected kernel (DSP builds)."""
    units, features = lm.model.graph.tensors[op.inputs[1]].shape
    check_uint16(lm, op, **{"input size": features, "hidden size": units})
    function = f"arm_fully_connected_{lm.suffix}_opt"
    layer = LegacyLayer(None, legacy_layouts.legacy_buffer_sizes(function, dim_vec=max(units, features)),
                        copy_bytes=RECURRENT_WORK_ROWS * units * lm.bits // 8,
                        note=f"the seed guide's lowering: {function}, arm_nn_activations_direct_{lm.suffix} and "
                             f"generated element-wise loops per step")
    lm.helpers.update({"recurrent_base", f"recurrent_{op.type}"})
    return make_kernel(lm, "recurrent", f"{lm.model.name}_{op.type}_step_{lm.suffix}", layer)


_NOTES = {"eltwise": "generated loop: the legacy API has no element-wise kernels", "clamp": "generated clamp loop"}


def _plain_kernel(kind: str, prefix: str, lm: LegacyModel, op: ir.Op) -> kernels.Kernel:
    """A kernel without scratch: the function ``prefix`` + q7/q15, or a generated loop when ``prefix`` is ""."""
    return make_kernel(lm, kind, prefix + lm.suffix if prefix else "", LegacyLayer(note=_NOTES.get(kind, "")))


LegacyKernelChoice = Callable[[LegacyModel, ir.Op], kernels.Kernel]

# The registry: every IR op the legacy backend runs, and who picks its function (see nnscons.codegen.legacy)
LEGACY_KERNELS: dict[str, LegacyKernelChoice] = {
    "conv2d": _conv_kernel,
    "depthwise_conv2d": _conv_kernel,
    "fully_connected": _fc_kernel,
    "max_pool2d": _pool_kernel,
    "avg_pool2d": _pool_kernel,
    "softmax": functools.partial(_plain_kernel, "softmax", "arm_softmax_"),
    "logistic": functools.partial(_plain_kernel, "activation", "arm_nn_activations_direct_"),
    "tanh": functools.partial(_plain_kernel, "activation", "arm_nn_activations_direct_"),
    "add": functools.partial(_plain_kernel, "eltwise", ""),
    "sub": functools.partial(_plain_kernel, "eltwise", ""),
    "mul": functools.partial(_plain_kernel, "eltwise", ""),
    "relu": functools.partial(_plain_kernel, "relu", "arm_relu_"),
    "relu6": functools.partial(_plain_kernel, "clamp", ""),
    "clip": functools.partial(_plain_kernel, "clamp", ""),
    "reshape": functools.partial(_plain_kernel, "alias", ""),
    "lstm": _recurrent_kernel,
    "gru": _recurrent_kernel,
}

_WHY_UNSUPPORTED = {
    "quantize": "a quantize op is only supported as the first op, from a float graph input",
    "dequantize": "a dequantize op is only supported as the last op, to a float graph output",
    "pad": "the legacy API has no padding kernel (a pad before a convolution could be folded into its padding, "
           "which nnscons does not do yet)",
    "concat": "the legacy API has no concatenation",
    "mean": "the legacy API has no mean (an average pool over the whole image would express it)",
    "leaky_relu": "the legacy API has no leaky relu",
}


# ---- scratch memory ------------------------------------------------------------------------------------------------
def scratch_sizes(lm: LegacyModel) -> dict[str, int]:
    """Copies first (every build), then Arm's DSP buffers; the region is the largest any layer needs. Sets the
    copy region the buffer arguments start after."""
    layers = [k.geometry for k in lm.model.kernels.values() if isinstance(k.geometry, LegacyLayer)]
    lm.copy_region = align(max((layer.copy_bytes for layer in layers), default=0))
    dsp = lm.copy_region + max((layer.arm_bytes for layer in layers), default=0)
    return {"c": lm.copy_region, "dsp": dsp, "mve": dsp}


def buffer_arguments(lm: LegacyModel, layer: LegacyLayer) -> list[str]:
    """The C expressions of a call's scratch arguments, in signature order."""
    values, offset = [], lm.copy_region
    for buffer in layer.buffers.values():
        if buffer.count == 0:
            values.append("NULL")
            continue
        ctype = "int16_t" if buffer.ctype == "q15_t" else "int8_t"
        values.append(f"NNSCONS_ARM_BUFFER({ctype}, {offset})")
        offset += align(buffer.nbytes)
    return values
