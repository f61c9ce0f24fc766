"""The plumbing between stages: options, model folders, deterministic files, stage dependency lists, the CLI."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnscons import fileio, ir, options, pipeline, project
from nnscons.errors import NnsconsError

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "site_scons"


@pytest.mark.parametrize("stage, entry", [("import", "nnscons.importers"),
                                          ("stats", "nnscons.stats"), ("quantize", "nnscons.quantize"),
                                          ("codegen", "nnscons.codegen")])
def test_stage_module_lists_cover_what_the_stage_imports(stage: str, entry: str) -> None:
    """SCons rebuilds a node when a file in STAGE_MODULES changes; a module the stage uses but the list misses
    would let an edit go unnoticed."""
    code = (f"import sys; sys.path.insert(0, {str(SITE)!r}); import nnscons.pipeline; import {entry}; "
            "print('\\n'.join(m.__file__ for n, m in sys.modules.items() if n.startswith('nnscons')))")
    files = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    used = {str(Path(f).relative_to(SITE / "nnscons")) for f in files}
    used -= {"pipeline.py", "data.py", "options.py"} - set(pipeline.STAGE_MODULES[stage])  # pipeline's own imports
    listed = {str(f.relative_to(SITE / "nnscons")) for m in pipeline.STAGE_MODULES[stage]
              for f in pipeline.module_files(m)}
    missing = used - listed - {"importers/__init__.py"} - {"stats.py", "ranges.py"}
    assert missing == set(), f"{stage} uses {sorted(missing)} without depending on it"
    for module in pipeline.STAGE_MODULES[stage]:
        assert all(f.is_file() for f in pipeline.module_files(module)), module


def test_npz_bytes_are_deterministic() -> None:
    arrays = {"b": np.arange(5, dtype=np.int8), "a": np.ones((2, 3), np.float32)}
    assert fileio.npz_bytes(arrays) == fileio.npz_bytes(dict(reversed(list(arrays.items()))))
    loaded = np.load(__import__("io").BytesIO(fileio.npz_bytes(arrays)))
    assert np.array_equal(loaded["b"], arrays["b"]) and np.array_equal(loaded["a"], arrays["a"])


def test_atomic_write_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with fileio.atomic_open(target, "w") as f:
            f.write("partial")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_canonical_json_is_sorted_and_stable() -> None:
    assert fileio.canonical_json({"b": 1, "a": [1.5, np.float32(0.25)]}) == '{\n "a": [\n  1.5,\n  0.25\n ],\n "b": 1\n}\n'


def test_options_resolve_defaults_toml_then_command_line() -> None:
    values = options.resolve({"quant": "q7"}, {"range": "percentile:99.9", "quant": None})
    assert values == {"quant": "q7", "range": "percentile:99.9", "api": "s8", "legacy_softmax": "input",
                      "overlap": "on", "patches": "off", "order": "memory"}
    assert options.for_stage(values, "ranges") == {"quant": "q7", "range": "percentile:99.9"}
    assert options.for_stage(values, "quantize") == {"quant": "q7", "api": "s8"}
    assert options.for_stage(values, "codegen") == {"api": "s8", "legacy_softmax": "input", "overlap": "on",
                                                    "patches": "off", "order": "memory"}


@pytest.mark.parametrize("key, value", [("quant", "q9"), ("range", "percentile:0"), ("range", "percentile:101"),
                                        ("range", "max"), ("api", "s4"), ("legacy_softmax", "exp")])
def test_bad_option_values_are_refused(key: str, value: str) -> None:
    with pytest.raises(NnsconsError, match=key):
        options.resolve({}, {key: value})


def test_model_toml_errors_name_the_file(tmp_path: Path) -> None:
    toml = tmp_path / "model.toml"
    toml.write_text('quantt = "q7"\n')
    with pytest.raises(NnsconsError, match=r"model\.toml: unknown option 'quantt'"):
        options.read_model_toml(toml)
    toml.write_text('quant = "q7\n')
    with pytest.raises(NnsconsError, match=r"model\.toml: cannot read"):
        options.read_model_toml(toml)


def test_model_folders_are_discovered_and_checked(tmp_path: Path) -> None:
    (tmp_path / "good").mkdir()
    (tmp_path / "good" / "model.onnx").write_bytes(b"")
    (tmp_path / "good" / "calib.npz").write_bytes(b"")
    (tmp_path / "notes").mkdir()
    found = project.discover_models(str(tmp_path))
    assert [m.name for m in found] == ["good"] and found[0].calib and not found[0].test
    (tmp_path / "bad-name").mkdir()
    (tmp_path / "bad-name" / "model.tflite").write_bytes(b"")
    with pytest.raises(NnsconsError, match="C identifier"):
        project.discover_models(str(tmp_path))


def test_names_from_models_become_safe_c() -> None:
    table = ir.NameTable()
    assert table.unique("conv/1:0") == "conv_1_0"
    assert table.unique("conv/1:0") == "conv_1_0_1"
    assert table.unique("2nd layer") == "t_2nd_layer"
    assert table.unique("int") == "t_int"
    assert table.unique("*/ evil(); /*") == "evil"
    assert table.unique("") == "t"
    comment = ir.c_comment("a */ b /* c // d ??/ \\ \n é" + "x" * 100)
    assert "*/" not in comment and "/*" not in comment and "//" not in comment and "??" not in comment
    assert "\n" not in comment and "\\" not in comment and len(comment) <= 60


def test_cli_reports_a_bad_model_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not a model at all")
    result = subprocess.run([sys.executable, "-m", "nnscons.cli", "inspect", str(bad)], capture_output=True,
                            text=True, cwd=SITE)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and str(bad) in result.stderr and "Traceback" not in result.stderr


def test_cli_quantize_writes_the_tables(tmp_path: Path) -> None:
    model = ROOT / "models" / "digits_cnn"
    result = subprocess.run([sys.executable, "-m", "nnscons.cli", "quantize", str(model / "model.onnx"),
                             "--calib", str(model / "calib.npz"), "--quant", "q7", "--out", str(tmp_path)],
                            capture_output=True, text=True, cwd=SITE)
    assert result.returncode == 0, result.stderr
    tables = json.loads((tmp_path / "qtable.json").read_text())
    assert tables["scheme"] == "q7"
    assert (tmp_path / "qtable.txt").read_text().strip()


def test_every_library_package_is_installed() -> None:
    """pyproject.toml lists the packages explicitly (some come from other folders): a new subpackage must be
    listed or ``pip install`` leaves it out."""
    import tomllib
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(SITE).parts) for p in (SITE / "nnscons").rglob("__init__.py")}
    assert found - listed == set()
