"""Does a model fit a board? (part of :mod:`nnscons.firmware`): decided at link time, on measured sizes.

A target with ``images = "per-model"`` (the boards) links one image per model. Before linking it, the model's
compiled library and embedded inputs are measured (``size -A``: their RAM exactly, their flash without the
kernels they will pull in, a lower bound: the linker's own check stays behind it) against what the image takes
without any model (the same startup, runner and libc
linked with an empty model list: its ``.data``/``.bss``, heap and stack; its flash). ``fits.json`` records the
verdict; a model that does not fit gets one line, e.g.

    kws_dscnn_int8 needs 10,304 B of arena (10,432 B of RAM with its buffers), microbit has 16,384 B of RAM of
    which 9,000 B are free (the runtime takes 888 B, the heap 1,024 B, the stack 5,472 B)

and is left out of its image: the image lists no model (:func:`fitting_models`), the run reports the refusal
instead of running it, the firmware check records it, and the build goes on with the models that fit.
"""
from __future__ import annotations

from typing import Any, Optional

from .. import fileio
from ..targets import Footprint, Reserved, Target, fit_refusal
from .sizes import binutils_size, named_section_size, object_sizes, section_sizes


def reserved_of(runtime_elf: str, size_tool: str) -> Reserved:
    """What an image takes besides its models: the sections of the image linked without any."""
    sections = section_sizes(runtime_elf, size_tool)
    flash = sum(sections.get(s, 0) for s in (".text", ".rodata", ".ARM.exidx", ".ARM.extab", ".data"))
    return Reserved(flash=flash, data=sections.get(".data", 0) + sections.get(".bss", 0),
                    heap=sections.get(".heap", 0), stack=sections.get(".stack", 0))


def measured_footprint(name: str, library: str, inputs: str, kernel_lib: str, size_tool: str,
                       frontend_lib: Optional[str] = None) -> Footprint:
    """What the model's compiled files put into an image: its library (whose ``<name>_arena`` is the arena as
    compiled for this core), embedded inputs and audio front end (its tables and buffers); the kernels add their
    RAM (their code, and CMSIS-DSP's: whichever the model calls, known only once linked)."""
    model = object_sizes([library, inputs] + ([frontend_lib] if frontend_lib else []), size_tool)
    kernels = object_sizes([kernel_lib], size_tool)
    arena = named_section_size([library], f".bss.{name}_arena", size_tool)
    flash = sum(model[k] for k in ("code", "rodata", "data"))
    ram = model["data"] + model["bss"] + kernels["data"] + kernels["bss"]
    return Footprint(constants=model["rodata"], arena=arena, flash=flash, ram=ram)


def fits_stage(target: Target, name: str, runtime_elf: str, library: str, inputs: str, kernel_lib: str,
               fits_json: str, frontend_lib: Optional[str] = None) -> dict[str, Any]:
    """Write ``fits.json`` for ``name`` alone in an image of ``target``; print the refusal line if it does not
    fit (the build goes on)."""
    tool = binutils_size(target)
    reserved = reserved_of(runtime_elf, tool)
    need = measured_footprint(name, library, inputs, kernel_lib, tool, frontend_lib)
    refusal = fit_refusal(target, name, need, reserved)
    result = {"model": name, "target": target.name, "fits": refusal is None, "refusal": refusal,
              "needs": {"arena": need.arena, "ram": need.ram, "flash": need.flash, "constants": need.constants},
              "reserved": {"flash": reserved.flash, "data": reserved.data, "heap": reserved.heap,
                           "stack": reserved.stack}}
    fileio.write_json(fits_json, result)
    if refusal:
        print(f"nnscons: {target.name}: {refusal}; left out of its image")
    return result


def fitting_models(fits_json: str) -> list[str]:
    """The model of a per-model image, or none when it was refused."""
    verdict = fileio.read_json(fits_json)
    return [verdict["model"]] if verdict["fits"] else []


def refusal_of(fits_json: Optional[str]) -> Optional[str]:
    """The refusal line a ``fits.json`` holds (None: it fits, or there was no check)."""
    return fileio.read_json(fits_json)["refusal"] if fits_json else None
