#!/usr/bin/env python3
"""SHA-256 of every file a build wrote under build/ (generated chains, sources, objects, binaries, reports).

    ./dev python tools/generated_hashes.py [BUILD_DIR] > hashes.txt

Used to prove that a restructuring keeps every generated output byte-identical: build, hash, change the code,
clean build in the same folder, hash again, diff. Skipped: SCons' own database and the Python package build.
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

SKIPPED_PARTS = {"python-package", "__pycache__"}


def hashes(build_dir: Path) -> dict[str, str]:
    found = {}
    for path in sorted(build_dir.rglob("*")):
        rel = path.relative_to(build_dir)
        if path.is_file() and not SKIPPED_PARTS & set(rel.parts) and ".sconsign" not in path.name:
            found[rel.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def main() -> int:
    build_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "build")
    for rel, digest in hashes(build_dir).items():
        print(f"{digest}  {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
