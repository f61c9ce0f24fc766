"""``nnscons init`` and ``nnscons run``: starting a project outside this repository and running its firmware
(registered by :func:`nnscons.cli.build_parser`; cli.py is at its size limit).

    nnscons init DIR [--model MODEL_DIR|FILE [--calib C.npz] [--name N]] [--force]
    nnscons run --target m4 app.elf      the program in the target's emulator; exits with its status
"""
from __future__ import annotations

import argparse
import os

from . import targets_path
from .errors import NnsconsError


def _init(args: argparse.Namespace) -> int:
    from .init_project import init_project
    model = init_project(args.directory, args.model, args.name, args.calib, args.force)
    print(f"nnscons: wrote {args.directory} (model {model.name}). Next:\n"
          f"  cd {args.directory} && scons target=m4 run      # or: scons run (this machine); cmake: README.md")
    return 0


def _run(args: argparse.Namespace) -> int:
    from .firmware.program import run_program
    from .targets import load_target
    directory = args.target if os.path.isfile(os.path.join(args.target, "target.toml")) else \
        os.path.join(targets_path(), args.target)
    if not os.path.isdir(directory):
        raise NnsconsError(args.target, f"no such target (the folders of {targets_path()}, or a folder holding a "
                                        "target.toml)")
    if not os.path.isfile(args.elf):
        raise NnsconsError(args.elf, "no such file")
    return run_program(load_target(directory), args.elf, args.timeout)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("init", help="write a starter project (SConstruct, CMakeLists.txt, main.c, a model)",
                       description="Write a starter project into DIR: models/<name>/ (the example digits model, or "
                                   "--model), main.c, an SConstruct using the installed SCons tool, a CMakeLists.txt "
                                   "using nnscons.cmake and a README. `scons target=m4 run` builds and runs it.")
    p.add_argument("directory", metavar="DIR", help="the project folder (missing or empty, unless --force)")
    p.add_argument("--model", metavar="MODEL", help="a model folder (model.tflite|onnx, calib.npz, model.toml) or "
                                                    "a .tflite/.onnx file (default: the example digits model)")
    p.add_argument("--calib", metavar="C.npz", help="the calibration set of a float model given as a file")
    p.add_argument("--name", help="the model's C name (default: its folder's name, or the file's stem)")
    p.add_argument("--force", action="store_true", help="write into a folder that is not empty (the starter's "
                                                        "files replace files of the same name)")
    p.set_defaults(run=_init)

    p = sub.add_parser("run", help="run a firmware ELF in a target's emulator (QEMU)",
                       description="Run a program linked for a board (NnsconsBoardProgram, nnscons_link_board) in "
                                   "the target's emulator, its output on stdout; exit with the program's status.")
    p.add_argument("elf", help="the program (ELF)")
    p.add_argument("--target", required=True, help="a folder of `nnscons path targets` (m4, ...) or a target folder")
    p.add_argument("--timeout", type=float, help="seconds (default: the target's [emulator] timeout)")
    p.set_defaults(run=_run)
