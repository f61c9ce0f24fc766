"""Calibration and test sets: checked against the graph, then put in the IR's layout as real (float) values.

A set is an ``.npz`` file (DESIGN.md section 3): key ``x`` holds ``[N, *input_shape]`` in the model's own layout
(NCHW for an NCHW ONNX model), float or the input's integer dtype; a model with several inputs uses ``x0``,
``x1``, ... in input order. A test set may add ``y``: labels ``[N]`` or reference outputs.
"""
from __future__ import annotations

import os
import zipfile

import numpy as np

from . import ir
from .errors import NnsconsError


def model_input_shape(graph: ir.Graph, name: str) -> list[int]:
    """An input's shape in the model's own layout (the inverse of the import permutation)."""
    shape = graph.tensors[name].shape
    perm = graph.input_perm.get(name)
    if not perm:
        return list(shape)
    own = [0] * len(shape)
    for ir_axis, own_axis in enumerate(perm):
        own[own_axis] = shape[ir_axis]
    return own


def input_keys(graph: ir.Graph) -> list[str]:
    return ["x"] if len(graph.inputs) == 1 else [f"x{i}" for i in range(len(graph.inputs))]


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise NnsconsError(path, "no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise NnsconsError(path, f"not a readable .npz file ({e})") from None


def load_inputs(path: str | os.PathLike, graph: ir.Graph) -> dict[str, np.ndarray]:
    """The ``x`` arrays of a set, checked against the graph's inputs, as float32 in IR layout."""
    arrays = load_npz(path)
    result: dict[str, np.ndarray] = {}
    n_samples = None
    for key, name in zip(input_keys(graph), graph.inputs):
        if key not in arrays:
            raise NnsconsError(path, f"missing key {key!r} (has: {', '.join(sorted(arrays)) or 'nothing'})")
        x = check_input(path, graph, name, key, arrays[key])
        if n_samples is not None and x.shape[0] != n_samples:
            raise NnsconsError(path, f"{key} has {x.shape[0]} samples, {input_keys(graph)[0]} has {n_samples}")
        n_samples = x.shape[0]
        result[name] = x
    return result


def check_input(path: str | os.PathLike, graph: ir.Graph, name: str, key: str, x: np.ndarray) -> np.ndarray:
    tensor = graph.tensors[name]
    expected = model_input_shape(graph, name)
    if x.ndim != len(expected) or list(x.shape[1:]) != expected[1:]:
        raise NnsconsError(path, f"{key} has shape {list(x.shape)}, the model input {ir.c_comment(tensor.label)!r} "
                                 f"needs [N, {', '.join(map(str, expected[1:]))}]")
    if x.shape[0] == 0:
        raise NnsconsError(path, f"{key} holds no samples")
    if np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
        if not np.all(np.isfinite(x)):
            raise NnsconsError(path, f"{key} contains NaN or infinite values")
    elif np.dtype(x.dtype).name == tensor.dtype and tensor.quant is not None:
        q = tensor.quant
        x = (np.float32(q.scale[0]) * (x.astype(np.float32) - np.float32(q.zero_point[0]))).astype(np.float32)
    else:
        raise NnsconsError(path, f"{key} has dtype {x.dtype}; the model input takes float32"
                                 + (f" or {tensor.dtype}" if tensor.quant is not None else ""))
    perm = graph.input_perm.get(name)
    return np.ascontiguousarray(x.transpose(perm)) if perm else x


def load_labels(path: str | os.PathLike) -> np.ndarray | None:
    return load_npz(path).get("y")
