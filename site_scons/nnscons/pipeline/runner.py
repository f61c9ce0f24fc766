"""Running steps outside SCons (the CLI, CMake through it, the experiments), reusing outputs that are up to date.

A step is up to date when a record written after its last run still matches: the content of its inputs, its
options and parameters, the library files it depends on, and the content of its outputs. The record
(``.steps/<stage>.json`` beside the step's first output's folder) is written only after every output was
replaced, so a run killed in between leaves a record that no longer matches and the step runs again. So changing
an option after the statistics (``--range``, ``--api``) reruns only what it shapes, as SCons would.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Iterable, Optional

from .. import fileio
from .stages import STAGES
from .steps import Step

RECORD_DIR = ".steps"


def _file_digest(path: str) -> Optional[str]:
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def _record_path(step: Step) -> str:
    first = next(iter(step.outputs.values()))
    folder = os.path.dirname(first)
    if os.path.basename(folder) == "src":            # codegen: keep the record out of the source folder
        folder = os.path.dirname(folder)
    return os.path.join(folder, RECORD_DIR, f"{step.stage}.json")


def _input_signature(step: Step) -> str:
    digest = hashlib.sha256(json.dumps([step.stage, step.module_key, dict(step.options), dict(step.params)],
                                       sort_keys=True).encode())
    for role, path in sorted(step.inputs.items()):
        digest.update(f"{role}={_file_digest(str(path)) if path is not None else '-'}".encode())
    for path in step.module_files():
        digest.update(f"{os.path.basename(path)}={_file_digest(path)}".encode())
    return digest.hexdigest()


def _output_digests(step: Step) -> dict[str, Optional[str]]:
    return {role: _file_digest(path) for role, path in sorted(step.outputs.items())}


def is_up_to_date(step: Step) -> bool:
    try:
        record = fileio.read_json(_record_path(step))
    except Exception:  # noqa: BLE001 - no record, or an unreadable one: run the step
        return False
    outputs = _output_digests(step)
    return (record.get("inputs") == _input_signature(step) and record.get("outputs") == outputs
            and None not in outputs.values())


def run_step(step: Step) -> None:
    """Run one step's stage function, whatever the record says."""
    STAGES[step.stage](**step.arguments())


def run_steps(steps: Iterable[Step], force: bool = False) -> list[str]:
    """Run every step that is not up to date, in order; returns the stages that ran."""
    ran = []
    for step in steps:
        if not force and is_up_to_date(step):
            continue
        signature = _input_signature(step)
        record = _record_path(step)
        if os.path.exists(record):
            os.unlink(record)
        run_step(step)
        fileio.write_json(record, {"inputs": signature, "outputs": _output_digests(step)})
        ran.append(step.stage)
    return ran
