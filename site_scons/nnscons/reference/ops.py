"""The registry of the reference interpreter (part of :mod:`nnscons.reference`): every IR op kind and the
function that computes it. :mod:`nnscons.reference.interpreter` dispatches through this dict only."""
from __future__ import annotations

from typing import Callable

import numpy as np

from .. import ir
from . import elementwise, linear, pooling, recurrent, tensor_ops
from .call import Call, OpFunction

REFERENCE_OPS: dict[str, OpFunction] = {
    "conv2d": linear.conv2d,
    "depthwise_conv2d": linear.depthwise_conv2d,
    "fully_connected": linear.fully_connected,
    "avg_pool2d": pooling.avg_pool2d,
    "max_pool2d": pooling.max_pool2d,
    "add": elementwise.add,
    "sub": elementwise.sub,
    "mul": elementwise.mul,
    "softmax": tensor_ops.softmax,
    "reshape": tensor_ops.reshape,
    "quantize": elementwise.identity,
    "dequantize": elementwise.identity,
    "pad": tensor_ops.pad,
    "mean": tensor_ops.mean,
    "concat": tensor_ops.concat,
    "logistic": elementwise.logistic,
    "tanh": elementwise.tanh,
    "relu": elementwise.relu,
    "relu6": elementwise.relu6,
    "leaky_relu": elementwise.leaky_relu,
    "clip": elementwise.clip,
    "lstm": recurrent.lstm,
    "gru": recurrent.gru,
    "svdf": recurrent.svdf,
}

# Ops that also give values inside them for the calibration statistics and the diagnostics (interpreter.iterate
# yields them under the op's output name plus a suffix; they are not graph tensors): the op's output and those values
# in one run
WITH_INTERNALS: dict[str, Callable[[Call], tuple[np.ndarray, dict[str, np.ndarray]]]] = {
    "lstm": recurrent.lstm_with_internals, "gru": recurrent.gru_with_internals}
assert set(REFERENCE_OPS) == set(ir.OP_TYPES), "every IR op type needs a reference implementation"
