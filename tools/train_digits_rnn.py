"""Train the digits_lstm_onnx and digits_gru_onnx example models and export them as ONNX (not part of the build).

Both are small float recurrent classifiers for scikit-learn's bundled 8x8 handwritten digits (``load_digits``:
1797 images, 10 classes, shipped inside scikit-learn, so nothing is downloaded). Each image is read as a sequence
of its 8 rows of 8 pixels (pixel / 16, so in [0, 1]). The input is batch-first and transposed to the time-major
form ONNX's LSTM and GRU take (``layout`` 0), as PyTorch exports a ``batch_first=True`` layer:

    input [B=1, T=8, I=8] -> Transpose [T=8, B=1, I=8]
    LSTM 32 units (gates i, o, f, c)                      Y [8,1,1,32]   (models/digits_lstm_onnx)
      or GRU 32 units, linear_before_reset=1 (z, r, h)                   (models/digits_gru_onnx)
    Reshape to [1, 256] (every step's hidden state)
    Gemm 10 -> Softmax                                    -> [1,10]

The head reads the whole sequence Y (every step's state), not only the last step: nnscons' ONNX importer takes
only the recurrent op's ``Y`` output (``Y_h`` / ``Y_c`` must be unused) and accepts Slice / Gather on constants
only, so flattening all of Y is the form it imports.

Training is plain numpy (backpropagation through time written by hand, softmax cross-entropy, Adam with a cosine
learning-rate schedule), deterministic (fixed seeds), and takes well under a minute. For each model it writes,
into models/<name>/:

    model.onnx   opset 14, built with onnx.helper, checked by onnx.checker
    test.npz     x float32 [N,8,8] (N sequences: the model input [1,8,8] less its batch axis), y int64 labels:
                 the held-out 20%
    calib.npz    x float32 [200,8,8]: a fixed sample of the training sequences, for activation statistics

after checking that onnxruntime gives the numpy forward pass's outputs on the test set.

Run from the project root:  .venv/bin/python tools/train_digits_rnn.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "site_scons"))
sys.path.insert(0, str(ROOT / "models" / "digits_cnn"))
from nnscons.fileio import write_bytes, write_npz  # noqa: E402  (deterministic npz: fixed zip timestamps)
from train import Adam, softmax  # noqa: E402  (digits_cnn's training script: the same optimizer, softmax and split)
from train import load_split as cnn_split  # noqa: E402

SEED = 0
STEPS, FEATURES = 8, 8    # an 8x8 image as 8 rows of 8 pixels
UNITS = 32
CLASSES = 10
FLAT = STEPS * UNITS      # the head reads every step's hidden state
EPOCHS = 30
BATCH = 32
LEARNING_RATE = 5e-3
OPSET = 14

Params = dict[str, np.ndarray]


# ---------------------------------------------------------------------------------------------------------------
# Data


def load_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test, x_calib): digits_cnn's split (the same images in each part), each image
    a sequence [T,I] of its rows, float32 in [0, 1]. The model's input is one sequence with a batch axis, [1,T,I]
    (see ``model_layout``)."""
    x_train, y_train, x_test, y_test, x_calib = cnn_split()
    return x_train[:, 0], y_train, x_test[:, 0], y_test, x_calib[:, 0]


def model_layout(x: np.ndarray) -> np.ndarray:
    """[N,T,I] float32: N sequences, each in the model's input shape [B=1, T, I] without its batch axis."""
    return np.ascontiguousarray(x, dtype=np.float32)


# ---------------------------------------------------------------------------------------------------------------
# Recurrent layers, batch-first inside numpy ([N,T,I] -> [N,T,H]) with ONNX's gate packing. Forward functions
# return (states, cache); backward functions take the cache and d(loss)/d(states) and return the gradients.


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # = 1 / (1 + exp(-x)), without overflow


def lstm_forward(p: Params, x: np.ndarray) -> tuple[np.ndarray, list]:
    """ONNX LSTM, forward, no peephole, zero initial states. W [4H,I], R [4H,H], Wb and Rb [4H]; blocks i, o, f, c.

    i, o, f = sigmoid(x W^T + h R^T + Wb + Rb) blocks;  g = tanh(the c block)
    c' = f * c + i * g;  h' = o * tanh(c')
    """
    n, steps, _ = x.shape
    u = UNITS
    h = np.zeros((n, u), x.dtype)
    c = np.zeros((n, u), x.dtype)
    bias = p["Wb"] + p["Rb"]
    xw = x @ p["W"].T + bias  # [N,T,4H]: the input's part of every step at once
    states, cache = np.zeros((n, steps, u), x.dtype), []
    for t in range(steps):
        a = xw[:, t] + h @ p["R"].T
        i, o, f = sigmoid(a[:, :u]), sigmoid(a[:, u:2 * u]), sigmoid(a[:, 2 * u:3 * u])
        g = np.tanh(a[:, 3 * u:])
        c_prev, h_prev = c, h
        c = f * c_prev + i * g
        tanh_c = np.tanh(c)
        h = o * tanh_c
        states[:, t] = h
        cache.append((h_prev, c_prev, i, o, f, g, tanh_c))
    return states, [x, cache]


def lstm_backward(p: Params, dstates: np.ndarray, caches: list) -> Params:
    x, cache = caches
    n, steps, _ = x.shape
    u = UNITS
    da_all = np.zeros((n, steps, 4 * u), x.dtype)
    dh_next = np.zeros((n, u), x.dtype)
    dc_next = np.zeros((n, u), x.dtype)
    dR = np.zeros_like(p["R"])
    for t in reversed(range(steps)):
        h_prev, c_prev, i, o, f, g, tanh_c = cache[t]
        dh = dstates[:, t] + dh_next
        do = dh * tanh_c
        dc = dh * o * (1 - tanh_c ** 2) + dc_next
        da = np.concatenate([dc * g * i * (1 - i),            # i
                             do * o * (1 - o),                 # o
                             dc * c_prev * f * (1 - f),        # f
                             dc * i * (1 - g ** 2)], axis=1)   # c
        da_all[:, t] = da
        dR += da.T @ h_prev
        dh_next = da @ p["R"]
        dc_next = dc * f
    db = da_all.sum(axis=(0, 1))
    return {"W": np.einsum("ntg,nti->gi", da_all, x), "R": dR, "Wb": db, "Rb": db.copy()}


def gru_forward(p: Params, x: np.ndarray) -> tuple[np.ndarray, list]:
    """ONNX GRU, forward, linear_before_reset=1, zero initial state. W [3H,I], R [3H,H], Wb and Rb [3H]; blocks
    z, r, h.

    z, r = sigmoid(x W^T + Wb + h R^T + Rb) blocks
    n = tanh(x Wh^T + Wbh + r * (h Rh^T + Rbh));  h' = (1 - z) * n + z * h
    """
    n_rows, steps, _ = x.shape
    u = UNITS
    h = np.zeros((n_rows, u), x.dtype)
    xw = x @ p["W"].T + p["Wb"]  # [N,T,3H]
    states, cache = np.zeros((n_rows, steps, u), x.dtype), []
    for t in range(steps):
        hr = h @ p["R"].T + p["Rb"]  # [N,3H]: the recurrent part, biases included
        z = sigmoid(xw[:, t, :u] + hr[:, :u])
        r = sigmoid(xw[:, t, u:2 * u] + hr[:, u:2 * u])
        lin = hr[:, 2 * u:]
        cand = np.tanh(xw[:, t, 2 * u:] + r * lin)
        h_prev = h
        h = (1 - z) * cand + z * h_prev
        states[:, t] = h
        cache.append((h_prev, z, r, lin, cand))
    return states, [x, cache]


def gru_backward(p: Params, dstates: np.ndarray, caches: list) -> Params:
    x, cache = caches
    n_rows, steps, _ = x.shape
    u = UNITS
    dx_pre = np.zeros((n_rows, steps, 3 * u), x.dtype)  # d/d(x W^T + Wb)
    dh_next = np.zeros((n_rows, u), x.dtype)
    dR = np.zeros_like(p["R"])
    dRb = np.zeros_like(p["Rb"])
    for t in reversed(range(steps)):
        h_prev, z, r, lin, cand = cache[t]
        dh = dstates[:, t] + dh_next
        da_n = dh * (1 - z) * (1 - cand ** 2)
        da_z = dh * (h_prev - cand) * z * (1 - z)
        da_r = da_n * lin * r * (1 - r)
        dx_pre[:, t] = np.concatenate([da_z, da_r, da_n], axis=1)
        dhr = np.concatenate([da_z, da_r, da_n * r], axis=1)  # d/d(h R^T + Rb)
        dR += dhr.T @ h_prev
        dRb += dhr.sum(axis=0)
        dh_next = dh * z + dhr @ p["R"]
    return {"W": np.einsum("ntg,nti->gi", dx_pre, x), "R": dR, "Wb": dx_pre.sum(axis=(0, 1)), "Rb": dRb}


RECURRENT = {"LSTM": (4, lstm_forward, lstm_backward), "GRU": (3, gru_forward, gru_backward)}


# ---------------------------------------------------------------------------------------------------------------
# The network: recurrent layer, every step's state flattened (step-major, as ONNX's Reshape of Y [T,1,1,H]
# to [1, T*H] orders it), Gemm 10, softmax


def init_params(kind: str, rng: np.random.Generator) -> Params:
    """Recurrent weights uniform in +-1/sqrt(H) (PyTorch's default), the LSTM's forget-gate bias 1 (in Wb), the
    head Glorot-uniform, other biases zero."""
    gates = RECURRENT[kind][0]
    k = 1.0 / np.sqrt(UNITS)

    def uniform(shape: tuple[int, ...], limit: float) -> np.ndarray:
        return rng.uniform(-limit, limit, shape).astype(np.float32)

    p = {"W": uniform((gates * UNITS, FEATURES), k), "R": uniform((gates * UNITS, UNITS), k),
         "Wb": np.zeros(gates * UNITS, np.float32), "Rb": np.zeros(gates * UNITS, np.float32),
         "fc_w": uniform((CLASSES, FLAT), np.sqrt(6.0 / (FLAT + CLASSES))), "fc_b": np.zeros(CLASSES, np.float32)}
    if kind == "LSTM":
        p["Wb"][2 * UNITS:3 * UNITS] = 1.0  # ONNX block f
    return p


def forward(kind: str, p: Params, x: np.ndarray) -> tuple[np.ndarray, list]:
    """Logits [N,10] of sequences x [N,T,I] and the caches the backward pass needs."""
    states, rnn_cache = RECURRENT[kind][1](p, x)
    flat = states.reshape(len(x), FLAT)  # [N, T*H], step-major
    return flat @ p["fc_w"].T + p["fc_b"], [rnn_cache, flat]


def backward(kind: str, p: Params, dlogits: np.ndarray, caches: list) -> Params:
    rnn_cache, flat = caches
    grads = RECURRENT[kind][2](p, (dlogits @ p["fc_w"]).reshape(len(flat), STEPS, UNITS), rnn_cache)
    grads["fc_w"], grads["fc_b"] = dlogits.T @ flat, dlogits.sum(axis=0)
    return grads


def predict(kind: str, p: Params, x: np.ndarray) -> np.ndarray:
    """Class probabilities [N,10], as the exported model computes them."""
    return softmax(forward(kind, p, x)[0])


def accuracy(kind: str, p: Params, x: np.ndarray, y: np.ndarray) -> float:
    return float((predict(kind, p, x).argmax(axis=1) == y).mean())


# ---------------------------------------------------------------------------------------------------------------
# Training


def train(kind: str, x: np.ndarray, y: np.ndarray) -> Params:
    """Mini-batch Adam on softmax cross-entropy, the learning rate decaying along a half cosine to zero."""
    rng = np.random.default_rng(SEED)
    params = init_params(kind, rng)
    optimizer = Adam(params, LEARNING_RATE)
    for epoch in range(EPOCHS):
        optimizer.lr = LEARNING_RATE * 0.5 * (1 + np.cos(np.pi * epoch / EPOCHS))
        order = rng.permutation(len(x))
        total_loss = 0.0
        for start in range(0, len(x), BATCH):
            rows = order[start:start + BATCH]
            logits, caches = forward(kind, params, x[rows])
            probs = softmax(logits)
            total_loss += float(-np.log(probs[np.arange(len(rows)), y[rows]] + 1e-12).sum())
            dlogits = probs
            dlogits[np.arange(len(rows)), y[rows]] -= 1  # d(mean cross-entropy)/d(logits) = (p - onehot) / n
            optimizer.step(params, backward(kind, params, dlogits / len(rows), caches))
        if epoch % 10 == 9 or epoch == EPOCHS - 1:
            print(f"  epoch {epoch + 1:3d}  loss {total_loss / len(x):.4f}  "
                  f"train acc {accuracy(kind, params, x, y):.4f}")
    return params


# ---------------------------------------------------------------------------------------------------------------
# ONNX export and check


def export_onnx(kind: str, name: str, p: Params) -> onnx.ModelProto:
    """The trained network as an opset-14 ONNX graph: input [1,T,I] -> Transpose -> LSTM/GRU -> Reshape -> Gemm -> Softmax."""
    attrs = {"hidden_size": UNITS, "direction": "forward"}
    if kind == "GRU":
        attrs["linear_before_reset"] = 1
    nodes = [
        # Y only: the outputs Y_h (and Y_c) are left unnamed, as nnscons' importer requires
        # batch-first in, as PyTorch exports batch_first=True: [1,T,I] -> [T,1,I] (ONNX's recurrent ops are time-major)
        helper.make_node("Transpose", ["input"], ["time_major"], name="time_major", perm=[1, 0, 2]),
        helper.make_node(kind, ["time_major", "W", "R", "B"], ["rnn_y"], name="rnn", **attrs),
        helper.make_node("Reshape", ["rnn_y", "flat_shape"], ["flatten"], name="flatten"),
        helper.make_node("Gemm", ["flatten", "fc_w", "fc_b"], ["fc"], name="fc", transB=1),
        helper.make_node("Softmax", ["fc"], ["probabilities"], name="probabilities", axis=1),
    ]
    arrays = {
        "W": p["W"][None], "R": p["R"][None], "B": np.concatenate([p["Wb"], p["Rb"]])[None],  # one direction
        "flat_shape": np.array([1, FLAT], np.int64), "fc_w": p["fc_w"], "fc_b": p["fc_b"],
    }
    graph = helper.make_graph(
        nodes, name,
        inputs=[helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, STEPS, FEATURES])],
        outputs=[helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, CLASSES])],
        initializer=[numpy_helper.from_array(np.ascontiguousarray(arrays[k]), name=k) for k in arrays],
    )
    model = helper.make_model(graph, producer_name="nnscons tools/train_digits_rnn.py",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 7  # the IR version of opset 14's ONNX release (1.9), readable by older runtimes
    onnx.checker.check_model(model, full_check=True)
    return model


def onnxruntime_outputs(model_bytes: bytes, x: np.ndarray) -> np.ndarray:
    """Run the exported model one sequence at a time (x [N,T,I]; its batch size is 1): [N,10]."""
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, {"input": x[i:i + 1]})[0] for i in range(len(x))])


def build(kind: str, name: str, data: tuple[np.ndarray, ...]) -> None:
    x_train, y_train, x_test, y_test, x_calib = data
    out = ROOT / "models" / name
    print(f"{name}: {kind} {UNITS} units, {EPOCHS} epochs")
    params = train(kind, x_train, y_train)
    n_params = sum(v.size for v in params.values())
    train_acc, test_acc = accuracy(kind, params, x_train, y_train), accuracy(kind, params, x_test, y_test)
    print(f"  numpy:       {n_params} parameters  train accuracy {train_acc:.4f}  test accuracy {test_acc:.4f}")

    model_bytes = export_onnx(kind, name, params).SerializeToString()
    test_x = model_layout(x_test)
    ort_probs = onnxruntime_outputs(model_bytes, test_x)
    max_diff = float(np.abs(ort_probs - predict(kind, params, x_test)).max())
    ort_right = int((ort_probs.argmax(axis=1) == y_test).sum())
    ort_acc = ort_right / len(y_test)
    print(f"  onnxruntime: test accuracy {ort_acc:.4f} ({ort_right}/{len(y_test)})  "
          f"max |onnxruntime - numpy| = {max_diff:.2e}")
    if max_diff >= 1e-5 or ort_acc != test_acc:
        sys.exit(f"{name}: onnxruntime disagrees with the numpy forward pass; nothing written")

    write_bytes(out / "model.onnx", model_bytes)
    write_npz(out / "test.npz", {"x": test_x, "y": y_test})
    write_npz(out / "calib.npz", {"x": model_layout(x_calib)})
    for file in ("model.onnx", "test.npz", "calib.npz"):
        print(f"  wrote models/{name}/{file}: {(out / file).stat().st_size} bytes")


def main() -> None:
    data = load_split()
    print(f"train {len(data[0])}  test {len(data[2])}  calib {len(data[4])} (a subset of train)")
    build("LSTM", "digits_lstm_onnx", data)
    build("GRU", "digits_gru_onnx", data)


if __name__ == "__main__":
    main()
