"""Write test.npz for the KWS DS-CNN example (not part of the build).

x is MLPerf Tiny's reference input for this model (int8 MFCC features, the model's input dtype and NHWC layout),
stored as [N,49,10,1] with N=1; y is the class TFLite Micro's reference kernels answer for it (5).

Run from the project root:  .venv/bin/python models/kws_dscnn_int8/make_test_npz.py [SAMPLE_INPUT.npy]
(default: ../shared/models/kws_dscnn_int8/sample_input.npy, the copy of MLPerf Tiny's file in the dev setup).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "site_scons"))
from nnscons.fileio import write_npz  # noqa: E402  (deterministic npz: fixed zip timestamps)

DEFAULT_SAMPLE = HERE.parents[2] / "shared" / "models" / "kws_dscnn_int8" / "sample_input.npy"
INPUT_SHAPE = (49, 10, 1)  # the model's input [1,49,10,1] without its batch dimension
EXPECTED_CLASS = 5


def main() -> None:
    sample = np.load(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_SAMPLE)
    if sample.dtype != np.int8 or sample.size != np.prod(INPUT_SHAPE):
        sys.exit(f"expected {np.prod(INPUT_SHAPE)} int8 values, got {sample.dtype} {sample.shape}")
    x = sample.reshape((-1,) + INPUT_SHAPE)
    write_npz(HERE / "test.npz", {"x": x, "y": np.array([EXPECTED_CLASS], dtype=np.int64)})
    print(f"wrote test.npz: x {x.dtype} {list(x.shape)}, y [{EXPECTED_CLASS}]")


if __name__ == "__main__":
    main()
