"""The stages as file-to-file functions: what one step of the graph does (:mod:`nnscons.pipeline.steps`).

Each reads its inputs from files, writes its outputs atomically and deterministically, and raises
:class:`~nnscons.errors.NnsconsError` on bad input. Their keyword arguments are the names a step gives its inputs
and outputs. The stage modules are imported inside the functions: the SCons tool imports this module while it reads
the SConstruct, and a no-op build must not pay for numpy, onnx or tflite.
"""
from __future__ import annotations

import hashlib
import os
from typing import Any, Callable, Mapping, Optional

from ..errors import NnsconsError


def scheme_of(graph_quantized: str, options: Mapping[str, str]) -> str:
    """The scheme a model is quantized with: ``quant`` with ``auto`` resolved (the model's own parameters if it
    has them, else int8). The one place ``auto`` is resolved."""
    from .. import options as nn_options
    return nn_options.resolve_scheme_for(graph_quantized, options["quant"])


def import_stage(model: str, graph_json: str, params_npz: str) -> Any:
    """A .tflite or .onnx file into the IR: ``graph.json`` and ``params.npz``."""
    from .. import ir
    from ..importers import import_model
    graph, params = import_model(model)
    ir.save(graph, params, graph_json, params_npz)
    return graph


def stats_stage(graph_json: str, params_npz: str, calib_npz: str, stats_npz: str, stats_txt: Optional[str] = None,
                progress: Optional[bool] = None) -> None:
    """Per-tensor statistics of the float network over the calibration set."""
    from .. import data, fileio, ir, stats
    graph, params = ir.load(graph_json, params_npz)
    result = stats.compute_stats(graph, params, data.load_inputs(calib_npz, graph), progress=progress)
    stats.save_stats(stats_npz, result)
    if stats_txt:
        fileio.write_text(stats_txt, stats.stats_table(graph, result))


def ranges_stage(graph_json: str, stats_npz: str, options: Mapping[str, str], ranges_json: str,
                 params_npz: Optional[str] = None, calib_npz: Optional[str] = None) -> None:
    """``ranges.json`` from the statistics; ``range=search`` also needs the weights and the calibration set and
    adds its log under the key ``search``."""
    from .. import fileio, ir, ranges, stats
    graph = ir.Graph.from_json(fileio.read_json(graph_json))
    scheme = scheme_of(graph.quantized, options)
    if options["range"] != "search":
        table = ranges.range_table(stats.load_stats(stats_npz), scheme, options["range"])
        fileio.write_json(ranges_json, table.to_json())
        return
    from .. import data, search
    if params_npz is None or calib_npz is None:
        raise NnsconsError(graph_json, "range=search needs the weights and the calibration set")
    graph, params = ir.load(graph_json, params_npz)
    x = data.load_inputs(calib_npz, graph)[graph.inputs[0]]
    try:
        table, log = search.search_ranges(graph, params, stats.load_stats(stats_npz), scheme, x,
                                          data.load_labels(calib_npz), options.get("api", "s8"))
    except NnsconsError as e:
        raise NnsconsError(e.path or calib_npz, e.message) from None
    fileio.write_json(ranges_json, {**table.to_json(), "search": log})


def quantize_stage(graph_json: str, params_npz: str, ranges_json: Optional[str], options: Mapping[str, str],
                   qtable_json: str, qtable_txt: str, qparams_npz: str,
                   model_dir: Optional[str] = None) -> dict[str, Any]:
    """The quantization tables (``qtable.json``, the readable ``qtable.txt``, ``qparams.npz``)."""
    from .. import fileio, ir, quantize, ranges
    graph, params = ir.load(graph_json, params_npz)
    scheme = scheme_of(graph.quantized, options)
    if ranges_json is None and scheme != "model":
        raise NnsconsError(model_dir or graph_json, f"quant={options['quant']} needs activation statistics: give a "
                                                    "calibration set (calib.npz with key x in the model folder, "
                                                    "or --calib C.npz)")
    table = ranges.RangeTable.from_json(fileio.read_json(ranges_json)) if ranges_json else None
    try:
        qtable = quantize.build_qtable(graph, params, table, scheme, options.get("api", "s8"))
    except NnsconsError as e:   # the model's numbers make a layer impossible: the line names the model file
        model = os.path.join(model_dir, graph.source_file) if model_dir and graph.source_file else graph_json
        raise NnsconsError(e.path or model, e.message) from None
    quantize.write_qtable(qtable, qtable_json, qtable_txt, qparams_npz)
    return qtable.tables


def codegen_stage(name: str, graph_json: str, qtable_json: str, qparams_npz: str, options: Mapping[str, str],
                  header: str, model_c: str, weights_c: str, plan_json: str) -> list[str]:
    """``<name>.h``, ``<name>_model.c``, ``<name>_weights.c`` and the arena plan ``plan.json``."""
    from .. import codegen, fileio, ir, patches
    graph = ir.Graph.from_json(fileio.read_json(graph_json))
    digest = hashlib.sha256()
    for path in (graph_json, qtable_json, qparams_npz):
        with open(path, "rb") as f:
            digest.update(f.read())
    digest.update(fileio.canonical_json(dict(options)).encode())
    files = codegen.generate(name, graph, fileio.read_json(qtable_json), fileio.read_npz(qparams_npz),
                             options["api"], digest.hexdigest()[:16], options.get("legacy_softmax", "input"),
                             overlap=options.get("overlap", "on") == "on",
                             bands=patches.parse(options.get("patches", "off")),
                             by_memory=options.get("order", "memory") == "memory")
    paths = {f"{name}.h": header, f"{name}_model.c": model_c, f"{name}_weights.c": weights_c, "plan.json": plan_json}
    if set(files) != set(paths):
        raise NnsconsError(graph_json, f"code generation wrote {sorted(files)}, expected {sorted(paths)}")
    for file_name, text in sorted(files.items()):
        fileio.write_text(paths[file_name], text)
    return [paths[f] for f in sorted(files)]


def check_stage(name: str, binary: str, sanitized: Optional[str], model_path: str, graph_json: str,
                params_npz: str, qtable_json: str, test_npz: Optional[str], report_json: str,
                kernels: Optional[str] = None, labels: Optional[list[str]] = None) -> dict[str, Any]:
    """``report.json``: the host binary proven against the float model or TensorFlow Lite Micro, and clean under
    the sanitizers (nnscons.check). A failed proof is written, not raised: the report step draws the page from
    it and then fails the build (so report.html exists exactly when it is most needed)."""
    from .. import check
    return check.check_model(name, os.path.abspath(binary), sanitized and os.path.abspath(sanitized), model_path,
                             graph_json, params_npz, qtable_json, test_npz, report_json, raise_on_failure=False,
                             kernels=kernels, labels=labels)


def diagnostics_stage(name: str, binary: str, graph_json: str, params_npz: str, qtable_json: str, data_npz: str,
                      diagnostics_json: str) -> dict[str, Any]:
    """Per-layer SNR and saturation of the trace binary against the float network (nnscons.diagnostics)."""
    from .. import diagnostics
    return diagnostics.diagnostics_stage(name, os.path.abspath(binary), graph_json, params_npz, qtable_json,
                                         data_npz, diagnostics_json)


def report_html_stage(name: str, report_json: str, graph_json: str, qtable_json: str, plan_json: str,
                      report_html: str, diagnostics_json: Optional[str] = None, stats_npz: Optional[str] = None,
                      ranges_json: Optional[str] = None) -> None:
    """``report.html`` (nnscons.report_html), then the check's verdict: a failed check fails here."""
    from .. import fileio
    from .. import report_html as html
    html.report_stage(name, report_json, graph_json, qtable_json, plan_json, report_html, diagnostics_json,
                      stats_npz, ranges_json)
    failures = fileio.read_json(report_json).get("failures")
    if failures:   # the page is written but not recorded by the build: it is redone until the check passes
        raise NnsconsError(report_json, "; ".join(failures))


def firmware_inputs_stage(name: str, graph_json: str, qtable_json: str, test_npz: Optional[str], inputs_c: str,
                          inputs_npz: str, frontend: Optional[str] = None) -> None:
    """The inputs a firmware image embeds, and the same for the host binary (nnscons.firmware)."""
    from .. import firmware
    firmware.inputs_stage(name, graph_json, qtable_json, test_npz, inputs_c, inputs_npz, frontend)


def features_stage(graph_json: str, audio_npz: str, features_npz: str, frontend: str) -> None:
    """A set of raw audio as the features the network reads (nnscons.frontend)."""
    from ..frontend import stage
    stage.features_stage(graph_json, audio_npz, features_npz, frontend)


def frontend_stage(name: str, frontend: str, frontend_c: str, frontend_h: str) -> None:
    """The front end's C (nnscons.frontend)."""
    from ..frontend import stage
    stage.frontend_stage(name, frontend, frontend_c, frontend_h)


def frontend_check_stage(name: str, frontend: str, binary: str, audio_npz: str, check_json: str,
                         network_binary: Optional[str] = None, graph_json: Optional[str] = None,
                         features_npz: Optional[str] = None) -> None:
    """The front end's host runner compared with cmsisdsp frame by frame, and the network's host binary on raw
    audio against its features (nnscons.frontend_proof)."""
    from .. import frontend_proof
    frontend_proof.frontend_check_stage(name, frontend, binary, audio_npz, check_json, network_binary,
                                        graph_json, features_npz)


# The stage of every step kind: the registry the faces dispatch through.
STAGES: dict[str, Callable[..., Any]] = {
    "import": import_stage,
    "stats": stats_stage,
    "ranges": ranges_stage,
    "quantize": quantize_stage,
    "codegen": codegen_stage,
    "check": check_stage,
    "diagnostics": diagnostics_stage,
    "report_html": report_html_stage,
    "firmware_inputs": firmware_inputs_stage,
    "features": features_stage,
    "frontend": frontend_stage,
    "frontend_check": frontend_check_stage,
}
