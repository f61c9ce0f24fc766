"""A shared CacheDir (``scons cache=DIR``): a second checkout gets every built file from the cache, because nothing in
a node's signature depends on where the checkout is or which Python minor version runs SCons.

Set NNSCONS_OTHER_PYTHON to an interpreter of another minor version with SCons and nnscons' dependencies to also
fill the cache with one version and read it with the other.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow   # whole SCons builds in two checkouts

ROOT = Path(__file__).resolve().parents[1]
MODEL = "digits_cnn"


def checkout(directory: Path) -> Path:
    directory.mkdir()
    shutil.copy(ROOT / "SConstruct", directory / "SConstruct")
    for item in ("site_scons", "cmsis", "targets"):
        shutil.copytree(ROOT / item, directory / item, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "models" / MODEL, directory / "models" / MODEL)
    return directory


def scons(python: str, project: Path, *args: str) -> str:
    result = subprocess.run([python, "-m", "SCons", "-Q", "-j2", *args], cwd=project, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def built_files(project: Path) -> set[str]:
    return {str(p.relative_to(project)) for p in (project / "build").rglob("*") if p.is_file()}


def retrieved(stdout: str) -> set[str]:
    return set(re.findall(r"Retrieved `([^']+)' from cache", stdout))


def test_stage_actions_are_signed_by_name_not_bytecode() -> None:
    """SCons signs a Python function action with its bytecode, which changes between Python minor versions; the
    tool's actions carry a fixed signature instead (scons-facts.md section 6)."""
    import SCons.Action
    import SCons.Environment

    from nnscons.scons_tool import generate
    from nnscons.scons_tool.actions import signature

    env = SCons.Environment.Environment(tools=[])
    generate(env)
    builders = {name: b for name, b in env["BUILDERS"].items() if name.startswith("Nns")}
    assert {"NnsconsStep", "NnsFirmwareModelsC", "NnsFirmwareReport", "NnsFirmwareCheckReport"} <= set(builders)
    for name, builder in builders.items():
        contents = builder.action.get_contents([], [], env)
        assert re.fullmatch(rb"nnscons [a-z_ ]+ action v\d+", contents), (name, contents)
    # every pipeline step runs through one builder; what a step is enters its nodes as a Value (kind, options)
    assert env["BUILDERS"]["NnsconsStep"].action.get_contents([], [], env) == signature("step")

    def plain(target, source, env):
        return 0
    assert plain.__code__.co_code in SCons.Action.Action(plain).get_contents([], [], env)  # what the tool avoids


def test_a_second_checkout_gets_every_built_file_from_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first, second = checkout(tmp_path / "first"), checkout(tmp_path / "second")
    stdout = scons(sys.executable, first, "target=host", "check", f"cache={cache}")
    assert "nnscons codegen" in stdout and "Retrieved" not in stdout
    stdout = scons(sys.executable, second, "target=host", "check", f"cache={cache}")
    files = built_files(second)
    assert {"build/digits_cnn/qtable.json", "build/digits_cnn/src/digits_cnn_weights.c",
            "build/host/digits_cnn/digits_cnn_test", "build/host/digits_cnn/report.json"} <= files
    assert retrieved(stdout) == files
    assert "nnscons " not in stdout and "CC " not in stdout       # no stage and no compiler ran


def test_the_cache_option_defaults_to_the_environment_variable(tmp_path: Path) -> None:
    project = checkout(tmp_path / "project")
    env = {**os.environ, "NNSCONS_CACHE": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, "-m", "SCons", "-Q"], cwd=project, capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert any((tmp_path / "cache").rglob("*")), "nothing was pushed into the cache"


@pytest.mark.skipif(not os.environ.get("NNSCONS_OTHER_PYTHON"), reason="set NNSCONS_OTHER_PYTHON to another Python")
def test_the_cache_is_shared_across_python_versions(tmp_path: Path) -> None:
    other = os.environ["NNSCONS_OTHER_PYTHON"]
    versions = {subprocess.run([p, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True,
                               text=True).stdout for p in (sys.executable, other)}
    assert len(versions) == 2, "NNSCONS_OTHER_PYTHON must be another minor version"
    cache = tmp_path / "cache"
    scons(sys.executable, checkout(tmp_path / "first"), "target=host", f"cache={cache}")
    second = checkout(tmp_path / "second")
    stdout = scons(other, second, "target=host", f"cache={cache}")
    assert retrieved(stdout) == built_files(second) and "nnscons " not in stdout
