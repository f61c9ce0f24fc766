"""Tests for the TFLite importer (site_scons/nnscons/importers/tflite/).

Real models from shared/models are imported and checked against what models/README.md says about them; float
models (real and built here with the flatbuffers Builder) are run through the reference interpreter and compared
with LiteRT; int8 models run "in float" through the reference interpreter must answer the README's class.
Broken files (truncated, random, hybrid, unsupported op, dynamic shape, ...) must give one NnsconsError line
naming the file, quickly.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

import flatbuffers
import numpy as np
import pytest
import tflite

from conftest import SHARED
from nnscons import ir, reference
from nnscons.errors import NnsconsError
from nnscons.importers.tflite import import_tflite, supported_operators

MODELS = (SHARED / "models").resolve()
EVERY_TFLITE = sorted(MODELS.glob("**/*.tflite"))
ALL_TFLITE = EVERY_TFLITE

# Builtin operator codes and enums used by the models built below
ADD, AVERAGE_POOL_2D, CONCATENATION, CONV_2D, DEPTHWISE_CONV_2D = 0, 1, 2, 3, 4
FULLY_CONNECTED, LOGISTIC, MAX_POOL_2D, MUL, RELU, RELU6, RESHAPE, SOFTMAX, TANH = 9, 14, 17, 18, 19, 21, 22, 25, 28
DEQUANTIZE, RELU_N1_TO_1, CUSTOM, PAD, MEAN, SUB, SQUEEZE = 6, 20, 32, 34, 40, 41, 43
EXP, PADV2, LEAKY_RELU = 47, 60, 98
SAME, VALID = 0, 1
ACT_RELU, ACT_RELU_N1_TO_1, ACT_RELU6, ACT_TANH = 1, 2, 3, 4
TYPES = {np.dtype(np.float32): 0, np.dtype(np.float16): 1, np.dtype(np.int32): 2, np.dtype(np.int64): 4,
         np.dtype(np.int16): 7, np.dtype(np.int8): 9}


# ---- a small TFLite writer for synthetic models --------------------------------------------------------------
class TinyModel:
    """Builds a one-subgraph .tflite with the flatbuffers Builder and the tflite package's builder functions."""

    def __init__(self) -> None:
        self.tensors: list[dict[str, Any]] = []
        self.ops: list[dict[str, Any]] = []
        self.codes: list[tuple[int, str]] = []
        self.inputs: list[int] = []
        self.outputs: list[int] = []

    def tensor(self, shape: list[int], dtype: Any = np.float32, data: Optional[np.ndarray] = None,
               quant: Optional[tuple[list[float], list[int], int]] = None, name: Optional[str] = None,
               signature: Optional[list[int]] = None) -> int:
        if data is not None:
            data = np.asarray(data, dtype=dtype).reshape(shape)
        self.tensors.append(dict(shape=shape, type=TYPES[np.dtype(dtype)], data=data, quant=quant,
                                 name=f"tensor{len(self.tensors)}" if name is None else name, signature=signature))
        return len(self.tensors) - 1

    def const(self, data: Any, dtype: Any = np.float32, **kw: Any) -> int:
        data = np.asarray(data, dtype=dtype)
        return self.tensor(list(data.shape), dtype, data, **kw)

    def op(self, code: int, inputs: list[int], outputs: list[int], options: Optional[str] = None,
           custom: str = "", **fields: Any) -> None:
        key = (code, custom)
        if key not in self.codes:
            self.codes.append(key)
        self.ops.append(dict(opcode=self.codes.index(key), inputs=inputs, outputs=outputs, options=options,
                             fields=fields))

    def build(self, subgraphs: int = 1, external_data: bool = False) -> bytes:
        """The model's bytes. ``subgraphs`` > 1 repeats subgraph 0 (unused extra subgraphs); with
        ``external_data`` constant data follows the flatbuffer (Buffer.offset/size), as in models > 2 GB."""
        if not external_data:
            return self._build(subgraphs, None)
        blobs = [t["data"].astype(t["data"].dtype.newbyteorder("<")).tobytes() for t in self.tensors
                 if t["data"] is not None]
        # buffer fields have a fixed width, so a first pass with dummy offsets gives the flatbuffer's size
        size = len(self._build(subgraphs, [(1 << 40, len(blob)) for blob in blobs]))
        placed, tail = [], b""
        for blob in blobs:
            tail += b"\0" * (-(size + len(tail)) % 16)
            placed.append((size + len(tail), len(blob)))
            tail += blob
        model = self._build(subgraphs, placed)
        assert len(model) == size
        return model + tail

    def _build(self, subgraphs: int, external: Optional[list[tuple[int, int]]]) -> bytes:
        b = flatbuffers.Builder(1024)
        buffers = [self._buffer(b, None)]
        tensors = []
        for t in self.tensors:
            buffer = 0
            if t["data"] is not None:
                if external is None:
                    buffers.append(self._buffer(b, t["data"]))
                else:
                    tflite.BufferStart(b)
                    tflite.BufferAddOffset(b, external[len(buffers) - 1][0])
                    tflite.BufferAddSize(b, external[len(buffers) - 1][1])
                    buffers.append(tflite.BufferEnd(b))
                buffer = len(buffers) - 1
            tensors.append(self._tensor(b, t, buffer))
        ops = [self._operator(b, op) for op in self.ops]
        subgraph_fields = dict(Tensors=tensors, Operators=ops)
        vectors = {k: self._offsets(b, "SubGraph", k, v) for k, v in subgraph_fields.items()}
        vectors["Inputs"] = b.CreateNumpyVector(np.array(self.inputs, np.int32))
        vectors["Outputs"] = b.CreateNumpyVector(np.array(self.outputs, np.int32))
        tflite.SubGraphStart(b)
        for k, v in vectors.items():
            getattr(tflite, f"SubGraphAdd{k}")(b, v)
        subgraph = tflite.SubGraphEnd(b)
        codes = []
        for code, custom in self.codes:
            custom_name = b.CreateString(custom) if custom else None
            tflite.OperatorCodeStart(b)
            tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
            tflite.OperatorCodeAddBuiltinCode(b, code)
            tflite.OperatorCodeAddVersion(b, 1)
            if custom_name is not None:
                tflite.OperatorCodeAddCustomCode(b, custom_name)
            codes.append(tflite.OperatorCodeEnd(b))
        model_vectors = {"OperatorCodes": self._offsets(b, "Model", "OperatorCodes", codes),
                         "Subgraphs": self._offsets(b, "Model", "Subgraphs", [subgraph] * subgraphs),
                         "Buffers": self._offsets(b, "Model", "Buffers", buffers)}
        tflite.ModelStart(b)
        tflite.ModelAddVersion(b, 3)
        for k, v in model_vectors.items():
            getattr(tflite, f"ModelAdd{k}")(b, v)
        b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
        return bytes(b.Output())

    def save(self, path: Path, **kw: Any) -> Path:
        path.write_bytes(self.build(**kw))
        return path

    @staticmethod
    def _offsets(b: flatbuffers.Builder, table: str, field: str, offsets: list[int]) -> int:
        getattr(tflite, f"{table}Start{field}Vector")(b, len(offsets))
        for off in reversed(offsets):
            b.PrependUOffsetTRelative(off)
        return b.EndVector()

    @staticmethod
    def _buffer(b: flatbuffers.Builder, data: Optional[np.ndarray]) -> int:
        vec = b.CreateNumpyVector(np.frombuffer(data.astype(data.dtype.newbyteorder("<")).tobytes(), np.uint8)) \
            if data is not None else None
        tflite.BufferStart(b)
        if vec is not None:
            tflite.BufferAddData(b, vec)
        return tflite.BufferEnd(b)

    @staticmethod
    def _tensor(b: flatbuffers.Builder, t: dict[str, Any], buffer: int) -> int:
        shape = b.CreateNumpyVector(np.array(t["shape"], np.int32))
        signature = b.CreateNumpyVector(np.array(t["signature"], np.int32)) if t["signature"] else None
        name = b.CreateString(t["name"])
        quant = None
        if t["quant"] is not None:
            scales, zero_points, dim = t["quant"]
            scale_vec = b.CreateNumpyVector(np.array(scales, np.float32))
            zp_vec = b.CreateNumpyVector(np.array(zero_points, np.int64))
            tflite.QuantizationParametersStart(b)
            tflite.QuantizationParametersAddScale(b, scale_vec)
            tflite.QuantizationParametersAddZeroPoint(b, zp_vec)
            tflite.QuantizationParametersAddQuantizedDimension(b, dim)
            quant = tflite.QuantizationParametersEnd(b)
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, shape)
        if signature is not None:
            tflite.TensorAddShapeSignature(b, signature)
        tflite.TensorAddType(b, t["type"])
        tflite.TensorAddBuffer(b, buffer)
        tflite.TensorAddName(b, name)
        if quant is not None:
            tflite.TensorAddQuantization(b, quant)
        return tflite.TensorEnd(b)

    @staticmethod
    def _operator(b: flatbuffers.Builder, op: dict[str, Any]) -> int:
        options = None
        if op["options"]:
            kind = op["options"]
            vectors = {k: b.CreateNumpyVector(np.array(v, np.int32)) for k, v in op["fields"].items()
                       if isinstance(v, list)}
            getattr(tflite, f"{kind}Start")(b)
            for k, v in op["fields"].items():
                getattr(tflite, f"{kind}Add{k}")(b, vectors.get(k, v))
            options = getattr(tflite, f"{kind}End")(b)
        inputs = b.CreateNumpyVector(np.array(op["inputs"], np.int32))
        outputs = b.CreateNumpyVector(np.array(op["outputs"], np.int32))
        tflite.OperatorStart(b)
        tflite.OperatorAddOpcodeIndex(b, op["opcode"])
        tflite.OperatorAddInputs(b, inputs)
        tflite.OperatorAddOutputs(b, outputs)
        if options is not None:
            tflite.OperatorAddBuiltinOptionsType(b, getattr(tflite.BuiltinOptions, op["options"]))
            tflite.OperatorAddBuiltinOptions(b, options)
        return tflite.OperatorEnd(b)


def window_model(rng: np.random.Generator) -> TinyModel:
    """Float: conv (SAME, stride 2), depthwise (multiplier 2, dilation 2), max/avg pool (SAME), PAD, MEAN,
    FULLY_CONNECTED, SOFTMAX."""
    m = TinyModel()
    x = m.tensor([1, 8, 7, 3], name="input")
    w1, b1 = m.const(rng.normal(size=(4, 3, 3, 3))), m.const(rng.normal(size=4))
    t1 = m.tensor([1, 4, 4, 4])
    m.op(CONV_2D, [x, w1, b1], [t1], "Conv2DOptions", Padding=SAME, StrideW=2, StrideH=2,
         FusedActivationFunction=ACT_RELU, DilationWFactor=1, DilationHFactor=1)
    w2, b2 = m.const(rng.normal(size=(1, 3, 3, 8))), m.const(rng.normal(size=8))
    t2 = m.tensor([1, 4, 4, 8])
    m.op(DEPTHWISE_CONV_2D, [t1, w2, b2], [t2], "DepthwiseConv2DOptions", Padding=SAME, StrideW=1, StrideH=1,
         DepthMultiplier=2, FusedActivationFunction=ACT_RELU6, DilationWFactor=2, DilationHFactor=2)
    t3 = m.tensor([1, 2, 2, 8])
    m.op(MAX_POOL_2D, [t2], [t3], "Pool2DOptions", Padding=SAME, StrideW=2, StrideH=2, FilterWidth=3,
         FilterHeight=3)
    t4 = m.tensor([1, 2, 2, 8])
    m.op(AVERAGE_POOL_2D, [t3], [t4], "Pool2DOptions", Padding=SAME, StrideW=1, StrideH=1, FilterWidth=2,
         FilterHeight=2)
    t5 = m.tensor([1, 3, 3, 8])
    m.op(PAD, [t4, m.const([[0, 0], [1, 0], [0, 1], [0, 0]], np.int32)], [t5])
    t6 = m.tensor([1, 8])
    m.op(MEAN, [t5, m.const([1, 2], np.int32)], [t6], "ReducerOptions", KeepDims=False)
    w7, b7 = m.const(rng.normal(size=(5, 8))), m.const(rng.normal(size=5))
    t7 = m.tensor([1, 5])
    m.op(FULLY_CONNECTED, [t6, w7, b7], [t7], "FullyConnectedOptions")
    y = m.tensor([1, 5], name="output")
    m.op(SOFTMAX, [t7], [y], "SoftmaxOptions", Beta=0.5)
    m.inputs, m.outputs = [x], [y]
    return m


def elementwise_model(rng: np.random.Generator) -> TinyModel:
    """Float, two inputs: SUB (broadcast), MUL (fused RELU_N1_TO_1), LOGISTIC, TANH, RELU, RELU_N1_TO_1,
    CONCATENATION, LEAKY_RELU, RESHAPE, ADD, PADV2, RELU6, SQUEEZE."""
    m = TinyModel()
    x, y = m.tensor([1, 4, 6], name="x"), m.tensor([1, 1, 6], name="y")
    d = m.tensor([1, 4, 6])
    m.op(SUB, [x, y], [d], "SubOptions")
    p = m.tensor([1, 4, 6])
    m.op(MUL, [d, m.const(rng.normal(size=6))], [p], "MulOptions", FusedActivationFunction=ACT_RELU_N1_TO_1)
    s, th, r, n1 = m.tensor([1, 4, 6]), m.tensor([1, 4, 6]), m.tensor([1, 4, 6]), m.tensor([1, 4, 6])
    m.op(LOGISTIC, [x], [s])
    m.op(TANH, [d], [th])
    m.op(RELU, [d], [r])
    m.op(RELU_N1_TO_1, [d], [n1])
    c = m.tensor([1, 4, 30])
    m.op(CONCATENATION, [p, s, th, r, n1], [c], "ConcatenationOptions", Axis=-1)
    lr = m.tensor([1, 4, 30])
    m.op(LEAKY_RELU, [c], [lr], "LeakyReluOptions", Alpha=0.2)
    flat = m.tensor([1, 120])
    m.op(RESHAPE, [lr, m.const([-1, 120], np.int32)], [flat])
    a = m.tensor([1, 120])
    m.op(ADD, [flat, m.const(rng.normal(size=120))], [a], "AddOptions")
    padded = m.tensor([1, 123])
    m.op(PADV2, [a, m.const([[0, 0], [2, 1]], np.int32), m.const(0.5)], [padded])
    expanded = m.tensor([1, 1, 123])
    m.op(RESHAPE, [padded, m.const([1, 1, 123], np.int32)], [expanded])
    clipped = m.tensor([1, 1, 123])
    m.op(RELU6, [expanded], [clipped])
    out = m.tensor([1, 123], name="out")
    m.op(SQUEEZE, [clipped], [out], "SqueezeOptions", SqueezeDims=[1])
    m.inputs, m.outputs = [x, y], [out]
    return m


def litert_run(model: bytes | Path, inputs: list[np.ndarray]) -> np.ndarray:
    """Run LiteRT one sample at a time (its graph has batch 1); returns the first output, batched."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = (Interpreter(model_path=str(model)) if isinstance(model, Path)
                   else Interpreter(model_content=model))
    interpreter.allocate_tensors()
    input_details = interpreter.get_input_details()
    output_index = interpreter.get_output_details()[0]["index"]
    results = []
    for n in range(inputs[0].shape[0]):
        for detail, array in zip(input_details, inputs):
            interpreter.set_tensor(detail["index"], array[n:n + 1])
        interpreter.invoke()
        results.append(interpreter.get_tensor(output_index)[0].copy())
    return np.stack(results)


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


def model_path(rel: str) -> Path:
    return MODELS / rel


def import_error(path: Path) -> str:
    """Import a model that must be rejected; returns the message after checking it is one line, names the
    file and came quickly."""
    start = time.perf_counter()
    with pytest.raises(NnsconsError) as info:
        import_tflite(str(path))
    assert time.perf_counter() - start < 5
    message = str(info.value)
    assert "\n" not in message
    assert path.name in message
    return message


# ---- real models -----------------------------------------------------------------------------------------------
def test_models_are_present() -> None:
    names = {p.relative_to(MODELS).as_posix() for p in EVERY_TFLITE}
    assert {"kws_dscnn_int8/model.tflite", "resnet8_float/model.tflite", "seanet16x8/conv/conv10.tflite",
            "seanet16x8/add/add8.tflite", "mnist_lstm_int8/model.tflite", "svdf_int8/model.tflite"} <= names
    assert len(names) == 29


@pytest.mark.parametrize("path", ALL_TFLITE, ids=lambda p: p.relative_to(MODELS).as_posix())
def test_every_model_imports(path: Path) -> None:
    graph, params = import_tflite(str(path))
    ir.validate(graph, params)
    assert graph.source == "tflite" and graph.source_file == path.name and graph.layout == "NHWC"
    assert graph.input_perm == {} and graph.output_perm == {}
    expected_kind = "int16x8" if "seanet16x8" in path.parts else "none" if "float" in str(path) else "int8"
    assert graph.quantized == expected_kind
    for tensor in graph.tensors.values():
        assert (tensor.quant is None) == (tensor.dtype == "float32")
    # every op has a unique identifier name (type + position) and a label naming the TFLite operator
    assert [op.name for op in graph.ops] == [f"{op.type}_{i}" for i, op in enumerate(graph.ops)]
    assert all("#" in op.label for op in graph.ops)


@pytest.mark.parametrize("rel, op_types, inputs, outputs", [
    ("kws_dscnn_int8/model.tflite",
     ["conv2d"] + ["depthwise_conv2d", "conv2d"] * 4 + ["avg_pool2d", "reshape", "fully_connected", "softmax"],
     [([1, 49, 10, 1], "int8")], [([1, 12], "int8")]),
    ("resnet8_int8/model.tflite",
     ["conv2d"] * 3 + ["add"] + (["conv2d"] * 3 + ["add"]) * 2 + ["avg_pool2d", "reshape", "fully_connected",
                                                                   "softmax"],
     [([1, 32, 32, 3], "int8")], [([1, 10], "int8")]),
    ("resnet8_float/model.tflite",
     ["conv2d"] * 3 + ["add"] + (["conv2d"] * 3 + ["add"]) * 2 + ["avg_pool2d", "reshape", "fully_connected",
                                                                   "softmax"],
     [([1, 32, 32, 3], "float32")], [([1, 10], "float32")]),
    ("hello_world_float/model.tflite", ["fully_connected"] * 3, [([1, 1], "float32")], [([1, 1], "float32")]),
    ("hello_world_int8/model.tflite", ["fully_connected"] * 3, [([1, 1], "int8")], [([1, 1], "int8")]),
    ("micro_speech_int8/model.tflite", ["reshape", "depthwise_conv2d", "fully_connected", "softmax"],
     [([1, 1960], "int8")], [([1, 4], "int8")]),
    ("seanet16x8/conv/conv0.tflite", ["conv2d"], [([1, 8, 166, 2], "int16")], [([1, 2, 160, 8], "int16")]),
    ("seanet16x8/add/add0.tflite", ["add"], [([1, 1, 5, 64], "int16")] * 2, [([1, 1, 5, 64], "int16")]),
    ("mnist_lstm_int8/model.tflite", ["lstm", "reshape", "fully_connected", "softmax"], [([1, 28, 28], "int8")],
     [([1, 10], "int8")]),
    ("mnist_lstm_float/model.tflite", ["lstm", "reshape", "fully_connected", "softmax"], [([1, 28, 28], "float32")],
     [([1, 10], "float32")]),
    ("svdf_int8/model.tflite", ["quantize"] + ["svdf", "fully_connected"] * 4 + ["svdf"] * 3 +
     ["fully_connected", "softmax", "quantize"], [([1, 96], "int16")], [([1, 2], "int32")]),
])
def test_structure(rel: str, op_types: list[str], inputs: list, outputs: list) -> None:
    graph, _ = import_tflite(str(model_path(rel)))
    assert [op.type for op in graph.ops] == op_types
    assert [(graph.tensors[n].shape, graph.tensors[n].dtype) for n in graph.inputs] == inputs
    assert [(graph.tensors[n].shape, graph.tensors[n].dtype) for n in graph.outputs] == outputs


def test_kws_details() -> None:
    graph, params = import_tflite(str(model_path("kws_dscnn_int8/model.tflite")))
    quant = graph.tensors[graph.inputs[0]].quant
    assert quant is not None and quant.axis is None
    assert quant.scale[0] == pytest.approx(0.5847, abs=1e-4) and quant.zero_point == [83]
    first_conv = graph.ops[0]
    assert first_conv.attrs == {"stride": [2, 2], "dilation": [1, 1], "pad": [4, 5, 1, 1], "activation": "relu"}
    weights, bias = (graph.tensors[n] for n in first_conv.inputs[1:])
    assert weights.shape == [64, 10, 4, 1] and weights.dtype == "int8" and params[weights.name].dtype == np.int8
    assert weights.quant.axis == 0 and len(weights.quant.scale) == 64 and set(weights.quant.zero_point) == {0}
    assert bias.dtype == "int32" and params[bias.name].dtype == np.int32 and bias.quant.axis == 0
    depthwise = graph.ops[1]
    assert depthwise.attrs["multiplier"] == 1 and depthwise.attrs["pad"] == [1, 1, 1, 1]
    dw_weights = graph.tensors[depthwise.inputs[1]]
    assert dw_weights.shape == [1, 3, 3, 64] and dw_weights.quant.axis == 3
    pool, flatten = graph.ops[9], graph.ops[10]
    assert pool.attrs == {"kernel": [25, 5], "stride": [25, 5], "pad": [0, 0, 0, 0], "activation": "none"}
    assert flatten.inputs == [pool.outputs[0]] and flatten.attrs == {"shape": [1, 64]}  # shape input absorbed
    assert graph.ops[-1].attrs == {"beta": 1.0}
    # constant data is the file's own, untouched
    assert int(np.abs(params[weights.name].astype(np.int32)).max()) == 127


def test_per_channel_weights_on_every_conv() -> None:
    for rel in ("kws_dscnn_int8/model.tflite", "resnet8_int8/model.tflite", "seanet16x8/conv/conv3.tflite"):
        graph, params = import_tflite(str(model_path(rel)))
        convs = [op for op in graph.ops if op.type in ("conv2d", "depthwise_conv2d")]
        assert convs
        for op in convs:
            weights = graph.tensors[op.inputs[1]]
            channel_axis = 0 if op.type == "conv2d" else 3
            assert weights.quant.axis == channel_axis
            assert len(weights.quant.scale) == weights.shape[channel_axis]


def test_int16x8_types() -> None:
    graph, params = import_tflite(str(model_path("seanet16x8/conv/conv0.tflite")))
    x, w, b = (graph.tensors[n] for n in graph.ops[0].inputs)
    assert (x.dtype, w.dtype, b.dtype) == ("int16", "int8", "int64")
    assert params[b.name].dtype == np.int64 and params[w.name].dtype == np.int8
    assert x.quant.zero_point == [0]


def test_micro_speech_depthwise_multiplier() -> None:
    graph, _ = import_tflite(str(model_path("micro_speech_int8/model.tflite")))
    depthwise = graph.ops[1]
    assert depthwise.attrs["multiplier"] == 8 and depthwise.attrs["pad"] == [4, 5, 3, 3]
    assert graph.tensors[depthwise.inputs[2]].quant.axis == 0  # 8 bias scales


def test_import_is_deterministic() -> None:
    path = str(model_path("resnet8_int8/model.tflite"))
    (g1, p1), (g2, p2) = import_tflite(path), import_tflite(path)
    assert g1.to_json() == g2.to_json()
    assert sorted(p1) == sorted(p2) and all(np.array_equal(p1[k], p2[k]) for k in p1)


def test_names_are_identifiers_and_labels_are_kept() -> None:
    graph, _ = import_tflite(str(model_path("kws_dscnn_int8/model.tflite")))
    names = [t.name for t in graph.tensors.values()] + [op.name for op in graph.ops]
    assert len(names) == len(set(names))
    assert all(len(n) <= ir.MAX_IDENTIFIER + 4 for n in names)
    assert graph.tensors[graph.inputs[0]].label == "input_1" and graph.inputs == ["input_1"]
    assert graph.tensors[graph.outputs[0]].label == "Identity"


def test_untrusted_labels(tmp_path: Path) -> None:
    m = TinyModel()
    x = m.tensor([1, 4], name="relu_1")  # the name of the second op: the op keeps it, the tensor gets a suffix
    y = m.tensor([1, 4], name="*/ int; \n ../../x")
    z = m.tensor([1, 4], name="")
    m.op(RELU, [x], [y])
    m.op(RELU, [y], [z])
    m.inputs, m.outputs = [x], [z]
    graph, _ = import_tflite(str(m.save(tmp_path / "labels.tflite")))
    names = [t.name for t in graph.tensors.values()] + [op.name for op in graph.ops]
    assert len(names) == len(set(names)) and all(ir._IDENT.fullmatch(n) for n in names)
    assert graph.tensors[graph.outputs[0]].label == ""
    assert [op.name for op in graph.ops] == ["relu_0", "relu_1"] and graph.inputs == ["relu_1_1"]
    assert "*/ int; \n ../../x" in [t.label for t in graph.tensors.values()]


# ---- numerical agreement -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("rel", ["hello_world_float/model.tflite", "resnet8_float/model.tflite"])
def test_float_models_match_litert(rel: str) -> None:
    path = model_path(rel)
    graph, params = import_tflite(str(path))
    shape = graph.tensors[graph.inputs[0]].shape
    x = np.random.default_rng(1).uniform(-1, 1, size=(5, *shape[1:])).astype(np.float32)
    ours = reference.run(graph, params, {graph.inputs[0]: x})[graph.outputs[0]]
    theirs = litert_run(path, [x])
    assert ours.shape == theirs.shape
    assert relative_error(ours, theirs) < 1e-5


@pytest.mark.parametrize("builder", [window_model, elementwise_model])
def test_synthetic_float_models_match_litert(builder: Any, tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    model = builder(rng)
    path = model.save(tmp_path / f"{builder.__name__}.tflite")
    graph, params = import_tflite(str(path))
    feeds = [rng.normal(size=(4, *graph.tensors[n].shape[1:])).astype(np.float32) for n in graph.inputs]
    ours = reference.run(graph, params, dict(zip(graph.inputs, feeds)))[graph.outputs[0]]
    theirs = litert_run(path.read_bytes(), feeds)
    assert ours.shape == theirs.shape
    assert relative_error(ours, theirs) < 1e-5


def test_synthetic_window_attributes(tmp_path: Path) -> None:
    graph, params = import_tflite(str(window_model(np.random.default_rng(0)).save(tmp_path / "w.tflite")))
    attrs = [op.attrs for op in graph.ops]
    # SAME: total = max((out-1)*stride + (k-1)*dilation + 1 - in, 0), the smaller half on top/left
    assert attrs[0] == {"stride": [2, 2], "dilation": [1, 1], "pad": [0, 1, 1, 1], "activation": "relu"}
    assert attrs[1] == {"stride": [1, 1], "dilation": [2, 2], "pad": [2, 2, 2, 2], "activation": "relu6",
                        "multiplier": 2}
    assert attrs[2] == {"kernel": [3, 3], "stride": [2, 2], "pad": [0, 1, 0, 1], "activation": "none"}
    assert attrs[3] == {"kernel": [2, 2], "stride": [1, 1], "pad": [0, 1, 0, 1], "activation": "none"}
    assert attrs[4] == {"pads": [[0, 0], [1, 0], [0, 1], [0, 0]], "value": 0.0}
    assert attrs[5] == {"axes": [1, 2], "keepdims": False}
    assert attrs[7] == {"beta": 0.5}
    # the paddings and axes tensors became attributes: every input of every op is a graph tensor in float32
    assert all(graph.tensors[n].dtype == "float32" for op in graph.ops for n in op.inputs)
    assert len(params) == 6


def test_synthetic_elementwise_attributes(tmp_path: Path) -> None:
    graph, _ = import_tflite(str(elementwise_model(np.random.default_rng(0)).save(tmp_path / "e.tflite")))
    by_label = {op.label.split(" #")[0]: op for op in graph.ops}
    assert by_label["MUL"].attrs == {"activation": "relu_n1_to_1"}
    assert by_label["CONCATENATION"].attrs == {"axis": 2}
    assert by_label["LEAKY_RELU"].attrs["alpha"] == pytest.approx(0.2)
    assert by_label["PADV2"].attrs == {"pads": [[0, 0], [2, 1]], "value": 0.5}
    assert by_label["SQUEEZE"].type == "reshape" and by_label["SQUEEZE"].attrs == {"shape": [1, 123]}
    assert [op.attrs["shape"] for op in graph.ops if op.label.startswith("RESHAPE")] == [[1, 120], [1, 1, 123]]
    assert by_label["RELU_N1_TO_1"].type == "clip" and by_label["RELU_N1_TO_1"].attrs == {"min": -1.0, "max": 1.0}


@pytest.mark.parametrize("rel, sample, expected_class", [
    ("kws_dscnn_int8", "sample_input.npy", 5),
    ("resnet8_int8", "sample_input.npy", 0),
    ("micro_speech_int8", "sample_input_yes.npy", 2),
])
def test_int8_models_in_float_give_the_reference_class(rel: str, sample: str, expected_class: int) -> None:
    graph, params = import_tflite(str(model_path(f"{rel}/model.tflite")))
    assert graph.quantized == "int8"
    x = np.load(model_path(f"{rel}/{sample}"))
    in_tensor = graph.tensors[graph.inputs[0]]
    x = x.reshape(-1, *in_tensor.shape[1:])
    real_x = (in_tensor.quant.scale[0] * (x.astype(np.float32) - in_tensor.quant.zero_point[0])).astype(np.float32)
    out = reference.run(graph, params, {graph.inputs[0]: real_x})[graph.outputs[0]]
    assert int(out.argmax()) == expected_class


def test_int8_bias_with_channel_axis_3_is_tolerated(tmp_path: Path) -> None:
    # As in TFLM's person_detect: a 1-D bias whose quantized_dimension names the filter's channel axis
    m = TinyModel()
    x = m.tensor([1, 4, 4, 2], np.int8, quant=([0.1], [-3], 0))
    w = m.const(np.arange(6).reshape(3, 1, 1, 2), np.int8, quant=([0.01, 0.02, 0.03], [0, 0, 0], 0))
    b = m.const([1, 2, 3], np.int32, quant=([0.001, 0.002, 0.003], [0, 0, 0], 3))
    y = m.tensor([1, 4, 4, 3], np.int8, quant=([0.05], [1], 0))
    m.op(CONV_2D, [x, w, b], [y], "Conv2DOptions", Padding=VALID, StrideW=1, StrideH=1,
         DilationWFactor=1, DilationHFactor=1)
    m.inputs, m.outputs = [x], [y]
    graph, params = import_tflite(str(m.save(tmp_path / "bias_axis.tflite")))
    bias = graph.tensors[graph.ops[0].inputs[2]]
    assert bias.quant.axis == 0 and bias.quant.scale == pytest.approx([0.001, 0.002, 0.003])
    assert graph.quantized == "int8" and params[bias.name].tolist() == [1, 2, 3]


def test_dequantized_constants_are_folded(tmp_path: Path) -> None:
    """float16 weights and weight-only int8 (per channel) behind DEQUANTIZE become float32 constants."""
    rng = np.random.default_rng(7)
    m = TinyModel()
    x = m.tensor([1, 5, 5, 2], name="x")
    w16, w = m.const(rng.normal(size=(3, 3, 3, 2)), np.float16), m.tensor([3, 3, 3, 2], name="w")
    m.op(DEQUANTIZE, [w16], [w])
    h = m.tensor([1, 3, 3, 3])
    m.op(CONV_2D, [x, w, m.const(rng.normal(size=3))], [h], "Conv2DOptions", Padding=VALID, StrideW=1,
         StrideH=1, DilationWFactor=1, DilationHFactor=1)
    flat = m.tensor([1, 27])
    m.op(RESHAPE, [h, m.const([1, 27], np.int32)], [flat])
    q = m.const(rng.integers(-127, 128, size=(4, 27)), np.int8, quant=([0.01, 0.02, 0.03, 0.04], [0, 0, 0, 0], 0))
    w8 = m.tensor([4, 27], name="w8")
    m.op(DEQUANTIZE, [q], [w8])
    y = m.tensor([1, 4], name="y")
    m.op(FULLY_CONNECTED, [flat, w8, -1], [y], "FullyConnectedOptions")
    m.inputs, m.outputs = [x], [y]
    path = m.save(tmp_path / "folded.tflite")
    graph, params = import_tflite(str(path))
    assert [op.type for op in graph.ops] == ["conv2d", "reshape", "fully_connected"]
    assert [op.name for op in graph.ops] == ["conv2d_0", "reshape_1", "fully_connected_2"]
    assert graph.quantized == "none"
    assert params["w"].dtype == np.float32 and graph.tensors["w"].quant is None and graph.tensors["w"].is_const
    assert params["w8"][2].tolist() == pytest.approx((0.03 * m.tensors[q]["data"][2]).tolist())
    feeds = rng.normal(size=(3, 5, 5, 2)).astype(np.float32)
    ours = reference.run(graph, params, {"x": feeds})["y"]
    assert relative_error(ours, litert_run(path, [feeds])) < 1e-5


def test_fully_connected_keep_num_dims(tmp_path: Path) -> None:
    m = TinyModel()
    x, y = m.tensor([1, 5, 8], name="x"), m.tensor([1, 5, 3], name="y")
    m.op(FULLY_CONNECTED, [x, m.const(np.random.default_rng(8).normal(size=(3, 8))), -1], [y],
         "FullyConnectedOptions", KeepNumDims=True)
    m.inputs, m.outputs = [x], [y]
    path = m.save(tmp_path / "keep_dims.tflite")
    graph, params = import_tflite(str(path))
    assert graph.tensors["y"].shape == [1, 5, 3] and graph.ops[0].inputs[0] == "x"
    feeds = np.random.default_rng(9).normal(size=(3, 5, 8)).astype(np.float32)
    assert relative_error(reference.run(graph, params, {"x": feeds})["y"], litert_run(path, [feeds])) < 1e-5


def test_optional_bias_and_unknown_batch(tmp_path: Path) -> None:
    m = TinyModel()
    x = m.tensor([1, 3], signature=[-1, 3])
    w = m.const(np.ones((2, 3)))
    y = m.tensor([1, 2], signature=[-1, 2])
    m.op(FULLY_CONNECTED, [x, w, -1], [y], "FullyConnectedOptions", FusedActivationFunction=ACT_RELU6)
    m.inputs, m.outputs = [x], [y]
    graph, params = import_tflite(str(m.save(tmp_path / "nobias.tflite")))
    assert graph.ops[0].inputs == [graph.inputs[0], next(iter(params))]
    assert graph.ops[0].attrs == {"activation": "relu6"}
    assert graph.tensors[graph.inputs[0]].shape == [1, 3]


def small_fc_model(rng: np.random.Generator) -> TinyModel:
    m = TinyModel()
    x, h, y = m.tensor([1, 3], name="x"), m.tensor([1, 4]), m.tensor([1, 2], name="y")
    m.op(FULLY_CONNECTED, [x, m.const(rng.normal(size=(4, 3))), m.const(rng.normal(size=4))], [h],
         "FullyConnectedOptions", FusedActivationFunction=ACT_RELU)
    m.op(FULLY_CONNECTED, [h, m.const(rng.normal(size=(2, 4))), m.const(rng.normal(size=2))], [y],
         "FullyConnectedOptions")
    m.inputs, m.outputs = [x], [y]
    return m


def test_unused_extra_subgraph_is_ignored(tmp_path: Path) -> None:
    model = small_fc_model(np.random.default_rng(5))
    one, _ = import_tflite(str(model.save(tmp_path / "one.tflite")))
    two, _ = import_tflite(str(model.save(tmp_path / "two.tflite", subgraphs=2)))
    assert two.to_json()["ops"] == one.to_json()["ops"]


def test_constant_data_after_the_flatbuffer(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    model = small_fc_model(rng)
    inline_graph, inline_params = import_tflite(str(model.save(tmp_path / "inline.tflite")))
    path = model.save(tmp_path / "external.tflite", external_data=True)
    graph, params = import_tflite(str(path))
    assert graph.to_json()["tensors"] == inline_graph.to_json()["tensors"]
    assert all(np.array_equal(params[k], inline_params[k]) for k in inline_params)
    x = rng.normal(size=(3, 3)).astype(np.float32)
    ours = reference.run(graph, params, {"x": x})["y"]
    assert relative_error(ours, litert_run(path, [x])) < 1e-5  # LiteRT reads the offsets the same way
    # data said to lie beyond the end of the file
    path.write_bytes(path.read_bytes()[:-8])
    assert "beyond the file" in import_error(path)


# ---- rejected input ---------------------------------------------------------------------------------------------
def test_truncated_models(tmp_path: Path) -> None:
    data = model_path("kws_dscnn_int8/model.tflite").read_bytes()
    for name, cut in (("first100.tflite", data[:100]), ("half.tflite", data[:len(data) // 2])):
        (tmp_path / name).write_bytes(cut)
        message = import_error(tmp_path / name)
        assert "corrupt" in message or "truncated" in message


def test_random_bytes(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    plain = tmp_path / "random.tflite"
    plain.write_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    assert "not a TFLite model" in import_error(plain)
    # random bytes behind a valid identifier get walked, and must still fail quickly and cleanly
    for i in range(20):
        data = bytearray(rng.integers(0, 256, 2000 + 500 * i, dtype=np.uint8).tobytes())
        data[0:4] = int(rng.integers(8, 1000)).to_bytes(4, "little")
        data[4:8] = b"TFL3"
        path = tmp_path / f"garbage{i}.tflite"
        path.write_bytes(bytes(data))
        import_error(path)


def test_empty_and_missing_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.tflite"
    empty.write_bytes(b"")
    assert "empty" in import_error(empty)
    assert "cannot read" in import_error(tmp_path / "missing.tflite")


def test_mutated_models_fail_cleanly(tmp_path: Path) -> None:
    """Flipped bytes in a real model: the import either succeeds or raises NnsconsError, never anything else."""
    data = model_path("kws_dscnn_int8/model.tflite").read_bytes()
    rng = np.random.default_rng(4)
    start = time.perf_counter()
    for i in range(400):
        mutated = bytearray(data)
        # mostly the structure (the first and last kilobytes hold tables and vectors, the middle weights)
        positions = rng.integers(0, len(data), 4) if i % 2 else rng.integers(len(data) - 3000, len(data), 4)
        for p in positions:
            mutated[p] = int(rng.integers(0, 256))
        path = tmp_path / "mutated.tflite"
        path.write_bytes(bytes(mutated))
        try:
            graph, params = import_tflite(str(path))
        except NnsconsError as exc:
            assert "\n" not in str(exc) and "mutated.tflite" in str(exc)
        else:
            ir.validate(graph, params)
    assert time.perf_counter() - start < 20


def test_shared_strings_cannot_make_it_slow(tmp_path: Path) -> None:
    """Flatbuffer offsets may point many tables at one object: 5000 tensors sharing a 1 MB name would make a
    naive reader copy 5 GB. The reader's budget (about the file size) stops it."""
    b = flatbuffers.Builder(0)
    name = b.CreateString("x" * 1_000_000)
    shape = b.CreateNumpyVector(np.array([1, 4], np.int32))
    tensors = []
    for _ in range(5000):
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, shape)
        tflite.TensorAddName(b, name)
        tensors.append(tflite.TensorEnd(b))
    tensor_vector = TinyModel._offsets(b, "SubGraph", "Tensors", tensors)
    tflite.SubGraphStart(b)
    tflite.SubGraphAddTensors(b, tensor_vector)
    subgraph = TinyModel._offsets(b, "Model", "Subgraphs", [tflite.SubGraphEnd(b)])
    buffers = TinyModel._offsets(b, "Model", "Buffers", [TinyModel._buffer(b, None)])
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddSubgraphs(b, subgraph)
    tflite.ModelAddBuffers(b, buffers)
    b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
    path = tmp_path / "shared.tflite"
    path.write_bytes(bytes(b.Output()))
    assert "overlap" in import_error(path)


def test_hybrid_model(tmp_path: Path) -> None:
    m = TinyModel()
    x = m.tensor([1, 4])
    w = m.const(np.ones((3, 4)), np.int8, quant=([0.1], [0], 0))
    b = m.const(np.zeros(3))
    y = m.tensor([1, 3])
    m.op(FULLY_CONNECTED, [x, w, b], [y], "FullyConnectedOptions")
    m.inputs, m.outputs = [x], [y]
    message = import_error(m.save(tmp_path / "hybrid.tflite"))
    assert "hybrid model (int8 weights, float activations) is not supported" in message


def test_unsupported_operator(tmp_path: Path) -> None:
    m = TinyModel()
    x, h, y = m.tensor([1, 4]), m.tensor([1, 4]), m.tensor([1, 4])
    m.op(RELU, [x], [h])
    m.op(EXP, [h], [y])
    m.inputs, m.outputs = [x], [y]
    message = import_error(m.save(tmp_path / "exp.tflite"))
    assert "exp.tflite: unsupported operator EXP (operator #1); supported: ADD, AVERAGE_POOL_2D," in message
    assert message.endswith(", ".join(supported_operators()))


def test_custom_operator(tmp_path: Path) -> None:
    m = TinyModel()
    x, y = m.tensor([1, 4]), m.tensor([1, 4])
    m.op(CUSTOM, [x], [y], custom="TFLite_Detection_PostProcess")
    m.inputs, m.outputs = [x], [y]
    message = import_error(m.save(tmp_path / "custom.tflite"))
    assert "custom operator 'TFLite_Detection_PostProcess' (operator #0) is not supported" in message


def test_dynamic_shape(tmp_path: Path) -> None:
    m = TinyModel()
    x = m.tensor([1, 5, 4], signature=[-1, -1, 4], name="frames")
    y = m.tensor([1, 5, 4], signature=[-1, -1, 4])
    m.op(RELU, [x], [y])
    m.inputs, m.outputs = [x], [y]
    message = import_error(m.save(tmp_path / "dynamic.tflite"))
    assert "dynamic shape" in message and "'frames'" in message


def test_unsupported_fused_activation(tmp_path: Path) -> None:
    m = TinyModel()
    x, y = m.tensor([1, 4]), m.tensor([1, 4])
    m.op(ADD, [x, x], [y], "AddOptions", FusedActivationFunction=ACT_TANH)
    m.inputs, m.outputs = [x], [y]
    message = import_error(m.save(tmp_path / "tanh_act.tflite"))
    assert "operator #0 ADD: fused activation TANH is not supported" in message


def test_tensor_without_data_or_producer(tmp_path: Path) -> None:
    m = TinyModel()
    x, ghost, y = m.tensor([1, 4]), m.tensor([1, 4], name="ghost"), m.tensor([1, 4])
    m.op(ADD, [x, ghost], [y], "AddOptions")
    m.inputs, m.outputs = [x], [y]
    message = import_error(m.save(tmp_path / "ghost.tflite"))
    assert "'ghost' has no data and is neither a graph input nor computed by an operator" in message


def test_inconsistent_output_shape(tmp_path: Path) -> None:
    m = TinyModel()
    x, y = m.tensor([1, 8, 8, 2]), m.tensor([1, 3, 3, 2])
    m.op(MAX_POOL_2D, [x], [y], "Pool2DOptions", Padding=VALID, StrideW=2, StrideH=2, FilterWidth=2,
         FilterHeight=2)
    m.inputs, m.outputs = [x], [y]
    message = import_error(m.save(tmp_path / "shape.tflite"))
    assert "output shape [1, 3, 3, 2] does not match the computed shape [1, 4, 4, 2]" in message
