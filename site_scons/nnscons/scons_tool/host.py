"""Proving a model on the host: test binaries, the check, per-layer diagnostics and the HTML report.

Per model M in ``build_dir`` (``build/host/M`` in this repository)::

    M_test                     NnsconsHostTest     the generic test main (runtime/nnscons_test_main.c) + M + kernels
    trace/M_test               NnsconsTraceTest    the same, compiled with -DNNSCONS_TRACE (every layer's output)
    report.json                NnsconsCheck        host binaries + model + test set (nnscons.check)
    diagnostics.json           NnsconsDiagnostics  trace binary + data set: per-layer SNR, saturation
    report.html                NnsconsReportHtml   the report, the diagnostics and what the chain computed
"""
from __future__ import annotations

import os
from typing import Optional

import SCons.Builder

from .. import pipeline
from .actions import depends_on, stage_action
from .chain import ModelNodes
from .libraries import cmsis_include


def NnsconsHostTest(env, nodes: ModelNodes, build_dir: str, model_lib, kernel_lib):
    """``<build_dir>/<model>_test IN.npy OUT.npy`` (DESIGN.md section 3): the generic test main linked with the
    model's library and the kernels."""
    header = nodes.header
    main = env.Object(os.path.join(build_dir, nodes.name + "_test_main"),
                      os.path.join(str(pipeline.RUNTIME_DIR), "nnscons_test_main.c"),
                      CPPPATH=[header.dir, cmsis_include(env)],
                      CPPDEFINES=list(env.get("CPPDEFINES") or []) + [("NNSCONS_MODEL_INFO", nodes.name + "_info")],
                      CCFLAGS=env["CCFLAGS"] + ["-include", nodes.name + ".h"])
    env.Depends(main, header)
    return env.Program(os.path.join(build_dir, nodes.name + "_test"), [main, model_lib, kernel_lib],
                       LIBS=env.get("LIBS", []))


def NnsconsTraceTest(env, nodes: ModelNodes, build_dir: str, kernel_lib):
    """``<build_dir>/<model>_test`` with the model and the test main compiled with -DNNSCONS_TRACE, so that every
    layer's output lands in $NNSCONS_TRACE_DIR (the diagnostics' input). The kernels are the plain ones."""
    tenv = env.Clone()
    tenv.Append(CPPDEFINES=["NNSCONS_TRACE"])
    library = tenv.NnsconsLibrary(nodes, build_dir=build_dir).library
    return tenv.NnsconsHostTest(nodes, build_dir, library, kernel_lib)


def NnsconsCheck(env, nodes: ModelNodes, binary, sanitized, test: Optional[str], build_dir: str):
    """``<build_dir>/report.json``: the host binaries proven against the model (nnscons.check)."""
    sources = [binary, sanitized, nodes.model, nodes.graph[0], nodes.graph[1], nodes.qtable[0]] + \
        ([test] if test else [])
    return env.NnsCheckReport(os.path.join(build_dir, "report.json"), sources, NNSCONS_MODEL_NAME=nodes.name)


def NnsconsDiagnostics(env, nodes: ModelNodes, trace_binary, data_set: str, build_dir: str):
    """``<build_dir>/diagnostics.json``: per-layer SNR and saturation of the C against the float network on
    ``data_set`` (the test set, else the calibration set)."""
    sources = [trace_binary, nodes.graph[0], nodes.graph[1], nodes.qtable[0], data_set]
    return env.NnsDiagnostics(os.path.join(build_dir, "diagnostics.json"), sources, NNSCONS_MODEL_NAME=nodes.name)


_REPORT_PARTS = ("report", "graph", "qtable", "plan", "diagnostics", "stats", "ranges")


def NnsconsReportHtml(env, nodes: ModelNodes, report, diagnostics, build_dir: str):
    """``<build_dir>/report.html`` from the check's report and what the chain computed (the diagnostics,
    statistics and ranges when the model has them)."""
    parts = {"report": report, "graph": nodes.graph[0], "qtable": nodes.qtable[0], "plan": nodes.plan,
             "diagnostics": diagnostics, "stats": nodes.stats[0] if nodes.stats else None,
             "ranges": nodes.ranges[0] if nodes.ranges else None}
    roles = [r for r in _REPORT_PARTS if parts[r] is not None]
    return env.NnsReportHtml(os.path.join(build_dir, "report.html"), [parts[r] for r in roles],
                             NNSCONS_MODEL_NAME=nodes.name, NNSCONS_REPORT_PARTS=",".join(roles))


# ---- the builders ---------------------------------------------------------------------------------------------------
def _run_check(target, source, env) -> None:
    binary, sanitized, model, graph, params, qtable = (str(s) for s in source[:6])
    test = str(source[6]) if len(source) > 6 else None
    pipeline.check_stage(env["NNSCONS_MODEL_NAME"], os.path.abspath(binary), os.path.abspath(sanitized), model,
                         graph, params, qtable, test, str(target[0]))


def _run_diagnostics(target, source, env) -> None:
    binary, graph, params, qtable, data_set = (str(s) for s in source[:5])
    pipeline.diagnostics_stage(env["NNSCONS_MODEL_NAME"], os.path.abspath(binary), graph, params, qtable, data_set,
                               str(target[0]))


def _run_report_html(target, source, env) -> None:
    files = dict(zip(env["NNSCONS_REPORT_PARTS"].split(","), (str(s) for s in source)))
    pipeline.report_html_stage(env["NNSCONS_MODEL_NAME"], files["report"], files["graph"], files["qtable"],
                               files["plan"], str(target[0]), files.get("diagnostics"), files.get("stats"),
                               files.get("ranges"))


def add_builders(env) -> None:
    env.Append(BUILDERS={
        "NnsCheckReport": SCons.Builder.Builder(
            action=stage_action("check", _run_check, "nnscons check     $TARGET"), emitter=depends_on("check")),
        "NnsDiagnostics": SCons.Builder.Builder(
            action=stage_action("diagnostics", _run_diagnostics, "nnscons diagnose  $TARGET"),
            emitter=depends_on("diagnostics")),
        "NnsReportHtml": SCons.Builder.Builder(
            action=stage_action("report_html", _run_report_html, "nnscons report    $TARGET"),
            emitter=depends_on("report_html")),
    })
    for method in (NnsconsHostTest, NnsconsTraceTest, NnsconsCheck, NnsconsDiagnostics, NnsconsReportHtml):
        env.AddMethod(method, method.__name__)
