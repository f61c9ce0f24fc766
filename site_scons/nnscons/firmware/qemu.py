"""Running a firmware image in the target's emulator and parsing what the runner prints (part of
:mod:`nnscons.firmware`).

``qemu-system-arm -machine M -icount shift=0 -semihosting ... -kernel firmware.elf`` with a timeout; the runner
(``runtime/nnscons_firmware_main.c``) prints one ``nnscons model=... input=... ticks=... instructions=...
output=<hex>`` line per inference (a profile image also ``nnscons layer ...`` lines: :mod:`.profile`) and
``nnscons done``. A fault, an error line, a non-zero exit or a timeout is one error line (an
:class:`~nnscons.errors.NnsconsError`).

A board target (``[emulator] output = "uart"``) has no semihosting: its lines come over the first serial port
(``-serial stdio``) and its program never exits, so the run reads them as they come and stops QEMU itself after
``nnscons done`` or an error line (the timeout stays as the safety net).
"""
from __future__ import annotations

import os
import re
import selectors
import subprocess
import time
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
    counter: str = "systick"        # what counted (the start line's counter=): dwt counts cycles, a clock instructions
    inferences: list[Inference] = field(default_factory=list)
    stack: dict[str, int] = field(default_factory=dict)    # model -> deepest stack while it ran (bytes)
    arena: dict[str, int] = field(default_factory=dict)    # model -> arena size as compiled (bytes)
    layers: dict[str, list[dict[str, int]]] = field(default_factory=dict)  # model -> index, name, instructions

    def of(self, model: str) -> list[Inference]:
        return [i for i in self.inferences if i.model == model]

    @property
    def unit(self) -> str:
        """What the counts count: ``cycles`` (DWT) or ``instructions`` (a clock under ``-icount shift=0``)."""
        return "cycles" if self.counter == "dwt" else "instructions"


def emulator_command(target: Target, elf: str, models: Optional[Sequence[str]] = None) -> list[str]:
    emulator = target.emulator
    if emulator is None or not emulator.machine:
        raise NnsconsError(os.path.join(target.directory, "target.toml"),
                           "no emulator: add [emulator] machine = \"...\" to run the firmware")
    command = [emulator.command, "-machine", emulator.machine]
    if emulator.cpu:
        command += ["-cpu", emulator.cpu]
    if emulator.output == "uart":
        if models:
            raise NnsconsError(os.path.join(target.directory, "target.toml"),
                               "a board has no command line to select models: its image runs every model it holds")
        return command + ["-nographic", "-monitor", "none", "-serial", "stdio", "-icount", "shift=0",
                          *emulator.args, "-kernel", elf]
    command += ["-nographic", "-monitor", "none", "-serial", "none",
                "-semihosting-config", "enable=on,target=native", "-icount", "shift=0", *emulator.args,
                "-kernel", elf]
    if models:
        command += ["-append", "models=" + ",".join(models)]
    return command


def run_firmware(elf: str, target: Target, models: Optional[Sequence[str]] = None,
                 timeout: Optional[float] = None) -> FirmwareRun:
    """Run the image in the target's emulator until it exits (a board: until its last line); its output, parsed."""
    assert target.emulator is not None
    text, status = emulator_output(elf, target, models, timeout)
    return parse_output(elf, text, status, f"{target.name} ({target.emulator.machine})")


def emulator_output(elf: str, target: Target, models: Optional[Sequence[str]] = None,
                    timeout: Optional[float] = None) -> tuple[str, int]:
    """What the image prints in the target's emulator (semihosting or the UART), and the exit status (0 when a
    board's run was stopped after its last line)."""
    command = emulator_command(target, elf, models)
    assert target.emulator is not None
    timeout = timeout or target.emulator.timeout
    where = f"{target.name} ({target.emulator.machine})"
    run = _run_until_last_line if target.emulator.output == "uart" else _run_to_exit
    try:
        output, status = run(command, timeout)
    except FileNotFoundError:
        raise NnsconsError(elf, f"{command[0]} not found: install it (Debian: qemu-system-arm)") from None
    except subprocess.TimeoutExpired as e:
        last = last_line(e.stdout)
        raise NnsconsError(elf, f"{where}: did not finish within {timeout:g} s (last line: {last}); the firmware "
                                "hangs or needs a longer [emulator] timeout") from None
    return output.decode("utf-8", "replace"), status


def _run_to_exit(command: list[str], timeout: float) -> tuple[bytes, int]:
    """A semihosting run: the program ends QEMU with its exit status."""
    result = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            timeout=timeout)
    return result.stdout, result.returncode


_LAST_LINE = re.compile(rb"^nnscons (done|error|exit status=(-?\d+))\b[^\n]*\n", re.MULTILINE)


def _run_until_last_line(command: list[str], timeout: float) -> tuple[bytes, int]:
    """A UART run: read QEMU's output as it comes; once the runner's last line (``nnscons done`` or ``nnscons
    error ...``: status 0, the line says how the run went) or any program's (``nnscons exit status=N``, what the
    board's _exit prints: status N) is complete, stop QEMU. QEMU ending by itself first is its own exit status."""
    deadline = time.monotonic() + timeout
    output = b""
    with subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT) as process:
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            try:
                while (last := _LAST_LINE.search(output)) is None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise subprocess.TimeoutExpired(command, timeout, output=output)
                    if selector.select(min(left, 1.0)):
                        chunk = os.read(process.stdout.fileno(), 65536)
                        if not chunk:                   # QEMU ended by itself
                            return output, process.wait()
                        output += chunk
            finally:
                process.kill()
    return output, int(last.group(2)) if last.group(2) is not None else 0


def last_line(output: Optional[bytes]) -> str:
    """The last line a program printed, shortened for an error message ("none" when it printed nothing)."""
    lines = (output or b"").decode("utf-8", "replace").strip().splitlines()
    return ir.c_comment(lines[-1], 120) if lines else "none"


_FIELD = re.compile(r"(\w+)=(\S*)")


def _count(fields: dict[str, str]) -> int:
    """A line's count: ``instructions=`` (a clock under -icount) or ``cycles=`` (DWT; :attr:`FirmwareRun.unit`)."""
    return int(fields["instructions"] if "instructions" in fields else fields["cycles"])


def parse_output(elf: str, text: str, status: int = 0, where: str = "firmware") -> FirmwareRun:
    """The runner's lines (see nnscons_firmware_main.c); anything but a clean end is an NnsconsError."""
    run = FirmwareRun(clock_hz=0)
    done = False
    for line in text.splitlines():
        if not line.startswith("nnscons "):
            continue
        fields = dict(_FIELD.findall(line))
        words = line.split()
        if len(words) < 2:
            raise NnsconsError(elf, f"{where}: an unreadable line in its output: {ir.c_comment(line, 80)!r}")
        word = words[1]
        if word == "error":
            after = f" after {run.inferences[-1].model} input {run.inferences[-1].input}" if run.inferences else ""
            raise NnsconsError(elf, f"{where}: {ir.c_comment(line[len('nnscons error '):], 200)}{after}")
        if word == "start":
            run.clock_hz = int(fields["clock_hz"])
            run.counter = fields.get("counter", "systick")
        elif word == "done":
            done = True
        elif word == "layer":
            run.layers.setdefault(fields["model"], []).append(
                {"index": int(fields["index"]), "name": fields["name"], "instructions": _count(fields)})
        elif "input" in fields:
            frontend = fields.get("frontend_instructions", fields.get("frontend_cycles"))
            run.inferences.append(Inference(fields["model"], int(fields["input"]), int(fields["ticks"]),
                                            _count(fields), fields["output"],
                                            int(frontend) if frontend is not None else None))
        elif "stack" in fields:
            run.stack[fields["model"]] = int(fields["stack"])
            run.arena[fields["model"]] = int(fields["arena"])
    if status != 0:
        raise NnsconsError(elf, f"{where}: exited with status {status} (last line: {last_line(text.encode())})")
    if not done:
        raise NnsconsError(elf, f"{where}: ended without 'nnscons done' (last line: {last_line(text.encode())})")
    return run
