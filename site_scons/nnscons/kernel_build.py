"""How the kernel library is built: one description for every build that compiles it.

The SCons tool (``NnsconsKernels``), CMake (``nnscons_add_cmsisnn``, through ``nnscons kernels``), the host builds
of the experiments (:mod:`nnscons.hostbuild`) and the tests all compile CMSIS-NN from this: which sources of a
checkout (every integer kernel under ``Source/*/``; Arm's float kernels need more of CMSIS and generated code
never calls them), which include folders, whether the project's warning flags apply and whether the sanitizers
instrument it (only nnscons' own portable library: Arm's is written neither for ``-Werror`` nor for UBSan, which
reports its left shifts of negative values; generated code and the test main stay sanitized either way).

Two layouts of Arm's library are accepted besides nnscons' own:

* a CMSIS-NN checkout (v5.0.0 or later): ``Include/`` and ``Source/``, self-contained;
* the ``CMSIS/NN`` folder of a CMSIS_5 tree (5.9.0 is the last with the legacy q7/q15 API), whose headers include
  CMSIS-DSP's ``arm_math_types.h`` and CMSIS-Core's compiler headers: the sibling ``CMSIS/DSP/Include``,
  ``CMSIS/DSP/PrivateInclude`` and ``CMSIS/Core/Include`` folders are added when present.

A header a source or header includes (``#include "..."``) that no include folder holds is one clear error naming
it, instead of a compiler error per file.
"""
from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path

from . import cmsis_path
from .errors import NnsconsError

FLOAT_KERNEL_SUFFIXES = ("_f16.c", "_f32.c", "_flt.c")
CMSIS5_SIBLINGS = ("DSP/Include", "DSP/PrivateInclude", "Core/Include")   # beside CMSIS/NN in a CMSIS_5 tree
_QUOTED_INCLUDE = re.compile(rb'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)


@dataclass(frozen=True)
class KernelBuild:
    """A CMSIS-NN checkout as a build: its sources (sorted), include folders and flags policy."""

    root: Path
    sources: tuple[Path, ...]
    include_dirs: tuple[Path, ...]
    own_library: bool                # nnscons' portable library: warning flags and sanitizers apply

    @property
    def strict_warnings(self) -> bool:
        return self.own_library

    @property
    def sanitized(self) -> bool:
        return self.own_library

    def object_stem(self, source: Path) -> str:
        """``<group>/<file stem>``: unique object names (two groups may hold files of one name)."""
        return f"{source.parent.name}/{source.stem}"


def is_kernel_source(path: Path) -> bool:
    return path.suffix == ".c" and not path.name.endswith(FLOAT_KERNEL_SUFFIXES)


def include_dirs_of(root: Path) -> tuple[Path, ...]:
    """``Include/``, and for a CMSIS_5 tree's NN folder the sibling DSP and Core include folders."""
    siblings = [root.parent / s for s in CMSIS5_SIBLINGS] if root.name == "NN" else []
    return (root / "Include", *(d for d in siblings if d.is_dir()))


def _missing_include(files: list[Path], include_dirs: tuple[Path, ...]) -> tuple[Path, str] | None:
    """The first quoted include of ``files`` found neither beside the including file nor in an include folder."""
    for path in files:
        for match in _QUOTED_INCLUDE.finditer(path.read_bytes()):
            name = match.group(1).decode("utf-8", "replace")
            if not any((d / name).is_file() for d in (path.parent, *include_dirs)):
                return path, name
    return None


def kernel_build(cmsis_dir: str | os.PathLike | None = None) -> KernelBuild:
    """The build of ``cmsis_dir`` (default: the portable library shipped with nnscons)."""
    return _kernel_build(os.path.abspath(cmsis_dir or cmsis_path()))


@functools.lru_cache(maxsize=None)   # an SConstruct asks once per environment and model library
def _kernel_build(directory: str) -> KernelBuild:
    root = Path(directory)
    sources = tuple(sorted(p for p in root.glob("Source/*/*.c") if is_kernel_source(p)))
    if not sources or not (root / "Include").is_dir():
        raise NnsconsError(root, "not a CMSIS-NN checkout: it needs Include/ and C sources under Source/*/ (for a "
                                 "CMSIS_5 tree, give its CMSIS/NN folder)")
    include_dirs = include_dirs_of(root)
    missing = _missing_include(sorted((root / "Include").glob("*.h")) + list(sources), include_dirs)
    if missing:
        where = ", ".join(str(d) for d in include_dirs)
        hint = (" (a CMSIS_5 tree's CMSIS/NN needs CMSIS/DSP/Include and CMSIS/Core/Include beside it)"
                if root.name == "NN" or missing[1].startswith(("arm_math", "cmsis_")) else "")
        raise NnsconsError(root, f"{missing[0].relative_to(root)} includes \"{missing[1]}\", which is in none of "
                                 f"{where}{hint}")
    own = os.path.realpath(root) == os.path.realpath(cmsis_path())
    return KernelBuild(root, sources, include_dirs, own)
