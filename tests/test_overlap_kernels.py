"""Overlapping placement (issue 13) against the bundled kernels: may a layer's output start D bytes below its input?

tests/firmware/overlap_main.c runs each trial (a case of tests/test_kernels_on_core.py's kind, a scratch buffer
mode, a list of lags D) on the host (plain C) and on the Cortex-M cores (DSP, Helium): once with separate buffers
(the reference), then once per D with the output at input - D in one arena poisoned with 0xA5. A placement is safe
when the output equals the reference byte for byte and no byte outside the output changed.

The rules (nnscons.overlap; D in bytes, L = pad_top * W + pad_left, align16 rounds up to a multiple of 16):
  R1 arm_elementwise_add_s8 / _mul_s8, equal shapes: D = 0 (in place).
  R2 1x1 convolution (stride 1, no padding, one group, one batch, C_OUT <= C_IN, C_OUT <= 64) and, because the DSP
     builds take a channel-pair-outer kernel when the layer's scratch cannot hold two im2col columns (generated
     code gives it 4 * C_IN bytes, the kernel wants 4 * align4(C_IN)), C_IN % 4 == 0 or C_OUT <= 2:
     D = align16(4 * C_OUT) (the lead's); no path needs more than 3 * C_OUT - (the channels of C_OUT's last
     group of four), so align16(3 * C_OUT) is enough (``tight``).
  R3 depthwise, multiplier 1, stride 1, dilation 1, one batch, SAME size and, because the DSP builds loop over
     blocks of four channels whose last one overlaps the one before when C % 4 != 0, C % 4 == 0 or C < 4:
     D = the least multiple of lcm(C, 16) >= (L + 4) * C (the lead's); >= L * C is enough (``tight``).
  R4 convolution through arm_convolve_s8 (kernel not 1x1; stride 1, dilation 1, one group, one batch, SAME size,
     C_OUT <= C_IN, C_OUT <= 64, the generated scratch): D = align16(3 * C_OUT + L * C_IN) (the lead's); every
     path gathers whole receptive fields before storing their outputs, so align16(L * C_OUT) is enough
     (``tight``). Scratch mode ``small`` states a 1-byte buffer: Helium then reads the fields in place once per
     output channel (needs (L + 1) * C_OUT - 1); a NULL buffer is refused (ARM_CMSIS_NN_ARG_ERROR) on every build.
Each path's own least lag (``predicted``) follows from its order of reads and writes (see predicted_lag); the tests
check that every scanned lag at or above it is safe, that the rules' lags are safe with the scratch buffer
generated code gives, that each bound is tight (one step less corrupts some case on some build), and that the
extra conditions are needed. ``./dev python tests/test_overlap_kernels.py [TARGET ...]`` prints, per trial and
build, the least safe lag found beside the predicted one. OVERLAP_SEED=N draws other shapes and data.
"""
from __future__ import annotations

import concurrent.futures
import math
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "site_scons"))     # conftest.py does this under pytest
import test_kernels_on_core as kc  # noqa: E402  (its build and QEMU machinery)
from kernel_cases import Case, CaseMaker, _numbers, cases_header  # noqa: E402  (its cases)

from nnscons import firmware  # noqa: E402

SEED = int(os.environ.get("OVERLAP_SEED", "13"))
GUARD = 64                              # poisoned bytes at least before the output and after each input
NAMES = ["host", *kc.CORTEX_M]
SCRATCH_MODES = {"exact": 0, "roomy": 1, "null": 2,      # kernels_case.h's KC_SCRATCH_*; exact = generated code's
                 "small": 3}                             # overlap_main.c's OV_SCRATCH_SMALL: ctx.size 1

pytestmark = kc.pytestmark


# ---- the trials -----------------------------------------------------------------------------------------------------
@dataclass
class Trial:
    index: int                          # into the cases
    case: Case
    rule: str                           # R1 .. R4
    scratch: str = "exact"
    alias: bool = False                 # add/mul of a tensor with itself
    lags: list[int] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.rule} {self.case.label.split(' in_off')[0]} scratch {self.scratch}" + (
            " aliased" if self.alias else "")


def align16(v: int) -> int:
    return -(-v // 16) * 16


def rows_lag(c: Case) -> int:
    """L: input pixel q is last read by output pixel q + L (SAME padding, stride 1)."""
    return c.padding[0] * c.input[2] + c.padding[1]


def lead_lag(t: Trial) -> int:
    """The lag of the rules as site_scons/nnscons/overlap.py encodes them (R4 one pixel more than the tight lag:
    safe also when a caller states a Helium scratch too small for the columns)."""
    c = t.case
    if t.rule == "R1":
        return 0
    if t.rule == "R2":
        return align16(3 * c.output[3])
    if t.rule == "R4":
        return align16((rows_lag(c) + 1) * c.output[3])
    ch = c.input[3]
    step = ch * 16 // math.gcd(ch, 16)
    return -(-rows_lag(c) * ch // step) * step


def tight_lag(t: Trial) -> int:
    """The least lag on the rules' lattice (multiples of 16, and of C for R3) that every path allows."""
    c = t.case
    if t.rule == "R1":
        return 0
    if t.rule == "R2":
        return align16(3 * c.output[3])
    if t.rule == "R4":
        return align16(rows_lag(c) * c.output[3])
    ch = c.input[3]
    step = ch * 16 // math.gcd(ch, 16)
    return -(-rows_lag(c) * ch // step) * step


def condition_holds(t: Trial) -> bool:
    """The extra condition the DSP paths need (see the module docstring)."""
    c = t.case
    if t.rule == "R2":
        return c.input[3] % 4 == 0 or c.output[3] <= 2
    if t.rule == "R3":
        return c.input[3] % 4 == 0 or c.input[3] < 4
    if t.rule == "R4":
        return c.output[3] <= min(c.input[3], 64)
    return True


def _last_reader(c: Case, q: int) -> int:
    """The last output pixel whose receptive field holds input pixel q (stride 1, SAME size)."""
    (h, w), (top, left) = c.input[1:3], c.padding
    y, x = divmod(q, w)
    return min(y + top, h - 1) * w + min(x + left, w - 1)


def _field_start(c: Case, p: int) -> int:
    """The first input pixel output pixel p's receptive field holds."""
    w, (top, left) = c.input[2], c.padding
    oy, ox = divmod(p, w)
    return max(oy - top, 0) * w + max(ox - left, 0)


def conv_lag(c: Case, group: int) -> int:
    """R4's least lag for a path that gathers the fields of ``group`` output pixels (0: reads each field in place
    once per output channel) before storing their outputs: the bytes stored when m pixels are done must stay below
    the first input pixel a later field still reads (and, in place, below the field being read again)."""
    c_in, c_out, pixels = c.input[3], c.output[3], c.input[1] * c.input[2]
    readers = [_last_reader(c, q) for q in range(pixels)]

    def first_unread(m: int) -> Optional[int]:
        return next((q for q in range(pixels) if readers[q] >= m), None)

    ends = range(1, pixels) if group == 0 else range(group, pixels, group)
    need = [m * c_out - q * c_in for m in ends if (q := first_unread(m)) is not None]
    if group == 0 and c_out >= 2:
        need += [p * c_out + c_out - 1 - _field_start(c, p) * c_in for p in range(pixels)]
    return max([0, *need])


def predicted_lag(features: str, t: Trial, scratch: int) -> Optional[int]:
    """The least safe lag of the path this build takes (None: none below the output's size), from its order:
    - add, mul (every path): element i (vector i..i+7) of both inputs read before output i is stored: 0.
    - 1x1, plain C: pixel by pixel; per pair of output channels the whole input pixel is read again, then the two
      outputs stored: the pixel's outputs but the last pass's (2, or 1 for an odd C_OUT) may not reach it.
    - 1x1, DSP with a scratch of 4 * align4(C_IN) bytes: two pixels gathered into int16 columns, then every
      output of both stored: 0. Without: pairs of output channels outside the pixel loop, every pair reading every
      pixel again: no overlap unless C_OUT <= 2 (one pass: 0).
    - 1x1, Helium: blocks of 64 channels outside; three pixels at a time, per four output channels their sums then
      their stores, the next four reading the three pixels again: min(P, 3) * C_OUT - (the last group's channels)
      (0 for C_OUT <= 4).
    - convolution through arm_convolve_s8 (R4), every path: the fields of a group of output pixels gathered into
      columns, then all their outputs stored, no input read again: plain C one pixel (gather_column_s8), DSP two
      (arm_nn_conv_im2col_dsp_s8, int16 columns), Helium three (arm_nn_conv_im2col_mve_s8, blocks of 64 output
      channels outside, hence one block); Helium with a scratch too small for three columns (``small``) reads each
      field in place once per output channel (receptive_field_dot_s8): conv_lag.
    - depthwise, every path: output pixel p stored after its window is read (the Helium paths after up to 7
      positions' windows), into input pixel p - D / C's same channels, whose last reader is p: L * C for D a
      multiple of C; the DSP paths loop over blocks of four channels outside the pixels, the last block
      overlapping the one before when C % 4 != 0: then no overlap.
    """
    c = t.case
    if t.rule == "R1":
        return 0
    if t.rule == "R4":
        rows = c.filter[1] * c.filter[2] * c.input[3]
        small = features == "mve" and scratch < 3 * rows
        return conv_lag(c, 0 if small else {"c": 1, "dsp": 2, "mve": 3}[features])
    if t.rule == "R3":
        ch = c.input[3]
        if features == "dsp" and ch >= 4 and ch % 4 != 0:
            return None
        return rows_lag(c) * ch
    c_in, c_out, positions = c.input[3], c.output[3], c.output[1] * c.output[2]
    if features == "c":
        return max(c_out - (2 if c_out % 2 == 0 else 1), 0)
    if features == "dsp":
        return 0 if scratch >= 4 * (-(-c_in // 4) * 4) or c_out <= 2 else None
    if c_out <= 4:
        return 0
    return min(positions, 3) * c_out - (c_out - 4 * ((c_out - 1) // 4))


def make_trials(seed: int = SEED) -> list[Trial]:
    m = CaseMaker(seed)
    r = m.rng

    def plain() -> dict:
        """Outputs that show a corrupted input: uniform data, output zero point near 0, no clamp."""
        return {"data": "uniform", "act": (-128, 127), "out_off": int(r.integers(-32, 33))}

    rules: list[str] = []
    # R2: (C_IN, C_OUT, (H, W)), then random ones
    conv = [(3, 3, (3, 5)), (8, 8, (2, 3)), (24, 16, (3, 3)), (40, 40, (1, 7)), (64, 64, (3, 4)), (16, 5, (5, 3)),
            (17, 13, (3, 3)), (12, 2, (3, 5)), (5, 1, (4, 3)), (64, 24, (2, 5)), (70, 64, (2, 3)), (20, 20, (1, 1)),
            (4, 4, (5, 5)), (33, 8, (3, 1)), (6, 2, (3, 3)), (40, 3, (3, 3))]
    for _ in range(8):
        c_in = int(r.integers(3, 73))
        conv.append((c_in, int(r.integers(1, min(c_in, 64) + 1)), (int(r.integers(1, 5)), int(r.integers(1, 8)))))
    for c_in, c_out, hw in conv:
        m.conv(hw, c_in, c_out, 1, **plain())
        rules.append("R2")
    # R3: (C, kernel, (H, W)), SAME padding, then random ones
    dw = [(3, 3, (5, 5)), (8, 3, (4, 7)), (24, 3, (5, 3)), (40, 3, (3, 5)), (64, 3, (4, 4)), (16, 5, (5, 7)),
          (4, 5, (6, 5)), (12, 3, (7, 9)), (1, 3, (6, 6)), (6, 3, (5, 5)), (20, 5, (5, 5)), (5, 3, (4, 4)),
          (32, 3, (2, 5)), (8, (2, 2), (4, 5)), (16, (1, 3), (3, 7)), (48, 3, (9, 3)), (70, 3, (3, 3)),
          (2, 5, (5, 9)), (24, 5, (7, 5))]
    for _ in range(6):
        dw.append((int(r.choice([1, 3, 4, 8, 12, 16, 24, 32, 40, 64])), int(r.choice([3, 5])),
                   (int(r.integers(2, 8)), int(r.choice([3, 5, 7, 9])))))
    for ch, k, hw in dw:
        m.depthwise(hw, ch, k=k, pad="same", **plain())
        rules.append("R3")
    # R4: (C_IN, C_OUT, kernel, (H, W)), SAME padding (also even and 1xN kernels), then random ones; the last two
    # break C_OUT <= C_IN
    conv = [(4, 4, 3, (4, 5)), (8, 8, 3, (3, 7)), (16, 12, 3, (4, 9)), (24, 24, 3, (3, 11)), (32, 16, 3, (3, 13)),
            (64, 64, 3, (3, 5)), (64, 40, 3, (3, 7)), (8, 3, 3, (4, 15)), (16, 1, 3, (3, 9)), (24, 5, 3, (3, 32)),
            (4, 4, 5, (5, 7)), (8, 6, 5, (5, 5)), (16, 16, 5, (5, 9)), (24, 17, 5, (5, 7)), (32, 8, 5, (5, 11)),
            (64, 64, 5, (5, 5)), (4, 2, 5, (6, 31)), (16, 16, 5, (5, 21)), (8, 8, (2, 2), (4, 7)),
            (16, 12, (1, 3), (3, 9)), (8, 8, (3, 1), (5, 5)), (8, 16, 3, (3, 7)), (4, 8, 5, (5, 5))]
    for _ in range(6):
        c_in = int(r.choice([4, 8, 16, 24, 32, 64]))
        k = int(r.choice([3, 5]))
        hw = (int(r.integers(k, k + 2)), int(r.choice(range(5, 33, 2))))
        conv.append((c_in, int(r.integers(1, c_in + 1)), k, hw))
    for c_in, c_out, k, hw in conv:
        m.conv(hw, c_in, c_out, k, pad="same", **plain())
        rules.append("R4")
    # R1
    for size in (1, 3, 17, 64, 100):
        m.add(size, **plain())
        rules.append("R1")
    for size in (5, 16, 33, 100):
        m.mul(size, **plain())
        rules.append("R1")
    trials = []
    for index, (rule, case) in enumerate(zip(rules, m.cases)):
        modes = {"R1": ["exact"], "R2": ["exact", "null", "roomy"], "R3": ["exact", "null"],
                 "R4": ["exact", "small"] if index % 2 else ["exact"]}[rule]
        for mode in modes:
            trials.append(Trial(index, case, rule, mode))
        if rule == "R1" and case.input[3] in (17, 33):
            trials.append(Trial(index, case, rule, "exact", alias=True))
    for t in trials:
        lead, tight = lead_lag(t), tight_lag(t)
        if t.rule == "R1":
            t.lags = [0, 1, 16]
        elif t.rule == "R2":
            t.lags = list(range(lead + 1))
        elif t.rule == "R4":
            bounds = {conv_lag(t.case, group) for group in ((0, 1, 2, 3) if t.scratch == "small" else (1, 2, 3))}
            t.lags = sorted({0, lead, tight, max(tight - 16, 0), *range(0, lead, max(16, align16(lead // 6)))}
                            | {d for b in bounds for d in (b - 1, b, b + 1) if d >= 0})
        else:
            ch = t.case.input[3]
            t.lags = sorted(set(range(0, lead + 1, ch)) | {lead, tight} | ({lead + 1} if (lead + 1) % ch else set()))
    return trials


def trials_header(trials: list[Trial]) -> str:
    lags, rows = [], []
    arena = tensor = 0
    for t in trials:
        size_in, size_out = int(np.prod(t.case.input)), int(np.prod(t.case.output))
        rows.append(f"    {{{t.index}, {SCRATCH_MODES[t.scratch]}, {int(t.alias)}, {max(t.lags)}, {len(lags)}, "
                    f"{len(t.lags)}}}")
        lags += t.lags
        arena = max(arena, align16(align16(GUARD + max(t.lags)) + size_in + GUARD) + size_in + GUARD)
        tensor = max(tensor, size_in, size_out)
    return ("/* Generated by tests/test_overlap_kernels.py: do not edit. */\n"
            f"#define OV_TRIALS {len(trials)}\n#define OV_GUARD {GUARD}\n#define OV_ARENA_BYTES {arena}\n"
            f"#define OV_TENSOR_BYTES {tensor}\n\n"
            "typedef struct\n{\n    int32_t index;      /* kc_cases */\n    int32_t scratch;    /* KC_SCRATCH_* */\n"
            "    int32_t alias;      /* add, mul: input 2 is input 1 */\n    int32_t max_lag;\n"
            "    int32_t lag_at;     /* ov_lags */\n    int32_t lag_count;\n} ov_trial;\n\n"
            f"static const int32_t ov_lags[{len(lags)}] = {{\n    {_numbers(lags)}\n}};\n\n"
            "static const ov_trial ov_trials[OV_TRIALS] = {\n" + ",\n".join(rows) + "\n};\n")


# ---- building and running -------------------------------------------------------------------------------------------
@dataclass
class Run:
    features: str
    refs: dict[int, tuple[int, int, bytes]]                 # trial -> status, ctx.size, output
    placed: dict[tuple[int, int], tuple[int, int, int, int]]  # (trial, lag) -> status, wrong, first, stray


def build_program(build: kc.Build, folder: Path, pool: concurrent.futures.Executor) -> Path:
    include = [kc.CMSIS / "Include"]
    headers = sorted(include[0].glob("*.h"))
    jobs = [pool.submit(kc._compile, build, s, headers, include) for s in kc.library_sources()]
    depends = [*headers, folder / "kernels_cases.h", folder / "overlap_trials.h", kc.FIRMWARE / "kernels_case.h",
               kc.FIRMWARE / "kernels_args.h"]
    jobs.append(pool.submit(kc._compile, build, kc.FIRMWARE / "overlap_main.c", depends, [*include, folder]))
    t = build.target
    if build.cortex_m:
        for source in [*map(Path, t.startup), kc.RUNTIME / "nnscons_cortex_m.c"]:
            jobs.append(pool.submit(kc._compile, build, source, [kc.RUNTIME / "nnscons_firmware.h"], [kc.RUNTIME]))
    objects = [str(j.result()) for j in jobs]
    program = folder / (f"overlap_{build.name}.elf" if build.cortex_m else f"overlap_{build.name}")
    if build.cortex_m:
        assert t.memory is not None
        command = [t.cc, *t.linkflags, *objects, f"-T{t.linker_script}", f"-L{kc.RUNTIME}",
                   f"-Wl,--defsym=__stack_size__={t.memory.stack_size}", "-o", str(program), "-lm"]
    else:
        command = [t.cc, *t.linkflags, *objects, "-o", str(program), "-lm"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{build.name}: linking failed:\n{result.stderr}")
    return program


_REF = re.compile(r"^ref (\d+) status=(-?\d+) scratch=(-?\d+) out=([0-9a-f]*)$", re.MULTILINE)
_PLACED = re.compile(r"^ov (\d+) (\d+) status=(-?\d+) wrong=(\d+) first=(-?\d+) stray=(\d+)$", re.MULTILINE)


def run_program(build: kc.Build, program: Path) -> Run:
    if build.cortex_m:
        command = firmware.emulator_command(build.target, str(program))
        timeout = build.target.emulator.timeout if build.target.emulator else 300
    else:
        command, timeout = [str(program)], 300
    run = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    features = re.search(r"^ov features=(\w+)$", run.stdout, re.MULTILINE)
    if run.returncode != 0 or "ov done" not in run.stdout or features is None:
        tail = "\n".join((run.stdout + run.stderr).splitlines()[-15:])
        raise RuntimeError(f"{build.name}: the program failed (exit status {run.returncode}):\n{tail}")
    return Run(features[1], {int(m[0]): (int(m[1]), int(m[2]), bytes.fromhex(m[3])) for m in _REF.findall(run.stdout)},
               {(int(m[0]), int(m[1])): (int(m[2]), int(m[3]), int(m[4]), int(m[5]))
                for m in _PLACED.findall(run.stdout)})


def build_and_run(names: list[str], folder: Path, trials: list[Trial]) -> dict[str, object]:
    """Every build compiled (all CPUs) and run, concurrently: name -> Run, or the exception."""
    (folder / "kernels_cases.h").write_text(cases_header(_cases(trials)))
    (folder / "overlap_trials.h").write_text(trials_header(trials))
    results: dict[str, object] = {}
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 2) as pool, \
            concurrent.futures.ThreadPoolExecutor(len(names)) as drivers:
        def one(name: str) -> Run:
            build = kc.load_build(name)
            return run_program(build, build_program(build, folder, pool))
        futures = {name: drivers.submit(one, name) for name in names}
        for name, future in futures.items():
            try:
                results[name] = future.result()
            except Exception as e:          # reported by that build's tests
                results[name] = e
    return results


def _cases(trials: list[Trial]) -> list[Case]:
    """The cases in index order (each trial names one)."""
    by_index = {t.index: t.case for t in trials}
    return [by_index[i] for i in range(max(by_index) + 1)]


# ---- the verdicts ---------------------------------------------------------------------------------------------------
def safe(run: Run, t_id: int, lag: int) -> bool:
    status, wrong, _, stray = run.placed[(t_id, lag)]
    return status == 0 and wrong == 0 and stray == 0


def least_safe(run: Run, t_id: int, t: Trial) -> Optional[int]:
    """The least scanned lag from which every larger scanned one is safe (R3: multiples of C only)."""
    lags = [d for d in t.lags if t.rule != "R3" or d % t.case.input[3] == 0]
    least = None
    for d in sorted(lags, reverse=True):
        if not safe(run, t_id, d):
            break
        least = d
    return least


def _run(results: dict, name: str) -> Run:
    got = results[name]
    if isinstance(got, Exception):
        raise got
    return got


def _selected(session: pytest.Session) -> list[str]:
    names = {item.callspec.params["name"] for item in session.items
             if item.module.__name__ == __name__ and hasattr(item, "callspec") and "name" in item.callspec.params}
    if any(item.module.__name__ == __name__ and not hasattr(item, "callspec") for item in session.items):
        names |= {"m4", "m55"} & set(NAMES)     # the cross-build tests want a DSP and a Helium build
    return sorted(names | {"host"}, key=NAMES.index)     # every test compares with the host


@pytest.fixture(scope="module")
def runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Trial], dict]:
    trials = make_trials()
    return trials, build_and_run(_selected(request.session), tmp_path_factory.mktemp("overlap"), trials)


@pytest.mark.parametrize("name", NAMES)
def test_placements_keep_outputs_and_arena(name: str, runs: tuple[list[Trial], dict]) -> None:
    """Each build runs every trial; its reference output equals the host's; no placement, safe or not, writes a
    byte outside its output; the rules' lags (the proposed and the tight ones) are safe with the scratch buffer
    generated code gives, where the rule's conditions hold."""
    trials, results = runs
    run, host = _run(results, name), _run(results, "host")
    bad = []
    for i, t in enumerate(trials):
        status, _, out = run.refs[i]
        if status != 0 or out != host.refs[i][2]:
            bad.append(f"trial {i} ({t.label}): reference status {status}, output equal to the host's: "
                       f"{out == host.refs[i][2]}")
        for lag in t.lags:
            p_status, _, _, stray = run.placed[(i, lag)]
            if p_status != 0 or stray != 0:
                bad.append(f"trial {i} ({t.label}) lag {lag}: status {p_status}, {stray} bytes outside the output "
                           f"changed")
        if t.scratch == "exact" and condition_holds(t):
            for which, lag in (("proposed", lead_lag(t)), ("tight", tight_lag(t))):
                if not safe(run, i, lag):
                    bad.append(f"trial {i} ({t.label}): the {which} lag {lag} corrupts "
                               f"{run.placed[(i, lag)][1]} output bytes on {name} ({run.features})")
    assert not bad, "\n".join(bad[:30])


@pytest.mark.parametrize("name", NAMES)
def test_paths_follow_their_access_order(name: str, runs: tuple[list[Trial], dict]) -> None:
    """Every scanned lag at or above the least one the build's path allows (predicted_lag) is safe."""
    trials, results = runs
    run = _run(results, name)
    bad = []
    for i, t in enumerate(trials):
        predicted = predicted_lag(run.features, t, run.refs[i][1])
        if predicted is None:
            continue
        for lag in t.lags:
            if lag >= predicted and (t.rule != "R3" or lag % t.case.input[3] == 0) and not safe(run, i, lag):
                bad.append(f"trial {i} ({t.label}): lag {lag} >= predicted {predicted} corrupts "
                           f"{run.placed[(i, lag)][1]} bytes (first at {run.placed[(i, lag)][2]}) on {name}")
    assert not bad, "\n".join(bad[:30])


def test_bounds_are_tight(runs: tuple[list[Trial], dict]) -> None:
    """One step below each bound corrupts some case: below every path's predicted lag (on each of the plain C, DSP
    and Helium builds: its own bound), below the tight rules' lags (R2, R4: 16 bytes less; R3: one lattice step
    less), and in place for R2 to R4."""
    trials, results = runs
    runs_ = {n: r for n, r in results.items() if isinstance(r, Run)}
    missing = []
    for features in sorted({r.features for r in runs_.values()}):
        for rule in ("R2", "R3", "R4"):
            below = [(r, i, p - (t.case.input[3] if rule == "R3" else 1)) for r in runs_.values()
                     if r.features == features for i, t in enumerate(trials)
                     if t.rule == rule and (p := predicted_lag(features, t, r.refs[i][1]))]
            if below and all(safe(r, i, lag) for r, i, lag in below):      # (paths whose bound is 0 have none)
                missing.append(f"{rule} on the {features} builds: no case corrupts one step below its path's bound")
    for rule in ("R2", "R3", "R4"):
        def below(t: Trial) -> int:
            ch = t.case.input[3]
            return tight_lag(t) - (ch * 16 // math.gcd(ch, 16) if rule == "R3" else 16)
        for what, lag_of in (("one step below the tight lag", below), ("in place", lambda t: 0)):
            hits = [1 for r in runs_.values() for i, t in enumerate(trials) if t.rule == rule and t.scratch == "exact"
                    and condition_holds(t) and lag_of(t) >= 0 and (i, lag_of(t)) in r.placed
                    and not safe(r, i, lag_of(t))]
            if not hits:
                missing.append(f"{rule}: no case corrupts {what}")
    assert not missing, "\n".join(missing)


def test_conditions_are_needed(runs: tuple[list[Trial], dict]) -> None:
    """On a DSP build the proposed lags corrupt the cases outside the extra conditions (R2: C_IN % 4 != 0 and
    C_OUT > 2; R3: C % 4 != 0 and C > 4; R4: C_OUT > C_IN, on every build); and an R3 lag that is not a
    multiple of C corrupts some case."""
    trials, results = runs
    dsp = [r for r in results.values() if isinstance(r, Run) and r.features == "dsp"]
    if not dsp:
        pytest.skip("no DSP build selected")
    for rule in ("R2", "R3", "R4"):
        outside = [i for i, t in enumerate(trials) if t.rule == rule and t.scratch == "exact"
                   and not condition_holds(t) and lead_lag(t) < np.prod(t.case.output)]    # overlapping at all
        assert outside, f"{rule}: no case outside the condition"
        unsafe = [i for i in outside if not all(safe(r, i, lead_lag(trials[i])) for r in dsp)]
        assert len(unsafe) == len(outside), (f"{rule}: the proposed lag is safe on the DSP builds outside the "
                                             f"condition too: {[trials[i].label for i in set(outside) - set(unsafe)]}")
    shifted = [1 for r in results.values() if isinstance(r, Run) for i, t in enumerate(trials)
               if t.rule == "R3" and (i, lead_lag(t) + 1) in r.placed and not safe(r, i, lead_lag(t) + 1)]
    assert shifted, "R3: no lag off the channel lattice corrupts: the same-lanes requirement is not shown"


# ---- the table ------------------------------------------------------------------------------------------------------
def main(argv: list[str]) -> int:
    names = ["host", *(argv or ["m4", "m55"])]
    trials = make_trials()
    with tempfile.TemporaryDirectory() as folder:
        results = build_and_run(names, Path(folder), trials)
    runs_ = {n: _run(results, n) for n in names}
    print(f"{'trial':>5} {'proposed':>8} {'tight':>5}  " + "  ".join(f"{n + ' least/pred':>16}" for n in names)
          + "  label")
    for i, t in enumerate(trials):
        cells = []
        for n in names:
            r = runs_[n]
            least, pred = least_safe(r, i, t), predicted_lag(r.features, t, r.refs[i][1])
            cells.append(f"{str(least) if least is not None else '>' + str(max(t.lags)):>7}/"
                         f"{'-' if pred is None else pred:<8}")
        print(f"{i:5} {lead_lag(t):8} {tight_lag(t):5}  " + "  ".join(f"{c:>16}" for c in cells) + f"  {t.label}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
