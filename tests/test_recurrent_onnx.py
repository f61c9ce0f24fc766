"""ONNX recurrent layers: LSTM and GRU (float, forward) imported as the IR's ``lstm`` / ``gru``, their reference
against onnxruntime on models built here with numpy weights, and each unsupported form refused in one line."""
from __future__ import annotations

import ctypes
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
from test_codegen import cmsis_archive, qtable_for  # noqa: F401  (the fixture)


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


def gru_ranges(path: Path, scheme: str, linear_before_reset: int) -> tuple[Any, Any, Any, np.ndarray]:
    """A time-major GRU of batch 2 (6 steps, 5 inputs, 4 units) built here, its statistics from 30 sequences."""
    from nnscons import ranges, stats
    rnn_model(path, "GRU", attrs={"linear_before_reset": linear_before_reset}, seed=5 + linear_before_reset)
    graph, params = import_model(path)
    xs = np.random.default_rng(2).uniform(-1, 1, (30, 6, 2, 5)).astype(np.float32)
    # the graph has no batch axis: one chunk of 6 rows is one whole sequence [6, 2, 5]
    calib = {graph.inputs[0]: xs.reshape(-1, 2, 5)}
    table = ranges.range_table(stats.compute_stats(graph, params, calib, chunk=6), scheme, "minmax")
    return graph, params, table, xs


@pytest.mark.parametrize("scheme", ["int8", "int16x8", "q7", "q15"])
def test_a_gru_is_quantized_per_gate_part(scheme: str, tmp_path: Path) -> None:
    """Each gate's input and recurrent rescales to the int16 pre-activation at 2^-12; the recurrent biases at the
    hidden state's scale times the recurrent weights'; the rescales of the hidden state to Q0.15 and back."""
    graph, params, table, _ = gru_ranges(tmp_path / "rnn.onnx", scheme, 1)
    tables, qparams = qtable_for(graph, params, scheme, table)
    op = graph.ops[0]
    entry, tensors = tables["layers"][op.name], tables["tensors"]
    assert sorted(entry["gates"]) == ["candidate", "reset", "update"]
    s_h = tensors[op.outputs[0]]["scale"][0]
    for k in range(3):
        assert qparams[op.inputs[1 + k]].dtype == qparams[op.inputs[4 + k]].dtype == np.int8
        assert tensors[op.inputs[10 + k]]["scale"][0] == pytest.approx(s_h * tensors[op.inputs[4 + k]]["scale"][0],
                                                                       rel=1e-6)
    m, shift = entry["to_q15"]
    assert m * 2.0 ** (shift - 31) == pytest.approx(s_h / 2 ** -15, rel=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("scheme, linear_before_reset, snr_db", [("int8", 1, 30), ("int8", 0, 30),
                                                                  ("int16x8", 1, 40), ("int16x8", 0, 40)])
def test_generated_gru_follows_the_float_gru(scheme: str, linear_before_reset: int, snr_db: float, tmp_path: Path,
                                             cmsis_archive: Path) -> None:  # noqa: F811
    """nnscons_gru_step_s8 / _s16 against the float reference on 30 time-major batch-2 sequences, from a reset
    each: signal-to-noise of the dequantized outputs above the bound (int8 30 dB; int16 40 dB, its weights int8); as one stream the
    state carries (the outputs differ from the reset runs' and still follow the float GRU run over the whole
    stream)."""
    from test_codegen import build
    graph, params, table, xs = gru_ranges(tmp_path / "rnn.onnx", scheme, linear_before_reset)
    net = build("g", graph, params, tmp_path / "c", cmsis_archive, scheme, table)
    in_type, out_type = ch_types(net)

    def run(x: np.ndarray) -> np.ndarray:
        xq = np.zeros(x.size, in_type)
        net.lib.g_quantize_input(np.ascontiguousarray(x, np.float32).ctypes.data_as(ctypes.c_void_p),
                                 xq.ctypes.data_as(ctypes.c_void_p), ctypes.c_size_t(x.size))
        (yq,) = net(xq)
        y = np.zeros(yq.size, np.float32)
        net.lib.g_dequantize_output(np.ascontiguousarray(yq).ctypes.data_as(ctypes.c_void_p),
                                    y.ctypes.data_as(ctypes.c_void_p), ctypes.c_size_t(yq.size))
        return y.reshape(yq.shape)

    def snr(ours: np.ndarray, expected: np.ndarray) -> float:
        return float(10 * np.log10(np.sum(expected ** 2) / np.sum((ours - expected) ** 2)))

    expected = np.stack([reference.run(graph, params, {graph.inputs[0]: x})[graph.outputs[0]] for x in xs])
    ours = []
    for x in xs:
        net.info.reset()
        ours.append(run(x))
    assert snr(np.stack(ours), expected) > snr_db
    net.info.reset()
    streamed = np.stack([run(x) for x in xs])
    # the same GRU over the 180 steps at once (rnn_model draws the weights alike for any length)
    rnn_model(tmp_path / "long.onnx", "GRU", steps=180, attrs={"linear_before_reset": linear_before_reset},
              seed=5 + linear_before_reset)
    long_graph, long_params = import_model(tmp_path / "long.onnx")
    whole = reference.run(long_graph, long_params, {long_graph.inputs[0]: np.concatenate(list(xs))})[
        long_graph.outputs[0]]
    assert snr(streamed.reshape(whole.shape), whole) > snr_db
    assert not np.allclose(streamed[1:], np.stack(ours)[1:])


def ch_types(net: Any) -> tuple[np.dtype, np.dtype]:
    import cmsis_host as ch
    return ch.io_dtype(net.inputs[0]), ch.io_dtype(net.outputs[0])


@pytest.mark.slow
@pytest.mark.parametrize("kind, scheme, linear_before_reset, snr_db", [
    ("GRU", "q7", 1, 20), ("GRU", "q7", 0, 20), ("GRU", "q15", 1, 55), ("GRU", "q15", 0, 55),
    ("LSTM", "q7", 0, 20), ("LSTM", "q15", 0, 55)])
def test_legacy_lowering_follows_the_float_layer(kind: str, scheme: str, linear_before_reset: int, snr_db: float,
                                                 tmp_path: Path, cmsis_archive: Path) -> None:  # noqa: F811
    """api=legacy: the seed guide's lowering (arm_fully_connected_q7/q15_opt, arm_nn_activations_direct_q7/q15,
    generated element-wise loops) of a time-major batch-2 LSTM or GRU follows the float layer on 30 sequences from a
    reset each, above the bound (q7 20 dB, q15 55 dB: its weights are 16-bit)."""
    from nnscons import codegen, ranges, stats
    from test_codegen import Network, write_sources
    path = tmp_path / "rnn.onnx"
    rnn_model(path, kind, attrs={"linear_before_reset": linear_before_reset} if kind == "GRU" else {}, seed=7)
    graph, params = import_model(path)
    xs = np.random.default_rng(3).uniform(-1, 1, (30, 6, 2, 5)).astype(np.float32)
    table = ranges.range_table(stats.compute_stats(graph, params, {graph.inputs[0]: xs.reshape(-1, 2, 5)}, chunk=6),
                               scheme, "minmax")
    tables, qparams = qtable_for(graph, params, scheme, table, api="legacy")
    files = codegen.generate("g", graph, tables, qparams, "legacy", "h")
    assert f"g_{kind.lower()}_step_{scheme}(" in files["g_model.c"]
    net = Network("g", write_sources(files, tmp_path / "c"), cmsis_archive)
    in_type = ch_types(net)[0]
    ours, expected = [], []
    for x in xs:
        xq = np.zeros(x.size, in_type)
        net.lib.g_quantize_input(np.ascontiguousarray(x).ctypes.data_as(ctypes.c_void_p),
                                 xq.ctypes.data_as(ctypes.c_void_p), ctypes.c_size_t(x.size))
        net.info.reset()
        (yq,) = net(xq)
        y = np.zeros(yq.size, np.float32)
        net.lib.g_dequantize_output(np.ascontiguousarray(yq).ctypes.data_as(ctypes.c_void_p),
                                    y.ctypes.data_as(ctypes.c_void_p), ctypes.c_size_t(yq.size))
        ours.append(y)
        expected.append(reference.run(graph, params, {graph.inputs[0]: x})[graph.outputs[0]].reshape(-1))
    ours_a, expected_a = np.stack(ours), np.stack(expected)
    snr = 10 * np.log10(np.sum(expected_a ** 2) / np.sum((ours_a - expected_a) ** 2))
    assert snr > snr_db
