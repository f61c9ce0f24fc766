"""The audio front end (nnscons.frontend): CMSIS-DSP's MFCC declared in model.toml, its tables from cmsisdsp.mfcc,
its generated C compiled with CMSIS-DSP's own sources (the cmsisdsp source distribution) and proven against the
cmsisdsp package (the same C wrapped for Python) frame by frame, bit for bit, in q15 and f32."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from nnscons import hostbuild
from nnscons.errors import NnsconsError
from nnscons.frontend import codegen, mfcc, parse_frontend
from nnscons.frontend.speech import speak
from nnscons.fileio import write_text

SEED_MFCC = {"kind": "mfcc", "word": "q15", "sample_rate": 16000, "frame_length": 640, "frame_step": 320,
             "fft_length": 1024, "mel_filters": 40, "fmin": 20, "fmax": 8000, "coefficients": 10}  # the seed's 49x10


def clips(samples: int = 16000) -> np.ndarray:
    """Sounds that exercise the MFCC's scaling: noise at three levels, a chirp, silence, a full-scale square wave, a
    click, and spoken words when espeak-ng is installed."""
    rng = np.random.default_rng(0)
    t = np.arange(samples) / 16000
    found = [rng.normal(0, level, samples) for level in (30, 3000, 20000)]
    found += [8000 * np.sin(2 * np.pi * (100 + 3000 * t) * t), np.zeros(samples),
              32767 * np.sign(np.sin(2 * np.pi * 440 * t))]
    click = np.zeros(samples)
    click[8000] = 32767
    found.append(click)
    found += spoken(("backward", "yes", "no"), samples)
    return np.stack([np.clip(np.round(c), -32768, 32767) for c in found]).astype(np.int16)


def spoken(words: tuple[str, ...], samples: int) -> list[np.ndarray]:
    """Words synthesized by espeak-ng at 16 kHz (none without it)."""
    if shutil.which("espeak-ng") is None:
        return []
    clips = [speak(word, 16000)[:samples] for word in words]
    return [np.pad(pcm, (0, samples - len(pcm))) for pcm in clips]


@pytest.mark.parametrize("change, message", [
    ({"kind": "stft"}, "kind must be one of mfcc"),
    ({"word": "q7"}, "word must be one of q15, f32"),
    ({"fft_length": 1000}, "fft_length must be a power of two"),
    ({"frame_length": 2048}, "longer than fft_length"),
    ({"fmax": 9000}, "fmax <= sample_rate / 2"),
    ({"coefficients": 50}, "more than mel_filters"),
    ({"mel_filters": 0}, "mel_filters must be a positive integer"),
    ({"hop": 1}, "unknown key 'hop'"),
])
def test_bad_declarations_are_one_line_naming_the_key(change: dict, message: str) -> None:
    with pytest.raises(NnsconsError, match=message) as info:
        parse_frontend({**SEED_MFCC, **change}, "models/kws/model.toml")
    assert "model.toml" in str(info.value) and "\n" not in str(info.value)


def test_the_seeds_mfcc_gives_49_frames_of_10_from_a_second() -> None:
    spec = parse_frontend(SEED_MFCC)
    assert spec.frames(16000) == 49 and spec.samples_for(49) == 16000 and spec.frames(639) == 0
    t = mfcc.tables(spec)
    assert t.window.dtype == np.int16 and t.window.size == 1024 and not t.window[640:].any()
    assert t.dct.size == 10 * 40 and len(t.filter_len) == 40 and t.filter_coefs.size == t.filter_len.sum()


def test_generated_front_end_is_deterministic_and_names_its_tables() -> None:
    spec = parse_frontend(SEED_MFCC)
    files = codegen.generate("kws", spec)
    assert files == codegen.generate("kws", spec)
    c = files["kws_frontend.c"]
    for table in ("kws_window", "kws_filter_pos", "kws_filter_len", "kws_filter_coefs", "kws_dct"):
        assert f"static const " in c and f"{table}[" in c
    assert "arm_mfcc_q15(" in c and max(len(line) for line in c.splitlines()) <= 120


@pytest.mark.slow
@pytest.mark.parametrize("word", ["q15", "f32"])
def test_front_end_is_bit_exact_with_cmsisdsp_frame_by_frame(word: str, tmp_path: Path) -> None:
    """The generated front end, compiled with CMSIS-DSP's sources, against the cmsisdsp package on every frame."""
    spec = parse_frontend({**SEED_MFCC, "word": word})
    for file, text in codegen.generate("fe", spec).items():
        write_text(str(tmp_path / file), text)
    toolchain = hostbuild.host_toolchain()
    binary = hostbuild.frontend_binary("fe", tmp_path, tmp_path / "bin", hostbuild.dsp_library(tmp_path, toolchain),
                                       toolchain)
    audio = clips()
    np.save(tmp_path / "in.npy", audio)
    subprocess.run([str(binary), str(tmp_path / "in.npy"), str(tmp_path / "out.npy")], check=True, timeout=120)
    ours, expected = np.load(tmp_path / "out.npy"), mfcc.features(spec, audio)
    assert ours.dtype == expected.dtype and ours.shape == (len(audio), 49, 10)
    assert np.array_equal(ours, expected)
    assert len({frame.tobytes() for clip in ours for frame in clip}) > 100      # the frames differ: a real test


@pytest.mark.slow
def test_front_end_runner_refuses_bad_audio_in_one_line(tmp_path: Path) -> None:
    spec = parse_frontend(SEED_MFCC)
    for file, text in codegen.generate("fe", spec).items():
        write_text(str(tmp_path / file), text)
    toolchain = hostbuild.host_toolchain()
    binary = hostbuild.frontend_binary("fe", tmp_path, tmp_path / "bin", hostbuild.dsp_library(tmp_path, toolchain),
                                       toolchain)
    for name, array, message in (("float.npy", np.zeros((2, 16000), np.float32), "int16"),
                                 ("short.npy", np.zeros((2, 100), np.int16), "give no frame")):
        np.save(tmp_path / name, array)
        result = subprocess.run([str(binary), str(tmp_path / name), str(tmp_path / "out.npy")], capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 1 and message in result.stderr and result.stderr.count("\n") == 1
        assert not (tmp_path / "out.npy").exists()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc")
@pytest.mark.parametrize("core", ["m0", "m4", "m55"])
def test_front_end_and_cmsis_dsp_compile_for_the_cores(core: str, tmp_path: Path) -> None:
    """CMSIS-DSP's groups (portable C, the package's flags) and the generated front end (the target's warning flags,
    -Werror) compile for the Cortex-M targets, q15 and f32."""
    from nnscons import cmsis_dsp, targets_path
    toolchain = hostbuild.Toolchain.from_target(Path(targets_path()) / core)
    library = hostbuild.dsp_library(tmp_path, toolchain)
    assert library.stat().st_size > 10_000
    build = cmsis_dsp.dsp_build()
    for word in ("q15", "f32"):
        for file, text in codegen.generate("fe", parse_frontend({**SEED_MFCC, "word": word})).items():
            write_text(str(tmp_path / word / file), text)
        hostbuild.run_binary([toolchain.cc, *toolchain.cflags, *(f"-D{d}" for d in build.defines),
                              *(f"-I{p}" for p in build.include_dirs), f"-I{tmp_path / word}", "-c",
                              str(tmp_path / word / "fe_frontend.c"), "-o", str(tmp_path / word / "fe.o")],
                             f"{core} {word}")
        assert (tmp_path / word / "fe.o").stat().st_size > 1000
