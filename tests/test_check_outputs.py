"""The check's reading of a test set and its measures by output kind (nnscons.data, nnscons.check), quickly.

The host test binary is a stand-in here (a Python script keeping the binary's contract: IN.npy/OUT.npy, or
IN.npz/OUT.npz with x0, x1, ... and y0, y1, ...), so these tests run the real check_model on real imported and
quantized models without compiling anything. tests/test_two_io.py and tests/test_host_check.py run the real
binaries.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from nnscons import check, data, fileio, ir, options, pipeline
from nnscons.pipeline.runner import run_steps
from nnscons.errors import NnsconsError

ROOT = Path(__file__).resolve().parents[1]
HELLO = ROOT / "models" / "hello_world_float"
TWO_IO = ROOT / "models" / "two_io_onnx"

# A stand-in for <name>_test: output k is zeros of OUTPUTS[k] = (dtype, per-sample shape), or, with ECHO, input k
# cast to that dtype (an "identity" network).
STAND_IN = """#!{python}
import sys, numpy as np
OUTPUTS = {outputs!r}
ECHO = {echo!r}
src, dst = sys.argv[1], sys.argv[2]
if src.endswith(".npz"):
    with np.load(src) as f:
        xs = [f["x%d" % k] for k in range(len(f.files))]
else:
    xs = [np.load(src)]
n = len(xs[0])
ys = [(xs[k].astype(dtype) if ECHO else np.zeros((n, *shape), dtype)) for k, (dtype, shape) in enumerate(OUTPUTS)]
if dst.endswith(".npz"):
    np.savez(dst, **{{"y%d" % k: y for k, y in enumerate(ys)}})
else:
    np.save(dst, ys[0])
"""


def stand_in(tmp_path: Path, outputs: list[tuple[str, tuple[int, ...]]], echo: bool = False) -> str:
    path = tmp_path / "model_test"
    path.write_text(STAND_IN.format(python=sys.executable, outputs=outputs, echo=echo))
    path.chmod(0o755)
    return str(path)


def chain(model: Path, calib: Path, out: Path) -> dict[str, str]:
    """Import, statistics, ranges and quantization (int8, minmax) of a model into ``out``."""
    steps = pipeline.model_steps("m", str(model), str(calib), options.resolve({}, {"quant": "int8"}), str(out))
    run_steps(s for s in steps if s.stage != "codegen")
    return pipeline.outputs_of(steps)


def run_check(files: dict[str, str], binary: str, test: Path | None, out: Path, model: Path) -> dict:
    return check.check_model("m", binary, binary, str(model), files["graph_json"], files["params_npz"],
                             files["qtable_json"], str(test) if test else None, str(out / "report.json"))


@pytest.fixture(scope="module")
def hello(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return chain(HELLO / "model.tflite", HELLO / "calib.npz", tmp_path_factory.mktemp("hello"))


@pytest.fixture(scope="module")
def two_io(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return chain(TWO_IO / "model.onnx", TWO_IO / "calib.npz", tmp_path_factory.mktemp("two_io"))


# ---- a float model without a test set (issue 11 item 2) ----------------------------------------------------------
def test_float_model_without_a_test_set_is_checked_on_random_integer_inputs(hello: dict, tmp_path: Path) -> None:
    """The float model's network input is int8 (the C quantizes floats): the sanitized binary gets random int8
    inputs. It used to stop with "Invalid integer data type 'f'" from np.iinfo."""
    graph = ir.Graph.from_json(fileio.read_json(hello["graph_json"]))
    assert graph.tensors[graph.inputs[0]].dtype == "float32"
    report = run_check(hello, stand_in(tmp_path, [("int8", (1,))]), None, tmp_path, HELLO / "model.tflite")
    assert report["passed"] and report["sanitizers"] == {"inputs": 8, "clean": True, "same_outputs": True}
    assert "float" not in report
    inputs, _ = check.network_tensors(graph, fileio.read_json(hello["qtable_json"]))
    probe = check.random_network_inputs("m", inputs, 8)[0]
    assert probe.dtype == np.int8 and probe.shape == (8, 1)


# ---- test set labels (issue 11 item 13) ---------------------------------------------------------------------------
def write_test(tmp_path: Path, **arrays: np.ndarray) -> Path:
    path = tmp_path / "test.npz"
    fileio.write_npz(path, arrays)
    return path


DIGITS_X = np.random.default_rng(0).uniform(0, 1, (360, 1, 8, 8)).astype(np.float32)


@pytest.mark.parametrize("y, message", [
    (np.arange(7) % 10, r"test\.npz: y0 holds 7 entries for 360 inputs: one label or reference output per input"),
    (np.full(360, -1), r"test\.npz: y0 holds labels from -1 to -1; the output 'digit_probabilities' has 10 "
                       r"values, so a label is a class index 0\.\.9"),
    (np.full(360, 10), r"y0 holds labels from 10 to 10; .* 0\.\.9"),
    (np.zeros(360, np.float32), r"test\.npz: y0 holds one float32 per input: labels must be integers \(class "
                                r"indices\), reference outputs need the output's shape \[N, 10\]"),
    (np.array(["cat"] * 360), r"test\.npz: y0 has dtype <U3: labels are integers"),
    (np.zeros((360, 3)), r"test\.npz: y0 has shape \[360, 3\]: labels are \[N\] integers, reference outputs of "
                         r"the output 'digit_probabilities' \[N, 10\]"),
    (np.full((360, 10), np.nan, np.float32), r"test\.npz: y0 contains NaN or infinite values"),
])
def test_bad_labels_are_one_line_naming_the_test_set(two_io: dict, tmp_path: Path, y: np.ndarray,
                                                     message: str) -> None:
    test = write_test(tmp_path, x0=DIGITS_X, x1=DIGITS_X[:, 0].mean(axis=1), y0=y)
    graph = ir.Graph.from_json(fileio.read_json(two_io["graph_json"]))
    with pytest.raises(NnsconsError, match=message):
        data.load_test_set(test, graph)


@pytest.mark.parametrize("y, message", [
    (np.arange(7, dtype=np.float32), r"test\.npz: y holds 7 entries for 100 inputs"),
    (np.array([b"x"] * 100), r"test\.npz: y has dtype \|S1"),
])
def test_bad_labels_stop_the_check_with_one_line_and_no_report(hello: dict, tmp_path: Path, y: np.ndarray,
                                                               message: str) -> None:
    """Through the check stage: before, 7 labels for 100 inputs were a ValueError deep in numpy and string labels
    were ignored."""
    x = np.linspace(0, 6, 100, dtype=np.float32).reshape(100, 1)
    test = write_test(tmp_path, x=x, y=y)
    with pytest.raises(NnsconsError, match=message):
        run_check(hello, stand_in(tmp_path, [("int8", (1,))]), test, tmp_path, HELLO / "model.tflite")
    assert not (tmp_path / "report.json").exists()


def test_out_of_range_labels_are_an_error_not_zero_accuracy(tmp_path: Path) -> None:
    """digits_cnn's labels shifted by 10 used to give "accuracy 0.00%" silently."""
    from nnscons.importers import import_model
    graph, _ = import_model(str(ROOT / "models" / "digits_cnn" / "model.onnx"))
    real = fileio.read_npz(ROOT / "models" / "digits_cnn" / "test.npz")
    test = write_test(tmp_path, x=real["x"], y=real["y"] + 10)
    with pytest.raises(NnsconsError, match=r"y holds labels from 10 to 19; the output '\w+' has 10 values"):
        data.load_test_set(test, graph)


def test_unknown_and_misplaced_keys_are_errors(two_io: dict, tmp_path: Path) -> None:
    graph = ir.Graph.from_json(fileio.read_json(two_io["graph_json"]))
    x1 = DIGITS_X[:, 0].mean(axis=1)
    for extra in ({"y": np.zeros(360, np.int64)}, {"y2": np.zeros(360, np.int64)}, {"labels": np.zeros(360)}):
        test = write_test(tmp_path, x0=DIGITS_X, x1=x1, **extra)
        key = next(iter(extra))
        with pytest.raises(NnsconsError, match=rf"test\.npz: unknown key '{key}': a test set of this model holds "
                                               r"x0, x1, y0, y1 \(inputs, then labels or reference outputs\)"):
            data.load_test_set(test, graph)


def test_labels_and_reference_outputs_are_told_apart(two_io: dict, hello: dict) -> None:
    graph = ir.Graph.from_json(fileio.read_json(two_io["graph_json"]))
    test = data.load_test_set(TWO_IO / "test.npz", graph)
    labels, values = test.expected
    assert labels.key == "y0" and labels.labels.shape == (360,) and labels.values is None
    assert values.key == "y1" and values.values.shape == (360, 4) and values.labels is None
    hello_graph = ir.Graph.from_json(fileio.read_json(hello["graph_json"]))
    (sine,) = data.load_test_set(HELLO / "test.npz", hello_graph).expected
    assert sine.values.shape == (100, 1) and sine.labels is None      # sin(x): the regression's targets


# ---- several outputs, measured by kind (issue 11 items 3 and 4) -------------------------------------------------------
def test_each_output_is_measured_by_its_kind(two_io: dict, tmp_path: Path) -> None:
    report = run_check(two_io, stand_in(tmp_path, [("int8", (10,)), ("int8", (4,))]), TWO_IO / "test.npz",
                       tmp_path, TWO_IO / "model.onnx")
    y0, y1 = report["float"]["outputs"]
    assert (y0["output"], y0["tensor"], y0["kind"]) == ("y0", "digit_probabilities", "classifier")
    assert {"top1_agreement", "accuracy_quantized", "accuracy_float", "snr_db", "max_abs_error"} <= set(y0)
    assert y0["accuracy_float"] == pytest.approx(0.927778, abs=1e-6)          # models/two_io_onnx/README.md
    assert (y1["output"], y1["tensor"], y1["kind"]) == ("y1", "quadrant_means", "regression")
    assert "top1_agreement" not in y1 and "accuracy_quantized" not in y1
    assert {"target_rmse_quantized", "target_rmse_float", "target_max_abs_error_quantized"} <= set(y1)
    row = check.summary_row(report)
    assert row["vs float"].startswith("y0: ") and "y1" not in row["vs float"]   # no top-1 for the regression
    assert row["accuracy"].startswith("y0: ") and "; y1: rmse " in row["accuracy"]


def autoencoder(path: Path, size: int = 16, code: int = 4) -> None:
    """A float ONNX autoencoder: x [1,size] -> Gemm code -> Relu -> Gemm size -> reconstruction [1,size]."""
    rng = np.random.default_rng(1)
    weights = {"w1": rng.normal(0, 0.4, (code, size)).astype(np.float32), "b1": np.zeros(code, np.float32),
               "w2": rng.normal(0, 0.4, (size, code)).astype(np.float32), "b2": np.zeros(size, np.float32)}
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], transB=1), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["reconstruction"], transB=1)]
    graph = helper.make_graph(nodes, "ae", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, size])],
                              [helper.make_tensor_value_info("reconstruction", TensorProto.FLOAT, [1, size])],
                              initializer=[numpy_helper.from_array(v, k) for k, v in weights.items()])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)


def test_a_reconstruction_gets_anomaly_score_agreement_not_top1(tmp_path: Path) -> None:
    model = tmp_path / "ae.onnx"
    autoencoder(model)
    rng = np.random.default_rng(2)
    fileio.write_npz(tmp_path / "calib.npz", {"x": rng.normal(0, 1, (64, 16)).astype(np.float32)})
    labels = np.arange(40) % 2
    x = (rng.normal(0, 1, (40, 16)) * (1 + 2 * labels[:, None])).astype(np.float32)   # anomalies: larger
    test = write_test(tmp_path, x=x, y=labels)
    files = chain(model, tmp_path / "calib.npz", tmp_path / "build")
    report = run_check(files, stand_in(tmp_path, [("int8", (16,))], echo=True), test, tmp_path, model)
    flt = report["float"]
    assert flt["kind"] == "reconstruction" and "top1_agreement" not in flt
    assert -1 <= flt["anomaly_score_rank_correlation"] <= 1 and 0 <= flt["anomaly_auc_quantized"] <= 1
    assert flt["anomaly_auc_float"] > 0.5           # the float network's error is larger on the larger inputs
    row = check.summary_row(report)
    assert row["vs float"].startswith("score rank corr ") and "top-1" not in row["vs float"]
    assert row["accuracy"].startswith("AUC ")
    fileio.write_npz(test, {"x": x, "y": labels + 1})
    with pytest.raises(NnsconsError, match=r"test\.npz: y: the labels of a reconstruction output are anomaly labels, "
                                           r"0 \(normal\) or 1 \(anomalous\); found 2"):
        run_check(files, stand_in(tmp_path, [("int8", (16,))], echo=True), test, tmp_path, model)


def test_rank_measures_agree_with_scikit_learn() -> None:
    from sklearn.metrics import roc_auc_score
    rng = np.random.default_rng(3)
    scores = np.round(rng.normal(0, 1, 200), 1)             # ties included
    labels = (rng.uniform(0, 1, 200) < 0.3).astype(np.int64)
    assert check.outputs.roc_auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-6)
    other = scores + rng.normal(0, 0.5, 200)
    ranks = lambda v: np.argsort(np.argsort(v))  # noqa: E731 (no ties in ``other``)
    assert check.outputs.rank_correlation(other, other) == 1.0
    assert check.outputs.rank_correlation(other, -other) == -1.0
    expected = np.corrcoef(ranks(other), ranks(other ** 3 + other))[0, 1]
    assert check.outputs.rank_correlation(other, other ** 3 + other) == pytest.approx(expected, abs=1e-6)


def test_network_tensors_follow_code_generation(two_io: dict, hello: dict) -> None:
    """The check's idea of the network's inputs and outputs is code generation's (codegen.model.lower)."""
    from nnscons.codegen.model import lower
    for files in (two_io, hello):
        graph = ir.Graph.from_json(fileio.read_json(files["graph_json"]))
        qtable = fileio.read_json(files["qtable_json"])
        lowered = lower(graph, qtable["tensors"]).graph
        assert check.network_names(graph, qtable) == (lowered.inputs, lowered.outputs)


# ---- class names from model.toml (issue 15: labels = [...]) ------------------------------------------------------
DIGITS = ROOT / "models" / "digits_cnn"


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return chain(DIGITS / "model.onnx", DIGITS / "calib.npz", tmp_path_factory.mktemp("digits"))


def test_labels_name_the_classes_per_class_and_in_the_summary(digits: dict, tmp_path: Path) -> None:
    """A stand-in that always answers class 0: per class, only class 0 is right; the summary names the classes."""
    names = [f"digit{k}" for k in range(10)]
    binary = stand_in(tmp_path, [("int8", (10,))])
    report = check.check_model("m", binary, None, str(DIGITS / "model.onnx"), digits["graph_json"],
                               digits["params_npz"], digits["qtable_json"], str(DIGITS / "test.npz"),
                               str(tmp_path / "report.json"), raise_on_failure=False, labels=names)
    labels = fileio.read_npz(DIGITS / "test.npz")["y"]
    assert report["labels"] == names and report["test_set_classes"] == [0] * len(labels)
    per_class = report["float"]["per_class"]
    assert [c["class"] for c in per_class] == sorted(set(labels.tolist()))
    assert sum(c["count"] for c in per_class) == len(labels)
    assert per_class[0]["accuracy_quantized"] == 1.0 and all(c["accuracy_quantized"] == 0 for c in per_class[1:])
    assert all(c["accuracy_float"] > 0.8 for c in per_class)
    assert check.summary_row(report)["classes"] == "digit0 digit0..."


def test_labels_that_do_not_fit_the_output_are_one_line(digits: dict, tmp_path: Path) -> None:
    binary = stand_in(tmp_path, [("int8", (10,))])
    with pytest.raises(NnsconsError, match=r"m: model\.toml names 3 classes \(labels\); the network's output has "
                                           r"10 values"):
        check.check_model("m", binary, None, str(DIGITS / "model.onnx"), digits["graph_json"], digits["params_npz"],
                          digits["qtable_json"], None, str(tmp_path / "report.json"), labels=["a", "b", "c"])


@pytest.mark.parametrize("text", ['labels = "yes"', "labels = [1, 2]", 'labels = ["ok", ""]',
                                  'labels = ["a\\nb"]', f'labels = ["{"x" * 65}"]'])
def test_bad_labels_in_model_toml_are_one_line(tmp_path: Path, text: str) -> None:
    toml = tmp_path / "model.toml"
    toml.write_text(text + "\n")
    with pytest.raises(NnsconsError, match=r"model\.toml: labels must be a list of class names"):
        options.read_labels(toml)
    assert options.read_model_toml(toml) == {}     # a declaration, not an option
