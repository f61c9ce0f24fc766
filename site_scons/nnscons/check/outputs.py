"""What an output of a network is, and how its quantized values are measured against the float network's (part
of :mod:`nnscons.check`).

Every output gets the SNR and the largest error of the C's dequantized values against the float reference. Then,
by its kind:

``classifier``      the output of a softmax, or an output whose test set gives class labels: top-1 agreement with
                    the float network, and with labels the accuracy of both.
``reconstruction``  an output of the shape of the network's only input, not a classifier (an autoencoder): the anomaly
                    score, the mean squared error between the input and its reconstruction, is computed from the
                    C's and from the float network's output; reported are how the two scores agree (their SNR and
                    rank correlation) and, with labels (0 normal, 1 anomalous), the ROC AUC of both.
``regression``      anything else (a single value, a regression, a feature vector): SNR and largest error only.

With reference outputs in the test set (a regression's targets), the RMSE and largest error of both networks
against them are reported too. Top-1 agreement is never reported for a regression or a reconstruction.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .. import data, ir
from ..errors import NnsconsError

KINDS = ("classifier", "reconstruction", "regression")


def snr_db(reference_values: np.ndarray, values: np.ndarray) -> Optional[float]:
    """Signal-to-noise ratio in dB; None when the two are identical (infinite SNR)."""
    signal = float(np.sum(reference_values.astype(np.float64) ** 2))
    noise = float(np.sum((reference_values.astype(np.float64) - values) ** 2))
    if noise == 0.0:
        return None
    return round(10.0 * np.log10(max(signal, 1e-30) / noise), 3)


def _producer_type(graph: ir.Graph, tensor: str) -> str:
    """The op type producing a tensor, looking through a trailing dequantize."""
    op = graph.producer(tensor)
    if op is not None and op.type == "dequantize" and op.inputs:
        op = graph.producer(op.inputs[0]) or op
    return op.type if op is not None else ""


def reconstructed_input(graph: ir.Graph, output: str) -> Optional[str]:
    """The network's only input, if the output has its shape and several values (what an autoencoder
    reconstructs)."""
    tensor = graph.tensors[output]
    if tensor.size < 2 or len(graph.inputs) != 1:
        return None
    source = graph.inputs[0]
    return source if graph.tensors[source].shape[1:] == tensor.shape[1:] else None


def output_kind(graph: ir.Graph, output: str, expected: Optional[data.Expected]) -> str:
    """``classifier``, ``reconstruction`` or ``regression`` (see the module docstring)."""
    if graph.tensors[output].size > 1 and _producer_type(graph, output) == "softmax":
        return "classifier"
    if reconstructed_input(graph, output) is not None:
        return "reconstruction"
    if expected is not None and expected.labels is not None:
        return "classifier"
    return "regression"


# ---- measures ----------------------------------------------------------------------------------------------------
def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1, ties sharing their mean rank."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), np.float64)
    ranks[order] = np.arange(len(values), dtype=np.float64)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    return np.bincount(inverse, weights=ranks)[inverse] / counts[inverse]


def rank_correlation(a: np.ndarray, b: np.ndarray) -> Optional[float]:
    """Spearman's rank correlation; None when either is constant."""
    ra, rb = _ranks(a) - (len(a) - 1) / 2, _ranks(b) - (len(b) - 1) / 2
    norm = float(np.sqrt(np.sum(ra ** 2) * np.sum(rb ** 2)))
    return None if norm == 0.0 else round(float(np.sum(ra * rb)) / norm, 6)


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> Optional[float]:
    """Area under the ROC curve of ``scores`` for ``labels`` 1 (positive) against 0; None without both."""
    positive, negative = int(np.sum(labels == 1)), int(np.sum(labels == 0))
    if positive == 0 or negative == 0:
        return None
    rank_sum = float(np.sum(_ranks(scores)[labels == 1] + 1))
    return round((rank_sum - positive * (positive + 1) / 2) / (positive * negative), 6)


def _round(value: float) -> float:
    return round(float(value), 6)


def classifier_metrics(ref: np.ndarray, ours: np.ndarray, labels: Optional[np.ndarray]) -> dict[str, Any]:
    result: dict[str, Any] = {"top1_agreement": _round(np.mean(ref.argmax(1) == ours.argmax(1)))}
    if labels is not None:
        result["accuracy_quantized"] = _round(np.mean(ours.argmax(1) == labels))
        result["accuracy_float"] = _round(np.mean(ref.argmax(1) == labels))
        result["per_class"] = [{"class": int(c), "count": int(np.sum(labels == c)),
                                "accuracy_quantized": _round(np.mean(ours.argmax(1)[labels == c] == c)),
                                "accuracy_float": _round(np.mean(ref.argmax(1)[labels == c] == c))}
                               for c in np.unique(labels)]
    return result


def anomaly_metrics(path: str, key: str, ref: np.ndarray, ours: np.ndarray, x: np.ndarray,
                    labels: Optional[np.ndarray]) -> dict[str, Any]:
    """How the C's anomaly scores (mean squared reconstruction error) agree with the float network's."""
    x = x.reshape(len(x), -1).astype(np.float64)
    score_float = np.mean((ref.astype(np.float64) - x) ** 2, axis=1)
    score_ours = np.mean((ours.astype(np.float64) - x) ** 2, axis=1)
    result: dict[str, Any] = {"anomaly_score_snr_db": snr_db(score_float, score_ours),
                              "anomaly_score_rank_correlation": rank_correlation(score_float, score_ours)}
    if labels is not None:
        if not np.all((labels == 0) | (labels == 1)):
            raise NnsconsError(path, f"{key}: the labels of a reconstruction output are anomaly labels, 0 (normal) "
                                     f"or 1 (anomalous); found {int(labels[(labels != 0) & (labels != 1)][0])}")
        result["anomaly_auc_quantized"] = roc_auc(score_ours, labels)
        result["anomaly_auc_float"] = roc_auc(score_float, labels)
    return result


def target_metrics(ref: np.ndarray, ours: np.ndarray, values: np.ndarray) -> dict[str, Any]:
    """Both networks against the test set's reference outputs."""
    target = values.reshape(len(values), -1).astype(np.float64)
    q_error, f_error = ours.astype(np.float64) - target, ref.astype(np.float64) - target
    return {"target_rmse_quantized": _round(np.sqrt(np.mean(q_error ** 2))),
            "target_rmse_float": _round(np.sqrt(np.mean(f_error ** 2))),
            "target_max_abs_error_quantized": _round(np.max(np.abs(q_error))),
            "target_max_abs_error_float": _round(np.max(np.abs(f_error)))}


def output_metrics(path: str, graph: ir.Graph, output: str, ref: np.ndarray, ours: np.ndarray,
                   expected: Optional[data.Expected], inputs: dict[str, np.ndarray]) -> dict[str, Any]:
    """Every measure of one output: ``ref`` the float network's values, ``ours`` the C's dequantized ones (both
    ``[N, values]``), ``inputs`` the float inputs by graph input (for a reconstruction's anomaly score)."""
    kind = output_kind(graph, output, expected)
    labels = expected.labels if expected is not None else None
    result: dict[str, Any] = {"kind": kind, "snr_db": snr_db(ref, ours),
                              "max_abs_error": _round(np.max(np.abs(ref - ours))) if ref.size else 0.0}
    if kind == "classifier":
        result.update(classifier_metrics(ref, ours, labels))
    elif kind == "reconstruction":
        source = reconstructed_input(graph, output)
        assert source is not None
        result.update(anomaly_metrics(path, expected.key if expected else "y", ref, ours, inputs[source], labels))
    if expected is not None and expected.values is not None:
        result.update(target_metrics(ref, ours, expected.values))
    return result


# ---- for people ----------------------------------------------------------------------------------------------------
def percent(value: float) -> str:
    return f"{100 * value:.2f}%"


def agreement_text(m: dict[str, Any]) -> str:
    """How the C agrees with float, by kind: top-1 for a classifier, the anomaly score's rank correlation for a
    reconstruction; "-" for a regression (its SNR and error say it)."""
    if "top1_agreement" in m:
        return f"{percent(m['top1_agreement'])} top-1"
    if m.get("anomaly_score_rank_correlation") is not None:
        return f"score rank corr {m['anomaly_score_rank_correlation']:.4f}"
    return "-"


def accuracy_text(m: dict[str, Any]) -> str:
    """Against the test set's labels or reference outputs: accuracy, anomaly AUC or RMSE (float's in brackets)."""
    if "accuracy_quantized" in m:
        return f"{percent(m['accuracy_quantized'])} (float {percent(m['accuracy_float'])})"
    if m.get("anomaly_auc_quantized") is not None:
        return f"AUC {m['anomaly_auc_quantized']:.4f} (float {m['anomaly_auc_float']:.4f})"
    if "target_rmse_quantized" in m:
        return f"rmse {m['target_rmse_quantized']:.4g} (float {m['target_rmse_float']:.4g})"
    return "-"


def snr_text(m: dict[str, Any]) -> str:
    return "exact" if m.get("snr_db") is None else f"{m['snr_db']}"


def per_output(measures: list[dict[str, Any]], text) -> str:
    """One cell for several outputs: ``y0: ...; y1: ...`` (outputs without the measure left out)."""
    if len(measures) == 1:
        return text(measures[0])
    cells = [f"{m['output']}: {text(m)}" for m in measures if text(m) != "-"]
    return "; ".join(cells) or "-"
