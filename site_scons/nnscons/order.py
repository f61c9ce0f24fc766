"""Operator order (part of the codegen stage, beside the planner): the execution order of a branching graph that
keeps the fewest bytes alive at once, not just the model's order.

Every topological order of the ops computes the same values (each op reads only what its producers wrote), so the
order is free where a graph branches (residual blocks, inception-style concatenations): running a branch that
shrinks its input before one that keeps a large tensor alive lowers the peak. While an op runs, the bytes alive
depend only on the set of ops already run (tensors made and not yet read by all their readers, graph inputs until
their last reader, graph outputs to the end, a reshape's output sharing its input's bytes) and the op's outputs.
:func:`memory_order` finds, by dynamic programming over those sets (each closed under "an op's producers have
run"), the order whose largest such sum is the least, as long as the graph has at most :data:`MAX_STATES` of them
(a few ops per branch); the planner then plans it with its overlaps and scratch, and the codegen stage keeps it only
where the arena is smaller than in the model's order (option ``order=memory``, the default; ``order=model`` keeps
the model's order).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Optional

from . import ir

MAX_STATES = 50000          # sets of ops already run the search visits before it gives up (the model's order stays)
ALIAS_OPS = ("reshape",)    # ops whose output is their input's bytes (as the planner places them)


def memory_order(graph: ir.Graph, sizes: dict[str, int]) -> Optional[list[int]]:
    """Op indices in the order with the least peak of live bytes (``sizes``: bytes per activation tensor); None
    when the search would visit more than :data:`MAX_STATES` sets. Ties keep the lower op index first."""
    n = len(graph.ops)
    root = _roots(graph)
    readers: dict[str, int] = {}           # root -> mask of the ops reading its group
    made_by: dict[str, int] = {}           # root -> mask of the op making it (0 for graph inputs)
    needs = [0] * n                        # op -> mask of the producers of its inputs
    for index, op in enumerate(graph.ops):
        for t in op.outputs:
            made_by.setdefault(root[t], 1 << index)
        for t in op.inputs:
            if not graph.tensors[t].is_const:
                readers[root[t]] = readers.get(root[t], 0) | (1 << index)
    for index, op in enumerate(graph.ops):
        for t in op.inputs:
            if not graph.tensors[t].is_const:
                needs[index] |= made_by.get(root[t], 0) & ~(1 << index)
    outputs = {root[t] for t in graph.outputs}
    groups = sorted(set(readers) | set(made_by) | outputs | {root[t] for t in graph.inputs})
    size = {r: sizes.get(r, 0) for r in groups}

    def alive(mask: int) -> int:
        total = 0
        for r in groups:
            made = made_by.get(r, 0)
            if (made & mask) == made and (r in outputs or readers.get(r, 0) & ~mask):
                total += size[r]
        return total

    best: dict[int, tuple[int, int, int]] = {0: (0, -1, -1)}      # mask -> (peak, last op, previous mask)
    level = [0]
    for _ in range(n):
        following: dict[int, tuple[int, int, int]] = {}
        for mask in level:
            peak = best[mask][0]
            live = alive(mask)
            for index in range(n):
                if mask >> index & 1 or needs[index] & ~mask:
                    continue
                new = sum(size[r] for r in {root[t] for t in graph.ops[index].outputs}
                          if made_by.get(r) == 1 << index)
                candidate = (max(peak, live + new), index, mask)
                after = mask | (1 << index)
                if after not in following or candidate[0] < following[after][0]:
                    following[after] = candidate
        best.update(following)
        if len(best) > MAX_STATES:
            return None
        level = sorted(following)
    order = []
    mask = (1 << n) - 1
    while mask:
        _, index, mask = best[mask]
        order.append(index)
    return order[::-1]


def _roots(graph: ir.Graph) -> dict[str, str]:
    """Tensor -> the tensor whose bytes it is (itself, or a reshape's input's root)."""
    root = {t: t for t in graph.tensors}
    for op in graph.ops:
        if op.type in ALIAS_OPS and op.inputs:
            root[op.outputs[0]] = root[op.inputs[0]]
    return root


def reordered(graph: ir.Graph, order: list[int]) -> ir.Graph:
    """The graph with its ops in ``order`` (a permutation of their indices)."""
    return replace(graph, ops=[graph.ops[i] for i in order])
