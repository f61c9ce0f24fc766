"""Editor workflow: ``scons compiledb`` (also without target=) and the on-save command ``scons -Q <model>``."""
from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow   # SCons builds

ROOT = Path(__file__).resolve().parents[1]
MODEL = "digits_cnn"


def scons(project: Path, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "SCons", "-Q", *args], cwd=project, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "SConstruct", tmp_path / "SConstruct")
    for item in ("site_scons", "cmsis", "targets"):
        shutil.copytree(ROOT / item, tmp_path / item, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "models" / MODEL, tmp_path / "models" / MODEL)
    return tmp_path


def test_compiledb_without_a_target_describes_the_host_build(project: Path) -> None:
    stdout = scons(project, "-j2", "compiledb")
    assert "CC " not in stdout                      # the database, not a build
    entries = json.loads((project / "compile_commands.json").read_text())
    assert entries == json.loads((project / "build" / "host" / "compile_commands.json").read_text())
    files = {e["file"] for e in entries}
    assert f"build/{MODEL}/src/{MODEL}_model.c" in files
    assert "cmsis/Source/ConvolutionFunctions/arm_convolve_s8.c" in files
    assert all(e["output"].startswith("build/host/") for e in entries)
    scons(project, MODEL)                            # the generated sources exist once the model is built
    entry = next(e for e in entries if e["file"] == f"build/{MODEL}/src/{MODEL}_model.c")
    command = shlex.split(entry["command"])
    assert command[0] == "gcc" and "-Werror" in command
    (Path(entry["directory"]) / entry["output"]).parent.mkdir(parents=True, exist_ok=True)
    compiled = subprocess.run(command, cwd=entry["directory"], capture_output=True, text=True)
    assert compiled.returncode == 0, compiled.stderr
    assert "compilation database" not in scons(project)     # a plain build does not rewrite it


def test_on_save_the_models_alias_rebuilds_only_what_changed(project: Path) -> None:
    scons(project)
    calib = project / "models" / MODEL / "calib.npz"
    x = np.load(calib)["x"]
    np.savez(calib, x=np.concatenate([x, x[:3]]))   # repeated samples: no range moves
    stdout = scons(project, "--debug=explain", MODEL)
    rebuilt = {Path(n).name for n in re.findall(r"(?:re)?building `([^']+)'", stdout)}
    assert rebuilt == {"stats.npz", "ranges.json"}, stdout    # the ranges node re-runs, is identical, and stops
    assert "rebuilding" not in scons(project, "--debug=explain", MODEL)
