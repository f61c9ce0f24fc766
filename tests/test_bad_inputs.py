"""Bad input gets one line and a non-zero exit, never a traceback: calibration data that float32 flushes to zero,
a model.toml that is not UTF-8, a cache folder that cannot be made, a huge or garbage model file, a model too big
for its target."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from nnscons import cli, ranges, targets
from nnscons import options as nn_options
from nnscons.errors import NnsconsError
from nnscons.importers import MAX_MODEL_BYTES, import_model

ROOT = Path(__file__).resolve().parents[1]
FLOAT_TFLITE = ROOT / "models" / "hello_world_float" / "model.tflite"


# ---- calibration data in float32's subnormal range --------------------------------------------------------------
@pytest.mark.parametrize("kind, bits", [("asymmetric", 8), ("symmetric", 16), ("pow2", 8), ("pow2", 16)])
def test_ranges_of_subnormal_values_give_usable_scales(kind: str, bits: int) -> None:
    grid = ranges.Grid(kind, bits)
    for lo, hi in [(-1e-45, 1e-45), (0.0, 1e-45), (-1e-40, 0.0), (-1e-38, 1e-38), (0.0, 2e-38), (-1e-37, 3e-36),
                   (0.0, 1e-30), (-5e-324, 5e-324)]:
        scale, zero_point = grid.params(lo, hi)
        assert np.isfinite(scale) and scale >= ranges.MIN_SCALE and float(np.float32(scale)) >= ranges.MIN_SCALE
        assert grid.qmin <= zero_point <= grid.qmax
    assert grid.params(-1e-45, 1e-45) == grid.params(0.0, 0.0)     # float32 flushes them to zero: an all-zero range
    assert ranges.q_frac_bits(1e-45, bits) == bits - 1 and ranges.q_frac_bits(1e-37, bits) <= ranges.MAX_FRAC_BITS


@pytest.mark.parametrize("quant", ["int8", "int16x8", "q7", "q15"])
@pytest.mark.parametrize("range_method", ["minmax", "mse", "percentile:80"])
def test_subnormal_calibration_data_quantizes_cleanly(tmp_path: Path, quant: str, range_method: str) -> None:
    x = np.where(np.arange(16)[:, None] % 2 == 0, 1e-45, -1e-45).astype(np.float32)
    np.savez(tmp_path / "calib.npz", x=x)
    values = nn_options.resolve({}, {"quant": quant, "range": range_method})
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # no division by zero, no NaN cast on the way
        outputs = cli.generate(str(FLOAT_TFLITE), str(tmp_path / "out"), "hello", str(tmp_path / "calib.npz"),
                               values)
    assert [Path(p).name for p in outputs] == ["hello.h", "hello_model.c", "hello_weights.c"]


# ---- model.toml --------------------------------------------------------------------------------------------------
def test_a_model_toml_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    toml = tmp_path / "model.toml"
    toml.write_bytes(b'quant = "q\xff7"\n')
    with pytest.raises(NnsconsError, match=r"model\.toml: cannot read model options: not UTF-8 text \(byte 0xff"):
        nn_options.read_model_toml(toml)
    toml.write_bytes(b"\xfe\xff\x00q")
    with pytest.raises(NnsconsError, match="not UTF-8"):
        nn_options.read_model_toml(toml)


# ---- through SCons: the SConstruct reads such a tree without a traceback -----------------------------------------
def scons(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "SCons", "-Q", *args], cwd=project, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "SConstruct", tmp_path / "SConstruct")
    for item in ("site_scons", "targets", "cmsis"):
        os.symlink(ROOT / item, tmp_path / item)
    shutil.copytree(ROOT / "models" / "hello_world_int8", tmp_path / "models" / "hello_world_int8")
    return tmp_path


def assert_one_line(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode != 0, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "Traceback" not in result.stderr + result.stdout, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def test_scons_with_an_unusable_cache_folder_is_one_line(project: Path) -> None:
    assert_one_line(scons(project, "-n", "cache=/proc/nope"), "cache=/proc/nope: cannot use as the cache folder")
    (project / "afile").write_text("")
    assert_one_line(scons(project, "-n", f"cache={project / 'afile'}"), "afile: cannot use as the cache folder")


def test_scons_with_a_model_toml_that_is_not_utf8(project: Path) -> None:
    broken = project / "models" / "broken"
    shutil.copytree(project / "models" / "hello_world_int8", broken)
    (broken / "model.toml").write_bytes(b'quant = "\xff"\n')
    other = scons(project, "-n", "hello_world_int8")
    assert other.returncode == 0 and "Traceback" not in other.stderr + other.stdout, other.stderr
    result = scons(project, "broken")
    assert result.returncode != 0 and "UnicodeDecodeError" not in result.stderr + result.stdout
    assert "model.toml: cannot read model options: not UTF-8 text" in result.stderr, result.stderr


# ---- huge model files ----------------------------------------------------------------------------------------------
def sparse_file(path: Path, head: bytes, size: int) -> Path:
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(size)        # no disk used, but reading it whole would take gigabytes of memory
    return path


def test_a_huge_model_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    import nnscons.importers.onnx, nnscons.importers.tflite  # noqa: E401,F401  (their import is not the test)
    started = time.monotonic()
    with pytest.raises(NnsconsError, match=r"garbage\.tflite: not a TFLite model"):
        import_model(sparse_file(tmp_path / "garbage.tflite", b"GARBAGE!", 3 << 30))
    with pytest.raises(NnsconsError, match=r"big\.tflite: 3221225472 bytes, larger than any model"):
        import_model(sparse_file(tmp_path / "big.tflite", b"\x1c\0\0\0TFL3", 3 << 30))
    with pytest.raises(NnsconsError, match=r"big\.onnx: 3221225472 bytes, larger than any model"):
        import_model(sparse_file(tmp_path / "big.onnx", b"\x08\x07", 3 << 30))
    assert time.monotonic() - started < 5.0      # reading 3 GB would take far longer (and 3 GB of memory)
    assert MAX_MODEL_BYTES < 3 << 30


# ---- a model too big for its target ------------------------------------------------------------------------------
def test_a_model_too_big_for_the_target_is_refused_before_compiling(tmp_path: Path) -> None:
    """A 2100x2048 int8 fully connected layer: 4.3 MB of weights, more than the m4's 4 MB of flash, said from the
    quantization tables (before any C is compiled); the host (no [memory]) and a small model fit."""
    from tflite_builder import Quant, fully_connected
    weights = np.random.default_rng(0).integers(-127, 128, (2100, 2048), dtype=np.int8)
    model = tmp_path / "big.tflite"
    model.write_bytes(fully_connected([1, 2048], Quant([0.05], [0]), weights, 0.01, None, Quant([0.5], [3])))
    files = cli.run_chain("big", str(model), None, nn_options.resolve({}, {}), str(tmp_path / "work"),
                          until="quantize")
    need = targets.model_footprint(files["qparams_npz"])
    assert need.constants >= weights.size
    m4 = targets.load_target(str(ROOT / "targets" / "m4"))
    with pytest.raises(NnsconsError, match=r"^big: its constants take at least \d+ bytes, more than the 4194304 "
                                           r"bytes of flash \(code_size\) of target m4"):
        targets.check_fits(m4, {"big": need})
    targets.check_fits(targets.load_target(str(ROOT / "targets" / "host")), {"big": need})
    small = targets.Footprint(constants=30_000, arena=20_000)
    targets.check_fits(m4, {"kws": small})
    with pytest.raises(NnsconsError, match=r"^kws needs 4,194,304 B of arena, m4 has 4,194,304 B of RAM of which "
                                           r"4,177,920 B are free \(the stack 16,384 B\)$"):
        targets.check_fits(m4, {"kws": targets.Footprint(30_000, m4.memory.data_size)})
    with pytest.raises(NnsconsError, match="models a, b: their constants take at least 4200000 bytes together"):
        targets.check_fits(m4, {"a": targets.Footprint(2_100_000, 0), "b": targets.Footprint(2_100_000, 0)})


def test_footprint_reads_the_plan_and_the_constants(tmp_path: Path) -> None:
    folder = ROOT / "models" / "hello_world_int8"
    out = tmp_path / "out"
    cli.generate(str(folder / "model.tflite"), str(out), "hello", None, nn_options.resolve({}, {}), str(tmp_path / "w"))
    need = targets.model_footprint(tmp_path / "w" / "qparams.npz", tmp_path / "w" / "plan.json")
    plan = json.loads((tmp_path / "w" / "plan.json").read_text())
    assert need.arena == plan["activation_arena_size"] + min(plan["scratch"].values())
    assert 0 < need.constants <= (out / "hello_weights.c").stat().st_size


@pytest.mark.slow
def test_scons_refuses_a_model_too_big_for_the_target_before_compiling_it(project: Path) -> None:
    """The same check in the build: target=m4 fails at the model's fits step, in one line, and compiles none of
    its C; the other model of the tree still builds (scons -k)."""
    from tflite_builder import Quant, fully_connected
    weights = np.random.default_rng(0).integers(-127, 128, (2100, 2048), dtype=np.int8)
    (project / "models" / "big").mkdir()
    (project / "models" / "big" / "model.tflite").write_bytes(
        fully_connected([1, 2048], Quant([0.05], [0]), weights, 0.01, None, Quant([0.5], [3])))
    result = scons(project, "-k", "target=m4", "big", "hello_world_int8")
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.strip().startswith("scons: ***")]
    assert len(errors) == 1 and "big: its constants take at least" in errors[0] and "target m4" in errors[0]
    assert not list((project / "build" / "m4" / "big").glob("*.o"))
    assert (project / "build" / "m4" / "hello_world_int8" / "libhello_world_int8.a").is_file()
