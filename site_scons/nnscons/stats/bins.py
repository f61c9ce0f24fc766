"""The fixed histogram bins and the exact-sum layout of the statistics (part of :mod:`nnscons.stats`).

These constants are part of the ``stats.npz`` file format: :data:`BIN_PARAMS` is written into every file and a
file with other parameters is refused (:mod:`nnscons.stats.fileformat`), so changing one means a new
:data:`FORMAT_VERSION`. The accumulators in :mod:`nnscons.stats.accumulate` fill arrays of these sizes.
"""
from __future__ import annotations

import numpy as np

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
MANT_BITS = 24
SUM_EXP_MIN = -148 - MANT_BITS   # frexp puts the smallest subnormal 2^-149 at 0.5 * 2^-148 = 2^23 * 2^-172
SUM_LEN = 128 - MANT_BITS - SUM_EXP_MIN + 1

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
