"""Write calib.npz and test.npz for the float ResNet-8 example (not part of the build).

The model was trained on CIFAR-10, which is not available offline. The images here are cut from the two real
photos that scikit-learn ships (``sklearn.datasets.load_sample_images``: china.jpg and flower.jpg, 427x640 RGB,
nothing downloaded). Each photo is tiled into 64x64-pixel cells (6 rows x 10 columns, the bottom 43 rows unused);
a cell averaged over 2x2 blocks and rounded to whole pixel values is one 32x32 image, as CIFAR-10's images are
small downscaled photos. The cells are split like a checkerboard, so the two sets share no pixel:

    calib.npz   x float32 [60,32,32,3]: the cells with (row + column) even
    test.npz    x float32 [61,32,32,3]: MLPerf Tiny's reference input first (an all-black image, which the float
                model and TFLite Micro on the int8 model both classify as class 0), then the cells with
                (row + column) odd. No y: these photos have no CIFAR-10 labels, so what the check measures on
                them is the agreement of the quantized network with the float model, not accuracy.

The input convention is raw pixel values 0..255 as float32 (no scaling): the int8 twin of this model
(models/resnet8_int8) has input scale 1 and zero point -128, i.e. real value = q + 128 in [0, 255]. The script
checks that on the sample image and prints how often the float model's top-1 class on the test images equals
TFLite Micro's on the int8 model.

Run from the project root:  .venv/bin/python models/resnet8_float/make_data.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import load_sample_images

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "site_scons"))
from nnscons.fileio import write_npz  # noqa: E402  (deterministic npz: fixed zip timestamps)

SAMPLE = HERE.parents[2] / "shared" / "models" / "resnet8_int8" / "sample_input.npy"
INT8_MODEL = HERE.parent / "resnet8_int8" / "model.tflite"
CELL = 64  # photo pixels per image side; averaged 2x2 down to 32
SIDE = 32
EXPECTED_SAMPLE_CLASS = 0


def photo_cells() -> tuple[np.ndarray, np.ndarray]:
    """(calib, test): uint8 [N,32,32,3] images from scikit-learn's sample photos, split by checkerboard."""
    calib, test = [], []
    for photo in load_sample_images().images:  # china.jpg, flower.jpg in scikit-learn's fixed order
        rows, cols = photo.shape[0] // CELL, photo.shape[1] // CELL
        for r in range(rows):
            for c in range(cols):
                cell = photo[r * CELL:(r + 1) * CELL, c * CELL:(c + 1) * CELL].astype(np.float64)
                image = cell.reshape(SIDE, CELL // SIDE, SIDE, CELL // SIDE, 3).mean(axis=(1, 3))
                (calib if (r + c) % 2 == 0 else test).append(np.round(image).astype(np.uint8))
    return np.stack(calib), np.stack(test)


def reference_image() -> np.ndarray:
    """MLPerf Tiny's reference input as pixel values uint8 [32,32,3] (the stored file is the image - 128)."""
    sample = np.load(SAMPLE)
    if sample.dtype != np.int8 or sample.size != SIDE * SIDE * 3:
        sys.exit(f"{SAMPLE}: expected {SIDE * SIDE * 3} int8 values, got {sample.dtype} {sample.shape}")
    return (sample.astype(np.int16) + 128).astype(np.uint8).reshape(SIDE, SIDE, 3)


def float_classes(model: Path, x: np.ndarray) -> np.ndarray:
    """Top-1 class of the float model (LiteRT) for each image of x (float32 [N,32,32,3])."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(model))
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    classes = []
    for image in x:
        interpreter.set_tensor(inp["index"], image[None])
        interpreter.invoke()
        classes.append(int(interpreter.get_tensor(out["index"]).argmax()))
    return np.array(classes)


def int8_classes(model: Path, pixels: np.ndarray) -> np.ndarray:
    """Top-1 class of TFLite Micro on the int8 model for each uint8 image (input q = pixel - 128)."""
    from tflite_micro import runtime

    interpreter = runtime.Interpreter.from_file(str(model))
    classes = []
    for image in pixels:
        interpreter.set_input((image.astype(np.int16) - 128).astype(np.int8)[None], 0)
        interpreter.invoke()
        classes.append(int(interpreter.get_output(0).argmax()))
    return np.array(classes)


def main() -> None:
    calib_pixels, test_pixels = photo_cells()
    test_pixels = np.concatenate([reference_image()[None], test_pixels])
    calib_x, test_x = calib_pixels.astype(np.float32), test_pixels.astype(np.float32)

    classes = float_classes(HERE / "model.tflite", test_x)
    if classes[0] != EXPECTED_SAMPLE_CLASS:
        sys.exit(f"the float model answers {classes[0]} for the reference image, expected {EXPECTED_SAMPLE_CLASS}; "
                 "nothing written")
    print(f"float model on the reference image: class {classes[0]}")
    print(f"float model's classes on test.npz: {np.bincount(classes, minlength=10).tolist()} (count per class)")
    if INT8_MODEL.exists():
        agreement = float(np.mean(int8_classes(INT8_MODEL, test_pixels) == classes))
        print(f"top-1 agreement, float model vs TFLite Micro on resnet8_int8: {agreement:.4f}")

    write_npz(HERE / "calib.npz", {"x": calib_x}, compress=True)
    write_npz(HERE / "test.npz", {"x": test_x}, compress=True)
    for name, x in (("calib.npz", calib_x), ("test.npz", test_x)):
        print(f"wrote {name}: x float32 {list(x.shape)}, {(HERE / name).stat().st_size} bytes")


if __name__ == "__main__":
    main()
