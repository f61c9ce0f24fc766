"""Write test.npz for the hello_world sine example (not part of the build).

x: 100 evenly spaced angles in [0, 2*pi], quantized with the model's own input scale and zero point
(int8 [100,1], the model's input dtype; the input range ends at 6.24, so the last angle, 2*pi, saturates to 127). y: sin() of the angle each int8 input actually represents (float32 [100,1]), the regression
target, i.e. what a perfect model would answer.

Run from the project root:  .venv/bin/python models/hello_world_int8/make_test_npz.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import tflite

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "site_scons"))
from nnscons.fileio import write_npz  # noqa: E402  (deterministic npz: fixed zip timestamps)

SAMPLES = 100


def input_quantization(model_path: Path) -> tuple[float, int]:
    """(scale, zero point) of the model's first input, read from the flatbuffer."""
    model = tflite.Model.GetRootAsModel(model_path.read_bytes(), 0)
    subgraph = model.Subgraphs(0)
    quant = subgraph.Tensors(subgraph.Inputs(0)).Quantization()
    return float(quant.ScaleAsNumpy()[0]), int(quant.ZeroPointAsNumpy()[0])


def main() -> None:
    scale, zero_point = input_quantization(HERE / "model.tflite")
    angles = np.linspace(0.0, 2.0 * np.pi, SAMPLES)
    x = np.clip(np.round(angles / scale) + zero_point, -128, 127).astype(np.int8).reshape(SAMPLES, 1)
    represented = (x.astype(np.float64) - zero_point) * scale
    y = np.sin(represented).astype(np.float32)
    write_npz(HERE / "test.npz", {"x": x, "y": y})
    print(f"input scale {scale} zero point {zero_point}; wrote test.npz: x int8 {list(x.shape)}, y float32 {list(y.shape)}")


if __name__ == "__main__":
    main()
