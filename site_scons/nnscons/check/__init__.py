"""The check stage: run the host test binary and prove what it computes (DESIGN.md section 7).

For a model carrying its own int8/int16x8 quantization (scheme ``model``, a ``.tflite``), every output byte must
equal TensorFlow Lite Micro's, on the test set's inputs and on random inputs. For a network quantized by nnscons,
each output's integers (dequantized) are compared with the float reference interpreter on the test set, by the
output's kind (:mod:`.outputs`: top-1 agreement and accuracy for a classifier, SNR and largest error for any
output, the anomaly score's agreement for an autoencoder's reconstruction, the error against reference outputs).
The same inputs also go through the binary built with AddressSanitizer and UndefinedBehaviorSanitizer, which must
exit cleanly with the same outputs.

The result is ``report.json`` (deterministic: no timings, no paths). A failed proof raises
:class:`~nnscons.errors.NnsconsError` after the report is written, so the build fails and the report says why.

:mod:`.network` describes the network the binary runs and runs it (``.npy`` for one input and one output, ``.npz``
with ``x0, x1, ...`` / ``y0, y1, ...`` otherwise); :mod:`.outputs` measures outputs; :mod:`.stage` is the stage; :mod:`.original` runs the original model in LiteRT /
onnxruntime (what ``nnscons validate`` compares a network nnscons quantized with).
"""
from __future__ import annotations

from .network import (BINARY_TIMEOUT, NetworkTensor, dequantize, network_io, network_names, network_tensors,
                      random_inputs, random_network_inputs, run_binary, run_network)
from .original import original_outputs
from .outputs import KINDS, output_kind, output_metrics, snr_db
from .stage import (RANDOM_INPUTS, bit_exact_report, check_model, float_report, output_measures, sanitizer_report,
                    summary_row, tflm_outputs)

__all__ = [
    "BINARY_TIMEOUT", "KINDS", "NetworkTensor", "RANDOM_INPUTS", "bit_exact_report", "check_model", "dequantize",
    "float_report", "network_io", "network_names", "network_tensors", "original_outputs", "output_kind",
    "output_measures", "output_metrics", "random_inputs", "random_network_inputs", "run_binary", "run_network",
    "sanitizer_report", "snr_db", "summary_row", "tflm_outputs",
]
