"""``report.html``: one self-contained page per model, to read a quantization at a glance.

It gathers what the build already computed into pictures and tables (no network access, no scripts, no external
files: images are base64 PNG inside the page):

* the check (``report.json``): accuracy against the labels and the float reference, top-1 agreement, SNR,
  bit-exactness with TFLite Micro, the sanitizers;
* per layer, the diagnostics (``diagnostics.json``, :mod:`nnscons.diagnostics`): SNR of the C's output against
  the float network, the SNR a layer's own step costs, the best SNR its output format allows, saturated values;
* the seed guide's pictures: for every layer, log-scale histograms of its input (left) and output (right) over
  power-of-two bins (``stats.npz``), positive and negative values apart, on one horizontal scale for all layers,
  with the chosen range (``ranges.json``) and what the format represents (its largest magnitude and its step,
  ``qtable.json``) marked;
* the Q-format / scale table (``qtable.json``) and, with ``range=search``, what the search moved;
* the arena plan (``plan.json``) drawn as buffer lifetimes: one rectangle per buffer from the first to the last
  layer using it (x) at its byte offset (y).

Deterministic: the same inputs give the same bytes (matplotlib's Agg renderer with fixed settings and no
``Software`` metadata; no dates). Text from the model (labels) is HTML-escaped by the template engine.
"""
from __future__ import annotations

import base64
import io
import math
import os
import threading
from pathlib import Path
from typing import Any, Optional

import jinja2
import numpy as np

from . import fileio, ir
from . import stats as st
from .diagnostics import format_text, snr_text

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
TEMPLATE = "report.html.j2"
DPI = 80
_RC = {"font.family": "DejaVu Sans", "font.size": 10, "axes.titlesize": 10, "axes.labelsize": 9,
       "xtick.labelsize": 8, "ytick.labelsize": 8, "legend.fontsize": 8, "svg.hashsalt": "nnscons",
       "path.simplify": False, "figure.dpi": DPI, "savefig.dpi": DPI}
POS_COLOR, NEG_COLOR = "#1f77b4", "#d95f02"
MAX_OCTAVES = 26.0         # width of the common histogram scale at most (log2 units)


# ---- pictures -------------------------------------------------------------------------------------------------------------
def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return matplotlib, plt


def png_data_uri(fig: Any) -> str:
    """A figure as a ``data:image/png;base64,...`` URI (no metadata: the bytes depend on the picture only)."""
    _, plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def histogram_span(stats: st.Stats, names: list[str]) -> tuple[float, float]:
    """One horizontal scale (log2 |x|) for every histogram: from the smallest occupied bin to the largest."""
    lows, highs = [], []
    for name in names:
        if name in stats.tensors:
            span = st.log2_span(stats.tensors[name])
            if span:
                lows.append(span[0])
                highs.append(span[1])
    if not lows:
        return -8.0, 8.0
    high = min(float(st.EXP_MAX), math.ceil(max(highs)) + 1.0)
    # at most MAX_OCTAVES wide: a softmax's tiny probabilities would otherwise squeeze every other picture
    return max(float(st.EXP_MIN), math.floor(min(lows)) - 1.0, high - MAX_OCTAVES), high


def format_window(tensor: dict[str, Any]) -> Optional[tuple[float, float, float]]:
    """``(largest positive, largest negative magnitude, step)`` a tensor's format represents (None if unquantized)."""
    if not tensor.get("scale") or tensor["dtype"] not in ("int8", "int16"):
        return None
    info = np.iinfo(np.dtype(tensor["dtype"]))
    scale, zero_point = float(tensor["scale"][0]), int(tensor["zero_point"][0])
    return scale * (info.max - zero_point), scale * (zero_point - info.min), scale


def _draw_histogram(ax: Any, ts: st.TensorStats, tensor: Optional[dict[str, Any]], chosen: Optional[list[float]],
                    span: tuple[float, float], title: str) -> None:
    edges = np.log2(st.bin_edges())
    ax.stairs(np.maximum(ts.pos, 0.5), edges, baseline=0.5, fill=True, color=POS_COLOR, alpha=0.55,
              label="x > 0")
    ax.stairs(np.maximum(ts.neg, 0.5), edges, baseline=0.5, fill=True, color=NEG_COLOR, alpha=0.55,
              label="x < 0")
    ax.set_yscale("log")
    ax.set_xlim(*span)
    ax.set_ylim(0.8, max(10.0, float(max(ts.pos.max(initial=0), ts.neg.max(initial=0))) * 2.0))
    ax.set_xlabel("log2 |x|")
    ax.set_title(title, loc="left")
    window = format_window(tensor) if tensor else None
    if window:
        top_pos, top_neg, step = window
        if math.log2(step / 2) > span[0]:
            ax.axvspan(span[0], math.log2(step / 2), color="0.9", zorder=0, label="rounds to 0")
        ax.axvline(math.log2(step), color="0.35", linestyle=":", linewidth=1, label="step")
        if top_pos > 0:
            ax.axvline(math.log2(top_pos), color=POS_COLOR, linewidth=1.2, label="format max +")
        if top_neg > 0 and ts.neg.any():
            ax.axvline(math.log2(top_neg), color=NEG_COLOR, linewidth=1.2, label="format max -")
    if chosen:
        lo, hi = chosen
        if hi > 0:
            ax.axvline(math.log2(hi), color=POS_COLOR, linestyle="--", linewidth=1, label="range +")
        if lo < 0:
            ax.axvline(math.log2(-lo), color=NEG_COLOR, linestyle="--", linewidth=1, label="range -")
    ax.grid(True, which="major", axis="x", color="0.9", linewidth=0.5)


def layer_histograms(graph: ir.Graph, stats: st.Stats, qtable: dict[str, Any], ranges: Optional[dict[str, Any]],
                     span: tuple[float, float]) -> list[dict[str, str]]:
    """One picture per layer: its (first data) input's histogram on the left, its output's on the right."""
    _, plt = _pyplot()
    chosen = {n: v[2:4] for n, v in (ranges or {}).get("tensors", {}).items()}
    tensors = qtable.get("tensors", {})
    pictures = []
    for index, op in enumerate(graph.ops):
        inputs = [t for t in op.inputs if not graph.tensors[t].is_const]
        pair = [inputs[0] if inputs else None, op.outputs[0]]
        if not any(t in stats.tensors for t in pair if t):
            continue
        fig, axes = plt.subplots(1, 2, figsize=(12.5, 2.4), sharey=False)
        for ax, (side, name) in zip(axes, zip(("input", "output"), pair)):
            if name is None or name not in stats.tensors:
                ax.set_axis_off()
                continue
            ts = stats.tensors[name]
            fmt = format_text(tensors[name]) if name in tensors and tensors[name].get("scale") else "float"
            short = name if len(name) <= 34 else name[:31] + "..."
            title = f"{side} {short} [{fmt}] {ts.min:.3g}..{ts.max:.3g}, {ts.zeros} zeros"
            _draw_histogram(ax, ts, tensors.get(name), chosen.get(name), span, title)
        axes[1].legend(loc="upper left", ncols=2, frameon=False)
        fig.subplots_adjust(left=0.045, right=0.99, bottom=0.19, top=0.88, wspace=0.1)  # fixed: tight_layout is slow
        pictures.append({"layer": op.name, "index": str(index), "type": op.type, "label": op.label,
                         "uri": png_data_uri(fig)})
    return pictures


def plan_picture(plan: dict[str, Any], layer_count: int) -> str:
    """The arena plan: one rectangle per buffer, x = the layers it lives through, y = its bytes in the arena."""
    _, plt = _pyplot()
    from matplotlib.patches import Rectangle
    fig, ax = plt.subplots(figsize=(12.5, 4.2))
    colors = plt.get_cmap("tab20").colors
    arena = max(int(plan["activation_arena_size"]), 1)
    for i, buffer in enumerate(plan["buffers"]):
        x0, x1 = buffer["first_op"] - 0.45, buffer["last_op"] + 0.45
        y0, size = buffer["offset"], buffer["size"]
        over = buffer.get("overlap")
        ax.add_patch(Rectangle((x0, y0), x1 - x0, size, facecolor=colors[i % len(colors)], edgecolor="0.2",
                               linewidth=1.2 if over else 0.6, linestyle="--" if over else "-", alpha=0.85))
        if size >= arena * 0.04:
            ax.text((x0 + x1) / 2, y0 + size / 2, f"{buffer['name']}\n{size} B", ha="center", va="center",
                    fontsize=7, clip_on=True)
    top = _scratch_rectangles(ax, plan, Rectangle)
    ax.axhline(arena, color="#b00", linestyle="--", linewidth=1)
    ax.text(-0.5, arena, f" activation arena {arena} B", va="bottom", fontsize=7, color="#b00")
    ax.set_xlim(-0.6, max(layer_count, 1) - 0.4)
    ax.set_ylim(0, max(arena, top) * 1.08)
    ax.set_xlabel("layer (in the order they run)")
    ax.set_ylabel("arena offset (bytes)")
    ax.set_xticks(range(max(layer_count, 1)))
    ax.grid(True, axis="y", color="0.9", linewidth=0.5)
    fig.subplots_adjust(left=0.075, right=0.99, bottom=0.11, top=0.97)
    return png_data_uri(fig)


# Each build's kernel scratch as a hatched rectangle in its third of the layer's column
_SCRATCH_STYLE = {"c": ("0.35", -0.45), "dsp": ("#d62728", -0.15), "mve": ("#9467bd", 0.15)}


def _scratch_rectangles(ax: Any, plan: dict[str, Any], rectangle: Any) -> int:
    """Each layer's scratch buffer per build (plan.json ``layer_scratch``) where it is placed; the highest end."""
    top = 0
    for features, placed in sorted(plan.get("layer_scratch", {}).items()):
        color, left = _SCRATCH_STYLE.get(features, ("0.5", -0.45))
        for s in placed:
            ax.add_patch(rectangle((s["op"] + left, s["offset"]), 0.3, s["size"], facecolor="none", edgecolor=color,
                                   hatch="////", linewidth=0.8))
            top = max(top, s["offset"] + s["size"])
        ax.plot([], [], color=color, linewidth=4, label=f"scratch ({features})")
    if top:
        ax.legend(loc="upper right", fontsize=7)
    return top


def snr_picture(diagnostics: dict[str, Any]) -> Optional[str]:
    """SNR per layer (C vs float, and the format's own limit), saturated values as bars on a second axis."""
    layers = diagnostics.get("layers", [])
    if not layers:
        return None
    _, plt = _pyplot()
    fig, ax = plt.subplots(figsize=(12.5, 3.4))
    x = np.arange(len(layers))
    cap = 120.0

    def value(v: Optional[float]) -> float:
        return cap if v is None else min(cap, float(v))

    ax.plot(x, [value(e["snr_db"]) for e in layers], marker="o", color=POS_COLOR, label="SNR of the C output (dB)")
    ax.plot(x, [value(e["grid_snr_db"]) for e in layers], marker=".", linestyle=":", color="0.4",
            label="best SNR of the output format (dB)")
    ax.set_ylabel("dB")
    ax.set_xticks(x, [e["layer"] for e in layers], rotation=30, ha="right")
    ax2 = ax.twinx()
    ax2.bar(x, [e["saturated_pct"] for e in layers], color=NEG_COLOR, alpha=0.35, width=0.6,
            label="saturated values (%)")
    ax2.set_ylabel("saturated %")
    ax2.set_ylim(0, max(1.0, max(e["saturated_pct"] for e in layers) * 1.2))
    lines = ax.get_legend_handles_labels()
    bars = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + bars[0], lines[1] + bars[1], loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=3,
              frameon=False)
    ax.grid(True, axis="y", color="0.9", linewidth=0.5)
    fig.subplots_adjust(left=0.05, right=0.94, bottom=0.3, top=0.88)
    return png_data_uri(fig)


# ---- tables -----------------------------------------------------------------------------------------------------------------
def _fmt_tensor(tensor: Optional[dict[str, Any]]) -> str:
    if tensor is None:
        return "-"
    if "qformat" in tensor:
        return str(tensor["qformat"])
    if not tensor.get("scale"):
        return str(tensor["dtype"])
    text = f"{tensor['scale'][0]:.4g} / {tensor['zero_point'][0]}"
    return text + (f" (x{len(tensor['scale'])})" if len(tensor["scale"]) > 1 else "") + f" {tensor['dtype']}"


def _first(value: Any) -> str:
    if isinstance(value, list):
        return f"{value[0]}" + (f" (x{len(value)})" if len(value) > 1 else "") if value else "-"
    return "-" if value is None else str(value)


def qtable_rows(graph: ir.Graph, qtable: dict[str, Any]) -> list[dict[str, str]]:
    """Per layer: its formats (Q-format or scale / zero point) and requantization numbers."""
    tensors = qtable.get("tensors", {})
    rows = []
    for op in graph.ops:
        layer = qtable.get("layers", {}).get(op.name, {})
        data_inputs = [t for t in op.inputs if not graph.tensors[t].is_const]
        weight, bias = layer.get("weights"), layer.get("bias")
        if "out_shift" in layer:
            shifts = f"bias_shift {layer.get('bias_shift', '-')}, out_shift {layer['out_shift']}"
            if "align_shift" in layer:
                shifts = f"align {layer['align_shift']}, out_shift {layer['out_shift']}"
        elif "multiplier" in layer:
            shifts = f"mult {_first(layer['multiplier'])}, shift {_first(layer.get('shift'))}"
        else:
            shifts = "-"
        rows.append({"layer": op.name, "type": op.type, "label": op.label,
                     "input": ", ".join(_fmt_tensor(tensors.get(t)) for t in data_inputs) or "-",
                     "weight": _fmt_tensor(tensors.get(weight)) if weight else "-",
                     "bias": _fmt_tensor(tensors.get(bias)) if bias else "-",
                     "output": _fmt_tensor(tensors.get(op.outputs[0])), "shifts": shifts})
    return rows


def diagnostics_rows(diagnostics: dict[str, Any]) -> list[dict[str, Any]]:
    layers = diagnostics.get("layers", [])
    worst = max((e["snr_drop_db"] for e in layers if e["snr_drop_db"] is not None), default=None)
    rows = []
    for e in layers:
        rows.append({"layer": e["layer"], "type": e["type"], "format": e["format"],
                     "snr": snr_text(e["snr_db"]), "input_snr": snr_text(e["input_snr_db"]),
                     "drop": "-" if e["snr_drop_db"] is None else f"{e['snr_drop_db']:.1f}",
                     "grid": snr_text(e["grid_snr_db"]),
                     "saturated": f"{e['saturated']} ({e['saturated_pct']:.2f}%)",
                     "clipped": str(e["clipped"]),
                     "merge": e["type"] in ("add", "sub", "concat", "mul"),
                     "worst": worst is not None and e["snr_drop_db"] == worst and worst > 1.0,
                     "warn": e["saturated"] > 0})
    return rows


def output_items(m: dict[str, Any], prefix: str = "", names: Optional[list[str]] = None) -> list[tuple[str, str]]:
    """One output's numbers against float and the test set (see nnscons.check.outputs), labels prefixed;
    ``names``: the classes' names (model.toml's labels)."""
    items = [(prefix + "kind", str(m["kind"]))] if "kind" in m else []
    if "accuracy_quantized" in m:
        items.append((prefix + "accuracy (labels)", f"{100 * m['accuracy_quantized']:.2f}% quantized, "
                                                    f"{100 * m['accuracy_float']:.2f}% float"))
    for c in m.get("per_class", []):
        name = names[c["class"]] if names and c["class"] < len(names) else f"class {c['class']}"
        items.append((f"{prefix}  {name} ({c['count']} inputs)", f"{100 * c['accuracy_quantized']:.2f}% quantized, "
                                                                 f"{100 * c['accuracy_float']:.2f}% float"))
    if "top1_agreement" in m:
        items.append((prefix + "top-1 agreement with float", f"{100 * m['top1_agreement']:.2f}%"))
    if "anomaly_score_rank_correlation" in m:
        items.append((prefix + "anomaly score vs float", f"rank correlation {m['anomaly_score_rank_correlation']}, "
                                                         f"SNR {m['anomaly_score_snr_db']} dB"))
    if m.get("anomaly_auc_quantized") is not None:
        items.append((prefix + "anomaly AUC (labels)", f"{m['anomaly_auc_quantized']} quantized, "
                                                       f"{m['anomaly_auc_float']} float"))
    if "target_rmse_quantized" in m:
        items.append((prefix + "error vs reference outputs", f"RMSE {m['target_rmse_quantized']} quantized, "
                                                             f"{m['target_rmse_float']} float; max "
                                                             f"{m['target_max_abs_error_quantized']} quantized, "
                                                             f"{m['target_max_abs_error_float']} float"))
    items.append((prefix + "output SNR vs float", "exact" if m.get("snr_db") is None else f"{m['snr_db']} dB"))
    items.append((prefix + "max abs error", str(m.get("max_abs_error"))))
    return items


def summary_items(report: dict[str, Any]) -> list[tuple[str, str]]:
    """The check's numbers as (label, value) pairs (per output for several outputs); for ``nnscons validate``'s
    report, the rows of its table (with their verdicts) and the result."""
    if "validation" in report:
        rows = [(measure, f"{value}: {verdict}" if verdict else value)
                for measure, value, verdict in report["validation"]["rows"]]
        return rows + [("validate", "PASS" if report["passed"] else "FAIL: " + "; ".join(report["failures"]))]
    items = [("scheme", str(report.get("scheme"))), ("range method", str(report.get("range")))]
    flt = report.get("float")
    if flt:
        items.append(("test inputs", str(flt.get("inputs"))))
        for m in flt.get("outputs", [flt]):
            items += output_items(m, f"{m['output']} ({m['tensor']}): " if "output" in m else "",
                                  report.get("labels"))
    exact = report.get("bit_exact")
    if exact:
        items.append(("bit-exact with TFLite Micro", f"{'yes' if exact['bit_exact'] else 'NO'} "
                                                     f"({exact['inputs']} inputs, {exact['mismatched_inputs']} differ)"))
    san = report.get("sanitizers")
    if san:
        items.append(("ASan + UBSan", "clean" if san["clean"] and san["same_outputs"] else "FAILED"))
    items.append(("check", "passed" if report.get("passed") else "FAILED"))
    return items


_DRAWING = threading.Lock()


# ---- the page -----------------------------------------------------------------------------------------------------------------
def render_report(name: str, graph: ir.Graph, report: dict[str, Any], qtable: dict[str, Any], plan: dict[str, Any],
                  diagnostics: Optional[dict[str, Any]] = None, stats: Optional[st.Stats] = None,
                  ranges: Optional[dict[str, Any]] = None) -> str:
    """The page's HTML text."""
    matplotlib, _ = _pyplot()
    # rcParams and pyplot are process-wide: SCons runs Python actions in threads (-j), and one report's rc_context
    # ending while another draws changed that one's pictures. One drawing at a time keeps every page's bytes fixed.
    with _DRAWING, matplotlib.rc_context(_RC):
        names = [n for op in graph.ops for n in op.inputs + op.outputs if not graph.tensors[n].is_const]
        span = histogram_span(stats, names) if stats else (-8.0, 8.0)
        histograms = layer_histograms(graph, stats, qtable, ranges, span) if stats else []
        snr_uri = snr_picture(diagnostics) if diagnostics else None
        plan_uri = plan_picture(plan, len(graph.ops))
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    buffers = [{"name": b["name"], "tensors": ", ".join(b["tensors"]), "offset": b["offset"], "size": b["size"],
                "first": b["first_op"], "last": b["last_op"], "overlap": _placement_text(b, plan)}
               for b in plan["buffers"]]
    return env.get_template(TEMPLATE).render(
        name=name, source=graph.source_file, summary=summary_items(report), diagnostics=diagnostics,
        diagnostics_rows=diagnostics_rows(diagnostics) if diagnostics else [], snr_uri=snr_uri,
        histograms=histograms, has_stats=stats is not None, span=span, qtable_rows=qtable_rows(graph, qtable),
        word_bits=qtable.get("word_bits"), q_scheme=qtable.get("scheme") in ("q7", "q15"),
        search=(ranges or {}).get("search"), plan=plan, plan_uri=plan_uri, buffers=buffers,
        scratch=plan.get("scratch", {}))


def _placement_text(buffer: dict[str, Any], plan: dict[str, Any]) -> str:
    """Over which input a buffer is written, or which band of a stream (patches) it is."""
    overlap = buffer.get("overlap")
    if overlap:
        return f"{overlap['lag']} B below {overlap['over']} ({overlap['rule']})"
    for stream in plan.get("streams", []):
        band = stream["bands"].get(buffer["name"])
        if band:
            return f"band of {band['capacity']} of its {band['rows']} rows (stream of {stream['steps']} steps)"
    return ""


def report_stage(name: str, report_json: str, graph_json: str, qtable_json: str, plan_json: str,
                 out_html: str, diagnostics_json: Optional[str] = None, stats_npz: Optional[str] = None,
                 ranges_json: Optional[str] = None) -> None:
    """Write ``report.html`` from the build's files (the optional ones may be missing: a model without a
    calibration set has no statistics, one without any data set no diagnostics)."""
    graph = ir.Graph.from_json(fileio.read_json(graph_json))
    html = render_report(
        name, graph, fileio.read_json(report_json), fileio.read_json(qtable_json), fileio.read_json(plan_json),
        fileio.read_json(diagnostics_json) if diagnostics_json else None,
        st.load_stats(stats_npz) if stats_npz else None,
        fileio.read_json(ranges_json) if ranges_json and os.path.exists(ranges_json) else None)
    fileio.write_text(out_html, html)
