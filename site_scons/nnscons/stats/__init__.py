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

The package, in dependency order:

* :mod:`.bins`: the fixed histogram bins and the exact-sum layout (fixed by the file format);
* :mod:`.accumulate`: :class:`TensorStats`, :class:`Stats` and :func:`merge`;
* :mod:`.fileformat`: ``stats.npz`` (:func:`save_stats`, :func:`load_stats`) and the ``stats.txt`` table;
* :mod:`.compute`: :func:`compute_stats`, the reference interpreter over a calibration set (the only module
  that runs the interpreter, and it imports it lazily: reading ``stats.npz`` never loads it).

Range methods that read these statistics are in :mod:`nnscons.ranges`.
"""
from __future__ import annotations

from .accumulate import Stats, TensorStats, merge, stats_from_arrays
from .bins import (BIN_PARAMS, EXP_MAX, EXP_MIN, FORMAT_VERSION, NBINS, SUB_BINS, SUM_EXP_MIN, SUM_LEN, bin_edges,
                   bin_index)
from .compute import compute_stats
from .fileformat import load_stats, log2_span, save_stats, stats_arrays, stats_table

__all__ = [
    "BIN_PARAMS", "EXP_MAX", "EXP_MIN", "FORMAT_VERSION", "NBINS", "SUB_BINS", "SUM_EXP_MIN", "SUM_LEN",
    "Stats", "TensorStats", "bin_edges", "bin_index", "compute_stats", "load_stats", "log2_span", "merge",
    "save_stats", "stats_arrays", "stats_from_arrays", "stats_table",
]
