"""Two clean builds of the same project in different folders write the same bytes, every file under build/ (the
sanitized objects, libraries and binaries included: their debug information names files relative to the project,
-ffile-prefix-map={root}=. in targets/host/target.toml)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nnscons import targets

ROOT = Path(__file__).resolve().parents[1]
MODEL = "hello_world_int8"


def checkout(directory: Path) -> Path:
    directory.mkdir(parents=True)
    shutil.copy(ROOT / "SConstruct", directory / "SConstruct")
    for item in ("site_scons", "cmsis", "targets"):
        shutil.copytree(ROOT / item, directory / item, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "models" / MODEL, directory / "models" / MODEL)
    return directory


def build(project: Path, *targets: str) -> None:
    result = subprocess.run([sys.executable, "-m", "SCons", "-Q", "-j2", *targets], cwd=project, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def files(project: Path) -> dict[str, bytes]:
    return {str(p.relative_to(project)): p.read_bytes() for p in sorted((project / "build").rglob("*")) if p.is_file()}


def test_root_placeholder_is_expanded_and_kept_out_of_scons_signatures() -> None:
    flags = ["-g", "-ffile-prefix-map={root}=.", "-O1"]
    assert targets.expand_root(flags, "/p") == ["-g", "-ffile-prefix-map=/p=.", "-O1"]
    assert targets.expand_root(flags, "/p", ("$(", "$)")) == ["-g", "$(", "-ffile-prefix-map=/p=.", "$)", "-O1"]
    host = targets.load_target(str(ROOT / "targets" / "host"))
    assert "-g" in host.sanitize_flags and "-ffile-prefix-map={root}=." in host.sanitize_flags


@pytest.mark.slow   # two whole builds, host and Cortex-M4, with their checks
def test_two_clean_builds_in_different_folders_are_identical(tmp_path: Path) -> None:
    first, second = checkout(tmp_path / "a"), checkout(tmp_path / "elsewhere" / "b")
    targets = ["target=host,m4", "check", "run"] if shutil.which("qemu-system-arm") else ["target=host", "check"]
    for project in (first, second):
        build(project, *targets)
    one, two = files(first), files(second)
    assert one.keys() == two.keys()
    assert any("/sanitize/" in name for name in one) and f"build/host/{MODEL}/report.json" in one
    differing = sorted(name for name in one if one[name] != two[name])
    assert differing == [], f"{len(differing)} files differ, e.g. {differing[:5]}"
    for project in (first, second):                     # the checkout's path is in no file
        assert not [name for name, data in files(project).items() if str(project).encode() in data]
