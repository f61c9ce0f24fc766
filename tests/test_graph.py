"""The SCons graph, seen through SCons' own ``--debug=explain``: what a change rebuilds, and what it does not.

Each test works on a private copy of the project (SConstruct, site_scons, one example model) so it can edit
sources, including the generator's own modules, without touching the checkout.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow   # SCons builds

ROOT = Path(__file__).resolve().parents[1]
MODEL = "digits_cnn"


def scons(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "SCons", "-Q", "--debug=explain", *args]
    result = subprocess.run(cmd, cwd=project, capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"scons {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def rebuilt(result: subprocess.CompletedProcess) -> set[str]:
    """Base names of the files SCons said it rebuilt or built."""
    names = re.findall(r"(?:re)?building `([^']+)'", result.stdout)
    return {os.path.basename(n) for n in names}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "SConstruct", tmp_path / "SConstruct")
    shutil.copytree(ROOT / "site_scons", tmp_path / "site_scons", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "models" / MODEL, tmp_path / "models" / MODEL)
    (tmp_path / "models" / MODEL / "model.toml").write_text('quant = "int8"\nrange = "minmax"\n')
    scons(tmp_path)
    return tmp_path


def test_first_build_makes_the_whole_chain(project: Path) -> None:
    out = project / "build" / MODEL
    for name in ("graph.json", "params.npz", "stats.npz", "ranges.json", "qtable.json", "qtable.txt", "qparams.npz"):
        assert (out / name).is_file(), name


def test_noop_build_runs_nothing(project: Path) -> None:
    result = scons(project)
    assert rebuilt(result) == set(), result.stdout
    assert "nnscons" not in result.stdout


def test_calibration_change_that_moves_no_range_stops_at_statistics(project: Path) -> None:
    calib = project / "models" / MODEL / "calib.npz"
    x = np.load(calib)["x"]
    np.savez(calib, x=np.concatenate([x, x[:3]]))  # repeated samples: same min and max everywhere
    result = scons(project)
    assert "stats.npz" in rebuilt(result)
    assert rebuilt(result) <= {"stats.npz", "ranges.json"}, result.stdout
    assert "qtable.json" not in rebuilt(result)


def test_calibration_change_that_moves_a_range_requantizes(project: Path) -> None:
    calib = project / "models" / MODEL / "calib.npz"
    x = np.load(calib)["x"]
    np.savez(calib, x=x * 2.0)
    assert {"stats.npz", "ranges.json", "qtable.json"} <= rebuilt(scons(project))


def test_range_method_change_rebuilds_tables_not_statistics(project: Path) -> None:
    result = scons(project, "range=percentile:99")
    assert {"ranges.json", "qtable.json"} <= rebuilt(result)
    assert "stats.npz" not in rebuilt(result) and "graph.json" not in rebuilt(result)


def test_scheme_change_rebuilds_tables_not_statistics(project: Path) -> None:
    result = scons(project, "quant=q7")
    assert "qtable.json" in rebuilt(result)
    assert "stats.npz" not in rebuilt(result)


def test_changed_model_rebuilds_its_chain(project: Path) -> None:
    import onnx
    from onnx import numpy_helper
    path = project / "models" / MODEL / "model.onnx"
    model = onnx.load(path)
    init = model.graph.initializer[0]
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * 1.5, init.name))
    onnx.save(model, path)
    assert {"graph.json", "stats.npz", "ranges.json", "qtable.json"} <= rebuilt(scons(project))


def test_edited_generator_module_regenerates(project: Path) -> None:
    module = project / "site_scons" / "nnscons" / "quantize" / "build.py"
    module.write_text(module.read_text() + "\n# an edit\n")
    result = scons(project)
    assert "qtable.json" in rebuilt(result)
    assert "build.py' changed" in result.stdout
    assert "stats.npz" not in rebuilt(result)


def test_edited_importer_reimports(project: Path) -> None:
    module = project / "site_scons" / "nnscons" / "importers" / "onnx" / "convert.py"
    module.write_text(module.read_text() + "\n# an edit\n")
    assert "graph.json" in rebuilt(scons(project))


def test_outputs_are_deterministic(project: Path) -> None:
    out = project / "build" / MODEL
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    shutil.rmtree(project / "build")
    for f in project.glob(".sconsign*"):
        f.unlink()
    scons(project)
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert before.keys() == after.keys()
    for name in before:
        assert before[name] == after[name], name


def test_unknown_option_is_one_clear_line(project: Path) -> None:
    result = scons(project, "qaunt=q7", check=False)
    assert result.returncode != 0
    assert "unknown option qaunt" in result.stderr and "Traceback" not in result.stderr


def test_bad_option_value_is_one_clear_line(project: Path) -> None:
    result = scons(project, "quant=q9", check=False)
    assert result.returncode != 0
    assert "quant='q9'" in result.stderr and "Traceback" not in result.stderr


def test_unknown_target_is_one_clear_line(project: Path) -> None:
    result = scons(project, "digts_cnn", check=False)
    assert result.returncode != 0
    assert "unknown target 'digts_cnn'" in result.stderr


def test_corrupt_model_fails_with_its_name_and_writes_nothing(project: Path) -> None:
    bad = project / "models" / "broken"
    bad.mkdir()
    (bad / "model.tflite").write_bytes(b"\x00" * 64 + os.urandom(512))
    result = scons(project, "broken", check=False)
    assert result.returncode != 0
    assert "models/broken/model.tflite" in result.stderr and "Traceback" not in result.stderr
    assert not (project / "build" / "broken" / "graph.json").exists()
    leftovers = list((project / "build" / "broken").glob("*")) if (project / "build" / "broken").exists() else []
    assert leftovers == []


def test_mismatched_calibration_set_names_the_file(project: Path) -> None:
    np.savez(project / "models" / MODEL / "calib.npz", x=np.zeros((4, 1, 9, 9), np.float32))
    result = scons(project, check=False)
    assert result.returncode != 0
    assert "calib.npz" in result.stderr and "shape" in result.stderr and "Traceback" not in result.stderr


def test_help_documents_every_option(project: Path) -> None:
    from nnscons import options
    result = subprocess.run([sys.executable, "-m", "SCons", "-h"], cwd=project, capture_output=True, text=True)
    for option in options.OPTIONS:
        assert option.name + ":" in result.stdout
    assert "models:" in result.stdout and "target:" in result.stdout


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_killed_build_then_reverted_option_rebuilds_what_the_kill_left(project: Path, tmp_path: Path) -> None:
    """Change an option, SIGKILL scons once a stage has replaced its output (before SCons records it, which it
    does at exit), revert the option: the next build must not take the new file for the recorded one."""
    import signal
    import time
    toml = project / "models" / MODEL / "model.toml"
    original = toml.read_text()
    ranges = project / "build" / MODEL / "ranges.json"
    toml.write_text(original.replace('range = "minmax"', 'range = "percentile:99.9"'))
    process = subprocess.Popen([sys.executable, "-m", "SCons", "-Q"], cwd=project, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    def replaced() -> bool:
        try:
            return "percentile" in ranges.read_text()
        except FileNotFoundError:   # SCons removes a target before its action runs
            return False

    deadline = time.monotonic() + 120
    while not replaced() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert "percentile" in ranges.read_text(), "the build ended before the ranges were replaced"
    toml.write_text(original)
    scons(project)
    clean = tmp_path / "clean"
    clean.mkdir()
    shutil.copy(project / "SConstruct", clean / "SConstruct")
    shutil.copytree(project / "site_scons", clean / "site_scons", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(project / "models", clean / "models")
    scons(clean)
    assert _tree(project / "build") == _tree(clean / "build")


def test_a_target_rewritten_behind_scons_is_rebuilt(project: Path) -> None:
    qtable = project / "build" / MODEL / "qtable.txt"
    good = qtable.read_bytes()
    qtable.write_bytes(good + b"edited\n")
    assert "qtable.txt" in rebuilt(scons(project))
    assert qtable.read_bytes() == good
