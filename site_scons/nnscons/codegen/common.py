"""What both code generation backends share below the model: C literals, the layout of C text (calls and comments
within :data:`LINE_WIDTH` columns), the records the templates read, the jinja2 environment and the template list,
and the model-name check.

Part of :mod:`nnscons.codegen`; :mod:`nnscons.codegen.model` builds on it (the network every backend generates
code for), the backends (:mod:`~nnscons.codegen.s8`, :mod:`~nnscons.codegen.legacy`) on both.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import jinja2
import numpy as np

from .. import ir
from ..errors import NnsconsError

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"
TEMPLATES = {"header": "model.h.j2", "model": "model.c.j2", "weights": "weights.c.j2"}   # the legacy backend
                                                                                        # extends model.c.j2
# every template either backend reads (the folder also holds other stages' templates)
CODEGEN_TEMPLATES = ("layers.j2", "legacy_layers.j2", "legacy_model.c.j2", "model.c.j2", "model.h.j2", "streams.j2",
                     "weights.c.j2")
MAX_RANK = 6
UINT16_MAX = 0xFFFF            # CMSIS-NN's uint16_t size arguments (concatenation, the legacy functions)
VALUES_PER_LINE = 16           # the most values of a constant array on one line (fewer when they are wide)
LINE_WIDTH = 120               # no generated line is longer
HANGING_INDENT = 4             # continuation indent of a call whose arguments do not fit after its parenthesis
ARRAY_INDENT = 4               # the rows of a constant array

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
    env.filters["comment_block"] = comment_block
    env.filters["rule"] = rule
    env.globals["call"] = c_call
    env.globals["trailing"] = trailing_comment
    env.globals["split"] = split_line
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


FLOAT32_MAX = float(np.finfo(np.float32).max)


def c_float(value: float) -> str:
    """A float literal that reads back as the same float32 (9 significant digits)."""
    if not math.isfinite(value) or abs(value) > FLOAT32_MAX:    # checked before the cast, which would warn
        raise NnsconsError(None, f"codegen: cannot write {value} into C as a float (beyond float32)")
    value = float(np.float32(value))
    text = f"{value:.9g}"
    if not any(ch in text for ch in ".en"):
        text += ".0"
    return text + "f"


def c_string(text: str) -> str:
    """A C string literal of printable ASCII (anything else becomes ``?``)."""
    safe = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in str(text))
    safe = safe.replace("\\", "\\\\").replace('"', '\\"').replace("??", "?\\?")
    return f'"{safe}"'


def value_rows(values: np.ndarray, per_line: int = VALUES_PER_LINE, indent: int = ARRAY_INDENT) -> list[str]:
    """An array's values as C initializer rows, right-aligned, ``per_line`` to a row, or half as many (and so on)
    when the rows would not fit in :data:`LINE_WIDTH` columns after ``indent`` spaces."""
    literals = [c_int(v) for v in np.asarray(values).reshape(-1).tolist()]
    width = max((len(s) for s in literals), default=0)
    while per_line > 1 and indent + per_line * (width + 2) - 1 > LINE_WIDTH:
        per_line //= 2
    rows = []
    for start in range(0, len(literals), per_line):
        rows.append(", ".join(s.rjust(width) for s in literals[start:start + per_line]) + ",")
    return rows


def shape_text(shape: list[int]) -> str:
    """A shape for a C comment: ``1x28x28x1``, or ``scalar``."""
    return "x".join(str(int(s)) for s in shape) if shape else "scalar"


# ---- layout: calls and comments within LINE_WIDTH ---------------------------------------------------------------
BREAK = None                   # in a call's arguments: start a new line here when the call takes several lines
_PLAIN_ARGUMENT = re.compile(r"&?[A-Za-z_][A-Za-z0-9_]*")

Argument = Union[str, int, Sequence[Any], None]


def labelled(parameter: str, value: Any) -> Any:
    """A call argument labelled with its parameter's name, unless it names itself (an identifier, the address of
    one); ``NULL`` and every number get the label."""
    text = _argument_value(value)
    return text if _PLAIN_ARGUMENT.fullmatch(text) and text != "NULL" else (parameter, text)


def _argument_value(value: Any) -> str:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return c_int(int(value))
    return str(value)


def _argument_text(argument: Argument) -> str:
    if isinstance(argument, (list, tuple)):
        parameter, value = argument
        return f"/* {parameter} */ {_argument_value(value)}"
    return _argument_value(argument)


def c_call(head: str, arguments: Sequence[Argument], indent: int = 0, end: str = ";") -> str:
    """``head(arguments)`` + ``end`` indented by ``indent`` spaces, on one line if it fits in :data:`LINE_WIDTH`
    columns, else filled line by line with continuation lines aligned after the parenthesis (or, when even one
    argument would not fit there, indented :data:`HANGING_INDENT` spaces more than the call, the parenthesis
    ending the first line). An argument is a C expression or a ``(parameter, value)`` pair, written
    ``/* parameter */ value``; :data:`BREAK` starts a new line when the call takes several. Also lays out a
    function's declaration (``end=""`` for its definition)."""
    lead = " " * indent + head + "("
    texts: list[str] = []
    breaks: set[int] = set()
    for argument in arguments:
        if argument is BREAK:
            breaks.add(len(texts))
        else:
            texts.append(_argument_text(argument))
    flat = lead + ", ".join(texts) + ")" + end
    if len(flat) <= LINE_WIDTH or not texts:
        return flat
    items = [text + "," for text in texts[:-1]] + [texts[-1] + ")" + end]
    if len(lead) + max(len(item) for item in items) <= LINE_WIDTH:
        lines, current, column = [], lead, len(lead)
    else:
        lines, current, column = [lead], "", indent + HANGING_INDENT
    empty = True                                       # nothing after the line's indent (or parenthesis) yet
    for position, item in enumerate(items):
        if not empty and (position in breaks or len(current) + 1 + len(item) > LINE_WIDTH):
            lines.append(current)
            current, empty = "", True
        if empty:
            current = (current or " " * column) + item
            empty = False
        else:
            current += " " + item
    lines.append(current)
    return "\n".join(lines)


def comment_block(lines: Sequence[str], indent: int = 0) -> str:
    """A ``/* */`` comment of ``lines`` indented by ``indent`` spaces, each line wrapped at spaces to fit in
    :data:`LINE_WIDTH` columns (its continuation lines indented two spaces more than it)."""
    pad = " " * indent
    out: list[str] = []
    for position, line in enumerate(lines):
        body = line.lstrip(" ")
        margin = " " * (len(line) - len(body))
        prefix = pad + ("/* " if not out else " * ") + margin
        end = len(" */") if position == len(lines) - 1 else 0      # what closes the comment, on the last line
        while len(prefix) + len(body) + end > LINE_WIDTH and " " in body[:LINE_WIDTH - len(prefix) + 1]:
            cut = body.rindex(" ", 0, LINE_WIDTH - len(prefix) + 1)
            out.append((prefix + body[:cut]).rstrip())
            body = body[cut + 1:]
            prefix = pad + " * " + margin + "  "
        out.append((prefix + body).rstrip())
    return "\n".join(out) + " */"


def trailing_comment(code: str, comment: str) -> str:
    """``code /* comment */`` if that fits in :data:`LINE_WIDTH` columns, else the comment on the line above."""
    line = f"{code} /* {comment} */"
    if len(line) <= LINE_WIDTH:
        return line
    indent = len(code) - len(code.lstrip(" "))
    return comment_block([comment], indent) + "\n" + code


def split_line(head: str, tail: str, indent: int, joint: str = "") -> str:
    """``head tail`` if that fits in :data:`LINE_WIDTH` columns, else ``head`` + ``joint`` (`` \\`` in a macro)
    and ``tail`` on the next line, indented by ``indent`` spaces."""
    line = f"{head} {tail}"
    return line if len(line) <= LINE_WIDTH else f"{head}{joint}\n{' ' * indent}{tail}"


def rule(title: str, indent: int = 0) -> str:
    """A section heading comment, ``/* ---- title ---...--- */``, :data:`LINE_WIDTH` columns wide."""
    head = " " * indent + f"/* ---- {title} "
    return head + "-" * max(4, LINE_WIDTH - len(head) - 3) + " */"


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


@dataclass(frozen=True)
class Choices:
    """The codegen stage's options, as the backends take them."""

    legacy_softmax: str = "input"      # api=legacy: what arm_softmax_q7/q15 is given
    overlap: bool = True               # api=s8: outputs over consumed inputs (nnscons.overlap)
    bands: Optional[int] = None        # api=s8: row streams (nnscons.patches.parse's reading of option patches)
    by_memory: bool = True             # the ops in the order that lowers the arena (nnscons.order)


@dataclass
class Generated:
    """What a backend hands to :func:`nnscons.codegen.generate`: the templates to render by role (``header``,
    ``model``, ``weights``), the context they are rendered with, and the arena plan for ``plan.json``."""

    templates: dict[str, str]
    context: dict[str, Any]
    plan: dict[str, Any]
