"""Tests for the statistics stage (site_scons/nnscons/stats/): fixed power-of-two histogram bins, exact
merging, deterministic stats.npz, and the calibration run through the reference interpreter."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from conftest import calibration, small_graph
from nnscons import fileio, ir, reference
from nnscons import stats as st
from nnscons.errors import NnsconsError


# ---- bins ------------------------------------------------------------------------------------------------------------
def test_bin_placement_on_known_values() -> None:
    s = st.SUB_BINS
    one = (0 - st.EXP_MIN) * s                                    # bin of 1.0 = first bin of octave [1, 2)
    sub_edge = float(2.0 ** (1 / s))
    values = np.array([1.0, 1.5, 2.0, 0.25, 3.999, sub_edge, np.nextafter(sub_edge, 0), 2.0 ** st.EXP_MIN,
                       1e-30, 2.0 ** st.EXP_MAX, 1e30])
    expected = [one, one + 2, one + s, one - 2 * s, one + 2 * s - 1, one + 1, one, 0, 0, st.NBINS - 1,
                st.NBINS - 1]
    assert st.bin_index(values).tolist() == expected


def test_bin_edges_contain_their_values() -> None:
    values = np.exp2(np.random.default_rng(2).uniform(st.EXP_MIN, st.EXP_MAX, 5000))
    index = st.bin_index(values)
    edges = st.bin_edges()
    assert np.all(edges[index] <= values) and np.all(values < edges[index + 1])
    assert edges[(0 - st.EXP_MIN) * st.SUB_BINS] == 1.0 and edges[-1] == 2.0 ** st.EXP_MAX


def test_tensor_stats_counts_signs_zeros_and_extremes() -> None:
    x = np.array([[0.0, -0.0, 1.0, -1.5], [2.0, -3.0, 0.0, 0.5]], dtype=np.float32)
    ts = st.TensorStats.from_array(x)
    assert (ts.count, ts.zeros, ts.min, ts.max) == (8, 3, -3.0, 2.0)
    assert int(ts.pos.sum()) == 3 and int(ts.neg.sum()) == 2
    assert ts.neg[st.bin_index(np.array([1.5]))[0]] == 1 and ts.neg[st.bin_index(np.array([3.0]))[0]] == 1
    assert ts.mean == pytest.approx(-1.0 / 8, abs=0)                    # exact: (1 - 1.5 + 2 - 3 + .5) / 8


def test_sum_is_exact_over_float32_values() -> None:
    x = np.array([1e30, 1.0, -1e30, 2.0 ** -140, 3.5e-45], dtype=np.float32)   # subnormal included
    ts = st.TensorStats.from_array(x)
    assert ts.exact_sum == sum(Fraction(float(v)) for v in x)


def test_non_finite_values_are_an_error() -> None:
    with pytest.raises(NnsconsError, match="NaN or infinite"):
        st.TensorStats.from_array(np.array([1.0, np.nan], dtype=np.float32), "c1")


# ---- merging ---------------------------------------------------------------------------------------------------------
def test_merge_equals_one_pass() -> None:
    rng = np.random.default_rng(3)
    data = {"a": (rng.standard_cauchy((97, 5)) * 10).astype(np.float32),
            "b": np.maximum(rng.normal(0, 3, (97, 8)), 0).astype(np.float32)}
    whole = st.stats_from_arrays(data, 97)
    merged = st.Stats(samples=0)
    for lo, hi in ((0, 10), (10, 11), (11, 60), (60, 97)):
        merged = st.merge(merged, st.stats_from_arrays({k: v[lo:hi] for k, v in data.items()}, hi - lo))
    assert merged == whole
    assert merged.tensors["a"].mean == whole.tensors["a"].mean
    assert np.array_equal(merged.tensors["b"].sum_parts, whole.tensors["b"].sum_parts)
    assert fileio.npz_bytes(st.stats_arrays(merged)) == fileio.npz_bytes(st.stats_arrays(whole))


def test_compute_stats_matches_reference_and_ignores_chunking() -> None:
    graph, params = small_graph()
    x = calibration(23)
    by_3 = st.compute_stats(graph, params, {"x": x}, chunk=3, progress=False)
    by_64 = st.compute_stats(graph, params, {"x": x}, chunk=64, progress=False)
    assert by_3 == by_64 and by_3.samples == 23
    assert fileio.npz_bytes(st.stats_arrays(by_3)) == fileio.npz_bytes(st.stats_arrays(by_64))
    values = reference.run(graph, params, {"x": x}, keep=True)
    assert list(by_3.tensors) == graph.activations()                # activations only, graph order
    for name in graph.activations():
        ts = by_3.tensors[name]
        assert ts.count == values[name].size
        assert (ts.min, ts.max) == (float(values[name].min()), float(values[name].max()))
        assert ts.mean == pytest.approx(float(values[name].astype(np.float64).mean()), rel=1e-9, abs=1e-12)
    assert by_3.tensors["c1"].min == 0.0 and by_3.tensors["c1"].neg.sum() == 0     # fused relu


def test_compute_stats_rejects_bad_inputs() -> None:
    graph, params = small_graph()
    with pytest.raises(NnsconsError, match="no calibration data"):
        st.compute_stats(graph, params, {})
    with pytest.raises(NnsconsError, match="no samples"):
        st.compute_stats(graph, params, {"x": calibration(0)})
    with pytest.raises(NnsconsError, match="unknown input"):
        st.compute_stats(graph, params, {"x": calibration(2), "z": calibration(2)})


def test_progress_bar_on_stderr_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    graph, params = small_graph()
    st.compute_stats(graph, params, {"x": calibration(6)}, chunk=2, progress=True)
    assert "6/6" in capsys.readouterr().err
    st.compute_stats(graph, params, {"x": calibration(6)}, chunk=2, progress=False)
    assert capsys.readouterr().err == ""


# ---- files -----------------------------------------------------------------------------------------------------------
def test_save_is_deterministic_and_loads_back(tmp_path) -> None:  # type: ignore[no-untyped-def]
    graph, params = small_graph()
    stats = st.compute_stats(graph, params, {"x": calibration(10)}, progress=False)
    st.save_stats(tmp_path / "a.npz", stats)
    st.save_stats(tmp_path / "b.npz", st.compute_stats(graph, params, {"x": calibration(10)}, progress=False))
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    loaded = st.load_stats(tmp_path / "a.npz")
    assert loaded == stats and list(loaded.tensors) == list(stats.tensors)
    assert not list(tmp_path.glob(".*.tmp"))                        # atomic write left no temporary


def test_load_checks_the_bin_parameters(tmp_path) -> None:  # type: ignore[no-untyped-def]
    arrays = st.stats_arrays(st.stats_from_arrays({"t": np.ones(4, np.float32)}, 4))
    arrays["bin_params"] = arrays["bin_params"].copy()
    arrays["bin_params"][1] = st.SUB_BINS + 1
    fileio.write_npz(tmp_path / "old.npz", arrays)
    with pytest.raises(NnsconsError, match="other histogram bins"):
        st.load_stats(tmp_path / "old.npz")
    with pytest.raises(NnsconsError, match="no such file"):
        st.load_stats(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(NnsconsError, match="not a readable"):
        st.load_stats(tmp_path / "junk.npz")


def test_stats_table_lists_every_activation() -> None:
    graph, params = small_graph()
    stats = st.compute_stats(graph, params, {"x": calibration(8)}, progress=False)
    table = st.stats_table(graph, stats)
    lines = table.splitlines()
    assert lines[0] == "statistics over 8 samples"
    assert lines[1].split() == ["tensor", "shape", "min", "max", "mean", "log2|x|"]
    rows = {line.split()[0]: line.split() for line in lines[3:]}
    assert set(rows) == set(graph.activations())
    assert rows["c1"][1] == "1x6x6x4" and rows["c1"][2] == "0"
    assert float(rows["x"][3]) == pytest.approx(stats.tensors["x"].max, rel=1e-5)
