"""Calibration and test sets: checked against the graph, then put in the IR's layout as real (float) values.

A set is an ``.npz`` file (DESIGN.md section 3): key ``x`` holds ``[N, *input_shape]`` in the model's own layout
(NCHW for an NCHW ONNX model), float or the input's integer dtype; a model with several inputs uses ``x0``,
``x1``, ... in input order. A test set may add, per output, ``y`` (``y0``, ``y1``, ... for several outputs):
integer class labels ``[N]``, or reference outputs ``[N, *output_shape]`` (real values, e.g. a regression's
targets). :func:`load_test_set` checks every key of a test set; a key it does not know is an error, so a
misnamed or malformed label array is never ignored.
"""
from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import ir
from .errors import NnsconsError


def _own_layout(shape: list[int], perm: Optional[list[int]]) -> list[int]:
    """A shape in the model's own layout: the inverse of the import permutation ``perm`` (none: unchanged)."""
    if not perm:
        return list(shape)
    own = [0] * len(shape)
    for ir_axis, own_axis in enumerate(perm):
        own[own_axis] = shape[ir_axis]
    return own


def model_input_shape(graph: ir.Graph, name: str) -> list[int]:
    """An input's shape in the model's own layout (the inverse of the import permutation)."""
    return _own_layout(graph.tensors[name].shape, graph.input_perm.get(name))


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
    return inputs_of(path, load_npz(path), graph)


def inputs_of(path: str | os.PathLike, arrays: dict[str, np.ndarray], graph: ir.Graph) -> dict[str, np.ndarray]:
    """The ``x`` arrays of a set's ``arrays`` (see :func:`load_inputs`)."""
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


# ---- test sets: inputs, and what each output should be --------------------------------------------------------------
def output_keys(graph: ir.Graph) -> list[str]:
    """The keys a test set gives the outputs' expected values under: ``y``, or ``y0``, ``y1``, ... for several."""
    return ["y"] if len(graph.outputs) == 1 else [f"y{i}" for i in range(len(graph.outputs))]


def model_output_shape(graph: ir.Graph, name: str) -> list[int]:
    """An output's shape in the model's own layout (the inverse of the import permutation)."""
    return _own_layout(graph.tensors[name].shape, graph.output_perm.get(name))


@dataclass(frozen=True)
class Expected:
    """What a test set says about one network output: class labels ``[N]`` (integers in 0..values-1), or
    reference outputs (the output's shape, real values: e.g. a regression's targets), in IR layout."""

    key: str
    labels: Optional[np.ndarray] = None
    values: Optional[np.ndarray] = None


@dataclass(frozen=True)
class TestSet:
    """A checked test set: the inputs as float32 in IR layout (by graph input), the arrays as stored, and per
    graph output what the set expects of it (None where it has no ``y``)."""

    path: str
    inputs: dict[str, np.ndarray]
    raw: dict[str, np.ndarray]
    expected: list[Optional[Expected]]

    @property
    def samples(self) -> int:
        return int(next(iter(self.inputs.values())).shape[0])


def load_test_set(path: str | os.PathLike, graph: ir.Graph) -> TestSet:
    """A test set, every key checked: the inputs as :func:`load_inputs` takes them, and ``y`` (``y0``, ``y1``, ...
    for several outputs), each optional: integer class labels ``[N]`` for an output of several values, or
    reference outputs ``[N, *output_shape]`` in the model's layout (any real dtype; ``[N]`` also for an output of
    one value). Anything else, including an unknown key, is one line naming the file."""
    arrays = load_npz(path)
    allowed = input_keys(graph) + output_keys(graph)
    for key in sorted(arrays):
        if key not in allowed:
            raise NnsconsError(path, f"unknown key {ir.c_comment(key)!r}: a test set of this model holds "
                                     f"{', '.join(allowed)} (inputs, then labels or reference outputs)")
    inputs = inputs_of(path, arrays, graph)
    samples = int(next(iter(inputs.values())).shape[0])
    expected = [check_expected(path, graph, name, key, arrays[key], samples) if key in arrays else None
                for key, name in zip(output_keys(graph), graph.outputs)]
    return TestSet(os.fspath(path), inputs, arrays, expected)


def check_expected(path: str | os.PathLike, graph: ir.Graph, name: str, key: str, y: np.ndarray,
                   samples: int) -> Expected:
    """``y`` of one output checked: labels or reference outputs (see :func:`load_test_set`)."""
    own = model_output_shape(graph, name)
    values = int(np.prod(own[1:], dtype=np.int64))
    label = ir.c_comment(graph.tensors[name].label)
    if y.dtype.kind not in "biuf":
        raise NnsconsError(path, f"{key} has dtype {y.dtype}: labels are integers (class indices), reference "
                                 "outputs are numbers")
    if y.ndim == 0 or y.shape[0] != samples:
        count = "no samples" if y.ndim == 0 else f"{y.shape[0]} entries"
        raise NnsconsError(path, f"{key} holds {count} for {samples} inputs: one label or reference output per input")
    if list(y.shape[1:]) == own[1:] or (values == 1 and y.ndim == 1):
        reference = y.astype(np.float32).reshape(samples, *own[1:])
        if not np.all(np.isfinite(reference)):
            raise NnsconsError(path, f"{key} contains NaN or infinite values")
        perm = graph.output_perm.get(name)
        return Expected(key, values=np.ascontiguousarray(reference.transpose(perm)) if perm else reference)
    if y.ndim == 1 and y.dtype.kind in "biu":
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= values:
            raise NnsconsError(path, f"{key} holds labels from {lo} to {hi}; the output {label!r} has {values} "
                                     f"values, so a label is a class index 0..{values - 1}")
        return Expected(key, labels=y.astype(np.int64))
    if y.ndim == 1:
        raise NnsconsError(path, f"{key} holds one {y.dtype} per input: labels must be integers (class indices), "
                                 f"reference outputs need the output's shape [N, {', '.join(map(str, own[1:]))}]")
    raise NnsconsError(path, f"{key} has shape {list(y.shape)}: labels are [N] integers, reference outputs of the "
                             f"output {label!r} [N, {', '.join(map(str, own[1:]))}]")
