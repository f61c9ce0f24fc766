"""The graph, stated once: a model's chain as a list of steps (DESIGN.md section 1).

A :class:`Step` is one node of the graph: its stage function (by stage name, :data:`nnscons.pipeline.stages.STAGES`),
its named input and output files, the options that shape its outputs, and the library modules whose source shapes
them. :func:`model_steps` is the chain of one model; :func:`host_proof_steps` what proves a host test binary. The
faces map steps, they do not know the graph: the SCons tool makes one builder call per step (named sources and
targets, the options as a ``Value`` node, the modules as dependencies), the CLI, CMake and the experiments run them
with :mod:`nnscons.pipeline.runner`, which reuses outputs that are up to date.

Light on purpose (no numpy, no model libraries): SCons imports this while it reads the SConstruct.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from .. import options as nn_options
from .modules import STAGE_MODULES, stage_sources


@dataclass(frozen=True)
class Step:
    """One node of the graph. ``inputs`` and ``outputs`` map the stage function's argument names to files (an
    input may also be a build node when the SCons tool makes the step); ``options`` are the resolved options that
    shape the outputs; ``params`` are other fixed arguments (the model's C name, the folder to name in errors)."""

    stage: str
    inputs: Mapping[str, Any]
    outputs: Mapping[str, str]
    options: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    modules: str = ""                      # key of STAGE_MODULES (default: the stage's own)

    @property
    def module_key(self) -> str:
        return self.modules or self.stage

    def module_files(self) -> list[str]:
        """The library files (and templates) whose content shapes the outputs."""
        return stage_sources(self.module_key)

    def value_text(self) -> str:
        """What shapes the outputs besides the input files and the library: the step kind, its options and
        parameters, as one canonical line (what the SCons ``Value`` node holds)."""
        return json.dumps({"stage": self.stage, "options": dict(self.options), "params": dict(self.params)},
                          sort_keys=True, separators=(",", ":"))

    def arguments(self) -> dict[str, Any]:
        """The keyword arguments of the stage function."""
        args: dict[str, Any] = {k: None if v is None else str(v) for k, v in self.inputs.items()}
        args.update(self.outputs)
        args.update(self.params)
        if self.stage in OPTION_STAGES:
            args["options"] = dict(self.options)
        return args


OPTION_STAGES = ("ranges", "quantize", "codegen")      # stage functions that take the options


def codegen_outputs(name: str) -> list[str]:
    """File names code generation writes into the source folder, header first."""
    return [f"{name}.h", f"{name}_model.c", f"{name}_weights.c"]


def model_steps(name: str, model: str, calib: Optional[str], options: Mapping[str, str], gen_dir: str,
                upstream_dir: Optional[str] = None, frontend: Optional[str] = None) -> list[Step]:
    """The chain of one model, in order: import -> stats -> ranges -> quantize -> codegen.

    ``options`` are resolved (``nnscons.options.resolve``); each step gets only those that shape its outputs.
    Outputs go to ``gen_dir`` (``build/<name>`` in this repository); ``upstream_dir`` puts the import and the
    statistics elsewhere (the experiments share one model's across configurations). The rules of the graph:
    statistics, and so ranges, exist only with a calibration set; ``range=search`` also reads the weights and the
    calibration set (it evaluates quantized networks) and depends on more of the library. ``frontend`` (a
    :func:`nnscons.frontend.spec_text`): the model reads an audio front end's features; its C is generated, and
    the calibration set holds raw audio, turned into features before the statistics.
    """
    up = upstream_dir or gen_dir
    graph_json, params_npz = os.path.join(up, "graph.json"), os.path.join(up, "params.npz")
    steps = [Step("import", {"model": model}, {"graph_json": graph_json, "params_npz": params_npz})]
    if frontend:
        steps.append(Step("frontend", {}, {f"frontend_{kind}": os.path.join(gen_dir, "frontend", f"{name}_frontend."
                                                                            f"{kind}") for kind in ("c", "h")},
                          params={"name": name, "frontend": frontend}))
        if calib:
            steps.append(features_step(graph_json, calib, os.path.join(up, "features", "calib.npz"), frontend))
            calib = steps[-1].outputs["features_npz"]
    ranges_json = None
    if calib:
        stats_npz = os.path.join(up, "stats.npz")
        steps.append(Step("stats", {"graph_json": graph_json, "params_npz": params_npz, "calib_npz": calib},
                          {"stats_npz": stats_npz, "stats_txt": os.path.join(up, "stats.txt")}))
        search = options["range"] == "search"
        ranges_json = os.path.join(gen_dir, "ranges.json")
        steps.append(Step("ranges", {"graph_json": graph_json, "stats_npz": stats_npz,
                                     **({"params_npz": params_npz, "calib_npz": calib} if search else {})},
                          {"ranges_json": ranges_json}, nn_options.for_stage(options, "ranges"),
                          modules="ranges_search" if search else ""))
    qtable_json, qparams_npz = os.path.join(gen_dir, "qtable.json"), os.path.join(gen_dir, "qparams.npz")
    steps.append(Step("quantize", {"graph_json": graph_json, "params_npz": params_npz, "ranges_json": ranges_json},
                      {"qtable_json": qtable_json, "qtable_txt": os.path.join(gen_dir, "qtable.txt"),
                       "qparams_npz": qparams_npz},
                      nn_options.for_stage(options, "quantize"), {"model_dir": os.path.dirname(model) or "."}))
    header, model_c, weights_c = (os.path.join(gen_dir, "src", f) for f in codegen_outputs(name))
    steps.append(Step("codegen", {"graph_json": graph_json, "qtable_json": qtable_json, "qparams_npz": qparams_npz},
                      {"header": header, "model_c": model_c, "weights_c": weights_c,
                       "plan_json": os.path.join(gen_dir, "plan.json")},
                      nn_options.for_stage(options, "codegen"), {"name": name}))
    return steps


def features_step(graph_json: Any, audio_npz: Any, features_npz: str, frontend: str) -> Step:
    """A set of raw audio (``x`` int16 ``[N, samples]``) as the set of features the network reads."""
    return Step("features", {"graph_json": graph_json, "audio_npz": audio_npz}, {"features_npz": features_npz},
                params={"frontend": frontend})


def frontend_check_step(name: str, binary: Any, audio_npz: Any, out_dir: str, frontend: str,
                        network: Optional[Mapping[str, Any]] = None) -> Step:
    """The front end's host runner (``<name>_frontend_test``) proven against cmsisdsp on a set's clips; with
    ``network`` (``network_binary``: the host test binary, ``graph_json``, ``features_npz``: the set's features)
    also that binary on the raw clips against it on their features."""
    return Step("frontend_check", {"binary": binary, "audio_npz": audio_npz, **(network or {})},
                {"check_json": os.path.join(out_dir, "frontend_check.json")},
                params={"name": name, "frontend": frontend})


def outputs_of(steps: list[Step]) -> dict[str, str]:
    """Every output of a chain by its name (``graph_json``, ``qtable_json``, ``header`` ...)."""
    return {role: path for step in steps for role, path in step.outputs.items()}


def host_proof_steps(name: str, chain: dict[str, Any], model: str, binary: Any, sanitized: Any, trace_binary: Any,
                     test: Optional[str], data_set: Optional[str], out_dir: str,
                     kernels: str = "nnscons (sanitized)", labels: Optional[list[str]] = None) -> list[Step]:
    """What proves a model's host test binary, in order: the check (``report.json``: against the float model or
    TensorFlow Lite Micro, and under the sanitizers), the per-layer diagnostics of the trace build on the test set
    (else the calibration set; none without either) and ``report.html``. ``chain`` holds the chain's outputs by
    name (:func:`outputs_of`); ``kernels`` names the kernel library in the report (and whether it is sanitized);
    ``labels`` are the class names model.toml declares."""
    report_json = os.path.join(out_dir, "report.json")
    steps = [Step("check", {"binary": binary, "sanitized": sanitized, "model_path": model,
                            "graph_json": chain["graph_json"], "params_npz": chain["params_npz"],
                            "qtable_json": chain["qtable_json"], "test_npz": test},
                  {"report_json": report_json},
                  params={"name": name, "kernels": kernels, **({"labels": list(labels)} if labels else {})})]
    diagnostics_json = None
    if data_set:
        diagnostics_json = os.path.join(out_dir, "diagnostics.json")
        steps.append(Step("diagnostics", {"binary": trace_binary, "graph_json": chain["graph_json"],
                                          "params_npz": chain["params_npz"], "qtable_json": chain["qtable_json"],
                                          "data_npz": data_set},
                          {"diagnostics_json": diagnostics_json}, params={"name": name}))
    steps.append(Step("report_html", {"report_json": report_json, "graph_json": chain["graph_json"],
                                      "qtable_json": chain["qtable_json"], "plan_json": chain["plan_json"],
                                      "diagnostics_json": diagnostics_json, "stats_npz": chain.get("stats_npz"),
                                      "ranges_json": chain.get("ranges_json")},
                      {"report_html": os.path.join(out_dir, "report.html")}, params={"name": name}))
    return steps


def firmware_inputs_step(name: str, chain: dict[str, Any], test: Optional[str], gen_dir: str,
                         frontend: Optional[str] = None) -> Step:
    """The inputs a firmware image embeds for a model (``<name>_inputs.c``) and the same inputs for the host
    binary the firmware's outputs are compared with (``inputs.npz``); behind a ``frontend``, raw audio clips of
    the set ``test``."""
    out = os.path.join(gen_dir, "firmware")
    return Step("firmware_inputs", {"graph_json": chain["graph_json"], "qtable_json": chain["qtable_json"],
                                    "test_npz": test},
                {"inputs_c": os.path.join(out, f"{name}_inputs.c"), "inputs_npz": os.path.join(out, "inputs.npz")},
                params={"name": name, **({"frontend": frontend} if frontend else {})}, modules="firmware")


STAGE_NAMES = tuple(STAGE_MODULES)
