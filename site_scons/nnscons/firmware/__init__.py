"""The firmware stages: embedded inputs, the model list, running the image in QEMU, sizes, and the comparison with
the host binary (DESIGN.md sections 6 and 7).

A Cortex-M target links every selected model into one image, ``build/<target>/firmware.elf``, with the generic
runner ``runtime/nnscons_firmware_main.c``. This package writes what the runner reads and reads what it prints:

* ``<name>_inputs.c`` (per model, target-independent): the inputs the firmware runs, as ``const`` bytes. They are
  the test set's inputs (``test.npz`` key ``x``), converted to the network's integer input as the host test
  binary does (kept if already of that type, else quantized with the input's scale and zero point, rounding half
  away from zero), then reproducible random inputs, as many as fit :data:`SAMPLE_BUDGET` bytes (at most
  :data:`MAX_SAMPLES`). The same inputs go to ``inputs.npz`` for the host binary. (:mod:`.inputs` chooses and
  converts them, :mod:`.sources` writes the C.)
* ``nnscons_firmware_models.c`` (per target): the list of models in the image (:mod:`.sources`).
* Running: ``qemu-system-arm -machine M -icount shift=0 -semihosting ... -kernel firmware.elf`` with a timeout;
  the runner prints one ``nnscons model=... input=... ticks=... instructions=... output=<hex>`` line per
  inference and ``nnscons done``. A fault, an error line, a non-zero exit or a timeout is one error line
  (:mod:`.qemu`).
* The report ``build/<target>/report.json``: per model the instructions per inference, the outputs, the stack
  depth measured while it ran, its code, weights and RAM in the image (from the linker map), the arena and scratch
  sizes (from the generated header); for the image the section sizes (``arm-none-eabi-size -A``). No timings, no
  absolute paths: the report is deterministic. (:mod:`.sizes` reads the image, :mod:`.report` writes the report
  and the printed summary rows.)
* The profile: a second image, the models compiled with ``-DNNSCONS_TRACE``, prints each layer's instructions
  for the first input; the report gets them per layer (kernel type, MACs, share) and per kernel type
  (:mod:`.profile`), and ``build/<target>/report.html`` shows the report as a page (:mod:`.html`).
* The firmware check: the output bytes of every inference equal the host binary's on the same inputs
  (:mod:`.check`).
* A board (``images = "per-model"`` in its target.toml) links one image per model, and only a model that fits:
  measured at link time against the image without any model; one that does not is refused with one line and left
  out, the others run (:mod:`.fits`).
"""
from __future__ import annotations

from .check import check_stage
from .inputs import (ALIGN, MAX_SAMPLES, SAMPLE_BUDGET, NetworkTensor, firmware_inputs, network_tensors,
                     quantize_like_host, sample_count)
from .fits import fits_stage, fitting_models, measured_footprint, refusal_of, reserved_of
from .qemu import FirmwareRun, Inference, emulator_command, emulator_output, parse_output, run_firmware
from .report import image_row, refused_lines, run_stage, summary_rows
from .sizes import (FLASH_SECTIONS, RAM_SECTIONS, activation_arena_size, binutils_size, map_contributions,
                    model_sizes, object_sizes, section_sizes)
from .sources import LAYOUT_SCRIPT, RUNTIME_SOURCES, SECTIONS_SCRIPT, inputs_c_source, inputs_stage, models_c_source

__all__ = [
    "ALIGN", "FLASH_SECTIONS", "LAYOUT_SCRIPT", "MAX_SAMPLES", "RAM_SECTIONS", "RUNTIME_SOURCES", "SAMPLE_BUDGET",
    "SECTIONS_SCRIPT",
    "FirmwareRun", "Inference", "NetworkTensor", "activation_arena_size", "binutils_size", "check_stage",
    "emulator_command", "emulator_output", "firmware_inputs", "fits_stage", "fitting_models", "image_row",
    "inputs_c_source", "inputs_stage", "map_contributions", "measured_footprint", "model_sizes", "models_c_source",
    "network_tensors", "object_sizes", "parse_output", "quantize_like_host", "refusal_of", "refused_lines",
    "reserved_of", "run_firmware", "run_stage", "sample_count", "section_sizes", "summary_rows",
]
