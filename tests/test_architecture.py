"""The library's shape (issue 10): modules under the size limit, imports only downward through the graph's
layers, no cycle (tools/check_layers.py), and nothing heavy imported while SCons reads an SConstruct."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("check_layers", ROOT / "tools" / "check_layers.py")
check_layers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_layers)


def test_modules_are_small_layered_and_acyclic() -> None:
    rows, problems = check_layers.analyse()
    assert len(rows) > 50
    assert problems == []


def test_reading_an_sconstruct_imports_no_model_library() -> None:
    """What the SConstruct and the tool import must stay light: a no-op build is an editor hook's cost."""
    code = ("import sys; sys.path.insert(0, 'site_scons'); import nnscons.project, nnscons.options, "
            "nnscons.targets, nnscons.scons_tool, nnscons.pipeline; "
            "print(' '.join(m for m in ('numpy', 'onnx', 'tflite', 'jinja2', 'matplotlib') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
