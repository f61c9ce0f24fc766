"""What a project tree holds: model folders under models/ and target folders under targets/.

Used by the repository's SConstruct (and by anyone whose tree follows the same layout). A model folder
``models/<name>/`` holds exactly one ``model.tflite`` or ``model.onnx`` and optionally ``calib.npz``,
``test.npz`` and ``model.toml`` (DESIGN.md section 3). ``<name>`` must be a C identifier since it prefixes the
generated C API, and not one of the names that would break the build: a C keyword, a header the build includes
(``stdio``: the generated ``stdio.h`` would hide it; :mod:`nnscons.cnames`) or a build target of its own. A model
file that is a dangling link is an error naming it, not a folder that silently vanishes.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Optional

from . import options as nn_options
from .cnames import reserved_name_problem
from .errors import NnsconsError
from .importers import MODEL_EXTENSIONS

_C_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")
# The aliases the repository's SConstruct defines: a model's alias of the same name would merge with them
BUILD_ALIASES = ("summary", "models", "check", "run", "compiledb", "experiments")


@dataclass
class ModelFolder:
    name: str
    directory: str
    model: str
    calib: Optional[str] = None
    test: Optional[str] = None
    toml: Optional[str] = None
    toml_options: dict[str, str] = field(default_factory=dict)
    frontend: Optional[str] = None      # [frontend] of model.toml (nnscons.frontend.spec_text): sets are raw audio
    labels: list[str] = field(default_factory=list)    # the class names model.toml declares (labels = [...])


def model_name_problem(name: str) -> Optional[str]:
    """Why ``name`` cannot name a model (it prefixes its C API, names its header ``<name>.h`` and its build alias),
    or None."""
    if name in BUILD_ALIASES:
        return f"'{name}' is a build target of its own (scons {name})"
    return reserved_name_problem(name)


def find_model(directory: str) -> ModelFolder:
    name = os.path.basename(os.path.normpath(directory))
    if not _C_NAME.fullmatch(name):
        raise NnsconsError(directory, "a model folder's name must be a C identifier (letters, digits, _; "
                                      "at most 32 characters, starting with a letter)")
    problem = model_name_problem(name)
    if problem:
        raise NnsconsError(directory, f"the folder's name cannot name a model: {problem}; rename the folder")
    models = [path for path in (os.path.join(directory, "model" + ext) for ext in MODEL_EXTENSIONS)
              if _existing_file(path)]
    if len(models) != 1:
        raise NnsconsError(directory, "a model folder needs exactly one of model.tflite, model.onnx "
                                      f"(found {len(models)})")

    def optional(file: str) -> Optional[str]:
        path = os.path.join(directory, file)
        return path if _existing_file(path) else None

    folder = ModelFolder(name=name, directory=directory, model=models[0], calib=optional("calib.npz"),
                         test=optional("test.npz"), toml=optional("model.toml"))
    if folder.toml:
        folder.toml_options = nn_options.read_model_toml(folder.toml)
        folder.labels = nn_options.read_labels(folder.toml)
        from .frontend import read_frontend, spec_text
        spec = read_frontend(folder.toml)
        folder.frontend = spec_text(spec) if spec else None
    return folder


def _existing_file(path: str) -> bool:
    """Whether ``path`` is a file; an error naming it if something else is there (a dangling link: the folder would
    otherwise silently lose its model)."""
    if not os.path.lexists(path):
        return False
    if os.path.islink(path) and not os.path.exists(path):
        raise NnsconsError(path, f"a dangling symbolic link (to {os.readlink(path)}, which does not exist)")
    if not os.path.isfile(path):
        raise NnsconsError(path, "not a regular file")
    return True


def discover_models(models_dir: str) -> list[ModelFolder]:
    """Every model folder under ``models_dir``, sorted by name (folders without a model file are skipped)."""
    if not os.path.isdir(models_dir):
        return []
    found = []
    for entry in sorted(os.listdir(models_dir)):
        path = os.path.join(models_dir, entry)
        if os.path.isdir(path) and any(os.path.lexists(os.path.join(path, "model" + e)) for e in MODEL_EXTENSIONS):
            found.append(find_model(path))
    return found


def check_cache_dir(path: str) -> None:
    """A folder SCons can use as its CacheDir: created if missing; one line naming it if that fails (SCons itself
    stops with a stack trace)."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise NnsconsError(path, f"cannot use as the cache folder: {e.strerror or e}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise NnsconsError(path, "cannot use as the cache folder: not writable")


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
