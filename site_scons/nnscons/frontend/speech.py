"""Spoken words from espeak-ng (Debian), for the front end's tests, the keyword spotter's training and ``nnscons
play`` (part of :mod:`nnscons.frontend`)."""
from __future__ import annotations

import shutil
import subprocess
from typing import Optional

import numpy as np

from ..errors import NnsconsError


def speak(word: str, sample_rate: int, voice: Optional[str] = None, speed: Optional[int] = None,
          pitch: Optional[int] = None) -> np.ndarray:
    """espeak-ng's rendition of ``word`` resampled to ``sample_rate`` (float samples on the int16 scale)."""
    from scipy.signal import resample_poly
    if shutil.which("espeak-ng") is None:
        raise NnsconsError(None, "espeak-ng is not installed (it speaks the words)")
    options = [text for flag, value in (("-v", voice), ("-s", speed), ("-p", pitch)) if value is not None
               for text in (flag, str(value))]
    wav = subprocess.run(["espeak-ng", "--stdout", *options, word], capture_output=True, check=True,
                         timeout=60).stdout
    rate = int.from_bytes(wav[24:28], "little")
    return resample_poly(np.frombuffer(wav[44:], np.int16).astype(np.float64), sample_rate, rate)
