"""A network with two inputs and two outputs end to end: models/two_io_onnx through `scons target=host,m4 check run
summary` on a private copy of the project, then what each proof made of it.

What it proves: the host test binary takes IN.npz (x0, x1) and writes OUT.npz (y0, y1); the check measures each
output by its kind (a classifier and a regression) and runs clean under the sanitizers; the diagnostics trace both
branches; the firmware's output bytes equal the host binary's; the experiments, `nnscons generate` and CMake
handle the network too.
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

from nnscons import check, data, experiments, fileio, hostbuild, ir, options, pipeline, project
from nnscons.pipeline.runner import run_steps

import tflite_builder as tb

pytestmark = pytest.mark.slow   # whole-model builds, sanitizers, QEMU

ROOT = Path(__file__).resolve().parents[1]
NAME = "two_io_onnx"
needs_toolchain = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or
                                     shutil.which("qemu-system-arm") is None,
                                     reason="needs arm-none-eabi-gcc and qemu-system-arm")


def scons(project_dir: Path, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "SCons", "-Q", "-j2", *args], cwd=project_dir,
                            capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, f"scons {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("two_io")
    for item in ("SConstruct", "cmsis", "models/two_io_onnx", "targets/host", "targets/m4"):
        copy = shutil.copytree if (ROOT / item).is_dir() else shutil.copy
        (root / item).parent.mkdir(parents=True, exist_ok=True)
        copy(ROOT / item, root / item)
    shutil.copytree(ROOT / "site_scons", root / "site_scons", ignore=shutil.ignore_patterns("__pycache__"))
    targets = "host,m4" if shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm") else "host"
    return root, scons(root, f"target={targets}", "check", "run", "summary")


def host_dir(root: Path) -> Path:
    return root / "build" / "host" / NAME


# ---- the check -------------------------------------------------------------------------------------------------------
def test_check_measures_each_output_by_its_kind(built: tuple[Path, str]) -> None:
    root, stdout = built
    report = fileio.read_json(host_dir(root) / "report.json")
    assert report["passed"] and report["sanitizers"] == {"inputs": 360, "clean": True, "same_outputs": True}
    classes, quadrants = report["float"]["outputs"]
    assert (classes["output"], classes["tensor"], classes["kind"]) == ("y0", "digit_probabilities", "classifier")
    assert classes["top1_agreement"] >= 0.95
    assert classes["accuracy_float"] == pytest.approx(0.927778, abs=1e-6)    # models/two_io_onnx/README.md
    assert classes["accuracy_float"] - classes["accuracy_quantized"] <= 0.02
    assert (quadrants["output"], quadrants["tensor"], quadrants["kind"]) == ("y1", "quadrant_means", "regression")
    assert "top1_agreement" not in quadrants and quadrants["snr_db"] > 30
    assert quadrants["target_rmse_quantized"] <= 1.1 * quadrants["target_rmse_float"]
    row = next(line for line in stdout.splitlines() if line.startswith(NAME) and "clean" in line)
    assert re.search(r"y0: \d+\.\d\d% top-1", row) and re.search(r"y1: rmse 0\.0\d+ \(float 0\.0\d+\)", row)
    assert "report.html" in os.listdir(host_dir(root))
    assert "digit_probabilities" in (host_dir(root) / "report.html").read_text(encoding="utf-8")


def test_diagnostics_trace_both_branches(built: tuple[Path, str]) -> None:
    root, _ = built
    result = fileio.read_json(host_dir(root) / "diagnostics.json")
    graph = ir.Graph.from_json(fileio.read_json(root / "build" / NAME / "graph.json"))
    layers = {e["layer"]: e for e in result["layers"]}
    assert result["samples"] == 360 and result["dataset"] == "test.npz"
    assert set(layers) == {op.name for op in graph.ops}
    profile_branch = next(op for op in graph.ops if op.inputs[0] == graph.inputs[1])
    assert layers[profile_branch.name]["input_snr_db"] > 40                          # x1 as the C quantizes it
    concat = next(e for e in result["layers"] if e["type"] == "concat")
    assert all(e["snr_db"] > 20 for e in result["layers"] if e["index"] < concat["index"])


# ---- the host binary's contract --------------------------------------------------------------------------------------
def test_host_binary_reads_and_writes_npz(built: tuple[Path, str], tmp_path: Path) -> None:
    root, _ = built
    binary = host_dir(root) / f"{NAME}_test"
    graph = ir.Graph.from_json(fileio.read_json(root / "build" / NAME / "graph.json"))
    test = data.load_test_set(root / "models" / NAME / "test.npz", graph)
    fileio.write_npz(tmp_path / "in.npz", {"x0": test.inputs[graph.inputs[0]][:20],
                                           "x1": test.inputs[graph.inputs[1]][:20]})
    result = subprocess.run([str(binary), "in.npz", "out.npz"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    out = fileio.read_npz(tmp_path / "out.npz")
    assert sorted(out) == ["y0", "y1"]
    assert out["y0"].shape == (20, 10) and out["y1"].shape == (20, 4) and out["y0"].dtype == np.int8
    ours = check.run_network(str(binary), [test.inputs[n][:20] for n in graph.inputs], 2)
    assert np.array_equal(ours[0], out["y0"]) and np.array_equal(ours[1], out["y1"])
    np.save(tmp_path / "in.npy", test.inputs[graph.inputs[0]][:20])
    refused = subprocess.run([str(binary), "in.npy", "out.npz"], cwd=tmp_path, capture_output=True, text=True)
    assert refused.returncode == 1
    assert refused.stderr.strip().endswith("in.npy: the network has 2 inputs: give an .npz holding x0, x1")


# ---- firmware ----------------------------------------------------------------------------------------------------------
@needs_toolchain
def test_firmware_outputs_equal_the_host_binarys(built: tuple[Path, str]) -> None:
    root, stdout = built
    assert re.search(rf"m4\s+{NAME}\s+16\s+identical", stdout), stdout
    run = fileio.read_json(root / "build" / "m4" / "report.json")["models"][NAME]
    assert run["inputs"] == 16 and all(len(o) == 2 * (10 + 4) for o in run["outputs"])   # y0 then y1, as hex
    inputs = fileio.read_npz(root / "build" / NAME / "firmware" / "inputs.npz")
    y0, y1 = check.run_network(str(host_dir(root) / f"{NAME}_test"), [inputs["x0"], inputs["x1"]], 2)
    assert run["outputs"] == [y0[i].tobytes().hex() + y1[i].tobytes().hex() for i in range(16)]
    assert fileio.read_json(root / "build" / "m4" / NAME / "firmware_check.json")["identical"]


# ---- experiments, the CLI and CMake --------------------------------------------------------------------------------------
def test_experiments_measure_each_output(built: tuple[Path, str], tmp_path: Path) -> None:
    root, _ = built
    folder = project.find_model(str(root / "models" / NAME))
    chain = root / "build" / NAME
    prepared = experiments.prepare(folder, tmp_path, str(chain / "graph.json"), str(chain / "params.npz"),
                                   str(chain / "stats.npz"))
    tools = experiments.default_tools(tmp_path, kernels=root / "build" / "host" / "cmsis" / "libcmsisnn.a")
    configs = [experiments.Config(q, "minmax") for q in ("int8", "int16x8", "q7", "q15")]
    table = experiments.run_experiments(prepared, tmp_path, configs, tools, jobs=2)
    assert table["float_accuracy"] == pytest.approx(0.927778, abs=1e-6)
    for row in table["rows"]:
        assert "error" not in row, row
        classes, quadrants = row["outputs"]
        assert classes["kind"] == "classifier" and classes["top1_agreement"] > 0.9 and classes["accuracy"] > 0.88
        assert quadrants["kind"] == "regression" and "top1_agreement" not in quadrants
        assert quadrants["snr_db"] > 25 and quadrants["target_rmse"] < 0.04
    int8 = table["rows"][0]["outputs"]
    report = fileio.read_json(host_dir(root) / "report.json")["float"]["outputs"]
    assert int8[0]["top1_agreement"] == pytest.approx(report[0]["top1_agreement"], abs=1e-6)   # the build's numbers
    text = experiments.format_experiments(table)
    assert re.search(r"int16x8-minmax-s8 .* y0: \d+\.\d\d%; y1: rmse 0\.0\d+", text)


def test_cli_generates_what_scons_generates(built: tuple[Path, str], tmp_path: Path) -> None:
    root, _ = built
    model = root / "models" / NAME
    env = dict(os.environ, PYTHONPATH=str(root / "site_scons"))
    subprocess.run([sys.executable, "-m", "nnscons", "generate", str(model / "model.onnx"), "--out",
                    str(tmp_path), "--name", NAME, "--calib", str(model / "calib.npz"), "--quiet"],
                   check=True, env=env, capture_output=True, cwd=tmp_path)
    scons_sources = sorted((root / "build" / NAME / "src").iterdir())
    assert [p.name for p in scons_sources] == sorted(p.name for p in tmp_path.iterdir() if p.is_file())
    for path in scons_sources:
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name


CMAKE_APP = """cmake_minimum_required(VERSION 3.20)
project(two_io_test C)
include("{cmake}/nnscons.cmake")
nnscons_add_cmsisnn(cmsisnn)
nnscons_add_model(two_io_onnx MODEL "{model}/model.onnx" CALIB "{model}/calib.npz" KERNELS cmsisnn)
add_executable(two_io_onnx_test "{runtime}/nnscons_test_main.c")
set_target_properties(two_io_onnx_test PROPERTIES C_STANDARD 99 C_STANDARD_REQUIRED ON)
target_compile_definitions(two_io_onnx_test PRIVATE NNSCONS_MODEL_INFO=two_io_onnx_info)
target_compile_options(two_io_onnx_test PRIVATE -include two_io_onnx.h -Wall -Wextra -Werror)
target_link_libraries(two_io_onnx_test PRIVATE two_io_onnx m)
"""


@pytest.mark.skipif(shutil.which("cmake") is None, reason="needs cmake")
def test_cmake_build_of_the_test_main_gives_the_same_outputs(built: tuple[Path, str], tmp_path: Path) -> None:
    """The model library made by nnscons_add_model, linked with the generic test main: its OUT.npz equals the SCons
    build's binary's."""
    root, _ = built
    source = tmp_path / "app"
    source.mkdir()
    (source / "CMakeLists.txt").write_text(CMAKE_APP.format(
        cmake=ROOT / "cmake", model=root / "models" / NAME, runtime=root / "site_scons" / "nnscons" / "runtime"))
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    for command in (["cmake", "-S", str(source), "-B", str(tmp_path / "build"), *generator,
                     f"-DNNSCONS_PYTHON={sys.executable}"], ["cmake", "--build", str(tmp_path / "build"), "-j2"]):
        result = subprocess.run(command, capture_output=True, text=True, timeout=600,
                                env=dict(os.environ, PYTHONPATH=str(root / "site_scons")))
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    inputs = fileio.read_npz(root / "models" / NAME / "test.npz")
    graph = ir.Graph.from_json(fileio.read_json(root / "build" / NAME / "graph.json"))
    x = [data.load_inputs(root / "models" / NAME / "test.npz", graph)[n] for n in graph.inputs]
    assert len(inputs["x0"]) == len(x[0])
    ours = check.run_network(str(tmp_path / "build" / f"{NAME}_test"), x, 2)
    theirs = check.run_network(str(host_dir(root) / f"{NAME}_test"), x, 2)
    assert all(np.array_equal(a, b) for a, b in zip(ours, theirs))


def test_an_int8_tflite_with_two_inputs_is_bit_exact_with_tflite_micro(built: tuple[Path, str],
                                                                         tmp_path: Path) -> None:
    """The model's own quantization: the check feeds TFLite Micro and the binary the same two inputs (the test
    set's, then random ones) and compares every byte."""
    root, _ = built
    model = tmp_path / "model.tflite"
    model.write_bytes(tb.add([1, 4, 4, 3], tb.Quant([0.05], [3]), tb.Quant([0.02], [-7]), tb.Quant([0.06], [1]),
                             activation="RELU"))
    rng = np.random.default_rng(5)
    test = {f"x{k}": rng.integers(-128, 128, (6, 4, 4, 3)).astype(np.int8) for k in range(2)}
    fileio.write_npz(tmp_path / "test.npz", test)
    steps = pipeline.model_steps("add2", str(model), None, options.resolve({}, {"quant": "model"}), str(tmp_path))
    run_steps(steps)
    files = pipeline.outputs_of(steps)
    binary = hostbuild.host_binary("add2", tmp_path / "src", tmp_path / "host",
                                   root / "build" / "host" / "cmsis" / "libcmsisnn.a", hostbuild.host_toolchain(),
                                   root / "cmsis" / "Include")
    report = check.check_model("add2", str(binary), str(binary), str(model), files["graph_json"],
                               files["params_npz"], files["qtable_json"], str(tmp_path / "test.npz"),
                               str(tmp_path / "report.json"))
    exact = report["bit_exact"]
    assert exact["bit_exact"] and exact["test_inputs"] == 6 and exact["inputs"] == 6 + check.RANDOM_INPUTS
    assert report["passed"] and report["float"]["kind"] == "regression"     # 48 values, no softmax, no labels
    a, b = (tb.float32(s) * (test[k].astype(np.float64) - z) for k, s, z in (("x0", 0.05, 3), ("x1", 0.02, -7)))
    (ours,) = check.run_network(str(binary), [test["x0"], test["x1"]], 1)
    expected = np.clip(np.round(np.maximum(a + b, 0) / tb.float32(0.06)) + 1, -128, 127)
    assert np.max(np.abs(ours.astype(np.int32) - expected)) <= 1                  # the add, up to rounding
