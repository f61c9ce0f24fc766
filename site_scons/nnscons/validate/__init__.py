"""``nnscons validate MODEL_DIR_OR_FILE``: is the generated C right? One command, one table, exit 0 or 1.

It does what the SCons build does for one model, outside SCons, in a folder of its own (``--out``, default
``build/validate/<name>``), reusing what is up to date there: the chain (:func:`nnscons.pipeline.model_steps`, run
by :mod:`nnscons.pipeline.runner`), the host test binary with its sanitized and tracing builds
(:mod:`nnscons.hostbuild`), the check stage (:mod:`nnscons.check`) and the per-layer diagnostics; with a Cortex-M
``--target`` also the firmware image (:mod:`nnscons.firmware.image`), its run in QEMU and the comparison of its
output bytes with the host binary's. It prints one table and writes ``report.json`` and ``report.html``.

What passes (:mod:`.verdict`):

* a model that carries its own quantization (``quant=model``) in a ``.tflite``: every output byte equal to TensorFlow
  Lite Micro's, on the test set and on random inputs;
* a network nnscons quantized (or a quantized ONNX model): against the original model in its own interpreter
  (LiteRT / onnxruntime, :mod:`nnscons.check.original`) on the test set (else the calibration set), every
  classifier output's top-1 agreement at least ``--min-agreement`` (default 95%) and every output's SNR at least
  ``--min-snr`` (default 10 dB);
* in both cases: the sanitized binary clean with the same outputs, the accuracy on the test set's labels at least
  ``--min-accuracy`` when given, a front end's C equal to cmsisdsp, and every firmware's output bytes equal to the
  host binary's.

:mod:`.run` does the work; this module holds the command's arguments.
"""
from __future__ import annotations

import argparse
from typing import Any

from .. import targets_path
from ..cli_args import option_flags
from ..project import discover_targets

DEFAULT_MIN_AGREEMENT = 95.0     # percent
DEFAULT_MIN_SNR = 10.0           # dB


def _percent(text: str) -> float:
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage (0 to 100)") from None
    if not 0.0 <= value <= 100.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage (0 to 100)")
    return value


def _decibels(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of dB") from None


def _targets(text: str) -> list[str]:
    """``host``, ``m4``, ``host,m4,m55``: known target folders; the host is always validated."""
    known = discover_targets(targets_path())
    names = [t for t in text.split(",") if t]
    for name in names:
        if name not in known:
            raise argparse.ArgumentTypeError(f"unknown target {name!r} (known: {', '.join(known)})")
    return [t for t in names if t != "host"]


def register(sub: Any) -> None:
    """The ``validate`` subcommand's parser (``sub``: the ``nnscons`` command's subparsers)."""
    p = sub.add_parser(
        "validate", help="generate, build and prove a model against its original interpreter: one table, exit 0 "
                         "when it passes, 1 when it does not",
        description="Generate a model's C, build the host test binary (and with --target a Cortex-M firmware run "
                    "in QEMU), prove it against TensorFlow Lite Micro (a .tflite with its own quantization: bit "
                    "for bit) or against the original model in LiteRT / onnxruntime (a network nnscons quantized: "
                    "agreement and SNR thresholds), print one table and write report.json and report.html. Exit "
                    "status 0 when it passes, 1 when it does not or a file is bad, 2 for bad usage.")
    p.add_argument("source", metavar="MODEL_DIR_OR_FILE",
                   help="a model folder (model.tflite or model.onnx, and calib.npz, test.npz, model.toml when it has "
                        "them) or a .tflite / .onnx file")
    p.add_argument("--calib", help="calibration set (.npz, key x; default: the folder's calib.npz)")
    p.add_argument("--test", help="test set (.npz, key x and optionally labels y; default: the folder's test.npz)")
    p.add_argument("--options", metavar="FILE", help="options file (the keys of model.toml), read after model.toml")
    option_flags(p, {"ranges", "quantize", "codegen"})
    p.add_argument("--name", help="C name of the model (default: the folder's name, else the file's stem)")
    p.add_argument("--target", default=[], type=_targets, metavar="host|m4|...",
                   help="the host (always), and Cortex-M targets (comma-separated, e.g. m4,m55): firmware built, "
                        "run in QEMU and compared byte for byte with the host binary")
    p.add_argument("--opt", default="O2", choices=("O2", "Os", "O3", "O1", "O0"),
                   help="optimization of the firmware (default O2, as scons opt=)")
    p.add_argument("--out", metavar="DIR", help="working folder, reused by the next run (default: "
                                                "build/validate/<name>): generated files, binaries, report.json, "
                                                "report.html")
    p.add_argument("--min-agreement", type=_percent, default=DEFAULT_MIN_AGREEMENT, metavar="PERCENT",
                   help=f"a quantized network's top-1 agreement with the original model, per classifier output "
                        f"(default {DEFAULT_MIN_AGREEMENT:g})")
    p.add_argument("--min-snr", type=_decibels, default=DEFAULT_MIN_SNR, metavar="DB",
                   help=f"a quantized network's output SNR against the original model, per output (default "
                        f"{DEFAULT_MIN_SNR:g})")
    p.add_argument("--min-accuracy", type=_percent, default=None, metavar="PERCENT",
                   help="accuracy on the test set's labels, per classifier output (default: not required)")
    p.add_argument("--no-sanitize", action="store_true",
                   help="skip the AddressSanitizer / UndefinedBehaviorSanitizer build")
    p.set_defaults(run=main)


def main(args: argparse.Namespace) -> int:
    from .run import validate
    return 0 if validate(args) else 1


__all__ = ["DEFAULT_MIN_AGREEMENT", "DEFAULT_MIN_SNR", "main", "register"]
