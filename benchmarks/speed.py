#!/usr/bin/env python3
"""Speed of the generated networks on every Cortex-M target, from the firmware's own runs under QEMU.

    ./dev python benchmarks/speed.py                   # builds and runs m0, m4, m7, m33, m55 (scons ... run)
    ./dev python benchmarks/speed.py --targets m4,m55 --no-build    # only reads build/<target>/report.json
    ./dev python benchmarks/speed.py cmsis_nn=/path/to/CMSIS-NN     # extra scons arguments are passed on
    ./dev python benchmarks/speed.py --no-build --before ../old/build   # beside an earlier checkout's reports

Prints three tables from build/<target>/report.json (instruction counts are exact: QEMU -icount shift=0):
1. per model and target, instructions per inference and per multiply-accumulate (MACs of the conv, depthwise and
   fully connected layers, from the per-layer profile);
2. per target and kernel type, instructions per MAC (per output value for types without MACs) over all models,
   from the per-layer profile of each model's first inference;
3. the m4 and m55 figures beside Arm CMSIS-NN v7.0.0's on the same runner (../shared/reference/
   performance-anchors.md, section 1) with the ratio.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "site_scons"))

from nnscons import fileio, overview  # noqa: E402
from nnscons.firmware.profile import KERNEL_TYPES  # noqa: E402

TARGETS = ("m0", "m4", "m7", "m33", "m55")

# Arm CMSIS-NN v7.0.0 through the same generated code and runner, instructions per inference
# (../shared/reference/performance-anchors.md, section 1, measured December 2026)
ARM_V7 = {
    "hello_world_int8": {"m4": 2_600, "m55": 2_125},
    "digits_cnn": {"m4": 295_342, "m55": 81_312},
    "micro_speech_int8": {"m4": 1_494_390, "m55": 1_017_339},
    "mnist8_onnx": {"m4": 3_063_840, "m55": 946_500},
    "kws_dscnn_int8": {"m4": 7_694_150, "m55": 1_810_367},
    "resnet8_int8": {"m4": 29_859_248, "m55": 4_910_775},
}


def build(targets: list[str], scons_args: list[str]) -> None:
    command = [sys.executable, "-m", "SCons", "-Q", "-j2", f"target={','.join(targets)}", "run", *scons_args]
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def load_reports(build_dir: Path, targets: list[str]) -> dict[str, dict]:
    reports = {}
    for t in targets:
        path = build_dir / t / "report.json"
        if not path.is_file():
            raise SystemExit(f"speed.py: {path}: missing (build it: scons target={t} run)")
        reports[t] = fileio.read_json(path)
    return reports


def model_macs(model: dict) -> int:
    return sum(layer["macs"] for layer in model.get("layers", []))


def per_model_rows(reports: dict[str, dict], before: dict[str, dict]) -> list[dict]:
    names = sorted({name for r in reports.values() for name in r["models"]})
    rows = []
    for name in names:
        row: dict = {"model": name}
        for t, report in reports.items():
            model = report["models"].get(name)
            if model is None:
                continue
            instructions = model["instructions"]["mean"]
            macs = model_macs(model)
            row["MACs"] = f"{macs:,}"
            earlier = before.get(t, {}).get("models", {}).get(name)
            if earlier is not None:
                row[f"{t} before"] = f"{earlier['instructions']['mean']:,}"
            row[t] = f"{instructions:,}"
            row[f"{t}/MAC"] = f"{instructions / macs:.2f}" if macs else "-"
        rows.append(row)
    return rows


def per_kernel_rows(reports: dict[str, dict]) -> list[dict]:
    rows = []
    for t, report in reports.items():
        totals = {k: {"instructions": 0, "macs": 0, "outputs": 0, "layers": 0} for k in KERNEL_TYPES}
        for model in report["models"].values():
            for kind, figures in model.get("kernel_types", {}).items():
                for key in totals[kind]:
                    totals[kind][key] += figures.get(key, 0)
        row = {"target": t}
        for kind, figures in totals.items():
            if figures["layers"] == 0 or kind == "other":
                continue
            row[kind] = (f"{figures['instructions'] / figures['macs']:.2f}/MAC" if figures["macs"]
                         else f"{figures['instructions'] / figures['outputs']:.1f}/output" if figures["outputs"]
                         else f"{figures['instructions'] // figures['layers']:,}/layer")
        rows.append(row)
    return rows


def against_arm_rows(reports: dict[str, dict], before: dict[str, dict]) -> tuple[list[dict], dict[str, list[float]]]:
    rows, ratios = [], {}
    for name, arm in ARM_V7.items():
        row = {"model": name}
        for t in ("m4", "m55"):
            model = reports.get(t, {}).get("models", {}).get(name)
            if model is None:
                continue
            ours = model["instructions"]["mean"]
            ratio = ours / arm[t]
            ratios.setdefault(t, []).append(ratio)
            earlier = before.get(t, {}).get("models", {}).get(name)
            if earlier is not None:
                row[f"{t} before"] = f"{earlier['instructions']['mean']:,}"
            row[f"{t} nnscons"] = f"{ours:,}"
            row[f"{t} Arm v7"] = f"{arm[t]:,}"
            row[f"{t} ratio"] = f"{ratio:.2f}"
        rows.append(row)
    return rows, ratios


def columns_of(rows: list[dict]) -> list[str]:
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    return columns


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated targets (default: all five)")
    parser.add_argument("--no-build", action="store_true", help="only read the existing reports")
    parser.add_argument("--before", type=Path, help="the build folder of another checkout (an earlier commit) to "
                                                    "compare with: its <target>/report.json")
    args, scons_args = parser.parse_known_args()
    targets = [t for t in args.targets.split(",") if t]
    if not args.no_build:
        build(targets, scons_args)
    reports = load_reports(ROOT / "build", targets)
    before = load_reports(args.before, targets) if args.before else {}
    print("Instructions per inference and per MAC (first table), per kernel type (second), against Arm CMSIS-NN "
          "v7.0.0 (third)\n")
    rows = per_model_rows(reports, before)
    print(overview.format_table(rows, columns_of(rows)) + "\n")
    rows = per_kernel_rows(reports)
    print(overview.format_table(rows, columns_of(rows)) + "\n")
    if any("kernel_types" in m for r in before.values() for m in r["models"].values()):
        rows = per_kernel_rows(before)
        print("before:\n" + overview.format_table(rows, columns_of(rows)) + "\n")
    rows, ratios = against_arm_rows(reports, before)
    if ratios:
        print(overview.format_table(rows, columns_of(rows)))
        for t, values in ratios.items():
            print(f"{t}: median ratio to Arm v7 {statistics.median(values):.2f}, worst {max(values):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
