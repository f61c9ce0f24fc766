"""Recurrent layers: the TFLite LSTM imported as one ``lstm`` op, its float reference against LiteRT, its kernel
parameters against the values TFLite Micro derives (../shared/reference/cmsis-nn-recurrent-facts.md, the
trained_lstm_int8 test vectors), and the generated steps (``arm_nn_lstm_step_s8`` of the bundled kernels) bit-exact
with TFLite Micro from a reset and as one stream; the int16 sigmoid/tanh against the real functions.
"""
from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter as LiteRTInterpreter
from tflite_micro import runtime

from conftest import SHARED
from nnscons import codegen, ranges, reference, stats
from nnscons.errors import NnsconsError
from nnscons.importers import import_model
from nnscons.importers.tflite import decode as decode_tflite
from nnscons.importers.tflite import read_file as read_tflite
import tflite_lstm_builder as lb
from nnscons import ir
from test_codegen import CMSIS, ROOT, STRICT, Network, build, cmsis_archive, qtable_for, run, write_sources  # noqa: F401

MODELS = SHARED / "models"
FLOAT, INT8 = MODELS / "mnist_lstm_float" / "model.tflite", MODELS / "mnist_lstm_int8" / "model.tflite"


def test_lstm_imports_as_one_op_with_its_states_quantization() -> None:
    graph, params = import_model(INT8)
    (lstm,) = [op for op in graph.ops if op.type == "lstm"]
    assert len(lstm.inputs) == 13 and graph.tensors[lstm.outputs[0]].shape == [1, 28, 20]
    assert lstm.attrs["time_major"] is False and lstm.attrs["cell_clip"] == 10.0
    assert lstm.attrs["cell_state"]["scale"] == 2.0 ** -12 and lstm.attrs["hidden_state"]["zero_point"] == 0
    assert [params[t].shape for t in lstm.inputs[1:13]] == [(20, 28)] * 4 + [(20, 20)] * 4 + [(20,)] * 4


def test_float_reference_matches_litert() -> None:
    """Every output of the float model within 1e-5 of LiteRT's (reset before each input), on the sample "3" (which
    both classify as 3) and random rows."""
    graph, params = import_model(FLOAT)
    interpreter = LiteRTInterpreter(model_path=str(FLOAT))
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    rng = np.random.default_rng(4)
    xs = [np.load(MODELS / "mnist_lstm_float" / "sample_input_3.npy").astype(np.float32)] + \
        [rng.uniform(0, 1, (1, 28, 28)).astype(np.float32) for _ in range(8)]
    ours = reference.run(graph, params, {graph.inputs[0]: np.concatenate(xs)})[graph.outputs[0]]
    for k, x in enumerate(xs):
        interpreter.reset_all_variables()
        interpreter.set_tensor(inp["index"], x)
        interpreter.invoke()
        np.testing.assert_allclose(ours[k], interpreter.get_tensor(out["index"])[0], atol=1e-5)
    assert int(np.argmax(ours[0])) == 3


def test_kernel_parameters_are_tflite_micros() -> None:
    """The facts' verified trained_lstm_int8 vectors (this model): per gate (input, recurrent) multiplier and shift,
    the cell and output rescales, tanh's shift and the clip."""
    graph, params = import_model(INT8)
    tables, _ = qtable_for(graph, params)
    entry = tables["layers"]["lstm_0"]
    assert entry["gates"] == {"forget": {"input": [2042355287, -3], "hidden": [1590606064, -2]},
                              "input": {"input": [1239940808, -2], "hidden": [1276881787, -1]},
                              "cell": {"input": [1292446455, -2], "hidden": [1360030423, -2]},
                              "output": {"input": [1625050027, -2], "hidden": [1131361493, -1]}}
    assert entry["input_to_cell"] == [1073741824, -17] and entry["forget_to_cell"] == [1073741824, -14]
    assert entry["output"] == [2146304392, -23]
    assert (entry["cell_scale_power"], entry["cell_clip"], entry["input_zero_point"]) == (-12, 32767, -128)


def float_lstm_ranges(scheme: str) -> tuple[ir.Graph, dict, ranges.RangeTable]:
    graph, params = import_model(FLOAT)
    calib = np.load(ROOT / "models" / "mnist_lstm_float" / "calib.npz")["x"]
    table = ranges.range_table(stats.compute_stats(graph, params, {graph.inputs[0]: calib}), scheme, "minmax")
    return graph, params, table


@pytest.mark.parametrize("scheme, activations, bias", [("int16x8", "int16", np.int64), ("q7", "int8", np.int32),
                                                       ("q15", "int16", np.int64)])
def test_float_lstm_other_schemes_take_their_words(scheme: str, activations: str, bias: type) -> None:
    """int16x8: int16 activations at zero point 0, int64 biases; q7 / q15: every scale a power of two (weights in
    the Q-format their largest value needs), zero points 0; weights int8 in every scheme."""
    graph, params, table = float_lstm_ranges(scheme)
    tables, qparams = qtable_for(graph, params, scheme, table)
    op = graph.ops[0]
    entry = tables["layers"][op.name]
    assert tables["tensors"][op.inputs[0]]["dtype"] == activations
    assert entry["input_zero_point"] == entry["hidden_zero_point"] == 0
    for name in op.inputs[1:9]:
        assert qparams[name].dtype == np.int8
        if scheme != "int16x8":
            assert np.log2(tables["tensors"][name]["scale"][0]).is_integer()
            assert 64 <= np.abs(qparams[name]).max() <= 127
    for name in op.inputs[9:13]:
        assert qparams[name].dtype == bias


@pytest.mark.parametrize("scheme, dtype", [("q7", np.int8), ("q15", np.int16)])
def test_float_lstm_on_the_legacy_api_takes_the_seeds_formats(scheme: str, dtype: type) -> None:
    """api=legacy: W-bit weights and biases in Q-formats, every rescale a shift from the formats (gate parts to
    Q3.(W-4), products of Q0.(W-1) gates to the cell's and the hidden state's formats)."""
    graph, params, table = float_lstm_ranges(scheme)
    tables, qparams = qtable_for(graph, params, scheme, table, api="legacy")
    op = graph.ops[0]
    entry = tables["layers"][op.name]
    top = np.iinfo(dtype).bits - 1
    assert entry["legacy"] and entry["gate_frac"] == top - 3
    assert entry["cell_product_shift"] == 2 * top - entry["cell_frac"]
    assert entry["hidden_shift"] == 2 * top - entry["hidden_frac"]
    for k, gate in enumerate(("input", "forget", "cell", "output")):
        w, b = op.inputs[1 + k], op.inputs[9 + k]
        assert qparams[w].dtype == qparams[b].dtype == dtype
        fw, fb = tables["tensors"][w]["frac_bits"], tables["tensors"][b]["frac_bits"]
        assert entry["gates"][gate]["input"] == {"out_shift": entry["input_frac"] + fw - entry["gate_frac"],
                                                 "bias_shift": entry["input_frac"] + fw - fb}


def test_float_lstm_quantized_to_int8_as_tflites_converter_does() -> None:
    """Weights symmetric int8 per tensor, biases at s_x * s_w, the hidden state quantized as the output, the cell
    state int16 at the smallest power-of-two scale that holds every cell value of the calibration set."""
    graph, params, table = float_lstm_ranges("int8")
    tables, qparams = qtable_for(graph, params, "int8", table)
    op = graph.ops[0]
    entry, cell = tables["layers"][op.name], table.tensors[op.outputs[0] + ir.CELL_STATE_SUFFIX]
    reach = max(abs(cell.min), abs(cell.max))
    assert 2.0 ** (entry["cell_scale_power"] + 14) < reach <= 2.0 ** (entry["cell_scale_power"] + 15)
    assert [entry["hidden_zero_point"]] == tables["tensors"][op.outputs[0]]["zero_point"]
    for name in op.inputs[1:9]:
        assert qparams[name].dtype == np.int8 and np.abs(qparams[name]).max() == 127
    for k, name in enumerate(op.inputs[9:13]):
        scale = tables["tensors"][op.inputs[0]]["scale"][0] * tables["tensors"][op.inputs[1 + k]]["scale"][0]
        assert tables["tensors"][name]["scale"][0] == pytest.approx(scale, rel=1e-6)


@pytest.mark.slow
def test_float_lstm_quantized_to_int8_classifies_as_float_does(tmp_path: Path,
                                                               cmsis_archive: Path) -> None:  # noqa: F811
    """mnist_lstm_float through quant=int8 from its calibration set, on its 200 test digits: within a point of the
    float model's accuracy, and the same class as float on at least 95% of them."""
    graph, params, table = float_lstm_ranges("int8")
    net = build("lf", graph, params, tmp_path, cmsis_archive, "int8", table)
    test = np.load(ROOT / "models" / "mnist_lstm_float" / "test.npz")
    reference_out = reference.run(graph, params, {graph.inputs[0]: test["x"]})[graph.outputs[0]]
    ours = []
    for x in test["x"]:
        xf = np.ascontiguousarray(x, dtype=np.float32)
        xq = np.zeros(xf.size, np.int8)
        net.lib.lf_quantize_input(xf.ctypes.data_as(ctypes.c_void_p), xq.ctypes.data_as(ctypes.c_void_p),
                                  ctypes.c_size_t(xf.size))
        net.info.reset()
        ours.append(int(np.argmax(net(xq)[0])))
    floats = np.argmax(reference_out, axis=-1)
    assert np.mean(np.array(ours) == test["y"]) >= np.mean(floats == test["y"]) - 0.01
    assert np.mean(np.array(ours) == floats) >= 0.95


def build_lstm(directory: Path, archive: Path) -> tuple[Network, dict[str, str]]:
    """mnist_lstm_int8 generated (quant=model) and compiled with the bundled kernels."""
    graph, params = import_model(INT8)
    tables, qparams = qtable_for(graph, params)
    files = codegen.generate("lstm", graph, tables, qparams, "s8", "h")
    return Network("lstm", write_sources(files, directory), archive), files


@pytest.mark.slow
def test_generated_lstm_is_bit_exact_with_tflite_micro(tmp_path: Path, cmsis_archive: Path) -> None:  # noqa: F811
    """The sample, 50 noisy copies of it and 50 random sequences, TFLite Micro reset before each (the C starts from
    zero state)."""
    net, files = build_lstm(tmp_path, cmsis_archive)
    assert "arm_nn_lstm_step_s8(" in files["lstm_model.c"]
    interpreter = runtime.Interpreter.from_file(str(INT8))
    rng = np.random.default_rng(9)
    sample = np.load(MODELS / "mnist_lstm_int8" / "sample_input_3.npy").reshape(1, 28, 28).astype(np.int8)
    noisy = [np.clip(sample + rng.integers(-40, 40, sample.shape), -128, 127).astype(np.int8) for _ in range(50)]
    xs = [sample] + noisy + [rng.integers(-128, 127, (1, 28, 28), endpoint=True).astype(np.int8) for _ in range(50)]
    outputs = set()
    for x in xs:
        interpreter.reset()
        net.info.reset()
        interpreter.set_input(x, 0)
        interpreter.invoke()
        (y,) = net(x)
        np.testing.assert_array_equal(y.reshape(-1), interpreter.get_output(0).reshape(-1))
        outputs.add(y.tobytes())
    net.info.reset()
    assert len(outputs) > 30 and int(np.argmax(net(xs[0])[0])) == 3


@pytest.mark.slow
def test_int16_sigmoid_and_tanh_follow_the_real_functions(tmp_path: Path, cmsis_archive: Path) -> None:  # noqa: F811
    """Every int16 input, Q3.12 (left shift 0) and a Q4.11 cell state (left shift 1) for tanh: within 2^-13 of
    sigmoid / tanh of the input's real value (the output is Q0.15)."""
    library = tmp_path / "libact.so"
    run(["gcc", *STRICT, "-shared", "-fPIC", "-o", str(library), "-Wl,--whole-archive", str(cmsis_archive),
         "-Wl,--no-whole-archive"])
    lib = ctypes.CDLL(str(library))
    x = np.arange(-32768, 32768, dtype=np.int16)
    for kind, left_shift, function in ((0, 0, lambda v: 1 / (1 + np.exp(-v))), (1, 0, np.tanh), (1, 1, np.tanh)):
        y = np.zeros_like(x)
        lib.arm_nn_activation_s16(x.ctypes.data_as(ctypes.c_void_p), y.ctypes.data_as(ctypes.c_void_p),
                                  ctypes.c_int32(x.size), ctypes.c_int32(left_shift), ctypes.c_int(kind))
        real = function(x.astype(np.float64) * 2.0 ** (left_shift - 12))
        assert np.abs(y / 32768.0 - real).max() < 2.0 ** -13, (kind, left_shift)


@pytest.mark.slow
def test_state_carries_between_calls_until_reset(tmp_path: Path, cmsis_archive: Path) -> None:  # noqa: F811
    """Called without resets the network continues each sequence from the last one's state, as TFLite Micro does
    without reset(): 40 sequences as one stream, bit-exact; <name>_reset() then gives the first answer again."""
    net, files = build_lstm(tmp_path, cmsis_archive)
    assert "#define LSTM_STATEFUL 1" in files["lstm.h"]
    interpreter = runtime.Interpreter.from_file(str(INT8))
    rng = np.random.default_rng(12)
    sample = np.load(MODELS / "mnist_lstm_int8" / "sample_input_3.npy").reshape(1, 28, 28).astype(np.int8)
    xs = [np.clip(sample + rng.integers(-60, 60, sample.shape), -128, 127).astype(np.int8) for _ in range(40)]
    net.info.reset()
    interpreter.reset()
    streamed = []
    for x in xs:
        interpreter.set_input(x, 0)
        interpreter.invoke()
        (y,) = net(x)
        np.testing.assert_array_equal(y.reshape(-1), interpreter.get_output(0).reshape(-1))
        streamed.append(y.tobytes())
    net.info.reset()
    assert net(xs[0])[0].tobytes() == streamed[0]
    assert len(set(streamed)) > 1


HARNESS = """
#include <stdio.h>
#include "arm_nnfunctions.h"
{externs}
int lstm_sequence(const int8_t *input, int8_t *output)
{{
    static int16_t temp1[{count}], temp2[{count}], cell[{count}];
    cmsis_nn_lstm_context buffers = {{temp1, temp2, cell}};
    static const cmsis_nn_lstm_params params = {{
        {time_major}, {batch}, {steps}, {features}, {units}, {input_offset},
        {forget_to_cell}, {input_to_cell}, {cell_clip}, {cell_scale_power}, {output}, {output_offset},
        {gates}}};
    return (int)arm_lstm_unidirectional_s8(input, output, &params, &buffers);
}}
"""


@pytest.mark.slow
def test_arm_lstm_unidirectional_s8_is_tflite_micros_lstm(tmp_path: Path, cmsis_archive: Path) -> None:  # noqa: F811
    """The bundled whole-sequence entry point (not what the generated code calls: it starts from zero state every
    call) on the generated constants, against the LSTM tensor of TFLite Micro (kPreserveAllTensors) after a reset."""
    graph, params = import_model(INT8)
    tables, qparams = qtable_for(graph, params)
    files = codegen.generate("lstm", graph, tables, qparams, "s8", "h")
    write_sources(files, tmp_path)
    q = tables["layers"]["lstm_0"]
    arrays = ("input_weights", "input_effective_bias", "hidden_weights", "hidden_effective_bias", "bias")
    externs = "\n".join(f"extern const {'int8_t' if 'weights' in a else 'int32_t'} lstm_lstm_0_{g}_{a}[];"
                        for g in ("forget", "input", "cell", "output") for a in arrays)
    gates = ", ".join(
        "{" + f"{q['gates'][g]['input'][0]}, {q['gates'][g]['input'][1]}, lstm_lstm_0_{g}_input_weights, "
        f"lstm_lstm_0_{g}_input_effective_bias, {q['gates'][g]['hidden'][0]}, {q['gates'][g]['hidden'][1]}, "
        f"lstm_lstm_0_{g}_hidden_weights, lstm_lstm_0_{g}_hidden_effective_bias, lstm_lstm_0_{g}_bias, "
        f"{'ARM_TANH' if g == 'cell' else 'ARM_SIGMOID'}" + "}" for g in ("forget", "input", "cell", "output"))
    pair = lambda v: f"{v[0]}, {v[1]}"  # noqa: E731
    (tmp_path / "harness.c").write_text(HARNESS.format(
        externs=externs, count=20, time_major=0, batch=1, steps=28, features=28, units=20,
        input_offset=-q["input_zero_point"], forget_to_cell=pair(q["forget_to_cell"]),
        input_to_cell=pair(q["input_to_cell"]), cell_clip=q["cell_clip"], cell_scale_power=q["cell_scale_power"],
        output=pair(q["output"]), output_offset=q["hidden_zero_point"], gates=gates))
    library = tmp_path / "liblstm.so"
    run(["gcc", *STRICT, "-shared", "-fPIC", "-I", str(CMSIS / "Include"), str(tmp_path / "harness.c"),
         str(tmp_path / "lstm_weights.c"), str(cmsis_archive), "-o", str(library)])
    lib = ctypes.CDLL(str(library))
    interpreter = runtime.Interpreter.from_file(str(INT8),
                                                intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    model = decode_tflite(str(INT8), read_tflite(str(INT8)))
    (lstm_tensor,) = [op.outputs[0] for op in model.ops if op.name == "UNIDIRECTIONAL_SEQUENCE_LSTM"]
    rng = np.random.default_rng(21)
    for _ in range(10):
        x = rng.integers(-128, 127, (1, 28, 28), endpoint=True).astype(np.int8)
        y = np.zeros((1, 28, 20), np.int8)
        assert lib.lstm_sequence(x.ctypes.data_as(ctypes.c_void_p), y.ctypes.data_as(ctypes.c_void_p)) == 0
        interpreter.reset()
        interpreter.set_input(x, 0)
        interpreter.invoke()
        np.testing.assert_array_equal(y, interpreter.GetTensor(lstm_tensor, 0)["tensor_data"].reshape(1, 28, 20))



@pytest.mark.parametrize("variant, message", [({"peephole": True}, "has peephole weights"),
                                              ({"projection": True}, "has a projection"),
                                              ({"cifg": True}, "has no input gate"),
                                              ({"activation": 1}, "cell activation must be TANH")])
def test_lstm_variants_are_refused_by_name(variant: dict, message: str, tmp_path: Path) -> None:
    path = tmp_path / "lstm.tflite"
    path.write_bytes(lb.lstm(2, 3, 4, 5, **variant))
    with pytest.raises(NnsconsError, match=message) as info:
        import_model(path)
    assert "lstm.tflite" in str(info.value) and "\n" not in str(info.value)


def test_float_reference_of_a_time_major_batch_matches_tflite_micro(tmp_path: Path) -> None:
    path = tmp_path / "lstm.tflite"
    path.write_bytes(lb.lstm(3, 5, 4, 6, time_major=True, int8=False, cell_clip=0.8, seed=3))
    graph, params = import_model(path)
    x = np.random.default_rng(5).uniform(-1, 1, (5, 3, 4)).astype(np.float32)
    interpreter = runtime.Interpreter.from_file(str(path))
    interpreter.set_input(x, 0)
    interpreter.invoke()
    ours = reference.run(graph, params, {graph.inputs[0]: x})[graph.outputs[0]]
    np.testing.assert_allclose(ours, interpreter.get_output(0), atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("shape", [dict(batch=2, steps=5, features=6, units=7, time_major=True, cell_clip=0.5),
                                   dict(batch=3, steps=4, features=5, units=6, seed=1),
                                   dict(batch=2, steps=5, features=6, units=7, time_major=True, int16=True),
                                   dict(batch=3, steps=4, features=5, units=6, seed=1, int16=True, cell_clip=0.5)],
                         ids=["time-major-batch-2-clip", "batch-major-batch-3", "int16-time-major-batch-2",
                              "int16-batch-major-batch-3-clip"])
def test_own_lstms_are_bit_exact_with_tflite_micro(shape: dict, tmp_path: Path,
                                                   cmsis_archive: Path) -> None:  # noqa: F811
    """LSTMs built here, int8x8_16 (zero points 3 and -5, cell 2^-11) on arm_nn_lstm_step_s8 and int16x8_16 (int64
    biases) on arm_nn_lstm_step_s16: 20 random sequences from a reset each and as one stream."""
    path = tmp_path / "lstm.tflite"
    path.write_bytes(lb.lstm(**shape))
    graph, params = import_model(path)
    tables, qparams = qtable_for(graph, params)
    files = codegen.generate("own", graph, tables, qparams, "s8", "h")
    assert f"arm_nn_lstm_step_{'s16' if shape.get('int16') else 's8'}(" in files["own_model.c"]
    net = Network("own", write_sources(files, tmp_path / "c"), cmsis_archive)
    interpreter = runtime.Interpreter.from_file(str(path))
    details = interpreter.get_input_details(0)
    dtype = np.dtype(details["dtype"])
    rng = np.random.default_rng(8)
    xs = [rng.integers(np.iinfo(dtype).min, np.iinfo(dtype).max, tuple(details["shape"]), endpoint=True).astype(dtype)
          for _ in range(20)]
    for stream in (False, True):
        net.info.reset()
        interpreter.reset()
        for x in xs:
            if not stream:
                net.info.reset()
                interpreter.reset()
            interpreter.set_input(x, 0)
            interpreter.invoke()
            (y,) = net(x)
            np.testing.assert_array_equal(y.reshape(-1), interpreter.get_output(0).reshape(-1))


@pytest.mark.parametrize("change, message", [({"input_scale": 1e9}, "input rescale is .*shift of"),
                                             ({"bias_max": 2 ** 31 - 10}, "reaches .* beyond its accumulator")])
def test_out_of_range_lstm_is_refused_in_one_line(change: dict, message: str, tmp_path: Path) -> None:
    """A hostile int8 LSTM (an absurd input scale, biases at the edge of int32) gets one line, no code."""
    path = tmp_path / "lstm.tflite"
    path.write_bytes(lb.lstm(2, 3, 4, 5, **change))
    graph, params = import_model(path)
    with pytest.raises(NnsconsError, match=message) as info:
        qtable_for(graph, params)
    assert "lstm" in str(info.value) and "\n" not in str(info.value)
