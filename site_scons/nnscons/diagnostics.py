"""Per-layer diagnostics: where a quantization loses accuracy (the seed's "test the result", layer by layer).

The check stage compares only the network's final output with the float reference. To see *which* layer's
format costs the accuracy, this stage runs the trace build of the host test binary (compiled with
``-DNNSCONS_TRACE``: after every layer the generated code calls ``nnscons_trace``, which the test main implements
by appending the layer's output bytes to ``$NNSCONS_TRACE_DIR/<layer>.bin``) on the test set (or the calibration
set when there is no test set), and compares every traced layer output, dequantized, with the same tensor of the
float reference interpreter (``reference.run(..., keep=True)``). The C is the truth here: nothing is simulated.

Per layer (``diagnostics.json``, in execution order):

``snr_db``         SNR of the C layer output against the float tensor, in dB (None: identical). Errors accumulate,
                   so this is the SNR *at* that point of the network.
``input_snr_db``   the lowest SNR among the layer's data inputs (the graph input: the float input quantized as the
                   C does it), and ``snr_drop_db`` = input - output SNR: what this layer's own arithmetic and output
                   format cost. A large drop at an ``add`` or ``concat`` usually means the inputs' formats are far
                   apart (the finer one loses its low bits when aligned).
``grid_snr_db``    SNR of the float tensor rounded to the layer's output format (and clamped): the best this format
                   can do, whatever the arithmetic before it.
``saturated``      values of the C output at the integer type's minimum or maximum where the float reference, put
                   on the same grid without clamping, lies *beyond* that limit: the clamp changed the value. Values
                   at a limit because the float value is at (or near) it are excluded: a ReLU's zero on an
                   asymmetric int8 grid (zero point -128) *is* the minimum, and a ReLU output the float network
                   puts one or two steps above zero but the C's rounding error puts below is the ReLU at work, not
                   a format too narrow. ``saturated_low`` / ``saturated_high`` split it by side.
``clipped``        float reference values beyond the representable range (what the range method cut off, or values
                   the calibration set never showed), whatever the C computed.

``gates``          a recurrent layer's gates (and an LSTM's cell state): what their formats allow, measured on the
                   float reference's gate values (the kernels keep them inside): ``pre_activation_grid_snr_db``
                   (the gate's input on its int16 2^-12 grid, or Q3.(W-4) for the legacy lowering),
                   ``activation_grid_snr_db`` (its sigmoid / tanh on Q0.15 or Q0.(W-1)) and ``beyond_pct`` (the
                   pre-activations the format saturates).

Trace files are read through the runner's ``index.txt`` (``layer_index layer_name element_size count``, one line
per call of the first inference: a streamed layer's bands add up). Layers
the trace does not list (absorbed input quantize / output dequantize ops, reshapes that only alias their input)
are simply absent.
"""
from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from . import check, data, fileio, ir, reference
from .errors import NnsconsError

MAX_SAMPLES = 500          # samples of the set to trace (the first ones): enough for stable per-layer numbers
DIAGNOSTICS_FORMAT = "nnscons-diagnostics"


# ---- running the trace binary ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TracedLayer:
    index: int
    name: str
    values: np.ndarray     # [N, count], the integer outputs of every inference


def read_trace(directory: str, dtypes: dict[str, str], samples: int) -> list[TracedLayer]:
    """The layers a trace run wrote, in index order; ``dtypes`` gives each layer's integer type by name (a
    layer not in it is skipped)."""
    index_path = os.path.join(directory, "index.txt")
    try:
        with open(index_path, encoding="ascii") as f:
            lines = [line.split() for line in f if line.strip()]
    except FileNotFoundError:
        raise NnsconsError(index_path, "the trace binary wrote no index: was it built with -DNNSCONS_TRACE "
                                       "(and does the generated code call nnscons_trace)?") from None
    counts: dict[tuple[int, str], int] = {}
    for fields in lines:
        if len(fields) != 4 or not all(f.isdigit() for f in (fields[0], fields[2], fields[3])):
            raise NnsconsError(index_path, f"unreadable line {' '.join(fields)!r}")
        index, name, element_size, count = int(fields[0]), fields[1], int(fields[2]), int(fields[3])
        if name not in dtypes:
            continue
        if np.dtype(dtypes[name]).itemsize != element_size:
            raise NnsconsError(index_path, f"layer {name}: {element_size}-byte elements, the table says "
                                           f"{np.dtype(dtypes[name])}")
        counts[(index, name)] = counts.get((index, name), 0) + count     # a streamed layer: one line per band
    layers = []
    for (index, name), count in counts.items():
        path = os.path.join(directory, name + ".bin")
        raw = np.fromfile(path, dtype=np.dtype(dtypes[name]))
        if raw.size != samples * count:
            raise NnsconsError(path, f"holds {raw.size} values, expected {samples} inferences of {count}")
        layers.append(TracedLayer(index, name, raw.reshape(samples, count)))
    return sorted(layers, key=lambda layer: layer.index)


def run_trace(binary: str, inputs: np.ndarray | list[np.ndarray], dtypes: dict[str, str],
              n_outputs: int = 1) -> list[TracedLayer]:
    """Run the trace build on ``inputs`` (per network input ``[N, *input_shape]``, IR layout; one array for a
    network with one input) and read every layer's outputs."""
    arrays = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
    with tempfile.TemporaryDirectory(prefix="nnscons-trace-") as tmp:
        trace_dir = os.path.join(tmp, "trace")
        os.mkdir(trace_dir)
        check.run_network(binary, arrays, n_outputs, env=dict(os.environ, NNSCONS_TRACE_DIR=trace_dir))
        return read_trace(trace_dir, dtypes, len(arrays[0]))


# ---- measures -----------------------------------------------------------------------------------------------------------
def _round_half_away(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _snr(reference_values: np.ndarray, values: np.ndarray) -> Optional[float]:
    snr = check.snr_db(reference_values.astype(np.float64), values.astype(np.float64))
    return None if snr is None else float(snr)


def _levels(real: np.ndarray, tensor: dict[str, Any]) -> np.ndarray:
    """The float values on the tensor's integer grid, rounded but not clamped (float64)."""
    return _round_half_away(real.astype(np.float64) / float(tensor["scale"][0])) + int(tensor["zero_point"][0])


def _dequantize(q: np.ndarray, tensor: dict[str, Any]) -> np.ndarray:
    return ir.dequantize(q, tensor["scale"], tensor["zero_point"])


def format_text(tensor: dict[str, Any]) -> str:
    """A tensor's format for people: ``Q3.4`` or ``scale/zero_point``."""
    if "qformat" in tensor:
        return str(tensor["qformat"])
    return f"{tensor['scale'][0]:.6g}/{tensor['zero_point'][0]}"


def layer_measures(q: np.ndarray, ref: np.ndarray, tensor: dict[str, Any]) -> dict[str, Any]:
    """SNRs, saturation and clipping of one layer's integer outputs ``q`` against the float ``ref`` (see the
    module docstring for the rules)."""
    info = np.iinfo(np.dtype(tensor["dtype"]))
    q = q.reshape(-1).astype(np.int64)
    ref = ref.reshape(-1).astype(np.float64)
    levels = _levels(ref, tensor)
    on_grid = _dequantize(np.clip(levels, info.min, info.max), tensor)
    low = (q == info.min) & (levels < info.min)
    high = (q == info.max) & (levels > info.max)
    ours = _dequantize(q, tensor)
    return {
        "elements": int(q.size),
        "snr_db": _snr(ref, ours),
        "grid_snr_db": _snr(ref, on_grid),
        "max_abs_error": round(float(np.max(np.abs(ref - ours))) if q.size else 0.0, 6),
        "saturated": int(low.sum() + high.sum()),
        "saturated_low": int(low.sum()),
        "saturated_high": int(high.sum()),
        "saturated_pct": round(100.0 * float(low.sum() + high.sum()) / max(q.size, 1), 4),
        "clipped": int(np.count_nonzero((levels < info.min) | (levels > info.max))),
    }


def _snr_key(value: Optional[float]) -> float:
    return math.inf if value is None else value


def input_snr(graph: ir.Graph, qtable: dict[str, Any], x_real: np.ndarray, index: int = 0) -> Optional[float]:
    """SNR of network input ``index`` as the C sees it: the float input quantized with the input's parameters
    (the test main's conversion: round half away from zero, saturate)."""
    net_in = check.network_names(graph, qtable)[0][index]
    tensor = qtable["tensors"][net_in]
    info = np.iinfo(np.dtype(tensor["dtype"]))
    q = np.clip(_levels(x_real, tensor), info.min, info.max)
    return _snr(x_real.astype(np.float64), _dequantize(q, tensor))


def _on_grid(real: np.ndarray, scale: float, bits: int) -> tuple[np.ndarray, float]:
    """``real`` on a ``bits``-bit grid of step ``scale`` (rounded, clamped), and the % of values beyond it."""
    top = 2 ** (bits - 1)
    levels = _round_half_away(real.astype(np.float64) / scale)
    beyond = float(np.mean((levels < -top) | (levels > top - 1))) * 100 if levels.size else 0.0
    return np.clip(levels, -top, top - 1) * scale, round(beyond, 4)


def gate_measures(op: ir.Op, entry: dict[str, Any], dtype: str, floats: dict[str, np.ndarray]) -> dict[str, Any]:
    """What each gate's formats allow (grid SNRs from the float reference: the gate's pre-activation on its
    format, int16 at 2^-12 on the s8/s16 kernels or Q3.(W-4) on the legacy ones, and its sigmoid or tanh of that
    on Q0.15 / Q0.(W-1) against the exact one), and an LSTM's cell state on its int16 format; the % of
    pre-activations beyond the format."""
    bits = 16 if not entry.get("legacy") else np.iinfo(np.dtype(dtype)).bits
    pre_scale = 2.0 ** -(12 if not entry.get("legacy") else entry["gate_frac"])
    out, result = op.outputs[0], {}
    for gate in ir.RECURRENT_LAYOUTS[op.type].gates:
        function = np.tanh if gate in ("cell", "candidate") else (lambda v: 1.0 / (1.0 + np.exp(-v)))
        pre = floats[out + ir.GATE_SUFFIX + gate].astype(np.float64)
        pre_grid, beyond = _on_grid(pre, pre_scale, bits)
        after, _ = _on_grid(function(pre_grid), 2.0 ** -(bits - 1), bits)
        result[gate] = {"pre_activation_grid_snr_db": _snr(pre, pre_grid), "beyond_pct": beyond,
                        "activation_grid_snr_db": _snr(function(pre), after)}
    if op.type == "lstm":
        power = entry["cell_scale_power"] if "cell_scale_power" in entry else -entry["cell_frac"]
        cell = floats[out + ir.CELL_STATE_SUFFIX].astype(np.float64)
        cell_grid, beyond = _on_grid(cell, 2.0 ** power, 16)
        result["cell state"] = {"pre_activation_grid_snr_db": _snr(cell, cell_grid), "beyond_pct": beyond}
    return result


# ---- the stage ----------------------------------------------------------------------------------------------------------
def diagnose(name: str, binary: str, graph: ir.Graph, params: dict[str, np.ndarray], qtable: dict[str, Any],
             x_ir: np.ndarray | dict[str, np.ndarray], dataset: str) -> dict[str, Any]:
    """Run the trace binary on ``x_ir`` (by graph input, float IR layout; one array for a network with one input)
    and measure every traced layer (the ``diagnostics.json`` content)."""
    feeds = {graph.inputs[0]: x_ir} if isinstance(x_ir, np.ndarray) else dict(x_ir)
    feeds = {tensor: x[:MAX_SAMPLES] for tensor, x in feeds.items()}
    samples = len(feeds[graph.inputs[0]])
    tensors = qtable["tensors"]
    dtypes = {op.name: tensors[op.outputs[0]]["dtype"] for op in graph.ops
              if op.outputs[0] in tensors and tensors[op.outputs[0]]["dtype"] in ("int8", "int16")}
    traced = run_trace(binary, [feeds[n] for n in graph.inputs], dtypes, len(graph.outputs))
    if not traced:
        raise NnsconsError(binary, "the trace listed no layer of this model")
    floats = dict(feeds)                       # every tensor, and the values inside the recurrent layers
    for _, produced in reference.iterate(graph, params, feeds):
        floats.update(produced)
    net_inputs = check.network_names(graph, qtable)[0]
    snr_of: dict[str, Optional[float]] = {net_in: input_snr(graph, qtable, floats[net_in], k)
                                          for k, net_in in enumerate(net_inputs)}
    by_name = {layer.name: layer for layer in traced}
    layers = []
    for op in graph.ops:                       # graph order, so every input's SNR is known before it is read
        out = op.outputs[0]
        layer = by_name.get(op.name)
        if layer is None:                      # untraced (a reshape aliasing its input): passes its input's SNR on
            if op.inputs and op.inputs[0] in snr_of:
                snr_of[out] = snr_of[op.inputs[0]]
            continue
        ref = floats[out].reshape(samples, -1)
        if ref.shape[1] != layer.values.shape[1]:
            raise NnsconsError(binary, f"layer {layer.name}: traced {layer.values.shape[1]} values, the tensor "
                                       f"{out} has {ref.shape[1]}")
        entry: dict[str, Any] = {"index": layer.index, "layer": layer.name, "type": op.type, "label": op.label,
                                 "tensor": out, "dtype": tensors[out]["dtype"], "format": format_text(tensors[out])}
        entry.update(layer_measures(layer.values, ref, tensors[out]))
        inputs = [t for t in op.inputs if not graph.tensors[t].is_const and t in snr_of]
        in_snr = min((snr_of[t] for t in inputs), key=_snr_key) if inputs else None
        entry["input_snr_db"] = in_snr
        entry["snr_drop_db"] = (None if entry["snr_db"] is None else
                                round(float(in_snr) - entry["snr_db"], 3) if in_snr is not None else None)
        snr_of[out] = entry["snr_db"]
        if op.type in ir.RECURRENT_LAYOUTS:
            entry["gates"] = gate_measures(op, qtable["layers"][op.name], tensors[out]["dtype"], floats)
        layers.append(entry)
    return {"format": DIAGNOSTICS_FORMAT, "model": name, "scheme": qtable["scheme"], "range": qtable.get("range"),
            "dataset": dataset, "samples": int(samples), "layers": layers}


def diagnostics_stage(name: str, binary: str, graph_json: str, params_npz: str, qtable_json: str,
                      data_npz: str, out_json: str) -> dict[str, Any]:
    """``diagnostics.json`` for a model: its trace binary run on ``data_npz`` (test or calibration set)."""
    graph, params = ir.load(graph_json, params_npz)
    qtable = fileio.read_json(qtable_json)
    result = diagnose(name, binary, graph, params, qtable, data.load_inputs(data_npz, graph),
                      os.path.basename(data_npz))
    fileio.write_json(out_json, result)
    return result


# ---- people ---------------------------------------------------------------------------------------------------------------
def snr_text(value: Optional[float]) -> str:
    return "exact" if value is None else f"{value:.1f}"


def diagnostics_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per layer for a text or HTML table."""
    rows = []
    for entry in result["layers"]:
        rows.append({"layer": entry["layer"], "type": entry["type"], "format": entry["format"],
                     "SNR dB": snr_text(entry["snr_db"]), "drop dB": "-" if entry["snr_drop_db"] is None
                     else f"{entry['snr_drop_db']:.1f}", "grid SNR dB": snr_text(entry["grid_snr_db"]),
                     "saturated": f"{entry['saturated']} ({entry['saturated_pct']:.2f}%)",
                     "clipped": entry["clipped"]})
        for gate, g in entry.get("gates", {}).items():     # a recurrent layer's gates: what their formats allow
            activation = g.get("activation_grid_snr_db", "-")
            rows.append({"layer": f"  {gate}", "type": "gate", "format": "grid SNR: pre / after", "SNR dB": "-",
                         "drop dB": "-", "grid SNR dB": f"{snr_text(g['pre_activation_grid_snr_db'])} / "
                         f"{activation if activation == '-' else snr_text(activation)}",
                         "saturated": f"{g['beyond_pct']:.2f}% beyond", "clipped": "-"})
    return rows
