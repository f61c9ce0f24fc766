"""Which library source files shape each stage's output.

SCons signs a Python action by its own bytecode only, not by the code it calls (shared/reference/scons-facts.md
section 2), and the CLI's up-to-date check hashes the same files: so every step names the modules whose source
shapes its outputs, and a node depends on those files. ``tests/test_pipeline.py`` checks the lists against what
the stages really import. Light on purpose: SCons imports this while it reads the SConstruct.
"""
from __future__ import annotations

import functools
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]
RUNTIME_DIR = PACKAGE_DIR / "runtime"          # C sources compiled with the generated code (test main, firmware)
TEMPLATE_DIR = PACKAGE_DIR / "templates"
REPORT_TEMPLATES = ("report.html.j2",)         # report_html's, not code generation's
FIRMWARE_TEMPLATES = ("firmware_report.html.j2",)   # the firmware report's
FRONTEND_TEMPLATES = ("frontend.c.j2", "frontend.h.j2")   # the audio front end's

_COMMON = ("__init__.py", "errors.py", "fileio.py", "cnames.py", "ir.py", "pipeline")
# Entries are module files ("stats.py") or packages ("importers": every .py file under importers/).
STAGE_MODULES: dict[str, tuple[str, ...]] = {
    "import": _COMMON + ("importers",),
    "stats": _COMMON + ("data.py", "reference", "stats"),
    "ranges": _COMMON + ("options.py", "stats", "ranges.py"),
    "quantize": _COMMON + ("options.py", "stats", "ranges.py", "fixedpoint.py", "quantize"),
    "codegen": _COMMON + ("options.py", "planner.py", "kernels.py", "overlap.py", "patches.py", "order.py",
                          "fixedpoint.py",
                          "codegen"),
    "check": _COMMON + ("data.py", "reference", "check.py"),
    # range=search: the ranges stage also runs the quantizer and a simulation of the quantized network
    "ranges_search": _COMMON + ("options.py", "stats", "ranges.py", "data.py", "reference", "fixedpoint.py",
                                "quantize", "simulate.py", "search.py"),
    "diagnostics": _COMMON + ("data.py", "reference", "check.py", "diagnostics.py"),
    "report_html": _COMMON + ("data.py", "reference", "check.py", "stats", "diagnostics.py", "report_html.py"),
    "firmware": _COMMON + ("data.py", "reference", "check.py", "targets.py", "firmware", "frontend"),
    # the audio front end (nnscons.frontend): features of a set, its C, the C's proof (which compiles CMSIS-DSP)
    "features": _COMMON + ("data.py", "frontend"),
    "frontend": _COMMON + ("data.py", "frontend", "codegen", "options.py", "planner.py", "kernels.py",
                           "overlap.py", "patches.py", "order.py", "fixedpoint.py"),
    "frontend_check": _COMMON + ("data.py", "frontend", "frontend_proof.py", "hostbuild.py"),
}


def module_files(entry: str) -> list[Path]:
    """The source files of a STAGE_MODULES entry: a module, or every .py of a package (whichever exists, so a
    module can become a package without touching the lists)."""
    path = PACKAGE_DIR / entry
    if path.suffix == ".py" and not path.is_file():
        path = path.with_suffix("")
    if path.suffix != ".py" and not path.is_dir():
        path = path.with_suffix(".py")
    return sorted(path.rglob("*.py")) if path.is_dir() else [path]


def stage_sources(stage: str) -> list[str]:
    """Absolute paths of the files a stage's output depends on (its modules and the templates it renders)."""
    return list(_stage_sources(stage))


@functools.lru_cache(maxsize=None)   # asked once per step while SCons reads the SConstruct
def _stage_sources(stage: str) -> tuple[str, ...]:
    files = [str(f) for m in STAGE_MODULES[stage] for f in module_files(m)]
    if stage == "codegen":
        files += sorted(str(p) for p in TEMPLATE_DIR.glob("*.j2")
                        if p.name not in REPORT_TEMPLATES + FIRMWARE_TEMPLATES + FRONTEND_TEMPLATES)
    if stage == "report_html":
        files += [str(TEMPLATE_DIR / t) for t in REPORT_TEMPLATES]
    if stage == "firmware":
        files += [str(TEMPLATE_DIR / t) for t in FIRMWARE_TEMPLATES]
    if stage == "frontend":
        files += [str(TEMPLATE_DIR / t) for t in FRONTEND_TEMPLATES]
    return tuple(files)
