"""A front end's declaration (``[frontend]`` in ``model.toml``), checked once: every problem is one line naming the
key and the file."""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from typing import Any, Mapping, Optional

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..errors import NnsconsError

KINDS = ("mfcc",)
WORDS = ("q15", "f32")
INT_KEYS = ("sample_rate", "frame_length", "frame_step", "fft_length", "mel_filters", "coefficients")
FLOAT_KEYS = ("fmin", "fmax")
MAX_FFT = 4096               # the largest real FFT CMSIS-DSP's tables cover


@dataclass(frozen=True)
class FrontendSpec:
    """``kind = "mfcc"`` and its parameters (see :mod:`nnscons.frontend`)."""

    kind: str
    word: str
    sample_rate: int
    frame_length: int
    frame_step: int
    fft_length: int
    mel_filters: int
    coefficients: int
    fmin: float
    fmax: float

    def frames(self, samples: int) -> int:
        """How many frames a clip of ``samples`` samples gives (0 when it is shorter than one frame)."""
        return 0 if samples < self.frame_length else 1 + (samples - self.frame_length) // self.frame_step

    def samples_for(self, frames: int) -> int:
        """The shortest clip that gives ``frames`` frames."""
        return self.frame_length + (frames - 1) * self.frame_step

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("kind", "word") + INT_KEYS + FLOAT_KEYS}


def parse_frontend(table: Mapping[str, Any], where: Optional[str] = None) -> FrontendSpec:
    """The ``[frontend]`` table of ``where`` (a model.toml) as a checked :class:`FrontendSpec`."""
    def fail(message: str) -> NnsconsError:
        return NnsconsError(where, f"[frontend]: {message}")

    unknown = sorted(set(table) - {"kind", "word", *INT_KEYS, *FLOAT_KEYS})
    if unknown:
        raise fail(f"unknown key {unknown[0]!r} (keys: kind, word, {', '.join(INT_KEYS + FLOAT_KEYS)})")
    kind, word = table.get("kind"), table.get("word", "q15")
    if kind not in KINDS:
        raise fail(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if word not in WORDS:
        raise fail(f"word must be one of {', '.join(WORDS)}, got {word!r}")
    values: dict[str, Any] = {}
    for key in INT_KEYS:
        value = table.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise fail(f"{key} must be a positive integer, got {value!r}")
        values[key] = value
    for key in FLOAT_KEYS:
        value = table.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e6:
            raise fail(f"{key} must be a frequency in Hz, got {value!r}")
        values[key] = float(value)
    spec = FrontendSpec(kind, word, **values)
    _check(spec, fail)
    return spec


def _check(spec: FrontendSpec, fail: Any) -> None:
    fft = spec.fft_length
    if fft & (fft - 1) or not 32 <= fft <= MAX_FFT:
        raise fail(f"fft_length must be a power of two in 32..{MAX_FFT}, got {fft}")
    if spec.frame_length > fft:
        raise fail(f"frame_length {spec.frame_length} is longer than fft_length {fft}")
    if not spec.fmin < spec.fmax <= spec.sample_rate / 2:
        raise fail(f"need fmin < fmax <= sample_rate / 2, got {spec.fmin}, {spec.fmax} at {spec.sample_rate} Hz")
    if spec.mel_filters > fft // 2:
        raise fail(f"mel_filters {spec.mel_filters} is more than the fft_length / 2 = {fft // 2} bins")
    if spec.coefficients > spec.mel_filters:
        raise fail(f"coefficients {spec.coefficients} is more than mel_filters {spec.mel_filters}")


def spec_text(spec: FrontendSpec) -> str:
    """The spec as the canonical JSON text a step carries as a parameter (it shapes the step's outputs)."""
    return json.dumps(spec.to_json(), sort_keys=True, separators=(",", ":"))


def spec_from_text(text: str) -> FrontendSpec:
    return parse_frontend(json.loads(text))


def read_frontend(model_toml: Optional[str | os.PathLike]) -> Optional[FrontendSpec]:
    """The ``[frontend]`` of a model.toml (None without one, or without the file)."""
    if not model_toml or not os.path.isfile(model_toml):
        return None
    with open(model_toml, "rb") as f:
        table = tomllib.load(f).get("frontend")   # the file parsed once already (nnscons.options): it is TOML
    if table is None:
        return None
    if not isinstance(table, dict):
        raise NnsconsError(model_toml, "frontend must be a table ([frontend] with its keys)")
    return parse_frontend(table, str(model_toml))


def frontend_text_beside(model: str | os.PathLike) -> Optional[str]:
    """The ``[frontend]`` of the model.toml beside a model file, as step text (None without one)."""
    spec = read_frontend(os.path.join(os.path.dirname(os.fspath(model)), "model.toml"))
    return spec_text(spec) if spec else None
