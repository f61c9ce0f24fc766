"""Recurrent layers of our own on the Cortex-M cores: firmware built by an SConstruct outside the repository with the
nnscons tool (as another project would), run in QEMU on m0, m4 and m55, every output byte compared.

The LSTMs (built with tests/tflite_lstm_builder.py, quantized in the model: int8x8_16 time-major batch 2 with a cell
clip, int8x8_16 batch-major batch 3, int16x8_16 time-major batch 2) against TFLite Micro, reset before each input as
the firmware runner resets; the ONNX GRU (time-major batch 2, int8 from a calibration set) against the same
generated network built for the host.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tflite_micro import runtime

import tflite_lstm_builder as lb
from nnscons import firmware
from test_codegen import Network, cmsis_archive  # noqa: F401  (the fixture)
from test_recurrent_onnx import rnn_model

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                                 reason="needs arm-none-eabi-gcc and qemu-system-arm")]

ROOT = Path(__file__).resolve().parents[1]
CORES = ("m0", "m4", "m55")
SAMPLES = 6
LSTMS = {"lstm_tm_b2_clip": dict(batch=2, steps=5, features=6, units=7, time_major=True, cell_clip=0.5),
         "lstm_bm_b3": dict(batch=3, steps=4, features=5, units=6, seed=1),
         "lstm16_tm_b2": dict(batch=2, steps=5, features=6, units=7, time_major=True, int16=True)}

SCONSTRUCT = '''\
import os
env = Environment(tools=["default", "nnscons_tool"], toolpath=[os.path.join(ARGUMENTS["REPO"], "site_scons",
                                                                           "site_tools")],
                  ENV={"PATH": os.environ["PATH"]})
from nnscons import targets  # noqa: E402  (importable once the tool is loaded)

MODELS = %(models)r
chains = {name: env.NnsconsModel(name, model, calib=calib) for name, (model, calib) in MODELS.items()}
for core in %(cores)r:
    target = targets.load_target(os.path.join(ARGUMENTS["REPO"], "targets", core))
    tenv = env.NnsconsTargetEnv(target, opt="O2")
    out = os.path.join("build", core)
    kernels = tenv.NnsconsKernels(build_dir=os.path.join(out, "cmsis"))
    models = []
    for name, chain in chains.items():
        lib, _ = tenv.NnsconsLibrary(chain, build_dir=os.path.join(out, name))
        models.append(tenv.NnsconsFirmwareModel(name, lib, name + "_inputs.c", chain.header,
                                                chain.outputs["graph_json"]))
    image = tenv.NnsconsFirmware(target, out, models, kernels)
    Alias("run", tenv.NnsconsFirmwareRun(target, image, models, kernels, out, options={"opt": "O2"}))
'''


def random_inputs(shape: tuple[int, ...], dtype: np.dtype, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, (SAMPLES, *shape), endpoint=True).astype(dtype)


def embed(project: Path, name: str, samples: np.ndarray, output_bytes: int) -> None:
    (project / f"{name}_inputs.c").write_text(
        firmware.inputs_c_source(name, [samples.reshape(SAMPLES, -1)], output_bytes, "random"))


@pytest.fixture(scope="module")
def on_cores(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Builds and runs the image on every core; returns per model the expected outputs and each core's."""
    project = tmp_path_factory.mktemp("recurrent-on-cores")
    expected, models = {}, {}
    for k, (name, shape) in enumerate(LSTMS.items()):
        path = project / f"{name}.tflite"
        path.write_bytes(lb.lstm(**shape))
        interpreter = runtime.Interpreter.from_file(str(path))
        details = interpreter.get_input_details(0)
        xs = random_inputs(tuple(details["shape"]), np.dtype(details["dtype"]), seed=k)
        outs = []
        for x in xs:
            interpreter.reset()
            interpreter.set_input(x, 0)
            interpreter.invoke()
            outs.append(np.ascontiguousarray(interpreter.get_output(0)).tobytes().hex())
        expected[name] = outs
        embed(project, name, xs, len(bytes.fromhex(outs[0])))
        models[name] = (str(path), None)
    gru = project / "gru.onnx"
    rnn_model(gru, "GRU", attrs={"linear_before_reset": 1}, seed=11)
    calib = np.random.default_rng(5).uniform(-1, 1, (6, 2, 5)).astype(np.float32)
    np.savez(project / "gru_calib.npz", x=calib)
    models["gru_tm_b2"] = (str(gru), str(project / "gru_calib.npz"))
    (project / "SConstruct").write_text(SCONSTRUCT % {"models": models, "cores": CORES})
    # the GRU's inputs need its quantization: generate the chain first, then embed int8 inputs
    subprocess.run([sys.executable, "-m", "SCons", "-Q", f"REPO={ROOT}", "build/gru_tm_b2/qtable.json"],
                   cwd=project, check=True, capture_output=True, timeout=600)
    gru_x = random_inputs((6, 2, 5), np.dtype(np.int8), seed=9)
    embed(project, "gru_tm_b2", gru_x, 6 * 2 * 4)
    result = subprocess.run([sys.executable, "-m", "SCons", "-Q", "-j2", f"REPO={ROOT}", "run"], cwd=project,
                            capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    runs = {core: json.loads((project / "build" / core / "report.json").read_text())["models"] for core in CORES}
    return {"expected": expected, "runs": runs, "project": project, "gru_x": gru_x}


@pytest.mark.parametrize("core", CORES)
@pytest.mark.parametrize("name", list(LSTMS))
def test_own_lstms_are_bit_exact_with_tflite_micro_on_the_cores(on_cores: dict, name: str, core: str) -> None:
    expected = on_cores["expected"][name]
    assert len(set(expected)) == SAMPLES                # six different answers, each compared byte for byte
    assert on_cores["runs"][core][name]["outputs"] == expected


def test_the_gru_gives_the_same_bytes_on_every_core_as_on_the_host(on_cores: dict,
                                                                  cmsis_archive: Path) -> None:  # noqa: F811
    """The GRU has no TFLite Micro twin: its firmware outputs equal the host build of the same generated network."""
    project = on_cores["project"]
    net = Network("gru_tm_b2", project / "build" / "gru_tm_b2" / "src", cmsis_archive)
    host = []
    for x in on_cores["gru_x"]:
        net.info.reset()
        host.append(np.ascontiguousarray(net(x)[0]).tobytes().hex())
    assert len(set(host)) == SAMPLES
    for core in CORES:
        assert on_cores["runs"][core]["gru_tm_b2"]["outputs"] == host
