"""Proving a model on the host: test binaries, then the steps of :func:`nnscons.pipeline.host_proof_steps`.

Per model M in ``build_dir`` (``build/host/M`` in this repository)::

    M_test                     NnsconsHostTest     the generic test main (runtime/nnscons_test_main.c) + M + kernels
                                                   (+ M's audio front end and CMSIS-DSP: it takes raw audio too)
    trace/M_test               NnsconsTraceTest    the same, compiled with -DNNSCONS_TRACE (every layer's output)
    report.json, diagnostics.json, report.html     NnsconsHostProof   the check, per-layer diagnostics, the report
"""
from __future__ import annotations

import os
from typing import Any, Optional

from .. import cmsis_path, pipeline
from .chain import ModelNodes, add_step
from .libraries import cmsis_include, strict_flags


def NnsconsHostTest(env, nodes: ModelNodes, build_dir: str, model_lib, kernel_lib):
    """``<build_dir>/<model>_test IN.npy OUT.npy`` (DESIGN.md section 3): the generic test main linked with the
    model's library and the kernels; for a model with an audio front end also with the front end (compiled into
    ``<build_dir>``) and CMSIS-DSP (``NnsconsDsp()``), so that it takes raw audio too."""
    header = nodes.header
    flags = {"CPPDEFINES": list(env.get("CPPDEFINES") or []) + [("NNSCONS_MODEL_INFO", nodes.name + "_info")],
             "CCFLAGS": strict_flags(env) + ["-include", nodes.name + ".h"]}
    include = [header.dir, *cmsis_include(env)]
    libraries = [model_lib, kernel_lib]
    if nodes.frontend:
        flags["CPPDEFINES"].append(("NNSCONS_FRONTEND_INFO", f"{nodes.name}_frontend_info"))
        flags["CCFLAGS"] += ["-include", f"{nodes.name}_frontend.h"]
        include.append(env.File(nodes.outputs["frontend_h"]).dir)
        libraries = [model_lib, env.NnsconsFrontendLibrary(nodes, build_dir), kernel_lib, env.NnsconsDsp()]
    main = env.Object(os.path.join(build_dir, nodes.name + "_test_main"),
                      os.path.join(str(pipeline.RUNTIME_DIR), "nnscons_test_main.c"), CPPPATH=include, **flags)
    env.Depends(main, [header] + ([nodes.outputs["frontend_h"]] if nodes.frontend else []))   # -include'd
    return env.Program(os.path.join(build_dir, nodes.name + "_test"), [main, *libraries], LIBS=env.get("LIBS", []))


def NnsconsTraceTest(env, nodes: ModelNodes, build_dir: str, kernel_lib):
    """``<build_dir>/<model>_test`` with the model and the test main compiled with -DNNSCONS_TRACE, so that every
    layer's output lands in $NNSCONS_TRACE_DIR (the diagnostics' input). The kernels are the plain ones."""
    tenv = env.Clone()
    tenv.Append(CPPDEFINES=["NNSCONS_TRACE"])
    library = tenv.NnsconsLibrary(nodes, build_dir=build_dir).library
    return tenv.NnsconsHostTest(nodes, build_dir, library, kernel_lib)


def NnsconsHostProof(env, nodes: ModelNodes, binary, sanitized, trace_binary, test: Optional[str],
                     data_set: Optional[str], build_dir: str, sanitized_kernels: Any = None,
                     labels: Optional[list[str]] = None) -> dict[str, Any]:
    """``report.json`` (the host binaries proven against the model), ``diagnostics.json`` (per-layer SNR and
    saturation of the trace build on ``data_set``, the test set else the calibration set; none without one) and
    ``report.html``: their nodes by name. ``sanitized_kernels``: the kernel library the sanitized binary links
    (the report says whether the sanitizers instrumented it); ``labels``: the class names (model.toml)."""
    kernels = env.Dir("$NNSCONS_CMSIS").abspath
    kernels = "nnscons" if os.path.realpath(kernels) == os.path.realpath(cmsis_path()) else kernels
    instrumented = sanitized_kernels is None or getattr(sanitized_kernels[0].attributes, "nnscons_sanitized", True)
    kernels += " (sanitized)" if instrumented else " (not sanitized: Arm's library is compiled as shipped)"
    outputs: dict[str, Any] = {}
    for step in pipeline.host_proof_steps(nodes.name, nodes.outputs, nodes.model, binary, sanitized, trace_binary,
                                          test, data_set, build_dir, kernels, labels):
        outputs.update(add_step(env, step))
    return outputs


def add_builders(env) -> None:
    for method in (NnsconsHostTest, NnsconsTraceTest, NnsconsHostProof):
        env.AddMethod(method, method.__name__)
