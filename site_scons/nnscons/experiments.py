"""Scheme experiments: one model under several quantization schemes and range methods, one table.

The seed guide: "You'll have to experiment with several schemes, because results can vary depending on the
network and training patterns" and "it is important that you test the final implementation". This runs that
experiment in one command (``scons target=host experiments`` or ``nnscons experiments models/<name>``): for every
configuration (scheme x range method x kernel API) it runs the build's own stage functions (ranges, quantize,
codegen: :mod:`nnscons.pipeline`, so the generated C is what the build would generate for those options), compiles
the host test binary with the host target's flags (:mod:`nnscons.hostbuild`), runs it on the test set (the
calibration set if there is none) and prints one row:

``accuracy``      against the labels ``y`` of the set (integer labels of a classifier output), or the RMSE
                  against its reference outputs (a regression's targets)
``top-1``         agreement of the C's top-1 class with the float reference's (classifier outputs only:
                  :func:`nnscons.check.output_kind`)
``SNR dB``        of the C's dequantized output against the float reference
                  (a network with several outputs: each cell lists them, ``y0: ...; y1: ...``)
``weights``       constant bytes (weights, biases, multipliers, tables) and ``code`` bytes of the generated
                  network as the Cortex-M4 target's compiler lays them out (kernels excluded: every
                  configuration shares them), ``flash`` their sum; the host compiler when arm-none-eabi-gcc is
                  missing (the table says which)
``arena``         the RAM the network needs: the planned activation arena plus the kernels' scratch for the
                  same core (DSP feature set on the Cortex-M4, plain C on the host)

Each configuration is built under ``<out>/<config>/`` (ranges.json, qtable.*, src/, plan.json, host/, sizes/);
configurations run in parallel threads (compilers and the binaries are separate processes). A configuration that
cannot be built (e.g. a shift outside 0..31, or ``api=legacy`` before its code generation exists) gives a row
with the reason instead of stopping the others. The table is also written to ``<out>/experiments.txt`` and
``experiments.json``.
"""
from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from . import check, data, fileio, hostbuild, ir, overview, pipeline, project, reference
from .pipeline.runner import run_steps
from . import options as nn_options
from .errors import NnsconsError

SCHEMES = ("q7", "q15", "int8", "int16x8")
RANGES = ("minmax", "percentile:99.99", "percentile:80", "mse")
LEGACY_SCHEMES = ("q7", "q15")
SEARCH_SCHEMES = ("q7", "q15")
UPSTREAM_STAGES = ("import", "stats")   # shared by every configuration: run once by prepare()
COLUMNS = ["config", "scheme", "api", "range", "accuracy", "top-1 vs float", "SNR dB", "weights", "code", "flash",
           "arena", "note"]


@dataclass(frozen=True)
class Config:
    quant: str
    range: str
    api: str = "s8"
    legacy_softmax: str = "input"

    @property
    def name(self) -> str:
        """A folder name: ``q7-percentile99.99-s8``, ``q15-minmax-legacy-calibrated``."""
        suffix = "" if self.legacy_softmax == "input" else f"-{self.legacy_softmax}"
        return f"{self.quant}-{self.range.replace(':', '')}-{self.api}{suffix}"

    def options(self) -> dict[str, str]:
        return nn_options.resolve({}, {"quant": self.quant, "range": self.range, "api": self.api,
                                       "legacy_softmax": self.legacy_softmax})

    @classmethod
    def parse(cls, text: str) -> "Config":
        """``quant/range[/api[/legacy_softmax]]``, e.g. ``q7/percentile:80/legacy``."""
        parts = text.split("/")
        if len(parts) not in (2, 3, 4):
            raise NnsconsError(None, f"experiment {text!r}: write quant/range[/api[/legacy_softmax]], e.g. "
                                     f"q7/percentile:80/s8 or q15/minmax/legacy/calibrated")
        config = cls(*parts)
        config.options()  # validates every value
        return config


def default_configs(search: bool = True, legacy: bool = True) -> list[Config]:
    """Every scheme with every range method on the s8/s16 kernels, the Q schemes on the legacy API (minmax also
    with ``legacy_softmax=calibrated``, to show that trade), and (the Q schemes only) range=search."""
    configs = [Config(q, r) for q in SCHEMES for r in RANGES]
    if search:
        configs += [Config(q, "search") for q in SEARCH_SCHEMES]
    if legacy:
        configs += [Config(q, r, "legacy") for q in LEGACY_SCHEMES for r in RANGES]
        configs += [Config(q, "minmax", "legacy", "calibrated") for q in LEGACY_SCHEMES]
    return configs


# ---- the model and its evaluation set (shared by every configuration) ----------------------------------------------------
@dataclass
class Prepared:
    """A model with its graph and statistics files (the build's, or made here)."""

    name: str
    model: str
    calib: str
    test: Optional[str]
    graph_json: str
    params_npz: str
    stats_npz: str


def prepare(folder: project.ModelFolder, out_dir: str | os.PathLike, graph_json: Optional[str] = None,
            params_npz: Optional[str] = None, stats_npz: Optional[str] = None) -> Prepared:
    """Import the model and gather its statistics into ``out_dir`` unless the build's files are given."""
    if not folder.calib:
        raise NnsconsError(folder.directory, "experiments need a calibration set calib.npz (key x)")
    if graph_json is None or params_npz is None or stats_npz is None:
        steps = pipeline.model_steps(folder.name, folder.model, folder.calib, nn_options.resolve({}, {}), out_dir)
        run_steps(s for s in steps if s.stage in UPSTREAM_STAGES)
        chain = pipeline.outputs_of(steps)
        graph_json, params_npz, stats_npz = chain["graph_json"], chain["params_npz"], chain["stats_npz"]
    return Prepared(folder.name, folder.model, folder.calib, folder.test, graph_json, params_npz, stats_npz)


@dataclass
class EvaluationSet:
    """The inputs every configuration runs on, what the set expects of each output, and the float reference's
    outputs for them."""

    source: str                                # file name of the set
    graph: ir.Graph
    inputs: dict[str, np.ndarray]              # by graph input, IR layout, real values
    expected: list[Optional[data.Expected]]    # per output: labels or reference outputs (None: nothing)
    references: list[np.ndarray]               # per output [N, values]: the float network's outputs

    @classmethod
    def load(cls, prepared: Prepared) -> "EvaluationSet":
        graph, params = ir.load(prepared.graph_json, prepared.params_npz)
        path = prepared.test or prepared.calib
        test = data.load_test_set(path, graph)
        outputs = reference.run(graph, params, test.inputs)
        references = [outputs[name].reshape(test.samples, -1) for name in graph.outputs]
        return cls(os.path.basename(path), graph, test.inputs, test.expected, references)

    @property
    def samples(self) -> int:
        return int(len(self.references[0]))

    @property
    def x(self) -> list[np.ndarray]:
        """The inputs in the network's order."""
        return [self.inputs[name] for name in self.graph.inputs]

    def float_accuracy(self) -> Optional[float]:
        """The float network's accuracy on the first classifier output with labels."""
        for name, expected, ref in zip(self.graph.outputs, self.expected, self.references):
            if (expected is not None and expected.labels is not None
                    and check.output_kind(self.graph, name, expected) == "classifier"):
                return float(np.mean(ref.argmax(1) == expected.labels))
        return None


# ---- one configuration ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tools:
    """How configurations are compiled and measured."""

    kernels: Path                  # the host kernel library
    host: hostbuild.Toolchain
    cmsis_include: Path
    sizes: hostbuild.Toolchain     # the compiler flash sizes are measured with
    feature_set: str               # the scratch size the arena column counts ("dsp" for the Cortex-M4, else "c")


def default_tools(out_root: str | os.PathLike, cmsis_dir: Optional[str | os.PathLike] = None,
                  kernels: Optional[str | os.PathLike] = None,
                  cache_dir: Optional[str | os.PathLike] = None) -> Tools:
    """The host target's compiler, the kernel library (``kernels``, or ``cmsis_dir`` (default: the shipped
    portable one) compiled once into ``cache_dir``, by default ``<out_root>/cache``) and the Cortex-M4 compiler
    for sizes when it is installed."""
    host = hostbuild.host_toolchain()
    cmsis = Path(cmsis_dir) if cmsis_dir else hostbuild.default_cmsis()
    library = Path(kernels) if kernels else hostbuild.kernel_library(cmsis, Path(cache_dir or Path(out_root) / "cache"),
                                                                     host)
    cortex = hostbuild.cortex_m_toolchain()
    return Tools(library, host, cmsis / "Include", cortex or host, "dsp" if cortex else "c")


def build_config(prepared: Prepared, config: Config, out_dir: str | os.PathLike, tools: Tools,
                 trace: bool = False) -> Path:
    """The build's stages for one configuration into ``out_dir``; returns the host test binary."""
    out = Path(out_dir)
    steps = pipeline.model_steps(prepared.name, prepared.model, prepared.calib, config.options(), str(out),
                                 upstream_dir=os.path.dirname(prepared.graph_json))
    upstream = pipeline.outputs_of([s for s in steps if s.stage in UPSTREAM_STAGES])
    if upstream["stats_npz"] != prepared.stats_npz or upstream["params_npz"] != prepared.params_npz:
        raise NnsconsError(prepared.graph_json, "the graph, weights and statistics must share one folder")
    run_steps(s for s in steps if s.stage not in UPSTREAM_STAGES)
    binary = hostbuild.host_binary(prepared.name, out / "src", out / "host", tools.kernels, tools.host,
                                   tools.cmsis_include)
    if trace:
        hostbuild.host_binary(prepared.name, out / "src", out / "trace", tools.kernels, tools.host,
                              tools.cmsis_include, trace=True)
    return binary


def trace_binary(out_dir: str | os.PathLike, name: str) -> Path:
    """Where :func:`build_config` put the trace build (``trace=True``)."""
    return Path(out_dir) / "trace" / f"{name}_test"


def output_measures(graph: ir.Graph, name: str, ref: np.ndarray, ours: np.ndarray,
                    expected: Optional[data.Expected]) -> dict[str, Any]:
    """One output's row measures: SNR against float; for a classifier top-1 agreement and, with labels, accuracy;
    for a regression with reference outputs the RMSE against them (full precision: the table rounds)."""
    kind = check.output_kind(graph, name, expected)
    result: dict[str, Any] = {"kind": kind, "snr_db": check.snr_db(ref, ours)}
    if kind == "classifier":
        result["top1_agreement"] = float(np.mean(ours.argmax(1) == ref.argmax(1)))
        if expected is not None and expected.labels is not None:
            result["accuracy"] = float(np.mean(ours.argmax(1) == expected.labels))
    if expected is not None and expected.values is not None:
        result["target_rmse"] = float(np.sqrt(np.mean((ours - expected.values.reshape(len(ours), -1)) ** 2)))
    return result


def measure(prepared: Prepared, binary: Path, out_dir: Path, evaluation: EvaluationSet) -> dict[str, Any]:
    """Accuracy, agreement and SNR of a configuration's binary on the evaluation set: at the top level for one
    output, in ``outputs`` (one entry per output) for several."""
    graph = evaluation.graph
    qtable = fileio.read_json(str(out_dir / "qtable.json"))
    _, outputs = check.network_names(graph, qtable)
    results = check.run_network(str(binary), evaluation.x, len(outputs))
    measures = []
    for k, (name, net_out, q) in enumerate(zip(graph.outputs, outputs, results)):
        ours = check.dequantize(q, qtable["tensors"][net_out]).reshape(evaluation.samples, -1)
        entry = output_measures(graph, name, evaluation.references[k], ours, evaluation.expected[k])
        measures.append(entry if len(outputs) == 1 else {"output": f"y{k}", **entry})
    return measures[0] if len(measures) == 1 else {"outputs": measures}


def run_config(prepared: Prepared, config: Config, out_root: str | os.PathLike, evaluation: EvaluationSet,
               tools: Tools) -> dict[str, Any]:
    """Build, run and measure one configuration: its row of the table (with ``error`` when it failed)."""
    out = Path(out_root) / config.name
    row: dict[str, Any] = {"config": config.name, "scheme": config.quant, "api": config.api, "range": config.range}
    try:
        binary = build_config(prepared, config, out, tools)
        row.update(measure(prepared, binary, out, evaluation))
        sizes = hostbuild.flash_sizes(prepared.name, out / "src", out / "sizes", tools.sizes, tools.cmsis_include)
        plan = fileio.read_json(str(out / "plan.json"))
        row.update({"weights_bytes": sizes.constants, "code_bytes": sizes.code, "flash_bytes": sizes.total,
                    "arena_bytes": int(plan["activation_arena_size"]) + int(plan["scratch"][tools.feature_set]),
                    "sizes_by": sizes.compiler})
    except NnsconsError as e:
        row["error"] = e.message
    except Exception as e:  # noqa: BLE001 - one broken configuration must not hide the others' rows
        row["error"] = f"internal error {type(e).__name__}: {e}"
    return row


# ---- the whole experiment ---------------------------------------------------------------------------------------------------
def run_experiments(prepared: Prepared, out_root: str | os.PathLike, configs: Sequence[Config], tools: Tools,
                    jobs: Optional[int] = None) -> dict[str, Any]:
    """Every configuration's row (in the order given), and the float reference's numbers; writes
    ``experiments.json`` and ``experiments.txt`` into ``out_root``."""
    evaluation = EvaluationSet.load(prepared)
    with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
        rows = list(pool.map(lambda c: run_config(prepared, c, out_root, evaluation, tools), configs))
    result = {"model": prepared.name, "set": evaluation.source, "samples": evaluation.samples,
              "float_accuracy": evaluation.float_accuracy(), "sizes_by": os.path.basename(tools.sizes.cc),
              "arena_feature_set": tools.feature_set, "rows": rows}
    fileio.write_json(os.path.join(out_root, "experiments.json"), result)
    fileio.write_text(os.path.join(out_root, "experiments.txt"), format_experiments(result))
    return result


def _percent(value: Optional[float]) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _measure_cell(r: dict[str, Any], text) -> str:
    """A measure of a row: its one output's, or ``y0: ...; y1: ...`` for several (outputs without it left out)."""
    if "outputs" not in r:
        return text(r)
    cells = [f"{m['output']}: {text(m)}" for m in r["outputs"] if text(m) != "-"]
    return "; ".join(cells) or "-"


def _accuracy_text(m: dict[str, Any]) -> str:
    if "accuracy" in m:
        return _percent(m["accuracy"])
    return f"rmse {m['target_rmse']:.4g}" if "target_rmse" in m else "-"


def _snr_text(m: dict[str, Any]) -> str:
    return "exact" if m.get("snr_db") is None else f"{m['snr_db']:.1f}"


def table_rows(result: dict[str, Any]) -> list[dict[str, str]]:
    rows = []
    for r in result["rows"]:
        failed = "error" in r
        rows.append({
            "config": r["config"], "scheme": r["scheme"], "api": r["api"], "range": r["range"],
            "accuracy": "-" if failed else _measure_cell(r, _accuracy_text),
            "top-1 vs float": "-" if failed else _measure_cell(r, lambda m: _percent(m.get("top1_agreement"))),
            "SNR dB": "-" if failed else _measure_cell(r, _snr_text),
            "weights": str(r.get("weights_bytes", "-")), "code": str(r.get("code_bytes", "-")),
            "flash": str(r.get("flash_bytes", "-")), "arena": str(r.get("arena_bytes", "-")),
            "note": ("FAILED: " + r["error"])[:110] if failed else "",
        })
    return rows


def format_experiments(result: dict[str, Any]) -> str:
    """The table for people, headed by the float reference's accuracy."""
    head = (f"{result['model']}: {result['samples']} samples of {result['set']}; float reference accuracy "
            f"{_percent(result['float_accuracy'])}. Bytes: weights = constants, code = the generated network "
            f"({result['sizes_by']}, kernels excluded), arena = activations + scratch ({result['arena_feature_set']}).")
    return head + "\n" + overview.format_table(table_rows(result), COLUMNS) + "\n"


# ---- command line (nnscons experiments MODEL_DIR) -----------------------------------------------------------------------------
def _config_argument(text: str) -> Config:
    """A ``--config`` value; a bad one is a usage error (exit status 2), not a model's."""
    try:
        return Config.parse(text)
    except NnsconsError as e:
        raise argparse.ArgumentTypeError(e.message) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", help="a model folder (models/<name>) with model.tflite|onnx and calib.npz")
    parser.add_argument("--out", default=None, help="output folder (default build/experiments/<name>)")
    parser.add_argument("--config", action="append", default=None, metavar="QUANT/RANGE[/API[/SOFTMAX]]",
                        type=_config_argument,
                        help="a configuration to run instead of the default set (repeatable), e.g. "
                             "q7/percentile:80, q15/minmax/legacy or q15/minmax/legacy/calibrated")
    parser.add_argument("--no-search", action="store_true", help="leave out range=search")
    parser.add_argument("--no-legacy", action="store_true", help="leave out api=legacy")
    parser.add_argument("-j", "--jobs", type=int, default=None, help="configurations built at once (default: CPUs)")
    parser.add_argument("--kernels", default=None, metavar="LIB",
                        help="a host kernel library to link (e.g. build/host/cmsis/libcmsisnn.a; default: compile "
                             "cmsis/ once into <out>/../cache)")


def main_from_args(args: argparse.Namespace) -> int:
    folder = project.find_model(args.model_dir)
    out_root = args.out or os.path.join("build", "experiments", folder.name)
    configs = (list(args.config) if args.config
               else default_configs(search=not args.no_search, legacy=not args.no_legacy))
    prepared = prepare(folder, out_root)
    tools = default_tools(os.path.dirname(os.path.abspath(out_root)), kernels=args.kernels)
    result = run_experiments(prepared, out_root, configs, tools, args.jobs)
    sys.stdout.write(format_experiments(result))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nnscons.experiments", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return main_from_args(args)
    except NnsconsError as e:
        print(f"nnscons: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
