"""TFLite handlers for QUANTIZE and DEQUANTIZE between activations (their types are checked by
:func:`.convert.check_types`). A DEQUANTIZE of constant data never reaches here: the driver folds it into a
float32 constant (:func:`.tensors.dequantized_constant`)."""
from __future__ import annotations

from .context import ConversionContext
from .lowering import Lowered, unary
from .records import OpRec


def convert_quantize(ctx: ConversionContext, rec: OpRec) -> Lowered:
    return unary(ctx, rec)


def convert_dequantize(ctx: ConversionContext, rec: OpRec) -> Lowered:
    return unary(ctx, rec)
