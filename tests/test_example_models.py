"""The example models in models/: each folder follows the model-folder contract (DESIGN.md section 3) and its test
data is real: the float classifiers reach their accuracy under onnxruntime, the float ResNet-8 classifies the
MLPerf reference image as the benchmark says, TFLite Micro gives the expected answers for the int8 models, and the
data-writing scripts reproduce the committed sets."""
from __future__ import annotations

import importlib.util
import re
from types import ModuleType
import tomllib
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import tflite
from ai_edge_litert.interpreter import Interpreter as LiteRTInterpreter
from tflite_micro import runtime as tflm

from conftest import SHARED
from nnscons.frontend import mfcc, read_frontend

MODELS = Path(__file__).resolve().parents[1] / "models"
EXAMPLES = ["digits_cnn", "kws_dscnn_int8", "hello_world_int8", "resnet8_int8", "resnet8_float", "mnist8_onnx",
            "micro_speech_int8", "hello_world_float", "mnist_lstm_int8", "svdf_int8", "mnist_lstm_float",
            "digits_lstm_onnx", "digits_gru_onnx", "kws_seed"]
# copied from shared/models (name -> the licence they carry); digits_cnn is the project's own
COPIED = {"kws_dscnn_int8": "Apache License", "hello_world_int8": "Apache License", "resnet8_int8": "Apache License",
          "resnet8_float": "Apache License", "micro_speech_int8": "Apache License",
          "hello_world_float": "Apache License", "mnist8_onnx": "MIT License", "mnist_lstm_int8": "Apache License",
          "svdf_int8": "Apache License", "mnist_lstm_float": "Apache License"}
# the float models nnscons quantizes from a calibration set
CALIBRATED = ["digits_cnn", "resnet8_float", "mnist8_onnx", "hello_world_float", "mnist_lstm_float", "digits_lstm_onnx",
              "digits_gru_onnx", "kws_seed"]
TFLITE_DTYPES = {0: np.dtype(np.float32), 9: np.dtype(np.int8), 7: np.dtype(np.int16)}  # tflite.TensorType FLOAT32, INT8, INT16


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
    return tuple(int(d) for d in tensor.ShapeAsNumpy()), TFLITE_DTYPES[tensor.Type()]


def tflm_outputs(path: Path, x: np.ndarray) -> np.ndarray:
    """TFLite Micro's outputs for each row of x (the model has batch size 1): [N, *output_shape[1:]]."""
    interpreter = tflm.Interpreter.from_file(str(path))
    outputs = []
    for row in x:
        interpreter.set_input(row[None], 0)
        interpreter.invoke()
        outputs.append(interpreter.get_output(0)[0].copy())
    return np.stack(outputs)


def litert_outputs(path: Path, x: np.ndarray) -> np.ndarray:
    """LiteRT's outputs of a float .tflite model for each row of x (batch size 1): [N, *output_shape[1:]]."""
    interpreter = LiteRTInterpreter(model_path=str(path))
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    outputs = []
    for row in x:
        interpreter.set_tensor(inp["index"], row[None])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(out["index"])[0].copy())
    return np.stack(outputs)


def onnxruntime_outputs(path: Path, x: np.ndarray) -> np.ndarray:
    """onnxruntime's outputs for each row of x (the model has batch size 1): [N, *output_shape[1:]]."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {input_name: row[None]})[0] for row in x])


def load_script(path: Path) -> ModuleType:
    """A data-writing script of a model folder as a module (its main() is not run)."""
    spec = importlib.util.spec_from_file_location(f"{path.parent.name}_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    spec = read_frontend(folder / "model.toml")
    for npz in ("test.npz", "calib.npz"):
        if (folder / npz).exists():
            x = load_npz(folder / npz)["x"]
            if spec is not None:          # raw audio, whose features the model reads
                assert x.dtype == np.int16 and x.ndim == 2, npz
                assert spec.frames(x.shape[1]) * spec.coefficients == int(np.prod(shape[1:])), npz
                continue
            assert x.shape[1:] == shape[1:], npz
            assert x.dtype in (np.float32, dtype), npz
            assert len(x) > 0


@pytest.mark.parametrize("name", EXAMPLES)
def test_data_files_are_small(name: str) -> None:
    """Data sets stay under 300 KB; model files are copies as they are (the float ResNet-8 is 318 KB)."""
    for path in (MODELS / name).iterdir():
        if path.is_dir():  # __pycache__ of a data script
            continue
        limit = 400_000 if path.stem == "model" and path.suffix in (".tflite", ".onnx") else 300_000
        assert path.stat().st_size < limit, path


@pytest.mark.parametrize("name", sorted(COPIED))
def test_copied_models_carry_licence_and_match_originals(name: str) -> None:
    folder = MODELS / name
    assert COPIED[name] in (folder / "LICENSE.md").read_text(encoding="utf-8")
    path = model_file(folder)
    original = SHARED / "models" / name / path.name
    if not original.exists():
        pytest.skip("shared/models not beside the checkout")
    assert path.read_bytes() == original.read_bytes()


@pytest.mark.parametrize("name", CALIBRATED)
def test_calibration_inputs_are_not_test_inputs(name: str) -> None:
    test_rows = {row.tobytes() for row in load_npz(MODELS / name / "test.npz")["x"]}
    calib_rows = [row.tobytes() for row in load_npz(MODELS / name / "calib.npz")["x"]]
    assert len(set(calib_rows)) > 1
    assert not test_rows.intersection(calib_rows)


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


def test_micro_speech_npz_and_tflite_micro_answer() -> None:
    test = load_npz(MODELS / "micro_speech_int8" / "test.npz")
    assert sorted(test) == ["x", "y"]
    assert test["x"].dtype == np.int8 and test["x"].shape == (1, 1960)
    assert test["y"].dtype == np.int64 and test["y"].tolist() == [2]  # "yes"
    scores = tflm_outputs(MODELS / "micro_speech_int8" / "model.tflite", test["x"])
    assert scores.shape == (1, 4) and scores.dtype == np.int8
    assert scores.argmax(axis=1).tolist() == [2]


def test_mnist_lstm_npz_is_drawn_digits_tflite_micro_reads() -> None:
    """scikit-learn's digits drawn 28x28 as make_test_npz.py draws them; TFLite Micro (reset before each image)
    classifies 70.5% right."""
    test = load_npz(MODELS / "mnist_lstm_int8" / "test.npz")
    assert sorted(test) == ["x", "y"]
    assert test["x"].dtype == np.int8 and test["x"].shape == (200, 28, 28)
    assert test["y"].dtype == np.int64 and set(test["y"].tolist()) == set(range(10))
    from sklearn.datasets import load_digits
    script = load_script(MODELS / "mnist_lstm_int8" / "make_test_npz.py")
    first = script.draw(load_digits().images[0])
    np.testing.assert_array_equal(np.clip(np.round(first * 255) - 128, -128, 127).astype(np.int8), test["x"][0])
    interpreter = tflm.Interpreter.from_file(str(MODELS / "mnist_lstm_int8" / "model.tflite"))
    right = 0
    for x, y in zip(test["x"], test["y"]):
        interpreter.reset()
        interpreter.set_input(x[None], 0)
        interpreter.invoke()
        right += int(np.argmax(interpreter.get_output(0)) == y)
    assert right == 141


# ---------------------------------------------------------------------------------------------------------------
# ResNet-8: the int8 model (TFLite Micro) and its float twin (LiteRT) on the same images


def test_resnet8_int8_npz_is_reference_image_then_float_twins_photos() -> None:
    test = load_npz(MODELS / "resnet8_int8" / "test.npz")
    assert sorted(test) == ["x"]  # no CIFAR-10 labels for these photos
    x = test["x"]
    assert x.dtype == np.int8 and x.shape == (61, 32, 32, 3)
    sample = SHARED / "models" / "resnet8_int8" / "sample_input.npy"
    if sample.exists():
        np.testing.assert_array_equal(x[0], np.load(sample).reshape(32, 32, 3))
    # input scale 1, zero point -128: the int8 images are the float model's pixel values - 128
    pixels = load_npz(MODELS / "resnet8_float" / "test.npz")["x"]
    np.testing.assert_array_equal(x.astype(np.float32) + 128, pixels)


def test_resnet8_int8_tflite_micro_classifies_reference_image_as_0() -> None:
    x = load_npz(MODELS / "resnet8_int8" / "test.npz")["x"]
    scores = tflm_outputs(MODELS / "resnet8_int8" / "model.tflite", x[:1])
    assert scores.shape == (1, 10) and scores.dtype == np.int8
    assert int(scores[0].argmax()) == 0


def test_resnet8_float_npz_keys_dtypes_shapes() -> None:
    test = load_npz(MODELS / "resnet8_float" / "test.npz")
    calib = load_npz(MODELS / "resnet8_float" / "calib.npz")
    assert sorted(test) == ["x"] and sorted(calib) == ["x"]
    assert test["x"].dtype == np.float32 and test["x"].shape == (61, 32, 32, 3)
    assert calib["x"].dtype == np.float32 and calib["x"].shape == (60, 32, 32, 3)
    for x in (test["x"], calib["x"]):  # raw pixel values, as the int8 twin's input quantization implies
        assert x.min() >= 0.0 and x.max() <= 255.0 and np.array_equal(x, np.round(x))
    assert calib["x"].max() > 200 and calib["x"].std() > 20  # real photos, not a blank image
    assert not test["x"][0].any()  # MLPerf's reference input: an all-black image


def test_resnet8_float_litert_classifies_reference_image_as_0_and_agrees_with_int8() -> None:
    x = load_npz(MODELS / "resnet8_float" / "test.npz")["x"]
    probs = litert_outputs(MODELS / "resnet8_float" / "model.tflite", x)
    assert probs.shape == (61, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)  # softmax output
    assert int(probs[0].argmax()) == 0
    # the 0..255 input convention: TFLite Micro on the int8 twin mostly agrees (85% measured; 25% with 0..1 inputs)
    int8_x = load_npz(MODELS / "resnet8_int8" / "test.npz")["x"]
    int8_scores = tflm_outputs(MODELS / "resnet8_int8" / "model.tflite", int8_x)
    assert np.mean(probs.argmax(axis=1) == int8_scores.argmax(axis=1)) >= 0.8


def test_resnet8_float_make_data_reproduces_the_sets() -> None:
    script = load_script(MODELS / "resnet8_float" / "make_data.py")
    calib, test = script.photo_cells()
    np.testing.assert_array_equal(load_npz(MODELS / "resnet8_float" / "calib.npz")["x"], calib.astype(np.float32))
    np.testing.assert_array_equal(load_npz(MODELS / "resnet8_float" / "test.npz")["x"][1:], test.astype(np.float32))


# ---------------------------------------------------------------------------------------------------------------
# mnist8_onnx: the ONNX model zoo's float MNIST CNN on scikit-learn digits framed like MNIST


def test_mnist8_npz_keys_dtypes_shapes() -> None:
    test = load_npz(MODELS / "mnist8_onnx" / "test.npz")
    calib = load_npz(MODELS / "mnist8_onnx" / "calib.npz")
    assert sorted(test) == ["x", "y"] and sorted(calib) == ["x"]
    assert test["x"].dtype == np.float32 and test["x"].shape == (500, 1, 28, 28)
    assert test["y"].dtype == np.int64 and test["y"].shape == (500,)
    assert set(test["y"].tolist()) == set(range(10))
    assert calib["x"].dtype == np.float32 and calib["x"].shape == (200, 1, 28, 28)
    ys, xs = np.mgrid[:28, :28]
    for x in (test["x"], calib["x"]):  # MNIST framing: 0..255, inside a 20x20 box, centre of mass at the centre
        assert x.min() == 0.0 and x.max() == 255.0 and np.array_equal(x, np.round(x))
        images = x[:, 0]
        assert all(np.count_nonzero(i.any(axis=1)) <= 20 and np.count_nonzero(i.any(axis=0)) <= 20 for i in images)
        mass = images.sum(axis=(1, 2))
        for centre in ((images * ys).sum(axis=(1, 2)) / mass, (images * xs).sum(axis=(1, 2)) / mass):
            assert np.all(np.abs(centre - 13.5) <= 1.0)


def test_mnist8_onnxruntime_accuracy_on_test_set() -> None:
    test = load_npz(MODELS / "mnist8_onnx" / "test.npz")
    logits = onnxruntime_outputs(MODELS / "mnist8_onnx" / "model.onnx", test["x"])
    assert logits.shape == (500, 10)
    accuracy = float(np.mean(logits.argmax(axis=1) == test["y"]))
    assert accuracy >= 0.90, accuracy  # 0.918 measured; chance is 0.1


def test_mnist8_make_data_reproduces_the_sets() -> None:
    calib_x, test_x, test_y = load_script(MODELS / "mnist8_onnx" / "make_data.py").make_sets()
    test = load_npz(MODELS / "mnist8_onnx" / "test.npz")
    np.testing.assert_array_equal(load_npz(MODELS / "mnist8_onnx" / "calib.npz")["x"], calib_x)
    np.testing.assert_array_equal(test["x"], test_x)
    np.testing.assert_array_equal(test["y"], test_y)


# ---------------------------------------------------------------------------------------------------------------
# hello_world_float: the float sine model


def test_hello_world_float_npz_and_model_fits_sine() -> None:
    test = load_npz(MODELS / "hello_world_float" / "test.npz")
    calib = load_npz(MODELS / "hello_world_float" / "calib.npz")
    assert sorted(test) == ["x", "y"] and sorted(calib) == ["x"]
    x, y = test["x"], test["y"]
    assert x.dtype == np.float32 and x.shape == (100, 1)
    assert y.dtype == np.float32 and y.shape == (100, 1)
    assert calib["x"].dtype == np.float32 and calib["x"].shape == (200, 1)
    assert calib["x"].min() >= 0.0 and calib["x"].max() <= 2 * np.pi + 1e-6 and calib["x"].std() > 1.5
    assert np.all(np.diff(x[:, 0]) > 0) and x[0, 0] == 0.0 and x[-1, 0] == pytest.approx(2 * np.pi)
    np.testing.assert_allclose(y, np.sin(x.astype(np.float64)), atol=1e-6)
    predicted = litert_outputs(MODELS / "hello_world_float" / "model.tflite", x)
    assert np.sqrt(np.mean((predicted - y) ** 2)) < 0.03  # 0.015 measured
    assert np.abs(predicted - y).max() < 0.06


# ---------------------------------------------------------------------------------------------------------------
# kws_seed: the seed's keyword spotter, raw audio through its front end


def test_kws_seed_classifies_unseen_voices_through_its_front_end() -> None:
    """The test clips (speakers never heard in training, 4 of 16 with noise) through cmsisdsp's MFCC and
    onnxruntime: the float model's own accuracy, and the words are the model.toml's labels."""
    folder = MODELS / "kws_seed"
    spec = read_frontend(folder / "model.toml")
    test = load_npz(folder / "test.npz")
    features = mfcc.real_features(spec, mfcc.features(spec, test["x"])).reshape(len(test["x"]), 1, 49, 10)
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    predicted = [int(np.argmax(session.run(None, {"mfcc": f[None]})[0])) for f in features]
    assert np.mean(np.array(predicted) == test["y"]) >= 0.9 and set(test["y"]) == {0, 1, 2}
    with open(folder / "model.toml", "rb") as f:
        assert tomllib.load(f)["labels"] == ["backward", "yes", "no"]
