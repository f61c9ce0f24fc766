"""Targets that changed behind SCons' back are rebuilt, not trusted (the content decider plus one check).

SCons decides a target is up to date when its sources match what it recorded at the target's last successful
build; it never looks at the target's own file again. Two ways leave a target whose file is not the one recorded:
a build killed after an action replaced its output but before SCons wrote its database (change an option, kill,
revert the option: the new file passes for the old one), and an action that writes its output and then fails
(a failed check's report). So the tool's decider also compares each target's file with the record of it
(modification time and size, what SCons stores beside the content signature): a target whose file differs is
out of date. The rest is SCons' own ``content`` decider, so early cutoff is unchanged.
"""
from __future__ import annotations

import os
from typing import Any


def recorded_file_differs(target: Any) -> bool:
    """Whether ``target``'s file exists but is not the file SCons recorded when it last built it."""
    known = getattr(target.attributes, "nnscons_differs", None)
    if known is not None:
        return known
    differs = False
    if target.has_builder():
        try:
            info = target.get_stored_info().ninfo
            recorded = (getattr(info, "timestamp", None), getattr(info, "size", None))
            st = os.stat(target.get_abspath())
        except (OSError, AttributeError):
            recorded = (None, None)
        if None not in recorded:
            differs = (int(st.st_mtime), st.st_size) != (int(recorded[0]), int(recorded[1]))
    target.attributes.nnscons_differs = differs
    return differs


def content_unless_changed_behind(dependency: Any, target: Any, prev_ni: Any, repo_node: Any = None) -> bool:
    """The decider: rebuild when the target's file is not the recorded one, else SCons' content decision."""
    if recorded_file_differs(target):
        return True
    return dependency.changed_content(target, prev_ni, repo_node)


def use_record_checking_decider(env: Any) -> None:
    env.Decider(content_unless_changed_behind)
