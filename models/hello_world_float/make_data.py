"""Write calib.npz and test.npz for the float hello_world sine example (not part of the build).

    calib.npz   x float32 [200,1]: angles drawn uniformly from [0, 2*pi] (seeded), for activation statistics
    test.npz    x float32 [100,1]: 100 evenly spaced angles in [0, 2*pi]; y float32 [100,1] = sin(x), the
                regression target (what a perfect model would answer), not labels

Run from the project root:  .venv/bin/python models/hello_world_float/make_data.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "site_scons"))
from nnscons.fileio import write_npz  # noqa: E402  (deterministic npz: fixed zip timestamps)

SEED = 0
CALIB_SIZE = 200
TEST_SIZE = 100


def main() -> None:
    rng = np.random.default_rng(SEED)
    calib_x = rng.uniform(0.0, 2.0 * np.pi, size=(CALIB_SIZE, 1)).astype(np.float32)
    test_x = np.linspace(0.0, 2.0 * np.pi, TEST_SIZE, dtype=np.float32).reshape(TEST_SIZE, 1)
    test_y = np.sin(test_x.astype(np.float64)).astype(np.float32)
    write_npz(HERE / "calib.npz", {"x": calib_x})
    write_npz(HERE / "test.npz", {"x": test_x, "y": test_y})
    print(f"wrote calib.npz: x float32 {list(calib_x.shape)}; test.npz: x, y float32 {list(test_x.shape)}")


if __name__ == "__main__":
    main()
