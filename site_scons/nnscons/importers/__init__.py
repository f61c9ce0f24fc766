"""Importers: a model file in, the IR out (see :mod:`nnscons.ir`).

``import_model`` picks the importer from the file extension. Each importer turns every problem with the file into
an :class:`~nnscons.errors.NnsconsError` naming it: corrupt or truncated files, unsupported operators (with their
position and the list of supported ones), hybrid models, dynamic shapes.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..errors import NnsconsError

if TYPE_CHECKING:  # importing the model libraries is the stage's cost, not the cost of reading an SConstruct
    import numpy as np

    from .. import ir

MODEL_EXTENSIONS = (".tflite", ".onnx")
# No model for a microcontroller comes near this (their flash is counted in megabytes): a bigger file is refused
# before it is read, instead of being read whole into memory.
MAX_MODEL_BYTES = 256 << 20


def check_model_size(path: str, size: int) -> None:
    """The importers call this before reading a file whole."""
    if size > MAX_MODEL_BYTES:
        raise NnsconsError(path, f"{size} bytes, larger than any model for a microcontroller (the limit is "
                                 f"{MAX_MODEL_BYTES >> 20} MiB)")


def import_model(path: str | os.PathLike) -> tuple[ir.Graph, dict[str, np.ndarray]]:
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in MODEL_EXTENSIONS:
        raise NnsconsError(path, f"unknown model format {ext or '(no extension)'}; expected .tflite or .onnx")
    if not os.path.isfile(path):
        raise NnsconsError(path, "no such file")
    if ext == ".tflite":
        from .tflite import import_tflite
        return import_tflite(path)
    from .onnx import import_onnx
    return import_onnx(path)
