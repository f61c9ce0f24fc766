"""How the kernel library is built: one description for every build that compiles it.

The SCons tool (``NnsconsKernels``), CMake (``nnscons_add_cmsisnn``, through ``nnscons kernels``), the host builds
of the experiments (:mod:`nnscons.hostbuild`) and the tests' fixture all compile CMSIS-NN from this: which sources
of a checkout (every integer kernel under ``Source/*/``; Arm's float kernels need more of CMSIS and generated code
never calls them), which include folders, and whether the project's warning flags apply (only to its own portable
library: a checkout of Arm's is not written for ``-Werror``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import cmsis_path
from .errors import NnsconsError

FLOAT_KERNEL_SUFFIXES = ("_f16.c", "_f32.c", "_flt.c")


@dataclass(frozen=True)
class KernelBuild:
    """A CMSIS-NN checkout as a build: its sources (sorted), include folders and warning policy."""

    root: Path
    sources: tuple[Path, ...]
    include_dirs: tuple[Path, ...]
    strict_warnings: bool            # compile with the target's warning flags (-Werror included)

    def object_stem(self, source: Path) -> str:
        """``<group>/<file stem>``: unique object names (two groups may hold files of one name)."""
        return f"{source.parent.name}/{source.stem}"


def is_kernel_source(path: Path) -> bool:
    return path.suffix == ".c" and not path.name.endswith(FLOAT_KERNEL_SUFFIXES)


def kernel_build(cmsis_dir: str | os.PathLike | None = None) -> KernelBuild:
    """The build of ``cmsis_dir`` (default: the portable library shipped with nnscons)."""
    root = Path(cmsis_dir or cmsis_path())
    sources = tuple(sorted(p for p in root.glob("Source/*/*.c") if is_kernel_source(p)))
    if not sources or not (root / "Include").is_dir():
        raise NnsconsError(root, "not a CMSIS-NN checkout: it needs Include/ and C sources under Source/*/")
    strict = os.path.realpath(root) == os.path.realpath(cmsis_path())
    return KernelBuild(root, sources, (root / "Include",), strict)
