"""The s8/s16 backend's layers that need no parameterized CMSIS-NN kernel: the generated loops (mean, pad, the
int8 lookup tables of logistic / tanh / leaky ReLU / requantization, the clamp of relu / relu6 / clip), the copies
of a concatenation (``arm_concatenation_s8_y``) and the reshape that runs no code.

Each ``layer_<kind>(model, op, q, kernel)`` returns the values its ``templates/layers.j2`` macro reads (adding
lookup tables to the model's constants); registered in :data:`nnscons.codegen.s8.S8_LAYERS`.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import fixedpoint, ir, kernels
from ..errors import NnsconsError
from .common import CTYPES, UINT16_MAX
from .model import Model, require_alias


def layer_concat(model: Model, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
    """One copy per input: along ``axis`` every tensor is [outer][axis][inner], which is the [z][y][x] of
    ``arm_concatenation_s8_y`` with x counted in bytes (so int16 values copy as byte pairs)."""
    out = model.graph.tensors[op.outputs[0]]
    rank = len(out.shape)
    axis = int(op.attrs.get("axis", -1))
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis < rank:
        raise kernels.unsupported(op, kernel.suffix, f"axis {op.attrs.get('axis')} of a rank-{rank} tensor")
    element = np.dtype(model.act_dtype(op.outputs[0])).itemsize
    copies, offset = [], 0
    for name in op.inputs:
        tensor = model.graph.tensors[name]
        if tensor.is_const:
            raise kernels.unsupported(op, kernel.suffix, f"input {name} is a constant")
        if model.scale_zp(name) != model.scale_zp(op.outputs[0]):
            raise kernels.unsupported(op, kernel.suffix, f"input {name} is quantized differently from the "
                                                         f"output (concatenation copies values unchanged)")
        shape = [int(s) for s in tensor.shape]
        inner = int(np.prod(shape[axis + 1:], dtype=np.int64)) * element
        outer = int(np.prod(shape[:axis], dtype=np.int64))
        sizes = {"inner bytes": inner, "axis length": shape[axis], "outer count": outer,
                 "output axis length": int(out.shape[axis])}
        too_big = [what for what, value in sizes.items() if value > UINT16_MAX]
        if too_big:
            raise kernels.unsupported(op, kernel.suffix, f"its {too_big[0]} exceeds {UINT16_MAX} (uint16_t "
                                                         f"arguments of {kernel.function})")
        copies.append({"input": model.pointers[name], "x": inner, "y": shape[axis], "z": outer,
                       "offset": offset, "tensor": name})
        offset += shape[axis]
    if offset != out.shape[axis]:
        raise NnsconsError(None, f"codegen: concat {op.name}: inputs add up to {offset} along axis {axis}, "
                                 f"the output has {out.shape[axis]}")
    return {"copies": copies, "output_y": int(out.shape[axis]), "axis": axis,
            "byte_pointers": element != 1}


def layer_mean(model: Model, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
    """MEAN over H and W of an NHWC int8 tensor as TFLite computes it: the table's multiplier (input scale /
    output scale) divided by the pixel count with as many extra bits as that count needs (up to 32, keeping
    the shift >= -31), then one requantization of the sum of (x - input zero point)."""
    x = model.graph.tensors[op.inputs[0]]
    if kernel.suffix != "s8":
        raise kernels.unsupported(op, kernel.suffix, "the generated mean loop is for int8 activations")
    if len(x.shape) != 4 or list(op.attrs.get("axes", [])) != [1, 2]:
        raise kernels.unsupported(op, kernel.suffix, f"it averages axes {op.attrs.get('axes')} of a rank-"
                                                     f"{len(x.shape)} tensor (only H and W of NHWC)")
    batches, height, width, channels = (int(d) for d in x.shape)
    pixels = height * width
    extra = min(pixels.bit_length() - 1, 32, 31 + int(q["shift"]))
    multiplier = (int(q["multiplier"]) << extra) // pixels
    shift = int(q["shift"]) - extra
    if not -31 <= shift <= 31 or multiplier <= 0:
        raise kernels.unsupported(op, kernel.suffix, f"its scales need a shift of {shift} (outside -31..31)")
    return {"batches": batches, "pixels": pixels, "channels": channels, "input_offset": q["input_offset"],
            "output_offset": q["output_offset"], "multiplier": multiplier, "shift": shift}


def layer_pad(model: Model, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
    """Shapes and padding widened to rank 4 (leading axes of 1) for the generated pad loop."""
    x = model.graph.tensors[op.inputs[0]]
    rank = len(x.shape)
    pads = [[int(before), int(after)] for before, after in op.attrs.get("pads", [])]
    if rank > 4 or len(pads) != rank:
        raise kernels.unsupported(op, kernel.suffix, f"it pads a rank-{rank} tensor (at most 4)")
    if model.scale_zp(op.inputs[0]) != model.scale_zp(op.outputs[0]):
        raise kernels.unsupported(op, kernel.suffix, "its input and output quantizations differ")
    widen = [[0, 0]] * (4 - rank)
    in_shape = [1] * (4 - rank) + [int(d) for d in x.shape]
    before = [p[0] for p in widen + pads]
    out_shape = [d + b + a for d, (b, a) in zip(in_shape, widen + pads)]
    if out_shape != [1] * (4 - rank) + [int(d) for d in model.graph.tensors[op.outputs[0]].shape]:
        raise NnsconsError(None, f"codegen: pad {op.name}: its output shape does not match its paddings")
    return {"in_shape": in_shape, "before": before, "out_shape": out_shape, "value": int(q["pad_value"])}


# ---- requantization between integer types ---------------------------------------------------------------------
def layer_requantize(model: Model, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
    """A quantize between integer types (not both int8): the quantization table's one requantization."""
    return {"input_offset": q["input_offset"], "multiplier": q["multiplier"], "shift": q["shift"],
            "output_offset": q["output_offset"], "size": model.graph.tensors[op.outputs[0]].size,
            "input_ctype": CTYPES[model.act_dtype(op.inputs[0])]}


def requantize_kinds(layers: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The generated requantizing loops the layers call, one per pair of word sizes (the kernel's suffix)."""
    pairs = {layer["suffix"]: (layer["input_ctype"], layer["ctype"]) for layer in layers
             if layer["kind"] == "requantize"}
    return [{"suffix": suffix, "input": source, "output": target,
             "min": target.upper().replace("_T", "_MIN"), "max": target.upper().replace("_T", "_MAX")}
            for suffix, (source, target) in sorted(pairs.items())]


# ---- int8 lookup tables --------------------------------------------------------------------------------------------
def layer_lookup(model: Model, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
    """logistic / tanh / leaky_relu on int8: one table of the 256 results (TFLite Micro's arithmetic,
    nnscons.fixedpoint)."""
    if kernel.suffix != "s8":
        raise kernels.unsupported(op, kernel.suffix, "the lookup table is for int8 activations")
    if op.type == "leaky_relu":
        return _lookup_table(model, op, _leaky_relu_table(op, q, kernel), "leaky ReLU")
    if op.type == "quantize":
        table = fixedpoint.requantize_s8(int(q["input_offset"]), int(q["output_offset"]),
                                         (int(q["multiplier"]), int(q["shift"])))
        return _lookup_table(model, op, table, "requantization")
    scale, zero_point = model.scale_zp(op.inputs[0])
    required = {"logistic": (1.0 / 256, -128), "tanh": (1.0 / 128, 0)}[op.type]
    if model.scale_zp(op.outputs[0]) != required:
        raise kernels.unsupported(op, kernel.suffix, f"its output must have scale {required[0]:g} and zero "
                                                     f"point {required[1]} (TFLite's int8 {op.type})")
    try:
        table = (fixedpoint.logistic_s8 if op.type == "logistic" else fixedpoint.tanh_s8)(zero_point, scale)
    except ValueError as e:
        raise kernels.unsupported(op, kernel.suffix, str(e)) from None
    return _lookup_table(model, op, table, op.type)


def _leaky_relu_table(op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> np.ndarray:
    if "alpha_multiplier" not in q:
        raise kernels.unsupported(op, kernel.suffix, f"alpha {q.get('alpha')} (a negative slope) is not "
                                                     f"supported")
    return fixedpoint.leaky_relu_s8(int(q["input_offset"]), int(q["output_offset"]),
                                    (int(q["multiplier"]), int(q["shift"])),
                                    (int(q["alpha_multiplier"]), int(q["alpha_shift"])))


def _lookup_table(model: Model, op: ir.Op, table: np.ndarray, what: str) -> dict[str, Any]:
    in_scale, in_zero_point = model.scale_zp(op.inputs[0])
    name = model.constant(f"{op.name}.table", f"{model.name}_{op.name}_table", "int8_t", table.astype(np.int64),
                          [f"{op.name}: {what} of every int8 input -128..127 (input scale {in_scale:.6g} zero "
                           f"point {in_zero_point}), TFLite's integer arithmetic"])
    return {"table": name, "size": model.graph.tensors[op.outputs[0]].size}


# ---- clamp, reshape ------------------------------------------------------------------------------------------------
def layer_clamp(model: Model, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
    """relu / relu6 / clip: a clamp loop on the stored integers, bounds from the table."""
    if model.scale_zp(op.inputs[0]) != model.scale_zp(op.outputs[0]):
        raise kernels.unsupported(op, kernel.suffix, "its input and output quantizations differ")
    return {"size": model.graph.tensors[op.outputs[0]].size, "act_min": q["act_min"], "act_max": q["act_max"]}


def layer_alias(model: Model, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
    """reshape: no code, the output aliases the input."""
    if model.graph.tensors[op.inputs[0]].is_const:
        raise kernels.unsupported(op, kernel.suffix, "it reshapes a constant")
    require_alias(model, op)
    if model.scale_zp(op.inputs[0]) != model.scale_zp(op.outputs[0]):
        raise kernels.unsupported(op, kernel.suffix, "its input and output quantizations differ")
    return {}
