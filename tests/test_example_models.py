"""The example models in models/: each folder follows the model-folder contract (DESIGN.md section 3) and its test
data is real: the float digits CNN reaches its accuracy under onnxruntime, and TFLite Micro gives the expected
answers for the int8 models."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import tflite
from tflite_micro import runtime as tflm

from conftest import SHARED

MODELS = Path(__file__).resolve().parents[1] / "models"
EXAMPLES = ["digits_cnn", "kws_dscnn_int8", "hello_world_int8"]
TFLITE_INT8 = 9  # tflite.TensorType.INT8


def model_file(folder: Path) -> Path:
    (found,) = [p for p in (folder / "model.tflite", folder / "model.onnx") if p.exists()]
    return found


def load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def model_input(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of the model's (single) input, read from the model file."""
    if path.suffix == ".onnx":
        graph = onnx.load(path).graph
        initializers = {t.name for t in graph.initializer}
        (inp,) = [i for i in graph.input if i.name not in initializers]
        tensor_type = inp.type.tensor_type
        shape = tuple(d.dim_value for d in tensor_type.shape.dim)
        return shape, np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type))
    subgraph = tflite.Model.GetRootAsModel(path.read_bytes(), 0).Subgraphs(0)
    assert subgraph.InputsLength() == 1
    tensor = subgraph.Tensors(subgraph.Inputs(0))
    assert tensor.Type() == TFLITE_INT8
    return tuple(int(d) for d in tensor.ShapeAsNumpy()), np.dtype(np.int8)


def tflm_outputs(path: Path, x: np.ndarray) -> np.ndarray:
    """TFLite Micro's outputs for each row of x (the model has batch size 1): [N, *output_shape[1:]]."""
    interpreter = tflm.Interpreter.from_file(str(path))
    outputs = []
    for row in x:
        interpreter.set_input(row[None], 0)
        interpreter.invoke()
        outputs.append(interpreter.get_output(0)[0].copy())
    return np.stack(outputs)


# ---------------------------------------------------------------------------------------------------------------
# The contract, for every example


@pytest.mark.parametrize("name", EXAMPLES)
def test_folder_holds_one_model_and_valid_options(name: str) -> None:
    folder = MODELS / name
    assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name)
    assert model_file(folder).stat().st_size > 0
    with open(folder / "model.toml", "rb") as f:
        options = tomllib.load(f)
    assert options["quant"] in {"model", "int8", "int16x8", "q7", "q15"}
    if options["quant"] == "model":
        assert not (folder / "calib.npz").exists()  # the model's own parameters are used: nothing to calibrate
    else:
        assert options["range"] == "minmax"
        assert (folder / "calib.npz").exists()


@pytest.mark.parametrize("name", EXAMPLES)
def test_npz_inputs_match_model_input(name: str) -> None:
    """x is [N, *input shape without its batch of 1] in the model's layout, float32 or the model's input dtype."""
    folder = MODELS / name
    shape, dtype = model_input(model_file(folder))
    assert shape[0] == 1
    for npz in ("test.npz", "calib.npz"):
        if (folder / npz).exists():
            x = load_npz(folder / npz)["x"]
            assert x.shape[1:] == shape[1:], npz
            assert x.dtype in (np.float32, dtype), npz
            assert len(x) > 0


@pytest.mark.parametrize("name", EXAMPLES)
def test_data_files_are_small(name: str) -> None:
    for path in (MODELS / name).iterdir():
        assert path.stat().st_size < 200_000, path


@pytest.mark.parametrize("name", ["kws_dscnn_int8", "hello_world_int8"])
def test_copied_models_carry_licence_and_match_originals(name: str) -> None:
    folder = MODELS / name
    assert "Apache License" in (folder / "LICENSE.md").read_text(encoding="utf-8")
    original = SHARED / "models" / name / "model.tflite"
    if not original.exists():
        pytest.skip("shared/models not beside the checkout")
    assert (folder / "model.tflite").read_bytes() == original.read_bytes()


# ---------------------------------------------------------------------------------------------------------------
# digits_cnn: a float NCHW ONNX model


def test_digits_npz_keys_dtypes_shapes() -> None:
    test = load_npz(MODELS / "digits_cnn" / "test.npz")
    calib = load_npz(MODELS / "digits_cnn" / "calib.npz")
    assert sorted(test) == ["x", "y"] and sorted(calib) == ["x"]
    assert test["x"].dtype == np.float32 and test["x"].shape == (360, 1, 8, 8)
    assert test["y"].dtype == np.int64 and test["y"].shape == (360,)
    assert set(test["y"].tolist()) == set(range(10))
    assert calib["x"].dtype == np.float32 and calib["x"].shape == (200, 1, 8, 8)
    for x in (test["x"], calib["x"]):
        assert x.min() >= 0.0 and x.max() <= 1.0


def test_digits_calibration_images_are_not_test_images() -> None:
    test_rows = {row.tobytes() for row in load_npz(MODELS / "digits_cnn" / "test.npz")["x"]}
    calib_rows = [row.tobytes() for row in load_npz(MODELS / "digits_cnn" / "calib.npz")["x"]]
    assert not test_rows.intersection(calib_rows)


def test_digits_model_is_nchw_conv_flatten_gemm_opset13() -> None:
    model = onnx.load(MODELS / "digits_cnn" / "model.onnx")
    onnx.checker.check_model(model, full_check=True)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 13)]
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("Conv") == 2 and ops.count("MaxPool") == 2
    # the flatten of a [1,C,H,W] map feeding a fully-connected layer is what needs the CHW -> HWC weight reorder
    assert ops[ops.index("Flatten") + 1] == "Gemm"
    assert model_input(MODELS / "digits_cnn" / "model.onnx")[0] == (1, 1, 8, 8)


def test_digits_onnxruntime_accuracy_on_held_out_set() -> None:
    test = load_npz(MODELS / "digits_cnn" / "test.npz")
    session = ort.InferenceSession(str(MODELS / "digits_cnn" / "model.onnx"), providers=["CPUExecutionProvider"])
    probs = np.concatenate([session.run(None, {"input": x[None]})[0] for x in test["x"]])
    assert probs.shape == (360, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)  # softmax output
    accuracy = float((probs.argmax(axis=1) == test["y"]).mean())
    assert accuracy >= 0.95, accuracy


# ---------------------------------------------------------------------------------------------------------------
# The int8 TFLite models, checked with TFLite Micro (the bit-exact reference)


def test_kws_npz_and_tflite_micro_answer() -> None:
    test = load_npz(MODELS / "kws_dscnn_int8" / "test.npz")
    assert sorted(test) == ["x", "y"]
    assert test["x"].dtype == np.int8 and test["x"].shape == (1, 49, 10, 1)
    assert test["y"].dtype == np.int64 and test["y"].tolist() == [5]
    scores = tflm_outputs(MODELS / "kws_dscnn_int8" / "model.tflite", test["x"])
    assert scores.shape == (1, 12) and scores.dtype == np.int8
    assert scores.argmax(axis=1).tolist() == test["y"].tolist()


def test_hello_world_npz_is_quantized_sine_and_model_fits_it() -> None:
    path = MODELS / "hello_world_int8" / "model.tflite"
    test = load_npz(MODELS / "hello_world_int8" / "test.npz")
    assert sorted(test) == ["x", "y"]
    x, y = test["x"], test["y"]
    assert x.dtype == np.int8 and x.shape == (100, 1)
    assert y.dtype == np.float32 and y.shape == (100, 1)

    subgraph = tflite.Model.GetRootAsModel(path.read_bytes(), 0).Subgraphs(0)
    in_q = subgraph.Tensors(subgraph.Inputs(0)).Quantization()
    out_q = subgraph.Tensors(subgraph.Outputs(0)).Quantization()
    angles = (x.astype(np.float64) - in_q.ZeroPointAsNumpy()[0]) * in_q.ScaleAsNumpy()[0]
    assert np.all(np.diff(angles[:, 0]) > 0) and angles[0, 0] == 0.0 and angles[-1, 0] > 6.2
    np.testing.assert_allclose(y, np.sin(angles), atol=1e-6)

    q_out = tflm_outputs(path, x)
    predicted = (q_out.astype(np.float64) - out_q.ZeroPointAsNumpy()[0]) * out_q.ScaleAsNumpy()[0]
    assert np.sqrt(np.mean((predicted - y) ** 2)) < 0.05
    assert np.abs(predicted - y).max() < 0.15
