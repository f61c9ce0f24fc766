"""Step 1 of the ONNX import: read the ``.onnx`` file into a ModelProto and its nodes into :class:`Node` records.

We parse the protobuf ourselves, so a truncated or random file is one clear error and external data files are never
opened. The ONNX type constants the other modules share live here too.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import onnx
from onnx import helper

from ... import ir
from ...errors import NnsconsError
from .. import MAX_MODEL_BYTES, check_model_size

DEFAULT_DOMAINS = ("", "ai.onnx")
FLOAT = onnx.TensorProto.FLOAT
QUANT_TYPES = {onnx.TensorProto.INT8: "int8", onnx.TensorProto.UINT8: "uint8", onnx.TensorProto.INT16: "int16"}


@dataclass
class Node:
    """One ONNX node with its decoded attributes and its position in the model (for messages)."""

    index: int
    proto: onnx.NodeProto
    attrs: dict[str, Any]

    @property
    def op_type(self) -> str:
        return self.proto.op_type

    @property
    def inputs(self) -> list[str]:
        return list(self.proto.input)

    @property
    def outputs(self) -> list[str]:
        return list(self.proto.output)

    def input(self, k: int) -> str:
        """The k-th input's name, or "" when the optional input is absent."""
        return self.proto.input[k] if k < len(self.proto.input) else ""

    def where(self) -> str:
        name = f" '{ir.c_comment(self.proto.name)}'" if self.proto.name else ""
        return f"node #{self.index} ({ir.c_comment(self.op_type)}{name})"

    def label(self) -> str:
        return f"{self.op_type} {self.proto.name or '#' + str(self.index)}"


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, for errors that quote a library's complaint."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


def load_model(path: str) -> onnx.ModelProto:
    try:
        with open(path, "rb") as f:
            check_model_size(path, os.fstat(f.fileno()).st_size)   # before reading: a huge file is never read
            data = f.read(MAX_MODEL_BYTES + 1)                      # bounded: the file may grow meanwhile
    except OSError as e:
        raise NnsconsError(path, f"cannot read the model: {e.strerror or e}") from None
    check_model_size(path, len(data))
    try:
        model = onnx.ModelProto.FromString(data)
    except Exception:  # protobuf raises DecodeError (and occasionally others) on corrupt input
        raise NnsconsError(path, "not an ONNX model: the file does not parse as an ONNX protobuf "
                                 "(truncated or corrupt?)") from None
    if not data or not model.HasField("graph") or not model.graph.node or not model.graph.output:
        raise NnsconsError(path, "not an ONNX model: it holds no graph (empty, truncated or not an .onnx file)")
    _check_text(path, model)
    _check_attributes(path, model)
    for tensor in model.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            raise NnsconsError(path, f"initializer '{ir.c_comment(tensor.name)}' is stored in an external data "
                                     "file; save the model with its weights inside the .onnx file")
    return model


def _check_text(path: str, message: Any) -> None:
    """Every string field (names, op types, doc strings) of the protobuf is text: protobuf hands a string field that
    is not valid UTF-8 over as bytes, which no later step expects."""
    for field, value in message.ListFields():
        repeated = field.is_repeated if hasattr(field, "is_repeated") else field.label == field.LABEL_REPEATED
        values = value if repeated else [value]
        if field.type == field.TYPE_MESSAGE:
            for item in values:
                _check_text(path, item)
        elif field.type == field.TYPE_STRING and not all(isinstance(item, str) for item in values):
            raise NnsconsError(path, f"not an ONNX model: its {field.containing_type.name}.{field.name} holds "
                                     "bytes that are not UTF-8 text (corrupt file?)")


def _check_attributes(path: str, model: onnx.ModelProto) -> None:
    """Every attribute of a node of the default domain has a value, of the type the operator's ONNX schema gives
    it: the converters read ``pads`` as a list of integers, not whatever a damaged file declares."""
    opset = next((int(entry.version) for entry in model.opset_import if entry.domain in DEFAULT_DOMAINS), 0)
    for index, node in enumerate(model.graph.node):
        schema = None
        if opset > 0 and node.domain in DEFAULT_DOMAINS:
            try:
                schema = onnx.defs.get_schema(node.op_type, opset, "")
            except Exception:   # an unknown operator: refused, by name, with the supported ones
                schema = None
        for attribute in node.attribute:
            where = f"node #{index} ({ir.c_comment(node.op_type)}): attribute '{ir.c_comment(attribute.name)}'"
            expected = schema.attributes.get(attribute.name) if schema is not None else None
            if expected is not None and int(expected.type) != int(attribute.type):
                raise NnsconsError(path, f"{where} is of type {_type_name(attribute.type)}, the operator takes "
                                         f"{_type_name(expected.type)} (corrupt file?)")
            try:
                value = helper.get_attribute_value(attribute)
            except Exception:
                value = None
            if value is None:
                raise NnsconsError(path, f"{where} has no value of its type {_type_name(attribute.type)} "
                                         "(corrupt file?)")


def _type_name(attribute_type: int) -> str:
    try:
        return onnx.AttributeProto.AttributeType.Name(int(attribute_type))
    except ValueError:
        return f"#{int(attribute_type)}"


def default_opset(path: str, model: onnx.ModelProto) -> int:
    for entry in model.opset_import:
        if entry.domain in DEFAULT_DOMAINS:
            return int(entry.version)
    if model.ir_version and model.ir_version < 3 and not model.opset_import:
        return 1
    raise NnsconsError(path, "the model does not declare an opset for the default ONNX domain")


def decode_nodes(model: onnx.ModelProto) -> list[Node]:
    return [Node(i, n, decode_attrs(n)) for i, n in enumerate(model.graph.node)]


def decode_attrs(node: onnx.NodeProto) -> dict[str, Any]:
    attrs = {}
    for a in node.attribute:
        value = helper.get_attribute_value(a)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        elif isinstance(value, list) and value and isinstance(value[0], bytes):
            value = [v.decode("utf-8", "replace") for v in value]
        attrs[a.name] = value
    return attrs

