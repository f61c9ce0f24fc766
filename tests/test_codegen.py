"""Generated CMSIS-NN code: compiled with the portable kernels (``cmsis/``) and run through ctypes.

The heart of it: for the quantized TFLite models in shared/models the generated network's output bytes equal
TFLite Micro's on the sample inputs and on random inputs; single-op models built in memory cover the s16 kernels,
mul, pooling and the convolution wrapper's special paths the same way. Quantized-from-float models (digits_cnn in
int8, q7, int16x8, q15) agree with the float reference on the test set. Also: scratch sizes against the C
getters, warning-free cross compiles, determinism, hostile names, error messages, the C API's edges.
"""
from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import pytest
from tflite_micro import runtime

import cmsis_host as ch
import tflite_builder as tb
from conftest import SHARED
from nnscons import codegen, data, fileio, ir, kernels, overlap, planner, reference, stats
from nnscons import quantize as qz
from nnscons import ranges as rg
from nnscons.errors import NnsconsError
from nnscons.importers import import_model

ROOT = Path(__file__).resolve().parents[1]
CMSIS = ROOT / "cmsis"
MODELS = SHARED / "models"
DIGITS = ROOT / "models" / "digits_cnn"
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2"]
ARM_CPUS = {"m4": ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"],
            "m55": ["-mcpu=cortex-m55", "-mfloat-abi=hard"]}
RANDOM_INPUTS = 20


# ---- building and running generated code ---------------------------------------------------------------------
@pytest.fixture(scope="session")
def cmsis_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The portable kernels compiled once per session (position independent, strict warnings)."""
    out = tmp_path_factory.mktemp("cmsis")
    sources = sorted(CMSIS.glob("Source/*/*.c"))

    def compile_one(source: Path) -> Path:
        obj = out / (source.stem + ".o")
        run(["gcc", *STRICT, "-fPIC", "-I", str(CMSIS / "Include"), "-c", str(source), "-o", str(obj)])
        return obj

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        objects = list(pool.map(compile_one, sources))
    archive = out / "libcmsisnn.a"
    run(["ar", "rcs", str(archive), *map(str, objects)])
    return archive


def run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stderr}"


def write_sources(files: dict[str, str], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


class Network:
    """A generated model compiled into a shared library, driven through its ``<name>_info`` descriptor."""

    def __init__(self, name: str, directory: Path, archive: Path, flags: Sequence[str] = (),
                 sources: Sequence[Path] = (), library: str = "") -> None:
        """``flags`` and ``sources`` join the compile (a trace build: -DNNSCONS_TRACE and a hook), ``library``
        names the shared library (ctypes loads a path once)."""
        self.name, self.directory = name, directory
        library_path = directory / (library or f"lib{name}.so")
        run(["gcc", *STRICT, *flags, "-fPIC", "-shared", "-I", str(CMSIS / "Include"), "-I", str(directory),
             str(directory / f"{name}_model.c"), str(directory / f"{name}_weights.c"), *map(str, sources),
             str(archive), "-o", str(library_path)])
        library = str(library_path)
        self.lib = ctypes.CDLL(library)
        self.info = ch.ModelInfo.in_dll(self.lib, f"{name}_info")
        self.inputs = [self.info.inputs[i] for i in range(self.info.n_inputs)]
        self.outputs = [self.info.outputs[i] for i in range(self.info.n_outputs)]

    def __call__(self, *xs: np.ndarray) -> list[np.ndarray]:
        assert len(xs) == len(self.inputs)
        ins = [np.ascontiguousarray(x, dtype=ch.io_dtype(i)).reshape(-1) for x, i in zip(xs, self.inputs)]
        for x, info in zip(ins, self.inputs):
            assert x.size == info.size
        outs = [np.zeros(o.size, ch.io_dtype(o)) for o in self.outputs]
        in_ptrs = (ctypes.c_void_p * len(ins))(*[x.ctypes.data for x in ins])
        out_ptrs = (ctypes.c_void_p * len(outs))(*[y.ctypes.data for y in outs])
        status = self.info.invoke(in_ptrs, out_ptrs)
        assert status == 0, f"{self.name}_invoke returned {status}"
        return [y.reshape([o.shape[k] for k in range(o.rank)]) for y, o in zip(outs, self.outputs)]


def qtable_for(graph: ir.Graph, params: dict[str, np.ndarray], quant: str = "model",
               ranges: Optional[rg.RangeTable] = None, api: str = "s8") -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The quantize stage's tables as they come back from qtable.json (canonical JSON round trip)."""
    table = qz.build_qtable(graph, params, ranges, quant, api)
    return json.loads(fileio.canonical_json(table.tables)), table.qparams


def generate(name: str, graph: ir.Graph, params: dict[str, np.ndarray], quant: str = "model",
             ranges: Optional[rg.RangeTable] = None) -> dict[str, str]:
    tables, qparams = qtable_for(graph, params, quant, ranges)
    return codegen.generate(name, graph, tables, qparams, "s8", f"{name}-test-hash")


def build(name: str, graph: ir.Graph, params: dict[str, np.ndarray], directory: Path, archive: Path,
          quant: str = "model", ranges: Optional[rg.RangeTable] = None) -> Network:
    write_sources(generate(name, graph, params, quant, ranges), directory)
    return Network(name, directory, archive)


def random_inputs(interpreter: Any, count: int, seed: int) -> list[np.ndarray]:
    details = interpreter.get_input_details(0)
    info = np.iinfo(details["dtype"])
    rng = np.random.default_rng(seed)
    return [rng.integers(info.min, info.max, size=tuple(details["shape"]), endpoint=True).astype(details["dtype"])
            for _ in range(count)]


def tflm_outputs(interpreter: Any, *xs: np.ndarray) -> np.ndarray:
    for index, x in enumerate(xs):
        interpreter.set_input(x, index)
    interpreter.invoke()
    return interpreter.get_output(0)


# ---- bit-exact with TFLite Micro on the real models ---------------------------------------------------------------
REAL_MODELS = {"kws_dscnn_int8": ["sample_input.npy"], "resnet8_int8": ["sample_input.npy"],
               "hello_world_int8": [], "micro_speech_int8": ["sample_input_yes.npy"]}


@pytest.mark.parametrize("model", sorted(REAL_MODELS))
def test_real_model_is_bit_exact_with_tflite_micro(model: str, tmp_path: Path, cmsis_archive: Path) -> None:
    path = MODELS / model / "model.tflite"
    graph, params = import_model(path)
    net = build(model, graph, params, tmp_path, cmsis_archive)
    interpreter = runtime.Interpreter.from_file(str(path))
    shape = tuple(interpreter.get_input_details(0)["shape"])
    samples = [np.load(MODELS / model / f).reshape(shape) for f in REAL_MODELS[model]]
    xs = samples + random_inputs(interpreter, RANDOM_INPUTS, seed=len(model))
    outputs = set()
    for x in xs:
        expected = tflm_outputs(interpreter, x)
        (actual,) = net(x)
        assert actual.dtype == expected.dtype
        np.testing.assert_array_equal(actual.reshape(expected.shape), expected)
        outputs.add(actual.tobytes())
    assert len(outputs) > 1                                   # the inputs do exercise the network
    if samples:
        expected_class = {"kws_dscnn_int8": 5, "resnet8_int8": 0, "micro_speech_int8": 2}[model]
        assert int(np.argmax(net(samples[0])[0])) == expected_class


# ---- bit-exact single-op models (s16 kernels, mul, pooling, the wrapper's special paths) ----------------------------
def _weights(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(-127, 128, size=shape).astype(np.int8)


def _case_models() -> dict[str, Callable[[np.random.Generator], bytes]]:
    q8, q16 = tb.Quant([0.05], [3]), tb.Quant([0.002], [0])
    out8, out16 = tb.Quant([0.11], [-7]), tb.Quant([0.004], [0])
    return {
        "softmax_s16": lambda r: tb.softmax((3, 20), tb.Quant([3e-4], [0]), dtype=np.int16),
        "softmax_s8_beta": lambda r: tb.softmax((2, 9), tb.Quant([0.07], [5]), beta=0.5),
        "softmax_s8_s16": lambda r: tb.softmax((3, 12), tb.Quant([0.09], [-7]), int16_output=True),
        "mul_s8_relu": lambda r: tb.mul((1, 3, 4, 5), q8, tb.Quant([0.03], [-9]), out8, activation="RELU"),
        "mul_s16": lambda r: tb.mul((1, 2, 3, 8), q16, tb.Quant([0.003], [0]), out16, dtype=np.int16),
        "add_s16": lambda r: tb.add((1, 4, 4, 3), q16, tb.Quant([0.0013], [0]), out16, dtype=np.int16),
        "fc_s16": lambda r: tb.fully_connected((2, 24), q16, _weights(r, (7, 24)), 0.01,
                                               r.integers(-3000, 3000, 7), out16, dtype=np.int16),
        "depthwise_s16_mult2": lambda r: tb.depthwise_conv2d((1, 9, 7, 3), q16, _weights(r, (1, 3, 3, 6)),
                                                             r.uniform(0.002, 0.01, 6), r.integers(-500, 500, 6),
                                                             out16, depth_multiplier=2, stride=(2, 2),
                                                             dtype=np.int16),
        "conv_s16_int32_bias": lambda r: tb.conv2d((1, 6, 6, 4), q16, _weights(r, (5, 3, 3, 4)),
                                                   r.uniform(0.002, 0.01, 5), r.integers(-900, 900, 5), out16,
                                                   dtype=np.int16, bias_dtype=np.int32),
        "conv_1x1_stride2_relu6": lambda r: tb.conv2d((1, 8, 8, 6), q8, _weights(r, (4, 1, 1, 6)),
                                                      r.uniform(0.002, 0.02, 4), r.integers(-900, 900, 4), out8,
                                                      stride=(2, 2), activation="RELU6"),
        "conv_1xn": lambda r: tb.conv2d((1, 1, 12, 4), q8, _weights(r, (3, 1, 3, 4)), r.uniform(0.002, 0.02, 3),
                                        r.integers(-900, 900, 3), out8),
        "conv_dilated_no_bias": lambda r: tb.conv2d((1, 9, 9, 2), q8, _weights(r, (3, 3, 3, 2)),
                                                    r.uniform(0.002, 0.02, 3), None, out8, dilation=(2, 2)),
        "depthwise_3x3": lambda r: tb.depthwise_conv2d((1, 6, 5, 8), q8, _weights(r, (1, 3, 3, 8)),
                                                       r.uniform(0.002, 0.02, 8), r.integers(-900, 900, 8), out8,
                                                       depth_multiplier=1),
        "depthwise_5x5_opt": lambda r: tb.depthwise_conv2d((1, 7, 7, 4), q8, _weights(r, (1, 5, 5, 4)),
                                                           r.uniform(0.002, 0.02, 4), r.integers(-900, 900, 4),
                                                           out8, depth_multiplier=1, stride=(2, 2)),
        "avgpool_s16_same": lambda r: tb.pool2d("avg", (1, 7, 6, 3), q16, filter_hw=(3, 3), stride=(2, 2),
                                                dtype=np.int16),
        "maxpool_s8_relu": lambda r: tb.pool2d("max", (1, 6, 6, 4), tb.Quant([0.05], [-20]), filter_hw=(2, 3),
                                               stride=(2, 1), activation="RELU"),
        "concat_s8_channels": lambda r: tb.concatenation([(1, 3, 4, 5), (1, 3, 4, 2), (1, 3, 4, 7)], q8, axis=3),
        "concat_s16_rows": lambda r: tb.concatenation([(2, 3, 4, 3), (2, 1, 4, 3)], q16, axis=1, dtype=np.int16),
        "concat_s8_rank2_last": lambda r: tb.concatenation([(3, 6), (3, 10)], q8, axis=-1),
        "mean_s8_spatial": lambda r: tb.mean((1, 7, 5, 6), q8, tb.Quant([0.02], [-11])),
        "logistic_s8": lambda r: tb.unary("LOGISTIC", (1, 8, 40), tb.Quant([0.04], [-5]), tb.Quant([1 / 256], [-128])),
        "leaky_relu_s8": lambda r: tb.leaky_relu((1, 4, 64), tb.Quant([0.05], [-20]), tb.Quant([0.03], [-90]),
                                                alpha=0.2),
        "sub_s8": lambda r: tb.sub((1, 3, 4, 5), q8, tb.Quant([0.03], [-9]), out8),
        "sub_s8_relu6": lambda r: tb.sub((2, 40), tb.Quant([0.08], [-100]), tb.Quant([0.02], [60]),
                                         tb.Quant([0.05], [-128]), activation="RELU6"),
        "requantize_s8": lambda r: tb.unary("QUANTIZE", (3, 100), tb.Quant([0.07], [-40]), tb.Quant([0.02], [12])),
        "requantize_s16_s8": lambda r: tb.unary("QUANTIZE", (2, 96), tb.Quant([0.000625], [0]),
                                                tb.Quant([0.0592], [-128]), dtype=np.int16, out_dtype=np.int8),
        "requantize_s8_s16": lambda r: tb.unary("QUANTIZE", (2, 50), tb.Quant([0.03], [7]),
                                                tb.Quant([0.0002], [0]), out_dtype=np.int16),
        "requantize_s16_s32": lambda r: tb.unary("QUANTIZE", (1, 40), tb.Quant([1 / 65536], [-32768]),
                                                 tb.Quant([3.051851e-05], [0]), dtype=np.int16, out_dtype=np.int32),
        "requantize_s8_s32": lambda r: tb.unary("QUANTIZE", (1, 40), tb.Quant([0.5], [3]),
                                                tb.Quant([0.001], [5]), out_dtype=np.int32),
        "tanh_s8": lambda r: tb.unary("TANH", (2, 160), tb.Quant([0.02], [17]), tb.Quant([1 / 128], [0])),
        "pad_s8_hw": lambda r: tb.pad((1, 4, 5, 3), q8, [[0, 0], [1, 2], [2, 0], [0, 0]]),
        "pad_s16_channels": lambda r: tb.pad((1, 3, 3, 2), q16, [[0, 0], [0, 0], [0, 0], [1, 3]], dtype=np.int16),
        "pad_s8_rank2": lambda r: tb.pad((3, 4), q8, [[1, 0], [2, 2]]),
        "mean_s8_same_params_flat": lambda r: tb.mean((2, 3, 9, 4), q8, q8, keep_dims=False),
        "mean_s8_one_pixel": lambda r: tb.mean((1, 1, 1, 5), q8, out8),
        "mean_s8_many_pixels": lambda r: tb.mean((1, 40, 30, 3), tb.Quant([0.5], [100]), tb.Quant([0.001], [0])),
    }


CASES = _case_models()


@pytest.mark.parametrize("case", sorted(CASES))
def test_single_op_model_is_bit_exact_with_tflite_micro(case: str, tmp_path: Path, cmsis_archive: Path) -> None:
    rng = np.random.default_rng(sum(map(ord, case)))
    model = CASES[case](rng)
    path = tmp_path / "model.tflite"
    path.write_bytes(model)
    graph, params = import_model(path)
    net = build("op", graph, params, tmp_path / "src", cmsis_archive)
    interpreter = runtime.Interpreter.from_bytes(model)
    for _ in range(5):
        xs = []
        for index, info in enumerate(net.inputs):
            limits = np.iinfo(ch.io_dtype(info))
            xs.append(rng.integers(limits.min, limits.max, endpoint=True,
                                   size=[info.shape[k] for k in range(info.rank)]).astype(ch.io_dtype(info)))
        expected = tflm_outputs(interpreter, *xs)
        np.testing.assert_array_equal(net(*xs)[0].reshape(expected.shape), expected)


@pytest.mark.parametrize("layer", ["conv/conv0", "conv/conv6", "conv/conv10", "add/add0", "add/add5"])
def test_seanet_int16_layers_are_bit_exact(layer: str, tmp_path: Path, cmsis_archive: Path) -> None:
    path = MODELS / "seanet16x8" / f"{layer}.tflite"
    graph, params = import_model(path)
    net = build("seanet", graph, params, tmp_path, cmsis_archive)
    interpreter = runtime.Interpreter.from_file(str(path))
    rng = np.random.default_rng(1)
    for _ in range(3):
        xs = [rng.integers(-32768, 32767, endpoint=True, size=[i.shape[k] for k in range(i.rank)]).astype(np.int16)
              for i in net.inputs]
        expected = tflm_outputs(interpreter, *xs)
        np.testing.assert_array_equal(net(*xs)[0].reshape(expected.shape), expected)


# ---- quantized from float: agreement with the float model ------------------------------------------------------------
@pytest.fixture(scope="module")
def digits() -> dict[str, Any]:
    graph, params = import_model(DIGITS / "model.onnx")
    calib = data.load_inputs(DIGITS / "calib.npz", graph)
    test = data.load_inputs(DIGITS / "test.npz", graph)
    reference_out = reference.run(graph, params, test)[graph.outputs[0]]
    return {"graph": graph, "params": params, "stats": stats.compute_stats(graph, params, calib),
            "x": test[graph.inputs[0]], "reference": reference_out}


@pytest.mark.parametrize("scheme", ["int8", "q7", "int16x8", "q15"])
def test_digits_quantized_agrees_with_the_float_model(scheme: str, digits: dict[str, Any], tmp_path: Path,
                                                      cmsis_archive: Path) -> None:
    graph, params = digits["graph"], digits["params"]
    table = rg.range_table(digits["stats"], scheme, "minmax")
    net = build("digits", graph, params, tmp_path, cmsis_archive, scheme, table)
    x = digits["x"]
    quantize_input = getattr(net.lib, "digits_quantize_input")
    agree = 0
    for i in range(x.shape[0]):
        xf = np.ascontiguousarray(x[i], dtype=np.float32)
        xq = np.zeros(xf.size, ch.io_dtype(net.inputs[0]))
        quantize_input(xf.ctypes.data_as(ctypes.c_void_p), xq.ctypes.data_as(ctypes.c_void_p),
                       ctypes.c_size_t(xf.size))
        (y,) = net(xq)
        agree += int(np.argmax(y) == np.argmax(digits["reference"][i]))
    assert agree / x.shape[0] >= 0.95, f"{scheme}: top-1 agreement {agree / x.shape[0]:.3f}"
    header = (tmp_path / "digits.h").read_text()
    if scheme in ("q7", "q15"):                              # softmax output: Q0.7 / Q0.15
        assert f"#define DIGITS_OUTPUT_FRAC_BITS {7 if scheme == 'q7' else 15}\n" in header
        assert "#define DIGITS_INPUT_FRAC_BITS" in header
    else:
        assert "FRAC_BITS" not in header


def op_zoo_onnx(path: Path) -> None:
    """A float ONNX network through every op CMSIS-NN has no kernel for: conv -> leaky ReLU -> (pad -> conv) and
    (sigmoid - tanh) -> concat on channels -> global mean -> flatten -> dense, 3 outputs."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)

    def weights(name: str, shape: tuple[int, ...], std: float) -> Any:
        return numpy_helper.from_array(rng.normal(0, std, shape).astype(np.float32), name)

    inits = [weights("w1", (4, 1, 3, 3), 0.4), weights("b1", (4,), 0.1), weights("w2", (4, 4, 3, 3), 0.3),
             weights("b2", (4,), 0.1), weights("wf", (3, 8), 0.5), weights("bf", (3,), 0.1),
             numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads")]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("LeakyRelu", ["c1"], ["a"], alpha=0.1),
             helper.make_node("Pad", ["a", "pads"], ["p"]),
             helper.make_node("Conv", ["p", "w2", "b2"], ["b"]),
             helper.make_node("Sigmoid", ["a"], ["s"]),
             helper.make_node("Tanh", ["a"], ["t"]),
             helper.make_node("Sub", ["s", "t"], ["d"]),
             helper.make_node("Concat", ["b", "d"], ["cat"], axis=1),
             helper.make_node("ReduceMean", ["cat"], ["m"], axes=[2, 3], keepdims=1),
             helper.make_node("Flatten", ["m"], ["f"]),
             helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "zoo", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)


def test_op_zoo_quantized_from_float_agrees_with_the_float_model(tmp_path: Path, cmsis_archive: Path) -> None:
    """int8 from float through pad, leaky_relu, logistic, tanh, sub, concat and mean (generated loops, lookup
    tables, arm_concatenation_s8_y): measured SNR 38.9 dB against the float network, every top-1 the same."""
    import onnxruntime
    op_zoo_onnx(tmp_path / "zoo.onnx")
    graph, params = import_model(tmp_path / "zoo.onnx")
    assert {"pad", "leaky_relu", "logistic", "tanh", "sub", "concat", "mean"} <= {op.type for op in graph.ops}
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, (20, 8, 8, 1)).astype(np.float32)
    expected = reference.run(graph, params, {graph.inputs[0]: x})[graph.outputs[0]].reshape(len(x), -1)
    session = onnxruntime.InferenceSession(str(tmp_path / "zoo.onnx"))
    runtime_out = np.concatenate([session.run(None, {"x": v.transpose(2, 0, 1)[None]})[0] for v in x])
    np.testing.assert_allclose(expected, runtime_out, atol=1e-5)
    calib = {graph.inputs[0]: rng.uniform(0, 1, (64, 8, 8, 1)).astype(np.float32)}
    table = rg.range_table(stats.compute_stats(graph, params, calib), "int8", "minmax")
    net = build("zoo", graph, params, tmp_path / "src", cmsis_archive, "int8", table)
    scale, zero_point = float(net.outputs[0].scale), int(net.outputs[0].zero_point)
    in_scale, in_zero_point = float(net.inputs[0].scale), int(net.inputs[0].zero_point)
    outputs = []
    for v in x:
        xq = np.clip(np.round(v.reshape(-1) / in_scale) + in_zero_point, -128, 127).astype(np.int8)
        (y,) = net(xq)
        outputs.append(scale * (y.reshape(-1).astype(np.float64) - zero_point))
    actual = np.array(outputs)
    snr = 10 * np.log10(np.sum(expected.astype(np.float64) ** 2) / np.sum((expected - actual) ** 2))
    assert snr > 30, snr
    assert np.array_equal(actual.argmax(1), expected.argmax(1))


# ---- scratch sizes ------------------------------------------------------------------------------------------------
def _c_getter(lib: ctypes.CDLL, base: str, features: str) -> Callable[..., int]:
    return getattr(lib, base + {"c": "", "dsp": "_dsp", "mve": "_mve"}[features])


CONV_SHAPES = {  # (input NHWC, filter, stride, padding, dilation)
    "3x3": ((1, 8, 8, 3), (16, 3, 3, 3), (1, 1), (1, 1), (1, 1)),
    "1x1_fast": ((1, 5, 5, 7), (8, 1, 1, 7), (1, 1), (0, 0), (1, 1)),
    "1x1_stride2": ((1, 6, 6, 8), (8, 1, 1, 8), (2, 2), (0, 0), (1, 1)),
    "1x1_padded": ((1, 4, 4, 8), (8, 1, 1, 8), (1, 1), (1, 1), (1, 1)),
    "1xn": ((1, 1, 20, 4), (8, 1, 5, 4), (1, 1), (0, 2), (1, 1)),
    "1xn_unaligned": ((1, 1, 20, 3), (8, 1, 5, 3), (1, 1), (0, 2), (1, 1)),
    "dilated": ((1, 9, 9, 5), (4, 3, 3, 5), (1, 1), (2, 2), (2, 2)),
    "grouped": ((1, 6, 6, 8), (4, 3, 3, 4), (1, 1), (1, 1), (1, 1)),
    "kws_first": ((1, 49, 10, 1), (64, 10, 4, 1), (2, 2), (4, 1), (1, 1)),
}


def _geometry(shape: tuple, depthwise: bool = False, ch_mult: int = 1) -> kernels.ConvGeometry:
    (n, h, w, c), filt, stride, padding, dilation = shape
    kh, kw = filt[1], filt[2]
    out_c = filt[3] if depthwise else filt[0]
    oh = (h + 2 * padding[0] - ((kh - 1) * dilation[0] + 1)) // stride[0] + 1
    ow = (w + 2 * padding[1] - ((kw - 1) * dilation[1] + 1)) // stride[1] + 1
    return kernels.ConvGeometry(kernels.Dims(n, h, w, c), kernels.Dims(*filt), kernels.Dims(n, oh, ow, out_c),
                                stride, padding, dilation, ch_mult)


def _c_conv_args(g: kernels.ConvGeometry, depthwise: bool) -> tuple:
    if depthwise:
        params = ch.DwConvParams(0, 0, g.ch_mult, ch.tile(g.stride), ch.tile(g.padding), ch.tile(g.dilation),
                                 ch.Activation(-128, 127))
    else:
        params = ch.ConvParams(0, 0, ch.tile(g.stride), ch.tile(g.padding), ch.tile(g.dilation),
                               ch.Activation(-128, 127))
    return params, ch.dims(*g.input.as_tuple()), ch.dims(*g.filter.as_tuple()), ch.dims(*g.output.as_tuple())


@pytest.mark.parametrize("features", kernels.FEATURE_SETS)
@pytest.mark.parametrize("shape", sorted(CONV_SHAPES))
def test_conv_scratch_sizes_equal_the_c_getters(shape: str, features: str) -> None:
    lib = ch.load_library()
    g = _geometry(CONV_SHAPES[shape])
    args = _c_conv_args(g, depthwise=False)
    assert kernels.convolve_wrapper_s8_buffer_size(features, g) == \
        _c_getter(lib, "arm_convolve_wrapper_s8_get_buffer_size", features)(*args)
    assert kernels.convolve_wrapper_s16_buffer_size(features, g) == \
        _c_getter(lib, "arm_convolve_wrapper_s16_get_buffer_size", features)(*args)


DW_SHAPES = {  # (input, filter 1HWC, stride, padding, dilation), channel multiplier
    "3x3_pad1": (((1, 8, 8, 16), (1, 3, 3, 16), (1, 1), (1, 1), (1, 1)), 1),
    "3x3_pad2": (((1, 8, 8, 16), (1, 3, 3, 16), (1, 1), (2, 2), (1, 1)), 1),
    "5x5_opt": (((1, 9, 9, 12), (1, 5, 5, 12), (2, 2), (2, 2), (1, 1)), 1),
    "mult2": (((1, 6, 6, 4), (1, 3, 3, 8), (1, 1), (1, 1), (1, 1)), 2),
    "dilated": (((1, 9, 9, 6), (1, 3, 3, 6), (1, 1), (2, 2), (2, 2)), 1),
    "kws": (((1, 25, 5, 64), (1, 3, 3, 64), (1, 1), (1, 1), (1, 1)), 1),
    "one_channel_mult1": (((1, 7, 7, 1), (1, 3, 3, 1), (1, 1), (1, 1), (1, 1)), 1),
    "micro_speech": (((1, 49, 40, 1), (1, 10, 8, 8), (2, 2), (4, 3), (1, 1)), 8),
    "s16_many_taps": (((1, 40, 40, 4), (1, 32, 16, 4), (1, 1), (0, 0), (1, 1)), 1),
}
# Differences between the portable library's *_get_buffer_size_dsp/_mve and Arm's CMSIS-NN v7 getters that are
# known and accepted (none at present; an entry makes its case an expected failure).
DW_KNOWN: dict[tuple[str, str, str], str] = {}


@pytest.mark.parametrize("word", ["s8", "s16"])
@pytest.mark.parametrize("features", kernels.FEATURE_SETS)
@pytest.mark.parametrize("shape", sorted(DW_SHAPES))
def test_depthwise_scratch_sizes_equal_the_c_getters(shape: str, features: str, word: str,
                                                     request: pytest.FixtureRequest) -> None:
    if (shape, features, word) in DW_KNOWN:
        request.applymarker(pytest.mark.xfail(strict=True, reason=DW_KNOWN[(shape, features, word)]))
    lib = ch.load_library()
    geometry, ch_mult = DW_SHAPES[shape]
    g = _geometry(geometry, depthwise=True, ch_mult=ch_mult)
    args = _c_conv_args(g, depthwise=True)
    ours = (kernels.depthwise_conv_wrapper_s8_buffer_size if word == "s8"
            else kernels.depthwise_conv_wrapper_s16_buffer_size)(features, g)
    assert ours == _c_getter(lib, f"arm_depthwise_conv_wrapper_{word}_get_buffer_size", features)(*args)


def test_depthwise_known_differences_are_what_arm_needs() -> None:
    """The two places kernels.py departs from cmsis/'s getters, by Arm's v7 rules (facts 1.6 + Arm's getters)."""
    g = _geometry(DW_SHAPES["micro_speech"][0], depthwise=True, ch_mult=8)
    conv_scratch = 4 * 80                                           # MVE conv: 4 columns of align16(1*10*8)
    assert kernels.depthwise_conv_wrapper_s8_buffer_size("mve", g) == conv_scratch + 10 * 8 * 8
    assert kernels.depthwise_conv_wrapper_s8_buffer_size("c", g) == 0   # generic kernel (ch_mult 8)
    big = _geometry(DW_SHAPES["s16_many_taps"][0], depthwise=True)
    assert [kernels.depthwise_conv_wrapper_s16_buffer_size(f, big) for f in kernels.FEATURE_SETS] == [0, 0, 0]


@pytest.mark.parametrize("features", kernels.FEATURE_SETS)
@pytest.mark.parametrize("rows, cols", [(10, 64), (12, 7), (1, 1960)])
def test_fc_and_pool_scratch_sizes_equal_the_c_getters(features: str, rows: int, cols: int) -> None:
    lib = ch.load_library()
    f = kernels.Dims(cols, 1, 1, rows)
    assert kernels.fully_connected_s8_buffer_size(features, f) == \
        _c_getter(lib, "arm_fully_connected_s8_get_buffer_size", features)(ch.dims(cols, 1, 1, rows))
    assert kernels.fully_connected_s16_buffer_size(features, f) == \
        _c_getter(lib, "arm_fully_connected_s16_get_buffer_size", features)(ch.dims(cols, 1, 1, rows))
    for word in ("s8", "s16"):
        assert kernels.avgpool_buffer_size(features, cols, rows) == \
            _c_getter(lib, f"arm_avgpool_{word}_get_buffer_size", features)(cols, rows)


def test_scratch_rules_by_hand() -> None:
    """The facts' numbers on a few shapes (not just agreement with another implementation)."""
    g = _geometry(CONV_SHAPES["kws_first"])
    assert [kernels.convolve_wrapper_s8_buffer_size(f, g) for f in kernels.FEATURE_SETS] == [160, 160, 192]
    g = _geometry(CONV_SHAPES["1x1_fast"])
    assert [kernels.convolve_wrapper_s8_buffer_size(f, g) for f in kernels.FEATURE_SETS] == [0, 28, 0]
    g = _geometry(DW_SHAPES["kws"][0], depthwise=True)
    assert [kernels.depthwise_conv_wrapper_s8_buffer_size(f, g) for f in kernels.FEATURE_SETS] == [0, 0, 4464]
    g = _geometry(DW_SHAPES["5x5_opt"][0], depthwise=True)
    assert [kernels.depthwise_conv_wrapper_s8_buffer_size(f, g) for f in kernels.FEATURE_SETS] == [0, 600, 12400]
    assert [kernels.fully_connected_s8_buffer_size(f, kernels.Dims(64, 1, 1, 12)) for f in kernels.FEATURE_SETS] \
        == [0, 0, 48]
    assert [kernels.avgpool_buffer_size(f, 1, 64) for f in kernels.FEATURE_SETS] == [0, 256, 0]


def test_softmax_s16_tables_match_the_verified_builder() -> None:
    exp_lut, one_by_one_lut = codegen.softmax_s16_luts()
    reference_exp, reference_inv = ch.softmax_s16_luts()
    np.testing.assert_array_equal(exp_lut, reference_exp)
    np.testing.assert_array_equal(one_by_one_lut, reference_inv)
    assert exp_lut.dtype == np.int16 and exp_lut[-1] == 32767 and one_by_one_lut[-1] == 16384


# ---- the generated files ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def kws() -> tuple[ir.Graph, dict[str, np.ndarray]]:
    return import_model(MODELS / "kws_dscnn_int8" / "model.tflite")


def test_generation_is_deterministic(kws: tuple[ir.Graph, dict[str, np.ndarray]]) -> None:
    graph, params = kws
    first = generate("kws", graph, params)
    reloaded = ir.Graph.from_json(json.loads(json.dumps(graph.to_json())))
    assert generate("kws", reloaded, params) == first
    assert sorted(first) == ["kws.h", "kws_model.c", "kws_weights.c", "plan.json"]
    for text in first.values():
        assert "/tmp" not in text and str(ROOT) not in text


def test_header_describes_the_network(kws: tuple[ir.Graph, dict[str, np.ndarray]], tmp_path: Path,
                                      cmsis_archive: Path) -> None:
    graph, params = kws
    files = generate("kws", graph, params)
    header = files["kws.h"]
    plan = json.loads(files["plan.json"])
    macros = dict(re.findall(r"^#define (KWS_\w+) (.+)$", header, re.M))
    assert macros["KWS_INPUT_SIZE"] == "490" and macros["KWS_OUTPUT_SIZE"] == "12"
    assert macros["KWS_INPUT_SHAPE"] == "{1, 49, 10, 1}" and macros["KWS_OUTPUT_RANK"] == "2"
    assert macros["KWS_INPUT_ZERO_POINT"] == "83" and macros["KWS_OUTPUT_ZERO_POINT"] == "(-128)"
    assert float(macros["KWS_INPUT_SCALE"].rstrip("f")) == pytest.approx(0.5847029, rel=1e-7)
    # two 8,000-byte activations at a time, but the depthwise and 1x1 layers write a few rows behind their input
    assert macros["KWS_ACTIVATION_ARENA_SIZE"] == f"{plan['activation_arena_size']}u" == "10304u"
    # every layer's scratch fits beside the activations on every build: one size, no #if
    assert re.findall(r"#define KWS_SCRATCH_SIZE (\d+)u", header) == ["0"]
    assert plan["scratch"] == {"c": 0, "dsp": 0, "mve": 0}
    assert "typedef int8_t kws_input_t;" in header and 'KWS_HASH "kws-test-hash"' in header
    net = Network("kws", write_sources(files, tmp_path), cmsis_archive)
    assert net.info.name == b"kws" and net.info.hash == b"kws-test-hash"
    assert net.info.arena_size == plan["activation_arena_size"] + plan["scratch"]["c"]
    assert [net.inputs[0].shape[k] for k in range(4)] == [1, 49, 10, 1]
    assert net.inputs[0].zero_point == 83 and net.outputs[0].scale == np.float32(1 / 256)
    # one call per layer, each checked
    model_c = files["kws_model.c"]
    assert model_c.count("status = arm_convolve_wrapper_s8(") == 5
    assert model_c.count("status = arm_depthwise_conv_wrapper_s8(") == 4
    assert model_c.count("if (status != ARM_CMSIS_NN_SUCCESS)") == 5 + 4 + 1 + 1   # + avgpool, FC
    assert "status = arm_vector_sum_s8" not in model_c           # the FC's kernel sums are constants
    assert "malloc" not in model_c and "malloc" not in files["kws_weights.c"]
    assert re.search(r"^const int8_t kws_conv2d_0_weights\[2560\] NNSCONS_CONST_ALIGN = \{$",
                     files["kws_weights.c"], re.M)


def test_invoke_with_arena_checks_the_arena(kws: tuple[ir.Graph, dict[str, np.ndarray]], tmp_path: Path,
                                            cmsis_archive: Path) -> None:
    graph, params = kws
    net = build("kws", graph, params, tmp_path, cmsis_archive)
    x = np.load(MODELS / "kws_dscnn_int8" / "sample_input.npy").astype(np.int8).reshape(-1)
    (expected,) = net(x)
    size = net.info.arena_size
    storage = np.zeros(size + 64, np.uint8)
    base = storage.ctypes.data
    aligned = base + (-base) % 16
    function = net.lib.kws_invoke_with_arena
    function.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
    y = np.zeros(12, np.int8)
    args = (x.ctypes.data, y.ctypes.data)
    assert function(*args, aligned, size - 1) == -1
    assert function(*args, aligned + 1, size) == -1
    assert function(*args, None, size) == -1
    assert function(None, y.ctypes.data, aligned, size) == -1
    assert function(*args, aligned, size) == 0
    np.testing.assert_array_equal(y, expected.reshape(-1))


def test_quantize_and_dequantize_helpers(tmp_path: Path, cmsis_archive: Path) -> None:
    """round(x / scale) + zero_point with halves away from zero, saturated; and back."""
    path = tmp_path / "model.tflite"
    path.write_bytes(tb.softmax((1, 8), tb.Quant([0.25], [3])))
    graph, params = import_model(path)
    net = build("sm", graph, params, tmp_path / "src", cmsis_archive)
    x = np.array([0.0, 0.125, -0.125, 0.375, -0.375, 0.37, 1e6, -1e6, 31.0, -33.0, 30.0, np.nan], np.float32)
    q = np.zeros(x.size, np.int8)
    net.lib.sm_quantize_input(x.ctypes.data_as(ctypes.c_void_p), q.ctypes.data_as(ctypes.c_void_p),
                              ctypes.c_size_t(x.size))
    assert q.tolist() == [3, 4, 2, 5, 1, 4, 127, -128, 127, -128, 123, 3]
    y = np.zeros(3, np.float32)
    out = np.array([-128, 0, 127], np.int8)
    net.lib.sm_dequantize_output(out.ctypes.data_as(ctypes.c_void_p), y.ctypes.data_as(ctypes.c_void_p),
                                 ctypes.c_size_t(3))
    np.testing.assert_array_equal(y, np.float32(1 / 256) * (out.astype(np.float32) + 128))


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")
@pytest.mark.parametrize("cpu", sorted(ARM_CPUS))
def test_cross_compiles_without_warnings(cpu: str, digits: dict[str, Any], kws: tuple[ir.Graph, dict],
                                         tmp_path: Path) -> None:
    sources = {"kws": generate("kws", *kws)}
    for scheme in ("q7", "int16x8"):          # softmax conversion; s16 kernels, int64 biases, softmax tables
        table = rg.range_table(digits["stats"], scheme, "minmax")
        sources[f"digits_{scheme}"] = generate(f"digits_{scheme}", digits["graph"], digits["params"], scheme, table)
    sources["hostile"] = generate("hostile", *hostile_graph())
    for name, files in sources.items():
        directory = write_sources(files, tmp_path / name)
        for unit in (f"{name}_model.c", f"{name}_weights.c"):
            run(["arm-none-eabi-gcc", *STRICT, *ARM_CPUS[cpu], "-I", str(CMSIS / "Include"), "-I", str(directory),
                 "-c", str(directory / unit), "-o", str(tmp_path / "out.o")])


# ---- hand-built graphs: hostile names, clamps, absorbed conversions, errors ----------------------------------------
HOSTILE = 'evil */ int pwned = 1; /* "q" \\ ??/\n#error injected\r\n// tail'


def hostile_graph(labels: bool = True) -> tuple[ir.Graph, dict[str, np.ndarray]]:
    """int8 model-scheme graph: conv (relu) -> relu6 (a clamp) -> reshape -> fc -> softmax, every label hostile."""
    rng = np.random.default_rng(5)
    label = HOSTILE if labels else ""

    def t(name: str, shape: list[int], dtype: str, scale: list[float], zp: list[int], axis: Optional[int] = None,
          const: bool = False) -> ir.Tensor:
        return ir.Tensor(name, shape, dtype, label=label, is_const=const, quant=ir.Quant(scale, zp, axis))

    tensors = {
        "x": t("x", [1, 4, 4, 2], "int8", [0.05], [-3]),
        "w": t("w", [3, 3, 3, 2], "int8", [0.01, 0.02, 0.015], [0, 0, 0], 0, True),
        "b": t("b", [3], "int32", [0.0005, 0.001, 0.00075], [0, 0, 0], 0, True),
        "c": t("c", [1, 4, 4, 3], "int8", [0.04], [-128]),
        "r": t("r", [1, 4, 4, 3], "int8", [0.04], [-128]),
        "f": t("f", [1, 48], "int8", [0.04], [-128]),
        "fw": t("fw", [5, 48], "int8", [0.02], [0], None, True),
        "fb": t("fb", [5], "int32", [0.0008], [0], None, True),
        "logits": t("logits", [1, 5], "int8", [0.2], [4]),
        "y": t("y", [1, 5], "int8", [1 / 256], [-128]),
    }
    ops = [ir.Op("conv2d_0", "conv2d", ["x", "w", "b"], ["c"],
                 {"stride": [1, 1], "dilation": [1, 1], "pad": [1, 1, 1, 1], "activation": "relu"}, label),
           ir.Op("relu6_1", "relu6", ["c"], ["r"], {}, label),
           ir.Op("reshape_2", "reshape", ["r"], ["f"], {"shape": [1, 48]}, label),
           ir.Op("fully_connected_3", "fully_connected", ["f", "fw", "fb"], ["logits"], {"activation": "none"}, label),
           ir.Op("softmax_4", "softmax", ["logits"], ["y"], {"beta": 1.0}, label)]
    graph = ir.Graph(tensors, ops, ["x"], ["y"], source="tflite", source_file=label or "m.tflite", quantized="int8")
    params = {"w": rng.integers(-127, 128, (3, 3, 3, 2)).astype(np.int8),
              "b": rng.integers(-2000, 2000, 3).astype(np.int32),
              "fw": rng.integers(-127, 128, (5, 48)).astype(np.int8),
              "fb": rng.integers(-2000, 2000, 5).astype(np.int32)}
    ir.validate(graph, params)
    return graph, params


def strip_comments(text: str) -> str:
    return re.sub(r"/\*.*?\*/", " ", text, flags=re.S)


def test_hostile_labels_are_sanitized(tmp_path: Path, cmsis_archive: Path) -> None:
    graph, params = hostile_graph()
    tables, qparams = qtable_for(graph, params)
    files = codegen.generate("hostile", graph, tables, qparams, "s8", 'hash "with" \\ */ ??/ quotes\n')
    for name, text in files.items():
        if name == "plan.json":
            continue
        code = strip_comments(text)
        assert "pwned" not in code and "#error" not in code and "injected" not in code, name
        assert "\r" not in text
        # every comment closes where it should: no stray comment delimiters outside comments and strings
        assert "*/" not in re.sub(r'"(\\.|[^"\\])*"', '""', code), name
    assert "evil * / int pwned" in files["hostile_model.c"]              # the label is there, defused
    net = Network("hostile", write_sources(files, tmp_path / "hostile"), cmsis_archive)
    assert net.info.hash == b'hash "with" \\ */ ??/ quotes?'          # newline replaced, the rest intact
    clean = build("clean", *hostile_graph(labels=False), tmp_path / "clean", cmsis_archive)
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = rng.integers(-128, 128, (1, 4, 4, 2)).astype(np.int8)
        np.testing.assert_array_equal(net(x)[0], clean(x)[0])


def test_standalone_clamp_uses_the_quantized_bounds(tmp_path: Path, cmsis_archive: Path) -> None:
    """relu6 on scale 0.04, zero point -128: [zp, zp + round(6 / 0.04)] = [-128, 22]."""
    graph, params = hostile_graph(labels=False)
    graph = ir.Graph(dict(graph.tensors), [graph.ops[1]], ["c"], ["r"], quantized="int8")
    tables, _ = qtable_for(graph, params)
    assert (tables["layers"]["relu6_1"]["act_min"], tables["layers"]["relu6_1"]["act_max"]) == (-128, 22)
    net = build("clamp", graph, params, tmp_path, cmsis_archive)
    x = np.linspace(-128, 127, 48).astype(np.int8)
    np.testing.assert_array_equal(net(x)[0].reshape(-1), np.clip(x, -128, 22))
    assert "clamp_clamp_s8(net_in0, relu6_1_out, /* count */ 48, /* lo */ -128, /* hi */ 22);" in \
        (tmp_path / "clamp_model.c").read_text()


def float_io_graph(with_conversions: bool) -> tuple[ir.Graph, dict[str, np.ndarray]]:
    """float x -> quantize -> fully connected -> dequantize -> float y (or the integer core alone)."""
    q = ir.Quant
    tensors = {"xq": ir.Tensor("xq", [1, 6], "int8", quant=q([0.03], [2])),
               "w": ir.Tensor("w", [4, 6], "int8", is_const=True, quant=q([0.01], [0])),
               "b": ir.Tensor("b", [4], "int32", is_const=True, quant=q([0.0003], [0])),
               "yq": ir.Tensor("yq", [1, 4], "int8", quant=q([0.05], [-6]))}
    ops = [ir.Op("fully_connected_1", "fully_connected", ["xq", "w", "b"], ["yq"], {"activation": "none"})]
    inputs, outputs = ["xq"], ["yq"]
    if with_conversions:
        tensors["x"] = ir.Tensor("x", [1, 6], "float32", label="serving input")
        tensors["y"] = ir.Tensor("y", [1, 4], "float32")
        ops = [ir.Op("quantize_0", "quantize", ["x"], ["xq"], {}, "QUANTIZE #0")] + ops + \
              [ir.Op("dequantize_2", "dequantize", ["yq"], ["y"], {}, "DEQUANTIZE #2")]
        inputs, outputs = ["x"], ["y"]
    rng = np.random.default_rng(3)
    params = {"w": rng.integers(-127, 128, (4, 6)).astype(np.int8), "b": rng.integers(-900, 900, 4).astype(np.int32)}
    return ir.Graph(tensors, ops, inputs, outputs, quantized="int8"), params


def test_float_io_conversions_are_absorbed(tmp_path: Path, cmsis_archive: Path) -> None:
    files = generate("fio", *float_io_graph(True))
    core = generate("fio", *float_io_graph(False))
    assert files["fio.h"] == core["fio.h"]                       # the same C API: int8 in, int8 out
    assert "#define FIO_INPUT_SCALE 0.0299999993f" in files["fio.h"]
    assert "quantize_0: quantize \"QUANTIZE #0\" (x -> xq)" in files["fio_model.c"]
    net = Network("fio", write_sources(files, tmp_path), cmsis_archive)
    net_core = Network("fio", write_sources(core, tmp_path / "core"), cmsis_archive)
    x = np.arange(-128, 128, 43, dtype=np.int8)
    np.testing.assert_array_equal(net(x)[0], net_core(x)[0])


def test_unsupported_op_names_the_layer() -> None:
    graph, params = float_io_graph(False)
    tensors = dict(graph.tensors)
    shape = list(graph.tensors["xq"].shape)
    tensors["p"] = ir.Tensor("p", shape, "int8", quant=ir.Quant([0.03], [2]))
    op = ir.Op("dequantize_3", "dequantize", ["xq"], ["p"], {}, 'DEQUANTIZE #3 */\n')
    tensors["q"] = ir.Tensor("q", shape, "int8", quant=ir.Quant([0.03], [2]))
    after = ir.Op("relu_4", "relu", ["p"], ["q"], {})
    tensors["p"] = ir.Tensor("p", shape, "float32")
    graph = ir.Graph(tensors, [op, after], ["xq"], ["q"], quantized="int8")
    tables, qparams = qtable_for(graph, params)
    with pytest.raises(NnsconsError) as error:
        codegen.generate("m", graph, tables, qparams, "s8", "h")
    assert str(error.value).startswith("layer dequantize_3 (DEQUANTIZE #3 * /?): op dequantize has no CMSIS-NN s8 "
                                       "kernel")


def test_quantize_in_the_middle_changing_the_word_size_is_a_requantizing_loop() -> None:
    """int8 -> int8 is a requantization table (tests above); int8 -> int16 the generated loop (bit-exact with TFLite
    Micro: the requantize_* single-op cases)."""
    graph, params = float_io_graph(False)
    tensors = dict(graph.tensors)
    tensors["z"] = ir.Tensor("z", [1, 4], "int16", quant=ir.Quant([0.001], [0]))
    ops = graph.ops + [ir.Op("quantize_2", "quantize", ["yq"], ["z"], {}, "QUANTIZE #2")]
    graph = ir.Graph(tensors, ops, ["xq"], ["z"], quantized="int8")
    tables, qparams = qtable_for(graph, params)
    code = codegen.generate("m", graph, tables, qparams, "s8", "h")["m_model.c"]
    assert "static void m_requantize_s8_s16(const int8_t *x, int16_t *y," in code
    assert "m_requantize_s8_s16(" in code[code.index("QUANTIZE #2"):]


def test_legacy_api_and_bad_names_are_errors() -> None:
    graph, params = float_io_graph(False)
    tables, qparams = qtable_for(graph, params)
    with pytest.raises(NnsconsError, match="api=legacy: .*use quant=q7 or quant=q15"):   # tests/test_codegen_legacy.py
        codegen.generate("m", graph, tables, qparams, "legacy", "h")
    with pytest.raises(NnsconsError, match="api='s4'"):
        codegen.generate("m", graph, tables, qparams, "s4", "h")
    for bad in ("3d", "my-model", "int", "__x", "a b"):
        with pytest.raises(NnsconsError, match="not a C identifier"):
            codegen.generate(bad, graph, tables, qparams, "s8", "h")


def test_q15_needs_the_s8_api_tables() -> None:
    """A q15 table built for the legacy API has int16 weights, which the s16 kernels cannot take."""
    graph, params = import_model(DIGITS / "model.onnx")
    calib = data.load_inputs(DIGITS / "calib.npz", graph)
    table = rg.range_table(stats.compute_stats(graph, params, {k: v[:20] for k, v in calib.items()}), "q15",
                           "minmax")
    tables, qparams = qtable_for(graph, params, "q15", table, api="legacy")
    with pytest.raises(NnsconsError, match="layer conv2d_0 .*weights are int16.*api=s8"):
        codegen.generate("m", graph, tables, qparams, "s8", "h")


def test_codegen_sources_lists_the_templates() -> None:
    sources = codegen.codegen_sources()
    assert [Path(s).name for s in sources] == ["layers.j2", "legacy_layers.j2", "legacy_model.c.j2", "model.c.j2",
                                               "model.h.j2", "streams.j2", "weights.c.j2"]
    assert all(Path(s).is_file() for s in sources)


def test_plan_json_matches_the_arena(kws: tuple[ir.Graph, dict[str, np.ndarray]]) -> None:
    graph, params = kws
    plan = json.loads(generate("kws", graph, params)["plan.json"])
    qtable = qtable_for(graph, params)[0]
    direct = planner.plan(graph, qtable, overlap.overlaps(graph, qtable))
    assert plan["activation_arena_size"] == direct.arena_size
    assert [b["offset"] for b in plan["buffers"]] == [b.offset for b in direct.buffers]
    # past the activations: nothing (the bundled Helium depthwise needs 928 of Arm's 4,464 bytes, which fit in the
    # bytes the overlapped layers leave free)
    assert plan["scratch"] == {"c": 0, "dsp": 0, "mve": 0}
    mve = {s["layer"]: s["size"] for s in plan["layer_scratch"]["mve"]}
    assert mve["depthwise_conv2d_1"] == 928 and mve["conv2d_0"] == 128     # three int8 columns of 40, aligned
    # each layer's scratch is in bytes no activation live during that layer uses, inside the arena of its build
    for features, placed in plan["layer_scratch"].items():
        assert placed, features
        for s in placed:
            live = [b for b in plan["buffers"] if b["first_op"] <= s["op"] <= b["last_op"]]
            assert all(s["offset"] + s["size"] <= b["offset"] or b["offset"] + b["size"] <= s["offset"]
                       for b in live), (features, s)
            assert s["offset"] % 16 == 0
            assert s["offset"] + s["size"] <= plan["activation_arena_size"] + plan["scratch"][features]


def test_q7_softmax_output_is_q0_7(tmp_path: Path, cmsis_archive: Path) -> None:
    """q7 on the s8 API: arm_softmax_s8 gives p = (q + 128) / 256; the generated code turns it into the table's
    Q0.7 (p * 128, halves rounded up, saturated at 127)."""
    tensors = {"x": ir.Tensor("x", [2, 10], "float32"), "y": ir.Tensor("y", [2, 10], "float32")}
    graph = ir.Graph(tensors, [ir.Op("softmax_0", "softmax", ["x"], ["y"], {"beta": 1.0})], ["x"], ["y"])
    table = rg.range_table(stats.stats_from_arrays({"x": np.array([-3.9, 3.9], np.float32),
                                                    "y": np.array([0.0, 1.0], np.float32)}, 1), "q7", "minmax")
    tables, _ = qtable_for(graph, {}, "q7", table)
    assert tables["tensors"]["x"]["qformat"] == "Q2.5" and tables["tensors"]["y"]["qformat"] == "Q0.7"
    net = build("sm7", graph, {}, tmp_path, cmsis_archive, "q7", table)
    layer = tables["layers"]["softmax_0"]
    rng = np.random.default_rng(8)
    xs = [rng.integers(-128, 128, (2, 10)).astype(np.int8) for _ in range(20)]
    xs.append(np.array([[127] + [-128] * 9, [5] * 10], np.int8))          # p = 1 saturates; ten equal logits
    for x in xs:
        s8 = ch.softmax_s8(x, mult=layer["input_multiplier"], shift=layer["input_left_shift"],
                           diff_min=layer["diff_min"]).astype(np.int32)
        (y,) = net(x)
        np.testing.assert_array_equal(y.reshape(2, 10), np.minimum((s8 + 129) >> 1, 127))
        p = np.exp(x / 32.0) / np.exp(x / 32.0).sum(axis=1, keepdims=True)
        assert np.abs(y.reshape(2, 10) / 128.0 - p).max() <= 1.5 / 128


def _c_array(source: str, name: str, dtype: type) -> np.ndarray:
    body = re.search(rf"{name}\[\d+\][^=]*= \{{(.*?)\}};", source, re.S)
    assert body, name
    return np.array([int(v) for v in body.group(1).replace("\n", " ").split(",") if v.strip()], dtype=dtype)


def test_folded_biases_are_what_arm_vector_sum_s8_computes(kws: tuple[ir.Graph, dict[str, np.ndarray]]) -> None:
    """Layers that never read padding (kws: the four 1x1 convolutions and the fully connected layer) get the input
    offset folded into the bias at generation time: their bias array equals the library's arm_vector_sum_s8 of the
    layer's weights with the original bias and input offset, and the call has input offset 0. On Helium builds the
    fully connected layer's context points at that array (the kernel sums), so no inference computes a sum. The
    padded layers keep their offset and bias."""
    graph, params = kws
    tables, qparams = qtable_for(graph, params)
    files = codegen.generate("kws", graph, tables, qparams, "s8", "kws-test-hash")
    weights_c, model_c = files["kws_weights.c"], files["kws_model.c"]
    folded = sorted(re.findall(r"input offset 128 folded into the bias.*?\n.*?\n", model_c, re.S))
    assert len(folded) == 5 and model_c.count(".input_offset = 0,") == 5
    lib = ch.load_library()
    compared = 0
    for op in graph.ops:
        layer = tables["layers"].get(op.name, {})
        if op.type not in ("conv2d", "fully_connected") or not layer.get("bias"):
            continue
        bias = _c_array(weights_c, f"kws_{op.name}_bias", np.int32)
        original = np.asarray(qparams[layer["bias"]], np.int32)
        weights = np.asarray(qparams[op.inputs[1]], np.int8)
        rows = bias.size
        one_by_one = op.type == "fully_connected" or weights.shape[1:3] == (1, 1)
        if not one_by_one:
            np.testing.assert_array_equal(bias, original)
            continue
        expected = np.zeros(rows, dtype=np.int32)
        assert lib.arm_vector_sum_s8(ch.ptr(expected, ctypes.c_int32), weights.size // rows, rows,
                                     ch.ptr(np.ascontiguousarray(weights), ctypes.c_int8), layer["input_offset"], 0,
                                     ch.ptr(original, ctypes.c_int32)) == 0
        np.testing.assert_array_equal(bias, expected)
        compared += 1
    assert compared == 5 and "ctx.buf = (void *)kws_fully_connected_11_bias;" in model_c


def test_overlapping_outputs_sit_their_lag_below_a_dying_input(kws: tuple[ir.Graph, dict[str, np.ndarray]]) -> None:
    """kws with overlap=on: each depthwise output starts its row lag below its input (C = 64, W = 5, pad 1: (5 + 1)
    * 64 = 384 bytes), each 1x1 output 3 * 64 = 192 bytes below; every other pair of buffers live at the same time
    is disjoint; overlap=off gives the plan without overlaps (two 8,000-byte buffers at a time)."""
    graph, params = kws
    tables, qparams = qtable_for(graph, params)
    plan = json.loads(codegen.generate("kws", graph, tables, qparams, "s8", "h")["plan.json"])
    by_name = {b["name"]: b for b in plan["buffers"]}
    lags = {b["name"]: (b["overlap"]["rule"], b["overlap"]["lag"]) for b in plan["buffers"] if "overlap" in b}
    assert sorted(set(lags.values())) == [("pixel lag", 192), ("row lag", 384)] and len(lags) == 8
    for name, (rule, lag) in lags.items():
        b = by_name[name]
        assert b["offset"] == by_name[b["overlap"]["over"]]["offset"] - lag, name
    pairs = {(b["name"], b["overlap"]["over"]) for b in plan["buffers"] if "overlap" in b}
    for a in plan["buffers"]:
        for b in plan["buffers"]:
            live_together = a["first_op"] <= b["last_op"] and b["first_op"] <= a["last_op"]
            disjoint = a["offset"] + a["size"] <= b["offset"] or b["offset"] + b["size"] <= a["offset"]
            if a is not b and live_together and (a["name"], b["name"]) not in pairs | {(y, x) for x, y in pairs}:
                assert disjoint, (a["name"], b["name"])
    off = json.loads(codegen.generate("kws", graph, tables, qparams, "s8", "h", overlap=False)["plan.json"])
    assert off["activation_arena_size"] == 16000 and not any("overlap" in b for b in off["buffers"])
    assert plan["activation_arena_size"] == 10304


def test_overlap_rules_refuse_what_the_kernels_do_not_guarantee() -> None:
    """No overlap for a 1x1 convolution that widens its channels, has more than 64 outputs or C_IN not a multiple of
    4, a strided 1x1, a depthwise layer with a multiplier, a stride or C not a multiple of 4 (above 3), int16
    activations, or an add that broadcasts (tests/test_overlap_kernels.py proves the lags on the kernels)."""
    def conv(shape_in: list[int], weights: list[int], shape_out: list[int], op_type: str = "conv2d",
             **attrs: Any) -> dict[int, overlap.Overlap]:
        tensors = {"x": ir.Tensor("x", shape_in, "float32"), "w": ir.Tensor("w", weights, "int8", is_const=True),
                   "y": ir.Tensor("y", shape_out, "float32")}
        graph = ir.Graph(tensors, [ir.Op("op_0", op_type, ["x", "w"], ["y"], attrs)], ["x"], ["y"])
        qtable = {"tensors": {"x": {"dtype": "int8"}, "y": {"dtype": "int8"}}}
        return overlap.overlaps(graph, qtable)

    assert conv([1, 4, 4, 32], [16, 1, 1, 32], [1, 4, 4, 16])[0].lag == 48
    assert conv([1, 4, 4, 30], [16, 1, 1, 30], [1, 4, 4, 16]) == {}                   # DSP: no int16 columns
    assert conv([1, 4, 4, 16], [32, 1, 1, 16], [1, 4, 4, 32]) == {}                   # widens
    assert conv([1, 4, 4, 96], [80, 1, 1, 96], [1, 4, 4, 80]) == {}                   # more than 64 outputs
    assert conv([1, 4, 4, 32], [16, 1, 1, 32], [1, 2, 2, 16], stride=[2, 2]) == {}
    # a 3x3 convolution through im2col: the window's reach (W + 1 pixels) plus one pixel, of 16 output channels
    assert conv([1, 8, 8, 16], [16, 3, 3, 16], [1, 8, 8, 16], pad=[1, 1, 1, 1])[0].lag == (9 + 1) * 16
    assert conv([1, 8, 8, 16], [32, 3, 3, 16], [1, 8, 8, 32], pad=[1, 1, 1, 1]) == {}          # widens
    assert conv([1, 8, 8, 16], [16, 3, 3, 16], [1, 4, 4, 16], pad=[0, 1, 0, 1], stride=[2, 2]) == {}
    assert conv([1, 4, 4, 8], [1, 3, 3, 8], [1, 4, 4, 8], "depthwise_conv2d", pad=[1, 1, 1, 1])[0].lag == 48
    assert conv([1, 4, 4, 6], [1, 3, 3, 6], [1, 4, 4, 6], "depthwise_conv2d", pad=[1, 1, 1, 1]) == {}
    assert conv([1, 4, 4, 8], [1, 3, 3, 16], [1, 4, 4, 16], "depthwise_conv2d", pad=[1, 1, 1, 1],
                multiplier=2) == {}
    assert conv([1, 4, 4, 8], [1, 3, 3, 8], [1, 2, 2, 8], "depthwise_conv2d", pad=[1, 1, 1, 1], stride=[2, 2]) == {}
    tensors = {"a": ir.Tensor("a", [1, 4, 4, 8], "float32"), "b": ir.Tensor("b", [1, 1, 1, 8], "float32"),
               "y": ir.Tensor("y", [1, 4, 4, 8], "float32")}
    graph = ir.Graph(tensors, [ir.Op("add_0", "add", ["a", "b"], ["y"], {})], ["a", "b"], ["y"])
    int8 = {"tensors": {t: {"dtype": "int8"} for t in tensors}}
    assert overlap.overlaps(graph, int8) == {}                                       # broadcasts b
    graph.tensors["b"] = ir.Tensor("b", [1, 4, 4, 8], "float32")
    assert overlap.overlaps(graph, int8)[0].lag == 0
    assert overlap.overlaps(graph, {"tensors": {t: {"dtype": "int16"} for t in tensors}}) == {}
