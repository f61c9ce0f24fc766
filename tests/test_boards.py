"""The boards (targets/netduinoplus2: STM32F405, Cortex-M4F; targets/microbit: nRF51822, Cortex-M0): their own clock
and UART set-up, the runner's lines over the UART (no semihosting) read until the last one and QEMU stopped, the
counter they report, float printf on their newlib-nano link, one image per model, and a model too big for the
board refused with one line at link time while the others run and equal the host binary.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nnscons import fileio, firmware, overview, targets
from nnscons.errors import NnsconsError

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = ROOT / "site_scons" / "nnscons" / "runtime"
BOARDS = ("netduinoplus2", "microbit")
needs_toolchain = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or
                                     shutil.which("qemu-system-arm") is None,
                                     reason="needs arm-none-eabi-gcc and qemu-system-arm")


def board(name: str) -> targets.Target:
    return targets.load_target(str(ROOT / "targets" / name))


# ---- the target descriptions ----------------------------------------------------------------------------------------
def test_boards_are_uart_targets_with_one_image_per_model_and_their_parts_memory() -> None:
    stm, nrf = board("netduinoplus2"), board("microbit")
    assert (stm.memory.code_origin, stm.memory.code_size, stm.memory.data_origin, stm.memory.data_size) == \
        (0x08000000, 1 << 20, 0x20000000, 128 << 10)
    assert (nrf.memory.code_origin, nrf.memory.code_size, nrf.memory.data_origin, nrf.memory.data_size) == \
        (0, 256 << 10, 0x20000000, 16 << 10)
    assert (stm.emulator.machine, stm.emulator.clock_hz, nrf.emulator.machine, nrf.emulator.clock_hz) == \
        ("netduinoplus2", 168_000_000, "microbit", 16_000_000)
    for t in (stm, nrf):
        assert t.images == "per-model" and t.emulator.output == "uart"
        assert [Path(s).name for s in t.startup] == ["nnscons_startup_cortex_m.c", "nnscons_uart_stdio.c", "board.c"]
        assert Path(t.startup[0]).parent == RUNTIME and Path(t.startup[2]).parent == Path(t.directory)
        assert "--specs=nosys.specs" in t.linkflags and "--specs=rdimon.specs" not in t.linkflags
        assert t.linkflags[t.linkflags.index("-u") + 1] == "_printf_float"
    assert board("m4").startup == targets.DEFAULT_STARTUP and board("m4").images == "shared"


def test_a_board_is_run_on_the_serial_port_and_has_no_command_line() -> None:
    command = firmware.emulator_command(board("microbit"), "fw.elf")
    assert command[command.index("-serial") + 1] == "stdio" and "-semihosting-config" not in command
    assert command[command.index("-icount") + 1] == "shift=0" and command[-2:] == ["-kernel", "fw.elf"]
    with pytest.raises(NnsconsError, match="a board has no command line to select models"):
        firmware.emulator_command(board("microbit"), "fw.elf", models=["kws"])


# ---- the refusal ------------------------------------------------------------------------------------------------------
def test_a_model_that_does_not_fit_is_refused_with_the_arena_and_the_free_ram() -> None:
    microbit = board("microbit")
    reserved = targets.Reserved(flash=34_000, data=888, heap=1024, stack=2560)
    need = targets.Footprint(constants=20_000, arena=16_256, flash=40_000, ram=16_300)
    assert targets.fit_refusal(microbit, "kws_dscnn_int8", need, reserved) == (
        "kws_dscnn_int8 needs 16,256 B of arena (16,300 B of RAM with its buffers), microbit has 16,384 B of RAM "
        "of which 11,912 B are free (the runtime takes 888 B, the heap 1,024 B, the stack 2,560 B)")
    assert targets.fit_refusal(microbit, "small", targets.Footprint(1000, 10_304, 30_000, 11_912), reserved) is None
    flash = targets.fit_refusal(microbit, "big", targets.Footprint(200_000, 100, 240_000, 200), reserved)
    assert flash == ("big needs at least 240,000 B of flash (code, weights, embedded inputs), microbit has 262,144 B "
                     "of flash of which 228,144 B are free (the runtime takes 34,000 B)")
    with pytest.raises(NnsconsError, match=r"^a needs 4,000 B of arena, microbit has 16,384 B of RAM of which "
                                           r"2,912 B are free \(.*, the other models 9,000 B\)$"):
        targets.check_fits(microbit, {"a": targets.Footprint(0, 4000), "b": targets.Footprint(0, 9000)}, reserved)


# ---- the UART lines ---------------------------------------------------------------------------------------------------
UART_LOG = ("nnscons board name=microbit clock=hfxo-16MHz uart=uart0 baud=115200\r\n"
            "nnscons start models=1 clock_hz=16000000 counter=timer0\r\n"
            "nnscons model=m input=0 ticks=100 instructions=6250 output=7f80\r\n"
            "nnscons model=m inputs=1 stack=640 arena=32\r\n"
            "nnscons done\r\n")


def test_uart_lines_parse_with_their_counter() -> None:
    run = firmware.parse_output("fw.elf", UART_LOG, 0)
    assert (run.counter, run.unit, run.clock_hz) == ("timer0", "instructions", 16_000_000)
    assert [(i.model, i.ticks, i.instructions, i.output) for i in run.inferences] == [("m", 100, 6250, "7f80")]
    assert run.stack == {"m": 640} and run.arena == {"m": 32}
    semihosted = firmware.parse_output("fw.elf", UART_LOG.replace(" counter=timer0", ""), 0)
    assert semihosted.counter == "systick"


def test_dwt_counts_are_cycles_in_the_report_tables() -> None:
    text = UART_LOG.replace("counter=timer0", "counter=dwt").replace("instructions=6250", "cycles=100")
    run = firmware.parse_output("fw.elf", text, 0)
    assert (run.counter, run.unit, run.inferences[0].instructions) == ("dwt", "cycles", 100)
    image = {"code": 1, "rodata": 2, "data": 3, "bss": 4}
    report = {"target": "netduinoplus2", "unit": "cycles", "counter": "dwt", "kernels": {"code": 0, "rodata": 0},
              "image": {"flash": 1, "ram": 2}, "images": "per-model",
              "models": {"m": {"inputs": 1, "instructions": {"mean": 6_565_600}, "image": image, "arena": 32}}}
    assert firmware.summary_rows(report)[0]["instructions"] == "6,565,600 cycles"
    assert overview.overview_rows([], [report], [])[0]["instructions"] == "6,565,600 cycles"
    assert firmware.image_row(report)["target"] == "netduinoplus2 m"
    report["unit"] = "instructions"
    assert overview.overview_rows([], [report], [])[0]["instructions"] == "6,565,600"


def fake_board(tmp_path: Path, printed: str) -> targets.Target:
    """microbit's description with an "emulator" that prints ``printed`` and then hangs, as a board does."""
    folder = tmp_path / "board"
    shutil.copytree(ROOT / "targets" / "microbit", folder)
    script = tmp_path / "fake-qemu"
    script.write_text(f"#!{sys.executable}\nimport sys, time\nsys.stdout.write({printed!r})\nsys.stdout.flush()\n"
                      "time.sleep(120)\n")
    script.chmod(0o755)
    toml = folder / "target.toml"
    toml.write_text(toml.read_text().replace('command = "qemu-system-arm"', f'command = "{script}"'))
    return targets.load_target(str(folder))


def test_a_uart_run_is_stopped_once_its_last_line_is_read(tmp_path: Path) -> None:
    started = time.monotonic()
    run = firmware.run_firmware("fw.elf", fake_board(tmp_path, UART_LOG))
    assert time.monotonic() - started < 20 and run.of("m")[0].output == "7f80"
    failing = UART_LOG.replace("nnscons done", "nnscons error model=m input=0 status=-1")
    with pytest.raises(NnsconsError, match=r"board \(microbit\): model=m input=0 status=-1 after m input 0"):
        firmware.run_firmware("fw.elf", fake_board(tmp_path / "a", failing))
    hanging = UART_LOG.replace("nnscons done\r\n", "")
    with pytest.raises(NnsconsError, match=r"did not finish within 2 s \(last line: nnscons model=m inputs=1"):
        firmware.run_firmware("fw.elf", fake_board(tmp_path / "b", hanging), timeout=2)


# ---- on QEMU's boards -----------------------------------------------------------------------------------------------
def link_board_program(target: targets.Target, out: Path, *flags: str, float_printf: bool = True) -> Path:
    """tests/firmware/board_main.c with the board's startup list, flags and linker script."""
    elf = out / f"board_{target.name}.elf"
    linkflags = list(target.linkflags)
    if not float_printf:
        del linkflags[linkflags.index("-u"):linkflags.index("-u") + 2]
    command = [target.cc, *target.cflags, "-O2", *target.warnings, *flags, f"-I{RUNTIME}",
               str(ROOT / "tests" / "firmware" / "board_main.c"), *target.startup, *linkflags,
               f"-T{target.linker_script}", f"-L{RUNTIME}", f"-Wl,--defsym=__stack_size__={target.memory.stack_size}",
               "-o", str(elf), "-lm"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return elf


@pytest.mark.slow
@needs_toolchain
@pytest.mark.parametrize("name", BOARDS)
def test_the_board_prints_floats_over_its_uart_and_reports_a_fault(name: str, tmp_path: Path) -> None:
    target = board(name)
    text, status = firmware.emulator_output(str(link_board_program(target, tmp_path)), target, timeout=60)
    lines = text.split("\r\n")
    assert status == 0 and lines[0].startswith(f"nnscons board name={name} ")
    assert "board float=0.3333 double=6.022e+23" in lines and "nnscons done" in lines
    if name == "netduinoplus2":     # QEMU models no RCC: the PLL never locks, the USART divider follows the HSI
        assert "clock=hsi-16MHz(pll-not-locked)" in lines[0] and "baud_error=-0.080%" in lines[0]
    (tmp_path / "plain").mkdir()
    without = link_board_program(target, tmp_path / "plain", float_printf=False)
    plain, _ = firmware.emulator_output(str(without), target, timeout=60)
    assert "board float=0.3333" not in plain and "nnscons done" in plain    # newlib-nano drops %f without it
    (tmp_path / "status").mkdir()
    returning = link_board_program(target, tmp_path / "status", "-DBOARD_STATUS=3")
    text, status = firmware.emulator_output(str(returning), target, timeout=60)
    assert status == 3 and text.split("\r\n")[-2] == "nnscons exit status=3"  # main's value, then QEMU stopped
    faulting = link_board_program(target, tmp_path, "-DBOARD_FAULT")
    with pytest.raises(NnsconsError, match=rf"{name} \({name}\): fault: the processor took a fault exception"):
        firmware.run_firmware(str(faulting), target, timeout=60)


def wide_fc_model(folder: Path) -> None:
    """An int8 fully connected layer from 14,000 inputs to 4: its arena (the 14,000-byte input and the output)
    fits the netduinoplus2's 128 KB of RAM, not the 16 KB of the micro:bit beside the runtime and the stack."""
    sys.path.insert(0, str(ROOT / "tests"))
    from tflite_builder import Quant, fully_connected
    weights = np.random.default_rng(1).integers(-127, 128, (4, 14_000), dtype=np.int8)
    folder.mkdir(parents=True)
    (folder / "model.tflite").write_bytes(fully_connected([1, 14_000], Quant([0.05], [0]), weights, 0.01, None,
                                                          Quant([0.5], [3])))


@pytest.mark.slow
@needs_toolchain
def test_the_boards_run_what_fits_equal_to_the_host_and_refuse_what_does_not(tmp_path: Path) -> None:
    shutil.copy(ROOT / "SConstruct", tmp_path / "SConstruct")
    for item in ("site_scons", "targets", "cmsis"):
        os.symlink(ROOT / item, tmp_path / item)
    shutil.copytree(ROOT / "models" / "hello_world_int8", tmp_path / "models" / "hello_world_int8")
    wide_fc_model(tmp_path / "models" / "wide_fc")
    result = subprocess.run([sys.executable, "-m", "SCons", "-Q", "-j2", "target=netduinoplus2,microbit", "check",
                             "summary"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for target in BOARDS:
        assert re.search(rf"{target}\s+hello_world_int8\s+16\s+identical", out), out
    assert re.search(r"netduinoplus2\s+wide_fc\s+1\s+identical", out), out
    refusal = ("wide_fc needs 14,016 B of arena (14,024 B of RAM with its buffers), microbit has 16,384 B of RAM of "
               "which 11,912 B are free (the runtime takes 888 B, the heap 1,024 B, the stack 2,560 B)")
    assert f"nnscons: microbit: {refusal}; left out of its image" in out      # said when it was decided
    assert re.search(rf"microbit\s+wide_fc\s+-\s+refused: {re.escape(refusal)}", out), out   # the check table
    assert re.search(rf"wide_fc .* microbit .* -\s+refused: {re.escape(refusal)}", out), out  # the summary
    build = tmp_path / "build"
    assert fileio.read_json(build / "microbit" / "wide_fc" / "fits.json")["fits"] is False
    assert fileio.read_json(build / "microbit" / "wide_fc" / "report.json")["models"] == {}
    for target, counter in (("netduinoplus2", "systick"), ("microbit", "timer0")):
        report = fileio.read_json(build / target / "hello_world_int8" / "report.json")
        assert (report["counter"], report["unit"], report["images"]) == (counter, "instructions", "per-model")
        hello = report["models"]["hello_world_int8"]
        assert hello["inputs"] == 16 and 1_000 < hello["instructions"]["min"] < 20_000
        assert report["image"]["sections"][".stack"] == board(target).memory.stack_size
