"""Operator order (nnscons.order, option order): where a graph branches, the order that keeps the fewest bytes alive,
kept only where the arena shrinks; the generated code computes the same outputs in either order.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nnscons import codegen, ir, order, planner, ranges, stats
from nnscons.importers import import_model
from test_codegen import Network, cmsis_archive, qtable_for, write_sources  # noqa: F401


def two_branch_onnx(path: Path) -> None:
    """x [1, 4, 16, 16] -> two 3x3 convolutions to 32 channels, each max-pooled 4x4 to [1, 32, 4, 4], concatenated
    and classified: written in the order conv, conv, pool, pool (both large outputs alive at once)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(1)

    def weights(name: str, shape: tuple[int, ...]) -> Any:
        return numpy_helper.from_array(rng.normal(0, 0.3, shape).astype(np.float32), name)

    inits = [weights("wa", (32, 4, 3, 3)), weights("ba", (32,)), weights("wb", (32, 4, 3, 3)), weights("bb", (32,)),
             weights("wf", (5, 1024)), weights("bf", (5,))]
    nodes = [helper.make_node("Conv", ["x", "wa", "ba"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["x", "wb", "bb"], ["b"], pads=[1, 1, 1, 1]),
             helper.make_node("MaxPool", ["a"], ["pa"], kernel_shape=[4, 4], strides=[4, 4]),
             helper.make_node("MaxPool", ["b"], ["pb"], kernel_shape=[4, 4], strides=[4, 4]),
             helper.make_node("Concat", ["pa", "pb"], ["cat"], axis=1),
             helper.make_node("Flatten", ["cat"], ["f"]),
             helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "branches", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                [1, 4, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)


@pytest.fixture(scope="module")
def branches(tmp_path_factory: pytest.TempPathFactory) -> tuple[ir.Graph, dict[str, np.ndarray], dict, dict]:
    path = tmp_path_factory.mktemp("order") / "branches.onnx"
    two_branch_onnx(path)
    graph, params = import_model(path)
    rng = np.random.default_rng(3)
    calib = {graph.inputs[0]: rng.uniform(-1, 1, (16, 16, 16, 4)).astype(np.float32)}
    table = ranges.range_table(stats.compute_stats(graph, params, calib), "int8", "minmax")
    tables, qparams = qtable_for(graph, params, "int8", table)
    return graph, params, tables, qparams


def sizes(graph: ir.Graph, tables: dict) -> dict[str, int]:
    return {t: planner.tensor_bytes(graph, tables, t) for t in graph.activations()}


def test_memory_order_runs_each_branch_down_before_the_next(branches: tuple) -> None:
    graph, _, tables, _ = branches
    lowered = codegen.model.lower(graph, tables["tensors"]).graph
    types = [op.type for op in lowered.ops]
    conv_a, conv_b = [i for i, t in enumerate(types) if t == "conv2d"]
    pool_a, pool_b = [i for i, t in enumerate(types) if t == "max_pool2d"]
    found = order.memory_order(lowered, sizes(lowered, tables))
    assert found is not None and sorted(found) == list(range(len(lowered.ops)))
    assert found.index(pool_a) < found.index(conv_b) or found.index(pool_b) < found.index(conv_a)
    model_order = planner.plan(lowered, tables).arena_size
    memory = planner.plan(order.reordered(lowered, found), tables).arena_size
    assert memory <= model_order - 16 * 16 * 32 + 1024, (model_order, memory)   # one 8 KB conv output less


def test_a_chain_keeps_its_order_and_a_wide_graph_gives_up() -> None:
    tensors = {"x": ir.Tensor("x", [1, 8], "int8")}
    ops = []
    for k in range(4):
        tensors[f"y{k}"] = ir.Tensor(f"y{k}", [1, 8], "int8")
        ops.append(ir.Op(f"r{k}", "relu", [f"y{k - 1}" if k else "x"], [f"y{k}"]))
    chain = ir.Graph(tensors, ops, ["x"], ["y3"])
    assert order.memory_order(chain, {t: 8 for t in tensors}) == [0, 1, 2, 3]
    wide = {"x": ir.Tensor("x", [1, 8], "int8")}
    wide_ops = []
    for k in range(20):          # 2^20 sets of independent ops
        wide[f"y{k}"] = ir.Tensor(f"y{k}", [1, 8], "int8")
        wide_ops.append(ir.Op(f"r{k}", "relu", ["x"], [f"y{k}"]))
    graph = ir.Graph(wide, wide_ops, ["x"], [f"y{k}" for k in range(20)])
    assert order.memory_order(graph, {t: 8 for t in wide}) is None


def test_plan_json_is_in_the_order_chosen_and_the_example_models_keep_theirs(branches: tuple) -> None:
    graph, _, tables, qparams = branches
    plans = {by_memory: json.loads(codegen.generate("b", graph, tables, qparams, "s8", "h",
                                                    by_memory=by_memory)["plan.json"])
             for by_memory in (True, False)}
    assert plans[True]["activation_arena_size"] < plans[False]["activation_arena_size"]


@pytest.mark.slow
def test_either_order_computes_the_same_outputs(branches: tuple, tmp_path: Path,
                                                cmsis_archive: Path) -> None:  # noqa: F811
    graph, _, tables, qparams = branches
    nets = {}
    for by_memory in (True, False):
        files = codegen.generate("b", graph, tables, qparams, "s8", "h", by_memory=by_memory)
        nets[by_memory] = Network("b", write_sources(files, tmp_path / str(by_memory)), cmsis_archive)
    sources = {k: (tmp_path / str(k) / "b_model.c").read_text() for k in nets}
    assert sources[True] != sources[False]
    rng = np.random.default_rng(5)
    for _ in range(8):
        x = rng.integers(-128, 127, (1, 16, 16, 4), endpoint=True).astype(np.int8)
        np.testing.assert_array_equal(nets[True](x)[0], nets[False](x)[0])
