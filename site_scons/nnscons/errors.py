"""The one exception type users see.

Every stage reports bad input (a corrupt model, an unsupported op, calibration data that does not fit, a wrong
option) by raising :class:`NnsconsError`. Its ``str()`` is a single line that names the file and the problem; the
SCons tool and the CLI print exactly that line and exit non-zero, never a traceback.
"""
from __future__ import annotations

import os


class NnsconsError(Exception):
    """A user-facing error: ``<file>: <problem>`` on one line."""

    def __init__(self, path: str | os.PathLike | None, message: str) -> None:
        self.path = os.fspath(path) if path is not None else None
        self.message = " ".join(str(message).split())  # one line, whatever the message held
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message
