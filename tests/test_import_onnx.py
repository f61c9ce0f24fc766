"""ONNX importer: real and hand-built models against onnxruntime, and every kind of bad input.

Each layer test builds a small model with ``onnx.helper``, runs it in onnxruntime on random NCHW inputs, imports it,
runs the IR in the reference interpreter on the same inputs put in IR layout (``input_perm``) and compares the
outputs brought back with ``output_perm``. Agreement proves the layout conversion and weight reordering.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import SHARED
from nnscons import fileio, ir, reference
from nnscons.errors import NnsconsError
from nnscons.importers.onnx import import_onnx

MNIST8 = SHARED / "models" / "mnist8_onnx"
DIGITS = Path(__file__).resolve().parents[1] / "models" / "digits_cnn" / "model.onnx"

rng = np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def fixed_seed():
    """Every test draws the same random data whichever tests run before it."""
    global rng
    rng = np.random.default_rng(1234)


# ---- helpers ------------------------------------------------------------------------------------------------------
def rand(*shape: int, scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def tensor_info(name: str, shape: list, elem: int = TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, shape)


def save_model(tmp_path: Path, nodes: list, inputs: list, outputs: list, inits: Optional[dict] = None,
               opset: int = 13, name: str = "model.onnx", check: bool = True) -> Path:
    graph = helper.make_graph(nodes, "test", inputs, outputs,
                              [numpy_helper.from_array(v, k) for k, v in (inits or {}).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    if check:   # outputs are declared without shapes, so check the model with inferred ones
        onnx.checker.check_model(onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True))
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def ir_feeds(graph: ir.Graph, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model's own inputs (by ONNX name) as IR inputs: IR names, IR layout."""
    result = {}
    for name in graph.inputs:
        x = feeds[graph.tensors[name].label]
        perm = graph.input_perm.get(name)
        result[name] = x.transpose(perm) if perm else x
    return result


def model_outputs(graph: ir.Graph, outputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Reference outputs brought back to the model's own layout, in graph output order."""
    result = []
    for name in graph.outputs:
        perm = graph.output_perm.get(name)
        result.append(outputs[name].transpose(perm) if perm else outputs[name])
    return result


def run_ort(path: Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def check_against_ort(path: Path, feeds: dict[str, np.ndarray], rtol: float = 1e-5,
                      atol: float = 1e-5) -> tuple[ir.Graph, dict[str, np.ndarray]]:
    graph, params = import_onnx(str(path))
    ir.validate(graph, params)
    fileio.canonical_json(graph.to_json())     # serializable as graph.json
    expected = run_ort(path, feeds)
    got = model_outputs(graph, reference.run(graph, params, ir_feeds(graph, feeds)))
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=rtol, atol=atol * max(1.0, float(np.abs(e).max())))
    return graph, params


def op_types(graph: ir.Graph) -> list[str]:
    return [op.type for op in graph.ops]


def conv_node(x: str, w: str, out: str, b: Optional[str] = None, **attrs) -> onnx.NodeProto:
    return helper.make_node("Conv", [x, w] + ([b] if b else []), [out], **attrs)


# ---- the real model -----------------------------------------------------------------------------------------------
def read_pb(path: Path) -> np.ndarray:
    return numpy_helper.to_array(onnx.TensorProto.FromString(path.read_bytes()))


def test_mnist8_matches_expected_outputs_and_onnxruntime():
    path = MNIST8 / "model.onnx"
    graph, params = import_onnx(str(path))
    assert graph.source == "onnx" and graph.source_file == "model.onnx" and graph.layout == "NCHW"
    assert op_types(graph) == ["conv2d", "max_pool2d", "conv2d", "max_pool2d", "reshape", "fully_connected"]
    assert [op.attrs.get("activation") for op in graph.ops if op.type == "conv2d"] == ["relu", "relu"]
    # the initializers listed as graph inputs (IR version 3) are constants, not inputs
    assert len(graph.inputs) == 1
    (name,) = graph.inputs
    assert graph.tensors[name].shape == [1, 28, 28, 1] and graph.input_perm[name] == [0, 2, 3, 1]
    assert graph.tensors[graph.outputs[0]].shape == [1, 10] and not graph.output_perm
    # the fully-connected weights are the seed guide's reordering of Parameter193 reshaped to [256, 10]
    model = onnx.load(str(path))
    w193 = next(numpy_helper.to_array(t) for t in model.graph.initializer if t.name == "Parameter193")
    fc = graph.ops[-1]
    expected_w = w193.reshape(256, 10).T.reshape(10, 16, 4, 4).transpose(0, 2, 3, 1).reshape(10, -1)
    np.testing.assert_array_equal(params[fc.inputs[1]], expected_w)

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for k in range(3):
        folder = MNIST8 / f"test_data_set_{k}"
        x, y = read_pb(folder / "input_0.pb"), read_pb(folder / "output_0.pb")
        out = reference.run(graph, params, {name: x.transpose(graph.input_perm[name])})[graph.outputs[0]]
        scale = float(np.abs(y).max())
        np.testing.assert_allclose(out, y, rtol=1e-5, atol=1e-5 * scale)
        (ort_out,) = session.run(None, {"Input3": x})
        np.testing.assert_allclose(out, ort_out, rtol=1e-5, atol=1e-5 * scale)


def test_mnist8_runs_batched():
    graph, params = import_onnx(str(MNIST8 / "model.onnx"))
    xs = np.concatenate([read_pb(MNIST8 / f"test_data_set_{k}" / "input_0.pb") for k in range(3)])
    ys = np.concatenate([read_pb(MNIST8 / f"test_data_set_{k}" / "output_0.pb") for k in range(3)])
    (name,) = graph.inputs
    out = reference.run(graph, params, {name: xs.transpose(0, 2, 3, 1)})[graph.outputs[0]]
    np.testing.assert_allclose(out, ys, rtol=1e-5, atol=1e-5 * float(np.abs(ys).max()))


@pytest.mark.skipif(not DIGITS.exists(), reason="project model digits_cnn not built")
def test_digits_cnn_project_model():
    x = np.load(DIGITS.parent / "test.npz")["x"][:16]
    path = DIGITS
    graph, params = import_onnx(str(path))
    expected = np.concatenate([run_ort(path, {graph.tensors[graph.inputs[0]].label: x[i:i + 1]})[0]
                               for i in range(len(x))])
    out = reference.run(graph, params, {graph.inputs[0]: x.transpose(0, 2, 3, 1)})[graph.outputs[0]]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_import_is_deterministic():
    a_graph, a_params = import_onnx(str(MNIST8 / "model.onnx"))
    b_graph, b_params = import_onnx(str(MNIST8 / "model.onnx"))
    assert a_graph.to_json() == b_graph.to_json()
    assert a_params.keys() == b_params.keys()
    assert all(np.array_equal(a_params[k], b_params[k]) for k in a_params)


# ---- convolutions -------------------------------------------------------------------------------------------------
def test_conv_stride_asymmetric_pads_dilation(tmp_path):
    w, b = rand(5, 3, 3, 3), rand(5)
    node = conv_node("x", "w", "y", "b", strides=[2, 2], pads=[1, 0, 2, 1], dilations=[2, 2])
    path = save_model(tmp_path, [node], [tensor_info("x", [1, 3, 11, 13])], [tensor_info("y", None)],
                      {"w": w, "b": b})
    graph, params = check_against_ort(path, {"x": rand(1, 3, 11, 13)})
    (op,) = graph.ops
    assert op.type == "conv2d"
    assert op.attrs["pad"] == [1, 2, 0, 1] and op.attrs["stride"] == [2, 2] and op.attrs["dilation"] == [2, 2]
    np.testing.assert_array_equal(params[op.inputs[1]], w.transpose(0, 2, 3, 1))     # OIHW -> OHWI
    assert graph.output_perm[graph.outputs[0]] == [0, 3, 1, 2]


@pytest.mark.parametrize("multiplier", [1, 2])
def test_depthwise_conv(tmp_path, multiplier):
    channels = 4
    w, b = rand(channels * multiplier, 1, 3, 3), rand(channels * multiplier)
    node = conv_node("x", "w", "y", "b", group=channels, pads=[1, 1, 1, 1], strides=[1, 2])
    path = save_model(tmp_path, [node], [tensor_info("x", [1, channels, 9, 10])], [tensor_info("y", None)],
                      {"w": w, "b": b})
    graph, params = check_against_ort(path, {"x": rand(1, channels, 9, 10)})
    (op,) = graph.ops
    assert op.type == "depthwise_conv2d" and op.attrs["multiplier"] == multiplier
    np.testing.assert_array_equal(params[op.inputs[1]], w.transpose(1, 2, 3, 0))     # -> [1, KH, KW, C*M]


@pytest.mark.parametrize("auto_pad,pad", [("SAME_UPPER", [0, 1, 0, 1]), ("SAME_LOWER", [1, 0, 1, 0]),
                                          ("VALID", [0, 0, 0, 0])])
def test_conv_auto_pad(tmp_path, auto_pad, pad):
    node = conv_node("x", "w", "y", auto_pad=auto_pad, strides=[2, 2])
    path = save_model(tmp_path, [node], [tensor_info("x", [1, 2, 10, 10])], [tensor_info("y", None)],
                      {"w": rand(3, 2, 3, 3)})
    graph, _ = check_against_ort(path, {"x": rand(1, 2, 10, 10)})
    assert graph.ops[0].attrs["pad"] == pad
    assert "b" not in [graph.tensors[t].label for t in graph.ops[0].inputs]


def test_conv_batchnorm_folding(tmp_path):
    c = 6
    nodes = [conv_node("x", "w", "c", "b", pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "gamma", "beta", "mean", "var"], ["y"], epsilon=1e-3)]
    inits = {"w": rand(c, 3, 3, 3), "b": rand(c), "gamma": rand(c), "beta": rand(c), "mean": rand(c),
             "var": np.abs(rand(c)) + 0.5}
    path = save_model(tmp_path, nodes, [tensor_info("x", [1, 3, 7, 7])], [tensor_info("y", None)], inits)
    graph, _ = check_against_ort(path, {"x": rand(1, 3, 7, 7)}, rtol=1e-4, atol=1e-5)
    assert op_types(graph) == ["conv2d"]


@pytest.mark.parametrize("trans_b,alpha,beta", [(1, 1.0, 1.0), (0, 0.5, 2.0)])
def test_conv_relu_maxpool_flatten_gemm_reorders_fc_weights(tmp_path, trans_b, alpha, beta):
    # C, H, W all different after the pool (3, 4, 5), as in the seed guide's example
    w_fc = rand(7, 60, scale=0.2)
    nodes = [conv_node("x", "w", "c", "b", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p"], ["f"], axis=1),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], transB=trans_b, alpha=alpha, beta=beta)]
    inits = {"w": rand(3, 2, 3, 3), "b": rand(3), "fw": w_fc if trans_b else w_fc.T.copy(), "fb": rand(7)}
    path = save_model(tmp_path, nodes, [tensor_info("x", [1, 2, 8, 10])], [tensor_info("y", None)], inits)
    graph, params = check_against_ort(path, {"x": rand(1, 2, 8, 10)})
    assert op_types(graph) == ["conv2d", "max_pool2d", "reshape", "fully_connected"]
    assert graph.ops[0].attrs["activation"] == "relu"
    fc = graph.ops[-1]
    seed = w_fc.reshape(7, 3, 4, 5).transpose(0, 2, 3, 1).reshape(7, -1)   # the seed guide's formula
    np.testing.assert_allclose(params[fc.inputs[1]], seed * alpha, rtol=1e-6)
    np.testing.assert_allclose(params[fc.inputs[2]], inits["fb"] * beta, rtol=1e-6)


def test_flatten_to_fc_through_relu_and_reshape_node(tmp_path):
    """A Reshape (not Flatten) whose target comes from Shape/Gather/Concat arithmetic, and a Relu in between."""
    nodes = [conv_node("x", "w", "c"),
             helper.make_node("Shape", ["c"], ["s"]),
             helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"]),
             helper.make_node("Concat", ["n1", "minus1"], ["target"], axis=0),
             helper.make_node("Reshape", ["c", "target"], ["f"]),
             helper.make_node("Relu", ["f"], ["r"]),
             helper.make_node("MatMul", ["r", "fw"], ["m"]),
             helper.make_node("Add", ["fb", "m"], ["y"])]
    inits = {"w": rand(3, 2, 1, 1), "zero": np.array(0, np.int64), "axes0": np.array([0], np.int64),
             "minus1": np.array([-1], np.int64), "fw": rand(3 * 4 * 5, 6), "fb": rand(1, 6)}
    # ONNX's own shape inference cannot follow this; the importer's constant folding can
    path = save_model(tmp_path, nodes, [tensor_info("x", [1, 2, 4, 5])], [tensor_info("y", None)], inits,
                      check=False)
    graph, _ = check_against_ort(path, {"x": rand(1, 2, 4, 5)})
    assert op_types(graph) == ["conv2d", "reshape", "relu", "fully_connected"]


@pytest.mark.parametrize("bias_shape", [[6], [1, 6]])
def test_matmul_add_is_one_fully_connected(tmp_path, bias_shape):
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["a"]),
             helper.make_node("Relu", ["a"], ["y"])]
    path = save_model(tmp_path, nodes, [tensor_info("x", [1, 12])], [tensor_info("y", None)],
                      {"w": rand(12, 6), "b": rand(*bias_shape)})
    graph, params = check_against_ort(path, {"x": rand(1, 12)})
    (op,) = graph.ops
    assert op.type == "fully_connected" and op.attrs["activation"] == "relu" and len(op.inputs) == 3
    assert params[op.inputs[1]].shape == (6, 12) and params[op.inputs[2]].shape == (6,)


def test_conv_clip_0_6_is_fused_relu6(tmp_path):
    nodes = [conv_node("x", "w", "c", "b"), helper.make_node("Clip", ["c", "lo", "hi"], ["y"])]
    inits = {"w": rand(4, 3, 3, 3), "b": rand(4), "lo": np.array(0.0, np.float32), "hi": np.array(6.0, np.float32)}
    path = save_model(tmp_path, nodes, [tensor_info("x", [1, 3, 6, 6])], [tensor_info("y", None)], inits)
    graph, _ = check_against_ort(path, {"x": rand(1, 3, 6, 6, scale=4.0)})
    assert op_types(graph) == ["conv2d"] and graph.ops[0].attrs["activation"] == "relu6"


# ---- elementwise, pooling, shapes -----------------------------------------------------------------------------------
@pytest.mark.parametrize("node,ir_type", [
    (helper.make_node("Clip", ["x", "lo", "hi"], ["y"]), "clip"),
    (helper.make_node("LeakyRelu", ["x"], ["y"], alpha=0.2), "leaky_relu"),
    (helper.make_node("Sigmoid", ["x"], ["y"]), "logistic"),
    (helper.make_node("Tanh", ["x"], ["y"]), "tanh"),
    (helper.make_node("Relu", ["x"], ["y"]), "relu"),
])
def test_unary_ops(tmp_path, node, ir_type):
    inits = {"lo": np.array(-0.5, np.float32), "hi": np.array(0.7, np.float32)} if node.op_type == "Clip" else {}
    path = save_model(tmp_path, [node], [tensor_info("x", [1, 3, 5, 6])], [tensor_info("y", None)], inits)
    graph, _ = check_against_ort(path, {"x": rand(1, 3, 5, 6, scale=2.0)})
    assert op_types(graph) == [ir_type]
    if ir_type == "clip":
        assert graph.ops[0].attrs["min"] == -0.5 and graph.ops[0].attrs["max"] == pytest.approx(0.7)


def test_clip_attributes_before_opset_11(tmp_path):
    node = helper.make_node("Clip", ["x"], ["y"], min=0.0, max=6.0)
    path = save_model(tmp_path, [node], [tensor_info("x", [1, 8])], [tensor_info("y", None)], opset=9)
    graph, _ = check_against_ort(path, {"x": rand(1, 8, scale=5.0)})
    assert op_types(graph) == ["relu6"]


@pytest.mark.parametrize("op_type", ["AveragePool", "MaxPool"])
def test_pool_with_pads(tmp_path, op_type):
    node = helper.make_node(op_type, ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 0, 1])
    path = save_model(tmp_path, [node], [tensor_info("x", [1, 3, 7, 9])], [tensor_info("y", None)])
    graph, _ = check_against_ort(path, {"x": rand(1, 3, 7, 9)})
    (op,) = graph.ops
    assert op.type == {"AveragePool": "avg_pool2d", "MaxPool": "max_pool2d"}[op_type]
    assert op.attrs["pad"] == [1, 0, 1, 1] and op.attrs["kernel"] == [3, 3]


def test_pool_ceil_mode_that_changes_nothing(tmp_path):
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)
    path = save_model(tmp_path, [node], [tensor_info("x", [1, 3, 8, 8])], [tensor_info("y", None)])
    check_against_ort(path, {"x": rand(1, 3, 8, 8)})


@pytest.mark.parametrize("flatten", [False, True])
def test_global_average_pool(tmp_path, flatten):
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["g" if flatten else "y"])]
    if flatten:
        nodes.append(helper.make_node("Flatten", ["g"], ["y"]))
    path = save_model(tmp_path, nodes, [tensor_info("x", [1, 5, 6, 7])], [tensor_info("y", None)])
    graph, _ = check_against_ort(path, {"x": rand(1, 5, 6, 7)})
    assert graph.ops[0].type == "avg_pool2d" and graph.ops[0].attrs["kernel"] == [6, 7]
    assert op_types(graph) == (["avg_pool2d", "reshape"] if flatten else ["avg_pool2d"])


def test_concat_on_channels(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["a"]), conv_node("x", "w", "b"),
             helper.make_node("Concat", ["a", "b", "k"], ["y"], axis=1)]
    inits = {"w": rand(4, 3, 1, 1), "k": rand(1, 2, 6, 5)}
    path = save_model(tmp_path, nodes, [tensor_info("x", [1, 3, 6, 5])], [tensor_info("y", None)], inits)
    graph, _ = check_against_ort(path, {"x": rand(1, 3, 6, 5)})
    concat = graph.ops[-1]
    assert concat.type == "concat" and concat.attrs["axis"] == 3
    assert graph.tensors[concat.outputs[0]].shape == [1, 6, 5, 9]


@pytest.mark.parametrize("opset,axis", [(13, -1), (13, 1), (11, None)])
def test_softmax_after_gemm(tmp_path, opset, axis):
    attrs = {} if axis is None else {"axis": axis}
    nodes = [helper.make_node("Gemm", ["x", "w"], ["g"], transB=1), helper.make_node("Softmax", ["g"], ["y"], **attrs)]
    path = save_model(tmp_path, nodes, [tensor_info("x", [1, 10])], [tensor_info("y", None)], {"w": rand(4, 10)},
                      opset=opset)
    graph, _ = check_against_ort(path, {"x": rand(1, 10)})
    assert op_types(graph) == ["fully_connected", "softmax"]


def test_softmax_over_channels_of_nchw(tmp_path):
    node = helper.make_node("Softmax", ["x"], ["y"], axis=1)
    path = save_model(tmp_path, [node], [tensor_info("x", [1, 4, 3, 2])], [tensor_info("y", None)])
    graph, _ = check_against_ort(path, {"x": rand(1, 4, 3, 2)})
    assert op_types(graph) == ["softmax"]


def test_transpose_and_reshape_that_keep_element_order(tmp_path):
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["g"]),
             helper.make_node("Transpose", ["g"], ["t"], perm=[0, 2, 3, 1]),       # [1,1,1,C]: a no-op
             helper.make_node("Reshape", ["t", "shape"], ["r"]),
             helper.make_node("Squeeze", ["g", "axes"], ["s"]),
             helper.make_node("Add", ["r", "s"], ["a"]),
             helper.make_node("Unsqueeze", ["a", "axes"], ["u"]),
             helper.make_node("Mul", ["x", "u"], ["y"])]        # broadcast [1,C,1,1] over [1,C,H,W]
    inits = {"shape": np.array([1, -1], np.int64), "axes": np.array([2, 3], np.int64)}
    path = save_model(tmp_path, nodes, [tensor_info("x", [1, 5, 4, 3])], [tensor_info("y", None)], inits)
    graph, _ = check_against_ort(path, {"x": rand(1, 5, 4, 3)})
    assert op_types(graph).count("mul") == 1


def test_nhwc_input_transposed_by_the_model(tmp_path):
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2]), conv_node("t", "w", "c", pads=[1] * 4),
             helper.make_node("Transpose", ["c"], ["y"], perm=[0, 2, 3, 1])]
    path = save_model(tmp_path, nodes, [tensor_info("x", [1, 6, 5, 3])], [tensor_info("y", None)],
                      {"w": rand(4, 3, 3, 3)})
    graph, _ = check_against_ort(path, {"x": rand(1, 6, 5, 3)})
    assert op_types(graph) == ["conv2d"]
    assert graph.input_perm == {} and graph.output_perm == {} and graph.layout == "NHWC"


def test_elementwise_broadcast_add_sub_div(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("Add", ["r", "k"], ["a"]),                 # per-channel constant [C,1,1]
             helper.make_node("Sub", ["a", "x2"], ["s"]),                # two activations
             helper.make_node("Div", ["s", "d"], ["y"])]
    inits = {"k": rand(3, 1, 1), "d": np.array([2.0], np.float32)}
    path = save_model(tmp_path, nodes, [tensor_info("x", [1, 3, 4, 5]), tensor_info("x2", [1, 3, 4, 5])],
                      [tensor_info("y", None)], inits)
    graph, params = check_against_ort(path, {"x": rand(1, 3, 4, 5), "x2": rand(1, 3, 4, 5)})
    assert op_types(graph) == ["relu", "add", "sub", "mul"]
    assert params[graph.ops[1].inputs[1]].shape == (1, 1, 1, 3)        # the constant in NHWC


def test_pad_and_reduce_mean(tmp_path):
    nodes = [helper.make_node("Pad", ["x", "pads", "v"], ["p"], mode="constant"),
             helper.make_node("ReduceMean", ["p"], ["m"], axes=[2, 3], keepdims=1),
             helper.make_node("ReduceMean", ["p"], ["n"], axes=[2, 3], keepdims=0),
             helper.make_node("Flatten", ["m"], ["mf"]),
             helper.make_node("Add", ["mf", "n"], ["y"])]
    inits = {"pads": np.array([0, 0, 1, 2, 0, 0, 3, 0], np.int64), "v": np.array(0.5, np.float32)}
    path = save_model(tmp_path, nodes, [tensor_info("x", [1, 3, 4, 5])], [tensor_info("y", None)], inits)
    graph, _ = check_against_ort(path, {"x": rand(1, 3, 4, 5)})
    pad = graph.ops[0]
    assert pad.type == "pad" and pad.attrs["pads"] == [[0, 0], [1, 3], [2, 0], [0, 0]]
    assert [op.attrs["axes"] for op in graph.ops if op.type == "mean"] == [[1, 2], [1, 2]]


def test_standalone_batchnorm_and_dropout(tmp_path):
    c = 4
    nodes = [helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[2, 2]),
             helper.make_node("BatchNormalization", ["p", "gamma", "beta", "mean", "var"], ["b"]),
             helper.make_node("Dropout", ["b"], ["y"])]
    inits = {"gamma": rand(c), "beta": rand(c), "mean": rand(c), "var": np.abs(rand(c)) + 0.5}
    path = save_model(tmp_path, nodes, [tensor_info("x", [1, c, 5, 5])], [tensor_info("y", None)], inits)
    graph, _ = check_against_ort(path, {"x": rand(1, c, 5, 5)}, rtol=1e-5)
    assert op_types(graph) == ["max_pool2d", "mul", "add"]


def test_dynamic_batch_becomes_one(tmp_path):
    nodes = [conv_node("x", "w", "c"), helper.make_node("Flatten", ["c"], ["f"]),
             helper.make_node("Gemm", ["f", "fw"], ["y"], transB=1)]
    path = save_model(tmp_path, nodes, [tensor_info("x", ["N", 2, 3, 3])], [tensor_info("y", ["N", 4])],
                      {"w": rand(3, 2, 1, 1), "fw": rand(4, 27)})
    graph, params = check_against_ort(path, {"x": rand(1, 2, 3, 3)})
    assert graph.tensors[graph.inputs[0]].shape == [1, 3, 3, 2]
    x = rand(5, 2, 3, 3)    # the reference runs any batch
    out = reference.run(graph, params, {graph.inputs[0]: x.transpose(0, 2, 3, 1)})[graph.outputs[0]]
    np.testing.assert_allclose(out, run_ort(path, {"x": x})[0], rtol=1e-5, atol=1e-5)


def test_hostile_names_are_sanitized(tmp_path):
    bad = "x*/ int main(){}\n/*"
    nodes = [helper.make_node("Relu", [bad], ["1 out put"], name="node */ evil")]
    path = save_model(tmp_path, nodes, [tensor_info(bad, [1, 4])], [tensor_info("1 out put", None)])
    graph, params = import_onnx(str(path))
    for name in list(graph.tensors) + [op.name for op in graph.ops]:
        assert ir.c_identifier(name) == name
    assert "*/" not in graph.ops[0].label and "evil" in graph.ops[0].label
    assert graph.tensors[graph.inputs[0]].label == bad


# ---- QDQ int8 -----------------------------------------------------------------------------------------------------
def qdq_pair(x: str, out: str, scale: str, zp: str) -> list[onnx.NodeProto]:
    return [helper.make_node("QuantizeLinear", [x, scale, zp], [out + "_q"]),
            helper.make_node("DequantizeLinear", [out + "_q", scale, zp], [out])]


def quantize_per_channel(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scale = (np.abs(w).reshape(len(w), -1).max(axis=1) / 127).astype(np.float32)
    q = np.clip(np.round(w / scale.reshape(-1, *[1] * (w.ndim - 1))), -127, 127).astype(np.int8)
    return q, scale


def dequantized(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return (q.astype(np.float32) * scale.reshape(-1, *[1] * (q.ndim - 1))).astype(np.float32)


def test_qdq_int8_conv_relu_depthwise(tmp_path):
    c_in, c_mid, hw = 3, 4, [6, 7]
    s_in, zp_in = np.float32(0.02), np.int8(3)
    w1, w1_scale = quantize_per_channel(rand(c_mid, c_in, 3, 3))
    w2, w2_scale = quantize_per_channel(rand(c_mid, 1, 3, 3))
    b1 = np.round(rand(c_mid) * 0.5 / (s_in * w1_scale)).astype(np.int32)
    b2_real = rand(c_mid) * 0.1
    # inputs on the input quantization grid, so that onnxruntime's input rounding is exact
    x = (s_in * (rng.integers(-128, 128, size=(4, c_in, *hw)) - zp_in)).astype(np.float32)

    # activation scales from the float model's ranges (run in onnxruntime on the same inputs)
    float_nodes = [conv_node("x", "w1", "c1", "b1", pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c1"], ["r1"]),
                   conv_node("r1", "w2", "c2", "b2", group=c_mid, pads=[1, 1, 1, 1])]
    float_path = save_model(tmp_path, float_nodes, [tensor_info("x", [None, c_in, *hw])],
                            [tensor_info("r1", None), tensor_info("c2", None)],
                            {"w1": dequantized(w1, w1_scale), "b1": (b1 * s_in * w1_scale).astype(np.float32),
                             "w2": dequantized(w2, w2_scale), "b2": b2_real}, name="float.onnx")
    r1, c2 = run_ort(float_path, {"x": x})
    s1 = np.float32(r1.max() * 1.1 / 255)                # zero point -128: [0, 255 * s1]
    s2 = np.float32(np.abs(c2).max() * 1.2 / 122)        # zero point 5: [-133 * s2, 122 * s2]
    b2 = np.round(b2_real / (s1 * w2_scale)).astype(np.int32)

    inits = {
        "s_in": s_in, "zp_in": zp_in, "s1": s1, "zp1": np.int8(-128), "s2": s2, "zp2": np.int8(5),
        "w1_q": w1, "w1_s": w1_scale, "w1_zp": np.zeros(c_mid, np.int8),
        "b1_q": b1, "b1_s": (s_in * w1_scale).astype(np.float32), "b1_zp": np.zeros(c_mid, np.int32),
        "w2_q": w2, "w2_s": w2_scale, "w2_zp": np.zeros(c_mid, np.int8),
        "b2_q": b2, "b2_s": (s1 * w2_scale).astype(np.float32), "b2_zp": np.zeros(c_mid, np.int32),
    }
    nodes = qdq_pair("x", "xd", "s_in", "zp_in")
    for name in ("w1", "b1", "w2", "b2"):
        nodes.append(helper.make_node("DequantizeLinear", [f"{name}_q", f"{name}_s", f"{name}_zp"], [name], axis=0))
    nodes += [conv_node("xd", "w1", "c1", "b1", pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c1"], ["r1"])]
    nodes += qdq_pair("r1", "r1d", "s1", "zp1")
    nodes += [conv_node("r1d", "w2", "c2", "b2", group=c_mid, pads=[1, 1, 1, 1])]
    nodes += qdq_pair("c2", "y", "s2", "zp2")
    path = save_model(tmp_path, nodes, [tensor_info("x", [None, c_in, *hw])], [tensor_info("y", None)], inits)

    graph, params = import_onnx(str(path))
    assert graph.quantized == "int8"
    assert op_types(graph) == ["quantize", "conv2d", "depthwise_conv2d", "dequantize"]
    conv, dw = graph.ops[1], graph.ops[2]
    assert conv.attrs["activation"] == "relu"     # Relu read the conv's unquantized output
    w1_ir, w2_ir = graph.tensors[conv.inputs[1]], graph.tensors[dw.inputs[1]]
    assert w1_ir.dtype == "int8" and w1_ir.quant.axis == 0 and w2_ir.quant.axis == 3
    np.testing.assert_array_equal(params[w1_ir.name], w1.transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(params[w2_ir.name], w2.transpose(1, 2, 3, 0))
    np.testing.assert_array_equal(w1_ir.quant.scale, w1_scale)
    assert graph.tensors[conv.inputs[2]].dtype == "int32"
    x_q = graph.tensors[conv.inputs[0]]
    assert x_q.dtype == "int8" and x_q.quant.scale == [float(s_in)] and x_q.quant.zero_point == [3]
    assert graph.tensors[conv.outputs[0]].quant.zero_point == [-128]
    assert graph.tensors[graph.inputs[0]].dtype == "float32"
    assert graph.tensors[graph.outputs[0]].dtype == "float32"

    (expected,) = run_ort(path, {"x": x})
    got = reference.run(graph, params, {graph.inputs[0]: x.transpose(0, 2, 3, 1)})[graph.outputs[0]]
    got = got.transpose(graph.output_perm[graph.outputs[0]])
    # onnxruntime runs it quantized (the intermediate rounding to s1 spreads through the 3x3 depthwise kernel);
    # the reference runs the dequantized model in float
    atol = 0.5 * float(s2) + 0.5 * float(s1) * float(np.abs(dequantized(w2, w2_scale)).sum(axis=(1, 2, 3)).max())
    np.testing.assert_allclose(got, expected, rtol=0, atol=atol)
    assert atol < 3 * float(s2) and np.abs(expected).max() > 50 * float(s2)     # the comparison is not vacuous


# ---- bad input -----------------------------------------------------------------------------------------------------
def expect_error(path: Path, *fragments: str) -> str:
    start = time.monotonic()
    with pytest.raises(NnsconsError) as info:
        import_onnx(str(path))
    assert time.monotonic() - start < 5.0
    message = str(info.value)
    assert "\n" not in message and path.name in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_truncated_file(tmp_path):
    path = tmp_path / "truncated.onnx"
    data = (MNIST8 / "model.onnx").read_bytes()
    path.write_bytes(data[: len(data) // 2])
    expect_error(path, "not an ONNX model")


@pytest.mark.parametrize("size", [0, 1, 100, 5000])
def test_random_bytes(tmp_path, size):
    path = tmp_path / f"random{size}.onnx"
    path.write_bytes(np.random.default_rng(size).bytes(size))
    expect_error(path, "not an ONNX model")


def test_unsupported_op_is_named_with_position(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("Erf", ["r"], ["y"], name="my */ erf")]
    path = save_model(tmp_path, nodes, [tensor_info("x", [1, 4])], [tensor_info("y", None)], name="erf.onnx")
    message = expect_error(path, "unsupported op Erf", "node #1", "my * / erf", "supported ops:", "Conv")
    assert "*/" not in message


def test_custom_domain_op(tmp_path):
    node = helper.make_node("FusedConv", ["x"], ["y"], domain="com.microsoft")
    path = save_model(tmp_path, [node], [tensor_info("x", [1, 4])], [tensor_info("y", None)], check=False)
    expect_error(path, "unsupported op com.microsoft.FusedConv", "node #0")


def test_dynamic_spatial_dimension(tmp_path):
    path = save_model(tmp_path, [helper.make_node("Relu", ["x"], ["y"])], [tensor_info("x", [1, 3, "height", 4])],
                      [tensor_info("y", None)])
    expect_error(path, "dynamic shape", "height")


def test_hybrid_model(tmp_path):
    nodes = [helper.make_node("DequantizeLinear", ["wq", "ws"], ["w"]), conv_node("x", "w", "y")]
    inits = {"wq": rng.integers(-127, 127, (2, 3, 1, 1)).astype(np.int8), "ws": np.float32(0.1)}
    path = save_model(tmp_path, nodes, [tensor_info("x", [1, 3, 4, 4])], [tensor_info("y", None)], inits)
    expect_error(path, "hybrid model (int8 weights, float activations) is not supported")


def test_shape_inference_failure(tmp_path):
    node = helper.make_node("Add", ["a", "b"], ["y"])
    path = save_model(tmp_path, [node], [tensor_info("a", [1, 3, 4, 4]), tensor_info("b", [1, 3, 5, 5])],
                      [tensor_info("y", None)], check=False)
    expect_error(path, "shape inference failed")


def test_grouped_conv(tmp_path):
    node = conv_node("x", "w", "y", group=2)
    path = save_model(tmp_path, [node], [tensor_info("x", [1, 4, 5, 5])], [tensor_info("y", None)],
                      {"w": rand(6, 2, 3, 3)})
    expect_error(path, "group=2", "node #0")


def test_gemm_trans_a(tmp_path):
    node = helper.make_node("Gemm", ["x", "w"], ["y"], transA=1)
    path = save_model(tmp_path, [node], [tensor_info("x", [8, 1])], [tensor_info("y", None)], {"w": rand(8, 3)})
    expect_error(path, "transA=1")


def test_average_pool_count_include_pad(tmp_path):
    node = helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1)
    path = save_model(tmp_path, [node], [tensor_info("x", [1, 2, 6, 6])], [tensor_info("y", None)])
    expect_error(path, "count_include_pad=1")


def test_pool_ceil_mode_that_changes_the_size(tmp_path):
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)
    path = save_model(tmp_path, [node], [tensor_info("x", [1, 2, 7, 7])], [tensor_info("y", None)])
    expect_error(path, "ceil_mode=1")


@pytest.mark.parametrize("consumer", ["Softmax", "Add"])
def test_nchw_flatten_into_non_fc(tmp_path, consumer):
    nodes = [helper.make_node("Flatten", ["x"], ["f"]),
             helper.make_node(consumer, ["f"] + (["k"] if consumer == "Add" else []), ["y"])]
    inits = {"k": rand(1, 24)} if consumer == "Add" else {}
    path = save_model(tmp_path, nodes, [tensor_info("x", [1, 2, 3, 4])], [tensor_info("y", None)], inits)
    expect_error(path, "layout change not supported", consumer)


def test_nchw_flatten_as_graph_output(tmp_path):
    path = save_model(tmp_path, [helper.make_node("Flatten", ["x"], ["y"])], [tensor_info("x", [1, 2, 3, 4])],
                      [tensor_info("y", None)])
    expect_error(path, "layout change not supported")


def test_nchw_flatten_with_single_channel_is_fine(tmp_path):
    """With C == 1 (or H*W == 1) the two flatten orders coincide: a plain reshape, no error."""
    nodes = [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("Softmax", ["f"], ["y"])]
    path = save_model(tmp_path, nodes, [tensor_info("x", [1, 1, 3, 4])], [tensor_info("y", None)])
    graph, _ = check_against_ort(path, {"x": rand(1, 1, 3, 4)})
    assert op_types(graph) == ["reshape", "softmax"]


def test_initializer_with_external_data(tmp_path):
    path = save_model(tmp_path, [conv_node("x", "w", "y")], [tensor_info("x", [1, 3, 4, 4])],
                      [tensor_info("y", None)], {"w": rand(2, 3, 1, 1)})
    model = onnx.load(str(path))
    model.graph.initializer[0].data_location = TensorProto.EXTERNAL
    model.graph.initializer[0].external_data.add(key="location", value="weights.bin")
    path.write_bytes(model.SerializeToString())
    expect_error(path, "external data")


def test_qdq_uint8_conv_pool_flatten_gemm(tmp_path):
    """uint8 activations (mapped to int8, zero point - 128), a flatten of NCHW data between quantized layers,
    and per-channel int8 fully-connected weights reordered by the seed guide's rule."""
    w, w_scale = quantize_per_channel(rand(3, 2, 3, 3))
    fw, fw_scale = quantize_per_channel(rand(5, 3 * 2 * 3, scale=0.3))       # Gemm B with transB=1: [out, in]
    s_x, zp = np.float32(0.02), np.uint8(128)
    x = (s_x * (rng.integers(0, 256, size=(4, 2, 4, 6)) - 128)).astype(np.float32)   # on the input grid
    float_nodes = [conv_node("x", "w", "c", pads=[1, 1, 1, 1]),
                   helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
                   helper.make_node("Flatten", ["p"], ["f"]),
                   helper.make_node("Gemm", ["f", "fw"], ["g"], transB=1)]
    float_path = save_model(tmp_path, float_nodes, [tensor_info("x", [None, 2, 4, 6])],
                            [tensor_info("c", None), tensor_info("g", None)],
                            {"w": dequantized(w, w_scale), "fw": dequantized(fw, fw_scale)}, name="float.onnx")
    c, g = run_ort(float_path, {"x": x})
    s_c, s_g = (np.float32(np.abs(v).max() * 1.1 / 127) for v in (c, g))
    inits = {"s_x": s_x, "s_c": s_c, "s_g": s_g, "zp": zp, "w_q": w, "w_s": w_scale, "fw_q": fw, "fw_s": fw_scale}
    nodes = [helper.make_node("DequantizeLinear", ["w_q", "w_s"], ["w"], axis=0),
             helper.make_node("DequantizeLinear", ["fw_q", "fw_s"], ["fw"], axis=0)]
    nodes += qdq_pair("x", "xd", "s_x", "zp") + [conv_node("xd", "w", "c", pads=[1, 1, 1, 1])]
    nodes += qdq_pair("c", "cd", "s_c", "zp")
    nodes += [helper.make_node("MaxPool", ["cd"], ["p"], kernel_shape=[2, 2], strides=[2, 2])]
    nodes += qdq_pair("p", "pd", "s_c", "zp") + [helper.make_node("Flatten", ["pd"], ["f"])]
    nodes += qdq_pair("f", "fd", "s_c", "zp") + [helper.make_node("Gemm", ["fd", "fw"], ["g"], transB=1)]
    nodes += qdq_pair("g", "y", "s_g", "zp")
    path = save_model(tmp_path, nodes, [tensor_info("x", [None, 2, 4, 6])], [tensor_info("y", None)], inits)

    graph, params = import_onnx(str(path))
    assert graph.quantized == "int8"
    assert op_types(graph) == ["quantize", "conv2d", "max_pool2d", "reshape", "fully_connected", "dequantize"]
    for op in graph.ops[1:-1]:
        out = graph.tensors[op.outputs[0]]
        assert out.dtype == "int8" and out.quant.zero_point == [0]
    fc = graph.ops[4]
    np.testing.assert_array_equal(params[fc.inputs[1]], fw.reshape(5, 3, 2, 3).transpose(0, 2, 3, 1).reshape(5, -1))
    assert graph.tensors[fc.inputs[1]].quant.axis == 0

    (expected,) = run_ort(path, {"x": x})
    got = reference.run(graph, params, {graph.inputs[0]: x.transpose(0, 2, 3, 1)})[graph.outputs[0]]
    atol = 0.5 * float(s_g) + 0.5 * float(s_c) * float(np.abs(dequantized(fw, fw_scale)).sum(axis=1).max())
    np.testing.assert_allclose(got, expected, rtol=0, atol=atol)
    assert np.abs(expected).max() > 5 * atol


def test_qdq_explicit_relu_after_quantized_conv(tmp_path):
    """Conv -> Q -> DQ -> Relu -> Q -> DQ: the conv output is quantized first, so the Relu stays an op."""
    w, w_scale = quantize_per_channel(rand(2, 2, 1, 1))
    inits = {"s": np.float32(0.05), "zp": np.int8(0), "w_q": w, "w_s": w_scale}
    nodes = [helper.make_node("DequantizeLinear", ["w_q", "w_s"], ["w"], axis=0)]
    nodes += qdq_pair("x", "xd", "s", "zp") + [conv_node("xd", "w", "c")] + qdq_pair("c", "cd", "s", "zp")
    nodes += [helper.make_node("Relu", ["cd"], ["r"])] + qdq_pair("r", "y", "s", "zp")
    path = save_model(tmp_path, nodes, [tensor_info("x", [1, 2, 3, 3])], [tensor_info("y", None)], inits)
    graph, _ = import_onnx(str(path))
    assert op_types(graph) == ["quantize", "conv2d", "relu", "dequantize"]
    assert graph.ops[1].attrs["activation"] == "none"


def test_qdq_model_with_a_float_gap(tmp_path):
    """A Sigmoid whose output is not quantized again leaves a float tensor inside an int8 graph."""
    nodes = qdq_pair("x", "xd", "s", "zp") + [helper.make_node("Sigmoid", ["xd"], ["sg"]),
                                              helper.make_node("Relu", ["sg"], ["r"])]
    nodes += qdq_pair("r", "y", "s", "zp")
    path = save_model(tmp_path, nodes, [tensor_info("x", [1, 4])], [tensor_info("y", None)],
                      {"s": np.float32(0.05), "zp": np.int8(0)})
    expect_error(path, "is float in a quantized")


# ---- models quantized by onnxruntime's own QDQ quantizer -----------------------------------------------------------
def ort_quantize(src: Path, dst: Path, samples: np.ndarray, per_channel: bool, activations: str) -> None:
    import logging
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    input_name = onnx.load(str(src)).graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter([{input_name: samples[i:i + 1]} for i in range(len(samples))])

        def get_next(self):
            return next(self.feeds, None)

    logging.getLogger().setLevel(logging.ERROR)     # the quantizer's pre-processing advice
    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                    activation_type=QuantType.QInt8 if activations == "int8" else QuantType.QUInt8,
                    weight_type=QuantType.QInt8)


@pytest.mark.skipif(not DIGITS.exists(), reason="project model digits_cnn not built")
@pytest.mark.parametrize("per_channel,activations", [(True, "int8"), (False, "uint8")])
def test_onnxruntime_quantized_digits_cnn(tmp_path, per_channel, activations):
    path = tmp_path / "digits_qdq.onnx"
    ort_quantize(DIGITS, path, np.load(DIGITS.parent / "calib.npz")["x"][:64], per_channel, activations)
    graph, params = import_onnx(str(path))
    assert graph.quantized == "int8"
    assert op_types(graph) == ["quantize", "conv2d", "max_pool2d", "conv2d", "max_pool2d", "reshape",
                               "fully_connected", "fully_connected", "softmax", "dequantize"]
    # onnxruntime's quantizer drops the Relus (the output zero point clamps at 0); the importer says relu again
    assert [op.attrs["activation"] for op in graph.ops if "activation" in op.attrs and op.type != "max_pool2d"] == \
        ["relu", "relu", "relu", "none"]
    x = np.load(DIGITS.parent / "test.npz")["x"][:32]
    name = graph.tensors[graph.inputs[0]].label
    expected = np.concatenate([run_ort(path, {name: x[i:i + 1]})[0] for i in range(len(x))])
    got = reference.run(graph, params, {graph.inputs[0]: x.transpose(0, 2, 3, 1)})[graph.outputs[0]]
    out_scale = graph.tensors[graph.ops[-1].inputs[0]].quant.scale[0]
    np.testing.assert_allclose(got, expected, rtol=0, atol=3 * out_scale)
    assert (got.argmax(axis=1) == expected.argmax(axis=1)).mean() >= 0.95


def test_onnxruntime_quantized_mnist8(tmp_path):
    """An IR version 3 model whose quantized weights the quantizer computes with QuantizeLinear of a folded
    Reshape; the bias Adds stay separate (quantized) adds."""
    path = tmp_path / "mnist8_qdq.onnx"
    xs = np.concatenate([read_pb(MNIST8 / f"test_data_set_{k}" / "input_0.pb") for k in range(3)])
    ort_quantize(MNIST8 / "model.onnx", path, xs, per_channel=False, activations="uint8")
    graph, params = import_onnx(str(path))
    assert graph.quantized == "int8"
    assert op_types(graph) == ["quantize", "conv2d", "add", "max_pool2d", "conv2d", "add", "max_pool2d", "reshape",
                               "fully_connected", "add", "dequantize"]
    # the quantizer treated the reshaped weights as an activation: uint8, stored as the model has them
    fc_weights = graph.tensors[graph.ops[-3].inputs[1]]
    assert fc_weights.is_const and fc_weights.dtype == "uint8" and fc_weights.quant is not None
    expected = np.concatenate([run_ort(path, {"Input3": xs[i:i + 1]})[0] for i in range(len(xs))])
    got = reference.run(graph, params, {graph.inputs[0]: xs.transpose(0, 2, 3, 1)})[graph.outputs[0]]
    out_scale = graph.tensors[graph.ops[-1].inputs[0]].quant.scale[0]
    # coarse 8-bit activations over a 5x5x8 conv and a 256-input layer: a few output steps apart
    np.testing.assert_allclose(got, expected, rtol=0, atol=10 * out_scale)
    np.testing.assert_array_equal(got.argmax(axis=1), expected.argmax(axis=1))
