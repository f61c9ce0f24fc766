"""The two int16 lookup tables ``arm_softmax_s16`` takes, computed in float32 exactly as TFLite Micro computes them
when it prepares an int16 softmax (``tests/test_codegen.py`` compares them with TFLite Micro's).

Part of :mod:`nnscons.codegen`: the s8/s16 backend (:mod:`~nnscons.codegen.s8_layers`) writes them into
``<name>_weights.c`` for a network with an s16 softmax.
"""
from __future__ import annotations

import functools
from typing import Callable

import numpy as np

SOFTMAX_LUT_ENTRIES = 513


def _round_half_away32(value: np.float32) -> np.float32:
    a = np.float32(abs(float(value)))
    n = np.floor(a)
    n = n + np.float32(1) if a - n >= np.float32(0.5) else n
    return np.float32(-n if value < 0 else n)


def _lut(function: Callable[[np.float32], np.float32], lo: float, hi: float) -> np.ndarray:
    """513 int16 samples of ``function`` over [lo, hi] with outputs in [-1, 1) on the int16 range, computed in
    float32 as TFLite Micro computes them when it prepares an int16 softmax.

    Entry i is the sample at ``lo + i * step`` (step = range / 512) moved by half of the error that linear
    interpolation between samples i and i + 1 makes at the middle of the segment (so the error is shared between
    the ends and the middle); the last entry is the plain sample at ``hi``. Everything saturates to int16."""
    f32 = np.float32
    steps = SOFTMAX_LUT_ENTRIES - 1
    lo32, hi32 = f32(lo), f32(hi)
    step = (hi32 - lo32) / f32(steps)
    half_step = step / f32(2)
    codes_per_unit = f32(65536) / (f32(1) - f32(-1))
    rnd = _round_half_away32

    def saturate(value: np.float32) -> int:
        return int(min(max(value, f32(-32768)), f32(32767)))

    table = np.zeros(SOFTMAX_LUT_ENTRIES, dtype=np.int16)
    for i in range(steps):
        x = lo32 + f32(i) * step
        here = function(x)
        middle = function(x + half_step)
        after = function(lo32 + f32(i + 1) * step)
        sample = rnd(here * codes_per_unit)
        interpolated_middle = rnd((after * codes_per_unit + sample) / f32(2))
        exact_middle = rnd(middle * codes_per_unit)
        correction = rnd((interpolated_middle - exact_middle) / f32(2))
        table[i] = saturate(sample - correction)
    table[steps] = saturate(rnd(function(hi32) * codes_per_unit))
    return table


def _exp_f32(x: np.float32) -> np.float32:
    # correctly rounded float32 exp, which is what the C library's expf returns on the hosts TFLM runs on
    return np.float32(np.exp(np.float64(x)))


def _one_over_one_plus_x_f32(x: np.float32) -> np.float32:
    return np.float32(1) / (np.float32(1) + x)


@functools.lru_cache(maxsize=None)
def softmax_s16_luts() -> tuple[np.ndarray, np.ndarray]:
    """The two tables ``arm_softmax_s16`` takes: exp(x) on [-10, 0] and 1 / (1 + x) on [0, 1], 513 int16 each."""
    exp_lut = _lut(_exp_f32, -10.0, 0.0)
    one_by_one_lut = _lut(_one_over_one_plus_x_f32, 0.0, 1.0)
    exp_lut.setflags(write=False)
    one_by_one_lut.setflags(write=False)
    return exp_lut, one_by_one_lut
