"""Per-model options: one definition, three sources.

An option can be set in ``models/<name>/model.toml`` and overridden on the command line with the same name
(``scons quant=q7``, ``nnscons generate --quant q7``). This module is the single list of them, used by the
SConstruct (for ``scons -h`` and validation), by the CLI, and by the stages that read them. Each option names
the stages whose output it shapes, so a change rebuilds exactly those (it enters the graph as a ``Value`` node).
"""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .errors import NnsconsError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

QUANT_SCHEMES = ("auto", "model", "int8", "int16x8", "q7", "q15")
APIS = ("s8", "legacy")
LEGACY_SOFTMAX = ("input", "calibrated")


def _choice(name: str, allowed: tuple[str, ...]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in allowed:
            raise NnsconsError(None, f"{name}={value!r} is not one of {', '.join(allowed)}")
        return value
    return check


_PERCENTILE = re.compile(r"percentile:(\d+(?:\.\d+)?)")


def check_range(value: str) -> str:
    """``minmax``, ``percentile:P`` with 0 < P <= 100, ``mse``, or ``search``."""
    if value in ("minmax", "mse", "search"):
        return value
    m = _PERCENTILE.fullmatch(value)
    if m and 0.0 < float(m.group(1)) <= 100.0:
        return value
    raise NnsconsError(None, f"range={value!r} is not minmax, mse, search or percentile:P with 0 < P <= 100")


def check_patches(value: str) -> str:
    """``off``, ``auto`` or a number of bands >= 1."""
    if value in ("off", "auto") or (value.isdigit() and int(value) >= 1):
        return value
    raise NnsconsError(None, f"patches={value!r} is not off, auto or a number of bands >= 1")


@dataclass(frozen=True)
class Option:
    name: str
    default: str
    help: str
    check: Callable[[str], str]
    stages: tuple[str, ...]        # stages whose output the option shapes


OPTIONS: tuple[Option, ...] = (
    Option("quant", "auto",
           "quantization scheme: auto (model's own parameters if it has them, else int8), model, int8, int16x8, "
           "q7, q15", _choice("quant", QUANT_SCHEMES), ("ranges", "quantize")),
    Option("range", "minmax",
           "how an activation's range is taken from the calibration statistics: minmax (the observed minimum and "
           "maximum), percentile:P (per sign, the range holding P% of the values, e.g. percentile:99.99 to drop "
           "rare outliers, or percentile:80 to keep 80% of the histogram, as Arm's CMSIS-NN conversion guide "
           "suggests), mse (the range that minimizes the estimated quantization error), search (q7/q15 only: each "
           "layer's output format moved by -3..+3 bits from minmax, layer by layer, where that improves accuracy on "
           "half the calibration set, labels y if it has them, else agreement with float)",
           check_range, ("ranges",)),
    Option("api", "s8", "CMSIS-NN API for code generation: s8 (current) or legacy (q7/q15, CMSIS_5 5.9.0)",
           _choice("api", APIS), ("quantize", "codegen")),
    Option("legacy_softmax", "input",
           "api=legacy: what arm_softmax_q7/q15 (base 2, integer exponents) is given: input (the logits in their "
           "own Q-format, as Arm's CMSIS-NN conversion guide does: the class order is kept to their precision, the "
           "probabilities are sharper than float's) or calibrated (the logits shifted to round(log2(beta log2 e)) "
           "fractional bits: the probabilities closest to float's, but logits closer than half a unit tie)",
           _choice("legacy_softmax", LEGACY_SOFTMAX), ("codegen",)),
    Option("overlap", "on",
           "api=s8: plan a layer's output over the input bytes its kernel has already consumed where nnscons' "
           "bundled kernels guarantee the order of their reads and writes (element-wise ops in place, 1x1 and "
           "depthwise convolutions a few pixels or rows behind their input): on, or off for a CMSIS-NN other than "
           "cmsis/ (automatic with cmsis_nn=; generated code refuses to compile against another library otherwise)",
           _choice("overlap", ("on", "off")), ("codegen",)),
    Option("patches", "off",
           "api=s8: run the row-local layers before a global average pooling or a fully connected layer a few rows "
           "at a time, so their outputs never exist whole (MCUNetV2's patch-based inference, in bands of rows that "
           "keep their halos): less RAM for more instructions (each kernel call makes a few rows). off; auto (one "
           "row of the last such layer per step, where that lowers the arena); or N (that layer's rows in N bands: "
           "fewer calls, more memory)",
           check_patches, ("codegen",)),
    Option("order", "memory",
           "the layers' execution order: memory (where a graph branches, the order that keeps the fewest bytes "
           "alive at once, kept where it makes the arena smaller; any order computes the same values) or model "
           "(the model's own)",
           _choice("order", ("memory", "model")), ("codegen",)),
)
BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}


DECLARATIONS = ("frontend", "labels")     # model.toml keys that are not options: [frontend], labels = [...]


def _load_toml(path: str | os.PathLike) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except UnicodeDecodeError as e:
        raise NnsconsError(path, f"cannot read model options: not UTF-8 text (byte {e.object[e.start]:#04x} at "
                                 f"offset {e.start})") from None
    except OSError as e:
        raise NnsconsError(path, f"cannot read model options: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise NnsconsError(path, f"cannot read model options: {e}") from None


MAX_LABEL = 64      # characters of one class name (they are shown in tables and pages)


def read_labels(path: str | os.PathLike) -> list[str]:
    """The class names a model.toml declares (``labels = ["yes", "no", ...]``; none: []), checked."""
    labels = _load_toml(path).get("labels", [])
    if not isinstance(labels, list) or not all(isinstance(s, str) and 0 < len(s) <= MAX_LABEL and s.isprintable()
                                               for s in labels):
        raise NnsconsError(path, f"labels must be a list of class names (printable, 1 to {MAX_LABEL} characters)")
    return labels


def read_model_toml(path: str | os.PathLike) -> dict[str, str]:
    """The options set in a model.toml; unknown keys and bad values are errors naming the file."""
    data = _load_toml(path)
    out: dict[str, str] = {}
    for key, value in data.items():
        if key in DECLARATIONS:      # not options: what the folder's data are (nnscons.project reads them)
            continue
        if key not in BY_NAME:
            raise NnsconsError(path, f"unknown option {key!r}; known: {', '.join(sorted(BY_NAME))}")
        try:
            out[key] = BY_NAME[key].check(str(value))
        except NnsconsError as e:
            raise NnsconsError(path, e.message) from None
    return out


def resolve(model_toml: Mapping[str, str], overrides: Mapping[str, Any]) -> dict[str, str]:
    """Defaults, then model.toml, then command-line overrides (None = not given)."""
    values = {o.name: o.default for o in OPTIONS}
    values.update(model_toml)
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in BY_NAME:
            raise NnsconsError(None, f"unknown option {key!r}; known: {', '.join(sorted(BY_NAME))}")
        values[key] = BY_NAME[key].check(str(value))
    return values


def resolve_scheme_for(model_quantized: str, quant: str) -> str:
    """The scheme ``quant`` means for a model (``auto``: its own parameters if it has them, else int8)."""
    _choice("quant", QUANT_SCHEMES)(quant)
    if quant == "auto":
        return "model" if model_quantized != "none" else "int8"
    if quant == "model" and model_quantized == "none":
        raise NnsconsError(None, "quant=model: the model is float and carries no quantization; "
                                 "use int8, int16x8, q7 or q15")
    return quant


def for_stage(values: Mapping[str, str], stage: str) -> dict[str, str]:
    """The subset of options that shapes one stage's output (what its Value node holds). ``range=search``
    evaluates whole quantization tables, which depend on the kernel API, so ``api`` then shapes the ranges too."""
    chosen = {o.name: values[o.name] for o in OPTIONS if stage in o.stages}
    if stage == "ranges" and values.get("range") == "search" and "api" in values:
        chosen["api"] = values["api"]
    return chosen
