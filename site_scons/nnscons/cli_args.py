"""What the ``nnscons`` commands share (:mod:`nnscons.cli`, :mod:`nnscons.validate`): the parser whose usage error
is one line, the option flags, how options are resolved, and a model's C name."""
from __future__ import annotations

import argparse
import os
from typing import Callable, NoReturn

from . import ir, options as nn_options
from .cnames import reserved_name_problem
from .errors import NnsconsError


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (plus where to get help), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} -h)\n")


def option_flags(parser: argparse.ArgumentParser, stages: set[str]) -> None:
    """``--quant``, ``--range`` ... : the options that shape any of ``stages``."""
    for option in nn_options.OPTIONS:
        if stages & set(option.stages):
            parser.add_argument(f"--{option.name}", default=None, metavar=option.name.upper(), type=_checked(option),
                                help=f"{option.help} (default: model.toml, else {option.default})".replace("%", "%%"))


def _checked(option: nn_options.Option) -> Callable[[str], str]:
    """The option's check as an argparse type: a bad value is a usage error (exit 2), not the model's fault."""
    def check(value: str) -> str:
        try:
            return option.check(value)
        except NnsconsError as e:
            raise argparse.ArgumentTypeError(e.message) from None
    check.__name__ = option.name
    return check


def resolve_options(args: argparse.Namespace) -> tuple[dict[str, str], list[str]]:
    """Defaults, then model.toml beside ``args.model``, then ``--options FILE``, then the flags; also the option
    files read (they go into the depfile)."""
    read: list[str] = []
    settings: dict[str, str] = {}
    toml = os.path.join(os.path.dirname(args.model), "model.toml")
    if os.path.isfile(toml):
        settings.update(nn_options.read_model_toml(toml))
        read.append(toml)
    if getattr(args, "options", None):
        settings.update(nn_options.read_model_toml(args.options))
        read.append(args.options)
    flags = {o.name: getattr(args, o.name, None) for o in nn_options.OPTIONS}
    return nn_options.resolve(settings, flags), read


def check_inputs(args: argparse.Namespace, *names: str) -> None:
    """Every file the arguments name (``model``, ``calib``, ``options`` and ``names``) exists."""
    for key in ("model", "calib", "options", *names):
        path = getattr(args, key, None)
        if path and not os.path.isfile(path):
            raise NnsconsError(path, "no such file")


def default_name(model: str) -> str:
    """The C name of a model: its folder's name for ``<folder>/model.tflite``, else the file's stem."""
    stem = os.path.splitext(os.path.basename(model))[0]
    if stem == "model":
        stem = os.path.basename(os.path.dirname(os.path.abspath(model)))
    return stem


def checked_name(model: str, name: str) -> str:
    """``name`` if it can name the model's C API; else one line naming the model."""
    if ir.c_identifier(name) != name or len(name) > ir.MAX_IDENTIFIER:
        raise NnsconsError(model, f"model name {ir.c_comment(name)!r} is not a C identifier: give one with --name")
    problem = reserved_name_problem(name)
    if problem:
        raise NnsconsError(model, f"model name {name!r} cannot be used ({problem}): give another with --name")
    return name
