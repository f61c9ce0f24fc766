"""``nnscons init DIR``: a starter project outside this repository, built with the installed package.

The project holds one model folder ``models/<name>/`` (the shipped example ``digits``, or the user's own model),
``main.c`` calling the generated API, an ``SConstruct`` loading the installed SCons tool, a ``CMakeLists.txt``
using ``nnscons.cmake``, a README and a ``.gitignore``; the files come from the templates in ``starter/``. A model
of the user's is proven first: its chain runs up to the C sources (so a model that cannot be built is refused in
one line before anything is written), and its generated header says how many inputs and outputs ``main.c`` passes.

Nothing is half-written: the project is put together in a temporary folder beside ``DIR`` and renamed into place.
An existing ``DIR`` that is not empty is refused unless ``force`` (then the starter's files replace theirs).
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from . import __version__, _shipped, options as nn_options, pipeline
from .errors import NnsconsError
from .frontend import frontend_text_beside, read_frontend
from .importers import MODEL_EXTENSIONS
from .pipeline.runner import run_steps
from .project import find_model, model_name_problem

STARTER_DIR = Path(__file__).resolve().parent / "starter"
EXAMPLE_NAME = "digits"
DEFAULT_TOML = ('# Build options for this model (`nnscons generate -h` lists them), e.g.\n'
                '# quant = "int8"            # auto (the model\'s own if quantized, else int8), int16x8, q7, q15\n'
                '# range = "minmax"          # how activation ranges come from calib.npz\n')


@dataclass
class StarterModel:
    name: str
    model_file: str                                     # model.onnx / model.tflite
    files: dict[str, Path] = field(default_factory=dict)  # file name in models/<name>/ -> where it comes from
    origin: str = ""                                    # for the README's table
    inputs: list[str] = field(default_factory=lambda: [""])    # the API's suffixes: [""] or ["0", "1", ...]
    outputs: list[str] = field(default_factory=lambda: [""])

    @property
    def calib(self) -> bool:
        return "calib.npz" in self.files


def example_dir() -> Path:
    """The shipped example model: a float CNN on scikit-learn's 8x8 digits (the checkout's models/digits_cnn)."""
    return Path(_shipped("_example", "models/digits_cnn"))


def example_model() -> StarterModel:
    folder = example_dir()
    files = {f: folder / f for f in ("model.onnx", "calib.npz", "model.toml")}
    return StarterModel(EXAMPLE_NAME, "model.onnx", files, origin=": a float CNN (ONNX) trained by nnscons on "
                        "scikit-learn's 8x8 handwritten digits, quantized to int8 from calib.npz")


def user_model(path: str, name: Optional[str] = None, calib: Optional[str] = None) -> StarterModel:
    """A model folder (model.tflite|onnx, calib.npz, model.toml, test.npz) or a model file (with ``calib``)."""
    if os.path.isdir(path):
        folder = find_model(path)
        files = {os.path.basename(folder.model): Path(folder.model)}
        files.update({os.path.basename(p): Path(p) for p in (folder.calib, folder.test, folder.toml) if p})
        default = folder.name
    elif os.path.isfile(path):
        if not path.lower().endswith(MODEL_EXTENSIONS):
            raise NnsconsError(path, "not a model: expected a .tflite or .onnx file, or a model folder")
        files = {"model" + os.path.splitext(path)[1].lower(): Path(path)}
        toml = Path(path).with_name("model.toml")
        if Path(path).stem == "model" and toml.is_file():   # model.toml beside model.* holds its options
            files["model.toml"] = toml
        stem = Path(path).stem if Path(path).stem != "model" else Path(path).resolve().parent.name
        default = re.sub(r"\W", "_", stem)
    else:
        raise NnsconsError(path, "no such model file or folder")
    if calib:
        if not os.path.isfile(calib):
            raise NnsconsError(calib, "no such file")
        files["calib.npz"] = Path(calib)
    if "model.toml" in files and read_frontend(str(files["model.toml"])):
        raise NnsconsError(files["model.toml"], "a model with an audio [frontend] is not yet supported by nnscons "
                                                "init (its calibration set is raw audio)")
    name = name or default
    problem = model_name_problem(name) if re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,31}", name) else \
        "not a C identifier of at most 32 characters starting with a letter"
    if problem:
        raise NnsconsError(path, f"the model's name {name!r} cannot be used ({problem}): give another with --name")
    model_file = next(f for f in files if f.startswith("model.") and f != "model.toml")
    return StarterModel(name, model_file, files, origin=f" (from {path})")


def init_project(directory: str, model: Optional[str] = None, name: Optional[str] = None,
                 calib: Optional[str] = None, force: bool = False) -> StarterModel:
    """Write the starter project into ``directory``; returns the model it holds."""
    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise NnsconsError(directory, "exists and is not a folder")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise NnsconsError(directory, "exists and is not empty (nnscons init --force writes the starter's files "
                                      "into it)")
    chosen = user_model(model, name, calib) if model else example_model()
    parent = target.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.nnscons-init-", dir=parent))
    try:
        _write_project(staging, chosen, proven=model is None)
        _move_into_place(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return chosen


def _write_project(root: Path, model: StarterModel, proven: bool) -> None:
    folder = root / "models" / model.name
    folder.mkdir(parents=True)
    for file, source in model.files.items():
        shutil.copyfile(source, folder / file)
    if "model.toml" not in model.files:
        (folder / "model.toml").write_text(DEFAULT_TOML, encoding="utf-8")
    if not proven:      # the user's model: its chain must run, and its header gives the API's shape
        model.inputs, model.outputs = _prove(folder, model)
    context = {"name": model.name, "NAME": model.name.upper(), "model_file": model.model_file, "calib": model.calib,
               "model_origin": model.origin, "inputs": model.inputs, "outputs": model.outputs,
               "version": __version__}
    templates = _templates()
    for out, template in (("SConstruct", "SConstruct.j2"), ("CMakeLists.txt", "CMakeLists.txt.j2"),
                          ("README.md", "README.md.j2")):
        (root / out).write_text(templates.get_template(template).render(context), encoding="utf-8")
    if proven:
        shutil.copyfile(STARTER_DIR / "main_digits.c", root / "main.c")
    else:
        (root / "main.c").write_text(templates.get_template("main_model.c.j2").render(context), encoding="utf-8")
    shutil.copyfile(STARTER_DIR / "gitignore", root / ".gitignore")


def _templates():
    import jinja2
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(STARTER_DIR)), keep_trailing_newline=True,
                              undefined=jinja2.StrictUndefined, autoescape=False)


def _prove(folder: Path, model: StarterModel) -> tuple[list[str], list[str]]:
    """Run the model's chain up to its C sources (in a scratch folder); the suffixes of its inputs and outputs."""
    toml = folder / "model.toml"
    values = nn_options.resolve(nn_options.read_model_toml(str(toml)), {})
    model_path = str(folder / model.model_file)
    calib = str(folder / "calib.npz") if model.calib else None
    with tempfile.TemporaryDirectory(prefix="nnscons-init-") as work:
        steps = pipeline.model_steps(model.name, model_path, calib, values, work,
                                     frontend=frontend_text_beside(model_path))
        try:
            run_steps(steps)
        except NnsconsError as e:   # name the user's file, not its copy in the staging folder
            raise NnsconsError(_original(e.path, folder, model), e.message) from None
        header = Path(pipeline.outputs_of(steps)["header"]).read_text(encoding="utf-8")
    return _suffixes(header, model.name.upper(), "INPUT"), _suffixes(header, model.name.upper(), "OUTPUT")


def _original(path: Optional[str], folder: Path, model: StarterModel) -> Optional[str]:
    """Where a file of the staged model folder came from (the model file for the folder itself)."""
    if path is None:
        return None
    staged = Path(path)
    if staged == folder:
        return str(model.files[model.model_file])
    return str(model.files[staged.name]) if staged.parent == folder and staged.name in model.files else path


def _suffixes(header: str, prefix: str, kind: str) -> list[str]:
    if re.search(rf"^#define {prefix}_{kind}_SIZE ", header, re.M):
        return [""]
    return sorted(re.findall(rf"^#define {prefix}_{kind}(\d+)_SIZE ", header, re.M), key=int)


def _move_into_place(staging: Path, target: Path) -> None:
    """``staging`` becomes ``target``: a rename when ``target`` is missing or empty, else (``force``) each of its
    entries goes in (folders merge, files replace files)."""
    if target.is_dir() and not any(target.iterdir()):
        target.rmdir()
    if not target.exists():
        os.rename(staging, target)
        return
    _merge(staging, target)


def _merge(source: Path, target: Path) -> None:
    """Move ``source``'s entries into the folder ``target``: folders merge, files replace files."""
    for entry in source.iterdir():
        existing = target / entry.name
        if entry.is_dir() and existing.is_dir() and not existing.is_symlink():
            _merge(entry, existing)
            continue
        if existing.is_dir() and not existing.is_symlink():
            shutil.rmtree(existing)
        elif existing.exists() or existing.is_symlink():
            existing.unlink()
        os.rename(entry, existing)
