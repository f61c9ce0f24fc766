"""Seeded fuzzing of whole models: byte flips, truncations and duplicated chunks of an int8 .tflite, a float .tflite
and an .onnx model, each run through import, quantization (the int8 model's own parameters; for the float ones a
tiny synthetic calibration set and, in turn, int8, int16x8, q7 and q15) and code generation. Every mutation must
either generate C (every other one built is compiled with -Wall -Wextra -Werror) or be refused with one
NnsconsError line: no other exception, no crash, no hang (each case runs in a worker process under an alarm, so a
crash or a hang is seen, not suffered), and no Python warning printed on the way (a numpy overflow or NaN cast).
The counts (built / refused, by reason) are printed for the notes: pytest -s tests/test_fuzz.py
(NNSCONS_FUZZ_SEED and NNSCONS_FUZZ_MUTATIONS choose other mutations)."""
from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import subprocess
import time
import traceback
import warnings
from concurrent.futures import ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Optional

import numpy as np
import pytest

pytestmark = pytest.mark.slow   # 3000 models through the whole chain, about 280 compiled: about a minute on 2 cores

ROOT = Path(__file__).resolve().parents[1]
SEED = int(os.environ.get("NNSCONS_FUZZ_SEED", "20240611"))                # another seed: other mutations
MUTATIONS = int(os.environ.get("NNSCONS_FUZZ_MUTATIONS", "1000"))          # per model
COMPILE_EVERY = 2               # compile one built case in this many
SCHEMES = ("int8", "int16x8", "q7", "q15")   # a float model's, one per mutation in turn
CASE_TIMEOUT = 30               # seconds for one case (a hang in Python code)
RUN_TIMEOUT = 900               # seconds for all of them (a hang in native code, which the alarm cannot stop)
MODELS = {                      # kind -> (model file, calibration set shape or None: the model's own int8)
    "int8.tflite": (ROOT / "models" / "micro_speech_int8" / "model.tflite", None),
    "float.tflite": (ROOT / "models" / "hello_world_float" / "model.tflite", (6, 1)),
    "float.onnx": (ROOT / "models" / "mnist8_onnx" / "model.onnx", (3, 1, 28, 28)),
}
FLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic", f"-I{ROOT / 'cmsis' / 'Include'}"]


# ---- mutations --------------------------------------------------------------------------------------------------
def mutate(data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    """One mutation, by kind: flip 1-8 bytes, truncate, or copy a chunk somewhere else."""
    kind = ("flip", "truncate", "duplicate")[int(rng.integers(3))]
    out = bytearray(data)
    if kind == "flip":
        for _ in range(int(rng.integers(1, 9))):
            out[int(rng.integers(len(out)))] ^= int(rng.integers(1, 256))
    elif kind == "truncate":
        out = out[:int(rng.integers(len(out)))]
    else:
        start = int(rng.integers(len(out)))
        chunk = out[start:start + int(rng.integers(1, 257))]
        at = int(rng.integers(len(out) + 1))
        out[at:at] = chunk
    return kind, bytes(out)


# ---- one case, in a worker process --------------------------------------------------------------------------------
class _Hang(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _Hang()


def run_case(kind: str, index: int, data: bytes, calib: Optional[str], compile_c: bool, work: str
             ) -> tuple[str, str, list[str]]:
    """``(status, detail, python warnings)``: ``("built", "compiled" or "")``, ``("refused", message)`` or
    ``("failed", what happened)``."""
    import sys
    sys.path.insert(0, str(ROOT / "site_scons"))
    from nnscons import cli, options
    from nnscons.errors import NnsconsError

    folder = Path(work) / f"{kind}-{index}"
    shutil.rmtree(folder, ignore_errors=True)  # a case that ran when its pool's other worker died runs again
    folder.mkdir(parents=True)
    model = folder / f"model.{kind.split('.')[1]}"
    model.write_bytes(data)
    values = options.resolve({}, {"quant": "auto" if calib is None else SCHEMES[index % len(SCHEMES)]})
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_TIMEOUT)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            outputs = cli.generate(str(model), str(folder / "out"), "fuzz", calib, values, str(folder / "work"))
            status, detail = "built", ""
        except NnsconsError as e:
            status, detail = "refused", str(e)
        except _Hang:
            status, detail = "failed", f"no answer within {CASE_TIMEOUT} s"
        except Exception:
            status, detail = "failed", traceback.format_exc(limit=-3)
        finally:
            signal.alarm(0)
    printed = [f"{w.category.__name__}: {w.message} ({_where(w.filename)}:{w.lineno})" for w in caught]
    if status == "built" and compile_c:
        for c_file in outputs[1:]:
            result = subprocess.run(["gcc", *FLAGS, f"-I{folder / 'out'}", "-c", c_file, "-o", os.devnull],
                                    capture_output=True, text=True, timeout=120)
            if result.returncode != 0:
                return "failed", f"{Path(c_file).name} does not compile: {result.stderr.strip()[:500]}", printed
        detail = "compiled"
    return status, detail, printed


def _where(filename: str) -> str:
    path = Path(filename)
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


def reason(message: str, model: str) -> str:
    """A refusal's message without the file and the numbers, to count refusals by reason."""
    text = message.replace(model, "MODEL")
    text = re.sub(r"'[^']*'", "'..'", text)
    return re.sub(r"-?\d+(\.\d+)?(e[-+]?\d+)?", "N", text)[:110]


# ---- the run: once for the module's tests --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, int, str, tuple[str, str, list[str]]]]:
    """(model kind, index, mutation, result) of every case, the counts printed."""
    tmp = tmp_path_factory.mktemp("fuzz")
    rng = np.random.default_rng(SEED)
    cases = []
    for kind, (model, calib_shape) in MODELS.items():
        calib = None
        if calib_shape is not None:
            calib = str(tmp / f"calib-{kind}.npz")
            np.savez(calib, x=rng.normal(0, 1, calib_shape).astype(np.float32))
        data = model.read_bytes()
        for index in range(MUTATIONS):
            mutation, mutated = mutate(data, rng)
            cases.append((kind, index, mutation, mutated, calib, index % COMPILE_EVERY == 0))
    work = str(tmp / "work")
    results = _run_all([(kind, index, mutated, calib, compile_c)
                        for kind, index, _, mutated, calib, compile_c in cases], work)
    found = [(kind, index, mutation, results[kind, index]) for kind, index, mutation, *_ in cases]
    _print_counts(found, work)
    return found


def _run_all(cases: list[tuple], work: str) -> dict[tuple[str, int], tuple[str, str, list[str]]]:
    """Every case's result. A worker that dies takes the cases queued in its pool with it: those run again, one at
    a time once a round has had a death, where the first case that dies in order is the one that crashed."""
    results: dict[tuple[str, int], tuple[str, str, list[str]]] = {}
    deadline = time.monotonic() + RUN_TIMEOUT
    todo, workers = cases, 2
    while todo:
        broken = _run_round(todo, work, workers, deadline, results)
        if broken and workers == 1:
            results[broken[0][0], broken[0][1]] = ("failed", "the worker process died (a crash)", [])
            broken = broken[1:]
        todo, workers = broken, 1
    return results


def _run_round(cases: list[tuple], work: str, workers: int, deadline: float, results: dict) -> list[tuple]:
    """Run ``cases`` in a pool; fill ``results``; return the cases lost to a dead worker, in order."""
    pool = ProcessPoolExecutor(max_workers=workers)
    futures = {pool.submit(run_case, *case, work): case for case in cases}
    _, pending = wait(futures, timeout=max(1.0, deadline - time.monotonic()))
    broken = []
    for future, case in futures.items():
        if future in pending:
            what = "a hang, or queued behind one" if future.running() else "not run: the run took all its time"
            results[case[0], case[1]] = ("failed", f"no answer within the run's {RUN_TIMEOUT} s ({what})", [])
        elif isinstance(future.exception(), BrokenProcessPool):
            broken.append(case)
        else:
            results[case[0], case[1]] = future.result()
    if pending:                                 # hung workers: end them, or the interpreter waits for them
        for process in getattr(pool, "_processes", {}).values():
            process.kill()
    pool.shutdown(wait=not pending, cancel_futures=True)
    return broken


def _print_counts(found: list, work: str) -> None:
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    reasons: collections.Counter = collections.Counter()
    for kind, index, mutation, (status, detail, printed) in found:
        counts[kind].update([status, f"{status} after {mutation}"] + (["compiled"] if detail == "compiled" else [])
                            + (["with python warnings"] if printed else []))
        if status == "refused":
            reasons[reason(detail, str(Path(work) / f"{kind}-{index}" / f"model.{kind.split('.')[1]}"))] += 1
    print(f"\nfuzz (seed {SEED}, {MUTATIONS} mutations per model):")
    for kind, counter in counts.items():
        print(f"  {kind}: " + ", ".join(f"{k} {v}" for k, v in sorted(counter.items())))
    print("  refusals by reason:")
    for text, n in reasons.most_common():
        print(f"    {n:4d}  {text}")


def test_fuzzed_models_build_or_are_refused_in_one_line(fuzzed: list) -> None:
    """No traceback, crash, hang or C that does not compile; every refusal one NnsconsError line."""
    failures = [(k, i, m, d) for k, i, m, (status, d, _) in fuzzed if status == "failed"]
    failures += [(k, i, m, f"not one line: {d}") for k, i, m, (status, d, _) in fuzzed
                 if status == "refused" and ("\n" in d or "Traceback" in d)]
    assert not failures, "\n".join(f"{k} #{i} ({m}): {d}" for k, i, m, d in failures[:10])
    for kind in MODELS:                         # both paths exercised, and C compiled
        statuses = collections.Counter(r[0] for k, _, _, r in fuzzed if k == kind)
        assert statuses["built"] > 0 and statuses["refused"] > 0, (kind, statuses)
        assert any(r[1] == "compiled" for k, _, _, r in fuzzed if k == kind), kind


def test_fuzzed_models_print_no_python_warning(fuzzed: list) -> None:
    """Nothing but the one line: no numpy warning (an overflow, a NaN cast) printed on the way."""
    printed = [(k, i, m, w) for k, i, m, (_, _, warned) in fuzzed for w in warned]
    assert not printed, "\n".join(f"{k} #{i} ({m}): {w}" for k, i, m, w in printed[:10])
