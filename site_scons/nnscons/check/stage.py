"""The check stage (part of :mod:`nnscons.check`): run the host test binary, prove what it computes, write
``report.json``, and the row ``scons target=host check`` prints from it."""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from .. import data, fileio, ir, reference
from ..errors import NnsconsError
from . import outputs as out_metrics
from .network import (NetworkTensor, dequantize, network_tensors, random_network_inputs, run_network)

RANDOM_INPUTS = 100
SANITIZER_RANDOM_INPUTS = 8      # without a test set, the sanitized binary runs on these
STATEFUL_OPS = ("lstm", "svdf")         # ops whose state the generated code carries from call to call


# ---- the two kinds of proof -------------------------------------------------------------------------------------
def tflm_outputs(model_path: str, inputs: Sequence[np.ndarray], n_outputs: int = 1,
                 stream: bool = False) -> list[np.ndarray]:
    """TensorFlow Lite Micro's outputs, one inference per sample (inputs in the model's own dtype and layout), each
    from the state after a reset (recurrent layers' state tensors), or with ``stream`` the samples as one stream
    from one reset (the state carried from each inference to the next)."""
    try:
        from tflite_micro import runtime
    except ImportError:
        raise NnsconsError(model_path, "the check needs TFLite Micro: pip install tflite-micro") from None
    interpreter = runtime.Interpreter.from_file(model_path)
    results: list[list[np.ndarray]] = [[] for _ in range(n_outputs)]
    for i in range(len(inputs[0])):
        if not stream or i == 0:
            interpreter.reset()
        for k, x in enumerate(inputs):
            interpreter.set_input(x[i][np.newaxis], k)
        interpreter.invoke()
        for k in range(n_outputs):
            results[k].append(np.array(interpreter.get_output(k))[0])
    return [np.stack(r) for r in results]


def bit_exact_report(binary: str, model_path: str, name: str, inputs: Sequence[NetworkTensor], n_outputs: int,
                     native: Optional[list[np.ndarray]], stateful: bool = False) -> tuple[dict[str, Any],
                                                                                          list[np.ndarray]]:
    """Every output byte against TFLite Micro's, on the test set's inputs (``native``: in the model's own integer
    type) and on random ones, each from a reset; for a network with state (``stateful``) also the same inputs as
    one stream (``stream``: the binary's --stream against TFLite Micro without resets)."""
    samples = random_network_inputs(name, inputs, RANDOM_INPUTS)
    if native is not None:
        samples = [np.concatenate([x.astype(t.dtype), r]) for x, t, r in zip(native, inputs, samples)]
    report = _compare(run_network(binary, samples, n_outputs), tflm_outputs(model_path, samples, n_outputs))
    report.update({"reference": "tflite_micro", "test_inputs": int(0 if native is None else len(native[0])),
                   "random_inputs": RANDOM_INPUTS})
    if stateful:
        stream = _compare(run_network(binary, samples, n_outputs, stream=True),
                          tflm_outputs(model_path, samples, n_outputs, stream=True))
        report["stream"] = stream
        report["bit_exact"] = report["bit_exact"] and stream["bit_exact"]
    return report, samples


def _compare(ours: list[np.ndarray], theirs: list[np.ndarray]) -> dict[str, Any]:
    """How many samples differ in any output byte, and by how much at most."""
    count = len(ours[0])
    differs = np.zeros(count, dtype=bool)
    max_diff = 0
    for o, t in zip(ours, theirs):
        t = t.reshape(o.shape).astype(o.dtype)
        differs |= np.any(o.reshape(count, -1) != t.reshape(count, -1), axis=1)
        max_diff = max(max_diff, int(np.max(np.abs(o.astype(np.int64) - t.astype(np.int64)))) if o.size else 0)
    return {"inputs": int(count), "mismatched_inputs": int(differs.sum()), "max_abs_diff": max_diff,
            "bit_exact": bool(not differs.any())}


def float_report(binary: str, graph: ir.Graph, params: dict[str, np.ndarray], qtable: dict[str, Any],
                 test: data.TestSet, outputs: Sequence[NetworkTensor], refs: Optional[dict[str, np.ndarray]] = None,
                 reference_name: str = "nnscons float reference") -> dict[str, Any]:
    """The quantized network against the float reference on the test set, per output (see
    :mod:`nnscons.check.outputs`). One output: its measures at the top level; several: a list ``outputs``.
    ``refs``: the float outputs by graph output (IR layout) from another interpreter, called ``reference_name``
    (:mod:`.original`); by default nnscons' reference interpreter's."""
    x = [test.inputs[name] for name in graph.inputs]
    ours = run_network(binary, x, len(outputs))
    refs = refs if refs is not None else reference.run(graph, params, test.inputs)
    measures = []
    for k, (name, tensor, q) in enumerate(zip(graph.outputs, outputs, ours)):
        values = dequantize(q, qtable["tensors"][tensor.name]).reshape(test.samples, -1)
        ref = refs[name].reshape(test.samples, -1)
        entry = out_metrics.output_metrics(test.path, graph, name, ref, values, test.expected[k], test.inputs)
        measures.append(entry if len(outputs) == 1 else
                        {"output": f"y{k}", "tensor": ir.c_comment(graph.tensors[name].label), **entry})
    report: dict[str, Any] = {"reference": reference_name, "inputs": int(test.samples)}
    if len(measures) == 1:
        report.update(measures[0])
    else:
        report["outputs"] = measures
    return report


def sanitizer_report(binary: str, sanitized: str, inputs: list[np.ndarray], n_outputs: int) -> dict[str, Any]:
    try:
        plain, checked = run_network(binary, inputs, n_outputs), run_network(sanitized, inputs, n_outputs)
        same = all(np.array_equal(a, b) for a, b in zip(plain, checked))
        return {"inputs": int(len(inputs[0])), "clean": True, "same_outputs": same}
    except NnsconsError as e:
        return {"inputs": int(len(inputs[0])), "clean": False, "same_outputs": False,
                "error": ir.c_comment(e.message, 200)}


# ---- the stage ---------------------------------------------------------------------------------------------------
def native_inputs(graph: ir.Graph, test: Optional[data.TestSet]) -> Optional[list[np.ndarray]]:
    """The test set's inputs as stored, when every one is in the model's own integer type."""
    if test is None:
        return None
    arrays = []
    for key, name in zip(data.input_keys(graph), graph.inputs):
        x = test.raw[key]
        if x.dtype != np.dtype(graph.tensors[name].dtype):
            return None
        perm = graph.input_perm.get(name)
        arrays.append(np.ascontiguousarray(x.transpose(perm)) if perm else x)
    return arrays


def test_set_classes(binary: str, native: list[np.ndarray], outputs: Sequence[NetworkTensor]) -> Any:
    """The class (largest output) the binary gives every test input: a list for one output, else per output
    of several values ``{"y0": [...]}``; None when no output has several values."""
    results = run_network(binary, native, len(outputs))
    classes = {f"y{k}": [int(c) for c in r.reshape(len(r), -1).argmax(1)]
               for k, (r, t) in enumerate(zip(results, outputs)) if t.size > 1}
    if len(outputs) == 1:
        return classes.get("y0")
    return classes or None


def check_model(name: str, binary: str, sanitized: Optional[str], model_path: str, graph_json: str, params_npz: str,
                qtable_json: str, test_npz: Optional[str], report_json: str, raise_on_failure: bool = True,
                kernels: Optional[str] = None, labels: Optional[Sequence[str]] = None) -> dict[str, Any]:
    """Prove the host binary and write ``report.json``. A failed proof is listed under ``failures`` and, with
    ``raise_on_failure``, raised after the report is written. ``kernels`` names the kernel library in the report;
    ``labels`` the classes of a one-output classifier (model.toml), with which the report also holds the class
    the binary gives each test input. A bad test set is one error line, and no report."""
    graph, params = ir.load(graph_json, params_npz)
    qtable = fileio.read_json(qtable_json)
    inputs, outputs = network_tensors(graph, qtable)
    test = data.load_test_set(test_npz, graph) if test_npz else None
    report: dict[str, Any] = {"model": name, "scheme": qtable["scheme"], "range": qtable.get("range"),
                              "source": graph.source_file}
    if kernels is not None:
        report["kernels"] = kernels
    if labels:
        if len(outputs) != 1 or outputs[0].size != len(labels):
            raise NnsconsError(name, f"model.toml names {len(labels)} classes (labels); the network's output has "
                                     f"{outputs[0].size if len(outputs) == 1 else len(outputs)} "
                                     f"{'values' if len(outputs) == 1 else 'outputs'}")
        report["labels"] = list(labels)
    failures: list[str] = []
    probe = [test.inputs[n] for n in graph.inputs] if test is not None else None
    if qtable["scheme"] == "model" and graph.source == "tflite":
        native = native_inputs(graph, test)
        stateful = any(op.type in STATEFUL_OPS for op in graph.ops)
        report["bit_exact"], probe = bit_exact_report(binary, model_path, name, inputs, len(outputs), native,
                                                      stateful)
        exact = report["bit_exact"]
        if not exact["bit_exact"]:
            stream = exact.get("stream", {}).get("mismatched_inputs", 0)
            failures.append(f"{exact['mismatched_inputs']} of {exact['inputs']} inputs differ from TFLite Micro"
                            + (f" ({stream} as one stream)" if stream else ""))
        classes = test_set_classes(binary, native, outputs) if native is not None else None
        if classes is not None:
            report["test_set_classes"] = classes
    if test is not None:
        report["float"] = float_report(binary, graph, params, qtable, test, outputs)
        if labels and "test_set_classes" not in report:
            report["test_set_classes"] = test_set_classes(binary, [test.inputs[n] for n in graph.inputs], outputs)
    if sanitized:
        probe = probe if probe is not None else random_network_inputs(name, inputs, SANITIZER_RANDOM_INPUTS)
        report["sanitizers"] = sanitizer_report(binary, sanitized, probe, len(outputs))
        if not (report["sanitizers"]["clean"] and report["sanitizers"]["same_outputs"]):
            failures.append("the sanitized binary " + (f"failed: {report['sanitizers'].get('error', '?')}"
                                                       if not report["sanitizers"]["clean"]
                                                       else "gave different outputs"))
    report["passed"] = not failures
    if failures:
        report["failures"] = failures
    fileio.write_json(report_json, report)
    if failures and raise_on_failure:
        raise NnsconsError(report_json, "; ".join(failures))
    return report


# ---- people --------------------------------------------------------------------------------------------------------
def output_measures(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The float comparison's measures per output (one entry for a one-output network; none without it)."""
    flt = report.get("float")
    if not flt:
        return []
    return list(flt["outputs"]) if "outputs" in flt else [flt]


def _classes_text(classes: Any, labels: Optional[Sequence[str]] = None) -> str:
    if isinstance(classes, dict):
        return "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in sorted(classes.items()))
    return " ".join(labels[c] if labels else str(c) for c in classes or [])


def _shortened(text: str, width: int) -> str:
    """``text`` cut at a word boundary to fit ``width`` characters (then "...")."""
    if len(text) <= width:
        return text
    return text[:width - 3].rsplit(" ", 1)[0] + "..."


def summary_row(report: dict[str, Any]) -> dict[str, Any]:
    """One line of the check table printed by ``scons target=host check``: per output (``y0: ...; y1: ...`` for
    several) the agreement with float by the output's kind, accuracy (labels) or error (reference outputs), SNR
    and largest error against float."""
    row: dict[str, Any] = {"model": report["model"], "scheme": report["scheme"]}
    exact = report.get("bit_exact")
    row["tflm bit-exact"] = f"{'yes' if exact['bit_exact'] else 'NO'} ({exact['inputs']} inputs)" if exact else "-"
    measures = output_measures(report)
    row["vs float"] = out_metrics.per_output(measures, out_metrics.agreement_text) if measures else "-"
    row["accuracy"] = out_metrics.per_output(measures, out_metrics.accuracy_text) if measures else "-"
    row["SNR dB"] = out_metrics.per_output(measures, out_metrics.snr_text) if measures else "-"
    row["max error"] = (out_metrics.per_output(measures, lambda m: f"{m['max_abs_error']:.4g}") if measures
                        else "-")
    san = report.get("sanitizers")
    row["asan+ubsan"] = ("clean" if san["clean"] and san["same_outputs"] else "FAILED") if san else "-"
    row["classes"] = _shortened(_classes_text(report.get("test_set_classes"), report.get("labels")), 20) or "-"
    return row
