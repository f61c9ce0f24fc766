#!/usr/bin/env python3
"""Arena of each int8 model: nnscons' offline plan beside TensorFlow Lite Micro's arena for the same model.

    ./dev python benchmarks/arena.py

Builds the example models' sources (scons), reads build/<name>/plan.json (activations planned from tensor
lifetimes; each layer's kernel scratch placed in free space, the arena growing past the activations only where
none is large enough) and prints each build's ARENA_SIZE: pure C (host, m0, m3), DSP (m4, m7, m33), Helium (m55),
beside TFLite Micro's arena from ``Interpreter.print_allocations()`` ("head" is its activation plan, "total" adds
its runtime structures; for this 64-bit host: on a 32-bit MCU its structures are smaller) and the ratios. A
second table plans the same tables three ways (nnscons.codegen, no build): overlap=off patches=off (whole tensors,
none written over another), the build's default overlap=on, and patches=auto (row streams, nnscons.patches).
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

from nnscons import codegen, fileio, ir, overview, patches  # noqa: E402

# (label, overlap, patches) of the second table
PLANS = (("whole", False, "off"), ("overlap", True, "off"), ("patches", True, "auto"))


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
        activations, scratch = plan["activation_arena_size"], plan["scratch"]
        qtable = json.loads((ROOT / "build" / folder.name / "qtable.json").read_text())
        arena = {features: activations + scratch[features] for features in ("c", "dsp", "mve")}
        row = {"model": folder.name, "scheme": qtable["scheme"], "activations": activations,
               "host/m0/m3 (c)": arena["c"], "m4/m7/m33 (dsp)": arena["dsp"], "m55 (mve)": arena["mve"]}
        if qtable["scheme"] == "model" and model.is_file():
            tflm = tflm_arena(model)
            head, total = tflm.get("head"), tflm.get("total")
            row.update({"tflm head": head or "?", "tflm total": total or "?"})
            if head:
                row["m4 / head"] = f"{arena['dsp'] / head:.2f}"
                row["m55 / head"] = f"{arena['mve'] / head:.2f}"
        rows.append(row)
    columns = ["model", "scheme", "activations", "host/m0/m3 (c)", "m4/m7/m33 (dsp)", "m55 (mve)", "tflm head",
               "tflm total", "m4 / head", "m55 / head"]
    print(overview.format_table(rows, columns))
    print()
    print(overview.format_table([plan_row(row) for row in rows], plan_columns()))
    return 0


def arena_sizes(name: str, overlap: bool, option: str) -> dict[str, int]:
    """ARENA_SIZE per feature set of the built model's tables planned with these options."""
    build = ROOT / "build" / name
    graph = ir.Graph.from_json(fileio.read_json(build / "graph.json"))
    files = codegen.generate(name, graph, fileio.read_json(build / "qtable.json"),
                             fileio.read_npz(build / "qparams.npz"), "s8", "arena", overlap=overlap,
                             bands=patches.parse(option))
    plan = json.loads(files["plan.json"])
    return {f: plan["activation_arena_size"] + plan["scratch"][f] for f in ("dsp", "mve")}


def plan_columns() -> list[str]:
    return ["model"] + [f"{target} {label}" for target in ("m4", "m55") for label, _, _ in PLANS] + \
        ["m4 patches / head", "m55 patches / head"]


def plan_row(row: dict) -> dict:
    result = {"model": row["model"]}
    sizes = {label: arena_sizes(row["model"], overlap, option) for label, overlap, option in PLANS}
    for target, features in (("m4", "dsp"), ("m55", "mve")):
        for label, _, _ in PLANS:
            result[f"{target} {label}"] = sizes[label][features]
        head = row.get("tflm head")
        if isinstance(head, int):
            result[f"{target} patches / head"] = f"{sizes['patches'][features] / head:.2f}"
    return result


if __name__ == "__main__":
    sys.exit(main())
