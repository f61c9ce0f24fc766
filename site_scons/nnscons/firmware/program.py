"""A program of one's own on a Cortex-M target of targets/ (part of :mod:`nnscons.firmware`): what links it for the
board, and running it in the board's emulator.

The target's ``target.toml`` says everything: its ``linkflags`` (the C library and its specs: newlib-nano and
semihosting for the MPS2/MPS3 targets here), its startup sources and its linker script, which may ``INCLUDE``
nnscons' section script from the runtime folder, and ``[memory]`` (the stack it reserves). The SCons tool's
``NnsconsBoardProgram`` and ``NnsconsFirmware``, and ``nnscons run``, use these functions; CMake's
``nnscons_link_board`` states the same flags.
"""
from __future__ import annotations

import os
import sys
from typing import Optional

from ..errors import NnsconsError
from ..targets import Target
from .qemu import emulator_output

# newlib-nano formats floats in printf only when _printf_float is linked in; nothing references it otherwise, so
# "%f" would print nothing
PRINTF_FLOAT = "-Wl,-u,_printf_float"


def board_target(target: Target) -> Target:
    """``target`` if a program can be linked for it (a Cortex-M target with a linker script and memory), else one
    line naming its target.toml."""
    if target.kind != "cortex-m" or not target.linker_script or target.memory is None:
        raise NnsconsError(os.path.join(target.directory, "target.toml"),
                           f"{target.name} is not a board (kind = \"cortex-m\" with a linker script and [memory])")
    return target


def link_flags(target: Target, runtime_dir: str, map_file: Optional[str] = None) -> list[str]:
    """The flags that link for the board besides the target's ``linkflags``: its linker script (``-L`` the runtime
    folder for the section script it includes), the stack size it reserves and, with ``map_file``, a linker map."""
    memory = board_target(target).memory
    assert memory is not None
    flags = [f"-T{target.linker_script}", f"-L{runtime_dir}", f"-Wl,--defsym=__stack_size__={memory.stack_size}"]
    return flags + ([f"-Wl,-Map={map_file}"] if map_file else [])


def run_program(target: Target, elf: str, timeout: Optional[float] = None) -> int:
    """Run a program in the target's emulator, its output passed through to stdout; returns its exit status
    (semihosting's on the MPS2/MPS3 targets; on a board the status its last UART line, ``nnscons exit status=N``,
    gives). A missing emulator or a run that does not end within ``timeout`` (default: the target's ``[emulator]
    timeout``) is one NnsconsError line."""
    sys.stdout.flush()
    text, status = emulator_output(elf, board_target(target), None, timeout)
    sys.stdout.write(text)
    sys.stdout.flush()
    return status
