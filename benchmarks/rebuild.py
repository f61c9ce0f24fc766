#!/usr/bin/env python3
"""Rebuild times of the SCons graph: a no-op build and single changes, for 1 and for 10 models.

    ./dev python benchmarks/rebuild.py [--runs 5] [--model digits_cnn] [--target host] [--keep DIR]

Builds temporary projects (this checkout's SConstruct and site_scons, plus 1 or 10 copies of one example model,
and the example models as they are) and times ``scons -Q`` after each change, median of ``--runs`` runs (each run
makes the change anew, alternating between two versions of the file, so every run rebuilds). Also counts the
nodes SCons rebuilt (``--debug=explain``, one extra run) and says which. The changes:

``no-op``                     nothing changed
``calib, no range moves``     calib.npz of one model with three samples repeated: min and max stay, so the
                              statistics are recomputed and the chain stops at ranges.json (early cutoff)
``model weight``              one weight of one model's file scaled: that model's whole chain runs again
``option (model.toml)``       one model's range method changed: ranges, tables and sources of that model
``on save: scons -Q <model>`` the calibration change again, building only that model's alias (what an editor's
                              on-save hook runs)

With ``--target host`` every build also compiles the host test binaries (the project copies then need cmsis/ and
targets/, which are copied too). Prints one table. Timings are wall-clock on this machine and include Python's start-up (about 0.1 s for SCons).
"""
from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "site_scons"))

from nnscons import overview  # noqa: E402


def make_project(directory: Path, model: str, copies: int) -> list[str]:
    """A project with ``copies`` copies of ``model`` (or every example model when copies is 0)."""
    shutil.copy(ROOT / "SConstruct", directory / "SConstruct")
    for item in ("site_scons", "cmsis", "targets"):
        shutil.copytree(ROOT / item, directory / item, ignore=shutil.ignore_patterns("__pycache__"))
    if copies == 0:
        names = sorted(p.name for p in (ROOT / "models").iterdir() if p.is_dir())
        for name in names:
            shutil.copytree(ROOT / "models" / name, directory / "models" / name)
        return names
    names = [model] if copies == 1 else [f"{model}_{i}" for i in range(copies)]
    for name in names:
        shutil.copytree(ROOT / "models" / model, directory / "models" / name)
    return names


SCONS_ARGS: list[str] = []    # for every run: target=... from --target


def scons(project: Path, *args: str) -> tuple[float, str]:
    args = (*SCONS_ARGS, *args)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "SCons", "-Q", *args], cwd=project, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"scons {' '.join(args)} failed in {project}:\n{result.stdout}\n{result.stderr}")
    return elapsed, result.stdout


class Toggle:
    """Two versions of a file; each call writes the other one."""

    def __init__(self, path: Path, make_other: Callable[[Path, Path], None]) -> None:
        self.path = path
        self.versions = [path.read_bytes()]
        other = path.with_name(path.name + ".other")
        make_other(path, other)
        self.versions.append(other.read_bytes())
        other.unlink()
        self.current = 0

    def __call__(self) -> None:
        self.current = 1 - self.current
        self.path.write_bytes(self.versions[self.current])


def repeat_calibration_samples(path: Path, out: Path) -> None:
    x = np.load(path)["x"]
    with open(out, "wb") as f:
        np.savez(f, x=np.concatenate([x, x[:3]]))


def scale_a_weight(path: Path, out: Path) -> None:
    import onnx
    from onnx import numpy_helper
    model = onnx.load(path)
    init = model.graph.initializer[0]
    values = numpy_helper.to_array(init).copy()
    values.flat[0] *= 1.5
    init.CopyFrom(numpy_helper.from_array(values, init.name))
    onnx.save(model, out)


def change_range_method(path: Path, out: Path) -> None:
    text = path.read_text() if path.exists() else ""
    text = re.sub(r'(?m)^range = .*$', "", text) + 'range = "percentile:99.99"\n'
    out.write_text(text)


def rebuilt_nodes(project: Path, *args: str) -> list[str]:
    _, stdout = scons(project, "--debug=explain", *args)
    return [Path(n).name for n in re.findall(r"(?:re)?building `([^']+)'", stdout)]


def measure(project: Path, change: Optional[Callable[[], None]], runs: int, *args: str) -> tuple[float, list[str]]:
    """Median seconds of ``runs`` builds after ``change``, and the nodes one more such build rebuilt."""
    times = []
    for _ in range(runs):
        if change:
            change()
        times.append(scons(project, *args)[0])
    if change:
        change()
    return statistics.median(times), rebuilt_nodes(project, *args)


def scenarios(project: Path, first: str) -> list[tuple[str, Optional[Callable[[], None]], tuple[str, ...]]]:
    folder = project / "models" / first
    model = next(p for p in folder.iterdir() if p.suffix in (".onnx", ".tflite"))
    toml = folder / "model.toml"
    if not toml.exists():
        toml.write_text("")
    rows: list[tuple[str, Optional[Callable[[], None]], tuple[str, ...]]] = [("no-op", None, ())]
    if (folder / "calib.npz").exists():
        calib = Toggle(folder / "calib.npz", repeat_calibration_samples)
        rows.append(("calib, no range moves", calib, ()))
    if model.suffix == ".onnx":
        rows.append(("model weight", Toggle(model, scale_a_weight), ()))
    rows.append(("option (model.toml)", Toggle(toml, change_range_method), ()))
    if (folder / "calib.npz").exists():
        rows.append(("on save: scons -Q <model>", calib, (first,)))
    return rows


def describe(nodes: list[str]) -> str:
    if not nodes:
        return "0"
    return f"{len(nodes)}: {', '.join(nodes)}" if len(nodes) <= 4 else f"{len(nodes)}"


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per change (median)")
    parser.add_argument("--model", default="digits_cnn", help="example model to copy (a float ONNX model with a "
                                                                "calibration set exercises every change)")
    parser.add_argument("--target", help="also build for this target (target=...)")
    parser.add_argument("--keep", help="build the projects in this folder and keep them")
    args = parser.parse_args(argv)
    if args.target:
        SCONS_ARGS.append(f"target={args.target}")
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="nnscons-rebuild-"))
    columns = {"1 model": 1, "10 models": 10, "example models": 0}
    results: dict[str, dict[str, str]] = {}
    for column, copies in columns.items():
        project = base / column.replace(" ", "_")
        project.mkdir(parents=True, exist_ok=True)
        names = make_project(project, args.model, copies)
        scons(project)                                  # the first build
        print(f"{column}: {len(names)} model(s) built in {project}", file=sys.stderr)
        first = names[0] if copies else args.model
        for label, change, extra in scenarios(project, first):
            seconds, nodes = measure(project, change, args.runs, *extra)
            results.setdefault(label, {})[column] = f"{seconds:.2f}"
            results[label][column + " nodes"] = describe(nodes)
    table = []
    for label, r in results.items():
        line = {"change": label}
        for col in columns:
            line[f"{col} (s)"] = r.get(col, "-")
            line[f"{col} actions"] = r.get(col + " nodes", "-")
        table.append(line)
    print(overview.format_table(table, list(table[0])))
    print(f"\nseconds: median of {args.runs} runs of scons -Q{' ' + SCONS_ARGS[0] if SCONS_ARGS else ''}; actions: "
          "the actions SCons re-ran (--debug=explain; one per multi-target action) for one more such change")
    if not args.keep:
        shutil.rmtree(base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
