"""SCons tool ``nnscons``: a trained model and its calibration set as ordinary build sources.

Load it with ``env.Tool('nnscons')`` (from this repository's site_scons, or ``toolpath=[...]``) and call the
pseudo-builder::

    nodes = env.NnsconsModel('kws', 'models/kws/model.tflite', calib='models/kws/calib.npz',
                             options={'quant': 'int8', 'range': 'minmax'}, build_dir='build/kws')
    nodes.qtable   # [qtable.json, qtable.txt, qparams.npz]

The tool is thin: every action calls one function of :mod:`nnscons.pipeline`. What it adds is the graph's
honesty (DESIGN.md section 1):

* each node depends on the library modules its stage runs (``pipeline.STAGE_MODULES``), because SCons signs a
  Python action by its own bytecode only;
* options enter as ``Value`` nodes holding exactly the options that shape that node, so changing one rebuilds
  only what it affects;
* actions carry a fixed signature string instead of their bytecode, so a shared CacheDir hits across Python
  versions (scons-facts.md section 6); editing the action code is still caught through the module
  dependencies above;
* a stage's error is one line naming the file (no traceback) and fails the build.
"""
from __future__ import annotations

import functools
import json
import os
import sys
from typing import Any, Callable, Mapping, Optional

import SCons.Action
import SCons.Builder
import SCons.Errors

_SITE_SCONS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _SITE_SCONS not in sys.path:  # when loaded through toolpath= from another project
    sys.path.insert(0, _SITE_SCONS)
# SCons registers a tool module in sys.modules under the tool's name, which is also the library's name. Give the
# name back to the library, or its relative imports would resolve into this folder. (SCons keeps its own
# reference to this module.)
# While SCons loads a tool, its site_tools folder comes first on sys.path, so import from site_scons explicitly.
if __name__ == "nnscons" and sys.modules.get("nnscons") is sys.modules.get(__name__):
    del sys.modules["nnscons"]
sys.path.insert(0, _SITE_SCONS)
try:
    from nnscons import fileio, pipeline  # noqa: E402
    from nnscons.errors import NnsconsError  # noqa: E402
finally:
    sys.path.remove(_SITE_SCONS)

ACTION_VERSION = "1"  # bump when a wrapper below changes in a way the module dependencies do not show


def _stage_action(stage: str, run: Callable[[list, list, Any], None], comstr: str) -> SCons.Action.Action:
    """A Python action with a stable signature, reporting NnsconsError as one line."""

    def execute(target, source, env):
        try:
            run(target, source, env)
        except NnsconsError as e:
            raise SCons.Errors.BuildError(node=target[0], errstr=str(e), exitstatus=1) from None
        return 0

    # A functools.partial has no bytecode of its own, so SCons asks it for get_contents() instead.
    action = functools.partial(execute)
    action.get_contents = lambda target, source, env: f"nnscons {stage} action v{ACTION_VERSION}".encode()
    return SCons.Action.Action(action, comstr)


# ---- import: model file -> graph.json, params.npz ----------------------------------------------------------
def _run_import(target, source, env) -> None:
    pipeline.import_stage(str(source[0]), str(target[0]), str(target[1]))


def _import_emitter(target, source, env):
    out_dir = os.path.dirname(str(target[0]))
    targets = [os.path.join(out_dir, "graph.json"), os.path.join(out_dir, "params.npz")]
    env.Depends(targets, pipeline.stage_sources("import"))
    return targets, source


# ---- stats: graph + calibration set -> stats.npz, stats.txt ------------------------------------------------
def _run_stats(target, source, env) -> None:
    pipeline.stats_stage(str(source[0]), str(source[1]), str(source[2]), str(target[0]), str(target[1]))


def _stats_emitter(target, source, env):
    out_dir = os.path.dirname(str(target[0]))
    targets = [os.path.join(out_dir, "stats.npz"), os.path.join(out_dir, "stats.txt")]
    env.Depends(targets, pipeline.stage_sources("stats"))
    return targets, source


# ---- ranges: graph + stats + (quant, range) -> ranges.json --------------------------------------------------
def _run_ranges(target, source, env) -> None:
    pipeline.ranges_stage(str(source[0]), str(source[1]), json.loads(source[2].read()), str(target[0]))


def _ranges_emitter(target, source, env):
    env.Depends(target, pipeline.stage_sources("ranges"))
    return target, source


# ---- quantize: graph + ranges + quant -> qtable.json, qtable.txt, qparams.npz ------------------------------
def _run_quantize(target, source, env) -> None:
    options = json.loads(source[-1].read())
    ranges = str(source[2]) if len(source) == 4 else None
    pipeline.quantize_stage(str(source[0]), str(source[1]), ranges, options,
                            str(target[0]), str(target[1]), str(target[2]), model_dir=env.get("NNSCONS_MODEL_DIR"))


def _quantize_emitter(target, source, env):
    out_dir = os.path.dirname(str(target[0]))
    targets = [os.path.join(out_dir, n) for n in ("qtable.json", "qtable.txt", "qparams.npz")]
    env.Depends(targets, pipeline.stage_sources("quantize"))
    return targets, source


class ModelNodes:
    """The nodes one model's chain produced (None where a stage was not built)."""

    def __init__(self, name: str, build_dir: str) -> None:
        self.name = name
        self.build_dir = build_dir
        self.graph: list = []
        self.stats: list = []
        self.ranges: list = []
        self.qtable: list = []
        self.sources: list = []          # generated C, header first
        self.plan: Optional[Any] = None

    @property
    def all(self) -> list:
        return [*self.graph, *self.stats, *self.ranges, *self.qtable]


def NnsconsModel(env, name: str, model: str, calib: Optional[str] = None,
                 options: Optional[Mapping[str, str]] = None, build_dir: Optional[str] = None) -> ModelNodes:
    """Pseudo-builder: the whole chain for one model. ``options`` are the resolved per-model options
    (nnscons.options.resolve)."""
    from nnscons import options as nn_options
    values = nn_options.resolve({}, dict(options or {}))
    build_dir = build_dir or os.path.join("build", name)
    nodes = ModelNodes(name, build_dir)
    nodes.graph = env.NnsImport(os.path.join(build_dir, "graph.json"), model)
    sources = list(nodes.graph)
    if calib:
        nodes.stats = env.NnsStats(os.path.join(build_dir, "stats.npz"), nodes.graph + [calib])
        nodes.ranges = env.NnsRanges(os.path.join(build_dir, "ranges.json"),
                                     [nodes.graph[0], nodes.stats[0], _options_node(env, values, "ranges")])
        sources.append(nodes.ranges[0])
    nodes.qtable = env.NnsQuantize(os.path.join(build_dir, "qtable.json"),
                                   sources + [_options_node(env, values, "quantize")],
                                   NNSCONS_MODEL_DIR=os.path.dirname(str(model)))
    return nodes


def _options_node(env, values: Mapping[str, str], stage: str):
    """A Value node holding exactly the options that shape one stage's output."""
    from nnscons import options as nn_options
    return env.Value(fileio.canonical_json(nn_options.for_stage(values, stage)).strip())


# ---- codegen: graph + qtable -> C sources + plan.json ----------------------------------------------------------
def _run_codegen(target, source, env) -> None:
    options = json.loads(source[3].read())
    pipeline.codegen_stage(env["NNSCONS_MODEL_NAME"], str(source[0]), str(source[1]), str(source[2]), options,
                           os.path.dirname(str(target[0])), str(target[-1]))


def _codegen_emitter(target, source, env):
    src_dir = os.path.dirname(str(target[0]))
    name = env["NNSCONS_MODEL_NAME"]
    targets = [os.path.join(src_dir, f) for f in pipeline.codegen_outputs(name)]
    targets.append(os.path.join(os.path.dirname(src_dir), "plan.json"))
    env.Depends(targets, pipeline.stage_sources("codegen"))
    return targets, source


# ---- check: host test binaries + model + test set -> report.json ---------------------------------------------
def _run_check(target, source, env) -> None:
    binary, sanitized, model, graph, params, qtable = (str(s) for s in source[:6])
    test = str(source[6]) if len(source) > 6 else None
    pipeline.check_stage(env["NNSCONS_MODEL_NAME"], os.path.abspath(binary), os.path.abspath(sanitized), model,
                         graph, params, qtable, test, str(target[0]))


def _check_emitter(target, source, env):
    env.Depends(target, pipeline.stage_sources("check"))
    return target, source


def NnsconsCodegen(env, nodes: ModelNodes, options: Mapping[str, str]) -> list:
    """The generated C sources of a model (header first), from its quantization tables."""
    src = env.NnsGenerate(os.path.join(nodes.build_dir, "src", nodes.name + ".h"),
                          [nodes.graph[0], nodes.qtable[0], nodes.qtable[2], _options_node(env, options, "codegen")],
                          NNSCONS_MODEL_NAME=nodes.name)
    nodes.sources = src[:-1]
    nodes.plan = src[-1]
    return src


def NnsconsKernelLibrary(env, cmsis_dir: str, build_dir: str, strict: bool = True):
    """CMSIS-NN (the project's portable cmsis/ or a real checkout) as a static library for one target.
    Every integer source under Source/*/ is compiled; the float ones (*_f16.c, *_f32.c, *_flt.c) are not."""
    root = env.Dir(cmsis_dir)
    sources = [f for f in sorted(root.glob("Source/*/*.c"), key=str)
               if not str(f).endswith(("_f16.c", "_f32.c", "_flt.c"))]
    if not sources:
        raise SCons.Errors.UserError(f"{cmsis_dir}: no CMSIS-NN sources under Source/*/ (cmsis_nn=PATH must "
                                     "point at a checkout with Include/ and Source/)")
    flags = {} if strict else {"CCFLAGS": [f for f in env["CCFLAGS"] if f not in env.get("NNSCONS_WARNINGS", [])]}
    objects = [env.Object(os.path.join(build_dir, "obj", f.dir.name, os.path.splitext(f.name)[0]), f,
                          CPPPATH=[root.Dir("Include")], **flags) for f in sources]
    return env.StaticLibrary(os.path.join(build_dir, "cmsisnn"), objects)


def NnsconsModelLibrary(env, nodes: ModelNodes, build_dir: str, cmsis_include):
    """A model's generated C compiled for one target into build/<target>/<model>/lib<model>.a. Objects get
    explicit per-target paths: the same generated file is compiled by several targets."""
    c_files = [s for s in nodes.sources if str(s).endswith(".c")]
    objects = [env.Object(os.path.join(build_dir, os.path.splitext(os.path.basename(str(c)))[0]), c,
                          CPPPATH=[cmsis_include]) for c in c_files]
    return env.StaticLibrary(os.path.join(build_dir, nodes.name), objects)


def NnsconsHostTest(env, nodes: ModelNodes, build_dir: str, model_lib, kernel_lib, cmsis_include):
    """build/host/<model>/<model>_test IN.npy OUT.npy: the generic test main linked with the model."""
    header = nodes.sources[0]
    main = env.Object(os.path.join(build_dir, nodes.name + "_test_main"),
                      os.path.join(str(pipeline.RUNTIME_DIR), "nnscons_test_main.c"),
                      CPPPATH=[header.dir, cmsis_include], CPPDEFINES=[("NNSCONS_MODEL_INFO", nodes.name + "_info")],
                      CCFLAGS=env["CCFLAGS"] + ["-include", nodes.name + ".h"])
    env.Depends(main, header)
    return env.Program(os.path.join(build_dir, nodes.name + "_test"), [main, model_lib, kernel_lib],
                       LIBS=env.get("LIBS", []))


def NnsconsCheck(env, nodes: ModelNodes, binary, sanitized, model: str, test: Optional[str], build_dir: str):
    sources = [binary, sanitized, model, nodes.graph[0], nodes.graph[1], nodes.qtable[0]] + ([test] if test else [])
    return env.NnsCheckReport(os.path.join(build_dir, "report.json"), sources, NNSCONS_MODEL_NAME=nodes.name)


def generate(env) -> None:
    env.Append(BUILDERS={
        "NnsImport": SCons.Builder.Builder(
            action=_stage_action("import", _run_import, "nnscons import    $SOURCE"),
            emitter=_import_emitter),
        "NnsStats": SCons.Builder.Builder(
            action=_stage_action("stats", _run_stats, "nnscons stats     $TARGET"),
            emitter=_stats_emitter),
        "NnsRanges": SCons.Builder.Builder(
            action=_stage_action("ranges", _run_ranges, "nnscons ranges    $TARGET"),
            emitter=_ranges_emitter),
        "NnsQuantize": SCons.Builder.Builder(
            action=_stage_action("quantize", _run_quantize, "nnscons quantize  $TARGET"),
            emitter=_quantize_emitter),
        "NnsGenerate": SCons.Builder.Builder(
            action=_stage_action("codegen", _run_codegen, "nnscons codegen   $TARGET"),
            emitter=_codegen_emitter),
        "NnsCheckReport": SCons.Builder.Builder(
            action=_stage_action("check", _run_check, "nnscons check     $TARGET"),
            emitter=_check_emitter),
    })
    for method in (NnsconsModel, NnsconsCodegen, NnsconsKernelLibrary, NnsconsModelLibrary, NnsconsHostTest,
                   NnsconsCheck):
        env.AddMethod(method, method.__name__)
    env.Tool("firmware", toolpath=[os.path.dirname(os.path.abspath(__file__))])  # Cortex-M: firmware.py beside


def exists(env) -> bool:
    try:
        import numpy  # noqa: F401
        import onnx  # noqa: F401
        import tflite  # noqa: F401
    except ImportError:
        return False
    return True
