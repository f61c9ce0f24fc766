#!/usr/bin/env python3
"""Generate every example model's chain, and digits_cnn and mnist8_onnx under every scheme, range method and
kernel API, with the ``nnscons generate`` command into OUT (one folder per case, intermediates included).

    ./dev python tools/generate_all.py OUT [-j N]
    diff -r OUT_BEFORE OUT_AFTER          # a restructuring must leave every byte as it was

The cases cover what the example models do not: q7/q15 (s8 and legacy API), int16x8, every range method.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCHEMES = ("q7", "q15", "int8", "int16x8")
RANGES = ("minmax", "percentile:99.99", "percentile:80", "mse")
CONFIG_MODELS = ("digits_cnn", "mnist8_onnx")


def cases() -> list[tuple[str, list[str]]]:
    """(output folder, generate arguments) for every case."""
    found = []
    for folder in sorted((ROOT / "models").iterdir()):
        model = next((folder / f"model{e}" for e in (".tflite", ".onnx") if (folder / f"model{e}").is_file()), None)
        if model is None:
            continue
        calib = ["--calib", str(folder / "calib.npz")] if (folder / "calib.npz").is_file() else []
        found.append((folder.name, [str(model), "--name", folder.name, *calib]))
        if folder.name not in CONFIG_MODELS:
            continue
        configs = [(q, r, "s8", "input") for q in SCHEMES for r in RANGES]
        configs += [(q, "search", "s8", "input") for q in ("q7", "q15")]
        configs += [(q, r, "legacy", "input") for q in ("q7", "q15") for r in RANGES]
        configs += [(q, "minmax", "legacy", "calibrated") for q in ("q7", "q15")]
        for quant, rng, api, softmax in configs:
            flags = ["--quant", quant, "--range", rng, "--api", api, "--legacy_softmax", softmax]
            found.append((f"{folder.name}-{quant}-{rng.replace(':', '')}-{api}-{softmax}",
                          [str(model), "--name", folder.name, *calib, *flags]))
    return found


def run(out: Path, case: tuple[str, list[str]]) -> str:
    name, args = case
    work = out / name
    command = [sys.executable, "-m", "nnscons.cli", "generate", *args, "--out", str(work / "out"),
               "--work", str(work), "-q"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "site_scons")}
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    if result.returncode != 0:
        (work).mkdir(parents=True, exist_ok=True)
        (work / "FAILED").write_text(result.stderr)
        return f"{name}: FAILED {result.stderr.strip()}"
    return f"{name}: ok"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count())
    args = parser.parse_args()
    with ThreadPoolExecutor(args.jobs) as pool:
        for line in pool.map(lambda c: run(args.out.resolve(), c), cases()):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
