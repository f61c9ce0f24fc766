"""The MFCC front end's tables and, as the oracle, its features (part of :mod:`nnscons.frontend`).

The tables are what ``arm_mfcc_init_q15`` / ``_f32`` take, computed with the ``cmsisdsp`` package's own helpers so
that the generated C and the package compute the same thing: the periodic Hann window of ``frame_length``
(``scipy.signal.get_window("hann", frame_length)``) zero-padded to ``fft_length``, the Mel filter bank
(``cmsisdsp.mfcc.melFilterMatrix``: each filter's first bin, length and coefficients, packed) and the DCT matrix
(``cmsisdsp.mfcc.dctMatrix``), in Q15 or float32. :func:`features` runs ``cmsisdsp.arm_mfcc_q15`` / ``_f32`` (the
C library wrapped for Python) frame by frame: the reference the generated front end is bit-exact with.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import NnsconsError
from .spec import FrontendSpec

OUTPUT_FRAC_BITS = 7        # arm_mfcc_q15 writes Q8.7


@dataclass(frozen=True)
class MfccTables:
    """What ``arm_mfcc_init_q15`` / ``_f32`` take: int16 arrays for q15, float32 for f32 (positions and lengths
    uint32 either way)."""

    window: np.ndarray           # [fft_length]
    filter_pos: np.ndarray       # [mel_filters] first FFT bin of each filter
    filter_len: np.ndarray       # [mel_filters] bins of each filter
    filter_coefs: np.ndarray     # [sum(filter_len)] the filters' coefficients, packed
    dct: np.ndarray              # [coefficients * mel_filters], row-major


def tables(spec: FrontendSpec) -> MfccTables:
    import cmsisdsp.datatype as dt
    import cmsisdsp.mfcc as mfcc
    from scipy.signal import get_window

    dtype = dt.Q15 if spec.word == "q15" else dt.F32
    window = np.zeros(spec.fft_length)
    window[:spec.frame_length] = get_window("hann", spec.frame_length)
    lengths, positions, coefs = mfcc.melFilterMatrix(dtype, spec.fmin, spec.fmax, spec.mel_filters,
                                                     spec.sample_rate, spec.fft_length)
    if min(lengths) < 1:
        raise NnsconsError(None, f"[frontend]: {spec.mel_filters} Mel filters between {spec.fmin} and {spec.fmax} "
                                 f"Hz leave a filter without FFT bins at fft_length {spec.fft_length}")
    dct = mfcc.dctMatrix(dtype, spec.coefficients, spec.mel_filters)
    word = np.int16 if spec.word == "q15" else np.float32
    return MfccTables(np.asarray(dt.convert(window, dtype), word), np.asarray(positions, np.uint32),
                      np.asarray(lengths, np.uint32), np.asarray(coefs, word), np.asarray(dct, word))


def frame(spec: FrontendSpec, clip: np.ndarray, k: int) -> np.ndarray:
    """Frame ``k`` of a clip, zero-padded to ``fft_length`` (int16 for q15, float32 in [-1, 1) for f32)."""
    start = k * spec.frame_step
    samples = clip[start:start + spec.frame_length]
    if spec.word == "f32":
        padded = np.zeros(spec.fft_length, np.float32)
        padded[:spec.frame_length] = samples.astype(np.float32) / 32768.0
    else:
        padded = np.zeros(spec.fft_length, np.int16)
        padded[:spec.frame_length] = samples
    return padded


def features(spec: FrontendSpec, audio: np.ndarray) -> np.ndarray:
    """``cmsisdsp``'s MFCC of every frame of every clip: int16 audio ``[N, samples]`` in, ``[N, frames,
    coefficients]`` out (int16 Q8.7 for q15, float32 for f32)."""
    import cmsisdsp as dsp

    audio = np.asarray(audio)
    if audio.ndim != 2 or audio.dtype != np.int16:
        raise NnsconsError(None, f"front end: audio must be int16 [N, samples], got {audio.dtype} "
                                 f"{list(audio.shape)}")
    frames = spec.frames(audio.shape[1])
    if frames < 1:
        raise NnsconsError(None, f"front end: clips of {audio.shape[1]} samples are shorter than one frame "
                                 f"({spec.frame_length})")
    t = tables(spec)
    q15 = spec.word == "q15"
    instance = dsp.arm_mfcc_instance_q15() if q15 else dsp.arm_mfcc_instance_f32()
    init = dsp.arm_mfcc_init_q15 if q15 else dsp.arm_mfcc_init_f32
    status = init(instance, spec.fft_length, spec.mel_filters, spec.coefficients, t.dct, t.filter_pos, t.filter_len,
                  t.filter_coefs, t.window)
    if status != 0:
        raise NnsconsError(None, f"front end: arm_mfcc_init_{spec.word} failed with status {status}")
    run = dsp.arm_mfcc_q15 if q15 else dsp.arm_mfcc_f32
    scratch = np.zeros(2 * spec.fft_length, np.int32 if q15 else np.float32)
    out = np.zeros((len(audio), frames, spec.coefficients), np.int16 if q15 else np.float32)
    for n, clip in enumerate(audio):
        for k in range(frames):
            result = run(instance, frame(spec, clip, k), scratch)
            out[n, k] = result[1] if q15 else result
    return out


def real_features(spec: FrontendSpec, values: np.ndarray) -> np.ndarray:
    """The features as real numbers (Q8.7 -> float for q15)."""
    return values.astype(np.float32) / (1 << OUTPUT_FRAC_BITS) if spec.word == "q15" else values.astype(np.float32)
