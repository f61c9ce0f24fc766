"""What both code generation backends share below the model: C literals, the records the templates read, the
jinja2 environment and the template list, and the model-name check.

Part of :mod:`nnscons.codegen`; :mod:`nnscons.codegen.model` builds on it (the network every backend generates
code for), the backends (:mod:`~nnscons.codegen.s8`, :mod:`~nnscons.codegen.legacy`) on both.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import jinja2
import numpy as np

from .. import ir
from ..errors import NnsconsError

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"
TEMPLATES = {"header": "model.h.j2", "model": "model.c.j2", "weights": "weights.c.j2"}   # the legacy backend
                                                                                        # extends model.c.j2
# every template either backend reads (the folder also holds other stages' templates)
CODEGEN_TEMPLATES = ("layers.j2", "legacy_layers.j2", "legacy_model.c.j2", "model.c.j2", "model.h.j2", "weights.c.j2")
MAX_RANK = 6
UINT16_MAX = 0xFFFF            # CMSIS-NN's uint16_t size arguments (concatenation, the legacy functions)
VALUES_PER_LINE = 16

CTYPES = {"int8": "int8_t", "int16": "int16_t", "int32": "int32_t", "int64": "int64_t"}


def codegen_sources() -> list[str]:
    """The template files this stage reads (generated sources depend on them)."""
    return [str(TEMPLATE_DIR / name) for name in CODEGEN_TEMPLATES]


def environment() -> jinja2.Environment:
    """The templates' jinja2 environment: strict (an unknown name is an error), no escaping (C, not HTML)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
    env.filters["c_int"] = c_int
    env.filters["macro_int"] = macro_int
    env.filters["c_float"] = c_float
    env.filters["comment"] = ir.c_comment
    return env


def check_name(name: str) -> None:
    """The model name prefixes every C symbol: it must be a C identifier."""
    if not isinstance(name, str) or ir.c_identifier(name) != name or len(name) > ir.MAX_IDENTIFIER:
        raise NnsconsError(None, f"model name {ir.c_comment(str(name))!r} is not a C identifier (letters, digits "
                                 f"and _, not starting with a digit or __, at most {ir.MAX_IDENTIFIER} characters)")


# ---- C literals ------------------------------------------------------------------------------------------------------
def c_int(value: int) -> str:
    """A C integer literal; the most negative int32/int64 values are written as expressions (``-2147483648`` would
    be the negation of a wider constant)."""
    value = int(value)
    if value == -(1 << 31):
        return "(-2147483647 - 1)"
    if value == -(1 << 63):
        return "(-9223372036854775807LL - 1)"
    if not -(1 << 63) <= value < (1 << 63):
        raise ValueError(f"{value} does not fit int64")
    return str(value)


def macro_int(value: int) -> str:
    """An integer literal safe as a macro body (negative values parenthesized)."""
    text = c_int(value)
    return f"({text})" if text.startswith("-") else text


def c_float(value: float) -> str:
    """A float literal that reads back as the same float32 (9 significant digits)."""
    value = float(np.float32(value))
    if not math.isfinite(value):
        raise NnsconsError(None, f"codegen: cannot write the non-finite number {value} into C")
    text = f"{value:.9g}"
    if not any(ch in text for ch in ".en"):
        text += ".0"
    return text + "f"


def c_string(text: str) -> str:
    """A C string literal of printable ASCII (anything else becomes ``?``)."""
    safe = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in str(text))
    safe = safe.replace("\\", "\\\\").replace('"', '\\"').replace("??", "?\\?")
    return f'"{safe}"'


def value_rows(values: np.ndarray, per_line: int = VALUES_PER_LINE) -> list[str]:
    """An array's values as C initializer rows, right-aligned, ``per_line`` to a row."""
    literals = [c_int(v) for v in np.asarray(values).reshape(-1).tolist()]
    width = max((len(s) for s in literals), default=0)
    rows = []
    for start in range(0, len(literals), per_line):
        rows.append(", ".join(s.rjust(width) for s in literals[start:start + per_line]) + ",")
    return rows


def shape_text(shape: list[int]) -> str:
    """A shape for a C comment: ``1x28x28x1``, or ``scalar``."""
    return "x".join(str(int(s)) for s in shape) if shape else "scalar"


# ---- records the templates read ------------------------------------------------------------------------------------
@dataclass
class IO:
    """One network input or output as the C API presents it."""

    tensor: str
    index: str             # "" for a single input/output, else "0", "1", ...
    ctype: str
    dtype: str
    shape: list[int]
    size: int
    scale: float
    zero_point: int
    frac_bits: Optional[int]
    qmin: int
    qmax: int
    pointer: str = ""      # the arena pointer holding it


@dataclass
class Array:
    """One constant array of ``<name>_weights.c``."""

    cname: str
    ctype: str
    values: np.ndarray
    comment: list[str]

    def context(self) -> dict[str, Any]:
        per_line = VALUES_PER_LINE if self.ctype in ("int8_t", "int16_t") else VALUES_PER_LINE // 2
        return {"cname": self.cname, "ctype": self.ctype, "length": int(self.values.size), "comment": self.comment,
                "rows": value_rows(self.values, per_line)}


@dataclass
class Generated:
    """What a backend hands to :func:`nnscons.codegen.generate`: the templates to render by role (``header``,
    ``model``, ``weights``), the context they are rendered with, and the arena plan for ``plan.json``."""

    templates: dict[str, str]
    context: dict[str, Any]
    plan: dict[str, Any]
