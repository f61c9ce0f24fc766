#!/usr/bin/env python3
"""Arena of each int8 model: nnscons' offline plan beside TensorFlow Lite Micro's arena for the same model.

    ./dev python benchmarks/arena.py

Builds the example models' sources (scons), reads build/<name>/plan.json (activations planned from tensor
lifetimes, plus the kernels' scratch for pure C, DSP and MVE builds), and asks TFLite Micro for its arena with
``Interpreter.print_allocations()`` ("head" is its activation plan, "total" adds its runtime structures).
Prints one table. TFLite Micro's figures are for this 64-bit host; on a 32-bit MCU its structures are smaller.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "site_scons"))

from nnscons import overview  # noqa: E402


def tflm_arena(model: Path) -> dict[str, int]:
    """TFLite Micro's arena figures, read from what print_allocations writes (C stdio)."""
    from tflite_micro import runtime
    interpreter = runtime.Interpreter.from_file(str(model))
    with tempfile.TemporaryFile() as capture:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(1), os.dup(2)]
        os.dup2(capture.fileno(), 1)
        os.dup2(capture.fileno(), 2)
        try:
            interpreter.print_allocations()
        finally:
            for fd, copy in zip((1, 2), saved):
                os.dup2(copy, fd)
                os.close(copy)
        capture.seek(0)
        text = capture.read().decode(errors="replace")
    figures = dict(re.findall(r"Arena allocation (total|head|tail) (\d+) bytes", text))
    return {k: int(v) for k, v in figures.items()}


def main() -> int:
    subprocess.run([sys.executable, "-m", "SCons", "-Q", "-j2", "models"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    rows = []
    for folder in sorted((ROOT / "models").iterdir()):
        plan_path = ROOT / "build" / folder.name / "plan.json"
        model = folder / "model.tflite"
        if not plan_path.is_file():
            continue
        plan = json.loads(plan_path.read_text())
        scratch = plan["scratch"]
        qtable = json.loads((ROOT / "build" / folder.name / "qtable.json").read_text())
        row = {"model": folder.name, "scheme": qtable["scheme"],
               "nnscons activations": plan["activation_arena_size"],
               "scratch c/dsp/mve": f"{scratch['c']}/{scratch['dsp']}/{scratch['mve']}",
               "nnscons arena (c)": plan["activation_arena_size"] + scratch["c"]}
        if qtable["scheme"] == "model" and model.is_file():
            tflm = tflm_arena(model)
            row["tflm head"] = tflm.get("head", "?")
            row["tflm total"] = tflm.get("total", "?")
            row["smaller"] = "yes" if row["nnscons arena (c)"] < tflm.get("total", 0) else "NO"
        rows.append(row)
    columns = ["model", "scheme", "nnscons activations", "scratch c/dsp/mve", "nnscons arena (c)", "tflm head",
               "tflm total", "smaller"]
    print(overview.format_table(rows, columns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
