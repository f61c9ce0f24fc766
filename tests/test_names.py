"""Untrusted names on their way into C: the comment sanitizer (any text in, nothing out that ends a comment, starts
one, continues a line or forms a trigraph), and model names that would break the build (C keywords, names whose
<name>.h hides a header the build includes, build target names)."""
from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import HOSTILE_NAMES
from nnscons import cli, cnames, ir, project
from nnscons.errors import NnsconsError

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "site_scons"

FORBIDDEN = ("/*", "*/", "//", "??", "\\")


def assert_comment_safe(text: str, limit: int) -> None:
    assert all(32 <= ord(ch) < 127 for ch in text), repr(text)
    for fragment in FORBIDDEN:
        assert fragment not in text, (fragment, text)
    assert len(text) <= limit


@pytest.mark.parametrize("text", HOSTILE_NAMES)
def test_comment_text_is_safe_and_idempotent(text: str) -> None:
    for limit in (30, 60, 200, 20_000):
        safe = ir.c_comment(text, limit)
        assert_comment_safe(safe, limit)
        assert ir.c_comment(safe, limit) == safe          # sanitizing twice changes nothing
        # a comment built from it stays one comment
        assert f"/* {safe} */".count("*/") == 1


def test_comment_text_is_safe_for_random_text() -> None:
    rng = random.Random(11)
    alphabet = "*/\\?? \n\t\"'#aé\u00a0\u2028\x00=(-!<>"
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
        safe = ir.c_comment(text)
        assert_comment_safe(safe, 60)
        assert ir.c_comment(safe) == safe


def test_comment_keeps_ordinary_names_as_they_are() -> None:
    """The labels of real models pass unchanged (so generated comments of the example models do not move)."""
    for name in ("sequential/dense/MatMul;sequential/dense/BiasAdd", "CONV_2D #3", "Conv_0 +Relu", "input_1:0",
                 "functional_1/conv2d/Conv2D", "a-b.c, d=e (f) [g] {h} <i> 100% @j $k ^l ~m |n &o"):
        assert ir.c_comment(name, 200) == name


def test_identifiers_from_any_text() -> None:
    table = ir.NameTable()
    for text in HOSTILE_NAMES + ["int", "_Bool", "__x", "9lives", "true", "", "ü"]:
        name = table.unique(text)
        assert ir._IDENT.fullmatch(name) and name not in cnames.C_KEYWORDS and not name.startswith("_"), name


# ---- model names ------------------------------------------------------------------------------------------------
def model_folder(root: Path, name: str, model: str = "model.tflite") -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / model).write_bytes(b"")
    return folder


@pytest.mark.parametrize("name, why", [("stdio", "hide <stdio.h>"), ("math", "hide <math.h>"),
                                       ("string", "hide <string.h>"), ("errno", "hide <errno.h>"),
                                       ("Stdint", "hide <stdint.h>"), ("features", "hide <features.h>"),
                                       ("arm_nnfunctions", "hide <arm_nnfunctions.h>"),
                                       ("nnscons_firmware", "nnscons' runtime"),
                                       ("int", "C keyword"), ("bool", "C keyword"), ("while", "C keyword"),
                                       ("check", "build target"), ("summary", "build target")])
def test_reserved_model_names_are_refused_in_one_line(tmp_path: Path, name: str, why: str) -> None:
    folder = model_folder(tmp_path / "models", name)
    with pytest.raises(NnsconsError, match=why) as caught:
        project.find_model(str(folder))
    assert str(caught.value).startswith(str(folder)) and "\n" not in str(caught.value)
    found, broken = project.discover_each_model(str(tmp_path / "models"))
    assert not found and list(broken) == [name]


def test_ordinary_names_are_accepted(tmp_path: Path) -> None:
    for name in ("kws", "stdio_net", "mathnet", "int8_model", "digits_cnn", "arm_gesture"):
        assert project.find_model(str(model_folder(tmp_path, name))).name == name


def test_headers_the_project_ships_are_reserved() -> None:
    shipped = [p.stem for d in (ROOT / "cmsis" / "Include", SITE / "nnscons" / "runtime") for p in d.glob("*.h")]
    assert shipped and all(cnames.reserved_name_problem(stem) for stem in shipped), shipped


def test_a_dangling_model_file_is_an_error_naming_it(tmp_path: Path) -> None:
    folder = tmp_path / "models" / "kws"
    folder.mkdir(parents=True)
    os.symlink(tmp_path / "gone.tflite", folder / "model.tflite")
    with pytest.raises(NnsconsError, match="model.tflite: .*dangling") as caught:
        project.find_model(str(folder))
    assert "gone.tflite" in str(caught.value)
    found, broken = project.discover_each_model(str(tmp_path / "models"))
    assert not found and "dangling" in str(broken["kws"])
    with pytest.raises(NnsconsError, match="dangling"):
        project.discover_models(str(tmp_path / "models"))


@pytest.mark.parametrize("name", ["stdio", "int", "arm_nnfunctions"])
def test_generate_refuses_a_reserved_name(tmp_path: Path, name: str) -> None:
    model = ROOT / "models" / "hello_world_int8" / "model.tflite"
    with pytest.raises(NnsconsError, match="--name"):
        cli.generate(str(model), str(tmp_path), name=name)
    copy = tmp_path / f"{name}.tflite"          # the default name comes from the file's stem
    copy.write_bytes(model.read_bytes())
    result = subprocess.run([sys.executable, "-m", "nnscons", "generate", str(copy), "--out", str(tmp_path / "o")],
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(SITE)}, timeout=120)
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "--name" in result.stderr and not (tmp_path / "o").exists()


def _search_dirs(cc: list[str]) -> list[Path]:
    """The compiler's own include folders (``cc -E -v``)."""
    result = subprocess.run([*cc, "-xc", "-E", "-v", os.devnull], capture_output=True, text=True, timeout=60)
    lines = result.stderr.splitlines()
    start = lines.index("#include <...> search starts here:")
    return [Path(line.strip()).resolve() for line in lines[start + 1:lines.index("End of search list.")]]


@pytest.mark.slow       # runs the preprocessors
def test_every_header_the_build_includes_by_a_bare_name_is_reserved(tmp_path: Path) -> None:
    """What the generated code, the test and firmware runners and the C libraries under them include from an
    include folder's top (so that a model folder's <name>.h could hide it), on this machine's compilers."""
    import shutil
    cli.generate(str(ROOT / "models" / "hello_world_int8" / "model.tflite"), str(tmp_path), "net")
    runtime = SITE / "nnscons" / "runtime"
    sources = [tmp_path / "net_model.c", tmp_path / "net_weights.c", runtime / "nnscons_test_main.c"]
    compilers = [(["gcc", "-std=c99"], sources)]
    if shutil.which("arm-none-eabi-gcc"):
        compilers.append((["arm-none-eabi-gcc", "-std=c99", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard",
                           "-mfpu=fpv4-sp-d16"], sources[:2] + sorted(runtime.glob("nnscons_*cortex_m*.c"))
                          + [runtime / "nnscons_firmware_main.c"]))
    bare = set()
    for cc, files in compilers:
        roots = set(_search_dirs(cc)) | {(ROOT / "cmsis" / "Include").resolve(), runtime.resolve()}
        for source in files:
            defines = ["-DNNSCONS_MODEL_INFO=net_info", "-DNNSCONS_CLOCK_HZ=1"]
            result = subprocess.run([*cc, "-M", f"-I{tmp_path}", f"-I{ROOT / 'cmsis' / 'Include'}", f"-I{runtime}",
                                     "-include", "net.h", *defines, str(source)], capture_output=True, text=True,
                                    timeout=60)
            assert result.returncode == 0, result.stderr
            for dep in result.stdout.replace("\\\n", " ").split()[1:]:
                path = Path(dep).resolve()
                if path.suffix == ".h" and path.parent in roots and re.fullmatch(r"[A-Za-z]\w*", path.stem):
                    bare.add(path.stem)
    assert {"stdio", "stdint", "arm_nnfunctions"} <= bare
    missing = sorted(name for name in bare - {"net"} if not cnames.reserved_name_problem(name))
    assert missing == [], f"headers included by a bare name that a model could hide: {missing}"
