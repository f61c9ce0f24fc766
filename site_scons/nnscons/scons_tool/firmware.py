"""The Cortex-M part of the ``nnscons`` tool: embedded inputs, firmware image, emulator run, firmware check.

Thin, like the rest of the tool: every action calls one function of :mod:`nnscons.firmware`. Per target T::

    build/<name>/firmware/<name>_inputs.c, inputs.npz      NnsconsFirmwareInputs (once per model, every target)
    build/T/firmware.elf, firmware.map                     NnsconsFirmware (startup, runner, models, kernels)
    build/T/profile/firmware.elf                           NnsconsFirmware again, the models compiled with NNSCONS_TRACE
    build/T/report.json, report.html                       NnsconsFirmwareRun (QEMU; instructions, per layer, sizes)
    build/T/<name>/firmware_check.json                     NnsconsFirmwareCheck (output bytes == host binary's)

A board (``images = "per-model"``) has one image per model instead, ``build/T/<name>/firmware.elf`` (profile
``build/T/<name>/profile/``, ``report.json`` beside it), each with its ``fits.json`` (the model against
``build/T/runtime/firmware.elf``, the image without any model): :func:`firmware_groups` says which.

Generated sources compiled by several targets get explicit per-target object paths. Every generated node depends on
the library modules its action runs (``pipeline.STAGE_MODULES["firmware"]``).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Sequence

import SCons.Action
import SCons.Builder
import SCons.Errors

from .. import pipeline, targets
from .actions import depends_on, stage_action
from .chain import add_step
from .libraries import strict_flags


def _stage_action(stage: str, run: Callable[[list, list, Any], None], comstr: str) -> SCons.Action.Action:
    return stage_action(f"firmware {stage}", run, comstr)


@dataclass
class FirmwareModel:
    """One model of an image: its library for this target, its embedded inputs (a generated C file), its
    generated header (for the arena and scratch sizes in the report) and its graph.json (for the profile)."""

    name: str
    library: Any
    inputs_c: Any
    header: Any
    graph: Any = None
    frontend_library: Any = None    # lib<name>_frontend.a of a model behind an audio front end
    inputs_object: Any = None   # set by NnsconsFirmware


# ---- embedded inputs: graph + qtable (+ test set) -> <name>_inputs.c, inputs.npz ----------------------------------
def NnsconsFirmwareInputs(env, nodes, test: Optional[str]) -> list:
    """``build/<name>/firmware/<name>_inputs.c`` and ``inputs.npz`` for a model's chain (ModelNodes); for a model
    with an audio front end ``test`` is a set of raw audio, whose clips the image embeds."""
    step = pipeline.firmware_inputs_step(nodes.name, nodes.outputs, test, nodes.gen_dir, nodes.frontend)
    outputs = add_step(env, step)
    return [outputs["inputs_c"], outputs["inputs_npz"]]


# ---- the model list: names (or a board image's fits.json) -> nnscons_firmware_models.c ---------------------------
def _run_models(target, source, env) -> None:
    from .. import fileio, firmware
    fileio.write_text(str(target[0]), firmware.models_c_source(json.loads(source[0].read())))


def _run_models_that_fit(target, source, env) -> None:
    from .. import fileio, firmware
    fileio.write_text(str(target[0]), firmware.models_c_source(firmware.fitting_models(str(source[0]))))


# ---- a board's image: does the model fit? runtime image + library + inputs -> fits.json ---------------------------
def _run_fits(target, source, env) -> None:
    from .. import firmware
    tgt = targets.load_target(env["NNSCONS_TARGET_DIR"])
    firmware.fits_stage(tgt, env["NNSCONS_MODEL_NAME"], str(source[0]), str(source[1]), str(source[2]),
                        str(source[3]), str(target[0]), str(source[5]) if len(source) > 5 else None)


# ---- the image ----------------------------------------------------------------------------------------------------
def NnsconsFirmware(env, target: targets.Target, build_dir: str, models: Sequence[FirmwareModel], kernel_lib,
                    runtime_dir: Optional[str] = None, fits=None):
    """``build/<target>/firmware.elf`` (and ``firmware.map``): the target's startup, the generic runner, the model
    list, every model's inputs and library, and the kernel library. ``env`` compiles for the target; the startup
    and runner objects go to ``runtime_dir`` (default ``<build_dir>/firmware``; images of one target can share
    them).

    A target with ``images = "per-model"`` (a board) takes one model per image, and only if it fits: its
    ``fits.json`` (:mod:`nnscons.firmware.fits`, measured against the image linked without any model,
    ``<runtime_dir>/../runtime/firmware.elf``) decides whether the model list names it; the inputs are then
    linked from an archive, so a refused model leaves nothing in the image. ``fits`` reuses another image's
    verdict (the profile image takes its plain image's); the node is ``image[0].attributes.nnscons_fits``."""
    obj_dir = os.path.join(build_dir, "firmware")
    if target.emulator is None:
        raise SCons.Errors.UserError(f"{target.directory}/target.toml: no [emulator] clock_hz for the firmware")
    fenv = env.Clone(CCFLAGS=strict_flags(env))     # nnscons' runtime and the inputs: the strict warnings too
    fenv.Append(CPPPATH=[env.Dir(str(pipeline.RUNTIME_DIR))],
                CPPDEFINES=[("NNSCONS_CLOCK_HZ", f"{target.emulator.clock_hz}u")])
    objects = _runtime_objects(fenv, target, runtime_dir or obj_dir)
    per_model = target.images == "per-model"
    if per_model and len(models) != 1:
        raise SCons.Errors.UserError(f"{target.directory}/target.toml: images = \"per-model\" takes one model per "
                                     f"image, not {len(models)}")
    for model in models:    # a board's in an archive: linked only when the model list names the model
        model.inputs_object = fenv.Object(os.path.join(obj_dir, model.name + "_inputs"), model.inputs_c)
        if per_model:
            model.inputs_object = fenv.StaticLibrary(os.path.join(obj_dir, model.name + "_inputs"),
                                                     model.inputs_object)
    inputs = [m.inputs_object for m in models]
    if per_model:
        if fits is None:
            empty = _empty_image(fenv, target, os.path.dirname(os.path.normpath(runtime_dir or obj_dir)), objects)
            fits = fenv.NnsFirmwareFits(os.path.join(build_dir, "fits.json"),
                                        [empty[0], models[0].library[0], inputs[0][0], kernel_lib[0],
                                         os.path.join(target.directory, "target.toml")]
                                        + ([models[0].frontend_library[0]] if models[0].frontend_library else []),
                                        NNSCONS_TARGET_DIR=target.directory, NNSCONS_MODEL_NAME=models[0].name)
        model_list = fenv.NnsFirmwareModelsThatFit(os.path.join(obj_dir, "nnscons_firmware_models.c"), fits)
    else:
        model_list = fenv.NnsFirmwareModelsC(os.path.join(obj_dir, "nnscons_firmware_models.c"),
                                             fenv.Value(json.dumps([m.name for m in models])))
    objects = objects + fenv.Object(os.path.join(obj_dir, "nnscons_firmware_models"), model_list)
    frontends = [m.frontend_library for m in models if m.frontend_library is not None]
    dsp = [env.NnsconsDsp()] if frontends else []
    image = _link(fenv, target, build_dir, objects + inputs, [m.library for m in models] + frontends + [kernel_lib] + dsp)
    image[0].attributes.nnscons_fits = fits
    return image


def _runtime_objects(fenv, target: targets.Target, obj_dir: str) -> list:
    """The startup and runner objects under ``obj_dir`` (made once per folder: several images share them)."""
    from .. import firmware
    anchor = fenv.Dir(obj_dir)
    made = getattr(anchor.attributes, "nnscons_runtime_objects", None)
    if made is None:
        runtime = fenv.Dir(str(pipeline.RUNTIME_DIR))
        made = [fenv.Object(os.path.join(obj_dir, "startup", _stem(s)), s) for s in target.startup]
        made += [fenv.Object(os.path.join(obj_dir, _stem(s)), runtime.File(s)) for s in firmware.RUNTIME_SOURCES]
        anchor.attributes.nnscons_runtime_objects = made
    return made


def _empty_image(fenv, target: targets.Target, directory: str, objects: list):
    """``<directory>/runtime/firmware.elf``: the runner with no model, what a board image takes besides its model
    (made once per folder)."""
    anchor = fenv.Dir(os.path.join(directory, "runtime"))
    made = getattr(anchor.attributes, "nnscons_empty_image", None)
    if made is None:
        model_list = fenv.NnsFirmwareModelsC(anchor.File("nnscons_firmware_models.c"), fenv.Value("[]"))
        made = _link(fenv, target, str(anchor), objects + fenv.Object(anchor.File("nnscons_firmware_models.o"),
                                                                      model_list), [])
        anchor.attributes.nnscons_empty_image = made
    return made


def _link(fenv, target: targets.Target, build_dir: str, objects: list, libraries: list):
    """``<build_dir>/firmware.elf`` and ``firmware.map`` from ``objects`` and ``libraries``, with the target's
    linker script."""
    from .. import firmware
    from ..firmware import program
    runtime = fenv.Dir(str(pipeline.RUNTIME_DIR))
    elf, map_file = os.path.join(build_dir, "firmware.elf"), os.path.join(build_dir, "firmware.map")
    link_flags = program.link_flags(target, str(runtime), map_file)
    image = fenv.Program([elf, map_file], objects + libraries, LINKFLAGS=fenv["LINKFLAGS"] + link_flags,
                         LIBS=fenv.get("LIBS", []))
    fenv.Depends(image, [target.linker_script, runtime.File(firmware.SECTIONS_SCRIPT),
                         runtime.File(firmware.LAYOUT_SCRIPT)])
    return image


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(str(path)))[0]


def NnsconsFirmwareGroups(env, target: targets.Target, build_dir: str, models: Sequence[FirmwareModel],
                          profiled: Sequence[FirmwareModel]) -> list[tuple[str, list, list]]:
    """The images a target's models go into, as (folder, models, their profile builds): one for every model
    (``build/<target>``), or one per model for a board (``build/<target>/<name>``)."""
    if target.images != "per-model":
        return [(build_dir, list(models), list(profiled))]
    return [(os.path.join(build_dir, m.name), [m], [p]) for m, p in zip(models, profiled)]


# ---- the run: image -> report.json --------------------------------------------------------------------------------
def _run_firmware(target, source, env) -> None:
    spec = json.loads(source[-1].read())
    from .. import firmware
    tgt = targets.load_target(spec["target_dir"])
    refusal = firmware.refusal_of(spec["fits"])
    firmware.run_stage(tgt, str(source[0]), str(source[1]), spec["models"], spec["kernels"], str(target[0]),
                       spec["options"], profile_elf=spec["profile"], report_html=str(target[1]),
                       refused={name: refusal for name in spec["models"]} if refusal else None,
                       dsp_lib=spec.get("dsp"))


def NnsconsFirmwareRun(env, target: targets.Target, image, models: Sequence[FirmwareModel], kernel_lib,
                       build_dir: str, options: Optional[Mapping[str, str]] = None, profile_image=None):
    """Run the image in the target's emulator: ``build/<target>/report.json`` and ``report.html``; with
    ``profile_image`` (the image of NnsconsFirmware over models compiled with NNSCONS_TRACE) also each layer's
    instructions. Reruns when an image, the target's settings or a model's header or graph change. A board's
    image whose model was refused (its ``fits.json``) is not run: the report says why."""
    fits = image[0].attributes.nnscons_fits
    spec = {"target_dir": target.directory, "kernels": str(kernel_lib[0]), "options": dict(options or {}),
            "profile": str(profile_image[0]) if profile_image else None,
            "fits": str(fits[0]) if fits else None,
            "models": {m.name: {"library": str(m.library[0]), "inputs": str(m.inputs_object[0]),
                                "header": str(m.header), "graph": str(m.graph),
                                **({"frontend": str(m.frontend_library[0])} if m.frontend_library else {})}
                       for m in models}}
    if any(m.frontend_library for m in models):
        spec["dsp"] = str(env.NnsconsDsp()[0])
    sources = [image[0], image[1], os.path.join(target.directory, "target.toml")]
    sources += [m.header for m in models] + [m.graph for m in models if m.graph is not None]
    sources += [profile_image[0]] if profile_image else []
    sources += [fits[0]] if fits else []
    return env.NnsFirmwareReport([os.path.join(build_dir, "report.json"), os.path.join(build_dir, "report.html")],
                                 sources + [env.Value(json.dumps(spec, sort_keys=True))])


# ---- the check: report + host binary + inputs -> firmware_check.json ---------------------------------------------
def _run_check(target, source, env) -> None:
    from .. import firmware
    firmware.check_stage(env["NNSCONS_MODEL_NAME"], str(source[0]), os.path.abspath(str(source[1])),
                         str(source[2]), str(target[0]))


def NnsconsFirmwareCheck(env, name: str, report, host_binary, inputs_npz, build_dir: str):
    """``build/<target>/<name>/firmware_check.json``: fails unless every output byte equals the host binary's (or
    the board refused the model: recorded, not failed)."""
    return env.NnsFirmwareCheckReport(os.path.join(build_dir, name, "firmware_check.json"),
                                      [report, host_binary, inputs_npz], NNSCONS_MODEL_NAME=name)


def add_builders(env) -> None:
    env.SetDefault(NNSCONS_FWMODELSCOMSTR="nnscons models    $TARGET", NNSCONS_FWRUNCOMSTR="nnscons run       $TARGET",
                   NNSCONS_FWCHECKCOMSTR="nnscons fw-check  $TARGET", NNSCONS_FWFITSCOMSTR="nnscons fits      $TARGET")
    env.Append(BUILDERS={
        "NnsFirmwareModelsC": SCons.Builder.Builder(
            action=_stage_action("models", _run_models, "$NNSCONS_FWMODELSCOMSTR"), emitter=depends_on("firmware")),
        "NnsFirmwareModelsThatFit": SCons.Builder.Builder(
            action=_stage_action("models that fit", _run_models_that_fit, "$NNSCONS_FWMODELSCOMSTR"),
            emitter=depends_on("firmware")),
        "NnsFirmwareFits": SCons.Builder.Builder(
            action=_stage_action("fits", _run_fits, "$NNSCONS_FWFITSCOMSTR"), emitter=depends_on("firmware")),
        "NnsFirmwareReport": SCons.Builder.Builder(
            action=_stage_action("run", _run_firmware, "$NNSCONS_FWRUNCOMSTR"), emitter=depends_on("firmware")),
        "NnsFirmwareCheckReport": SCons.Builder.Builder(
            action=_stage_action("check", _run_check, "$NNSCONS_FWCHECKCOMSTR"), emitter=depends_on("firmware")),
    })
    for method in (NnsconsFirmwareInputs, NnsconsFirmware, NnsconsFirmwareRun, NnsconsFirmwareCheck,
                   NnsconsFirmwareGroups):
        env.AddMethod(method, method.__name__)
    env.AddMethod(lambda env, *args, **kw: FirmwareModel(*args, **kw), "NnsconsFirmwareModel")
