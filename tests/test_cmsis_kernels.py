# SPDX-License-Identifier: Apache-2.0
# Part of nnscons; written from the published CMSIS-NN API, not derived from its source.
"""Bit-exactness of the portable CMSIS-NN kernels (``cmsis/``) against TFLite Micro.

Each case builds a single-op int8 or int16x8 model with random data and random quantization, runs it in the
TFLite Micro interpreter, derives the kernel parameters from the model's quantization the way TFLite does
(offsets, QuantizeMultiplier, activation ranges, padding) and asserts that the kernel called through ctypes
produces exactly the same output. The SEANet int16x8 layers in shared/models are checked against their goldens.
Raw-value helpers (relu, reshape, concatenation) and the scratch-size functions are checked directly.
"""
from __future__ import annotations

import math
import zlib
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pytest
import tflite
from tflite_micro.python.tflite_micro import runtime

import cmsis_host as ch
import tflite_builder as tb

pytestmark = pytest.mark.slow   # compiles the kernels, runs them against TFLite Micro

SEANET = Path(__file__).resolve().parents[1] / ".." / "shared" / "models" / "seanet16x8"
SEEDS = (0, 1)
TFLM_ARENA_BYTES = 512 * 1024
SUCCESS = 0
ARG_ERROR = -1


# ---------------------------------------------------------------------------------------------------------------
# TFLite-side helpers
# ---------------------------------------------------------------------------------------------------------------

def run_tflm(model: bytes, *inputs: np.ndarray) -> np.ndarray:
    interpreter = runtime.Interpreter.from_bytes(model, arena_size=TFLM_ARENA_BYTES)
    for index, value in enumerate(inputs):
        interpreter.set_input(value, index)
    interpreter.invoke()
    return interpreter.get_output(0)


def activation_range(activation: str, scale: float, zero_point: int, dtype: type) -> tuple[int, int]:
    """TFLite CalculateActivationRangeQuantized (float32 division, round half away from zero)."""
    info = np.iinfo(dtype)
    lo, hi = int(info.min), int(info.max)

    def quantize(value: float) -> int:
        return zero_point + ch.round_half_away(float(np.float32(value) / np.float32(scale)))

    if activation == "RELU":
        return max(lo, quantize(0.0)), hi
    if activation == "RELU6":
        return max(lo, quantize(0.0)), min(hi, quantize(6.0))
    if activation == "RELU_N1_TO_1":
        return max(lo, quantize(-1.0)), min(hi, quantize(1.0))
    return lo, hi


def per_channel_multipliers(input_scale: float, weight_scales: Sequence[float],
                            output_scale: float) -> tuple[list[int], list[int]]:
    """Conv/depthwise: QuantizeMultiplier(double(s_in) * double(s_w[c]) / double(s_out)) per channel."""
    pairs = [ch.quantize_multiplier(float(input_scale) * float(s) / float(output_scale)) for s in weight_scales]
    return [m for m, _ in pairs], [s for _, s in pairs]


def case_rng(case: str, seed: int, *salt: int) -> np.random.Generator:
    """A generator that depends on the case name, the seed and the test (salt), reproducibly."""
    return np.random.default_rng([seed, zlib.crc32(case.encode()), *salt])


def random_scale(rng: np.random.Generator, lo: float, hi: float) -> float:
    """Log-uniform in [lo, hi], rounded to float32 (what the model stores)."""
    return float(np.float32(math.exp(rng.uniform(math.log(lo), math.log(hi)))))


def random_ints(rng: np.random.Generator, shape: Sequence[int], dtype: type) -> np.ndarray:
    info = np.iinfo(dtype)
    return rng.integers(int(info.min), int(info.max) + 1, size=shape, dtype=dtype)


def spread_ints(rng: np.random.Generator, shape: Sequence[int], dtype: type, zero_point: int = 0) -> np.ndarray:
    """Random quantized values whose real magnitudes vary widely (a full-range draw, moved towards the zero point
    by a factor 2^0 .. 2^10), so that clamped activations still see many values inside their range."""
    divisors = 2.0 ** rng.integers(0, 11, size=shape)
    values = zero_point + np.trunc((random_ints(rng, shape, dtype).astype(np.float64) - zero_point) / divisors)
    info = np.iinfo(dtype)
    return np.clip(values, info.min, info.max).astype(dtype)


def scale_covering(rng: np.random.Generator, real: np.ndarray, dtype: type, activation: str) -> float:
    """A random output scale that represents the typical magnitude of `real` with plenty of codes
    (and, for RELU_N1_TO_1, leaves more than a few codes in [-1, 1])."""
    codes = 40.0 if dtype == np.int8 else 8000.0
    scale = max(float(np.percentile(np.abs(real), 75)), 1e-6) / codes * rng.uniform(0.5, 2.0)
    if activation == "RELU_N1_TO_1":
        scale = min(scale, 1.0 / codes)
    return float(np.float32(scale))


def output_scale_for(rng: np.random.Generator, accumulator_scale: float, taps: int, dtype: type) -> float:
    """An output scale putting a typical accumulator well inside the output range (with some saturation)."""
    typical = accumulator_scale * (74.0 if dtype == np.int8 else 19000.0) * 74.0 * math.sqrt(taps)
    return float(np.float32(typical / (40.0 if dtype == np.int8 else 10000.0) * rng.uniform(0.5, 2.0)))


def quantized_padding(size_hw: Sequence[int], kernel_hw: Sequence[int], stride: Sequence[int],
                      dilation: Sequence[int], padding: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """(output (h, w), top/left padding (h, w)) as TFLite computes them."""
    out = tuple(tb.conv_output_size(size_hw[i], kernel_hw[i], stride[i], dilation[i], padding) for i in range(2))
    pad = tuple(tb.padding_before(size_hw[i], kernel_hw[i], stride[i], dilation[i], out[i]) if padding == "SAME"
                else 0 for i in range(2))
    return out, pad


def assert_bit_exact(actual: np.ndarray, expected: np.ndarray) -> None:
    expected = np.asarray(expected).reshape(actual.shape)
    assert actual.dtype == expected.dtype
    mismatches = int(np.count_nonzero(actual != expected))
    worst = int(np.max(np.abs(actual.astype(np.int64) - expected.astype(np.int64)))) if mismatches else 0
    assert mismatches == 0, f"{mismatches}/{actual.size} values differ (max |diff| {worst})"


# ---------------------------------------------------------------------------------------------------------------
# Convolution s8
# ---------------------------------------------------------------------------------------------------------------

# (input NHWC, kernel (h, w), C_OUT, stride, padding, dilation, activation, specialised entry point)
CONV_S8_CASES = {
    "3x3_s1_same_relu": ((1, 8, 8, 5), (3, 3), 7, (1, 1), "SAME", (1, 1), "RELU", "arm_convolve_s8"),
    "3x3_s2_valid": ((1, 9, 9, 3), (3, 3), 4, (2, 2), "VALID", (1, 1), "NONE", "arm_convolve_s8"),
    "3x3_s2_same_relu6": ((1, 8, 7, 4), (3, 3), 6, (2, 2), "SAME", (1, 1), "RELU6", "arm_convolve_s8"),
    "3x2_s21_same": ((1, 7, 6, 3), (3, 2), 5, (2, 1), "SAME", (1, 1), "RELU_N1_TO_1", "arm_convolve_s8"),
    "dilation2_same": ((1, 10, 9, 3), (3, 3), 4, (1, 1), "SAME", (2, 2), "NONE", "arm_convolve_s8"),
    "dilation2_valid_s2": ((1, 11, 11, 2), (3, 3), 3, (2, 2), "VALID", (2, 2), "RELU", "arm_convolve_s8"),
    "1x1_fast": ((1, 5, 5, 8), (1, 1), 6, (1, 1), "VALID", (1, 1), "NONE", "arm_convolve_1x1_s8_fast"),
    "1x1_odd_channels": ((1, 4, 6, 3), (1, 1), 5, (1, 1), "SAME", (1, 1), "RELU", "arm_convolve_1x1_s8_fast"),
    "1x1_stride2": ((1, 7, 7, 4), (1, 1), 3, (2, 2), "VALID", (1, 1), "NONE", "arm_convolve_1x1_s8"),
    "1xn_same": ((1, 1, 12, 4), (1, 3), 5, (1, 1), "SAME", (1, 1), "RELU6", "arm_convolve_1_x_n_s8"),
    "1xn_valid_s2": ((1, 1, 16, 8), (1, 5), 4, (2, 2), "VALID", (1, 1), "NONE", "arm_convolve_1_x_n_s8"),
    "batch3": ((3, 6, 6, 3), (3, 3), 4, (1, 1), "SAME", (1, 1), "RELU", "arm_convolve_s8"),
    "batch2_1x1": ((2, 3, 3, 4), (1, 1), 3, (1, 1), "VALID", (1, 1), "NONE", "arm_convolve_1x1_s8_fast"),
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case", sorted(CONV_S8_CASES))
def test_conv_s8_matches_tflm(case: str, seed: int) -> None:
    x_shape, kernel, out_c, stride, padding, dilation, activation, direct = CONV_S8_CASES[case]
    rng = case_rng(case, seed)
    in_c = x_shape[3]
    s_in, zp_in = random_scale(rng, 0.005, 0.1), int(rng.integers(-128, 128))
    w_scales = [random_scale(rng, 0.002, 0.02) for _ in range(out_c)]
    s_out = output_scale_for(rng, s_in * float(np.mean(w_scales)), kernel[0] * kernel[1] * in_c, np.int8)
    zp_out = int(rng.integers(-100, 100))
    weights = rng.integers(-127, 128, size=(out_c, *kernel, in_c), dtype=np.int8)
    bias = rng.integers(-4000, 4000, size=out_c).astype(np.int32)
    x = random_ints(rng, x_shape, np.int8)

    model = tb.conv2d(x_shape, tb.Quant([s_in], [zp_in]), weights, w_scales, bias, tb.Quant([s_out], [zp_out]),
                      stride=stride, padding=padding, dilation=dilation, activation=activation)
    expected = run_tflm(model, x)

    out_hw, pad = quantized_padding(x_shape[1:3], kernel, stride, dilation, padding)
    mults, shifts = per_channel_multipliers(s_in, tb.float32(w_scales), s_out)
    common = dict(input_offset=-zp_in, output_offset=zp_out, multipliers=mults, shifts=shifts, stride=stride,
                  padding=pad, dilation=dilation, act=activation_range(activation, s_out, zp_out, np.int8))
    for function in ("arm_convolve_wrapper_s8", direct):
        status, actual = ch.conv_s8(x, weights, bias, out_hw, function=function, **common,
                                    buffer_size=None if function == "arm_convolve_wrapper_s8" else 64 * 1024)
        assert status == SUCCESS, function
        assert_bit_exact(actual, expected)


def test_conv_s8_without_bias_and_null_buffer_rules() -> None:
    rng = np.random.default_rng(7)
    x = random_ints(rng, (1, 5, 5, 3), np.int8)
    weights = rng.integers(-127, 128, size=(4, 3, 3, 3), dtype=np.int8)
    w_scales = [0.01, 0.02, 0.015, 0.005]
    model = tb.conv2d(x.shape, tb.Quant([0.05], [-7]), weights, w_scales, None, tb.Quant([0.9], [4]),
                      padding="VALID")
    expected = run_tflm(model, x)
    mults, shifts = per_channel_multipliers(tb.float32(0.05), tb.float32(w_scales), tb.float32(0.9))
    common = dict(input_offset=7, output_offset=4, multipliers=mults, shifts=shifts)
    status, actual = ch.conv_s8(x, weights, None, (3, 3), **common)
    assert status == SUCCESS
    assert_bit_exact(actual, expected)
    # Like Arm's library, arm_convolve_s8 and arm_convolve_1_x_n_s8 refuse a NULL scratch buffer.
    for function in ("arm_convolve_s8", "arm_convolve_1_x_n_s8"):
        status, _ = ch.conv_s8(x, weights, None, (3, 3), function=function, buffer_size=0, **common)
        assert status == ARG_ERROR, function
    # The 1x1 entry points refuse a kernel they cannot run.
    status, _ = ch.conv_s8(x, weights, None, (3, 3), function="arm_convolve_1x1_s8_fast", **common)
    assert status == ARG_ERROR


# ---------------------------------------------------------------------------------------------------------------
# Depthwise convolution s8
# ---------------------------------------------------------------------------------------------------------------

# (input NHWC, kernel (h, w), depth multiplier, stride, padding, dilation, activation, specialised entry point)
DW_S8_CASES = {
    "3x3_same": ((1, 7, 7, 6), (3, 3), 1, (1, 1), "SAME", (1, 1), "RELU", "arm_depthwise_conv_3x3_s8"),
    "3x3_s2_valid": ((1, 9, 8, 5), (3, 3), 1, (2, 2), "VALID", (1, 1), "NONE", "arm_depthwise_conv_3x3_s8"),
    "5x5_opt": ((1, 8, 8, 4), (5, 5), 1, (1, 1), "SAME", (1, 1), "RELU6", "arm_depthwise_conv_s8_opt"),
    "2x3_opt_s2": ((1, 7, 9, 3), (2, 3), 1, (2, 1), "SAME", (1, 1), "NONE", "arm_depthwise_conv_s8_opt"),
    "mult2": ((1, 6, 6, 3), (3, 3), 2, (1, 1), "SAME", (1, 1), "NONE", "arm_depthwise_conv_s8"),
    "mult3_s2_relu6": ((1, 7, 7, 2), (3, 3), 3, (2, 2), "SAME", (1, 1), "RELU6", "arm_depthwise_conv_s8"),
    "dilation2": ((1, 9, 9, 4), (3, 3), 1, (1, 1), "SAME", (2, 2), "RELU", "arm_depthwise_conv_s8"),
    "dilation2_mult2": ((1, 10, 8, 2), (3, 3), 2, (1, 1), "VALID", (2, 2), "NONE", "arm_depthwise_conv_s8"),
    "batch2": ((2, 5, 5, 3), (3, 3), 1, (1, 1), "SAME", (1, 1), "NONE", "arm_depthwise_conv_s8"),
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case", sorted(DW_S8_CASES))
def test_depthwise_s8_matches_tflm(case: str, seed: int) -> None:
    x_shape, kernel, mult, stride, padding, dilation, activation, direct = DW_S8_CASES[case]
    rng = case_rng(case, seed, 2)
    out_c = x_shape[3] * mult
    s_in, zp_in = random_scale(rng, 0.005, 0.1), int(rng.integers(-128, 128))
    w_scales = [random_scale(rng, 0.002, 0.05) for _ in range(out_c)]
    s_out = output_scale_for(rng, s_in * float(np.mean(w_scales)), kernel[0] * kernel[1], np.int8)
    zp_out = int(rng.integers(-100, 100))
    weights = rng.integers(-127, 128, size=(1, *kernel, out_c), dtype=np.int8)
    bias = rng.integers(-2000, 2000, size=out_c).astype(np.int32)
    x = random_ints(rng, x_shape, np.int8)

    model = tb.depthwise_conv2d(x_shape, tb.Quant([s_in], [zp_in]), weights, w_scales, bias,
                                tb.Quant([s_out], [zp_out]), depth_multiplier=mult, stride=stride,
                                padding=padding, dilation=dilation, activation=activation)
    expected = run_tflm(model, x)

    out_hw, pad = quantized_padding(x_shape[1:3], kernel, stride, dilation, padding)
    mults, shifts = per_channel_multipliers(s_in, tb.float32(w_scales), s_out)
    for function in ("arm_depthwise_conv_wrapper_s8", direct, "arm_depthwise_conv_s8"):
        status, actual = ch.depthwise_s8(x, weights, bias, out_hw, ch_mult=mult, input_offset=-zp_in,
                                         output_offset=zp_out, multipliers=mults, shifts=shifts, stride=stride,
                                         padding=pad, dilation=dilation,
                                         act=activation_range(activation, s_out, zp_out, np.int8),
                                         function=function)
        assert status == SUCCESS, function
        assert_bit_exact(actual, expected)


# ---------------------------------------------------------------------------------------------------------------
# Fully connected
# ---------------------------------------------------------------------------------------------------------------

def fc_multiplier(s_in: float, s_w: float, s_out: float) -> tuple[int, int]:
    """TFLM FC: QuantizeMultiplier(double(s_in) * double(s_w) / double(s_out)) -- the product in double, not
    float32 (test_fully_connected_scale_product_is_double tells the two apart)."""
    return ch.quantize_multiplier(float(s_in) * float(s_w) / float(s_out))


# (batches, C_IN, C_OUT, activation, with bias)
FC_CASES = {"batch1": (1, 37, 10, "NONE", True), "batch3_relu": (3, 64, 12, "RELU", True),
            "batch4_nobias": (4, 20, 7, "RELU6", False), "wide": (2, 300, 5, "NONE", True)}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case", sorted(FC_CASES))
@pytest.mark.parametrize("dtype", [np.int8, np.int16], ids=["s8", "s16"])
def test_fully_connected_matches_tflm(case: str, seed: int, dtype: type) -> None:
    batches, depth, out_c, activation, with_bias = FC_CASES[case]
    rng = case_rng(case, seed, 3, np.dtype(dtype).itemsize)
    s8 = dtype == np.int8
    s_in = random_scale(rng, 0.005, 0.1) if s8 else random_scale(rng, 1e-4, 1e-3)
    zp_in = int(rng.integers(-128, 128)) if s8 else 0
    s_w = random_scale(rng, 0.002, 0.02)
    s_out = output_scale_for(rng, s_in * s_w, depth, dtype)
    zp_out = int(rng.integers(-100, 100)) if s8 else 0
    weights = rng.integers(-127, 128, size=(out_c, depth), dtype=np.int8)
    bias_type = np.int32 if s8 else np.int64
    bias = rng.integers(-5000, 5000, size=out_c).astype(bias_type) * (1 if s8 else 50) if with_bias else None
    x = random_ints(rng, (batches, depth), dtype)

    model = tb.fully_connected(x.shape, tb.Quant([s_in], [zp_in]), weights, s_w, bias, tb.Quant([s_out], [zp_out]),
                               activation=activation, dtype=dtype)
    expected = run_tflm(model, x)
    multiplier, shift = fc_multiplier(s_in, s_w, s_out)
    status, actual = ch.fully_connected(x, weights, bias, multiplier=multiplier, shift=shift, input_offset=-zp_in,
                                        output_offset=zp_out, act=activation_range(activation, s_out, zp_out, dtype))
    assert status == SUCCESS
    assert_bit_exact(actual, expected)


def test_fully_connected_scale_product_is_double() -> None:
    """Scales for which a float32 s_in * s_w changes a few of these 100k outputs: only the double product
    matches TFLite Micro."""
    rng = np.random.default_rng(2028)
    s_in, s_w, s_out = 0.0840865820646286, 0.004211062099784613, 0.4663844108581543
    weights = rng.integers(-127, 128, size=(500, 64), dtype=np.int8)
    bias = rng.integers(-5000, 5000, size=500).astype(np.int32)
    x = random_ints(rng, (200, 64), np.int8)
    model = tb.fully_connected(x.shape, tb.Quant([s_in], [-9]), weights, s_w, bias, tb.Quant([s_out], [0]))
    multiplier, shift = fc_multiplier(*tb.float32([s_in, s_w, s_out]))
    status, actual = ch.fully_connected(x, weights, bias, multiplier=multiplier, shift=shift, input_offset=9)
    assert status == SUCCESS
    assert_bit_exact(actual, run_tflm(model, x))


def test_vector_sum_s8_folds_bias_and_input_offset() -> None:
    rng = np.random.default_rng(5)
    weights = rng.integers(-128, 128, size=(6, 11), dtype=np.int8)
    bias = rng.integers(-1000, 1000, size=6).astype(np.int32)
    lib = ch.load_library()
    for lhs_offset, rhs_offset, b in ((17, 0, bias), (-3, 2, None), (0, 5, bias)):
        sums = np.zeros(6, dtype=np.int32)
        status = lib.arm_vector_sum_s8(ch.ptr(sums, ch.ctypes.c_int32), 11, 6, ch.ptr(weights, ch.ctypes.c_int8),
                                       lhs_offset, rhs_offset, ch.ptr(b, ch.ctypes.c_int32))
        assert status == SUCCESS
        expected = (0 if b is None else b.astype(np.int64)) + (
            lhs_offset * (weights.astype(np.int64).sum(axis=1) + 11 * rhs_offset) if lhs_offset else 0)
        np.testing.assert_array_equal(sums, expected)


# ---------------------------------------------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------------------------------------------

# (kind, input NHWC, filter (h, w), stride, padding, activation)
POOL_CASES = {
    "avg_3x3_s2_same": ("avg", (1, 9, 8, 5), (3, 3), (2, 2), "SAME", "NONE"),
    "avg_2x2_valid": ("avg", (1, 6, 6, 4), (2, 2), (2, 2), "VALID", "NONE"),
    "avg_global": ("avg", (1, 5, 7, 3), (5, 7), (1, 1), "VALID", "NONE"),
    "avg_batch2_same_relu6": ("avg", (2, 7, 5, 3), (3, 2), (1, 2), "SAME", "RELU6"),
    "max_3x3_s2_same": ("max", (1, 9, 8, 5), (3, 3), (2, 2), "SAME", "NONE"),
    "max_2x2_valid": ("max", (1, 6, 6, 4), (2, 2), (2, 2), "VALID", "NONE"),
    "max_batch2_same_relu": ("max", (2, 5, 7, 3), (4, 3), (2, 3), "SAME", "RELU"),
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case", sorted(POOL_CASES))
@pytest.mark.parametrize("dtype", [np.int8, np.int16], ids=["s8", "s16"])
def test_pooling_matches_tflm(case: str, seed: int, dtype: type) -> None:
    kind, x_shape, filter_hw, stride, padding, activation = POOL_CASES[case]
    rng = case_rng(case, seed, 4, np.dtype(dtype).itemsize)
    scale = random_scale(rng, 0.01, 0.1) if dtype == np.int8 else random_scale(rng, 1e-4, 1e-3)
    zp = int(rng.integers(-60, 60)) if dtype == np.int8 else 0
    x = random_ints(rng, x_shape, dtype)
    model = tb.pool2d(kind, x_shape, tb.Quant([scale], [zp]), filter_hw=filter_hw, stride=stride, padding=padding,
                      activation=activation, dtype=dtype)
    expected = run_tflm(model, x)
    out_hw, pad = quantized_padding(x_shape[1:3], filter_hw, stride, (1, 1), padding)
    status, actual = ch.pool(kind, x, filter_hw, out_hw, stride=stride, padding=pad,
                             act=activation_range(activation, scale, zp, dtype))
    assert status == SUCCESS
    assert_bit_exact(actual, expected)


# ---------------------------------------------------------------------------------------------------------------
# Softmax
# ---------------------------------------------------------------------------------------------------------------

def softmax_s8_params(input_scale: float, beta: float) -> tuple[int, int, int]:
    """TFLM int8 softmax: (mult, shift, diff_min) with 5 integer bits for the scaled difference."""
    integer_bits = 5
    real = min(float(np.float32(beta)) * float(input_scale) * (1 << (31 - integer_bits)), (1 << 31) - 1.0)
    mult, shift = ch.quantize_multiplier(real)
    radius = math.floor(((1 << integer_bits) - 1) * (1 << (31 - integer_bits)) / (1 << shift))
    return mult, shift, -radius


# (shape, beta, input scale range)
SOFTMAX_S8_CASES = {"row10": ((1, 10), 1.0), "rows3x37_beta0.5": ((3, 37), 0.5), "rank4_beta2": ((2, 3, 4, 9), 2.0),
                    "row1000_beta1.3": ((1, 1000), 1.3), "row2": ((5, 2), 0.7)}


@pytest.mark.parametrize("seed", SEEDS + (2, 3))
@pytest.mark.parametrize("case", sorted(SOFTMAX_S8_CASES))
def test_softmax_s8_matches_tflm(case: str, seed: int) -> None:
    shape, beta = SOFTMAX_S8_CASES[case]
    rng = case_rng(case, seed, 5)
    scale, zp = random_scale(rng, 0.005, 0.2), int(rng.integers(-60, 60))
    x = random_ints(rng, shape, np.int8)
    expected = run_tflm(tb.softmax(shape, tb.Quant([scale], [zp]), beta=beta), x)
    mult, shift, diff_min = softmax_s8_params(scale, beta)
    assert_bit_exact(ch.softmax_s8(x, mult=mult, shift=shift, diff_min=diff_min), expected)


SOFTMAX_S16_CASES = {"row10": ((1, 10), 1.0), "rows4x33_beta0.5": ((4, 33), 0.5), "rank4_beta2": ((2, 3, 2, 17), 2.0),
                     "row600": ((1, 600), 1.0)}


@pytest.mark.parametrize("seed", SEEDS + (2, 3))
@pytest.mark.parametrize("case", sorted(SOFTMAX_S16_CASES))
def test_softmax_s16_matches_tflm(case: str, seed: int) -> None:
    shape, beta = SOFTMAX_S16_CASES[case]
    rng = case_rng(case, seed, 6)
    scale = random_scale(rng, 2e-5, 1e-3)  # small scales put most differences inside the table's [-10, 0]
    x = random_ints(rng, shape, np.int16)
    expected = run_tflm(tb.softmax(shape, tb.Quant([scale], [0]), beta=beta, dtype=np.int16), x)
    mult, shift = ch.quantize_multiplier(float(scale) * float(np.float32(beta)) / (10.0 / 65535.0))
    exp_lut, one_by_one_lut = ch.softmax_s16_luts()
    status, actual = ch.softmax_s16(x, mult=mult, shift=shift, exp_lut=exp_lut, one_by_one_lut=one_by_one_lut)
    assert status == SUCCESS
    assert_bit_exact(actual, expected)


def test_softmax_s16_many_rows_pin_the_table_construction() -> None:
    """Enough rows to reach the reciprocal-table entries where building the tables in double instead of float32
    would differ by one (entries 160 and 294): only the float32 construction matches TFLite Micro."""
    rng = np.random.default_rng(99)
    x = random_ints(rng, (4000, 10), np.int16)
    scale = 5.7463163102511317e-05
    expected = run_tflm(tb.softmax(x.shape, tb.Quant([scale], [0]), dtype=np.int16), x)
    mult, shift = ch.quantize_multiplier(float(tb.float32(scale)) / (10.0 / 65535.0))
    exp_lut, one_by_one_lut = ch.softmax_s16_luts()
    status, actual = ch.softmax_s16(x, mult=mult, shift=shift, exp_lut=exp_lut, one_by_one_lut=one_by_one_lut)
    assert status == SUCCESS
    assert_bit_exact(actual, expected)


def test_softmax_s16_tables_shape_and_ends() -> None:
    exp_lut, one_by_one_lut = ch.softmax_s16_luts()
    assert exp_lut.shape == one_by_one_lut.shape == (513,)
    assert exp_lut[-1] == 32767 and one_by_one_lut[0] == 32767  # exp(0) and 1/(1+0) saturate
    assert one_by_one_lut[-1] == 16384                           # 1/(1+1)
    assert abs(int(exp_lut[0]) - math.exp(-10) * 32768) <= 1
    assert np.all(np.diff(exp_lut.astype(int)) >= 0) and np.all(np.diff(one_by_one_lut.astype(int)) <= 0)
    status, _ = ch.softmax_s16(np.zeros((1, 4), np.int16), mult=1 << 30, shift=0, exp_lut=exp_lut,
                               one_by_one_lut=one_by_one_lut)
    assert status == SUCCESS


# ---------------------------------------------------------------------------------------------------------------
# Elementwise add / mul
# ---------------------------------------------------------------------------------------------------------------

def add_params(s1: float, s2: float, s_out: float, dtype: type) -> dict[str, int]:
    """TFLM CalculateOpDataAdd: both inputs rescaled to twice the larger input scale, left shift 20 (int8) or
    15 (int16) for headroom."""
    left_shift = 20 if dtype == np.int8 else 15
    twice_max = 2.0 * max(float(s1), float(s2))
    m1, sh1 = ch.quantize_multiplier(float(s1) / twice_max)
    m2, sh2 = ch.quantize_multiplier(float(s2) / twice_max)
    mo, sho = ch.quantize_multiplier(twice_max / ((1 << left_shift) * float(s_out)))
    return dict(input_1_mult=m1, input_1_shift=sh1, input_2_mult=m2, input_2_shift=sh2, left_shift=left_shift,
                out_mult=mo, out_shift=sho)


ELEMENTWISE_CASES = {"none": ((1, 5, 6, 7), "NONE"), "relu": ((2, 4, 4, 3), "RELU"), "relu6": ((1, 33), "RELU6"),
                     "n1_to_1": ((1, 3, 9), "RELU_N1_TO_1")}


def random_elementwise_quant(rng: np.random.Generator, dtype: type) -> list[tuple[float, int]]:
    if dtype == np.int8:
        return [(random_scale(rng, 0.005, 0.1), int(rng.integers(-128, 128))) for _ in range(3)]
    return [(random_scale(rng, 1e-4, 2e-3), 0) for _ in range(3)]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case", sorted(ELEMENTWISE_CASES))
@pytest.mark.parametrize("dtype", [np.int8, np.int16], ids=["s8", "s16"])
def test_add_matches_tflm(case: str, seed: int, dtype: type) -> None:
    shape, activation = ELEMENTWISE_CASES[case]
    rng = case_rng(case, seed, 7, np.dtype(dtype).itemsize)
    (s1, z1), (s2, z2), (_, zo) = random_elementwise_quant(rng, dtype)
    a, b = spread_ints(rng, shape, dtype, z1), spread_ints(rng, shape, dtype, z2)
    so = scale_covering(rng, s1 * (a - float(z1)) + s2 * (b - float(z2)), dtype, activation)
    model = tb.add(shape, tb.Quant([s1], [z1]), tb.Quant([s2], [z2]), tb.Quant([so], [zo]), activation=activation,
                   dtype=dtype)
    expected = run_tflm(model, a, b)
    status, actual = ch.elementwise_add(a, b, input_1_offset=-z1, input_2_offset=-z2, out_offset=zo,
                                        act=activation_range(activation, so, zo, dtype),
                                        **add_params(s1, s2, so, dtype))
    assert status == SUCCESS
    assert_bit_exact(actual, expected)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case", sorted(ELEMENTWISE_CASES))
@pytest.mark.parametrize("dtype", [np.int8, np.int16], ids=["s8", "s16"])
def test_mul_matches_tflm(case: str, seed: int, dtype: type) -> None:
    shape, activation = ELEMENTWISE_CASES[case]
    rng = case_rng(case, seed, 8, np.dtype(dtype).itemsize)
    (s1, z1), (s2, z2), (_, zo) = random_elementwise_quant(rng, dtype)
    a, b = spread_ints(rng, shape, dtype, z1), spread_ints(rng, shape, dtype, z2)
    so = scale_covering(rng, s1 * (a - float(z1)) * s2 * (b - float(z2)), dtype, activation)
    model = tb.mul(shape, tb.Quant([s1], [z1]), tb.Quant([s2], [z2]), tb.Quant([so], [zo]), activation=activation,
                   dtype=dtype)
    expected = run_tflm(model, a, b)
    out_mult, out_shift = ch.quantize_multiplier(float(s1) * float(s2) / float(so))
    status, actual = ch.elementwise_mul(a, b, input_1_offset=-z1, input_2_offset=-z2, out_offset=zo,
                                        out_mult=out_mult, out_shift=out_shift,
                                        act=activation_range(activation, so, zo, dtype))
    assert status == SUCCESS
    assert_bit_exact(actual, expected)


# ---------------------------------------------------------------------------------------------------------------
# s16 convolution and depthwise convolution
# ---------------------------------------------------------------------------------------------------------------

CONV_S16_CASES = {
    "3x3_same_relu": ((1, 7, 7, 4), (3, 3), 5, (1, 1), "SAME", (1, 1), "RELU"),
    "3x4_s2_valid": ((1, 8, 11, 3), (3, 4), 4, (2, 2), "VALID", (1, 1), "NONE"),
    "dilation2": ((1, 9, 9, 2), (3, 3), 3, (1, 1), "SAME", (2, 2), "NONE"),
    "1x1_batch2": ((2, 4, 5, 6), (1, 1), 4, (1, 1), "VALID", (1, 1), "RELU6"),
}


@pytest.mark.parametrize("bias_dtype", [np.int64, np.int32], ids=["bias64", "bias32"])
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case", sorted(CONV_S16_CASES))
def test_conv_s16_matches_tflm(case: str, seed: int, bias_dtype: type) -> None:
    x_shape, kernel, out_c, stride, padding, dilation, activation = CONV_S16_CASES[case]
    rng = case_rng(case, seed, 9)
    in_c = x_shape[3]
    s_in = random_scale(rng, 1e-4, 1e-3)
    w_scales = [random_scale(rng, 0.002, 0.02) for _ in range(out_c)]
    s_out = output_scale_for(rng, s_in * float(np.mean(w_scales)), kernel[0] * kernel[1] * in_c, np.int16)
    weights = rng.integers(-127, 128, size=(out_c, *kernel, in_c), dtype=np.int8)
    bias = rng.integers(-200000, 200000, size=out_c).astype(bias_dtype)
    x = random_ints(rng, x_shape, np.int16)
    model = tb.conv2d(x_shape, tb.Quant([s_in], [0]), weights, w_scales, bias, tb.Quant([s_out], [0]),
                      stride=stride, padding=padding, dilation=dilation, activation=activation, dtype=np.int16,
                      bias_dtype=bias_dtype)
    expected = run_tflm(model, x)
    out_hw, pad = quantized_padding(x_shape[1:3], kernel, stride, dilation, padding)
    mults, shifts = per_channel_multipliers(s_in, tb.float32(w_scales), s_out)
    for function in ("arm_convolve_wrapper_s16", "arm_convolve_s16"):
        status, actual = ch.conv_s16(x, weights, bias, out_hw, multipliers=mults, shifts=shifts, stride=stride,
                                     padding=pad, dilation=dilation,
                                     act=activation_range(activation, s_out, 0, np.int16), function=function)
        assert status == SUCCESS
        assert_bit_exact(actual, expected)


DW_S16_CASES = {
    "3x3_same": ((1, 7, 7, 6), (3, 3), 1, (1, 1), "SAME", (1, 1), "RELU"),
    "mult2_s2": ((1, 8, 7, 3), (3, 3), 2, (2, 2), "SAME", (1, 1), "NONE"),
    "dilation2_valid": ((1, 9, 9, 4), (3, 3), 1, (1, 1), "VALID", (2, 2), "RELU6"),
    "batch2_5x5": ((2, 6, 6, 2), (5, 5), 1, (1, 1), "SAME", (1, 1), "NONE"),
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case", sorted(DW_S16_CASES))
def test_depthwise_s16_matches_tflm(case: str, seed: int) -> None:
    x_shape, kernel, mult, stride, padding, dilation, activation = DW_S16_CASES[case]
    rng = case_rng(case, seed, 10)
    out_c = x_shape[3] * mult
    s_in = random_scale(rng, 1e-4, 1e-3)
    w_scales = [random_scale(rng, 0.002, 0.05) for _ in range(out_c)]
    s_out = output_scale_for(rng, s_in * float(np.mean(w_scales)), kernel[0] * kernel[1], np.int16)
    weights = rng.integers(-127, 128, size=(1, *kernel, out_c), dtype=np.int8)
    bias = rng.integers(-100000, 100000, size=out_c).astype(np.int64)
    x = random_ints(rng, x_shape, np.int16)
    model = tb.depthwise_conv2d(x_shape, tb.Quant([s_in], [0]), weights, w_scales, bias, tb.Quant([s_out], [0]),
                                depth_multiplier=mult, stride=stride, padding=padding, dilation=dilation,
                                activation=activation, dtype=np.int16)
    expected = run_tflm(model, x)
    out_hw, pad = quantized_padding(x_shape[1:3], kernel, stride, dilation, padding)
    mults, shifts = per_channel_multipliers(s_in, tb.float32(w_scales), s_out)
    for function in ("arm_depthwise_conv_wrapper_s16", "arm_depthwise_conv_s16"):
        status, actual = ch.depthwise_s16(x, weights, bias, out_hw, ch_mult=mult, multipliers=mults, shifts=shifts,
                                          stride=stride, padding=pad, dilation=dilation,
                                          act=activation_range(activation, s_out, 0, np.int16), function=function)
        assert status == SUCCESS
        assert_bit_exact(actual, expected)


# ---------------------------------------------------------------------------------------------------------------
# SEANet int16x8 goldens (shared/models/seanet16x8)
# ---------------------------------------------------------------------------------------------------------------

class SingleOp:
    """The one operator of a .tflite file, read with the tflite package."""

    def __init__(self, path: Path) -> None:
        self.model = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
        self.graph = self.model.Subgraphs(0)
        self.op = self.graph.Operators(0)

    def tensor(self, index: int) -> tflite.Tensor:
        return self.graph.Tensors(index)

    def operand(self, position: int) -> Optional[tflite.Tensor]:
        index = self.op.Inputs(position)
        return None if index < 0 else self.tensor(index)

    def output(self) -> tflite.Tensor:
        return self.tensor(self.op.Outputs(0))

    def scales(self, tensor: tflite.Tensor) -> np.ndarray:
        return tensor.Quantization().ScaleAsNumpy().astype(np.float64)

    def data(self, tensor: tflite.Tensor, dtype: type) -> np.ndarray:
        raw = self.model.Buffers(tensor.Buffer()).DataAsNumpy()
        return np.frombuffer(raw.tobytes(), dtype=dtype).reshape(tensor.ShapeAsNumpy())

    def options(self, options_class: type) -> object:
        table = self.op.BuiltinOptions()
        options = options_class()
        options.Init(table.Bytes, table.Pos)
        return options


ACTIVATION_NAMES = {v: k for k, v in tb.ACTIVATION.items()}


def read_csv_ints(path: Path) -> np.ndarray:
    return np.array([int(v) for v in path.read_text().replace("\n", ",").split(",") if v.strip()], dtype=np.int64)


def seanet_files(kind: str) -> list[Path]:
    return sorted((SEANET / kind).glob(f"{kind}*.tflite"), key=lambda p: int(p.stem[len(kind):]))


@pytest.mark.skipif(not SEANET.is_dir(), reason="shared/models/seanet16x8 not available")
@pytest.mark.parametrize("path", seanet_files("conv") if SEANET.is_dir() else [], ids=lambda p: p.stem)
def test_seanet_conv_golden(path: Path) -> None:
    op = SingleOp(path)
    x_t, w_t, b_t, y_t = op.operand(0), op.operand(1), op.operand(2), op.output()
    options = op.options(tflite.Conv2DOptions)
    x = read_csv_ints(path.with_name(f"{path.stem}_input0_int16.csv")).astype(np.int16).reshape(x_t.ShapeAsNumpy())
    golden = read_csv_ints(path.with_name(f"{path.stem}_golden_int16.csv")).astype(np.int16)
    weights = op.data(w_t, np.int8)
    bias = op.data(b_t, np.int64 if b_t.Type() == tflite.TensorType.INT64 else np.int32)
    stride = (options.StrideH(), options.StrideW())
    dilation = (options.DilationHFactor(), options.DilationWFactor())
    padding = "SAME" if options.Padding() == tflite.Padding.SAME else "VALID"
    out_hw, pad = quantized_padding(x.shape[1:3], weights.shape[1:3], stride, dilation, padding)
    assert tuple(out_hw) == tuple(y_t.ShapeAsNumpy()[1:3])
    s_out = float(op.scales(y_t)[0])
    mults, shifts = per_channel_multipliers(float(op.scales(x_t)[0]), op.scales(w_t), s_out)
    act = activation_range(ACTIVATION_NAMES[options.FusedActivationFunction()], s_out, 0, np.int16)
    status, actual = ch.conv_s16(x, weights, bias, out_hw, multipliers=mults, shifts=shifts, stride=stride,
                                 padding=pad, dilation=dilation, act=act)
    assert status == SUCCESS
    assert_bit_exact(actual, golden)


@pytest.mark.skipif(not SEANET.is_dir(), reason="shared/models/seanet16x8 not available")
@pytest.mark.parametrize("path", seanet_files("add") if SEANET.is_dir() else [], ids=lambda p: p.stem)
def test_seanet_add_golden(path: Path) -> None:
    op = SingleOp(path)
    a_t, b_t, y_t = op.operand(0), op.operand(1), op.output()
    assert list(a_t.ShapeAsNumpy()) == list(b_t.ShapeAsNumpy()) == list(y_t.ShapeAsNumpy())
    a = read_csv_ints(path.with_name(f"{path.stem}_input0_int16.csv")).astype(np.int16)
    b = read_csv_ints(path.with_name(f"{path.stem}_input1_int16.csv")).astype(np.int16)
    golden = read_csv_ints(path.with_name(f"{path.stem}_golden_int16.csv")).astype(np.int16)
    s1, s2, so = (float(op.scales(t)[0]) for t in (a_t, b_t, y_t))
    activation = ACTIVATION_NAMES[op.options(tflite.AddOptions).FusedActivationFunction()]
    status, actual = ch.elementwise_add(a, b, input_1_offset=0, input_2_offset=0, out_offset=0,
                                        act=activation_range(activation, so, 0, np.int16),
                                        **add_params(s1, s2, so, np.int16))
    assert status == SUCCESS
    assert_bit_exact(actual, golden)


# ---------------------------------------------------------------------------------------------------------------
# Raw-value helpers and scratch sizes
# ---------------------------------------------------------------------------------------------------------------

def test_relu_and_reshape_and_concatenation() -> None:
    lib = ch.load_library()
    rng = np.random.default_rng(11)
    q7 = random_ints(rng, (300,), np.int8)
    relu, relu6 = q7.copy(), q7.copy()
    lib.arm_relu_q7(ch.ptr(relu, ch.ctypes.c_int8), relu.size)
    lib.arm_relu6_s8(ch.ptr(relu6, ch.ctypes.c_int8), relu6.size)
    np.testing.assert_array_equal(relu, np.maximum(q7, 0))
    np.testing.assert_array_equal(relu6, np.clip(q7, 0, 6))
    q15 = random_ints(rng, (300,), np.int16)
    relu15 = q15.copy()
    lib.arm_relu_q15(ch.ptr(relu15, ch.ctypes.c_int16), relu15.size)
    np.testing.assert_array_equal(relu15, np.maximum(q15, 0))

    copied = np.zeros_like(q7)
    lib.arm_reshape_s8(ch.ptr(q7, ch.ctypes.c_int8), ch.ptr(copied, ch.ctypes.c_int8), q7.size)
    np.testing.assert_array_equal(copied, q7)

    # Concatenate two NHWC tensors [w=N][z=H][y=W][x=C] along each axis in turn.
    first, second = random_ints(rng, (2, 3, 4, 5), np.int8), random_ints(rng, (2, 3, 4, 5), np.int8)
    for axis, name in ((3, "x"), (2, "y"), (1, "z"), (0, "w")):
        expected = np.concatenate([first, second], axis=axis)
        out = np.zeros_like(expected)
        for part, offset in ((first, 0), (second, 5 if axis == 3 else first.shape[axis])):
            n, h, w, c = part.shape
            args = [ch.ptr(part, ch.ctypes.c_int8), c, w, h, n, ch.ptr(out, ch.ctypes.c_int8)]
            if name != "w":
                args.append(expected.shape[axis])
            getattr(lib, f"arm_concatenation_s8_{name}")(*args, offset)
        np.testing.assert_array_equal(out, expected)


def _conv_size(lib, getter: str, stride: tuple[int, int], pad: tuple[int, int], x_shape: Sequence[int],
               w_shape: Sequence[int], dilation: tuple[int, int] = (1, 1)) -> int:
    params = ch.ConvParams(0, 0, ch.tile(stride), ch.tile(pad), ch.tile(dilation), ch.Activation(-128, 127))
    return getattr(lib, getter)(params, ch.dims(*x_shape), ch.dims(*w_shape), ch.dims(1, 1, 1, w_shape[0]))


def test_buffer_sizes_follow_arm_formulas() -> None:
    lib = ch.load_library()
    wrapper = "arm_convolve_wrapper_s8_get_buffer_size"
    # General conv: two int16 im2col columns of align4(KH*KW*C_IN); MVE: 4 * align16(KH*KW*C_IN) bytes.
    for suffix, expected in (("", 2 * 28 * 2), ("_dsp", 2 * 28 * 2), ("_mve", 4 * 32)):
        assert _conv_size(lib, wrapper + suffix, (1, 1), (1, 1), (1, 8, 8, 3), (4, 3, 3, 3)) == expected
    assert lib.arm_convolve_s8_get_buffer_size(ch.dims(1, 8, 8, 3), ch.dims(4, 3, 3, 3)) == 2 * 28 * 2
    # 1x1 stride 1 (fast path): none (DSP: reserved for armclang builds); 1x1 strided: none.
    assert _conv_size(lib, wrapper, (1, 1), (0, 0), (1, 5, 5, 8), (4, 1, 1, 8)) == 0
    assert _conv_size(lib, wrapper + "_mve", (1, 1), (0, 0), (1, 5, 5, 8), (4, 1, 1, 8)) == 0
    assert _conv_size(lib, wrapper + "_dsp", (2, 2), (0, 0), (1, 5, 5, 8), (4, 1, 1, 8)) == 0
    # 1xN: as the general conv on pure C and DSP.
    assert _conv_size(lib, wrapper, (1, 1), (0, 1), (1, 1, 12, 4), (5, 1, 3, 4)) == 2 * 12 * 2

    # Depthwise: the wrapper needs the _opt buffer only for ch_mult 1, one batch, no dilation, non-3x3 (non-MVE).
    def dw(getter: str, x_shape, w_shape, mult: int, pad=(1, 1), dilation=(1, 1)) -> int:
        params = ch.DwConvParams(0, 0, mult, ch.tile((1, 1)), ch.tile(pad), ch.tile(dilation),
                                 ch.Activation(-128, 127))
        out = ch.dims(x_shape[0], x_shape[1], x_shape[2], w_shape[3])
        return getattr(lib, getter)(params, ch.dims(*x_shape), ch.dims(*w_shape), out)

    dw_wrapper = "arm_depthwise_conv_wrapper_s8_get_buffer_size"
    assert dw(dw_wrapper, (1, 8, 8, 6), (1, 5, 5, 6), 1, (2, 2)) == 0
    assert dw(dw_wrapper + "_dsp", (1, 8, 8, 6), (1, 5, 5, 6), 1, (2, 2)) == 6 * 25 * 2
    assert dw(dw_wrapper + "_mve", (1, 8, 8, 6), (1, 5, 5, 6), 1, (2, 2)) == 4 * 124 * 25
    assert dw(dw_wrapper + "_dsp", (1, 8, 8, 6), (1, 3, 3, 6), 1) == 0
    assert dw(dw_wrapper + "_mve", (1, 8, 8, 6), (1, 3, 3, 6), 1) == 4 * 124 * 9
    assert dw(dw_wrapper + "_dsp", (1, 8, 8, 3), (1, 5, 5, 6), 2, (2, 2)) == 0
    assert dw(dw_wrapper + "_dsp", (2, 8, 8, 6), (1, 5, 5, 6), 1, (2, 2)) == 0
    assert lib.arm_depthwise_conv_s8_opt_get_buffer_size(ch.dims(1, 8, 8, 6), ch.dims(1, 5, 5, 6)) == 0

    # FC s8: kernel sums on MVE only; avgpool s8: one int32 per channel on DSP only.
    fc_filter = ch.dims(40, 1, 1, 12)
    assert [getattr(lib, "arm_fully_connected_s8_get_buffer_size" + s)(fc_filter) for s in ("", "_dsp", "_mve")] \
        == [0, 0, 48]
    assert [getattr(lib, "arm_avgpool_s8_get_buffer_size" + s)(7, 10) for s in ("", "_dsp", "_mve")] == [0, 40, 0]


def reference_requantize(value: np.ndarray, multiplier: int, shift: int, single_rounding: bool) -> np.ndarray:
    """TFLite MultiplyByQuantizedMultiplier on Python integers (exact), in either rounding mode."""
    out = []
    for v in value.astype(object):
        if single_rounding:
            total = 31 - shift
            out.append((v * multiplier + (1 << (total - 1))) >> total)
            continue
        left, right = max(shift, 0), max(-shift, 0)
        product = v * (1 << left) * multiplier
        high = (product + (1 << 30)) >> 31  # rounding doubling high multiply (no overflow for these inputs)
        rounded = abs(high) >> right
        if (abs(high) & ((1 << right) - 1)) * 2 >= (1 << right) and right > 0:
            rounded += 1  # ties away from zero
        out.append(rounded if high >= 0 else -rounded)
    return np.array(out, dtype=np.int64)


@pytest.mark.parametrize("single_rounding", [False, True], ids=["double_rounding", "single_rounding"])
def test_requantize_rounding_modes(single_rounding: bool) -> None:
    """arm_elementwise_mul_s16 exposes requantize directly (product, multiplier, shift): compare both rounding
    modes (CMSIS_NN_USE_SINGLE_ROUNDING) with an exact integer model of TFLite's two roundings."""
    lib = ch.load_library(("CMSIS_NN_USE_SINGLE_ROUNDING",) if single_rounding else ())
    rng = np.random.default_rng(17)
    a, b = spread_ints(rng, (4000,), np.int16), spread_ints(rng, (4000,), np.int16)
    for real in (0.3, 1.7e-3, 0.75, 2.5e-5, 0.99):  # below 1: no left shift, no int32 wrap-around
        multiplier, shift = ch.quantize_multiplier(real)
        out = np.zeros_like(a)
        status = lib.arm_elementwise_mul_s16(ch.ptr(a, ch.ctypes.c_int16), ch.ptr(b, ch.ctypes.c_int16), 0, 0,
                                             ch.ptr(out, ch.ctypes.c_int16), 0, multiplier, shift, -32768, 32767,
                                             a.size)
        assert status == SUCCESS
        product = a.astype(np.int64) * b.astype(np.int64)
        expected = np.clip(reference_requantize(product, multiplier, shift, single_rounding), -32768, 32767)
        np.testing.assert_array_equal(out, expected.astype(np.int16))


def test_quantize_multiplier_agrees_with_project_quantizer() -> None:
    quantize = pytest.importorskip("nnscons.quantize")
    rng = np.random.default_rng(3)
    for real in np.exp(rng.uniform(math.log(1e-12), math.log(1e4), 500)).tolist() + [0.5, 1.0, 2.0 ** -31]:
        assert quantize.quantize_multiplier(real) == ch.quantize_multiplier(real)
