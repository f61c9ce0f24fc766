"""Write test.npz for the scrambled SVDF keyword model (not part of the build).

The model's weights are random ("scrambled"), so there is no meaningful input: 100 frames of random int16 features
(the model's input: [1, 96] int16, scale 0.000625), in three loudnesses (up to 300, 3,000 and 32,767), each value
zero, positive or negative at random. The build's check runs them from a reset each and as one stream.

Run from the project root:  .venv/bin/python models/svdf_int8/make_test_npz.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "site_scons"))
from nnscons.fileio import write_npz  # noqa: E402  (deterministic npz: fixed zip timestamps)

COUNT = 100
LOUDNESS = (300, 3000, 32767)


def main() -> None:
    rng = np.random.default_rng(96)
    top = np.array(LOUDNESS)[np.arange(COUNT) * len(LOUDNESS) // COUNT][:, None]
    x = rng.integers(-1, 1, (COUNT, 96), endpoint=True) * rng.integers(0, top, (COUNT, 96))
    write_npz(HERE / "test.npz", {"x": x.astype(np.int16)})
    print(f"wrote test.npz: x int16 {list(x.shape)}")


if __name__ == "__main__":
    main()
