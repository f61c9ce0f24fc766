"""What a firmware image holds (part of :mod:`nnscons.firmware`): its section sizes (``arm-none-eabi-size -A``),
the bytes each object or library puts into each section (from the GNU ld map file), and a model's arena as its
generated header states it."""
from __future__ import annotations

import os
import re
import subprocess
from typing import Mapping, Optional, Sequence

from ..errors import NnsconsError
from ..targets import Target
from .qemu import last_line

FLASH_SECTIONS = (".text", ".rodata", ".ARM.exidx", ".ARM.extab", ".data")
RAM_SECTIONS = (".data", ".bss", ".heap", ".stack")

_OUTPUT_SECTION = re.compile(r"^(\.[\w.]+)(?:\s+0x[0-9a-fA-F]+\s+0x[0-9a-fA-F]+(?: load address .*)?)?\s*$")
_INPUT_SECTION = re.compile(r"^ (\S+)?\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)\s+(\S.*)$")
_INPUT_NAME = re.compile(r"^ (\.\S+|COMMON)$")


def binutils_size(target: Target) -> str:
    """The binutils ``size`` of the target's toolchain: arm-none-eabi-gcc -> arm-none-eabi-size."""
    prefix = target.cc[:-3] if target.cc.endswith("gcc") else ""
    return prefix + "size"


def _size_lines(file: str, size_tool: str) -> list[tuple[str, int]]:
    """(section, size) of every section ``size -A`` lists (of every member, for an archive)."""
    try:
        result = subprocess.run([size_tool, "-A", "-d", file], capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise NnsconsError(file, f"{size_tool} not found (Debian: binutils-arm-none-eabi)") from None
    if result.returncode != 0:
        raise NnsconsError(file, f"{size_tool} failed: {last_line(result.stderr.encode())}")
    return [(parts[0], int(parts[1])) for parts in map(str.split, result.stdout.splitlines())
            if len(parts) == 3 and parts[0].startswith(".") and parts[1].isdigit()]


def section_sizes(elf: str, size_tool: str = "arm-none-eabi-size") -> dict[str, int]:
    """Allocated sections of the image and their sizes (``size -A``; debug sections left out)."""
    return {name: size for name, size in _size_lines(elf, size_tool)
            if not name.startswith((".debug", ".comment", ".ARM.attributes"))}


def object_sizes(files: Sequence[str], size_tool: str = "arm-none-eabi-size") -> dict[str, int]:
    """Code, constants, initialized and zeroed RAM of objects and archives (every member) before linking:
    ``{"code", "rodata", "data", "bss"}`` summed over their ``.text*``, ``.rodata*``, ``.data*``, ``.bss*``
    sections (``size -A``). With ``-ffunction-sections`` the link may drop some code: an upper bound for flash, the
    RAM exact."""
    total = {"code": 0, "rodata": 0, "data": 0, "bss": 0}
    kinds = ((".text", "code"), (".rodata", "rodata"), (".data", "data"), (".bss", "bss"))
    for file in files:
        for name, size in _size_lines(file, size_tool):
            for prefix, kind in kinds:
                if name == prefix or name.startswith(prefix + "."):
                    total[kind] += size
    return total


def named_section_size(files: Sequence[str], section: str, size_tool: str = "arm-none-eabi-size") -> int:
    """The size of one section (e.g. ``.bss.kws_arena``, with ``-fdata-sections``) in objects or archives."""
    return sum(size for file in files for name, size in _size_lines(file, size_tool) if name == section)


def map_contributions(map_file: str) -> dict[str, dict[str, int]]:
    """Bytes each input file (an object, or an archive) puts into each output section, from a GNU ld map file:
    ``{file: {".text": n, ".rodata": n, ".data": n, ".bss": n}}``. Archive members count for their archive."""
    try:
        with open(map_file, encoding="utf-8", errors="replace") as f:
            lines = f.read().split("\n")
    except OSError as e:
        raise NnsconsError(map_file, f"cannot read the linker map: {e.strerror}") from None
    try:
        start = lines.index("Linker script and memory map")
    except ValueError:
        raise NnsconsError(map_file, "not a GNU ld map file") from None
    result: dict[str, dict[str, int]] = {}
    section = None
    pending_name = False
    for line in lines[start + 1:]:
        out = _OUTPUT_SECTION.match(line)
        if out:
            section = out.group(1)
            continue
        if section is None or section.startswith((".debug", ".comment", ".ARM.attributes")):
            continue
        if _INPUT_NAME.match(line):
            pending_name = True
            continue
        m = _INPUT_SECTION.match(line)
        if m and (m.group(1) or pending_name) and not line.startswith(" *fill*"):
            size = int(m.group(3), 16)
            owner = _archive(m.group(4).strip())
            if size:
                sizes = result.setdefault(owner, {})
                sizes[section] = sizes.get(section, 0) + size
        pending_name = False
    return result


def _archive(path: str) -> str:
    """``lib.a(member.o)`` -> ``lib.a``; paths normalized."""
    if path.endswith(")") and "(" in path:
        path = path[:path.index("(")]
    return os.path.normpath(path)


def activation_arena_size(header: str, name: str) -> Optional[int]:
    """``<NAME>_ACTIVATION_ARENA_SIZE`` of a generated header: the arena without the kernels' scratch buffer, whose
    size depends on the target's code paths (the firmware reports the whole arena as compiled)."""
    with open(header, encoding="utf-8") as f:
        m = re.search(rf"^#define\s+{name.upper()}_ACTIVATION_ARENA_SIZE\s+\(?(\d+)[uU]?\)?\s*$", f.read(), re.M)
    return int(m.group(1)) if m else None


def model_sizes(contributions: Mapping[str, Mapping[str, int]], files: Sequence[str]) -> dict[str, int]:
    """Code, constants (weights), initialized and zeroed RAM the given files put into the image."""
    total = {"code": 0, "rodata": 0, "data": 0, "bss": 0}
    for file in files:
        sizes = contributions.get(os.path.normpath(file), {})
        total["code"] += sizes.get(".text", 0)
        total["rodata"] += sizes.get(".rodata", 0)
        total["data"] += sizes.get(".data", 0)
        total["bss"] += sizes.get(".bss", 0)
    return total
