"""Deterministic, atomic file output shared by every stage.

SCons' early cutoff only works if a regenerated file is byte-identical when nothing that matters changed, and a
killed build must never leave a truncated file behind (see shared/reference/scons-facts.md sections 1 and 7).
So every stage writes through these helpers: canonical JSON, ``.npz`` archives with fixed zip timestamps, and a
temporary file in the target's directory that is ``os.replace``-d into place.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

if TYPE_CHECKING:  # numpy is imported where arrays are written or read: SCons reads the SConstruct without it
    import numpy as np

# zip cannot store dates before 1980; a fixed date keeps archives byte-identical between runs
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[Any]:
    """Open a temporary file beside ``path``; on success move it over ``path``, on failure remove it."""
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": "\n"})) as f:
            yield f
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes the file private; outputs get the usual mode
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# read once, at import: os.umask() can only be read by setting it, which must not race with build threads
_UMASK = _read_umask()


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)


def _json_default(obj: Any) -> Any:
    import numpy as np
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"cannot serialize {type(obj).__name__} to JSON")


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys, fixed indentation and Python's shortest round-trip float repr (deterministic)."""
    return json.dumps(obj, indent=1, sort_keys=True, default=_json_default, allow_nan=False) + "\n"


def text_table(rows: Sequence[Sequence[str]]) -> list[str]:
    """The lines of a plain text table (the readable outputs, qtable.txt, stats.txt, printed summaries): the first
    row is the header, underlined with dashes; columns left-aligned two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, canonical_json(obj))


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def npz_bytes(arrays: Mapping[str, np.ndarray], compress: bool = False) -> bytes:
    """An ``.npz`` archive (readable by ``np.load``) whose bytes depend only on the arrays: sorted names,
    fixed timestamps, no compression unless ``compress`` (deflate at a fixed level, for data files kept in a
    source tree; like ``np.savez_compressed``)."""
    import numpy as np
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for name in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=_ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue(), compress_type=method, compresslevel=9 if compress else None)
    return buf.getvalue()


def write_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray], compress: bool = False) -> None:
    write_bytes(path, npz_bytes(arrays, compress))


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    import numpy as np
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
