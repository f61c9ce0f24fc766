"""The legacy q7/q15 backend's recurrent layers (part of :mod:`nnscons.codegen`): an LSTM or GRU lowered as the seed
guide lowers it (:mod:`nnscons.quantize.recurrent_legacy` has the arithmetic) onto ``arm_fully_connected_q7/q15_opt``,
``arm_nn_activations_direct_q7/q15`` and generated element-wise loops. The step itself is a generated helper
(``templates/legacy_recurrent.j2``: ``<name>_lstm_step_<q7|q15>`` / ``<name>_gru_step_<q7|q15>``); the layer declares
its constant step parameters, calls the step once per time step and carries its hidden state (and an LSTM's cell)
between calls as the s8 backend does (``<name>_reset()`` clears them).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import ir, kernels
from . import legacy_layouts
from .common import BREAK, labelled
from .legacy_kernels import LegacyModel, buffer_arguments

_ACTIVATIONS = {"cell": "ARM_TANH", "candidate": "ARM_TANH"}


def layer_recurrent(lm: LegacyModel, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
    model = lm.model
    x_shape = model.graph.tensors[op.inputs[0]].shape
    time_major = bool(q["time_major"])
    steps, batch = (x_shape[0], x_shape[1]) if time_major else (x_shape[1], x_shape[0])
    units, features = model.graph.tensors[op.inputs[1]].shape
    batch_offset = 1 if time_major else steps
    prefix = f"{model.name}_{op.name}"
    hidden = f"{prefix}_hidden"
    model.states.append({"name": hidden, "ctype": lm.ctype, "count": ((batch - 1) * batch_offset + 1) * units,
                         "start": 0, "what": f"{op.name} hidden state, {batch} row(s) of {units} every "
                                             f"{batch_offset} row(s), Q{lm.bits - 1 - q['hidden_frac']}."
                                             f"{q['hidden_frac']}"})
    cell = "NULL"
    if op.type == "lstm":
        cell = f"{prefix}_cell"
        model.states.append({"name": cell, "ctype": "int16_t", "count": batch * units, "start": 0,
                             "what": f"{op.name} cell state [{batch}][{units}], Q{15 - q['cell_frac']}."
                                     f"{q['cell_frac']}"})
    x, y = model.pointers[op.inputs[0]], model.pointers[op.outputs[0]]
    in_step, out_step = (batch * features, batch * units) if time_major else (features, units)
    (vec_buffer,) = buffer_arguments(lm, kernel.geometry)
    params = f"{prefix}_step"
    step = {"kind": "call", "function": kernel.function, "status": True, "loop": {"var": "t", "count": steps},
            "arguments": [labelled("x", f"{x} + t * {in_step}"),
                          labelled("h_in", f"t == 0 ? {hidden} : {y} + (t - 1) * {out_step}"), BREAK,
                          labelled("h_out", f"{y} + t * {out_step}"), labelled("cell", cell), BREAK,
                          f"&{params}", labelled("work", f"({lm.ctype} *)(void *)scratch"),
                          labelled("vec_buffer", vec_buffer)]}
    last = [{"kind": "memcpy", "destination": f"{hidden} + {b * batch_offset * units}",
             "source": f"{y} + {(steps - 1) * out_step + b * batch_offset * units}",
             "bytes": units * lm.bits // 8, "loop": None} for b in range(batch)]
    return {"steps": [{"kind": "code", "lines": _params(lm, op, q, params, batch, batch_offset), "loop": None},
                      step] + last}


def _params(lm: LegacyModel, op: ir.Op, q: dict[str, Any], params: str, batch: int, batch_offset: int) -> list[str]:
    """The step's constant parameters as C lines: the gates (weights interleaved for the _opt kernel) and shifts."""
    model = lm.model
    layout = ir.RECURRENT_LAYOUTS[op.type]
    units, features = model.graph.tensors[op.inputs[1]].shape
    function = f"arm_fully_connected_{lm.suffix}_opt"
    zeros = model.constant(f"{op.name}.zero_bias", f"{model.name}_{op.name}_zero_bias", lm.ctype,
                           np.zeros(units, lm.dtype), [f"{op.name}: no recurrent bias (zeros)"])
    lines = [f"static const {model.name}_recurrent_{lm.suffix}_t {params} = {{",
             f"    .input_size = {features},", f"    .hidden_size = {units},", f"    .batch_size = {batch},",
             f"    .batch_offset = {batch_offset},", "    .gates = {"]
    for k, gate in enumerate(layout.gates):
        shifts = q["gates"][gate]
        arrays = []
        for part, at in (("input", layout.input_weights), ("hidden", layout.hidden_weights)):
            w = op.inputs[at + k]
            arrays.append(model.constant(w, f"{model.name}_{op.name}_{gate}_{part}_weights", lm.ctype,
                                         legacy_layouts.interleave_fc_weights(function, model.qparam(op, w)),
                                         [f"{op.name} {gate} gate {part} weights: {model.tensor_text(w)}, "
                                          f"interleaved for {function}"]))
        bias = op.inputs[layout.input_biases + k]
        hidden_bias = layout.constant(op, layout.hidden_biases, k)
        bias_arrays = [model.constant(b, f"{model.name}_{op.name}_{gate}_{part}_bias", lm.ctype,
                                      model.qparam(op, b), [f"{op.name} {gate} gate {part} bias: "
                                                            f"{model.tensor_text(b)}"])
                       for part, b in (("input", bias), ("hidden", hidden_bias)) if b is not None]
        hidden_array = bias_arrays[1] if hidden_bias is not None else zeros
        fields = [("input_weights", arrays[0]), ("input_bias", bias_arrays[0]),
                  ("input_bias_shift", shifts["input"]["bias_shift"]), ("input_out_shift", shifts["input"]["out_shift"]),
                  ("hidden_weights", arrays[1]), ("hidden_bias", hidden_array),
                  ("hidden_bias_shift", shifts["hidden"]["bias_shift"]),
                  ("hidden_out_shift", shifts["hidden"]["out_shift"]), ("type", _ACTIVATIONS.get(gate, "ARM_SIGMOID"))]
        lines.append(f"        /* {gate} gate */")
        lines += [("        {" if i == 0 else "         ") + f".{field} = {value}" +
                  ("," if i < len(fields) - 1 else "}" + ("," if k < len(layout.gates) - 1 else ""))
                  for i, (field, value) in enumerate(fields)]
    lines.append("    },")
    if op.type == "lstm":
        lines += [f"    .cell_product_shift = {q['cell_product_shift']},",
                  f"    .tanh_input_shift = {q['tanh_input_shift']},", f"    .hidden_shift = {q['hidden_shift']},"]
    else:
        lines += [f"    .linear_before_reset = {int(q['linear_before_reset'])},",
                  f"    .hidden_to_top_shift = {q['hidden_to_top_shift']},"]
    lines.append("};")
    return lines
