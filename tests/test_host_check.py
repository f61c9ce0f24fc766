"""`scons target=host check` end to end, on a private copy of the project with every example model.

What it proves, from the reports the build writes (build/host/<name>/report.json):
* models carrying their own int8 quantization: every output byte equals TFLite Micro's, on the test set and on
  100 random inputs, and the test set's sample gives the class TFLite Micro gives (models/*/README.md);
* models quantized by nnscons from float: per output, by its kind, top-1 agreement with the float reference (a
  classifier) and SNR on the test set; the error against reference outputs where the test set has them;
* every model's test binary runs clean under AddressSanitizer and UndefinedBehaviorSanitizer;
* `cmsis_nn=PATH` pointed at the project's own cmsis/ gives the same reports as the default.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nnscons import check

pytestmark = pytest.mark.slow   # whole-model host builds under sanitizers

ROOT = Path(__file__).resolve().parents[1]
MODELS = sorted(p.name for p in (ROOT / "models").iterdir() if (p / "test.npz").is_file())

# Expected classes of the reference samples (what TFLite Micro answers; shared/models/README.md)
SAMPLE_CLASSES = {"kws_dscnn_int8": 5, "resnet8_int8": 0, "micro_speech_int8": 2}
# Floor for top-1 agreement of a network quantized by nnscons with its float reference
MIN_AGREEMENT = {"int8": 0.95, "int16x8": 0.97, "q7": 0.90, "q15": 0.97}
# resnet8's test images are photo patches, not CIFAR-10 (not available offline): many answers have low confidence,
# and MLPerf's own int8 ResNet-8 agrees with the float one on only 83.6% of them (models/resnet8_float/README.md).
MIN_AGREEMENT_OF_MODEL = {"resnet8_float": 0.83}


def scons(project: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "SCons", "-Q", "-j2", *args], cwd=project, capture_output=True,
                            text=True, timeout=1200)
    assert result.returncode == 0, f"scons {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("host")
    for item in ("SConstruct", "site_scons", "cmsis", "targets"):
        copy = shutil.copytree if (ROOT / item).is_dir() else shutil.copy
        copy(ROOT / item, root / item, **({"ignore": shutil.ignore_patterns("__pycache__")} if copy is shutil.copytree
                                          else {}))
    for name in MODELS:
        shutil.copytree(ROOT / "models" / name, root / "models" / name)
    return root


@pytest.fixture(scope="module")
def checked(project: Path) -> tuple[Path, str]:
    result = scons(project, "target=host", "check")
    return project, result.stdout


def report(project: Path, name: str) -> dict:
    return json.loads((project / "build" / "host" / name / "report.json").read_text())


def test_check_prints_a_table_of_every_model(checked: tuple[Path, str]) -> None:
    _, stdout = checked
    for name in MODELS:
        assert name in stdout
    assert "tflm bit-exact" in stdout


@pytest.mark.parametrize("name", MODELS)
def test_every_model_passes_its_check(checked: tuple[Path, str], name: str) -> None:
    r = report(checked[0], name)
    assert r["passed"], r
    assert r["sanitizers"]["clean"] and r["sanitizers"]["same_outputs"], r["sanitizers"]


@pytest.mark.parametrize("name", [m for m in MODELS if m.endswith("_int8")])
def test_model_quantized_networks_are_bit_exact_with_tflite_micro(checked: tuple[Path, str], name: str) -> None:
    exact = report(checked[0], name)["bit_exact"]
    assert exact["bit_exact"] and exact["mismatched_inputs"] == 0
    assert exact["random_inputs"] >= 100 and exact["inputs"] > exact["random_inputs"]


@pytest.mark.parametrize("name", sorted(SAMPLE_CLASSES))
def test_samples_give_the_reference_class(checked: tuple[Path, str], name: str) -> None:
    if name not in MODELS:
        pytest.skip(f"{name} is not among the example models")
    assert report(checked[0], name)["test_set_classes"][0] == SAMPLE_CLASSES[name]


@pytest.mark.parametrize("name", [m for m in MODELS if not m.endswith("_int8")])
def test_networks_quantized_from_float_agree_with_it(checked: tuple[Path, str], name: str) -> None:
    r = report(checked[0], name)
    measures = check.output_measures(r)          # one per output (two_io_onnx has two)
    assert measures and all(m["kind"] in check.KINDS for m in measures)
    for m in measures:
        if "top1_agreement" in m:
            assert m["kind"] == "classifier"
            assert m["top1_agreement"] >= MIN_AGREEMENT_OF_MODEL.get(name, MIN_AGREEMENT[r["scheme"]]), m
        assert m["snr_db"] is None or m["snr_db"] > (10.0 if name in MIN_AGREEMENT_OF_MODEL else 20.0), m


def test_outputs_are_measured_by_their_kind(checked: tuple[Path, str]) -> None:
    """Classifiers get top-1; the sine regressions get their error against the true sine (test.npz y), never a
    top-1; two_io_onnx one of each."""
    kinds = {name: [m["kind"] for m in check.output_measures(report(checked[0], name))] for name in MODELS}
    assert kinds["digits_cnn"] == kinds["mnist8_onnx"] == kinds["kws_dscnn_int8"] == ["classifier"]
    assert kinds["two_io_onnx"] == ["classifier", "regression"]
    for name in ("hello_world_float", "hello_world_int8"):
        (sine,) = check.output_measures(report(checked[0], name))
        assert sine["kind"] == "regression" and "top1_agreement" not in sine
        assert sine["target_rmse_quantized"] < 0.1 and sine["target_rmse_float"] < 0.1


def test_noop_check_rebuilds_nothing(checked: tuple[Path, str]) -> None:
    project, _ = checked
    result = scons(project, "target=host", "check", "--debug=explain")
    rebuilt = [line for line in result.stdout.splitlines()
               if "building `" in line and "`check' because AlwaysBuild()" not in line]  # the table is printed again
    assert rebuilt == []


def test_cmsis_nn_path_to_the_own_library_gives_the_same_results(checked: tuple[Path, str]) -> None:
    project, _ = checked
    before = {name: report(project, name) for name in MODELS}
    scons(project, "target=host", "check", f"cmsis_nn={project / 'cmsis'}")
    after = {name: report(project, name) for name in MODELS}
    assert after == before


def test_main_job_prints_one_table_with_accuracy_and_firmware_costs(checked: tuple[Path, str]) -> None:
    """The README's first command: every model checked on the host and run on an M4 in QEMU, one table."""
    project, _ = checked
    stdout = scons(project, "target=host,m4", "summary").stdout
    header = next(line for line in stdout.splitlines() if line.startswith("model "))
    for column in ("accuracy (float)", "vs float", "tflm exact", "instructions", "flash", "ram", "fw == host"):
        assert column in header
    lines = [line for line in stdout.splitlines() if line.split() and line.split()[0] in MODELS]
    assert sorted(line.split()[0] for line in lines) == MODELS
    at = header.index("fw == host")     # (an audio model's row goes on with its front end's figures)
    assert all(line[at:].split()[0] == "yes" for line in lines), stdout  # firmware output == the host binary's
