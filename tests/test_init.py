"""Outside the repository: the wheel in a fresh environment, ``nnscons init``, the starter project's SCons and CMake
builds (host and Cortex-M4 in QEMU), and the SCons board helper compiling a user's own sources without the strict
warnings while generated code keeps them.

The quick tests write starter projects (and refuse what they must) without compiling anything; the slow ones build.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from installed import build_wheel, install_wheel

from nnscons.init_project import init_project
from nnscons.errors import NnsconsError

ROOT = Path(__file__).resolve().parents[1]
LABELLED = "4 of 4 as labelled"
needs_board_tools = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or
                                       shutil.which("qemu-system-arm") is None,
                                       reason="needs arm-none-eabi-gcc and qemu-system-arm")


def nnscons(*args: str | Path, cwd: Path | None = None, python: str = sys.executable) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "site_scons")} if python == sys.executable else \
        {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([python, "-m", "nnscons", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=600)


# ---- quick: what init writes and what it refuses ------------------------------------------------------------------
def test_init_writes_the_starter_project(tmp_path: Path) -> None:
    result = nnscons("init", tmp_path / "demo")
    assert result.returncode == 0, result.stderr
    demo = tmp_path / "demo"
    files = sorted(str(p.relative_to(demo)) for p in demo.rglob("*") if p.is_file())
    assert files == [".gitignore", "CMakeLists.txt", "README.md", "SConstruct", "main.c", "models/digits/calib.npz",
                     "models/digits/model.onnx", "models/digits/model.toml"]
    assert (demo / "models/digits/model.onnx").read_bytes() == (ROOT / "models/digits_cnn/model.onnx").read_bytes()
    sconstruct = (demo / "SConstruct").read_text()
    assert 'env.Tool("nnscons_tool", toolpath=[nnscons.tool_path()])' in sconstruct
    assert "NnsconsBoardProgram" in sconstruct and 'MODEL = "digits"' in sconstruct
    assert "nnscons_add_model(digits MODEL models/digits/model.onnx CALIB models/digits/calib.npz)" in \
        (demo / "CMakeLists.txt").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]     # no staging folder left


def test_init_refuses_a_folder_that_is_not_empty_unless_forced(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("mine")
    result = nnscons("init", tmp_path)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == f"nnscons: {tmp_path}: exists and is not empty (nnscons init --force writes the " \
                            "starter's files into it)\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]
    assert nnscons("init", tmp_path, "--force").returncode == 0
    assert (tmp_path / "mine.txt").read_text() == "mine" and (tmp_path / "SConstruct").is_file()


def test_init_refuses_a_model_it_cannot_build_in_one_line_and_writes_nothing(tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    float_model = ROOT / "models" / "mnist_lstm_float" / "model.tflite"
    for model, message in ((broken, f"nnscons: {broken}: not an ONNX model"),
                           (float_model, f"nnscons: {float_model}: quant=int8 needs activation statistics"),
                           (tmp_path / "missing", f"nnscons: {tmp_path / 'missing'}: no such model file or folder")):
        result = nnscons("init", tmp_path / "demo", "--model", model)
        assert result.returncode == 1 and result.stderr.startswith(message), result.stderr
        assert len(result.stderr.splitlines()) == 1
        assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.onnx"]     # no project, no staging folder


def test_init_with_a_model_of_two_inputs_and_two_outputs_writes_a_main_for_them(tmp_path: Path) -> None:
    model = init_project(str(tmp_path / "demo"), str(ROOT / "models" / "two_io_onnx"))
    assert (model.name, model.inputs, model.outputs) == ("two_io_onnx", ["0", "1"], ["0", "1"])
    main = (tmp_path / "demo" / "main.c").read_text()
    assert "two_io_onnx_invoke(input0, input1, output0, output1)" in main
    assert sorted(p.name for p in (tmp_path / "demo" / "models" / "two_io_onnx").iterdir()) == \
        ["calib.npz", "model.onnx", "model.toml", "test.npz"]
    with pytest.raises(NnsconsError, match="cannot be used"):
        init_project(str(tmp_path / "other"), str(ROOT / "models" / "two_io_onnx"), name="summary")


# ---- slow: the wheel in a fresh environment, the starter built with SCons and CMake --------------------------------
@pytest.fixture(scope="module")
def wheel_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("wheel")
    return install_wheel(build_wheel(directory), directory / "venv")


def in_venv(python: Path, *cmd: str | Path, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = f"{python.parent}{os.pathsep}{env['PATH']}"     # an activated environment
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, f"{cmd}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def classified(stdout: str) -> list[str]:
    lines = [line for line in stdout.splitlines() if line.startswith("image ") or LABELLED in line]
    assert len(lines) == 5 and LABELLED in lines[-1], stdout
    assert all(re.search(r"digit (\d) \(p = 0\.\d{3}\), labelled \1$", line) for line in lines[:4]), stdout
    return lines


@pytest.mark.slow
def test_the_wheel_carries_the_package_data_and_requires_scons(wheel_python: Path) -> None:
    wheel = next((wheel_python.parents[2] / "dist").glob("nnscons-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("nnscons/_example/model.onnx", "nnscons/_example/calib.npz", "nnscons/starter/SConstruct.j2",
                   "nnscons/starter/main_digits.c", "nnscons/_cmake/nnscons.cmake",
                   "nnscons/_cmake/arm-none-eabi.cmake",
                   "nnscons/_targets/m4/target.toml", "nnscons/_targets/m4/firmware.ld",
                   "nnscons/runtime/nnscons_startup_cortex_m.c", "nnscons/runtime/nnscons_cortex_m_sections.ld",
                   "nnscons/_cmsis/Include/arm_nnfunctions.h", "nnscons/_tool/nnscons_tool/__init__.py",
                   "nnscons/templates/model.c.j2"):
        assert needed in names, needed
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert re.search(r"^Requires-Dist: scons>=", metadata, re.M)        # `pip install nnscons` brings `scons`
    version = subprocess.run([str(wheel_python.parent / "nnscons"), "--version"], capture_output=True, text=True)
    assert version.stdout.strip() == "nnscons 0.1.0"


@pytest.mark.slow
@needs_board_tools
def test_init_project_builds_with_scons_and_cmake_from_the_wheel(wheel_python: Path, tmp_path: Path) -> None:
    in_venv(wheel_python, "nnscons", "init", "demo", cwd=tmp_path)
    demo = tmp_path / "demo"
    scons = (wheel_python, wheel_python, "-m", "SCons", "-Q", "-j2")    # what the venv's `scons` runs
    board = in_venv(*scons, "target=m4", "run", cwd=demo)
    assert "nnscons run       build/m4/app.elf on m4" in board
    host = in_venv(*scons, "run", cwd=demo)
    assert classified(board) == classified(host)
    package = Path(in_venv(wheel_python, "nnscons", "path", "tool", cwd=demo).strip())
    assert package.is_relative_to(wheel_python.parents[1])      # the wheel's tool, not the checkout's

    in_venv(wheel_python, "cmake", "-S", ".", "-B", "build-cmake", cwd=demo)       # the default generator
    in_venv(wheel_python, "cmake", "--build", "build-cmake", "-j2", cwd=demo)
    assert classified(in_venv(wheel_python, demo / "build-cmake" / "app", cwd=demo)) == classified(host)
    in_venv(wheel_python, "cmake", "-S", ".", "-B", "build-cmake-m4", "-DNNSCONS_BOARD=m4", cwd=demo)
    assert classified(in_venv(wheel_python, "cmake", "--build", "build-cmake-m4", "--target", "run", cwd=demo)) == \
        classified(host)


USER_SCONSTRUCT = '''\
import os
import sys
sys.path.insert(0, ARGUMENTS["NNSCONS"])
import nnscons

env = Environment(ENV={"PATH": os.environ["PATH"]})
env.Tool("nnscons_tool", toolpath=[nnscons.tool_path()])
m4 = env.NnsconsTargetEnv("m4")
digits, include = m4.NnsconsLibrary("digits", "models/digits/model.onnx", calib="models/digits/calib.npz")
app = m4.NnsconsBoardProgram("build/m4/app.elf", ["main.c"], CPPPATH=[include], LIBS=[digits, m4.NnsconsKernels()])
m4.NnsconsBoardRun(app)
'''

USER_MAIN = '''\
#include <stdio.h>
#include "digits.h"

int main(void)
{
    int unused;                         /* -Wall -Werror would refuse this */
    static digits_input_t input[DIGITS_INPUT_SIZE];
    static digits_output_t output[DIGITS_OUTPUT_SIZE];
    printf("ratio %.2f\\n", 3 / 2.0);   /* float printf on newlib-nano */
    return digits_invoke(input, output);
}
'''


@pytest.mark.slow
@needs_board_tools
def test_board_program_compiles_user_sources_without_the_strict_warnings(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    shutil.copytree(ROOT / "models" / "digits_cnn", tmp_path / "models" / "digits")
    (tmp_path / "SConstruct").write_text(USER_SCONSTRUCT)
    (tmp_path / "main.c").write_text(USER_MAIN)
    result = subprocess.run([sys.executable, "-m", "SCons", "-Q", "-j2", f"NNSCONS={ROOT / 'site_scons'}", "run"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "ratio 1.50" in result.stdout
    commands = {Path(line.split()[-1]).name: line.split() for line in result.stdout.splitlines()
                if line.startswith("arm-none-eabi-gcc") and " -c " in line}
    assert "-Werror" not in commands["main.c"] and "-mcpu=cortex-m4" in commands["main.c"]
    for strict in ("digits_model.c", "digits_weights.c", "arm_convolve_s8.c", "nnscons_startup_cortex_m.c"):
        assert {"-Wall", "-Wextra", "-Werror", "-pedantic"} <= set(commands[strict]), strict
    link = next(line for line in result.stdout.splitlines() if " -o build/m4/app.elf " in line)
    assert "-Wl,-u,_printf_float" in link and "--specs=rdimon.specs" in link and "firmware.ld" in link


def test_run_refuses_what_it_cannot_run_in_one_line(tmp_path: Path) -> None:
    elf = tmp_path / "app.elf"
    elf.write_bytes(b"\x7fELF")
    missing = tmp_path / "missing.elf"
    for args, message in ((("--target", "nope", elf), "nnscons: nope: no such target"),
                          (("--target", "m4", missing), f"nnscons: {missing}: no such file"),
                          (("--target", "host", elf), "is not a board")):
        result = nnscons("run", *args)
        assert result.returncode == 1 and message in result.stderr and len(result.stderr.splitlines()) == 1, \
            result.stderr
