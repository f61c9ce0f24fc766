"""The front end's steps of a model's graph (part of :mod:`nnscons.frontend`; :mod:`nnscons.pipeline.steps` places
them): ``features`` turns a set of raw audio (``x`` int16 ``[N, samples]``, other keys kept) into the set the
network reads (``x``: the features as real numbers, in the model's own input shape), with the ``cmsisdsp``
package's MFCC, which the generated C equals bit for bit; ``frontend`` writes that C (``frontend_check`` proves it:
:mod:`nnscons.frontend_proof`)."""
from __future__ import annotations

import numpy as np

from .. import data, fileio, ir
from ..errors import NnsconsError
from . import mfcc
from .spec import FrontendSpec, spec_from_text

def load_audio(path: str, spec: FrontendSpec) -> dict[str, np.ndarray]:
    arrays = data.load_npz(path)
    x = arrays.get("x")
    if x is None or x.dtype != np.int16 or x.ndim != 2:
        found = "no x" if x is None else f"x {x.dtype} {list(x.shape)}"
        raise NnsconsError(path, f"a model with a front end reads raw audio: x must be int16 [N, samples] "
                                 f"({found})")
    if spec.frames(x.shape[1]) < 1:
        raise NnsconsError(path, f"clips of {x.shape[1]} samples are shorter than one frame ({spec.frame_length})")
    return arrays


def features_stage(graph_json: str, audio_npz: str, features_npz: str, frontend: str) -> None:
    spec = spec_from_text(frontend)
    graph = ir.Graph.from_json(fileio.read_json(graph_json))
    arrays = load_audio(audio_npz, spec)
    values = mfcc.real_features(spec, mfcc.features(spec, arrays["x"]))
    shape = data.model_input_shape(graph, graph.inputs[0])
    if int(np.prod(shape[1:])) != values[0].size:
        raise NnsconsError(audio_npz, f"the front end gives {values.shape[1]} frames of {values.shape[2]} "
                                      f"coefficients ({values[0].size} values) per clip; the model input "
                                      f"{graph.inputs[0]} takes {shape[1:]} (check [frontend] and the clip length)")
    out = {k: v for k, v in arrays.items() if k != "x"}
    out["x"] = values.reshape(len(values), *shape[1:])
    fileio.write_npz(features_npz, out)


def frontend_stage(name: str, frontend: str, frontend_c: str, frontend_h: str) -> None:
    from . import codegen      # the C templates' machinery: not needed by the other steps
    files = codegen.generate(name, spec_from_text(frontend))
    fileio.write_text(frontend_h, files[f"{name}_frontend.h"])
    fileio.write_text(frontend_c, files[f"{name}_frontend.c"])
