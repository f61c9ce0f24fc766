"""Compiling generated C for the host without SCons: for experiments and tests that build many variants.

The SCons build compiles a model's generated sources with the host target's flags (``targets/host/target.toml``)
and links them with the generic test main (``runtime/nnscons_test_main.c``) and the kernel library. This module
does the same with direct compiler calls, with the same flags, defines and include paths as the tool's
``NnsconsLibrary`` / ``NnsconsHostTest``, so a binary built here computes what the build's binary computes.

* :func:`kernel_library` compiles ``cmsis/`` once per content (a hash of every source, header and flag names the
  archive), so repeated experiments and test runs reuse it; concurrent callers each write a private temporary
  file and move it into place.
* :func:`host_binary` compiles one model's sources and the test main into ``<out>/<name>_test`` (``trace=True``:
  with ``-DNNSCONS_TRACE``, the diagnostics build; with :func:`sanitized_host_toolchain`, the sanitized build).
  :func:`model_objects` and :func:`static_library` are its parts (the firmware image of :mod:`nnscons.firmware.image`
  uses them too).
* :func:`dsp_library` and :func:`frontend_binary`: CMSIS-DSP and a generated front end's runner
  (``<name>_frontend_test IN.npy OUT.npy``).
* :func:`flash_sizes` measures the generated code and constants as a Cortex-M target's compiler lays them out
  (``size -A`` of the objects), falling back to the host compiler when the cross compiler is missing.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from . import cmsis_dsp, cmsis_path, targets, targets_path
from .kernel_build import kernel_build
from .errors import NnsconsError

from .pipeline.modules import RUNTIME_DIR  # noqa: E402  (the test main)
COMPILE_TIMEOUT = 300  # seconds


@dataclass(frozen=True)
class Toolchain:
    """A compiler and its flags (a target folder's ``target.toml``)."""

    cc: str
    ar: str
    cflags: tuple[str, ...]
    libs: tuple[str, ...] = ()
    size: str = "size"
    warnings: tuple[str, ...] = ()   # the warning flags among cflags (not applied to a checkout of Arm's kernels)
    linkflags: tuple[str, ...] = ()  # given to the compiler when it links a test binary (the sanitizers')

    @classmethod
    def from_target(cls, directory: str | os.PathLike, extra_cflags: Sequence[str] = ()) -> "Toolchain":
        target = targets.load_target(os.fspath(directory))
        size = target.cc[:-3] + "size" if target.cc.endswith("gcc") else "size"
        return cls(target.cc, target.ar, tuple(target.cflags) + tuple(extra_cflags) + tuple(target.warnings),
                   tuple(target.libs), size, tuple(target.warnings))


def host_toolchain(targets_dir: Optional[str | os.PathLike] = None) -> Toolchain:
    """The ``host`` target's compiler and flags (``targets/host/target.toml``)."""
    return Toolchain.from_target(Path(targets_dir or targets_path()) / "host")


def sanitized_host_toolchain(targets_dir: Optional[str | os.PathLike] = None) -> Toolchain:
    """The ``host`` target's compiler with its ``sanitize_flags`` (AddressSanitizer, UndefinedBehaviorSanitizer),
    compiling and linking, as the SCons build's sanitized test binary; ``{root}`` in a flag is the current folder."""
    target = targets.load_target(os.fspath(Path(targets_dir or targets_path()) / "host"))
    sanitize = tuple(targets.expand_root(target.sanitize_flags, os.getcwd()))
    return Toolchain(target.cc, target.ar, (*target.cflags, *target.warnings, *sanitize), tuple(target.libs),
                     warnings=tuple(target.warnings), linkflags=sanitize)


def default_cmsis() -> Path:
    """The portable kernel library shipped with nnscons."""
    return Path(cmsis_path())


def run_binary(command: list[str], what: str) -> None:
    """Run a compiler or a built program: a failure is one line naming ``what``."""
    _run(command, what)


def _run(command: list[str], what: str) -> None:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=COMPILE_TIMEOUT)
    except FileNotFoundError:
        raise NnsconsError(what, f"{command[0]} not found") from None
    except subprocess.TimeoutExpired:
        raise NnsconsError(what, f"{command[0]} did not finish within {COMPILE_TIMEOUT} s") from None
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines() or ["(no message)"]
        raise NnsconsError(what, f"{command[0]} failed: {lines[0]}")


def compile_object(toolchain: Toolchain, source: Path, obj: Path, includes: Sequence[Path],
                   extra: Sequence[str] = (), flags: Optional[Sequence[str]] = None) -> Path:
    """``obj`` from one C source with the toolchain's flags (or ``flags``), then ``extra``."""
    command = [toolchain.cc, *(toolchain.cflags if flags is None else flags), *extra,
               *(f"-I{p}" for p in includes), "-c", str(source), "-o", str(obj)]
    _run(command, str(source))
    return obj


# ---- the kernel library ---------------------------------------------------------------------------------------------
def kernel_library(cmsis_dir: str | os.PathLike, cache_dir: str | os.PathLike, toolchain: Toolchain,
                   jobs: Optional[int] = None) -> Path:
    """``<cache_dir>/libcmsisnn-<hash>.a``, compiled unless an identical one is there."""
    build = kernel_build(cmsis_dir)
    cmsis, sources = build.root, list(build.sources)
    cflags = toolchain.cflags if build.strict_warnings else tuple(f for f in toolchain.cflags
                                                                  if f not in toolchain.warnings)
    digest = hashlib.sha256(" ".join((toolchain.cc, *cflags)).encode())
    for path in sources + sorted(h for d in build.include_dirs for h in d.glob("*.h")):
        digest.update(str(path.relative_to(cmsis)).encode() + b"\0" + path.read_bytes())
    library = Path(cache_dir) / f"libcmsisnn-{digest.hexdigest()[:16]}.a"
    if library.is_file():
        return library
    library.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cmsis-", dir=library.parent) as tmp:
        objects = [Path(tmp) / f"{s.parent.name}_{s.stem}.o" for s in sources]
        with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
            list(pool.map(lambda so: compile_object(toolchain, so[0], so[1], build.include_dirs, flags=cflags),
                          zip(sources, objects)))
        os.replace(static_library(toolchain, objects, Path(tmp) / library.name), library)
    return library


# ---- CMSIS-DSP and the front end -------------------------------------------------------------------------------------
def dsp_library(cache_dir: str | os.PathLike, toolchain: Toolchain, root: Optional[str | os.PathLike] = None) -> Path:
    """``<cache_dir>/libcmsisdsp-<hash>.a``: CMSIS-DSP's groups (:mod:`nnscons.cmsis_dsp`) with the flags the
    ``cmsisdsp`` package is built with (``-O3 -ffast-math``, loop unrolling: the float MFCC matches it bit for bit
    only so) and without the project's warning flags, as it is shipped."""
    build = cmsis_dsp.dsp_build(root)
    flags = [f for f in toolchain.cflags if f not in toolchain.warnings and not f.startswith("-O")]
    flags += list(build.cflags) + [f"-D{d}" for d in build.defines]
    key = " ".join((toolchain.cc, *flags, str(build.root), cmsis_dsp.VERSION))
    library = Path(cache_dir) / f"libcmsisdsp-{hashlib.sha256(key.encode()).hexdigest()[:16]}.a"
    if library.is_file():
        return library
    library.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cmsisdsp-", dir=library.parent) as tmp:
        objects = [compile_object(toolchain, source, Path(tmp) / f"{source.stem}.o", build.include_dirs,
                                  flags=flags) for source in build.sources]
        os.replace(static_library(toolchain, objects, Path(tmp) / library.name), library)
    return library


def frontend_binary(name: str, src_dir: str | os.PathLike, out_dir: str | os.PathLike, dsp_lib: str | os.PathLike,
                    toolchain: Toolchain, root: Optional[str | os.PathLike] = None) -> Path:
    """``<out_dir>/<name>_frontend_test``: the generated front end and its runner, linked with CMSIS-DSP."""
    build = cmsis_dsp.dsp_build(root)
    src, out = Path(src_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    defines = [f"-D{d}" for d in build.defines]
    includes = [src, *build.include_dirs]
    objects = [compile_object(toolchain, src / f"{name}_frontend.c", out / f"{name}_frontend.o", includes, defines),
               compile_object(toolchain, RUNTIME_DIR / "nnscons_frontend_main.c", out / f"{name}_frontend_main.o",
                              [src, RUNTIME_DIR], [f"-DNNSCONS_FRONTEND_INFO={name}_frontend_info", "-include",
                                                   f"{name}_frontend.h"])]
    binary = out / f"{name}_frontend_test"
    _run([toolchain.cc, *map(str, objects), str(dsp_lib), "-lm", "-o", str(binary)], str(binary))
    return binary


# ---- one model --------------------------------------------------------------------------------------------------------
def model_sources(src_dir: Path, name: str) -> list[Path]:
    """The generated C files of a model (header excluded), sorted."""
    return sorted(p for p in src_dir.glob(f"{name}*.c"))


def model_objects(name: str, src_dir: Path, out_dir: Path, toolchain: Toolchain, includes: Sequence[Path],
                  defines: Sequence[str] = ()) -> list[Path]:
    """The model's generated C compiled into ``out_dir`` (one object per source)."""
    return [compile_object(toolchain, c, out_dir / (c.stem + ".o"), includes, defines)
            for c in model_sources(src_dir, name)]


def static_library(toolchain: Toolchain, objects: Sequence[Path], library: Path) -> Path:
    """A static library of ``objects`` (made afresh)."""
    library.unlink(missing_ok=True)
    _run([toolchain.ar, "rcs", str(library), *map(str, objects)], str(library))
    return library


def host_binary(name: str, src_dir: str | os.PathLike, out_dir: str | os.PathLike, library: str | os.PathLike,
                toolchain: Toolchain, cmsis_include: str | os.PathLike, trace: bool = False) -> Path:
    """``<out_dir>/<name>_test``: the model's sources and the generic test main, linked with the kernels."""
    src, out = Path(src_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    defines = ["-DNNSCONS_TRACE"] if trace else []
    includes = [src, Path(cmsis_include)]
    objects = model_objects(name, src, out, toolchain, includes, defines)
    objects.append(compile_object(toolchain, RUNTIME_DIR / "nnscons_test_main.c", out / f"{name}_test_main.o",
                                  includes, [*defines, f"-DNNSCONS_MODEL_INFO={name}_info", "-include", f"{name}.h"]))
    binary = out / f"{name}_test"
    _run([toolchain.cc, *toolchain.linkflags, *map(str, objects), str(library),
          *(f"-l{lib}" for lib in toolchain.libs), "-o", str(binary)], str(binary))
    return binary


# ---- sizes ------------------------------------------------------------------------------------------------------------
def section_sizes(toolchain: Toolchain, obj: Path) -> dict[str, int]:
    """Section name -> bytes of an object file (``size -A``)."""
    result = subprocess.run([toolchain.size, "-A", str(obj)], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise NnsconsError(obj, f"{toolchain.size} failed: {result.stderr.strip()}")
    sizes: dict[str, int] = {}
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            sizes[parts[0]] = sizes.get(parts[0], 0) + int(parts[1])
    return sizes


def _sum_sections(sizes: dict[str, int], prefixes: tuple[str, ...]) -> int:
    return sum(v for k, v in sizes.items() if k.startswith(prefixes))


@dataclass(frozen=True)
class FlashSizes:
    code: int          # the generated network's code (.text) in bytes, kernels excluded
    constants: int     # weights, biases, multipliers, tables (.rodata and .data)
    compiler: str      # which compiler laid them out

    @property
    def total(self) -> int:
        return self.code + self.constants


def cortex_m_toolchain(targets_dir: Optional[str | os.PathLike] = None, target: str = "m4") -> Optional[Toolchain]:
    """The Cortex-M target's toolchain with -O2 (the build's default opt=O2), or None without its compiler."""
    directory = Path(targets_dir or targets_path()) / target
    if not (directory / "target.toml").is_file():
        return None
    toolchain = Toolchain.from_target(directory, ["-O2"])
    return toolchain if shutil.which(toolchain.cc) and shutil.which(toolchain.size) else None


def flash_sizes(name: str, src_dir: str | os.PathLike, out_dir: str | os.PathLike, toolchain: Toolchain,
                cmsis_include: str | os.PathLike) -> FlashSizes:
    """Compile the model's sources (not the kernels) and measure code and constants."""
    src, out = Path(src_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    code = constants = 0
    for c in model_sources(src, name):
        sizes = section_sizes(toolchain, compile_object(toolchain, c, out / (c.stem + ".o"),
                                                        [src, Path(cmsis_include)]))
        code += _sum_sections(sizes, (".text",))
        constants += _sum_sections(sizes, (".rodata", ".data"))
    return FlashSizes(code, constants, os.path.basename(toolchain.cc))
