"""The run stage and its report (part of :mod:`nnscons.firmware`): run the image, write
``build/<target>/report.json``, and the rows ``scons target=<t> run`` prints from it.

The report holds, per model, the instructions per inference, the outputs, the stack depth measured while it ran,
its code, weights and RAM in the image (from the linker map), the arena and scratch sizes (from the generated
header); for the image the section sizes. No timings, no absolute paths: the report is deterministic.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

import numpy as np

from .. import fileio
from ..errors import NnsconsError
from ..targets import Target
from .qemu import run_firmware
from .sizes import (FLASH_SECTIONS, RAM_SECTIONS, activation_arena_size, map_contributions, model_sizes,
                    section_sizes)


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
