"""Stage 1 for ``.tflite`` files: a TFLite flatbuffer -> the IR (:mod:`nnscons.ir`).

The import runs in two passes so that untrusted bytes are only ever touched in one place:

1. **decode** (:mod:`.decode`): the only code that calls the ``tflite`` package's flatbuffer accessors. It copies
   what the converter needs out of subgraph 0 into plain records (:mod:`.records`). The file's identifier and
   size are checked before anything is walked, every vector length is bounded by the file size, and any
   exception an accessor raises on a damaged file becomes one :class:`~nnscons.errors.NnsconsError`.
2. **convert** (:mod:`.convert`): records -> :class:`ir.Graph` op by op, each operator through its handler in
   the registry :data:`.ops.OP_HANDLERS` (handlers grouped by family: :mod:`.conv_pool`,
   :mod:`.fully_connected`, :mod:`.elementwise`, :mod:`.shape_ops`, :mod:`.quantize_ops`; the checks they share
   in :mod:`.lowering`, IR tensors built in :mod:`.tensors`, shared state in :mod:`.context`), checking what the
   rest of the pipeline relies on (supported ops and fused activations, static shapes, consistent shapes and
   types, constant weights, quantization that fits its tensor).

TFLite already uses the IR's layouts (NHWC activations, OHWI conv filters, 1HWC depthwise filters, ``[out, in]``
fully connected weights), so no data is reordered and a per-channel quantization axis keeps its number. SAME
padding is turned into explicit ``pad [top, bottom, left, right]`` the way TFLite computes it, and constant
"shape" inputs (RESHAPE's new shape, PAD's paddings, MEAN's axes) become attributes instead of tensors.
A DEQUANTIZE of constant data (float16 or weight-only int8 models) is folded into a float32 constant.

``Graph.quantized`` says what the activations are: ``int16x8`` if any is int16, ``int8`` if any is int8,
``none`` otherwise. Hybrid models (int8 weights feeding float operators) are rejected: no kernel runs them.
"""
from __future__ import annotations

import os

import numpy as np

from ... import ir
from .convert import convert
from .decode import decode, read_file
from .ops import supported_operators

__all__ = ["import_tflite", "supported_operators"]


def import_tflite(path: str | os.PathLike) -> tuple[ir.Graph, dict[str, np.ndarray]]:
    """Read a ``.tflite`` model (float32, int8 or int16x8) into the IR and its constant data.

    Raises :class:`NnsconsError` (one line, naming the file) for anything that is not a supported model."""
    path = os.fspath(path)
    data = read_file(path)
    model = decode(path, data)
    return convert(path, model)
