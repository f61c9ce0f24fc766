"""The portable kernels' target-specific code on the Cortex-M cores themselves (QEMU): arm_nn_dot_s8 and
arm_nn_dot2_s8, whose DSP paths (SXTAB16/SXTB16/SMLAD) run on the Cortex-M4/M7/M33/M55 and the plain loops on the
M0/M3, against numpy on lengths around the 4-tap step, every extreme offset and value, and unaligned vectors.
Whole networks through these paths are compared with the host binary by tests/test_firmware.py."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from nnscons import firmware, project, targets


ROOT = Path(__file__).resolve().parents[1]
CMSIS = ROOT / "cmsis"
RUNTIME = ROOT / "site_scons" / "nnscons" / "runtime"
# The cores (the MPS2/MPS3 images, which exit through semihosting); the boards have tests/test_boards.py
CORTEX_M = [t for t in project.discover_targets(str(ROOT / "targets"))
            if targets.load_target(str(ROOT / "targets" / t)).kind == "cortex-m"
            and targets.load_target(str(ROOT / "targets" / t)).emulator.output == "semihosting"]
OFFSETS = (-127, -1, 0, 1, 127, 128)

pytestmark = [pytest.mark.slow,   # cross compiler and QEMU
              pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                                reason="needs arm-none-eabi-gcc and qemu-system-arm")]


def dot_cases() -> tuple[np.ndarray, np.ndarray, list[tuple[int, int, int, int]]]:
    """Two int8 pools (extremes included) and (x_at, w_at, length, offset) cases, with their numpy results."""
    rng = np.random.default_rng(7)
    x = rng.integers(-128, 128, 512).astype(np.int8)
    w = rng.integers(-128, 128, 512).astype(np.int8)
    x[:16], w[:16] = -128, 127                        # the largest products of both signs
    x[16:32], w[16:32] = 127, -128
    cases = []
    for length in list(range(0, 14)) + [64, 67, 301]:
        for offset in OFFSETS:
            for x_at, w_at in ((0, 0), (1, 3), (16, 2)):
                cases.append((x_at, w_at, length, offset))
    return x, w, cases


def expected(x: np.ndarray, w: np.ndarray, case: tuple[int, int, int, int]) -> int:
    x_at, w_at, length, offset = case
    xs = x[x_at:x_at + length].astype(np.int64) + offset
    return int(np.sum(xs * w[w_at:w_at + length].astype(np.int64)))


def cases_header(x: np.ndarray, w: np.ndarray, cases: list[tuple[int, int, int, int]]) -> str:
    def array(name: str, values: np.ndarray) -> str:
        return f"static const int8_t {name}[{len(values)}] = {{{', '.join(str(int(v)) for v in values)}}};\n"
    rows = ",\n".join(f"    {{{a}, {b}, {n}, {o}}}" for a, b, n, o in cases)
    return ("#include <stdint.h>\n"
            "typedef struct { int32_t x_at; int32_t w_at; int32_t length; int32_t offset; } dot_case;\n"
            + array("dot_x", x) + array("dot_w", w)
            + f"#define DOT_CASES {len(cases)}\nstatic const dot_case dot_cases[DOT_CASES] = {{\n{rows}\n}};\n")


def build_dot_firmware(target: targets.Target, out: Path) -> Path:
    """The test program, arm_nn_dot_s8 and nnscons' startup, compiled and linked with the target's own flags."""
    out.mkdir(parents=True, exist_ok=True)
    elf = out / "dot_s8.elf"
    sources = [ROOT / "tests" / "firmware" / "dot_s8_main.c", CMSIS / "Source" / "NNSupportFunctions" / "arm_nn_dot_s8.c",
               *map(Path, target.startup)]
    command = [target.cc, *target.cflags, "-O2", *target.warnings, f"-I{CMSIS / 'Include'}", f"-I{out}",
               *map(str, sources), *target.linkflags, f"-T{target.linker_script}", f"-L{RUNTIME}",
               f"-Wl,--defsym=__stack_size__={target.memory.stack_size}", "-o", str(elf), "-lm"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return elf


@pytest.mark.parametrize("name", CORTEX_M)
def test_dot_s8_on_the_core_equals_numpy(name: str, tmp_path: Path) -> None:
    target = targets.load_target(str(ROOT / "targets" / name))
    x, w, cases = dot_cases()
    (tmp_path / "dot_s8_cases.h").write_text(cases_header(x, w, cases))
    elf = build_dot_firmware(target, tmp_path)
    run = subprocess.run(firmware.emulator_command(target, str(elf)), stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    results = {int(m[0]): tuple(int(v) for v in m[1:])
               for m in re.findall(r"^dot (\d+) (-?\d+) (-?\d+) (-?\d+)$", run.stdout, re.MULTILINE)}
    assert len(results) == len(cases)
    wrong = []
    for i, case in enumerate(cases):
        x_at, w_at, length, offset = case
        want = (expected(x, w, case), expected(x, w, case), expected(x, w, (x_at, w_at + 5, length, offset)))
        if results[i] != want:
            wrong.append((case, results[i], want))
    assert not wrong, wrong[:5]
