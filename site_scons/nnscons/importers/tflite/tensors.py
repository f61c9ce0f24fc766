"""TFLite tensors -> IR tensors and their constant data, for the conversion pass.

:func:`tensor` creates an IR tensor on first use: it checks the type, the static shape (only the batch may be
unknown), the constant data's size and the quantization parameters, and names the tensor after its TFLite label.
The output of a DEQUANTIZE of constant data (float16 or weight-only int8 models) becomes a float32 constant.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from ... import ir
from .context import ConversionContext
from .records import DTYPES, MAX_ELEMENTS, QUANTIZED_DTYPES, TYPE_NAMES, TensorRec


def describe(rec: TensorRec) -> str:
    """How error messages name a tensor (its label is untrusted text: made printable and short)."""
    return f"tensor #{rec.index} '{ir.c_comment(rec.label, 60)}'" if rec.label else f"tensor #{rec.index}"


def tensor(ctx: ConversionContext, index: int) -> str:
    """The IR name of TFLite tensor ``index``, creating the IR tensor (and its data) on first use."""
    if index in ctx.ir_names:
        return ctx.ir_names[index]
    rec = ctx.model.tensors[index]
    if index in ctx.folded:
        return dequantized_constant(ctx, index)
    if rec.type not in DTYPES:
        raise ctx.fail(f"{describe(rec)} has type {TYPE_NAMES.get(rec.type, rec.type)}, which is not supported")
    if rec.is_variable:
        raise ctx.fail(f"{describe(rec)} is a variable (stateful models are not supported)")
    if rec.is_sparse:
        raise ctx.fail(f"{describe(rec)} is sparse (sparse models are not supported)")
    dtype, file_dtype = DTYPES[rec.type]
    shape = static_shape(ctx, rec)
    is_const = rec.data is not None
    if not is_const and index not in ctx.producer and index not in ctx.model.inputs:
        raise ctx.fail(f"{describe(rec)} has no data and is neither a graph input nor computed by an operator")
    quant = tensor_quant(ctx, rec, shape, dtype, is_const)
    return add_tensor(ctx, index, shape, dtype, is_const, quant,
                      constant(ctx, rec, shape, file_dtype) if is_const else None)


def add_tensor(ctx: ConversionContext, index: int, shape: list[int], dtype: str, is_const: bool,
               quant: Optional[ir.Quant], data: Optional[np.ndarray]) -> str:
    label = ctx.model.tensors[index].label
    name = ctx.names.unique(_name_hint(label))
    ctx.tensors[name] = ir.Tensor(name=name, shape=shape, dtype=dtype, label=label, is_const=is_const, quant=quant)
    if data is not None:
        ctx.params[name] = data
    ctx.ir_names[index] = name
    return name


def dequantized_constant(ctx: ConversionContext, index: int) -> str:
    """The float32 constant that a folded DEQUANTIZE computes from (float16 or quantized) constant data."""
    rec, source = ctx.model.tensors[index], ctx.model.tensors[ctx.folded[index]]
    shape = static_shape(ctx, source)
    if static_shape(ctx, rec) != shape or rec.type != 0:
        raise ctx.fail(f"{describe(rec)}: DEQUANTIZE of a constant must give float32 of the same shape")
    if source.type == 1:  # FLOAT16
        data = constant(ctx, source, shape, "<f2").astype(np.float32)
    elif source.type in DTYPES and DTYPES[source.type][0] in QUANTIZED_DTYPES:
        quant = tensor_quant(ctx, source, shape, DTYPES[source.type][0], True)
        assert quant is not None  # tensor_quant() insists on it for these types
        data = _dequantize(constant(ctx, source, shape, DTYPES[source.type][1]), quant)
    else:
        raise ctx.fail(f"{describe(source)}: cannot dequantize a constant of type "
                       f"{TYPE_NAMES.get(source.type, source.type)}")
    return add_tensor(ctx, index, shape, "float32", True, None, data)


def static_shape(ctx: ConversionContext, rec: TensorRec) -> list[int]:
    """The tensor's shape for the IR: an unknown batch becomes 1; any other unknown or bad dimension fails."""
    shape = list(rec.shape)
    signature = rec.signature
    if signature is not None and len(signature) != len(shape):
        raise ctx.fail(f"corrupt TFLite file ({describe(rec)} has a shape signature of another rank)")
    dims = signature if signature is not None else shape
    for axis, dim in enumerate(dims):
        if dim >= 0 or (axis == 0 and len(dims) >= 2):
            continue
        raise ctx.fail(f"{describe(rec)} has a dynamic shape {dims}: only the batch dimension may "
                       "be unknown; export the model with a fixed input shape")
    if len(dims) >= 2 and dims[0] < 0:
        shape[0] = 1  # unknown batch: the IR describes one sample
    if any(d < 0 for d in shape):
        raise ctx.fail(f"corrupt TFLite file ({describe(rec)} has shape {shape})")
    if 0 in shape:
        raise ctx.fail(f"{describe(rec)} is empty (shape {shape})")
    if math.prod(shape) > MAX_ELEMENTS:
        raise ctx.fail(f"{describe(rec)} is too large (shape {shape})")
    return shape


def constant(ctx: ConversionContext, rec: TensorRec, shape: list[int], file_dtype: str) -> np.ndarray:
    """The tensor's constant data as an array of ``shape``, after checking its size."""
    assert rec.data is not None
    dtype = np.dtype(file_dtype)
    expected = math.prod(shape) * dtype.itemsize
    if len(rec.data) != expected:
        raise ctx.fail(f"corrupt TFLite file ({describe(rec)} holds {len(rec.data)} bytes of data, "
                       f"its shape {shape} needs {expected})")
    # A native-endian copy: params own their data and stay valid after the file bytes are gone
    return np.frombuffer(rec.data, dtype=dtype).astype(dtype.newbyteorder("="), copy=True).reshape(shape)


def tensor_quant(ctx: ConversionContext, rec: TensorRec, shape: list[int], dtype: str,
                 is_const: bool) -> Optional[ir.Quant]:
    """The IR quantization of a tensor (None for float32), after checking that it fits the tensor."""
    q = rec.quant
    if dtype == "float32":
        return None  # float tensors compute in float, whatever range annotations they carry
    if q is None:
        if dtype in QUANTIZED_DTYPES:
            raise ctx.fail(f"{describe(rec)} is {dtype} without quantization parameters")
        return None
    if q.custom:
        raise ctx.fail(f"{describe(rec)} uses a custom quantization format, which is not supported")
    scales, zero_points = q.scale, q.zero_point or [0] * len(q.scale)
    if len(zero_points) != len(scales):
        raise ctx.fail(f"{describe(rec)} has {len(scales)} quantization scales but {len(zero_points)} zero points")
    problem = ir.scale_problem(scales)
    if problem:
        raise ctx.fail(f"{describe(rec)} has an invalid {problem}")
    if dtype in QUANTIZED_DTYPES:
        info = np.iinfo(dtype)
        if not all(info.min <= z <= info.max for z in zero_points):
            raise ctx.fail(f"{describe(rec)} has a zero point outside the {dtype} range")
    if len(scales) == 1:
        return ir.Quant(scale=scales, zero_point=zero_points, axis=None)
    axis = q.dimension
    if len(shape) == 1 and shape[0] == len(scales):
        axis = 0  # e.g. a 1-D bias whose quantized_dimension names the filter's channel axis (3)
    if not 0 <= axis < len(shape) or shape[axis] != len(scales):
        raise ctx.fail(f"{describe(rec)} has {len(scales)} quantization scales along axis {axis}, "
                       f"which does not fit its shape {shape}")
    if not is_const:
        raise ctx.fail(f"{describe(rec)} is an activation quantized per channel, which is not supported")
    return ir.Quant(scale=scales, zero_point=zero_points, axis=axis)


def _dequantize(data: np.ndarray, quant: ir.Quant) -> np.ndarray:
    """Real values ``scale * (q - zero_point)`` as float32, per tensor or along the per-channel axis."""
    scale = np.asarray(quant.scale, dtype=np.float64)
    zero_point = np.asarray(quant.zero_point, dtype=np.float64)
    if quant.axis is not None:
        along_axis = [1] * data.ndim
        along_axis[quant.axis] = -1
        scale, zero_point = scale.reshape(along_axis), zero_point.reshape(along_axis)
    return (scale * (data.astype(np.float64) - zero_point)).astype(np.float32)


def _name_hint(label: str) -> str:
    """A readable base for an IR name: the first of the ``;``-joined names TFLite gives a fused tensor, and
    of its ``/`` path the trailing components that fit in an identifier."""
    first = label.split(";")[0].strip()
    parts = [p for p in first.split("/") if p]
    hint = ""
    for part in reversed(parts):
        candidate = f"{part}_{hint}" if hint else part
        if len(candidate) > ir.MAX_IDENTIFIER and hint:
            break
        hint = candidate
    return hint
