"""Cortex-M firmware: targets, startup and semihosting on every QEMU board, the runner's output, the run's error
handling, sizes, and (with generated models) output bytes identical to the host binary's.

The hand-written model in tests/firmware/ (the descriptor of a generated model, no CMSIS-NN) is built with the
nnscons tool loaded through toolpath (tests/firmware/SConstruct.tiny), once per target, in one scons run.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnscons import fileio, firmware, importers, ir, options, pipeline, project, targets
from nnscons.firmware import profile
from nnscons.firmware.html import render_html
from nnscons.errors import NnsconsError

pytestmark = pytest.mark.slow   # Cortex-M builds in QEMU

ROOT = Path(__file__).resolve().parents[1]
TINY = Path(__file__).resolve().parent / "firmware"
CORTEX_M = [t for t in project.discover_targets(str(ROOT / "targets"))
            if targets.load_target(str(ROOT / "targets" / t)).kind == "cortex-m"]
# The MPS2/MPS3 images, which exit through semihosting (the boards, UART output: tests/test_boards.py)
SEMIHOSTED = [t for t in CORTEX_M if targets.load_target(str(ROOT / "targets" / t)).emulator.output == "semihosting"]
TINY_INPUTS = np.array([[1, 2, 3, 4], [-128, 127, 16, -16], [100, -100, 0, 1]], dtype=np.int8)

needs_toolchain = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or
                                     shutil.which("qemu-system-arm") is None,
                                     reason="needs arm-none-eabi-gcc and qemu-system-arm")


def scons(directory: Path, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "SCons", "-Q", *args], cwd=directory, capture_output=True,
                            text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"scons {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def tiny_expected(x: np.ndarray) -> str:
    """What tests/firmware/tiny_model.c computes: (x * sum_k<1000 (k & 7)) >> 12, as int8 hex."""
    weight = sum(k & 7 for k in range(1000))
    return ((x.astype(np.int32) * weight) >> 12).astype(np.int8).tobytes().hex()


def tiny_project(directory: Path) -> Path:
    for file in TINY.iterdir():
        shutil.copy(file, directory / file.name)
    (directory / "tiny_inputs.c").write_text(firmware.inputs_c_source("tiny", [TINY_INPUTS], 4, "hand-made"))
    return directory


def tiny_build(directory: Path, target: str, mode: int = 0, *goals: str, check: bool = True):
    return scons(directory, "-f", "SConstruct.tiny", f"REPO={ROOT}", f"TARGET_DIRS={ROOT / 'targets' / target}",
                 f"MODE={mode}", *goals, check=check)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model's firmware built and run for every Cortex-M target (build/<target>-0/report.json)."""
    directory = tiny_project(tmp_path_factory.mktemp("tiny"))
    targets_ = ",".join(str(ROOT / "targets" / t) for t in SEMIHOSTED)
    scons(directory, "-j2", "-f", "SConstruct.tiny", f"REPO={ROOT}", f"TARGET_DIRS={targets_}", "MODE=0", "run")
    return directory


def test_module_list_covers_what_the_firmware_stages_import() -> None:
    code = (f"import sys; sys.path.insert(0, {str(ROOT / 'site_scons')!r}); import nnscons.firmware; "
            "print('\\n'.join(m.__file__ for n, m in sys.modules.items() if n.startswith('nnscons')))")
    files = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    used = {str(Path(f).relative_to(ROOT / "site_scons" / "nnscons")) for f in files}
    listed = {str(f.relative_to(ROOT / "site_scons" / "nnscons")) for m in pipeline.STAGE_MODULES["firmware"]
              for f in pipeline.module_files(m)}
    assert used <= listed


# ---- targets ------------------------------------------------------------------------------------------------------
def test_the_six_cortex_m_targets_exist() -> None:
    assert set(CORTEX_M) >= {"m0", "m3", "m4", "m7", "m33", "m55"}


@pytest.mark.parametrize("name", CORTEX_M)
def test_memory_table_agrees_with_the_linker_script(name: str) -> None:
    target = targets.load_target(str(ROOT / "targets" / name))
    script = Path(target.linker_script).read_text()
    regions = {m.group(1): (int(m.group(2), 16), m.group(3)) for m in
               re.finditer(r"(CODE|DATA)\s*\([rwx]+\)\s*:\s*ORIGIN\s*=\s*0x([0-9A-Fa-f]+),\s*LENGTH\s*=\s*(\w+)",
                           script)}
    size = {"K": 1024, "M": 1024 * 1024}

    def length(text: str) -> int:
        return int(text[:-1]) * size[text[-1]] if text[-1] in size else int(text, 0)

    memory = target.memory
    assert memory is not None and target.emulator is not None and target.emulator.clock_hz > 0
    assert regions["CODE"][0] == memory.code_origin and length(regions["CODE"][1]) == memory.code_size
    assert regions["DATA"][0] == memory.data_origin and length(regions["DATA"][1]) == memory.data_size


def test_bad_target_tables_are_one_clear_line(tmp_path: Path) -> None:
    folder = tmp_path / "board"
    shutil.copytree(ROOT / "targets" / "m4", folder)
    toml = folder / "target.toml"
    text = toml.read_text()
    toml.write_text(text.replace("clock_hz = 25000000", 'clock_hz = "fast"'))
    with pytest.raises(NnsconsError, match=r"target\.toml: \[emulator\] clock_hz must be a non-negative integer"):
        targets.load_target(str(folder))
    toml.write_text(text.replace('linker_script = "firmware.ld"', 'linker_script = "missing.ld"'))
    with pytest.raises(NnsconsError, match="no such file: .*missing.ld"):
        targets.load_target(str(folder))
    toml.write_text(text.replace("data_size", "data_sise"))
    with pytest.raises(NnsconsError, match=r"\[memory\]: unknown key 'data_sise'"):
        targets.load_target(str(folder))


# ---- the runner on every board ------------------------------------------------------------------------------------
@needs_toolchain
@pytest.mark.parametrize("name", SEMIHOSTED)
def test_tiny_model_runs_on_every_target(tiny: Path, name: str) -> None:
    report = fileio.read_json(tiny / "build" / f"{name}-0" / "report.json")
    model = report["models"]["tiny"]
    assert model["outputs"] == [tiny_expected(x) for x in TINY_INPUTS]
    assert model["inputs"] == 3
    # 4 x 1000 multiply-accumulates: a few thousand instructions (MVE vectorizes the loop on the M55)
    assert 2_000 < model["instructions"]["min"] <= model["instructions"]["max"] < 40_000
    assert 100 < model["stack"] < 4096
    assert (model["arena"], model["activations"], model["scratch"]) == (16, 12, 4)
    assert model["image"]["code"] > 0 and model["embedded_inputs"]["rodata"] >= TINY_INPUTS.size
    sections = report["image"]["sections"]
    assert sections[".text"] > 0 and sections[".stack"] == 0x4000
    assert report["image"]["flash"] >= sections[".text"] + sections[".rodata"]
    assert report["clock_hz"] == targets.load_target(str(ROOT / "targets" / name)).emulator.clock_hz


@needs_toolchain
def test_run_ends_by_itself_with_status_0_and_parseable_lines(tiny: Path) -> None:
    target = targets.load_target(str(ROOT / "targets" / "m4"))
    command = firmware.emulator_command(target, str(tiny / "build" / "m4-0" / "firmware.elf"))
    result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    lines = [line for line in result.stdout.splitlines() if line.startswith("nnscons")]
    assert lines[0] == "nnscons start models=1 clock_hz=25000000 counter=systick"
    for i, line in enumerate(lines[1:4]):
        assert re.fullmatch(rf"nnscons model=tiny input={i} ticks=\d+ instructions=\d+ output=[0-9a-f]{{8}}", line)
    assert re.fullmatch(r"nnscons model=tiny inputs=3 stack=\d+ arena=16", lines[4])
    assert lines[5:] == ["nnscons done"]


@needs_toolchain
@pytest.mark.parametrize("name", ["m4", "m55"])
def test_instruction_counts_are_deterministic(tiny: Path, name: str) -> None:
    target = targets.load_target(str(ROOT / "targets" / name))
    elf = str(tiny / "build" / f"{name}-0" / "firmware.elf")
    first, second = firmware.run_firmware(elf, target), firmware.run_firmware(elf, target)
    assert [(i.ticks, i.instructions, i.output) for i in first.inferences] == \
           [(i.ticks, i.instructions, i.output) for i in second.inferences]
    # The build ran it with another kernel path (the semihosting command line): the same count, to within the
    # counter's resolution
    report = fileio.read_json(tiny / "build" / f"{name}-0" / "report.json")
    resolution = 1e9 / target.emulator.clock_hz
    for ours, built in zip(first.inferences, report["models"]["tiny"]["instructions_per_input"]):
        assert abs(ours.instructions - built) <= resolution


@needs_toolchain
def test_models_can_be_selected_on_the_command_line(tiny: Path) -> None:
    target = targets.load_target(str(ROOT / "targets" / "m3"))
    elf = str(tiny / "build" / "m3-0" / "firmware.elf")
    assert firmware.run_firmware(elf, target, models=["other"]).inferences == []
    assert len(firmware.run_firmware(elf, target, models=["other", "tiny"]).inferences) == 3


@needs_toolchain
def test_sizes_come_from_the_linker_map(tiny: Path) -> None:
    contributions = firmware.map_contributions(str(tiny / "build" / "m4-0" / "firmware.map"))
    ours = firmware.model_sizes(contributions, ["build/m4-0/libtiny.a"])
    runner = contributions["build/m4-0/firmware/nnscons_firmware_main.o"]
    assert ours["code"] > 0 and ours["rodata"] > 0
    assert runner[".text"] > 0
    assert any(name.endswith("libc_nano.a") for name in contributions)


# ---- failures end the run with one clear line ----------------------------------------------------------------------
@needs_toolchain
@pytest.mark.parametrize("mode, message", [
    (1, r"m4 \(mps2-an386\): model=tiny input=1 status=3 after tiny input 0"),
    (2, r"m4 \(mps2-an386\): fault: the processor took a fault exception after tiny input 0"),
    (3, r"m4 \(mps2-an386\): did not finish within 3 s \(last line: nnscons model=tiny input=0 .*\); the firmware "
        r"hangs"),
])
def test_failures_and_hangs_are_one_clear_error(tmp_path: Path, mode: int, message: str) -> None:
    directory = tiny_project(tmp_path)
    tiny_build(directory, "m4", mode)
    target = targets.load_target(str(ROOT / "targets" / "m4"))
    with pytest.raises(NnsconsError, match=message):
        firmware.run_firmware(str(directory / "build" / f"m4-{mode}" / "firmware.elf"), target, timeout=3)
    if mode == 1:   # through SCons: the build fails with that line, and leaves no report
        result = tiny_build(directory, "m4", mode, "run", check=False)
        assert result.returncode != 0
        assert re.search(r"scons: \*\*\* \[build/m4-1/report\.json\] .*firmware\.elf: m4 \(mps2-an386\): model=tiny "
                         r"input=1 status=3", result.stderr)
        assert "Traceback" not in result.stderr
        assert not (directory / "build" / "m4-1" / "report.json").exists()


def test_output_without_a_clean_end_is_an_error() -> None:
    good = "nnscons start models=1 clock_hz=25000000\nnnscons model=a input=0 ticks=2 instructions=80 output=ff\n"
    with pytest.raises(NnsconsError, match="ended without 'nnscons done'"):
        firmware.parse_output("fw.elf", good, 0)
    with pytest.raises(NnsconsError, match=r"exited with status 1 \(last line: boom\)"):
        firmware.parse_output("fw.elf", good + "nnscons done\nboom\n", 1)
    run = firmware.parse_output("fw.elf", good + "nnscons model=a inputs=1 stack=64 arena=32\nnnscons done\n", 0)
    assert run.clock_hz == 25_000_000 and run.of("a")[0].output == "ff" and run.stack == {"a": 64}


def test_profile_lines_become_layers_with_kernel_types_and_shares() -> None:
    text = ("nnscons start models=1 clock_hz=25000000\n"
            "nnscons layer model=a index=1 name=fc ticks=10 instructions=400\n"
            "nnscons layer model=a index=0 name=conv ticks=40 instructions=1600\n"
            "nnscons model=a input=0 ticks=50 instructions=2000 output=00\nnnscons done\n")
    run = firmware.parse_output("fw.elf", text, 0)
    graph, _ = importers.import_model(ROOT / "models" / "kws_dscnn_int8" / "model.tflite")
    layers = profile.layer_rows(graph, run.layers["a"])
    assert [(l["index"], l["kernel"], l["macs"], l["share"]) for l in layers] == \
        [(0, "conv im2col", 25 * 5 * 64 * 10 * 4, 0.8), (1, "depthwise", 25 * 5 * 64 * 9, 0.2)]
    assert layers[0]["per_mac"] == round(1600 / (25 * 5 * 64 * 10 * 4), 3)
    types = profile.by_kernel_type(layers)
    assert list(types) == ["conv im2col", "depthwise"] and types["depthwise"]["instructions"] == 400
    html = render_html({"target": "m4", "machine": "mps2-an386", "clock_hz": 25_000_000, "options": {"opt": "O2"},
                        "image": {"flash": 1, "ram": 2}, "kernels": {"code": 3, "rodata": 4},
                        "models": {"a<b>": {"inputs": 1, "instructions": {"mean": 2000}, "arena": 16, "stack": 8,
                                            "image": {"code": 1, "rodata": 2, "data": 0, "bss": 0},
                                            "layers": layers, "kernel_types": types}}})
    assert "a&lt;b&gt;" in html and "80.0%" in html and "conv im2col" in html


def test_missing_emulator_is_one_clear_line(tmp_path: Path) -> None:
    folder = tmp_path / "board"
    shutil.copytree(ROOT / "targets" / "m4", folder)
    toml = folder / "target.toml"
    toml.write_text(toml.read_text().replace('command = "qemu-system-arm"', 'command = "no-such-qemu"'))
    with pytest.raises(NnsconsError, match="no-such-qemu not found"):
        firmware.run_firmware("fw.elf", targets.load_target(str(folder)))


# ---- embedded inputs -----------------------------------------------------------------------------------------------
def test_floats_are_quantized_like_the_host_binary() -> None:
    tensor = firmware.NetworkTensor("x", "int8", (1, 8), 0.5, 3)
    x = np.array([[-0.75, -0.25, 0.25, 0.75, 1.25, 100.0, -100.0, 0.0]], dtype=np.float32)
    # x / 0.5 = -1.5 -0.5 0.5 1.5 2.5 200 -200 0: half away from zero, + 3, saturated
    assert firmware.quantize_like_host(x, tensor).tolist() == [[1, 2, 4, 5, 6, 127, -128, 3]]


def test_inputs_c_pads_each_input_and_writes_little_endian() -> None:
    a = np.array([[1, 2, 3]], dtype=np.int8)
    b = np.array([[0x0102, -2]], dtype=np.int16)
    text = firmware.inputs_c_source("two", [a, b], 6, "test")
    blob = [int(v, 16) for v in re.findall(r"0x([0-9a-f]{2})", text.split("samples = ")[1].split("};")[0])]
    assert blob == [1, 2, 3, 0, 0, 0, 0, 0, 0x02, 0x01, 0xfe, 0xff, 0, 0, 0, 0]
    assert "&two_info, 1u, 16u, samples.bytes, output.bytes, 8u" in text


def test_firmware_inputs_start_with_the_test_set(tmp_path: Path) -> None:
    model = ROOT / "models" / "kws_dscnn_int8"
    graph_json, params_npz, qtable_json = (str(tmp_path / f) for f in ("graph.json", "params.npz", "qtable.json"))
    pipeline.import_stage(str(model / "model.tflite"), graph_json, params_npz)
    pipeline.quantize_stage(graph_json, params_npz, None, options.resolve({}, {"quant": "model"}), qtable_json,
                            str(tmp_path / "qtable.txt"), str(tmp_path / "qparams.npz"))
    graph, qtable = ir.Graph.from_json(fileio.read_json(graph_json)), fileio.read_json(qtable_json)
    (inputs,) = firmware.firmware_inputs("kws_dscnn_int8", graph, qtable, str(model / "test.npz"))
    test_x = np.load(model / "test.npz")["x"]
    assert inputs.dtype == np.int8 and inputs.shape == (16, 49, 10, 1)   # 16 KB / 496 bytes > 16: the limit
    assert np.array_equal(inputs[0], test_x[0])
    assert not np.array_equal(inputs[1], inputs[2])                      # then random inputs
    again = firmware.firmware_inputs("kws_dscnn_int8", graph, qtable, str(model / "test.npz"))[0]
    assert np.array_equal(inputs, again)


def test_firmware_check_names_the_first_differing_input(tmp_path: Path) -> None:
    """A stand-in host binary (negates its int8 inputs; IN.npz with x0, OUT.npz with y0, as the binary's contract
    says for any network) against firmware reports that agree, then do not."""
    host = tmp_path / "host_test"
    host.write_text(f"#!{sys.executable}\nimport sys, numpy as np\n"
                    "x = np.load(sys.argv[1])['x0']\n"
                    "np.savez(sys.argv[2], y0=(-x.astype(np.int16)).clip(-128, 127).astype(np.int8))\n")
    host.chmod(0o755)
    x = np.array([[1, -2], [3, 4], [-128, 0]], dtype=np.int8)
    fileio.write_npz(tmp_path / "inputs.npz", {"x0": x})
    outputs = [(-x[i].astype(np.int16)).clip(-128, 127).astype(np.int8).tobytes().hex() for i in range(3)]
    fileio.write_json(tmp_path / "report.json", {"target": "m4", "models": {"net": {"outputs": outputs}}})
    result = firmware.check_stage("net", str(tmp_path / "report.json"), str(host), str(tmp_path / "inputs.npz"),
                                  str(tmp_path / "check.json"))
    assert result["identical"] and result["inputs"] == 3
    outputs[1] = "0000"
    fileio.write_json(tmp_path / "report.json", {"target": "m4", "models": {"net": {"outputs": outputs}}})
    with pytest.raises(NnsconsError, match=r"net on m4: 1 of 3 inputs give other output bytes than the host binary "
                                           r"\(first: input 1\)"):
        firmware.check_stage("net", str(tmp_path / "report.json"), str(host), str(tmp_path / "inputs.npz"),
                             str(tmp_path / "check.json"))
    assert fileio.read_json(tmp_path / "check.json")["first_mismatch"] == {"input": 1, "firmware": "0000",
                                                                           "host": "fdfc"}


def test_firmware_check_compares_every_output_of_several_inputs(tmp_path: Path) -> None:
    """Two inputs, two outputs: the host binary gets IN.npz with x0, x1 and its y0, y1 bytes, one after the other,
    are what the firmware prints per inference."""
    host = tmp_path / "host_test"
    host.write_text(f"#!{sys.executable}\nimport sys, numpy as np\n"
                    "f = np.load(sys.argv[1]); x0, x1 = f['x0'], f['x1']\n"
                    "np.savez(sys.argv[2], y0=x0 ^ 1, y1=(x1.astype(np.int16) * 300).astype(np.int16))\n")
    host.chmod(0o755)
    x0 = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int8)
    x1 = np.array([[7], [-8]], dtype=np.int8)
    fileio.write_npz(tmp_path / "inputs.npz", {"x0": x0, "x1": x1})
    outputs = [(x0[i] ^ 1).tobytes().hex() + (x1[i].astype("<i2") * 300).tobytes().hex() for i in range(2)]
    fileio.write_json(tmp_path / "report.json", {"target": "m4", "models": {"net": {"outputs": outputs}}})
    result = firmware.check_stage("net", str(tmp_path / "report.json"), str(host), str(tmp_path / "inputs.npz"),
                                  str(tmp_path / "check.json"))
    assert result["identical"] and result["inputs"] == 2
    outputs[1] = outputs[1][:-2] + "00"                      # the last byte of y1
    fileio.write_json(tmp_path / "report.json", {"target": "m4", "models": {"net": {"outputs": outputs}}})
    with pytest.raises(NnsconsError, match=r"net on m4: 1 of 2 inputs give other output bytes"):
        firmware.check_stage("net", str(tmp_path / "report.json"), str(host), str(tmp_path / "inputs.npz"),
                             str(tmp_path / "check.json"))


# ---- generated models: firmware output bytes == host binary's -----------------------------------------------------
@needs_toolchain
def test_generated_models_on_m4_and_m55_match_the_host_binary(tmp_path: Path) -> None:
    for item in ("SConstruct",):
        shutil.copy(ROOT / item, tmp_path / item)
    shutil.copytree(ROOT / "site_scons", tmp_path / "site_scons", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "cmsis", tmp_path / "cmsis")
    for target in ("host", "m4", "m55"):
        shutil.copytree(ROOT / "targets" / target, tmp_path / "targets" / target)
    # kws: convolutions, depthwise with multiplier 1, FC; micro_speech: depthwise with multiplier 8 on one input
    # channel (the portable kernels' DSP paths on the M4 and M55)
    for model in ("hello_world_int8", "kws_dscnn_int8", "micro_speech_int8"):
        shutil.copytree(ROOT / "models" / model, tmp_path / "models" / model)
    result = scons(tmp_path, "-j2", "target=m4,m55", "check", timeout=600)
    assert re.search(r"m4\s+kws_dscnn_int8\s+16\s+identical", result.stdout), result.stdout
    assert re.search(r"m55\s+hello_world_int8\s+16\s+identical", result.stdout), result.stdout
    for target in ("m4", "m55"):
        assert re.search(rf"{target}\s+micro_speech_int8\s+\d+\s+identical", result.stdout), result.stdout
    for target in ("m4", "m55"):
        report = fileio.read_json(tmp_path / "build" / target / "report.json")
        kws = report["models"]["kws_dscnn_int8"]
        assert kws["inputs"] == 16 and kws["instructions"]["min"] > 1_000_000
        assert kws["image"]["rodata"] > 20_000          # the weights
        for model in ("hello_world_int8", "kws_dscnn_int8"):
            check = fileio.read_json(tmp_path / "build" / target / model / "firmware_check.json")
            assert check["identical"] and check["inputs"] == 16
    # The per-layer profile (the traced image's first inference): every kws layer, adding up to the inference
    for target in ("m4", "m55"):
        kws = fileio.read_json(tmp_path / "build" / target / "report.json")["models"]["kws_dscnn_int8"]
        assert [layer["index"] for layer in kws["layers"]] == list(range(13))
        assert abs(sum(layer["instructions"] for layer in kws["layers"]) - kws["instructions_per_input"][0]) \
            < 0.01 * kws["instructions_per_input"][0]
        assert kws["kernel_types"]["conv 1x1"]["macs"] == 4 * 25 * 5 * 64 * 64
        assert sum(layer["share"] for layer in kws["layers"]) == pytest.approx(1.0, abs=1e-3)
        assert "depthwise_conv2d_1" in (tmp_path / "build" / target / "report.html").read_text()
    # The arena as compiled for each core (sizes follow -mcpu): kws' layers overlap their inputs and every layer's
    # scratch fits beside the live activations, on the DSP and the Helium builds alike
    m4 = fileio.read_json(tmp_path / "build" / "m4" / "report.json")["models"]["kws_dscnn_int8"]
    m55 = fileio.read_json(tmp_path / "build" / "m55" / "report.json")["models"]["kws_dscnn_int8"]
    assert m55["arena"] == m4["arena"] == m4["activations"] == 10_304 and m55["scratch"] == m4["scratch"] == 0
