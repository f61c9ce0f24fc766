"""``build/<target>/report.html``: the firmware report as a page (part of :mod:`nnscons.firmware`): per model the
instructions per inference and the sizes, then where the instructions go, layer by layer and by kernel type, so
that "which layer is slow" has an answer at a glance. Rendered from ``report.json`` alone (deterministic)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import jinja2

TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "templates"
TEMPLATE = "firmware_report.html.j2"   # listed in pipeline.modules.FIRMWARE_TEMPLATES


def render_html(report: Mapping[str, Any]) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["thousands"] = lambda n: "-" if n is None else f"{int(n):,}"
    env.filters["percent"] = lambda x: f"{100.0 * float(x):.1f}%"
    return env.get_template(TEMPLATE).render(report=report)
