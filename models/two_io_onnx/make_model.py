"""Make the two_io_onnx example: an ONNX network with two inputs and two outputs (not part of the build).

The network reads one of scikit-learn's bundled 8x8 handwritten digits (``load_digits``: nothing is downloaded)
twice: as the image (``image``, NCHW [1,1,8,8], pixels / 16) and as its column profile (``profile`` [1,8]: the
mean of each image column). It answers with the digit's class probabilities (``digit_probabilities`` [1,10], a
classifier) and the mean intensity of the image's four 4x4 quadrants (``quadrant_means`` [1,4], a regression):

    image [1,1,8,8] -> Conv 3x3 8ch pad 1 -> Relu -> MaxPool 2x2 -> Flatten -> Gemm 64 -> Relu  -> h0 [1,64]
    profile [1,8]   -> Gemm 8 -> Relu                                                          -> h1 [1,8]
    Concat(h0, h1) [1,72] -> Gemm 10 -> Softmax                                                -> digit_probabilities
                          -> Gemm 4                                                            -> quadrant_means

The convolution and the two hidden Gemms are fixed random features (seeded, He-scaled); the two heads are ridge
regressions fitted in closed form on the training images (the class head to 8 x one-hot targets, so the softmax
is confident). Everything is deterministic: a rerun writes byte-identical files. It writes, next to this script:

    model.onnx   opset 13, built with onnx.helper, checked by onnx.checker and against onnxruntime
    calib.npz    x0 float32 [200,1,8,8], x1 float32 [200,8]: training images, for activation statistics
    test.npz     x0 [360,1,8,8], x1 [360,8] float32: the held-out images; y0 int64 [360]: their digits (labels
                 of output 0); y1 float32 [360,4]: their true quadrant means (reference outputs of output 1)

Run from the project root:  .venv/bin/python models/two_io_onnx/make_model.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "site_scons"))
from nnscons.fileio import write_bytes, write_npz  # noqa: E402  (deterministic npz: fixed zip timestamps)

SEED = 0
TEST_FRACTION = 0.2
CALIB_SIZE = 200
CONV_CHANNELS = 8
HIDDEN_IMAGE = 64
HIDDEN_PROFILE = 8
RIDGE = 1.0
CLASS_TARGET = 8.0      # the class head is fitted to CLASS_TARGET x one-hot: logits a softmax is sure of

Params = dict[str, np.ndarray]


# ---- data ---------------------------------------------------------------------------------------------------------
def profile(images: np.ndarray) -> np.ndarray:
    """[N,1,8,8] -> [N,8]: the mean of each image column."""
    return images[:, 0].mean(axis=1).astype(np.float32)


def quadrant_means(images: np.ndarray) -> np.ndarray:
    """[N,1,8,8] -> [N,4]: mean intensity of the top-left, top-right, bottom-left and bottom-right 4x4 blocks."""
    img = images[:, 0]
    blocks = [img[:, :4, :4], img[:, :4, 4:], img[:, 4:, :4], img[:, 4:, 4:]]
    return np.stack([b.mean(axis=(1, 2)) for b in blocks], axis=1).astype(np.float32)


def load_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, np.newaxis]
    x_train, x_test, y_train, y_test = train_test_split(x, digits.target, test_size=TEST_FRACTION,
                                                        stratify=digits.target, random_state=SEED)
    return x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64)


# ---- the network in numpy (the reference the ONNX model is checked against) ------------------------------------------
def conv3x3(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    n, _, h, wd = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((n, w.shape[0], h, wd), np.float64)
    for dy in range(3):
        for dx in range(3):
            patch = padded[:, :, dy:dy + h, dx:dx + wd]
            out += np.einsum("nchw,oc->nohw", patch, w[:, :, dy, dx])
    return out + b[None, :, None, None]


def hidden(p: Params, image: np.ndarray, prof: np.ndarray) -> np.ndarray:
    c = np.maximum(conv3x3(image.astype(np.float64), p["conv_w"], p["conv_b"]), 0.0)
    n = len(c)
    pooled = c.reshape(n, CONV_CHANNELS, 4, 2, 4, 2).max(axis=(3, 5))
    h0 = np.maximum(pooled.reshape(n, -1) @ p["fc_image_w"].T + p["fc_image_b"], 0.0)
    h1 = np.maximum(prof.astype(np.float64) @ p["fc_profile_w"].T + p["fc_profile_b"], 0.0)
    return np.concatenate([h0, h1], axis=1)


def forward(p: Params, image: np.ndarray, prof: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h = hidden(p, image, prof)
    logits = h @ p["classes_w"].T + p["classes_b"]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32), (h @ p["quadrants_w"].T
                                                                   + p["quadrants_b"]).astype(np.float32)


def ridge(features: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weights [outputs, features] and bias [outputs] minimizing |[F 1] W - T|^2 + RIDGE |W|^2."""
    a = np.concatenate([features, np.ones((len(features), 1))], axis=1)
    solution = np.linalg.solve(a.T @ a + RIDGE * np.eye(a.shape[1]), a.T @ targets)
    return solution[:-1].T.copy(), solution[-1].copy()


def fit(x_train: np.ndarray, y_train: np.ndarray) -> Params:
    rng = np.random.default_rng(SEED)
    flat = CONV_CHANNELS * 4 * 4
    p: Params = {
        "conv_w": rng.normal(0, np.sqrt(2 / 9), (CONV_CHANNELS, 1, 3, 3)),
        "conv_b": rng.normal(0, 0.05, CONV_CHANNELS),
        "fc_image_w": rng.normal(0, np.sqrt(2 / flat), (HIDDEN_IMAGE, flat)),
        "fc_image_b": rng.normal(0, 0.05, HIDDEN_IMAGE),
        "fc_profile_w": rng.normal(0, np.sqrt(2 / 8), (HIDDEN_PROFILE, 8)),
        "fc_profile_b": np.full(HIDDEN_PROFILE, 0.1),
    }
    h = hidden(p, x_train, profile(x_train))
    p["classes_w"], p["classes_b"] = ridge(h, CLASS_TARGET * np.eye(10)[y_train])
    p["quadrants_w"], p["quadrants_b"] = ridge(h, quadrant_means(x_train).astype(np.float64))
    return {k: v.astype(np.float32) for k, v in p.items()}


# ---- ONNX --------------------------------------------------------------------------------------------------------------
def to_onnx(p: Params) -> onnx.ModelProto:
    node = helper.make_node
    nodes = [
        node("Conv", ["image", "conv_w", "conv_b"], ["conv"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        node("Relu", ["conv"], ["conv_relu"]),
        node("MaxPool", ["conv_relu"], ["pool"], kernel_shape=[2, 2], strides=[2, 2]),
        node("Flatten", ["pool"], ["flat"], axis=1),
        node("Gemm", ["flat", "fc_image_w", "fc_image_b"], ["h0_pre"], transB=1),
        node("Relu", ["h0_pre"], ["h0"]),
        node("Gemm", ["profile", "fc_profile_w", "fc_profile_b"], ["h1_pre"], transB=1),
        node("Relu", ["h1_pre"], ["h1"]),
        node("Concat", ["h0", "h1"], ["h"], axis=1),
        node("Gemm", ["h", "classes_w", "classes_b"], ["logits"], transB=1),
        node("Softmax", ["logits"], ["digit_probabilities"], axis=1),
        node("Gemm", ["h", "quadrants_w", "quadrants_b"], ["quadrant_means"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "two_io",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, 8, 8]),
         helper.make_tensor_value_info("profile", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("digit_probabilities", TensorProto.FLOAT, [1, 10]),
         helper.make_tensor_value_info("quadrant_means", TensorProto.FLOAT, [1, 4])],
        initializer=[numpy_helper.from_array(v, k) for k, v in sorted(p.items())])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="nnscons",
                              ir_version=8)
    onnx.checker.check_model(model)
    return model


def onnxruntime_outputs(model: onnx.ModelProto, image: np.ndarray, prof: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rows = [session.run(None, {"image": image[i:i + 1], "profile": prof[i:i + 1]}) for i in range(len(image))]
    return [np.concatenate([r[k] for r in rows]) for k in range(2)]


def main() -> None:
    x_train, y_train, x_test, y_test = load_split()
    p = fit(x_train, y_train)
    model = to_onnx(p)
    probabilities, quadrants = forward(p, x_test, profile(x_test))
    ort_probabilities, ort_quadrants = onnxruntime_outputs(model, x_test, profile(x_test))
    difference = max(float(np.abs(probabilities - ort_probabilities).max()),
                     float(np.abs(quadrants - ort_quadrants).max()))
    if difference > 1e-4:
        raise SystemExit(f"onnxruntime differs from the numpy forward pass by {difference:g}")
    calib = np.random.default_rng(SEED).choice(len(x_train), CALIB_SIZE, replace=False)
    write_bytes(HERE / "model.onnx", model.SerializeToString())
    write_npz(HERE / "calib.npz", {"x0": x_train[calib], "x1": profile(x_train[calib])})
    write_npz(HERE / "test.npz", {"x0": x_test, "x1": profile(x_test), "y0": y_test,
                                  "y1": quadrant_means(x_test)})
    accuracy = float(np.mean(ort_probabilities.argmax(1) == y_test))
    error = float(np.abs(ort_quadrants - quadrant_means(x_test)).max())
    print(f"wrote model.onnx, calib.npz ({CALIB_SIZE}), test.npz ({len(x_test)}): test accuracy "
          f"{100 * accuracy:.2f}%, quadrant means max error {error:.4f}, onnxruntime vs numpy {difference:.1e}")


if __name__ == "__main__":
    main()
