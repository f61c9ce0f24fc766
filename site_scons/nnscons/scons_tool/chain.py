"""A model's chain as SCons nodes: import -> stats -> ranges -> quantize -> codegen (DESIGN.md section 1).

``NnsconsModel`` makes the nodes of one model under ``gen_dir`` (default ``build/<name>``)::

    graph.json, params.npz          NnsImport     the model file
    stats.npz, stats.txt            NnsStats      graph + calibration set
    ranges.json                     NnsRanges     graph + stats + Value(quant, range)
    qtable.json, .txt, qparams.npz  NnsQuantize   graph + ranges + Value(quant, api)
    src/<name>.h, _model.c, _weights.c, plan.json   NnsGenerate   graph + qtable + Value(api)

They are target-independent: every environment that compiles the model (``NnsconsLibrary``) shares them. Each
builder calls one function of :mod:`nnscons.pipeline`; each node depends on the library modules its stage runs;
options enter as ``Value`` nodes holding exactly the options that shape that node.
"""
from __future__ import annotations

import json
import os
from typing import Any, Mapping, Optional

import SCons.Builder
import SCons.Errors

from .. import fileio, pipeline
from .. import options as nn_options
from ..errors import NnsconsError
from .actions import stage_action


class ModelNodes:
    """The nodes of one model's chain, and what it was made from."""

    def __init__(self, name: str, gen_dir: str, model: str, calib: Optional[str], options: dict[str, str]) -> None:
        self.name = name
        self.gen_dir = gen_dir
        self.model = model
        self.calib = calib
        self.options = options          # every option, resolved
        self.graph: list = []           # graph.json, params.npz
        self.stats: list = []           # stats.npz, stats.txt (with a calibration set)
        self.ranges: list = []          # ranges.json (with a calibration set)
        self.qtable: list = []          # qtable.json, qtable.txt, qparams.npz
        self.sources: list = []         # generated C: <name>.h, <name>_model.c, <name>_weights.c
        self.plan: Any = None           # plan.json: the arena plan

    @property
    def header(self) -> Any:
        return self.sources[0]

    @property
    def all(self) -> list:
        """Every node of the chain."""
        return [*self.graph, *self.stats, *self.ranges, *self.qtable, *self.sources, self.plan]


def _options_node(env, values: Mapping[str, str], stage: str):
    """A Value node holding exactly the options that shape one stage's output."""
    return env.Value(fileio.canonical_json(nn_options.for_stage(values, stage)).strip())


def NnsconsModel(env, name: str, model: str, calib: Optional[str] = None,
                 options: Optional[Mapping[str, Any]] = None, gen_dir: Optional[str] = None) -> ModelNodes:
    """Pseudo-builder: the whole chain of one model, up to its generated C sources, in ``gen_dir`` (default
    ``$NNSCONS_BUILD_DIR/<name>``). ``options``: any of ``nnscons.options.OPTIONS`` (the others take their
    defaults). Calling it again with the same ``gen_dir`` and inputs returns the same nodes; with other inputs it
    is an error."""
    try:
        values = nn_options.resolve({}, dict(options or {}))
    except NnsconsError as e:  # a bad option value
        raise SCons.Errors.UserError(f"NnsconsModel({name!r}): {e}") from None
    gen_dir = gen_dir or os.path.join(env.subst("$NNSCONS_BUILD_DIR"), name)
    anchor = env.File(os.path.join(gen_dir, "graph.json"))
    made = getattr(anchor.attributes, "nnscons_model", None)
    key = (name, str(env.File(model)), str(env.File(calib)) if calib else None, values)
    if made is not None:
        if made[0] != key:
            raise SCons.Errors.UserError(f"NnsconsModel({name!r}): {gen_dir} already holds the chain of "
                                         f"{made[0][1]} with other inputs or options; give another gen_dir")
        return made[1]
    nodes = _chain(env, name, model, calib, values, gen_dir)
    anchor.attributes.nnscons_model = (key, nodes)
    return nodes


def _chain(env, name: str, model: str, calib: Optional[str], values: dict[str, str], gen_dir: str) -> ModelNodes:
    nodes = ModelNodes(name, gen_dir, model, calib, values)
    nodes.graph = env.NnsImport(os.path.join(gen_dir, "graph.json"), model)
    quantize_sources = list(nodes.graph)
    if calib:
        nodes.stats = env.NnsStats(os.path.join(gen_dir, "stats.npz"), nodes.graph + [calib])
        search = [nodes.graph[1], calib] if values["range"] == "search" else []
        nodes.ranges = env.NnsRanges(os.path.join(gen_dir, "ranges.json"),
                                     [nodes.graph[0], nodes.stats[0], _options_node(env, values, "ranges")] + search)
        quantize_sources.append(nodes.ranges[0])
    nodes.qtable = env.NnsQuantize(os.path.join(gen_dir, "qtable.json"),
                                   quantize_sources + [_options_node(env, values, "quantize")],
                                   NNSCONS_MODEL_DIR=os.path.dirname(str(model)))
    generated = env.NnsGenerate(os.path.join(gen_dir, "src", name + ".h"),
                                [nodes.graph[0], nodes.qtable[0], nodes.qtable[2],
                                 _options_node(env, values, "codegen")],
                                NNSCONS_MODEL_NAME=name)
    nodes.sources, nodes.plan = generated[:-1], generated[-1]
    return nodes


# ---- the builders ---------------------------------------------------------------------------------------------------
def _run_import(target, source, env) -> None:
    pipeline.import_stage(str(source[0]), str(target[0]), str(target[1]))


def _import_emitter(target, source, env):
    out_dir = os.path.dirname(str(target[0]))
    targets = [os.path.join(out_dir, "graph.json"), os.path.join(out_dir, "params.npz")]
    env.Depends(targets, pipeline.stage_sources("import"))
    return targets, source


def _run_stats(target, source, env) -> None:
    pipeline.stats_stage(str(source[0]), str(source[1]), str(source[2]), str(target[0]), str(target[1]))


def _stats_emitter(target, source, env):
    out_dir = os.path.dirname(str(target[0]))
    targets = [os.path.join(out_dir, "stats.npz"), os.path.join(out_dir, "stats.txt")]
    env.Depends(targets, pipeline.stage_sources("stats"))
    return targets, source


# range=search also reads the weights and the calibration set (sources 4 and 5), and runs more modules.
def _run_ranges(target, source, env) -> None:
    extra = (str(source[3]), str(source[4])) if len(source) == 5 else ()
    pipeline.ranges_stage(str(source[0]), str(source[1]), json.loads(source[2].read()), str(target[0]), *extra)


def _ranges_emitter(target, source, env):
    env.Depends(target, pipeline.stage_sources("ranges_search" if len(source) == 5 else "ranges"))
    return target, source


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


def _run_codegen(target, source, env) -> None:
    options = json.loads(source[3].read())
    pipeline.codegen_stage(env["NNSCONS_MODEL_NAME"], str(source[0]), str(source[1]), str(source[2]), options,
                           os.path.dirname(str(target[0])), str(target[-1]))


def _codegen_emitter(target, source, env):
    src_dir = os.path.dirname(str(target[0]))
    targets = [os.path.join(src_dir, f) for f in pipeline.codegen_outputs(env["NNSCONS_MODEL_NAME"])]
    targets.append(os.path.join(os.path.dirname(src_dir), "plan.json"))
    env.Depends(targets, pipeline.stage_sources("codegen"))
    return targets, source


def add_builders(env) -> None:
    env.Append(BUILDERS={
        "NnsImport": SCons.Builder.Builder(
            action=stage_action("import", _run_import, "nnscons import    $SOURCE"), emitter=_import_emitter),
        "NnsStats": SCons.Builder.Builder(
            action=stage_action("stats", _run_stats, "nnscons stats     $TARGET"), emitter=_stats_emitter),
        "NnsRanges": SCons.Builder.Builder(
            action=stage_action("ranges", _run_ranges, "nnscons ranges    $TARGET"), emitter=_ranges_emitter),
        "NnsQuantize": SCons.Builder.Builder(
            action=stage_action("quantize", _run_quantize, "nnscons quantize  $TARGET"), emitter=_quantize_emitter),
        "NnsGenerate": SCons.Builder.Builder(
            action=stage_action("codegen", _run_codegen, "nnscons codegen   $TARGET"), emitter=_codegen_emitter),
    })
    env.AddMethod(NnsconsModel, "NnsconsModel")
