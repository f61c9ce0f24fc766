"""Running a firmware image in the target's emulator and parsing what the runner prints (part of
:mod:`nnscons.firmware`).

``qemu-system-arm -machine M -icount shift=0 -semihosting ... -kernel firmware.elf`` with a timeout; the runner
(``runtime/nnscons_firmware_main.c``) prints one ``nnscons model=... input=... ticks=... instructions=...
output=<hex>`` line per inference (a profile image also ``nnscons layer ...`` lines: :mod:`.profile`) and
``nnscons done``. A fault, an error line, a non-zero exit or a timeout is one error line (an
:class:`~nnscons.errors.NnsconsError`).
"""
from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from typing import Optional, Sequence

from .. import ir
from ..errors import NnsconsError
from ..targets import Target


@dataclass
class Inference:
    model: str
    input: int
    ticks: int
    instructions: int
    output: str             # hex of the output bytes
    frontend_instructions: Optional[int] = None     # the audio front end's, before the network (if any)


@dataclass
class FirmwareRun:
    clock_hz: int
    inferences: list[Inference] = field(default_factory=list)
    stack: dict[str, int] = field(default_factory=dict)    # model -> deepest stack while it ran (bytes)
    arena: dict[str, int] = field(default_factory=dict)    # model -> arena size as compiled (bytes)
    layers: dict[str, list[dict[str, int]]] = field(default_factory=dict)  # model -> index, name, instructions

    def of(self, model: str) -> list[Inference]:
        return [i for i in self.inferences if i.model == model]


def emulator_command(target: Target, elf: str, models: Optional[Sequence[str]] = None) -> list[str]:
    emulator = target.emulator
    if emulator is None or not emulator.machine:
        raise NnsconsError(os.path.join(target.directory, "target.toml"),
                           "no emulator: add [emulator] machine = \"...\" to run the firmware")
    command = [emulator.command, "-machine", emulator.machine]
    if emulator.cpu:
        command += ["-cpu", emulator.cpu]
    command += ["-nographic", "-monitor", "none", "-serial", "none",
                "-semihosting-config", "enable=on,target=native", "-icount", "shift=0", *emulator.args,
                "-kernel", elf]
    if models:
        command += ["-append", "models=" + ",".join(models)]
    return command


def run_firmware(elf: str, target: Target, models: Optional[Sequence[str]] = None,
                 timeout: Optional[float] = None) -> FirmwareRun:
    """Run the image in the target's emulator until it exits; its output, parsed."""
    command = emulator_command(target, elf, models)
    assert target.emulator is not None
    timeout = timeout or target.emulator.timeout
    where = f"{target.name} ({target.emulator.machine})"
    try:
        result = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, timeout=timeout)
    except FileNotFoundError:
        raise NnsconsError(elf, f"{command[0]} not found: install it (Debian: qemu-system-arm)") from None
    except subprocess.TimeoutExpired as e:
        last = last_line(e.stdout)
        raise NnsconsError(elf, f"{where}: did not finish within {timeout:g} s (last line: {last}); the firmware "
                                "hangs or needs a longer [emulator] timeout") from None
    text = result.stdout.decode("utf-8", "replace")
    return parse_output(elf, text, result.returncode, where)


def last_line(output: Optional[bytes]) -> str:
    """The last line a program printed, shortened for an error message ("none" when it printed nothing)."""
    lines = (output or b"").decode("utf-8", "replace").strip().splitlines()
    return ir.c_comment(lines[-1], 120) if lines else "none"


_FIELD = re.compile(r"(\w+)=(\S*)")


def parse_output(elf: str, text: str, status: int = 0, where: str = "firmware") -> FirmwareRun:
    """The runner's lines (see nnscons_firmware_main.c); anything but a clean end is an NnsconsError."""
    run = FirmwareRun(clock_hz=0)
    done = False
    for line in text.splitlines():
        if not line.startswith("nnscons "):
            continue
        fields = dict(_FIELD.findall(line))
        word = line.split()[1]
        if word == "error":
            after = f" after {run.inferences[-1].model} input {run.inferences[-1].input}" if run.inferences else ""
            raise NnsconsError(elf, f"{where}: {ir.c_comment(line[len('nnscons error '):], 200)}{after}")
        if word == "start":
            run.clock_hz = int(fields["clock_hz"])
        elif word == "done":
            done = True
        elif word == "layer":
            run.layers.setdefault(fields["model"], []).append(
                {"index": int(fields["index"]), "name": fields["name"], "instructions": int(fields["instructions"])})
        elif "input" in fields:
            frontend = fields.get("frontend_instructions")
            run.inferences.append(Inference(fields["model"], int(fields["input"]), int(fields["ticks"]),
                                            int(fields["instructions"]), fields["output"],
                                            int(frontend) if frontend is not None else None))
        elif "stack" in fields:
            run.stack[fields["model"]] = int(fields["stack"])
            run.arena[fields["model"]] = int(fields["arena"])
    if status != 0:
        raise NnsconsError(elf, f"{where}: exited with status {status} (last line: {last_line(text.encode())})")
    if not done:
        raise NnsconsError(elf, f"{where}: ended without 'nnscons done' (last line: {last_line(text.encode())})")
    return run
