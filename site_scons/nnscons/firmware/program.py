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
import subprocess
import sys
from typing import Optional

from ..errors import NnsconsError
from ..targets import Target
from .qemu import emulator_command, last_line

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
    (semihosting's exit status on the MPS2/MPS3 targets). A missing emulator or a run that does not end within
    ``timeout`` (default: the target's ``[emulator] timeout``) is one NnsconsError line."""
    command = emulator_command(board_target(target), elf)
    assert target.emulator is not None
    timeout = timeout or target.emulator.timeout
    sys.stdout.flush()
    try:
        result = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                timeout=timeout)
    except FileNotFoundError:
        raise NnsconsError(elf, f"{command[0]} not found: install it (Debian: qemu-system-arm)") from None
    except subprocess.TimeoutExpired as e:
        sys.stdout.write((e.stdout or b"").decode("utf-8", "replace"))
        raise NnsconsError(elf, f"{target.name} ({target.emulator.machine}): did not end within {timeout:g} s "
                                f"(last line: {last_line(e.stdout)})") from None
    sys.stdout.write(result.stdout.decode("utf-8", "replace"))
    sys.stdout.flush()
    return result.returncode
