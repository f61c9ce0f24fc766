"""Aliases that print a table from what the build wrote: the models' summary, the checks, the firmware runs and the
scheme experiments. Each is an ``AlwaysBuild`` alias over the nodes it reads, so it builds them first; the summary
prints when SCons exits, failed models included."""
from __future__ import annotations

import sys
from typing import Any, Sequence

import SCons.Action
import SCons.Errors
import SCons.Script
import SCons.Util

from .. import overview
from ..errors import NnsconsError

SUMMARY_COLUMNS = ["model", "source", "model_quant", "ops", "weights", "input", "output", "scheme", "range", "layers"]


def _table_alias(env, name: str, sources: Sequence[Any], print_table) -> Any:
    alias = env.Alias(name, list(sources), SCons.Action.Action(print_table, None))
    env.AlwaysBuild(alias)
    return alias


def failure_reasons(names: Sequence[str]) -> dict[str, str]:
    """Model -> the one-line reason its first failed node gave (SCons' build failures; a node belongs to the model
    whose name is a folder of its path: build/<name>/..., build/<target>/<name>/...)."""
    reasons: dict[str, str] = {}
    for failure in SCons.Script.GetBuildFailures():
        parts = str(failure.node).replace("\\", "/").split("/")
        for name in names:
            if name in parts[:-1] and name not in reasons:
                reasons[name] = " ".join(str(failure.errstr).split())
    return reasons


def _summary_rows(chains: Sequence[Any], reports: Sequence[Any]) -> tuple[list[dict[str, Any]], list[str]]:
    import os

    from .. import fileio
    reports = SCons.Util.flatten(list(reports))     # builders return node lists
    names = [c.name for c in chains] + [str(n).replace("\\", "/").split("/")[-2] for n in reports
                                        if str(n).endswith("unbuildable")]
    reasons = failure_reasons(names)
    if not any(str(n).endswith(".json") for n in reports):
        rows = [overview.model_row(c.name, str(c.graph[0]), str(c.qtable[0])) if os.path.exists(str(c.graph[0]))
                else {"model": c.name} for c in chains]
        rows += [{"model": n} for n in names if not any(r["model"] == n for r in rows)]
        columns = list(SUMMARY_COLUMNS)
    else:
        files = [str(n) for n in reports if str(n).endswith(".json") and os.path.exists(str(n))]
        host = [fileio.read_json(f) for f in files if f.endswith("report.json") and "/host/" in f]
        runs = [fileio.read_json(f) for f in files if f.endswith("report.json") and "/host/" not in f]
        checks = [fileio.read_json(f) for f in files if f.endswith("firmware_check.json")]
        rows = overview.overview_rows(host, runs, checks)
        rows += [{"model": n} for n in names if not any(r["model"] == n for r in rows)]
        columns = [c for c in overview.OVERVIEW_COLUMNS if any(c in row for row in rows)]
        for report in host:
            if report.get("failures"):
                reasons.setdefault(report["model"], "; ".join(report["failures"]))
    for row in rows:
        if row["model"] in reasons:
            row["result"] = "FAILED: " + reasons[row["model"]][:160]
    if reasons and "result" not in columns:
        columns.append("result")
    rows.sort(key=lambda r: r["model"])
    return rows, columns


def NnsconsSummaryAlias(env, name: str, chains: Sequence[Any], reports: Sequence[Any] = ()):
    """Build the chains, then print one line per model (source, ops, weights, shapes, scheme). With ``reports``
    (host checks, firmware runs and firmware checks), build those too and print the overview instead: accuracy,
    agreement with float and TFLite Micro, instructions, flash and RAM per target (nnscons.overview). The table is
    printed when SCons exits, so it also prints when a model failed (``scons -k``): that row says why."""
    import atexit

    def print_summary() -> None:
        rows, columns = _summary_rows(chains, reports)
        print(overview.format_table(rows, columns))
        sys.stdout.flush()

    if name in SCons.Script.COMMAND_LINE_TARGETS:
        atexit.register(print_summary)
    alias = env.Alias(name, [n for c in chains for n in c.all] + list(reports))
    env.AlwaysBuild(alias)
    return alias


def NnsconsCheckAlias(env, name: str, reports: Sequence[Any]):
    """Build the host checks (report.json) and the firmware checks (firmware_check.json), then print their
    tables."""
    def print_checks(target, source, env):
        from .. import check, fileio
        rows = [check.summary_row(fileio.read_json(str(n))) for n in source if str(n).endswith("report.json")]
        if rows:
            print(overview.format_table(rows, list(rows[0])))
        rows = [{"target": r["target"], "model": r["model"], "inputs": r.get("inputs", "-"),
                 "firmware == host": "refused: " + r["refused"] if r.get("refused") else
                 "identical" if r["identical"] else f"{r['mismatched_inputs']} differ"}
                for r in (fileio.read_json(str(n)) for n in source if str(n).endswith("firmware_check.json"))]
        if rows:
            print(overview.format_table(rows, list(rows[0])))
    return _table_alias(env, name, reports, print_checks)


def NnsconsRunAlias(env, name: str, run_reports: Sequence[Any]):
    """Run the firmware images (build/<target>/report.json), then print instructions and sizes per model, and the
    image sizes per target."""
    def print_runs(target, source, env):
        from .. import fileio, firmware
        reports = [fileio.read_json(str(r)) for r in source]
        rows = [row for r in reports for row in firmware.summary_rows(r)]
        columns = list(dict.fromkeys(key for row in rows for key in row)) or ["target", "model"]
        print(overview.format_table(rows, columns))
        print(overview.format_table([firmware.image_row(r) for r in reports if r["models"]],
                                    ["target", "flash", "ram", "kernels code", "kernels rodata"]))
        for line in (line for r in reports for line in firmware.refused_lines(r)):
            print("refused:", line)
    return _table_alias(env, name, run_reports, print_runs)


def NnsconsExperimentsAlias(env, name: str, models: Sequence[tuple[Any, Any, Any]], out_dir: str = "build"):
    """For each (chain, model folder, host kernel library node): build the model under every scheme and range method
    (``<out_dir>/experiments/<name>/<config>/``, nnscons.experiments) and print one table."""
    def run_experiments(target, source, env):
        import os

        from .. import experiments
        for chain, folder, kernels in models:
            out_root = os.path.join(out_dir, "experiments", chain.name)
            try:
                prepared = experiments.prepare(folder, out_root, str(chain.graph[0]), str(chain.graph[1]),
                                               str(chain.stats[0]))
                tools = experiments.default_tools(out_root, env.Dir("$NNSCONS_CMSIS").abspath,
                                                  kernels=str(kernels))
                result = experiments.run_experiments(prepared, out_root, experiments.default_configs(), tools,
                                                     SCons.Script.GetOption("num_jobs"))
            except NnsconsError as e:
                print(f"scons: *** {e}", file=sys.stderr)
                return 1
            print(experiments.format_experiments(result))
        return 0
    sources = [n for chain, _, kernels in models for n in chain.graph + chain.stats + [kernels]]
    return _table_alias(env, name, sources, run_experiments)


def NnsconsFailure(env, target: str, message: str):
    """A node that fails with ``message`` when built: what a model that cannot be built stands for, so that only
    the targets that need it fail (``scons -k`` builds the rest; the summary shows the reason)."""
    def fail(target, source, env):
        raise SCons.Errors.BuildError(node=target[0], errstr=message, exitstatus=2)
    node = env.Command(target, [], SCons.Action.Action(fail, None))
    env.AlwaysBuild(node)
    return node


def add_methods(env) -> None:
    env.AddMethod(NnsconsFailure, "NnsconsFailure")
    for method in (NnsconsSummaryAlias, NnsconsCheckAlias, NnsconsRunAlias, NnsconsExperimentsAlias):
        env.AddMethod(method, method.__name__)
