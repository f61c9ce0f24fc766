"""Step 2 of the ONNX import, the shape half: make the model static and let ONNX shape inference size every tensor.

A dynamic batch dimension becomes 1 (any other dynamic dimension is an error) and ONNX shape inference gives every
intermediate shape. :func:`~.convert.prepare` alternates inference with constant folding (:mod:`.folding`), rebuilding
the model from what is left (:func:`rebuild`) until nothing more folds; the result is a :class:`Prepared`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

from ... import ir
from ...errors import NnsconsError
from .decode import Node, first_line


@dataclass
class Prepared:
    """The static model the converter walks: the nodes left after folding and everything known about tensors."""

    nodes: list[Node]
    consts: dict[str, np.ndarray]
    shapes: dict[str, list[int]]       # static ONNX shapes of activations
    dynamic: dict[str, str]            # tensors whose inferred shape is not static -> description
    elem_types: dict[str, int]
    inputs: list[str]                  # real graph inputs (initializers excluded)
    outputs: list[str]
    opset: int


def static_model(path: str, model: onnx.ModelProto, inputs: set[str]) -> onnx.ModelProto:
    """A copy of the model whose inputs have static shapes (a dynamic batch dimension becomes 1) and whose
    stale intermediate and output shapes are dropped, so shape inference recomputes them from the inputs."""
    static = onnx.ModelProto()
    static.CopyFrom(model)
    # From IR version 4 on initializers need not be graph inputs; older models edited by tools (quantizers) often
    # have initializers that are not, which type checking then cannot see
    static.ir_version = max(static.ir_version, 4)
    for vi in static.graph.input:
        if vi.name not in inputs:
            continue
        name = ir.c_comment(vi.name)
        if not vi.type.HasField("tensor_type"):
            raise NnsconsError(path, f"input '{name}' is not a tensor")
        if not vi.type.tensor_type.HasField("shape"):
            raise NnsconsError(path, f"dynamic shape: input '{name}' has no shape; give the model static input "
                                     "shapes")
        for k, dim in enumerate(vi.type.tensor_type.shape.dim):
            if dim.HasField("dim_value") and dim.dim_value > 0:
                continue
            if k == 0:
                dim.Clear()
                dim.dim_value = 1
                continue
            what = f"'{ir.c_comment(dim.dim_param)}'" if dim.HasField("dim_param") else "unknown"
            raise NnsconsError(path, f"dynamic shape: input '{name}' dimension {k} is {what}; only the batch "
                                     "dimension (0) may be dynamic")
    del static.graph.value_info[:]
    for vi in static.graph.output:
        if vi.type.HasField("tensor_type"):
            vi.type.tensor_type.ClearField("shape")
    return static


def infer_shapes(path: str, model: onnx.ModelProto) -> tuple[dict[str, list[int]], dict[str, str], dict[str, int]]:
    """(static shapes, descriptions of dynamic shapes, element types) of every tensor ONNX shape inference sizes."""
    try:
        inferred = shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except Exception as e:
        raise NnsconsError(path, f"ONNX shape inference failed: {first_line(e)}") from None
    shapes: dict[str, list[int]] = {}
    dynamic: dict[str, str] = {}
    elem_types: dict[str, int] = {}
    g = inferred.graph
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        if not vi.type.HasField("tensor_type"):
            continue
        tt = vi.type.tensor_type
        elem_types[vi.name] = tt.elem_type
        if not tt.HasField("shape"):
            continue
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim]
        if all(d >= 0 for d in dims):
            shapes[vi.name] = dims
        else:
            dynamic[vi.name] = "[" + ", ".join(ir.c_comment(d.dim_param) if d.HasField("dim_param") else
                                               (str(d.dim_value) if d.HasField("dim_value") else "?")
                                               for d in tt.shape.dim) + "]"
    return shapes, dynamic, elem_types


def rebuild(model: onnx.ModelProto, nodes: list[Node], consts: dict[str, np.ndarray],
            inputs: list[str]) -> onnx.ModelProto:
    """The static model with folded nodes removed and the constants they produced as initializers."""
    used = {name for node in nodes for name in node.inputs} | {vi.name for vi in model.graph.output}
    graph = helper.make_graph(
        [node.proto for node in nodes], model.graph.name,
        [vi for vi in model.graph.input if vi.name in inputs], list(model.graph.output),
        [numpy_helper.from_array(np.asarray(consts[n]), n) for n in sorted(used) if n in consts])
    rebuilt = helper.make_model(graph, opset_imports=list(model.opset_import))
    rebuilt.ir_version = model.ir_version
    return rebuilt
