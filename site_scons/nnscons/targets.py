"""Targets: one folder per target under targets/, described by its target.toml.

A target says how to compile and link for it: the compiler and archiver, the flags, and for Cortex-M targets
(added by the firmware stage) the CPU, memory layout, startup code, linker script and emulator. Adding a target is
adding a folder.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

from .errors import NnsconsError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


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
    extra: dict = field(default_factory=dict)  # keys a later stage reads (cpu, memory, emulator, ...)


_LISTS = ("cflags", "warnings", "linkflags", "libs", "sanitize_flags")
_KNOWN = {"description", "kind", "cc", "ar", "ranlib", *_LISTS}


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
        if key in known and not (isinstance(known[key], list) and all(isinstance(v, str) for v in known[key])):
            raise NnsconsError(path, f"{key} must be a list of strings")
    return Target(name=os.path.basename(os.path.normpath(directory)), directory=directory,
                  extra={k: v for k, v in raw.items() if k not in _KNOWN}, **known)
