"""Range methods: from one tensor's statistics to the real range its quantization should cover.

The seed guide leaves the choice open ("quantization based upon the min and max", "the range of values making 80%
of the histogram", "more complex schemes to detect and remove outliers"); the ``range`` option picks one:

``minmax``        the observed ``[min, max]``.
``percentile:P``  per sign side, the magnitude below which P% of that side's non-zero values lie, read from the
                  ``|x|`` histogram (log-interpolated inside a bin, capped by the observed extreme). Sides are
                  separate, so a ReLU output (no negative values) keeps its min at 0; ``percentile:100`` is
                  ``minmax``.
``mse``           the clipping range that minimizes the estimated quantization error on the target grid: the
                  rounding noise of the grid (step^2 / 12 per value, or x^2 for values that round to zero) plus
                  the clipping error (x - clip)^2 of the values beyond it, summed over the histogram.

``search``        accuracy-driven, Q schemes only: starts from ``minmax`` and moves each layer's output format
                  where that improves accuracy on a validation split of the calibration set. It needs the graph,
                  the weights and the calibration data, not just statistics, so it lives in
                  :mod:`nnscons.search` and the ranges stage calls it (:func:`range_table` refuses it).

A :class:`Grid` describes what the range becomes: a power-of-two Q-format of W bits (``pow2``: the seed's rule
``n = W-1-ceil(log2 R)``, see :func:`q_frac_bits`), symmetric W-bit integers with zero point 0 (``symmetric``), or
asymmetric W-bit integers with a zero point (``asymmetric``, TFLite int8 activations). The quantizer takes the
actual scale / zero point / Q-format from the same grid, so what ``mse`` optimizes is what is built.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import stats as st
from .errors import NnsconsError

METHODS = ("minmax", "percentile:P", "mse", "search")

_PERCENTILE = re.compile(r"percentile:(\d+(?:\.\d*)?|\.\d+)")

# mse search: candidate clipping ranges for the integer grids step down from the full range by 2^(-1/16)
# over 20 octaves; the power-of-two grid tries every Q-format down to 24 octaves below the full range.
_MSE_STEPS_PER_OCTAVE = 16
_MSE_OCTAVES = 20
_MSE_POW2_OCTAVES = 24

# float32's smallest normal number, 2^-126: the finest step a grid takes. A range whose extremes are below it (values
# in float32's subnormal range, such as calibration data of 1e-45, which flush-to-zero arithmetic reads as 0) is
# treated as an all-zero range; a wider one that would still give a finer step gets this step, never a scale that
# rounds to 0 or to a subnormal number.
MIN_SCALE = 2.0 ** -126
MAX_FRAC_BITS = 126


@dataclass(frozen=True)
class RangeMethod:
    kind: str                      # "minmax" | "percentile" | "mse" | "search"
    percent: Optional[float] = None

    def __str__(self) -> str:
        return f"percentile:{self.percent:g}" if self.kind == "percentile" else self.kind


def parse_range_method(text: str) -> RangeMethod:
    """``minmax``, ``percentile:P`` (0 < P <= 100), ``mse`` or ``search``; anything else is an error."""
    text = str(text).strip()
    if text in ("minmax", "mse", "search"):
        return RangeMethod(text)
    m = _PERCENTILE.fullmatch(text)
    if m:
        p = float(m.group(1))
        if 0.0 < p <= 100.0:
            return RangeMethod("percentile", p)
        raise NnsconsError(None, f"range: percentile {m.group(1)} is not in (0, 100]")
    raise NnsconsError(None, f"range: unknown method {text!r}; use minmax, percentile:P (0 < P <= 100), mse or "
                             f"search")


# ---- grids ---------------------------------------------------------------------------------------------------------
def q_frac_bits(r: float, bits: int) -> int:
    """Fractional bits of the Q-format for range ``r`` on ``bits``-bit words: ``n = bits-1-ceil(log2 r)``.

    Exact for powers of two (no floating-point log): r = 1 gives Q0.7 for 8 bits, whose top value is 127/128, so
    a range that is exactly a power of two saturates its positive extreme by one LSB (its negative extreme is
    exact). That is the seed's / CMSIS convention and keeps one more bit for every other value. ``n`` may exceed
    ``bits-1`` (small ranges), up to :data:`MAX_FRAC_BITS`, or be negative (ranges beyond 2^(bits-1)). ``r``
    below :data:`MIN_SCALE`, 0 included (a tensor that is always zero), is treated as ``r = 1``."""
    if not math.isfinite(r) or r < 0:
        raise ValueError(f"range must be finite and non-negative, got {r}")
    if r < MIN_SCALE:
        r = 1.0
    mantissa, exponent = math.frexp(r)            # r = mantissa * 2^exponent, mantissa in [0.5, 1)
    ceil_log2 = exponent - 1 if mantissa == 0.5 else exponent
    return min(bits - 1 - ceil_log2, MAX_FRAC_BITS)


def q_format_name(frac_bits: int, bits: int) -> str:
    """``Qm.n`` with ``m = bits-1-n`` integer bits (m may be negative, e.g. ``Q-2.9``)."""
    return f"Q{bits - 1 - frac_bits}.{frac_bits}"


def round_half_away(x: float) -> int:
    """Round to nearest, ties away from zero (C's round()/std::round; Python's round() is banker's)."""
    a = abs(x)
    n = math.floor(a)
    if a - n >= 0.5:                               # a - floor(a) is exact in floating point
        n += 1
    return int(n) if x >= 0 else -int(n)


@dataclass(frozen=True)
class Grid:
    """The integer grid a real range is mapped to."""

    kind: str                      # "pow2" | "symmetric" | "asymmetric"
    bits: int

    @property
    def qmin(self) -> int:
        return -(1 << (self.bits - 1))

    @property
    def qmax(self) -> int:
        return (1 << (self.bits - 1)) - 1

    def params(self, lo: float, hi: float) -> tuple[float, int]:
        """``(scale, zero_point)`` for a real range ``[lo, hi]``; scales are rounded to float32 (as a model file
        stores them) and at least :data:`MIN_SCALE`. A range that is all zero (extremes below :data:`MIN_SCALE`) is
        treated as ``[-1, 1]``."""
        lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
        if max(-lo, hi) < MIN_SCALE:
            lo, hi = -1.0, 1.0
        if self.kind == "pow2":
            return 2.0 ** -q_frac_bits(max(-lo, hi), self.bits), 0
        if self.kind == "symmetric":
            return max(float(np.float32(max(-lo, hi) / self.qmax)), MIN_SCALE), 0
        if self.kind == "asymmetric":
            scale = max(float(np.float32((hi - lo) / (self.qmax - self.qmin))), MIN_SCALE)
            zero_point_real = self.qmin - lo / scale
            # "nudge": the zero point is an integer inside the grid, so real 0 is exactly representable
            zero_point = min(self.qmax, max(self.qmin, round_half_away(zero_point_real)))
            return scale, zero_point
        raise ValueError(f"unknown grid kind {self.kind}")

    def clip_and_step(self, lo: float, hi: float) -> tuple[float, float, float]:
        """``(clip_lo, clip_hi, step)``: the representable real interval and the step of the grid built for
        ``[lo, hi]``."""
        scale, zero_point = self.params(lo, hi)
        return (self.qmin - zero_point) * scale, (self.qmax - zero_point) * scale, scale


# ---- range methods -------------------------------------------------------------------------------------------------
def minmax(ts: st.TensorStats) -> tuple[float, float]:
    _require_values(ts)
    return ts.min, ts.max


def percentile(ts: st.TensorStats, p: float) -> tuple[float, float]:
    """Per sign side, the magnitude covering ``p`` percent of that side's non-zero values."""
    _require_values(ts)
    hi = _side_quantile(ts.pos, p, max(ts.max, 0.0))
    lo = _side_quantile(ts.neg, p, max(-ts.min, 0.0))
    return (-lo if lo else 0.0), hi


def _side_quantile(counts: np.ndarray, p: float, extreme: float) -> float:
    total = int(counts.sum())
    if total == 0:
        return 0.0
    target = p / 100.0 * total
    cumulative = np.cumsum(counts)
    i = min(int(np.searchsorted(cumulative, target, side="left")), st.NBINS - 1)
    before = int(cumulative[i - 1]) if i else 0
    fraction = min(1.0, max(0.0, (target - before) / int(counts[i])))
    value = 2.0 ** (st.EXP_MIN + (i + fraction) / st.SUB_BINS)       # log-linear inside the bin
    return min(value, extreme)


def estimated_mse(ts: st.TensorStats, lo: float, hi: float, grid: Grid) -> float:
    """Mean squared quantization error of the tensor's values on the grid built for ``[lo, hi]``, estimated
    from the histogram (every value in a bin taken at the bin's geometric centre, capped by the extreme)."""
    clip_lo, clip_hi, step = grid.clip_and_step(lo, hi)
    centres = 2.0 ** (st.EXP_MIN + (np.arange(st.NBINS) + 0.5) / st.SUB_BINS)
    error = _side_error(ts.pos, np.minimum(centres, max(ts.max, 0.0)), clip_hi, step) \
        + _side_error(ts.neg, np.minimum(centres, max(-ts.min, 0.0)), -clip_lo, step)
    return error / ts.count if ts.count else 0.0


def _side_error(counts: np.ndarray, values: np.ndarray, clip: float, step: float) -> float:
    rounding = np.where(values < step / 2, values ** 2, step ** 2 / 12.0)
    per_value = np.where(values > clip, (values - clip) ** 2, rounding)
    return float(np.dot(counts.astype(np.float64), per_value))


def mse(ts: st.TensorStats, grid: Grid) -> tuple[float, float]:
    """The clipping range with the smallest :func:`estimated_mse` (ties: the wider range)."""
    _require_values(ts)
    lo0, hi0 = min(ts.min, 0.0), max(ts.max, 0.0)
    if lo0 == hi0:
        return ts.min, ts.max
    best, best_error = (lo0, hi0), math.inf
    for lo, hi in _mse_candidates(ts, grid, lo0, hi0):
        error = estimated_mse(ts, lo, hi, grid)
        if error < best_error:
            best, best_error = (lo, hi), error
    return best


def _mse_candidates(ts: st.TensorStats, grid: Grid, lo0: float, hi0: float) -> list[tuple[float, float]]:
    if grid.kind == "pow2":
        # Only ceil(log2 R) matters: one candidate per Q-format, clipping at 2^k
        k_top = grid.bits - 1 - q_frac_bits(max(-lo0, hi0), grid.bits)
        return [(max(lo0, -2.0 ** k), min(hi0, 2.0 ** k)) for k in range(k_top, k_top - _MSE_POW2_OCTAVES, -1)]
    factors = [2.0 ** (-j / _MSE_STEPS_PER_OCTAVE) for j in range(_MSE_STEPS_PER_OCTAVE * _MSE_OCTAVES + 1)]
    return [(lo0 * a, hi0 * a) for a in factors]


def _require_values(ts: st.TensorStats) -> None:
    if ts.count == 0:
        raise NnsconsError(None, "range: the statistics hold no values for this tensor")


def choose_range(ts: st.TensorStats, method: RangeMethod, grid: Grid) -> tuple[float, float]:
    """The real range ``(lo, hi)`` the method picks for one tensor on the given grid."""
    if method.kind == "minmax":
        return minmax(ts)
    if method.kind == "percentile":
        assert method.percent is not None
        return percentile(ts, method.percent)
    if method.kind == "mse":
        return mse(ts, grid)
    if method.kind == "search":
        raise NnsconsError(None, "range: search needs the network and calibration data, not only statistics "
                                 "(nnscons.search.search_ranges)")
    raise NnsconsError(None, f"range: unknown method {method.kind!r}")


# ---- the ranges stage: stats.npz + (scheme, method) -> ranges.json ------------------------------------------------
# Its own node so that a calibration change that moves no range stops here: the quantization tables depend on
# this small file, not on the histograms (DESIGN.md section 1, early cutoff).
GRIDS = {"int8": Grid("asymmetric", 8), "int16x8": Grid("symmetric", 16), "q7": Grid("pow2", 8),
         "q15": Grid("pow2", 16), "model": Grid("asymmetric", 8)}
RANGES_FORMAT = "nnscons-ranges"


@dataclass(frozen=True)
class TensorRange:
    min: float                     # observed over the calibration set
    max: float
    lo: float                      # what the range method chose
    hi: float


@dataclass
class RangeTable:
    scheme: str                    # resolved scheme (the grid the method optimized for)
    method: str
    tensors: dict[str, TensorRange]

    def to_json(self) -> dict:
        return {"format": RANGES_FORMAT, "scheme": self.scheme, "method": self.method,
                "tensors": {n: [r.min, r.max, r.lo, r.hi] for n, r in self.tensors.items()}}

    @classmethod
    def from_json(cls, d: dict) -> "RangeTable":
        if d.get("format") != RANGES_FORMAT:
            raise NnsconsError(None, "not an nnscons ranges file")
        return cls(d["scheme"], d["method"], {n: TensorRange(*map(float, v)) for n, v in d["tensors"].items()})


def range_table(stats: st.Stats, scheme: str, method_text: str) -> RangeTable:
    """Every tensor's observed and chosen range for a (resolved) scheme and a range method."""
    method = parse_range_method(method_text)
    grid = GRIDS[scheme]
    tensors = {}
    for name in sorted(stats.tensors):
        ts = stats.tensors[name]
        if ts.count == 0:
            continue
        if not (math.isfinite(ts.min) and math.isfinite(ts.max)):
            raise NnsconsError(None, f"range: tensor {name} spans [{ts.min}, {ts.max}] on the calibration set: "
                                     "the float network overflows")
        lo, hi = choose_range(ts, method, grid)
        tensors[name] = TensorRange(float(ts.min), float(ts.max), float(lo), float(hi))
    return RangeTable(scheme, str(method), tensors)
