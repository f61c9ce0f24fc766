"""Per-layer diagnostics: the trace build of the host binary against the float network (nnscons.diagnostics).

digits_cnn is built under several schemes into a private folder with the build's own stage functions and
compiled with the host flags (nnscons.experiments / nnscons.hostbuild); the trace binary's layer outputs are then
compared with the float reference. The assertions are on what the C computes.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnscons import data, diagnostics, experiments, fileio, ir, pipeline, project
from nnscons.errors import NnsconsError

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "build" / "test-cache"
FIXED_OUTPUTS = ("softmax", "logistic", "tanh")   # output formats no range method chooses


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("diag")
    folder = project.find_model(str(ROOT / "models" / "digits_cnn"))
    prepared = experiments.prepare(folder, out)
    tools = experiments.default_tools(out, cache_dir=CACHE)      # the kernel library compiled once across runs
    graph, params = ir.load(prepared.graph_json, prepared.params_npz)
    return {"out": out, "prepared": prepared, "tools": tools, "graph": graph, "params": params, "cache": {}}


def diagnose(digits: dict, quant: str, range_method: str, dataset: str = "calib") -> dict:
    """Diagnostics of digits_cnn under one configuration on the calibration or test set (cached per module)."""
    key = (quant, range_method, dataset)
    if key not in digits["cache"]:
        config = experiments.Config(quant, range_method)
        out = digits["out"] / config.name
        if not experiments.trace_binary(out, "digits_cnn").exists():
            experiments.build_config(digits["prepared"], config, out, digits["tools"], trace=True)
        x = data.load_inputs(ROOT / "models" / "digits_cnn" / f"{dataset}.npz", digits["graph"])[
            digits["graph"].inputs[0]]
        qtable = fileio.read_json(out / "qtable.json")
        digits["cache"][key] = diagnostics.diagnose("digits_cnn", str(experiments.trace_binary(out, "digits_cnn")),
                                                    digits["graph"], digits["params"], qtable, x, dataset)
    return digits["cache"][key]


@pytest.mark.slow
def test_every_layer_is_traced_in_graph_order(digits: dict) -> None:
    result = diagnose(digits, "int8", "minmax")
    assert [e["layer"] for e in result["layers"]] == [op.name for op in digits["graph"].ops]
    assert [e["index"] for e in result["layers"]] == list(range(len(digits["graph"].ops)))
    assert result["samples"] == 200 and all(e["elements"] > 0 for e in result["layers"])


@pytest.mark.slow
def test_traced_last_layer_is_what_the_binary_outputs(digits: dict, tmp_path: Path) -> None:
    config = experiments.Config("q7", "minmax")
    diagnose(digits, "q7", "minmax")
    binary = experiments.trace_binary(digits["out"] / config.name, "digits_cnn")
    x = data.load_inputs(ROOT / "models" / "digits_cnn" / "test.npz", digits["graph"])[digits["graph"].inputs[0]]
    dtypes = {op.name: "int8" for op in digits["graph"].ops}
    traced = diagnostics.run_trace(str(binary), x[:40], dtypes)
    np.save(tmp_path / "in.npy", x[:40])
    env = {k: v for k, v in os.environ.items() if k != "NNSCONS_TRACE_DIR"}
    subprocess.run([str(binary), "in.npy", "out.npy"], cwd=tmp_path, env=env, check=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.npy", "out.npy"]   # no trace without the variable
    assert np.array_equal(traced[-1].values, np.load(tmp_path / "out.npy").reshape(40, -1))


@pytest.mark.slow
def test_int16x8_beats_int8_layer_by_layer(digits: dict) -> None:
    """16-bit activations: a higher SNR than 8-bit ones at (nearly) every layer, on the test set."""
    wide = diagnose(digits, "int16x8", "minmax", "test")["layers"]
    narrow = diagnose(digits, "int8", "minmax", "test")["layers"]
    better = [w["snr_db"] > n["snr_db"] for w, n in zip(wide, narrow)]
    assert sum(better) >= len(better) - 1, list(zip([e["layer"] for e in wide], better))
    # What the formats allow: 8 more bits are about 48 dB more on the calibration set. (On the test set a few
    # values beyond the calibrated range are clipped, and that clipping, the same for both, limits the 16-bit
    # format's SNR: so compare where the ranges came from.)
    wide = diagnose(digits, "int16x8", "minmax")["layers"]
    narrow = diagnose(digits, "int8", "minmax")["layers"]
    assert all(w["grid_snr_db"] > n["grid_snr_db"] + 36 for w, n in zip(wide, narrow))


@pytest.mark.parametrize("quant", ["q7", "int8"])
def test_minmax_never_saturates_on_its_calibration_set(digits: dict, quant: str) -> None:
    """The minmax range covers every calibration value, so the C never saturates there (the fixed output format
    of softmax aside: its probabilities near 1 do not fit 127/128 or (127+128)/256)."""
    layers = diagnose(digits, quant, "minmax")["layers"]
    assert {e["layer"]: e["saturated"] for e in layers if e["type"] not in FIXED_OUTPUTS} == \
        {e["layer"]: 0 for e in layers if e["type"] not in FIXED_OUTPUTS}
    assert all(e["clipped"] == 0 for e in layers if e["type"] not in FIXED_OUTPUTS)


@pytest.mark.slow
@pytest.mark.parametrize("quant", ["q7", "int8"])
def test_the_seeds_80_percent_range_saturates_and_costs_snr(digits: dict, quant: str) -> None:
    narrow = diagnose(digits, quant, "percentile:80")["layers"]
    full = diagnose(digits, quant, "minmax")["layers"]
    saturating = [e["layer"] for e in narrow if e["saturated"] > 0 and e["type"] not in FIXED_OUTPUTS]
    assert "conv2d_0" in saturating and len(saturating) >= 4
    assert narrow[0]["saturated_high"] > 0 and narrow[0]["saturated_low"] == 0   # a ReLU output: only the top
    assert all(n["snr_db"] < f["snr_db"] - 6 for n, f in zip(narrow, full))


def test_snr_drop_points_at_the_layer_that_loses_accuracy(digits: dict) -> None:
    """Each layer's drop is its input SNR minus its output SNR; a max pool cannot lose SNR on ReLU outputs
    (it picks exact values), a convolution onto an 8-bit Q-format does."""
    layers = diagnose(digits, "q7", "minmax")["layers"]
    by_name = {e["layer"]: e for e in layers}
    for e in layers[1:]:
        assert e["snr_drop_db"] == pytest.approx(e["input_snr_db"] - e["snr_db"], abs=1e-3)
    assert by_name["conv2d_0"]["snr_drop_db"] > 5
    assert by_name["max_pool2d_1"]["snr_drop_db"] < 0.5
    assert by_name["reshape_4"]["snr_drop_db"] == 0


def test_saturation_rule() -> None:
    """At a limit is not saturated: only values whose float lies beyond it are (a ReLU's zero on an asymmetric
    grid sits at -128 and is not counted; neither is a value the C's error puts on a limit)."""
    tensor = {"dtype": "int8", "scale": [0.1], "zero_point": [-128]}
    ref = np.array([0.0, 0.02, 0.05, 25.5, 25.4, 30.0, 12.0])
    q = np.array([-128, -128, -128, 127, 127, 127, -8])
    m = diagnostics.layer_measures(q, ref, tensor)
    assert (m["saturated"], m["saturated_low"], m["saturated_high"]) == (1, 0, 1)    # only 30.0
    assert m["clipped"] == 1 and m["elements"] == 7
    assert diagnostics.layer_measures(q[:1], ref[:1], tensor)["snr_db"] is None     # identical: exact


def test_diagnostics_stage_writes_deterministic_json(digits: dict, tmp_path: Path) -> None:
    config = experiments.Config("q7", "minmax")
    diagnose(digits, "q7", "minmax")
    out = digits["out"] / config.name
    files = []
    for i in range(2):
        path = tmp_path / f"d{i}.json"
        diagnostics.diagnostics_stage("digits_cnn", str(experiments.trace_binary(out, "digits_cnn")),
                                      digits["prepared"].graph_json, digits["prepared"].params_npz,
                                      str(out / "qtable.json"), str(ROOT / "models" / "digits_cnn" / "test.npz"),
                                      str(path))
        files.append(path.read_bytes())
    assert files[0] == files[1]
    assert fileio.read_json(tmp_path / "d0.json")["dataset"] == "test.npz"


def test_a_binary_without_trace_is_a_clear_error(digits: dict) -> None:
    config = experiments.Config("q7", "minmax")
    diagnose(digits, "q7", "minmax")
    plain = digits["out"] / config.name / "host" / "digits_cnn_test"
    x = np.zeros((2, 8, 8, 1), np.float32)
    with pytest.raises(NnsconsError, match="NNSCONS_TRACE"):
        diagnostics.run_trace(str(plain), x, {"conv2d_0": "int8"})


@pytest.mark.parametrize("stage, entry", [("diagnostics", "nnscons.diagnostics"), ("report_html", "nnscons.report_html"),
                                          ("ranges_search", "nnscons.search")])
def test_stage_module_lists_cover_the_new_stages(stage: str, entry: str) -> None:
    """The build reruns diagnostics.json, report.html and a searched ranges.json when a module they run changes."""
    site = ROOT / "site_scons"
    code = (f"import sys; sys.path.insert(0, {str(site)!r}); import nnscons.pipeline; import {entry}; "
            "print('\\n'.join(m.__file__ for n, m in sys.modules.items() if n.startswith('nnscons')))")
    files = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    used = {str(Path(f).relative_to(site / "nnscons")) for f in files}
    used -= {"pipeline.py", "data.py", "options.py", "importers/__init__.py"} - set(pipeline.STAGE_MODULES[stage])
    listed = {str(f.relative_to(site / "nnscons")) for m in pipeline.STAGE_MODULES[stage]
              for f in pipeline.module_files(m)}
    missing = {m for m in used if not m.startswith("importers/")} - listed - {"__init__.py"}
    assert missing == set(), f"{stage} uses {sorted(missing)} without depending on it"


def test_gate_measures_say_what_each_gates_format_allows() -> None:
    """An LSTM's gates on the s8/s16 kernels' int16 2^-12 grid (range [-8, 8)) and on the legacy q7 lowering's Q3.4:
    values beyond 8 are counted, the coarser grid costs SNR, the cell state is measured on its own format."""
    op = ir.Op("lstm_0", "lstm", ["x"], ["y"])
    pre = np.linspace(-4.0, 4.0, 401)
    pre[:4] = [9.0, -9.5, 12.0, 20.0]                   # 4 of 401 beyond the format
    floats = {"y" + ir.GATE_SUFFIX + g: pre for g in ("input", "forget", "cell", "output")}
    floats["y" + ir.CELL_STATE_SUFFIX] = np.linspace(-3.0, 3.0, 101)
    s16 = diagnostics.gate_measures(op, {"cell_scale_power": -13}, "int8", floats)
    q7 = diagnostics.gate_measures(op, {"legacy": True, "gate_frac": 4, "cell_frac": 12}, "int8", floats)
    assert s16["input"]["beyond_pct"] == q7["input"]["beyond_pct"] == pytest.approx(100 * 4 / 401, abs=1e-3)
    assert s16["forget"]["activation_grid_snr_db"] > q7["forget"]["activation_grid_snr_db"] + 20
    assert q7["cell"]["activation_grid_snr_db"] < 45 < s16["cell"]["activation_grid_snr_db"]
    assert s16["cell state"]["pre_activation_grid_snr_db"] > 80 and s16["cell state"]["beyond_pct"] == 0
