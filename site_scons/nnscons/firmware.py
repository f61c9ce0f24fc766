"""The firmware stages: embedded inputs, the model list, running the image in QEMU, sizes, and the comparison with
the host binary (DESIGN.md sections 6 and 7).

A Cortex-M target links every selected model into one image, ``build/<target>/firmware.elf``, with the generic
runner ``runtime/nnscons_firmware_main.c``. This module writes what the runner reads and reads what it prints:

* ``<name>_inputs.c`` (per model, target-independent): the inputs the firmware runs, as ``const`` bytes. They are
  the test set's inputs (``test.npz`` key ``x``), converted to the network's integer input as the host test
  binary does (kept if already of that type, else quantized with the input's scale and zero point, rounding half
  away from zero), then reproducible random inputs, as many as fit :data:`SAMPLE_BUDGET` bytes (at most
  :data:`MAX_SAMPLES`). The same inputs go to ``inputs.npz`` for the host binary.
* ``nnscons_firmware_models.c`` (per target): the list of models in the image.
* Running: ``qemu-system-arm -machine M -icount shift=0 -semihosting ... -kernel firmware.elf`` with a timeout;
  the runner prints one ``nnscons model=... input=... ticks=... instructions=... output=<hex>`` line per
  inference and ``nnscons done``. A fault, an error line, a non-zero exit or a timeout is one error line.
* The report ``build/<target>/report.json``: per model the instructions per inference, the outputs, the stack
  depth measured while it ran, its code, weights and RAM in the image (from the linker map), the arena and scratch
  sizes (from the generated header); for the image the section sizes (``arm-none-eabi-size -A``). No timings, no
  absolute paths: the report is deterministic.
* The firmware check: the output bytes of every inference equal the host binary's on the same inputs.
"""
from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from . import check, data, fileio, ir
from .errors import NnsconsError
from .targets import Target

SAMPLE_BUDGET = 16 * 1024   # bytes of embedded inputs per model
MAX_SAMPLES = 16            # inferences per model at most
ALIGN = 8                   # NNSCONS_FIRMWARE_ALIGN in runtime/nnscons_firmware.h

RUNTIME_SOURCES = ("nnscons_firmware_main.c", "nnscons_cortex_m.c")
SECTIONS_SCRIPT = "nnscons_cortex_m_sections.ld"



# ---- the network's integer inputs and outputs -------------------------------------------------------------------
@dataclass(frozen=True)
class NetworkTensor:
    """An input or output of the generated network: what the C function reads or writes."""

    name: str
    dtype: str              # numpy name: int8, int16, ...
    shape: tuple[int, ...]  # IR layout, batch first
    scale: float
    zero_point: int

    @property
    def size(self) -> int:
        return int(np.prod(self.shape[1:], dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype).itemsize


def network_tensors(graph: ir.Graph, qtable: Mapping[str, Any]) -> tuple[list[NetworkTensor], list[NetworkTensor]]:
    """The network's integer inputs and outputs, in order (a float model's leading quantize and trailing
    dequantize belong to the generated conversion helpers, as for the host binary)."""
    if len(graph.inputs) == 1 and len(graph.outputs) == 1:
        net_in, net_out = check.network_io(graph, dict(qtable))
        names_in, names_out = [net_in], [net_out]
    else:
        names_in, names_out = list(graph.inputs), list(graph.outputs)

    def describe(name: str) -> NetworkTensor:
        entry = qtable["tensors"].get(name, {})
        tensor = graph.tensors[name]
        scale = entry.get("scale") or [tensor.quant.scale[0] if tensor.quant else 1.0]
        zero_point = entry.get("zero_point") or [tensor.quant.zero_point[0] if tensor.quant else 0]
        return NetworkTensor(name, entry.get("dtype", tensor.dtype), tuple(tensor.shape), float(scale[0]),
                             int(zero_point[0]))

    return [describe(n) for n in names_in], [describe(n) for n in names_out]


def quantize_like_host(x: np.ndarray, tensor: NetworkTensor) -> np.ndarray:
    """float -> the input's integers exactly as the host test binary does (nnscons_test_main.c ``quantize``):
    x / scale in double with scale as a float, round half away from zero, add the zero point, saturate."""
    scaled = x.astype(np.float64) / np.float64(np.float32(tensor.scale))
    scaled = np.clip(scaled, -1e9, 1e9)
    rounded = np.trunc(np.where(scaled < 0, scaled - 0.5, scaled + 0.5)).astype(np.int64) + tensor.zero_point
    info = np.iinfo(np.dtype(tensor.dtype))
    return np.clip(rounded, info.min, info.max).astype(tensor.dtype)


def sample_count(inputs: Sequence[NetworkTensor], budget: int = SAMPLE_BUDGET, limit: int = MAX_SAMPLES) -> int:
    sample_bytes = sum(_padded(t.nbytes) for t in inputs)
    return max(1, min(limit, budget // max(sample_bytes, 1)))


def firmware_inputs(name: str, graph: ir.Graph, qtable: Mapping[str, Any], test_npz: Optional[str],
                    budget: int = SAMPLE_BUDGET, limit: int = MAX_SAMPLES) -> list[np.ndarray]:
    """Per network input, ``[N, *shape[1:]]`` integers: the test set's inputs first, then random ones."""
    inputs, _ = network_tensors(graph, qtable)
    count = sample_count(inputs, budget, limit)
    tests = _test_inputs(graph, inputs, test_npz) if test_npz else [np.zeros((0, *t.shape[1:]), t.dtype)
                                                                    for t in inputs]
    result = []
    for index, (tensor, test) in enumerate(zip(inputs, tests)):
        test = test[:count]
        seed_name = name if len(inputs) == 1 else f"{name}:{index}"
        extra = check.random_inputs(seed_name, list(tensor.shape), tensor.dtype, count - len(test))
        result.append(np.ascontiguousarray(np.concatenate([test, extra]).astype(tensor.dtype)))
    return result


def _test_inputs(graph: ir.Graph, inputs: list[NetworkTensor], test_npz: str) -> list[np.ndarray]:
    """The test set's inputs as the network's integers (IR layout)."""
    raw = data.load_npz(test_npz)
    as_float = None
    result = []
    for key, graph_input, tensor in zip(data.input_keys(graph), graph.inputs, inputs):
        x = raw.get(key)
        if x is not None and x.dtype == np.dtype(tensor.dtype):
            data.check_input(test_npz, graph, graph_input, key, x)     # shape and type errors, one line
            perm = graph.input_perm.get(graph_input)
            result.append(np.ascontiguousarray(x.transpose(perm)) if perm else x)
            continue
        if as_float is None:
            as_float = data.load_inputs(test_npz, graph)
        result.append(quantize_like_host(as_float[graph_input], tensor))
    return result


def _padded(nbytes: int) -> int:
    return (nbytes + ALIGN - 1) // ALIGN * ALIGN


# ---- generated C ------------------------------------------------------------------------------------------------
def inputs_c_source(name: str, samples: Sequence[np.ndarray], output_bytes: int, origin: str) -> str:
    """``<name>_inputs.c``: the samples as const bytes (each input of a sample at a multiple of ALIGN bytes),
    an output buffer, and the ``<name>_firmware`` record the runner reads."""
    count = len(samples[0])
    rows = []
    for i in range(count):
        row = b"".join(_little_endian(s[i]).ljust(_padded(s[i].nbytes), b"\0") for s in samples)
        rows.append(row)
    blob = b"".join(rows)
    sample_bytes = len(rows[0])
    lines = [", ".join(f"0x{b:02x}" for b in blob[i:i + 16]) for i in range(0, len(blob), 16)]
    body = ",\n".join("        " + line for line in lines)
    out_bytes = max(_padded(output_bytes), ALIGN)
    return f"""/* Generated by nnscons: the inputs the firmware runs {name} on ({count} inferences; {origin}).
 * Do not edit: rebuilt from the model's test set. */
#include "nnscons_firmware.h"

extern const nnscons_model_info_t {name}_info;

/* The unions align the buffers for every input and output type. */
static const union {{
    uint8_t bytes[{len(blob)}];
    uint64_t align;
}} samples = {{
    {{
{body}
    }}
}};

static union {{
    uint8_t bytes[{out_bytes}];
    uint64_t align;
}} output;

const nnscons_firmware_model_t {name}_firmware = {{
    &{name}_info, {count}u, {sample_bytes}u, samples.bytes, output.bytes, {out_bytes}u
}};
"""


def _little_endian(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<"), copy=False).tobytes()


def models_c_source(names: Sequence[str]) -> str:
    """``nnscons_firmware_models.c``: the models of one image, in the given order."""
    externs = "".join(f"extern const nnscons_firmware_model_t {n}_firmware;\n" for n in names)
    entries = "".join(f"    &{n}_firmware,\n" for n in names) or "    0,\n"
    return f"""/* Generated by nnscons: the models of this firmware image. Do not edit. */
#include "nnscons_firmware.h"

{externs}
const nnscons_firmware_model_t *const nnscons_firmware_models[] = {{
{entries}}};
const uint32_t nnscons_firmware_model_count = {len(names)}u;
"""


def inputs_stage(name: str, graph_json: str, qtable_json: str, test_npz: Optional[str], inputs_c: str,
                 inputs_npz: str) -> None:
    """Write ``<name>_inputs.c`` and the same inputs as ``inputs.npz`` (keys x0, x1, ... in input order)."""
    graph = ir.Graph.from_json(fileio.read_json(graph_json))
    qtable = fileio.read_json(qtable_json)
    _, outputs = network_tensors(graph, qtable)
    samples = firmware_inputs(name, graph, qtable, test_npz)
    tested = 0
    if test_npz:
        tested = min(len(samples[0]), len(data.load_npz(test_npz).get(data.input_keys(graph)[0], [])))
    origin = f"{tested} from the test set, {len(samples[0]) - tested} random"
    output_bytes = sum(_padded(t.nbytes) for t in outputs)
    fileio.write_text(inputs_c, inputs_c_source(name, samples, output_bytes, origin))
    fileio.write_npz(inputs_npz, {f"x{i}": s for i, s in enumerate(samples)})


# ---- running the image ------------------------------------------------------------------------------------------
@dataclass
class Inference:
    model: str
    input: int
    ticks: int
    instructions: int
    output: str             # hex of the output bytes


@dataclass
class FirmwareRun:
    clock_hz: int
    inferences: list[Inference] = field(default_factory=list)
    stack: dict[str, int] = field(default_factory=dict)    # model -> deepest stack while it ran (bytes)
    arena: dict[str, int] = field(default_factory=dict)    # model -> arena size as compiled (bytes)

    def of(self, model: str) -> list[Inference]:
        return [i for i in self.inferences if i.model == model]


def emulator_command(target: Target, elf: str, models: Optional[Sequence[str]] = None) -> list[str]:
    emulator = target.emulator
    if emulator is None or not emulator.machine:
        raise NnsconsError(os.path.join(target.directory, "target.toml"),
                           "no emulator: add [emulator] machine = \"...\" to run the firmware")
    command = [emulator.command, "-machine", emulator.machine]
    if emulator.cpu:
        command += ["-cpu", emulator.cpu]
    command += ["-nographic", "-monitor", "none", "-serial", "none",
                "-semihosting-config", "enable=on,target=native", "-icount", "shift=0", *emulator.args,
                "-kernel", elf]
    if models:
        command += ["-append", "models=" + ",".join(models)]
    return command


def run_firmware(elf: str, target: Target, models: Optional[Sequence[str]] = None,
                 timeout: Optional[float] = None) -> FirmwareRun:
    """Run the image in the target's emulator until it exits; its output, parsed."""
    command = emulator_command(target, elf, models)
    assert target.emulator is not None
    timeout = timeout or target.emulator.timeout
    where = f"{target.name} ({target.emulator.machine})"
    try:
        result = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, timeout=timeout)
    except FileNotFoundError:
        raise NnsconsError(elf, f"{command[0]} not found: install it (Debian: qemu-system-arm)") from None
    except subprocess.TimeoutExpired as e:
        last = _last_line(e.stdout)
        raise NnsconsError(elf, f"{where}: did not finish within {timeout:g} s (last line: {last}); the firmware "
                                "hangs or needs a longer [emulator] timeout") from None
    text = result.stdout.decode("utf-8", "replace")
    return parse_output(elf, text, result.returncode, where)


def _last_line(output: Optional[bytes]) -> str:
    lines = (output or b"").decode("utf-8", "replace").strip().splitlines()
    return ir.c_comment(lines[-1], 120) if lines else "none"


_FIELD = re.compile(r"(\w+)=(\S*)")


def parse_output(elf: str, text: str, status: int = 0, where: str = "firmware") -> FirmwareRun:
    """The runner's lines (see nnscons_firmware_main.c); anything but a clean end is an NnsconsError."""
    run = FirmwareRun(clock_hz=0)
    done = False
    for line in text.splitlines():
        if not line.startswith("nnscons "):
            continue
        fields = dict(_FIELD.findall(line))
        word = line.split()[1]
        if word == "error":
            after = f" after {run.inferences[-1].model} input {run.inferences[-1].input}" if run.inferences else ""
            raise NnsconsError(elf, f"{where}: {ir.c_comment(line[len('nnscons error '):], 200)}{after}")
        if word == "start":
            run.clock_hz = int(fields["clock_hz"])
        elif word == "done":
            done = True
        elif "input" in fields:
            run.inferences.append(Inference(fields["model"], int(fields["input"]), int(fields["ticks"]),
                                            int(fields["instructions"]), fields["output"]))
        elif "stack" in fields:
            run.stack[fields["model"]] = int(fields["stack"])
            run.arena[fields["model"]] = int(fields["arena"])
    if status != 0:
        raise NnsconsError(elf, f"{where}: exited with status {status} (last line: {_last_line(text.encode())})")
    if not done:
        raise NnsconsError(elf, f"{where}: ended without 'nnscons done' (last line: {_last_line(text.encode())})")
    return run


# ---- sizes ------------------------------------------------------------------------------------------------------
def section_sizes(elf: str, size_tool: str = "arm-none-eabi-size") -> dict[str, int]:
    """Allocated sections of the image and their sizes (``size -A``; debug sections left out)."""
    try:
        result = subprocess.run([size_tool, "-A", "-d", elf], capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise NnsconsError(elf, f"{size_tool} not found (Debian: binutils-arm-none-eabi)") from None
    if result.returncode != 0:
        raise NnsconsError(elf, f"{size_tool} failed: {_last_line(result.stderr.encode())}")
    sizes = {}
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith(".") and parts[1].isdigit():
            name = parts[0]
            if not name.startswith((".debug", ".comment", ".ARM.attributes")):
                sizes[name] = int(parts[1])
    return sizes


FLASH_SECTIONS = (".text", ".rodata", ".ARM.exidx", ".ARM.extab", ".data")
RAM_SECTIONS = (".data", ".bss", ".heap", ".stack")

_OUTPUT_SECTION = re.compile(r"^(\.[\w.]+)(?:\s+0x[0-9a-fA-F]+\s+0x[0-9a-fA-F]+(?: load address .*)?)?\s*$")
_INPUT_SECTION = re.compile(r"^ (\S+)?\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)\s+(\S.*)$")
_INPUT_NAME = re.compile(r"^ (\.\S+|COMMON)$")


def map_contributions(map_file: str) -> dict[str, dict[str, int]]:
    """Bytes each input file (an object, or an archive) puts into each output section, from a GNU ld map file:
    ``{file: {".text": n, ".rodata": n, ".data": n, ".bss": n}}``. Archive members count for their archive."""
    try:
        with open(map_file, encoding="utf-8", errors="replace") as f:
            lines = f.read().split("\n")
    except OSError as e:
        raise NnsconsError(map_file, f"cannot read the linker map: {e.strerror}") from None
    try:
        start = lines.index("Linker script and memory map")
    except ValueError:
        raise NnsconsError(map_file, "not a GNU ld map file") from None
    result: dict[str, dict[str, int]] = {}
    section = None
    pending_name = False
    for line in lines[start + 1:]:
        out = _OUTPUT_SECTION.match(line)
        if out:
            section = out.group(1)
            continue
        if section is None or section.startswith((".debug", ".comment", ".ARM.attributes")):
            continue
        if _INPUT_NAME.match(line):
            pending_name = True
            continue
        m = _INPUT_SECTION.match(line)
        if m and (m.group(1) or pending_name) and not line.startswith(" *fill*"):
            size = int(m.group(3), 16)
            owner = _archive(m.group(4).strip())
            if size:
                sizes = result.setdefault(owner, {})
                sizes[section] = sizes.get(section, 0) + size
        pending_name = False
    return result


def _archive(path: str) -> str:
    """``lib.a(member.o)`` -> ``lib.a``; paths normalized."""
    if path.endswith(")") and "(" in path:
        path = path[:path.index("(")]
    return os.path.normpath(path)


def activation_arena_size(header: str, name: str) -> Optional[int]:
    """``<NAME>_ACTIVATION_ARENA_SIZE`` of a generated header: the arena without the kernels' scratch buffer, whose
    size depends on the target's code paths (the firmware reports the whole arena as compiled)."""
    with open(header, encoding="utf-8") as f:
        m = re.search(rf"^#define\s+{name.upper()}_ACTIVATION_ARENA_SIZE\s+\(?(\d+)[uU]?\)?\s*$", f.read(), re.M)
    return int(m.group(1)) if m else None


def model_sizes(contributions: Mapping[str, Mapping[str, int]], files: Sequence[str]) -> dict[str, int]:
    """Code, constants (weights), initialized and zeroed RAM the given files put into the image."""
    total = {"code": 0, "rodata": 0, "data": 0, "bss": 0}
    for file in files:
        sizes = contributions.get(os.path.normpath(file), {})
        total["code"] += sizes.get(".text", 0)
        total["rodata"] += sizes.get(".rodata", 0)
        total["data"] += sizes.get(".data", 0)
        total["bss"] += sizes.get(".bss", 0)
    return total


# ---- the run stage ----------------------------------------------------------------------------------------------
def run_stage(target: Target, elf: str, map_file: str, models: Mapping[str, Mapping[str, str]],
              kernel_lib: str, report_json: str, options: Optional[Mapping[str, str]] = None) -> dict[str, Any]:
    """Run the image and write ``report.json``. ``models``: per model name, its ``library`` (lib<name>.a),
    ``inputs`` (object of <name>_inputs.c) and ``header`` (<name>.h)."""
    run = run_firmware(elf, target)
    sections = section_sizes(elf, _tool(target, "size"))
    contributions = map_contributions(map_file)
    report: dict[str, Any] = {
        "target": target.name, "machine": target.emulator.machine if target.emulator else "",
        "clock_hz": run.clock_hz, "options": dict(options or {}),
        "image": {"sections": sections,
                  "flash": sum(sections.get(s, 0) for s in FLASH_SECTIONS),
                  "ram": sum(sections.get(s, 0) for s in RAM_SECTIONS)},
        "kernels": model_sizes(contributions, [kernel_lib]),
        "models": {},
    }
    for name, files in sorted(models.items()):
        inferences = run.of(name)
        if not inferences:
            raise NnsconsError(elf, f"{target.name}: the firmware ran no inference of {name}")
        counts = [i.instructions for i in inferences]
        entry: dict[str, Any] = {
            "inputs": len(inferences),
            "instructions": {"min": min(counts), "max": max(counts), "mean": int(round(float(np.mean(counts))))},
            "instructions_per_input": counts,
            "outputs": [i.output for i in inferences],
            "stack": run.stack.get(name),
            "image": model_sizes(contributions, [files["library"]]),
            "embedded_inputs": model_sizes(contributions, [files["inputs"]]),
        }
        entry["arena"] = run.arena.get(name)
        activations = activation_arena_size(files["header"], name)
        if activations is not None and entry["arena"] is not None:
            entry["activations"] = activations
            entry["scratch"] = entry["arena"] - activations
        report["models"][name] = entry
    fileio.write_json(report_json, report)
    return report


def _tool(target: Target, name: str) -> str:
    """A binutils program of the target's toolchain: arm-none-eabi-gcc -> arm-none-eabi-size."""
    prefix = target.cc[:-3] if target.cc.endswith("gcc") else ""
    return prefix + name


def summary_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The table ``scons target=<t> run`` prints: one line per model."""
    rows = []
    for name, m in report["models"].items():
        image = m["image"]
        rows.append({
            "target": report["target"], "model": name, "inferences": m["inputs"],
            "instructions": f"{m['instructions']['mean']:,}",
            "code": f"{image['code']:,}", "weights": f"{image['rodata']:,}",
            "ram": f"{image['data'] + image['bss']:,}",
            "arena": f"{m['arena']:,}" if "arena" in m else "-",
            "scratch": f"{m['scratch']:,}" if "scratch" in m else "-",
            "stack": f"{m['stack']:,}" if m.get("stack") is not None else "-",
        })
    return rows


def image_row(report: Mapping[str, Any]) -> dict[str, Any]:
    kernels = report["kernels"]
    return {"target": report["target"], "flash": f"{report['image']['flash']:,}",
            "ram": f"{report['image']['ram']:,}", "kernels code": f"{kernels['code']:,}",
            "kernels rodata": f"{kernels['rodata']:,}"}


# ---- the firmware check -----------------------------------------------------------------------------------------
def check_stage(name: str, report_json: str, host_binary: str, inputs_npz: str, check_json: str) -> dict[str, Any]:
    """The firmware's output bytes for ``name`` against the host binary's on the same inputs."""
    report = fileio.read_json(report_json)
    ours = report["models"].get(name, {}).get("outputs")
    if ours is None:
        raise NnsconsError(report_json, f"no outputs of {name} in the firmware report")
    inputs = fileio.read_npz(inputs_npz)
    if len(inputs) != 1:
        raise NnsconsError(inputs_npz, f"{name}: the host binary takes one input, the network has {len(inputs)}")
    host = check.run_binary(host_binary, inputs["x0"])
    theirs = [_little_endian(row).hex() for row in host.reshape(len(host), -1)]
    differing = [i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b]
    if len(ours) != len(theirs):
        differing = differing or [min(len(ours), len(theirs))]
    result: dict[str, Any] = {"model": name, "target": report["target"], "inputs": len(theirs),
                              "mismatched_inputs": len(differing), "identical": not differing}
    if differing:
        i = differing[0]
        result["first_mismatch"] = {"input": i, "firmware": ours[i] if i < len(ours) else None,
                                    "host": theirs[i] if i < len(theirs) else None}
    fileio.write_json(check_json, result)
    if differing:
        raise NnsconsError(check_json, f"{name} on {report['target']}: {len(differing)} of {len(theirs)} inputs give "
                                       f"other output bytes than the host binary (first: input {differing[0]})")
    return result
