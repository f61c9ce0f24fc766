"""The legacy q7/q15 backend (``api=legacy``, site_scons/nnscons/codegen/legacy.py) and the trace hook of both
backends.

The generated C is compiled with the portable kernels (``cmsis/``) and a tiny runner whose ``nnscons_trace`` hands
every layer's output to Python. Every layer's output must equal, bit for bit, the numpy model of the legacy
arithmetic (tests/legacy_model.py) run on the C's own inputs to that layer; the whole chain run in numpy from the
quantized input must give the C's output. digits_cnn and mnist8_onnx in q7 and q15 are checked on their test sets
(also for accuracy against the float model), a small graph covers the other paths (non-square and 1x1 variants,
depthwise, pooling that needs a copy, generated pooling / add / sub / mul / shift loops, sigmoid and tanh with
requantized inputs, batched FC and softmax). Also: the shifts against the seed's formulas, the generated calls,
the header choice for Arm's CMSIS_5 5.9.0, warning-free cross compiles, clear errors, and the trace hook on the s8
backend.
"""
from __future__ import annotations

import ctypes
import json
import math
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pytest

import cmsis_host as ch
import legacy_model as lm
from conftest import SHARED
from nnscons import codegen, data, fileio, ir, planner, reference, stats
from nnscons import quantize as qz
from nnscons import ranges as rg
from nnscons.errors import NnsconsError
from nnscons.importers import import_model

ROOT = Path(__file__).resolve().parents[1]
CMSIS = ROOT / "cmsis"
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2"]
ARM_CPUS = {"m4": ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"],
            "m0": ["-mcpu=cortex-m0", "-mthumb"]}
BITS = {"q7": 8, "q15": 16}


def model_dir(name: str) -> Path:
    """models/<name>, or the shared copy of the model (mnist8_onnx) when the example folder is missing."""
    local = ROOT / "models" / name
    return local if local.is_dir() else SHARED / "models" / name


# ---- compiling and running ------------------------------------------------------------------------------------------
def run(command: list[str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def cmsis_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
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


# The test runner's half of the trace hook: every call goes to a Python callback.
TRACE_RUNNER = r"""
#include <stdint.h>

typedef void (*trace_callback_t)(uint32_t layer_index, const char *layer_name, const void *output,
                                 uint32_t element_size, uint32_t count);
static trace_callback_t trace_callback;

void nnscons_test_set_trace(trace_callback_t callback);
void nnscons_test_set_trace(trace_callback_t callback)
{
    trace_callback = callback;
}

void nnscons_trace(const char *model, uint32_t layer_index, const char *layer_name, const void *output,
                   uint32_t element_size, uint32_t count)
{
    (void)model;
    if (trace_callback != 0)
    {
        trace_callback(layer_index, layer_name, output, element_size, count);
    }
}
"""

TRACE_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_uint32, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_uint32,
                                  ctypes.c_uint32)


class TracedNetwork:
    """A generated model with the trace hook compiled in (a shared library), driven through ``<name>_info``."""

    def __init__(self, name: str, files: dict[str, str], directory: Path, archive: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for file_name, text in files.items():
            (directory / file_name).write_text(text, encoding="utf-8")
        (directory / "trace_runner.c").write_text(TRACE_RUNNER, encoding="utf-8")
        library = directory / f"lib{name}.so"
        run(["gcc", *STRICT, "-fPIC", "-shared", "-DNNSCONS_TRACE", "-I", str(CMSIS / "Include"), "-I",
             str(directory), "-include", f"{name}.h", str(directory / f"{name}_model.c"),
             str(directory / f"{name}_weights.c"), str(directory / "trace_runner.c"), str(archive), "-o",
             str(library)])
        self.name = name
        self.lib = ctypes.CDLL(str(library))
        self.info = ch.ModelInfo.in_dll(self.lib, f"{name}_info")
        self.inputs = [self.info.inputs[i] for i in range(self.info.n_inputs)]
        self.outputs = [self.info.outputs[i] for i in range(self.info.n_outputs)]
        self.records: list[tuple[int, str, np.ndarray]] = []
        self._callback = TRACE_CALLBACK(self._record)            # kept alive as long as the library
        self.lib.nnscons_test_set_trace(self._callback)

    def _record(self, index: int, name: bytes, output: int, element_size: int, count: int) -> None:
        raw = ctypes.string_at(output, element_size * count)
        self.records.append((index, name.decode(), np.frombuffer(raw, np.int8 if element_size == 1 else np.int16)))

    def __call__(self, *xs: np.ndarray) -> tuple[list[np.ndarray], list[tuple[int, str, np.ndarray]]]:
        """The outputs and the trace (layer index, name, output values) of one inference."""
        ins = [np.ascontiguousarray(x, dtype=ch.io_dtype(i)).reshape(-1) for x, i in zip(xs, self.inputs)]
        outs = [np.zeros(o.size, ch.io_dtype(o)) for o in self.outputs]
        in_ptrs = (ctypes.c_void_p * len(ins))(*[x.ctypes.data for x in ins])
        out_ptrs = (ctypes.c_void_p * len(outs))(*[y.ctypes.data for y in outs])
        self.records = []
        status = self.info.invoke(in_ptrs, out_ptrs)
        assert status == 0, f"{self.name}_invoke returned {status}"
        return outs, self.records

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """The generated ``<name>_quantize_input`` helper on float values."""
        xf = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
        q = np.zeros(xf.size, ch.io_dtype(self.inputs[0]))
        getattr(self.lib, f"{self.name}_quantize_input")(xf.ctypes.data_as(ctypes.c_void_p),
                                                         q.ctypes.data_as(ctypes.c_void_p), ctypes.c_size_t(xf.size))
        return q


# ---- the numpy model of each layer (legacy arithmetic) -------------------------------------------------------------
def shift_saturate(x: np.ndarray, shift: int, bits: int) -> np.ndarray:
    """x * 2^-shift: right shifts round half up (NN_ROUND), left shifts saturate."""
    x = np.asarray(x, np.int64)
    v = (x + (1 << (shift - 1))) >> shift if shift > 0 else x << -shift
    return lm.saturate(v, bits)


def pool_any(kind: str, x: np.ndarray, kernel: tuple[int, int], pad: tuple[int, int], stride: tuple[int, int],
             out_hw: tuple[int, int]) -> np.ndarray:
    """Reference pooling for any (non-square) shape: valid taps only, truncating average, empty windows 0."""
    x = np.asarray(x, np.int64)
    h, w, _ = x.shape
    out = np.zeros((*out_hw, x.shape[2]), np.int64)
    for oy in range(out_hw[0]):
        for ox in range(out_hw[1]):
            y0, x0 = oy * stride[0] - pad[0], ox * stride[1] - pad[1]
            win = x[max(y0, 0):min(y0 + kernel[0], h), max(x0, 0):min(x0 + kernel[1], w)]
            if win.size == 0:
                continue
            if kind == "max":
                out[oy, ox] = win.max(axis=(0, 1))
            else:
                total = win.sum(axis=(0, 1))
                out[oy, ox] = np.sign(total) * (np.abs(total) // (win.shape[0] * win.shape[1]))
    return out


def softmax_frac_bits(beta: float) -> int:
    """The base-2 legacy softmax is softmax(2^f ln2 * v) on f fractional bits: the nearest to softmax(beta v)."""
    return round(math.log2(beta / math.log(2)))


class LegacyReference:
    """The legacy arithmetic of every layer of a generated network, from its graph, qtable.json and qparams."""

    def __init__(self, graph: ir.Graph, tables: dict[str, Any], qparams: dict[str, np.ndarray],
                 softmax: str = "input") -> None:
        self.graph, self.tables, self.qparams, self.softmax = graph, tables, qparams, softmax
        self.bits = BITS[tables["scheme"]]

    def frac(self, tensor: str) -> int:
        return int(self.tables["tensors"][tensor]["frac_bits"])

    def fused(self, op: ir.Op, q: dict[str, Any], y: np.ndarray) -> np.ndarray:
        activation = op.attrs.get("activation", "none")
        if activation == "relu":
            return lm.relu(y)
        if activation != "none":
            return np.clip(y, q["act_min"], q["act_max"])
        return y

    def layer(self, op: ir.Op, xs: list[np.ndarray]) -> np.ndarray:
        """The op's output (flat) from its activation inputs (flat integer arrays)."""
        q = self.tables["layers"][op.name]
        t = self.graph.tensors
        x = np.asarray(xs[0], np.int64)
        out_shape = t[op.outputs[0]].shape
        bits = self.bits
        if op.type in ("conv2d", "depthwise_conv2d"):
            _, h, w, c = t[op.inputs[0]].shape
            weights = self.qparams[op.inputs[1]]
            bias = self.qparams[op.inputs[2]] if len(op.inputs) > 2 else None
            pad, stride = op.attrs["pad"], tuple(op.attrs["stride"])
            common = dict(bias_shift=q["bias_shift"], out_shift=q["out_shift"], padding=(pad[0], pad[2]),
                          stride=stride, out_hw=tuple(out_shape[1:3]))
            if op.type == "conv2d":
                y = lm.conv(x.reshape(h, w, c), weights, bias, out_bits=bits, **common)
            else:
                y = lm.depthwise(x.reshape(h, w, c), weights[0], bias, **common)
            return self.fused(op, q, y).reshape(-1)
        if op.type == "fully_connected":
            matrix = self.qparams[op.inputs[1]]
            bias = self.qparams[op.inputs[2]] if len(op.inputs) > 2 else None
            rows = [lm.fully_connected(v, matrix, bias, bias_shift=q["bias_shift"], out_shift=q["out_shift"],
                                       out_bits=bits) for v in x.reshape(-1, matrix.shape[1])]
            return self.fused(op, q, np.concatenate(rows)).reshape(-1)
        if op.type in ("max_pool2d", "avg_pool2d"):
            _, h, w, c = t[op.inputs[0]].shape
            kind = "max" if op.type == "max_pool2d" else "avg"
            kernel, stride, pad = tuple(op.attrs["kernel"]), tuple(op.attrs["stride"]), op.attrs["pad"]
            square = len({kernel[0], kernel[1]}) == len({stride[0], stride[1]}) == len({h, w}) == 1
            if bits == 8 and square and pad[0] == pad[2]:
                y = lm.pool(kind, x.reshape(h, w, c), kernel=kernel[0], padding=pad[0], stride=stride[0],
                            dim_out=out_shape[1])
            else:
                y = pool_any(kind, x.reshape(h, w, c), kernel, (pad[0], pad[2]), stride, tuple(out_shape[1:3]))
            return self.fused(op, q, y).reshape(-1)
        if op.type == "softmax":
            row = out_shape[-1]
            shifted = x                   # legacy_softmax=input: the logits in their own format
            if self.softmax == "calibrated":
                shifted = shift_saturate(x, self.frac(op.inputs[0]) - softmax_frac_bits(op.attrs.get("beta", 1.0)),
                                         bits)
            function = lm.softmax_q7 if bits == 8 else lm.softmax_q15
            return function(shifted.reshape(-1, row)).reshape(-1)
        if op.type in ("logistic", "tanh"):
            int_width = bits - 1 - self.frac(op.inputs[0])
            table_width = min(max(int_width, 0), 3)
            shifted = shift_saturate(x, table_width - int_width, bits)
            function = lm.activations_direct_q7 if bits == 8 else lm.activations_direct_q15
            return function(shifted, table_width, "sigmoid" if op.type == "logistic" else "tanh")
        if op.type in ("add", "sub"):
            f1, f2, fo = self.frac(op.inputs[0]), self.frac(op.inputs[1]), self.frac(op.outputs[0])
            fine = max(f1, f2)
            a, b = x << (fine - f1), np.asarray(xs[1], np.int64) << (fine - f2)
            total = fine - fo
            y = ((a + b if op.type == "add" else a - b) + lm.nn_round(total)) >> total
            return np.clip(y, q["act_min"], q["act_max"])
        if op.type == "mul":
            shift = self.frac(op.inputs[0]) + self.frac(op.inputs[1]) - self.frac(op.outputs[0])
            y = (x * np.asarray(xs[1], np.int64) + lm.nn_round(shift)) >> shift
            return np.clip(y, q["act_min"], q["act_max"])
        if op.type == "relu":
            return lm.relu(x)
        if op.type in ("relu6", "clip"):
            return np.clip(x, q["act_min"], q["act_max"])
        if op.type == "reshape":
            return x
        raise AssertionError(f"no numpy model for {op.type}")

    def chain(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every tensor of the network in numpy, from the quantized input."""
        values = {self.graph.inputs[0]: np.asarray(x, np.int64).reshape(-1)}
        for op in self.graph.ops:
            values[op.outputs[0]] = self.layer(op, [values[i] for i in op.inputs
                                                    if not self.graph.tensors[i].is_const])
        return values


def check_trace(net_trace: list[tuple[int, str, np.ndarray]], graph: ir.Graph, ref: LegacyReference,
                network_input: np.ndarray) -> None:
    """Each traced layer equals the numpy model on the C's own inputs to that layer (traced in the order they run,
    which option order may have changed: checked in graph order)."""
    net_trace = sorted(net_trace, key=lambda entry: entry[0])
    assert [(i, n) for i, n, _ in net_trace] == [(i, op.name) for i, op in enumerate(graph.ops)]
    produced = {graph.inputs[0]: network_input.astype(np.int64).reshape(-1)}
    for (_, _, values), op in zip(net_trace, graph.ops):
        inputs = [produced[t] for t in op.inputs if not graph.tensors[t].is_const]
        expected = ref.layer(op, inputs)
        np.testing.assert_array_equal(values, expected, err_msg=f"layer {op.name} ({op.type})")
        produced[op.outputs[0]] = values.astype(np.int64)


# ---- the example models ----------------------------------------------------------------------------------------------
def build_tables(graph: ir.Graph, params: dict[str, np.ndarray], calib: dict[str, np.ndarray], scheme: str,
                 api: str, chunk: int = 64) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The quantize stage's tables as they come back from qtable.json. ``chunk`` 1 for graphs whose shapes have
    no batch axis (the reference interpreter then runs one sample at a time)."""
    table = rg.range_table(stats.compute_stats(graph, params, calib, chunk=chunk, progress=False), scheme, "minmax")
    built = qz.build_qtable(graph, params, table, scheme, api)
    return json.loads(fileio.canonical_json(built.tables)), built.qparams


@pytest.fixture(scope="module")
def example(request: pytest.FixtureRequest) -> dict[str, Any]:
    cache: dict[str, Any] = {}

    def load(name: str) -> dict[str, Any]:
        if name not in cache:
            folder = model_dir(name)
            graph, params = import_model(folder / "model.onnx")
            calib = data.load_inputs(folder / "calib.npz", graph)
            test = data.load_inputs(folder / "test.npz", graph)
            floats = reference.run(graph, params, test)[graph.outputs[0]]
            labels = np.load(folder / "test.npz")["y"]
            cache[name] = {"graph": graph, "params": params, "calib": calib, "x": test[graph.inputs[0]],
                           "y": labels, "float_accuracy": float(np.mean(floats.argmax(-1) == labels))}
        return cache[name]
    return load  # type: ignore[return-value]


# Top-1 accuracy on test.npz may lose at most this much against the float model: 2 points for q7, 0.5 for q15.
TOLERANCE = {"q7": 0.02, "q15": 0.005}
# Measured shortfalls (none at present); strict, so a fix in the quantizer shows up as an unexpected pass.
SHORTFALLS: dict[tuple[str, str], str] = {}
_RESULTS: dict[tuple[str, str], dict[str, float]] = {}


def run_example(model: str, scheme: str, example: Any, directory: Path, archive: Path) -> dict[str, float]:
    """Runs the legacy network on the whole test set, checking every layer of every inference against the numpy
    model; returns the accuracies of its output and of the layer before a final softmax (the logits)."""
    if (model, scheme) in _RESULTS:
        return _RESULTS[(model, scheme)]
    ex = example(model)
    graph = ex["graph"]
    tables, qparams = build_tables(graph, ex["params"], ex["calib"], scheme, "legacy")
    files = codegen.generate(model, graph, tables, qparams, "legacy", "test")
    net = TracedNetwork(model, files, directory, archive)
    ref = LegacyReference(graph, tables, qparams)
    frac = tables["tensors"][graph.inputs[0]]["frac_bits"]
    assert net.inputs[0].scale == 2.0 ** -frac and net.inputs[0].zero_point == 0      # a Q-format input
    limit = 1 << (BITS[scheme] - 1)
    correct = logits_correct = 0
    for i, (x, label) in enumerate(zip(ex["x"], ex["y"])):
        xq = net.quantize_input(x)
        np.testing.assert_array_equal(xq, np.clip(qz.round_array(x.reshape(-1) * 2.0 ** frac), -limit, limit - 1))
        (y,), trace = net(xq)
        check_trace(trace, graph, ref, xq)
        if i < 20:                                   # the whole chain in numpy, from the input alone
            np.testing.assert_array_equal(ref.chain(xq)[graph.outputs[0]], y)
        np.testing.assert_array_equal(trace[-1][2], y)
        correct += int(np.argmax(y) == label)
        logits = trace[-2][2] if graph.ops[-1].type == "softmax" else y
        logits_correct += int(np.argmax(logits) == label)
    n = len(ex["y"])
    _RESULTS[(model, scheme)] = {"accuracy": correct / n, "logits_accuracy": logits_correct / n,
                                 "float_accuracy": ex["float_accuracy"]}
    return _RESULTS[(model, scheme)]


@pytest.mark.parametrize("scheme", ["q7", "q15"])
@pytest.mark.parametrize("model", ["digits_cnn", "mnist8_onnx"])
def test_example_model_is_bit_exact_layer_by_layer(model: str, scheme: str, example: Any, tmp_path: Path,
                                                   cmsis_archive: Path) -> None:
    result = run_example(model, scheme, example, tmp_path, cmsis_archive)
    assert result["accuracy"] > 0.5                   # the inputs do exercise the network


@pytest.mark.parametrize("model, scheme", [
    pytest.param(m, s, marks=pytest.mark.xfail(reason=SHORTFALLS[(m, s)], strict=True) if (m, s) in SHORTFALLS
                 else ()) for m in ("digits_cnn", "mnist8_onnx") for s in ("q7", "q15")])
def test_example_model_accuracy_is_close_to_float(model: str, scheme: str, example: Any, tmp_path: Path,
                                                  cmsis_archive: Path) -> None:
    result = run_example(model, scheme, example, tmp_path, cmsis_archive)
    loss = result["float_accuracy"] - result["accuracy"]
    assert loss <= TOLERANCE[scheme], f"{model} {scheme}: {result}"


@pytest.mark.parametrize("scheme", ["q7", "q15"])
def test_digits_shifts_follow_the_seed_formulas_and_reach_the_calls(scheme: str, example: Any) -> None:
    ex = example("digits_cnn")
    graph = ex["graph"]
    tables, qparams = build_tables(graph, ex["params"], ex["calib"], scheme, "legacy")
    code = codegen.generate("digits", graph, tables, qparams, "legacy", "h")["digits_model.c"]
    frac = {name: t.get("frac_bits") for name, t in tables["tensors"].items()}
    weighted = [op for op in graph.ops if op.type in ("conv2d", "fully_connected")]
    assert len(weighted) == 4
    for op in weighted:
        fi, fw, fb, fo = (frac[t] for t in (op.inputs[0], op.inputs[1], op.inputs[2], op.outputs[0]))
        layer = tables["layers"][op.name]
        assert (layer["bias_shift"], layer["out_shift"]) == (fi + fw - fb, fi + fw - fo)
        bias = f"digits_{op.name}_bias"
        if op.type == "conv2d":
            pattern = rf"{bias}, /\* bias_shift \*/ {fi + fw - fb}, /\* out_shift \*/ {fi + fw - fo},"
        else:
            pattern = rf"/\* bias_shift \*/ {fi + fw - fb}, /\* out_shift \*/ {fi + fw - fo}, {bias},"
        assert re.search(pattern, code), op.name
    functions = re.findall(r"(arm_\w+)\(", code)
    if scheme == "q7":  # conv2d_0 has one input channel (basic); conv2d_2 16 -> 32 (fast); FC _opt
        assert functions == ["arm_convolve_HWC_q7_basic", "arm_relu_q7", "arm_maxpool_q7_HWC",
                             "arm_convolve_HWC_q7_fast", "arm_relu_q7", "arm_maxpool_q7_HWC",
                             "arm_fully_connected_q7_opt", "arm_relu_q7", "arm_fully_connected_q7_opt",
                             "arm_softmax_q7"]
    else:               # no q15 pooling in the legacy API: generated loops
        assert functions == ["arm_convolve_HWC_q15_basic", "arm_relu_q15", "arm_convolve_HWC_q15_fast",
                             "arm_relu_q15", "arm_fully_connected_q15_opt", "arm_relu_q15",
                             "arm_fully_connected_q15_opt", "arm_softmax_q15"]
        assert code.count("digits_pool_q15(") == 3                            # the helper and two calls


def test_fc_weights_are_interleaved_for_the_opt_kernel(example: Any) -> None:
    ex = example("digits_cnn")
    tables, qparams = build_tables(ex["graph"], ex["params"], ex["calib"], "q7", "legacy")
    weights_c = codegen.generate("digits", ex["graph"], tables, qparams, "legacy", "h")["digits_weights.c"]
    body = re.search(r"digits_fully_connected_6_weights\[640\] NNSCONS_CONST_ALIGN = \{(.*?)\};", weights_c, re.S)
    assert body is not None
    stored = np.array([int(v) for v in body.group(1).replace(",", " ").split()], np.int8)
    w = qparams[tables["layers"]["fully_connected_6"]["weights"]]
    # the first 4-row, 4-column block in arm_fully_connected_q7_opt's order (facts section 4.5)
    expected = [w[0, 0], w[1, 0], w[0, 2], w[1, 2], w[2, 0], w[3, 0], w[2, 2], w[3, 2],
                w[0, 1], w[1, 1], w[0, 3], w[1, 3], w[2, 1], w[3, 1], w[2, 3], w[3, 3]]
    assert stored[:16].tolist() == [int(v) for v in expected]
    assert sorted(stored.tolist()) == sorted(w.reshape(-1).tolist()) and not np.array_equal(stored, w.reshape(-1))


# ---- a small graph through every other path -------------------------------------------------------------------------
def coverage_graph(depthwise: bool) -> tuple[ir.Graph, dict[str, np.ndarray]]:
    """A float graph whose q7/q15 legacy code takes every other path (see the module docstring)."""
    rng = np.random.default_rng(11)
    tensors: dict[str, ir.Tensor] = {}
    params: dict[str, np.ndarray] = {}
    ops: list[ir.Op] = []

    def act(name: str, shape: list[int]) -> str:
        tensors[name] = ir.Tensor(name, shape, "float32")
        return name

    def const(name: str, values: np.ndarray) -> str:
        tensors[name] = ir.Tensor(name, list(values.shape), "float32", is_const=True)
        params[name] = values.astype(np.float32)
        return name

    def op(kind: str, inputs: list[str], output: str, **attrs: Any) -> None:
        ops.append(ir.Op(f"{kind}_{len(ops)}", kind, inputs, [output], attrs, f"{kind.upper()} #{len(ops)}"))

    conv = {"dilation": [1, 1]}
    act("x", [1, 6, 6, 4])
    op("conv2d", ["x", const("w0", rng.normal(0, 0.5, (8, 1, 1, 4))), const("b0", rng.normal(0, 0.3, 8))],
       act("c0", [1, 6, 6, 8]), stride=[1, 1], pad=[0, 0, 0, 0], activation="relu6", **conv)
    op("avg_pool2d", ["c0"], act("p0", [1, 3, 3, 8]), kernel=[2, 2], stride=[2, 2], pad=[0, 0, 0, 0],
       activation="none")                                     # c0 is read again below: pooled from a copy
    source = "c0"
    if depthwise:
        op("depthwise_conv2d", ["c0", const("wd", rng.normal(0, 0.5, (1, 3, 3, 8))), const("bd", rng.normal(0, 1, 8))],
           act("d0", [1, 6, 6, 8]), stride=[1, 1], pad=[1, 1, 1, 1], multiplier=1, activation="relu", **conv)
        source = "d0"
    op("conv2d", [source, const("w1", rng.normal(0, 0.5, (6, 3, 1, 8))), const("b1", rng.normal(0, 0.3, 6))],
       act("c1", [1, 6, 6, 6]), stride=[1, 1], pad=[1, 1, 0, 0], activation="none", **conv)
    op("max_pool2d", ["c1"], act("m0", [1, 6, 3, 6]), kernel=[3, 2], stride=[1, 2], pad=[1, 1, 0, 0],
       activation="relu")
    op("reshape", ["p0"], act("r0", [1, 72]), shape=[1, 72])
    op("fully_connected", ["r0", const("wf0", rng.normal(0, 1.0, (10, 72))), const("bf0", rng.normal(0, 1, 10))],
       act("f0", [1, 10]), activation="none")
    op("reshape", ["m0"], act("r1", [1, 108]), shape=[1, 108])
    op("fully_connected", ["r1", const("wf1", rng.normal(0, 1.0, (10, 108))), const("bf1", rng.normal(0, 1, 10))],
       act("f1", [1, 10]), activation="none")
    op("add", ["f0", "f1"], act("a0", [1, 10]), activation="relu")
    op("sub", ["f0", "f1"], act("s0", [1, 10]), activation="none")
    op("mul", ["a0", "s0"], act("u0", [1, 10]), activation="none")
    op("logistic", ["u0"], act("g0", [1, 10]))
    op("tanh", ["s0"], act("h0", [1, 10]))
    op("relu", ["s0"], act("e0", [1, 10]))
    op("clip", ["e0"], act("k0", [1, 10]), min=None, max=1.5)
    op("add", ["g0", "h0"], act("o0", [1, 10]), activation="none")
    op("add", ["o0", "k0"], act("o1", [1, 10]), activation="none")
    op("reshape", ["o1"], act("q0", [2, 5]), shape=[2, 5])
    op("fully_connected", ["q0", const("wf2", rng.normal(0, 1.0, (5, 5))), const("bf2", rng.normal(0, 0.5, 5))],
       act("f2", [2, 5]), activation="none")
    op("softmax", ["f2"], act("y", [2, 5]), beta=1.0)
    graph = ir.Graph(tensors, ops, ["x"], ["y"], source="onnx", source_file="coverage.onnx")
    ir.validate(graph, params)
    return graph, params


@pytest.mark.parametrize("softmax", ["input", "calibrated"])
@pytest.mark.parametrize("scheme", ["q7", "q15"])
def test_every_other_path_is_bit_exact(scheme: str, softmax: str, tmp_path: Path, cmsis_archive: Path) -> None:
    graph, params = coverage_graph(depthwise=scheme == "q7")
    rng = np.random.default_rng(4)
    calib = {"x": rng.uniform(-1, 1, (64, 6, 6, 4)).astype(np.float32)}
    tables, qparams = build_tables(graph, params, calib, scheme, "legacy", chunk=1)
    files = codegen.generate("cov", graph, tables, qparams, "legacy", "h", softmax)
    code = files["cov_model.c"]
    expected_functions = {
        "q7": ["arm_convolve_1x1_HWC_q7_fast_nonsquare", "arm_avepool_q7_HWC", "arm_depthwise_separable_conv_HWC_q7",
               "arm_convolve_HWC_q7_fast_nonsquare", "arm_fully_connected_q7_opt", "arm_relu_q7",
               "arm_nn_activations_direct_q7", "arm_softmax_with_batch_q7"],
        "q15": ["arm_convolve_HWC_q15_fast", "arm_convolve_HWC_q15_fast_nonsquare", "arm_fully_connected_q15_opt",
                "arm_relu_q15", "arm_nn_activations_direct_q15", "arm_softmax_q15"]}[scheme]
    for function in expected_functions:
        assert f"{function}(" in code, function
    for helper in ("pool", "add", "mul", "shift"):
        assert f"static void cov_{helper}_{scheme}(" in code, helper
    if scheme == "q7":      # Arm's in-place average pooling reads a copy: its input is convolved afterwards
        assert re.search(r"memcpy\(scratch, conv2d_0_out, 288u\);\n\s+"
                         r"arm_avepool_q7_HWC\(/\* Im_in \*/ \(int8_t \*\)\(void \*\)scratch, /\* dim_im_in \*/ 6, "
                         r"/\* ch_im_in \*/ 8,", code)
    assert tables["layers"]["logistic_12" if scheme == "q7" else "logistic_11"]["int_width"] > 3  # requantized
    softmax_code = code[code.index("/* softmax_"):]
    softmax_code = softmax_code[:softmax_code.index("NNSCONS_TRACE_LAYER(")]
    assert ("cov_shift_q" in softmax_code) == (softmax == "calibrated")       # the input rescaled, or not
    net = TracedNetwork("cov", files, tmp_path, cmsis_archive)
    ref = LegacyReference(graph, tables, qparams, softmax)
    outputs = set()
    for x in rng.uniform(-1.2, 1.2, (40, 6, 6, 4)).astype(np.float32):
        xq = net.quantize_input(x)
        (y,), trace = net(xq)
        check_trace(trace, graph, ref, xq)
        np.testing.assert_array_equal(ref.chain(xq)["y"], y)
        outputs.add(b"".join(values.tobytes() for _, name, values in trace if name.startswith(("add", "mul"))))
    assert len(outputs) == 40                          # the inputs do exercise the network


def test_scratch_is_planned_after_the_activations(tmp_path: Path) -> None:
    """The pooling input copy (every build) and Arm's DSP buffers (DSP builds) follow the activation arena."""
    graph, params = coverage_graph(depthwise=True)
    calib = {"x": np.random.default_rng(4).uniform(-1, 1, (16, 6, 6, 4)).astype(np.float32)}
    tables, qparams = build_tables(graph, params, calib, "q7", "legacy", chunk=1)
    files = codegen.generate("cov", graph, tables, qparams, "legacy", "h")
    plan = json.loads(files["plan.json"])
    copy = 6 * 6 * 8                                              # c0, int8
    # bufferA of the DSP paths: 2 * ch_in * kernel taps q15 values (conv 1x1: 2*4, depthwise 2*8*9, conv 3x1: 2*8*3)
    # avepool: 2 * dim_out * ch q7; FC q7: dim_vec q15 (72, 108, 5)
    arm = max(2 * 4 * 2, 2 * 8 * 9 * 2, 2 * 8 * 3 * 2, 2 * 3 * 8, 72 * 2, 108 * 2, 5 * 2)
    assert plan["scratch"] == {"c": planner.align(copy), "dsp": planner.align(copy) + planner.align(arm),
                               "mve": planner.align(copy) + planner.align(arm)}
    header = files["cov.h"]
    assert f"#define COV_ACTIVATION_ARENA_SIZE {plan['activation_arena_size']}u" in header
    assert f"#if (defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)) || \\\n" \
           f"    ((defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1)) || defined(ARM_MATH_DSP))\n" \
           f"#define COV_SCRATCH_SIZE {plan['scratch']['dsp']}u\n#else\n#define COV_SCRATCH_SIZE {copy}u\n#endif\n" \
           in header
    assert f"NNSCONS_ARM_BUFFER(int16_t, {planner.align(copy)})" in files["cov_model.c"]


# ---- headers, compilers ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits_sources(example: Any) -> dict[str, dict[str, str]]:
    ex = example("digits_cnn")
    sources = {}
    for scheme in ("q7", "q15"):
        tables, qparams = build_tables(ex["graph"], ex["params"], ex["calib"], scheme, "legacy")
        sources[scheme] = codegen.generate(f"digits_{scheme}", ex["graph"], tables, qparams, "legacy", "h")
    graph, params = coverage_graph(depthwise=True)
    calib = {"x": np.random.default_rng(4).uniform(-1, 1, (16, 6, 6, 4)).astype(np.float32)}
    tables, qparams = build_tables(graph, params, calib, "q7", "legacy", chunk=1)
    sources["cov"] = codegen.generate("cov", graph, tables, qparams, "legacy", "h")
    return sources


def cmsis5_like_include(directory: Path) -> Path:
    """An include folder shaped like Arm's CMSIS_5 5.9.0: one arm_nnfunctions.h (guard _ARM_NNFUNCTIONS_H)
    declaring the legacy functions, and no arm_nnfunctions_legacy.h. Built from the portable declarations."""
    directory.mkdir(parents=True, exist_ok=True)
    legacy = (CMSIS / "Include" / "arm_nnfunctions_legacy.h").read_text()
    legacy = legacy.replace('#include "arm_nnfunctions.h"', "")
    (directory / "arm_nnfunctions.h").write_text(
        "#ifndef _ARM_NNFUNCTIONS_H\n#define _ARM_NNFUNCTIONS_H\n#include <stdint.h>\n"
        "typedef enum { ARM_SIGMOID = 0, ARM_TANH = 1 } arm_nn_activation_type;\n"
        "void arm_relu_q7(int8_t *data, uint16_t size);\nvoid arm_relu_q15(int16_t *data, uint16_t size);\n"
        + legacy + "\n#endif\n")
    return directory


@pytest.mark.parametrize("compiler", ["gcc", "m4", "m0"])
def test_legacy_code_compiles_without_warnings(compiler: str, digits_sources: dict[str, dict[str, str]],
                                               tmp_path: Path) -> None:
    if compiler != "gcc" and shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not installed")
    command = ["gcc"] if compiler == "gcc" else ["arm-none-eabi-gcc", *ARM_CPUS[compiler]]
    arm5 = cmsis5_like_include(tmp_path / "cmsis5")
    for name, files in digits_sources.items():
        directory = tmp_path / name
        directory.mkdir()
        for file_name, text in files.items():
            (directory / file_name).write_text(text)
        for unit in sorted(directory.glob("*.c")):
            for extra in ([], ["-DNNSCONS_TRACE"]):
                run([*command, *STRICT, *extra, "-I", str(CMSIS / "Include"), "-I", str(directory), "-c", str(unit),
                     "-o", str(tmp_path / "out.o")])
            # Arm's CMSIS_5 5.9.0 layout: the same code, no arm_nnfunctions_legacy.h
            run([*command, *STRICT, "-I", str(arm5), "-I", str(directory), "-c", str(unit), "-o",
                 str(tmp_path / "out.o")])


def test_the_trace_costs_nothing_without_the_macro(digits_sources: dict[str, dict[str, str]],
                                                   tmp_path: Path) -> None:
    files = digits_sources["q7"]
    for file_name, text in files.items():
        (tmp_path / file_name).write_text(text)
    symbols = {}
    for extra in ([], ["-DNNSCONS_TRACE"]):
        obj = tmp_path / f"model{len(extra)}.o"
        run(["gcc", *STRICT, *extra, "-I", str(CMSIS / "Include"), "-I", str(tmp_path), "-c",
             str(tmp_path / "digits_q7_model.c"), "-o", str(obj)])
        symbols[bool(extra)] = run(["nm", str(obj)])
    assert "nnscons_trace" not in symbols[False]
    assert re.search(r"^\s+U nnscons_trace$", symbols[True], re.M)
    assert "void nnscons_trace(const char *model, uint32_t layer_index, const char *layer_name, const void " \
           "*output,\n                   uint32_t element_size, uint32_t count);" in files["digits_q7.h"]


def test_header_includes_the_legacy_declarations_only_for_the_portable_library(
        digits_sources: dict[str, dict[str, str]]) -> None:
    code = digits_sources["q7"]["digits_q7_model.c"]
    assert '#include "arm_nnfunctions.h"\n' in code
    assert ('#if defined(NNSCONS_ARM_NNFUNCTIONS_H) || defined(NNSCONS_LEGACY_HEADER)\n'
            '#include "arm_nnfunctions_legacy.h"\n#endif\n') in code
    assert "#define NNSCONS_ARM_NNFUNCTIONS_H" in (CMSIS / "Include" / "arm_nnfunctions.h").read_text()
    assert "cmsis_nn_context" not in code and "ARM_CMSIS_NN_SUCCESS" not in code


# ---- errors ----------------------------------------------------------------------------------------------------------
def small_float_graph(extra: str) -> tuple[ir.Graph, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """x [1,4,4,4] -> conv 3x3 -> c (-> ``extra``: an op legacy code cannot express -> y)."""
    rng = np.random.default_rng(2)
    tensors = {"x": ir.Tensor("x", [1, 4, 4, 4], "float32"),
               "w": ir.Tensor("w", [4, 3, 3, 4], "float32", is_const=True),
               "c": ir.Tensor("c", [1, 4, 4, 4], "float32")}
    params = {"w": rng.normal(0, 0.3, (4, 3, 3, 4)).astype(np.float32)}
    ops = [ir.Op("conv2d_0", "conv2d", ["x", "w"], ["c"], {"stride": [1, 1], "dilation": [1, 1],
                                                              "pad": [1, 1, 1, 1], "activation": "none"}, "Conv c")]
    if extra == "pad":
        tensors["y"] = ir.Tensor("y", [1, 6, 6, 4], "float32")
        ops.append(ir.Op("pad_1", "pad", ["c"], ["y"], {"pads": [[0, 0], [1, 1], [1, 1], [0, 0]], "value": 0.0},
                         'Pad "p" */'))
    elif extra == "depthwise_mult2":
        tensors["wd"] = ir.Tensor("wd", [1, 3, 3, 8], "float32", is_const=True)
        tensors["y"] = ir.Tensor("y", [1, 4, 4, 8], "float32")
        params["wd"] = rng.normal(0, 0.3, (1, 3, 3, 8)).astype(np.float32)
        ops.append(ir.Op("depthwise_conv2d_1", "depthwise_conv2d", ["c", "wd"], ["y"],
                         {"stride": [1, 1], "dilation": [1, 1], "pad": [1, 1, 1, 1], "activation": "none",
                          "multiplier": 2}, "DepthwiseConv d"))
    elif extra == "depthwise":
        tensors["y"] = ir.Tensor("y", [1, 4, 4, 4], "float32")
        ops.append(ir.Op("depthwise_conv2d_1", "depthwise_conv2d", ["c", "wd"], ["y"],
                         {"stride": [1, 1], "dilation": [1, 1], "pad": [1, 1, 1, 1], "activation": "none",
                          "multiplier": 1}, "DepthwiseConv d"))
        tensors["wd"] = ir.Tensor("wd", [1, 3, 3, 4], "float32", is_const=True)
        params["wd"] = rng.normal(0, 0.3, (1, 3, 3, 4)).astype(np.float32)
    graph = ir.Graph(tensors, ops, ["x"], ["y" if extra else "c"])
    ir.validate(graph, params)
    calib = {"x": rng.uniform(-1, 1, (8, 4, 4, 4)).astype(np.float32)}
    return graph, params, calib


@pytest.mark.parametrize("extra, scheme, message", [
    ("pad", "q7", r"^layer pad_1 \(Pad \"p\" \* /\): op pad has no CMSIS-NN legacy q7 kernel \(the legacy API has "
                  r"no padding kernel"),
    ("depthwise_mult2", "q7", r"^layer depthwise_conv2d_1 \(DepthwiseConv d\): op depthwise_conv2d has no CMSIS-NN "
                              r"legacy q7 kernel \(no legacy function accepts its shape \(.*no channel multiplier"),
    ("depthwise", "q15", r"^layer depthwise_conv2d_1 \(DepthwiseConv d\): op depthwise_conv2d has no CMSIS-NN "
                         r"legacy q15 kernel \(the legacy API has no q15 depthwise convolution\)$"),
])
def test_inexpressible_layers_are_clear_errors(extra: str, scheme: str, message: str) -> None:
    graph, params, calib = small_float_graph(extra)
    tables, qparams = build_tables(graph, params, calib, scheme, "legacy")
    with pytest.raises(NnsconsError, match=message):
        codegen.generate("m", graph, tables, qparams, "legacy", "h")


def test_legacy_needs_a_q_format_table_built_for_it() -> None:
    graph, params, calib = small_float_graph("")
    tables, qparams = build_tables(graph, params, calib, "int8", "s8")
    with pytest.raises(NnsconsError, match="api=legacy: .*use quant=q7 or quant=q15 \\(this table is int8\\)"):
        codegen.generate("m", graph, tables, qparams, "legacy", "h")
    tables, qparams = build_tables(graph, params, calib, "q15", "s8")     # int8 weights, int64 biases
    with pytest.raises(NnsconsError, match=r"layer conv2d_0 .*weights are int8, the legacy q15 kernels take int16 "
                                           r"\(rebuild the quantization table with api=legacy\)"):
        codegen.generate("m", graph, tables, qparams, "legacy", "h")


def test_softmax_input_rule() -> None:
    """2^(x * 2^-f) base-2 softmax: f = 1 (effective beta 2 ln 2 = 1.39) is the nearest to e^x."""
    assert codegen.softmax_input_frac_bits(1.0) == softmax_frac_bits(1.0) == 1
    assert codegen.softmax_input_frac_bits(0.25) == softmax_frac_bits(0.25) == -1
    assert codegen.softmax_input_frac_bits(8.0) == 4


def test_legacy_output_is_deterministic(example: Any) -> None:
    ex = example("digits_cnn")
    first = codegen.generate("d", ex["graph"], *build_tables(ex["graph"], ex["params"], ex["calib"], "q7", "legacy"),
                             "legacy", "h")
    again = codegen.generate("d", ex["graph"], *build_tables(ex["graph"], ex["params"], ex["calib"], "q7", "legacy"),
                             "legacy", "h")
    assert first == again


# ---- the trace hook on the s8 backend --------------------------------------------------------------------------------
def test_s8_trace_reports_every_layer_with_its_planned_size(tmp_path: Path, cmsis_archive: Path) -> None:
    path = SHARED / "models" / "kws_dscnn_int8" / "model.tflite"
    graph, params = import_model(path)
    built = qz.build_qtable(graph, params, None, "model", "s8")
    tables = json.loads(fileio.canonical_json(built.tables))
    files = codegen.generate("kws", graph, tables, built.qparams, "s8", "h")
    net = TracedNetwork("kws", files, tmp_path, cmsis_archive)
    plan = json.loads(files["plan.json"])
    sizes = {t: b["size"] for b in plan["buffers"] for t in b["tensors"]}
    x = np.load(SHARED / "models" / "kws_dscnn_int8" / "sample_input.npy").astype(np.int8)
    (y,), trace = net(x)
    assert [(i, name) for i, name, _ in trace] == [(i, op.name) for i, op in enumerate(graph.ops)]
    for (_, _, values), op in zip(trace, graph.ops):
        out = op.outputs[0]
        assert values.nbytes == planner.tensor_bytes(graph, tables, out) == sizes[out]
        assert values.size == graph.tensors[out].size
    np.testing.assert_array_equal(trace[-1][2], y)
    assert int(np.argmax(y)) == 5
    # a layer's trace is its output: the reshape's is the pooled values it reinterprets
    by_name = {name: values for _, name, values in trace}
    np.testing.assert_array_equal(by_name["reshape_10"], by_name["avg_pool2d_9"])
