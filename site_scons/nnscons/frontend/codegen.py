"""The front end as C (part of :mod:`nnscons.frontend`): ``<name>_frontend.h`` and ``<name>_frontend.c``, which
call CMSIS-DSP's ``arm_mfcc_init_q15`` / ``_f32`` and ``arm_mfcc_q15`` / ``_f32`` with the tables of :mod:`.mfcc`
written out as named constant arrays.

``<name>_frontend(audio, samples, features)`` turns a clip of int16 samples into ``frames x coefficients``
features (Q8.7 int16 for q15, float for f32; ``<name>_frontend_frames(samples)`` says how many frames) and returns
the number of frames, or -1 (a clip shorter than a frame, NULL pointers) or the negative CMSIS-DSP status. The
frame and the FFT's scratch are static buffers of the front end (``<NAME>_FRONTEND_RAM`` bytes). The descriptor
``<name>_frontend_info`` lets the generic host runner (``runtime/nnscons_frontend_main.c``) drive it.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..codegen.common import c_float, check_name, environment, value_rows
from . import mfcc
from .spec import FrontendSpec


def _rows(values: np.ndarray) -> list[str]:
    if values.dtype.kind == "f":
        literals = [c_float(v) for v in values.reshape(-1).tolist()]
        width = max(len(s) for s in literals)
        return [", ".join(s.rjust(width) for s in literals[i:i + 6]) + "," for i in range(0, len(literals), 6)]
    return value_rows(values)


def context(name: str, spec: FrontendSpec) -> dict[str, Any]:
    t = mfcc.tables(spec)
    q15 = spec.word == "q15"
    word = "q15_t" if q15 else "float32_t"
    arrays = [
        ("window", word, t.window, f"periodic Hann window of {spec.frame_length} samples, zero-padded to "
                                   f"{spec.fft_length}" + (" (Q15)" if q15 else "")),
        ("filter_pos", "uint32_t", t.filter_pos, f"first FFT bin of each of the {spec.mel_filters} Mel filters "
                                                 f"({spec.fmin:g} to {spec.fmax:g} Hz)"),
        ("filter_len", "uint32_t", t.filter_len, "FFT bins of each Mel filter"),
        ("filter_coefs", word, t.filter_coefs, "the Mel filters' coefficients, packed (cmsisdsp.mfcc."
                                               "melFilterMatrix)"),
        ("dct", word, t.dct, f"DCT matrix [{spec.coefficients}][{spec.mel_filters}] (cmsisdsp.mfcc.dctMatrix)"),
    ]
    return {
        "name": name, "NAME": name.upper(), "spec": spec, "q15": q15, "word": word,
        "feature_type": "int16_t" if q15 else "float", "feature_size": 2 if q15 else 4,
        "arrays": [{"cname": f"{name}_{what}", "ctype": ctype, "length": int(values.size), "rows": _rows(values),
                    "comment": comment} for what, ctype, values, comment in arrays],
        "ram": spec.fft_length * (2 if q15 else 4) + 2 * spec.fft_length * 4,
    }


def generate(name: str, spec: FrontendSpec) -> dict[str, str]:
    """``{file name: text}`` of the front end's two C files."""
    check_name(name)
    env = environment()
    ctx = context(name, spec)
    return {f"{name}_frontend.h": env.get_template("frontend.h.j2").render(ctx),
            f"{name}_frontend.c": env.get_template("frontend.c.j2").render(ctx)}
