"""The layout of the generated C (nnscons.codegen.common, nnscons.codegen.model): lines within 120 columns with
aligned continuation lines, labelled numbers, wrapped comments, and a scratch-size choice in the header whose
branches all differ and that picks what the three-way Helium / DSP / pure C choice picks."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from nnscons.codegen import common, model

W = common.LINE_WIDTH


def test_a_short_call_stays_on_one_line_with_its_labels() -> None:
    assert common.c_call("arm_relu_q7", ["x", ("size", 1024)], 8) == "        arm_relu_q7(x, /* size */ 1024);"
    assert common.c_call("f", [("shift", -(1 << 31))]) == "f(/* shift */ (-2147483647 - 1));"
    assert common.c_call("int f", ["void *a"], 0, "") == "int f(void *a)"


def test_a_long_call_wraps_aligned_after_its_parenthesis_and_breaks_where_asked() -> None:
    arguments = ["input_a", "input_b", common.BREAK] + [(f"parameter_{k}", 1000 * k) for k in range(12)]
    text = common.c_call("status = arm_function_s8", arguments, 8)
    lines = text.split("\n")
    column = len("        status = arm_function_s8(")
    assert lines[0] == "        status = arm_function_s8(input_a, input_b,"
    assert all(len(line) <= W for line in lines) and len(lines) > 2
    assert all(line[:column].isspace() and not line[column].isspace() for line in lines[1:])
    assert text.endswith("/* parameter_11 */ 11000);")
    flat = " ".join(line.strip() for line in lines)
    assert flat == "status = arm_function_s8(input_a, input_b, " + ", ".join(
        f"/* parameter_{k} */ {1000 * k}" for k in range(12)) + ");"


def test_a_call_whose_arguments_do_not_fit_after_the_parenthesis_hangs() -> None:
    text = common.c_call("x" * 90, ["y" * 40, "z"], 8)
    lines = text.split("\n")
    assert lines[0] == " " * 8 + "x" * 90 + "("
    assert lines[1] == " " * 12 + "y" * 40 + ", z);"


def test_labels_go_to_numbers_and_expressions_not_to_names() -> None:
    assert common.labelled("Im_in", "net_in0") == "net_in0"
    assert common.labelled("params", "&params") == "&params"
    assert common.labelled("bufferB", "NULL") == ("bufferB", "NULL")
    assert common.labelled("size", np.int64(7)) == ("size", "7")
    assert common.labelled("pV", "x + row * 8") == ("pV", "x + row * 8")


def test_comments_wrap_within_the_width() -> None:
    text = common.comment_block(["layer: conv2d", "  in  " + "word " * 40], 8)
    lines = text.split("\n")
    assert lines[0] == "        /* layer: conv2d" and lines[1].startswith("         *   in  word")
    assert lines[2].startswith("         *     word") and text.endswith("word */")
    assert all(len(line) <= W for line in lines)
    assert common.trailing_comment("int x;", "note") == "int x; /* note */"
    assert common.trailing_comment("    " + "y" * 110 + ";", "note").split("\n")[0] == "    /* note */"
    assert len(common.rule("the static arena")) == W


def test_constant_rows_fit_whatever_the_values() -> None:
    for values, most in ((np.arange(-128, 128), 16), (np.full(40, -32768), 16),
                         (np.array([-(1 << 31)] * 20), 8), (np.array([-(1 << 63)] * 20), 8)):
        rows = common.value_rows(values, most)
        assert all(common.ARRAY_INDENT + len(row) <= W for row in rows)
        assert sum(row.count(",") for row in rows) == len(values)          # one literal and its comma per value
        assert len(rows[0].split(",")) - 1 == min(most, len(values)) or common.ARRAY_INDENT + 2 * len(rows[0]) > W


SCRATCH_CASES = [{"mve": 64, "dsp": 64, "c": 64}, {"mve": 800, "dsp": 800, "c": 0},
                 {"mve": 1152, "dsp": 576, "c": 576}, {"mve": 4464, "dsp": 256, "c": 160},
                 {"mve": 96, "dsp": 32, "c": 96}]
FEATURES = {"mve": ["-D__ARM_FEATURE_MVE=3", "-D__ARM_FEATURE_DSP=1"], "dsp": ["-D__ARM_FEATURE_DSP=1"], "c": []}


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
@pytest.mark.parametrize("dsp_check", ["defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1)",
                                       "(defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1)) || defined(ARM_MATH_DSP)"])
@pytest.mark.parametrize("scratch", SCRATCH_CASES)
def test_the_scratch_choice_has_distinct_branches_and_picks_per_feature_set(scratch: dict[str, int], dsp_check: str,
                                                                          tmp_path: Path) -> None:
    branches = model.scratch_branches(scratch, dsp_check)
    sizes = [b["size"] for b in branches]
    assert len(set(sizes)) == len(sizes) == len(set(scratch.values()))
    lines = []
    for branch in branches:
        lines += [branch["directive"]] if branch["directive"] else []
        lines.append(f"#define SCRATCH {branch['size']}")
    lines += ["#endif"] if len(branches) > 1 else []
    assert all(len(line) <= W for text in lines for line in text.split("\n"))
    source = tmp_path / "choice.c"
    source.write_text("\n".join(lines) + "\nSCRATCH\n")
    for feature, flags in FEATURES.items():
        out = subprocess.run(["gcc", "-E", "-P", *flags, str(source)], capture_output=True, text=True, check=True)
        assert out.stdout.split() == [str(scratch[feature])], (feature, lines)
