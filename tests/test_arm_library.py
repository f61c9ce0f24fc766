"""``cmsis_nn=``: a CMSIS-NN checkout of Arm's layout instead of the bundled kernels, and verdicts that stay honest.

There is no copy of Arm's library here, so the tests make stand-in trees from the bundled kernels with Arm's two
layouts: a CMSIS_5 tree (``CMSIS/NN`` whose headers need the sibling ``CMSIS/DSP/Include`` and
``CMSIS/Core/Include``) and a standalone v5+ checkout (``Include/``, ``Source/``). One stand-in carries a left shift
of a negative value, as Arm's own code does: it must pass the check because an external library is compiled
without the sanitizers (generated code and the test main keep them). Another computes a wrong fully connected
layer: its failed check writes report.json and report.html, fails the build, and is not taken as up to date
after going back to the bundled kernels and returning.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow   # whole host builds under the sanitizers

ROOT = Path(__file__).resolve().parents[1]
MODEL = "hello_world_int8"
FC = Path("Source") / "FullyConnectedFunctions" / "arm_fully_connected_s8.c"
UB_LINE = ("    { volatile int32_t negative = -1; output_data[-1] = (int8_t)(output_data[-1] + "
           "((negative << 1) - (negative << 1))); }   /* stand-in: UB like Arm's left shifts */\n")


def scons(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "SCons", "-Q", "-j2", f"models={MODEL}", *args], cwd=project,
                          capture_output=True, text=True, timeout=900)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(ROOT / "SConstruct", root / "SConstruct")
    for item in ("site_scons", "cmsis", "targets"):
        shutil.copytree(ROOT / item, root / item, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "models" / MODEL, root / "models" / MODEL)
    return root


def _before_last_return(source: Path, line: str) -> None:
    text = source.read_text()
    at = text.rindex("    return ARM_CMSIS_NN_SUCCESS;")
    source.write_text(text[:at] + line + text[at:])


def cmsis5_tree(root: Path, with_siblings: bool = True) -> Path:
    """A CMSIS_5-shaped tree: CMSIS/NN from the bundled kernels, its types header needing CMSIS-DSP's."""
    nn = root / "CMSIS" / "NN"
    shutil.copytree(ROOT / "cmsis", nn)
    types = nn / "Include" / "arm_nn_types.h"
    types.write_text('#include "arm_math_types.h"\n' + types.read_text())
    if with_siblings:
        (root / "CMSIS" / "DSP" / "Include").mkdir(parents=True)
        (root / "CMSIS" / "DSP" / "Include" / "arm_math_types.h").write_text(
            '#ifndef ARM_MATH_TYPES_H\n#define ARM_MATH_TYPES_H\n#include "cmsis_compiler.h"\n#include <stdint.h>\n'
            "typedef int8_t q7_t;\n#endif\n")
        (root / "CMSIS" / "Core" / "Include").mkdir(parents=True)
        (root / "CMSIS" / "Core" / "Include" / "cmsis_compiler.h").write_text(
            "#ifndef CMSIS_COMPILER_H\n#define CMSIS_COMPILER_H\n#endif\n")
    _before_last_return(nn / FC, UB_LINE)
    return nn


def test_a_cmsis5_tree_with_its_siblings_passes_the_check_unsanitized(project: Path, tmp_path: Path) -> None:
    nn = cmsis5_tree(tmp_path / "CMSIS_5")
    result = scons(project, "target=host", "check", "summary", f"cmsis_nn={nn}")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads((project / "build" / "host" / MODEL / "report.json").read_text())
    assert report["passed"] and report["sanitizers"]["clean"]
    assert "not sanitized" in report["kernels"] and str(nn) in report["kernels"]
    flags = (project / "build" / "host").rglob("cmsis-sanitize/obj/FullyConnectedFunctions/*.o")
    assert list(flags), "the sanitized environment compiled the external kernels"


def test_the_bundled_kernels_with_the_same_shift_fail_under_ubsan(project: Path) -> None:
    """The counterpart: in nnscons' own kernels the same line is caught (they are sanitized)."""
    _before_last_return(project / "cmsis" / FC, UB_LINE)
    result = scons(project, "target=host", "check")
    assert result.returncode != 0
    report = json.loads((project / "build" / "host" / MODEL / "report.json").read_text())
    assert not report["sanitizers"]["clean"] and "left shift of negative value" in result.stderr + result.stdout


def test_a_cmsis5_tree_without_its_siblings_is_one_line(project: Path, tmp_path: Path) -> None:
    nn = cmsis5_tree(tmp_path / "CMSIS_5", with_siblings=False)
    result = scons(project, "target=host", f"cmsis_nn={nn}")
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "arm_math_types.h" in lines[0] and "CMSIS/DSP/Include" in lines[0], result.stderr


def test_a_standalone_checkout_of_arms_layout_builds(project: Path, tmp_path: Path) -> None:
    checkout = tmp_path / "CMSIS-NN"
    shutil.copytree(ROOT / "cmsis", checkout)
    result = scons(project, "target=host", "check", f"cmsis_nn={checkout}")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def test_a_failed_check_leaves_its_report_and_is_never_up_to_date(project: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    shutil.copytree(ROOT / "cmsis", wrong)
    _before_last_return(wrong / FC, "    output_data[-1] = (int8_t)(output_data[-1] ^ 1);   /* stand-in: wrong */\n")
    host = project / "build" / "host" / MODEL
    assert scons(project, "target=host", "check").returncode == 0
    failed = scons(project, "target=host", "check", "summary", f"cmsis_nn={wrong}")
    assert failed.returncode != 0
    report = json.loads((host / "report.json").read_text())
    assert not report["passed"] and "differ from TFLite Micro" in report["failures"][0]
    assert (host / "report.html").is_file()                                     # drawn from what was measured
    assert "FAILED: " in failed.stdout and "differ from TFLite Micro" in failed.stdout   # the summary's row
    again = scons(project, "target=host", "check", f"cmsis_nn={wrong}")         # same inputs: still failing
    assert again.returncode != 0
    back = scons(project, "target=host", "check", "summary")                    # the bundled kernels again
    assert back.returncode == 0 and "FAILED" not in back.stdout, back.stdout
    assert json.loads((host / "report.json").read_text())["passed"]
