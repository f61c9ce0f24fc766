"""The s8/s16 backend's layers that call a CMSIS-NN kernel with parameters: convolution, depthwise convolution,
fully connected, pooling, softmax and the element-wise add / mul (and sub, a generated loop on add's parameters).

Each ``layer_<kind>(model, op, q, kernel)`` turns one layer's quantization table entry ``q`` into the values its
``templates/layers.j2`` macro reads, adding the constant arrays it needs to the model; it raises
:func:`nnscons.kernels.unsupported` for what the kernel cannot do. Registered in :data:`nnscons.codegen.s8.S8_LAYERS`.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import ir, kernels
from ..errors import NnsconsError
from .model import Model
from .softmax_luts import softmax_s16_luts

_WEIGHT_LAYOUTS = {"conv2d": "OHWI", "depthwise_conv2d": "1HWC",
                   "fully_connected": "[out][in] (OHWI of a 1x1 convolution)"}


def check_offsets(op: ir.Op, kernel: kernels.Kernel, *offsets: int) -> None:
    if kernel.suffix == "s16" and any(offsets):
        raise kernels.unsupported(op, "s16", "int16 activations must have zero point 0")


# ---- weighted layers -----------------------------------------------------------------------------------------------
def _weighted_common(model: Model, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
    """Weights, bias and per-channel requantization of a conv / depthwise layer (or a fully connected one
    run as a 1x1 convolution)."""
    prefix = f"{model.name}_{op.name}"
    weights = model.qparam(op, op.inputs[1])
    if weights.dtype != np.int8:
        raise kernels.unsupported(op, kernel.suffix, f"its weights are {weights.dtype}, the kernels take int8 "
                                                     f"(for q15 rebuild the quantization table with api=s8)")
    if int(q.get("filter_offset", 0)) != 0:
        raise kernels.unsupported(op, kernel.suffix, "its weights have a non-zero zero point")
    w_name = model.constant(op.inputs[1], f"{prefix}_weights", "int8_t", weights,
                            [f"{op.name} weights: {model.tensor_text(op.inputs[1])}, layout "
                             f"{_WEIGHT_LAYOUTS[op.type]}"])
    channels = len(q["multiplier"])
    mult = model.constant(f"{op.name}.multiplier", f"{prefix}_multiplier", "int32_t",
                          np.asarray(q["multiplier"], np.int64),
                          [f"{op.name}: per-channel requantization multipliers (Q31), {channels} channels"])
    shift = model.constant(f"{op.name}.shift", f"{prefix}_shift", "int32_t", np.asarray(q["shift"], np.int64),
                           [f"{op.name}: per-channel requantization shifts (positive = left), {channels} "
                            f"channels"])
    check_offsets(op, kernel, q["input_offset"], q["output_offset"])
    ctx = {"weights": w_name, "multiplier": mult, "shift": shift, "act_min": q["act_min"],
           "act_max": q["act_max"], "input_offset": q["input_offset"], "output_offset": q["output_offset"]}
    if _can_fold(q, kernel) and _every_window_inside(kernel.geometry):
        ctx.update(_folded_bias(model, op, q, weights, prefix))
    else:
        ctx.update(_bias(model, op, q, kernel, prefix, channels))
    return ctx


def _can_fold(q: dict[str, Any], kernel: kernels.Kernel) -> bool:
    """An s8 layer with an input offset and a bias (if any) in the accumulator's format already."""
    return kernel.suffix == "s8" and bool(q["input_offset"]) and not q.get("bias_shift")


def _every_window_inside(g: kernels.ConvGeometry) -> bool:
    """No output position of the convolution reads padding (then the input offset can be folded)."""
    if g.padding != (0, 0):
        return False
    reach_h = (g.output.h - 1) * g.stride[0] + (g.filter.h - 1) * g.dilation[0] + 1
    reach_w = (g.output.w - 1) * g.stride[1] + (g.filter.w - 1) * g.dilation[1] + 1
    return reach_h <= g.input.h and reach_w <= g.input.w


def _folded_bias(model: Model, op: ir.Op, q: dict[str, Any], weights: np.ndarray, prefix: str) -> dict[str, Any]:
    """The input offset folded into the bias, for a layer that never reads padding: sum((x + o) * w) + b equals
    sum(x * w) + (b + o * sum(w)) in int32 arithmetic, whatever wraps, so the kernel gets input offset 0 and
    computes no offset term (nor, on Helium, a sum of the weights) per inference. The weights' output channel is
    their first axis, or the last for a depthwise layer's 1HWC."""
    offset = int(q["input_offset"])
    per_output = weights.reshape(-1, weights.shape[-1]).T if op.type == "depthwise_conv2d" \
        else weights.reshape(weights.shape[0], -1)
    sums = per_output.astype(np.int64).sum(axis=1) + per_output.shape[1] * int(q.get("filter_offset", 0))
    bias = model.qparam(op, q["bias"]).astype(np.int64).reshape(-1) if q.get("bias") else np.zeros_like(sums)
    values = wrap_int32(bias + offset * sums)
    name = model.constant(f"{op.name}.folded_bias", f"{prefix}_bias", "int32_t", values,
                          [f"{op.name} bias with the input offset folded in: bias + {offset} x (sum of the output "
                           f"channel's weights), as int32_t"])
    return {"bias": name, "bias_is_int32": True, "bias_length": int(values.size), "input_offset": 0,
            "notes": [f"  input offset {offset} folded into the bias (no window reads padding)"]}


def _bias(model: Model, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel, prefix: str,
          channels: int) -> dict[str, Any]:
    """The bias array the kernel takes: int32 for s8; int64 for s16 (int32 allowed for conv s16). A Q-format
    bias is shifted into the accumulator's format here (``bias_shift``)."""
    b = q.get("bias")
    if not b:
        return {"bias": "NULL", "bias_is_int32": kernel.suffix == "s8", "bias_length": channels}
    values = model.qparam(op, b).astype(np.int64).reshape(-1)
    shift = int(q.get("bias_shift", 0) or 0)
    if shift:
        values = values << shift
    wide = kernel.suffix == "s16" and not (kernel.kind == "conv" and model.qparam(op, b).dtype == np.int32
                                            and not shift)
    ctype, limit = ("int64_t", 1 << 63) if wide else ("int32_t", 1 << 31)
    if values.size and (values.min() < -limit or values.max() >= limit):
        raise NnsconsError(None, f"codegen: layer {op.name}: the bias does not fit {ctype} after its shift "
                                 f"by {shift}")
    note = f", shifted left by bias_shift {shift}" if shift else ""
    name = model.constant(f"{b}<<{shift}", f"{prefix}_bias", ctype, values,
                          [f"{op.name} bias: {model.tensor_text(b)}{note}, as {ctype}"])
    return {"bias": name, "bias_is_int32": ctype == "int32_t", "bias_length": int(values.size)}


def _geometry(g: kernels.ConvGeometry) -> dict[str, Any]:
    return {"input_dims": g.input.as_tuple(), "filter_dims": g.filter.as_tuple(),
            "output_dims": g.output.as_tuple(), "bias_dims": (1, 1, 1, g.output.c),
            "stride": g.stride, "padding": g.padding, "dilation": g.dilation, "ch_mult": g.ch_mult}


def layer_conv(model: Model, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
    """A convolution, a depthwise convolution, or a fully connected layer run as a 1x1 convolution."""
    ctx = _weighted_common(model, op, q, kernel)
    ctx.update(_geometry(kernel.geometry))
    return ctx


def layer_fc(model: Model, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
    prefix = f"{model.name}_{op.name}"
    if len(q["multiplier"]) != 1:
        raise kernels.unsupported(op, kernel.suffix, "per-channel fully connected weights are not supported")
    weights = model.qparam(op, op.inputs[1])
    if weights.dtype != np.int8:
        raise kernels.unsupported(op, kernel.suffix, f"its weights are {weights.dtype}, the kernels take int8 "
                                                     f"(for q15 rebuild the quantization table with api=s8)")
    check_offsets(op, kernel, q["input_offset"], q["output_offset"], q.get("filter_offset", 0))
    w_name = model.constant(op.inputs[1], f"{prefix}_weights", "int8_t", weights,
                            [f"{op.name} weights: {model.tensor_text(op.inputs[1])}, layout [out][in]"])
    f = kernel.geometry
    numel = model.graph.tensors[op.inputs[0]].size
    if numel % f.n:
        raise kernels.unsupported(op, kernel.suffix, f"its input has {numel} values, not a multiple of {f.n}")
    batches = numel // f.n
    ctx = {"weights": w_name, "multiplier": q["multiplier"][0], "shift": q["shift"][0],
           "input_offset": q["input_offset"], "output_offset": q["output_offset"],
           "filter_offset": q.get("filter_offset", 0), "act_min": q["act_min"], "act_max": q["act_max"],
           "input_dims": (batches, 1, 1, f.n), "filter_dims": f.as_tuple(), "bias_dims": (1, 1, 1, f.c),
           "output_dims": (batches, 1, 1, f.c), "kernel_sums": None}
    if kernel.suffix != "s8":
        ctx.update(_bias(model, op, q, kernel, prefix, f.c))
        return ctx
    if _can_fold(q, kernel):
        ctx.update(_folded_bias(model, op, q, weights, prefix))
    else:
        ctx.update(_bias(model, op, q, kernel, prefix, f.c))
    # Helium builds of arm_fully_connected_s8 read arm_vector_sum_s8's sums from ctx->buf: with the input offset
    # folded (or zero) they are the bias itself
    ctx["kernel_sums"] = ctx["bias"] if ctx["bias"] != "NULL" else model.constant(
        f"{op.name}.kernel_sums", f"{prefix}_kernel_sums", "int32_t", np.zeros(f.c, np.int64),
        [f"{op.name}: kernel sums for Helium builds (no bias, no input offset: zeros)"])
    return ctx


def wrap_int32(values: np.ndarray) -> np.ndarray:
    return ((values.astype(np.int64) + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int64)


# ---- pooling, softmax ----------------------------------------------------------------------------------------------
def layer_pool(model: Model, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
    """An average or max pooling layer."""
    if model.scale_zp(op.inputs[0]) != model.scale_zp(op.outputs[0]):
        raise kernels.unsupported(op, kernel.suffix, "its input and output quantizations differ")
    x, y = model.graph.tensors[op.inputs[0]], model.graph.tensors[op.outputs[0]]
    pad = op.attrs.get("pad", [0, 0, 0, 0])
    kh, kw = op.attrs["kernel"]
    return {"input_dims": tuple(x.shape), "output_dims": tuple(y.shape), "filter_dims": (1, kh, kw, 1),
            "stride": tuple(op.attrs.get("stride", [1, 1])), "padding": (pad[0], pad[2]),
            "act_min": q["act_min"], "act_max": q["act_max"]}


def layer_softmax(model: Model, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
    x = model.graph.tensors[op.inputs[0]]
    row = int(x.shape[-1]) if x.shape else 1
    ctx: dict[str, Any] = {"rows": x.size // max(row, 1), "row_size": row, "mult": q["input_multiplier"],
                           "shift": q["input_left_shift"], "q7_output": False}
    out = model.scale_zp(op.outputs[0])
    if kernel.suffix == "s8_s16":
        # TFLite Micro takes a scale within 0.1% of 1/65536 (its converter writes 1/65535.5 in some models)
        if out[1] != -32768 or abs(out[0] - 1.0 / 65536) > 0.001 / 65536:
            raise kernels.unsupported(op, "s8_s16", "arm_softmax_s8_s16 outputs scale 1/65536 zero point -32768")
        ctx["diff_min"] = q["diff_min"]
        return ctx
    if kernel.suffix == "s8":
        ctx["diff_min"] = q["diff_min"]
        if out == (2.0 ** -7, 0):
            ctx["q7_output"] = True              # the table's Q0.7 from the kernel's 1/256, -128
        elif out != (1.0 / 256, -128):
            raise kernels.unsupported(op, "s8", "arm_softmax_s8 outputs scale 1/256 zero point -128")
        return ctx
    if out != (1.0 / 32768, 0) or model.scale_zp(op.inputs[0])[1] != 0:
        raise kernels.unsupported(op, "s16", "arm_softmax_s16 needs input zero point 0 and outputs scale "
                                             "1/32768 zero point 0")
    exp_lut, one_by_one_lut = softmax_s16_luts()
    ctx["exp_lut"] = model.constant("softmax.exp_lut", f"{model.name}_softmax_exp_lut", "int16_t", exp_lut,
                                    ["exp(x) for x in [-10, 0], 513 entries Q0.15 (arm_softmax_s16)"])
    ctx["one_by_one_lut"] = model.constant("softmax.one_by_one_lut", f"{model.name}_softmax_one_by_one_lut",
                                           "int16_t", one_by_one_lut,
                                           ["1 / (1 + x) for x in [0, 1], 513 entries Q0.15 (arm_softmax_s16)"])
    return ctx


# ---- element-wise --------------------------------------------------------------------------------------------------
def _same_shapes(model: Model, op: ir.Op, kernel: kernels.Kernel) -> int:
    shapes = {tuple(model.graph.tensors[t].shape) for t in op.inputs + op.outputs}
    if len(shapes) != 1 or any(model.graph.tensors[t].is_const for t in op.inputs):
        raise kernels.unsupported(op, kernel.suffix, "CMSIS-NN elementwise kernels need two same-shaped "
                                                     "activation inputs (no broadcasting, no constants)")
    return model.graph.tensors[op.outputs[0]].size


def layer_add(model: Model, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
    size = _same_shapes(model, op, kernel)
    check_offsets(op, kernel, q["input1_offset"], q["input2_offset"], q["output_offset"])
    keys = ("input1_offset", "input1_multiplier", "input1_shift", "input2_offset", "input2_multiplier",
            "input2_shift", "left_shift", "output_offset", "output_multiplier", "output_shift", "act_min",
            "act_max")
    return {"size": size, **{k: q[k] for k in keys}}


def layer_sub(model: Model, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
    """input 1 - input 2 in a generated loop with the table's add/sub parameters (TFLite's arithmetic)."""
    if kernel.suffix != "s8":
        raise kernels.unsupported(op, kernel.suffix, "the generated sub loop is for int8 activations")
    return layer_add(model, op, q, kernel)


def layer_mul(model: Model, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
    size = _same_shapes(model, op, kernel)
    check_offsets(op, kernel, q["input1_offset"], q["input2_offset"], q["output_offset"])
    keys = ("input1_offset", "input2_offset", "output_offset", "output_multiplier", "output_shift", "act_min",
            "act_max")
    return {"size": size, **{k: q[k] for k in keys}}
