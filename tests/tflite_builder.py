# SPDX-License-Identifier: Apache-2.0
# Part of nnscons; written from the published CMSIS-NN API, not derived from its source.
"""Single-operator ``.tflite`` models built in memory, to run one quantized op in TFLite Micro as an oracle.

Built with the ``flatbuffers`` Builder and the schema accessors of the ``tflite`` package. Supported ops:
CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, AVERAGE_POOL_2D, MAX_POOL_2D, SOFTMAX, ADD and MUL, for int8
(asymmetric activations) and int16x8 (symmetric int16 activations, int8 weights, int64 bias) quantization.
Weights are symmetric int8, per channel (conv: axis 0, depthwise: axis 3) or per tensor (FC). Every model has
the op's non-constant operands as graph inputs, in operand order, and its result as the single output.

Scales are stored as float32, so the helpers return the model bytes only; a test reads the quantization it
asked for back through :func:`float32` to compute kernel parameters from exactly what the model holds.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import flatbuffers
import numpy as np
import tflite

PADDING = {"SAME": tflite.Padding.SAME, "VALID": tflite.Padding.VALID}
ACTIVATION = {"NONE": tflite.ActivationFunctionType.NONE, "RELU": tflite.ActivationFunctionType.RELU,
              "RELU6": tflite.ActivationFunctionType.RELU6,
              "RELU_N1_TO_1": tflite.ActivationFunctionType.RELU_N1_TO_1}
TENSOR_TYPE = {np.dtype(np.float32): tflite.TensorType.FLOAT32, np.dtype(np.int8): tflite.TensorType.INT8,
               np.dtype(np.int16): tflite.TensorType.INT16,
               np.dtype(np.int32): tflite.TensorType.INT32, np.dtype(np.int64): tflite.TensorType.INT64}

OptionsWriter = Callable[[flatbuffers.Builder], int]


@dataclass
class Quant:
    """Affine quantization of a tensor: one scale/zero point, or one per slice along `axis`."""
    scale: Sequence[float]
    zero_point: Sequence[int]
    axis: int = 0


@dataclass
class Tensor:
    """A tensor of the model: constant when `data` is given, else a graph input (or the output)."""
    shape: Sequence[int]
    dtype: np.dtype
    quant: Optional[Quant] = None
    data: Optional[np.ndarray] = None
    variable: bool = False      # a state the op keeps between invocations (not a graph input)


def float32(values: Sequence[float] | float) -> np.ndarray:
    """Values as the model stores them (float32), widened back to float64."""
    return np.asarray(values, dtype=np.float32).astype(np.float64)


def conv_output_size(size: int, kernel: int, stride: int, dilation: int, padding: str) -> int:
    """TFLite output extent along one axis."""
    effective = (kernel - 1) * dilation + 1
    if padding == "SAME":
        return (size + stride - 1) // stride
    return (size - effective + stride) // stride


def padding_before(size: int, kernel: int, stride: int, dilation: int, out: int) -> int:
    """TFLite top/left padding (half the total, rounded down)."""
    effective = (kernel - 1) * dilation + 1
    return max((out - 1) * stride + effective - size, 0) // 2


# ---------------------------------------------------------------------------------------------------------------
# Flatbuffer assembly
# ---------------------------------------------------------------------------------------------------------------

def _int_vector(builder: flatbuffers.Builder, values: Sequence[int], dtype: type = np.int32) -> int:
    return builder.CreateNumpyVector(np.asarray(values, dtype=dtype))


def _aligned_bytes(builder: flatbuffers.Builder, payload: bytes, alignment: int = 16) -> int:
    """A [ubyte] vector whose data starts on an `alignment` boundary (constant data read as int32/int64)."""
    builder.StartVector(1, len(payload), alignment)
    builder.head = builder.head - len(payload)
    builder.Bytes[builder.head:builder.head + len(payload)] = payload
    return builder.EndVector()


def _quantization(builder: flatbuffers.Builder, quant: Quant) -> int:
    scale = builder.CreateNumpyVector(np.asarray(quant.scale, dtype=np.float32))
    zero_point = _int_vector(builder, quant.zero_point, np.int64)
    tflite.QuantizationParametersStart(builder)
    tflite.QuantizationParametersAddScale(builder, scale)
    tflite.QuantizationParametersAddZeroPoint(builder, zero_point)
    tflite.QuantizationParametersAddQuantizedDimension(builder, quant.axis)
    return tflite.QuantizationParametersEnd(builder)


def _tensor(builder: flatbuffers.Builder, tensor: Tensor, buffer_index: int, name: str) -> int:
    shape = _int_vector(builder, tensor.shape)
    name_offset = builder.CreateString(name)
    quant = _quantization(builder, tensor.quant) if tensor.quant is not None else None
    tflite.TensorStart(builder)
    tflite.TensorAddShape(builder, shape)
    tflite.TensorAddType(builder, TENSOR_TYPE[np.dtype(tensor.dtype)])
    tflite.TensorAddBuffer(builder, buffer_index)
    tflite.TensorAddName(builder, name_offset)
    if quant is not None:
        tflite.TensorAddQuantization(builder, quant)
    if tensor.variable:
        tflite.TensorAddIsVariable(builder, True)
    return tflite.TensorEnd(builder)


def _buffer(builder: flatbuffers.Builder, data: Optional[np.ndarray]) -> int:
    payload = None
    if data is not None:
        payload = _aligned_bytes(builder, np.ascontiguousarray(data).astype(data.dtype.newbyteorder("<")).tobytes())
    tflite.BufferStart(builder)
    if payload is not None:
        tflite.BufferAddData(builder, payload)
    return tflite.BufferEnd(builder)


def _offsets_vector(builder: flatbuffers.Builder, offsets: Sequence[int]) -> int:
    builder.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        builder.PrependUOffsetTRelative(offset)
    return builder.EndVector()


def single_op_model(opcode: int, operands: Sequence[Optional[Tensor]], output: Tensor, options_type: int,
                    write_options: Optional[OptionsWriter]) -> bytes:
    """A model with one operator. `operands` are its inputs in order (None = optional input left out)."""
    builder = flatbuffers.Builder(1024)
    tensors = [t for t in operands if t is not None] + [output]
    # Buffer 0 is the empty sentinel; each constant gets its own buffer, other tensors point at buffer 0.
    buffer_data: list[Optional[np.ndarray]] = [None]
    buffer_index = []
    for t in tensors:
        if t.data is not None:
            buffer_index.append(len(buffer_data))
            buffer_data.append(np.asarray(t.data, dtype=t.dtype))
        else:
            buffer_index.append(0)
    tensor_offsets = [_tensor(builder, t, b, f"t{i}") for i, (t, b) in enumerate(zip(tensors, buffer_index))]
    tensor_ids, next_id = [], 0
    for t in operands:
        tensor_ids.append(-1 if t is None else next_id)
        next_id += t is not None
    output_id = len(tensors) - 1
    graph_inputs = [i for i, t in zip(tensor_ids, operands) if t is not None and t.data is None and not t.variable]

    options = write_options(builder) if write_options is not None else None
    op_inputs = _int_vector(builder, tensor_ids)
    op_outputs = _int_vector(builder, [output_id])
    tflite.OperatorStart(builder)
    tflite.OperatorAddOpcodeIndex(builder, 0)
    tflite.OperatorAddInputs(builder, op_inputs)
    tflite.OperatorAddOutputs(builder, op_outputs)
    if options is not None:
        tflite.OperatorAddBuiltinOptionsType(builder, options_type)
        tflite.OperatorAddBuiltinOptions(builder, options)
    operator = tflite.OperatorEnd(builder)

    tensors_vector = _offsets_vector(builder, tensor_offsets)
    inputs_vector = _int_vector(builder, graph_inputs)
    outputs_vector = _int_vector(builder, [output_id])
    operators_vector = _offsets_vector(builder, [operator])
    tflite.SubGraphStart(builder)
    tflite.SubGraphAddTensors(builder, tensors_vector)
    tflite.SubGraphAddInputs(builder, inputs_vector)
    tflite.SubGraphAddOutputs(builder, outputs_vector)
    tflite.SubGraphAddOperators(builder, operators_vector)
    subgraph = tflite.SubGraphEnd(builder)

    tflite.OperatorCodeStart(builder)
    tflite.OperatorCodeAddDeprecatedBuiltinCode(builder, min(opcode, 127))
    tflite.OperatorCodeAddBuiltinCode(builder, opcode)
    tflite.OperatorCodeAddVersion(builder, 1)
    operator_code = tflite.OperatorCodeEnd(builder)

    buffers_vector = _offsets_vector(builder, [_buffer(builder, d) for d in buffer_data])
    codes_vector = _offsets_vector(builder, [operator_code])
    subgraphs_vector = _offsets_vector(builder, [subgraph])
    description = builder.CreateString("nnscons test model")
    tflite.ModelStart(builder)
    tflite.ModelAddVersion(builder, 3)
    tflite.ModelAddOperatorCodes(builder, codes_vector)
    tflite.ModelAddSubgraphs(builder, subgraphs_vector)
    tflite.ModelAddDescription(builder, description)
    tflite.ModelAddBuffers(builder, buffers_vector)
    builder.Finish(tflite.ModelEnd(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


# ---------------------------------------------------------------------------------------------------------------
# Per-op models
# ---------------------------------------------------------------------------------------------------------------

def _activation_type(dtype: np.dtype) -> tuple[np.dtype, np.dtype]:
    """(activation dtype, bias dtype) for int8 or int16x8 quantization."""
    return (np.dtype(np.int16), np.dtype(np.int64)) if np.dtype(dtype) == np.int16 else \
        (np.dtype(np.int8), np.dtype(np.int32))


def _bias_tensor(bias: Optional[np.ndarray], bias_scales: np.ndarray, dtype: np.dtype,
                 axis: int = 0) -> Optional[Tensor]:
    if bias is None:
        return None
    return Tensor([len(bias)], dtype, Quant(list(bias_scales), [0] * len(bias), axis), np.asarray(bias, dtype))


def conv2d(x_shape: Sequence[int], x_quant: Quant, weights: np.ndarray, w_scales: Sequence[float],
           bias: Optional[np.ndarray], out_quant: Quant, *, stride: tuple[int, int] = (1, 1), padding: str = "SAME",
           dilation: tuple[int, int] = (1, 1), activation: str = "NONE", dtype: type = np.int8,
           bias_dtype: Optional[type] = None) -> bytes:
    """CONV_2D: x NHWC, weights OHWI int8 with per-output-channel scales; bias int32 (int8) or int64 (int16)."""
    act_type, default_bias = _activation_type(dtype)
    bias_type = np.dtype(bias_dtype) if bias_dtype is not None else default_bias
    n, h, w, _ = x_shape
    out_c, kh, kw, _ = weights.shape
    out_shape = [n, conv_output_size(h, kh, stride[0], dilation[0], padding),
                 conv_output_size(w, kw, stride[1], dilation[1], padding), out_c]
    bias_scales = float32(x_quant.scale[0]) * float32(w_scales)
    operands = [Tensor(x_shape, act_type, x_quant),
                Tensor(weights.shape, np.int8, Quant(list(w_scales), [0] * out_c, 0), weights),
                _bias_tensor(bias, bias_scales, bias_type)]

    def options(builder: flatbuffers.Builder) -> int:
        tflite.Conv2DOptionsStart(builder)
        tflite.Conv2DOptionsAddPadding(builder, PADDING[padding])
        tflite.Conv2DOptionsAddStrideH(builder, stride[0])
        tflite.Conv2DOptionsAddStrideW(builder, stride[1])
        tflite.Conv2DOptionsAddDilationHFactor(builder, dilation[0])
        tflite.Conv2DOptionsAddDilationWFactor(builder, dilation[1])
        tflite.Conv2DOptionsAddFusedActivationFunction(builder, ACTIVATION[activation])
        return tflite.Conv2DOptionsEnd(builder)

    return single_op_model(tflite.BuiltinOperator.CONV_2D, operands, Tensor(out_shape, act_type, out_quant),
                           tflite.BuiltinOptions.Conv2DOptions, options)


def depthwise_conv2d(x_shape: Sequence[int], x_quant: Quant, weights: np.ndarray, w_scales: Sequence[float],
                     bias: Optional[np.ndarray], out_quant: Quant, *, depth_multiplier: int,
                     stride: tuple[int, int] = (1, 1), padding: str = "SAME", dilation: tuple[int, int] = (1, 1),
                     activation: str = "NONE", dtype: type = np.int8) -> bytes:
    """DEPTHWISE_CONV_2D: weights [1, KH, KW, C_IN * depth_multiplier] int8, per-channel scales on axis 3."""
    act_type, bias_type = _activation_type(dtype)
    n, h, w, _ = x_shape
    _, kh, kw, out_c = weights.shape
    out_shape = [n, conv_output_size(h, kh, stride[0], dilation[0], padding),
                 conv_output_size(w, kw, stride[1], dilation[1], padding), out_c]
    bias_scales = float32(x_quant.scale[0]) * float32(w_scales)
    operands = [Tensor(x_shape, act_type, x_quant),
                Tensor(weights.shape, np.int8, Quant(list(w_scales), [0] * out_c, 3), weights),
                _bias_tensor(bias, bias_scales, bias_type)]

    def options(builder: flatbuffers.Builder) -> int:
        tflite.DepthwiseConv2DOptionsStart(builder)
        tflite.DepthwiseConv2DOptionsAddPadding(builder, PADDING[padding])
        tflite.DepthwiseConv2DOptionsAddStrideH(builder, stride[0])
        tflite.DepthwiseConv2DOptionsAddStrideW(builder, stride[1])
        tflite.DepthwiseConv2DOptionsAddDepthMultiplier(builder, depth_multiplier)
        tflite.DepthwiseConv2DOptionsAddDilationHFactor(builder, dilation[0])
        tflite.DepthwiseConv2DOptionsAddDilationWFactor(builder, dilation[1])
        tflite.DepthwiseConv2DOptionsAddFusedActivationFunction(builder, ACTIVATION[activation])
        return tflite.DepthwiseConv2DOptionsEnd(builder)

    return single_op_model(tflite.BuiltinOperator.DEPTHWISE_CONV_2D, operands,
                           Tensor(out_shape, act_type, out_quant), tflite.BuiltinOptions.DepthwiseConv2DOptions,
                           options)


def fully_connected(x_shape: Sequence[int], x_quant: Quant, weights: np.ndarray, w_scale: float,
                    bias: Optional[np.ndarray], out_quant: Quant, *, activation: str = "NONE",
                    dtype: type = np.int8) -> bytes:
    """FULLY_CONNECTED: x [N, C_IN], weights [C_OUT, C_IN] int8 with one scale; output [N, C_OUT]."""
    act_type, bias_type = _activation_type(dtype)
    out_c = weights.shape[0]
    bias_scale = float32(x_quant.scale[0]) * float32(w_scale)
    operands = [Tensor(x_shape, act_type, x_quant), Tensor(weights.shape, np.int8, Quant([w_scale], [0]), weights),
                _bias_tensor(bias, np.full(out_c, bias_scale), bias_type)]

    def options(builder: flatbuffers.Builder) -> int:
        tflite.FullyConnectedOptionsStart(builder)
        tflite.FullyConnectedOptionsAddFusedActivationFunction(builder, ACTIVATION[activation])
        return tflite.FullyConnectedOptionsEnd(builder)

    return single_op_model(tflite.BuiltinOperator.FULLY_CONNECTED, operands,
                           Tensor([x_shape[0], out_c], act_type, out_quant),
                           tflite.BuiltinOptions.FullyConnectedOptions, options)


def pool2d(kind: str, x_shape: Sequence[int], quant: Quant, *, filter_hw: tuple[int, int],
           stride: tuple[int, int], padding: str = "SAME", activation: str = "NONE", dtype: type = np.int8) -> bytes:
    """AVERAGE_POOL_2D (kind "avg") or MAX_POOL_2D (kind "max"); output quantization equals the input's."""
    act_type, _ = _activation_type(dtype)
    n, h, w, c = x_shape
    out_shape = [n, conv_output_size(h, filter_hw[0], stride[0], 1, padding),
                 conv_output_size(w, filter_hw[1], stride[1], 1, padding), c]
    opcode = {"avg": tflite.BuiltinOperator.AVERAGE_POOL_2D, "max": tflite.BuiltinOperator.MAX_POOL_2D}[kind]

    def options(builder: flatbuffers.Builder) -> int:
        tflite.Pool2DOptionsStart(builder)
        tflite.Pool2DOptionsAddPadding(builder, PADDING[padding])
        tflite.Pool2DOptionsAddStrideH(builder, stride[0])
        tflite.Pool2DOptionsAddStrideW(builder, stride[1])
        tflite.Pool2DOptionsAddFilterHeight(builder, filter_hw[0])
        tflite.Pool2DOptionsAddFilterWidth(builder, filter_hw[1])
        tflite.Pool2DOptionsAddFusedActivationFunction(builder, ACTIVATION[activation])
        return tflite.Pool2DOptionsEnd(builder)

    return single_op_model(opcode, [Tensor(x_shape, act_type, quant)], Tensor(out_shape, act_type, quant),
                           tflite.BuiltinOptions.Pool2DOptions, options)


def softmax(shape: Sequence[int], x_quant: Quant, *, beta: float = 1.0, dtype: type = np.int8,
            int16_output: bool = False) -> bytes:
    """SOFTMAX over the last axis; output quantization is the fixed one TFLite requires (int8: 1/256, -128;
    int16: 1/32768, 0; int8 in and int16 out with ``int16_output``: 1/65536, -32768)."""
    act_type, _ = _activation_type(dtype)
    out_quant = Quant([1 / 32768], [0]) if act_type == np.int16 else Quant([1 / 256], [-128])
    out_type = act_type
    if int16_output:
        out_quant, out_type = Quant([1 / 65536], [-32768]), np.dtype(np.int16)

    def options(builder: flatbuffers.Builder) -> int:
        tflite.SoftmaxOptionsStart(builder)
        tflite.SoftmaxOptionsAddBeta(builder, beta)
        return tflite.SoftmaxOptionsEnd(builder)

    return single_op_model(tflite.BuiltinOperator.SOFTMAX, [Tensor(shape, act_type, x_quant)],
                           Tensor(shape, out_type, out_quant), tflite.BuiltinOptions.SoftmaxOptions, options)


def add(shape: Sequence[int], quant_1: Quant, quant_2: Quant, out_quant: Quant, *, activation: str = "NONE",
        dtype: type = np.int8) -> bytes:
    """ADD of two same-shaped tensors (general scales: pot_scale_int16 = false for int16)."""
    return _add_or_sub("Add", shape, quant_1, quant_2, out_quant, activation, dtype)


def _add_or_sub(kind: str, shape: Sequence[int], quant_1: Quant, quant_2: Quant, out_quant: Quant, activation: str,
                dtype: type) -> bytes:
    """ADD or SUB (``kind`` "Add" / "Sub": their options tables have the same fields)."""
    act_type, _ = _activation_type(dtype)

    def options(builder: flatbuffers.Builder) -> int:
        getattr(tflite, f"{kind}OptionsStart")(builder)
        getattr(tflite, f"{kind}OptionsAddFusedActivationFunction")(builder, ACTIVATION[activation])
        getattr(tflite, f"{kind}OptionsAddPotScaleInt16")(builder, False)
        return getattr(tflite, f"{kind}OptionsEnd")(builder)

    return single_op_model(getattr(tflite.BuiltinOperator, kind.upper()),
                           [Tensor(shape, act_type, quant_1), Tensor(shape, act_type, quant_2)],
                           Tensor(shape, act_type, out_quant), getattr(tflite.BuiltinOptions, f"{kind}Options"),
                           options)


def mul(shape: Sequence[int], quant_1: Quant, quant_2: Quant, out_quant: Quant, *, activation: str = "NONE",
        dtype: type = np.int8) -> bytes:
    """MUL of two same-shaped tensors."""
    act_type, _ = _activation_type(dtype)

    def options(builder: flatbuffers.Builder) -> int:
        tflite.MulOptionsStart(builder)
        tflite.MulOptionsAddFusedActivationFunction(builder, ACTIVATION[activation])
        return tflite.MulOptionsEnd(builder)

    return single_op_model(tflite.BuiltinOperator.MUL, [Tensor(shape, act_type, quant_1),
                                                        Tensor(shape, act_type, quant_2)],
                           Tensor(shape, act_type, out_quant), tflite.BuiltinOptions.MulOptions, options)


def concatenation(shapes: Sequence[Sequence[int]], quant: Quant, *, axis: int, dtype: type = np.int8) -> bytes:
    """CONCATENATION of len(shapes) graph inputs along ``axis``, every tensor with the same quantization."""
    dtype = np.dtype(dtype)
    rank = len(shapes[0])
    out_shape = list(shapes[0])
    out_shape[axis] = sum(int(s[axis]) for s in shapes)
    inputs = [Tensor(list(s), dtype, quant) for s in shapes]

    def options(builder: flatbuffers.Builder) -> int:
        tflite.ConcatenationOptionsStart(builder)
        tflite.ConcatenationOptionsAddAxis(builder, axis if axis >= 0 else axis + rank)
        tflite.ConcatenationOptionsAddFusedActivationFunction(builder, tflite.ActivationFunctionType.NONE)
        return tflite.ConcatenationOptionsEnd(builder)

    return single_op_model(tflite.BuiltinOperator.CONCATENATION, inputs, Tensor(out_shape, dtype, quant),
                           tflite.BuiltinOptions.ConcatenationOptions, options)


def mean(x_shape: Sequence[int], x_quant: Quant, out_quant: Quant, *, axes: Sequence[int] = (1, 2),
         keep_dims: bool = True, dtype: type = np.int8) -> bytes:
    """MEAN over ``axes`` (a constant int32 axis tensor), e.g. Keras' GlobalAveragePooling2D."""
    dtype = np.dtype(dtype)
    out_shape = [1 if i in axes else int(d) for i, d in enumerate(x_shape)] if keep_dims else \
        [int(d) for i, d in enumerate(x_shape) if i not in axes]
    axis = Tensor([len(axes)], np.dtype(np.int32), None, np.asarray(axes, dtype=np.int32))

    def options(builder: flatbuffers.Builder) -> int:
        tflite.ReducerOptionsStart(builder)
        tflite.ReducerOptionsAddKeepDims(builder, keep_dims)
        return tflite.ReducerOptionsEnd(builder)

    return single_op_model(tflite.BuiltinOperator.MEAN, [Tensor(list(x_shape), dtype, x_quant), axis],
                           Tensor(out_shape, dtype, out_quant), tflite.BuiltinOptions.ReducerOptions, options)


def pad(x_shape: Sequence[int], quant: Quant, paddings: Sequence[Sequence[int]], *, dtype: type = np.int8) -> bytes:
    """PAD with constant int32 paddings [rank][2] (fills with the zero point, i.e. real 0)."""
    dtype = np.dtype(dtype)
    out_shape = [int(d) + int(b) + int(a) for d, (b, a) in zip(x_shape, paddings)]
    pads = Tensor([len(x_shape), 2], np.dtype(np.int32), None, np.asarray(paddings, dtype=np.int32))

    def options(builder: flatbuffers.Builder) -> int:
        tflite.PadOptionsStart(builder)
        return tflite.PadOptionsEnd(builder)

    return single_op_model(tflite.BuiltinOperator.PAD, [Tensor(list(x_shape), dtype, quant), pads],
                           Tensor(out_shape, dtype, quant), tflite.BuiltinOptions.PadOptions, options)


def unary(op: str, shape: Sequence[int], x_quant: Quant, out_quant: Quant, *, dtype: type = np.int8,
          out_dtype: Optional[type] = None) -> bytes:
    """An element-wise op without options (LOGISTIC, TANH, QUANTIZE, ...); the output's type is the input's unless
    ``out_dtype`` says otherwise."""
    opcode = getattr(tflite.BuiltinOperator, op)
    return single_op_model(opcode, [Tensor(list(shape), np.dtype(dtype), x_quant)],
                           Tensor(list(shape), np.dtype(out_dtype or dtype), out_quant), 0, None)


def leaky_relu(shape: Sequence[int], x_quant: Quant, out_quant: Quant, *, alpha: float) -> bytes:
    """LEAKY_RELU (int8)."""
    dtype = np.dtype(np.int8)

    def options(builder: flatbuffers.Builder) -> int:
        tflite.LeakyReluOptionsStart(builder)
        tflite.LeakyReluOptionsAddAlpha(builder, alpha)
        return tflite.LeakyReluOptionsEnd(builder)

    return single_op_model(tflite.BuiltinOperator.LEAKY_RELU, [Tensor(list(shape), dtype, x_quant)],
                           Tensor(list(shape), dtype, out_quant), tflite.BuiltinOptions.LeakyReluOptions, options)


def sub(shape: Sequence[int], quant_1: Quant, quant_2: Quant, out_quant: Quant, *, activation: str = "NONE",
        dtype: type = np.int8) -> bytes:
    """SUB of two same-shaped tensors (input 1 - input 2)."""
    return _add_or_sub("Sub", shape, quant_1, quant_2, out_quant, activation, dtype)
