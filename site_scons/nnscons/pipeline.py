"""The stages as file-to-file functions: what one node of the build graph does.

The SCons tool and the ``nnscons`` CLI both call these and nothing else, so a model built by SCons and by CMake
goes through identical code. Each function reads its inputs from files, writes its outputs atomically and
deterministically, and raises :class:`~nnscons.errors.NnsconsError` on bad input.

``STAGE_MODULES`` lists, per stage, the library modules whose code shapes its output: the build makes each
node depend on those files, because SCons signs a Python action by its own bytecode only, not by the code it
calls (shared/reference/scons-facts.md section 2). ``tests/test_pipeline.py`` checks the lists against what
the stages really import.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Mapping, Optional

from . import data, fileio, ir
from . import options as nn_options
from .errors import NnsconsError
from .importers import import_model

PACKAGE_DIR = Path(__file__).resolve().parent

_COMMON = ("__init__.py", "errors.py", "fileio.py", "ir.py", "pipeline.py")
# Entries are module files ("stats.py") or packages ("importers": every .py file under importers/).
STAGE_MODULES: dict[str, tuple[str, ...]] = {
    "import": _COMMON + ("importers",),
    "stats": _COMMON + ("data.py", "reference.py", "stats.py"),
    "ranges": _COMMON + ("options.py", "stats.py", "ranges.py"),
    "quantize": _COMMON + ("options.py", "stats.py", "ranges.py", "fixedpoint.py", "quantize"),
    "codegen": _COMMON + ("options.py", "planner.py", "kernels.py", "fixedpoint.py", "codegen",
                          "codegen_legacy.py", "legacy_layouts.py"),
    "check": _COMMON + ("data.py", "reference.py", "check.py"),
    # range=search: the ranges stage also runs the quantizer and a simulation of the quantized network
    "ranges_search": _COMMON + ("options.py", "stats.py", "ranges.py", "data.py", "reference.py", "fixedpoint.py",
                                "quantize", "simulate.py", "search.py"),
    "diagnostics": _COMMON + ("data.py", "reference.py", "check.py", "diagnostics.py"),
    "report_html": _COMMON + ("data.py", "reference.py", "check.py", "stats.py", "diagnostics.py", "report_html.py"),
    # the firmware nodes (embedded inputs, model list, QEMU run, firmware check) call nnscons.firmware directly
    "firmware": ("__init__.py", "errors.py", "fileio.py", "ir.py", "data.py", "reference.py", "check.py",
                 "targets.py", "firmware.py"),
}


def module_files(entry: str) -> list[Path]:
    """The source files of a STAGE_MODULES entry: a module file, or every .py of a package (module file or
    package, whichever exists, so a module can become a package without touching the lists)."""
    path = PACKAGE_DIR / entry
    if path.suffix == ".py" and not path.is_file() and path.with_suffix("").is_dir():
        path = path.with_suffix("")
    if path.suffix != ".py" and not path.is_dir() and path.with_suffix(".py").is_file():
        path = path.with_suffix(".py")
    return sorted(path.rglob("*.py")) if path.is_dir() else [path]


# A CMSIS-NN checkout's float kernels, left out of the integer kernel library (cmake/nnscons.cmake filters alike)
FLOAT_KERNEL_SUFFIXES = ("_f16.c", "_f32.c", "_flt.c")
RUNTIME_DIR = PACKAGE_DIR / "runtime"          # C sources compiled with the generated code (host test main)
TEMPLATE_DIR = PACKAGE_DIR / "templates"
REPORT_TEMPLATES = ("report.html.j2",)         # report_html's, not code generation's


def stage_sources(stage: str) -> list[str]:
    """Absolute paths of the files a stage's output depends on (its modules; for codegen also the templates)."""
    files = [str(f) for m in STAGE_MODULES[stage] for f in module_files(m)]
    if stage == "codegen":
        files += sorted(str(p) for p in TEMPLATE_DIR.glob("*.j2") if p.name not in REPORT_TEMPLATES)
    if stage == "report_html":
        files += [str(TEMPLATE_DIR / t) for t in REPORT_TEMPLATES]
    return files


def import_stage(model_path: str, graph_json: str, params_npz: str) -> ir.Graph:
    graph, params = import_model(model_path)
    ir.save(graph, params, graph_json, params_npz)
    return graph


def stats_stage(graph_json: str, params_npz: str, calib_npz: str, stats_npz: str, stats_txt: Optional[str] = None,
                progress: Optional[bool] = None) -> None:
    from . import stats
    graph, params = ir.load(graph_json, params_npz)
    inputs = data.load_inputs(calib_npz, graph)
    result = stats.compute_stats(graph, params, inputs, progress=progress)
    stats.save_stats(stats_npz, result)
    if stats_txt:
        fileio.write_text(stats_txt, stats.stats_table(graph, result))


def ranges_stage(graph_json: str, stats_npz: str, options: Mapping[str, str], ranges_json: str,
                 params_npz: Optional[str] = None, calib_npz: Optional[str] = None) -> None:
    """``ranges.json`` from the statistics; ``range=search`` also needs the weights and the calibration set
    (``params_npz``, ``calib_npz``) and adds its log under the key ``search``."""
    from . import ranges, stats
    graph = ir.Graph.from_json(fileio.read_json(graph_json))
    scheme = nn_options.resolve_scheme_for(graph.quantized, options["quant"])
    if options["range"] != "search":
        table = ranges.range_table(stats.load_stats(stats_npz), scheme, options["range"])
        fileio.write_json(ranges_json, table.to_json())
        return
    from . import search
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
    from . import quantize, ranges
    graph, params = ir.load(graph_json, params_npz)
    if ranges_json is None and nn_options.resolve_scheme_for(graph.quantized, options["quant"]) != "model":
        raise NnsconsError(model_dir or graph_json, f"quant={options['quant']} needs activation statistics: "
                                                    "add a calibration set calib.npz (key x) to the model folder")
    table = ranges.RangeTable.from_json(fileio.read_json(ranges_json)) if ranges_json else None
    qtable = quantize.build_qtable(graph, params, table, options["quant"], options.get("api", "s8"))
    quantize.write_qtable(qtable, qtable_json, qtable_txt, qparams_npz)
    return qtable.tables


def codegen_stage(name: str, graph_json: str, qtable_json: str, qparams_npz: str, options: Mapping[str, str],
                  src_dir: str, plan_json: str) -> list[str]:
    """Generate ``<name>.h``, ``<name>_model.c``, ``<name>_weights.c`` into ``src_dir`` and the arena plan."""
    from . import codegen
    graph = ir.Graph.from_json(fileio.read_json(graph_json))
    qtable = fileio.read_json(qtable_json)
    qparams = fileio.read_npz(qparams_npz)
    digest = hashlib.sha256()
    for path in (graph_json, qtable_json, qparams_npz):
        with open(path, "rb") as f:
            digest.update(f.read())
    digest.update(fileio.canonical_json(dict(options)).encode())
    files = codegen.generate(name, graph, qtable, qparams, options["api"], digest.hexdigest()[:16],
                             options.get("legacy_softmax", "input"))
    written = []
    for file_name, text in sorted(files.items()):
        path = plan_json if file_name == "plan.json" else os.path.join(src_dir, file_name)
        fileio.write_text(path, text)
        written.append(path)
    return written


def codegen_outputs(name: str) -> list[str]:
    """File names codegen writes into the source folder, header first."""
    return [f"{name}.h", f"{name}_model.c", f"{name}_weights.c"]


def check_stage(name: str, binary: str, sanitized: Optional[str], model_path: str, graph_json: str,
                params_npz: str, qtable_json: str, test_npz: Optional[str], report_json: str) -> dict[str, Any]:
    from . import check
    return check.check_model(name, binary, sanitized, model_path, graph_json, params_npz, qtable_json, test_npz,
                             report_json)


def diagnostics_stage(name: str, binary: str, graph_json: str, params_npz: str, qtable_json: str, data_npz: str,
                      diagnostics_json: str) -> dict[str, Any]:
    """Per-layer SNR and saturation of the trace binary against the float network (nnscons.diagnostics)."""
    from . import diagnostics
    return diagnostics.diagnostics_stage(name, binary, graph_json, params_npz, qtable_json, data_npz,
                                         diagnostics_json)


def report_html_stage(name: str, report_json: str, graph_json: str, qtable_json: str, plan_json: str,
                      report_html: str, diagnostics_json: Optional[str] = None, stats_npz: Optional[str] = None,
                      ranges_json: Optional[str] = None) -> None:
    """``report.html`` (nnscons.report_html)."""
    from . import report_html as html
    html.report_stage(name, report_json, graph_json, qtable_json, plan_json, report_html, diagnostics_json,
                      stats_npz, ranges_json)


def summary_row(name: str, graph_json: str, qtable_json: Optional[str]) -> dict[str, Any]:
    """One line of the build summary for a model."""
    graph = ir.Graph.from_json(fileio.read_json(graph_json))
    row: dict[str, Any] = {
        "model": name, "source": graph.source_file, "ops": len(graph.ops),
        "weights": sum(t.size for t in graph.tensors.values() if t.is_const),
        "input": "x".join(map(str, graph.tensors[graph.inputs[0]].shape)),
        "output": "x".join(map(str, graph.tensors[graph.outputs[0]].shape)),
        "model_quant": graph.quantized,
    }
    if qtable_json and os.path.exists(qtable_json):
        tables = fileio.read_json(qtable_json)
        row["scheme"] = tables.get("scheme", "?")
        row["range"] = tables.get("range", "?")
        row["layers"] = len(tables.get("layers", {}))
    return row


def format_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A plain aligned text table."""
    cells = [columns] + [[str(r.get(c, "")) for c in columns] for r in rows]
    return "\n".join(fileio.text_table(cells))
