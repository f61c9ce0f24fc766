"""Embedding in another SCons build: an SConstruct outside the repository loads the tool (from nnscons installed
with pip into a fresh environment, and from a checkout through toolpath), turns two models into libraries with
one call each, links them with the shared kernel library into a C program and runs it.

The installed package is also checked on its own: it carries the kernel library, the targets, the CMake files,
the templates and the runtime sources, and its ``nnscons`` command works away from the checkout.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from installed import install

pytestmark = pytest.mark.slow   # pip installs, SCons and CMake builds

ROOT = Path(__file__).resolve().parents[1]

SCONSTRUCT = '''\
# Two models embedded in an application with the nnscons SCons tool.
import os
import sys

if ARGUMENTS.get("NNSCONS"):                   # a checkout's site_scons, when nnscons is not installed
    sys.path.insert(0, ARGUMENTS["NNSCONS"])
import nnscons

print("nnscons package:", os.path.dirname(nnscons.__file__))
env = Environment(tools=["default"], ENV={"PATH": os.environ["PATH"]}, CCFLAGS=["-O2", "-Wall", "-Werror"])
env.Tool("nnscons_tool", toolpath=[nnscons.tool_path()])

kernels = env.NnsconsKernels()
kws, kws_include = env.NnsconsLibrary("kws", "models/kws/model.tflite")
digits, digits_include = env.NnsconsLibrary("digits", "models/digits/model.onnx", calib="models/digits/calib.npz",
                                            options={"quant": "int8", "range": "minmax"})
app = env.Program("app", ["main.c"], CPPPATH=[kws_include, digits_include], LIBS=[kws, digits, kernels, "m"])
Default(app)
'''

MAIN_C = '''\
#include <stdio.h>

#include "digits.h"
#include "inputs.h"
#include "kws.h"

static int argmax(const int8_t *scores, int count)
{
    int best = 0;
    for (int i = 1; i < count; i++) {
        if (scores[i] > scores[best]) {
            best = i;
        }
    }
    return best;
}

int main(void)
{
    kws_output_t kws_scores[KWS_OUTPUT_SIZE];
    digits_input_t digits_input[DIGITS_INPUT_SIZE];
    digits_output_t digits_scores[DIGITS_OUTPUT_SIZE];

    if (kws_invoke(kws_sample, kws_scores) != 0) {
        return 1;
    }
    digits_quantize_input(digits_sample, digits_input, DIGITS_INPUT_SIZE);
    if (digits_invoke(digits_input, digits_scores) != 0) {
        return 1;
    }
    printf("kws class %d\\n", argmax(kws_scores, KWS_OUTPUT_SIZE));
    printf("digits class %d\\n", argmax(digits_scores, DIGITS_OUTPUT_SIZE));
    return 0;
}
'''


def c_array(ctype: str, name: str, values: np.ndarray) -> str:
    return f"static const {ctype} {name}[] = {{{', '.join(repr(v) + ('f' if ctype == 'float' else '') for v in values.tolist())}}};\n"


@pytest.fixture(scope="module")
def installed_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install(tmp_path_factory.mktemp("installed"))


def make_project(directory: Path) -> tuple[int, int]:
    """The application folder; returns the classes its two samples should get (the test sets' labels)."""
    (directory / "models").mkdir(parents=True)
    shutil.copytree(ROOT / "models" / "kws_dscnn_int8", directory / "models" / "kws")
    shutil.copytree(ROOT / "models" / "digits_cnn", directory / "models" / "digits")
    (directory / "SConstruct").write_text(SCONSTRUCT)
    (directory / "main.c").write_text(MAIN_C)
    kws = np.load(directory / "models" / "kws" / "test.npz")
    digits = np.load(directory / "models" / "digits" / "test.npz")
    (directory / "inputs.h").write_text(c_array("int8_t", "kws_sample", kws["x"][0].reshape(-1)) +
                                        c_array("float", "digits_sample", digits["x"][0].reshape(-1)))
    return int(kws["y"][0]), int(digits["y"][0])


def scons(python: Path, project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([str(python), "-m", "SCons", "-Q", *args], cwd=project, capture_output=True, text=True,
                            env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def check_application(python: Path, project: Path, expected: tuple[int, int], *args: str) -> str:
    first = scons(python, project, *args)
    run = subprocess.run([str(project / "app")], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("\n")[:2] == [f"kws class {expected[0]}", f"digits class {expected[1]}"], run.stdout
    again = scons(python, project, *args)
    assert again.stdout.splitlines()[1:] == ["scons: `app' is up to date."], again.stdout
    return first.stdout


def test_an_sconstruct_embeds_two_models_with_the_installed_package(installed_python: Path, tmp_path: Path) -> None:
    project = tmp_path / "app"
    expected = make_project(project)
    stdout = check_application(installed_python, project, expected)
    package = Path(stdout.splitlines()[0].split(": ", 1)[1])
    assert package.is_relative_to(installed_python.parents[1]), package     # not the checkout
    for name in ("kws", "digits"):
        assert (project / "build" / name / "src" / f"{name}.h").is_file()
    assert len(list((project / "build" / "cmsisnn").glob("*cmsisnn.a"))) == 1   # one kernel library, shared


def test_an_sconstruct_embeds_two_models_from_a_checkout_through_toolpath(tmp_path: Path) -> None:
    project = tmp_path / "app"
    expected = make_project(project)
    stdout = check_application(Path(sys.executable), project, expected, f"NNSCONS={ROOT / 'site_scons'}")
    assert stdout.splitlines()[0] == f"nnscons package: {ROOT / 'site_scons' / 'nnscons'}"


def test_the_installed_package_carries_what_the_stages_read(installed_python: Path, tmp_path: Path) -> None:
    code = ("import nnscons, nnscons.pipeline as p; print(nnscons.__file__); print(nnscons.cmsis_path()); "
            "print(nnscons.targets_path()); print(nnscons.cmake_path()); print(p.TEMPLATE_DIR); print(p.RUNTIME_DIR)")
    out = subprocess.run([str(installed_python), "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         check=True).stdout.split()
    package, cmsis, targets, cmake, templates, runtime = (Path(p) for p in out)
    assert package.parent == cmsis.parent == targets.parent == cmake.parent
    assert (cmsis / "Include" / "arm_nnfunctions.h").is_file() and len(list(cmsis.glob("Source/*/*.c"))) > 30
    for target in ("host", "m0", "m3", "m4", "m7", "m33", "m55"):
        assert (targets / target / "target.toml").is_file(), target
    assert (targets / "m4" / "firmware.ld").is_file() and (runtime / "nnscons_startup_cortex_m.c").is_file()
    assert (cmake / "nnscons.cmake").is_file() and (cmake / "arm-none-eabi.cmake").is_file()
    assert (templates / "model.c.j2").is_file() and (runtime / "nnscons_test_main.c").is_file()
    assert (runtime / "nnscons_cortex_m_sections.ld").is_file()


def test_the_installed_command_generates_away_from_the_checkout(installed_python: Path, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "models" / "digits_cnn", tmp_path / "digits")
    command = installed_python.parent / "nnscons"
    result = subprocess.run([str(command), "generate", "digits/model.onnx", "--calib", "digits/calib.npz",
                             "--out", "out", "--depfile", "out/digits.d"], cwd=tmp_path, capture_output=True,
                            text=True, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "digits.h").is_file()
    deps = (tmp_path / "out" / "digits.d").read_text()
    assert str(ROOT) not in deps and str(installed_python.parents[1]) in deps


@pytest.mark.skipif(shutil.which("cmake") is None, reason="needs cmake")
def test_cmake_finds_the_installed_package_and_its_python(installed_python: Path, tmp_path: Path) -> None:
    cmake_dir = subprocess.run([str(installed_python.parent / "nnscons"), "path", "cmake"], capture_output=True,
                               text=True, check=True).stdout.strip()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    configure = subprocess.run(["cmake", "-S", str(ROOT / "examples" / "cmake_app"), "-B", str(tmp_path),
                                f"-DNNSCONS_CMAKE_DIR={cmake_dir}"], capture_output=True, text=True, env=env)
    assert configure.returncode == 0, configure.stdout + configure.stderr
    cache = (tmp_path / "CMakeCache.txt").read_text()
    assert f"NNSCONS_PYTHON:FILEPATH={installed_python.parent / 'python3'}" in cache
    assert f"NNSCONS_CMSIS_DIR:PATH={Path(cmake_dir).parent / '_cmsis'}" in cache
    build = subprocess.run(["cmake", "--build", str(tmp_path), "-j2"], capture_output=True, text=True, env=env)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    run = subprocess.run([str(tmp_path / "cmake_app")], capture_output=True, text=True)
    assert "cmake_app: 4 of 4 as labelled" in run.stdout


@pytest.mark.parametrize("calls, message", [
    ('env.NnsconsLibrary("kws", "models/kws/model.tflite", options={"quant": "q9"})',
     "NnsconsModel('kws'): quant='q9' is not one of"),
    ('env.NnsconsModel("kws", "models/kws/model.tflite")\n'
     'env.NnsconsModel("kws", "models/kws/model.tflite", options={"api": "legacy"})',
     "build/kws already holds the chain of models/kws/model.tflite with other inputs or options"),
])
def test_misuse_of_the_tool_is_one_clear_line(tmp_path: Path, calls: str, message: str) -> None:
    shutil.copytree(ROOT / "models" / "kws_dscnn_int8", tmp_path / "models" / "kws")
    (tmp_path / "SConstruct").write_text(f"import sys\nsys.path.insert(0, {str(ROOT / 'site_scons')!r})\n"
                                         "import nnscons\nenv = Environment(tools=[])\n"
                                         "env.Tool('nnscons_tool', toolpath=[nnscons.tool_path()])\n" + calls + "\n")
    result = subprocess.run([sys.executable, "-m", "SCons", "-Q"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode != 0 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
