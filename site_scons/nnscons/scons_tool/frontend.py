"""The audio front end's part of the ``nnscons`` tool: its feature sets, CMSIS-DSP and the front end compiled for the
environment's target, its host runner and its proof.

For a model whose chain has a front end (``NnsconsModel(frontend=...)``)::

    <gen_dir>/features/<role>.npz               NnsconsFeatures        a raw-audio set as the network's features
    <build_dir>/libcmsisdsp.a                   NnsconsDsp             CMSIS-DSP, as the cmsisdsp package builds it
    <build_dir>/lib<name>_frontend.a            NnsconsFrontendLibrary the generated <name>_frontend.c
    <build_dir>/<name>_frontend_test            NnsconsFrontendTest    its host runner (IN.npy audio -> OUT.npy)
    <out_dir>/frontend_check.json               NnsconsFrontendCheck   that runner against cmsisdsp, frame by frame

CMSIS-DSP's sources come from ``$NNSCONS_CMSIS_DSP`` (default :func:`nnscons.cmsis_dsp.default_root`: what
``nnscons fetch-dsp`` unpacked). They are compiled with the target's flags minus the warning and sanitizer flags
and with the package's own (:mod:`nnscons.cmsis_dsp`), as a third-party library is compiled as shipped.
"""
from __future__ import annotations

import os
from typing import Any, Optional

import SCons.Errors

from .. import cmsis_dsp, pipeline
from ..errors import NnsconsError
from .chain import ModelNodes, add_step
from .libraries import strict_flags


def _dsp_build(env) -> cmsis_dsp.DspBuild:
    try:
        return cmsis_dsp.dsp_build(env.subst("$NNSCONS_CMSIS_DSP") or None)
    except NnsconsError as e:
        raise SCons.Errors.UserError(str(e)) from None


def dsp_defines(env) -> list[str]:
    return list(_dsp_build(env).defines)


def dsp_include(env) -> list:
    return [env.Dir(str(d)) for d in _dsp_build(env).include_dirs]


def NnsconsDsp(env, build_dir: Optional[str] = None):
    """Pseudo-builder: CMSIS-DSP's groups the front end needs as ``<build_dir>/libcmsisdsp.a`` (default
    ``$NNSCONS_BUILD_DIR/<target>/cmsisdsp``); made once per folder."""
    target = env.get("NNSCONS_TARGET")
    build_dir = build_dir or os.path.join(env.subst("$NNSCONS_BUILD_DIR"), target.name if target else "default",
                                          "cmsisdsp")
    anchor = env.Dir(build_dir)
    made = getattr(anchor.attributes, "nnscons_dsp", None)
    if made is not None:
        return made
    build = _dsp_build(env)
    dropped = set(env.get("NNSCONS_WARNINGS", [])) | set(env.get("NNSCONS_SANITIZE_FLAGS", []))
    flags = [f for f in env["CCFLAGS"] if f not in dropped and not str(f).startswith("-O")] + list(build.cflags)
    denv = env.Clone(CCFLAGS=flags, CPPPATH=dsp_include(env), LINKFLAGS=[],
                     CPPDEFINES=list(env.get("CPPDEFINES") or []) + list(build.defines))
    objects = [denv.Object(os.path.join(build_dir, "obj", os.path.splitext(os.path.basename(str(s)))[0]),
                           env.File(str(s))) for s in build.sources]
    library = denv.StaticLibrary(os.path.join(build_dir, "cmsisdsp"), objects)
    anchor.attributes.nnscons_dsp = library
    return library


def NnsconsFrontendLibrary(env, nodes: ModelNodes, build_dir: str):
    """Pseudo-builder: the model's generated front end compiled by this environment, ``<build_dir>/lib<name>_
    frontend.a`` (link it with ``NnsconsDsp()``); None for a model without one."""
    if not nodes.frontend:
        return None
    source = nodes.outputs["frontend_c"]
    obj = env.Object(os.path.join(build_dir, f"{nodes.name}_frontend"), source, CCFLAGS=strict_flags(env),
                     CPPPATH=list(env.get("CPPPATH", [])) + [env.File(source).dir] + dsp_include(env),
                     CPPDEFINES=list(env.get("CPPDEFINES") or []) + dsp_defines(env))
    env.Depends(obj, nodes.outputs["frontend_h"])
    return env.StaticLibrary(os.path.join(build_dir, f"{nodes.name}_frontend"), obj)


def NnsconsFrontendTest(env, nodes: ModelNodes, build_dir: str, frontend_lib, dsp_lib):
    """Pseudo-builder: ``<build_dir>/<name>_frontend_test IN.npy OUT.npy`` (runtime/nnscons_frontend_main.c)."""
    runtime = env.Dir(str(pipeline.RUNTIME_DIR))
    main = env.Object(os.path.join(build_dir, f"{nodes.name}_frontend_main"), runtime.File("nnscons_frontend_main.c"),
                      CPPPATH=[env.File(nodes.outputs["frontend_h"]).dir, runtime],
                      CPPDEFINES=list(env.get("CPPDEFINES") or []) + [("NNSCONS_FRONTEND_INFO",
                                                                       f"{nodes.name}_frontend_info")],
                      CCFLAGS=strict_flags(env) + ["-include", f"{nodes.name}_frontend.h"])
    env.Depends(main, nodes.outputs["frontend_h"])
    return env.Program(os.path.join(build_dir, f"{nodes.name}_frontend_test"), [main, frontend_lib, dsp_lib],
                       LIBS=env.get("LIBS", []))


def NnsconsFeatures(env, nodes: ModelNodes, audio_npz: str, role: str) -> Any:
    """Pseudo-builder: a set of raw audio (``role``: ``test`` ...) as features for a model with a front end
    (``<gen_dir>/features/<role>.npz``)."""
    step = pipeline.features_step(nodes.outputs["graph_json"], audio_npz,
                                  os.path.join(nodes.gen_dir, "features", f"{role}.npz"), nodes.frontend)
    return add_step(env, step)["features_npz"]


def NnsconsFrontendCheck(env, nodes: ModelNodes, binary, audio_npz: str, out_dir: str, network_binary=None,
                         features_npz=None) -> Any:
    """Pseudo-builder: the front end's host runner (``NnsconsFrontendTest``) against cmsisdsp on a set's clips
    (``<out_dir>/frontend_check.json``); with ``network_binary`` (``NnsconsHostTest``) and ``features_npz`` (the
    set's ``NnsconsFeatures``) also the network's binary on the raw clips against it on their features."""
    network = {"network_binary": network_binary, "graph_json": nodes.outputs["graph_json"],
               "features_npz": features_npz} if network_binary is not None and features_npz is not None else None
    step = pipeline.frontend_check_step(nodes.name, binary, audio_npz, out_dir, nodes.frontend, network)
    return add_step(env, step)["check_json"]


def add_builders(env) -> None:
    env.SetDefault(NNSCONS_CMSIS_DSP="")
    for method in (NnsconsDsp, NnsconsFrontendLibrary, NnsconsFrontendTest, NnsconsFeatures, NnsconsFrontendCheck):
        env.AddMethod(method, method.__name__)
