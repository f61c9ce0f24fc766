"""The ONNX importer: an ``.onnx`` model in, the IR (:mod:`nnscons.ir`) out.

The import runs in three steps:

1. **Load** (:mod:`.decode`): parse the protobuf ourselves (so a truncated or random file is one clear error,
   and external data files are never opened) and check that every node is an op we can handle.
2. **Make it static** (:func:`.convert.prepare`, with :mod:`.shapes` and :mod:`.folding`): a dynamic batch
   dimension becomes 1 (any other dynamic dimension is an error), ONNX shape inference gives every intermediate
   shape, and shape arithmetic on constants
   (``Shape -> Gather -> Concat -> Reshape`` and friends, ``Constant`` nodes, reshapes of initializers) is folded
   with numpy. Folding and inference alternate until nothing more folds.
3. **Convert** (:func:`.convert.convert`): walk the remaining nodes in order and emit IR ops, fusing where the IR has
   a place for it (below).

Layouts. ONNX activations are NCHW; the IR's are NHWC. Every ONNX tensor maps to an IR tensor through a
permutation ``perm`` with ``ir_array = onnx_array.transpose(perm)``: ``(0, 2, 3, 1)`` for a 4-D NCHW tensor,
the identity for 2-D ones. ``Transpose`` nodes only change that permutation (no IR op); reshape-like nodes
(Reshape, Flatten, Squeeze, Unsqueeze) become an IR ``reshape`` when the NHWC element order is unchanged (a
Flatten of ``[N, C, 1, 1]`` is). An op that needs NHWC input gets an IR ``reshape`` if the element order allows,
otherwise the import fails with "layout change not supported".

The one reordering that *is* supported is the seed guide's: an NCHW tensor ``[N, C, H, W]`` flattened to
``[N, C*H*W]`` holds its elements in (C, H, W) order, while its NHWC twin holds them in (H, W, C) order. The flatten
becomes an IR reshape of the NHWC tensor and the fully-connected layer that reads it gets its weight columns
reordered to match: ``W.reshape(out, C, H, W).transpose(0, 2, 3, 1).reshape(out, -1)`` (computed as a column
permutation, which is the same thing). Such a flattened tensor may pass through elementwise activations and
Q/DQ pairs on its way to the Gemm/MatMul; anything else reading it is an error.

Fusions (all exact):

* ``Conv`` / ``Gemm`` / ``MatMul`` followed by ``Add``/``Sub``/``Mul``/``Div`` of a per-channel constant or by
  ``BatchNormalization`` (each the sole consumer): folded into the weights and bias (float models only).
* ``MatMul`` + a constant ``Add`` is one ``fully_connected`` with a bias.
* ``Relu`` / ``Clip(0, 6)`` / ``Clip(0, inf)`` / ``Clip(-1, 1)`` that alone consumes the output of a Conv, Gemm,
  MatMul, Add, Sub or Mul becomes the op's fused ``activation``. In a QDQ model this only happens when the
  activation reads the op's *unquantized* output (no QuantizeLinear/DequantizeLinear in between), which is exactly
  the case where fusing is required to keep the quantization semantics; ``Conv -> Q -> DQ -> Relu`` keeps an
  explicit ``relu`` op.

Quantized (QDQ) models:

* ``DequantizeLinear`` of an integer initializer is an integer constant with its :class:`~nnscons.ir.Quant`;
  the per-channel axis follows the weight into its IR layout (conv OHWI: axis 0; depthwise 1HWC: axis 3; fully
  connected ``[out, in]``: axis 0).
* An activation ``QuantizeLinear -> DequantizeLinear`` pair quantizes the IR tensor it follows (its dtype becomes
  the integer type and it gets the ``quant``); uint8 activations become int8 with ``zero_point - 128`` (exactly the
  same real values), because CMSIS-NN's kernels are signed.
* ``QuantizeLinear`` of a float constant (quantizers emit it for weights computed by folded nodes) is evaluated
  at import, as onnxruntime would (round half to even, saturate).
* onnxruntime's quantizer drops a Relu whose effect the output quantization already has (zero point = the
  integer type's minimum, so nothing below 0.0 is representable). The importer then sets the producing op's fused
  ``activation`` to ``relu``: the same clamp for the integer kernels, and the model's real semantics for
  anything that runs the graph in float (the reference interpreter, statistics).
* A float graph input followed by QuantizeLinear becomes an explicit IR ``quantize`` op (the IR input stays
  float32, like a TFLite model with float I/O); a DequantizeLinear that produces a float graph output becomes an
  IR ``dequantize`` op.
* Integer weights with float activations (a "hybrid" model) are rejected, as is any activation left in float
  between quantized ops.

Other choices: ``GlobalAveragePool`` becomes ``avg_pool2d`` with the whole H x W as kernel (CMSIS-NN's average
pooling runs it directly), ``GlobalMaxPool`` likewise ``max_pool2d``; ``BatchNormalization`` that follows no
conv/FC becomes ``mul`` + ``add`` with per-channel constants; ``Div`` by a constant becomes ``mul`` by its
reciprocal. A 4-D graph input whose only consumers are ``Transpose(perm=[0, 3, 1, 2])`` is taken as NHWC already
(models converted from TensorFlow), so it gets no input permutation. Models with external data files are rejected.

The package, in the order a model goes through it: :mod:`.decode` (the file and its nodes), :mod:`.shapes` and
:mod:`.folding` (static shapes, constant folding), :mod:`.convert` (the driver) with :mod:`.context` (what the
handlers share), :mod:`.layout` (NCHW -> NHWC) and :mod:`.constants`; :mod:`.ops` is the registry
``OP_HANDLERS`` (ONNX op type -> handler) over the op families :mod:`.conv`, :mod:`.pool`, :mod:`.dense`,
:mod:`.elementwise`, :mod:`.shape_ops` and :mod:`.qdq`, with :mod:`.fusion` for what a layer absorbs.
"""
from __future__ import annotations

from .convert import import_onnx
from .ops import OP_HANDLERS, SUPPORTED_OPS

__all__ = ["OP_HANDLERS", "SUPPORTED_OPS", "import_onnx"]
