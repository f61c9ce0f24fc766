"""A program of one's own for a board of targets/ (what CMake's ``nnscons_link_board`` does), and its run::

    m4 = env.NnsconsTargetEnv("m4")                       # any folder of targets/ (or $NNSCONS_TARGETS)
    digits, include = m4.NnsconsLibrary("digits", "models/digits/model.onnx", calib="models/digits/calib.npz")
    app = m4.NnsconsBoardProgram("build/m4/app.elf", ["main.c"], CPPPATH=[include],
                                 LIBS=[digits, m4.NnsconsKernels()])
    m4.NnsconsBoardRun(app)                               # `scons run`: the program in the board's emulator

``NnsconsBoardProgram`` compiles the given sources into ``<folder of the program>/obj/`` with the environment's
``CCFLAGS`` (the target's ``cflags``: not the strict warnings, which only generated code, the kernels and the
runtime get), adds the target's startup code (compiled strictly), and links with the target's ``linkflags``,
its linker script and stack size (:func:`nnscons.firmware.program.link_flags`), float ``printf``
(``-u _printf_float``: newlib-nano drops it otherwise) and a linker map beside the program.
"""
from __future__ import annotations

import os
from typing import Any, Optional, Sequence, Union

import SCons.Action
import SCons.Errors
import SCons.Util

from .. import pipeline, targets as nn_targets
from ..errors import NnsconsError
from .libraries import strict_flags

SOURCE_SUFFIXES = (".c", ".s", ".S", ".cc", ".cpp", ".cxx")


def _program_module():
    """nnscons.firmware.program, imported when a board program is declared (the firmware package loads numpy:
    an SConstruct that declares none does not pay for it)."""
    from ..firmware import program
    return program


def board_env(env, board: Union[None, str, nn_targets.Target]):
    """The environment compiling for ``board``: ``env`` itself when it already does (or ``board`` is None), else
    ``env.NnsconsTargetEnv(board)``."""
    current = env.get("NNSCONS_TARGET")
    if board is None:
        if current is None:
            raise SCons.Errors.UserError("NnsconsBoardProgram: give board=<target> or call it on an environment "
                                         "from NnsconsTargetEnv")
        benv = env
    elif current is not None and board in (current, current.name):
        benv = env
    else:
        benv = env.NnsconsTargetEnv(board, opt="O2")
    try:
        _program_module().board_target(benv["NNSCONS_TARGET"])
    except NnsconsError as e:
        raise SCons.Errors.UserError(str(e)) from None
    return benv


def NnsconsBoardProgram(env, program: str, sources: Sequence[Any], board: Union[None, str, nn_targets.Target] = None,
                        **overrides: Any):
    """Pseudo-builder: ``program`` (an ELF) from ``sources`` for a board; ``overrides`` (``CPPPATH``, ``LIBS``,
    ``CPPDEFINES``, ``CCFLAGS`` ...) apply to compiling the sources and to the link; the target's ``libs`` are
    linked after ``LIBS``. Returns the program's node list (the ELF, then its ``.map``)."""
    fw_program = _program_module()
    benv = board_env(env, board)
    target = benv["NNSCONS_TARGET"]
    folder = os.path.dirname(str(program))
    runtime = benv.Dir(str(pipeline.RUNTIME_DIR))
    objects = []
    for source in SCons.Util.flatten(sources):
        name = str(source)
        if name.endswith(SOURCE_SUFFIXES):
            stem = os.path.splitext(os.path.basename(name))[0]
            objects += benv.Object(os.path.join(folder, "obj", stem), source, **overrides)
        else:
            objects.append(source)      # an object file or node: linked as it is
    objects += [benv.Object(os.path.join(folder, "obj", "startup", _stem(s)), s, CPPPATH=[runtime],
                            CCFLAGS=strict_flags(benv)) for s in target.startup]
    map_file = os.path.splitext(str(program))[0] + ".map"
    link = dict(overrides)
    link["LIBS"] = list(SCons.Util.Split(overrides.get("LIBS", []))) + list(benv.get("LIBS", []))
    link["LINKFLAGS"] = list(benv["LINKFLAGS"]) + [fw_program.PRINTF_FLOAT] + \
        fw_program.link_flags(target, str(runtime), map_file)
    image = benv.Program([program, map_file], objects, **link)
    benv.Depends(image, [target.linker_script, *(runtime.File(s) for s in _sections_scripts())])
    return image


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(str(path)))[0]


def _sections_scripts() -> tuple[str, str]:
    from ..firmware import LAYOUT_SCRIPT, SECTIONS_SCRIPT
    return SECTIONS_SCRIPT, LAYOUT_SCRIPT


def NnsconsBoardRun(env, program, alias: str = "run", board: Union[None, str, nn_targets.Target] = None,
                    timeout: Optional[float] = None):
    """An alias (default ``run``) that runs ``program`` (NnsconsBoardProgram's result) in the board's emulator
    every time it is asked for, its output on stdout; the build fails when the program's exit status is not 0."""
    board_target = board_env(env, board)["NNSCONS_TARGET"]

    def run(target, source, env) -> int:
        try:
            status = _program_module().run_program(board_target, str(source[0]), timeout)
        except NnsconsError as e:
            raise SCons.Errors.BuildError(node=target[0], errstr=str(e), exitstatus=1) from None
        if status != 0:
            print(f"nnscons: {source[0]}: exited with status {status} on {board_target.name}")
        return status

    node = env.Alias(alias, program[0] if isinstance(program, list) else program,
                     SCons.Action.Action(run, f"nnscons run       $SOURCE on {board_target.name}"))
    env.AlwaysBuild(node)
    return node


def add_methods(env) -> None:
    for method in (NnsconsBoardProgram, NnsconsBoardRun):
        env.AddMethod(method, method.__name__)
