"""CMake: examples/cmake_app built with cmake/nnscons.cmake, for the host (Ninja and Unix Makefiles) and cross-built
for Cortex-M4 (run in QEMU when it is there), and regenerated when the calibration set, an option or the generator
changes.

Each test works on a private copy of the checkout's parts the example uses, so it can edit the calibration set and
the generator's modules.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow,   # CMake and Ninja builds, a Cortex-M cross build
              pytest.mark.skipif(shutil.which("cmake") is None, reason="needs cmake")]
needs_ninja = pytest.mark.skipif(shutil.which("ninja") is None, reason="needs ninja")
needs_arm_gcc = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc")


def run(*cmd: str | Path, cwd: Path | None = None) -> str:
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "nnscons"
    root.mkdir()
    for item in ("cmake", "cmsis", "targets", "examples/cmake_app", "models/digits_cnn"):
        shutil.copytree(ROOT / item, root / item)
    shutil.copytree(ROOT / "site_scons", root / "site_scons", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def configure(checkout: Path, build: Path, generator: str, *extra: str) -> None:
    run("cmake", "-S", checkout / "examples" / "cmake_app", "-B", build, "-G", generator,
        f"-DNNSCONS_PYTHON={sys.executable}", *extra)


def build(build_dir: Path) -> str:
    return run("cmake", "--build", build_dir, "-j2")


def app_output(build_dir: Path) -> tuple[str, str]:
    """(the 'N of 4 as labelled' summary, the model hash) the host app prints."""
    return summary(run(build_dir / "cmake_app"))


def summary(stdout: str) -> tuple[str, str]:
    m = re.search(r"cmake_app: (\d of \d) as labelled, model ([0-9a-f]{16})", stdout)
    assert m, stdout
    return m.group(1), m.group(2)


def edit_calibration(checkout: Path, moves_ranges: bool) -> None:
    calib = checkout / "models" / "digits_cnn" / "calib.npz"
    x = np.load(calib)["x"]
    np.savez(calib, x=x * 1.5 if moves_ranges else np.concatenate([x, x[:3]]))  # repeated samples: same ranges


GENERATING = "nnscons: generating digits"


@needs_ninja
def test_ninja_regenerates_what_changed_and_stops_where_outputs_are_identical(checkout: Path, tmp_path: Path) -> None:
    out = tmp_path / "build"
    configure(checkout, out, "Ninja")
    assert GENERATING in build(out)
    labelled, first_hash = app_output(out)
    assert labelled == "4 of 4"
    assert "no work to do" in build(out)

    edit_calibration(checkout, moves_ranges=False)        # the generator runs; identical sources stop the build
    log = build(out)
    assert GENERATING in log and "Building C object" not in log and "Linking" not in log, log

    edit_calibration(checkout, moves_ranges=True)
    log = build(out)
    assert GENERATING in log and "digits_model.c.o" in log and "Linking C executable cmake_app" in log, log
    labelled, new_hash = app_output(out)
    assert new_hash != first_hash and labelled == "4 of 4"
    assert "no work to do" in build(out)

    stats = next(out.rglob("stats.npz"))                            # the generator's work folder
    stats_written = stats.stat().st_mtime_ns
    configure(checkout, out, "Ninja", "-DDIGITS_QUANT=int16x8")     # an option (through options.toml)
    assert GENERATING in build(out)
    assert app_output(out)[1] not in (first_hash, new_hash)
    assert stats.stat().st_mtime_ns == stats_written                # statistics come before the option: reused
    configure(checkout, out, "Ninja")                                # no option changed: nothing to do
    assert "no work to do" in build(out)

    module = checkout / "site_scons" / "nnscons" / "ranges.py"       # the generator itself (from the depfile)
    module.write_text(module.read_text() + "\n# an edit\n")
    log = build(out)
    assert GENERATING in log and "Building C object" not in log, log


def test_unix_makefiles_regenerate_on_a_calibration_change(checkout: Path, tmp_path: Path) -> None:
    out = tmp_path / "build"
    configure(checkout, out, "Unix Makefiles")
    assert GENERATING in build(out)
    labelled, first_hash = app_output(out)
    assert labelled == "4 of 4"
    assert GENERATING not in build(out)

    edit_calibration(checkout, moves_ranges=True)
    assert GENERATING in build(out)
    labelled, new_hash = app_output(out)
    assert labelled == "4 of 4" and new_hash != first_hash
    assert GENERATING not in build(out)           # outputs rewritten, so make sees them up to date

    template = checkout / "site_scons" / "nnscons" / "templates" / "model.c.j2"
    template.write_text(template.read_text() + "{# an edit #}\n")
    assert GENERATING in build(out)
    assert GENERATING not in build(out)


@needs_ninja
@needs_arm_gcc
def test_cross_build_for_cortex_m4_runs_like_the_host(checkout: Path, tmp_path: Path) -> None:
    host, m4 = tmp_path / "host", tmp_path / "m4"
    configure(checkout, host, "Ninja")
    build(host)
    configure(checkout, m4, "Ninja", f"-DCMAKE_TOOLCHAIN_FILE={checkout / 'cmake' / 'arm-none-eabi.cmake'}")
    build(m4)
    elf = m4 / "cmake_app.elf"
    attributes = run("arm-none-eabi-readelf", "-A", elf)       # Cortex-M4 (ARMv7E-M), hard-float ABI
    assert "Tag_CPU_arch: v7E-M" in attributes and "Tag_ABI_VFP_args: VFP registers" in attributes, attributes
    if shutil.which("qemu-system-arm") is None:
        pytest.skip("no qemu-system-arm to run the ELF")
    stdout = run("qemu-system-arm", "-machine", "mps2-an386", "-nographic", "-monitor", "none", "-serial", "none",
                 "-semihosting-config", "enable=on,target=native", "-kernel", elf)
    assert summary(stdout) == app_output(host)

    edit_calibration(checkout, moves_ranges=True)
    assert GENERATING in build(m4)


FRONTEND_APP = """cmake_minimum_required(VERSION 3.20)
project(kws_app C)
include({cmake}/nnscons.cmake)
nnscons_add_model(kws MODEL models/kws_tiny/model.onnx CALIB models/kws_tiny/calib.npz)
add_executable(kws_app main.c)
target_link_libraries(kws_app PRIVATE kws m)
"""

FRONTEND_MAIN = """#include <stdio.h>
#include "clip.h"
#include "kws.h"
#include "kws_frontend.h"

int main(void)
{
    static kws_feature_t features[KWS_FEATURES];
    const int32_t frames = kws_frontend(clip, CLIP_SAMPLES, features);
    int i;
    printf("frames %ld\\n", (long)frames);
    for (i = 0; frames > 0 && i < frames * KWS_FRONTEND_COEFFICIENTS; i++) {
        printf("%d\\n", (int)features[i]);
    }
    return frames == (int32_t)kws_frontend_frames(CLIP_SAMPLES) ? 0 : 1;
}
"""


def test_a_model_with_an_audio_front_end_gets_its_front_end_and_cmsis_dsp(checkout: Path, tmp_path: Path) -> None:
    """nnscons_add_model sees model.toml's [frontend]: the library holds kws_frontend.c, linked with CMSIS-DSP
    (nnscons_add_cmsisdsp); the app's features equal the cmsisdsp package's, frame by frame."""
    from test_frontend import SEED_MFCC, clips
    from test_frontend_chain import TOML, tiny_audio_model
    from nnscons.frontend import mfcc, parse_frontend
    app = tmp_path / "app"
    folder = app / "models" / "kws_tiny"
    folder.mkdir(parents=True)
    tiny_audio_model(folder / "model.onnx")
    np.savez(folder / "calib.npz", x=clips())
    (folder / "model.toml").write_text(TOML)
    clip = clips()[-1]          # a spoken word (espeak-ng), else a click
    (app / "clip.h").write_text(f"#include <stdint.h>\n#define CLIP_SAMPLES {len(clip)}u\n#define KWS_FEATURES {49 * 10}\n"
                                "static const int16_t clip[CLIP_SAMPLES] = {" + ", ".join(map(str, clip)) + "};\n")
    (app / "main.c").write_text(FRONTEND_MAIN)
    (app / "CMakeLists.txt").write_text(FRONTEND_APP.format(cmake=(checkout / "cmake").as_posix()))
    run("cmake", "-S", app, "-B", app / "build", f"-DNNSCONS_PYTHON={sys.executable}")
    log = build(app / "build")
    assert "kws_frontend.c" in log and "TransformFunctions.c" in log, log
    printed = run(app / "build" / "kws_app").split()
    expected = mfcc.features(parse_frontend(SEED_MFCC), clip[np.newaxis])[0]
    assert printed[:2] == ["frames", "49"]
    assert np.array_equal(np.array(printed[2:], dtype=np.int16), expected.reshape(-1))
