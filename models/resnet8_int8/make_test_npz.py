"""Write test.npz for the int8 ResNet-8 example (not part of the build).

x: int8 [61,32,32,3], the model's input dtype and NHWC layout (input scale 1, zero point -128, so q = pixel - 128):
MLPerf Tiny's reference input first (stored as it is: an all-black image, every value -128; TFLite Micro answers
class 0), then the same 60 photo images as models/resnet8_float/test.npz (64x64 cells of scikit-learn's two
sample photos averaged down to 32x32; see that folder's make_data.py), so both examples are checked on one set.
No y: CIFAR-10 is not available offline and the photos have no CIFAR-10 labels.

Run from the project root:  .venv/bin/python models/resnet8_int8/make_test_npz.py [SAMPLE_INPUT.npy]
(default: ../shared/models/resnet8_int8/sample_input.npy, the copy of MLPerf Tiny's file in the dev setup).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "site_scons"))
sys.path.insert(0, str(HERE.parent / "resnet8_float"))
from make_data import photo_cells  # noqa: E402  (the float example's test images, one definition)
from nnscons.fileio import write_npz  # noqa: E402  (deterministic npz: fixed zip timestamps)

DEFAULT_SAMPLE = HERE.parents[2] / "shared" / "models" / "resnet8_int8" / "sample_input.npy"
INPUT_SHAPE = (32, 32, 3)  # the model's input [1,32,32,3] without its batch dimension
INPUT_ZERO_POINT = -128  # input scale is 1: q = pixel + zero point


def main() -> None:
    sample = np.load(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_SAMPLE)
    if sample.dtype != np.int8 or sample.size != np.prod(INPUT_SHAPE):
        sys.exit(f"expected {np.prod(INPUT_SHAPE)} int8 values, got {sample.dtype} {sample.shape}")
    _, test_pixels = photo_cells()
    photos = (test_pixels.astype(np.int16) + INPUT_ZERO_POINT).astype(np.int8)
    x = np.concatenate([sample.reshape((1,) + INPUT_SHAPE), photos])
    write_npz(HERE / "test.npz", {"x": x}, compress=True)
    print(f"wrote test.npz: x int8 {list(x.shape)}, {(HERE / 'test.npz').stat().st_size} bytes")


if __name__ == "__main__":
    main()
