"""Write test.npz for the micro_speech example (not part of the build).

x is the feature input of the example's "yes" clip from TFLite Micro's micro_speech example (int8, the model's
input dtype), stored as [N,1960] with N=1 (49 frames x 40 spectrogram channels, flattened as the model takes
them); y is its ground truth, index 2 ("yes" in the model's labels silence, unknown, yes, no), which is also what
TFLite Micro answers.

Run from the project root:  .venv/bin/python models/micro_speech_int8/make_test_npz.py [SAMPLE_INPUT.npy]
(default: ../shared/models/micro_speech_int8/sample_input_yes.npy, the copy of the clip's features in the dev
setup).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "site_scons"))
from nnscons.fileio import write_npz  # noqa: E402  (deterministic npz: fixed zip timestamps)

DEFAULT_SAMPLE = HERE.parents[2] / "shared" / "models" / "micro_speech_int8" / "sample_input_yes.npy"
INPUT_SHAPE = (1960,)  # the model's input [1,1960] without its batch dimension
YES = 2  # labels: 0 silence, 1 unknown, 2 yes, 3 no


def main() -> None:
    sample = np.load(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_SAMPLE)
    if sample.dtype != np.int8 or sample.size != np.prod(INPUT_SHAPE):
        sys.exit(f"expected {np.prod(INPUT_SHAPE)} int8 values, got {sample.dtype} {sample.shape}")
    x = sample.reshape((-1,) + INPUT_SHAPE)
    write_npz(HERE / "test.npz", {"x": x, "y": np.array([YES], dtype=np.int64)})
    print(f"wrote test.npz: x {x.dtype} {list(x.shape)}, y [{YES}]")


if __name__ == "__main__":
    main()
