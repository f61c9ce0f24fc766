"""The ``frontend_check`` step: a model's generated front end built for the host (:mod:`nnscons.hostbuild`, with
CMSIS-DSP) and compared with the ``cmsisdsp`` package frame by frame on a set's clips (``frontend_check.json``:
frames compared, equal or not; a difference fails the step)."""
from __future__ import annotations

import os
import tempfile
from typing import Optional

import numpy as np

from . import fileio, hostbuild
from .errors import NnsconsError
from .frontend import mfcc, spec_from_text
from .frontend.stage import load_audio

CHECK_CLIPS = 100            # clips of the set the runner is proven on (the first ones)


def frontend_check_stage(name: str, frontend: str, frontend_c: str, audio_npz: str, check_json: str,
                         cache_dir: Optional[str] = None) -> None:
    """Builds ``<name>_frontend_test`` (CMSIS-DSP compiled once into a cache beside ``check_json``) and compares it
    with the ``cmsisdsp`` package, frame by frame."""
    spec = spec_from_text(frontend)
    audio = load_audio(audio_npz, spec)["x"][:CHECK_CLIPS]
    toolchain = hostbuild.host_toolchain()
    library = hostbuild.dsp_library(cache_dir or os.path.join(os.path.dirname(check_json), "cmsisdsp"), toolchain)
    with tempfile.TemporaryDirectory(prefix="nnscons-frontend-") as tmp:
        binary = hostbuild.frontend_binary(name, os.path.dirname(frontend_c), tmp, library, toolchain)
        np.save(os.path.join(tmp, "in.npy"), audio)
        hostbuild.run_binary([str(binary), os.path.join(tmp, "in.npy"), os.path.join(tmp, "out.npy")], str(binary))
        ours = np.load(os.path.join(tmp, "out.npy"))
    expected = mfcc.features(spec, audio)
    equal = ours.shape == expected.shape and bool(np.array_equal(ours, expected))
    frames = int(expected.shape[0] * expected.shape[1])
    same = int((ours == expected).all(axis=2).sum()) if ours.shape == expected.shape else 0
    fileio.write_json(check_json, {"model": name, "word": spec.word, "clips": int(len(audio)), "frames": frames,
                                   "equal_frames": same, "bit_exact": equal, "reference": "cmsisdsp"})
    if not equal:
        raise NnsconsError(check_json, f"the generated front end differs from cmsisdsp on {frames - same} of "
                                       f"{frames} frames")
