"""The original model in its own interpreter (part of :mod:`nnscons.check`): LiteRT for a ``.tflite``, onnxruntime
for an ``.onnx``. ``nnscons validate`` measures the C of a network nnscons quantized against these outputs, so the
proof does not rest on nnscons' own float reference alone.

Each test input runs as one inference of batch 1 (the models' stated batch), inputs as the test set stores them in
the model's own layout: float32, or the input's integer type (LiteRT quantizes a float input of a quantized model
with the input's scale and zero point). Outputs come back as real values (an integer output dequantized with its
own parameters) in the IR layout, by graph output name, ready for :func:`nnscons.check.float_report`.
"""
from __future__ import annotations

from importlib import metadata
from typing import Any, Callable

import numpy as np

from .. import data, ir
from ..errors import NnsconsError

Feed = list[np.ndarray]          # one array per model input, batch 1, in the model's own layout


def original_outputs(model_path: str, graph: ir.Graph, test: data.TestSet) -> tuple[str, dict[str, np.ndarray]]:
    """The interpreter's name and version, and its outputs ``[N, *shape]`` (IR layout) by graph output."""
    arrays = [test.raw[key] for key in data.input_keys(graph)]
    if graph.source == "onnx":
        name, run = _onnxruntime(model_path)
    else:
        name, run = _litert(model_path)
    per_sample = [run([x[i:i + 1] for x in arrays]) for i in range(test.samples)]
    outputs: dict[str, np.ndarray] = {}
    for k, out in enumerate(graph.outputs):
        values = np.concatenate([sample[k] for sample in per_sample]).astype(np.float32)
        perm = graph.output_perm.get(out)       # IR -> the model's layout; here the other way
        outputs[out] = np.ascontiguousarray(values.transpose(np.argsort(perm))) if perm else values
    return name, outputs


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def _onnxruntime(model_path: str) -> tuple[str, Callable[[Feed], list[np.ndarray]]]:
    try:
        import onnxruntime
    except ImportError:
        raise NnsconsError(model_path, "validating an ONNX model needs onnxruntime: pip install onnxruntime") \
            from None
    try:
        session = onnxruntime.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise NnsconsError(model_path, f"onnxruntime cannot load it: {ir.c_comment(str(e), 200)}") from None
    names = [i.name for i in session.get_inputs()]

    def run(feed: Feed) -> list[np.ndarray]:
        return [np.asarray(y) for y in session.run(None, {n: x.astype(np.float32) if x.dtype.kind == "f" else x
                                                            for n, x in zip(names, feed)})]
    return f"onnxruntime {_version('onnxruntime')}", run


def _litert(model_path: str) -> tuple[str, Callable[[Feed], list[np.ndarray]]]:
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:
        raise NnsconsError(model_path, "validating a TFLite model needs LiteRT: pip install ai-edge-litert") \
            from None
    try:   # the builtin kernels, without the XNNPACK delegate (which also prints a line on stderr)
        interpreter = Interpreter(model_path=model_path,
                                  experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        interpreter.allocate_tensors()
    except Exception as e:  # noqa: BLE001 - LiteRT raises RuntimeError/ValueError for a bad model
        raise NnsconsError(model_path, f"LiteRT cannot load it: {ir.c_comment(str(e), 200)}") from None
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()

    def run(feed: Feed) -> list[np.ndarray]:
        interpreter.reset_all_variables()       # each input from the initial state, as the check runs the C
        for detail, x in zip(inputs, feed):
            interpreter.set_tensor(detail["index"], _as_input(x, detail))
        interpreter.invoke()
        return [_real(interpreter.get_tensor(d["index"]), d) for d in outputs]
    return f"LiteRT {_version('ai-edge-litert')}", run


def _as_input(x: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """A test input in the type the interpreter's input takes (a real value quantized for an integer input)."""
    dtype = np.dtype(detail["dtype"])
    if x.dtype == dtype:
        return x
    if dtype.kind == "f":
        return x.astype(dtype)
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(x.astype(np.float64) / scale) + zero_point, info.min, info.max).astype(dtype)


def _real(y: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    scale, zero_point = detail["quantization"]
    if y.dtype.kind == "f" or not scale:
        return np.array(y, np.float32)
    return ((y.astype(np.float64) - zero_point) * scale).astype(np.float32)

