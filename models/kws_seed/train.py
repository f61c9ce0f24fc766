"""Train the seed's keyword spotter (Arm's guide and the Mathematica post, ../shared/seeds/001_...) and write this
folder: model.onnx (float), calib.npz and test.npz (raw 16 kHz audio), not part of the build.

Words: "backward", "yes", "no", synthesized by espeak-ng (Debian) in many voices (7 English accents x 12 voice
variants = 84 speakers), speeds and pitches, placed at a random time in a one-second clip, half of the training
clips with white noise at 5 to 30 dB SNR. The split is by speaker: the test set's 17 speakers are never heard in
training. Features: the front end of model.toml (CMSIS-DSP's MFCC in q15 through the cmsisdsp package, exactly what
the generated C computes: 49 frames of 10 coefficients, Q8.7 read as reals). Network, the seed's:

    mfcc [1, 1, 49, 10]
    Conv 8 x (10, 4) -> ReLU -> Conv 16 x (10, 4) stride (2, 1) -> ReLU -> Flatten
    Gemm 58 -> ReLU -> Gemm 128 -> ReLU -> Gemm 3 -> Softmax        "backward", "yes", "no"

Plain numpy (im2col convolutions, softmax cross-entropy, digits_cnn's Adam), seeded, a couple of minutes on two
cores. The data sets are kept under the repository's 300 KB per file (compressed npz): calib.npz 12 training clips (4
noisy), test.npz 16 clips of unseen speakers (4 noisy). All 153 unseen-voice clips, clean and noisy, go as features
to build/kws_seed_eval/ (with the model and 64 training clips' features as calib.npz) for
`nnscons experiments build/kws_seed_eval`, which quantizes and runs every scheme on them.

Run from the project root:  ./dev python models/kws_seed/train.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "site_scons"))
sys.path.insert(0, str(ROOT / "models" / "digits_cnn"))
from nnscons.fileio import write_bytes, write_npz  # noqa: E402
from nnscons.frontend import mfcc, read_frontend  # noqa: E402
from nnscons.frontend.speech import speak  # noqa: E402
from train import Adam, softmax  # noqa: E402  (digits_cnn's optimizer and softmax)

SEED = 0
WORDS = ("backward", "yes", "no")
ACCENTS = ("en-gb", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m7", "f1", "f2", "f3", "f4", "f5", "klatt")
RENDITIONS = 3              # speed / pitch draws per speaker and word
TEST_SPEAKERS = 17
SAMPLES = 16000             # one second at 16 kHz
C1, C2, HIDDEN1, HIDDEN2 = 8, 16, 58, 128
EPOCHS = 30
BATCH = 32
LEARNING_RATE = 2e-3
TEST_CLEAN, TEST_NOISY = 12, 4           # the committed sets: noise does not compress, speech and silence do
CALIB_CLEAN, CALIB_NOISY = 8, 4
EVAL_DIR = ROOT / "build" / "kws_seed_eval"

Params = dict[str, np.ndarray]


# ---------------------------------------------------------------------------------------------------------------
# Spoken words
def say(word: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    """espeak-ng's rendition at 16 kHz, float samples."""
    return speak(word, 16000, voice, speed, pitch)


def clip(speech: np.ndarray, rng: np.random.Generator, noise_db: float | None) -> np.ndarray:
    """The word at a random time in one second, optionally with white noise at ``noise_db`` SNR; int16."""
    speech = speech[:SAMPLES]
    out = np.zeros(SAMPLES)
    start = int(rng.integers(0, SAMPLES - len(speech) + 1))
    out[start:start + len(speech)] = speech
    if noise_db is not None:
        power = np.mean(speech ** 2) / 10 ** (noise_db / 10)
        out += rng.normal(0, np.sqrt(power), SAMPLES)
    return np.clip(np.round(out), -32768, 32767).astype(np.int16)


def synthesize(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(audio [N, 16000] int16, label [N], speaker [N]) for every speaker, word and rendition (clean)."""
    speakers = [f"{a}+{v}" for a in ACCENTS for v in VARIANTS]
    audio, labels, who = [], [], []
    for s, voice in enumerate(speakers):
        for k, word in enumerate(WORDS):
            for _ in range(RENDITIONS):
                speech = say(word, voice, int(rng.integers(120, 200)), int(rng.integers(25, 75)))
                audio.append(speech)
                labels.append(k)
                who.append(s)
    return audio, np.array(labels), np.array(who)


# ---------------------------------------------------------------------------------------------------------------
# The network
def im2col(x: np.ndarray, kh: int, kw: int, sh: int) -> tuple[np.ndarray, int, int]:
    """[N,C,H,W] -> [N*OH*OW, C*kh*kw] (no padding, stride (sh, 1))."""
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh]   # [N,C,OH,OW,kh,kw]
    n, c, oh, ow = windows.shape[:4]
    return windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * kh * kw), oh, ow


def col2im(cols: np.ndarray, shape: tuple[int, ...], kh: int, kw: int, sh: int, oh: int, ow: int) -> np.ndarray:
    n, c, h, w = shape
    patches = cols.reshape(n, oh, ow, c, kh, kw)
    dx = np.zeros(shape, cols.dtype)
    for ky in range(kh):
        for kx in range(kw):
            dx[:, :, ky:ky + sh * (oh - 1) + 1:sh, kx:kx + ow] += patches[:, :, :, :, ky, kx].transpose(0, 3, 1, 2)
    return dx


def conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, sh: int) -> tuple[np.ndarray, tuple]:
    cols, oh, ow = im2col(x, w.shape[2], w.shape[3], sh)
    out = cols @ w.reshape(w.shape[0], -1).T + b
    return out.reshape(len(x), oh, ow, -1).transpose(0, 3, 1, 2), (cols, x.shape, w, sh, oh, ow)


def conv_back(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cols, shape, w, sh, oh, ow = cache
    rows = dout.transpose(0, 2, 3, 1).reshape(-1, w.shape[0])
    dx = col2im(rows @ w.reshape(w.shape[0], -1), shape, w.shape[2], w.shape[3], sh, oh, ow)
    return dx, (rows.T @ cols).reshape(w.shape), rows.sum(axis=0)


def init(rng: np.random.Generator) -> Params:
    def glorot(shape: tuple[int, ...], fan_in: int, fan_out: int) -> np.ndarray:
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, shape).astype(np.float32)
    return {"conv1_w": glorot((C1, 1, 10, 4), 40, C1 * 40), "conv1_b": np.zeros(C1, np.float32),
            "conv2_w": glorot((C2, C1, 10, 4), C1 * 40, C2 * 40), "conv2_b": np.zeros(C2, np.float32),
            "fc1_w": glorot((HIDDEN1, C2 * 16 * 4), C2 * 64, HIDDEN1), "fc1_b": np.zeros(HIDDEN1, np.float32),
            "fc2_w": glorot((HIDDEN2, HIDDEN1), HIDDEN1, HIDDEN2), "fc2_b": np.zeros(HIDDEN2, np.float32),
            "fc3_w": glorot((3, HIDDEN2), HIDDEN2, 3), "fc3_b": np.zeros(3, np.float32)}


def forward(p: Params, x: np.ndarray) -> tuple[np.ndarray, list]:
    h1, c1 = conv(x, p["conv1_w"], p["conv1_b"], 1)
    r1 = np.maximum(h1, 0)
    h2, c2 = conv(r1, p["conv2_w"], p["conv2_b"], 2)
    r2 = np.maximum(h2, 0)
    flat = r2.reshape(len(x), -1)
    f1 = np.maximum(flat @ p["fc1_w"].T + p["fc1_b"], 0)
    f2 = np.maximum(f1 @ p["fc2_w"].T + p["fc2_b"], 0)
    return f2 @ p["fc3_w"].T + p["fc3_b"], [c1, h1, c2, h2, flat, f1, f2]


def backward(p: Params, dlogits: np.ndarray, cache: list) -> Params:
    c1, h1, c2, h2, flat, f1, f2 = cache
    g: Params = {"fc3_w": dlogits.T @ f2, "fc3_b": dlogits.sum(0)}
    d2 = (dlogits @ p["fc3_w"]) * (f2 > 0)
    g.update({"fc2_w": d2.T @ f1, "fc2_b": d2.sum(0)})
    d1 = (d2 @ p["fc2_w"]) * (f1 > 0)
    g.update({"fc1_w": d1.T @ flat, "fc1_b": d1.sum(0)})
    dr2 = (d1 @ p["fc1_w"]).reshape(h2.shape) * (h2 > 0)
    dr1, g["conv2_w"], g["conv2_b"] = conv_back(dr2, c2)
    _, g["conv1_w"], g["conv1_b"] = conv_back(dr1 * (h1 > 0), c1)
    return g


def train(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> Params:
    p = init(rng)
    optimizer = Adam(p, LEARNING_RATE)
    for epoch in range(EPOCHS):
        order = rng.permutation(len(x))
        optimizer.lr = LEARNING_RATE * 0.5 * (1 + np.cos(np.pi * epoch / EPOCHS))
        for start in range(0, len(x), BATCH):
            idx = order[start:start + BATCH]
            logits, cache = forward(p, x[idx])
            dlogits = softmax(logits)
            dlogits[np.arange(len(idx)), y[idx]] -= 1.0
            optimizer.step(p, backward(p, dlogits / len(idx), cache))
        if (epoch + 1) % 10 == 0:
            print(f"  epoch {epoch + 1}  train accuracy {accuracy(p, x, y):.4f}")
    return p


def accuracy(p: Params, x: np.ndarray, y: np.ndarray) -> float:
    return float((forward(p, x)[0].argmax(1) == y).mean())


def export_onnx(p: Params) -> bytes:
    def node(op: str, inputs: list[str], output: str, **attrs) -> onnx.NodeProto:
        return helper.make_node(op, inputs, [output], name=output, **attrs)
    nodes = [node("Conv", ["mfcc", "conv1_w", "conv1_b"], "conv1", kernel_shape=[10, 4]),
             node("Relu", ["conv1"], "relu1"),
             node("Conv", ["relu1", "conv2_w", "conv2_b"], "conv2", kernel_shape=[10, 4], strides=[2, 1]),
             node("Relu", ["conv2"], "relu2"),
             node("Flatten", ["relu2"], "flatten", axis=1),
             node("Gemm", ["flatten", "fc1_w", "fc1_b"], "fc1", transB=1), node("Relu", ["fc1"], "relu3"),
             node("Gemm", ["relu3", "fc2_w", "fc2_b"], "fc2", transB=1), node("Relu", ["fc2"], "relu4"),
             node("Gemm", ["relu4", "fc3_w", "fc3_b"], "fc3", transB=1),
             node("Softmax", ["fc3"], "probabilities", axis=1)]
    graph = helper.make_graph(nodes, "kws_seed", [helper.make_tensor_value_info("mfcc", TensorProto.FLOAT,
                                                                               [1, 1, 49, 10])],
                              [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, 3])],
                              [numpy_helper.from_array(p[k].astype(np.float32), k) for k in sorted(p)])
    model = helper.make_model(graph, producer_name="nnscons models/kws_seed/train.py",
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def main() -> None:
    rng = np.random.default_rng(SEED)
    spec = read_frontend(HERE / "model.toml")
    print("synthesizing with espeak-ng ...")
    speech, labels, speakers = synthesize(rng)
    test_speakers = set(rng.choice(len(ACCENTS) * len(VARIANTS), TEST_SPEAKERS, replace=False).tolist())
    is_test = np.array([s in test_speakers for s in speakers])
    noisy = rng.random(len(speech)) < 0.5
    clean = np.stack([clip(s, rng, None) for s in speech])
    noised = np.stack([clip(s, rng, float(rng.uniform(5, 30))) for s in speech])
    train_audio = np.where(noisy[:, None], noised, clean)[~is_test]
    features = {name: mfcc.real_features(spec, mfcc.features(spec, a)).reshape(len(a), 1, 49, 10)
                for name, a in (("train", train_audio), ("clean", clean[is_test]), ("noisy", noised[is_test]))}
    y_train, y_test = labels[~is_test], labels[is_test]
    print(f"train {len(y_train)} clips of {84 - TEST_SPEAKERS} speakers; test {len(y_test)} of {TEST_SPEAKERS}")
    p = train(features["train"], y_train, rng)
    for name in ("clean", "noisy"):
        print(f"  unseen voices, {name}: float accuracy {accuracy(p, features[name], y_test):.4f}")
    model = export_onnx(p)
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    ort_out = np.concatenate([session.run(None, {"mfcc": f[None]})[0] for f in features["clean"]])
    assert np.abs(ort_out - softmax(forward(p, features["clean"])[0])).max() < 1e-4
    write_bytes(HERE / "model.onnx", model)
    test_order = rng.permutation(int(is_test.sum()))
    pick_clean, pick_noisy = test_order[:TEST_CLEAN], test_order[TEST_CLEAN:TEST_CLEAN + TEST_NOISY]
    write_npz(HERE / "test.npz", {"x": np.concatenate([clean[is_test][pick_clean], noised[is_test][pick_noisy]]),
                                  "y": np.concatenate([y_test[pick_clean], y_test[pick_noisy]])}, compress=True)
    train_clean, train_noisy = clean[~is_test], noised[~is_test]
    calib_order = rng.permutation(len(train_clean))
    write_npz(HERE / "calib.npz", {"x": np.concatenate([train_clean[calib_order[:CALIB_CLEAN]],
                                                         train_noisy[calib_order[-CALIB_NOISY:]]])}, compress=True)
    # every unseen-voice clip, clean then noisy, as features: `nnscons experiments build/kws_seed_eval` (not committed)
    write_bytes(EVAL_DIR / "model.onnx", model)
    write_npz(EVAL_DIR / "test.npz", {"x": np.concatenate([features["clean"], features["noisy"]]),
                                      "y": np.concatenate([y_test, y_test])})
    write_npz(EVAL_DIR / "calib.npz", {"x": features["train"][rng.permutation(len(y_train))[:64]]})
    for file in ("model.onnx", "test.npz", "calib.npz"):
        print(f"  wrote models/kws_seed/{file}: {(HERE / file).stat().st_size} bytes")


if __name__ == "__main__":
    main()
