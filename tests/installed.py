"""Test helper: nnscons installed (``pip install``, not editable, or the built wheel) into a fresh virtual
environment.

The package is built from a copy of the checkout's files, so the test neither writes into the checkout nor can
lean on it. The dependencies (numpy, onnx, SCons, ...) are not downloaded again: a ``.pth`` file makes the running
interpreter's site-packages visible after the new environment's own, where the installed nnscons sits.
"""
from __future__ import annotations

import shutil
import site
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What pyproject.toml packages: the library, the kernels, the targets, the CMake files, nnscons init's example model
PACKAGE_FILES = ("pyproject.toml", "README.md", "site_scons", "cmsis", "targets", "cmake", "models/digits_cnn")


def package_source(directory: Path) -> Path:
    """A copy of the files the package is built from, in ``directory/src``."""
    source = directory / "src"
    source.mkdir(parents=True)
    for item in PACKAGE_FILES:
        if (ROOT / item).is_dir():
            shutil.copytree(ROOT / item, source / item, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / item, source / item)
    return source


def install(directory: Path) -> Path:
    """Install nnscons (``pip install <checkout>``) into ``directory/venv``; returns that environment's python."""
    source = package_source(directory)
    python = _pip_install(directory / "venv", str(source))
    shutil.rmtree(source)  # nothing may depend on the files it was built from
    return python


def build_wheel(directory: Path) -> Path:
    """``pip wheel`` of a copy of the checkout: ``directory/dist/nnscons-<version>-py3-none-any.whl``."""
    source = package_source(directory)
    dist = directory / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist),
                    str(source)], check=True, capture_output=True, timeout=600)
    shutil.rmtree(source)
    return next(dist.glob("nnscons-*.whl"))


def install_wheel(wheel: Path, venv: Path) -> Path:
    """Install the wheel into a fresh environment ``venv``; returns its python."""
    return _pip_install(venv, str(wheel))


def _pip_install(venv: Path, what: str) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    result = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
                             what], capture_output=True, text=True, timeout=600)
    if result.returncode != 0:  # pip < 22.3 has no --python: install with the environment's own pip
        subprocess.run([str(python), "-m", "ensurepip", "-q"], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "-q", what], check=True, timeout=600)
    site_packages = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                   capture_output=True, text=True, check=True).stdout.strip()
    (Path(site_packages) / "nnscons_test_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return python
