"""ONNX recurrent layers: LSTM and GRU (float, forward) imported as the IR's ``lstm`` / ``gru``, their reference
against onnxruntime on models built here with numpy weights, and each unsupported form refused in one line."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from nnscons import reference
from nnscons.errors import NnsconsError
from nnscons.importers import import_model
from test_codegen import qtable_for


def rnn_model(path: Path, kind: str, steps: int = 6, batch: int = 2, features: int = 5, units: int = 4,
              bias: bool = True, seed: int = 0, attrs: Optional[dict[str, Any]] = None,
              extra_inputs: Optional[dict[int, np.ndarray]] = None, outputs: tuple[str, ...] = ("y",)) -> None:
    """x [T, B, I] -> one LSTM or GRU (random weights) -> Y squeezed to [T, B, H] (and any other outputs named)."""
    rng = np.random.default_rng(seed)
    gates = 4 if kind == "LSTM" else 3
    dirs = 2 if (attrs or {}).get("direction") == "bidirectional" else 1
    inits = [numpy_helper.from_array(rng.normal(0, 0.5, (dirs, gates * units, features)).astype(np.float32), "W"),
             numpy_helper.from_array(rng.normal(0, 0.5, (dirs, gates * units, units)).astype(np.float32), "R"),
             numpy_helper.from_array(np.array([1], np.int64), "axis")]
    inputs = ["x", "W", "R", ""]
    if bias:
        inits.append(numpy_helper.from_array(rng.normal(0, 0.3, (dirs, 2 * gates * units)).astype(np.float32), "B"))
        inputs[3] = "B"
    for position, value in (extra_inputs or {}).items():
        inputs += [""] * (position + 1 - len(inputs))
        inputs[position] = f"in{position}"
        inits.append(numpy_helper.from_array(value, f"in{position}"))
    node_outputs = ["y", "y_h" if "y_h" in outputs else "", "y_c" if "y_c" in outputs else ""]
    nodes = [helper.make_node(kind, inputs, node_outputs[:3 if kind == "LSTM" else 2], hidden_size=units,
                              **(attrs or {})),
             helper.make_node("Reshape" if dirs > 1 else "Squeeze", ["y", "axis"] if dirs == 1 else ["y", "flat"],
                              ["ys"])]
    if dirs > 1:
        inits.append(numpy_helper.from_array(np.array([steps, dirs * batch, units], np.int64), "flat"))
    graph_outputs = [helper.make_tensor_value_info("ys", TensorProto.FLOAT, [steps, dirs * batch, units])] + \
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, [1, batch, units]) for o in outputs if o != "y"]
    graph = helper.make_graph(nodes, "rnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                           [steps, batch, features])],
                              graph_outputs, inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], ir_version=8), path)


@pytest.mark.parametrize("kind, attrs, bias", [("LSTM", {}, True), ("LSTM", {}, False),
                                               ("GRU", {"linear_before_reset": 0}, True),
                                               ("GRU", {"linear_before_reset": 1}, True)],
                         ids=["lstm", "lstm-no-bias", "gru", "gru-linear-before-reset"])
def test_reference_matches_onnxruntime(kind: str, attrs: dict, bias: bool, tmp_path: Path) -> None:
    path = tmp_path / "rnn.onnx"
    rnn_model(path, kind, attrs=attrs, bias=bias, seed=len(attrs) + bias)
    graph, params = import_model(path)
    assert [op.type for op in graph.ops][0] == kind.lower()
    x = np.random.default_rng(1).uniform(-1, 1, (6, 2, 5)).astype(np.float32)
    expected = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    ours = reference.run(graph, params, {graph.inputs[0]: x})[graph.outputs[0]]
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def batch_first_model(path: Path, kind: str, steps: int = 5, features: int = 3, units: int = 4) -> None:
    """x [1, T, I] -> Transpose -> LSTM/GRU -> Y [T, 1, 1, H] -> Reshape [1, T*H], as PyTorch exports a
    ``batch_first=True`` layer followed by a flatten."""
    rng = np.random.default_rng(3)
    gates = 4 if kind == "LSTM" else 3
    inits = [numpy_helper.from_array(rng.normal(0, 0.5, (1, gates * units, features)).astype(np.float32), "W"),
             numpy_helper.from_array(rng.normal(0, 0.5, (1, gates * units, units)).astype(np.float32), "R"),
             numpy_helper.from_array(rng.normal(0, 0.3, (1, 2 * gates * units)).astype(np.float32), "B"),
             numpy_helper.from_array(np.array([1, steps * units], np.int64), "flat")]
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
             helper.make_node(kind, ["xt", "W", "R", "B"], ["y"], hidden_size=units),
             helper.make_node("Reshape", ["y", "flat"], ["out"])]
    graph = helper.make_graph(nodes, "rnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                           [1, steps, features])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, steps * units])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], ir_version=8), path)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_a_batch_first_layer_runs_batch_major_and_keeps_the_batch_axis(kind: str, tmp_path: Path) -> None:
    """The Transpose in front of the layer costs nothing: the IR op reads the batch-first input itself, so every
    tensor keeps the batch on axis 0 and the reference runs many samples at once (statistics, checks)."""
    path = tmp_path / "rnn.onnx"
    batch_first_model(path, kind)
    graph, params = import_model(path)
    op = graph.ops[0]
    assert op.type == kind.lower() and op.attrs["time_major"] is False
    assert all(graph.tensors[t].shape[0] == 1 for t in graph.tensors if not graph.tensors[t].is_const)
    samples = np.random.default_rng(4).uniform(-1, 1, (7, 5, 3)).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    expected = np.concatenate([session.run(None, {"x": s[None]})[0] for s in samples])
    ours = reference.run(graph, params, {graph.inputs[0]: samples})[graph.outputs[0]]
    np.testing.assert_allclose(ours, expected, atol=1e-5)


@pytest.mark.parametrize("kind, change, message", [
    ("LSTM", {"attrs": {"direction": "bidirectional"}}, "direction bidirectional"),
    ("LSTM", {"attrs": {"clip": 3.0}}, "clip"),
    ("LSTM", {"attrs": {"input_forget": 1}}, "input_forget"),
    ("GRU", {"attrs": {"activations": ["HardSigmoid", "Tanh"]}}, "activations"),
    ("LSTM", {"extra_inputs": {5: np.ones((1, 2, 4), np.float32)}}, "initial_h"),
    ("LSTM", {"extra_inputs": {7: np.ones((1, 12), np.float32)}}, "peephole"),
    ("GRU", {"outputs": ("y", "y_h")}, "Y_h"),
])
def test_unsupported_forms_are_refused_in_one_line(kind: str, change: dict, message: str, tmp_path: Path) -> None:
    path = tmp_path / "rnn.onnx"
    rnn_model(path, kind, **change)
    with pytest.raises(NnsconsError, match=message) as info:
        import_model(path)
    assert "rnn.onnx" in str(info.value) and "\n" not in str(info.value)


def test_zero_initial_states_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "rnn.onnx"
    rnn_model(path, "LSTM", extra_inputs={5: np.zeros((1, 2, 4), np.float32), 6: np.zeros((1, 2, 4), np.float32)})
    graph, _ = import_model(path)
    assert graph.ops[0].type == "lstm"


def test_quantizing_a_gru_is_refused_by_name(tmp_path: Path) -> None:
    from nnscons import ranges, stats
    path = tmp_path / "rnn.onnx"
    rnn_model(path, "GRU")
    graph, params = import_model(path)
    calib = {graph.inputs[0]: np.random.default_rng(2).uniform(-1, 1, (6, 2, 5)).astype(np.float32)}
    table = ranges.range_table(stats.compute_stats(graph, params, calib), "int8", "minmax")
    with pytest.raises(NnsconsError, match="gru.*cannot be quantized yet"):
        qtable_for(graph, params, "int8", table)
