"""Train the digits_cnn example model and export it as ONNX (not part of the build).

The model is a small float CNN for scikit-learn's bundled 8x8 handwritten digits (``load_digits``: 1797 images,
10 classes, shipped inside scikit-learn, so nothing is downloaded). It is written in NCHW, like a model exported
from PyTorch, so that nnscons' importer has to convert it to NHWC and reorder the weights of the fully-connected
layer that follows the flatten (the seed guide's CHW -> HWC reordering):

    input [1,1,8,8] (pixels / 16, so in [0, 1])
    Conv 3x3, 16 channels, pad 1 -> Relu -> MaxPool 2x2     -> [1,16,4,4]
    Conv 3x3, 32 channels, pad 1 -> Relu -> MaxPool 2x2     -> [1,32,2,2]
    Flatten (C, H, W order)                                 -> [1,128]
    Gemm 64 -> Relu -> Gemm 10 -> Softmax                   -> [1,10]

Training is plain numpy (im2col convolutions, hand-written backward pass, Adam with a cosine learning-rate
schedule), deterministic (fixed seeds) and takes a few seconds. It writes, next to this script:

    model.onnx   opset 13, built with onnx.helper, checked by onnx.checker
    test.npz     x float32 [N,1,8,8] (NCHW, the model's own layout), y int64 labels: the held-out 20%
    calib.npz    x float32 [200,1,8,8]: a fixed sample of the training images, for activation statistics

and checks that onnxruntime gives the numpy forward pass's outputs on the test set.

Run from the project root:  .venv/bin/python models/digits_cnn/train.py
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
CONV1_CHANNELS = 16
CONV2_CHANNELS = 32
HIDDEN = 64
FLAT = CONV2_CHANNELS * 2 * 2  # after two 2x2 poolings of an 8x8 image
EPOCHS = 40
BATCH = 32
LEARNING_RATE = 2e-3

Params = dict[str, np.ndarray]


# ---------------------------------------------------------------------------------------------------------------
# Data


def load_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test, x_calib): NCHW float32 in [0, 1], a stratified, seeded split."""
    digits = load_digits()
    x = (digits.images.astype(np.float32) / 16.0)[:, None, :, :]  # [N,1,8,8]
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=TEST_FRACTION, random_state=SEED, stratify=y)
    calib_rows = np.sort(np.random.default_rng(SEED).choice(len(x_train), CALIB_SIZE, replace=False))
    return x_train, y_train, x_test, y_test, x_train[calib_rows]


# ---------------------------------------------------------------------------------------------------------------
# Layers: forward functions return (output, cache); backward functions take the cache and d(loss)/d(output)


def im2col_3x3(x: np.ndarray) -> np.ndarray:
    """[N,C,H,W] -> [N*H*W, C*9]: each row is the zero-padded 3x3 neighbourhood of one output pixel."""
    n, c, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))  # [N,C,H,W,3,3]
    return windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * h * w, c * 9)


def col2im_3x3(cols: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The adjoint of im2col_3x3: add each row's 3x3 patch gradient back onto the [N,C,H,W] input."""
    n, c, h, w = shape
    patches = cols.reshape(n, h, w, c, 3, 3)
    padded = np.zeros((n, c, h + 2, w + 2), dtype=cols.dtype)
    for ky in range(3):
        for kx in range(3):
            padded[:, :, ky:ky + h, kx:kx + w] += patches[:, :, :, :, ky, kx].transpose(0, 3, 1, 2)
    return padded[:, :, 1:-1, 1:-1]


def conv_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    """3x3 convolution, stride 1, pad 1 (ONNX Conv semantics, i.e. cross-correlation); w is [O,C,3,3]."""
    n, _, h, wd = x.shape
    cols = im2col_3x3(x)
    out = cols @ w.reshape(w.shape[0], -1).T + b  # [N*H*W, O]
    return out.reshape(n, h, wd, -1).transpose(0, 3, 1, 2), (cols, x.shape, w)


def conv_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cols, x_shape, w = cache
    dout_rows = dout.transpose(0, 2, 3, 1).reshape(-1, w.shape[0])  # [N*H*W, O]
    dw = (dout_rows.T @ cols).reshape(w.shape)
    db = dout_rows.sum(axis=0)
    dx = col2im_3x3(dout_rows @ w.reshape(w.shape[0], -1), x_shape)
    return dx, dw, db


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.maximum(x, 0), x > 0


def relu_backward(dout: np.ndarray, positive: np.ndarray) -> np.ndarray:
    return dout * positive


def maxpool_forward(x: np.ndarray) -> tuple[np.ndarray, tuple]:
    """2x2 max pooling, stride 2. The gradient goes to the first maximum of each window, as argmax picks it."""
    n, c, h, w = x.shape
    windows = x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4)
    winner = windows.argmax(axis=-1)
    return np.take_along_axis(windows, winner[..., None], axis=-1)[..., 0], (winner, x.shape)


def maxpool_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    winner, (n, c, h, w) = cache
    dwindows = np.zeros(winner.shape + (4,), dtype=dout.dtype)
    np.put_along_axis(dwindows, winner[..., None], dout[..., None], axis=-1)
    return dwindows.reshape(n, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h, w)


def dense_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    """ONNX Gemm with transB=1: y = x @ w.T + b, w is [out, in] (PyTorch's Linear layout)."""
    return x @ w.T + b, (x, w)


def dense_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, w = cache
    return dout @ w, dout.T @ x, dout.sum(axis=0)


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------------------------------
# The network


def init_params(rng: np.random.Generator) -> Params:
    """He-normal weights, zero biases."""
    def he(shape: tuple[int, ...], fan_in: int) -> np.ndarray:
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    c1, c2 = CONV1_CHANNELS, CONV2_CHANNELS
    return {
        "conv1_w": he((c1, 1, 3, 3), 1 * 9), "conv1_b": np.zeros(c1, np.float32),
        "conv2_w": he((c2, c1, 3, 3), c1 * 9), "conv2_b": np.zeros(c2, np.float32),
        "fc1_w": he((HIDDEN, FLAT), FLAT), "fc1_b": np.zeros(HIDDEN, np.float32),
        "fc2_w": he((10, HIDDEN), HIDDEN), "fc2_b": np.zeros(10, np.float32),
    }


def forward(p: Params, x: np.ndarray) -> tuple[np.ndarray, list]:
    """Logits [N,10] and the caches the backward pass needs (softmax is applied by the caller)."""
    h, c1 = conv_forward(x, p["conv1_w"], p["conv1_b"])
    h, r1 = relu_forward(h)
    h, m1 = maxpool_forward(h)
    h, c2 = conv_forward(h, p["conv2_w"], p["conv2_b"])
    h, r2 = relu_forward(h)
    h, m2 = maxpool_forward(h)
    pooled_shape = h.shape
    h = h.reshape(len(h), -1)  # ONNX Flatten(axis=1): C, H, W order
    h, f1 = dense_forward(h, p["fc1_w"], p["fc1_b"])
    h, r3 = relu_forward(h)
    logits, f2 = dense_forward(h, p["fc2_w"], p["fc2_b"])
    return logits, [c1, r1, m1, c2, r2, m2, pooled_shape, f1, r3, f2]


def backward(dlogits: np.ndarray, caches: list) -> Params:
    c1, r1, m1, c2, r2, m2, pooled_shape, f1, r3, f2 = caches
    g: Params = {}
    d, g["fc2_w"], g["fc2_b"] = dense_backward(dlogits, f2)
    d = relu_backward(d, r3)
    d, g["fc1_w"], g["fc1_b"] = dense_backward(d, f1)
    d = maxpool_backward(d.reshape(pooled_shape), m2)
    d = relu_backward(d, r2)
    d, g["conv2_w"], g["conv2_b"] = conv_backward(d, c2)
    d = maxpool_backward(d, m1)
    d = relu_backward(d, r1)
    _, g["conv1_w"], g["conv1_b"] = conv_backward(d, c1)
    return g


def predict(p: Params, x: np.ndarray) -> np.ndarray:
    """Class probabilities [N,10], as the exported model computes them."""
    return softmax(forward(p, x)[0])


def accuracy(p: Params, x: np.ndarray, y: np.ndarray) -> float:
    return float((predict(p, x).argmax(axis=1) == y).mean())


# ---------------------------------------------------------------------------------------------------------------
# Training


class Adam:
    def __init__(self, params: Params, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def step(self, params: Params, grads: Params) -> None:
        self.t += 1
        for k in params:
            self.m[k] = self.beta1 * self.m[k] + (1 - self.beta1) * grads[k]
            self.v[k] = self.beta2 * self.v[k] + (1 - self.beta2) * grads[k] ** 2
            m_hat = self.m[k] / (1 - self.beta1 ** self.t)
            v_hat = self.v[k] / (1 - self.beta2 ** self.t)
            params[k] -= (self.lr * m_hat / (np.sqrt(v_hat) + self.eps)).astype(np.float32)


def train(x: np.ndarray, y: np.ndarray) -> Params:
    """Mini-batch Adam on softmax cross-entropy, the learning rate decaying along a half cosine to zero."""
    rng = np.random.default_rng(SEED)
    params = init_params(rng)
    optimizer = Adam(params, LEARNING_RATE)
    for epoch in range(EPOCHS):
        optimizer.lr = LEARNING_RATE * 0.5 * (1 + np.cos(np.pi * epoch / EPOCHS))
        order = rng.permutation(len(x))
        total_loss = 0.0
        for start in range(0, len(x), BATCH):
            rows = order[start:start + BATCH]
            logits, caches = forward(params, x[rows])
            probs = softmax(logits)
            total_loss += float(-np.log(probs[np.arange(len(rows)), y[rows]] + 1e-12).sum())
            dlogits = probs
            dlogits[np.arange(len(rows)), y[rows]] -= 1  # d(mean cross-entropy)/d(logits) = (p - onehot) / n
            optimizer.step(params, backward(dlogits / len(rows), caches))
        if epoch % 10 == 9 or epoch == EPOCHS - 1:
            print(f"epoch {epoch + 1:3d}  loss {total_loss / len(x):.4f}  train acc {accuracy(params, x, y):.4f}")
    return params


# ---------------------------------------------------------------------------------------------------------------
# ONNX export and check


def export_onnx(p: Params) -> onnx.ModelProto:
    """The trained network as an opset-13 NCHW ONNX graph with batch size 1."""
    def node(op: str, inputs: list[str], output: str, **attrs) -> onnx.NodeProto:
        return helper.make_node(op, inputs, [output], name=output, **attrs)

    conv = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1])
    pool = dict(kernel_shape=[2, 2], strides=[2, 2])
    nodes = [
        node("Conv", ["input", "conv1_w", "conv1_b"], "conv1", **conv),
        node("Relu", ["conv1"], "relu1"),
        node("MaxPool", ["relu1"], "pool1", **pool),
        node("Conv", ["pool1", "conv2_w", "conv2_b"], "conv2", **conv),
        node("Relu", ["conv2"], "relu2"),
        node("MaxPool", ["relu2"], "pool2", **pool),
        node("Flatten", ["pool2"], "flatten", axis=1),
        node("Gemm", ["flatten", "fc1_w", "fc1_b"], "fc1", transB=1),
        node("Relu", ["fc1"], "relu3"),
        node("Gemm", ["relu3", "fc2_w", "fc2_b"], "fc2", transB=1),
        node("Softmax", ["fc2"], "probabilities", axis=1),
    ]
    graph = helper.make_graph(
        nodes, "digits_cnn",
        inputs=[helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 8, 8])],
        outputs=[helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, 10])],
        initializer=[numpy_helper.from_array(p[k].astype(np.float32), name=k) for k in sorted(p)],
    )
    model = helper.make_model(graph, producer_name="nnscons models/digits_cnn/train.py",
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # the IR version of opset 13's ONNX release, readable by older runtimes
    onnx.checker.check_model(model, full_check=True)
    return model


def onnxruntime_outputs(model_bytes: bytes, x: np.ndarray) -> np.ndarray:
    """Run the exported model one image at a time (its batch size is 1): [N,10]."""
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, {"input": x[i:i + 1]})[0] for i in range(len(x))])


def main() -> None:
    x_train, y_train, x_test, y_test, x_calib = load_split()
    print(f"train {len(x_train)}  test {len(x_test)}  calib {len(x_calib)} (a subset of train)")
    params = train(x_train, y_train)
    train_acc, test_acc = accuracy(params, x_train, y_train), accuracy(params, x_test, y_test)
    print(f"numpy:       train accuracy {train_acc:.4f}  test accuracy {test_acc:.4f}")

    model_bytes = export_onnx(params).SerializeToString()
    ort_probs = onnxruntime_outputs(model_bytes, x_test)
    max_diff = float(np.abs(ort_probs - predict(params, x_test)).max())
    ort_acc = float((ort_probs.argmax(axis=1) == y_test).mean())
    print(f"onnxruntime: test accuracy {ort_acc:.4f}  max |onnxruntime - numpy| = {max_diff:.2e}")
    if max_diff >= 1e-5 or ort_acc != test_acc:
        sys.exit("onnxruntime disagrees with the numpy forward pass; nothing written")

    write_bytes(HERE / "model.onnx", model_bytes)
    write_npz(HERE / "test.npz", {"x": x_test, "y": y_test})
    write_npz(HERE / "calib.npz", {"x": x_calib})
    for name in ("model.onnx", "test.npz", "calib.npz"):
        print(f"wrote {name}: {(HERE / name).stat().st_size} bytes")


if __name__ == "__main__":
    main()
