"""Code generation (stage 6): C sources that run the quantized network with CMSIS-NN.

From the graph, the quantization table and the quantized constants this stage writes four files:

``<name>.h``          the public C API (DESIGN.md section 3): I/O types, sizes, shapes and quantization as macros,
                      the arena size for the target's feature set, ``<name>_invoke``, ``<name>_invoke_with_arena``,
                      the float conversion helpers, and the generic ``<name>_info`` descriptor test runners use.
``<name>_model.c``    one CMSIS-NN call per layer, parameters from ``qtable.json``, buffers as named pointers into
                      one statically planned arena (:mod:`nnscons.planner`), kernel scratch after it.
``<name>_weights.c``  every constant (weights, biases, per-channel multipliers and shifts, lookup tables), ``const``
                      and 16-byte aligned, in the layouts the kernels read (the IR's layouts already are).
``plan.json``         the arena plan, plus the scratch size per feature set.

The C text lives in jinja2 templates (``templates/``); this package turns the tables into plain values for them
(:mod:`nnscons.kernels` decides which function each layer calls and how much scratch it needs). Text that came
from the model (labels) only reaches the C through :func:`nnscons.ir.c_comment`; names are C identifiers already.
Output is deterministic: the same inputs give the same bytes.

Two ops need no kernel: a leading ``quantize`` from a float graph input and a trailing ``dequantize`` to a float
graph output are *absorbed*: the network's input and output are their integer tensors, and the generated
``<name>_quantize_input`` / ``<name>_dequantize_output`` helpers do the conversion with their parameters.

Two backends share everything but the layer code (option ``api``, :data:`BACKENDS`): ``s8``
(:mod:`~nnscons.codegen.s8` and ``layers.j2``: the current CMSIS-NN API, every scheme) and ``legacy``
(:mod:`~nnscons.codegen.legacy`, ``legacy_model.c.j2`` and ``legacy_layers.j2``: the q7/q15 functions of CMSIS_5
5.9.0 for the Q-format schemes). ``legacy_model.c.j2`` extends ``model.c.j2``, overriding its blocks (includes,
helpers, locals, scratch set-up, one layer's code). What they share is in :mod:`~nnscons.codegen.common` (C
literals, records, templates) and :mod:`~nnscons.codegen.model` (lowering, arena, constants, network I/O, the
trace hook).

Trace hook (both backends): after every layer ``<name>_invoke_with_arena`` has one
``NNSCONS_TRACE_LAYER(layer_index, layer_name, output, count);``, a macro ``<name>_model.c`` defines once: compiled
with ``-DNNSCONS_TRACE`` it calls ``nnscons_trace(model, layer_index, layer_name, output, element_size, count)``
(declared in ``<name>.h``, implemented by the program: the host test runner writes the outputs to files for
diagnostics), else it is ``((void)0)`` and nothing is compiled in. ``layer_index`` is the op's position in
``graph.json``, ``layer_name`` its IR name, ``output`` its output buffer (for a reshape, the buffer it aliases; the
size of a value is that of the pointer's type), ``count`` its elements at batch 1.

The C reads as written by hand: no line is longer than :data:`~nnscons.codegen.common.LINE_WIDTH` columns (calls
and declarations wrap with continuation lines aligned after the parenthesis, :func:`~nnscons.codegen.common.c_call`),
structs are set with designated initializers, every number passed to a function carries its parameter's name
(``/* out_mult */ 1359287040``, the names of the CMSIS-NN API), and no two branches of a header ``#if`` are alike.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from .. import fileio, ir
from ..errors import NnsconsError
from . import legacy, s8
from .common import (CODEGEN_TEMPLATES, CTYPES, MAX_RANK, TEMPLATE_DIR, TEMPLATES, Choices, Generated, c_float, c_int,
                     c_string, check_name, codegen_sources, environment, macro_int, value_rows)
from .legacy_layers import softmax_input_frac_bits
from .softmax_luts import softmax_s16_luts

__all__ = ["APIS", "BACKENDS", "CODEGEN_TEMPLATES", "CTYPES", "MAX_RANK", "TEMPLATES", "TEMPLATE_DIR", "c_float",
           "c_int", "c_string", "codegen_sources", "generate", "macro_int", "softmax_input_frac_bits",
           "softmax_s16_luts", "value_rows"]

Backend = Callable[[str, ir.Graph, dict[str, Any], dict[str, np.ndarray], str, Choices], Generated]

# option api -> the backend that generates the code
BACKENDS: dict[str, Backend] = {
    "s8": s8.build,
    "legacy": legacy.build,
}
APIS = tuple(BACKENDS)


def generate(name: str, graph: ir.Graph, qtable: dict[str, Any], qparams: dict[str, np.ndarray], api: str,
             hash_text: str, legacy_softmax: str = "input", overlap: bool = True,
             bands: Optional[int] = None, by_memory: bool = True) -> dict[str, str]:
    """The generated files, by file name: ``<name>.h``, ``<name>_model.c``, ``<name>_weights.c``, ``plan.json``.
    ``api`` picks the backend: ``s8`` (which also takes ``overlap``: plan outputs over consumed inputs, see
    :mod:`nnscons.overlap`, and ``bands``: option patches read by :func:`nnscons.patches.parse`, see
    :mod:`nnscons.patches`) or ``legacy`` (which also takes the ``legacy_softmax`` option); both take
    ``by_memory`` (option order: the ops in the order that lowers the arena, :mod:`nnscons.order`)."""
    check_name(name)
    backend = BACKENDS.get(api)
    if backend is None:
        raise NnsconsError(None, f"api={api!r} is not one of {', '.join(APIS)}")
    generated = backend(name, graph, qtable, qparams, hash_text,
                        Choices(legacy_softmax, overlap, bands, by_memory))
    env = environment()
    return {
        f"{name}.h": env.get_template(generated.templates["header"]).render(generated.context),
        f"{name}_model.c": env.get_template(generated.templates["model"]).render(generated.context),
        f"{name}_weights.c": env.get_template(generated.templates["weights"]).render(generated.context),
        "plan.json": fileio.canonical_json(generated.plan),
    }
