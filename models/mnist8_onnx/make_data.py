"""Write calib.npz and test.npz for the ONNX model zoo's MNIST example (not part of the build).

MNIST itself is not available offline, so the images are scikit-learn's bundled handwritten digits
(``sklearn.datasets.load_digits``: 1797 images of 8x8 pixels, values 0..16, nothing downloaded) redrawn the way
MNIST frames its digits: each digit is scaled up bilinearly into a 20x20 box, its values stretched from 0..16 to
0..255 (the range of the model's own test inputs, test_data_set_*/input_0.pb: white digits on black, 0..255), and
placed in a 28x28 black image so that its centre of mass is at the image centre. A seeded permutation picks

    calib.npz   x float32 [200,1,28,28] (NCHW, the model's layout), for activation statistics
    test.npz    x float32 [500,1,28,28], y int64 [500]: the digit each image shows

(no image in both). The script prints the float model's accuracy on test.npz under onnxruntime; it is lower than
on real MNIST (about 99%) because 8x8 digits scaled up are blurrier and blockier than MNIST's.

Run from the project root:  .venv/bin/python models/mnist8_onnx/make_data.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "site_scons"))
from nnscons.fileio import write_npz  # noqa: E402  (deterministic npz: fixed zip timestamps)

SEED = 0
CALIB_SIZE = 200
TEST_SIZE = 500
IMAGE = 28  # MNIST's image side
BOX = 20  # MNIST's digits are scaled to fit a 20x20 box
DIGITS_MAX = 16.0  # load_digits' pixel range is 0..16


def bilinear_resize(image: np.ndarray, size: int) -> np.ndarray:
    """A square image resized to size x size by bilinear interpolation between pixel centres (edges clamped)."""
    n = image.shape[0]
    pos = np.clip((np.arange(size) + 0.5) * n / size - 0.5, 0, n - 1)
    low = np.floor(pos).astype(int)
    high = np.minimum(low + 1, n - 1)
    frac = pos - low
    rows = image[low] * (1 - frac)[:, None] + image[high] * frac[:, None]
    return rows[:, low] * (1 - frac)[None, :] + rows[:, high] * frac[None, :]


def mnist_frame(digit: np.ndarray) -> np.ndarray:
    """An 8x8 scikit-learn digit (0..16) as a 28x28 MNIST-style image (0..255, whole values), centred by mass."""
    box = np.clip(np.round(bilinear_resize(digit.astype(np.float64), BOX) * (255.0 / DIGITS_MAX)), 0, 255)
    ys, xs = np.mgrid[:BOX, :BOX]
    mass = box.sum()
    centre_y, centre_x = (ys * box).sum() / mass, (xs * box).sum() / mass
    top = int(np.clip(round((IMAGE - 1) / 2 - centre_y), 0, IMAGE - BOX))
    left = int(np.clip(round((IMAGE - 1) / 2 - centre_x), 0, IMAGE - BOX))
    image = np.zeros((IMAGE, IMAGE))
    image[top:top + BOX, left:left + BOX] = box
    return image


def make_sets() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(calib_x, test_x, test_y): NCHW float32 images of disjoint digits, and the test digits' labels."""
    digits = load_digits()
    order = np.random.default_rng(SEED).permutation(len(digits.images))
    images = np.stack([mnist_frame(d) for d in digits.images])[:, None].astype(np.float32)  # [N,1,28,28]
    calib_rows, test_rows = order[:CALIB_SIZE], order[CALIB_SIZE:CALIB_SIZE + TEST_SIZE]
    return images[calib_rows], images[test_rows], digits.target[test_rows].astype(np.int64)


def onnxruntime_accuracy(x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of model.onnx (batch size 1) on x."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(HERE / "model.onnx"), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    logits = np.concatenate([session.run(None, {input_name: image[None]})[0] for image in x])
    return float(np.mean(logits.argmax(axis=1) == y))


def main() -> None:
    calib_x, test_x, test_y = make_sets()
    print(f"float model (onnxruntime) accuracy on test.npz: {onnxruntime_accuracy(test_x, test_y):.4f}")
    write_npz(HERE / "calib.npz", {"x": calib_x}, compress=True)
    write_npz(HERE / "test.npz", {"x": test_x, "y": test_y}, compress=True)
    for name, x in (("calib.npz", calib_x), ("test.npz", test_x)):
        print(f"wrote {name}: x float32 {list(x.shape)}, {(HERE / name).stat().st_size} bytes")


if __name__ == "__main__":
    main()
