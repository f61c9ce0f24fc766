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
from conftest import SHARED
from nnscons.importers.tflite import decode as decode_tflite
from nnscons.importers.tflite import read_file as read_tflite
from test_codegen import ARM_CPUS, CMSIS, STRICT, Network, cmsis_archive, qtable_for, run, write_sources  # noqa: F401
from test_patches import Traced


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


def test_an_int16_state_off_zero_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "svdf.tflite"
    path.write_bytes(lb.svdf(1, 4, 4, 3, 1, state_zero_point=-50))
    graph, params = import_model(path)
    with pytest.raises(NnsconsError, match="int16 state has zero point -50") as info:
        qtable_for(graph, params)
    assert "\n" not in str(info.value)


def test_a_rank_that_does_not_divide_the_filters_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "svdf.tflite"
    path.write_bytes(lb.svdf(1, 4, 8, 3, 3))
    with pytest.raises(NnsconsError, match="rank 3 does not divide the 8 filters"):
        import_model(path)


@pytest.mark.slow
@pytest.mark.parametrize("shape", [dict(batch=2, features=6, filters=8, memory=5, rank=2),
                                   dict(batch=1, features=7, filters=6, memory=4, rank=1, wide=False, seed=4),
                                   dict(batch=2, features=5, filters=6, memory=3, rank=2, wide=False,
                                        state_zero_point=-50, seed=5)],
                         ids=["int16-state-batch-2-rank-2", "int8-state", "int8-state-zero-point-50"])
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
    for k, (wide, zero_point) in enumerate(((True, 0), (False, 0), (False, -50))):
        path = tmp_path / f"svdf{k}.tflite"
        path.write_bytes(lb.svdf(2, 6, 8, 5, 2, wide=wide, state_zero_point=zero_point))
        graph, params = import_model(path)
        tables, qparams = qtable_for(graph, params)
        directory = write_sources(codegen.generate(f"sv{k}", graph, tables, qparams, "s8", "h"), tmp_path / str(k))
        for unit in (f"sv{k}_model.c", f"sv{k}_weights.c"):
            run(["arm-none-eabi-gcc", *STRICT, *ARM_CPUS[cpu], "-I", str(CMSIS / "Include"), "-I", str(directory),
                 "-c", str(directory / unit), "-o", str(tmp_path / "out.o")])


def without_biases(path: Path) -> bytes:
    """The model with every SVDF and fully connected bias zeroed in place (each bias's bytes are unique in the
    file): keyword_scrambled_8bit's scrambled biases (near +-2^31) saturate every layer after the first, so its
    own outputs do not show the arithmetic; without them every layer's outputs vary."""
    data = bytearray(path.read_bytes())
    model = decode_tflite(str(path), read_tflite(str(path)))
    for op in model.ops:
        if op.name in ("SVDF", "FULLY_CONNECTED"):
            raw = bytes(model.tensors[op.inputs[3 if op.name == "SVDF" else 2]].data)
            at = data.find(raw)
            assert at > 0 and data.find(raw, at + 1) < 0
            data[at:at + len(raw)] = bytes(len(raw))
    return bytes(data)


@pytest.mark.slow
@pytest.mark.parametrize("biases", [True, False], ids=["stock", "without-biases"])
def test_svdf_int8_is_bit_exact_with_tflite_micro_layer_by_layer(biases: bool, tmp_path: Path,
                                                                 cmsis_archive: Path) -> None:  # noqa: F811
    """TFLite Micro's keyword_scrambled_8bit (int16 in, 7 SVDFs on int8 states at non-zero zero points, int32 out):
    every layer's output equal to TFLite Micro's tensor, on 120 random frames (the model's weights are scrambled,
    so is its input) of three loudnesses, as streams of 40 with a reset before each."""
    path = SHARED / "models" / "svdf_int8" / "model.tflite"
    if not biases:
        (tmp_path / "quiet.tflite").write_bytes(without_biases(path))
        path = tmp_path / "quiet.tflite"
    graph, params = import_model(path)
    tables, qparams = qtable_for(graph, params)
    files = codegen.generate("kws", graph, tables, qparams, "s8", "h")
    assert files["kws_model.c"].count("nnscons_svdf_state_offset_s8(") == 7
    net = Traced("kws", write_sources(files, tmp_path / "c"), cmsis_archive)
    interpreter = runtime.Interpreter.from_file(str(path),
                                                intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    tflite_ops = decode_tflite(str(path), read_tflite(str(path))).ops
    tensor_of = [tflite_ops[int(op.name.rsplit("_", 1)[1])].outputs[0] for op in graph.ops]
    rng = np.random.default_rng(8)
    distinct: list[set] = [set() for _ in graph.ops]
    for k in range(120):
        if k % 40 == 0:
            net.info.reset()
            interpreter.reset()
        x = rng.integers(-1, 1, (1, 96), endpoint=True) * rng.integers(0, (300, 3000, 32767)[k // 40], (1, 96))
        interpreter.set_input(x.astype(np.int16), 0)
        interpreter.invoke()
        ours = net.layers(x.astype(np.int16))
        for index, op in enumerate(graph.ops):
            expected = interpreter.GetTensor(tensor_of[index], 0)["tensor_data"]
            assert ours[index] == expected.tobytes(), f"frame {k}, layer {op.name}"
            distinct[index].add(ours[index])
    varied = [len(d) for d, op in zip(distinct, graph.ops) if op.type == "svdf"]
    assert min(varied) == (1 if biases else 120), varied
