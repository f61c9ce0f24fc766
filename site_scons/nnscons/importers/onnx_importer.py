"""ONNX importer: an ``.onnx`` model in, the IR (:mod:`nnscons.ir`) out.

The import runs in three steps:

1. **Load** (:func:`_load_model`): parse the protobuf ourselves (so a truncated or random file is one clear error,
   and external data files are never opened) and check that every node is an op we can handle.
2. **Make it static** (:func:`_prepare`): a dynamic batch dimension becomes 1 (any other dynamic dimension is an
   error), ONNX shape inference gives every intermediate shape, and shape arithmetic on constants
   (``Shape -> Gather -> Concat -> Reshape`` and friends, ``Constant`` nodes, reshapes of initializers) is folded
   with numpy. Folding and inference alternate until nothing more folds.
3. **Convert** (:class:`_Converter`): walk the remaining nodes in order and emit IR ops, fusing where the IR has
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
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

from .. import ir
from ..errors import NnsconsError

NHWC = (0, 2, 3, 1)          # ir = onnx.transpose(NHWC) for a 4-D NCHW tensor
_FROM_NHWC = (0, 3, 1, 2)    # its inverse
_MAX_FOLD_ROUNDS = 4
_MAX_FOLDED_ELEMENTS = 1 << 26   # refuse constant expressions that would allocate absurd arrays
_MAX_TENSOR_ELEMENTS = 1 << 26   # and activations far beyond any microcontroller (the importer indexes them)
_FLT_MAX = 3.0e38                # Clip bounds at or beyond this are "unbounded"
_DEFAULT_DOMAINS = ("", "ai.onnx")

_FLOAT = onnx.TensorProto.FLOAT
_QUANT_TYPES = {onnx.TensorProto.INT8: "int8", onnx.TensorProto.UINT8: "uint8", onnx.TensorProto.INT16: "int16"}


# ---- public entry point -----------------------------------------------------------------------------------------
def import_onnx(path: str) -> tuple[ir.Graph, dict[str, np.ndarray]]:
    """Import an ONNX model as an IR graph and its constant data (see the module docstring)."""
    path = os.fspath(path)
    model = _load_model(path)
    prepared = _prepare(path, model)
    graph, params = _Converter(path, prepared).convert()
    graph.source = "onnx"
    graph.source_file = os.path.basename(path)
    return graph, params


# ---- small helpers -------------------------------------------------------------------------------------------------
def _label(text: str) -> str:
    """A tensor label: the model's own name (untrusted; consumers sanitize it), capped in length."""
    return str(text)[:200]


def _ir_shape(onnx_shape: Sequence[int], perm: Sequence[int]) -> list[int]:
    return [int(onnx_shape[p]) for p in perm]


def _identity(rank: int) -> tuple[int, ...]:
    return tuple(range(rank))


def _inverse(perm: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argsort(perm))


def _ir_order(onnx_shape: Sequence[int], perm: Sequence[int]) -> np.ndarray:
    """The ONNX (row-major) flat index of each element, in the order the IR stores them."""
    return np.arange(int(np.prod(onnx_shape, dtype=np.int64))).reshape(onnx_shape).transpose(perm).ravel()


def _default_perm(rank: int) -> tuple[int, ...]:
    return NHWC if rank == 4 else _identity(rank)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


# ---- step 1: load ------------------------------------------------------------------------------------------------
@dataclass
class _Node:
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


def _decode_attrs(node: onnx.NodeProto) -> dict[str, Any]:
    attrs = {}
    for a in node.attribute:
        value = helper.get_attribute_value(a)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        elif isinstance(value, list) and value and isinstance(value[0], bytes):
            value = [v.decode("utf-8", "replace") for v in value]
        attrs[a.name] = value
    return attrs


def _load_model(path: str) -> onnx.ModelProto:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise NnsconsError(path, f"cannot read the model: {e.strerror or e}") from None
    try:
        model = onnx.ModelProto.FromString(data)
    except Exception:  # protobuf raises DecodeError (and occasionally others) on corrupt input
        raise NnsconsError(path, "not an ONNX model: the file does not parse as an ONNX protobuf "
                                 "(truncated or corrupt?)") from None
    if not data or not model.HasField("graph") or not model.graph.node or not model.graph.output:
        raise NnsconsError(path, "not an ONNX model: it holds no graph (empty, truncated or not an .onnx file)")
    for tensor in model.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            raise NnsconsError(path, f"initializer '{ir.c_comment(tensor.name)}' is stored in an external data "
                                     "file; save the model with its weights inside the .onnx file")
    return model


def _default_opset(path: str, model: onnx.ModelProto) -> int:
    for entry in model.opset_import:
        if entry.domain in _DEFAULT_DOMAINS:
            return int(entry.version)
    if model.ir_version and model.ir_version < 3 and not model.opset_import:
        return 1
    raise NnsconsError(path, "the model does not declare an opset for the default ONNX domain")


# ---- step 2: static shapes and constant folding ---------------------------------------------------------------------
@dataclass
class _Prepared:
    nodes: list[_Node]
    consts: dict[str, np.ndarray]
    shapes: dict[str, list[int]]       # static ONNX shapes of activations
    dynamic: dict[str, str]            # tensors whose inferred shape is not static -> description
    elem_types: dict[str, int]
    inputs: list[str]                  # real graph inputs (initializers excluded)
    outputs: list[str]
    opset: int


def _prepare(path: str, model: onnx.ModelProto) -> _Prepared:
    opset = _default_opset(path, model)
    graph = model.graph
    consts = {}
    for tensor in graph.initializer:
        try:
            consts[tensor.name] = numpy_helper.to_array(tensor)
        except Exception as e:
            raise NnsconsError(path, f"initializer '{ir.c_comment(tensor.name)}' is unreadable "
                                     f"({_first_line(e)})") from None
    inputs = [vi.name for vi in graph.input if vi.name not in consts]
    outputs = [vi.name for vi in graph.output]
    nodes = [_Node(i, n, _decode_attrs(n)) for i, n in enumerate(graph.node)]
    _check_supported(path, nodes)

    static = _static_model(path, model, set(inputs))
    for _ in range(_MAX_FOLD_ROUNDS):
        shapes, dynamic, elem_types = _infer_shapes(path, static)
        nodes, folded = _fold_constants(path, nodes, consts, shapes, opset)
        if not folded:
            break
        static = _rebuild(static, nodes, consts, inputs)
    return _Prepared(nodes, consts, shapes, dynamic, elem_types, inputs, outputs, opset)


def _static_model(path: str, model: onnx.ModelProto, inputs: set[str]) -> onnx.ModelProto:
    """A copy of the model whose inputs have static shapes (a dynamic batch dimension becomes 1) and whose
    stale intermediate and output shapes are dropped, so shape inference recomputes them from the inputs."""
    static = onnx.ModelProto()
    static.CopyFrom(model)
    # From IR version 4 on initializers need not be graph inputs; older models edited by tools (quantizers) often
    # have initializers that are not, which type checking then cannot see
    static.ir_version = max(static.ir_version, 4)
    for vi in static.graph.input:
        if vi.name not in inputs:
            continue
        name = ir.c_comment(vi.name)
        if not vi.type.HasField("tensor_type"):
            raise NnsconsError(path, f"input '{name}' is not a tensor")
        if not vi.type.tensor_type.HasField("shape"):
            raise NnsconsError(path, f"dynamic shape: input '{name}' has no shape; give the model static input "
                                     "shapes")
        for k, dim in enumerate(vi.type.tensor_type.shape.dim):
            if dim.HasField("dim_value") and dim.dim_value > 0:
                continue
            if k == 0:
                dim.Clear()
                dim.dim_value = 1
                continue
            what = f"'{ir.c_comment(dim.dim_param)}'" if dim.HasField("dim_param") else "unknown"
            raise NnsconsError(path, f"dynamic shape: input '{name}' dimension {k} is {what}; only the batch "
                                     "dimension (0) may be dynamic")
    del static.graph.value_info[:]
    for vi in static.graph.output:
        if vi.type.HasField("tensor_type"):
            vi.type.tensor_type.ClearField("shape")
    return static


def _infer_shapes(path: str, model: onnx.ModelProto) -> tuple[dict[str, list[int]], dict[str, str], dict[str, int]]:
    try:
        inferred = shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except Exception as e:
        raise NnsconsError(path, f"ONNX shape inference failed: {_first_line(e)}") from None
    shapes: dict[str, list[int]] = {}
    dynamic: dict[str, str] = {}
    elem_types: dict[str, int] = {}
    g = inferred.graph
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        if not vi.type.HasField("tensor_type"):
            continue
        tt = vi.type.tensor_type
        elem_types[vi.name] = tt.elem_type
        if not tt.HasField("shape"):
            continue
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim]
        if all(d >= 0 for d in dims):
            shapes[vi.name] = dims
        else:
            dynamic[vi.name] = "[" + ", ".join(ir.c_comment(d.dim_param) if d.HasField("dim_param") else
                                               (str(d.dim_value) if d.HasField("dim_value") else "?")
                                               for d in tt.shape.dim) + "]"
    return shapes, dynamic, elem_types


def _rebuild(model: onnx.ModelProto, nodes: list[_Node], consts: dict[str, np.ndarray],
             inputs: list[str]) -> onnx.ModelProto:
    """The static model with folded nodes removed and the constants they produced as initializers."""
    used = {name for node in nodes for name in node.inputs} | {vi.name for vi in model.graph.output}
    graph = helper.make_graph(
        [node.proto for node in nodes], model.graph.name,
        [vi for vi in model.graph.input if vi.name in inputs], list(model.graph.output),
        [numpy_helper.from_array(np.asarray(consts[n]), n) for n in sorted(used) if n in consts])
    rebuilt = helper.make_model(graph, opset_imports=list(model.opset_import))
    rebuilt.ir_version = model.ir_version
    return rebuilt


def _fold_constants(path: str, nodes: list[_Node], consts: dict[str, np.ndarray], shapes: dict[str, list[int]],
                    opset: int) -> tuple[list[_Node], bool]:
    """Evaluate, in order, every foldable node whose inputs are all known; returns the nodes left."""
    remaining, folded = [], False
    for node in nodes:
        value = _try_fold(path, node, consts, shapes, opset)
        if value is None:
            remaining.append(node)
            continue
        if value.size > _MAX_FOLDED_ELEMENTS:
            raise NnsconsError(path, f"{node.where()}: constant expression produces {value.size} elements")
        consts[node.outputs[0]] = value
        folded = True
    return remaining, folded


def _try_fold(path: str, node: _Node, consts: dict[str, np.ndarray], shapes: dict[str, list[int]],
              opset: int) -> Optional[np.ndarray]:
    op = node.op_type
    if op not in _FOLDERS or len(node.outputs) != 1:
        return None
    if op in ("Shape", "Size"):
        source = node.inputs[0]
        shape = list(consts[source].shape) if source in consts else shapes.get(source)
        if shape is None:
            return None
        args: list[Any] = [shape]
    else:
        args = []
        for name in node.inputs:
            if name and name not in consts:
                return None
            args.append(consts[name] if name else None)
    try:
        return np.asarray(_FOLDERS[op](node, args, opset))
    except NnsconsError:
        raise
    except Exception as e:  # numpy raises ValueError, IndexError, TypeError ... on inconsistent constants
        raise NnsconsError(path, f"{node.where()}: cannot evaluate this constant expression "
                                 f"({_first_line(e)})") from None


# Folders: (node, args, opset) -> value. Args are arrays (None for absent optional inputs); Shape/Size get a shape.
def _axes_arg(node: _Node, args: list[Any], opset: int, from_opset: int) -> Optional[list[int]]:
    """Axes given as an attribute (older opsets) or as the second input (newer ones)."""
    if opset >= from_opset:
        return None if len(args) < 2 or args[1] is None else [int(a) for a in np.ravel(args[1])]
    axes = node.attrs.get("axes")
    return None if axes is None else [int(a) for a in axes]


def _fold_constant(node: _Node, args: list[Any], opset: int) -> np.ndarray:
    attrs = node.attrs
    if "value" in attrs:
        return numpy_helper.to_array(attrs["value"])
    if "value_float" in attrs:
        return np.array(attrs["value_float"], np.float32)
    if "value_floats" in attrs:
        return np.array(attrs["value_floats"], np.float32)
    if "value_int" in attrs:
        return np.array(attrs["value_int"], np.int64)
    if "value_ints" in attrs:
        return np.array(attrs["value_ints"], np.int64)
    raise ValueError("only tensor, float and int Constant values are supported")


def _fold_shape(node: _Node, args: list[Any], opset: int) -> np.ndarray:
    shape = list(args[0])
    start, end = node.attrs.get("start", 0), node.attrs.get("end", None)
    return np.array(shape[start:end], np.int64)


def _fold_size(node: _Node, args: list[Any], opset: int) -> np.ndarray:
    return np.array(int(np.prod(args[0], dtype=np.int64)), np.int64)


def _fold_gather(node: _Node, args: list[Any], opset: int) -> np.ndarray:
    return np.take(args[0], args[1].astype(np.int64), axis=node.attrs.get("axis", 0))


def _fold_concat(node: _Node, args: list[Any], opset: int) -> np.ndarray:
    return np.concatenate([a for a in args if a is not None], axis=node.attrs["axis"])


def _fold_unsqueeze(node: _Node, args: list[Any], opset: int) -> np.ndarray:
    data = args[0]
    axes = _axes_arg(node, args, opset, 13) or []
    rank = data.ndim + len(axes)
    for axis in sorted(a % rank for a in axes):
        data = np.expand_dims(data, axis)
    return data


def _fold_squeeze(node: _Node, args: list[Any], opset: int) -> np.ndarray:
    axes = _axes_arg(node, args, opset, 13)
    data = args[0]
    return np.squeeze(data) if axes is None else np.squeeze(data, axis=tuple(a % data.ndim for a in axes))


def _reshape_target(in_shape: Sequence[int], shape: Iterable[int], allowzero: bool) -> list[int]:
    """ONNX Reshape's target: 0 copies the input dimension (unless allowzero), -1 is inferred."""
    return [int(in_shape[i]) if int(d) == 0 and not allowzero else int(d) for i, d in enumerate(shape)]


def _fold_reshape(node: _Node, args: list[Any], opset: int) -> np.ndarray:
    shape = node.attrs.get("shape", []) if opset < 5 else args[1]
    return args[0].reshape(_reshape_target(args[0].shape, np.ravel(shape), bool(node.attrs.get("allowzero", 0))))


def _fold_flatten(node: _Node, args: list[Any], opset: int) -> np.ndarray:
    data = args[0]
    axis = node.attrs.get("axis", 1) % (data.ndim + 1) if data.ndim else 0
    return data.reshape(int(np.prod(data.shape[:axis], dtype=np.int64)), -1)


def _fold_transpose(node: _Node, args: list[Any], opset: int) -> np.ndarray:
    return np.transpose(args[0], node.attrs.get("perm"))


def _fold_cast(node: _Node, args: list[Any], opset: int) -> np.ndarray:
    return args[0].astype(helper.tensor_dtype_to_np_dtype(node.attrs["to"]))


def _fold_slice(node: _Node, args: list[Any], opset: int) -> np.ndarray:
    data = args[0]
    if opset < 10:
        starts, ends = node.attrs["starts"], node.attrs["ends"]
        axes, steps = node.attrs.get("axes"), None
    else:
        starts, ends = np.ravel(args[1]), np.ravel(args[2])
        axes = None if len(args) < 4 or args[3] is None else np.ravel(args[3])
        steps = None if len(args) < 5 or args[4] is None else np.ravel(args[4])
    axes = list(range(len(starts))) if axes is None else [int(a) % data.ndim for a in axes]
    steps = [1] * len(starts) if steps is None else [int(s) for s in steps]
    index = [slice(None)] * data.ndim
    for axis, start, end, step in zip(axes, starts, ends, steps):
        index[axis] = slice(int(start), int(end), step)
    return data[tuple(index)]


def _fold_binary(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[..., np.ndarray]:
    def fold(node: _Node, args: list[Any], opset: int) -> np.ndarray:
        a, b = args[0], args[1]
        return fn(a, b).astype(np.result_type(a, b))
    return fold


def _int_or_float_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if np.issubdtype(np.result_type(a, b), np.integer):
        return np.sign(a) * np.sign(b) * (np.abs(a) // np.abs(b))  # ONNX integer Div truncates toward zero
    return a / b


def _fold_identity(node: _Node, args: list[Any], opset: int) -> np.ndarray:
    return args[0]


def _fold_constant_of_shape(node: _Node, args: list[Any], opset: int) -> np.ndarray:
    shape = [int(d) for d in np.ravel(args[0])]
    if np.prod(shape, dtype=np.float64) > _MAX_FOLDED_ELEMENTS:
        raise ValueError(f"shape {shape} is too large")
    value = numpy_helper.to_array(node.attrs["value"]) if "value" in node.attrs else np.zeros(1, np.float32)
    return np.full(shape, value.ravel()[0], dtype=value.dtype)


def _fold_range(node: _Node, args: list[Any], opset: int) -> np.ndarray:
    start, limit, delta = (np.asarray(a).item() for a in args[:3])
    if delta == 0 or abs((limit - start) / delta) > _MAX_FOLDED_ELEMENTS:
        raise ValueError("bad or too large range")
    return np.arange(start, limit, delta, dtype=np.asarray(args[0]).dtype)


_FOLDERS: dict[str, Callable[[_Node, list[Any], int], np.ndarray]] = {
    "Constant": _fold_constant,
    "Shape": _fold_shape,
    "Size": _fold_size,
    "Gather": _fold_gather,
    "Concat": _fold_concat,
    "Unsqueeze": _fold_unsqueeze,
    "Squeeze": _fold_squeeze,
    "Reshape": _fold_reshape,
    "Flatten": _fold_flatten,
    "Transpose": _fold_transpose,
    "Cast": _fold_cast,
    "Slice": _fold_slice,
    "Add": _fold_binary(np.add),
    "Sub": _fold_binary(np.subtract),
    "Mul": _fold_binary(np.multiply),
    "Div": _fold_binary(_int_or_float_div),
    "Identity": _fold_identity,
    "ConstantOfShape": _fold_constant_of_shape,
    "Range": _fold_range,
}


# ---- step 3: conversion -------------------------------------------------------------------------------------------
@dataclass(eq=False)
class _Value:
    """How an ONNX activation lives in the IR: ``ir_array = onnx_array.transpose(perm)``, and, for a 2-D tensor
    made by flattening NCHW data, ``order`` (IR column j holds ONNX column ``order[j]``)."""

    ir: str
    perm: tuple[int, ...]
    order: Optional[np.ndarray] = None


@dataclass(eq=False)
class _Const:
    """Constant data in ONNX layout; ``scale``/``zero_point``/``axis`` are set for a DequantizeLinear'd integer
    constant (``real = scale * (data - zero_point)``, per channel along ``axis`` if it is not None)."""

    data: np.ndarray
    scale: Optional[np.ndarray] = None
    zero_point: Optional[np.ndarray] = None
    axis: Optional[int] = None

    @property
    def quantized(self) -> bool:
        return self.scale is not None

    def with_data(self, data: np.ndarray, axis: Optional[int]) -> "_Const":
        """The same quantization over new data; ``axis`` is where the per-channel axis went (if there is one)."""
        return _Const(np.ascontiguousarray(data), self.scale, self.zero_point,
                      axis if self.axis is not None else None)

    def transposed(self, perm: Sequence[int]) -> "_Const":
        axis = list(perm).index(self.axis) if self.axis is not None else None
        return self.with_data(self.data.transpose(perm), axis)

    def expanded(self, rank: int) -> "_Const":
        """With leading 1-dimensions up to ``rank`` (numpy broadcasting's view of it)."""
        extra = rank - self.data.ndim
        axis = self.axis + extra if self.axis is not None else None
        return self.with_data(self.data.reshape((1,) * extra + self.data.shape), axis)

    def real(self) -> np.ndarray:
        if not self.quantized:
            return self.data.astype(np.float64)
        shape = [1] * self.data.ndim
        if self.axis is not None:
            shape[self.axis] = -1
        scale = self.scale.astype(np.float64).reshape(shape)
        zero_point = self.zero_point.astype(np.float64).reshape(shape)
        return scale * (self.data.astype(np.float64) - zero_point)

    def quant(self) -> Optional[ir.Quant]:
        if not self.quantized:
            return None
        scale = [float(s) for s in np.ravel(self.scale).astype(np.float32)]
        zero_point = [int(z) for z in np.broadcast_to(np.ravel(self.zero_point), (len(scale),))]
        return ir.Quant(scale, zero_point, self.axis)


@dataclass(eq=False)
class _Layer:
    """A conv or fully-connected layer being assembled. ``weight`` has output channels on axis 0 (OIHW for convs,
    ``[out, in]`` for FC); ``out`` is the ONNX name of the layer's output so far (moves on as nodes fuse)."""

    kind: str
    weight: _Const
    weight_label: str
    bias: Optional[_Const]
    out: str
    nodes: list[_Node]
    activation: str = "none"
    bias_label: str = ""

    def apply_affine(self, scale: np.ndarray, shift: np.ndarray) -> None:
        """Fold ``y * scale + shift`` (per output channel) into the float weights and bias."""
        w = self.weight.data.astype(np.float64)
        self.weight = _Const((w * scale.reshape((-1,) + (1,) * (w.ndim - 1))).astype(np.float32))
        bias = self.bias.data.astype(np.float64) if self.bias is not None else np.zeros(len(scale))
        self.bias = _Const((bias * scale + shift).astype(np.float32))


def _same_quant(a: ir.Quant, b: ir.Quant) -> bool:
    return (a.axis == b.axis and list(a.zero_point) == list(b.zero_point)
            and np.array_equal(np.float32(a.scale), np.float32(b.scale)))


def _clip_activation(low: Optional[float], high: Optional[float]) -> Optional[str]:
    """The fused activation equal to clipping to [low, high], if there is one."""
    for name, bounds in ir.ACTIVATION_RANGES.items():
        if name != "none" and (low, high) == bounds:
            return name
    return None


class _Converter:
    """Walks the prepared ONNX nodes in order and builds the IR graph."""

    def __init__(self, path: str, prepared: _Prepared) -> None:
        self.path = path
        self.p = prepared
        self.names = ir.NameTable()
        self.tensors: dict[str, ir.Tensor] = {}
        self.params: dict[str, np.ndarray] = {}
        self.ops: list[ir.Op] = []
        self.values: dict[str, _Value] = {}
        self.aliases: dict[str, list[str]] = {}   # IR tensor -> ONNX names that map to it
        self.consts: dict[str, _Const] = {name: _Const(data) for name, data in prepared.consts.items()}
        self.consumers: dict[str, list[int]] = {}
        for pos, node in enumerate(prepared.nodes):
            for name in node.inputs:
                if name:
                    self.consumers.setdefault(name, []).append(pos)
        self.graph_outputs = set(prepared.outputs)
        self.done: set[int] = set()
        self.ir_inputs: list[str] = []
        self.input_perm: dict[str, list[int]] = {}
        self.output_perm: dict[str, list[int]] = {}
        self.layout = "NCHW"
        self.activation_dtypes: set[str] = set()   # integer dtypes of quantized activations seen
        self.relayouts: dict[tuple[str, tuple[int, ...]], str] = {}

    # ---- driver --------------------------------------------------------------------------------------------------
    def convert(self) -> tuple[ir.Graph, dict[str, np.ndarray]]:
        self._check_not_hybrid()
        for name in self.p.inputs:
            self._add_input(name)
        for pos, node in enumerate(self.p.nodes):
            if pos in self.done:
                continue
            self.done.add(pos)
            getattr(self, _HANDLERS[node.op_type])(pos, node)
        outputs = [self._finish_output(name) for name in self.p.outputs]
        quantized = "none"
        if self.activation_dtypes:
            quantized = "int16x8" if "int16" in self.activation_dtypes else "int8"
            self._check_fully_quantized()
        graph = ir.Graph(tensors=self.tensors, ops=self.ops, inputs=self.ir_inputs, outputs=outputs,
                         layout=self.layout, input_perm=self.input_perm, output_perm=self.output_perm,
                         quantized=quantized)
        ir.validate(graph, self.params)
        return graph, self.params

    def fail(self, node: Optional[_Node], message: str) -> NnsconsError:
        """The error to raise for a problem at ``node`` (use as ``raise self.fail(...)``)."""
        return NnsconsError(self.path, f"{node.where()}: {message}" if node else message)

    # ---- graph inputs and outputs --------------------------------------------------------------------------------
    def _add_input(self, name: str) -> None:
        shape = self.p.shapes.get(name)
        if shape is None:
            raise self.fail(None, f"dynamic shape: input '{ir.c_comment(name)}' has no static shape")
        if np.prod(shape, dtype=np.float64) > _MAX_TENSOR_ELEMENTS:
            raise self.fail(None, f"input '{ir.c_comment(name)}' of shape {shape} is too large")
        elem = self.p.elem_types.get(name)
        if elem == _FLOAT:
            dtype = "float32"
        elif elem in _QUANT_TYPES and all(self.p.nodes[pos].op_type == "DequantizeLinear"
                                          for pos in self.consumers.get(name, [])):
            dtype = _QUANT_TYPES[elem]
        else:
            type_name = onnx.TensorProto.DataType.Name(elem) if elem in onnx.TensorProto.DataType.values() else elem
            raise self.fail(None, f"input '{ir.c_comment(name)}' has type {type_name}; only float32 inputs "
                                  "(or integer inputs of a quantized model) are supported")
        perm = _default_perm(len(shape))
        users = [self.p.nodes[pos] for pos in self.consumers.get(name, [])]
        if len(shape) == 4 and users and all(u.op_type == "Transpose" and list(u.attrs.get("perm", [])) ==
                                             list(_FROM_NHWC) for u in users):
            perm = _identity(4)     # an NHWC input that the model itself transposes to NCHW
            self.layout = "NHWC"
        ir_name = self._new_tensor(name, _ir_shape(shape, perm), dtype)
        self.ir_inputs.append(ir_name)
        if perm != _identity(len(shape)):
            self.input_perm[ir_name] = list(perm)
        self._set_value(name, _Value(ir_name, perm))

    def _finish_output(self, name: str) -> str:
        where = f"graph output '{ir.c_comment(name)}'"
        if name in self.consts:
            raise self.fail(None, f"{where} is a constant; nothing to compute")
        value = self.values.get(name)
        if value is None:
            raise self.fail(None, f"{where} is not produced by any node")
        if value.order is not None:
            raise self.fail(None, f"{where} is an NCHW tensor flattened in (C, H, W) order; layout change not "
                                  "supported")
        tensor = self.tensors[value.ir]
        if self.p.elem_types.get(name) == _FLOAT and tensor.dtype != "float32":
            out = self._new_tensor(name, tensor.shape, "float32")
            self._emit("dequantize", [value.ir], [out], {}, "DequantizeLinear (graph output)")
            value = _Value(out, value.perm)
        if value.ir in self.ir_inputs:
            raise self.fail(None, f"{where} is a graph input; nothing to compute")
        if value.perm != _identity(len(value.perm)):
            self.output_perm[value.ir] = list(_inverse(value.perm))
        return value.ir

    # ---- tensors, values, ops --------------------------------------------------------------------------------------
    def _new_tensor(self, label: str, shape: Sequence[int], dtype: str, quant: Optional[ir.Quant] = None,
                    data: Optional[np.ndarray] = None) -> str:
        name = self.names.unique(label, "t")
        self.tensors[name] = ir.Tensor(name, [int(d) for d in shape], dtype, label=_label(label),
                                       is_const=data is not None, quant=quant)
        if data is not None:
            self.params[name] = np.ascontiguousarray(data)
        return name

    def _const_tensor(self, label: str, const: _Const) -> str:
        data = const.data if const.quantized else const.data.astype(np.float32)
        if data.dtype.name not in ir.DTYPES:
            raise self.fail(None, f"constant '{ir.c_comment(label)}' has unsupported type {data.dtype.name}")
        return self._new_tensor(label, data.shape, data.dtype.name, const.quant(), data)

    def _emit(self, ir_type: str, inputs: list[str], outputs: list[str], attrs: dict[str, Any],
              label: str) -> ir.Op:
        op = ir.Op(self.names.unique(f"{ir_type}_{len(self.ops)}", "op"), ir_type, inputs, outputs, attrs,
                   ir.c_comment(label, 80))
        self.ops.append(op)
        return op

    def _emit_from(self, ir_type: str, inputs: list[str], out_name: str, out_shape_ir: Sequence[int],
                   attrs: dict[str, Any], nodes: list[_Node], inherit_quant_of: Optional[str] = None) -> str:
        """Emit one op whose output is a new activation named after the ONNX tensor ``out_name``. Ops that keep
        their input's quantization (reshape, max pooling, pad) pass ``inherit_quant_of``."""
        dtype, quant = "float32", None
        if inherit_quant_of is not None and self.tensors[inherit_quant_of].quant is not None:
            source = self.tensors[inherit_quant_of]
            dtype, quant = source.dtype, ir.Quant.from_json(source.quant.to_json())
        out = self._new_tensor(out_name, out_shape_ir, dtype, quant)
        label = nodes[0].label() + "".join(f" +{n.op_type}" for n in nodes[1:])
        self._emit(ir_type, inputs, [out], attrs, label)
        return out

    def _set_value(self, onnx_name: str, value: _Value) -> None:
        self.values[onnx_name] = value
        self.aliases.setdefault(value.ir, []).append(onnx_name)

    def _shape(self, node: _Node, name: str) -> list[int]:
        shape = self.p.shapes.get(name)
        if shape is None:
            if name in self.p.dynamic:
                raise self.fail(node, f"dynamic shape: tensor '{ir.c_comment(name)}' has shape "
                                      f"{self.p.dynamic[name]}; only static shapes are supported")
            raise self.fail(node, f"could not determine the shape of tensor '{ir.c_comment(name)}'")
        if np.prod(shape, dtype=np.float64) > _MAX_TENSOR_ELEMENTS:
            raise self.fail(node, f"tensor '{ir.c_comment(name)}' of shape {shape} is too large")
        return shape

    def _value(self, node: _Node, name: str) -> _Value:
        """The IR side of an activation input."""
        value = self.values.get(name)
        if value is None:
            if name in self.consts:
                raise self.fail(node, f"constant input '{ir.c_comment(name)}' where an activation is expected; "
                                      "not supported")
            raise self.fail(node, f"input '{ir.c_comment(name)}' is not produced before it is used")
        return value

    def _const(self, node: _Node, name: str, what: str) -> _Const:
        const = self.consts.get(name)
        if const is None:
            raise self.fail(node, f"{what} '{ir.c_comment(name)}' must be a constant (initializer)")
        return const

    def _const_array(self, node: _Node, name: str, what: str) -> np.ndarray:
        return self._const(node, name, what).real()

    def _sole_consumer(self, name: str, op_types: Iterable[str]) -> Optional[tuple[int, _Node]]:
        """The node that alone reads ``name`` (and is of one of ``op_types``), unless ``name`` is a graph output."""
        users = self.consumers.get(name, [])
        if name in self.graph_outputs or len(users) != 1 or users[0] in self.done:
            return None
        node = self.p.nodes[users[0]]
        return (users[0], node) if node.op_type in op_types else None

    def _in_layout(self, node: _Node, name: str, perm: Sequence[int]) -> str:
        """The IR tensor holding activation ``name`` as ``onnx.transpose(perm)``, adding an IR reshape when only the
        shape differs (same element order)."""
        value = self._value(node, name)
        perm = tuple(perm)
        self._reject_flattened(node, name, value)
        if value.perm == perm:
            return value.ir
        shape = self._shape(node, name)
        if not np.array_equal(_ir_order(shape, value.perm), _ir_order(shape, perm)):
            raise self.fail(node, f"layout change not supported: input '{ir.c_comment(name)}' comes from a "
                                  "transpose or reshape that changes the element order of its NCHW/NHWC data")
        key = (value.ir, perm)
        if key not in self.relayouts:
            self.relayouts[key] = self._emit_from("reshape", [value.ir], name, _ir_shape(shape, perm),
                                                  {"shape": _ir_shape(shape, perm)}, [node],
                                                  inherit_quant_of=value.ir)
        return self.relayouts[key]

    def _reject_flattened(self, node: _Node, name: str, value: _Value) -> None:
        if value.order is not None:
            raise self.fail(node, f"layout change not supported: '{ir.c_comment(name)}' is an NCHW tensor "
                                  "flattened in (C, H, W) order, which only a following fully-connected layer "
                                  f"(Gemm/MatMul) can absorb by reordering its weights, but it feeds "
                                  f"{ir.c_comment(node.op_type)}")

    def _const_operand(self, name: str, const: _Const, rank: int, perm: Sequence[int]) -> str:
        """An IR constant for a broadcast operand: expanded to ``rank`` then permuted like the activations."""
        if const.data.ndim > rank:
            raise self.fail(None, f"constant '{ir.c_comment(name)}' has more dimensions than the result")
        return self._const_tensor(name, const.expanded(rank).transposed(perm))

    # ---- quantization checks ------------------------------------------------------------------------------------
    def _check_not_hybrid(self) -> None:
        has_quantize = any(n.op_type == "QuantizeLinear" for n in self.p.nodes)
        int_inputs = any(self.p.elem_types.get(n) in _QUANT_TYPES for n in self.p.inputs)
        dq_of_const = any(n.op_type == "DequantizeLinear" and n.inputs[0] in self.consts for n in self.p.nodes)
        if dq_of_const and not has_quantize and not int_inputs:
            raise self.fail(None, "hybrid model (int8 weights, float activations) is not supported")

    def _check_fully_quantized(self) -> None:
        """In a QDQ model every activation between the input quantize and output dequantize must be integer."""
        for op in self.ops:
            float_inputs = [t for t in op.inputs if not self.tensors[t].is_const and self.tensors[t].quant is None]
            float_outputs = [t for t in op.outputs if self.tensors[t].quant is None]
            if op.type == "quantize":
                float_inputs = []
            if op.type == "dequantize":
                float_outputs = []
            if not float_inputs and not float_outputs:
                continue
            int_consts = any(self.tensors[t].is_const and self.tensors[t].quant is not None for t in op.inputs)
            if float_inputs and int_consts:
                raise self.fail(None, f"op {op.label}: hybrid model (int8 weights, float activations) is not "
                                      "supported")
            tensor = self.tensors[(float_inputs or float_outputs)[0]]
            raise self.fail(None, f"tensor '{ir.c_comment(tensor.label)}' ({op.label}) is float in a quantized "
                                  "(QDQ) model: mixed float/integer graphs are not supported (is a "
                                  "QuantizeLinear/DequantizeLinear pair missing?)")

    def _qdq_params(self, node: _Node) -> tuple[np.ndarray, np.ndarray, str, Optional[int]]:
        """(scale, zero_point, integer dtype, per-channel axis or None) of a QuantizeLinear/DequantizeLinear."""
        if node.attrs.get("block_size", 0):
            raise self.fail(node, "blocked quantization is not supported")
        scale = self._const(node, node.input(1), "scale")
        if scale.quantized:
            raise self.fail(node, "scale must be a float constant")
        scale_data = scale.data.astype(np.float32)
        if node.input(2):
            zero_point = self._const(node, node.input(2), "zero point").data
        elif node.op_type == "DequantizeLinear" and node.inputs[0] in self.consts:
            zero_point = np.zeros(scale_data.shape, self.consts[node.inputs[0]].data.dtype)
        else:
            dtype = helper.tensor_dtype_to_np_dtype(node.attrs["output_dtype"]) if node.attrs.get(
                "output_dtype") else np.uint8
            zero_point = np.zeros(scale_data.shape, dtype)
        axis = None
        if scale_data.size > 1:
            axis = int(node.attrs.get("axis", 1))
        if np.any(scale_data <= 0) or not np.all(np.isfinite(scale_data)):
            raise self.fail(node, "quantization scale must be positive and finite")
        return scale_data, zero_point, zero_point.dtype.name, axis

    def _activation_quant(self, node: _Node) -> tuple[str, ir.Quant]:
        """The (IR dtype, quant) a Q/DQ node gives an activation; uint8 becomes the equivalent int8."""
        scale, zero_point, dtype, axis = self._qdq_params(node)
        if axis is not None or scale.size != 1:
            raise self.fail(node, "per-channel quantization of activations is not supported")
        if dtype not in _QUANT_TYPES.values():
            raise self.fail(node, f"quantization to {dtype} is not supported (int8, uint8 or int16)")
        zp = int(np.ravel(zero_point)[0])
        if dtype == "uint8":
            dtype, zp = "int8", zp - 128
        return dtype, ir.Quant([float(np.ravel(scale)[0])], [zp], None)

    # ---- handlers: quantization ---------------------------------------------------------------------------------
    def _quantize_linear(self, pos: int, node: _Node) -> None:
        x, out = node.inputs[0], node.outputs[0]
        if x in self.consts:
            self.consts[out] = self._quantized_const(node, self.consts[x])
            return
        value = self._value(node, x)
        dtype, quant = self._activation_quant(node)
        self.activation_dtypes.add(dtype)
        tensor = self.tensors[value.ir]
        if tensor.quant is None and tensor.dtype == "float32" and self._owned_by(value.ir, pos):
            tensor.dtype, tensor.quant = dtype, quant      # the producing op outputs integers directly
            self._make_clamp_explicit(value.ir, dtype, quant)
            self._set_value(out, value)
        elif tensor.quant is not None and tensor.dtype == dtype and _same_quant(tensor.quant, quant):
            self._set_value(out, value)
        else:   # a float graph input, or a requantization
            new = self._emit_from("quantize", [value.ir], out, tensor.shape, {}, [node])
            self.tensors[new].dtype, self.tensors[new].quant = dtype, quant
            self._set_value(out, _Value(new, value.perm, value.order))

    def _quantized_const(self, node: _Node, const: _Const) -> _Const:
        """QuantizeLinear of a float constant (quantizers emit it for weights computed by folded nodes): the
        integer data, as onnxruntime computes it (round half to even, saturate)."""
        if const.quantized:
            raise self.fail(node, "QuantizeLinear of an already quantized constant")
        scale, zero_point, dtype, axis = self._qdq_params(node)
        shape = [1] * const.data.ndim
        if axis is not None:
            shape[axis % const.data.ndim] = -1
        info = np.iinfo(dtype)
        q = np.rint(const.data.astype(np.float64) / scale.astype(np.float64).reshape(shape))
        q = q + zero_point.astype(np.float64).reshape(shape if zero_point.size > 1 else [1] * len(shape))
        return _Const(np.clip(q, info.min, info.max).astype(dtype))

    def _make_clamp_explicit(self, ir_name: str, dtype: str, quant: ir.Quant) -> None:
        """A quantizer that removed a Relu leaves the output quantization to clamp at zero (zero point = the
        type's minimum, as onnxruntime's quantize_static does). Saying ``relu`` changes nothing for the integer
        kernels (their clamp is the same) and keeps the model's semantics for anything that runs it in float."""
        if quant.zero_point[0] != np.iinfo(dtype).min:
            return
        producer = next((op for op in self.ops if ir_name in op.outputs), None)
        if producer is not None and producer.attrs.get("activation") == "none":
            producer.attrs["activation"] = "relu"

    def _owned_by(self, ir_name: str, pos: int) -> bool:
        """True when the IR tensor is computed by an op and node ``pos`` is the only reader of all its names."""
        if ir_name in self.ir_inputs:
            return False
        for name in self.aliases.get(ir_name, []):
            if name in self.graph_outputs or any(user != pos for user in self.consumers.get(name, [])):
                return False
        return not any(ir_name in op.inputs for op in self.ops)

    def _dequantize_linear(self, pos: int, node: _Node) -> None:
        x, out = node.inputs[0], node.outputs[0]
        if x in self.consts:
            const = self.consts[x]
            if const.quantized or not np.issubdtype(const.data.dtype, np.integer):
                raise self.fail(node, "DequantizeLinear of a constant needs integer data")
            scale, zero_point, _, axis = self._qdq_params(node)
            if axis is not None:
                axis %= const.data.ndim
                if const.data.shape[axis] != scale.size:
                    raise self.fail(node, f"{scale.size} scales for axis {axis} of shape {list(const.data.shape)}")
            self.consts[out] = _Const(const.data, np.ravel(scale), np.ravel(zero_point), axis)
            return
        value = self._value(node, x)
        tensor = self.tensors[value.ir]
        if tensor.dtype == "float32":
            raise self.fail(node, "DequantizeLinear of a float tensor")
        dtype, quant = self._activation_quant(node)
        if tensor.dtype == "uint8":     # an integer graph input keeps its own type
            quant = ir.Quant(quant.scale, [quant.zero_point[0] + 128], None)
        if tensor.quant is None:
            tensor.quant = quant
        elif not _same_quant(tensor.quant, quant):
            raise self.fail(node, "DequantizeLinear parameters differ from those of the QuantizeLinear that "
                                  f"produced '{ir.c_comment(x)}'; not supported")
        self._set_value(out, value)

    # ---- handlers: conv and fully connected ---------------------------------------------------------------------
    def _conv(self, pos: int, node: _Node) -> None:
        x = node.inputs[0]
        in_shape = self._shape(node, x)
        weight = self._const(node, node.input(1), "weights")
        if len(in_shape) != 4 or weight.data.ndim != 4:
            raise self.fail(node, "only 2-D convolutions (4-D NCHW input) are supported")
        bias = self._const(node, node.input(2), "bias") if node.input(2) else None
        group = int(node.attrs.get("group", 1))
        c_in = in_shape[1]
        c_out, c_per_group, kh, kw = weight.data.shape
        if group == 1 and c_per_group == c_in:
            kind = "conv2d"
        elif group == c_in and c_per_group == 1 and c_out % c_in == 0:
            kind = "depthwise_conv2d"
        else:
            raise self.fail(node, f"grouped convolution (group={group}, {c_in} input channels) is not supported: "
                                  "only group=1 and depthwise (group = input channels) map to CMSIS-NN")
        x_ir = self._in_layout(node, x, NHWC)
        stride, dilation, pad = self._window(node, in_shape, (kh, kw))
        layer = _Layer(kind, weight, node.input(1), bias, node.outputs[0], [node], bias_label=node.input(2))
        self._fuse_followers(layer, channel_axis=1)
        attrs: dict[str, Any] = {"stride": stride, "dilation": dilation, "pad": pad}
        if kind == "conv2d":
            ir_weight = layer.weight.transposed((0, 2, 3, 1))       # OIHW -> OHWI
        else:
            ir_weight = layer.weight.transposed((1, 2, 3, 0))       # [C*M, 1, KH, KW] -> [1, KH, KW, C*M]
            attrs["multiplier"] = c_out // c_in
        self._emit_layer(layer, x_ir, ir_weight, attrs, NHWC)

    def _gemm(self, pos: int, node: _Node) -> None:
        if node.attrs.get("transA", 0):
            raise self.fail(node, "Gemm with transA=1 is not supported")
        b = self._const(node, node.input(1), "B (weights)")
        if b.data.ndim != 2:
            raise self.fail(node, "B must be a matrix")
        weight = b if node.attrs.get("transB", 0) else b.transposed((1, 0))     # -> [out, in]
        alpha, beta = float(node.attrs.get("alpha", 1.0)), float(node.attrs.get("beta", 1.0))
        n_out = weight.data.shape[0]
        if alpha != 1.0:
            if weight.quantized:
                raise self.fail(node, "alpha != 1 with quantized weights is not supported")
            weight = _Const((weight.data.astype(np.float64) * alpha).astype(np.float32))
        bias = None
        if node.input(2):
            c = self._const(node, node.input(2), "C (bias)")
            if c.data.size not in (1, n_out) or (c.data.ndim == 2 and c.data.shape[0] != 1):
                raise self.fail(node, f"C of shape {list(c.data.shape)} is not a per-output bias")
            if c.quantized:
                if beta != 1.0 or c.data.size != n_out:
                    raise self.fail(node, "a quantized C needs beta = 1 and one value per output")
                bias = c.with_data(c.data.reshape(n_out), 0 if c.axis is not None else None)
            else:
                bias = _Const((np.broadcast_to(c.data.reshape(-1), (n_out,)) * beta).astype(np.float32))
        self._fully_connected(node, _Layer("fully_connected", weight, node.input(1), bias, node.outputs[0], [node],
                                           bias_label=node.input(2)))

    def _matmul(self, pos: int, node: _Node) -> None:
        if node.input(1) not in self.consts:
            raise self.fail(node, "MatMul of two activations is not supported (the second input must be a "
                                  "constant weight matrix)")
        b = self._const(node, node.input(1), "weights")
        if b.data.ndim != 2:
            raise self.fail(node, "the weight matrix must be 2-D")
        layer = _Layer("fully_connected", b.transposed((1, 0)), node.input(1), None, node.outputs[0], [node])
        self._fully_connected(node, layer)

    def _fully_connected(self, node: _Node, layer: _Layer) -> None:
        a = node.inputs[0]
        a_shape = self._shape(node, a)
        value = self._value(node, a)
        n_in = layer.weight.data.shape[1]
        if not a_shape or a_shape[-1] != n_in:
            raise self.fail(node, f"input of shape {a_shape} does not match weights with {n_in} inputs")
        if value.order is not None:
            # The seed guide's reordering: IR column j holds ONNX column order[j], so the weights follow suit
            w = layer.weight
            if w.axis == 1:
                raise self.fail(node, "weights quantized per input channel are not supported")
            layer.weight = w.with_data(w.data[:, value.order], w.axis)
            x_ir = value.ir
        else:
            x_ir = self._in_layout(node, a, _identity(len(a_shape)))
        out_rank = len(self._shape(node, layer.out))
        self._fuse_followers(layer, channel_axis=out_rank - 1)
        self._emit_layer(layer, x_ir, layer.weight, {}, _identity(out_rank))

    def _fuse_followers(self, layer: _Layer, channel_axis: int) -> None:
        """Fold per-channel Add/Sub/Mul/BatchNormalization (float weights only), then a fused activation."""
        channels = layer.weight.data.shape[0]
        while not layer.weight.quantized and not (layer.bias is not None and layer.bias.quantized):
            found = self._sole_consumer(layer.out, ("Add", "Sub", "Mul", "Div", "BatchNormalization"))
            affine = self._channel_affine(found[1], layer.out, channels, channel_axis) if found else None
            if affine is None:
                break
            layer.apply_affine(*affine)
            self.done.add(found[0])
            layer.nodes.append(found[1])
            layer.out = found[1].outputs[0]
        layer.activation, layer.out, fused = self._take_activation(layer.out)
        layer.nodes.extend(fused)

    def _channel_affine(self, node: _Node, x: str, channels: int,
                        channel_axis: int) -> Optional[tuple[np.ndarray, np.ndarray]]:
        """``(scale, shift)`` per channel if ``node`` computes ``x * scale + shift`` with constants, else None."""
        if node.op_type == "BatchNormalization":
            return self._batchnorm_affine(node, channels) if channel_axis == 1 and node.inputs[0] == x else None
        other = [n for n in node.inputs if n != x]
        if len(node.inputs) != 2 or len(other) != 1 or other[0] not in self.consts:
            return None
        if node.op_type in ("Sub", "Div") and node.inputs[0] != x:
            return None
        const = self.consts[other[0]]
        x_shape = self._shape(node, x)
        if const.quantized or const.data.ndim > len(x_shape) or self._shape(node, node.outputs[0]) != x_shape:
            return None
        c = const.data.reshape((1,) * (len(x_shape) - const.data.ndim) + const.data.shape).astype(np.float64)
        per_channel = c.shape[channel_axis] in (1, channels)
        if not per_channel or any(d != 1 for k, d in enumerate(c.shape) if k != channel_axis):
            return None
        vec = np.broadcast_to(c.reshape(-1), (channels,))
        ones, zeros = np.ones(channels), np.zeros(channels)
        if node.op_type == "Div" and np.any(vec == 0):
            return None
        return {"Add": (ones, vec), "Sub": (ones, -vec), "Mul": (vec, zeros), "Div": (1.0 / vec, zeros)}[node.op_type]

    def _batchnorm_affine(self, node: _Node, channels: int) -> Optional[tuple[np.ndarray, np.ndarray]]:
        if node.attrs.get("training_mode", 0) or any(o for o in node.outputs[1:]):
            raise self.fail(node, "BatchNormalization in training mode is not supported")
        if not all(n in self.consts and not self.consts[n].quantized for n in node.inputs[1:5]):
            raise self.fail(node, "BatchNormalization needs constant scale, bias, mean and variance")
        gamma, beta, mean, var = (self.consts[n].data.astype(np.float64).reshape(-1) for n in node.inputs[1:5])
        if not all(v.size == channels for v in (gamma, beta, mean, var)):
            raise self.fail(node, f"BatchNormalization parameters do not have {channels} channels")
        scale = gamma / np.sqrt(var + float(node.attrs.get("epsilon", 1e-5)))
        return scale, beta - mean * scale

    def _take_activation(self, out: str) -> tuple[str, str, list[_Node]]:
        """A Relu/Clip that alone reads ``out`` and equals a fused activation: (activation, new output, nodes)."""
        found = self._sole_consumer(out, ("Relu", "Clip"))
        if found is None:
            return "none", out, []
        pos, node = found
        activation = "relu" if node.op_type == "Relu" else _clip_activation(*self._clip_bounds(node))
        if activation is None:
            return "none", out, []
        self.done.add(pos)
        return activation, node.outputs[0], [node]

    def _emit_layer(self, layer: _Layer, x_ir: str, ir_weight: _Const, attrs: dict[str, Any],
                    out_perm: tuple[int, ...]) -> None:
        x_tensor = self.tensors[x_ir]
        if ir_weight.quantized and x_tensor.quant is None:
            raise self.fail(layer.nodes[0], "hybrid model (int8 weights, float activations) is not supported")
        if x_tensor.quant is not None and not ir_weight.quantized:
            raise self.fail(layer.nodes[0], "float weights with quantized activations are not supported")
        inputs = [x_ir, self._const_tensor(layer.weight_label, ir_weight)]
        if layer.bias is not None:
            inputs.append(self._const_tensor(layer.bias_label or layer.weight_label + "_bias", layer.bias))
        attrs = dict(attrs, activation=layer.activation)
        out_shape = _ir_shape(self._shape(layer.nodes[-1], layer.out), out_perm)
        out = self._emit_from(layer.kind, inputs, layer.out, out_shape, attrs, layer.nodes)
        self._set_value(layer.out, _Value(out, out_perm))

    def _window(self, node: _Node, in_shape: Sequence[int], kernel: Sequence[int],
                allow_dilation: bool = True) -> tuple[list[int], list[int], list[int]]:
        """(stride, dilation, pad [top, bottom, left, right]) of a conv or pool over an NCHW input, checked
        against the inferred output size."""
        a = node.attrs
        stride = [int(s) for s in a.get("strides", [1, 1])]
        dilation = [int(d) for d in a.get("dilations", [1, 1])]
        if len(stride) != 2 or len(dilation) != 2 or len(kernel) != 2:
            raise self.fail(node, "only 2-D windows are supported")
        if not allow_dilation and dilation != [1, 1]:
            raise self.fail(node, "dilated pooling is not supported")
        if min(stride) < 1 or min(dilation) < 1:
            raise self.fail(node, "strides and dilations must be positive")
        spans = [(k - 1) * d + 1 for k, d in zip(kernel, dilation)]
        auto_pad = a.get("auto_pad", "NOTSET")
        if auto_pad == "NOTSET":
            pads = [int(p) for p in a.get("pads", [0, 0, 0, 0])]
            if len(pads) != 4 or min(pads) < 0:
                raise self.fail(node, f"pads {pads} are not 4 non-negative values")
            top, left, bottom, right = pads
        elif auto_pad == "VALID":
            top = left = bottom = right = 0
        elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            (top, bottom), (left, right) = (
                self._same_pads(size, s, span, auto_pad) for size, s, span in zip(in_shape[2:], stride, spans))
        else:
            raise self.fail(node, f"unknown auto_pad '{ir.c_comment(auto_pad)}'")
        floor_size = [(size + p0 + p1 - span) // s + 1
                      for size, p0, p1, span, s in zip(in_shape[2:], (top, left), (bottom, right), spans, stride)]
        inferred = self._shape(node, node.outputs[0])[2:]
        if floor_size != list(inferred):
            if a.get("ceil_mode", 0):
                raise self.fail(node, "ceil_mode=1 changes the output size here; not supported")
            raise self.fail(node, f"output size {inferred} does not match the window geometry {floor_size}")
        return stride, dilation, [top, bottom, left, right]

    @staticmethod
    def _same_pads(size: int, stride: int, span: int, mode: str) -> tuple[int, int]:
        """SAME padding: the output has ceil(size / stride) elements; the odd pixel goes at the end (UPPER) or at
        the start (LOWER)."""
        total = max((-(-size // stride) - 1) * stride + span - size, 0)
        small, large = total // 2, total - total // 2
        return (small, large) if mode == "SAME_UPPER" else (large, small)

    # ---- handlers: pooling, elementwise, shapes ------------------------------------------------------------------
    def _pool(self, pos: int, node: _Node) -> None:
        x = node.inputs[0]
        in_shape = self._shape(node, x)
        if len(in_shape) != 4:
            raise self.fail(node, "only 2-D pooling (4-D NCHW input) is supported")
        if len(node.outputs) > 1 and node.outputs[1]:
            raise self.fail(node, "MaxPool's Indices output is not supported")
        kernel = [int(k) for k in node.attrs.get("kernel_shape", [])]
        stride, _, pad = self._window(node, in_shape, kernel, allow_dilation=False)
        is_max = node.op_type == "MaxPool"
        if not is_max and node.attrs.get("count_include_pad", 0) and any(pad):
            raise self.fail(node, "AveragePool with count_include_pad=1 and non-zero pads is not supported "
                                  "(CMSIS-NN averages over the input elements only)")
        if pad[0] >= kernel[0] or pad[1] >= kernel[0] or pad[2] >= kernel[1] or pad[3] >= kernel[1]:
            raise self.fail(node, "pads must be smaller than the kernel")
        self._emit_pool(node, x, "max_pool2d" if is_max else "avg_pool2d", kernel, stride, pad)

    def _global_pool(self, pos: int, node: _Node) -> None:
        x = node.inputs[0]
        in_shape = self._shape(node, x)
        if len(in_shape) != 4:
            raise self.fail(node, "only 4-D NCHW input is supported")
        kind = "max_pool2d" if node.op_type == "GlobalMaxPool" else "avg_pool2d"
        self._emit_pool(node, x, kind, in_shape[2:], [1, 1], [0, 0, 0, 0])

    def _emit_pool(self, node: _Node, x: str, kind: str, kernel: Sequence[int], stride: Sequence[int],
                   pad: Sequence[int]) -> None:
        x_ir = self._in_layout(node, x, NHWC)
        out = node.outputs[0]
        attrs = {"kernel": [int(k) for k in kernel], "stride": [int(s) for s in stride],
                 "pad": [int(p) for p in pad], "activation": "none"}
        inherit = x_ir if kind == "max_pool2d" else None
        ir_out = self._emit_from(kind, [x_ir], out, _ir_shape(self._shape(node, out), NHWC), attrs, [node], inherit)
        self._set_value(out, _Value(ir_out, NHWC))

    def _binary(self, pos: int, node: _Node) -> None:
        out = node.outputs[0]
        out_shape = self._shape(node, out)
        rank = len(out_shape)
        operands = node.inputs[:2]
        if node.op_type == "Div":
            if operands[1] not in self.consts:
                raise self.fail(node, "Div by a non-constant is not supported")
        activations = [n for n in operands if n not in self.consts]
        if not activations:
            raise self.fail(node, "both operands are constants")
        same_rank = [n for n in activations if len(self._shape(node, n)) == rank]
        if len(same_rank) != len(activations):
            raise self.fail(node, "broadcasting an activation of lower rank is not supported")
        perm = self._value(node, same_rank[0]).perm
        ir_inputs = []
        for name in operands:
            if name in self.consts:
                const = self.consts[name]
                if node.op_type == "Div":
                    if const.quantized or np.any(const.data == 0):
                        raise self.fail(node, "Div needs a non-zero float constant divisor")
                    const = _Const((1.0 / const.data.astype(np.float64)).astype(np.float32))
                ir_inputs.append(self._const_operand(name, const, rank, perm))
            else:
                ir_inputs.append(self._in_layout(node, name, perm))
        activation, final_out, fused = self._take_activation(out)
        ir_type = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "mul"}[node.op_type]
        ir_out = self._emit_from(ir_type, ir_inputs, final_out, _ir_shape(out_shape, perm),
                                 {"activation": activation}, [node] + fused)
        self._set_value(final_out, _Value(ir_out, perm))

    def _unary(self, pos: int, node: _Node) -> None:
        value = self._value(node, node.inputs[0])
        attrs: dict[str, Any] = {}
        if node.op_type == "Relu":
            ir_type = "relu"
        elif node.op_type == "Clip":
            low, high = self._clip_bounds(node)
            ir_type = {"relu": "relu", "relu6": "relu6"}.get(_clip_activation(low, high) or "", "clip")
            if ir_type == "clip":
                attrs = {"min": low, "max": high}
        elif node.op_type == "LeakyRelu":
            ir_type, attrs = "leaky_relu", {"alpha": float(node.attrs.get("alpha", 0.01))}
        elif node.op_type == "Sigmoid":
            ir_type = "logistic"
        else:
            ir_type = "tanh"
        out = node.outputs[0]
        ir_out = self._emit_from(ir_type, [value.ir], out, self.tensors[value.ir].shape, attrs, [node])
        self._set_value(out, _Value(ir_out, value.perm, value.order))   # elementwise: any layout is fine

    def _clip_bounds(self, node: _Node) -> tuple[Optional[float], Optional[float]]:
        if self.p.opset < 11:
            low, high = node.attrs.get("min"), node.attrs.get("max")
        else:
            low = float(self._const_array(node, node.input(1), "min").ravel()[0]) if node.input(1) else None
            high = float(self._const_array(node, node.input(2), "max").ravel()[0]) if node.input(2) else None
        low = None if low is None or low <= -_FLT_MAX else float(low)
        high = None if high is None or high >= _FLT_MAX else float(high)
        return low, high

    def _batchnorm(self, pos: int, node: _Node) -> None:
        """A BatchNormalization that follows no conv/FC: ``x * scale + shift`` as IR mul and add."""
        x, out = node.inputs[0], node.outputs[0]
        shape = self._shape(node, x)
        if len(shape) < 2:
            raise self.fail(node, "BatchNormalization needs a channel axis")
        scale, shift = self._batchnorm_affine(node, shape[1])
        value = self._value(node, x)
        x_ir = self._in_layout(node, x, value.perm)
        channel_shape = [1] * len(shape)
        channel_shape[1] = shape[1]
        ir_shape = _ir_shape(shape, value.perm)
        scale_ir = self._const_operand(f"{out}_scale", _Const(scale.reshape(channel_shape).astype(np.float32)),
                                       len(shape), value.perm)
        shift_ir = self._const_operand(f"{out}_shift", _Const(shift.reshape(channel_shape).astype(np.float32)),
                                       len(shape), value.perm)
        scaled = self._emit_from("mul", [x_ir, scale_ir], f"{out}_scaled", ir_shape, {"activation": "none"}, [node])
        ir_out = self._emit_from("add", [scaled, shift_ir], out, ir_shape, {"activation": "none"}, [node])
        self._set_value(out, _Value(ir_out, value.perm))

    def _softmax(self, pos: int, node: _Node) -> None:
        x, out = node.inputs[0], node.outputs[0]
        shape = self._shape(node, x)
        rank = len(shape)
        value = self._value(node, x)
        self._reject_flattened(node, x, value)
        axis = int(node.attrs.get("axis", 1 if self.p.opset < 13 else -1)) % max(rank, 1)
        # before opset 13 the input is coerced to 2-D [prod(dims[:axis]), prod(dims[axis:])]
        axes = [axis] if self.p.opset >= 13 else list(range(axis, rank))
        ir_axes = {value.perm.index(a) for a in axes if shape[a] > 1}
        last = value.perm[rank - 1]
        if not ir_axes <= {rank - 1} or (shape[last] > 1 and last not in axes):
            raise self.fail(node, "softmax over axes other than the last one in NHWC layout is not supported "
                                  "(layout change not supported)")
        ir_out = self._emit_from("softmax", [value.ir], out, self.tensors[value.ir].shape, {"beta": 1.0}, [node])
        self._set_value(out, _Value(ir_out, value.perm))

    def _concat(self, pos: int, node: _Node) -> None:
        out = node.outputs[0]
        out_shape = self._shape(node, out)
        rank = len(out_shape)
        axis = int(node.attrs.get("axis", 1)) % rank
        activations = [n for n in node.inputs if n and n not in self.consts]
        if not activations:
            raise self.fail(node, "all inputs are constants")
        perm = self._value(node, activations[0]).perm
        ir_inputs = [self._const_operand(n, self.consts[n], rank, perm) if n in self.consts
                     else self._in_layout(node, n, perm) for n in node.inputs if n]
        ir_out = self._emit_from("concat", ir_inputs, out, _ir_shape(out_shape, perm),
                                 {"axis": perm.index(axis)}, [node])
        self._set_value(out, _Value(ir_out, perm))

    def _pad(self, pos: int, node: _Node) -> None:
        x, out = node.inputs[0], node.outputs[0]
        shape = self._shape(node, x)
        rank = len(shape)
        if node.attrs.get("mode", "constant") != "constant":
            raise self.fail(node, f"Pad mode '{ir.c_comment(node.attrs.get('mode'))}' is not supported (only "
                                  "constant)")
        if self.p.opset < 11:
            pads, fill, axes = list(node.attrs.get("pads", [])), float(node.attrs.get("value", 0.0)), None
        else:
            pads = [int(p) for p in self._const_array(node, node.input(1), "pads").ravel()]
            fill = float(self._const_array(node, node.input(2), "value").ravel()[0]) if node.input(2) else 0.0
            axes = ([int(a) % rank for a in self._const_array(node, node.input(3), "axes").ravel()]
                    if node.input(3) else None)
        axes = list(range(rank)) if axes is None else axes
        if len(pads) != 2 * len(axes) or min(pads, default=0) < 0:
            raise self.fail(node, f"pads {pads} are not {2 * len(axes)} non-negative values")
        before, after = [0] * rank, [0] * rank
        for k, a in enumerate(axes):
            before[a], after[a] = int(pads[k]), int(pads[k + len(axes)])
        value = self._value(node, x)
        x_ir = self._in_layout(node, x, value.perm)
        attrs = {"pads": [[before[p], after[p]] for p in value.perm], "value": fill}
        ir_out = self._emit_from("pad", [x_ir], out, _ir_shape(self._shape(node, out), value.perm), attrs, [node],
                                 inherit_quant_of=x_ir)
        self._set_value(out, _Value(ir_out, value.perm))

    def _reduce_mean(self, pos: int, node: _Node) -> None:
        x, out = node.inputs[0], node.outputs[0]
        shape = self._shape(node, x)
        rank = len(shape)
        if self.p.opset >= 18:
            axes = ([int(a) for a in self._const_array(node, node.input(1), "axes").ravel()]
                    if node.input(1) else [])
            if not axes and node.attrs.get("noop_with_empty_axes", 0):
                raise self.fail(node, "ReduceMean with no axes and noop_with_empty_axes=1 is not supported")
        else:
            axes = [int(a) for a in node.attrs.get("axes", [])]
        axes = sorted({a % rank for a in axes}) if axes else list(range(rank))
        keepdims = bool(node.attrs.get("keepdims", 1))
        value = self._value(node, x)
        x_ir = self._in_layout(node, x, value.perm)
        if keepdims:
            out_perm = value.perm
        else:   # the kept axes, in the order the IR stores them, numbered as the ONNX output's axes
            kept = [a for a in value.perm if a not in axes]
            out_perm = tuple(sorted(kept).index(a) for a in kept)
        attrs = {"axes": sorted(value.perm.index(a) for a in axes), "keepdims": keepdims}
        ir_out = self._emit_from("mean", [x_ir], out, _ir_shape(self._shape(node, out), out_perm), attrs, [node])
        self._set_value(out, _Value(ir_out, out_perm))

    def _reshape(self, pos: int, node: _Node) -> None:
        """Reshape, Flatten, Squeeze, Unsqueeze: only the shape changes, in ONNX's row-major element order."""
        x, out = node.inputs[0], node.outputs[0]
        if x in self.consts:
            raise self.fail(node, "reshaping a quantized constant is not supported")
        value = self._value(node, x)
        in_shape, out_shape = self._shape(node, x), self._shape(node, out)
        if value.order is not None:
            if in_shape != out_shape:
                self._reject_flattened(node, x, value)
            self._set_value(out, value)
            return
        held = _ir_order(in_shape, value.perm)   # ONNX element indices, in IR memory order
        for perm in dict.fromkeys((_default_perm(len(out_shape)), _identity(len(out_shape)))):
            if np.array_equal(held, _ir_order(out_shape, perm)):
                self._set_value(out, self._reshaped(node, value, out, _ir_shape(out_shape, perm), perm))
                return
        order = self._flatten_order(held, out_shape)
        if order is None:
            raise self.fail(node, f"layout change not supported: reshaping {in_shape} to {out_shape} changes the "
                                  "element order of NHWC data")
        reshaped = self._reshaped(node, value, out, list(out_shape), (0, 1))
        self._set_value(out, _Value(reshaped.ir, (0, 1), order))

    def _reshaped(self, node: _Node, value: _Value, out: str, ir_shape: list[int], perm: tuple[int, ...]) -> _Value:
        if self.tensors[value.ir].shape == ir_shape:
            return _Value(value.ir, perm)
        ir_out = self._emit_from("reshape", [value.ir], out, ir_shape, {"shape": ir_shape}, [node],
                                 inherit_quant_of=value.ir)
        return _Value(ir_out, perm)

    @staticmethod
    def _flatten_order(held: np.ndarray, out_shape: Sequence[int]) -> Optional[np.ndarray]:
        """For a reshape to ``[N, K]`` that keeps each sample's elements in its own row but reorders them (an NCHW
        flatten): the ONNX column that each IR column holds, the same for every row. None otherwise."""
        if len(out_shape) != 2 or out_shape[0] < 1:
            return None
        rows, k = out_shape
        columns = held.reshape(rows, k) - (np.arange(rows) * k)[:, None]
        if np.any(columns < 0) or np.any(columns >= k) or not np.all(columns == columns[0]):
            return None
        return columns[0].copy()

    def _transpose(self, pos: int, node: _Node) -> None:
        """No IR op: the IR array stays as it is and only its relation to the ONNX tensor changes."""
        x, out = node.inputs[0], node.outputs[0]
        rank = self.consts[x].data.ndim if x in self.consts else len(self._shape(node, x))
        t = [int(p) for p in node.attrs.get("perm", list(reversed(range(rank))))]
        if x in self.consts:
            self.consts[out] = self.consts[x].transposed(t)
            return
        value = self._value(node, x)
        self._reject_flattened(node, x, value)
        inverse = _inverse(t)
        self._set_value(out, _Value(value.ir, tuple(inverse[p] for p in value.perm)))

    def _passthrough(self, pos: int, node: _Node) -> None:
        """Identity and inference-mode Dropout."""
        x, out = node.inputs[0], node.outputs[0]
        if len(node.outputs) > 1 and node.outputs[1] and (node.outputs[1] in self.consumers or
                                                          node.outputs[1] in self.graph_outputs):
            raise self.fail(node, "Dropout's mask output is not supported")
        if x in self.consts:
            self.consts[out] = self.consts[x]
        else:
            self._set_value(out, self._value(node, x))

    def _fold_only(self, pos: int, node: _Node) -> None:
        raise self.fail(node, f"{ir.c_comment(node.op_type)} is only supported on constants (shape arithmetic), "
                              "not on activations")


# ONNX op type -> converter method
_HANDLERS = {
    "Conv": "_conv",
    "Gemm": "_gemm",
    "MatMul": "_matmul",
    "Add": "_binary", "Sub": "_binary", "Mul": "_binary", "Div": "_binary",
    "Relu": "_unary", "Clip": "_unary", "LeakyRelu": "_unary", "Sigmoid": "_unary", "Tanh": "_unary",
    "MaxPool": "_pool", "AveragePool": "_pool",
    "GlobalAveragePool": "_global_pool", "GlobalMaxPool": "_global_pool",
    "BatchNormalization": "_batchnorm",
    "Softmax": "_softmax",
    "Concat": "_concat",
    "Pad": "_pad",
    "ReduceMean": "_reduce_mean",
    "Reshape": "_reshape", "Flatten": "_reshape", "Squeeze": "_reshape", "Unsqueeze": "_reshape",
    "Transpose": "_transpose",
    "Identity": "_passthrough", "Dropout": "_passthrough",
    "QuantizeLinear": "_quantize_linear", "DequantizeLinear": "_dequantize_linear",
    **{op: "_fold_only" for op in _FOLDERS if op not in (
        "Concat", "Unsqueeze", "Squeeze", "Reshape", "Flatten", "Transpose", "Add", "Sub", "Mul", "Div",
        "Identity")},
}
SUPPORTED_OPS = tuple(sorted(_HANDLERS))


def _check_supported(path: str, nodes: list[_Node]) -> None:
    for node in nodes:
        if node.proto.domain not in _DEFAULT_DOMAINS or node.op_type not in _HANDLERS:
            op = ir.c_comment(node.op_type if node.proto.domain in _DEFAULT_DOMAINS
                              else f"{node.proto.domain}.{node.op_type}")
            raise NnsconsError(path, f"{node.where()}: unsupported op {op}; supported ops: "
                                     f"{', '.join(SUPPORTED_OPS)}")
