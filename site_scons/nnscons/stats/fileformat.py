"""The statistics files (part of :mod:`nnscons.stats`): ``stats.npz`` (:func:`save_stats`, :func:`load_stats`)
and the readable ``stats.txt`` table (:func:`stats_table`).

``stats.npz`` holds one row per tensor, in the order the tensors were first seen (graph order), and the bin
parameters of :mod:`nnscons.stats.bins`; a file written with other bins is refused. Reading it needs neither the
reference interpreter nor the calibration run.
"""
from __future__ import annotations

import math
import os
import zipfile
from typing import Optional

import numpy as np

from .. import fileio, ir
from ..errors import NnsconsError
from .accumulate import Stats, TensorStats
from .bins import BIN_PARAMS, EXP_MIN, NBINS, SUB_BINS, SUM_LEN

_ARRAYS = ("bin_params", "samples", "names", "count", "min", "max", "zeros", "pos", "neg", "sum_parts")


# ---- stats.npz ---------------------------------------------------------------------------------------------------
def stats_arrays(stats: Stats) -> dict[str, np.ndarray]:
    """The arrays ``stats.npz`` holds (tensors in the order they were first seen: graph order)."""
    names = list(stats.tensors)
    rows = [stats.tensors[n] for n in names]
    return {
        "bin_params": BIN_PARAMS.copy(),
        "samples": np.array([stats.samples], dtype=np.int64),      # 1-D: npz_bytes stores arrays as >= 1-D
        "names": np.array(names, dtype=str) if names else np.zeros(0, dtype="<U1"),
        "count": np.array([t.count for t in rows], dtype=np.int64),
        "min": np.array([t.min for t in rows], dtype=np.float64),
        "max": np.array([t.max for t in rows], dtype=np.float64),
        "zeros": np.array([t.zeros for t in rows], dtype=np.int64),
        "pos": np.array([t.pos for t in rows], dtype=np.int64).reshape(len(rows), NBINS),
        "neg": np.array([t.neg for t in rows], dtype=np.int64).reshape(len(rows), NBINS),
        "sum_parts": np.array([t.sum_parts for t in rows], dtype=np.int64).reshape(len(rows), SUM_LEN),
    }


def save_stats(path: str | os.PathLike, stats: Stats) -> None:
    """Write ``stats.npz`` (deterministic bytes, atomic)."""
    fileio.write_npz(path, stats_arrays(stats))


def load_stats(path: str | os.PathLike) -> Stats:
    try:
        arrays = fileio.read_npz(path)
    except FileNotFoundError:
        raise NnsconsError(path, "no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise NnsconsError(path, f"not a readable statistics file ({e})") from None
    missing = [k for k in _ARRAYS if k not in arrays]
    if missing:
        raise NnsconsError(path, f"not a statistics file (missing {', '.join(missing)})")
    if not np.array_equal(arrays["bin_params"], BIN_PARAMS):
        raise NnsconsError(path, f"statistics written with other histogram bins {arrays['bin_params'].tolist()} "
                                 f"(this version uses {BIN_PARAMS.tolist()}); rebuild it")
    names = [str(n) for n in arrays["names"].tolist()]
    if arrays["pos"].shape != (len(names), NBINS) or arrays["sum_parts"].shape != (len(names), SUM_LEN):
        raise NnsconsError(path, "statistics file is inconsistent (array shapes)")
    tensors = {
        name: TensorStats(count=int(arrays["count"][i]), min=float(arrays["min"][i]), max=float(arrays["max"][i]),
                          zeros=int(arrays["zeros"][i]), pos=arrays["pos"][i].copy(), neg=arrays["neg"][i].copy(),
                          sum_parts=arrays["sum_parts"][i].copy())
        for i, name in enumerate(names)
    }
    return Stats(tensors, int(arrays["samples"].reshape(-1)[0]))


# ---- stats.txt ---------------------------------------------------------------------------------------------------
def log2_span(ts: TensorStats) -> Optional[tuple[float, float]]:
    """``(lo, hi)`` with the non-zero ``|x|`` inside ``[2^lo, 2^hi]``: lo from the histogram (a bin edge), hi
    exact from the extremes. None when every value is zero."""
    occupied = np.flatnonzero(ts.pos + ts.neg)
    if occupied.size == 0:
        return None
    return EXP_MIN + occupied[0] / SUB_BINS, math.log2(ts.max_abs)


def stats_table(graph: ir.Graph, stats: Stats) -> str:
    """A readable table: one row per activation tensor in graph order."""
    header = ("tensor", "shape", "min", "max", "mean", "log2|x|")
    rows = [header]
    names = [n for n in graph.activations() if n in stats.tensors]
    names += [n for n in stats.tensors if n not in names]
    for name in names:
        ts = stats.tensors[name]
        shape = "x".join(map(str, graph.tensors[name].shape)) if name in graph.tensors else "?"
        span = log2_span(ts)
        rows.append((name, shape, _num(ts.min), _num(ts.max), _num(ts.mean),
                     f"{span[0]:.2f}..{span[1]:.2f}" if span else "-"))
    return f"statistics over {stats.samples} samples\n" + "\n".join(fileio.text_table(rows)) + "\n"


def _num(v: float) -> str:
    return f"{v:.6g}"
