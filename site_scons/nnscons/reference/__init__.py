"""The float reference interpreter of the IR (stage 2): the seed's "float version of CMSIS-NN".

It runs a :class:`~nnscons.ir.Graph` with numpy, in the IR's own layout: NHWC activations and weights already
reordered to the CMSIS-NN layouts (conv2d OHWI, depthwise 1HWC, fully_connected ``[out][in]``). Agreeing with
LiteRT / onnxruntime on the original model therefore proves both the import and the weight reordering, and its
activations are what the statistics stage measures.

* Batched: every graph input holds N samples in axis 0 (the graph itself says batch 1); all activations carry the
  same N. Shapes in attributes (``reshape``'s target) and in the graph get their leading 1 replaced by N.
* Quantized models (int8 / int16x8 TFLite, QDQ ONNX) run "in float": integer constants are dequantized first
  (:func:`dequantize_params`) and ``quantize`` / ``dequantize`` are the identity on real values. Integer input
  arrays are dequantized with the input tensor's ``quant``; float input arrays are taken as real values.
  Outputs are always real values (float32).
* Activations are float32 between ops (as in LiteRT); sums of products (conv, fully connected, pooling, mean,
  softmax) are accumulated in float64 so that the interpreter itself adds no noticeable error.

The package: :mod:`.interpreter` drives the graph; :mod:`.ops` is the registry ``REFERENCE_OPS`` (op kind ->
function) over the op families :mod:`.linear` (conv2d, depthwise_conv2d, fully_connected), :mod:`.pooling`,
:mod:`.elementwise` and :mod:`.tensor_ops`; :mod:`.call` is what an op function receives and :mod:`.windows` the
sliding windows the convolutions and pools share.
"""
from __future__ import annotations

from .call import Call, OpFunction
from .interpreter import dequantize_params, iterate, run
from .ops import REFERENCE_OPS

__all__ = ["Call", "OpFunction", "REFERENCE_OPS", "dequantize_params", "iterate", "run"]
