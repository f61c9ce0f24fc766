"""Write test.npz for the MNIST LSTM example (not part of the build).

The model reads an MNIST image as 28 rows of 28 pixels. There is no MNIST here, so the test images are
scikit-learn's 8x8 handwritten digits drawn the MNIST way: each scaled to 20x20 (bilinear), centred in a 28x28
frame by its centre of mass, ink 1.0 on 0.0, then quantized as the model's input is (scale 1/255, zero point
-128). ``y`` holds the digits' labels. 200 images, the first 200 of the set.

Run from the project root:  .venv/bin/python models/mnist_lstm_int8/make_test_npz.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy import ndimage
from sklearn.datasets import load_digits

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "site_scons"))
from nnscons.fileio import write_npz  # noqa: E402  (deterministic npz: fixed zip timestamps)

COUNT = 200
SIZE, DIGIT = 28, 20                       # MNIST: a 20x20 digit in a 28x28 frame
INPUT_SCALE, INPUT_ZERO_POINT = 1.0 / 255.0, -128


def draw(digit: np.ndarray) -> np.ndarray:
    """One 8x8 digit (0..16) as a 28x28 MNIST-style image in 0..1."""
    big = np.clip(ndimage.zoom(digit / 16.0, DIGIT / digit.shape[0], order=1), 0.0, 1.0)
    frame = np.zeros((SIZE, SIZE))
    top = (SIZE - DIGIT) // 2
    frame[top:top + DIGIT, top:top + DIGIT] = big
    cy, cx = ndimage.center_of_mass(frame)
    return np.clip(ndimage.shift(frame, (SIZE / 2 - cy, SIZE / 2 - cx), order=1), 0.0, 1.0)


def main() -> None:
    digits = load_digits()
    images = np.stack([draw(d) for d in digits.images[:COUNT]])
    x = np.clip(np.round(images / INPUT_SCALE) + INPUT_ZERO_POINT, -128, 127).astype(np.int8)
    y = digits.target[:COUNT].astype(np.int64)
    write_npz(HERE / "test.npz", {"x": x, "y": y})
    print(f"wrote test.npz: x {x.dtype} {list(x.shape)}, y {list(y.shape)}")


if __name__ == "__main__":
    main()
