"""The ``frontend_check`` step: a model's front end built for the host (its runner ``<name>_frontend_test``, with
CMSIS-DSP) compared with the ``cmsisdsp`` package frame by frame on a set's clips (``frontend_check.json``: frames
compared, equal or not; a difference fails the step)."""
from __future__ import annotations

import os
import tempfile
from typing import Optional

import numpy as np

from . import check, data, fileio, hostbuild, ir
from .errors import NnsconsError
from .frontend import mfcc, spec_from_text
from .frontend.stage import load_audio

CHECK_CLIPS = 100            # clips of the set the runner is proven on (the first ones)


def frontend_check_stage(name: str, frontend: str, binary: str, audio_npz: str, check_json: str,
                         network_binary: Optional[str] = None, graph_json: Optional[str] = None,
                         features_npz: Optional[str] = None) -> None:
    """Runs ``binary`` (``<name>_frontend_test``, built by the face: SCons' ``NnsconsFrontendTest`` or
    :func:`nnscons.hostbuild.frontend_binary`) on the set's first clips and compares it with the ``cmsisdsp``
    package, frame by frame. With ``network_binary`` (the model's host test binary, front end linked in), also
    its outputs on the raw clips against its outputs on the same clips' features (``features_npz``, the
    ``features`` step's output for this set): equal, or the step fails."""
    spec = spec_from_text(frontend)
    audio = load_audio(audio_npz, spec)["x"][:CHECK_CLIPS]
    with tempfile.TemporaryDirectory(prefix="nnscons-frontend-") as tmp:
        np.save(os.path.join(tmp, "in.npy"), audio)
        hostbuild.run_binary([os.path.abspath(binary), os.path.join(tmp, "in.npy"), os.path.join(tmp, "out.npy")],
                             binary)
        ours = np.load(os.path.join(tmp, "out.npy"))
    expected = mfcc.features(spec, audio)
    equal = ours.shape == expected.shape and bool(np.array_equal(ours, expected))
    frames = int(expected.shape[0] * expected.shape[1])
    same = int((ours == expected).all(axis=2).sum()) if ours.shape == expected.shape else 0
    report = {"model": name, "word": spec.word, "clips": int(len(audio)), "frames": frames, "equal_frames": same,
              "bit_exact": equal, "reference": "cmsisdsp"}
    if network_binary and graph_json and features_npz:
        report["network_on_audio"] = network_on_audio(network_binary, graph_json, features_npz, audio)
    fileio.write_json(check_json, report)
    if not equal:
        raise NnsconsError(check_json, f"the generated front end differs from cmsisdsp on {frames - same} of "
                                       f"{frames} frames")
    if not report.get("network_on_audio", {"equal": True})["equal"]:
        raise NnsconsError(check_json, f"{network_binary} gives other outputs on raw audio than on its features")


def network_on_audio(binary: str, graph_json: str, features_npz: str, audio: np.ndarray) -> dict[str, object]:
    """The host test binary on raw clips (its own front end) against the same binary on their features."""
    graph = ir.Graph.from_json(fileio.read_json(graph_json))
    features = data.load_inputs(features_npz, graph)[graph.inputs[0]][:len(audio)]
    if len(features) != len(audio):
        raise NnsconsError(features_npz, f"{len(features)} feature samples for {len(audio)} clips")
    from_audio = check.run_network(binary, [audio], len(graph.outputs))
    from_features = check.run_network(binary, [features], len(graph.outputs))
    return {"clips": int(len(audio)),
            "equal": all(np.array_equal(a, f) for a, f in zip(from_audio, from_features))}
