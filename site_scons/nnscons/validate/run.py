"""The work of ``nnscons validate`` (see :mod:`nnscons.validate`), in a folder ``out`` it reuses:

    out/gen/             the chain (graph.json ... src/<name>.h, plan.json; features/ for a model with a front end)
    out/host/            <name>_test, trace/, sanitize/; the check's report.json and diagnostics.json
    out/<target>/        firmware.elf, its run (report.json, report.html) and firmware_check.json
    out/cache/           the kernel libraries (one per compiler and flags)
    out/report.json, out/report.html     the validation

The steps of the graph run through :mod:`nnscons.pipeline.runner` (skipped when up to date); the binaries are
compiled every run (seconds), and a step that reads them reruns only when their bytes changed.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from .. import check, data, fileio, firmware, hostbuild, ir, pipeline, report_html, targets, targets_path
from ..cli_args import check_inputs, checked_name, default_name, resolve_options
from ..errors import NnsconsError
from ..firmware.image import build_image
from ..frontend import frontend_text_beside
from ..importers import MODEL_EXTENSIONS
from ..pipeline.runner import run_steps
from ..project import find_model
from .verdict import Row, Thresholds, failures_of, table_rows, table_text


FEATURE_SETS = {"m4": "dsp", "m7": "dsp", "m33": "dsp", "m55": "mve"}   # the kernels' code path per core (plan.json)


@dataclass(frozen=True)
class Subject:
    """What is validated: a model, its sets and its resolved options."""

    name: str
    model: str
    calib: Optional[str]
    test: Optional[str]
    values: dict[str, str]
    frontend: Optional[str]      # the [frontend] of its model.toml (the sets hold raw audio)


def subject_of(args: argparse.Namespace) -> Subject:
    """A model folder or file and the flags, every file checked (one line naming a missing or bad one)."""
    source = args.source
    if os.path.isdir(source):
        folder = find_model(source)
        model, name, calib, test = folder.model, folder.name, folder.calib, folder.test
    elif os.path.isfile(source):
        if not source.endswith(MODEL_EXTENSIONS):
            raise NnsconsError(source, "not a model: give a .tflite or .onnx file or a model folder")
        model, name, calib, test = source, default_name(source), None, None
    else:
        raise NnsconsError(source, "no such file or folder")
    args.model = model
    check_inputs(args, "test")
    values, _ = resolve_options(args)
    return Subject(checked_name(model, args.name or name), model, args.calib or calib, args.test or test, values,
                   frontend_text_beside(model))


@dataclass(frozen=True)
class Chain:
    outputs: dict[str, str]      # every output of the chain by name
    test_set: Optional[str]      # the test set the network reads (its features for a model with a front end)
    calib_set: Optional[str]     # likewise the calibration set


def generate(s: Subject, out: Path) -> Chain:
    """The chain of the SCons build, up to the C sources, and a front end's features of the test set."""
    gen = str(out / "gen")
    steps = pipeline.model_steps(s.name, s.model, s.calib, s.values, gen, frontend=s.frontend)
    outputs = pipeline.outputs_of(steps)
    calib_set, test_set = outputs.get("features_npz", s.calib), s.test
    if s.frontend and s.test:
        steps.append(pipeline.features_step(outputs["graph_json"], s.test,
                                            os.path.join(gen, "features", "test-set.npz"), s.frontend))
        test_set = steps[-1].outputs["features_npz"]
    run_steps(steps)
    return Chain(outputs, test_set, calib_set)


@dataclass(frozen=True)
class HostBuild:
    binary: str
    trace: str
    sanitized: Optional[str]


def build_host(s: Subject, chain: Chain, out: Path, sanitize: bool) -> HostBuild:
    """The host test binary, its tracing build and (``sanitize``) its sanitized build, as the SCons build's."""
    cmsis = hostbuild.default_cmsis()
    src, include, host = Path(chain.outputs["header"]).parent, cmsis / "Include", out / "host"
    toolchain = hostbuild.host_toolchain()
    kernels = hostbuild.kernel_library(cmsis, out / "cache", toolchain)
    binary = hostbuild.host_binary(s.name, src, host, kernels, toolchain, include)
    trace = hostbuild.host_binary(s.name, src, host / "trace", kernels, toolchain, include, trace=True)
    sanitized = None
    if sanitize:
        toolchain = hostbuild.sanitized_host_toolchain()
        kernels = hostbuild.kernel_library(cmsis, out / "cache", toolchain)
        sanitized = str(hostbuild.host_binary(s.name, src, host / "sanitize", kernels, toolchain, include))
    return HostBuild(str(binary), str(trace), sanitized)


def prove_on_host(s: Subject, chain: Chain, host: HostBuild, out: Path) -> tuple[dict[str, Any], pipeline.Step]:
    """The check and the diagnostics (the build's host proof steps); their report and the report page's step,
    which :func:`validate` runs on its own report instead."""
    steps = pipeline.host_proof_steps(s.name, chain.outputs, s.model, host.binary, host.sanitized, host.trace,
                                      chain.test_set, chain.test_set or chain.calib_set, str(out / "host"),
                                      "nnscons (sanitized)" if host.sanitized else "nnscons")
    run_steps(step for step in steps if step.stage != "report_html")
    return fileio.read_json(steps[0].outputs["report_json"]), steps[-1]


def against_original(s: Subject, chain: Chain, binary: str) -> Optional[dict[str, Any]]:
    """The C against the original model in LiteRT / onnxruntime, on the test set (else the calibration set)."""
    data_set = chain.test_set or chain.calib_set
    if data_set is None:
        return None
    graph, params = ir.load(chain.outputs["graph_json"], chain.outputs["params_npz"])
    qtable = fileio.read_json(chain.outputs["qtable_json"])
    _, outputs = check.network_tensors(graph, qtable)
    test = data.load_test_set(data_set, graph)
    name, refs = check.original_outputs(s.model, graph, test)
    return check.float_report(binary, graph, params, qtable, test, outputs, refs, name)


def model_sizes(s: Subject, chain: Chain, out: Path, cortex: str) -> dict[str, Any]:
    """The generated code and constants as the ``cortex`` target's compiler lays them out (the host's without
    it), and the arena with that core's kernel scratch."""
    toolchain = hostbuild.cortex_m_toolchain(targets_path(), cortex)
    if toolchain is None:
        toolchain, cortex = hostbuild.host_toolchain(), "host"
    flash = hostbuild.flash_sizes(s.name, Path(chain.outputs["header"]).parent, out / "sizes", toolchain,
                                  hostbuild.default_cmsis() / "Include")
    plan = fileio.read_json(chain.outputs["plan_json"])
    return {"code": flash.code, "constants": flash.constants, "compiler": flash.compiler, "target": cortex,
            "arena": int(plan["activation_arena_size"]) + int(plan["scratch"].get(FEATURE_SETS.get(cortex, "c"), 0))}


def frontend_proof(s: Subject, chain: Chain, out: Path) -> Optional[dict[str, Any]]:
    """A front end's C against cmsisdsp on the test clips (the build's frontend_check step)."""
    audio = s.test or s.calib
    if not s.frontend or not audio:
        return None
    toolchain = hostbuild.host_toolchain()
    runner = hostbuild.frontend_binary(s.name, os.path.dirname(chain.outputs["frontend_c"]), out / "host",
                                       hostbuild.dsp_library(out / "host" / "cmsisdsp", toolchain), toolchain)
    step = pipeline.frontend_check_step(s.name, str(runner), audio, str(out / "host"), s.frontend)
    try:
        run_steps([step])
    except NnsconsError:
        if not os.path.isfile(step.outputs["check_json"]):
            raise
    return fileio.read_json(step.outputs["check_json"])


def on_firmware(s: Subject, chain: Chain, host: HostBuild, target_name: str, out: Path, opt: str) -> dict[str, Any]:
    """The firmware image for a Cortex-M target, run in QEMU, its output bytes against the host binary's."""
    target = targets.load_target(os.path.join(targets_path(), target_name))
    inputs = pipeline.firmware_inputs_step(s.name, chain.outputs, chain.test_set, str(out / "gen"))
    run_steps([inputs])
    folder = out / target_name
    footprint = targets.model_footprint(chain.outputs["qparams_npz"], chain.outputs["plan_json"])
    image = build_image(target, s.name, Path(chain.outputs["header"]).parent, inputs.outputs["inputs_c"], folder,
                        hostbuild.default_cmsis(), out / "cache", opt, footprint)
    run_json, check_json = folder / "report.json", folder / "firmware_check.json"
    files = {"library": str(image.library), "inputs": str(image.inputs_object), "header": chain.outputs["header"],
             "graph": chain.outputs["graph_json"]}
    run = firmware.run_stage(target, str(image.elf), str(image.map_file), {s.name: files}, str(image.kernels),
                             str(run_json), {"opt": opt}, report_html=str(folder / "report.html"))
    check_json.unlink(missing_ok=True)
    try:
        same = firmware.check_stage(s.name, str(run_json), host.binary, inputs.outputs["inputs_npz"], str(check_json))
    except NnsconsError:
        if not check_json.is_file():
            raise
        same = fileio.read_json(check_json)
    model = run["models"][s.name]
    return {"machine": run["machine"], "inputs": same["inputs"], "mismatched_inputs": same["mismatched_inputs"],
            "identical": same["identical"], "instructions": model["instructions"], "flash": run["image"]["flash"],
            "ram": run["image"]["ram"], "model": model["image"], "arena": model["arena"], "stack": model["stack"]}


def compared_with(report: dict[str, Any], data_set: Optional[str]) -> Optional[str]:
    """What the agreement, SNR and error rows were measured against, on what (None: nothing to measure on)."""
    flt = report.get("float")
    if not flt or not data_set:
        return None
    program = flt["reference"] if report.get("bit_exact") else f"{flt['reference']} running {report['source']}"
    count = flt["inputs"]
    return f"{program}, {count} input{'s' if count != 1 else ''} of {os.path.basename(data_set)}"


def measured(s: Subject, chain: Chain, host: HostBuild, checked: dict[str, Any], out: Path,
             firmware_targets: list[str], opt: str) -> dict[str, Any]:
    """Everything measured, as the report holds it: the check's proof (TFLite Micro, sanitizers), the comparison
    with the original model (a quantization nnscons made), a front end's proof, sizes, and each firmware's run."""
    report: dict[str, Any] = {"model": s.name, "source": os.path.basename(s.model), "scheme": checked["scheme"],
                              "range": checked.get("range"), "api": s.values["api"], "options": s.values,
                              "check": checked}
    report.update({key: checked[key] for key in ("bit_exact", "float", "sanitizers") if key in checked})
    if "bit_exact" not in checked:
        report.pop("float", None)
        comparison = against_original(s, chain, host.binary)
        if comparison is not None:
            report["float"] = comparison
    report["compared_with"] = compared_with(report, s.test if chain.test_set else s.calib)
    frontend = frontend_proof(s, chain, out)
    if frontend is not None:
        report["frontend_check"] = frontend
    report["sizes"] = model_sizes(s, chain, out, (firmware_targets or ["m4"])[0])
    report["firmware"] = {t: on_firmware(s, chain, host, t, out, opt) for t in firmware_targets}
    return report


def print_table(report: dict[str, Any], rows: list[Row], targets_text: str, out: Path) -> None:
    scheme = report["scheme"] + (f", range {report['range']}" if report["range"] not in (None, "none") else "")
    print(f"nnscons validate: {report['model']} ({report['source']}: {scheme}, api {report['api']}; {targets_text})")
    print(table_text(rows))
    verdict = "PASS" if report["passed"] else "FAIL: " + "; ".join(report["failures"])
    print(f"nnscons validate: {verdict} ({out / 'report.json'}, report.html)")


def validate(args: argparse.Namespace) -> bool:
    """Everything: returns whether the model passes (the table printed, report.json and report.html written)."""
    s = subject_of(args)
    out = Path(args.out or os.path.join("build", "validate", s.name))
    for stale in (out / "report.json", out / "report.html"):    # a failed run leaves no earlier verdict behind
        stale.unlink(missing_ok=True)
    chain = generate(s, out)
    host = build_host(s, chain, out, sanitize=not args.no_sanitize)
    checked, html_step = prove_on_host(s, chain, host, out)
    report = measured(s, chain, host, checked, out, args.target, args.opt)
    thresholds = Thresholds(args.min_agreement / 100, args.min_snr,
                            None if args.min_accuracy is None else args.min_accuracy / 100)
    rows = table_rows(report, thresholds)
    failures = failures_of(rows)
    report.update({"thresholds": thresholds.to_json(), "validation": {"rows": [list(r) for r in rows]},
                   "passed": not failures, "failures": failures})
    fileio.write_json(out / "report.json", report)
    page = {k: v for k, v in html_step.inputs.items() if k != "report_json"}
    report_html.report_stage(s.name, str(out / "report.json"), out_html=str(out / "report.html"), **page)
    print_table(report, rows, ", ".join(["host", *args.target]), out)
    return not failures
