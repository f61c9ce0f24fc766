"""The run stage and its report (part of :mod:`nnscons.firmware`): run the image, write
``build/<target>/report.json``, and the rows ``scons target=<t> run`` prints from it.

The report holds, per model, the instructions per inference, the outputs, the stack depth measured while it ran,
its code, weights and RAM in the image (from the linker map), the arena and scratch sizes (from the generated
header), and from the profile image the instructions of each layer with its share (:mod:`.profile`); for the image
the section sizes. No timings, no absolute paths: the report is deterministic. ``report.html`` shows the same.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

import numpy as np

from .. import fileio, ir
from ..errors import NnsconsError
from ..targets import Target
from . import profile
from .html import render_html
from .qemu import FirmwareRun, Inference, run_firmware
from .sizes import (FLASH_SECTIONS, RAM_SECTIONS, activation_arena_size, map_contributions, model_sizes,
                    section_sizes, binutils_size)


def run_stage(target: Target, elf: str, map_file: str, models: Mapping[str, Mapping[str, str]],
              kernel_lib: str, report_json: str, options: Optional[Mapping[str, str]] = None,
              profile_elf: Optional[str] = None, report_html: Optional[str] = None,
              refused: Optional[Mapping[str, str]] = None, dsp_lib: Optional[str] = None) -> dict[str, Any]:
    """Run the image and write ``report.json`` (and ``report_html``). ``models``: per model name, its ``library``
    (lib<name>.a), ``inputs`` (object of <name>_inputs.c), ``header`` (<name>.h) and ``graph`` (graph.json, for
    the profile), and for a model behind an audio front end ``frontend`` (lib<name>_frontend.a; ``dsp_lib`` is
    CMSIS-DSP). ``profile_elf``: the same image with the models traced; its per-layer counts go in the report.
    ``refused``: models left out of the image because they do not fit (:mod:`.fits`), with the line saying why;
    the report lists them under ``refused`` (an image left with no model is not run).

    ``counter`` says what counted (the runner's start line) and ``unit`` what the counts (``instructions`` keys)
    are: instructions for a clock (SysTick, a board timer) under QEMU's ``-icount shift=0``, cycles for DWT."""
    refused = dict(refused or {})
    models = {name: files for name, files in models.items() if name not in refused}
    assert target.emulator is not None
    run = run_firmware(elf, target) if models else FirmwareRun(clock_hz=target.emulator.clock_hz, counter="-")
    profiled = run_firmware(profile_elf, target) if profile_elf and models else None
    sections = section_sizes(elf, binutils_size(target))
    contributions = map_contributions(map_file)
    report: dict[str, Any] = {
        "target": target.name, "machine": target.emulator.machine,
        "clock_hz": run.clock_hz, "counter": run.counter, "unit": run.unit, "images": target.images,
        "options": dict(options or {}),
        "image": {"sections": sections,
                  "flash": sum(sections.get(s, 0) for s in FLASH_SECTIONS),
                  "ram": sum(sections.get(s, 0) for s in RAM_SECTIONS)},
        "kernels": model_sizes(contributions, [kernel_lib]),
        "models": {},
        **({"refused": refused} if refused else {}),
    }
    if dsp_lib:
        report["dsp"] = model_sizes(contributions, [dsp_lib])
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
        if "frontend" in files:
            entry["frontend"] = _frontend(inferences, model_sizes(contributions, [files["frontend"]]))
        entry["arena"] = run.arena.get(name)
        activations = activation_arena_size(files["header"], name)
        if activations is not None and entry["arena"] is not None:
            entry["activations"] = activations
            entry["scratch"] = entry["arena"] - activations
        if profiled is not None:
            entry.update(_profile(profile_elf or "", name, files["graph"], profiled, inferences[0].output))
        report["models"][name] = entry
    fileio.write_json(report_json, report)
    if report_html:
        fileio.write_text(report_html, render_html(report))
    return report


def _frontend(inferences: list[Inference], image: dict[str, int]) -> dict[str, Any]:
    """The audio front end's share: its instructions per clip (with the quantization of its features into the
    network's input) and its code and tables in the image (CMSIS-DSP is the report's ``dsp``)."""
    counts = [i.frontend_instructions or 0 for i in inferences]
    return {"instructions": {"min": min(counts), "max": max(counts), "mean": int(round(float(np.mean(counts))))},
            "image": image}


def _profile(elf: str, name: str, graph_json: str, profiled: FirmwareRun, output: str) -> dict[str, Any]:
    """``layers`` (per layer: kernel type, MACs, instructions, share) and ``kernel_types`` of one model, from the
    profile image's run, whose first inference must give the same outputs as the image's."""
    runs = profiled.of(name)
    if not runs or runs[0].output != output:
        raise NnsconsError(elf, f"{name}: the profile image's outputs differ from the firmware's (rebuild both)")
    graph = ir.Graph.from_json(fileio.read_json(graph_json))
    layers = profile.layer_rows(graph, profiled.layers.get(name, []))
    return {"layers": layers, "kernel_types": profile.by_kernel_type(layers)}


def summary_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The table ``scons target=<t> run`` prints: one line per model."""
    from ..overview import count_text, frontend_cell     # (the tables' formatting, not the run stage's)
    rows = []
    for name, m in report["models"].items():
        image = m["image"]
        rows.append({
            "target": report["target"], "model": name, "inferences": m["inputs"],
            "instructions": count_text(report, m["instructions"]["mean"]),
            "code": f"{image['code']:,}", "weights": f"{image['rodata']:,}",
            "ram": f"{image['data'] + image['bss']:,}",
            "arena": f"{m['arena']:,}" if "arena" in m else "-",
            "scratch": f"{m['scratch']:,}" if "scratch" in m else "-",
            "stack": f"{m['stack']:,}" if m.get("stack") is not None else "-",
            **({"front end": frontend_cell(m["frontend"], report.get("dsp"), report.get("unit", ""))} if "frontend" in m else {}),
        })
    return rows


def refused_lines(report: Mapping[str, Any]) -> list[str]:
    """One line per model a report's image left out: ``<target>: <why>``."""
    return [f"{report['target']}: {why}" for why in report.get("refused", {}).values()]


def image_row(report: Mapping[str, Any]) -> dict[str, Any]:
    """The image's sizes; a board's image (one per model) is named by its model."""
    kernels = report["kernels"]
    label = report["target"]
    if report.get("images") == "per-model":
        label += " " + ", ".join(report["models"] or report.get("refused", {}))
    return {"target": label, "flash": f"{report['image']['flash']:,}",
            "ram": f"{report['image']['ram']:,}", "kernels code": f"{kernels['code']:,}",
            "kernels rodata": f"{kernels['rodata']:,}"}
