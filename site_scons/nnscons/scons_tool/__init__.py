"""The SCons tool ``nnscons``: trained models and their calibration sets as ordinary build sources.

Load it from any SConstruct, with nnscons installed (``pip install <checkout>``) or from a checkout::

    import nnscons
    env = Environment(tools=["default"])
    env.Tool("nnscons_tool", toolpath=[nnscons.tool_path()])

(inside this repository ``tools=["default", "nnscons_tool"]`` finds it in ``site_scons/site_tools``). Then one call per
model gives a static library and the folder of its header, and one call the kernel library the models share::

    kernels = env.NnsconsKernels()                                   # CMSIS-NN (the portable one by default)
    kws, kws_include = env.NnsconsLibrary("kws", "models/kws/model.tflite")
    digits, digits_include = env.NnsconsLibrary("digits", "models/digits/model.onnx", calib="models/digits/calib.npz",
                                                options={"quant": "int8", "range": "percentile:99.99"})
    env.Program("app", ["main.c"], CPPPATH=[kws_include, digits_include], LIBS=[kws, digits, kernels, "m"])

Public pseudo-builders (each documented where it is defined):

``NnsconsModel(name, model, calib=, options=, gen_dir=)``   the target-independent chain up to the C sources
                                                            (:mod:`.chain`)
``NnsconsLibrary(name or chain, model, calib=, options=, gen_dir=, build_dir=)``
                                                            the model compiled by this environment (:mod:`.libraries`)
``NnsconsKernels(cmsis=, build_dir=)``                      the kernel library (:mod:`.libraries`)
``NnsconsTargetEnv(target, opt=, sanitize=)``               a clone compiling for a target of ``targets/``
``NnsconsBoardProgram(elf, sources, board=, **overrides)``  your program linked for a board (:mod:`.board`)
``NnsconsBoardRun(program, alias="run")``                   an alias running it in the board's emulator

and, for proving and running models as this repository does, ``NnsconsHostTest``, ``NnsconsTraceTest``,
``NnsconsHostProof`` (check, diagnostics, report: :mod:`.host`), ``NnsconsFirmware*`` (:mod:`.firmware`), the
table aliases and ``NnsconsFailure`` (:mod:`.tables`); for a model with an audio front end ``NnsconsFeatures``,
``NnsconsDsp``, ``NnsconsFrontendLibrary``, ``NnsconsFrontendTest`` and ``NnsconsFrontendCheck``
(:mod:`.frontend`).

Construction variables (``SetDefault``, so a user's value wins): ``NNSCONS_WARNINGS`` (``[]``; a target's
``warnings`` in ``NnsconsTargetEnv``), the flags that generated code, the kernels and the runtime compile with on
top of ``CCFLAGS`` (a user's own sources get ``CCFLAGS`` alone); ``NNSCONS_BUILD_DIR`` (``build``), the folder of
generated chains and default libraries; ``NNSCONS_CMSIS`` (``nnscons.cmsis_path()``), the CMSIS-NN checkout
generated code compiles against; ``NNSCONS_TARGETS`` (``nnscons.targets_path()``), where ``NnsconsTargetEnv``
looks up target names; what each step prints, ``NNSCONS_<KIND>COMSTR`` (``NNSCONS_IMPORTCOMSTR``,
``NNSCONS_CODEGENCOMSTR``, ... ``NNSCONS_FWRUNCOMSTR``: set one to ``""`` to silence it); ``NNSCONS_CMSIS_DSP``
(empty: what ``nnscons fetch-dsp`` unpacked), the CMSIS-DSP tree a front end is built with.

The tool's decider is SCons' ``content`` decider plus one check (:mod:`.records`): a target whose file is not the
one SCons recorded (a killed build, a failed step's output) is rebuilt.

The tool is thin (DESIGN.md section 2): every action calls one function of :mod:`nnscons.pipeline` (or
:mod:`nnscons.firmware`), the same functions the ``nnscons`` command calls, so SCons and CMake builds of a model
produce identical sources. What the tool adds is the graph's honesty (DESIGN.md section 1): module dependencies,
options as Value nodes, fixed action signatures (:mod:`.actions`), early cutoff through deterministic outputs.
"""
from __future__ import annotations

from .. import cmsis_path, targets_path
from . import board, chain, firmware, frontend, host, libraries, records, tables
from .chain import ModelNodes
from .libraries import ModelLibrary

__all__ = ["generate", "exists", "ModelNodes", "ModelLibrary"]


def generate(env) -> None:
    env.SetDefault(NNSCONS_BUILD_DIR="build", NNSCONS_CMSIS=cmsis_path(), NNSCONS_TARGETS=targets_path(),
                   NNSCONS_WARNINGS=[])
    records.use_record_checking_decider(env)
    chain.add_builders(env)
    libraries.add_methods(env)
    frontend.add_builders(env)
    host.add_builders(env)
    firmware.add_builders(env)
    tables.add_methods(env)
    board.add_methods(env)


REQUIRED_PACKAGES = ("jinja2", "numpy", "onnx", "tflite")


def exists(env) -> bool:
    """Whether the packages the stages import are installed (found, not imported: that is the actions' cost)."""
    import importlib.util
    return all(importlib.util.find_spec(p) is not None for p in REQUIRED_PACKAGES)
