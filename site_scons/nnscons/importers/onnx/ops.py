"""The registry: every ONNX op the importer converts, and the handler that converts it.

``OP_HANDLERS`` is used both for dispatch (:func:`~.convert.convert_nodes`) and for the up-front "supported ops" check
(:func:`check_supported`). Every op in :data:`.folding.FOLDERS` is here as well: the ones that only fold are
handled by :func:`~.shape_ops.reject_fold_only`, which they reach when they meet an activation.
"""
from __future__ import annotations

from ... import ir
from ...errors import NnsconsError
from . import conv, dense, elementwise, pool, qdq, recurrent, shape_ops
from .context import Handler
from .decode import DEFAULT_DOMAINS, Node

OP_HANDLERS: dict[str, Handler] = {
    "Conv": conv.convert_conv,
    "Gemm": dense.convert_gemm,
    "MatMul": dense.convert_matmul,
    "Add": elementwise.convert_binary,
    "Sub": elementwise.convert_binary,
    "Mul": elementwise.convert_binary,
    "Div": elementwise.convert_binary,
    "Relu": elementwise.convert_unary,
    "Clip": elementwise.convert_unary,
    "LeakyRelu": elementwise.convert_unary,
    "Sigmoid": elementwise.convert_unary,
    "Tanh": elementwise.convert_unary,
    "BatchNormalization": elementwise.convert_batchnorm,
    "Softmax": elementwise.convert_softmax,
    "MaxPool": pool.convert_pool,
    "AveragePool": pool.convert_pool,
    "GlobalAveragePool": pool.convert_global_pool,
    "GlobalMaxPool": pool.convert_global_pool,
    "ReduceMean": pool.convert_reduce_mean,
    "Concat": shape_ops.convert_concat,
    "Pad": shape_ops.convert_pad,
    "Reshape": shape_ops.convert_reshape,
    "Flatten": shape_ops.convert_reshape,
    "Squeeze": shape_ops.convert_reshape,
    "Unsqueeze": shape_ops.convert_reshape,
    "Transpose": shape_ops.convert_transpose,
    "Identity": shape_ops.convert_passthrough,
    "Dropout": shape_ops.convert_passthrough,
    "LSTM": recurrent.convert_lstm,
    "GRU": recurrent.convert_gru,
    "QuantizeLinear": qdq.convert_quantize_linear,
    "DequantizeLinear": qdq.convert_dequantize_linear,
    # shape arithmetic: folded at import (folding.FOLDERS), an error on activations
    "Constant": shape_ops.reject_fold_only,
    "Shape": shape_ops.reject_fold_only,
    "Size": shape_ops.reject_fold_only,
    "Gather": shape_ops.reject_fold_only,
    "Cast": shape_ops.reject_fold_only,
    "Slice": shape_ops.reject_fold_only,
    "ConstantOfShape": shape_ops.reject_fold_only,
    "Range": shape_ops.reject_fold_only,
}
SUPPORTED_OPS = tuple(sorted(OP_HANDLERS))


def check_supported(path: str, nodes: list[Node]) -> None:
    """Reject the first node of a foreign domain or of an op type without a handler."""
    for node in nodes:
        if node.proto.domain not in DEFAULT_DOMAINS or node.op_type not in OP_HANDLERS:
            op = ir.c_comment(node.op_type if node.proto.domain in DEFAULT_DOMAINS
                              else f"{node.proto.domain}.{node.op_type}")
            raise NnsconsError(path, f"{node.where()}: unsupported op {op}; supported ops: "
                                     f"{', '.join(SUPPORTED_OPS)}")
