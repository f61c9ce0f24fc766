"""The firmware check (part of :mod:`nnscons.firmware`): the output bytes of every inference the firmware ran
equal the host test binary's on the same inputs (``inputs.npz``: ``x0, x1, ...``, one per network input). The
firmware prints an inference's outputs one after the other; so are the host binary's outputs compared."""
from __future__ import annotations

from typing import Any

from .. import fileio
from ..check import run_network
from ..errors import NnsconsError
from .inputs import little_endian


def check_stage(name: str, report_json: str, host_binary: str, inputs_npz: str, check_json: str) -> dict[str, Any]:
    """The firmware's output bytes for ``name`` against the host binary's on the same inputs. A model the image
    left out (it does not fit the board: the report's ``refused``) is recorded as refused, not compared."""
    report = fileio.read_json(report_json)
    refusal = report.get("refused", {}).get(name)
    if refusal is not None:
        result = {"model": name, "target": report["target"], "refused": refusal, "identical": None}
        fileio.write_json(check_json, result)
        return result
    ours = report["models"].get(name, {}).get("outputs")
    if ours is None:
        raise NnsconsError(report_json, f"no outputs of {name} in the firmware report")
    arrays = fileio.read_npz(inputs_npz)
    keys = [f"x{k}" for k in range(len(arrays))]
    if sorted(arrays) != sorted(keys):
        raise NnsconsError(inputs_npz, f"{name}: expected the keys {', '.join(keys)}, found {', '.join(sorted(arrays))}")
    host = run_network(host_binary, [arrays[k] for k in keys], None)
    theirs = ["".join(little_endian(out[i]).hex() for out in host) for i in range(len(host[0]))]
    differing = [i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b]
    if len(ours) != len(theirs):
        differing = differing or [min(len(ours), len(theirs))]
    result: dict[str, Any] = {"model": name, "target": report["target"], "inputs": len(theirs),
                              "mismatched_inputs": len(differing), "identical": not differing}
    if differing:
        i = differing[0]
        result["first_mismatch"] = {"input": i, "firmware": ours[i] if i < len(ours) else None,
                                    "host": theirs[i] if i < len(theirs) else None}
    fileio.write_json(check_json, result)
    if differing:
        raise NnsconsError(check_json, f"{name} on {report['target']}: {len(differing)} of {len(theirs)} inputs give "
                                       f"other output bytes than the host binary (first: input {differing[0]})")
    return result

