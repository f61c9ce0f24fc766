"""CMSIS-DSP as a build dependency: where its C sources are, how to fetch them, and how they are compiled.

The front end calls CMSIS-DSP (``arm_mfcc_q15`` ...); nnscons does not rewrite it. Its sources come from the source
distribution of the PyPI package ``cmsisdsp`` (Apache-2.0), the same code the Python package wraps and the tests
use as the oracle: :func:`fetch` downloads that archive once (its SHA-256 pinned) and unpacks it under the user's
cache folder (``$NNSCONS_CACHE`` or ``~/.cache/nnscons``); ``./dev`` runs it, and ``nnscons fetch-dsp`` does the
same. ``cmsis_dsp=PATH`` (or ``$NNSCONS_CMSIS_DSP``) takes another CMSIS-DSP tree with ``Include/``,
``PrivateInclude/`` and ``Source/``.

Built as the Python package builds it (``-O3 -ffast-math``, loop unrolling), with ``__GNUC_PYTHON__``: portable C,
no dependency on CMSIS-Core (whose compiler headers the sources otherwise include), so the host and the oracle run
the same C (the float MFCC equals the package's only with those flags).
The DSP-extension and Helium paths of CMSIS-DSP need CMSIS-Core and are not used. The group files
(``Source/<Group>/<Group>.c``, each including its group's functions) of the groups the MFCC needs are compiled;
the linker keeps what is called.
"""
from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .errors import NnsconsError

VERSION = "1.10.3"
ARCHIVE = f"cmsisdsp-{VERSION}.tar.gz"
URL = ("https://files.pythonhosted.org/packages/2c/ec/0decbb48985d2eb98739a9bbf4ba090278cc492a7c1a5d5b907e8baf67b5/"
       f"{ARCHIVE}")
SHA256 = "307d32298faa7c58db912851027fce35f886fec7eb1a27c4b309ce1a97f47519"
GROUPS = ("TransformFunctions", "CommonTables", "BasicMathFunctions", "ComplexMathFunctions", "FastMathFunctions",
          "MatrixFunctions", "StatisticsFunctions", "SupportFunctions")
DEFINES = ("__GNUC_PYTHON__", "ARM_MATH_LOOPUNROLL")
CFLAGS = ("-O3", "-ffast-math")          # the cmsisdsp package's own (its float results depend on them)
ENV = "NNSCONS_CMSIS_DSP"


@dataclass(frozen=True)
class DspBuild:
    root: Path
    sources: tuple[Path, ...]
    include_dirs: tuple[Path, ...]
    defines: tuple[str, ...] = DEFINES
    cflags: tuple[str, ...] = CFLAGS


def cache_dir() -> Path:
    return Path(os.environ.get("NNSCONS_CACHE") or Path.home() / ".cache" / "nnscons")


def default_root() -> Path:
    """Where :func:`fetch` puts the sources (``$NNSCONS_CMSIS_DSP`` names another tree)."""
    return Path(os.environ[ENV]) if os.environ.get(ENV) else cache_dir() / f"cmsisdsp-{VERSION}"


def dsp_build(root: Optional[str | os.PathLike] = None) -> DspBuild:
    """The CMSIS-DSP tree at ``root`` (default :func:`default_root`) as a build; one clear line when it is not one."""
    base = Path(root) if root else default_root()
    sources = tuple(base / "Source" / group / f"{group}.c" for group in GROUPS)
    missing = [s for s in sources if not s.is_file()]
    if not (base / "Include" / "arm_math.h").is_file() or missing:
        hint = "run ./dev or `nnscons fetch-dsp`" if not root else "give a CMSIS-DSP tree (Include/, Source/)"
        raise NnsconsError(base, f"no CMSIS-DSP sources here ({hint}; cmsis_dsp=PATH takes another tree)")
    return DspBuild(base, sources, (base / "Include", base / "PrivateInclude"))


def fetch(root: Optional[Path] = None) -> Path:
    """Download and unpack the pinned ``cmsisdsp`` source archive into ``root`` unless it is there already."""
    root = root or default_root()
    if (root / "Include" / "arm_math.h").is_file():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(URL, timeout=120) as response:
            data = response.read()
    except OSError as e:
        raise NnsconsError(URL, f"cannot download CMSIS-DSP's sources: {e}") from None
    if hashlib.sha256(data).hexdigest() != SHA256:
        raise NnsconsError(URL, "the downloaded archive's SHA-256 is not the pinned one (refused)")
    with tempfile.TemporaryDirectory(dir=root.parent, prefix=".cmsisdsp-") as tmp:
        archive = Path(tmp) / ARCHIVE
        archive.write_bytes(data)
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        os.replace(Path(tmp) / f"cmsisdsp-{VERSION}", root)   # whole or not at all, even after a kill
    return root
