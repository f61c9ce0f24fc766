"""SVDF (int8, an int16 or int8 state): the TFLite op imported as the IR's ``svdf``, its kernel parameters, and the
generated ``arm_svdf_state_s16_s8`` / ``arm_svdf_s8`` calls on a carried state bit-exact with TFLite Micro over a
stream of frames and from a reset, on single-op models built here (tests/tflite_lstm_builder.py)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from tflite_micro import runtime

import tflite_lstm_builder as lb
from nnscons import codegen
from nnscons.errors import NnsconsError
from nnscons.importers import import_model
from test_codegen import ARM_CPUS, CMSIS, STRICT, Network, cmsis_archive, qtable_for, run, write_sources  # noqa: F401


def test_svdf_imports_with_its_state(tmp_path: Path) -> None:
    path = tmp_path / "svdf.tflite"
    path.write_bytes(lb.svdf(2, 6, 8, 5, 2))
    graph, params = import_model(path)
    (op,) = graph.ops
    assert op.type == "svdf" and op.attrs["rank"] == 2 and op.attrs["memory"] == 5
    assert op.attrs["state"] == {"scale": 1 / 32, "zero_point": 0, "dtype": "int16"}
    tables, _ = qtable_for(graph, params)
    entry = tables["layers"][op.name]
    assert (entry["input_offset"], entry["output_offset"], entry["state_dtype"]) == (5, -3, "int16")


def test_a_state_off_zero_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "svdf.tflite"
    path.write_bytes(lb.svdf(1, 4, 4, 3, 1, wide=False, state_zero_point=-50))
    graph, params = import_model(path)
    with pytest.raises(NnsconsError, match="state has zero point -50") as info:
        qtable_for(graph, params)
    assert "\n" not in str(info.value)


def test_a_rank_that_does_not_divide_the_filters_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "svdf.tflite"
    path.write_bytes(lb.svdf(1, 4, 8, 3, 3))
    with pytest.raises(NnsconsError, match="rank 3 does not divide the 8 filters"):
        import_model(path)


@pytest.mark.slow
@pytest.mark.parametrize("shape", [dict(batch=2, features=6, filters=8, memory=5, rank=2),
                                   dict(batch=1, features=7, filters=6, memory=4, rank=1, wide=False, seed=4)],
                         ids=["int16-state-batch-2-rank-2", "int8-state"])
def test_generated_svdf_is_bit_exact_with_tflite_micro(shape: dict, tmp_path: Path,
                                                       cmsis_archive: Path) -> None:  # noqa: F811
    """40 frames as one stream (the state carried), then 10 frames each from a reset."""
    path = tmp_path / "svdf.tflite"
    path.write_bytes(lb.svdf(**shape))
    graph, params = import_model(path)
    tables, qparams = qtable_for(graph, params)
    files = codegen.generate("sv", graph, tables, qparams, "s8", "h")
    assert "#define SV_STATEFUL 1" in files["sv.h"]
    net = Network("sv", write_sources(files, tmp_path / "c"), cmsis_archive)
    interpreter = runtime.Interpreter.from_file(str(path))
    rng = np.random.default_rng(6)
    frames = [rng.integers(-128, 127, (shape["batch"], shape["features"]), endpoint=True).astype(np.int8)
              for _ in range(50)]
    net.info.reset()
    interpreter.reset()
    for k, x in enumerate(frames):
        if k >= 40:
            net.info.reset()
            interpreter.reset()
        interpreter.set_input(x, 0)
        interpreter.invoke()
        (y,) = net(x)
        np.testing.assert_array_equal(y.reshape(-1), interpreter.get_output(0).reshape(-1), err_msg=f"frame {k}")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")
@pytest.mark.parametrize("cpu", sorted(ARM_CPUS))
def test_generated_svdf_cross_compiles_without_warnings(cpu: str, tmp_path: Path) -> None:
    for k, wide in enumerate((True, False)):
        path = tmp_path / f"svdf{k}.tflite"
        path.write_bytes(lb.svdf(2, 6, 8, 5, 2, wide=wide))
        graph, params = import_model(path)
        tables, qparams = qtable_for(graph, params)
        directory = write_sources(codegen.generate(f"sv{k}", graph, tables, qparams, "s8", "h"), tmp_path / str(k))
        for unit in (f"sv{k}_model.c", f"sv{k}_weights.c"):
            run(["arm-none-eabi-gcc", *STRICT, *ARM_CPUS[cpu], "-I", str(CMSIS / "Include"), "-I", str(directory),
                 "-c", str(directory / unit), "-o", str(tmp_path / "out.o")])
