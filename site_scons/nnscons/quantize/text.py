"""The stage's files (package :mod:`nnscons.quantize`): ``qtable.txt`` for people, and :func:`write_qtable`.

``qtable.txt`` is the seed's table to check by hand: one row per layer in execution order (formats of its
tensors and, for Q-formats, the legacy shifts, else the first multiplier and shift and the clamp), then one row
per activation tensor with its statistics and chosen range. The two column sets are chosen once by scheme.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Optional

from .. import fileio, ir
from .. import ranges as rg
from .common import Q_BITS, QTable


def write_qtable(qtable: QTable, json_path: str | os.PathLike, txt_path: str | os.PathLike,
                 qparams_path: str | os.PathLike) -> None:
    fileio.write_json(json_path, qtable.tables)
    fileio.write_text(txt_path, qtable.text)
    fileio.write_npz(qparams_path, qtable.qparams)


@dataclass(frozen=True)
class _Columns:
    """What the layer table shows beyond the formats: its legend, its last columns and their cells."""

    legend: Callable[[dict[str, Any]], list[str]]
    header: tuple[str, ...]
    cells: Callable[[dict[str, Any]], list[str]]


def render_text(graph: ir.Graph, tables: dict[str, Any], ranges: Optional[rg.RangeTable]) -> str:
    """``qtable.txt``: one row per layer in execution order, then one per activation tensor."""
    scheme = tables["scheme"]
    columns = _Q_COLUMNS if scheme in Q_BITS else _AFFINE_COLUMNS
    tensors = tables["tensors"]
    lines = [f"nnscons quantization table: scheme {scheme} (requested {tables['requested']}), range "
             f"{tables['range']}, {tables['word_bits']}-bit activations, model {tables['model_quantized']}", ""]
    if tables.get("warnings"):
        lines += [f"warning: {text}" for text in tables["warnings"]] + [""]
    lines += columns.legend(tables)
    lines.append("")
    rows = [["layer", "type", "input", "weight", "bias", "output", *columns.header]]
    for name in tables["order"]:
        layer = tables["layers"][name]
        data_inputs = [x for x in layer["inputs"] if tensors[x]["role"] not in ("weight", "bias")]
        weight = layer.get("weights")
        bias = layer.get("bias")
        rows.append([name, layer["type"], ", ".join(_fmt(tensors[x]) for x in data_inputs) or "-",
                     _fmt(tensors[weight]) if weight else "-", _fmt(tensors[bias]) if bias else "-",
                     ", ".join(_fmt(tensors[y]) for y in layer["outputs"]), *columns.cells(layer)])
    lines += fileio.text_table(rows)
    lines += ["", "activations"]
    lines += fileio.text_table(_activation_rows(graph, tensors, ranges))
    return "\n".join(lines) + "\n"


def _activation_rows(graph: ir.Graph, tensors: dict[str, Any], ranges: Optional[rg.RangeTable]) -> list[list[str]]:
    rows = [["tensor", "role", "shape", "min", "max", "range", "format"]]
    for name in graph.activations():
        if name not in tensors:
            continue
        t = tensors[name]
        ts = ranges.tensors.get(name) if ranges is not None else None
        have = ts is not None
        rows.append([name, t["role"], "x".join(map(str, t["shape"])),
                     f"{ts.min:.6g}" if have else "-", f"{ts.max:.6g}" if have else "-",  # type: ignore[union-attr]
                     f"[{t['range'][0]:.6g}, {t['range'][1]:.6g}]" if "range" in t else "-", _fmt(t)])
    return rows


def _fmt(t: dict[str, Any]) -> str:
    if "qformat" in t:
        return t["qformat"]
    if not t["scale"]:
        return t["dtype"]
    text = f"{t['scale'][0]:.6g}/{t['zero_point'][0]}"
    return text + (f" (x{len(t['scale'])})" if len(t["scale"]) > 1 else "")


# ---- Q-format schemes: the legacy shifts ------------------------------------------------------------------------
def _q_legend(tables: dict[str, Any]) -> list[str]:
    lines = ["Q-formats Qm.n: n fractional bits, m integer bits (sign excluded); real = q * 2^-n.",
             "bias_shift = (fi + fw) - fb, out_shift = (fi + fw) - fo; on s8/s16 kernels a Q-format is "
             "scale 2^-n, zero point 0."]
    if any(isinstance(layer.get("out_shift"), list) for layer in tables["layers"].values()):
        lines.append("Per-channel formats: coarsest..finest (x channels); their out_shift: smallest..largest "
                     "(x channels).")
    return lines


def _q_cells(layer: dict[str, Any]) -> list[str]:
    return [str(layer.get("bias_shift", "-")) if layer.get("weights") else "-", _q_out_shift(layer)]


def _q_out_shift(layer: dict[str, Any]) -> str:
    if "out_shift" not in layer:
        return "-"
    if "align_shift" in layer:
        return f"{layer['out_shift']} (align {layer['align_shift']})"
    shift = layer["out_shift"]
    if isinstance(shift, list):
        low, high = str(min(shift)), str(max(shift))
        return f"{low if low == high else low + '..' + high} (x{len(shift)})"
    return str(shift)


# ---- affine schemes: the first multiplier and shift, the clamp --------------------------------------------------
def _affine_legend(tables: dict[str, Any]) -> list[str]:
    return ["Formats scale/zero_point (real = scale * (q - zero_point)); per-channel: first scale "
            "and (xN) channels. mult/shift: first channel and count."]


def _affine_cells(layer: dict[str, Any]) -> list[str]:
    mult, shift = _first_mult(layer)
    return [mult, shift, f"[{layer['act_min']}, {layer['act_max']}]" if "act_min" in layer else "-"]


def _first_mult(layer: dict[str, Any]) -> tuple[str, str]:
    if isinstance(layer.get("multiplier"), list):
        count = len(layer["multiplier"])
        suffix = f" (x{count})" if count > 1 else ""
        return f"{layer['multiplier'][0]}{suffix}", str(layer["shift"][0])
    if "multiplier" in layer:
        return str(layer["multiplier"]), str(layer["shift"])
    if "output_multiplier" in layer:
        return str(layer["output_multiplier"]), str(layer["output_shift"])
    if "input_multiplier" in layer:
        return str(layer["input_multiplier"]), str(layer["input_left_shift"])
    return "-", "-"


_Q_COLUMNS = _Columns(_q_legend, ("bias_shift", "out_shift"), _q_cells)
_AFFINE_COLUMNS = _Columns(_affine_legend, ("multiplier", "shift", "act"), _affine_cells)
