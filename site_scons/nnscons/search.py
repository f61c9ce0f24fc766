"""``range=search``: choose each layer's output Q-format by the accuracy it gives (the ranges stage, Q schemes).

The CIFAR-10 example quantizer of CMSIS-NN (shared/seeds/003_...) quantizes "layer-by-layer incrementally with
minimal loss in accuracy", validating every choice on data. This method does the same for the power-of-two
schemes (``q7``, ``q15``):

1. Start from the ``minmax`` ranges and their Q-formats.
2. Take the layers whose output format is free (convolutions, fully connected, add, sub, mul: the layers with an
   ``out_shift`` in the table) in graph order. For each, try its output format moved by -3..+3 bits (fewer
   fractional bits = a wider range, more = finer steps and clipping), with every earlier layer's choice kept,
   and keep the best move if it scores *strictly* better than the current table. Greedy, one pass.
3. The score is, in order: accuracy on the validation split when the calibration set has integer labels ``y``
   (else top-1 agreement with the float reference; skipped for single-value outputs), then the SNR of the
   network output against the float reference (so that among equally accurate tables the more faithful wins).
   Since a move is kept only if it improves the score, the result never scores below ``minmax`` on the split.

The validation split is every second calibration sample (odd indices), at most ``MAX_VALIDATION`` of them. The
statistics (and so the ``minmax`` start) come from the whole calibration set.

A moved format is expressed as a range: ``k`` more fractional bits is the minmax range times ``2^-k``, which
:func:`~nnscons.ranges.q_frac_bits` turns into exactly ``k`` more bits. Tensors that keep their input's format
(relu, pooling, reshape, concat: same format as their first data input in the minmax table and no ``out_shift``)
move with the layer that feeds them, so the group's shared format moves as a whole. The quantize stage then
builds the table from ``ranges.json`` like for any other method, applying its constraints (e.g. an output cannot
be finer than its accumulator), so the searched table is the one the build uses.

Each candidate is evaluated with :class:`~nnscons.simulate.Simulator` (a numpy model of the quantized network),
not by compiling the C. Measured on this machine: 23-76 ms per candidate for digits_cnn and mnist8_onnx (25 and 19
candidates: about 1 s a search), against 0.5-0.7 s to quantize, generate, compile and run one candidate in C.
Only the ops from the first one the move changes are recomputed. The C stays the truth: the simulation is
bit-exact with it on convolutions, pooling and fully connected layers (s8/s16 and legacy kernels; tested layer
by layer through the trace build), and only approximates softmax, so the search's score can differ slightly
from what the C then achieves, and a small validation split can favour a table that does slightly worse on the
test set (mnist8_onnx q7: 90.8% instead of minmax's 91.0%). The affine schemes (``int8``, ``int16x8``) are not supported: their
ranges are not powers of two and the method is defined on Q-formats; ``range=search`` with them is an error.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from . import ir, reference, simulate
from . import quantize as qz
from . import ranges as rg
from . import stats as st
from .errors import NnsconsError

MOVES = (-3, -2, -1, 1, 2, 3)      # bits tried around the current format of each layer
MAX_VALIDATION = 512
SEARCH_SCHEMES = ("q7", "q15")


@dataclass(frozen=True)
class Score:
    """What a candidate table achieves on the validation split (compared as a tuple: accuracy first)."""

    accuracy: Optional[float]      # labels, or top-1 agreement with float; None for single-value outputs
    snr_db: float                  # network output vs the float reference (inf when identical)

    def key(self) -> tuple[float, float]:
        return (-1.0 if self.accuracy is None else self.accuracy, self.snr_db)

    def better_than(self, other: "Score") -> bool:
        return self.key() > other.key()

    def to_json(self) -> dict[str, Any]:
        return {"accuracy": None if self.accuracy is None else round(self.accuracy, 6),
                "snr_db": None if math.isinf(self.snr_db) else round(self.snr_db, 3)}


def snr_db(reference_values: np.ndarray, values: np.ndarray) -> float:
    """SNR in dB of ``values`` against ``reference_values`` (inf when identical)."""
    noise = float(np.sum((reference_values.astype(np.float64) - values) ** 2))
    signal = float(np.sum(reference_values.astype(np.float64) ** 2))
    return math.inf if noise == 0.0 else 10.0 * math.log10(max(signal, 1e-30) / noise)


def validation_split(x: np.ndarray, labels: Optional[np.ndarray]) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Every second sample (odd indices; all of them for a single sample), at most MAX_VALIDATION."""
    index = np.arange(1, len(x), 2)[:MAX_VALIDATION] if len(x) > 1 else np.arange(len(x))
    return x[index], (labels[index] if labels is not None else None)


def free_layers(graph: ir.Graph, tables: dict[str, Any]) -> list[ir.Op]:
    """Ops whose output format the Q-format table chooses freely (they have an ``out_shift``)."""
    return [op for op in graph.ops if "out_shift" in tables["layers"].get(op.name, {})]


def _keeps_input_format(graph: ir.Graph, tables: dict[str, Any], op: ir.Op) -> Optional[str]:
    """The data input whose format ``op``'s output keeps, or None."""
    if "out_shift" in tables["layers"].get(op.name, {}):
        return None
    data_inputs = [t for t in op.inputs if not graph.tensors[t].is_const]
    tensors = tables["tensors"]
    if not data_inputs or op.outputs[0] not in tensors or data_inputs[0] not in tensors:
        return None
    same = tensors[op.outputs[0]].get("frac_bits") == tensors[data_inputs[0]].get("frac_bits")
    return data_inputs[0] if same else None


def moved_ranges(graph: ir.Graph, base: rg.RangeTable, base_tables: dict[str, Any],
                 moves: dict[str, int]) -> rg.RangeTable:
    """The minmax ranges with each free layer's output (and the tensors keeping its format) moved by
    ``moves[op]`` fractional bits."""
    shift: dict[str, int] = {}
    for op in graph.ops:
        out = op.outputs[0]
        if op.name in moves:
            shift[out] = moves[op.name]
        else:
            kept = _keeps_input_format(graph, base_tables, op)
            if kept is not None and kept in shift:
                shift[out] = shift[kept]
    tensors = {}
    for name, r in base.tensors.items():
        k = shift.get(name, 0)
        tensors[name] = rg.TensorRange(r.min, r.max, math.ldexp(r.lo, -k), math.ldexp(r.hi, -k)) if k else r
    return rg.RangeTable(base.scheme, "search", tensors)


class _Evaluator:
    """Scores candidate tables on the validation split, reusing the unchanged prefix of the last best run."""

    def __init__(self, graph: ir.Graph, params: dict[str, np.ndarray], x: np.ndarray,
                 labels: Optional[np.ndarray], quant: str, api: str) -> None:
        self.graph, self.params, self.quant, self.api = graph, params, quant, api
        self.sim = simulate.Simulator(graph, params, {graph.inputs[0]: x}, api)
        self.output = graph.outputs[0]
        self.reference = reference.run(graph, params, {graph.inputs[0]: x})[self.output].reshape(len(x), -1)
        self.classes = self.reference.shape[1] > 1
        usable = labels is not None and labels.ndim == 1 and np.issubdtype(labels.dtype, np.integer)
        self.labels = labels if usable and self.classes else None
        self.metric = ("accuracy" if self.labels is not None else "top1_agreement" if self.classes else "snr")
        self.best_tables: Optional[dict[str, Any]] = None
        self.best_values: Optional[dict[str, np.ndarray]] = None

    def table(self, ranges: rg.RangeTable) -> Optional[qz.QTable]:
        try:
            return qz.build_qtable(self.graph, self.params, ranges, self.quant, self.api)
        except NnsconsError:        # a move the shifts cannot express (outside 0..31): not a candidate
            return None

    def run(self, qtable: qz.QTable) -> dict[str, np.ndarray]:
        start = 0
        if self.best_tables is not None:
            start = simulate.first_difference(self.graph, self.best_tables, qtable.tables)
            if start is None:
                return dict(self.best_values or {})
        return self.sim.run(qtable.tables, qtable.qparams, start, self.best_values)

    def score(self, values: dict[str, np.ndarray]) -> Score:
        out = values[self.output].reshape(len(self.reference), -1)
        snr_value = snr_db(self.reference, out)
        if not self.classes:
            return Score(None, snr_value)
        predicted = out.argmax(1)
        truth = self.labels if self.labels is not None else self.reference.argmax(1)
        return Score(float(np.mean(predicted == truth)), snr_value)

    def accept(self, qtable: qz.QTable, values: dict[str, np.ndarray]) -> None:
        self.best_tables, self.best_values = qtable.tables, values


def search_ranges(graph: ir.Graph, params: dict[str, np.ndarray], stats: st.Stats, scheme: str,
                  x: np.ndarray, labels: Optional[np.ndarray] = None, api: str = "s8") -> tuple[rg.RangeTable,
                                                                                                dict[str, Any]]:
    """The searched ranges and a log of the search (``x``: the calibration inputs, IR layout; ``labels``: their
    labels if any). See the module docstring."""
    if scheme not in SEARCH_SCHEMES:
        raise NnsconsError(None, f"range=search chooses power-of-two Q-formats: it supports quant=q7 and q15, not "
                                 f"{scheme} (use minmax, percentile:P or mse with the affine schemes)")
    x_val, y_val = validation_split(x, labels)
    base = rg.range_table(stats, scheme, "minmax")
    evaluator = _Evaluator(graph, params, x_val, y_val, scheme, api)
    base_q = evaluator.table(rg.RangeTable(scheme, "search", base.tensors))
    if base_q is None:
        raise NnsconsError(None, "range=search: the minmax table itself cannot be built for this scheme")
    values = evaluator.run(base_q)
    current = evaluator.score(values)
    evaluator.accept(base_q, values)
    start = current
    moves: dict[str, int] = {}
    steps = []
    for op in free_layers(graph, base_q.tables):
        best_move, best_score, best = 0, current, None
        tried = {}
        for move in MOVES:
            candidate = evaluator.table(moved_ranges(graph, base, base_q.tables, {**moves, op.name: move}))
            if candidate is None:
                continue
            candidate_values = evaluator.run(candidate)
            score = evaluator.score(candidate_values)
            tried[str(move)] = score.to_json()
            if score.better_than(best_score):
                best_move, best_score, best = move, score, (candidate, candidate_values)
        if best is not None:
            moves[op.name] = best_move
            current = best_score
            evaluator.accept(*best)
        steps.append({"layer": op.name, "tensor": op.outputs[0], "move": best_move, "score": current.to_json(),
                      "tried": tried})
    log = {"metric": evaluator.metric, "validation_samples": int(len(x_val)), "start": start.to_json(),
           "final": current.to_json(), "moves": {k: v for k, v in moves.items() if v}, "layers": steps}
    return moved_ranges(graph, base, base_q.tables, moves), log
