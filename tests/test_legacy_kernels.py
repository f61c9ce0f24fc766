# SPDX-License-Identifier: Apache-2.0
# Part of nnscons; written from the published CMSIS-NN API, not derived from its source.
"""Bit-exactness of the portable legacy q7/q15 kernels (``cmsis/``, ``arm_nnfunctions_legacy.h``) against the
numpy model of the CMSIS_5 5.9.0 arithmetic (``legacy_model.py``), plus hand-computed values for the rules the
model itself relies on (round half up, wrapping, truncating averages, the _opt layouts' published example),
the variant constraints, the DSP-only check, ARM_NN_TRUNCATE, the scratch-size and variant-choice helpers of
``nnscons.codegen.legacy_layouts``, and strict builds for the host and Cortex-M0/M4.
"""
from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path
from typing import Optional

import numpy as np
import pytest

import cmsis_host as ch
import legacy_model as model
from nnscons.codegen import legacy_layouts as ll

pytestmark = pytest.mark.slow   # compiles the legacy kernels for the host and Cortex-M

SUCCESS = 0
SIZE_MISMATCH = -3
DSP = ("ARM_MATH_DSP",)
TRUNCATE = ("ARM_NN_TRUNCATE",)
STRICT = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic"]
CROSS_TARGETS = {
    "cortex-m0": ["-mcpu=cortex-m0", "-mthumb"],
    "cortex-m4": ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"],
}
LEGACY_GLOBS = ("arm_convolve_HWC_*.c", "arm_convolve_1x1_HWC_*.c", "arm_depthwise_separable_*.c",
                "arm_fully_connected_q*.c", "arm_fully_connected_mat_*.c", "arm_maxpool_q7_HWC.c",
                "arm_avepool_q7_HWC.c", "arm_softmax_q*.c", "arm_softmax_with_batch_q7.c",
                "arm_nn_activations_direct_*.c", "arm_nn_legacy_*.c")


def legacy_sources() -> list[Path]:
    return sorted({path for pattern in LEGACY_GLOBS for path in ch.CMSIS_DIR.glob(f"Source/*/{pattern}")})


def bits_of(function: str) -> int:
    return 16 if "q15" in function else 8


def random_data(rng: np.random.Generator, shape: tuple[int, ...], bits: int, amplitude: str) -> np.ndarray:
    """Full-range values, or small ones (|v| < 2^(bits-3)) that keep sums from saturating."""
    top = 1 << (bits - 1) if amplitude == "full" else 1 << (bits - 3)
    return rng.integers(-top, top, size=shape, endpoint=False).astype(model.dtype_for(bits))


def pick_shifts(rng: np.random.Generator, mode: str, bits: int, taps: int) -> tuple[int, int]:
    """(bias_shift, out_shift): "typical" spreads outputs over the output range, "zero" has both 0,
    "large" pushes shifts (bias overflowing the accumulator included) up to 31."""
    if mode == "zero":
        return 0, 0
    if mode == "large":
        return int(rng.integers(20, 32)), int(rng.integers(20, 32))
    # Sums of `taps` products of two small values have a spread of about 2^(2*(bits-3)) * sqrt(taps).
    spread = 2 * (bits - 3) + int(np.log2(max(taps, 1)) / 2)
    out_shift = max(0, spread - (bits - 2) + int(rng.integers(-1, 2)))
    return int(rng.integers(0, max(out_shift - 1, 0) + 1)), out_shift  # a bias below the output's range


def assert_not_degenerate(out: np.ndarray, bits: int) -> None:
    """Some outputs lie strictly inside the output range: the case exercises more than saturation."""
    inside = (out > -(1 << (bits - 1))) & (out < (1 << (bits - 1)) - 1)
    assert inside.any(), "every output saturated: the case does not test the arithmetic"


# ---------------------------------------------------------------------------------------------------------------
# Convolution and depthwise
# ---------------------------------------------------------------------------------------------------------------

# function, (H, W), C_IN, C_OUT, kernel (y, x), padding (y, x), stride (y, x), output size change vs. natural
CONV_CASES = [
    ("arm_convolve_HWC_q7_basic", (5, 5), 3, 4, (3, 3), (1, 1), (1, 1), 0),
    ("arm_convolve_HWC_q7_basic", (7, 7), 5, 3, (3, 3), (0, 0), (2, 2), 0),
    ("arm_convolve_HWC_q7_basic", (6, 6), 2, 5, (4, 4), (2, 2), (2, 2), 1),   # "same" with an even kernel
    ("arm_convolve_HWC_q7_basic", (1, 1), 1, 1, (1, 1), (0, 0), (1, 1), 0),
    ("arm_convolve_HWC_q7_fast", (6, 6), 4, 2, (3, 3), (1, 1), (1, 1), 0),
    ("arm_convolve_HWC_q7_fast", (8, 8), 8, 6, (3, 3), (1, 1), (2, 2), -1),
    ("arm_convolve_HWC_q7_RGB", (7, 7), 3, 5, (3, 3), (1, 1), (1, 1), 0),
    ("arm_convolve_HWC_q7_RGB", (9, 9), 3, 4, (5, 5), (2, 2), (2, 2), 0),
    ("arm_convolve_HWC_q7_basic_nonsquare", (5, 7), 3, 3, (3, 1), (1, 0), (1, 2), 0),
    ("arm_convolve_HWC_q7_basic_nonsquare", (6, 4), 2, 4, (1, 3), (0, 1), (2, 1), 1),
    ("arm_convolve_HWC_q7_basic_nonsquare", (4, 9), 5, 2, (2, 4), (1, 2), (1, 3), 0),
    ("arm_convolve_HWC_q7_fast_nonsquare", (5, 7), 4, 2, (3, 1), (1, 0), (1, 2), 0),
    ("arm_convolve_HWC_q7_fast_nonsquare", (6, 4), 8, 4, (2, 3), (1, 1), (2, 1), 0),
    ("arm_convolve_1x1_HWC_q7_fast_nonsquare", (5, 7), 8, 6, (1, 1), (0, 0), (1, 1), 0),
    ("arm_convolve_1x1_HWC_q7_fast_nonsquare", (3, 4), 4, 2, (1, 1), (0, 0), (1, 1), 0),
    ("arm_convolve_HWC_q15_basic", (5, 5), 3, 3, (3, 3), (1, 1), (1, 1), 0),
    ("arm_convolve_HWC_q15_basic", (6, 6), 1, 4, (2, 2), (0, 0), (2, 2), 0),
    ("arm_convolve_HWC_q15_fast", (6, 6), 2, 4, (3, 3), (1, 1), (1, 1), 0),
    ("arm_convolve_HWC_q15_fast", (6, 6), 4, 2, (3, 3), (1, 1), (2, 2), 0),   # odd output size: pure-C build
    ("arm_convolve_HWC_q15_fast_nonsquare", (5, 7), 2, 2, (3, 1), (1, 0), (1, 2), 0),
    ("arm_convolve_HWC_q15_fast_nonsquare", (4, 6), 4, 6, (2, 3), (1, 1), (2, 1), 0),
    ("arm_depthwise_separable_conv_HWC_q7", (6, 6), 4, 4, (3, 3), (1, 1), (1, 1), 0),
    ("arm_depthwise_separable_conv_HWC_q7", (7, 7), 3, 3, (3, 3), (0, 0), (2, 2), 0),
    ("arm_depthwise_separable_conv_HWC_q7_nonsquare", (5, 8), 5, 5, (3, 2), (1, 0), (1, 2), 0),
    ("arm_depthwise_separable_conv_HWC_q7_nonsquare", (6, 3), 2, 2, (2, 3), (1, 1), (2, 1), 1),
]
SHIFT_MODES = ("typical", "zero", "large")


def natural_out(size: int, kernel: int, pad: int, stride: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


def conv_case_data(case: tuple, seed: int, amplitude: str) -> tuple[np.random.Generator, np.ndarray, np.ndarray,
                                                                  np.ndarray]:
    function, (h, w), c_in, c_out, kernel, _, _, _ = case
    rng = np.random.default_rng(seed)
    bits = bits_of(function)
    x = random_data(rng, (h, w, c_in), bits, amplitude)
    if function.startswith("arm_depthwise"):
        weights = random_data(rng, (*kernel, c_in), bits, amplitude)
    else:
        weights = random_data(rng, (c_out, *kernel, c_in), bits, amplitude)
    bias = random_data(rng, (c_out,), bits, "full")
    return rng, x, weights, bias


def run_conv_case(case: tuple, seed: int, mode: str,
                  defines: tuple[str, ...] = ()) -> tuple[int, np.ndarray, np.ndarray, int]:
    """(status, kernel output, model output, output bits) of one case."""
    function, (h, w), c_in, _, kernel, padding, stride, grow = case
    bits = bits_of(function)
    amplitude = "full" if mode == "large" or seed % 2 else "small"
    rng, x, weights, bias = conv_case_data(case, seed, amplitude)
    taps = kernel[0] * kernel[1] * (1 if function.startswith("arm_depthwise") else c_in)
    bias_shift, out_shift = pick_shifts(rng, mode, bits if amplitude == "small" else bits + 2, taps)
    out_hw = (natural_out(h, kernel[0], padding[0], stride[0]) + grow,
              natural_out(w, kernel[1], padding[1], stride[1]) + grow)
    status, out = ch.legacy_conv(function, x, weights, bias, bias_shift=bias_shift, out_shift=out_shift,
                                 out_hw=out_hw, padding=padding, stride=stride, defines=defines)
    kwargs = dict(bias_shift=bias_shift, out_shift=out_shift, padding=padding, stride=stride, out_hw=out_hw,
                  truncate="ARM_NN_TRUNCATE" in defines)
    if function.startswith("arm_depthwise"):
        expected = model.depthwise(x, weights, bias, **kwargs)
    else:
        expected = model.conv(x, weights, bias, out_bits=bits, **kwargs)
    return status, out, expected, bits


@pytest.mark.parametrize("mode", SHIFT_MODES)
@pytest.mark.parametrize("seed", (0, 1))
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"{c[0]}-{c[1][0]}x{c[1][1]}-k{c[4][0]}x{c[4][1]}")
def test_conv_matches_model(case: tuple, seed: int, mode: str) -> None:
    status, out, expected, bits = run_conv_case(case, seed, mode)
    assert status == SUCCESS
    np.testing.assert_array_equal(out, expected)
    if mode == "typical" and seed == 0:
        assert_not_degenerate(out, bits)


def test_conv_truncate_build_floors() -> None:
    """ARM_NN_TRUNCATE drops NN_ROUND: results equal the model with floor, and differ from the rounding build."""
    differs = False
    for case in CONV_CASES[:3] + CONV_CASES[15:17]:
        status, out, expected, _ = run_conv_case(case, 0, "typical", defines=TRUNCATE)
        assert status == SUCCESS
        np.testing.assert_array_equal(out, expected)
        differs |= bool((out != run_conv_case(case, 0, "typical")[1]).any())
    assert differs


def test_conv_dsp_build_computes_the_same() -> None:
    for case in CONV_CASES[::4]:
        status, out, expected, _ = run_conv_case(case, 1, "typical", defines=DSP)
        assert status == SUCCESS
        np.testing.assert_array_equal(out, expected)


def test_conv_without_bias_is_zero_bias() -> None:
    case = CONV_CASES[0]
    _, x, weights, _ = conv_case_data(case, 3, "small")
    args = dict(bias_shift=3, out_shift=6, out_hw=(5, 5), padding=(1, 1), stride=(1, 1))
    _, without = ch.legacy_conv(case[0], x, weights, None, **args)
    _, zero = ch.legacy_conv(case[0], x, weights, np.zeros(4, np.int8), **args)
    np.testing.assert_array_equal(without, zero)


def test_conv_rounds_half_up_and_wraps() -> None:
    """Hand-computed: a 1x1 image, 1x1 kernel, so out = sat((bias << bs) + NN_ROUND(os) + x*w) >> os)."""
    def one(function: str, x: int, w: int, bias: int, bias_shift: int, out_shift: int, c_in: int = 1,
            defines: tuple[str, ...] = ()) -> int:
        dtype = model.dtype_for(bits_of(function))
        xs = np.full((1, 1, c_in), x, dtype=dtype)
        ws = np.full((1, 1, 1, c_in), w, dtype=dtype)
        status, out = ch.legacy_conv(function, xs, ws, np.array([bias], dtype=dtype), bias_shift=bias_shift,
                                     out_shift=out_shift, out_hw=(1, 1), defines=defines)
        assert status == SUCCESS
        return int(out.reshape(-1)[0])

    q7, q15 = "arm_convolve_HWC_q7_basic", "arm_convolve_HWC_q15_basic"
    assert [one(q7, v, 1, 0, 0, 1) for v in (1, -1, 3, -3, 2)] == [1, 0, 2, -1, 1]   # x.5 rounds up
    assert [one(q7, v, 1, 0, 0, 1, defines=TRUNCATE) for v in (1, -1, 3, -3)] == [0, -1, 1, -2]
    assert one(q7, 0, 0, 3, 2, 0) == 12                                                # bias << bias_shift
    assert one(q7, 5, 5, 0, 0, 0) == 25 and one(q7, 12, 12, 0, 0, 0) == 127            # saturation
    assert one(q7, -12, 12, 0, 0, 0) == -128
    assert one(q7, 0, 0, 1, 31, 31) == -1          # 1 << 31 wraps to INT32_MIN; + 2^30, >> 31 is -1
    # Shifts of 32 or more (undefined in Arm's C) act like Cortex-M register shifts: << gives 0, >> the sign.
    assert one(q7, 0, 0, 1, 32, 0) == 0 and one(q7, 3, -1, 0, 0, 32) == -1 and one(q7, 3, 1, 0, 0, 40) == 0
    # q15: four products of 2^30 sum to 2^32, which wraps to 0 in the 32-bit accumulator.
    assert one(q15, -32768, -32768, 0, 0, 0, c_in=4) == 0
    assert one(q15, -32768, -32768, 0, 0, 0, c_in=3) == -32768   # 3 * 2^30 wraps to -2^30
    assert one(q15, 300, 300, -7, 4, 4) == (300 * 300 - 7 * 16 + 8) >> 4


# ---------------------------------------------------------------------------------------------------------------
# Constraints
# ---------------------------------------------------------------------------------------------------------------

# function, geometry violating its check (C_IN, C_OUT, kernel, padding, stride)
VIOLATIONS = [
    ("arm_convolve_HWC_q7_fast", 3, 2, 3, 1, 1),
    ("arm_convolve_HWC_q7_fast", 4, 3, 3, 1, 1),
    ("arm_convolve_HWC_q7_fast_nonsquare", 6, 2, 3, 1, 1),
    ("arm_convolve_HWC_q7_fast_nonsquare", 8, 1, 3, 1, 1),
    ("arm_convolve_1x1_HWC_q7_fast_nonsquare", 4, 2, 3, 0, 1),
    ("arm_convolve_1x1_HWC_q7_fast_nonsquare", 4, 2, 1, 1, 1),
    ("arm_convolve_1x1_HWC_q7_fast_nonsquare", 4, 2, 1, 0, 2),
    ("arm_convolve_1x1_HWC_q7_fast_nonsquare", 2, 2, 1, 0, 1),
    ("arm_convolve_1x1_HWC_q7_fast_nonsquare", 4, 3, 1, 0, 1),
    ("arm_convolve_HWC_q7_RGB", 4, 2, 3, 1, 1),
    ("arm_convolve_HWC_q7_RGB", 1, 2, 3, 1, 1),
    ("arm_convolve_HWC_q15_fast", 3, 2, 3, 1, 1),
    ("arm_convolve_HWC_q15_fast", 2, 3, 3, 1, 1),
    ("arm_convolve_HWC_q15_fast_nonsquare", 1, 2, 3, 1, 1),
    ("arm_convolve_HWC_q15_fast_nonsquare", 2, 5, 3, 1, 1),
    ("arm_depthwise_separable_conv_HWC_q7", 4, 8, 3, 1, 1),
    ("arm_depthwise_separable_conv_HWC_q7_nonsquare", 2, 3, 3, 1, 1),
]


@pytest.mark.parametrize("violation", VIOLATIONS, ids=lambda v: f"{v[0]}-{v[1]}-{v[2]}-k{v[3]}p{v[4]}s{v[5]}")
def test_constraint_violation_returns_size_mismatch_and_writes_nothing(violation: tuple) -> None:
    function, c_in, c_out, kernel, pad, stride = violation
    bits = bits_of(function)
    rng = np.random.default_rng(0)
    x = random_data(rng, (6, 6, c_in), bits, "small")
    depthwise = function.startswith("arm_depthwise")
    w = random_data(rng, (kernel, kernel, c_out) if depthwise else (c_out, kernel, kernel, c_in), bits, "small")
    out_hw = (natural_out(6, kernel, pad, stride),) * 2
    status, out = ch.legacy_conv(function, x, w, np.zeros(c_out, model.dtype_for(bits)), bias_shift=0,
                                 out_shift=4, out_hw=out_hw, padding=(pad, pad), stride=(stride, stride))
    assert status == SIZE_MISMATCH
    assert (out == 0x5A).all()  # the sentinel fill: nothing written
    geometry = ll.LegacyConvGeometry(c_in, c_out, (6, 6), (kernel, kernel), (pad, pad), (stride, stride), out_hw)
    assert ll.constraint_error(function, geometry, "c") is not None


def test_q15_fast_needs_even_output_size_only_on_dsp_builds() -> None:
    case = CONV_CASES[18]  # arm_convolve_HWC_q15_fast with a 3x3 output
    status, out, expected, _ = run_conv_case(case, 0, "typical")
    assert status == SUCCESS and out.shape[0] == 3
    status, out, _, _ = run_conv_case(case, 0, "typical", defines=DSP)
    assert status == SIZE_MISMATCH and (out == 0x5A).all()
    status, _, _, _ = run_conv_case(CONV_CASES[17], 0, "typical", defines=DSP)  # 6x6 output
    assert status == SUCCESS


@pytest.mark.parametrize("features,defines", [("c", ()), ("dsp", DSP)])
def test_constraint_error_agrees_with_the_library(features: str, defines: tuple[str, ...]) -> None:
    """Over random square geometries, the Python predicate says "no" exactly when the C function refuses."""
    rng = np.random.default_rng(7)
    refused = accepted = 0
    for _ in range(60):
        c_in, c_out = (int(v) for v in rng.integers(1, 9, size=2))
        kernel, pad, stride, size = int(rng.integers(1, 4)), int(rng.integers(0, 2)), int(rng.integers(1, 3)), 5
        out = natural_out(size, kernel, pad, stride)
        geometry = ll.LegacyConvGeometry(c_in, c_out, (size, size), (kernel, kernel), (pad, pad), (stride, stride),
                                         (out, out))
        for function in ll.CONV_FUNCTIONS:
            bits = bits_of(function)
            depthwise = function.startswith("arm_depthwise")
            x = random_data(rng, (size, size, c_in), bits, "small")
            shape = (kernel, kernel, c_out) if depthwise else (c_out, kernel, kernel, c_in)
            w = random_data(rng, shape, bits, "small")
            status, _ = ch.legacy_conv(function, x, w, None, bias_shift=0, out_shift=4, out_hw=(out, out),
                                       padding=(pad, pad), stride=(stride, stride), defines=defines)
            error = ll.constraint_error(function, geometry, features)
            assert (status == SIZE_MISMATCH) == (error is not None), (function, geometry, error)
            refused += error is not None
            accepted += error is None
    assert refused and accepted


def test_square_functions_refuse_non_square_layers() -> None:
    g = ll.LegacyConvGeometry(4, 4, (5, 6), (3, 3), (1, 1), (1, 1), (5, 6))
    assert ll.constraint_error("arm_convolve_HWC_q7_basic", g) is not None
    assert ll.constraint_error("arm_convolve_HWC_q7_basic_nonsquare", g) is None


def test_pick_conv_function_takes_the_most_efficient_allowed_variant() -> None:
    def g(c_in: int, c_out: int, size: tuple = (8, 8), kernel: tuple = (3, 3), pad: tuple = (1, 1),
          stride: tuple = (1, 1), out: Optional[tuple] = None) -> ll.LegacyConvGeometry:
        return ll.LegacyConvGeometry(c_in, c_out, size, kernel, pad, stride, out or size)

    assert ll.pick_conv_function(g(8, 4, kernel=(1, 1), pad=(0, 0)), bits=8) == \
        "arm_convolve_1x1_HWC_q7_fast_nonsquare"
    assert ll.pick_conv_function(g(3, 8), bits=8) == "arm_convolve_HWC_q7_RGB"
    assert ll.pick_conv_function(g(4, 8), bits=8) == "arm_convolve_HWC_q7_fast"
    assert ll.pick_conv_function(g(4, 8, size=(8, 6)), bits=8) == "arm_convolve_HWC_q7_fast_nonsquare"
    assert ll.pick_conv_function(g(5, 8), bits=8) == "arm_convolve_HWC_q7_basic"
    assert ll.pick_conv_function(g(5, 8, size=(8, 6)), bits=8) == "arm_convolve_HWC_q7_basic_nonsquare"
    assert ll.pick_conv_function(g(2, 4), bits=16) == "arm_convolve_HWC_q15_fast"
    odd_out = g(2, 4, size=(5, 5), out=(5, 5))
    assert ll.pick_conv_function(odd_out, bits=16) == "arm_convolve_HWC_q15_fast_nonsquare"
    assert ll.pick_conv_function(odd_out, bits=16, features="c") == "arm_convolve_HWC_q15_fast"
    assert ll.pick_conv_function(g(3, 4), bits=16) == "arm_convolve_HWC_q15_basic"
    assert ll.pick_conv_function(g(3, 4, size=(8, 6)), bits=16) is None  # no q15 basic non-square
    assert ll.pick_conv_function(g(4, 4), bits=8, depthwise=True) == "arm_depthwise_separable_conv_HWC_q7"
    assert ll.pick_conv_function(g(4, 8), bits=8, depthwise=True) is None  # channel multiplier


def test_legacy_buffer_sizes_follow_the_facts_table() -> None:
    g = ll.LegacyConvGeometry(4, 6, (9, 9), (3, 2), (1, 1), (1, 1), (7, 8))
    for function in ll.CONV_FUNCTIONS:
        sizes = ll.legacy_buffer_sizes(function, g)
        expected = (1 if function == "arm_convolve_HWC_q15_basic" else 2) * 4 * 3 * 2
        assert sizes == {"bufferA": ll.ScratchBuffer("q15_t", expected), "bufferB": ll.ScratchBuffer("q7_t", 0)}
    assert ll.legacy_buffer_sizes("arm_fully_connected_q7", dim_vec=33)["vec_buffer"].nbytes == 66
    assert ll.legacy_buffer_sizes("arm_fully_connected_q7_opt", dim_vec=33)["vec_buffer"].count == 33
    for function in ll.FC_FUNCTIONS[2:]:
        assert ll.legacy_buffer_sizes(function, dim_vec=33)["vec_buffer"].count == 0
    pool = ll.LegacyConvGeometry(5, 5, (8, 8), (2, 2), (0, 0), (2, 2), (4, 4))
    assert ll.legacy_buffer_sizes("arm_avepool_q7_HWC", pool)["bufferA"] == ll.ScratchBuffer("q7_t", 40)
    assert ll.legacy_buffer_sizes("arm_maxpool_q7_HWC", pool)["bufferA"].count == 0
    assert ll.legacy_buffer_sizes("arm_softmax_q7") == {}
    with pytest.raises(ValueError):
        ll.legacy_buffer_sizes("arm_convolve_HWC_q7_basic")
    with pytest.raises(ValueError):
        ll.legacy_buffer_sizes("arm_convolve_s8", g)


# ---------------------------------------------------------------------------------------------------------------
# Fully connected, plain and _opt
# ---------------------------------------------------------------------------------------------------------------

FC_PAIRS = [("arm_fully_connected_q7", 8, 8), ("arm_fully_connected_q15", 16, 16),
            ("arm_fully_connected_mat_q7_vec_q15", 16, 8)]  # (function, vector/output bits, matrix/bias bits)
FC_SHAPES = [(1, 1), (3, 5), (4, 4), (4, 7), (5, 2), (6, 7), (8, 16), (13, 9), (7, 1), (2, 33)]


@pytest.mark.parametrize("mode", SHIFT_MODES)
@pytest.mark.parametrize("pair", FC_PAIRS, ids=lambda p: p[0])
def test_fully_connected_and_opt_match_model(pair: tuple, mode: str) -> None:
    function, vec_bits, mat_bits = pair
    for index, (rows, cols) in enumerate(FC_SHAPES):
        rng = np.random.default_rng(index)
        amplitude = "full" if mode == "large" else "small"
        v = random_data(rng, (cols,), vec_bits, amplitude)
        w = random_data(rng, (rows, cols), mat_bits, amplitude)
        bias = random_data(rng, (rows,), mat_bits, "full")
        bias_shift, out_shift = pick_shifts(rng, mode, max(vec_bits, mat_bits), cols)
        expected = model.fully_connected(v, w, bias, bias_shift=bias_shift, out_shift=out_shift, out_bits=vec_bits)
        args = dict(rows=rows, bias_shift=bias_shift, out_shift=out_shift)
        status, plain = ch.legacy_fully_connected(function, v, w, bias, **args)
        assert status == SUCCESS
        np.testing.assert_array_equal(plain, expected, err_msg=f"{function} {rows}x{cols}")
        opt = function + "_opt"
        status, interleaved = ch.legacy_fully_connected(opt, v, ll.interleave_fc_weights(opt, w), bias, **args)
        assert status == SUCCESS
        np.testing.assert_array_equal(interleaved, expected, err_msg=f"{opt} {rows}x{cols}")
        if mode == "typical" and rows * cols > 20:
            assert_not_degenerate(plain, vec_bits)


def test_fully_connected_truncate_build_and_wrapping() -> None:
    rng = np.random.default_rng(11)
    v, w = random_data(rng, (9,), 8, "small"), random_data(rng, (6, 9), 8, "small")
    bias = random_data(rng, (6,), 8, "small")
    for function in ("arm_fully_connected_q7", "arm_fully_connected_q7_opt"):
        weights = ll.interleave_fc_weights(function, w) if function.endswith("_opt") else w
        status, out = ch.legacy_fully_connected(function, v, weights, bias, rows=6, bias_shift=2, out_shift=5,
                                                defines=TRUNCATE)
        assert status == SUCCESS
        np.testing.assert_array_equal(out, model.fully_connected(v, w, bias, bias_shift=2, out_shift=5,
                                                                 out_bits=8, truncate=True))
    # q15: (-2^15)^2 * 4 = 2^32 wraps to 0; with 5 columns the sum wraps to 2^30 and saturates.
    for cols, expected in ((4, 0), (5, 32767)):
        v = np.full(cols, -32768, np.int16)
        w = np.full((4, cols), -32768, np.int16)
        for function in ("arm_fully_connected_q15", "arm_fully_connected_q15_opt"):
            weights = ll.interleave_fc_weights(function, w) if function.endswith("_opt") else w
            status, out = ch.legacy_fully_connected(function, v, weights, np.zeros(4, np.int16), rows=4,
                                                    bias_shift=0, out_shift=0)
            assert status == SUCCESS and (out == expected).all(), (function, cols, out)


def test_interleave_matches_the_published_example_and_description() -> None:
    """The 6x7 example of the facts (a_rc = 10 r + c), and each layout rebuilt element by element from its
    description."""
    w = np.array([[10 * r + c for c in range(1, 8)] for r in range(1, 7)])
    expected = [11, 21, 13, 23, 31, 41, 33, 43, 12, 22, 14, 24, 32, 42, 34, 44, 15, 25, 35, 45, 16, 26, 36, 46,
                17, 27, 37, 47, *range(51, 58), *range(61, 68)]
    assert ll.interleave_fc_weights("arm_fully_connected_q7_opt", w).tolist() == expected

    def described(function: str, m: np.ndarray) -> list[int]:
        rows, cols = m.shape
        out: list[int] = []
        for g in range(0, rows - rows % 4, 4):
            r0, r1, r2, r3 = range(g, g + 4)
            c = 0
            if function == "arm_fully_connected_q7_opt":
                for c in range(0, cols - cols % 4, 4):
                    c0, c1, c2, c3 = range(c, c + 4)
                    out += [m[r0, c0], m[r1, c0], m[r0, c2], m[r1, c2], m[r2, c0], m[r3, c0], m[r2, c2], m[r3, c2],
                            m[r0, c1], m[r1, c1], m[r0, c3], m[r1, c3], m[r2, c1], m[r3, c1], m[r2, c3], m[r3, c3]]
                left = range(cols - cols % 4, cols)
            else:
                for c in range(0, cols - cols % 2, 2):
                    c0, c1 = c, c + 1
                    if function == "arm_fully_connected_q15_opt":
                        out += [m[r0, c0], m[r0, c1], m[r1, c0], m[r1, c1], m[r2, c0], m[r2, c1], m[r3, c0],
                                m[r3, c1]]
                    else:
                        out += [m[r0, c0], m[r1, c0], m[r0, c1], m[r1, c1], m[r2, c0], m[r3, c0], m[r2, c1],
                                m[r3, c1]]
                left = range(cols - cols % 2, cols)
            for c in left:
                out += [m[r0, c], m[r1, c], m[r2, c], m[r3, c]]
        for r in range(rows - rows % 4, rows):
            out += list(m[r])
        return [int(v) for v in out]

    for function in ll.OPT_FC_FUNCTIONS:
        for rows, cols in ((0, 3), (1, 1), (4, 1), (4, 4), (5, 9), (8, 3), (11, 10)):
            m = np.arange(rows * cols).reshape(rows, cols)
            assert ll.interleave_fc_weights(function, m).tolist() == described(function, m), (function, rows, cols)
    with pytest.raises(ValueError):
        ll.interleave_fc_weights("arm_fully_connected_q7", w)
    with pytest.raises(ValueError):
        ll.interleave_fc_weights("arm_fully_connected_q7_opt", w.reshape(-1))


# ---------------------------------------------------------------------------------------------------------------
# Pooling, relu
# ---------------------------------------------------------------------------------------------------------------

# dim_in, channels, kernel, padding, stride, output size change vs. natural
POOL_CASES = [(4, 1, 2, 0, 2, 0), (5, 3, 3, 1, 1, 0), (7, 2, 3, 0, 2, 0), (6, 4, 2, 1, 2, 0), (9, 5, 3, 1, 3, 0),
              (5, 2, 2, 0, 2, 1), (8, 3, 4, 2, 2, 0), (3, 1, 3, 0, 1, 0)]


@pytest.mark.parametrize("function", ll.POOL_FUNCTIONS)
def test_pooling_matches_model(function: str) -> None:
    kind = "max" if "max" in function else "avg"
    for index, (dim_in, channels, kernel, padding, stride, grow) in enumerate(POOL_CASES):
        x = random_data(np.random.default_rng(index), (dim_in, dim_in, channels), 8, "full")
        dim_out = natural_out(dim_in, kernel, padding, stride) + grow
        kwargs = dict(kernel=kernel, padding=padding, stride=stride, dim_out=dim_out)
        out = ch.legacy_pool(function, x, **kwargs)
        np.testing.assert_array_equal(out, model.pool(kind, x, **kwargs), err_msg=str(POOL_CASES[index]))


def test_average_pool_truncates_toward_zero_and_counts_valid_taps() -> None:
    x = np.array([[-1, -2], [-2, -2]], np.int8).reshape(2, 2, 1)
    # One 2x2 window: -7 / 4 -> -1 (truncation), not -2 (floor) nor -2 (round).
    assert ch.legacy_pool("arm_avepool_q7_HWC", x, kernel=2, padding=0, stride=2, dim_out=1).item() == -1
    # Padding 1: the top-left window holds only x[0][0]; the average divides by 1, not by 4.
    out = ch.legacy_pool("arm_avepool_q7_HWC", x, kernel=2, padding=1, stride=2, dim_out=2)
    assert out[0, 0, 0] == -1 and out[1, 1, 0] == -2
    out = ch.legacy_pool("arm_maxpool_q7_HWC", x, kernel=2, padding=1, stride=2, dim_out=2)
    assert out.reshape(-1).tolist() == [-1, -2, -2, -2]


@pytest.mark.parametrize("function", ("arm_relu_q7", "arm_relu_q15"))
def test_relu_through_the_legacy_header(function: str) -> None:
    x = random_data(np.random.default_rng(5), (300,), bits_of(function), "full")
    np.testing.assert_array_equal(ch.legacy_activation(function, x), model.relu(x))


# ---------------------------------------------------------------------------------------------------------------
# Softmax
# ---------------------------------------------------------------------------------------------------------------

def softmax_inputs(bits: int) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    dtype = model.dtype_for(bits)
    info = np.iinfo(dtype)
    vectors = [np.array([0], dtype), np.array([info.min], dtype), np.array([info.max, info.min], dtype),
               np.full(10, 5, dtype), np.arange(-20, 20).astype(dtype)]
    for length in (2, 7, 16, 40, 257):
        for top in (4, 12, 40, int(info.max)):
            vectors.append(rng.integers(-top, top, size=length, endpoint=True).astype(dtype))
    return vectors


@pytest.mark.parametrize("function", ("arm_softmax_q7", "arm_softmax_q15"))
def test_softmax_matches_model(function: str) -> None:
    bits = bits_of(function)
    reference = model.softmax_q7 if bits == 8 else model.softmax_q15
    for x in softmax_inputs(bits):
        np.testing.assert_array_equal(ch.legacy_softmax(function, x), reference(x), err_msg=str(x))


def test_softmax_hand_computed() -> None:
    # q7, one element: sum = 2^7, 2^20 / 2^7 = 8192, >> 5 = 256, saturated to 127.
    assert ch.legacy_softmax("arm_softmax_q7", np.array([3], np.int8)).tolist() == [127]
    # q7, [0, -1, -9]: base -8; sum = 2^7 + 2^7 + 2^0 = 257; 2^20 // 257 = 4080; shifts 5, 6, 14.
    assert ch.legacy_softmax("arm_softmax_q7", np.array([0, -1, -9], np.int8)).tolist() == [127, 63, 0]
    # q15, [0, -1, -16]: base -16, -16 does not count; sum = 2^16 + 2^15; 2^32 // sum = 43690; shifts 1, 2.
    out = ch.legacy_softmax("arm_softmax_q15", np.array([0, -1, -16], np.int16))
    assert out.tolist() == [21845, 10922, 0]
    # Values equal to base add nothing to the sum (were they counted, 64 of them would lower 2^32 / sum).
    out = ch.legacy_softmax("arm_softmax_q15", np.array([0, -1] + [-16] * 64, np.int16))
    assert out[:3].tolist() == [21845, 10922, 0] and not out[2:].any()


def test_softmax_with_batch_is_row_by_row() -> None:
    rng = np.random.default_rng(9)
    x = rng.integers(-30, 30, size=(5, 11)).astype(np.int8)
    out = ch.legacy_softmax("arm_softmax_with_batch_q7", x)
    np.testing.assert_array_equal(out, model.softmax_q7(x))
    np.testing.assert_array_equal(out[2], ch.legacy_softmax("arm_softmax_q7", x[2]))


# ---------------------------------------------------------------------------------------------------------------
# Sigmoid / tanh tables
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ("sigmoid", "tanh"))
def test_activations_direct_q7_exhaustive(kind: str) -> None:
    x = np.arange(-128, 128, dtype=np.int8)
    for int_width in range(0, 6):  # 4 and 5: beyond Arm's range, saturating here
        out = ch.legacy_activation("arm_nn_activations_direct_q7", x, int_width=int_width, kind=kind)
        np.testing.assert_array_equal(out, model.activations_direct_q7(x, int_width, kind), err_msg=str(int_width))


@pytest.mark.parametrize("kind", ("sigmoid", "tanh"))
def test_activations_direct_q15_exhaustive(kind: str) -> None:
    x = np.arange(-32768, 32768, dtype=np.int16)
    for int_width in range(0, 14):  # 12 and 13: beyond Arm's range, saturating here
        out = np.concatenate([ch.legacy_activation("arm_nn_activations_direct_q15", half, int_width=int_width,
                                                   kind=kind) for half in np.split(x, 2)])  # size is a uint16_t
        np.testing.assert_array_equal(out, model.activations_direct_q15(x, int_width, kind), err_msg=str(int_width))


def test_activation_tables_hand_checked_values() -> None:
    """Entries from the construction floor(f(s/16) * 2^B + 0.5), computed by hand."""
    def q7(kind: str, x: int) -> int:
        data = np.array([x], np.int8)
        return int(ch.legacy_activation("arm_nn_activations_direct_q7", data, int_width=3, kind=kind)[0])

    def q15(kind: str, x: int, int_width: int) -> int:
        data = np.array([x], np.int16)
        return int(ch.legacy_activation("arm_nn_activations_direct_q15", data, int_width=int_width, kind=kind)[0])

    assert q7("sigmoid", 0) == 64 and q7("tanh", 0) == 0
    assert q7("sigmoid", 127) == 127 and q7("sigmoid", -128) == 0     # sigmoid(+-8)
    assert q7("tanh", -128) == -128 and q7("tanh", 127) == 127        # tanh(-8) * 128 = -127.99997
    assert q7("tanh", 16) == 97                                       # tanh(1) * 128 = 97.48
    assert q15("sigmoid", 0, 3) == 16384
    assert q15("sigmoid", 1 << 12, 3) == 23955                        # sigmoid(1) * 32768 = 23955.4
    # Half way between the grid points 1 and 17/16 (Q3.12 input): the mean of the two entries, floored.
    t16, t17 = (math.floor(32768 / (1 + math.exp(-s / 16)) + 0.5) for s in (16, 17))
    assert q15("sigmoid", (16 << 8) + 128, 3) == (t16 + t17) // 2
    # The top grid point (index 0x7F) is not interpolated.
    assert q15("tanh", (127 << 8) + 255, 3) == min(math.floor(math.tanh(127 / 16) * 32768 + 0.5), 32767)


def test_tables_source_is_generated_by_the_model() -> None:
    path = ch.CMSIS_DIR / "Source" / "NNSupportFunctions" / "arm_nn_legacy_tables.c"
    assert path.read_text() == model.tables_c_source()


# ---------------------------------------------------------------------------------------------------------------
# Builds
# ---------------------------------------------------------------------------------------------------------------

def compile_c(compiler: str, flags: list[str], sources: list[Path], tmp_path: Path) -> None:
    for source in sources:
        command = [compiler, *STRICT, *flags, "-I", str(ch.CMSIS_DIR / "Include"), "-c", str(source), "-o",
                   str(tmp_path / (source.stem + ".o"))]
        result = subprocess.run(command, capture_output=True, text=True)
        assert result.returncode == 0, f"{' '.join(command)}\n{result.stderr}"


@pytest.mark.parametrize("target", CROSS_TARGETS)
def test_legacy_sources_build_for_cortex_m(target: str, tmp_path: Path) -> None:
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not installed")
    sources = legacy_sources()
    assert len(sources) == 29
    compile_c("arm-none-eabi-gcc", CROSS_TARGETS[target], sources, tmp_path)


def test_legacy_header_coexists_with_cmsis_dsp_types(tmp_path: Path) -> None:
    """Included after CMSIS-DSP's arm_math_types.h (here a stand-in with its guard and types), the header does
    not redeclare q7_t or arm_status; included alone, it declares them. Both with the strict flags."""
    dsp_stub = tmp_path / "arm_math_types.h"
    dsp_stub.write_text("#ifndef _ARM_MATH_TYPES_H_\n#define _ARM_MATH_TYPES_H_\n#include <stdint.h>\n"
                        "typedef int8_t q7_t;\ntypedef int16_t q15_t;\ntypedef int32_t q31_t;\n"
                        "typedef int64_t q63_t;\ntypedef float float32_t;\n"
                        "typedef enum { ARM_MATH_SUCCESS = 0, ARM_MATH_ARGUMENT_ERROR = -1, ARM_MATH_LENGTH_ERROR = -2,"
                        " ARM_MATH_SIZE_MISMATCH = -3 } arm_status;\n#endif\n")
    body = ("int main(void) { q7_t v[4] = {1, 2, 3, 4}; q7_t o[1]; q7_t w[4] = {1, 1, 1, 1};\n"
            "  arm_status s = arm_fully_connected_q7(v, w, 4, 1, 0, 0, 0, o, 0);\n"
            "  return s == ARM_MATH_SUCCESS && o[0] == 10 ? 0 : 1; }\n")
    with_dsp = tmp_path / "with_dsp.c"
    with_dsp.write_text('#include "arm_math_types.h"\n#include "arm_nnfunctions_legacy.h"\n' + body)
    alone = tmp_path / "alone.c"
    alone.write_text('#include "arm_nnfunctions_legacy.h"\n'
                     "_Static_assert(ARM_MATH_SIZE_MISMATCH == -3, \"CMSIS-DSP value\");\n" + body)
    compile_c(ch.COMPILER, ["-I", str(tmp_path), "-std=c11"], [with_dsp, alone], tmp_path)
    # And the program runs against the library.
    exe = tmp_path / "alone"
    command = [ch.COMPILER, *STRICT, "-std=c11", "-I", str(ch.CMSIS_DIR / "Include"), str(alone),
               *map(str, ch.library_sources()), "-o", str(exe)]
    assert subprocess.run(command, capture_output=True).returncode == 0
    assert subprocess.run([str(exe)]).returncode == 0
