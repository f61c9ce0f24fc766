"""The legacy q7/q15 backend's layers: each ``layer_<kind>(lm, op, q, kernel)`` turns a layer's quantization
table entry into the statements ``templates/legacy_layers.j2`` writes (``steps``: calls of a legacy function or
of a generated helper loop, and memcpy), adding its weights and bias to the model's constants.

Registered in :data:`nnscons.codegen.legacy.LEGACY_LAYERS`; how each op is expressed is in that module's docstring.
"""
from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from .. import ir, kernels
from ..errors import NnsconsError
from . import legacy_layouts
from .common import BREAK, labelled
from .legacy_kernels import LegacyLayer, LegacyModel, buffer_arguments, check_uint16
from .model import require_alias

CHUNK = 32768                  # arm_relu_* and the direct activations count in uint16_t: longer tensors in chunks
_ACTIVATION_TYPE = {"logistic": "ARM_SIGMOID", "tanh": "ARM_TANH"}
_TABLE_INT_WIDTH = 3           # the direct activation tables cover Q3.x inputs ([-8, 8))


def softmax_input_frac_bits(beta: float) -> int:
    """The fractional bits the legacy softmax input is given: the kernels compute 2^q on the raw integers, i.e.
    softmax(2^f ln2 * v) for f fractional bits; f = round(log2(beta log2 e)) makes that closest to softmax(beta v)."""
    return int(round(math.log2(beta * math.log2(math.e))))


# ---- statements ------------------------------------------------------------------------------------------------------
def _call(function: str, groups: list[tuple[list[str], list[Any]]], status: bool = False,
          loop: Optional[tuple[str, int]] = None) -> dict[str, Any]:
    """One C statement of a layer: ``function`` with its arguments in groups of (parameter names, values); each
    group starts a line of a call that takes several, and every argument that does not name itself (numbers,
    expressions, NULL) is labelled with its parameter's name."""
    arguments: list[Any] = []
    for names, values in groups:
        if len(names) != len(values):
            raise ValueError(f"{function}: {len(names)} parameter names for {len(values)} arguments")
        arguments += ([BREAK] if arguments else []) + [labelled(n, v) for n, v in zip(names, values)]
    return {"kind": "call", "function": function, "status": status, "arguments": arguments,
            "loop": {"var": loop[0], "count": loop[1]} if loop else None}


def _memcpy(destination: str, source: str, nbytes: int) -> dict[str, Any]:
    return {"kind": "memcpy", "destination": destination, "source": source, "bytes": nbytes, "loop": None}


def _chunks(size: int) -> list[tuple[int, int]]:
    return [(start, min(CHUNK, size - start)) for start in range(0, size, CHUNK)]


def _at(pointer: str, offset: int) -> str:
    return f"{pointer} + {offset}" if offset else pointer


def _clamped_shift(lm: LegacyModel, shift: int) -> int:
    """A shift for the shift loop, limited to what still changes a saturated W-bit result (and keeps the
    int32 arithmetic in range): right by at most W, left by at most W - 1."""
    return max(-(lm.bits - 1), min(lm.bits, shift))


def _shift_call(lm: LegacyModel, source: str, destination: str, size: int, shift: int) -> dict[str, Any]:
    lm.helpers.add("shift")
    return _call(f"{lm.model.name}_shift_{lm.suffix}", [(["x", "y", "count", "shift"],
                                                          [source, destination, size, shift])])


def _clamp_call(lm: LegacyModel, source: str, destination: str, size: int, q: dict[str, Any]) -> dict[str, Any]:
    lm.helpers.add("clamp")
    suffix = "s8" if lm.bits == 8 else "s16"
    return _call(f"{lm.model.name}_clamp_{suffix}", [(["x", "y", "count"], [source, destination, size]),
                                                      (["lo", "hi"], [q["act_min"], q["act_max"]])])


def _activation_steps(lm: LegacyModel, op: ir.Op, q: dict[str, Any], pointer: str,
                      size: int) -> list[dict[str, Any]]:
    """A fused activation, in place on the layer's output."""
    activation = op.attrs.get("activation", "none")
    if activation == "none":
        return []
    if activation == "relu":
        return [_call(f"arm_relu_{lm.suffix}", [(["data", "size"], [_at(pointer, start), count])])
                for start, count in _chunks(size)]
    return [_clamp_call(lm, pointer, pointer, size, q)]


# ---- formats and constants -----------------------------------------------------------------------------------------
def _frac(lm: LegacyModel, tensor: str) -> int:
    return int(lm.model.tq(tensor)["frac_bits"])


def _same_format(lm: LegacyModel, op: ir.Op) -> None:
    if _frac(lm, op.inputs[0]) != _frac(lm, op.outputs[0]):
        raise lm.unsupported(op, "its input and output Q-formats differ")


def _weights(lm: LegacyModel, op: ir.Op, values: Optional[np.ndarray] = None, layout: str = "") -> str:
    model, w = lm.model, op.inputs[1]
    data = model.qparam(op, w)
    if data.dtype != np.dtype(lm.dtype):
        raise lm.unsupported(op, f"its weights are {data.dtype}, the legacy {lm.suffix} kernels take "
                                 f"{lm.dtype} (rebuild the quantization table with api=legacy)")
    return model.constant(w, f"{model.name}_{op.name}_weights", lm.ctype, data if values is None else values,
                          [f"{op.name} weights: {model.tensor_text(w)}, {layout}"])


def _bias(lm: LegacyModel, op: ir.Op, q: dict[str, Any], prefix: str, channels: int) -> str:
    """The bias in the activations' word size (the kernels shift it left by bias_shift); a layer without bias
    gets zeros (the kernels always read one)."""
    model, b = lm.model, q.get("bias")
    if not b:
        return model.constant(f"{op.name}.zero_bias", f"{prefix}_bias", lm.ctype, np.zeros(channels, lm.dtype),
                              [f"{op.name}: no bias in the model (zeros)"])
    values = model.qparam(op, b)
    if values.dtype != np.dtype(lm.dtype):
        raise lm.unsupported(op, f"its bias is {values.dtype}, the legacy {lm.suffix} kernels take "
                                 f"{lm.dtype} (rebuild the quantization table with api=legacy)")
    return model.constant(b, f"{prefix}_bias", lm.ctype, values.reshape(-1),
                          [f"{op.name} bias: {model.tensor_text(b)}, shifted left by bias_shift "
                           f"{q['bias_shift']} in the kernel"])


def _shifts(op: ir.Op, q: dict[str, Any]) -> tuple[int, int]:
    """bias_shift and out_shift from the table, checked against the seed's formulas."""
    bias_shift, out_shift = int(q["bias_shift"]), int(q["out_shift"])
    fi, fw, fb, fo = (q.get(k) for k in ("fi", "fw", "fb", "fo"))
    if (fb is not None and bias_shift != fi + fw - fb) or out_shift != fi + fw - fo:
        raise NnsconsError(None, f"codegen: layer {op.name}: the table's shifts ({bias_shift}, {out_shift}) do "
                                 f"not follow from its formats; rebuild qtable.json")
    return bias_shift, out_shift


# ---- layers --------------------------------------------------------------------------------------------------------
def layer_conv(lm: LegacyModel, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
    """A convolution or q7 depthwise convolution (square or _nonsquare function), then its fused activation."""
    model = lm.model
    layer: LegacyLayer = kernel.geometry
    g = layer.geometry
    prefix = f"{model.name}_{op.name}"
    layout = "[ky][kx][ch] (depthwise)" if kernel.kind == "depthwise" else "OHWI"
    weights = _weights(lm, op, layout=layout)
    bias = _bias(lm, op, q, prefix, g.ch_im_out)
    bias_shift, out_shift = _shifts(op, q)
    x, y = model.pointers[op.inputs[0]], model.pointers[op.outputs[0]]
    buffer_a, buffer_b = buffer_arguments(lm, layer)
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
    size = model.graph.tensors[op.outputs[0]].size
    return {"steps": [_call(kernel.function, groups, status=True)] + _activation_steps(lm, op, q, y, size)}


def layer_fc(lm: LegacyModel, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
    """A fully connected layer on interleaved weights, one call per batch row, then its fused activation."""
    model = lm.model
    rows, cols = model.graph.tensors[op.inputs[1]].shape
    numel = model.graph.tensors[op.inputs[0]].size
    if numel % cols:
        raise lm.unsupported(op, f"its input has {numel} values, not a multiple of {cols}")
    batches = numel // cols
    matrix = model.qparam(op, op.inputs[1])
    weights = _weights(lm, op, legacy_layouts.interleave_fc_weights(kernel.function, matrix),
                       f"[out][in] interleaved for {kernel.function}")
    bias = _bias(lm, op, q, f"{model.name}_{op.name}", rows)
    bias_shift, out_shift = _shifts(op, q)
    x, y = model.pointers[op.inputs[0]], model.pointers[op.outputs[0]]
    (vec_buffer,) = buffer_arguments(lm, kernel.geometry)
    loop = ("row", batches) if batches > 1 else None
    pv, pout = (f"{x} + row * {cols}", f"{y} + row * {rows}") if loop else (x, y)
    call = _call(kernel.function, [(["pV", "pM", "dim_vec", "num_of_rows"], [pv, weights, cols, rows]),
                                   (["bias_shift", "out_shift", "bias"], [bias_shift, out_shift, bias]),
                                   (["pOut", "vec_buffer"], [pout, vec_buffer])], status=True, loop=loop)
    return {"steps": [call] + _activation_steps(lm, op, q, y, rows * batches)}


def layer_pool(lm: LegacyModel, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
    """Max or average pooling: Arm's q7 function (on a copy when the input is read later), else the generated
    pooling loop; then the fused activation."""
    _same_format(lm, op)
    model = lm.model
    layer: LegacyLayer = kernel.geometry
    g = layer.geometry
    x, y = model.pointers[op.inputs[0]], model.pointers[op.outputs[0]]
    steps = []
    if not kernel.function:
        steps.append(_call(f"{model.name}_pool_{lm.suffix}", [
            (["x", "in_h", "in_w", "channels"], [x, g.dim_im_in[0], g.dim_im_in[1], g.ch_im_in]),
            (["kernel_h", "kernel_w", "pad_top", "pad_left"],
             [g.dim_kernel[0], g.dim_kernel[1], g.padding[0], g.padding[1]]),
            (["stride_h", "stride_w", "out_h", "out_w"], [g.stride[0], g.stride[1], g.dim_im_out[0], g.dim_im_out[1]]),
            (["average", "y"], [int(op.type == "avg_pool2d"), y])]))
    else:
        source = x
        if layer.copy_bytes:
            steps.append(_memcpy("scratch", x, layer.copy_bytes))
            source = f"({lm.ctype} *)(void *)scratch"
        (buffer_a,) = buffer_arguments(lm, layer)
        steps.append(_call(kernel.function, [
            (["Im_in", "dim_im_in", "ch_im_in"], [source, g.dim_im_in[0], g.ch_im_in]),
            (["dim_kernel", "padding", "stride", "dim_im_out"],
             [g.dim_kernel[0], g.padding[0], g.stride[0], g.dim_im_out[0]]),
            (["bufferA", "Im_out"], [buffer_a, y])]))
    size = model.graph.tensors[op.outputs[0]].size
    return {"steps": steps + _activation_steps(lm, op, q, y, size)}


def layer_softmax(lm: LegacyModel, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
    """The base-2 softmax per row (option legacy_softmax=calibrated: on the input shifted first)."""
    model = lm.model
    x_tensor = model.graph.tensors[op.inputs[0]]
    beta = float(op.attrs.get("beta", 1.0))
    if not beta > 0:
        raise lm.unsupported(op, f"softmax with beta {beta}")
    if _frac(lm, op.outputs[0]) != lm.bits - 1:
        raise lm.unsupported(op, f"its output must be Q0.{lm.bits - 1}")
    dim = int(x_tensor.shape[-1]) if x_tensor.shape else 1
    rows = x_tensor.size // max(dim, 1)
    check_uint16(lm, op, **{"row length": dim, "row count": rows})
    x, y = model.pointers[op.inputs[0]], model.pointers[op.outputs[0]]
    steps, source = [], x
    shift = 0
    if lm.softmax == "calibrated":
        shift = _clamped_shift(lm, _frac(lm, op.inputs[0]) - softmax_input_frac_bits(beta))
    if shift:
        steps.append(_shift_call(lm, x, y, x_tensor.size, shift))
        source = y
    if lm.bits == 8 and rows > 1:
        steps.append(_call("arm_softmax_with_batch_q7", [(["vec_in", "nb_batches", "dim_vec", "p_out"],
                                                          [source, rows, dim, y])]))
    else:
        loop = ("row", rows) if rows > 1 else None
        src, dst = (f"{source} + row * {dim}", f"{y} + row * {dim}") if loop else (source, y)
        steps.append(_call(kernel.function, [(["vec_in", "dim_vec", "p_out"], [src, dim, dst])], loop=loop))
    return {"steps": steps}



def layer_activation(lm: LegacyModel, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
    """logistic / tanh: the input copied (or shifted to Q3.x) to the output, the direct table function in place."""
    model = lm.model
    if _frac(lm, op.outputs[0]) != lm.bits - 1:
        raise lm.unsupported(op, f"its output must be Q0.{lm.bits - 1}")
    int_width = int(q.get("int_width", lm.bits - 1 - _frac(lm, op.inputs[0])))
    table_width = max(0, min(_TABLE_INT_WIDTH, int_width))
    size = model.graph.tensors[op.outputs[0]].size
    x, y = model.pointers[op.inputs[0]], model.pointers[op.outputs[0]]
    shift = _clamped_shift(lm, table_width - int_width)
    steps = [_shift_call(lm, x, y, size, shift) if shift else _memcpy(y, x, size * lm.bits // 8)]
    steps += [_call(kernel.function, [(["data", "size", "int_width", "type"],
                                       [_at(y, start), count, table_width, _ACTIVATION_TYPE[op.type]])])
              for start, count in _chunks(size)]
    return {"steps": steps}


def layer_eltwise(lm: LegacyModel, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
    """add / sub / mul: the generated element-wise loops, in the table's formats."""
    model = lm.model
    shapes = {tuple(model.graph.tensors[t].shape) for t in op.inputs + op.outputs}
    if len(shapes) != 1 or any(model.graph.tensors[t].is_const for t in op.inputs):
        raise lm.unsupported(op, "the generated element-wise loop needs two same-shaped activation inputs "
                                 "(no broadcasting, no constants)")
    size = model.graph.tensors[op.outputs[0]].size
    a, b, y = (model.pointers[t] for t in (op.inputs[0], op.inputs[1], op.outputs[0]))
    clamp = (["lo", "hi"], [q["act_min"], q["act_max"]])
    if op.type == "mul":
        out_shift = int(q["out_shift"])
        if out_shift > 30:
            raise lm.unsupported(op, f"out_shift {out_shift} is above 30")
        lm.helpers.add("mul")
        return {"steps": [_call(f"{model.name}_mul_{lm.suffix}", [
            (["a", "b", "y", "count"], [a, b, y, size]), (["out_shift"], [out_shift]), clamp])]}
    align_shift = [int(s) for s in q["align_shift"]]
    top = max(align_shift)
    shifts = [top - s for s in align_shift]
    total = int(q["out_shift"]) + top
    if max(shifts) > 29 - lm.bits or total > 31:
        raise lm.unsupported(op, f"its input formats are {top} bits apart, too far for the 32-bit loop")
    lm.helpers.add("add")
    return {"steps": [_call(f"{model.name}_add_{lm.suffix}", [
        (["a", "b", "y", "count"], [a, b, y, size]),
        (["shift_a", "shift_b", "subtract", "out_shift"], [shifts[0], shifts[1], int(op.type == "sub"), total]),
        clamp])]}


def layer_relu(lm: LegacyModel, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
    """relu: the input copied to the output, then arm_relu_q7 / _q15 in place."""
    _same_format(lm, op)
    model = lm.model
    size = model.graph.tensors[op.outputs[0]].size
    x, y = model.pointers[op.inputs[0]], model.pointers[op.outputs[0]]
    steps = [_memcpy(y, x, size * lm.bits // 8)]
    steps += [_call(kernel.function, [(["data", "size"], [_at(y, start), count])]) for start, count in
              _chunks(size)]
    return {"steps": steps}


def layer_clamp(lm: LegacyModel, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
    """relu6 / clip: the clamp loop shared with the s8 backend's template."""
    _same_format(lm, op)
    model = lm.model
    size = model.graph.tensors[op.outputs[0]].size
    return {"steps": [_clamp_call(lm, model.pointers[op.inputs[0]], model.pointers[op.outputs[0]], size, q)]}


def layer_alias(lm: LegacyModel, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
    """reshape: no code, the output aliases the input."""
    if lm.model.graph.tensors[op.inputs[0]].is_const:
        raise lm.unsupported(op, "it reshapes a constant")
    require_alias(lm.model, op)
    _same_format(lm, op)
    return {}
