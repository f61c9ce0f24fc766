"""The arena planner: buffers that are live at the same time never share bytes, reshapes alias, offsets align."""
from __future__ import annotations

import random

import numpy as np
import pytest

from conftest import SHARED
from nnscons import ir, kernels, planner
from nnscons import quantize as qz
from nnscons.errors import NnsconsError
from nnscons.importers import import_model

TFLM_KWS_ARENA = 24272  # TFLite Micro's arena for the same model (models/README.md)


def act(name: str, shape: list[int], dtype: str = "int8") -> ir.Tensor:
    return ir.Tensor(name, shape, dtype)


def random_graph(rng: random.Random) -> ir.Graph:
    """A random DAG of activations: each op reads one or two earlier tensors (skip connections), some ops are
    reshapes (aliases), a few tensors are int16; one or two graph inputs, outputs among the later tensors."""
    tensors: dict[str, ir.Tensor] = {}
    inputs = [f"in{i}" for i in range(rng.randint(1, 2))]
    for name in inputs:
        tensors[name] = act(name, [1, rng.randint(1, 40)], rng.choice(["int8", "int16"]))
    available = list(inputs)
    ops = []
    for i in range(rng.randint(1, 25)):
        out = f"t{i}"
        if rng.random() < 0.25:
            source = rng.choice(available)
            tensors[out] = act(out, [1, tensors[source].size], tensors[source].dtype)
            ops.append(ir.Op(f"reshape_{i}", "reshape", [source], [out], {"shape": [1, tensors[source].size]}))
        else:
            reads = rng.sample(available, k=min(len(available), rng.randint(1, 2)))
            tensors[out] = act(out, [1, rng.randint(1, 300)], rng.choice(["int8", "int8", "int16"]))
            ops.append(ir.Op(f"op_{i}", "add" if len(reads) == 2 else "relu", reads, [out]))
        available.append(out)
    produced = [o for op in ops for o in op.outputs]
    outputs = sorted(set(rng.sample(produced, k=min(len(produced), rng.randint(1, 2)))), key=produced.index)
    return ir.Graph(tensors, ops, inputs, outputs)


def lifetimes(graph: ir.Graph) -> dict[str, tuple[int, int]]:
    """Each tensor's live op interval, computed independently of the planner."""
    last = len(graph.ops) - 1
    life = {name: (0, 0) for name in graph.inputs}
    for i, op in enumerate(graph.ops):
        for name in op.outputs:
            life[name] = (i, i)
        for name in op.inputs:
            if graph.tensors[name].is_const:
                continue
            first, _ = life[name]
            life[name] = (first, max(life[name][1], i))
    for name in graph.outputs:
        life[name] = (life[name][0], last)
    return life


def check_plan(graph: ir.Graph, plan: planner.Plan) -> None:
    life = lifetimes(graph)
    for name, (first, last) in life.items():
        buffer = plan.by_tensor[name]
        assert buffer.first <= first and last <= buffer.last, name          # the buffer covers the tensor's life
        assert buffer.size >= graph.tensors[name].size * np.dtype(graph.tensors[name].dtype).itemsize
        assert buffer.offset % planner.ALIGNMENT == 0
        assert buffer.offset + buffer.size <= plan.arena_size
    # tensors live at the same op never share a byte unless they are one buffer (an alias)
    names = sorted(life)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            ba, bb = plan.by_tensor[a], plan.by_tensor[b]
            if ba is bb:
                continue
            (fa, la), (fb, lb) = life[a], life[b]
            if fa <= lb and fb <= la:
                assert not ba.overlaps_in_memory(bb), (a, b, ba, bb)
    assert plan.arena_size % planner.ALIGNMENT == 0


@pytest.mark.parametrize("seed", range(300))
def test_random_graphs_never_share_live_bytes(seed: int) -> None:
    graph = random_graph(random.Random(seed))
    check_plan(graph, planner.plan(graph))


def test_reuse_makes_the_arena_smaller_than_the_sum() -> None:
    """A chain a -> b -> c -> d: a and c can share bytes (never live together), so the arena is two buffers."""
    tensors = {n: act(n, [1, 100]) for n in "abcd"}
    ops = [ir.Op(f"op{i}", "relu", [x], [y]) for i, (x, y) in enumerate(zip("abc", "bcd"))]
    plan = planner.plan(ir.Graph(tensors, ops, ["a"], ["d"]))
    assert plan.arena_size == 2 * planner.align(100) == 224
    assert plan.offset("a") == plan.offset("c") and plan.offset("b") == plan.offset("d")
    assert plan.offset("a") != plan.offset("b")


def test_reshape_aliases_its_input() -> None:
    tensors = {"x": act("x", [1, 2, 2, 4]), "r": act("r", [1, 16]), "y": act("y", [1, 16]),
               "z": act("z", [1, 16])}
    ops = [ir.Op("flat", "reshape", ["x"], ["r"], {"shape": [1, 16]}),
           ir.Op("a", "relu", ["r"], ["y"]), ir.Op("b", "add", ["y", "x"], ["z"])]
    plan = planner.plan(ir.Graph(tensors, ops, ["x"], ["z"]))
    assert plan.by_tensor["x"] is plan.by_tensor["r"]
    buffer = plan.by_tensor["x"]
    assert buffer.tensors == ["x", "r"] and (buffer.first, buffer.last) == (0, 2)   # union of the lifetimes
    assert len(plan.buffers) == 3
    check_plan(ir.Graph(tensors, ops, ["x"], ["z"]), plan)


def test_inputs_live_from_the_start_and_outputs_to_the_end() -> None:
    """An input first read by the last op still may not share bytes with earlier outputs; an output produced
    early stays until the end."""
    tensors = {n: act(n, [1, 64]) for n in ("x", "late", "a", "b", "y")}
    ops = [ir.Op("op0", "relu", ["x"], ["a"]), ir.Op("op1", "relu", ["a"], ["b"]),
           ir.Op("op2", "add", ["b", "late"], ["y"])]
    graph = ir.Graph(tensors, ops, ["x", "late"], ["a", "y"])
    plan = planner.plan(graph)
    assert (plan.by_tensor["late"].first, plan.by_tensor["late"].last) == (0, 2)
    assert (plan.by_tensor["a"].first, plan.by_tensor["a"].last) == (0, 2)
    check_plan(graph, plan)
    assert len({plan.offset(n) for n in ("x", "late", "a", "b", "y")}) >= 4


def test_sizes_follow_the_quantized_dtype() -> None:
    """A float model's tensors are stored as the qtable says (int16 here: 2 bytes each)."""
    tensors = {"x": ir.Tensor("x", [1, 10], "float32"), "y": ir.Tensor("y", [1, 10], "float32")}
    graph = ir.Graph(tensors, [ir.Op("op", "relu", ["x"], ["y"])], ["x"], ["y"])
    qtable = {"tensors": {"x": {"dtype": "int16"}, "y": {"dtype": "int16"}}}
    assert [b.size for b in planner.plan(graph, qtable).buffers] == [20, 20]
    assert [b.size for b in planner.plan(graph).buffers] == [40, 40]


def test_plan_json_is_canonical_and_complete() -> None:
    graph = random_graph(random.Random(7))
    plan = planner.plan(graph)
    d = plan.to_json()
    assert d["activation_arena_size"] == plan.arena_size and d["alignment"] == 16
    assert sorted(t for b in d["buffers"] for t in b["tensors"]) == sorted(plan.by_tensor)
    assert planner.plan(graph).to_json() == d                            # deterministic


def test_reading_an_unwritten_tensor_is_an_error() -> None:
    tensors = {"x": act("x", [1, 4]), "y": act("y", [1, 4]), "ghost": act("ghost", [1, 4])}
    graph = ir.Graph(tensors, [ir.Op("op", "add", ["x", "ghost"], ["y"])], ["x"], ["y"])
    with pytest.raises(NnsconsError, match="ghost"):
        planner.plan(graph)


def test_kws_arena_is_smaller_than_tflite_micros() -> None:
    graph, params = import_model(SHARED / "models" / "kws_dscnn_int8" / "model.tflite")
    qtable = qz.build_qtable(graph, params, None, "model").tables
    plan = planner.plan(graph, qtable)
    check_plan(graph, plan)
    # the two largest activations (25x5x64 int8) are live together at every layer but the first and last
    assert plan.arena_size == 2 * 25 * 5 * 64
    for features in kernels.FEATURE_SETS:
        scratch = max(kernels.layer_kernel(graph, op, "int8").scratch[features] for op in graph.ops)
        assert plan.arena_size + scratch < TFLM_KWS_ARENA, features
