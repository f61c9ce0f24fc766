#!/usr/bin/env python3
"""The library's shape: every module's size and import layer; fails on a cycle, an upward import or a module over
the size limit.

    ./dev python tools/check_layers.py          # the table, largest module first; exit 1 on a problem

Layers follow the graph (DESIGN.md section 1): a module may import its own layer or lower ones, never a higher
one, so data and code flow forward. Imports inside functions count too (they are arrows all the same).
``tests/test_architecture.py`` runs the same checks.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

LIBRARY = Path(__file__).resolve().parents[1] / "site_scons" / "nnscons"
MAX_LINES = 400
# Low to high. A module's layer is that of the longest entry naming it or a package above it.
LAYERS: list[tuple[str, ...]] = [
    ("nnscons", "nnscons.errors", "nnscons.fileio", "nnscons.cnames", "nnscons.options", "nnscons.ir",
     "nnscons.targets", "nnscons.kernel_build", "nnscons.cmsis_dsp", "nnscons.fixedpoint", "nnscons.pipeline.modules",
     "nnscons.pipeline.steps"),
    ("nnscons.importers",),
    ("nnscons.reference",),
    ("nnscons.data",),
    ("nnscons.stats",),
    ("nnscons.ranges",),
    ("nnscons.quantize",),
    ("nnscons.simulate", "nnscons.search"),
    ("nnscons.planner", "nnscons.kernels", "nnscons.overlap", "nnscons.patches", "nnscons.order"),
    ("nnscons.codegen", "nnscons.frontend"),
    ("nnscons.check",),
    ("nnscons.diagnostics",),
    ("nnscons.report_html", "nnscons.overview"),
    ("nnscons.firmware", "nnscons.hostbuild", "nnscons.project", "nnscons.frontend_proof"),
    ("nnscons.pipeline",),
    ("nnscons.experiments",),
    ("nnscons.cli", "nnscons.cli_args", "nnscons.validate", "nnscons.__main__", "nnscons.scons_tool", "nnscons.play",
     "nnscons.init_project", "nnscons.cli_project"),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(LIBRARY.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    best, best_len = -1, -1
    for level, names in enumerate(LAYERS):
        for name in names:
            covers = module == name or (name != "nnscons" and module.startswith(name + "."))
            if covers and len(name) > best_len:
                best, best_len = level, len(name)
    return best


def imports_of(path: Path, module: str, known: set[str]) -> set[str]:
    """The library modules ``path`` imports (resolved to modules that exist)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in known else base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in known and m != module}


def analyse() -> tuple[list[tuple[str, int, int]], list[str]]:
    """(module, lines, layer) largest first, and the problems found."""
    paths = {module_name(p): p for p in sorted(LIBRARY.rglob("*.py"))}
    known = set(paths)
    edges = {m: imports_of(p, m, known) for m, p in paths.items()}
    problems = []
    rows = []
    for module, path in paths.items():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        layer = layer_of(module)
        rows.append((module, lines, layer))
        if layer < 0:
            problems.append(f"{module}: in no layer (add it to tools/check_layers.py)")
        if lines > MAX_LINES:
            problems.append(f"{module}: {lines} lines (limit {MAX_LINES})")
        for target in sorted(edges[module]):
            if layer_of(target) > layer and not target.startswith(module + "."):
                problems.append(f"{module} (layer {layer}) imports {target} (layer {layer_of(target)})")
    problems += [f"import cycle: {' -> '.join(c)}" for c in cycles(edges)]
    rows.sort(key=lambda r: (-r[1], r[0]))
    return rows, problems


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Import cycles between modules (a package and its own submodules excepted: __init__ re-exports)."""
    found, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt.startswith(node + ".") or node.startswith(nxt + "."):
                continue
            if state.get(nxt) == 1:
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def main() -> int:
    rows, problems = analyse()
    width = max(len(r[0]) for r in rows)
    print(f"{'module':<{width}}  lines  layer")
    for module, lines, layer in rows:
        print(f"{module:<{width}}  {lines:>5}  {layer:>5}")
    for problem in problems:
        print("PROBLEM:", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
