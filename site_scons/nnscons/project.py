"""What a project tree holds: model folders under models/ and target folders under targets/.

Used by the repository's SConstruct (and by anyone whose tree follows the same layout). A model folder
``models/<name>/`` holds exactly one ``model.tflite`` or ``model.onnx`` and optionally ``calib.npz``,
``test.npz`` and ``model.toml`` (DESIGN.md section 3). ``<name>`` must be a C identifier since it prefixes the
generated C API.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Optional

from . import options as nn_options
from .errors import NnsconsError
from .importers import MODEL_EXTENSIONS

_C_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")


@dataclass
class ModelFolder:
    name: str
    directory: str
    model: str
    calib: Optional[str] = None
    test: Optional[str] = None
    toml: Optional[str] = None
    toml_options: dict[str, str] = field(default_factory=dict)


def find_model(directory: str) -> ModelFolder:
    name = os.path.basename(os.path.normpath(directory))
    if not _C_NAME.fullmatch(name):
        raise NnsconsError(directory, "a model folder's name must be a C identifier (letters, digits, _; "
                                      "at most 32 characters, starting with a letter)")
    models = [os.path.join(directory, "model" + ext) for ext in MODEL_EXTENSIONS
              if os.path.isfile(os.path.join(directory, "model" + ext))]
    if len(models) != 1:
        raise NnsconsError(directory, "a model folder needs exactly one of model.tflite, model.onnx "
                                      f"(found {len(models)})")

    def optional(file: str) -> Optional[str]:
        path = os.path.join(directory, file)
        return path if os.path.isfile(path) else None

    folder = ModelFolder(name=name, directory=directory, model=models[0], calib=optional("calib.npz"),
                         test=optional("test.npz"), toml=optional("model.toml"))
    if folder.toml:
        folder.toml_options = nn_options.read_model_toml(folder.toml)
    return folder


def discover_models(models_dir: str) -> list[ModelFolder]:
    """Every model folder under ``models_dir``, sorted by name (folders without a model file are skipped)."""
    if not os.path.isdir(models_dir):
        return []
    found = []
    for entry in sorted(os.listdir(models_dir)):
        path = os.path.join(models_dir, entry)
        if os.path.isdir(path) and any(os.path.isfile(os.path.join(path, "model" + e)) for e in MODEL_EXTENSIONS):
            found.append(find_model(path))
    return found


def discover_targets(targets_dir: str) -> list[str]:
    """Names of target folders (each holds a target.toml)."""
    if not os.path.isdir(targets_dir):
        return []
    return sorted(e for e in os.listdir(targets_dir) if os.path.isfile(os.path.join(targets_dir, e, "target.toml")))


def discover_each_model(models_dir: str) -> tuple[list[ModelFolder], dict[str, NnsconsError]]:
    """Every model folder under ``models_dir``, and apart from them the folders that cannot be built, each with
    its one-line error (a bad name, options, a missing model file): a broken folder fails only its own targets."""
    found: list[ModelFolder] = []
    broken: dict[str, NnsconsError] = {}
    if not os.path.isdir(models_dir):
        return found, broken
    for entry in sorted(os.listdir(models_dir)):
        path = os.path.join(models_dir, entry)
        if not os.path.isdir(path) or not any(os.path.lexists(os.path.join(path, "model" + e))
                                              for e in MODEL_EXTENSIONS):
            continue
        try:
            found.append(find_model(path))
        except NnsconsError as e:
            broken[entry] = e
    return found, broken
