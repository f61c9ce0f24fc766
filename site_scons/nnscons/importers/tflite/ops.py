"""The registry: every TFLite builtin operator the importer converts, who converts it (``OP_HANDLERS``) and which
IR op it becomes (``IR_OP_TYPES``). The driver (:mod:`.convert`) dispatches through ``OP_HANDLERS`` and rejects
any operator missing from it, listing :func:`supported_operators`."""
from __future__ import annotations

from . import conv_pool, elementwise, fully_connected, quantize_ops, recurrent, shape_ops
from .lowering import Handler

OP_HANDLERS: dict[str, Handler] = {
    "ADD": elementwise.convert_add,
    "AVERAGE_POOL_2D": conv_pool.convert_average_pool_2d,
    "CONCATENATION": shape_ops.convert_concatenation,
    "CONV_2D": conv_pool.convert_conv_2d,
    "DEPTHWISE_CONV_2D": conv_pool.convert_depthwise_conv_2d,
    "DEQUANTIZE": quantize_ops.convert_dequantize,
    "FULLY_CONNECTED": fully_connected.convert_fully_connected,
    "LEAKY_RELU": elementwise.convert_leaky_relu,
    "LOGISTIC": elementwise.convert_logistic,
    "MAX_POOL_2D": conv_pool.convert_max_pool_2d,
    "MEAN": shape_ops.convert_mean,
    "MUL": elementwise.convert_mul,
    "PAD": shape_ops.convert_pad,
    "PADV2": shape_ops.convert_padv2,
    "QUANTIZE": quantize_ops.convert_quantize,
    "RELU": elementwise.convert_relu,
    "RELU6": elementwise.convert_relu6,
    "RELU_0_TO_1": elementwise.convert_relu_0_to_1,
    "RELU_N1_TO_1": elementwise.convert_relu_n1_to_1,
    "RESHAPE": shape_ops.convert_reshape,
    "SOFTMAX": elementwise.convert_softmax,
    "SQUEEZE": shape_ops.convert_squeeze,
    "SUB": elementwise.convert_sub,
    "SVDF": recurrent.convert_svdf,
    "TANH": elementwise.convert_tanh,
    "UNIDIRECTIONAL_SEQUENCE_LSTM": recurrent.convert_unidirectional_sequence_lstm,
}

# The IR op type of each converted operator. Known before any handler runs: the driver names all IR ops first.
IR_OP_TYPES: dict[str, str] = {
    "ADD": "add", "AVERAGE_POOL_2D": "avg_pool2d", "CONCATENATION": "concat", "CONV_2D": "conv2d",
    "DEPTHWISE_CONV_2D": "depthwise_conv2d", "DEQUANTIZE": "dequantize", "FULLY_CONNECTED": "fully_connected",
    "LEAKY_RELU": "leaky_relu", "LOGISTIC": "logistic", "MAX_POOL_2D": "max_pool2d", "MEAN": "mean", "MUL": "mul",
    "PAD": "pad", "PADV2": "pad", "QUANTIZE": "quantize", "RELU": "relu", "RELU6": "relu6",
    "RELU_0_TO_1": "clip", "RELU_N1_TO_1": "clip", "RESHAPE": "reshape", "SOFTMAX": "softmax",
    "SQUEEZE": "reshape", "SUB": "sub", "SVDF": "svdf", "TANH": "tanh", "UNIDIRECTIONAL_SEQUENCE_LSTM": "lstm",
}
if IR_OP_TYPES.keys() != OP_HANDLERS.keys():
    raise AssertionError("tflite.ops: OP_HANDLERS and IR_OP_TYPES must name the same operators")


def supported_operators() -> list[str]:
    """The TFLite builtin operators this importer understands, sorted."""
    return sorted(OP_HANDLERS)
