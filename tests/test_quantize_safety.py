"""What a model's numbers may do to the generated arithmetic (site_scons/nnscons/quantize/bounds.py, dead channels
in quantize/common.py and affine.py, scale checks in ir.py and both importers).

* Dead channels (weights near 1e-30 after training, as in a public MobileNet-style model) are quantized as zeros
  with a sane scale and a representable bias, as TFLite's converter does, and listed in qtable.txt; before, their
  scale was ~1e-32, the multiplier 0 and the bias clamped to +-INT32_MAX, which overflowed in the conv kernel.
* The hostile tester's models: a flipped weight of -2.8e17 (requantization shift 50), a scale of 3.8e-42 (shift
  125) and a bias of INT32_MIN (overflow in the fully connected kernel): the first two are refused with one line
  naming the model file (their numbers cannot be computed with, whatever is clamped), the third is clamped with a
  warning and its C runs clean under UBSan.
* The slow tests build whole networks with SCons and run the sanitized host binary.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Optional

import flatbuffers
import numpy as np
import pytest
import tflite

import tflite_builder as tb
from conftest import SHARED, calibration, small_graph
from nnscons import cli, fileio, ir
from nnscons import quantize as qz
from nnscons import ranges as rg
from nnscons import stats as st
from nnscons.importers.tflite import import_tflite

ROOT = Path(__file__).resolve().parents[1]
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
S8_ACC_LIMIT = INT32_MAX - 128       # |bias + any partial sum| the s8 kernels may hold (room for the output offset)


# ---- a float .tflite built op by op ---------------------------------------------------------------------------------
class FloatNet:
    """A float32 TFLite model: tensors (constants carry data) and operators in order; built with the flatbuffers
    Builder and the tflite package's schema accessors."""

    def __init__(self) -> None:
        self.tensors: list[tuple[list[int], Optional[np.ndarray]]] = []
        self.ops: list[tuple[int, list[int], list[int], int, Callable[[flatbuffers.Builder], int]]] = []

    def tensor(self, shape: list[int], data: Optional[np.ndarray] = None) -> int:
        self.tensors.append((list(shape), None if data is None else np.asarray(data, np.float32)))
        return len(self.tensors) - 1

    def conv(self, x: int, w: np.ndarray, b: np.ndarray, stride: int, act: str, depthwise: bool = False) -> int:
        """CONV_2D (w OHWI) or DEPTHWISE_CONV_2D (w 1HWC, multiplier 1), SAME padding."""
        n, h, wd, _ = self.tensors[x][0]
        out = self.tensor([n, -(-h // stride), -(-wd // stride), w.shape[-1 if depthwise else 0]])
        kind = "DepthwiseConv2D" if depthwise else "Conv2D"

        def options(b_: flatbuffers.Builder) -> int:
            field = lambda name: getattr(tflite, f"{kind}Options{name}")   # noqa: E731
            field("Start")(b_)
            field("AddPadding")(b_, tb.PADDING["SAME"])
            field("AddStrideH")(b_, stride)
            field("AddStrideW")(b_, stride)
            if depthwise:
                field("AddDepthMultiplier")(b_, 1)
            field("AddFusedActivationFunction")(b_, tb.ACTIVATION[act])
            return field("End")(b_)

        code = tflite.BuiltinOperator.DEPTHWISE_CONV_2D if depthwise else tflite.BuiltinOperator.CONV_2D
        self.ops.append((code, [x, self.tensor(list(w.shape), w), self.tensor([len(b)], b)], [out],
                         getattr(tflite.BuiltinOptions, f"{kind}Options"), options))
        return out

    def avg_pool(self, x: int) -> int:
        """AVERAGE_POOL_2D over the whole of H and W."""
        n, h, w, c = self.tensors[x][0]
        out = self.tensor([n, 1, 1, c])

        def options(b_: flatbuffers.Builder) -> int:
            tflite.Pool2DOptionsStart(b_)
            tflite.Pool2DOptionsAddPadding(b_, tb.PADDING["VALID"])
            for add, value in ((tflite.Pool2DOptionsAddStrideH, h), (tflite.Pool2DOptionsAddStrideW, w),
                               (tflite.Pool2DOptionsAddFilterHeight, h), (tflite.Pool2DOptionsAddFilterWidth, w)):
                add(b_, value)
            return tflite.Pool2DOptionsEnd(b_)

        self.ops.append((tflite.BuiltinOperator.AVERAGE_POOL_2D, [x], [out], tflite.BuiltinOptions.Pool2DOptions,
                         options))
        return out

    def fully_connected(self, x: int, w: np.ndarray, b: np.ndarray) -> int:
        out = self.tensor([self.tensors[x][0][0], w.shape[0]])

        def options(b_: flatbuffers.Builder) -> int:
            tflite.FullyConnectedOptionsStart(b_)
            return tflite.FullyConnectedOptionsEnd(b_)

        self.ops.append((tflite.BuiltinOperator.FULLY_CONNECTED, [x, self.tensor(list(w.shape), w),
                                                                  self.tensor([len(b)], b)], [out],
                         tflite.BuiltinOptions.FullyConnectedOptions, options))
        return out

    def build(self, inputs: list[int], outputs: list[int]) -> bytes:
        b = flatbuffers.Builder(1 << 16)
        buffers, tensors = [self._buffer(b, None)], []
        for i, (shape, data) in enumerate(self.tensors):
            if data is not None:
                buffers.append(self._buffer(b, data))
            index = len(buffers) - 1 if data is not None else 0
            name, dims = b.CreateString(f"t{i}"), b.CreateNumpyVector(np.array(shape, np.int32))
            tflite.TensorStart(b)
            tflite.TensorAddShape(b, dims)
            tflite.TensorAddType(b, tflite.TensorType.FLOAT32)
            tflite.TensorAddBuffer(b, index)
            tflite.TensorAddName(b, name)
            tensors.append(tflite.TensorEnd(b))
        codes = sorted({op[0] for op in self.ops})
        operators = []
        for code, ins, outs, kind, options in self.ops:
            written = options(b)
            in_vec = b.CreateNumpyVector(np.array(ins, np.int32))
            out_vec = b.CreateNumpyVector(np.array(outs, np.int32))
            tflite.OperatorStart(b)
            tflite.OperatorAddOpcodeIndex(b, codes.index(code))
            tflite.OperatorAddInputs(b, in_vec)
            tflite.OperatorAddOutputs(b, out_vec)
            tflite.OperatorAddBuiltinOptionsType(b, kind)
            tflite.OperatorAddBuiltinOptions(b, written)
            operators.append(tflite.OperatorEnd(b))
        vectors = [self._offsets(b, tensors), b.CreateNumpyVector(np.array(inputs, np.int32)),
                   b.CreateNumpyVector(np.array(outputs, np.int32)), self._offsets(b, operators)]
        tflite.SubGraphStart(b)
        for add, vector in zip((tflite.SubGraphAddTensors, tflite.SubGraphAddInputs, tflite.SubGraphAddOutputs,
                                tflite.SubGraphAddOperators), vectors):
            add(b, vector)
        subgraph = tflite.SubGraphEnd(b)
        code_offsets = []
        for code in codes:
            tflite.OperatorCodeStart(b)
            tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
            tflite.OperatorCodeAddBuiltinCode(b, code)
            tflite.OperatorCodeAddVersion(b, 1)
            code_offsets.append(tflite.OperatorCodeEnd(b))
        codes_vec, subgraphs_vec = self._offsets(b, code_offsets), self._offsets(b, [subgraph])
        buffers_vec = self._offsets(b, buffers)
        tflite.ModelStart(b)
        tflite.ModelAddVersion(b, 3)
        tflite.ModelAddOperatorCodes(b, codes_vec)
        tflite.ModelAddSubgraphs(b, subgraphs_vec)
        tflite.ModelAddBuffers(b, buffers_vec)
        b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
        return bytes(b.Output())

    @staticmethod
    def _buffer(b: flatbuffers.Builder, data: Optional[np.ndarray]) -> int:
        payload = None
        if data is not None:
            raw = np.ascontiguousarray(data, dtype="<f4").tobytes()
            b.StartVector(1, len(raw), 16)
            b.head = b.head - len(raw)
            b.Bytes[b.head:b.head + len(raw)] = raw
            payload = b.EndVector()
        tflite.BufferStart(b)
        if payload is not None:
            tflite.BufferAddData(b, payload)
        return tflite.BufferEnd(b)

    @staticmethod
    def _offsets(b: flatbuffers.Builder, offsets: list[int]) -> int:
        b.StartVector(4, len(offsets), 4)
        for offset in reversed(offsets):
            b.PrependUOffsetTRelative(offset)
        return b.EndVector()


DEAD = 70              # of the pointwise layer's 128 output channels


def mobilenet_like(seed: int = 0, size: int = 32) -> bytes:
    """A MobileNet-style float network, input [1, size, size, 3]: conv 3x3/2 (16, relu6) -> depthwise 3x3 (relu6)
    -> pointwise 1x1 (128, relu6) of which 70 channels, chosen at random, are dead: weights scaled by 1e-30, a live
    bias (their output is relu6(bias), which the classifier reads) -> average pool -> fully connected (10)."""
    rng = np.random.default_rng(seed)
    net = FloatNet()
    x = net.tensor([1, size, size, 3])
    h = net.conv(x, rng.normal(0, 0.4, (16, 3, 3, 3)), rng.normal(0.1, 0.1, 16), 2, "RELU6")
    h = net.conv(h, rng.normal(0, 0.4, (1, 3, 3, 16)), rng.normal(0.1, 0.1, 16), 1, "RELU6", depthwise=True)
    pointwise = rng.normal(0, 0.3, (128, 1, 1, 16))
    pointwise[rng.permutation(128)[:DEAD]] *= 1e-30
    h = net.conv(h, pointwise, rng.uniform(0.05, 0.5, 128), 1, "RELU6")
    y = net.fully_connected(net.avg_pool(h), rng.normal(0, 0.5, (10, 128)), rng.normal(0, 0.1, 10))
    return net.build([x], [y])


def images(n: int, seed: int, size: int = 32) -> np.ndarray:
    """Smooth random images in [0, 1] (a few low-frequency waves per channel), float32 NHWC."""
    rng = np.random.default_rng(seed)
    grid = np.linspace(0, 1, size)
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    out = np.zeros((n, size, size, 3))
    for k in range(3):
        fy, fx, phase = rng.uniform(0.5, 3, (3, n, 1, 1, 3))
        out += np.sin(2 * np.pi * (fy * yy[None, :, :, None] + fx * xx[None, :, :, None]) + 6 * phase)
    return (0.5 + out / 6).clip(0, 1).astype(np.float32)


def quantize_cli(model: Path, out: Path, calib: Optional[np.ndarray] = None, *flags: str) -> int:
    """``nnscons quantize`` in-process (the CLI the builds share): its exit status."""
    args = ["quantize", str(model), "--out", str(out), *flags]
    if calib is not None:
        fileio.write_npz(out.parent / "calib.npz", {"x": calib})
        args += ["--calib", str(out.parent / "calib.npz")]
    return cli.main(args)


def one_error_line(capsys: pytest.CaptureFixture[str], code: int) -> str:
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


# ---- dead channels -----------------------------------------------------------------------------------------------
def build_int8(graph: ir.Graph, params: dict[str, np.ndarray], x: np.ndarray) -> qz.QTable:
    stats = st.compute_stats(graph, params, {"x": x}, progress=False)
    return qz.build_qtable(graph, params, rg.range_table(stats, "int8", rg.parse_range_method("minmax")), "int8")


def test_dead_channels_get_zero_weights_a_sane_scale_and_a_representable_bias() -> None:
    graph, params = small_graph(seed=5)
    params["w1"][[1, 3]] *= 1e-30                 # 2 of the conv's 4 output channels are dead
    qt = build_int8(graph, params, calibration(64, seed=6))
    conv, w1 = qt.tables["layers"]["conv_0"], qt.tables["tensors"]["w1"]
    live_scale = max(w1["scale"][0], w1["scale"][2])
    assert w1["scale"][1] == w1["scale"][3] == live_scale          # the layer's largest scale
    assert not qt.qparams["w1"][[1, 3]].any() and qt.qparams["w1"][[0, 2]].any()
    # the bias keeps its value at scale s_in * s_w (before: +-INT32_MAX, the multiplier 0)
    s_in = qt.tables["tensors"]["x"]["scale"][0]
    for c in (1, 3):
        assert conv["multiplier"][c] == conv["multiplier"][0 if w1["scale"][0] == live_scale else 2] > 0
        expected = float(params["b1"][c]) / float(np.float32(s_in * live_scale))
        assert abs(int(qt.qparams["b1"][c]) - expected) <= 0.5
    assert qt.tables["warnings"] == ["conv_0: 2 of 4 output channels (1, 3) zeroed: their weights (largest |w| "
                                     f"{np.abs(params['w1'][[1, 3]]).max():.3g}) cannot move the output by half a "
                                     "step for any input"]
    assert qt.text.splitlines()[2] == "warning: " + qt.tables["warnings"][0]
    assert build_int8(graph, params, calibration(64, seed=6)).text == qt.text          # deterministic


def test_a_layer_of_dead_weights_is_zeros_at_scale_one() -> None:
    graph, params = small_graph(seed=5)
    params["w2"] *= 1e-30                         # the whole (per-tensor) fully connected layer
    qt = build_int8(graph, params, calibration(64, seed=6))
    assert qt.tables["tensors"]["w2"]["scale"] == [1.0] and not qt.qparams["w2"].any()
    s_in = qt.tables["tensors"]["r1"]["scale"][0]
    assert np.abs(qt.qparams["b2"] - params["b2"] / np.float32(s_in)).max() <= 0.5
    assert qt.tables["warnings"][0].startswith("fc_3: all its weights zeroed")


def test_a_bias_too_large_for_its_weights_raises_their_scale() -> None:
    """TFLite's converter raises a weight scale when the bias would take more than half the int32 range. (A
    bias of -1e4 behind a ReLU: the channel's output is always 0, so the output scale stays small and its small
    weights still count.)"""
    graph, params = small_graph(seed=5)
    params["w1"][2] *= 1e-2                       # small but live weights ...
    params["b1"][2] = -1e4                        # ... and a bias that needs a coarser scale
    qt = build_int8(graph, params, calibration(64, seed=6))
    s_in, s_w = qt.tables["tensors"]["x"]["scale"][0], qt.tables["tensors"]["w1"]["scale"][2]
    assert s_w > np.abs(params["w1"][2]).max() / 127 and qt.qparams["w1"][2].any()
    assert abs(int(qt.qparams["b1"][2])) <= 1 << 30 and abs(qt.qparams["b1"][2] * s_in * s_w + 1e4) < 1e4 * 1e-6
    assert any(w.startswith("conv_0: weight scale raised on 1 of 4 channels (2;") for w in qt.tables["warnings"])


@pytest.mark.parametrize("name", ["kws_dscnn_int8", "resnet8_int8", "micro_speech_int8", "hello_world_int8"])
def test_sane_quantized_models_need_no_bound(name: str) -> None:
    graph, params = import_tflite(SHARED / "models" / name / "model.tflite")
    qt = qz.build_qtable(graph, params, None, "model")
    assert "warnings" not in qt.tables and "warning" not in qt.text


# ---- the hostile tester's models ----------------------------------------------------------------------------------
def flipped_weight_model() -> bytes:
    """conv 3x3 (8, relu) -> average pool -> fully connected, one conv weight flipped to -2.8e17: behind the ReLU
    the channel's outputs stay small, so the output scale does too, and the requantization asks for 2^50."""
    rng = np.random.default_rng(3)
    net = FloatNet()
    x = net.tensor([1, 8, 8, 3])
    w = rng.normal(0, 0.4, (8, 3, 3, 3))
    w[5, 1, 1, 0] = -2.8e17
    h = net.conv(x, w, rng.normal(0.1, 0.1, 8), 1, "RELU")
    y = net.fully_connected(net.avg_pool(h), rng.normal(0, 0.5, (4, 8)), np.zeros(4))
    return net.build([x], [y])


def test_a_flipped_weight_is_refused_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Before: qtable.json held shift 50 for channel 5 (UBSan: shift exponent too large). No clamp can compute
    with such a channel (one input step moves its output 2^50 steps): the model file is named."""
    model = tmp_path / "flipped" / "model.tflite"
    model.parent.mkdir()
    model.write_bytes(flipped_weight_model())
    line = one_error_line(capsys, quantize_cli(model, tmp_path / "q", images(16, 1, 8)))
    assert line.startswith(f"nnscons: {model}: quantize: layer conv2d_0 (conv2d): output channel 5's multiplier")
    assert "a requantization shift of 50; the kernels take at most 30" in line
    assert not (tmp_path / "q" / "qtable.json").exists()


def test_a_subnormal_scale_is_refused_at_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Before: 3.8e-42 passed "finite and positive" and the layer's shift was 125."""
    model = tmp_path / "tiny" / "model.tflite"
    model.parent.mkdir()
    model.write_bytes(tb.fully_connected([1, 16], tb.Quant([0.05], [3]), np.ones((4, 16), np.int8), 0.01,
                                         np.zeros(4, np.int32), tb.Quant([3.8e-42], [0])))
    line = one_error_line(capsys, quantize_cli(model, tmp_path / "q"))
    assert line.startswith(f"nnscons: {model}: ") and "quantization scale 3.8e-42 is below the smallest normal " \
                                                          "float32 (1.18e-38)" in line


def test_a_subnormal_scale_is_refused_in_onnx(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from onnx import TensorProto, helper, save
    """x -> Q/DQ (scale 3.8e-42) -> Relu -> Q/DQ (scale 0.1) -> y: a valid QDQ model but for the scale."""
    constants = [helper.make_tensor("s", TensorProto.FLOAT, [], [3.8e-42]),
                 helper.make_tensor("s2", TensorProto.FLOAT, [], [0.1]),
                 helper.make_tensor("z", TensorProto.INT8, [], [0])]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"]), helper.make_node("Relu", ["d"], ["r"]),
             helper.make_node("QuantizeLinear", ["r", "s2", "z"], ["q2"]),
             helper.make_node("DequantizeLinear", ["q2", "s2", "z"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], constants)
    model = tmp_path / "tiny.onnx"
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(model))
    line = one_error_line(capsys, quantize_cli(model, tmp_path / "q"))
    assert line.startswith(f"nnscons: {model}: ") and "quantization scale 3.8e-42 is below" in line


def test_a_shift_beyond_the_kernels_in_a_quantized_model_is_refused(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Normal scales that are 2^40 apart: 0.05 * 0.01 / 4.5e-16 needs a shift of 41."""
    model = tmp_path / "apart" / "model.tflite"
    model.parent.mkdir()
    model.write_bytes(tb.fully_connected([1, 16], tb.Quant([0.05], [3]), np.ones((4, 16), np.int8), 0.01,
                                         np.zeros(4, np.int32), tb.Quant([4.5e-16], [0])))
    line = one_error_line(capsys, quantize_cli(model, tmp_path / "q"))
    assert line.startswith(f"nnscons: {model}: quantize: layer fully_connected_0 (fully_connected): the "
                           "multiplier") and "a requantization shift of 41; the kernels take at most 30" in line


def int32_min_bias_model() -> bytes:
    """FULLY_CONNECTED 64 -> 4, int8, weights +-127: output 1's bias is INT32_MIN (one flipped byte)."""
    rng = np.random.default_rng(7)
    w = rng.choice(np.array([-127, 127], np.int8), (4, 64))
    bias = np.array([120, INT32_MIN, -340, 15], np.int32)
    return tb.fully_connected([1, 64], tb.Quant([0.02], [-5]), w, 0.004, bias, tb.Quant([0.1], [2]))


def test_a_bias_of_int32_min_is_clamped_with_a_warning(tmp_path: Path) -> None:
    """Before: the bias went into the C as it was, and bias + sum overflowed int32 for negative sums."""
    model = tmp_path / "bias" / "model.tflite"
    model.parent.mkdir()
    model.write_bytes(int32_min_bias_model())
    assert quantize_cli(model, tmp_path / "q") == 0
    tables, qparams = fileio.read_json(tmp_path / "q" / "qtable.json"), fileio.read_npz(tmp_path / "q" / "qparams.npz")
    fc = tables["layers"]["fully_connected_0"]
    w = qparams[fc["weights"]].astype(np.int64)
    zp = -fc["input_offset"]
    top = np.maximum(w * (127 - zp), w * (-128 - zp)).sum(1)
    bottom = np.minimum(w * (127 - zp), w * (-128 - zp)).sum(1)
    bias = qparams[fc["bias"]].astype(np.int64)
    assert bias.tolist()[0::2] == [120, -340] and bias[3] == 15                 # the sane outputs keep theirs
    assert bias[1] == -S8_ACC_LIMIT - bottom[1]                                 # the least negative safe value
    assert np.all(bias + top <= S8_ACC_LIMIT) and np.all(bias + bottom >= -S8_ACC_LIMIT)
    text = (tmp_path / "q" / "qtable.txt").read_text()
    assert (f"warning: fully_connected_0: bias {fc['bias']} clamped on 1 of 4 channels (1; channel 1: "
            f"-2147483648 -> {bias[1]}) so that no input can overflow the accumulator") in text


def test_a_left_shift_that_can_wrap_keeps_the_offset_addition_defined() -> None:
    """A multiplier within 128 of 2^31 after a left shift that wraps for extreme inputs could push the output
    offset's addition past INT32_MAX: it is clamped, with a warning. (Scales only an IR can hold.)"""
    T, Q = ir.Tensor, ir.Quant
    tensors = {"x": T("x", [1, 128], "int8", quant=Q([1.0], [0])),
               "w": T("w", [2, 128], "int8", is_const=True, quant=Q([1.0], [0])),
               "y": T("y", [1, 2], "int8", quant=Q([2.0 ** -11 / (1 - 2.0 ** -30)], [-100]))}
    graph = ir.Graph(tensors, [ir.Op("fc", "fully_connected", ["x", "w"], ["y"], {"activation": "none"})],
                     ["x"], ["y"], quantized="int8")
    params = {"w": np.full((2, 128), 127, np.int8)}         # sums up to 2^21, shifted left by 11
    qt = qz.build_qtable(graph, params, None, "model")
    fc = qt.tables["layers"]["fc"]
    assert fc["shift"] == [11] and fc["multiplier"] == [INT32_MAX - 100]         # was 2^31 - 2
    assert qt.tables["warnings"] == ["fc: its output: the requantization's left shift (up to 11) wraps for "
                                     "extreme inputs, as TFLite Micro's does; multiplier clamped to 2147483547 "
                                     "so the output offset cannot overflow"]


# ---- whole networks under the sanitizers (slow) ---------------------------------------------------------------------
def project_copy(root: Path) -> Path:
    root.mkdir(parents=True)
    for item in ("SConstruct", "site_scons", "cmsis", "targets"):
        source = ROOT / item
        if source.is_dir():
            shutil.copytree(source, root / item, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, root / item)
    (root / "models").mkdir()
    return root


def scons_host(project: Path, name: str) -> None:
    """The host test binaries of one model: plain and sanitized (build/host/<name>/[sanitize/]<name>_test)."""
    result = subprocess.run([sys.executable, "-m", "SCons", "-Q", "target=host", name], cwd=project,
                            capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def run_binary(binary: Path, x: np.ndarray, work: Path) -> np.ndarray:
    """Outputs of a host test binary (stderr must stay empty: any sanitizer report fails)."""
    np.save(work / "in.npy", x)
    result = subprocess.run([str(binary), str(work / "in.npy"), str(work / "out.npy")], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0 and not result.stderr, result.stderr[-3000:]
    return np.load(work / "out.npy")


def litert(model: bytes, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_content=model)
    interpreter.allocate_tensors()
    index_in, index_out = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]
    out = []
    for sample in x:
        interpreter.set_tensor(index_in, sample[None])
        interpreter.invoke()
        out.append(interpreter.get_tensor(index_out)[0].copy())
    return np.stack(out)


@pytest.mark.slow
def test_dead_channel_network_runs_clean_and_agrees_with_litert(tmp_path: Path) -> None:
    """The MobileNet-style network quantized to int8 from a calibration set: qtable.txt lists the 70 zeroed
    channels; the host binary and its ASan/UBSan build (the host target's sanitize_flags) give the same bytes
    with nothing on stderr; against LiteRT's float outputs the logits keep an SNR of at least 25 dB and the top
    class agrees on at least 95% of 200 images. Thresholds: int8 noise over five requantized layers measures
    ~35 dB here; before, the dead channels' biases were clamped to +-INT32_MAX (the classifier read relu6 of
    garbage, and the sanitized binary stopped at the first signed overflow)."""
    project = project_copy(tmp_path / "project")
    model_bytes = mobilenet_like()
    folder = project / "models" / "deadnet"
    folder.mkdir()
    (folder / "model.tflite").write_bytes(model_bytes)
    fileio.write_npz(folder / "calib.npz", {"x": images(64, seed=1)})
    scons_host(project, "deadnet")
    text = (project / "build" / "deadnet" / "qtable.txt").read_text()
    warnings = [line for line in text.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and warnings[0].startswith(f"warning: conv2d_2: {DEAD} of 128 output channels (")
    assert warnings[0].endswith("cannot move the output by half a step for any input")
    x = images(200, seed=2)
    build = project / "build" / "host" / "deadnet"
    ours = run_binary(build / "deadnet_test", x, tmp_path)
    assert np.array_equal(run_binary(build / "sanitize" / "deadnet_test", x, tmp_path), ours)
    out_q = fileio.read_json(project / "build" / "deadnet" / "qtable.json")["tensors"]
    y = out_q[fileio.read_json(project / "build" / "deadnet" / "graph.json")["outputs"][0]]
    ours_real = y["scale"][0] * (ours.reshape(len(x), -1).astype(np.float64) - y["zero_point"][0])
    theirs = litert(model_bytes, x).reshape(len(x), -1)
    snr = 10 * np.log10(np.sum(theirs ** 2) / np.sum((theirs - ours_real) ** 2))
    agreement = np.mean(theirs.argmax(1) == ours_real.argmax(1))
    assert snr >= 25 and agreement >= 0.95, (snr, agreement)


@pytest.mark.slow
def test_int32_min_bias_runs_clean_under_ubsan(tmp_path: Path) -> None:
    """The clamped bias: the sanitized binary runs the extreme inputs (every value -128 or 127, where the sum
    reaches its bounds) clean, and the three sane outputs stay bit-exact with TFLite Micro."""
    from tflite_micro import runtime
    project = project_copy(tmp_path / "project")
    folder = project / "models" / "fcbias"
    folder.mkdir()
    model_bytes = int32_min_bias_model()
    (folder / "model.tflite").write_bytes(model_bytes)
    scons_host(project, "fcbias")
    rng = np.random.default_rng(11)
    x = np.concatenate([np.full((1, 64), -128), np.full((1, 64), 127), rng.choice([-128, 127], (30, 64)),
                        rng.integers(-128, 128, (30, 64))]).astype(np.int8)
    build = project / "build" / "host" / "fcbias"
    ours = run_binary(build / "sanitize" / "fcbias_test", x, tmp_path)
    assert np.array_equal(run_binary(build / "fcbias_test", x, tmp_path), ours)
    interpreter = runtime.Interpreter.from_bytes(model_bytes)
    theirs = []
    for sample in x:
        interpreter.set_input(sample[None], 0)
        interpreter.invoke()
        theirs.append(interpreter.get_output(0)[0].copy())
    assert np.array_equal(np.stack(theirs)[:, [0, 2, 3]], ours.reshape(len(x), -1)[:, [0, 2, 3]])
