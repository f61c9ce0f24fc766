"""Targets: one folder per target under targets/, described by its target.toml.

A target says how to compile and link for it: the compiler and archiver, the flags, and for Cortex-M targets
the startup code, the linker script, the memory layout and the emulator that runs the firmware
(``[memory]``, ``[emulator]``; see targets/README.md). Adding a target is adding a folder.
"""
from __future__ import annotations

import os
import sys
import zipfile
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Mapping, Optional, Sequence

from . import fileio
from .errors import NnsconsError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class Memory:
    """Where a Cortex-M image goes: the CODE (flash) and DATA (RAM) regions of the linker script."""

    code_origin: int
    code_size: int
    data_origin: int
    data_size: int
    stack_size: int = 0x4000


@dataclass(frozen=True)
class Emulator:
    """How to run a Cortex-M image (QEMU). ``clock_hz`` is the processor clock SysTick counts: instructions =
    ticks * 1e9 / clock_hz under ``-icount shift=0``. Without ``machine`` the target builds but cannot run."""

    clock_hz: int
    machine: str = ""
    command: str = "qemu-system-arm"
    cpu: str = ""
    args: tuple[str, ...] = ()
    timeout: float = 300.0
    output: str = "semihosting"     # or "uart": the runner's lines on the first serial port, no exit


@dataclass
class Target:
    name: str
    directory: str
    kind: str                                  # "host" | "cortex-m"
    description: str = ""
    cc: str = "gcc"
    ar: str = "ar"
    ranlib: str = "ranlib"
    cflags: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    linkflags: list[str] = field(default_factory=list)
    libs: list[str] = field(default_factory=list)
    sanitize_flags: list[str] = field(default_factory=list)
    startup: list[str] = field(default_factory=list)   # Cortex-M: sources compiled into the firmware (paths)
    linker_script: str = ""                             # Cortex-M: path of the linker script
    memory: Optional[Memory] = None                     # Cortex-M
    emulator: Optional[Emulator] = None                 # Cortex-M
    images: str = "shared"      # Cortex-M: one firmware image for every model, or "per-model" (a board's)
    extra: dict = field(default_factory=dict)  # keys nnscons does not know, kept for users' SConstructs


# In a flag, the folder the build runs its compilers in (the project's top folder): "-ffile-prefix-map={root}=."
# makes debug information name files relative to it, so two checkouts in different folders build the same bytes.
# A build system substitutes it (expand_root); SCons keeps the substituted flag out of its build signatures.
ROOT_PLACEHOLDER = "{root}"

_LISTS = ("cflags", "warnings", "linkflags", "libs", "sanitize_flags")
_KNOWN = {"description", "kind", "cc", "ar", "ranlib", *_LISTS}
_CORTEX_M = {"startup", "linker_script", "memory", "emulator", "images"}
RUNTIME_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runtime")
# In a `startup` entry, the folder of nnscons' runtime sources (the startup and platform files boards share)
RUNTIME_PLACEHOLDER = "{runtime}"
# Used by a cortex-m target.toml without a `startup` key: the shared startup, stdio and exit over semihosting
DEFAULT_STARTUP = [os.path.join(RUNTIME_DIR, "nnscons_startup_cortex_m.c"),
                   os.path.join(RUNTIME_DIR, "nnscons_semihosting.c")]
IMAGES = ("shared", "per-model")
OUTPUTS = ("semihosting", "uart")


def load_target(directory: str) -> Target:
    path = os.path.join(directory, "target.toml")
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise NnsconsError(path, f"cannot read target: {e}") from None
    if raw.get("kind") not in ("host", "cortex-m"):
        raise NnsconsError(path, "kind must be \"host\" or \"cortex-m\"")
    known = {k: v for k, v in raw.items() if k in _KNOWN}
    for key in _LISTS:
        if key in known and not _is_string_list(known[key]):
            raise NnsconsError(path, f"{key} must be a list of strings")
    target = Target(name=os.path.basename(os.path.normpath(directory)), directory=directory,
                    extra={k: v for k, v in raw.items() if k not in _KNOWN | _CORTEX_M}, **known)
    if target.kind == "cortex-m":
        _load_cortex_m(path, raw, target)
    return target


def _is_string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _load_cortex_m(path: str, raw: dict[str, Any], target: Target) -> None:
    """The firmware keys: startup sources and linker script (relative to the folder), [memory], [emulator]."""
    startup = raw.get("startup")
    if startup is None:     # the startup shared by the targets here (vectors, FPU, .data/.bss, semihosting exit)
        target.startup = list(DEFAULT_STARTUP)
    elif not _is_string_list(startup):
        raise NnsconsError(path, "startup must be a list of source files (relative to the target folder, or "
                                 "{runtime}/<file> for nnscons' runtime folder)")
    else:
        target.startup = [f.replace(RUNTIME_PLACEHOLDER, RUNTIME_DIR) if f.startswith(RUNTIME_PLACEHOLDER)
                          else os.path.join(target.directory, f) for f in startup]
    target.images = raw.get("images", "shared")
    if target.images not in IMAGES:
        raise NnsconsError(path, f"images must be one of {', '.join(IMAGES)}")
    script = raw.get("linker_script")
    if not isinstance(script, str) or not script:
        raise NnsconsError(path, "a cortex-m target needs linker_script = \"<file>\" (relative to its folder)")
    target.linker_script = os.path.join(target.directory, script)
    for file in [*target.startup, target.linker_script]:
        if not os.path.isfile(file):
            raise NnsconsError(path, f"no such file: {file}")
    target.memory = _table(path, raw, "memory", Memory, ints=("code_origin", "code_size", "data_origin",
                                                                "data_size", "stack_size"))
    target.emulator = _table(path, raw, "emulator", Emulator, ints=("clock_hz",),
                             strings=("machine", "command", "cpu", "output"), numbers=("timeout",))
    if target.emulator.output not in OUTPUTS:
        raise NnsconsError(path, f"[emulator] output must be one of {', '.join(OUTPUTS)}")


def _table(path: str, raw: dict[str, Any], name: str, cls: type, ints: tuple[str, ...] = (),
           strings: tuple[str, ...] = (), numbers: tuple[str, ...] = ()) -> Any:
    """A [name] table as a ``cls`` instance, every key checked."""
    table = raw.get(name)
    if not isinstance(table, dict):
        raise NnsconsError(path, f"a cortex-m target needs a [{name}] table (see targets/README.md)")
    allowed = {f.name for f in fields(cls)}
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise NnsconsError(path, f"[{name}]: unknown key {unknown[0]!r} (known: {', '.join(sorted(allowed))})")
    values = dict(table)
    for key, value in table.items():
        ok = (isinstance(value, int) and not isinstance(value, bool) and value >= 0 if key in ints else
              isinstance(value, str) if key in strings else
              isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 if key in numbers else
              _is_string_list(value))
        if not ok:
            kind = ("a non-negative integer" if key in ints else "a string" if key in strings else
                    "a positive number" if key in numbers else "a list of strings")
            raise NnsconsError(path, f"[{name}] {key} must be {kind}")
        if isinstance(value, list):
            values[key] = tuple(value)
    try:
        return cls(**values)
    except TypeError:
        missing = [f.name for f in fields(cls) if f.name not in table and f.default is MISSING]
        raise NnsconsError(path, f"[{name}] needs {', '.join(missing)}") from None


def expand_root(flags: Sequence[str], root: str, wrap: Sequence[str] = ()) -> list[str]:
    """``flags`` with :data:`ROOT_PLACEHOLDER` replaced by ``root``. With ``wrap`` (two items), each flag that held
    it goes between them: for SCons ``("$(", "$)")``, which leaves it out of the build signature (so checkouts in
    different folders keep sharing a cache)."""
    out: list[str] = []
    for flag in flags:
        if ROOT_PLACEHOLDER not in flag:
            out.append(flag)
        elif wrap:
            out += [wrap[0], flag.replace(ROOT_PLACEHOLDER, root), wrap[1]]
        else:
            out.append(flag.replace(ROOT_PLACEHOLDER, root))
    return out


# ---- does a model fit the target's memory? ---------------------------------------------------------------------
@dataclass(frozen=True)
class Footprint:
    """What a model needs: its constants (flash) and its arena (RAM), lower bounds from the generated tables, and,
    once compiled, ``flash`` and ``ram``: what its library and embedded inputs put into an image (code, constants,
    initial values; .data and .bss: the arena, the output buffer, recurrent state), 0 when not measured."""

    constants: int
    arena: int
    flash: int = 0
    ram: int = 0


@dataclass(frozen=True)
class Reserved:
    """What a firmware image takes besides its models, measured on the image linked without any: flash (code,
    constants, initial values) and RAM, the runtime's ``.data`` and ``.bss``, the heap and the stack."""

    flash: int = 0
    data: int = 0
    heap: int = 0
    stack: int = 0

    @property
    def ram(self) -> int:
        return self.data + self.heap + self.stack

    def ram_parts(self) -> str:
        parts = [f"the runtime takes {self.data:,} B"] if self.data else []
        parts += [f"the heap {self.heap:,} B"] if self.heap else []
        return ", ".join(parts + [f"the stack {self.stack:,} B"])


def model_footprint(qparams_npz: str | os.PathLike, plan_json: Optional[str | os.PathLike] = None) -> Footprint:
    """A model's footprint from its quantization stage's ``qparams.npz`` (every constant array; only the array
    headers are read) and, once code generation has run, its ``plan.json`` (the arena with the smallest scratch
    of any feature set)."""
    import numpy as np      # the stages' cost, not the SConstruct's
    constants = 0
    try:
        with zipfile.ZipFile(qparams_npz) as archive:
            for member in archive.namelist():
                with archive.open(member) as f:
                    read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                                   (2, 0): np.lib.format.read_array_header_2_0}[np.lib.format.read_magic(f)]
                    shape, _, dtype = read_header(f)         # the header only, not the data
                constants += int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        raise NnsconsError(qparams_npz, f"cannot read the model's constants: {e}") from None
    arena = 0
    if plan_json is not None:
        plan = fileio.read_json(plan_json)
        arena = int(plan["activation_arena_size"]) + min((int(v) for v in plan.get("scratch", {}).values()),
                                                         default=0)
    return Footprint(constants, arena)


def check_fits(target: Target, footprints: Mapping[str, Footprint], reserved: Optional[Reserved] = None) -> None:
    """Refuse, in one line, a model that cannot fit the target's memory (``[memory]`` of its target.toml) beside
    what the image reserves (``reserved``; without it, the stack alone) and the other models of the same image:
    its constants (or measured flash) against the flash (``code_size``), its arena (or measured RAM) against the
    RAM (``data_size``), e.g. "kws needs 16,256 B of arena, microbit has 16,384 B of RAM of which 13,000 B are free
    (...)". A target without ``[memory]`` (the host) takes anything."""
    if target.memory is None:
        return
    memory = target.memory
    reserved = reserved or Reserved(stack=memory.stack_size)
    flash = memory.code_size
    where = f"target {target.name} ({os.path.join(target.directory, 'target.toml')} [memory])"
    for name, need in sorted(footprints.items()):
        if need.constants > flash:
            raise NnsconsError(name, f"its constants take at least {need.constants} bytes, more than the "
                                     f"{flash} bytes of flash (code_size) of {where}")
    constants = sum(f.constants for f in footprints.values())
    if constants > flash:
        together = ", ".join(sorted(footprints))
        raise NnsconsError(None, f"models {together}: their constants take at least {constants} bytes together, more "
                                 f"than the {flash} bytes of flash (code_size) of {where}")
    for name, need in sorted(footprints.items()):
        others = {n: f for n, f in footprints.items() if n != name}
        _check_ram(target, name, need, reserved, sum(max(f.ram, f.arena) for f in others.values()))
        _check_flash(target, name, need, reserved, sum(f.flash for f in others.values()))


def _check_ram(target: Target, name: str, need: Footprint, reserved: Reserved, others: int) -> None:
    assert target.memory is not None
    size = target.memory.data_size
    free = size - reserved.ram - others
    if max(need.ram, need.arena) <= free:
        return
    buffers = f" ({need.ram:,} B of RAM with its buffers)" if need.ram > need.arena else ""
    taken = reserved.ram_parts() + (f", the other models {others:,} B" if others else "")
    raise NnsconsError(None, f"{name} needs {need.arena:,} B of arena{buffers}, {target.name} has {size:,} B of "
                             f"RAM of which {max(free, 0):,} B are free ({taken})")


def _check_flash(target: Target, name: str, need: Footprint, reserved: Reserved, others: int) -> None:
    assert target.memory is not None
    size = target.memory.code_size
    free = size - reserved.flash - others
    if need.flash <= free:
        return
    taken = f"the runtime takes {reserved.flash:,} B" + (f", the other models {others:,} B" if others else "")
    raise NnsconsError(None, f"{name} needs at least {need.flash:,} B of flash (code, weights, embedded inputs), "
                             f"{target.name} has {size:,} B of flash of which {max(free, 0):,} B are free ({taken})")


def fit_refusal(target: Target, name: str, need: Footprint, reserved: Reserved) -> Optional[str]:
    """The line refusing ``name`` alone in an image of ``target`` (see :func:`check_fits`), or None when it fits."""
    try:
        check_fits(target, {name: need}, reserved)
    except NnsconsError as e:
        return str(e)
    return None
