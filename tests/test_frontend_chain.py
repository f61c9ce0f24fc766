"""A model folder with an audio front end through the whole SCons build: raw audio in calib.npz / test.npz, the
features computed as a step of the chain (statistics on them), the front end's C generated and proven against
cmsisdsp, the network checked against float on the features and run in QEMU."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from test_frontend import SEED_MFCC, clips

pytestmark = pytest.mark.slow   # a whole SCons build

ROOT = Path(__file__).resolve().parents[1]
TOML = "quant = \"int8\"\n\n[frontend]\n" + "".join(
    f"{k} = {json.dumps(v)}\n" for k, v in SEED_MFCC.items())


def tiny_audio_model(path: Path) -> None:
    """features [1, 49, 10] -> flatten -> 3 classes (fixed random weights)."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(0, 0.02, (490, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(np.zeros(3, np.float32), "b"),
             numpy_helper.from_array(np.array([1, 490], np.int64), "flat")]
    nodes = [helper.make_node("Reshape", ["x", "flat"], ["f"]), helper.make_node("Gemm", ["f", "w", "b"], ["g"]),
             helper.make_node("Softmax", ["g"], ["y"], axis=1)]
    graph = helper.make_graph(nodes, "kws", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 49, 10])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)


def audio_project(directory: Path, toml: str = TOML) -> Path:
    """A copy of the project holding one audio model, models/kws_tiny (raw-audio sets, [frontend]); its folder."""
    shutil.copy(ROOT / "SConstruct", directory / "SConstruct")
    for item in ("site_scons", "cmsis", "targets"):
        shutil.copytree(ROOT / item, directory / item, ignore=shutil.ignore_patterns("__pycache__"))
    folder = directory / "models" / "kws_tiny"
    folder.mkdir(parents=True)
    tiny_audio_model(folder / "model.onnx")
    audio = clips()
    np.savez(folder / "calib.npz", x=audio)
    np.savez(folder / "test.npz", x=audio, y=np.arange(len(audio)) % 3)
    (folder / "model.toml").write_text(toml)
    return folder


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("audio-project")
    audio_project(directory)
    result = subprocess.run([sys.executable, "-m", "SCons", "-Q", "-j2", "target=host,m4", "summary"],
                            cwd=directory, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return directory


def test_features_are_a_step_of_the_chain_and_feed_the_statistics(project: Path) -> None:
    from nnscons.frontend import mfcc, parse_frontend
    build = project / "build" / "kws_tiny"
    with np.load(build / "features" / "calib.npz") as f:
        features = f["x"]
    expected = mfcc.real_features(parse_frontend(SEED_MFCC), mfcc.features(parse_frontend(SEED_MFCC), clips()))
    assert np.array_equal(features, expected.reshape(features.shape)) and features.shape[1:] == (49, 10)
    with np.load(build / "features" / "test-set.npz") as f:
        assert list(f["y"]) == [k % 3 for k in range(len(clips()))]
    assert (build / "stats.npz").is_file() and (build / "frontend" / "kws_tiny_frontend.c").is_file()


def test_the_front_ends_c_is_proven_in_the_build(project: Path) -> None:
    check = json.loads((project / "build" / "host" / "kws_tiny" / "frontend_check.json").read_text())
    assert check["bit_exact"] is True and check["frames"] == len(clips()) * 49 == check["equal_frames"]


def test_the_network_is_checked_on_the_features(project: Path) -> None:
    report = json.loads((project / "build" / "host" / "kws_tiny" / "report.json").read_text())
    assert report["passed"] is True


def test_the_host_test_binary_takes_raw_audio(project: Path, tmp_path: Path) -> None:
    """<name>_test links the front end: raw clips give the outputs their features give (the build proves it on
    the test set; here also on clips it never saw), and a clip of the wrong length is one line."""
    check = json.loads((project / "build" / "host" / "kws_tiny" / "frontend_check.json").read_text())
    assert check["network_on_audio"] == {"clips": len(clips()), "equal": True}
    from nnscons.frontend import mfcc, parse_frontend
    spec = parse_frontend(SEED_MFCC)
    audio = np.random.default_rng(7).integers(-3000, 3000, (3, 16000)).astype(np.int16)
    features = mfcc.real_features(spec, mfcc.features(spec, audio)).astype(np.float32)
    binary = str(project / "build" / "host" / "kws_tiny" / "kws_tiny_test")
    np.save(tmp_path / "audio.npy", audio)
    np.save(tmp_path / "features.npy", features)
    for name in ("audio", "features"):
        subprocess.run([binary, str(tmp_path / f"{name}.npy"), str(tmp_path / f"{name}_out.npy")], check=True)
    assert np.array_equal(np.load(tmp_path / "audio_out.npy"), np.load(tmp_path / "features_out.npy"))
    np.save(tmp_path / "short.npy", audio[:, :8000])
    result = subprocess.run([binary, str(tmp_path / "short.npy"), str(tmp_path / "y.npy")], capture_output=True,
                            text=True)
    assert result.returncode == 1 and not (tmp_path / "y.npy").exists()
    assert result.stderr.strip().endswith("clips of 8000 samples give 24 frames of 10 coefficients (240 values); "
                                          "the network input takes 490") and result.stderr.count("\n") == 1
    assert (project / "build" / "host" / "kws_tiny" / "kws_tiny_frontend_test").is_file()


def test_the_firmware_runs_front_end_and_network_on_raw_audio(project: Path) -> None:
    """The image embeds raw clips; front end + network in QEMU give the host binary's bytes on the same clips,
    and the run reports the front end's instructions and flash apart from the network's."""
    with np.load(project / "build" / "kws_tiny" / "firmware" / "inputs.npz") as f:
        embedded = f["x0"]
    assert embedded.dtype == np.int16 and embedded.shape == (4, 16000)
    assert np.array_equal(embedded, clips()[:4])
    fw = json.loads((project / "build" / "m4" / "kws_tiny" / "firmware_check.json").read_text())
    assert fw["identical"] is True and fw["inputs"] == 4
    run = json.loads((project / "build" / "m4" / "report.json").read_text())
    frontend = run["models"]["kws_tiny"]["frontend"]
    assert frontend["instructions"]["min"] > 1_000_000 > run["models"]["kws_tiny"]["instructions"]["max"]
    assert frontend["image"]["rodata"] > 4 * 490 and frontend["image"]["bss"] > 0 and run["dsp"]["code"] > 1000


def test_nnscons_generate_writes_the_front_end_too(project: Path, tmp_path: Path) -> None:
    """The CLI face writes the front end's C beside the network's, byte for byte what the SCons build made."""
    folder = project / "models" / "kws_tiny"
    result = subprocess.run([sys.executable, "-m", "nnscons", "generate", str(folder / "model.onnx"), "--calib",
                             str(folder / "calib.npz"), "--out", str(tmp_path), "--name", "kws_tiny"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    for name in ("kws_tiny_frontend.c", "kws_tiny_frontend.h"):
        assert (tmp_path / name).read_bytes() == (project / "build" / "kws_tiny" / "frontend" / name).read_bytes()
    assert (tmp_path / "kws_tiny.h").read_bytes() == (project / "build" / "kws_tiny" / "src" / "kws_tiny.h").read_bytes()
