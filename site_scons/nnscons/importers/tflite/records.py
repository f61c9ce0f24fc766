"""The plain records that :mod:`.decode` copies out of the flatbuffer and the rest of the package reads, and the
meaning of the TFLite codes they carry (tensor types, fused activations, padding).

Nothing here touches the ``tflite`` package: the converter modules work on these records only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

# TensorType -> IR dtype (the types the IR can hold); numpy dtypes are little-endian as in the file
DTYPES: dict[int, tuple[str, str]] = {
    0: ("float32", "<f4"), 2: ("int32", "<i4"), 3: ("uint8", "u1"), 4: ("int64", "<i8"),
    7: ("int16", "<i2"), 9: ("int8", "i1"),
}
TYPE_NAMES = {
    0: "FLOAT32", 1: "FLOAT16", 2: "INT32", 3: "UINT8", 4: "INT64", 5: "STRING", 6: "BOOL", 7: "INT16",
    8: "COMPLEX64", 9: "INT8", 10: "FLOAT64", 11: "COMPLEX128", 12: "UINT64", 13: "RESOURCE", 14: "VARIANT",
    15: "UINT32", 16: "UINT16", 17: "INT4", 18: "BFLOAT16",
}
QUANTIZED_DTYPES = ("int8", "uint8", "int16")

# ActivationFunctionType -> IR fused activation
ACTIVATIONS = {0: "none", 1: "relu", 2: "relu_n1_to_1", 3: "relu6"}
ACTIVATION_NAMES = {4: "TANH", 5: "SIGN_BIT"}

PADDING_SAME, PADDING_VALID = 0, 1

# A limit no real model reaches; it keeps a damaged file from making the importer work for minutes.
MAX_ELEMENTS = 2**31 - 1


@dataclass
class QuantRec:
    scale: list[float]
    zero_point: list[int]
    dimension: int
    custom: bool                 # details in a custom (non affine) format


@dataclass
class TensorRec:
    index: int
    label: str
    shape: list[int]
    signature: Optional[list[int]]
    type: int
    data: Optional[bytes]        # None: no constant data
    quant: Optional[QuantRec]
    is_variable: bool
    is_sparse: bool


@dataclass
class OpRec:
    index: int
    name: str                    # builtin operator name, e.g. "CONV_2D" ("CUSTOM" for custom ops)
    custom_code: str
    inputs: list[int]
    outputs: list[int]
    options: Optional[dict[str, Any]]   # None: the operator has no options table


@dataclass
class ModelRec:
    tensors: list[TensorRec]
    ops: list[OpRec]
    inputs: list[int]
    outputs: list[int]
