"""Step 2 of the ONNX import, the constant half: evaluate shape arithmetic on constants with numpy.

``Shape -> Gather -> Concat -> Reshape`` and friends, ``Constant`` nodes and reshapes of initializers are computed
at import, so the converter (:mod:`.convert`) sees only the nodes that work on activations. ``FOLDERS`` is the
registry: every ONNX op that can fold, and the function that evaluates it.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np
from onnx import helper, numpy_helper

from ...errors import NnsconsError
from .decode import Node, first_line

MAX_FOLDED_ELEMENTS = 1 << 26   # refuse constant expressions that would allocate absurd arrays

# A folder: (node, args, opset) -> value. Args are arrays (None for absent optional inputs); Shape/Size get a shape.
Folder = Callable[[Node, list[Any], int], np.ndarray]


def fold_constants(path: str, nodes: list[Node], consts: dict[str, np.ndarray], shapes: dict[str, list[int]],
                   opset: int) -> tuple[list[Node], bool]:
    """Evaluate, in order, every foldable node whose inputs are all known; returns the nodes left."""
    remaining, folded = [], False
    for node in nodes:
        value = try_fold(path, node, consts, shapes, opset)
        if value is None:
            remaining.append(node)
            continue
        if value.size > MAX_FOLDED_ELEMENTS:
            raise NnsconsError(path, f"{node.where()}: constant expression produces {value.size} elements")
        consts[node.outputs[0]] = value
        folded = True
    return remaining, folded


def try_fold(path: str, node: Node, consts: dict[str, np.ndarray], shapes: dict[str, list[int]],
             opset: int) -> Optional[np.ndarray]:
    """The value of ``node`` if it folds and all it reads is known, else None."""
    op = node.op_type
    folder = FOLDERS.get(op)
    if folder is None or len(node.outputs) != 1:
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
        return np.asarray(folder(node, args, opset))
    except NnsconsError:
        raise
    except Exception as e:  # numpy raises ValueError, IndexError, TypeError ... on inconsistent constants
        raise NnsconsError(path, f"{node.where()}: cannot evaluate this constant expression "
                                 f"({first_line(e)})") from None


def axes_arg(node: Node, args: list[Any], opset: int, from_opset: int) -> Optional[list[int]]:
    """Axes given as an attribute (older opsets) or as the second input (newer ones)."""
    if opset >= from_opset:
        return None if len(args) < 2 or args[1] is None else [int(a) for a in np.ravel(args[1])]
    axes = node.attrs.get("axes")
    return None if axes is None else [int(a) for a in axes]


def reshape_target(in_shape: Sequence[int], shape: Iterable[int], allowzero: bool) -> list[int]:
    """ONNX Reshape's target: 0 copies the input dimension (unless allowzero), -1 is inferred."""
    return [int(in_shape[i]) if int(d) == 0 and not allowzero else int(d) for i, d in enumerate(shape)]


# ---- the folders --------------------------------------------------------------------------------------------------
def fold_constant(node: Node, args: list[Any], opset: int) -> np.ndarray:
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


def fold_shape(node: Node, args: list[Any], opset: int) -> np.ndarray:
    shape = list(args[0])
    start, end = node.attrs.get("start", 0), node.attrs.get("end", None)
    return np.array(shape[start:end], np.int64)


def fold_size(node: Node, args: list[Any], opset: int) -> np.ndarray:
    return np.array(int(np.prod(args[0], dtype=np.int64)), np.int64)


def fold_gather(node: Node, args: list[Any], opset: int) -> np.ndarray:
    return np.take(args[0], args[1].astype(np.int64), axis=node.attrs.get("axis", 0))


def fold_concat(node: Node, args: list[Any], opset: int) -> np.ndarray:
    return np.concatenate([a for a in args if a is not None], axis=node.attrs["axis"])


def fold_unsqueeze(node: Node, args: list[Any], opset: int) -> np.ndarray:
    data = args[0]
    axes = axes_arg(node, args, opset, 13) or []
    rank = data.ndim + len(axes)
    for axis in sorted(a % rank for a in axes):
        data = np.expand_dims(data, axis)
    return data


def fold_squeeze(node: Node, args: list[Any], opset: int) -> np.ndarray:
    axes = axes_arg(node, args, opset, 13)
    data = args[0]
    return np.squeeze(data) if axes is None else np.squeeze(data, axis=tuple(a % data.ndim for a in axes))


def fold_reshape(node: Node, args: list[Any], opset: int) -> np.ndarray:
    shape = node.attrs.get("shape", []) if opset < 5 else args[1]
    return args[0].reshape(reshape_target(args[0].shape, np.ravel(shape), bool(node.attrs.get("allowzero", 0))))


def fold_flatten(node: Node, args: list[Any], opset: int) -> np.ndarray:
    data = args[0]
    axis = node.attrs.get("axis", 1) % (data.ndim + 1) if data.ndim else 0
    return data.reshape(int(np.prod(data.shape[:axis], dtype=np.int64)), -1)


def fold_transpose(node: Node, args: list[Any], opset: int) -> np.ndarray:
    return np.transpose(args[0], node.attrs.get("perm"))


def fold_cast(node: Node, args: list[Any], opset: int) -> np.ndarray:
    return args[0].astype(helper.tensor_dtype_to_np_dtype(node.attrs["to"]))


def fold_slice(node: Node, args: list[Any], opset: int) -> np.ndarray:
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


def _binary(fn: Callable[[np.ndarray, np.ndarray], np.ndarray], args: list[Any]) -> np.ndarray:
    a, b = args[0], args[1]
    return fn(a, b).astype(np.result_type(a, b))


def _int_or_float_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if np.issubdtype(np.result_type(a, b), np.integer):
        return np.sign(a) * np.sign(b) * (np.abs(a) // np.abs(b))  # ONNX integer Div truncates toward zero
    return a / b


def fold_add(node: Node, args: list[Any], opset: int) -> np.ndarray:
    return _binary(np.add, args)


def fold_sub(node: Node, args: list[Any], opset: int) -> np.ndarray:
    return _binary(np.subtract, args)


def fold_mul(node: Node, args: list[Any], opset: int) -> np.ndarray:
    return _binary(np.multiply, args)


def fold_div(node: Node, args: list[Any], opset: int) -> np.ndarray:
    return _binary(_int_or_float_div, args)


def fold_identity(node: Node, args: list[Any], opset: int) -> np.ndarray:
    return args[0]


def fold_constant_of_shape(node: Node, args: list[Any], opset: int) -> np.ndarray:
    shape = [int(d) for d in np.ravel(args[0])]
    if np.prod(shape, dtype=np.float64) > MAX_FOLDED_ELEMENTS:
        raise ValueError(f"shape {shape} is too large")
    value = numpy_helper.to_array(node.attrs["value"]) if "value" in node.attrs else np.zeros(1, np.float32)
    return np.full(shape, value.ravel()[0], dtype=value.dtype)


def fold_range(node: Node, args: list[Any], opset: int) -> np.ndarray:
    start, limit, delta = (np.asarray(a).item() for a in args[:3])
    if delta == 0 or abs((limit - start) / delta) > MAX_FOLDED_ELEMENTS:
        raise ValueError("bad or too large range")
    return np.arange(start, limit, delta, dtype=np.asarray(args[0]).dtype)


# ONNX op type -> how to evaluate it on constants. Every op here must also be in ops.OP_HANDLERS (the ones that
# only fold are rejected there when they meet an activation).
FOLDERS: dict[str, Folder] = {
    "Constant": fold_constant,
    "Shape": fold_shape,
    "Size": fold_size,
    "Gather": fold_gather,
    "Concat": fold_concat,
    "Unsqueeze": fold_unsqueeze,
    "Squeeze": fold_squeeze,
    "Reshape": fold_reshape,
    "Flatten": fold_flatten,
    "Transpose": fold_transpose,
    "Cast": fold_cast,
    "Slice": fold_slice,
    "Add": fold_add,
    "Sub": fold_sub,
    "Mul": fold_mul,
    "Div": fold_div,
    "Identity": fold_identity,
    "ConstantOfShape": fold_constant_of_shape,
    "Range": fold_range,
}
