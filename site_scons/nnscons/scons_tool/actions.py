"""How the tool turns a stage function into an SCons action.

Two things matter for the graph (DESIGN.md section 1, shared/reference/scons-facts.md sections 2 and 6):

* SCons signs a Python action by its own bytecode, which differs between Python minor versions, so a shared
  CacheDir would miss across them. A ``functools.partial`` has no bytecode, and SCons then asks it for
  ``get_contents()``: a fixed string naming the stage. Edits to what the action runs are caught by the nodes'
  dependencies on the library modules instead (``pipeline.stage_sources``), and ``ACTION_VERSION`` covers the
  wrappers in this package.
* A stage's :class:`~nnscons.errors.NnsconsError` becomes one build error line naming the file, no traceback.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import SCons.Action
import SCons.Errors

from .. import pipeline
from ..errors import NnsconsError

ACTION_VERSION = "1"  # bump when an action wrapper changes in a way the module dependencies do not show


def signature(stage: str) -> bytes:
    """What SCons records as the action of a stage's nodes (and keys its cache with)."""
    return f"nnscons {stage} action v{ACTION_VERSION}".encode()


def depends_on(stage: str) -> Callable:
    """An emitter making a builder's targets depend on the library modules ``stage`` runs
    (``pipeline.STAGE_MODULES``)."""
    def emitter(target, source, env):
        env.Depends(target, pipeline.stage_sources(stage))
        return target, source
    return emitter


def stage_action(stage: str, run: Callable[[list, list, Any], None], comstr: str) -> SCons.Action.Action:
    """A Python action running ``run(target, source, env)`` with the fixed signature of ``stage``."""

    def execute(target, source, env):
        try:
            run(target, source, env)
        except NnsconsError as e:
            raise SCons.Errors.BuildError(node=target[0], errstr=str(e), exitstatus=1) from None
        return 0

    action = functools.partial(execute)
    action.get_contents = lambda target, source, env: signature(stage)
    return SCons.Action.Action(action, comstr)
