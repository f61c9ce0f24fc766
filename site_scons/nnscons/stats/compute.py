"""The calibration run (part of :mod:`nnscons.stats`): the reference interpreter over a calibration set, its
activations folded into :class:`~nnscons.stats.accumulate.Stats` chunk by chunk.

The interpreter is imported inside :func:`compute_stats` only, so that importing :mod:`nnscons.stats` (to read
``stats.npz``, as the ranges and quantize stages do) does not load it.
"""
from __future__ import annotations

import sys
from typing import Optional

import numpy as np

from .. import ir
from ..errors import NnsconsError
from .accumulate import Stats, TensorStats


def compute_stats(graph: ir.Graph, params: dict[str, np.ndarray], inputs: dict[str, np.ndarray],
                  chunk: int = 64, progress: Optional[bool] = None) -> Stats:
    """Run the reference interpreter over the calibration inputs (real values, IR layout, N samples in axis 0),
    ``chunk`` samples at a time, and gather the statistics of every activation tensor.

    ``progress``: True shows a progress bar on stderr, False never; None shows one for runs of more than a few
    chunks when stderr is a terminal."""
    from .. import reference  # imported here: reading stats.npz must not need the interpreter

    samples = _check_inputs(graph, inputs)
    if chunk < 1:
        raise NnsconsError(None, f"stats: chunk size must be positive, got {chunk}")
    result = Stats(tensors={name: TensorStats() for name in graph.activations()}, samples=0)
    with _progress_bar(samples, chunk, progress) as bar:
        for start in range(0, samples, chunk):
            batch = {name: x[start:start + chunk] for name, x in inputs.items()}
            for name, values in batch.items():
                result.add(name, values)
            with np.errstate(over="ignore", invalid="ignore"):     # an overflow is refused below, by name
                for op, produced in reference.iterate(graph, params, batch):
                    for name, values in produced.items():
                        if ir.GATE_SUFFIX in name:          # the diagnostics', not the quantizer's
                            continue
                        if not np.isfinite(values).all():
                            raise NnsconsError(None, f"stats: the float network overflows float32 on the "
                                                     f"calibration set: {op.name} ({ir.c_comment(op.label)}) "
                                                     f"gives inf or NaN (are its weights sane?)")
                        result.add(name, values)
            n = len(next(iter(batch.values())))
            result.samples += n
            bar.update(n)
    return result


def _check_inputs(graph: ir.Graph, inputs: dict[str, np.ndarray]) -> int:
    missing = [name for name in graph.inputs if name not in inputs]
    if missing:
        raise NnsconsError(None, f"stats: no calibration data for graph input(s) {', '.join(missing)}")
    unknown = sorted(set(inputs) - set(graph.inputs))
    if unknown:
        raise NnsconsError(None, f"stats: calibration data for unknown input(s) {', '.join(unknown)}")
    sizes = {len(inputs[name]) for name in graph.inputs}
    if len(sizes) != 1:
        raise NnsconsError(None, f"stats: the graph inputs have different sample counts {sorted(sizes)}")
    for name in graph.inputs:
        if not np.issubdtype(np.asarray(inputs[name]).dtype, np.floating):
            raise NnsconsError(None, f"stats: calibration input {name} must hold real (float) values")
    samples = sizes.pop()
    if samples == 0:
        raise NnsconsError(None, "stats: the calibration set holds no samples")
    return samples


class _NoBar:
    def __enter__(self) -> "_NoBar":
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int) -> None:
        pass


def _progress_bar(samples: int, chunk: int, progress: Optional[bool]):  # type: ignore[no-untyped-def]
    """tqdm on stderr when asked (True), or for long runs on a terminal (None: tqdm's own ``disable=None``)."""
    chunks = -(-samples // chunk)
    if progress is False or (progress is None and chunks <= 4):
        return _NoBar()
    from tqdm import tqdm
    return tqdm(total=samples, unit="sample", desc="stats", file=sys.stderr,
                disable=None if progress is None else False)
