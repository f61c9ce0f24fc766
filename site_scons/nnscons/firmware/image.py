"""A firmware image of one model built without SCons (part of :mod:`nnscons.firmware`; ``nnscons validate`` builds
it): what the SCons tool's ``NnsconsFirmware`` links, with direct compiler calls (:mod:`nnscons.hostbuild`) and the
same flags, sources and linker script.

``<out>/firmware.elf`` and ``firmware.map`` hold the target's startup code, the generic runner
(:data:`~nnscons.firmware.sources.RUNTIME_SOURCES`), the model list, the model's embedded inputs
(``<name>_inputs.c``), the model as ``lib<name>.a`` and the kernel library (compiled once per content into
``cache_dir``). The model is refused in one line before anything compiles when it cannot fit the target's memory.
Not imported by the package: the firmware stages do not depend on the compilers' module.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .. import fileio, hostbuild, targets
from ..errors import NnsconsError
from ..pipeline.modules import RUNTIME_DIR
from .sources import RUNTIME_SOURCES, models_c_source


@dataclass(frozen=True)
class Image:
    """A linked image and the files its report attributes sizes to (paths as the link line names them)."""

    elf: Path
    map_file: Path
    kernels: Path           # the kernel library
    library: Path           # lib<name>.a
    inputs_object: Path     # <name>_inputs.o


def build_image(target: targets.Target, name: str, src_dir: str | os.PathLike, inputs_c: str | os.PathLike,
                out_dir: str | os.PathLike, cmsis_dir: str | os.PathLike, cache_dir: str | os.PathLike,
                opt: str = "O2", footprint: targets.Footprint | None = None) -> Image:
    """Compile and link ``<out_dir>/firmware.elf`` for ``target`` (a Cortex-M target with ``[memory]`` and
    ``[emulator]``); ``footprint`` (the model's constants and arena) is checked against the memory first."""
    if target.kind != "cortex-m" or target.memory is None or target.emulator is None:
        raise NnsconsError(os.path.join(target.directory, "target.toml"), "not a Cortex-M target with [memory] "
                                                                          "and [emulator]: no firmware to build")
    if footprint is not None:
        targets.check_fits(target, {name: footprint})
    out = Path(out_dir).resolve()
    objects_dir = out / "obj"
    objects_dir.mkdir(parents=True, exist_ok=True)
    toolchain = hostbuild.Toolchain.from_target(target.directory, [f"-{opt}"])
    kernels = hostbuild.kernel_library(cmsis_dir, cache_dir, toolchain).resolve()
    src = Path(src_dir).resolve()
    include = Path(cmsis_dir).resolve() / "Include"
    library = hostbuild.static_library(
        toolchain, hostbuild.model_objects(name, src, objects_dir, toolchain, [src, include]), out / f"lib{name}.a")
    models_c = out / "nnscons_firmware_models.c"
    fileio.write_text(models_c, models_c_source([name]))
    runner = [RUNTIME_DIR, include]
    clock = f"-DNNSCONS_CLOCK_HZ={target.emulator.clock_hz}u"
    objects = [hostbuild.compile_object(toolchain, Path(s), objects_dir / f"startup_{Path(s).stem}.o", runner, [clock])
               for s in target.startup]
    objects += [hostbuild.compile_object(toolchain, RUNTIME_DIR / s, objects_dir / f"{Path(s).stem}.o", runner,
                                         [clock]) for s in RUNTIME_SOURCES]
    objects.append(hostbuild.compile_object(toolchain, models_c, objects_dir / "nnscons_firmware_models.o", runner))
    inputs_object = hostbuild.compile_object(toolchain, Path(inputs_c).resolve(), objects_dir / f"{name}_inputs.o",
                                             runner)
    elf, map_file = out / "firmware.elf", out / "firmware.map"
    command = [target.cc, "-o", str(elf), *target.linkflags, f"-T{target.linker_script}", f"-L{RUNTIME_DIR}",
               f"-Wl,--defsym=__stack_size__={target.memory.stack_size}", f"-Wl,-Map={map_file}",
               *map(str, objects), str(inputs_object), str(library), str(kernels), *(f"-l{lib}" for lib in target.libs)]
    hostbuild.run_binary(command, str(elf))
    return Image(elf, map_file, kernels, library, inputs_object)
