"""The one table of the main job: per model, what the checks proved and what the firmware costs.

Read from the files the build wrote: the host checks (build/host/<name>/report.json: accuracy, agreement with the
float model, bit-exactness with TensorFlow Lite Micro), the firmware runs (build/<target>/report.json: instructions
per inference, code, weights, RAM) and the firmware checks (build/<target>/<name>/firmware_check.json: the
firmware's output bytes against the host binary's).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Sequence


def _accuracy(report: Mapping[str, Any]) -> str:
    """Against the test set's labels (accuracy) or reference outputs (RMSE), float's in brackets; per output for
    several outputs."""
    names = report.get("labels")

    def text(m: Mapping[str, Any]) -> str:
        if "accuracy_quantized" in m:
            return f"{100 * m['accuracy_quantized']:.1f}% ({100 * m['accuracy_float']:.1f}%)" + _worst(m, names)
        if m.get("anomaly_auc_quantized") is not None:
            return f"AUC {m['anomaly_auc_quantized']:.3f} ({m['anomaly_auc_float']:.3f})"
        if "target_rmse_quantized" in m:
            return f"rmse {m['target_rmse_quantized']:.3g} ({m['target_rmse_float']:.3g})"
        return "-"
    return _per_output(report, text)


def _worst(m: Mapping[str, Any], names: Optional[Sequence[str]]) -> str:
    """The class the C gets right least often, by its name (only for a model whose model.toml names them)."""
    classes = m.get("per_class")
    if not names or not classes:
        return ""
    worst = min(classes, key=lambda c: (c["accuracy_quantized"], c["class"]))
    return f", worst {names[worst['class']]} {100 * worst['accuracy_quantized']:.0f}%"


def _agreement(report: Mapping[str, Any]) -> str:
    """With the float network, by the output's kind: top-1 for a classifier, the anomaly score's rank correlation
    for a reconstruction, else the SNR."""
    def text(m: Mapping[str, Any]) -> str:
        if "top1_agreement" in m:
            return f"{100 * m['top1_agreement']:.1f}%"
        if m.get("anomaly_score_rank_correlation") is not None:
            return f"score rank corr {m['anomaly_score_rank_correlation']:.3f}"
        if m.get("snr_db") is not None:
            return f"{m['snr_db']:.1f} dB"
        return "-"
    return _per_output(report, text)


def _per_output(report: Mapping[str, Any], text: Callable[[Mapping[str, Any]], str]) -> str:
    flt = report.get("float", {})
    if "outputs" not in flt:
        return text(flt)
    return "; ".join(f"{m['output']}: {text(m)}" for m in flt["outputs"])


def _bit_exact(report: Mapping[str, Any]) -> str:
    exact = report.get("bit_exact")
    return ("yes" if exact["bit_exact"] else "NO") if exact else "-"


def overview_rows(host_reports: Sequence[Mapping[str, Any]], run_reports: Sequence[Mapping[str, Any]],
                  firmware_checks: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per model and Cortex-M target (one per model when no firmware ran)."""
    host = {r["model"]: r for r in host_reports}
    same = {(c["target"], c["model"]): c["identical"] for c in firmware_checks}
    models = sorted(set(host) | {m for r in run_reports for m in [*r["models"], *r.get("refused", {})]})
    rows = []
    for name in models:
        r = host.get(name, {})
        base = {"model": name, "scheme": r.get("scheme", "-"), "accuracy (float)": _accuracy(r),
                "vs float": _agreement(r), "tflm exact": _bit_exact(r)}
        runs = [run for run in run_reports if name in run["models"] or name in run.get("refused", {})]
        if not runs:
            rows.append(base)
        for run in runs:
            target = run["target"]
            if name not in run["models"]:   # a board left it out: it does not fit (one line saying why)
                why = run["refused"][name]
                rows.append({**base, "target": target, "fw == host": "-", "result": "refused: " + why})
                continue
            m = run["models"][name]
            image = m["image"]
            identical = same.get((target, name))
            rows.append({**base, "target": target, "instructions": count_text(run, m["instructions"]["mean"]),
                         "flash": f"{image['code'] + image['rodata']:,}",
                         "ram": f"{image['data'] + image['bss']:,}",
                         "fw == host": "-" if identical is None else ("yes" if identical else "NO"),
                         **({"front end": frontend_cell(m["frontend"], run.get("dsp"), run.get("unit", ""))} if "frontend" in m else {})})
    return rows


def frontend_cell(frontend: Mapping[str, Any], dsp: Optional[Mapping[str, int]], run_unit: str = "") -> str:
    """An audio front end's instructions per clip and flash (its tables and code, and CMSIS-DSP's code)."""
    flash = sum(part["code"] + part["rodata"] for part in (frontend["image"], dsp or {"code": 0, "rodata": 0}))
    unit = "cycles" if run_unit == "cycles" else "instr"
    return f"{frontend['instructions']['mean']:,} {unit}, {flash:,} B"


OVERVIEW_COLUMNS = ["model", "scheme", "accuracy (float)", "vs float", "tflm exact", "target", "instructions",
                    "flash", "ram", "fw == host", "front end", "result"]


def count_text(run: Mapping[str, Any], count: int) -> str:
    """A firmware report's count for a table: instructions (a clock under QEMU -icount) as a number, ``1,234``;
    cycles (DWT, on hardware) say so, ``1,234 cycles``."""
    return f"{count:,}" + (" cycles" if run.get("unit") == "cycles" else "")


def model_row(name: str, graph_json: str, qtable_json: str | None) -> dict[str, Any]:
    """One line of the chain summary (``scons summary`` without a target): source, ops, weights, shapes, scheme."""
    import os

    from . import fileio, ir
    graph = ir.Graph.from_json(fileio.read_json(graph_json))
    row: dict[str, Any] = {
        "model": name, "source": graph.source_file, "ops": len(graph.ops),
        "weights": sum(t.size for t in graph.tensors.values() if t.is_const),
        "input": ", ".join("x".join(map(str, graph.tensors[t].shape)) for t in graph.inputs),
        "output": ", ".join("x".join(map(str, graph.tensors[t].shape)) for t in graph.outputs),
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
    from .fileio import text_table
    cells = [columns] + [[str(r.get(c, "")) for c in columns] for r in rows]
    return "\n".join(text_table(cells))
