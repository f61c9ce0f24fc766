"""Stage 1 for ``.tflite`` files: a TFLite flatbuffer -> the IR (:mod:`nnscons.ir`).

The import runs in two passes so that untrusted bytes are only ever touched in one place:

1. **decode** (:func:`_decode`): the only code that calls the ``tflite`` package's flatbuffer accessors. It copies
   what the converter needs out of subgraph 0 into plain records (:class:`_ModelRec`). The file's identifier and
   size are checked before anything is walked, every vector length is bounded by the file size (so garbage can
   never make it loop for long), and any exception an accessor raises on a damaged file becomes one
   :class:`~nnscons.errors.NnsconsError`.
2. **convert** (:class:`_Converter`): records -> :class:`ir.Graph` op by op, checking what the rest of the
   pipeline relies on (supported ops and fused activations, static shapes, consistent shapes and types,
   constant weights, quantization that fits its tensor).

TFLite already uses the IR's layouts (NHWC activations, OHWI conv filters, 1HWC depthwise filters, ``[out, in]``
fully connected weights), so no data is reordered and a per-channel quantization axis keeps its number. SAME
padding is turned into explicit ``pad [top, bottom, left, right]`` the way TFLite computes it, and constant
"shape" inputs (RESHAPE's new shape, PAD's paddings, MEAN's axes) become attributes instead of tensors.
A DEQUANTIZE of constant data (float16 or weight-only int8 models) is folded into a float32 constant.

``Graph.quantized`` says what the activations are: ``int16x8`` if any is int16, ``int8`` if any is int8,
``none`` otherwise. Hybrid models (int8 weights feeding float operators) are rejected: no kernel runs them.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np
import tflite
from tflite.utils import BUILTIN_OPCODE2NAME

from .. import ir
from ..errors import NnsconsError

# ---- TFLite schema facts ---------------------------------------------------------------------------------------
_FILE_IDENTIFIER = b"TFL3"
_SCHEMA_VERSION = 3
_CUSTOM_CODE = 32                    # BuiltinOperator.CUSTOM

# TensorType -> IR dtype (the types the IR can hold); numpy dtypes are little-endian as in the file
_DTYPES: dict[int, tuple[str, str]] = {
    0: ("float32", "<f4"), 2: ("int32", "<i4"), 3: ("uint8", "u1"), 4: ("int64", "<i8"),
    7: ("int16", "<i2"), 9: ("int8", "i1"),
}
_TYPE_NAMES = {
    0: "FLOAT32", 1: "FLOAT16", 2: "INT32", 3: "UINT8", 4: "INT64", 5: "STRING", 6: "BOOL", 7: "INT16",
    8: "COMPLEX64", 9: "INT8", 10: "FLOAT64", 11: "COMPLEX128", 12: "UINT64", 13: "RESOURCE", 14: "VARIANT",
    15: "UINT32", 16: "UINT16", 17: "INT4", 18: "BFLOAT16",
}
_QUANTIZED_DTYPES = ("int8", "uint8", "int16")

# ActivationFunctionType -> IR fused activation
_ACTIVATIONS = {0: "none", 1: "relu", 2: "relu_n1_to_1", 3: "relu6"}
_ACTIVATION_NAMES = {4: "TANH", 5: "SIGN_BIT"}

_PADDING_SAME, _PADDING_VALID = 0, 1

# Builtin operator -> IR op type. The converter for each is _Converter.op_<name in lower case>.
_SUPPORTED_OPS: dict[str, str] = {
    "ADD": "add", "AVERAGE_POOL_2D": "avg_pool2d", "CONCATENATION": "concat", "CONV_2D": "conv2d",
    "DEPTHWISE_CONV_2D": "depthwise_conv2d", "DEQUANTIZE": "dequantize", "FULLY_CONNECTED": "fully_connected",
    "LEAKY_RELU": "leaky_relu", "LOGISTIC": "logistic", "MAX_POOL_2D": "max_pool2d", "MEAN": "mean", "MUL": "mul",
    "PAD": "pad", "PADV2": "pad", "QUANTIZE": "quantize", "RELU": "relu", "RELU6": "relu6",
    "RELU_0_TO_1": "clip", "RELU_N1_TO_1": "clip", "RESHAPE": "reshape", "SOFTMAX": "softmax",
    "SQUEEZE": "reshape", "SUB": "sub", "TANH": "tanh",
}

# Limits that no real model reaches; they keep a damaged file from making the importer work for minutes.
_MAX_OPS = 100_000
_MAX_TENSORS = 500_000
_MAX_OP_IO = 1_024
_MAX_RANK = 8
_MAX_ELEMENTS = 2**31 - 1


# ---- public API ------------------------------------------------------------------------------------------------
def import_tflite(path: str | os.PathLike) -> tuple[ir.Graph, dict[str, np.ndarray]]:
    """Read a ``.tflite`` model (float32, int8 or int16x8) into the IR and its constant data.

    Raises :class:`NnsconsError` (one line, naming the file) for anything that is not a supported model."""
    path = os.fspath(path)
    data = _read_file(path)
    model = _decode(path, data)
    return _Converter(path, model).convert()


def supported_operators() -> list[str]:
    """The TFLite builtin operators this importer understands, sorted."""
    return sorted(_SUPPORTED_OPS)


# ---- pass 1: decode the flatbuffer into plain records ---------------------------------------------------------
@dataclass
class _QuantRec:
    scale: list[float]
    zero_point: list[int]
    dimension: int
    custom: bool                 # details in a custom (non affine) format


@dataclass
class _TensorRec:
    index: int
    label: str
    shape: list[int]
    signature: Optional[list[int]]
    type: int
    data: Optional[bytes]        # None: no constant data
    quant: Optional[_QuantRec]
    is_variable: bool
    is_sparse: bool


@dataclass
class _OpRec:
    index: int
    name: str                    # builtin operator name, e.g. "CONV_2D" ("CUSTOM" for custom ops)
    custom_code: str
    inputs: list[int]
    outputs: list[int]
    options: Optional[dict[str, Any]]   # None: the operator has no options table


@dataclass
class _ModelRec:
    tensors: list[_TensorRec]
    ops: list[_OpRec]
    inputs: list[int]
    outputs: list[int]


def _read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise NnsconsError(path, f"cannot read the model: {exc.strerror or exc}") from None


def _decode(path: str, data: bytes) -> _ModelRec:
    """Check the file header, then copy subgraph 0 out of the flatbuffer."""
    _check_header(path, data)
    try:
        return _Decoder(path, data).model()
    except NnsconsError:
        raise
    except Exception:  # any accessor failing on damaged bytes (struct.error, IndexError, ValueError, ...)
        raise NnsconsError(path, "corrupt or truncated TFLite file (reading the flatbuffer failed)") from None


def _check_header(path: str, data: bytes) -> None:
    if not data:
        raise NnsconsError(path, "empty file, not a TFLite model")
    if len(data) < 16 or data[4:8] != _FILE_IDENTIFIER:
        raise NnsconsError(path, "not a TFLite model (no 'TFL3' flatbuffer identifier at byte 4)")
    root = int.from_bytes(data[0:4], "little")
    if root < 8 or root + 4 > len(data):
        raise NnsconsError(path, "corrupt or truncated TFLite file (root table outside the file)")


class _Decoder:
    """Walks one flatbuffer with the ``tflite`` accessors; all reads of untrusted bytes happen here."""

    def __init__(self, path: str, data: bytes) -> None:
        self.path = path
        self.data = data
        self.budget = 2 * len(data) + 4096  # bytes of vectors and strings we agree to read (see spend)
        self.model_table = tflite.Model.GetRootAsModel(data, 0)

    def fail(self, message: str) -> NnsconsError:
        return NnsconsError(self.path, message)

    def count(self, n: int, item_bytes: int, what: str, limit: int) -> int:
        """A vector length from the file, trusted only if it fits the file and a sane limit."""
        if n < 0 or n * item_bytes > len(self.data) or n > limit:
            raise self.fail(f"corrupt or truncated TFLite file (implausible number of {what}: {n})")
        self.spend(n * item_bytes)
        return n

    def spend(self, n_bytes: int) -> None:
        # Everything in a real file is stored once, so reading it all costs about the file size. Damaged
        # offsets can make many tables share one huge vector or string; the budget stops that early.
        self.budget -= n_bytes
        if self.budget < 0:
            raise self.fail("corrupt TFLite file (its tables overlap: more data read than the file holds)")

    def text(self, raw: Optional[bytes]) -> str:
        self.spend(len(raw or b""))
        return (raw or b"").decode("utf-8", "replace")

    def model(self) -> _ModelRec:
        m = self.model_table
        version = m.Version()
        if version != _SCHEMA_VERSION:
            raise self.fail(f"unsupported TFLite schema version {version} (expected {_SCHEMA_VERSION})")
        if self.count(m.SubgraphsLength(), 4, "subgraphs", _MAX_OPS) == 0:
            raise self.fail("the model has no subgraph")
        # Only subgraph 0 runs; others belong to control-flow operators (IF, WHILE, CALL_ONCE), which are
        # rejected as unsupported operators, or to signatures that subgraph 0 never calls.
        graph = m.Subgraphs(0)
        opcodes = self.operator_codes()
        n_buffers = self.count(m.BuffersLength(), 4, "buffers", _MAX_TENSORS)
        buffers: dict[int, Optional[bytes]] = {}
        n_tensors = self.count(graph.TensorsLength(), 4, "tensors", _MAX_TENSORS)
        tensors = [self.tensor(graph.Tensors(i), i, n_buffers, buffers) for i in range(n_tensors)]
        n_ops = self.count(graph.OperatorsLength(), 4, "operators", _MAX_OPS)
        ops = [self.operator(graph.Operators(i), i, opcodes) for i in range(n_ops)]
        return _ModelRec(tensors=tensors, ops=ops,
                         inputs=self.int_vector(graph.InputsLength, graph.InputsAsNumpy, "graph inputs"),
                         outputs=self.int_vector(graph.OutputsLength, graph.OutputsAsNumpy, "graph outputs"))

    def int_vector(self, length: Callable[[], int], as_numpy: Callable[[], Any], what: str,
                   limit: int = _MAX_OP_IO) -> list[int]:
        if self.count(length(), 4, what, limit) == 0:
            return []
        return [int(v) for v in as_numpy()]

    def operator_codes(self) -> list[tuple[str, str]]:
        """(builtin name, custom code) per operator code."""
        m = self.model_table
        codes = []
        for i in range(self.count(m.OperatorCodesLength(), 4, "operator codes", _MAX_OPS)):
            oc = m.OperatorCodes(i)
            # Codes above 127 only fit the newer int32 field; older files only fill the deprecated int8 one.
            code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
            if code == _CUSTOM_CODE:
                custom = self.text(oc.CustomCode())
                codes.append(("CUSTOM", custom))
            else:
                codes.append((BUILTIN_OPCODE2NAME.get(code, f"BUILTIN_CODE_{code}"), ""))
        return codes

    def tensor(self, t: Any, index: int, n_buffers: int, buffers: dict[int, Optional[bytes]]) -> _TensorRec:
        shape = self.int_vector(t.ShapeLength, t.ShapeAsNumpy, "dimensions", _MAX_RANK)
        signature = None
        if not t.ShapeSignatureIsNone():
            signature = self.int_vector(t.ShapeSignatureLength, t.ShapeSignatureAsNumpy, "dimensions", _MAX_RANK)
        buffer = int(t.Buffer())
        if buffer >= n_buffers:
            raise self.fail(f"corrupt TFLite file (tensor #{index} refers to buffer {buffer} of {n_buffers})")
        if buffer not in buffers:
            buffers[buffer] = self.buffer_data(buffer)
        return _TensorRec(index=index, label=self.text(t.Name()), shape=shape,
                          signature=signature, type=int(t.Type()), data=buffers[buffer],
                          quant=self.quantization(t.Quantization()), is_variable=bool(t.IsVariable()),
                          is_sparse=t.Sparsity() is not None)

    def buffer_data(self, index: int) -> Optional[bytes]:
        if index == 0:  # buffer 0 is the empty sentinel by convention
            return None
        b = self.model_table.Buffers(index)
        offset, size = int(b.Offset()), int(b.Size())
        if offset > 1:  # large models keep the data after the flatbuffer, addressed from the file start
            if offset + size > len(self.data):
                raise self.fail(f"corrupt or truncated TFLite file (buffer {index} ends beyond the file)")
            self.spend(size)
            return self.data[offset:offset + size] if size else None
        if b.DataLength() == 0:
            return None
        self.count(b.DataLength(), 1, "buffer bytes", len(self.data))
        return b.DataAsNumpy().tobytes()

    def quantization(self, q: Any) -> Optional[_QuantRec]:
        if q is None:
            return None
        n_scales = self.count(q.ScaleLength(), 4, "quantization scales", len(self.data))
        n_zero_points = self.count(q.ZeroPointLength(), 8, "zero points", len(self.data))
        custom = int(q.DetailsType()) != 0
        if n_scales == 0 and not custom:
            return None
        return _QuantRec(scale=[float(s) for s in q.ScaleAsNumpy()] if n_scales else [],
                         zero_point=[int(z) for z in q.ZeroPointAsNumpy()] if n_zero_points else [],
                         dimension=int(q.QuantizedDimension()), custom=custom)

    def operator(self, op: Any, index: int, opcodes: list[tuple[str, str]]) -> _OpRec:
        opcode = int(op.OpcodeIndex())
        if opcode >= len(opcodes):
            raise self.fail(f"corrupt TFLite file (operator #{index} has operator code {opcode} "
                            f"of {len(opcodes)})")
        name, custom_code = opcodes[opcode]
        return _OpRec(index=index, name=name, custom_code=custom_code,
                      inputs=self.int_vector(op.InputsLength, op.InputsAsNumpy, "operator inputs"),
                      outputs=self.int_vector(op.OutputsLength, op.OutputsAsNumpy, "operator outputs"),
                      options=self.options(op, name, index))

    def options(self, op: Any, name: str, index: int) -> Optional[dict[str, Any]]:
        """The builtin options this importer reads, as a dict; None if the operator carries none."""
        spec = _OPTIONS.get(name)
        if spec is None or int(op.BuiltinOptionsType()) == 0:
            return None
        class_name, fields = spec
        options_class = getattr(tflite, class_name)
        expected_type = getattr(tflite.BuiltinOptions, class_name)
        if int(op.BuiltinOptionsType()) != expected_type:
            raise self.fail(f"corrupt TFLite file (operator #{index} {name} carries the wrong options type)")
        table = op.BuiltinOptions()
        options = options_class()
        options.Init(table.Bytes, table.Pos)
        return {f: getattr(options, f)() for f in fields}


# Builtin options the converter reads: operator -> (options class in the tflite package, fields)
_OPTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "CONV_2D": ("Conv2DOptions", ("Padding", "StrideW", "StrideH", "FusedActivationFunction",
                                  "DilationWFactor", "DilationHFactor")),
    "DEPTHWISE_CONV_2D": ("DepthwiseConv2DOptions", ("Padding", "StrideW", "StrideH", "FusedActivationFunction",
                                                     "DilationWFactor", "DilationHFactor")),
    "AVERAGE_POOL_2D": ("Pool2DOptions", ("Padding", "StrideW", "StrideH", "FilterWidth", "FilterHeight",
                                          "FusedActivationFunction")),
    "MAX_POOL_2D": ("Pool2DOptions", ("Padding", "StrideW", "StrideH", "FilterWidth", "FilterHeight",
                                      "FusedActivationFunction")),
    "FULLY_CONNECTED": ("FullyConnectedOptions", ("FusedActivationFunction", "WeightsFormat", "KeepNumDims")),
    "ADD": ("AddOptions", ("FusedActivationFunction",)),
    "SUB": ("SubOptions", ("FusedActivationFunction",)),
    "MUL": ("MulOptions", ("FusedActivationFunction",)),
    "SOFTMAX": ("SoftmaxOptions", ("Beta",)),
    "CONCATENATION": ("ConcatenationOptions", ("Axis", "FusedActivationFunction")),
    "MEAN": ("ReducerOptions", ("KeepDims",)),
    "LEAKY_RELU": ("LeakyReluOptions", ("Alpha",)),
}


# ---- pass 2: records -> IR -------------------------------------------------------------------------------------
@dataclass
class _Lowered:
    """What an operator converter returns: the IR op's inputs (TFLite tensor indices) and attributes."""

    inputs: list[int]
    attrs: dict[str, Any] = field(default_factory=dict)


class _Converter:
    """Builds the IR graph from decoded records, one TFLite operator -> one IR op."""

    def __init__(self, path: str, model: _ModelRec) -> None:
        self.path = path
        self.model = model
        self.names = ir.NameTable()
        self.tensors: dict[str, ir.Tensor] = {}
        self.params: dict[str, np.ndarray] = {}
        self.ir_names: dict[int, str] = {}       # TFLite tensor index -> IR tensor name
        self.producer: dict[int, int] = {}       # TFLite tensor index -> index of the operator writing it
        self.folded: dict[int, int] = {}         # output -> input of a DEQUANTIZE of constant data
        self.ops: list[ir.Op] = []
        self.op: Optional[_OpRec] = None         # the operator being converted (for error messages)

    # ---- driver ---------------------------------------------------------------------------------------------
    def convert(self) -> tuple[ir.Graph, dict[str, np.ndarray]]:
        model = self.model
        if not model.ops:
            raise self.fail("the model has no operators")
        self.check_operators_supported()
        self.index_producers()
        self.folded = self.constant_dequantize_ops()
        folded_ops = {self.producer[t] for t in self.folded}
        kept = [rec for rec in model.ops if rec.index not in folded_ops]
        # Op names first, so that a tensor whose label happens to read "conv2d_0" gets the suffix, not the op
        op_names = [self.names.unique(f"{_SUPPORTED_OPS[rec.name]}_{i}") for i, rec in enumerate(kept)]
        inputs = [self.graph_input(i) for i in model.inputs]
        for rec, op_name in zip(kept, op_names):
            self.ops.append(self.convert_op(rec, op_name))
        self.op = None
        outputs = [self.graph_output(i) for i in model.outputs]
        if not inputs or not outputs:
            raise self.fail("the model has no graph inputs or no graph outputs")
        graph = ir.Graph(tensors=self.tensors, ops=self.ops, inputs=inputs, outputs=outputs, source="tflite",
                         source_file=os.path.basename(self.path), layout="NHWC", quantized=self.quantized_kind())
        ir.validate(graph, self.params)
        return graph, self.params

    def fail(self, message: str) -> NnsconsError:
        if self.op is not None:
            message = f"operator #{self.op.index} {self.op.name}: {message}"
        return NnsconsError(self.path, message)

    def check_operators_supported(self) -> None:
        for rec in self.model.ops:
            if rec.name == "CUSTOM":
                raise NnsconsError(self.path, f"custom operator '{ir.c_comment(rec.custom_code, 40)}' "
                                              f"(operator #{rec.index}) is not supported")
            if rec.name not in _SUPPORTED_OPS:
                raise NnsconsError(self.path, f"unsupported operator {ir.c_comment(rec.name, 40)} "
                                              f"(operator #{rec.index}); supported: "
                                              f"{', '.join(supported_operators())}")

    def index_producers(self) -> None:
        n = len(self.model.tensors)
        for rec in self.model.ops:
            for t in rec.inputs + rec.outputs:
                if not -1 <= t < n:
                    raise NnsconsError(self.path, f"corrupt TFLite file (operator #{rec.index} refers to "
                                                  f"tensor #{t} of {n})")
            for t in rec.outputs:
                if t < 0 or t in self.producer:
                    raise NnsconsError(self.path, f"corrupt TFLite file (tensor #{t} is written by operator "
                                                  f"#{self.producer.get(t, '?')} and #{rec.index})")
                self.producer[t] = rec.index
        for t in self.model.inputs + self.model.outputs:
            if not 0 <= t < n:
                raise NnsconsError(self.path, f"corrupt TFLite file (graph input/output is tensor #{t} of {n})")

    def constant_dequantize_ops(self) -> dict[int, int]:
        """DEQUANTIZE operators applied to constant data (float16 or weight-only int8 models): their outputs
        become float32 constants and the operators disappear. Returns output -> input tensor index."""
        folded = {}
        for rec in self.model.ops:
            if rec.name == "DEQUANTIZE" and len(rec.inputs) == 1 and len(rec.outputs) == 1 \
                    and rec.inputs[0] >= 0 and self.model.tensors[rec.inputs[0]].data is not None:
                folded[rec.outputs[0]] = rec.inputs[0]
        return folded

    def graph_input(self, index: int) -> str:
        rec = self.model.tensors[index]
        if rec.data is not None or index in self.producer:
            raise self.fail(f"graph input {self.describe(rec)} is a constant or computed by an operator")
        return self.tensor(index)

    def graph_output(self, index: int) -> str:
        rec = self.model.tensors[index]
        if (rec.data is not None and index not in self.producer) or index in self.folded:
            raise self.fail(f"graph output {self.describe(rec)} is a constant")
        return self.tensor(index)

    def quantized_kind(self) -> str:
        activations = {t.dtype for t in self.tensors.values() if not t.is_const and t.quant is not None}
        if "int16" in activations:
            return "int16x8"
        if activations & {"int8", "uint8"}:
            return "int8"
        return "none"

    # ---- tensors ---------------------------------------------------------------------------------------------
    def describe(self, rec: _TensorRec) -> str:
        """How error messages name a tensor (its label is untrusted text: made printable and short)."""
        return f"tensor #{rec.index} '{ir.c_comment(rec.label, 60)}'" if rec.label else f"tensor #{rec.index}"

    def tensor(self, index: int) -> str:
        """The IR name of TFLite tensor ``index``, creating the IR tensor (and its data) on first use."""
        if index in self.ir_names:
            return self.ir_names[index]
        rec = self.model.tensors[index]
        if index in self.folded:
            return self.dequantized_constant(index)
        if rec.type not in _DTYPES:
            raise self.fail(f"{self.describe(rec)} has type {_TYPE_NAMES.get(rec.type, rec.type)}, "
                            f"which is not supported")
        if rec.is_variable:
            raise self.fail(f"{self.describe(rec)} is a variable (stateful models are not supported)")
        if rec.is_sparse:
            raise self.fail(f"{self.describe(rec)} is sparse (sparse models are not supported)")
        dtype, file_dtype = _DTYPES[rec.type]
        shape = self.static_shape(rec)
        is_const = rec.data is not None
        if not is_const and index not in self.producer and index not in self.model.inputs:
            raise self.fail(f"{self.describe(rec)} has no data and is neither a graph input nor computed by "
                            "an operator")
        quant = self.quant(rec, shape, dtype, is_const)
        return self.add_tensor(index, shape, dtype, is_const, quant,
                               self.constant(rec, shape, file_dtype) if is_const else None)

    def add_tensor(self, index: int, shape: list[int], dtype: str, is_const: bool, quant: Optional[ir.Quant],
                   data: Optional[np.ndarray]) -> str:
        label = self.model.tensors[index].label
        name = self.names.unique(_name_hint(label))
        self.tensors[name] = ir.Tensor(name=name, shape=shape, dtype=dtype, label=label, is_const=is_const,
                                       quant=quant)
        if data is not None:
            self.params[name] = data
        self.ir_names[index] = name
        return name

    def dequantized_constant(self, index: int) -> str:
        """The float32 constant that a folded DEQUANTIZE computes from (float16 or quantized) constant data."""
        rec, source = self.model.tensors[index], self.model.tensors[self.folded[index]]
        shape = self.static_shape(source)
        if self.static_shape(rec) != shape or rec.type != 0:
            raise self.fail(f"{self.describe(rec)}: DEQUANTIZE of a constant must give float32 of the same shape")
        if source.type == 1:  # FLOAT16
            data = self.constant(source, shape, "<f2").astype(np.float32)
        elif source.type in _DTYPES and _DTYPES[source.type][0] in _QUANTIZED_DTYPES:
            quant = self.quant(source, shape, _DTYPES[source.type][0], True)
            assert quant is not None  # quant() insists on it for these types
            data = _dequantize(self.constant(source, shape, _DTYPES[source.type][1]), quant)
        else:
            raise self.fail(f"{self.describe(source)}: cannot dequantize a constant of type "
                            f"{_TYPE_NAMES.get(source.type, source.type)}")
        return self.add_tensor(index, shape, "float32", True, None, data)

    def static_shape(self, rec: _TensorRec) -> list[int]:
        shape = list(rec.shape)
        signature = rec.signature
        if signature is not None and len(signature) != len(shape):
            raise self.fail(f"corrupt TFLite file ({self.describe(rec)} has a shape signature of another rank)")
        dims = signature if signature is not None else shape
        for axis, dim in enumerate(dims):
            if dim >= 0 or (axis == 0 and len(dims) >= 2):
                continue
            raise self.fail(f"{self.describe(rec)} has a dynamic shape {dims}: only the batch dimension may "
                            "be unknown; export the model with a fixed input shape")
        if len(dims) >= 2 and dims[0] < 0:
            shape[0] = 1  # unknown batch: the IR describes one sample
        if any(d < 0 for d in shape):
            raise self.fail(f"corrupt TFLite file ({self.describe(rec)} has shape {shape})")
        if 0 in shape:
            raise self.fail(f"{self.describe(rec)} is empty (shape {shape})")
        if math.prod(shape) > _MAX_ELEMENTS:
            raise self.fail(f"{self.describe(rec)} is too large (shape {shape})")
        return shape

    def constant(self, rec: _TensorRec, shape: list[int], file_dtype: str) -> np.ndarray:
        assert rec.data is not None
        dtype = np.dtype(file_dtype)
        expected = math.prod(shape) * dtype.itemsize
        if len(rec.data) != expected:
            raise self.fail(f"corrupt TFLite file ({self.describe(rec)} holds {len(rec.data)} bytes of data, "
                            f"its shape {shape} needs {expected})")
        # A native-endian copy: params own their data and stay valid after the file bytes are gone
        return np.frombuffer(rec.data, dtype=dtype).astype(dtype.newbyteorder("="), copy=True).reshape(shape)

    def quant(self, rec: _TensorRec, shape: list[int], dtype: str, is_const: bool) -> Optional[ir.Quant]:
        q = rec.quant
        if dtype == "float32":
            return None  # float tensors compute in float, whatever range annotations they carry
        if q is None:
            if dtype in _QUANTIZED_DTYPES:
                raise self.fail(f"{self.describe(rec)} is {dtype} without quantization parameters")
            return None
        if q.custom:
            raise self.fail(f"{self.describe(rec)} uses a custom quantization format, which is not supported")
        scales, zero_points = q.scale, q.zero_point or [0] * len(q.scale)
        if len(zero_points) != len(scales):
            raise self.fail(f"{self.describe(rec)} has {len(scales)} quantization scales but "
                            f"{len(zero_points)} zero points")
        if not all(math.isfinite(s) and s > 0 for s in scales):
            raise self.fail(f"{self.describe(rec)} has an invalid quantization scale (not finite and positive)")
        if dtype in _QUANTIZED_DTYPES:
            info = np.iinfo(dtype)
            if not all(info.min <= z <= info.max for z in zero_points):
                raise self.fail(f"{self.describe(rec)} has a zero point outside the {dtype} range")
        if len(scales) == 1:
            return ir.Quant(scale=scales, zero_point=zero_points, axis=None)
        axis = q.dimension
        if len(shape) == 1 and shape[0] == len(scales):
            axis = 0  # e.g. a 1-D bias whose quantized_dimension names the filter's channel axis (3)
        if not 0 <= axis < len(shape) or shape[axis] != len(scales):
            raise self.fail(f"{self.describe(rec)} has {len(scales)} quantization scales along axis {axis}, "
                            f"which does not fit its shape {shape}")
        if not is_const:
            raise self.fail(f"{self.describe(rec)} is an activation quantized per channel, which is not supported")
        return ir.Quant(scale=scales, zero_point=zero_points, axis=axis)

    # ---- operators -------------------------------------------------------------------------------------------
    def convert_op(self, rec: _OpRec, op_name: str) -> ir.Op:
        self.op = rec
        if len(rec.outputs) != 1:
            raise self.fail(f"expected one output, found {len(rec.outputs)}")
        for t in rec.inputs:
            producer = self.producer.get(t)
            if producer is not None and producer >= rec.index:
                raise self.fail(f"reads tensor #{t} before operator #{producer} computes it")
        lowered: _Lowered = getattr(self, "op_" + rec.name.lower())(rec)
        inputs = [self.tensor(t) for t in lowered.inputs]
        output = self.tensor(rec.outputs[0])
        self.check_types(rec, [self.tensors[n] for n in inputs], self.tensors[output])
        if self.tensors[output].is_const:
            raise self.fail("writes a tensor that holds constant data")
        return ir.Op(name=op_name, type=_SUPPORTED_OPS[rec.name], inputs=inputs, outputs=[output],
                     attrs=lowered.attrs, label=f"{rec.name} #{rec.index}")

    # helpers used by the per-operator converters
    def input(self, rec: _OpRec, position: int, required: bool = True) -> int:
        """TFLite tensor index of input ``position``; -1 if the optional input is absent."""
        index = rec.inputs[position] if position < len(rec.inputs) else -1
        if index < 0 and required:
            raise self.fail(f"input {position} is missing")
        return index

    def expect_inputs(self, rec: _OpRec, low: int, high: int) -> None:
        if not low <= len(rec.inputs) <= high:
            expected = str(low) if low == high else f"{low} to {high}"
            raise self.fail(f"expected {expected} inputs, found {len(rec.inputs)}")

    def shape_of(self, index: int) -> list[int]:
        return self.static_shape(self.model.tensors[index])

    def out_shape(self, rec: _OpRec) -> list[int]:
        return self.static_shape(self.model.tensors[rec.outputs[0]])

    def constant_ints(self, index: int, what: str) -> np.ndarray:
        """The values of a constant integer input that becomes an attribute (shape, paddings, axes)."""
        rec = self.model.tensors[index]
        if rec.data is None:
            raise self.fail(f"{what} must be a constant tensor")
        if rec.type not in (2, 4):
            raise self.fail(f"{what} must be INT32 or INT64, found {_TYPE_NAMES.get(rec.type, rec.type)}")
        return self.constant(rec, self.static_shape(rec), _DTYPES[rec.type][1]).astype(np.int64)

    def options(self, rec: _OpRec, required: bool = False) -> dict[str, Any]:
        if rec.options is None:
            if required:
                raise self.fail("has no options")
            return {}
        return rec.options

    def activation(self, options: dict[str, Any]) -> str:
        code = int(options.get("FusedActivationFunction", 0))
        if code not in _ACTIVATIONS:
            name = _ACTIVATION_NAMES.get(code, f"code {code}")
            raise self.fail(f"fused activation {name} is not supported (supported: NONE, RELU, RELU6, "
                            "RELU_N1_TO_1)")
        return _ACTIVATIONS[code]

    def expect_shape(self, rec: _OpRec, expected: list[int]) -> None:
        actual = self.out_shape(rec)
        if list(actual) != list(expected):
            raise self.fail(f"output shape {actual} does not match the computed shape {list(expected)}")

    def rank(self, index: int, rank: int, what: str) -> list[int]:
        shape = self.shape_of(index)
        if len(shape) != rank:
            raise self.fail(f"{what} must be {rank}-D, found shape {shape}")
        return shape

    def positive(self, value: int, what: str) -> int:
        if value <= 0:
            raise self.fail(f"{what} must be positive, found {value}")
        return int(value)

    def window_geometry(self, options: dict[str, Any], in_hw: list[int], kernel: list[int],
                        dilation: list[int]) -> tuple[list[int], list[int], list[int]]:
        """(stride, pad [top, bottom, left, right], output [h, w]) of a sliding-window operator."""
        stride = [self.positive(options["StrideH"], "stride"), self.positive(options["StrideW"], "stride")]
        padding = int(options["Padding"])
        if padding not in (_PADDING_SAME, _PADDING_VALID):
            raise self.fail(f"unknown padding type {padding}")
        pad, out = [], []
        for size, k, s, d in zip(in_hw, kernel, stride, dilation):
            before, after, n = _window_padding(padding == _PADDING_SAME, size, k, s, d)
            if n <= 0:
                raise self.fail(f"the window ({kernel} dilated {dilation}) is larger than the input {in_hw}")
            pad += [before, after]
            out.append(n)
        if math.prod(d + pad[2 * i] + pad[2 * i + 1] for i, d in enumerate(in_hw)) > _MAX_ELEMENTS:
            raise self.fail(f"the padding {pad} is implausibly large")
        return stride, pad, out

    # per-operator converters: each checks its operator and returns the IR inputs and attributes
    def op_conv_2d(self, rec: _OpRec) -> _Lowered:
        return self.convolution(rec, depthwise=False)

    def op_depthwise_conv_2d(self, rec: _OpRec) -> _Lowered:
        return self.convolution(rec, depthwise=True)

    def convolution(self, rec: _OpRec, depthwise: bool) -> _Lowered:
        self.expect_inputs(rec, 2, 3)
        options = self.options(rec, required=True)
        x, w, b = self.input(rec, 0), self.input(rec, 1), self.input(rec, 2, required=False)
        n, h, wd, c = self.rank(x, 4, "the input")
        cout, kh, kw, cin = self.rank(w, 4, "the filter")
        self.constant_weights(w)
        if depthwise:
            # 1HWC filter: output channel c*multiplier + m reads input channel c
            if cout != 1 or cin % c != 0:
                raise self.fail(f"filter shape {[cout, kh, kw, cin]} does not fit {c} input channels")
            cout, multiplier = cin, cin // c
        elif cin != c:
            raise self.fail(f"grouped convolution ({c} input channels, filter for {cin}) is not supported")
        if b >= 0 and self.shape_of(b) != [cout]:
            raise self.fail(f"bias shape {self.shape_of(b)} does not fit {cout} output channels")
        dilation = [self.positive(options["DilationHFactor"], "dilation"),
                    self.positive(options["DilationWFactor"], "dilation")]
        stride, pad, (oh, ow) = self.window_geometry(options, [h, wd], [kh, kw], dilation)
        self.expect_shape(rec, [n, oh, ow, cout])
        attrs: dict[str, Any] = {"stride": stride, "dilation": dilation, "pad": pad,
                                 "activation": self.activation(options)}
        if depthwise:
            attrs["multiplier"] = multiplier
        return _Lowered([x, w] + ([b] if b >= 0 else []), attrs)

    def constant_weights(self, w: int) -> None:
        if self.model.tensors[w].data is None and w not in self.folded:
            raise self.fail("weights computed at run time are not supported (the filter must be a constant)")

    def op_fully_connected(self, rec: _OpRec) -> _Lowered:
        self.expect_inputs(rec, 2, 3)
        options = self.options(rec)
        x, w, b = self.input(rec, 0), self.input(rec, 1), self.input(rec, 2, required=False)
        units, depth = self.rank(w, 2, "the weights")
        self.constant_weights(w)
        if int(options.get("WeightsFormat", 0)) != 0:
            raise self.fail("shuffled weights format is not supported")
        numel = math.prod(self.shape_of(x))
        if depth <= 0 or numel % depth:
            raise self.fail(f"input shape {self.shape_of(x)} cannot be read as rows of {depth}")
        if b >= 0 and self.shape_of(b) != [units]:
            raise self.fail(f"bias shape {self.shape_of(b)} does not fit {units} outputs")
        # keep_num_dims keeps the input's leading axes; otherwise the output is [rows, units]
        keep = bool(options.get("KeepNumDims", False))
        self.expect_shape(rec, self.shape_of(x)[:-1] + [units] if keep else [numel // depth, units])
        return _Lowered([x, w] + ([b] if b >= 0 else []), {"activation": self.activation(options)})

    def op_average_pool_2d(self, rec: _OpRec) -> _Lowered:
        return self.pooling(rec)

    def op_max_pool_2d(self, rec: _OpRec) -> _Lowered:
        return self.pooling(rec)

    def pooling(self, rec: _OpRec) -> _Lowered:
        self.expect_inputs(rec, 1, 1)
        options = self.options(rec, required=True)
        x = self.input(rec, 0)
        n, h, w, c = self.rank(x, 4, "the input")
        kernel = [self.positive(options["FilterHeight"], "filter height"),
                  self.positive(options["FilterWidth"], "filter width")]
        stride, pad, (oh, ow) = self.window_geometry(options, [h, w], kernel, [1, 1])
        self.expect_shape(rec, [n, oh, ow, c])
        return _Lowered([x], {"kernel": kernel, "stride": stride, "pad": pad,
                              "activation": self.activation(options)})

    def op_add(self, rec: _OpRec) -> _Lowered:
        return self.binary(rec)

    def op_sub(self, rec: _OpRec) -> _Lowered:
        return self.binary(rec)

    def op_mul(self, rec: _OpRec) -> _Lowered:
        return self.binary(rec)

    def binary(self, rec: _OpRec) -> _Lowered:
        self.expect_inputs(rec, 2, 2)
        a, b = self.input(rec, 0), self.input(rec, 1)
        try:
            broadcast = list(np.broadcast_shapes(tuple(self.shape_of(a)), tuple(self.shape_of(b))))
        except ValueError:
            raise self.fail(f"input shapes {self.shape_of(a)} and {self.shape_of(b)} do not broadcast") from None
        self.expect_shape(rec, broadcast)
        return _Lowered([a, b], {"activation": self.activation(self.options(rec))})

    def unary(self, rec: _OpRec, attrs: Optional[dict[str, Any]] = None) -> _Lowered:
        self.expect_inputs(rec, 1, 1)
        x = self.input(rec, 0)
        self.expect_shape(rec, self.shape_of(x))
        return _Lowered([x], attrs or {})

    def op_softmax(self, rec: _OpRec) -> _Lowered:
        return self.unary(rec, {"beta": float(self.options(rec, required=True)["Beta"])})

    def op_logistic(self, rec: _OpRec) -> _Lowered:
        return self.unary(rec)

    def op_tanh(self, rec: _OpRec) -> _Lowered:
        return self.unary(rec)

    def op_relu(self, rec: _OpRec) -> _Lowered:
        return self.unary(rec)

    def op_relu6(self, rec: _OpRec) -> _Lowered:
        return self.unary(rec)

    def op_relu_n1_to_1(self, rec: _OpRec) -> _Lowered:
        return self.unary(rec, {"min": -1.0, "max": 1.0})

    def op_relu_0_to_1(self, rec: _OpRec) -> _Lowered:
        return self.unary(rec, {"min": 0.0, "max": 1.0})

    def op_leaky_relu(self, rec: _OpRec) -> _Lowered:
        return self.unary(rec, {"alpha": float(self.options(rec, required=True)["Alpha"])})

    def op_quantize(self, rec: _OpRec) -> _Lowered:
        return self.unary(rec)

    def op_dequantize(self, rec: _OpRec) -> _Lowered:
        return self.unary(rec)

    def op_reshape(self, rec: _OpRec) -> _Lowered:
        # The new shape (2nd input or options) may hold a -1; the output tensor's shape is the resolved one.
        self.expect_inputs(rec, 1, 2)
        return self.reshape(rec)

    def op_squeeze(self, rec: _OpRec) -> _Lowered:
        self.expect_inputs(rec, 1, 1)
        return self.reshape(rec)

    def reshape(self, rec: _OpRec) -> _Lowered:
        x = self.input(rec, 0)
        out = self.out_shape(rec)
        if math.prod(out) != math.prod(self.shape_of(x)):
            raise self.fail(f"cannot reshape {self.shape_of(x)} to {out}")
        return _Lowered([x], {"shape": out})

    def op_pad(self, rec: _OpRec) -> _Lowered:
        self.expect_inputs(rec, 2, 2)
        return self.pad(rec, value=0.0)  # a quantized PAD fills with the zero point, i.e. real 0

    def op_padv2(self, rec: _OpRec) -> _Lowered:
        self.expect_inputs(rec, 2, 3)
        fill = self.input(rec, 2, required=False)
        return self.pad(rec, value=self.scalar_value(fill) if fill >= 0 else 0.0)

    def pad(self, rec: _OpRec, value: float) -> _Lowered:
        x = self.input(rec, 0)
        shape = self.shape_of(x)
        paddings = self.constant_ints(self.input(rec, 1), "the paddings")
        if paddings.shape != (len(shape), 2) or (paddings < 0).any():
            raise self.fail(f"paddings {paddings.tolist()} do not fit an input of shape {shape}")
        pads = [[int(before), int(after)] for before, after in paddings]
        self.expect_shape(rec, [d + before + after for d, (before, after) in zip(shape, pads)])
        return _Lowered([x], {"pads": pads, "value": value})

    def scalar_value(self, index: int) -> float:
        """The real value of a one-element constant (PADV2's fill value)."""
        rec = self.model.tensors[index]
        if rec.data is None or rec.type not in _DTYPES:
            raise self.fail("the pad value must be a constant")
        shape = self.static_shape(rec)
        data = self.constant(rec, shape, _DTYPES[rec.type][1]).reshape(-1)
        if data.size != 1:
            raise self.fail(f"the pad value must hold one element, found shape {shape}")
        quant = self.quant(rec, shape, _DTYPES[rec.type][0], True)
        if quant is None:
            return float(data[0])
        return float(quant.scale[0] * (int(data[0]) - quant.zero_point[0]))

    def op_mean(self, rec: _OpRec) -> _Lowered:
        self.expect_inputs(rec, 2, 2)
        x = self.input(rec, 0)
        shape = self.shape_of(x)
        raw_axes = self.constant_ints(self.input(rec, 1), "the axes").reshape(-1).tolist()
        if any(not -len(shape) <= a < len(shape) for a in raw_axes):
            raise self.fail(f"axes {raw_axes} do not fit an input of shape {shape}")
        axes = sorted({a % len(shape) for a in raw_axes})
        keepdims = bool(self.options(rec).get("KeepDims", False))
        if keepdims:
            expected = [1 if i in axes else d for i, d in enumerate(shape)]
        else:
            expected = [d for i, d in enumerate(shape) if i not in axes]
        self.expect_shape(rec, expected)
        return _Lowered([x], {"axes": axes, "keepdims": keepdims})

    def op_concatenation(self, rec: _OpRec) -> _Lowered:
        if not rec.inputs:
            raise self.fail("has no inputs")
        options = self.options(rec, required=True)
        if self.activation(options) != "none":
            raise self.fail("a fused activation on CONCATENATION is not supported")
        inputs = [self.input(rec, i) for i in range(len(rec.inputs))]
        shapes = [self.shape_of(t) for t in inputs]
        rank = len(shapes[0])
        axis = int(options["Axis"])
        if not -rank <= axis < rank:
            raise self.fail(f"axis {axis} does not fit rank {rank}")
        axis %= rank
        for s in shapes:
            if len(s) != rank or s[:axis] + s[axis + 1:] != shapes[0][:axis] + shapes[0][axis + 1:]:
                raise self.fail(f"input shapes {shapes} cannot be joined along axis {axis}")
        self.expect_shape(rec, shapes[0][:axis] + [sum(s[axis] for s in shapes)] + shapes[0][axis + 1:])
        return _Lowered(inputs, {"axis": axis})

    # ---- types -----------------------------------------------------------------------------------------------
    def check_types(self, rec: _OpRec, inputs: list[ir.Tensor], output: ir.Tensor) -> None:
        """Reject the type mixes the kernels cannot run: hybrid models, uint8 arithmetic, odd weight types."""
        ir_type = _SUPPORTED_OPS[rec.name]
        if ir_type == "quantize":
            if output.dtype not in _QUANTIZED_DTYPES:
                raise self.fail(f"quantizes to {output.dtype}, expected int8, uint8 or int16")
            return
        if ir_type == "dequantize":
            if inputs[0].dtype not in _QUANTIZED_DTYPES or output.dtype != "float32":
                raise self.fail(f"dequantizes {inputs[0].dtype} to {output.dtype}, expected an integer "
                                "input and a float32 output")
            return
        if output.dtype == "float32" and any(t.dtype in _QUANTIZED_DTYPES for t in inputs):
            raise self.fail("hybrid model (int8 weights, float activations) is not supported")
        activations = [output] + [t for t in inputs if not t.is_const]
        kinds = {t.dtype for t in activations}
        if "uint8" in kinds:
            raise self.fail("uint8 quantized operators are not supported (convert the model to int8)")
        if len(kinds) != 1 or not kinds <= {"float32", "int8", "int16"}:
            raise self.fail(f"unsupported tensor types {sorted(kinds)} (expected all float32, int8 or int16)")
        if ir_type in ("conv2d", "depthwise_conv2d", "fully_connected"):
            self.check_weight_types(kinds.pop(), inputs[1], inputs[2] if len(inputs) > 2 else None)

    def check_weight_types(self, activation: str, weights: ir.Tensor, bias: Optional[ir.Tensor]) -> None:
        allowed = {"float32": ("float32", ("float32",)), "int8": ("int8", ("int32",)),
                   "int16": ("int8", ("int64", "int32"))}[activation]
        if weights.dtype != allowed[0] or (bias is not None and bias.dtype not in allowed[1]):
            found = f"{weights.dtype} weights" + (f" and {bias.dtype} bias" if bias is not None else "")
            raise self.fail(f"{activation} activations with {found} are not supported")


# ---- helpers ---------------------------------------------------------------------------------------------------
def _window_padding(same: bool, size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int, int]:
    """(pad before, pad after, output size) along one axis, as TFLite computes them."""
    effective = (kernel - 1) * dilation + 1
    if not same:  # VALID: only windows that lie entirely inside the input
        return 0, 0, (size - effective) // stride + 1 if size >= effective else 0
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2, out


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
