"""Write test.npz and calib.npz for the float MNIST LSTM example (not part of the build).

The model reads an MNIST image as 28 rows of 28 pixels (input float32 [1,28,28], pixel values in [0, 1]). There is
no MNIST here, so the images are scikit-learn's 8x8 handwritten digits drawn the MNIST way, exactly as
models/mnist_lstm_int8/make_test_npz.py draws them: each scaled to 20x20 (bilinear), centred in a 28x28 frame by
its centre of mass, ink 1.0 on 0.0, kept as float pixels (not quantized: this model is float).

    test.npz   x float32 [90,28,28], y int64 [90]: digits 0..89 of the set (the first of the int8 twin's test images)
    calib.npz  x float32 [64,28,28]: digits 1000..1063, disjoint from the test set, for activation statistics

If ai_edge_litert is installed it then prints the float model's accuracy on both sets under LiteRT.

Run from the project root:  .venv/bin/python models/mnist_lstm_float/make_data.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "site_scons"))
sys.path.insert(0, str(HERE.parent / "mnist_lstm_int8"))
from make_test_npz import draw  # noqa: E402  (the int8 twin's drawing: the same images)
from nnscons.fileio import write_npz  # noqa: E402  (deterministic npz: fixed zip timestamps)

TEST_ROWS = slice(0, 90)                  # float32 28x28 images: 90 keep the file under 300 KB
CALIB_ROWS = slice(1000, 1064)


def images(digits: np.ndarray) -> np.ndarray:
    """[N,8,8] digits -> [N,28,28] float32: N images, each the model's input [1,28,28] without its batch axis."""
    return np.stack([draw(d) for d in digits]).astype(np.float32)


def litert_accuracy(x: np.ndarray, y: np.ndarray) -> float | None:
    """The float model's accuracy under LiteRT, one image at a time; None without ai_edge_litert. TFLite's LSTM
    keeps its hidden and cell states in variable tensors that carry over from one invoke() to the next, so they
    are reset before each image (without that, 61.5% instead of 71% on test.npz)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        return None
    interpreter = Interpreter(model_path=str(HERE / "model.tflite"))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    right = 0
    for image, label in zip(x, y):
        interpreter.reset_all_variables()
        interpreter.set_tensor(inp["index"], image[None])
        interpreter.invoke()
        right += int(interpreter.get_tensor(out["index"])[0].argmax() == label)
    return right / len(y)


def main() -> None:
    digits = load_digits()
    x_test, y_test = images(digits.images[TEST_ROWS]), digits.target[TEST_ROWS].astype(np.int64)
    x_calib, y_calib = images(digits.images[CALIB_ROWS]), digits.target[CALIB_ROWS].astype(np.int64)
    write_npz(HERE / "test.npz", {"x": x_test, "y": y_test})
    write_npz(HERE / "calib.npz", {"x": x_calib})
    print(f"wrote test.npz: x {x_test.dtype} {list(x_test.shape)}, y {list(y_test.shape)}")
    print(f"wrote calib.npz: x {x_calib.dtype} {list(x_calib.shape)}")
    for name, x, y in (("test", x_test, y_test), ("calib", x_calib, y_calib)):
        acc = litert_accuracy(x, y)
        if acc is not None:
            print(f"LiteRT float accuracy on {name} images: {acc:.4f} ({round(acc * len(y))}/{len(y)})")


if __name__ == "__main__":
    main()
