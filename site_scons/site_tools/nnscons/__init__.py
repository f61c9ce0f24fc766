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
    })
    env.AddMethod(NnsconsModel, "NnsconsModel")


def exists(env) -> bool:
    try:
        import numpy  # noqa: F401
        import onnx  # noqa: F401
        import tflite  # noqa: F401
    except ImportError:
        return False
    return True
