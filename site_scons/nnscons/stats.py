"""Activation statistics over a calibration set (stage 4): ``stats.npz``.

The seed guide quantizes activations from statistics gathered by running the float network on calibration
patterns. For every activation tensor (graph inputs and every op output; constants are not activations) this
stage keeps, in real values:

* ``min``, ``max`` and the exact ``sum`` and ``count`` (so the mean is known);
* histograms of ``|x|`` on FIXED logarithmic bins, separately for positive and negative values, plus the count of
  exact zeros. The bins are the octaves ``[2^k, 2^(k+1))`` for ``k`` in ``[EXP_MIN, EXP_MAX)``, each cut into
  ``SUB_BINS`` geometric sub-bins, so every power of two is a bin edge (the seed's "bins based upon powers of
  two"). Values below ``2^EXP_MIN`` count in the first bin, values at or above ``2^EXP_MAX`` in the last one.

Everything here is *mergeable*: :func:`merge` of the statistics of two sets is exactly, bit for bit, what one pass
over both gives. Min, max, counts and histograms merge trivially; for the sum to merge exactly too it is kept as
exact integers, one accumulator per binary exponent of float32 values (``sum_parts``), instead of a rounded
float. So a calibration set can be processed in any chunk size or in shards with identical results, and
``stats.npz`` is byte-identical whatever the chunking.

Range methods that read these statistics are in :mod:`nnscons.ranges`.
"""
from __future__ import annotations

import math
import os
import sys
import zipfile
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Optional

import numpy as np

from . import fileio, ir
from .errors import NnsconsError

FORMAT_VERSION = 1

# ---- fixed histogram bins ------------------------------------------------------------------------------------
SUB_BINS = 4            # sub-bins per octave
EXP_MIN = -32           # first bin starts at 2^EXP_MIN (smaller |x| are folded into it)
EXP_MAX = 32            # last bin ends at 2^EXP_MAX (larger |x| are folded into it)
NBINS = (EXP_MAX - EXP_MIN) * SUB_BINS

# Upper bounds of the sub-bins inside one octave, as mantissas in [1, 2): 2^(j/S) for j = 1..S-1.
_SUB_EDGES = np.array([2.0 ** (j / SUB_BINS) for j in range(1, SUB_BINS)], dtype=np.float64)

# ---- exact sum: one int64 accumulator per binary exponent --------------------------------------------------
# A float32 value is m * 2^(e-24) with an integer mantissa |m| < 2^24 and e-24 in [-172, 104]
# (subnormals included), so accumulating m per exponent is exact integer arithmetic (an int64 accumulator
# holds 2^39 such values: far beyond any calibration set).
_MANT_BITS = 24
SUM_EXP_MIN = -148 - _MANT_BITS   # frexp puts the smallest subnormal 2^-149 at 0.5 * 2^-148 = 2^23 * 2^-172
SUM_LEN = 128 - _MANT_BITS - SUM_EXP_MIN + 1
# Sums of < 2^28 float-valued mantissas (< 2^24 each) stay below 2^53, so a float64 bincount of them is exact.
_EXACT_SLICE = 1 << 28

BIN_PARAMS = np.array([FORMAT_VERSION, SUB_BINS, EXP_MIN, EXP_MAX, SUM_EXP_MIN, SUM_LEN], dtype=np.int64)


def bin_edges() -> np.ndarray:
    """The ``NBINS + 1`` bin edges of the ``|x|`` histograms (float64; bin ``i`` is ``[edges[i], edges[i+1])``)."""
    k = np.arange(NBINS + 1, dtype=np.float64)
    return np.exp2(EXP_MIN + k / SUB_BINS)


def bin_index(magnitudes: np.ndarray) -> np.ndarray:
    """Histogram bin of each (non-zero, finite) magnitude; exact at every power of two."""
    mantissa, exponent = np.frexp(np.asarray(magnitudes, dtype=np.float64))   # |x| = mantissa * 2^exponent
    octave = exponent.astype(np.int64) - 1                                     # |x| in [2^octave, 2^(octave+1))
    sub = np.searchsorted(_SUB_EDGES, 2.0 * mantissa, side="right")
    return np.clip((octave - EXP_MIN) * SUB_BINS + sub, 0, NBINS - 1)


# ---- one tensor ------------------------------------------------------------------------------------------------
@dataclass
class TensorStats:
    """Statistics of one activation tensor over all samples seen."""

    count: int = 0
    min: float = math.inf
    max: float = -math.inf
    zeros: int = 0
    pos: np.ndarray = field(default_factory=lambda: np.zeros(NBINS, dtype=np.int64))
    neg: np.ndarray = field(default_factory=lambda: np.zeros(NBINS, dtype=np.int64))
    sum_parts: np.ndarray = field(default_factory=lambda: np.zeros(SUM_LEN, dtype=np.int64))

    @classmethod
    def from_array(cls, values: np.ndarray, name: str = "tensor") -> "TensorStats":
        x = np.asarray(values, dtype=np.float32).reshape(-1)
        ts = cls()
        if x.size == 0:
            return ts
        if not np.all(np.isfinite(x)):
            raise NnsconsError(None, f"stats: tensor {name} takes NaN or infinite values on the calibration set")
        ts.count = int(x.size)
        ts.min = float(x.min())
        ts.max = float(x.max())
        ts.zeros = int(np.count_nonzero(x == 0))
        ts.pos = np.bincount(bin_index(x[x > 0]), minlength=NBINS).astype(np.int64)
        ts.neg = np.bincount(bin_index(-x[x < 0]), minlength=NBINS).astype(np.int64)
        ts.sum_parts = _exact_sum_parts(x)
        return ts

    def merge(self, other: "TensorStats") -> "TensorStats":
        return TensorStats(count=self.count + other.count, min=min(self.min, other.min),
                           max=max(self.max, other.max), zeros=self.zeros + other.zeros,
                           pos=self.pos + other.pos, neg=self.neg + other.neg,
                           sum_parts=self.sum_parts + other.sum_parts)

    @property
    def exact_sum(self) -> Fraction:
        total = sum(int(v) << i for i, v in enumerate(self.sum_parts.tolist()) if v)
        return Fraction(total, 1 << -SUM_EXP_MIN)

    @property
    def sum(self) -> float:
        return float(self.exact_sum)

    @property
    def mean(self) -> float:
        return float(self.exact_sum / self.count) if self.count else math.nan

    @property
    def max_abs(self) -> float:
        return max(abs(self.min), abs(self.max)) if self.count else 0.0

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TensorStats):
            return NotImplemented
        return (self.count, self.min, self.max, self.zeros) == (other.count, other.min, other.max, other.zeros) \
            and all(np.array_equal(a, b) for a, b in ((self.pos, other.pos), (self.neg, other.neg),
                                                       (self.sum_parts, other.sum_parts)))


def _exact_sum_parts(x: np.ndarray) -> np.ndarray:
    """Per-exponent integer sums of the float32 values' mantissas (see the module docstring)."""
    parts = np.zeros(SUM_LEN, dtype=np.int64)
    for start in range(0, x.size, _EXACT_SLICE):
        mantissa, exponent = np.frexp(x[start:start + _EXACT_SLICE])
        nonzero = mantissa != 0
        ints = np.ldexp(mantissa[nonzero].astype(np.float64), _MANT_BITS)        # exact integers, |.| < 2^24
        index = exponent[nonzero].astype(np.int64) - _MANT_BITS - SUM_EXP_MIN
        parts += np.rint(np.bincount(index, weights=ints, minlength=SUM_LEN)).astype(np.int64)
    return parts


# ---- a whole graph ---------------------------------------------------------------------------------------------
@dataclass
class Stats:
    """Statistics of every activation tensor of a graph, over ``samples`` calibration samples."""

    tensors: dict[str, TensorStats] = field(default_factory=dict)
    samples: int = 0

    def __getitem__(self, name: str) -> TensorStats:
        try:
            return self.tensors[name]
        except KeyError:
            raise NnsconsError(None, f"stats: no statistics for tensor {name} (stale stats file?)") from None

    def __contains__(self, name: object) -> bool:
        return name in self.tensors

    def add(self, name: str, values: np.ndarray) -> None:
        """Fold a batch of one tensor's values in (does not count samples: see :meth:`add_samples`)."""
        new = TensorStats.from_array(values, name)
        self.tensors[name] = self.tensors[name].merge(new) if name in self.tensors else new

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Stats):
            return NotImplemented
        return self.samples == other.samples and self.tensors.keys() == other.tensors.keys() \
            and all(self.tensors[k] == other.tensors[k] for k in self.tensors)


def merge(a: Stats, b: Stats) -> Stats:
    """The statistics of both sets together (identical to one pass over their concatenation)."""
    merged = dict(a.tensors)
    for name, ts in b.tensors.items():
        merged[name] = merged[name].merge(ts) if name in merged else ts
    return Stats(merged, a.samples + b.samples)


def stats_from_arrays(arrays: dict[str, np.ndarray], samples: int) -> Stats:
    """Statistics straight from known tensor values (tests, or callers with their own interpreter)."""
    result = Stats(samples=samples)
    for name, values in arrays.items():
        result.add(name, values)
    return result


def compute_stats(graph: ir.Graph, params: dict[str, np.ndarray], inputs: dict[str, np.ndarray],
                  chunk: int = 64, progress: Optional[bool] = None) -> Stats:
    """Run the reference interpreter over the calibration inputs (real values, IR layout, N samples in axis 0),
    ``chunk`` samples at a time, and gather the statistics of every activation tensor.

    ``progress``: True shows a progress bar on stderr, False never; None shows one for runs of more than a few
    chunks when stderr is a terminal."""
    from . import reference  # imported here: reading stats.npz must not need the interpreter

    samples = _check_inputs(graph, inputs)
    if chunk < 1:
        raise NnsconsError(None, f"stats: chunk size must be positive, got {chunk}")
    result = Stats(tensors={name: TensorStats() for name in graph.activations()}, samples=0)
    with _progress_bar(samples, chunk, progress) as bar:
        for start in range(0, samples, chunk):
            batch = {name: x[start:start + chunk] for name, x in inputs.items()}
            for name, values in batch.items():
                result.add(name, values)
            for _op, produced in reference.iterate(graph, params, batch):
                for name, values in produced.items():
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


# ---- files -------------------------------------------------------------------------------------------------------
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
    expected = ("bin_params", "samples", "names", "count", "min", "max", "zeros", "pos", "neg", "sum_parts")
    missing = [k for k in expected if k not in arrays]
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


# ---- people ------------------------------------------------------------------------------------------------------
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
