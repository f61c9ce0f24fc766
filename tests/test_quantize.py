"""Tests for the range methods (site_scons/nnscons/ranges.py) and the quantization tables stage
(site_scons/nnscons/quantize/): Q-format rule, layer constraints, shifts checked by hand, TFLite-style
multipliers, the model's own parameters reproduced from the flatbuffer, and the calibrated schemes on a small
float graph."""
from __future__ import annotations

import math

import numpy as np
import pytest
import tflite

from conftest import SHARED
from nnscons import fileio, ir
from nnscons import quantize as qz
from nnscons import ranges as rg
from nnscons import stats as st
from nnscons.errors import NnsconsError
from nnscons.importers.tflite import import_tflite
from conftest import calibration, small_graph

KWS = SHARED / "models" / "kws_dscnn_int8" / "model.tflite"


# ---- range methods ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("minmax", rg.RangeMethod("minmax")), ("mse", rg.RangeMethod("mse")),
    ("percentile:80", rg.RangeMethod("percentile", 80.0)), ("percentile:99.99", rg.RangeMethod("percentile", 99.99)),
    ("percentile:100", rg.RangeMethod("percentile", 100.0)),
])
def test_parse_range_method(text: str, expected: rg.RangeMethod) -> None:
    assert rg.parse_range_method(text) == expected


@pytest.mark.parametrize("text", ["searching", "percentile:0", "percentile:101", "percentile:", "percentile:-5",
                                  "max", ""])
def test_parse_range_method_rejects(text: str) -> None:
    with pytest.raises(NnsconsError, match="^range: "):
        rg.parse_range_method(text)


def gaussian_with_outliers() -> st.TensorStats:
    g = np.random.default_rng(0).normal(0, 1, 200_000)
    return st.TensorStats.from_array(np.concatenate([g, [30.0, -25.0]]).astype(np.float32))


def test_percentile_clips_outliers_per_side() -> None:
    ts = gaussian_with_outliers()
    assert rg.minmax(ts) == (-25.0, 30.0)
    lo, hi = rg.percentile(ts, 99)
    # the true 99% point of |x| per side of a unit Gaussian is 2.576; the histogram is good to one sub-bin
    for v in (-lo, hi):
        assert 2.576 / 2 ** (1 / st.SUB_BINS) < v < 2.576 * 2 ** (1 / st.SUB_BINS)
    assert rg.percentile(ts, 100) == rg.minmax(ts)
    relu = st.TensorStats.from_array(np.maximum(np.random.default_rng(1).normal(0, 1, 10_000), 0))
    lo, hi = rg.percentile(relu, 80)
    assert lo == 0.0 and 0 < hi < relu.max


def test_mse_picks_a_smaller_range_than_minmax_with_outliers() -> None:
    ts = gaussian_with_outliers()
    for grid in (rg.Grid("asymmetric", 8), rg.Grid("symmetric", 8), rg.Grid("pow2", 8)):
        lo, hi = rg.mse(ts, grid)
        assert -25.0 < lo < -4 and 4 < hi < 30.0, grid
        assert rg.estimated_mse(ts, lo, hi, grid) < rg.estimated_mse(ts, -25.0, 30.0, grid)
    lo, hi = rg.mse(ts, rg.Grid("pow2", 8))
    assert max(-lo, hi) == 16.0                                      # one of the power-of-two candidates
    # a uniform distribution has nothing to clip: mse keeps (nearly) the full range
    uniform = st.TensorStats.from_array(np.random.default_rng(2).uniform(-3, 3, 100_000).astype(np.float32))
    assert rg.mse(uniform, rg.Grid("asymmetric", 8)) == rg.minmax(uniform)


def test_estimated_mse_matches_measured_error() -> None:
    g = np.random.default_rng(3).normal(0, 1, 100_000)
    ts = st.TensorStats.from_array(g.astype(np.float32))
    x = g.astype(np.float32).astype(np.float64)
    for grid in (rg.Grid("asymmetric", 8), rg.Grid("pow2", 8)):
        for lo, hi in ((-8.0, 8.0), (-3.0, 2.0), (-1.0, 1.0)):
            scale, zp = grid.params(lo, hi)
            q = np.clip(np.round(x / scale) + zp, grid.qmin, grid.qmax)
            measured = np.mean((x - (q - zp) * scale) ** 2)
            assert rg.estimated_mse(ts, lo, hi, grid) == pytest.approx(measured, rel=0.1)


# ---- integer helpers -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("r, bits, n", [
    (1.0, 8, 7), (0.75, 8, 7), (0.5, 8, 8), (1.5, 8, 6), (2.0, 8, 6), (2.0000001, 8, 5), (0.1, 8, 10),
    (127.0, 8, 0), (128.0, 8, 0), (200.0, 8, -1), (2.0 ** -20, 8, 27), (0.0, 8, 7), (1.0, 16, 15), (5.0, 16, 12),
])
def test_q_frac_bits(r: float, bits: int, n: int) -> None:
    assert qz.q_frac_bits(r, bits) == n


def test_q_format_names() -> None:
    assert qz.q_format_name(5, 8) == "Q2.5"
    assert qz.q_format_name(10, 8) == "Q-3.10"
    assert qz.q_format_name(0, 8) == "Q7.0"
    assert qz.q_format_name(12, 16) == "Q3.12"


def test_round_half_away() -> None:
    cases = {0.5: 1, -0.5: -1, 1.5: 2, 2.5: 3, -2.5: -3, 0.49999999999999994: 0, -0.49999999999999994: 0,
             3.2: 3, -3.7: -4, 0.0: 0}
    assert {x: qz.round_half_away(x) for x in cases} == cases


@pytest.mark.parametrize("real, expected", [
    (0.5, (1 << 30, 0)), (1.0, (1 << 30, 1)), (0.25, (1 << 30, -1)), (2.0 ** -10, (1 << 30, -9)),
    (0.75, (3 << 29, 0)), (1 - 2.0 ** -40, (1 << 30, 1)),          # rounds up to 2^31 -> halved, shift + 1
    (2.0 ** -32, (1 << 30, -31)), (2.0 ** -33, (0, 0)), (1e-20, (0, 0)), (0.0, (0, 0)),
])
def test_quantize_multiplier_known_values(real: float, expected: tuple[int, int]) -> None:
    assert qz.quantize_multiplier(real) == expected


def test_quantize_multiplier_reconstructs() -> None:
    for real in np.exp(np.random.default_rng(4).uniform(math.log(1e-9), math.log(1e3), 2000)):
        m, s = qz.quantize_multiplier(float(real))
        assert (1 << 30) <= m < (1 << 31)
        assert abs(m * 2.0 ** (s - 31) - real) <= 1e-9 * real
    # rounding is half away from zero (not Python's banker's rounding): 0.5 + 2^-32 has a .5 fraction in Q31
    assert qz.quantize_multiplier(0.5 + 2.0 ** -32) == ((1 << 30) + 1, 0)
    assert qz.quantize_multiplier(0.5 + 3 * 2.0 ** -32) == ((1 << 30) + 2, 0)


# ---- Q-format shifts on a hand graph ---------------------------------------------------------------------------------
def build(graph: ir.Graph, params: dict[str, np.ndarray], stats: "st.Stats | None", quant: str,
          method: str, api: str = "s8") -> qz.QTable:
    """The ranges stage then the quantize stage, as the build runs them."""
    table = rg.range_table(stats, qz.resolve_scheme(graph, quant), method) if stats is not None else None
    return qz.build_qtable(graph, params, table, quant, api)


def hand_graph(w: np.ndarray, b: np.ndarray) -> tuple[ir.Graph, dict[str, np.ndarray]]:
    """x [1,4,4,2] -> max pool 2x2 -> reshape [1,8] -> fully connected (w, b) -> f [1,4] -> softmax -> y."""
    T = ir.Tensor
    tensors = {"x": T("x", [1, 4, 4, 2], "float32"), "p": T("p", [1, 2, 2, 2], "float32"),
               "r": T("r", [1, 8], "float32"), "w": T("w", [4, 8], "float32", is_const=True),
               "b": T("b", [4], "float32", is_const=True), "f": T("f", [1, 4], "float32"),
               "y": T("y", [1, 4], "float32")}
    ops = [ir.Op("pool", "max_pool2d", ["x"], ["p"], {"kernel": [2, 2], "stride": [2, 2], "pad": [0, 0, 0, 0]}),
           ir.Op("flat", "reshape", ["p"], ["r"], {"shape": [1, 8]}),
           ir.Op("fc", "fully_connected", ["r", "w", "b"], ["f"], {"activation": "none"}),
           ir.Op("soft", "softmax", ["f"], ["y"], {"beta": 1.0})]
    return ir.Graph(tensors, ops, ["x"], ["y"]), {"w": w, "b": b}


def hand_stats(ranges: dict[str, tuple[float, float]]) -> st.Stats:
    return st.stats_from_arrays({k: np.array([lo, hi, 0.0], np.float32) for k, (lo, hi) in ranges.items()}, 1)


def test_q7_formats_and_shifts_by_hand() -> None:
    w = np.linspace(-0.75, 0.5, 32, dtype=np.float32).reshape(4, 8)         # max |w| 0.75 -> Q0.7, fw 7
    b = np.array([3.0, -1.0, 0.5, 0.0], np.float32)                         # max |b| 3 -> Q2.5, fb 5
    graph, params = hand_graph(w, b)
    # x needs 1 integer bit (|x| <= 1.9 -> Q1.6, fi 6); the pool output statistics are smaller, but a max
    # pool keeps its input format; f needs 4 integer bits (10 -> Q4.3, fo 3); softmax gives Q0.7
    stats = hand_stats({"x": (-1.2, 1.9), "p": (0.0, 0.4), "r": (0.0, 0.4), "f": (-10.0, 6.0), "y": (0.0, 0.9)})
    qt = build(graph, params, stats, "q7", "minmax")
    tensors, fc = qt.tables["tensors"], qt.tables["layers"]["fc"]
    assert [tensors[n]["qformat"] for n in "xprwbfy"] == ["Q1.6", "Q1.6", "Q1.6", "Q0.7", "Q2.5", "Q4.3", "Q0.7"]
    assert (fc["fi"], fc["fw"], fc["fb"], fc["fo"]) == (6, 7, 5, 3)
    assert fc["bias_shift"] == (6 + 7) - 5 == 8
    assert fc["out_shift"] == (6 + 7) - 3 == 10
    # the same requantization on the s8 kernels: 2^-10 = 2^30 * 2^(shift - 31) with shift 1 - 10
    assert (fc["multiplier"], fc["shift"]) == ([1 << 30], [1 - 10])
    assert fc["input_offset"] == 0 and fc["output_offset"] == 0
    assert tensors["x"]["scale"] == [2.0 ** -6] and tensors["x"]["zero_point"] == [0]
    assert np.array_equal(qt.qparams["w"], np.round(w.astype(np.float64) * 128).astype(np.int8))
    assert qt.qparams["b"].tolist() == [96, -32, 16, 0] and qt.qparams["b"].dtype == np.int8
    assert qt.tables["scheme"] == "q7" and qt.tables["word_bits"] == 8
    # the readable table has the seed's columns, checked by hand above
    row = next(line for line in qt.text.splitlines() if line.startswith("fc "))
    assert row.split() == ["fc", "fully_connected", "Q1.6", "Q0.7", "Q2.5", "Q4.3", "8", "10"]


def test_q_formats_stay_within_the_accumulator() -> None:
    """fo and fb never exceed fi + fw: the shifts stay legal non-negative legacy shifts."""
    w = np.full((4, 8), 100.0, np.float32)                                   # Q7.0, fw 0
    b = np.full(4, 0.001, np.float32)                                        # would be Q-9.16
    graph, params = hand_graph(w, b)
    stats = hand_stats({"x": (-100.0, 100.0), "p": (0, 100.0), "r": (0, 100.0), "f": (-0.1, 0.1), "y": (0, 1)})
    fc = build(graph, params, stats, "q7", "minmax").tables["layers"]["fc"]
    assert (fc["fi"], fc["fw"], fc["fb"], fc["fo"], fc["bias_shift"], fc["out_shift"]) == (0, 0, 0, 0, 0, 0)


def test_q15_words() -> None:
    """q15 for the legacy API: 16-bit weights and biases, and a weight format the 32-bit accumulator can hold."""
    w = np.linspace(-0.75, 0.5, 32, dtype=np.float32).reshape(4, 8)             # Q0.15 from its values
    graph, params = hand_graph(w, np.array([3.0, -1.0, 0.5, 0.0], np.float32))
    stats = hand_stats({"x": (-1.2, 1.9), "p": (0.0, 0.4), "r": (0.0, 0.4), "f": (-10.0, 6.0), "y": (0.0, 0.9)})
    qt = build(graph, params, stats, "q15", "minmax", api="legacy")
    fc = qt.tables["layers"]["fc"]
    # headroom: the input format Q1.14 holds |x| < 2; row 0 has sum|w| = 4.871, bias 3:
    # 2 * 4.871 + 3 = 12.74 < 2^4, so fw <= 30 - 14 - 3 = 13 (not the 15 the values alone would allow)
    assert (fc["fi"], fc["fw"], fc["fb"], fc["fo"]) == (14, 13, 13, 11)
    assert (fc["bias_shift"], fc["out_shift"]) == (14, 16)
    assert qt.tables["tensors"]["y"]["qformat"] == "Q0.15"
    assert qt.qparams["w"].dtype == np.int16 and qt.qparams["b"].dtype == np.int16
    assert qt.tables["tensors"]["f"]["dtype"] == "int16"


def test_q15_weights_give_way_so_the_accumulator_cannot_overflow() -> None:
    """The legacy kernels sum in int32 and wrap: for any input the input format holds, bias << bias_shift plus
    the products must fit, else fw is lowered (legacy API)."""
    w = np.linspace(-0.75, 0.5, 32, dtype=np.float32).reshape(4, 8)             # Q0.15 from its values
    graph, params = hand_graph(w, np.array([7.0, -1.0, 0.5, 0.0], np.float32))  # Q3.12
    stats = hand_stats({"x": (-1.2, 1.9), "p": (0.0, 0.4), "r": (0.0, 0.4), "f": (-10.0, 6.0), "y": (0.0, 0.9)})
    qt = build(graph, params, stats, "q15", "minmax", api="legacy")
    fc = qt.tables["layers"]["fc"]
    # 2 * 4.871 + 7 = 16.74 < 2^5, so fw <= 30 - 14 - 4 = 12
    assert (fc["fi"], fc["fw"], fc["fb"], fc["fo"]) == (14, 12, 12, 11)
    assert (fc["bias_shift"], fc["out_shift"]) == (14, 15)
    assert np.array_equal(qt.qparams["w"], np.round(w.astype(np.float64) * 2 ** 12).astype(np.int16))
    worst = np.abs(qt.qparams["w"].astype(np.int64)).sum(axis=1) * 2 ** 15 + \
        (np.abs(qt.qparams["b"].astype(np.int64)) << fc["bias_shift"])
    assert int(worst.max()) < 2 ** 31


def test_q15_for_the_s16_kernels_has_int8_weights_and_int64_biases() -> None:
    """api=s8: the s16 kernels take int8 weights (8-bit Q-formats from their values, one per output: the layer
    runs as a 1x1 convolution) and int64 biases, which sit in the accumulator's format (bias_shift 0); every
    multiplier stays the power of two of its out_shift."""
    w = np.linspace(-0.75, 0.5, 32, dtype=np.float32).reshape(4, 8)             # Q0.7 on 8 bits
    b = np.array([7.0, -1.0, 0.5, 0.0], np.float32)
    graph, params = hand_graph(w, b)
    stats = hand_stats({"x": (-1.2, 1.9), "p": (0.0, 0.4), "r": (0.0, 0.4), "f": (-10.0, 6.0), "y": (0.0, 0.9)})
    qt = build(graph, params, stats, "q15", "minmax", api="s8")
    fc, tensors = qt.tables["layers"]["fc"], qt.tables["tensors"]
    # rows' max|w|: 0.75 -> Q0.7, 0.427 -> Q-1.8, 0.177 -> Q-2.9, 0.5 -> Q-1.8 (its top saturates by one LSB)
    assert (fc["fi"], fc["fw"], fc["fb"], fc["fo"]) == (14, [7, 8, 9, 8], [21, 22, 23, 22], 11)
    assert (fc["bias_shift"], fc["out_shift"]) == (0, [10, 11, 12, 11])
    assert (fc["multiplier"], fc["shift"]) == ([1 << 30] * 4, [1 - 10, 1 - 11, 1 - 12, 1 - 11])
    assert qt.qparams["w"].dtype == np.int8 and tensors["w"]["qformat"] == "Q0.7..Q-2.9 (x4)"
    scales = 2.0 ** np.array([[7], [8], [9], [8]])
    assert np.array_equal(qt.qparams["w"], np.clip(np.round(w.astype(np.float64) * scales), -128, 127))
    assert qt.qparams["b"].dtype == np.int64 and qt.qparams["b"].tolist() == [7 << 21, -(1 << 22), 1 << 22, 0]
    assert tensors["x"]["dtype"] == tensors["f"]["dtype"] == "int16" and tensors["y"]["qformat"] == "Q0.15"
    # every other scheme is the same for both APIs
    for scheme in ("q7", "int8", "int16x8"):
        a, c = build(graph, params, stats, scheme, "minmax", "s8"), build(graph, params, stats, scheme, "minmax",
                                                                             "legacy")
        assert a.tables == c.tables and a.qparams.keys() == c.qparams.keys()


def conv_graph(w_conv: np.ndarray, w_dw: np.ndarray) -> tuple[ir.Graph, dict[str, np.ndarray]]:
    """x [1,2,2,2] -> conv2d (1x1, 3 channels) -> c -> depthwise_conv2d (1x1) -> d -> reshape [1,12] -> fc -> f."""
    T = ir.Tensor
    tensors = {"x": T("x", [1, 2, 2, 2], "float32"), "c": T("c", [1, 2, 2, 3], "float32"),
               "d": T("d", [1, 2, 2, 3], "float32"), "r": T("r", [1, 12], "float32"),
               "f": T("f", [1, 2], "float32"),
               "wc": T("wc", [3, 1, 1, 2], "float32", is_const=True), "bc": T("bc", [3], "float32", is_const=True),
               "wd": T("wd", [1, 1, 1, 3], "float32", is_const=True), "bd": T("bd", [3], "float32", is_const=True),
               "wf": T("wf", [2, 12], "float32", is_const=True)}
    conv = {"stride": [1, 1], "dilation": [1, 1], "pad": [0, 0, 0, 0], "activation": "none"}
    ops = [ir.Op("conv", "conv2d", ["x", "wc", "bc"], ["c"], dict(conv)),
           ir.Op("dw", "depthwise_conv2d", ["c", "wd", "bd"], ["d"], dict(conv, multiplier=1)),
           ir.Op("flat", "reshape", ["d"], ["r"], {"shape": [1, 12]}),
           ir.Op("fc", "fully_connected", ["r", "wf"], ["f"], {"activation": "none"})]
    params = {"wc": w_conv, "bc": np.array([0.5, -0.25, 1.0], np.float32), "wd": w_dw,
              "bd": np.array([0.25, 0.0, -1.0], np.float32),
              "wf": np.linspace(-0.75, 0.5, 24, dtype=np.float32).reshape(2, 12)}
    graph = ir.Graph(tensors, ops, ["x"], ["f"])
    ir.validate(graph, params)
    return graph, params


CONV_STATS = {"x": (-1.2, 1.9), "c": (-8.0, 7.0), "d": (-16.0, 15.0), "r": (-16.0, 15.0), "f": (-10.0, 6.0)}
W_CONV = np.array([[0.75, -0.5], [0.1, -0.2], [-3.0, 1.0]], np.float32).reshape(3, 1, 1, 2)
W_DW = np.array([0.4, 0.0, -2.0], np.float32).reshape(1, 1, 1, 3)      # channel 1 all zero


def test_q15_for_the_s16_kernels_has_per_channel_conv_weight_formats() -> None:
    """api=s8: conv2d and depthwise_conv2d weights get one Q-format per output channel (their kernels take
    per-channel multipliers), the int64 bias and out_shift follow per channel; so do fully connected weights
    (the layer runs as a 1x1 convolution)."""
    graph, params = conv_graph(W_CONV, W_DW)
    qt = build(graph, params, hand_stats(CONV_STATS), "q15", "minmax", api="s8")
    tensors, layers = qt.tables["tensors"], qt.tables["layers"]
    # x: |x| <= 1.9 -> Q1.14; c: 8 -> Q3.12; d: 16 -> Q4.11 (r shares it); f: 10 -> Q4.11
    # conv channels: max|w| 0.75 -> Q0.7, 0.2 -> Q-2.9, 3 -> Q2.5 (8-bit words)
    conv = layers["conv"]
    assert (conv["fi"], conv["fw"], conv["fo"]) == (14, [7, 9, 5], 12)
    assert conv["fb"] == [21, 23, 19] and conv["bias_shift"] == 0
    assert conv["out_shift"] == [14 + 7 - 12, 14 + 9 - 12, 14 + 5 - 12] == [9, 11, 7]
    assert conv["multiplier"] == [1 << 30] * 3 and conv["shift"] == [1 - 9, 1 - 11, 1 - 7]
    wc = tensors["wc"]
    assert (wc["frac_bits"], wc["axis"], wc["scale"]) == ([7, 9, 5], 0, [2.0 ** -7, 2.0 ** -9, 2.0 ** -5])
    assert wc["zero_point"] == [0, 0, 0] and wc["qformat"] == "Q2.5..Q-2.9 (x3)"
    assert qt.qparams["wc"].dtype == np.int8
    assert qt.qparams["wc"].reshape(3, 2).tolist() == [[96, -64], [51, -102], [-96, 32]]
    bc = tensors["bc"]
    assert (bc["dtype"], bc["frac_bits"], bc["axis"]) == ("int64", [21, 23, 19], 0)
    assert qt.qparams["bc"].dtype == np.int64 and qt.qparams["bc"].tolist() == [1 << 20, -(1 << 21), 1 << 19]
    # depthwise (axis 3 of 1HWC): 0.4 -> Q-1.8; the all-zero channel borrows the tensor's format (2 -> Q1.6)
    dw = layers["dw"]
    assert (dw["fi"], dw["fw"], dw["fo"], dw["fb"]) == (12, [8, 6, 6], 11, [20, 18, 18])
    assert dw["out_shift"] == [9, 7, 7] and dw["shift"] == [-8, -6, -6] and dw["multiplier"] == [1 << 30] * 3
    assert tensors["wd"]["axis"] == 3 and tensors["wd"]["frac_bits"] == [8, 6, 6]
    assert qt.qparams["wd"].reshape(-1).tolist() == [102, 0, -128]
    assert qt.qparams["bd"].tolist() == [1 << 18, 0, -(1 << 18)]
    # fully connected, per output (axis 0 of [out][in]): 0.75 -> Q0.7, 0.5 -> Q-1.8
    fc = layers["fc"]
    assert (fc["fi"], fc["fw"], fc["fo"], fc["out_shift"]) == (11, [7, 8], 11, [7, 8])
    assert (fc["multiplier"], fc["shift"]) == ([1 << 30] * 2, [-6, -7])
    assert tensors["wf"]["frac_bits"] == [7, 8] and tensors["wf"]["axis"] == 0
    # the per-channel multipliers are exactly the table's formats: s_in * s_w[c] / s_out = 2^-out_shift[c]
    for name in ("conv", "dw", "fc"):
        layer = layers[name]
        for m, s, k in zip(layer["multiplier"], layer["shift"], layer["out_shift"]):
            assert m * 2.0 ** (s - 31) == 2.0 ** -k
    rows = {line.split()[0]: line for line in qt.text.splitlines() if line.split()[:1] in (["conv"], ["dw"])}
    assert rows["conv"].split() == ["conv", "conv2d", "Q1.14", "Q2.5..Q-2.9", "(x3)", "Q44.19..Q40.23", "(x3)",
                                    "Q3.12", "0", "7..11", "(x3)"]
    assert "Q1.6..Q-1.8 (x3)" in rows["dw"] and "7..9 (x3)" in rows["dw"]


def wide_fc_graph(w: np.ndarray) -> tuple[ir.Graph, dict[str, np.ndarray]]:
    """x [1, N] -> fully_connected (w [2, N], no bias) -> f [1, 2]."""
    T = ir.Tensor
    n = w.shape[1]
    tensors = {"x": T("x", [1, n], "float32"), "w": T("w", [2, n], "float32", is_const=True),
               "f": T("f", [1, 2], "float32")}
    graph = ir.Graph(tensors, [ir.Op("fc", "fully_connected", ["x", "w"], ["f"], {"activation": "none"})],
                     ["x"], ["f"])
    return graph, {"w": w}


def test_per_channel_weight_formats_keep_shifts_legal() -> None:
    """A channel of small weights summed over many inputs would ask for out_shift > 31: its format is capped at
    fo - fi + 31. (Over 1024 inputs of |x| <= 2, weights of 2^-23 still move the output by more than half a step
    of 2^-11, so the channel is not dead.)"""
    w = np.stack([np.full(1024, 0.5), np.full(1024, 2.0 ** -23)]).astype(np.float32)
    graph, params = wide_fc_graph(w)                  # 2^-23 -> Q-23.30 from its values alone
    qt = build(graph, params, hand_stats({"x": (-1.2, 1.9), "f": (-10.0, 6.0)}), "q15", "minmax", api="s8")
    fc = qt.tables["layers"]["fc"]
    assert (fc["fi"], fc["fo"]) == (14, 11)
    assert fc["fw"] == [8, 11 - 14 + 31] and fc["out_shift"] == [11, 31] and "warnings" not in qt.tables
    assert qt.qparams["w"][1].tolist() == [2 ** (28 - 23)] * 1024


def test_dead_channels_take_the_tensors_format_as_zeros() -> None:
    """A channel of weights that cannot move its output by half a step (max |w| 2e-9 over 2 inputs of |x| <= 2,
    output step 2^-12) is quantized as zeros in the tensor's format, with a warning, instead of asking for a
    format of 2^-36 and a shift beyond the kernels'."""
    w = W_CONV.copy()
    w[1] *= 1e-8
    graph, params = conv_graph(w, W_DW)
    qt = build(graph, params, hand_stats(CONV_STATS), "q15", "minmax", api="s8")
    conv = qt.tables["layers"]["conv"]
    assert conv["fw"] == [7, 5, 5] and conv["out_shift"] == [9, 7, 7]
    assert qt.qparams["wc"][1].tolist() == [[[0, 0]]]
    assert qt.tables["warnings"] == ["conv: 1 of 3 output channels (1) zeroed: their weights (largest |w| 2e-09) "
                                     "cannot move the output by half a step for any input"]
    assert "warning: conv: 1 of 3 output channels (1) zeroed" in qt.text


def test_per_channel_formats_only_for_the_s16_kernels() -> None:
    """The legacy API (one bias_shift / out_shift per layer) and q7 keep one weight format per layer."""
    graph, params = conv_graph(W_CONV, W_DW)
    stats = hand_stats(CONV_STATS)
    for quant, api in (("q15", "legacy"), ("q7", "s8"), ("q7", "legacy")):
        qt = build(graph, params, stats, quant, "minmax", api=api)
        for name, w in (("conv", "wc"), ("dw", "wd")):
            layer, tensor = qt.tables["layers"][name], qt.tables["tensors"][w]
            assert isinstance(layer["fw"], int) and isinstance(layer["out_shift"], int), (quant, api)
            assert isinstance(tensor["frac_bits"], int) and tensor["axis"] is None and len(tensor["scale"]) == 1
        assert "Per-channel" not in qt.text


def test_unknown_api_is_an_error() -> None:
    graph, params = hand_graph(np.ones((4, 8), np.float32), np.zeros(4, np.float32))
    stats = hand_stats({"x": (-1, 1), "p": (0, 1), "r": (0, 1), "f": (-1, 1), "y": (0, 1)})
    with pytest.raises(NnsconsError, match="api='s4'"):
        build(graph, params, stats, "q7", "minmax", api="s4")


def two_input_graph(op_type: str) -> ir.Graph:
    T = ir.Tensor
    width = 8 if op_type == "concat" else 4
    tensors = {"a": T("a", [1, 4], "float32"), "b": T("b", [1, 4], "float32"), "y": T("y", [1, width], "float32")}
    attrs = {"axis": 1} if op_type == "concat" else {"activation": "none"}
    return ir.Graph(tensors, [ir.Op("op", op_type, ["a", "b"], ["y"], attrs)], ["a", "b"], ["y"])


def test_q7_add_aligns_its_inputs() -> None:
    stats = hand_stats({"a": (-1.5, 1.0), "b": (-6.0, 7.0), "y": (-7.0, 7.5)})      # Q1.6, Q3.4 -> Q3.4
    qt = build(two_input_graph("add"), {}, stats, "q7", "minmax")
    layer = qt.tables["layers"]["op"]
    assert (layer["fi"], layer["fo"], layer["align_shift"], layer["out_shift"]) == ([6, 4], 4, [2, 0], 0)
    assert "0 (align [2, 0])" in qt.text


def test_concat_inputs_and_output_share_parameters() -> None:
    stats = hand_stats({"a": (-1.5, 1.0), "b": (-6.0, 7.0), "y": (-6.0, 7.0)})
    for scheme in ("int8", "q7"):
        tensors = build(two_input_graph("concat"), {}, stats, scheme, "minmax").tables["tensors"]
        assert tensors["a"]["scale"] == tensors["b"]["scale"] == tensors["y"]["scale"]
        assert tensors["a"]["zero_point"] == tensors["b"]["zero_point"] == tensors["y"]["zero_point"]
        assert tensors["a"]["range"] == [-6.0, 7.0]                      # the union: covers the largest range
    assert tensors["a"]["qformat"] == "Q3.4"


# ---- calibrated schemes on a small float graph -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def calibrated() -> tuple[ir.Graph, dict[str, np.ndarray], st.Stats]:
    graph, params = small_graph(seed=5)
    return graph, params, st.compute_stats(graph, params, {"x": calibration(64, seed=6)}, progress=False)


def test_int8_scheme(calibrated) -> None:  # type: ignore[no-untyped-def]
    graph, params, stats = calibrated
    qt = build(graph, params, stats, "auto", "minmax")
    tables, tensors = qt.tables, qt.tables["tensors"]
    assert (tables["scheme"], tables["requested"]) == ("int8", "auto")
    # per-channel symmetric weights along axis 0 (OHWI), within half a step after dequantization
    w, wq = params["w1"].astype(np.float64), tensors["w1"]
    scales = np.array(wq["scale"])
    assert wq["axis"] == 0 and len(scales) == 4 and wq["zero_point"] == [0] * 4
    q = qt.qparams["w1"]
    assert q.dtype == np.int8 and q.min() >= -127 and np.all(np.abs(q).max(axis=(1, 2, 3)) == 127)
    assert np.all(np.abs(q * scales[:, None, None, None] - w) <= scales[:, None, None, None] / 2 * (1 + 1e-6))
    # fully connected: one scale
    assert len(tensors["w2"]["scale"]) == 1 and tensors["w2"]["axis"] is None
    # int32 bias with scale s_in * s_w[c]
    s_in = tensors["x"]["scale"][0]
    assert tensors["b1"]["dtype"] == "int32" and qt.qparams["b1"].dtype == np.int32
    assert tensors["b1"]["scale"] == pytest.approx([s_in * s for s in scales], rel=1e-7)
    assert np.all(np.abs(qt.qparams["b1"] * np.array(tensors["b1"]["scale"]) - params["b1"])
                  <= np.array(tensors["b1"]["scale"]) / 2 * (1 + 1e-6))
    # asymmetric activations cover the observed range and represent 0 exactly
    for name in ("x", "c1", "f2"):
        t, ts = tensors[name], stats.tensors[name]
        scale, zp = t["scale"][0], t["zero_point"][0]
        assert -128 <= zp <= 127 and t["dtype"] == "int8"
        assert (-128 - zp) * scale <= ts.min + scale and (127 - zp) * scale >= ts.max - scale
    # layer constraints: max pool and reshape keep their input's parameters; softmax is fixed
    assert tensors["p1"]["scale"] == tensors["c1"]["scale"] == tensors["r1"]["scale"]
    assert (tensors["y"]["scale"], tensors["y"]["zero_point"]) == ([1 / 256], [-128])
    conv = tables["layers"]["conv_0"]
    s_out = tensors["c1"]["scale"][0]
    expected = [qz.quantize_multiplier(s_in * s / s_out) for s in scales]
    assert list(zip(conv["multiplier"], conv["shift"])) == expected
    assert len(conv["multiplier"]) == 4 and conv["per_channel"]
    assert conv["input_offset"] == -tensors["x"]["zero_point"][0]
    assert conv["output_offset"] == tensors["c1"]["zero_point"][0]
    assert conv["act_min"] == max(-128, tensors["c1"]["zero_point"][0]) and conv["act_max"] == 127    # relu
    soft = tables["layers"]["softmax_4"]
    real = min(1.0 * tensors["f2"]["scale"][0] * 2.0 ** 26, 2.0 ** 31 - 1)
    assert (soft["input_multiplier"], soft["input_left_shift"]) == qz.quantize_multiplier(real)
    assert soft["diff_min"] == -math.floor(31 * 2.0 ** 26 / 2.0 ** soft["input_left_shift"])


def test_q7_scheme(calibrated) -> None:  # type: ignore[no-untyped-def]
    graph, params, stats = calibrated
    qt = build(graph, params, stats, "q7", "percentile:99.9")
    tensors = qt.tables["tensors"]
    layers = qt.tables["layers"]
    for layer_name, w, b in (("conv_0", "w1", "b1"), ("fc_3", "w2", "b2")):
        fi = layers[layer_name]["fi"]
        for name in (w, b):
            n = tensors[name]["frac_bits"]
            values = params[name].astype(np.float64)
            expected = qz.q_frac_bits(float(np.abs(values).max()), 8)
            if name == b:
                expected = min(expected, fi + tensors[w]["frac_bits"])    # no finer than the accumulator
            assert n == expected
            assert np.all(np.abs(qt.qparams[name] * 2.0 ** -n - values) <= 2.0 ** -n / 2)
    assert tensors["p1"]["frac_bits"] == tensors["c1"]["frac_bits"]
    assert tensors["y"]["qformat"] == "Q0.7"
    conv = qt.tables["layers"]["conv_0"]
    assert conv["out_shift"] == conv["fi"] + conv["fw"] - conv["fo"]
    assert conv["multiplier"] == [1 << 30] * 4 and conv["shift"] == [1 - conv["out_shift"]] * 4


def test_int16x8_scheme(calibrated) -> None:  # type: ignore[no-untyped-def]
    graph, params, stats = calibrated
    qt = build(graph, params, stats, "int16x8", "mse")
    tensors = qt.tables["tensors"]
    assert all(tensors[n]["zero_point"] == [0] and tensors[n]["dtype"] == "int16" for n in graph.activations())
    assert qt.qparams["w1"].dtype == np.int8 and qt.qparams["b1"].dtype == np.int64
    assert (tensors["y"]["scale"], tensors["y"]["zero_point"]) == ([1 / 32768], [0])


def test_write_qtable_is_deterministic(calibrated, tmp_path) -> None:  # type: ignore[no-untyped-def]
    graph, params, stats = calibrated
    for run in ("a", "b"):
        qt = build(graph, params, stats, "int8", "mse")
        qz.write_qtable(qt, tmp_path / f"{run}.json", tmp_path / f"{run}.txt", tmp_path / f"{run}.npz")
    for ext in ("json", "txt", "npz"):
        assert (tmp_path / f"a.{ext}").read_bytes() == (tmp_path / f"b.{ext}").read_bytes()
    assert fileio.read_json(tmp_path / "a.json") == qt.tables
    loaded = fileio.read_npz(tmp_path / "a.npz")
    assert set(loaded) == {"w1", "b1", "w2", "b2"} and np.array_equal(loaded["w1"], qt.qparams["w1"])


def test_errors(calibrated) -> None:  # type: ignore[no-untyped-def]
    graph, params, stats = calibrated
    with pytest.raises(NnsconsError, match="quant=.int4. is not one of"):
        build(graph, params, stats, "int4", "minmax")
    with pytest.raises(NnsconsError, match="model is float"):
        build(graph, params, stats, "model", "minmax")
    with pytest.raises(NnsconsError, match="^range: "):
        build(graph, params, stats, "int8", "search")
    with pytest.raises(NnsconsError, match="needs activation statistics"):
        build(graph, params, None, "q7", "minmax")
    partial = st.Stats({k: v for k, v in stats.tensors.items() if k != "f2"}, stats.samples)
    with pytest.raises(NnsconsError, match="no values for tensor f2"):
        build(graph, params, partial, "int8", "minmax")


# ---- the model's own parameters -------------------------------------------------------------------------------------
def flatbuffer_tensors(path) -> dict[str, tuple[list[float], list[int], bytes]]:  # type: ignore[no-untyped-def]
    """label -> (scales, zero points, raw constant bytes) straight from the file, independent of the importer."""
    model = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
    sub = model.Subgraphs(0)
    out = {}
    for i in range(sub.TensorsLength()):
        t = sub.Tensors(i)
        q = t.Quantization()
        scales = [float(s) for s in q.ScaleAsNumpy()] if q is not None and q.ScaleLength() else []
        zps = [int(z) for z in q.ZeroPointAsNumpy()] if q is not None and q.ZeroPointLength() else []
        buf = model.Buffers(t.Buffer())
        out[t.Name().decode()] = (scales, zps, buf.DataAsNumpy().tobytes() if buf.DataLength() else b"")
    return out


def test_model_scheme_reproduces_kws_bit_for_bit() -> None:
    graph, params = import_tflite(str(KWS))
    qt = build(graph, params, None, "auto", "minmax")
    assert (qt.tables["scheme"], qt.tables["model_quantized"]) == ("model", "int8")
    original = flatbuffer_tensors(KWS)
    tensors = qt.tables["tensors"]
    for name, t in tensors.items():
        scales, zps, data = original[graph.tensors[name].label]
        assert t["scale"] == scales and t["zero_point"] == zps, name
        if graph.tensors[name].is_const:
            assert qt.qparams[name].tobytes() == data, name                 # TFLite layouts = IR layouts
    convs = [op for op in graph.ops if op.type in ("conv2d", "depthwise_conv2d")]
    assert len(convs) == 9
    for op in convs:
        layer = qt.tables["layers"][op.name]
        s_in = tensors[op.inputs[0]]["scale"][0]
        s_out = tensors[op.outputs[0]]["scale"][0]
        w_scales = tensors[op.inputs[1]]["scale"]
        assert len(w_scales) == 64 and len(layer["multiplier"]) == 64 and layer["per_channel"]
        for m, s, s_w in zip(layer["multiplier"], layer["shift"], w_scales):
            real = s_in * s_w / s_out
            assert (m, s) == qz.quantize_multiplier(real)
            assert abs(m * 2.0 ** (s - 31) - real) <= 1e-9 * real
        assert layer["input_offset"] == -tensors[op.inputs[0]]["zero_point"][0]
    assert tensors[graph.inputs[0]]["zero_point"] == [83]
    fc = qt.tables["layers"]["fully_connected_11"]
    assert not fc["per_channel"] and len(fc["multiplier"]) == 1
    assert qt.tables["layers"]["softmax_12"]["diff_min"] < 0


def test_q_shift_out_of_range_is_an_error() -> None:
    # an output range of 2^40 against inputs of 1.9 and weights of 0.5: fo = -33 (the weights, which cannot move
    # such an output, are zeros in Q0.7): out_shift = 6 + 7 + 33
    graph, params = hand_graph(np.full((4, 8), 0.5, np.float32), np.zeros(4, np.float32))
    stats = hand_stats({"x": (-1.2, 1.9), "p": (0, 1.9), "r": (0, 1.9), "f": (-2.0 ** 40, 6.0), "y": (0, 1)})
    with pytest.raises(NnsconsError, match="layer fc needs out_shift = 46, outside 0..31"):
        build(graph, params, stats, "q7", "minmax")
    # weights of 1e-9 (fw = 36 from their values) against that output cannot matter: zeros, not an error
    graph, params = hand_graph(np.full((4, 8), 1e-9, np.float32), np.zeros(4, np.float32))
    stats = hand_stats({"x": (-1.2, 1.9), "p": (0, 1.9), "r": (0, 1.9), "f": (-10.0, 6.0), "y": (0, 1)})
    qt = build(graph, params, stats, "q7", "minmax")
    assert qt.tables["layers"]["fc"]["fw"] == 7 and not qt.qparams["w"].any()
    graph, params = hand_graph(np.full((4, 8), 0.5, np.float32), np.zeros(4, np.float32))
    fc = build(graph, params, stats, "q7", "minmax").tables["layers"]["fc"]
    assert (fc["fb"], fc["bias_shift"]) == (6 + 8, 0)                # a zero bias takes the accumulator format


def relu_hand_graph(w: np.ndarray, b: np.ndarray) -> tuple[ir.Graph, dict[str, np.ndarray]]:
    """:func:`hand_graph` with a ReLU in front: x -> relu -> a -> max pool -> ... (the FC input cannot be
    negative)."""
    graph, params = hand_graph(w, b)
    graph.tensors["a"] = ir.Tensor("a", [1, 4, 4, 2], "float32")
    graph.ops[0].inputs = ["a"]
    graph.ops.insert(0, ir.Op("relu", "relu", ["x"], ["a"], {}))
    return graph, params


def _extreme_sums(wq: np.ndarray, bias: np.ndarray, lo: int, hi: int) -> tuple[int, int]:
    """The largest and smallest accumulator any input in [lo, hi] gives, brute force over the sign patterns."""
    top = np.where(wq > 0, wq * hi, wq * lo).sum(axis=1) + bias
    bottom = np.where(wq > 0, wq * lo, wq * hi).sum(axis=1) + bias
    return int(top.max()), int(bottom.min())


def test_q15_headroom_counts_only_the_values_a_relu_input_can_take() -> None:
    """After a ReLU the input is never negative: a row's worst case is its positive or its negative weights
    alone at the format's top, so the weights keep one more bit than for a signed input, and still cannot
    overflow; one bit more again would."""
    w = np.linspace(-0.75, 0.5, 32, dtype=np.float32).reshape(8, 4).T.copy()   # mixed signs in every row
    b = np.array([3.0, -1.0, 0.5, 0.0], np.float32)
    ranges = {"x": (-1.2, 1.9), "p": (0.0, 0.4), "r": (0.0, 0.4), "f": (-10.0, 6.0), "y": (0.0, 0.9)}
    signed = build(*hand_graph(w, b), hand_stats(ranges), "q15", "minmax", api="legacy")
    graph, params = relu_hand_graph(w, b)
    qt = build(graph, params, hand_stats({**ranges, "a": (0.0, 1.9)}), "q15", "minmax", api="legacy")
    fc, fc_signed = qt.tables["layers"]["fc"], signed.tables["layers"]["fc"]
    # signed input in Q1.14 (|x| < 2): row 0 gives 2 * sum|w| + 3 = 8.58 -> fw = 30 - 14 - 3 = 13;
    # non-negative: 2 * max(sum w+, sum |w-|) + 3 = 2 * 2.137 + 3 = 7.27 -> fw = 30 - 14 - 2 = 14
    assert (fc_signed["fi"], fc_signed["fw"]) == (14, 13)
    assert (fc["fi"], fc["fw"]) == (14, 14)
    wq = qt.qparams["w"].astype(np.int64)
    bias = qt.qparams["b"].astype(np.int64) << fc["bias_shift"]
    top, bottom = _extreme_sums(wq, bias, 0, 2 ** 15 - 1)
    assert top + (1 << (fc["out_shift"] - 1)) < 2 ** 31 and bottom >= -2 ** 31
    finer = np.round(w.astype(np.float64) * 2 ** 15).astype(np.int64)
    top, bottom = _extreme_sums(finer, np.round(b * 2.0 ** 13).astype(np.int64) << 16, 0, 2 ** 15 - 1)
    assert top >= 2 ** 31 or bottom < -2 ** 31
