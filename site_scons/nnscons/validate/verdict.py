"""What ``nnscons validate`` concludes from what it measured (part of :mod:`nnscons.validate`): the rows of its one
table (measure, value, verdict), the failures, and the table as text. Pure: it reads the report, computes nothing.

A row's verdict is ``pass`` or ``FAIL`` with the bound it was held to, or empty for a figure that is only reported.
Held to a bound: bit-exactness with TFLite Micro (a model with its own quantization); a quantized network's top-1
agreement (classifier outputs) and SNR (every output) against the original model's interpreter; accuracy on the
labels when ``--min-accuracy`` is given; the sanitizers; a front end's C against cmsisdsp; every firmware's
output bytes against the host binary's.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

from ..check import output_measures
from ..fileio import text_table

Row = tuple[str, str, str]       # measure, value, verdict


@dataclass(frozen=True)
class Thresholds:
    min_agreement: float              # fraction 0..1, per classifier output
    min_snr_db: float                 # per output
    min_accuracy: Optional[float]     # fraction, per output with labels; None: not required

    def to_json(self) -> dict[str, Any]:
        return {"min_agreement": self.min_agreement, "min_snr_db": self.min_snr_db,
                "min_accuracy": self.min_accuracy}


def _percent(value: float) -> str:
    return f"{100 * value:.2f}%"


def _bound(ok: bool, held: str, failed: str) -> str:
    return f"pass ({held})" if ok else f"FAIL ({failed})"


def _exact_row(exact: Mapping[str, Any]) -> Row:
    stream = exact.get("stream")
    extra = f"; as one stream {stream['mismatched_inputs']} differ" if stream else ""
    value = f"{'yes' if exact['bit_exact'] else 'NO'}: {exact['mismatched_inputs']} of {exact['inputs']} inputs " \
            f"differ ({exact['test_inputs']} test, {exact['random_inputs']} random){extra}"
    return "bit-exact with TFLite Micro", value, "pass" if exact["bit_exact"] else "FAIL"


def output_rows(m: Mapping[str, Any], prefix: str, judged: bool, th: Thresholds) -> list[Row]:
    """One output's rows: agreement and SNR (held to the thresholds when ``judged``), error, accuracy."""
    rows: list[Row] = []
    if "top1_agreement" in m:
        value = m["top1_agreement"]
        verdict = _bound(value >= th.min_agreement, f">= {_percent(th.min_agreement)}",
                         f"< {_percent(th.min_agreement)}") if judged else ""
        rows.append((prefix + "top-1 agreement", _percent(value), verdict))
    if m.get("anomaly_score_rank_correlation") is not None:
        rows.append((prefix + "anomaly score rank correlation", f"{m['anomaly_score_rank_correlation']:.4f}", ""))
    snr = m.get("snr_db")
    snr_ok = snr is None or snr >= th.min_snr_db
    rows.append((prefix + "SNR", "exact" if snr is None else f"{snr:.2f} dB",
                 _bound(snr_ok, f">= {th.min_snr_db:g} dB", f"< {th.min_snr_db:g} dB") if judged else ""))
    rows.append((prefix + "max abs error", f"{m['max_abs_error']:.4g}", ""))
    if "accuracy_quantized" in m:
        value, bound = m["accuracy_quantized"], th.min_accuracy
        verdict = "" if bound is None else _bound(value >= bound, f">= {_percent(bound)}", f"< {_percent(bound)}")
        rows.append((prefix + "accuracy (labels)", f"{_percent(value)} (float {_percent(m['accuracy_float'])})",
                     verdict))
    if m.get("anomaly_auc_quantized") is not None:
        rows.append((prefix + "anomaly AUC (labels)", f"{m['anomaly_auc_quantized']:.4f} (float "
                                                      f"{m['anomaly_auc_float']:.4f})", ""))
    if "target_rmse_quantized" in m:
        rows.append((prefix + "RMSE vs reference outputs", f"{m['target_rmse_quantized']:.4g} (float "
                                                           f"{m['target_rmse_float']:.4g})", ""))
    return rows


def _firmware_rows(target: str, fw: Mapping[str, Any]) -> list[Row]:
    same = fw["inputs"] - fw["mismatched_inputs"]
    rows = [(f"{target}: firmware == host", f"{same} of {fw['inputs']} inferences byte for byte",
             "pass" if fw["identical"] else "FAIL"),
            (f"{target}: instructions per inference", f"{fw['instructions']['mean']:,} ({fw['machine']}, QEMU "
                                                      "-icount)", ""),
            (f"{target}: image flash / RAM", f"{fw['flash']:,} / {fw['ram']:,} B", "")]
    model = fw["model"]
    stack = f", stack {fw['stack']:,} B" if fw.get("stack") is not None else ""
    rows.append((f"{target}: the model in the image", f"code {model['code']:,} B, weights {model['rodata']:,} B, "
                                                      f"arena {fw['arena']:,} B{stack}", ""))
    return rows


def table_rows(report: Mapping[str, Any], th: Thresholds) -> list[Row]:
    """Every row of the table, in order."""
    rows: list[Row] = []
    exact = report.get("bit_exact")
    if exact:
        rows.append(_exact_row(exact))
    judged = exact is None            # a quantization nnscons made (or an ONNX one): held to the thresholds
    measures = output_measures(dict(report))
    if report.get("compared_with"):
        rows.append(("compared with", report["compared_with"], ""))
    elif judged:
        rows.append(("compared with", "nothing: no test or calibration set to run the original model on", "FAIL"))
    for m in measures:
        rows += output_rows(m, f"{m['output']} " if "output" in m else "", judged, th)
    san = report.get("sanitizers")
    if san:
        ok = san["clean"] and san["same_outputs"]
        value = f"clean, same outputs ({san['inputs']} inputs)" if ok else \
            (f"FAILED: {san.get('error')}" if not san["clean"] else "other outputs than the plain binary")
        rows.append(("ASan + UBSan", value, "pass" if ok else "FAIL"))
    frontend = report.get("frontend_check")
    if frontend:
        rows.append(("front end C == cmsisdsp", f"{frontend['equal_frames']} of {frontend['frames']} frames",
                     "pass" if frontend["bit_exact"] else "FAIL"))
    sizes = report["sizes"]
    rows.append(("model flash: code + constants", f"{sizes['code']:,} + {sizes['constants']:,} B "
                                                  f"({sizes['compiler']} -O2, {sizes['target']})", ""))
    rows.append(("arena", f"{sizes['arena']:,} B", ""))
    for target, fw in sorted(report.get("firmware", {}).items()):
        rows += _firmware_rows(target, fw)
    return rows


def failures_of(rows: list[Row]) -> list[str]:
    return [f"{measure}: {value} {verdict[len('FAIL '):]}".rstrip() for measure, value, verdict in rows
            if verdict.startswith("FAIL")]


def table_text(rows: list[Row]) -> str:
    return "\n".join(text_table([("measure", "value", "verdict"), *rows]))
