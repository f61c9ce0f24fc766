"""The check stage: run the host test binary and prove what it computes (DESIGN.md section 7).

For a model carrying its own int8/int16x8 quantization (scheme ``model``, a ``.tflite``), every output byte must
equal TensorFlow Lite Micro's, on the test set's inputs and on random inputs. For a network quantized by nnscons,
the integer outputs (dequantized) are compared with the float reference interpreter on the test set: top-1
agreement, SNR, and accuracy against the labels when the test set has them. The same inputs also go through the
binary built with AddressSanitizer and UndefinedBehaviorSanitizer, which must exit cleanly with the same outputs.

The result is ``report.json`` (deterministic: no timings, no paths). A failed proof raises
:class:`~nnscons.errors.NnsconsError` after the report is written, so the build fails and the report says why.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from typing import Any, Optional

import numpy as np

from . import data, fileio, ir, reference
from .errors import NnsconsError

RANDOM_INPUTS = 100
BINARY_TIMEOUT = 600  # seconds; a hung binary is a failure, not a hung build


# ---- running the generated network ----------------------------------------------------------------------------
def run_binary(binary: str, inputs: np.ndarray) -> np.ndarray:
    """Outputs of the host test binary for ``inputs`` ([N, *input_shape], IR layout)."""
    with tempfile.TemporaryDirectory(prefix="nnscons-check-") as tmp:
        in_path, out_path = os.path.join(tmp, "in.npy"), os.path.join(tmp, "out.npy")
        np.save(in_path, np.ascontiguousarray(inputs))
        try:
            result = subprocess.run([binary, in_path, out_path], capture_output=True, text=True,
                                    timeout=BINARY_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise NnsconsError(binary, f"did not finish within {BINARY_TIMEOUT} s") from None
        if result.returncode != 0:
            message = (result.stderr.strip().splitlines() or ["(no message)"])[-1]
            raise NnsconsError(binary, f"exited with status {result.returncode}: {message}")
        return np.load(out_path)


def network_io(graph: ir.Graph, qtable: dict[str, Any]) -> tuple[str, str]:
    """The integer tensors the generated network reads and writes (a leading quantize / trailing dequantize op
    of a float model is absorbed by the generated conversion helpers)."""
    first, last = graph.ops[0], graph.ops[-1]
    net_in = first.outputs[0] if first.type == "quantize" and first.inputs[0] in graph.inputs else graph.inputs[0]
    net_out = last.inputs[0] if last.type == "dequantize" and last.outputs[0] in graph.outputs else graph.outputs[0]
    return net_in, net_out


def dequantize(q: np.ndarray, tensor: dict[str, Any]) -> np.ndarray:
    """A network output's integers as float32 real values, with its qtable.json entry (per tensor)."""
    return ir.dequantize(q, tensor["scale"], tensor["zero_point"]).astype(np.float32)


def snr_db(reference_values: np.ndarray, values: np.ndarray) -> Optional[float]:
    """Signal-to-noise ratio in dB; None when the two are identical (infinite SNR)."""
    signal = float(np.sum(reference_values.astype(np.float64) ** 2))
    noise = float(np.sum((reference_values.astype(np.float64) - values) ** 2))
    if noise == 0.0:
        return None
    return round(10.0 * np.log10(max(signal, 1e-30) / noise), 3)


# ---- the two kinds of proof -------------------------------------------------------------------------------------
def tflm_outputs(model_path: str, inputs: np.ndarray) -> np.ndarray:
    """TensorFlow Lite Micro's outputs, one inference per input (inputs in the model's own dtype and layout)."""
    try:
        from tflite_micro import runtime
    except ImportError:
        raise NnsconsError(model_path, "the check needs TFLite Micro: pip install tflite-micro") from None
    interpreter = runtime.Interpreter.from_file(model_path)
    outputs = []
    for x in inputs:
        interpreter.set_input(x[np.newaxis], 0)
        interpreter.invoke()
        outputs.append(np.array(interpreter.get_output(0))[0])
    return np.stack(outputs)


def random_inputs(name: str, shape: list[int], dtype: str, count: int) -> np.ndarray:
    """Reproducible random integer inputs for a model (seeded by its name)."""
    seed = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")
    info = np.iinfo(np.dtype(dtype))
    rng = np.random.default_rng(seed)
    return rng.integers(info.min, info.max + 1, size=[count, *shape[1:]], endpoint=False).astype(dtype)


def bit_exact_report(binary: str, model_path: str, name: str, graph: ir.Graph, test_x: Optional[np.ndarray],
                     net_in: str) -> tuple[dict[str, Any], np.ndarray]:
    tensor = graph.tensors[net_in]
    inputs = random_inputs(name, tensor.shape, tensor.dtype, RANDOM_INPUTS)
    if test_x is not None:
        inputs = np.concatenate([test_x.astype(tensor.dtype), inputs])
    ours = run_binary(binary, inputs)
    theirs = tflm_outputs(model_path, inputs).reshape(ours.shape).astype(ours.dtype)
    differs = np.any(ours.reshape(len(ours), -1) != theirs.reshape(len(theirs), -1), axis=1)
    report = {"reference": "tflite_micro", "inputs": int(len(inputs)),
              "test_inputs": int(0 if test_x is None else len(test_x)), "random_inputs": RANDOM_INPUTS,
              "mismatched_inputs": int(differs.sum()),
              "max_abs_diff": int(np.max(np.abs(ours.astype(np.int64) - theirs.astype(np.int64)))),
              "bit_exact": bool(not differs.any())}
    return report, inputs


def float_report(binary: str, graph: ir.Graph, params: dict[str, np.ndarray], qtable: dict[str, Any],
                 x_ir: np.ndarray, labels: Optional[np.ndarray], net_out: str) -> dict[str, Any]:
    """The quantized network against the float reference on the test set."""
    ours = dequantize(run_binary(binary, x_ir), qtable["tensors"][net_out])
    ref = reference.run(graph, params, {graph.inputs[0]: x_ir})[graph.outputs[0]]
    ours, ref = ours.reshape(len(x_ir), -1), ref.reshape(len(x_ir), -1)
    report: dict[str, Any] = {"reference": "nnscons float reference", "inputs": int(len(x_ir)),
                              "snr_db": snr_db(ref, ours),
                              "max_abs_error": round(float(np.max(np.abs(ref - ours))), 6)}
    if ref.shape[1] > 1:
        report["top1_agreement"] = round(float(np.mean(ref.argmax(1) == ours.argmax(1))), 6)
        if labels is not None and labels.ndim == 1 and np.issubdtype(labels.dtype, np.integer):
            report["accuracy_quantized"] = round(float(np.mean(ours.argmax(1) == labels)), 6)
            report["accuracy_float"] = round(float(np.mean(ref.argmax(1) == labels)), 6)
    return report


def sanitizer_report(binary: str, sanitized: str, inputs: np.ndarray) -> dict[str, Any]:
    try:
        same = bool(np.array_equal(run_binary(binary, inputs), run_binary(sanitized, inputs)))
        return {"inputs": int(len(inputs)), "clean": True, "same_outputs": same}
    except NnsconsError as e:
        return {"inputs": int(len(inputs)), "clean": False, "same_outputs": False, "error": ir.c_comment(e.message, 200)}


# ---- the stage ---------------------------------------------------------------------------------------------------
def check_model(name: str, binary: str, sanitized: Optional[str], model_path: str, graph_json: str, params_npz: str,
                qtable_json: str, test_npz: Optional[str], report_json: str,
                raise_on_failure: bool = True, kernels: Optional[str] = None) -> dict[str, Any]:
    """``report.json`` for a model's host binaries; a failed proof is listed under ``failures`` and raised unless
    ``raise_on_failure`` is false (the build then fails at the report, which is drawn first). ``kernels`` says
    which kernel library the binaries link and whether the sanitizers instrument it (recorded in the report)."""
    graph, params = ir.load(graph_json, params_npz)
    qtable = fileio.read_json(qtable_json)
    net_in, net_out = network_io(graph, qtable)
    x_ir = data.load_inputs(test_npz, graph)[graph.inputs[0]] if test_npz else None
    raw = data.load_npz(test_npz) if test_npz else {}
    labels = raw.get("y")
    test_x = raw.get("x")
    report: dict[str, Any] = {"model": name, "scheme": qtable["scheme"], "range": qtable.get("range"),
                              "source": graph.source_file, **({"kernels": kernels} if kernels else {})}
    failures = []
    probe = x_ir
    if qtable["scheme"] == "model" and graph.source == "tflite":
        native = test_x if test_x is not None and test_x.dtype == np.dtype(graph.tensors[net_in].dtype) else None
        report["bit_exact"], probe = bit_exact_report(binary, model_path, name, graph, native, net_in)
        if not report["bit_exact"]["bit_exact"]:
            failures.append(f"{report['bit_exact']['mismatched_inputs']} of {report['bit_exact']['inputs']} inputs "
                            "differ from TFLite Micro")
        if native is not None and graph.tensors[net_out].size > 1:
            outputs = run_binary(binary, native)
            report["test_set_classes"] = [int(c) for c in outputs.reshape(len(outputs), -1).argmax(1)]
    if x_ir is not None:
        report["float"] = float_report(binary, graph, params, qtable, x_ir, labels, net_out)
    if sanitized:
        report["sanitizers"] = sanitizer_report(binary, sanitized, probe if probe is not None else
                                                random_inputs(name, graph.tensors[net_in].shape,
                                                              graph.tensors[net_in].dtype, 8))
        if not (report["sanitizers"]["clean"] and report["sanitizers"]["same_outputs"]):
            failures.append("the sanitized binary " + (f"failed: {report['sanitizers'].get('error', '?')}"
                                                       if not report["sanitizers"]["clean"]
                                                       else "gave different outputs"))
    report["passed"] = not failures
    report["failures"] = failures
    fileio.write_json(report_json, report)
    if failures and raise_on_failure:
        raise NnsconsError(report_json, "; ".join(failures))
    return report


def summary_row(report: dict[str, Any]) -> dict[str, Any]:
    """One line of the check table printed by ``scons target=host check``."""
    row: dict[str, Any] = {"model": report["model"], "scheme": report["scheme"]}
    exact = report.get("bit_exact")
    row["tflm bit-exact"] = f"{'yes' if exact['bit_exact'] else 'NO'} ({exact['inputs']} inputs)" if exact else "-"
    flt = report.get("float", {})
    row["top-1 vs float"] = f"{100 * flt['top1_agreement']:.2f}%" if "top1_agreement" in flt else "-"
    row["accuracy"] = (f"{100 * flt['accuracy_quantized']:.2f}% (float {100 * flt['accuracy_float']:.2f}%)"
                       if "accuracy_quantized" in flt else "-")
    row["SNR dB"] = "-" if not flt else ("exact" if flt.get("snr_db") is None else flt["snr_db"])
    san = report.get("sanitizers")
    row["asan+ubsan"] = ("clean" if san["clean"] and san["same_outputs"] else "FAILED") if san else "-"
    row["classes"] = " ".join(map(str, report.get("test_set_classes", [])))[:20] or "-"
    return row
