"""Pass 1 of the TFLite import: the file's bytes -> plain records (:mod:`.records`).

This is the only module that calls the ``tflite`` package's flatbuffer accessors. The file's identifier and size
are checked before anything is walked, every vector length is bounded by the file size (so garbage can never make
it loop for long), and any exception an accessor raises on a damaged file becomes one
:class:`~nnscons.errors.NnsconsError`.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Optional

import tflite
from tflite.utils import BUILTIN_OPCODE2NAME

from ...errors import NnsconsError
from .. import MAX_MODEL_BYTES, check_model_size
from .records import ModelRec, OpRec, QuantRec, TensorRec

# ---- TFLite schema facts ---------------------------------------------------------------------------------------
_FILE_IDENTIFIER = b"TFL3"
_SCHEMA_VERSION = 3
_CUSTOM_CODE = 32                    # BuiltinOperator.CUSTOM

# Limits that no real model reaches; they keep a damaged file from making the importer work for minutes.
_MAX_OPS = 100_000
_MAX_TENSORS = 500_000
_MAX_OP_IO = 1_024
_MAX_RANK = 8

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
    "SVDF": ("SVDFOptions", ("Rank", "FusedActivationFunction")),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": ("UnidirectionalSequenceLSTMOptions", ("FusedActivationFunction", "CellClip",
                                                                           "ProjClip", "TimeMajor")),
}


def read_file(path: str) -> bytes:
    """The file's bytes, read only once its first bytes are a TFLite header and its size is within
    :data:`~nnscons.importers.MAX_MODEL_BYTES`."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if not head:
                raise NnsconsError(path, "empty file, not a TFLite model")
            if head[4:8] != _FILE_IDENTIFIER:
                raise NnsconsError(path, "not a TFLite model (no 'TFL3' flatbuffer identifier at byte 4)")
            check_model_size(path, os.fstat(f.fileno()).st_size)
            rest = f.read(MAX_MODEL_BYTES + 1 - len(head))      # bounded: the file may grow meanwhile
    except OSError as exc:
        raise NnsconsError(path, f"cannot read the model: {exc.strerror or exc}") from None
    check_model_size(path, len(head) + len(rest))
    return head + rest


def decode(path: str, data: bytes) -> ModelRec:
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

    def model(self) -> ModelRec:
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
        return ModelRec(tensors=tensors, ops=ops,
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

    def tensor(self, t: Any, index: int, n_buffers: int, buffers: dict[int, Optional[bytes]]) -> TensorRec:
        shape = self.int_vector(t.ShapeLength, t.ShapeAsNumpy, "dimensions", _MAX_RANK)
        signature = None
        if not t.ShapeSignatureIsNone():
            signature = self.int_vector(t.ShapeSignatureLength, t.ShapeSignatureAsNumpy, "dimensions", _MAX_RANK)
        buffer = int(t.Buffer())
        if buffer >= n_buffers:
            raise self.fail(f"corrupt TFLite file (tensor #{index} refers to buffer {buffer} of {n_buffers})")
        if buffer not in buffers:
            buffers[buffer] = self.buffer_data(buffer)
        return TensorRec(index=index, label=self.text(t.Name()), shape=shape,
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

    def quantization(self, q: Any) -> Optional[QuantRec]:
        if q is None:
            return None
        n_scales = self.count(q.ScaleLength(), 4, "quantization scales", len(self.data))
        n_zero_points = self.count(q.ZeroPointLength(), 8, "zero points", len(self.data))
        custom = int(q.DetailsType()) != 0
        if n_scales == 0 and not custom:
            return None
        return QuantRec(scale=[float(s) for s in q.ScaleAsNumpy()] if n_scales else [],
                        zero_point=[int(z) for z in q.ZeroPointAsNumpy()] if n_zero_points else [],
                        dimension=int(q.QuantizedDimension()), custom=custom)

    def operator(self, op: Any, index: int, opcodes: list[tuple[str, str]]) -> OpRec:
        opcode = int(op.OpcodeIndex())
        if opcode >= len(opcodes):
            raise self.fail(f"corrupt TFLite file (operator #{index} has operator code {opcode} "
                            f"of {len(opcodes)})")
        name, custom_code = opcodes[opcode]
        return OpRec(index=index, name=name, custom_code=custom_code,
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
