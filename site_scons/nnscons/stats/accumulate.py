"""Mergeable statistics of activation tensors (part of :mod:`nnscons.stats`): :class:`TensorStats` for one
tensor, :class:`Stats` for a whole graph, and :func:`merge`.

Merging the statistics of two sets gives, bit for bit, what one pass over both gives: min, max, counts and the
histograms (bins in :mod:`nnscons.stats.bins`) merge trivially, and the sum is kept as exact integers, one per
binary exponent of float32 values (``sum_parts``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from ..errors import NnsconsError
from .bins import MANT_BITS, NBINS, SUM_EXP_MIN, SUM_LEN, bin_index

# Sums of < 2^28 float-valued mantissas (< 2^24 each) stay below 2^53, so a float64 bincount of them is exact.
_EXACT_SLICE = 1 << 28


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
    """Per-exponent integer sums of the float32 values' mantissas (see :mod:`nnscons.stats.bins`)."""
    parts = np.zeros(SUM_LEN, dtype=np.int64)
    for start in range(0, x.size, _EXACT_SLICE):
        mantissa, exponent = np.frexp(x[start:start + _EXACT_SLICE])
        nonzero = mantissa != 0
        ints = np.ldexp(mantissa[nonzero].astype(np.float64), MANT_BITS)        # exact integers, |.| < 2^24
        index = exponent[nonzero].astype(np.int64) - MANT_BITS - SUM_EXP_MIN
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
