"""Compiling for the environment's target: the kernel library, a model's library, and target environments.

``NnsconsKernels`` compiles CMSIS-NN (the project's portable ``cmsis/`` or a checkout of Arm's) into one static
library that every model of that environment shares. ``NnsconsLibrary`` compiles a model's generated sources into
``lib<name>.a`` and returns it with the folder holding ``<name>.h``. Objects get explicit paths under the
library's ``build_dir``: the same generated file is compiled by several environments (one per target).
"""
from __future__ import annotations

import os
from typing import Any, Iterator, Mapping, Optional, Union

import SCons.Builder
import SCons.Errors
import SCons.Util

from ..kernel_build import kernel_build
from .. import targets as nn_targets
from ..errors import NnsconsError
from .actions import stage_action
from .chain import ModelNodes


class ModelLibrary:
    """What ``NnsconsLibrary`` returns: ``library`` (the static library node list), ``include`` (the folder of
    ``<name>.h``) and ``nodes`` (the model's chain). Unpacks as ``library, include``."""

    def __init__(self, library: Any, include: Any, nodes: ModelNodes) -> None:
        self.library = library
        self.include = include
        self.nodes = nodes

    def __iter__(self) -> Iterator[Any]:
        return iter((self.library, self.include))


def cmsis_include(env) -> list:
    """The include folders generated code compiles against: the kernel library's (nnscons.kernel_build)."""
    root = env.Dir("$NNSCONS_CMSIS")
    try:
        build = kernel_build(root.abspath)
    except NnsconsError as e:
        raise SCons.Errors.UserError(str(e)) from None
    return [root.Dir(os.path.relpath(d, build.root)) for d in build.include_dirs]


def strict_flags(env) -> list:
    """``$CCFLAGS`` plus the target's warning flags (``$NNSCONS_WARNINGS``): what generated code, the kernels and
    nnscons' runtime compile with. A user's own sources in the same environment get ``$CCFLAGS`` alone."""
    return _flags(env, "CCFLAGS") + _flags(env, "NNSCONS_WARNINGS")


def _flags(env, name: str) -> list:
    return list(SCons.Util.Split(env.get(name, [])))


def NnsconsKernels(env, cmsis: Optional[str] = None, build_dir: Optional[str] = None, strict: Optional[bool] = None):
    """Pseudo-builder: CMSIS-NN as a static library (``<build_dir>/libcmsisnn.a``, default
    ``$NNSCONS_BUILD_DIR/cmsisnn``). ``cmsis``: a checkout with Include/ and Source/ (default ``$NNSCONS_CMSIS``,
    the portable library). Every integer source under Source/*/ is compiled. The portable library gets the warning
    flags in ``$NNSCONS_WARNINGS``, a checkout of Arm's does not (``strict`` overrides) and neither the sanitizer
    flags (``$NNSCONS_SANITIZE_FLAGS``): Arm's library is compiled as it is shipped."""
    root = env.Dir(cmsis or "$NNSCONS_CMSIS")
    build_dir = build_dir or os.path.join(env.subst("$NNSCONS_BUILD_DIR"), "cmsisnn")
    anchor = env.Dir(build_dir)
    made = getattr(anchor.attributes, "nnscons_kernels", None)
    if made is not None:
        return made
    try:
        build = kernel_build(root.abspath)
    except NnsconsError as e:
        raise SCons.Errors.UserError(str(e)) from None
    if strict is None:
        strict = build.strict_warnings
    flags = strict_flags(env) if strict else _flags(env, "CCFLAGS")
    if not build.sanitized:     # Arm's library: the sanitizers instrument generated code and the test main only
        dropped = set(env.get("NNSCONS_SANITIZE_FLAGS", []))
        flags = [f for f in flags if f not in dropped]
    include = [root.Dir(os.path.relpath(d, build.root)) for d in build.include_dirs]
    kenv = env.Clone(CPPPATH=include, CCFLAGS=flags)    # one environment for every kernel (cheaper than overrides)
    objects = [kenv.Object(os.path.join(build_dir, "obj", build.object_stem(f)),
                           root.File(os.path.relpath(f, build.root))) for f in build.sources]
    library = env.StaticLibrary(os.path.join(build_dir, "cmsisnn"), objects)
    library[0].attributes.nnscons_sanitized = build.sanitized and bool(env.get("NNSCONS_SANITIZE_FLAGS"))
    anchor.attributes.nnscons_kernels = library
    return library


def NnsconsLibrary(env, model_or_name: Union[str, ModelNodes], model: Optional[str] = None,
                   calib: Optional[str] = None, options: Optional[Mapping[str, Any]] = None,
                   gen_dir: Optional[str] = None, build_dir: Optional[str] = None) -> ModelLibrary:
    """Pseudo-builder: a model as a static library for this environment::

        lib, include = env.NnsconsLibrary('kws', 'models/kws/model.tflite', calib='models/kws/calib.npz',
                                          options={'quant': 'int8'}, build_dir='build/m4/kws')

    makes (or reuses) the model's chain under ``gen_dir`` (default ``$NNSCONS_BUILD_DIR/<name>``) and compiles
    its sources into ``<build_dir>/lib<name>.a`` (default ``<gen_dir>/lib``). The first argument may also be the
    chain ``NnsconsModel`` returned. Link the library with ``NnsconsKernels()``."""
    if isinstance(model_or_name, ModelNodes):
        nodes = model_or_name
    else:
        if model is None:
            raise SCons.Errors.UserError(f"NnsconsLibrary({model_or_name!r}): needs the model file")
        nodes = env.NnsconsModel(model_or_name, model, calib=calib, options=options, gen_dir=gen_dir)
    build_dir = build_dir or os.path.join(nodes.gen_dir, "lib")
    made = getattr(env.Dir(build_dir).attributes, "nnscons_libraries", {})
    if nodes.name in made:
        return made[nodes.name]
    c_files = [s for s in nodes.sources if str(s).endswith(".c")]
    cpppath = list(env.get("CPPPATH", [])) + cmsis_include(env)
    objects = [env.Object(os.path.join(build_dir, os.path.splitext(os.path.basename(str(c)))[0]), c,
                          CPPPATH=cpppath, CCFLAGS=strict_flags(env)) for c in c_files]
    target = env.get("NNSCONS_TARGET")
    if target is not None and target.memory is not None and target.images != "per-model":
        # refuse a model too big before compiling its weights (a board measures it at link time instead, and
        # leaves it out: nnscons.firmware.fits)
        env.Depends(objects, _fits_check(env, nodes, target, build_dir))
    result = ModelLibrary(env.StaticLibrary(os.path.join(build_dir, nodes.name), objects), nodes.header.dir, nodes)
    env.Dir(build_dir).attributes.nnscons_libraries = {**made, nodes.name: result}
    return result


def _fits_check(env, nodes: ModelNodes, target: nn_targets.Target, build_dir: str):
    """``<build_dir>/fits.txt``: the model's constants and arena against the target's memory (one line naming the
    model when they cannot fit, before a compiler spends a minute on its weights)."""
    def check(target_nodes, source, env):
        from ..targets import check_fits, model_footprint
        footprint = model_footprint(str(source[0]), str(source[1]))
        check_fits(target, {nodes.name: footprint})
        with open(str(target_nodes[0]), "w", encoding="utf-8") as f:
            f.write(f"{nodes.name} fits {target.name}: constants {footprint.constants} B, arena {footprint.arena} B\n")
    return env.NnsconsFits(os.path.join(build_dir, "fits.txt"),
                           [nodes.outputs["qparams_npz"], nodes.plan, env.Value(f"{target.name} {target.memory}")],
                           NNSCONS_FITS=check)


def load_target(env, target: Union[str, nn_targets.Target]) -> nn_targets.Target:
    """A target description: a Target, a folder holding a target.toml, or a folder name under
    ``$NNSCONS_TARGETS``."""
    if isinstance(target, nn_targets.Target):
        return target
    directory = target if os.path.isfile(os.path.join(target, "target.toml")) else \
        os.path.join(env.subst("$NNSCONS_TARGETS"), target)
    try:
        return nn_targets.load_target(directory)
    except NnsconsError as e:
        raise SCons.Errors.UserError(str(e)) from None


def NnsconsTargetEnv(env, target: Union[str, nn_targets.Target], opt: Optional[str] = None,
                     sanitize: bool = False):
    """A clone of ``env`` that compiles and links for a target (targets/README.md): its compiler, archiver,
    flags and libraries; ``opt`` (e.g. ``"O2"``) for Cortex-M targets; ``sanitize`` adds the target's
    sanitizer flags. The target is ``NNSCONS_TARGET`` in the clone. ``CCFLAGS`` holds the target's ``cflags``
    (what a user's own sources compile with); its ``warnings`` go to ``NNSCONS_WARNINGS``, which only the
    generated code, the kernels and nnscons' runtime add (:func:`strict_flags`)."""
    target = load_target(env, target)
    cflags = target.cflags + ([f"-{opt}"] if opt and target.kind == "cortex-m" else [])
    linkflags = list(target.linkflags)
    if sanitize:
        cflags = target.cflags + target.sanitize_flags
        linkflags += target.sanitize_flags
    # {root} in a flag: the top folder, where SCons runs the compilers, kept out of the signatures ($( $)) so
    # checkouts in different folders still share a cache
    cflags, linkflags, sanitize_flags, warnings = (
        nn_targets.expand_root(flags, env.Dir("#").abspath, ("$(", "$)"))
        for flags in (cflags, linkflags, target.sanitize_flags, target.warnings))
    return env.Clone(CC=target.cc, LINK=target.cc, AR=target.ar, RANLIB=target.ranlib, CCFLAGS=cflags,
                     LINKFLAGS=linkflags, LIBS=target.libs, NNSCONS_WARNINGS=warnings, NNSCONS_TARGET=target,
                     NNSCONS_SANITIZE_FLAGS=sanitize_flags if sanitize else [])


def _run_fits(target, source, env) -> None:
    env["NNSCONS_FITS"](target, source, env)


def add_methods(env) -> None:
    env.Append(BUILDERS={"NnsconsFits": SCons.Builder.Builder(
        action=stage_action("fits", _run_fits, "$NNSCONS_FITSCOMSTR"))})
    env.SetDefault(NNSCONS_FITSCOMSTR="nnscons fits      $TARGET")
    for method in (NnsconsKernels, NnsconsLibrary, NnsconsTargetEnv):
        env.AddMethod(method, method.__name__)
