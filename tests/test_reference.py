"""The float reference interpreter, op by op, against onnxruntime (or a numpy formula where ONNX has no twin).

Each test builds the same one-op model twice: an IR graph (NHWC, OHWI / 1HWC / [out][in] weights) and an ONNX
node (NCHW, OIHW weights), runs a batch of random inputs through both and compares.
"""
from __future__ import annotations

from typing import Optional, Union

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from nnscons import ir, reference
from nnscons.errors import NnsconsError

RNG = np.random.default_rng(1234)
BATCH = 3


# ---- helpers -----------------------------------------------------------------------------------------------------
def rand(*shape: int, scale: float = 1.0) -> np.ndarray:
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def nhwc(x: np.ndarray) -> np.ndarray:
    return x.transpose(0, 2, 3, 1)


def nchw(x: np.ndarray) -> np.ndarray:
    return x.transpose(0, 3, 1, 2)


def single_op(op_type: str, inputs: list[Union[tuple[int, ...], np.ndarray]], out_shape: tuple[int, ...],
              **attrs) -> tuple[ir.Graph, dict[str, np.ndarray]]:
    """A one-op IR graph. ``inputs`` in op order: a shape (batch 1 in axis 0) is a graph input ``x0``, ``x1``...;
    an array is a constant ``c0``, ``c1``..."""
    tensors, params, names, graph_inputs = {}, {}, [], []
    for i, item in enumerate(inputs):
        if isinstance(item, np.ndarray):
            name = f"c{i}"
            tensors[name] = ir.Tensor(name, list(item.shape), str(item.dtype), is_const=True)
            params[name] = item
        else:
            name = f"x{i}"
            tensors[name] = ir.Tensor(name, list(item), "float32")
            graph_inputs.append(name)
        names.append(name)
    tensors["y"] = ir.Tensor("y", list(out_shape), "float32")
    graph = ir.Graph(tensors, [ir.Op("op0", op_type, names, ["y"], attrs)], graph_inputs, ["y"])
    ir.validate(graph, params)
    return graph, params


def run_ir(op_type: str, inputs: list[Union[tuple[int, ...], np.ndarray]], feeds: list[np.ndarray],
           out_shape: tuple[int, ...], **attrs) -> np.ndarray:
    """Run a one-op IR graph; ``feeds`` are the batched values of the non-constant ``inputs`` in order."""
    graph, params = single_op(op_type, inputs, (1, *out_shape[1:]), **attrs)
    result = reference.run(graph, params, dict(zip(graph.inputs, feeds)))
    assert list(result) == ["y"] and result["y"].dtype == np.float32
    return result["y"]


def run_onnx(op_type: str, inputs: list[Optional[np.ndarray]], fed: int = 1, opset: int = 13,
             **attrs) -> np.ndarray:
    """Run one ONNX node in onnxruntime: the first ``fed`` arrays are graph inputs, the rest initializers;
    ``None`` is an omitted optional input."""
    names, graph_inputs, initializers = [], [], []
    feeds = {}
    for i, value in enumerate(inputs):
        if value is None:
            names.append("")
            continue
        name = f"i{i}"
        names.append(name)
        if i < fed:
            graph_inputs.append(helper.make_tensor_value_info(
                name, helper.np_dtype_to_tensor_dtype(value.dtype), list(value.shape)))
            feeds[name] = value
        else:
            initializers.append(numpy_helper.from_array(value, name))
    node = helper.make_node(op_type, names, ["out"], **attrs)
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, None)
    model = helper.make_model(helper.make_graph([node], "t", graph_inputs, [out], initializers),
                              opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    return _session(model).run(None, feeds)[0]


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def assert_close(got: np.ndarray, want: np.ndarray, rtol: float = 1e-5) -> None:
    """Equal shapes; values within ``rtol`` relative to the tensor's magnitude."""
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * max(1e-6, float(np.abs(want).max())))


def fused(y: np.ndarray, activation: str) -> np.ndarray:
    low, high = ir.ACTIVATION_RANGES[activation]
    return np.clip(y, low, high)


# ---- conv2d, depthwise, fully connected --------------------------------------------------------------------------
@pytest.mark.parametrize("stride, dilation, pad, bias, activation", [
    ((1, 1), (1, 1), [0, 0, 0, 0], True, "none"),
    ((2, 2), (1, 1), [1, 0, 0, 1], True, "relu"),
    ((1, 2), (2, 1), [2, 1, 0, 3], False, "relu6"),
    ((2, 1), (2, 2), [1, 2, 2, 1], True, "relu_n1_to_1"),
])
def test_conv2d(stride, dilation, pad, bias, activation):
    x = rand(BATCH, 9, 8, 3)
    w_oihw = rand(4, 3, 3, 2)
    b = rand(4)
    top, bottom, left, right = pad
    want = nhwc(run_onnx("Conv", [nchw(x), w_oihw, b if bias else None], strides=list(stride),
                         dilations=list(dilation), pads=[top, left, bottom, right]))
    w_ohwi = np.ascontiguousarray(w_oihw.transpose(0, 2, 3, 1))
    got = run_ir("conv2d", [(1, 9, 8, 3), w_ohwi] + ([b] if bias else []), [x], want.shape,
                 stride=list(stride), dilation=list(dilation), pad=pad, activation=activation)
    assert_close(got, fused(want, activation))


@pytest.mark.parametrize("multiplier, stride, dilation, pad", [
    (1, (1, 1), (1, 1), [1, 1, 1, 1]),
    (2, (2, 1), (1, 2), [0, 2, 1, 0]),
])
def test_depthwise_conv2d(multiplier, stride, dilation, pad):
    c_in = 3
    x = rand(BATCH, 7, 8, c_in)
    # ONNX grouped conv: output channel g*multiplier + m reads input channel g, the IR's rule
    w_onnx = rand(c_in * multiplier, 1, 3, 3)
    b = rand(c_in * multiplier)
    top, bottom, left, right = pad
    want = nhwc(run_onnx("Conv", [nchw(x), w_onnx, b], group=c_in, strides=list(stride),
                         dilations=list(dilation), pads=[top, left, bottom, right]))
    w_1hwc = np.ascontiguousarray(w_onnx[:, 0].transpose(1, 2, 0)[None])
    got = run_ir("depthwise_conv2d", [(1, 7, 8, c_in), w_1hwc, b], [x], want.shape, stride=list(stride),
                 dilation=list(dilation), pad=pad, multiplier=multiplier)
    assert_close(got, want)


def test_large_batches_run_in_slices_with_the_same_result(monkeypatch):
    x = rand(5, 6, 6, 2)
    conv = ("conv2d", [(1, 6, 6, 2), rand(3, 3, 3, 2)], [x], (5, 6, 6, 3))
    depthwise = ("depthwise_conv2d", [(1, 6, 6, 2), rand(1, 3, 3, 4)], [x], (5, 6, 6, 4))
    attrs = {"stride": [1, 1], "dilation": [1, 1], "pad": [1, 1, 1, 1]}
    whole = [run_ir(*conv, **attrs), run_ir(*depthwise, **attrs, multiplier=2)]
    monkeypatch.setattr(reference.linear, "_IM2COL_BYTES", 1)  # one sample at a time
    np.testing.assert_array_equal(run_ir(*conv, **attrs), whole[0])
    np.testing.assert_array_equal(run_ir(*depthwise, **attrs, multiplier=2), whole[1])


def test_fully_connected_batch():
    x, w, b = rand(5, 12), rand(4, 12), rand(4)
    want = run_onnx("Gemm", [x, w, b], transB=1)
    assert_close(run_ir("fully_connected", [(1, 12), w, b], [x], want.shape), want)


def test_fully_connected_reads_rows_of_in_from_a_4d_input():
    x, w = rand(BATCH, 2, 2, 3, scale=3.0), rand(6, 12)
    want = run_onnx("Gemm", [x.reshape(BATCH, 12), w], transB=1)
    got = run_ir("fully_connected", [(1, 2, 2, 3), w], [x], want.shape, activation="relu")
    assert_close(got, np.maximum(want, 0))


# ---- pooling -----------------------------------------------------------------------------------------------------
POOL_CASES = [((3, 3), (2, 2), [1, 1, 1, 1]), ((2, 3), (1, 2), [0, 1, 1, 2]), ((2, 2), (2, 2), [0, 0, 0, 0])]


@pytest.mark.parametrize("kernel, stride, pad", POOL_CASES)
def test_avg_pool2d_excludes_padding(kernel, stride, pad):
    x = rand(BATCH, 7, 6, 4) + 5.0  # far from zero, so counting padded zeros would show
    top, bottom, left, right = pad
    want = nhwc(run_onnx("AveragePool", [nchw(x)], kernel_shape=list(kernel), strides=list(stride),
                         pads=[top, left, bottom, right], count_include_pad=0))
    got = run_ir("avg_pool2d", [(1, 7, 6, 4)], [x], want.shape, kernel=list(kernel), stride=list(stride), pad=pad)
    assert_close(got, want)


@pytest.mark.parametrize("kernel, stride, pad", POOL_CASES)
def test_max_pool2d_padding_never_wins(kernel, stride, pad):
    x = rand(BATCH, 7, 6, 4) - 10.0  # all negative, so a padded zero would win
    top, bottom, left, right = pad
    want = nhwc(run_onnx("MaxPool", [nchw(x)], kernel_shape=list(kernel), strides=list(stride),
                         pads=[top, left, bottom, right]))
    got = run_ir("max_pool2d", [(1, 7, 6, 4)], [x], want.shape, kernel=list(kernel), stride=list(stride), pad=pad)
    assert (got < 0).all()
    assert_close(got, want)


# ---- elementwise -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ir_type, onnx_type", [("add", "Add"), ("sub", "Sub"), ("mul", "Mul")])
@pytest.mark.parametrize("other", [(3,), (1, 4, 1, 3), (1, 4, 5, 3)])
def test_binary_broadcast_with_constant(ir_type, onnx_type, other):
    x, c = rand(BATCH, 4, 5, 3), rand(*other)
    want = run_onnx(onnx_type, [x, c])
    assert_close(run_ir(ir_type, [(1, 4, 5, 3), c], [x], want.shape), want)


def test_add_two_activations_with_fused_relu6():
    a, b = rand(BATCH, 4, 5, 3, scale=5.0), rand(BATCH, 4, 5, 3, scale=5.0)
    want = run_onnx("Add", [a, b], fed=2)
    got = run_ir("add", [(1, 4, 5, 3), (1, 4, 5, 3)], [a, b], want.shape, activation="relu6")
    assert_close(got, np.clip(want, 0, 6))


@pytest.mark.parametrize("beta", [1.0, 0.5, 2.5])
def test_softmax_with_beta(beta):
    x = rand(BATCH, 10, scale=4.0)
    x[0, 0] = 500.0  # large logits must not overflow
    z = x.astype(np.float64) * beta
    want = np.exp(z - z.max(-1, keepdims=True))
    want /= want.sum(-1, keepdims=True)
    got = run_ir("softmax", [(1, 10)], [x], x.shape, beta=beta)
    assert np.isfinite(got).all()
    assert_close(got, want.astype(np.float32))
    if beta == 1.0:
        assert_close(got, run_onnx("Softmax", [x]))


@pytest.mark.parametrize("ir_type, onnx_type, onnx_attrs, ir_attrs", [
    ("logistic", "Sigmoid", {}, {}),
    ("tanh", "Tanh", {}, {}),
    ("relu", "Relu", {}, {}),
    ("leaky_relu", "LeakyRelu", {"alpha": 0.15}, {"alpha": 0.15}),
])
def test_unary_activations(ir_type, onnx_type, onnx_attrs, ir_attrs):
    x = rand(BATCH, 4, 5, 3, scale=4.0)
    x[0, 0, 0, :] = [-120.0, 120.0, 0.0]  # saturation of logistic / tanh without overflow
    want = run_onnx(onnx_type, [x], **onnx_attrs)
    assert_close(run_ir(ir_type, [(1, 4, 5, 3)], [x], want.shape, **ir_attrs), want)


@pytest.mark.parametrize("ir_type, low, high, attrs", [
    ("relu6", 0.0, 6.0, {}),
    ("clip", -1.5, 2.0, {"min": -1.5, "max": 2.0}),
    ("clip", -0.5, None, {"min": -0.5, "max": None}),
    ("clip", None, 0.25, {"max": 0.25}),
])
def test_clipping_activations(ir_type, low, high, attrs):
    x = rand(BATCH, 6, 4, scale=5.0)
    bound = [None if v is None else np.array(v, np.float32) for v in (low, high)]
    want = run_onnx("Clip", [x] + bound)
    assert_close(run_ir(ir_type, [(1, 6, 4)], [x], want.shape, **attrs), want)


# ---- shape ops -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("axes, keepdims", [([1, 2], True), ([1, 2], False), ([3], True)])
def test_mean(axes, keepdims):
    x = rand(BATCH, 5, 6, 4) + 3.0
    want = run_onnx("ReduceMean", [x], axes=axes, keepdims=int(keepdims))
    assert_close(run_ir("mean", [(1, 5, 6, 4)], [x], want.shape, axes=axes, keepdims=keepdims), want)


def test_concat():
    a, b, c = rand(BATCH, 4, 5, 2), rand(BATCH, 4, 3, 2), rand(BATCH, 4, 5, 3)
    want = run_onnx("Concat", [a, b], fed=2, axis=2)
    assert_close(run_ir("concat", [(1, 4, 5, 2), (1, 4, 3, 2)], [a, b], want.shape, axis=2), want)
    want = run_onnx("Concat", [a, c, a], fed=3, axis=3)
    got = run_ir("concat", [(1, 4, 5, 2), (1, 4, 5, 3), (1, 4, 5, 2)], [a, c, a], want.shape, axis=3)
    assert_close(got, want)


def test_pad_constant_value():
    x = rand(BATCH, 4, 5, 3)
    pads = [[0, 0], [1, 2], [0, 3], [2, 1]]
    onnx_pads = np.array([p[0] for p in pads] + [p[1] for p in pads], np.int64)
    want = run_onnx("Pad", [x, onnx_pads, np.array(-0.75, np.float32)], mode="constant")
    got = run_ir("pad", [(1, 4, 5, 3)], [x], want.shape, pads=pads, value=-0.75)
    assert_close(got, want)


def test_reshape_uses_the_run_batch_size():
    x = rand(4, 2, 3, 5)
    got = run_ir("reshape", [(1, 2, 3, 5)], [x], (4, 30), shape=[1, 30])
    np.testing.assert_array_equal(got, x.reshape(4, 30))


def test_reshape_without_batch_axis_runs_only_with_batch_1():
    graph, params = single_op("reshape", [(1, 10)], (10,), shape=[10])
    x = rand(1, 10)
    np.testing.assert_array_equal(reference.run(graph, params, {"x0": x})["y"], x.reshape(10))
    with pytest.raises(NnsconsError, match="batch 1"):
        reference.run(graph, params, {"x0": rand(2, 10)})


# ---- a small network, end to end -----------------------------------------------------------------------------
def test_small_network_against_onnxruntime():
    """conv -> relu -> maxpool -> conv (+ residual add, relu) -> global avg pool -> flatten -> gemm -> softmax."""
    w1, b1, w2, b2 = rand(6, 3, 3, 3, scale=0.5), rand(6), rand(6, 6, 3, 3, scale=0.3), rand(6)
    wf, bf = rand(5, 6), rand(5)
    onnx_nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c2", "p1"], ["a2"]),
        helper.make_node("Relu", ["a2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["y"]),
    ]
    inits = [numpy_helper.from_array(v, n) for n, v in
             [("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2), ("wf", wf), ("bf", bf)]]
    model = helper.make_model(helper.make_graph(
        onnx_nodes, "net", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits),
        opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    x = rand(6, 3, 8, 8)
    want = _session(model).run(None, {"x": x})[0]

    shapes = {"x": [1, 8, 8, 3], "c1": [1, 8, 8, 6], "p1": [1, 4, 4, 6], "c2": [1, 4, 4, 6], "a2": [1, 4, 4, 6],
              "g": [1, 1, 1, 6], "f": [1, 6], "logits": [1, 5], "y": [1, 5]}
    params = {"w1": w1.transpose(0, 2, 3, 1).copy(), "b1": b1, "w2": w2.transpose(0, 2, 3, 1).copy(), "b2": b2,
              "wf": wf, "bf": bf}
    tensors = {n: ir.Tensor(n, s, "float32") for n, s in shapes.items()}
    tensors.update({n: ir.Tensor(n, list(v.shape), "float32", is_const=True) for n, v in params.items()})
    same = {"stride": [1, 1], "dilation": [1, 1], "pad": [1, 1, 1, 1]}
    ops = [
        ir.Op("conv1", "conv2d", ["x", "w1", "b1"], ["c1"], {**same, "activation": "relu"}),
        ir.Op("pool1", "max_pool2d", ["c1"], ["p1"], {"kernel": [2, 2], "stride": [2, 2], "pad": [0, 0, 0, 0]}),
        ir.Op("conv2", "conv2d", ["p1", "w2", "b2"], ["c2"], {**same, "activation": "none"}),
        ir.Op("add1", "add", ["c2", "p1"], ["a2"], {"activation": "relu"}),
        ir.Op("gap", "avg_pool2d", ["a2"], ["g"], {"kernel": [4, 4], "stride": [1, 1], "pad": [0, 0, 0, 0]}),
        ir.Op("flat", "reshape", ["g"], ["f"], {"shape": [1, 6]}),
        ir.Op("fc", "fully_connected", ["f", "wf", "bf"], ["logits"], {"activation": "none"}),
        ir.Op("prob", "softmax", ["logits"], ["y"], {"beta": 1.0}),
    ]
    graph = ir.Graph(tensors, ops, ["x"], ["y"])
    ir.validate(graph, params)
    feeds = {"x": nhwc(x)}
    assert_close(reference.run(graph, params, feeds)["y"], want)

    everything = reference.run(graph, params, feeds, keep=True)
    assert sorted(everything) == sorted(graph.activations())
    np.testing.assert_array_equal(everything["x"], nhwc(x))
    stepped = list(reference.iterate(graph, params, feeds))
    assert [op.name for op, _ in stepped] == [op.name for op in ops]
    for op, produced in stepped:
        assert list(produced) == op.outputs
        np.testing.assert_array_equal(produced[op.outputs[0]], everything[op.outputs[0]])


# ---- quantized models run in float ---------------------------------------------------------------------------
def test_dequantize_params_per_tensor_and_per_channel():
    tensors = {
        "w": ir.Tensor("w", [2, 1, 1, 3], "int8", is_const=True,
                       quant=ir.Quant(scale=[0.5, 0.25], zero_point=[0, 0], axis=0)),
        "b": ir.Tensor("b", [3], "int32", is_const=True, quant=ir.Quant(scale=[0.1], zero_point=[3])),
        "f": ir.Tensor("f", [2], "float32", is_const=True),
        "x": ir.Tensor("x", [1, 2], "float32"),
    }
    params = {"w": np.array([[-128, 1, 127], [2, -4, 8]], np.int8).reshape(2, 1, 1, 3),
              "b": np.array([3, 13, -7], np.int32), "f": np.array([1.5, -2.0], np.float32)}
    graph = ir.Graph(tensors, [], ["x"], ["x"], quantized="int8")
    real = reference.dequantize_params(graph, params)
    assert sorted(real) == ["b", "f", "w"] and all(v.dtype == np.float32 for v in real.values())
    np.testing.assert_array_equal(real["w"].reshape(2, 3), [[-64, 0.5, 63.5], [0.5, -1, 2]])
    np.testing.assert_allclose(real["b"], [0, 1, -1], atol=1e-6)
    np.testing.assert_array_equal(real["f"], params["f"])
    again = reference.dequantize_params(graph, real)  # already real: unchanged
    assert all(np.array_equal(again[k], real[k]) for k in real)


def test_quantized_graph_runs_in_float():
    """quantize -> conv (int8 per-channel weights, int32 bias) -> dequantize equals the float conv on real
    weights; an int8 input array is dequantized with the input's quant."""
    in_q = ir.Quant([0.05], [-3])
    w_q = ir.Quant([0.01, 0.02], [0, 0], axis=0)
    w = RNG.integers(-127, 128, size=(2, 3, 3, 2)).astype(np.int8)
    b = RNG.integers(-500, 500, size=2).astype(np.int32)
    tensors = {
        "x": ir.Tensor("x", [1, 5, 5, 2], "float32"),
        "xq": ir.Tensor("xq", [1, 5, 5, 2], "int8", quant=in_q),
        "w": ir.Tensor("w", [2, 3, 3, 2], "int8", is_const=True, quant=w_q),
        "b": ir.Tensor("b", [2], "int32", is_const=True, quant=ir.Quant([0.0005, 0.001], [0, 0], axis=0)),
        "yq": ir.Tensor("yq", [1, 5, 5, 2], "int8", quant=ir.Quant([0.1], [4])),
        "y": ir.Tensor("y", [1, 5, 5, 2], "float32"),
    }
    conv_attrs = {"stride": [1, 1], "dilation": [1, 1], "pad": [1, 1, 1, 1], "activation": "relu"}
    ops = [ir.Op("q", "quantize", ["x"], ["xq"]),
           ir.Op("conv", "conv2d", ["xq", "w", "b"], ["yq"], conv_attrs),
           ir.Op("dq", "dequantize", ["yq"], ["y"])]
    params = {"w": w, "b": b}
    graph = ir.Graph(tensors, ops, ["x"], ["y"], quantized="int8")
    ir.validate(graph, params)
    x = rand(BATCH, 5, 5, 2)
    real_w = (w.astype(np.float64) * np.array([0.01, 0.02]).reshape(2, 1, 1, 1)).astype(np.float32)
    real_b = (b * np.array([0.0005, 0.001])).astype(np.float32)
    want = nhwc(run_onnx("Conv", [nchw(x), real_w.transpose(0, 3, 1, 2), real_b], pads=[1, 1, 1, 1]))
    assert_close(reference.run(graph, params, {"x": x})["y"], np.maximum(want, 0))

    # the same conv fed an int8 input directly
    graph_q = ir.Graph(tensors, ops[1:2], ["xq"], ["yq"], quantized="int8")
    xq = RNG.integers(-128, 128, size=(BATCH, 5, 5, 2)).astype(np.int8)
    x_real = (0.05 * (xq.astype(np.float64) + 3)).astype(np.float32)
    want = nhwc(run_onnx("Conv", [nchw(x_real), real_w.transpose(0, 3, 1, 2), real_b], pads=[1, 1, 1, 1]))
    got = reference.run(graph_q, params, {"xq": xq})["yq"]
    assert got.dtype == np.float32
    assert_close(got, np.maximum(want, 0))


# ---- bad input -------------------------------------------------------------------------------------------------
def test_bad_inputs_raise_nnscons_error():
    graph, params = single_op("relu", [(1, 4, 3)], (1, 4, 3))
    with pytest.raises(NnsconsError, match="no value for graph input x0"):
        reference.run(graph, params, {})
    with pytest.raises(NnsconsError, match="unknown input"):
        reference.run(graph, params, {"x0": rand(2, 4, 3), "z": rand(1)})
    with pytest.raises(NnsconsError, match=r"expected \[N, 4, 3\]"):
        reference.run(graph, params, {"x0": rand(2, 3, 4)})
    with pytest.raises(NnsconsError, match="empty batch"):
        reference.run(graph, params, {"x0": rand(0, 4, 3)})
    two, two_params = single_op("add", [(1, 4), (1, 4)], (1, 4))
    with pytest.raises(NnsconsError, match="batch size"):
        reference.run(two, two_params, {"x0": rand(2, 4), "x1": rand(3, 4)})


def test_bad_graphs_raise_nnscons_error():
    graph, params = single_op("relu", [(1, 4)], (1, 4))
    graph.ops[0].type = "gelu"
    with pytest.raises(NnsconsError, match="unknown op type 'gelu'"):
        reference.run(graph, params, {"x0": rand(1, 4)})

    graph, params = single_op("add", [(1, 4), rand(4)], (1, 4), activation="swish")
    with pytest.raises(NnsconsError, match="unknown fused activation"):
        reference.run(graph, params, {"x0": rand(1, 4)})

    graph, params = single_op("fully_connected", [(1, 4), rand(3, 4)], (1, 2))  # the graph claims 2 outputs
    with pytest.raises(NnsconsError, match=r"op op0 \(fully_connected\)"):
        reference.run(graph, params, {"x0": rand(1, 4)})

    graph, params = single_op("conv2d", [(1, 4, 4, 2), rand(1, 3, 3, 5)], (1, 2, 2, 1))  # Cin 2 vs 5
    with pytest.raises(NnsconsError, match="OHWI"):
        reference.run(graph, params, {"x0": rand(1, 4, 4, 2)})

    graph, params = single_op("avg_pool2d", [(1, 4, 4, 2)], (1, 3, 3, 2))  # no kernel attribute
    with pytest.raises(NnsconsError, match="missing attribute 'kernel'"):
        reference.run(graph, params, {"x0": rand(1, 4, 4, 2)})

    graph, params = single_op("relu", [(1, 4), rand(4)], (1, 4))
    del params["c1"]
    with pytest.raises(NnsconsError, match="no data for constant tensor c1"):
        reference.run(graph, params, {"x0": rand(1, 4)})
