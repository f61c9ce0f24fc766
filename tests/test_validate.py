"""``nnscons validate``: a float model and an int8 model pass, a broken quantization fails with status 1, the
thresholds hold, bad usage is status 2 and a missing file status 1 (one line each), and CMake's nnscons_validate()
is a CTest test that passes and fails with the model.

What "passes" means is in nnscons.validate: bit for bit with TFLite Micro for a .tflite carrying its own
quantization; top-1 agreement and SNR against the original model in LiteRT / onnxruntime for a network nnscons
quantized.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnscons import check, data, ir
from nnscons.validate.verdict import Thresholds, failures_of, table_rows

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "site_scons"
MODELS = ROOT / "models"

needs_firmware = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or
                                    shutil.which("qemu-system-arm") is None,
                                    reason="needs arm-none-eabi-gcc and qemu-system-arm")


def nnscons(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(SITE)}
    return subprocess.run([sys.executable, "-m", "nnscons", "validate", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=900)


def one_line_error(result: subprocess.CompletedProcess, status: int, *fragments: str) -> None:
    assert result.returncode == status, (result.stdout, result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def report_of(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


# ---- usage and files (quick) ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, fragment", [
    ((), "required: MODEL_DIR_OR_FILE"),
    ((MODELS / "digits_cnn", "--target", "m4,nowhere"), "unknown target 'nowhere'"),
    ((MODELS / "digits_cnn", "--min-agreement", "101"), "not a percentage"),
    ((MODELS / "digits_cnn", "--min-snr", "loud"), "not a number of dB"),
    ((MODELS / "digits_cnn", "--quant", "int7"), "--quant"),
    ((MODELS / "digits_cnn", "--no-such-flag"), "unrecognized arguments"),
])
def test_bad_usage_is_one_line_and_status_2(args: tuple, fragment: str) -> None:
    one_line_error(nnscons(*args), 2, fragment)


def test_missing_or_bad_files_are_one_line_and_status_1(tmp_path: Path) -> None:
    one_line_error(nnscons(tmp_path / "no_model"), 1, "no_model: no such file or folder")
    one_line_error(nnscons(MODELS / "digits_cnn", "--calib", tmp_path / "gone.npz"), 1, "gone.npz: no such file")
    one_line_error(nnscons(MODELS / "digits_cnn", "--test", tmp_path / "gone.npz"), 1, "gone.npz: no such file")
    one_line_error(nnscons(ROOT / "README.md"), 1, "README.md: not a model")
    empty = tmp_path / "empty_folder"
    empty.mkdir()
    one_line_error(nnscons(empty), 1, "empty_folder: a model folder needs exactly one of model.tflite, model.onnx")


def test_float_model_without_calibration_set_is_one_line(tmp_path: Path) -> None:
    model = tmp_path / "net.onnx"
    shutil.copy(MODELS / "digits_cnn" / "model.onnx", model)
    one_line_error(nnscons(model, "--quant", "int8", "--out", tmp_path / "out"), 1, "needs activation statistics")
    assert not (tmp_path / "out" / "report.json").exists()


# ---- the verdict (quick) --------------------------------------------------------------------------------------------
def _report(**extra: object) -> dict:
    base = {"compared_with": "onnxruntime 1.32.0 running model.onnx, 10 inputs of test.npz",
            "float": {"reference": "onnxruntime 1.32.0", "inputs": 10, "kind": "classifier", "snr_db": 20.0,
                      "max_abs_error": 0.1, "top1_agreement": 0.9, "accuracy_quantized": 0.8, "accuracy_float": 0.9},
            "sanitizers": {"inputs": 10, "clean": True, "same_outputs": True},
            "sizes": {"code": 1, "constants": 2, "compiler": "gcc", "target": "host", "arena": 3}, "firmware": {}}
    base.update(extra)
    return base


def test_a_quantization_nnscons_made_is_held_to_the_thresholds() -> None:
    loose = failures_of(table_rows(_report(), Thresholds(0.9, 20.0, None)))
    assert loose == []
    strict = failures_of(table_rows(_report(), Thresholds(0.95, 25.0, 0.85)))
    assert strict == ["top-1 agreement: 90.00% (< 95.00%)", "SNR: 20.00 dB (< 25 dB)",
                      "accuracy (labels): 80.00% (float 90.00%) (< 85.00%)"]


def test_a_tflm_checked_model_passes_by_bit_exactness_not_by_thresholds() -> None:
    exact = {"bit_exact": True, "inputs": 110, "mismatched_inputs": 0, "test_inputs": 10, "random_inputs": 100}
    rows = table_rows(_report(bit_exact=exact), Thresholds(1.0, 99.0, None))
    assert failures_of(rows) == []
    assert rows[0] == ("bit-exact with TFLite Micro", "yes: 0 of 110 inputs differ (10 test, 100 random)", "pass")
    wrong = {**exact, "bit_exact": False, "mismatched_inputs": 3}
    assert failures_of(table_rows(_report(bit_exact=wrong), Thresholds(0.0, 0.0, None))) == [
        "bit-exact with TFLite Micro: NO: 3 of 110 inputs differ (10 test, 100 random)"]


def test_nothing_to_compare_with_fails_and_a_firmware_mismatch_fails() -> None:
    bare = _report(compared_with=None)
    del bare["float"]
    assert failures_of(table_rows(bare, Thresholds(0.0, 0.0, None)))[0].startswith("compared with: nothing")
    firmware = {"m4": {"machine": "mps2-an386", "inputs": 16, "mismatched_inputs": 2, "identical": False,
                       "instructions": {"mean": 1000}, "flash": 10, "ram": 20,
                       "model": {"code": 1, "rodata": 2, "data": 0, "bss": 0}, "arena": 32, "stack": 100}}
    assert failures_of(table_rows(_report(firmware=firmware), Thresholds(0.0, 0.0, None))) == [
        "m4: firmware == host: 14 of 16 inferences byte for byte"]


@pytest.mark.parametrize("name", ["hello_world_float", "digits_cnn"])
def test_the_original_interpreter_agrees_with_the_float_reference(name: str, tmp_path: Path) -> None:
    """LiteRT (a float .tflite) and onnxruntime (an NCHW .onnx), their outputs in the IR layout: what validate
    measures the C against equals nnscons' reference interpreter (DESIGN.md: ~1e-5)."""
    from nnscons import reference
    from nnscons.importers import import_model
    folder = MODELS / name
    model = next(p for p in folder.iterdir() if p.suffix in (".tflite", ".onnx"))
    graph, params = import_model(str(model))
    test = data.load_test_set(folder / "test.npz", graph)
    interpreter, outputs = check.original_outputs(str(model), graph, test)
    assert interpreter.split()[0] == ("onnxruntime" if model.suffix == ".onnx" else "LiteRT")
    ours = reference.run(graph, params, test.inputs)
    for out in graph.outputs:
        assert outputs[out].shape == ours[out].shape
        np.testing.assert_allclose(outputs[out], ours[out], atol=1e-4, rtol=1e-4)


# ---- whole runs (slow: compilers, sanitizers, TFLite Micro, QEMU) ----------------------------------------------------
@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("validate") / "digits"
    return out, nnscons(MODELS / "digits_cnn", "--out", out)


@pytest.mark.slow
def test_a_float_model_passes_against_onnxruntime(digits: tuple[Path, subprocess.CompletedProcess]) -> None:
    out, result = digits
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    assert "onnxruntime" in result.stdout and "nnscons validate: PASS" in result.stdout
    report = report_of(out)
    assert report["passed"] and report["failures"] == [] and report["scheme"] == "int8"
    assert report["float"]["reference"].startswith("onnxruntime ")
    assert (out / "report.html").read_text().count("top-1 agreement") >= 1
    # the agreement in the table is the host binary's against onnxruntime, recomputed here from the two
    import onnxruntime
    graph = ir.Graph.from_json(json.loads((out / "gen" / "graph.json").read_text()))
    qtable = json.loads((out / "gen" / "qtable.json").read_text())
    test = np.load(MODELS / "digits_cnn" / "test.npz")
    session = onnxruntime.InferenceSession(str(MODELS / "digits_cnn" / "model.onnx"))
    name = session.get_inputs()[0].name
    floats = np.concatenate([session.run(None, {name: x[None]})[0] for x in test["x"]])
    x = data.load_test_set(MODELS / "digits_cnn" / "test.npz", graph).inputs[graph.inputs[0]]
    ours = check.run_binary(str(out / "host" / "digits_cnn_test"), x)
    agreement = float(np.mean(ours.reshape(len(x), -1).argmax(1) == floats.argmax(1)))
    assert report["float"]["top1_agreement"] == pytest.approx(agreement, abs=1e-6)
    assert agreement >= 0.95
    row = next(line for line in result.stdout.splitlines() if line.startswith("top-1 agreement"))
    assert f"{100 * agreement:.2f}%" in row and "pass" in row
    assert qtable["scheme"] == "int8"


@pytest.mark.slow
def test_a_second_run_reuses_the_folder_and_writes_the_same_report(
        digits: tuple[Path, subprocess.CompletedProcess]) -> None:
    out, first = digits
    before = (out / "report.json").read_bytes(), (out / "report.html").read_bytes()
    graph_time = (out / "gen" / "graph.json").stat().st_mtime_ns
    again = nnscons(MODELS / "digits_cnn", "--out", out)
    assert again.returncode == 0 and again.stdout == first.stdout
    assert ((out / "report.json").read_bytes(), (out / "report.html").read_bytes()) == before
    assert (out / "gen" / "graph.json").stat().st_mtime_ns == graph_time     # the import was not rerun


@pytest.mark.slow
@pytest.mark.parametrize("flags, failure", [
    (("--min-agreement", "100"), "top-1 agreement: 99."),
    (("--min-snr", "60"), "SNR: 40."),
    (("--min-accuracy", "99"), "accuracy (labels): 97.50%"),
])
def test_thresholds_decide_the_exit_status(digits: tuple[Path, subprocess.CompletedProcess],
                                           flags: tuple[str, str], failure: str) -> None:
    out, _ = digits
    result = nnscons(MODELS / "digits_cnn", "--out", out, *flags)
    assert result.returncode == 1, result.stdout + result.stderr
    assert failure in result.stdout.splitlines()[-1], result.stdout
    assert not report_of(out)["passed"]
    assert nnscons(MODELS / "digits_cnn", "--out", out).returncode == 0     # the defaults pass again


@pytest.mark.slow
def test_a_mismatched_calibration_set_breaks_the_quantization_and_fails(tmp_path: Path) -> None:
    """A real mistake: the calibration images scaled 1/16 (another preprocessing than the model's). The input's
    range is then 16 times too small, most pixels saturate, and the network disagrees with the float model."""
    calib = np.load(MODELS / "digits_cnn" / "calib.npz")
    wrong = tmp_path / "calib_scaled.npz"
    np.savez(wrong, x=(calib["x"] / 16).astype(np.float32))
    result = nnscons(MODELS / "digits_cnn", "--calib", wrong, "--out", tmp_path / "out")
    assert result.returncode == 1, result.stdout + result.stderr
    last = result.stdout.splitlines()[-1]
    assert last.startswith("nnscons validate: FAIL: top-1 agreement") and "(< 95.00%)" in last
    report = report_of(tmp_path / "out")
    assert not report["passed"] and report["float"]["top1_agreement"] < 0.9
    assert report["sanitizers"]["clean"]          # the C is sound: the quantization is what is wrong
    assert (tmp_path / "out" / "report.html").is_file()


@pytest.mark.slow
@needs_firmware
def test_an_int8_tflite_model_passes_bit_exact_on_the_host_and_in_qemu(tmp_path: Path) -> None:
    out = tmp_path / "hello"
    result = nnscons(MODELS / "hello_world_int8", "--target", "m4", "--out", out)
    assert result.returncode == 0, result.stdout + result.stderr
    report = report_of(out)
    assert report["bit_exact"]["bit_exact"] and report["bit_exact"]["inputs"] == 200
    assert report["scheme"] == "model" and "float" in report      # agreement with the float reference, reported
    m4 = report["firmware"]["m4"]
    assert m4["identical"] and m4["inputs"] == 16 and m4["mismatched_inputs"] == 0
    assert 1000 < m4["instructions"]["mean"] < 10_000
    # the firmware's report and its check are the firmware package's own files
    assert json.loads((out / "m4" / "firmware_check.json").read_text())["identical"]
    assert json.loads((out / "m4" / "report.json").read_text())["machine"] == "mps2-an386"
    for text in ("bit-exact with TFLite Micro", "m4: firmware == host", "m4: instructions per inference"):
        assert text in result.stdout


# ---- CMake: nnscons_validate() as a CTest test -----------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("cmake") is None or shutil.which("ctest") is None, reason="needs cmake and ctest")
def test_cmake_registers_a_ctest_test_that_passes_and_fails_with_the_model(tmp_path: Path) -> None:
    def run(*cmd: str | Path) -> subprocess.CompletedProcess:
        return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=900)

    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    app = tmp_path / "app"
    configured = run("cmake", "-S", ROOT / "examples" / "cmake_app", "-B", app, *generator,
                     f"-DNNSCONS_PYTHON={sys.executable}")
    assert configured.returncode == 0, configured.stderr
    passed = run("ctest", "--test-dir", app, "--output-on-failure", "-V")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "digits_validate" in passed.stdout and "nnscons validate: PASS" in passed.stdout
    assert "100% tests passed" in passed.stdout
    assert report_of(app / "nnscons-validate" / "digits_validate")["passed"]

    project = tmp_path / "broken"
    project.mkdir()
    np.savez(project / "scaled.npz", x=(np.load(MODELS / "digits_cnn" / "calib.npz")["x"] / 16).astype(np.float32))
    (project / "CMakeLists.txt").write_text(f"""cmake_minimum_required(VERSION 3.20)
project(broken NONE)
include("{(ROOT / 'cmake' / 'nnscons.cmake').as_posix()}")
enable_testing()
nnscons_validate(scaled_calibration MODEL "{(MODELS / 'digits_cnn').as_posix()}" CALIB scaled.npz QUANT int8)
nnscons_validate(strict MODEL "{(MODELS / 'digits_cnn' / 'model.onnx').as_posix()}"
                 CALIB "{(MODELS / 'digits_cnn' / 'calib.npz').as_posix()}"
                 TEST "{(MODELS / 'digits_cnn' / 'test.npz').as_posix()}" OPTIONS range=minmax
                 ARGS --min-agreement 100)
""")
    configured = run("cmake", "-S", project, "-B", project / "build", *generator, f"-DNNSCONS_PYTHON={sys.executable}")
    assert configured.returncode == 0, configured.stderr
    failed = run("ctest", "--test-dir", project / "build", "--output-on-failure")
    assert failed.returncode != 0
    assert "0% tests passed, 2 tests failed out of 2" in failed.stdout, failed.stdout
    assert "nnscons validate: FAIL: top-1 agreement" in failed.stdout


@pytest.mark.slow
def test_a_model_behind_an_audio_front_end_is_validated_with_it(tmp_path: Path) -> None:
    """Raw-audio sets and a [frontend]: the network is proven on the front end's features and the front end's C
    (its host runner, built with CMSIS-DSP) against cmsisdsp, frame by frame."""
    from test_frontend import clips
    from test_frontend_chain import TOML, tiny_audio_model
    folder = tmp_path / "kws_tiny"
    folder.mkdir()
    tiny_audio_model(folder / "model.onnx")
    audio = clips()
    np.savez(folder / "calib.npz", x=audio)
    np.savez(folder / "test.npz", x=audio, y=np.arange(len(audio)) % 3)
    (folder / "model.toml").write_text(TOML)
    result = nnscons(folder, "--out", tmp_path / "out", "--min-agreement", "0", "--min-snr", "0")
    assert result.returncode == 0, result.stdout + result.stderr
    report = report_of(tmp_path / "out")
    assert report["frontend_check"]["bit_exact"] is True
    assert report["frontend_check"]["frames"] == len(audio) * 49 == report["frontend_check"]["equal_frames"]
    assert "front end C == cmsisdsp" in result.stdout
