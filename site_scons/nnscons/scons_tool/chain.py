"""A model's chain as SCons nodes: one builder call per step of :func:`nnscons.pipeline.model_steps`.

``NnsconsModel`` makes the nodes of one model under ``gen_dir`` (default ``build/<name>``): graph.json and
params.npz, stats.npz and stats.txt (with a calibration set), ranges.json, qtable.json/.txt and qparams.npz, and
src/<name>.h, _model.c, _weights.c with plan.json. They are target-independent: every environment that compiles
the model (``NnsconsLibrary``) shares them. The graph is not stated here: :func:`add_step` maps any step to nodes
(its inputs as sources, its outputs as targets, its options as a ``Value`` node, its library modules as
dependencies) and the action runs the step's stage function with the step's own named files.
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Optional

import SCons.Builder
import SCons.Errors

from .. import options as nn_options
from .. import pipeline
from ..errors import NnsconsError
from .actions import stage_action

# What each step kind prints (``$NNSCONS_<KIND>COMSTR``, set with SetDefault: a user's value wins)
COMSTRS = {
    "import": "nnscons import    $SOURCE", "stats": "nnscons stats     $TARGET", "ranges": "nnscons ranges    $TARGET",
    "quantize": "nnscons quantize  $TARGET", "codegen": "nnscons codegen   $TARGET",
    "check": "nnscons check     $TARGET", "diagnostics": "nnscons diagnose  $TARGET",
    "report_html": "nnscons report    $TARGET", "firmware_inputs": "nnscons inputs    $TARGET",
    "features": "nnscons features  $TARGET", "frontend": "nnscons frontend  $TARGET",
    "frontend_check": "nnscons fe-check  $TARGET",
}


class ModelNodes:
    """The nodes of one model's chain by the names the steps give them (``outputs["qtable_json"]``), and what
    it was made from. ``graph``, ``stats``, ``ranges``, ``qtable``, ``sources``, ``plan``: the same grouped."""

    def __init__(self, name: str, gen_dir: str, model: str, calib: Optional[str], options: dict[str, str],
                 outputs: dict[str, Any]) -> None:
        self.name = name
        self.gen_dir = gen_dir
        self.model = model
        self.calib = calib
        self.options = options          # every option, as given (resolved against the defaults)
        self.outputs = outputs          # output name -> node
        self.frontend: Optional[str] = None     # the audio front end's spec text, when the model reads one

    def _nodes(self, *names: str) -> list:
        return [self.outputs[n] for n in names if n in self.outputs]

    @property
    def graph(self) -> list:
        return self._nodes("graph_json", "params_npz")

    @property
    def stats(self) -> list:
        return self._nodes("stats_npz", "stats_txt")

    @property
    def ranges(self) -> list:
        return self._nodes("ranges_json")

    @property
    def qtable(self) -> list:
        return self._nodes("qtable_json", "qtable_txt", "qparams_npz")

    @property
    def sources(self) -> list:
        """The generated C: header first."""
        return self._nodes("header", "model_c", "weights_c")

    @property
    def plan(self) -> Any:
        return self.outputs["plan_json"]

    @property
    def header(self) -> Any:
        return self.outputs["header"]

    @property
    def all(self) -> list:
        """Every node of the chain."""
        return list(self.outputs.values())


def add_step(env, step: pipeline.Step) -> dict[str, Any]:
    """The nodes of one step: its outputs by name. Missing optional inputs (None) are no sources."""
    sources = [node for node in step.inputs.values() if node is not None]
    sources.append(env.Value(step.value_text()))
    targets = env.NnsconsStep(list(step.outputs.values()), sources, NNSCONS_STEP=step,
                              NNSCONS_STEPCOMSTR=f"$NNSCONS_{step.stage.upper()}COMSTR")
    env.Depends(targets, step.module_files())
    return dict(zip(step.outputs, targets))


def NnsconsModel(env, name: str, model: str, calib: Optional[str] = None,
                 options: Optional[Mapping[str, Any]] = None, gen_dir: Optional[str] = None,
                 frontend: Optional[str] = None) -> ModelNodes:
    """Pseudo-builder: the whole chain of one model, up to its generated C sources, in ``gen_dir`` (default
    ``$NNSCONS_BUILD_DIR/<name>``). ``options``: any of ``nnscons.options.OPTIONS`` (the others take their
    defaults). Calling it again with the same ``gen_dir`` and inputs returns the same nodes; with other inputs it
    is an error. ``frontend``: the model reads an audio front end's features (a ``nnscons.frontend.spec_text``;
    the calibration set is raw audio)."""
    try:
        values = nn_options.resolve({}, dict(options or {}))
    except NnsconsError as e:  # a bad option value
        raise SCons.Errors.UserError(f"NnsconsModel({name!r}): {e}") from None
    gen_dir = gen_dir or os.path.join(env.subst("$NNSCONS_BUILD_DIR"), name)
    anchor = env.File(os.path.join(gen_dir, "graph.json"))
    made = getattr(anchor.attributes, "nnscons_model", None)
    key = (name, str(env.File(model)), str(env.File(calib)) if calib else None, values, frontend)
    if made is not None:
        if made[0] != key:
            raise SCons.Errors.UserError(f"NnsconsModel({name!r}): {gen_dir} already holds the chain of "
                                         f"{made[0][1]} with other inputs or options; give another gen_dir")
        return made[1]
    outputs: dict[str, Any] = {}
    for step in pipeline.model_steps(name, str(model), str(calib) if calib else None, values, gen_dir,
                                     frontend=frontend):
        outputs.update(add_step(env, step))
    nodes = ModelNodes(name, gen_dir, model, calib, values, outputs)
    nodes.frontend = frontend
    anchor.attributes.nnscons_model = (key, nodes)
    return nodes


def _run_step(target, source, env) -> None:
    from ..pipeline.runner import run_step
    run_step(env["NNSCONS_STEP"])


def add_builders(env) -> None:
    env.SetDefault(**{f"NNSCONS_{kind.upper()}COMSTR": text for kind, text in COMSTRS.items()})
    env.Append(BUILDERS={"NnsconsStep": SCons.Builder.Builder(
        action=stage_action("step", _run_step, "$NNSCONS_STEPCOMSTR"))})
    env.AddMethod(NnsconsModel, "NnsconsModel")
