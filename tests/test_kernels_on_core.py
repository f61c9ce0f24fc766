"""The bundled library's public s8 kernels on the Cortex-M cores (QEMU) against the same library built for the host.

One program, tests/firmware/kernels_main.c, runs about 180 seeded cases (convolutions 1x1 / 1xN / 3x3 / first
layers / dilated / grouped / batched, depthwise 3x3 / 5x5 / multipliers / one input channel, fully connected,
average and max pooling, add, mul, softmax; channel counts around the vector widths, extreme offsets and data,
per-channel multipliers with shifts from -31 to +5, full and relu-like activations, tensors at odd addresses,
each scratch buffer as the build's getter sizes it, with room to spare or NULL) through the public entry points.
Built for the host it runs the plain C paths, the reference (bit-exact with TFLite Micro through
tests/test_cmsis_kernels.py); built for each Cortex-M target it runs the DSP and Helium paths. Every output byte,
the status, and the guard bytes around the outputs and after the scratch buffer must agree. The host build also
runs under AddressSanitizer and UBSan with every tensor in a heap block of its own size; on the cores one tensor
of most cases ends at the last byte of RAM, where on the m55's board a read past it faults.

KERNELS_CMSIS=PATH tests another copy of the library (e.g. a clean copy of HEAD's cmsis/); KERNELS_SEED=N draws
other offsets, data and placements for the same shapes. As a script it measures instead:
``./dev python tests/test_kernels_on_core.py --bench m55 [--cases]`` prints the instructions per MAC (per window
tap for pooling, per output element for add, mul and softmax) per kind of case on that target.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "site_scons"))       # conftest.py does this under pytest

from nnscons import firmware, project, targets  # noqa: E402
from nnscons.kernel_build import kernel_build  # noqa: E402
from kernel_cases import Case, cases_header, make_cases  # noqa: E402  (the cases: tests/kernel_cases.py)

FIRMWARE = ROOT / "tests" / "firmware"
RUNTIME = ROOT / "site_scons" / "nnscons" / "runtime"
CMSIS = Path(os.environ.get("KERNELS_CMSIS", ROOT / "cmsis")).resolve()
CACHE = ROOT / "build" / "test-cache" / "kernels-on-core"
# The cores (the MPS2/MPS3 images, which exit through semihosting); the boards have tests/test_boards.py
CORTEX_M = [t for t in project.discover_targets(str(ROOT / "targets"))
            if targets.load_target(str(ROOT / "targets" / t)).kind == "cortex-m"
            and targets.load_target(str(ROOT / "targets" / t)).emulator.output == "semihosting"]
GUARDS = {1: "bytes before the output written", 2: "bytes after the output written",
          4: "bytes after the scratch buffer written", 8: "input changed", 16: "input 2 changed"}
# The s16, legacy q7/q15, LSTM and GRU kernels (tests/test_recurrent*.py): not linked (any newer file, whatever its
# name, is)
_UNUSED = re.compile(r"(_q7|_q15|legacy|_HWC_|activations_direct|lstm|gru)|_s16\.c$")

pytestmark = [pytest.mark.slow,   # cross compiler and QEMU
              pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                                reason="needs arm-none-eabi-gcc and qemu-system-arm")]


# ---- building and running -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Build:
    name: str                           # "host", "host-asan" or a Cortex-M target's name
    target: targets.Target
    sanitized: bool = False

    @property
    def cortex_m(self) -> bool:
        return self.target.kind == "cortex-m"

    def compile_flags(self) -> list[str]:
        t = self.target
        if self.sanitized:
            return [t.cc, "-std=c99", *t.warnings, *targets.expand_root(t.sanitize_flags, str(ROOT))]
        core = []
        if self.cortex_m and t.emulator and t.memory:
            core = [f"-DNNSCONS_CLOCK_HZ={t.emulator.clock_hz}",
                    f"-DKC_DATA_END={t.memory.data_origin + t.memory.data_size:#x}u"]
        return [t.cc, *t.cflags, "-O2", *t.warnings, *core]


@dataclass
class Line:
    status: int
    instructions: int
    scratch: int
    guards: int
    out: bytes


def load_build(name: str) -> Build:
    if name == "host-asan":
        return Build(name, targets.load_target(str(ROOT / "targets" / "host")), True)
    return Build(name, targets.load_target(str(ROOT / "targets" / name)))


def library_sources() -> list[Path]:
    return [s for s in kernel_build(CMSIS).sources if not _UNUSED.search(s.name)]


def _compile(build: Build, source: Path, depends: list[Path], includes: list[Path]) -> Path:
    """One object, cached under build/test-cache by its compiler command and the bytes of its source and of the
    headers it may include."""
    command = [*build.compile_flags(), *(f"-I{d}" for d in includes), "-c", str(source)]
    digest = hashlib.sha256(" ".join(command).encode())
    for path in [source, *depends]:
        digest.update(path.read_bytes())
    folder = CACHE / build.name
    stem = f"{source.parent.name}_{source.stem}"
    obj = folder / f"{stem}-{digest.hexdigest()[:16]}.o"
    if not obj.exists():
        for old in folder.glob(f"{stem}-*.o"):      # earlier versions, unless another run may still link them
            with contextlib.suppress(OSError):
                if time.time() - old.stat().st_mtime > 3600:
                    old.unlink()
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".o", dir=folder)
        os.close(fd)
        result = subprocess.run([*command, "-o", tmp], capture_output=True, text=True)
        if result.returncode != 0:
            Path(tmp).unlink(missing_ok=True)
            errors = "\n".join(result.stderr.splitlines()[:40])
            raise RuntimeError(f"{build.name}: compiling {source} failed:\n{errors}")
        os.replace(tmp, obj)
    return obj


def build_program(build: Build, header_dir: Path, pool: concurrent.futures.Executor, out: Path) -> Path:
    """kernels_main.c and the library (with nnscons' startup and counters on a core), compiled in ``pool``."""
    include = [CMSIS / "Include"]
    headers = sorted(include[0].glob("*.h"))
    jobs = [pool.submit(_compile, build, s, headers, include) for s in library_sources()]
    main_depends = [*headers, header_dir / "kernels_cases.h", FIRMWARE / "kernels_case.h", FIRMWARE / "kernels_args.h",
                    RUNTIME / "nnscons_firmware.h"]
    jobs.append(pool.submit(_compile, build, FIRMWARE / "kernels_main.c", main_depends,
                            [*include, header_dir, RUNTIME]))
    t = build.target
    if build.cortex_m:
        for source in [*map(Path, t.startup), RUNTIME / "nnscons_cortex_m.c"]:
            jobs.append(pool.submit(_compile, build, source, [RUNTIME / "nnscons_firmware.h"], [RUNTIME]))
    objects = [str(j.result()) for j in jobs]
    program = out / (f"kernels_{build.name}.elf" if build.cortex_m else f"kernels_{build.name}")
    if build.cortex_m:
        assert t.memory is not None
        command = [t.cc, *t.linkflags, *objects, f"-T{t.linker_script}", f"-L{RUNTIME}",
                   f"-Wl,--defsym=__stack_size__={t.memory.stack_size}", "-o", str(program), "-lm"]
    else:
        sanitize = targets.expand_root(t.sanitize_flags, str(ROOT)) if build.sanitized else []
        command = [t.cc, *sanitize, *t.linkflags, *objects, "-o", str(program), "-lm"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{build.name}: linking failed:\n{result.stderr}")
    return program


_LINE = re.compile(r"^kc (\d+) status=(-?\d+) instructions=(\d+) scratch=(-?\d+) guards=(\d+) out=([0-9a-f]*)$",
                   re.MULTILINE)


def run_program(build: Build, program: Path, cases: list[Case]) -> dict[int, Line]:
    if build.cortex_m:
        command = firmware.emulator_command(build.target, str(program))
        timeout = build.target.emulator.timeout if build.target.emulator else 300
    else:
        command, timeout = [str(program)], 300
    run = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    lines = {int(m[0]): Line(int(m[1]), int(m[2]), int(m[3]), int(m[4]), bytes.fromhex(m[5]))
             for m in _LINE.findall(run.stdout)}
    if run.returncode != 0 or "kc done" not in run.stdout:
        at = max(lines, default=-1) + 1
        case = f"case {at} ({cases[at].label})" if at < len(cases) else "after the last case"
        other = [t for t in (run.stdout + run.stderr).splitlines() if not t.startswith("kc ")]
        raise RuntimeError(f"{build.name}: the program failed (exit status {run.returncode}) in {case}:\n"
                           + "\n".join(other[:25]))
    return lines


def build_and_run(names: list[str], header_dir: Path, cases: list[Case]) -> dict[str, object]:
    """Every build in ``names`` compiled (all CPUs) and run, concurrently: name -> lines, or the exception."""
    results: dict[str, object] = {}
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 2) as pool, \
            concurrent.futures.ThreadPoolExecutor(len(names)) as drivers:
        def one(name: str) -> dict[int, Line]:
            build = load_build(name)
            return run_program(build, build_program(build, header_dir, pool, header_dir), cases)
        futures = {name: drivers.submit(one, name) for name in names}
        for name, future in futures.items():
            try:
                results[name] = future.result()
            except Exception as e:          # reported by the test of that build
                results[name] = e
    return results


# ---- comparing ------------------------------------------------------------------------------------------------------
def _where(c: Case, index: int) -> str:
    n, h, w, ch = np.unravel_index(index, c.output)
    return f"n {n} h {h} w {w} c {ch}"


def differences(cases: list[Case], reference: dict[int, Line], lines: dict[int, Line], who: str) -> list[str]:
    """One message per case whose line differs from the reference's (or is missing)."""
    wrong = []
    for i, c in enumerate(cases):
        ref, got = reference.get(i), lines.get(i)
        if ref is None or got is None:
            wrong.append(f"case {i} ({c.label}): no line from {'the host' if ref is None else who}")
            continue
        why = []
        if got.status != ref.status:
            why.append(f"status {got.status}, host {ref.status}")
        if got.guards:
            why.append(", ".join(text for bit, text in GUARDS.items() if got.guards & bit))
        if len(got.out) != len(ref.out):
            why.append(f"{len(got.out)} output bytes, host {len(ref.out)}")
        elif got.out != ref.out:
            a, b = np.frombuffer(ref.out, np.int8), np.frombuffer(got.out, np.int8)
            diff = np.flatnonzero(a != b)
            first = int(diff[0])
            why.append(f"{diff.size} of {a.size} output bytes differ, first at {first} ({_where(c, first)}): "
                       f"{who} {b[first]}, host {a[first]}")
        if why:
            wrong.append(f"case {i} ({c.label}): " + "; ".join(why))
    return wrong


# ---- the tests ------------------------------------------------------------------------------------------------------
def _selected_targets(session: pytest.Session) -> list[str]:
    names = []
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        if item.module.__name__ == __name__ and callspec is not None and "name" in callspec.params:
            names.append(callspec.params["name"])
    return sorted(set(names), key=CORTEX_M.index)


@pytest.fixture(scope="module")
def runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Case], dict]:
    """The cases, and every selected build's lines (all builds at once, in parallel)."""
    cases = make_cases()
    folder = tmp_path_factory.mktemp("kernels_on_core")
    (folder / "kernels_cases.h").write_text(cases_header(cases))
    return cases, build_and_run(["host", "host-asan", *_selected_targets(request.session)], folder, cases)


def _lines(results: dict, name: str) -> dict[int, Line]:
    got = results[name]
    if isinstance(got, Exception):
        raise got
    return got


def test_host_reference_runs_clean(runs: tuple[list[Case], dict]) -> None:
    """The reference itself: every case runs (status 0) within its guards, and the cases have power: few of the
    ordinary weighted ones give outputs of fewer than three values (all saturated, say)."""
    cases, results = runs
    host = _lines(results, "host")
    assert sorted(host) == list(range(len(cases)))
    bad = [f"case {i} ({c.label}): status {host[i].status} guards {host[i].guards}"
           for i, c in enumerate(cases) if host[i].status != 0 or host[i].guards != 0]
    assert not bad, "\n".join(bad)
    ordinary = [i for i, c in enumerate(cases) if c.kind in ("conv", "depthwise", "fc") and c.output[3] >= 4
                and len(host[i].out) >= 16 and "data uniform" in c.label and "wide" not in c.label]
    flat = [cases[i].label for i in ordinary if len(set(host[i].out)) < 3]
    assert len(flat) <= len(ordinary) // 20, "cases whose outputs are (almost) constant:\n" + "\n".join(flat)


def test_host_under_sanitizers_equals_host(runs: tuple[list[Case], dict]) -> None:
    cases, results = runs
    wrong = differences(cases, _lines(results, "host"), _lines(results, "host-asan"), "sanitized host")
    assert not wrong, "\n".join(wrong[:20])


@pytest.mark.parametrize("name", CORTEX_M)
def test_kernels_on_core_equal_host(name: str, runs: tuple[list[Case], dict]) -> None:
    cases, results = runs
    wrong = differences(cases, _lines(results, "host"), _lines(results, name), name)
    assert not wrong, (f"{len(wrong)} of {len(cases)} cases differ on {name} (KERNELS_CMSIS=PATH runs another copy "
                       f"of the library, e.g. HEAD's):\n" + "\n".join(wrong[:20]))


# ---- benchmark mode -------------------------------------------------------------------------------------------------
def bench(names: list[str], show_cases: bool) -> int:
    """Instructions per MAC (conv, depthwise, FC), per window tap (pooling) or per output element (add, mul,
    softmax), per kind of case."""
    cases = make_cases()
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "kernels_cases.h").write_text(cases_header(cases))
        results = build_and_run(["host", *names], Path(folder), cases)
    host = _lines(results, "host")
    status = 0
    for name in names:
        if isinstance(results[name], Exception):
            print(f"{name}: {results[name]}")
            status = 1
            continue
        lines = _lines(results, name)
        wrong = differences(cases, host, lines, name)
        status |= bool(wrong)
        print(f"{name} ({CMSIS}): {len(cases)} cases, {len(wrong)} differ from the host")
        for text in wrong[:10]:
            print("  DIFFERS", text)
        groups: dict[str, list[int]] = {}
        for i, c in enumerate(cases):
            groups.setdefault(c.group, []).append(i)
        print(f"  {'kind':32} {'cases':>5} {'work':>9} {'instructions':>12} {'per unit':>9}")
        for group, members in groups.items():
            work = sum(cases[i].work for i in members)
            count = sum(lines[i].instructions for i in members if i in lines)
            unit = {"conv": "MAC", "depthwise": "MAC", "fc": "MAC", "avgpool": "tap", "maxpool": "tap"}.get(
                cases[members[0]].kind, "element")
            print(f"  {group:32} {len(members):5} {work:9} {count:12} {count / max(work, 1):9.2f} /{unit}")
        if show_cases:
            print(f"  {'case':>4} {'instructions':>12} {'per unit':>8} {'scratch':>7}")
            for i, c in enumerate(cases):
                if i in lines:
                    got = lines[i]
                    print(f"  {i:4} {got.instructions:12} {got.instructions / max(c.work, 1):8.2f} {got.scratch:7} "
                          f"{c.label}")
    return status


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", nargs="+", metavar="TARGET", required=True, choices=CORTEX_M,
                        help="Cortex-M targets to measure")
    parser.add_argument("--cases", action="store_true", help="also list every case's count and scratch size")
    args = parser.parse_args(argv)
    return bench(args.bench, args.cases)


if __name__ == "__main__":
    sys.exit(main())
