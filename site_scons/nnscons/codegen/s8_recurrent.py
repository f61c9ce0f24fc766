"""The s8 backend's recurrent layers: the LSTM as ``arm_nn_lstm_step_s8`` per time step (``layer_lstm``) and the SVDF
as one ``arm_svdf_s8`` / ``arm_svdf_state_s16_s8`` call on a carried state (``layer_svdf``), registered in
:data:`nnscons.codegen.s8.S8_LAYERS`; their ``templates/layers.j2`` macros are ``lstm`` and ``svdf``.

The layer carries its state from one inference to the next as TFLite's variable tensors do: the hidden state
(int8, ``<layer>_hidden``, starting at its zero point) and the cell state (int16, ``<layer>_cell``, starting at 0)
live outside the arena, the first step reads them, the last step's hidden state is written back, and
``<name>_reset()`` restores the start. From the start the steps compute what ``arm_lstm_unidirectional_s8`` does
(its first step has no recurrent term; a hidden state at its zero point adds none).

The quantization table's ``lstm`` entry (:mod:`nnscons.quantize.recurrent`) gives the multipliers; here the
weights become constant arrays and each gate gets its two *effective biases*, computed at generation time as TFLite
Micro does with ``arm_vector_sum_s8``: the input part ``bias - zp_x * (row sum of the input weights)``, the
recurrent part ``-zp_h * (row sum of the recurrent weights)`` (int32 arithmetic, wrapping). CMSIS-NN lists the gates
forget, input, cell, output; the IR (TFLite) input, forget, cell, output.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import ir, kernels
from .model import Model
from .s8_layers import wrap_int32

CMSIS_GATES = ("forget", "input", "cell", "output")
ACTIVATIONS = {"cell": "ARM_TANH", "candidate": "ARM_TANH"}      # every other gate: ARM_SIGMOID


def layer_lstm(model: Model, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
    fields = _sequence(model, op, q, kernel, "starts at its zero point")
    batch, units = fields["batch"], fields["units"]
    model.states.append({"name": f"{model.name}_{op.name}_cell", "ctype": "int16_t", "count": batch * units,
                         "start": 0, "what": f"{op.name} cell state [{batch}][{units}], "
                                            f"2^{q['cell_scale_power']} steps"})
    gates = {gate["name"]: gate for gate in _gates(model, op, q, kernel)}
    return {
        **fields, "cell_state": f"{model.name}_{op.name}_cell", "input_offset": -int(q["input_zero_point"]),
        "forget_to_cell": q["forget_to_cell"], "input_to_cell": q["input_to_cell"], "output_rq": q["output"],
        "output_offset": int(q["hidden_zero_point"]), "cell_clip": int(q["cell_clip"]),
        "cell_scale_power": int(q["cell_scale_power"]), "gates": [gates[name] for name in CMSIS_GATES],
        "notes": [f"  gates forget, input, cell, output; state: hidden zp {q['hidden_zero_point']}, cell 2^"
                  f"{q['cell_scale_power']}, clip {q['cell_clip']}; carried between calls ({model.name}_reset "
                  f"clears it)"],
    }


def layer_gru(model: Model, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
    """A GRU on nnscons' own step (``nnscons_gru_step_s8/_s16``); its hidden state carried like the LSTM's."""
    fields = _sequence(model, op, q, kernel, "starts at its zero point (0.0)")
    return {
        **fields, "linear_before_reset": int(q["linear_before_reset"]),
        "hidden_offset": int(q["hidden_zero_point"]), "to_q15": q["to_q15"], "from_q15": q["from_q15"],
        "gates": _gates(model, op, q, kernel),
        "notes": [f"  gates update, reset, candidate{' (linear before reset)' if q['linear_before_reset'] else ''}; "
                  f"hidden state zp {q['hidden_zero_point']}, carried between calls ({model.name}_reset clears it)"],
    }


def _sequence(model: Model, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel, start: str) -> dict[str, Any]:
    """What the LSTM and GRU steps share: the sequence's geometry and the carried hidden state (registered)."""
    x_shape = model.graph.tensors[op.inputs[0]].shape
    time_major = bool(q["time_major"])
    steps, batch = (x_shape[0], x_shape[1]) if time_major else (x_shape[1], x_shape[0])
    units, features = model.graph.tensors[op.inputs[1]].shape
    hidden = f"{model.name}_{op.name}_hidden"
    ctype = "int16_t" if kernel.suffix == "s16" else "int8_t"
    batch_offset = 1 if time_major else steps
    # the steps read batch b's hidden state batch_offset rows after batch a's: the carried one is laid out so too
    model.states.append({"name": hidden, "ctype": ctype, "count": ((batch - 1) * batch_offset + 1) * units,
                         "start": int(q["hidden_zero_point"]),
                         "what": f"{op.name} hidden state, {batch} row(s) of {units} every {batch_offset} row(s), "
                                 f"{start}"})
    return {
        "hidden_state": hidden, "batch_offset": batch_offset, "ctype": ctype,
        "in_step": batch * features if time_major else features, "out_step": batch * units if time_major else units,
        "time_major": int(time_major), "batch": batch, "steps": steps, "features": features, "units": units,
        "buffer_bytes": kernel.geometry,
    }


def _gates(model: Model, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> list[dict[str, Any]]:
    """Each gate's arrays and requantization, in the IR's order. The effective biases are computed at generation
    time as TFLite Micro computes them with ``arm_vector_sum_s8``: the input part ``bias - zp_x * (row sums of the
    input weights)``, the recurrent part ``(its bias, a GRU's) - zp_h * (row sums of the recurrent weights)``; int32
    arithmetic, wrapping, for the s8 step, int64 for the s16 step (zero points 0 there)."""
    layout = ir.RECURRENT_LAYOUTS[op.type]
    wide = kernel.suffix == "s16"
    bias_ctype = "int64_t" if wide else "int32_t"
    effective = (lambda v: v) if wide else wrap_int32
    gates = []
    for k, name in enumerate(layout.gates):
        prefix = f"{model.name}_{op.name}_{name}"
        wx_name, wh_name, bias_name = (op.inputs[at + k] for at in (layout.input_weights, layout.hidden_weights,
                                                                     layout.input_biases))
        hidden_bias_name = layout.constant(op, layout.hidden_biases, k)
        wx, wh, bias = (model.qparam(op, t) for t in (wx_name, wh_name, bias_name))
        hidden_bias = np.zeros(wh.shape[0], np.int64) if hidden_bias_name is None else \
            model.qparam(op, hidden_bias_name).astype(np.int64)
        x_sums, h_sums = wx.astype(np.int64).sum(axis=1), wh.astype(np.int64).sum(axis=1)
        gates.append({
            "name": name, "input_rq": q["gates"][name]["input"], "hidden_rq": q["gates"][name]["hidden"],
            "activation": ACTIVATIONS.get(name, "ARM_SIGMOID"),
            "input_weights": model.constant(wx_name, f"{prefix}_input_weights", "int8_t", wx,
                                            [f"{op.name} {name} gate input weights: {model.tensor_text(wx_name)}"]),
            "hidden_weights": model.constant(wh_name, f"{prefix}_hidden_weights", "int8_t", wh,
                                             [f"{op.name} {name} gate recurrent weights: "
                                              f"{model.tensor_text(wh_name)}"]),
            "bias": model.constant(bias_name, f"{prefix}_bias", bias_ctype, bias.astype(np.int64),
                                   [f"{op.name} {name} gate bias: {model.tensor_text(bias_name)}"]),
            "input_effective_bias": model.constant(
                f"{op.name}.{name}.input_effective_bias", f"{prefix}_input_effective_bias", bias_ctype,
                effective(bias.astype(np.int64) - int(q["input_zero_point"]) * x_sums),
                [f"{op.name} {name} gate: bias - input zero point x row sums of the input weights"]),
            "hidden_effective_bias": model.constant(
                f"{op.name}.{name}.hidden_effective_bias", f"{prefix}_hidden_effective_bias", bias_ctype,
                effective(hidden_bias - int(q["hidden_zero_point"]) * h_sums),
                [f"{op.name} {name} gate: " + ("" if hidden_bias_name is None else "recurrent bias ") +
                 "- hidden zero point x row sums of the recurrent weights"]),
        })
    return gates


def layer_svdf(model: Model, op: ir.Op, q: dict[str, Any], kernel: kernels.Kernel) -> dict[str, Any]:
    """The SVDF: its weights, its state ([B][F][M], starting at the state's zero point, carried between calls)
    and the two scratch buffers."""
    graph = model.graph
    batch, features = graph.tensors[op.inputs[0]].shape
    filters, memory = graph.tensors[op.inputs[2]].shape
    rank = int(q["rank"])
    prefix = f"{model.name}_{op.name}"
    wide = q["state_dtype"] == "int16"
    ctype = "int16_t" if wide else "int8_t"
    state = f"{prefix}_state"
    model.states.append({"name": state, "ctype": ctype, "count": batch * filters * memory,
                         "start": int(q["state_zero_point"]),
                         "what": f"{op.name} state [{batch}][{filters}][{memory}], the newest value last"})
    arrays = {
        "feature_weights": model.constant(op.inputs[1], f"{prefix}_feature_weights", "int8_t",
                                          model.qparam(op, op.inputs[1]),
                                          [f"{op.name} feature weights: {model.tensor_text(op.inputs[1])}"]),
        "time_weights": model.constant(op.inputs[2], f"{prefix}_time_weights", ctype, model.qparam(op, op.inputs[2]),
                                       [f"{op.name} time weights: {model.tensor_text(op.inputs[2])}"]),
        "bias": model.constant(op.inputs[3], f"{prefix}_bias", "int32_t", model.qparam(op, op.inputs[3]),
                               [f"{op.name} bias: {model.tensor_text(op.inputs[3])}"]) if len(op.inputs) > 3
        else "NULL",
    }
    sums_bytes = kernel.geometry
    # the new state values' clamp: the state's own range (TFLite Micro's reference clamps so; it passes int16 bounds to
    # arm_svdf_s8, whose cast then wraps an int8 state where the reference saturates)
    clamp = (-32768, 32767) if wide else (-128, 127)
    return {**arrays, "state": state, "state_offset": int(q["state_zero_point"]), "batch": batch, "features": features, "filters": filters, "memory": memory,
            "units": filters // rank, "rank": rank, "wide": wide, "input_offset": q["input_offset"],
            "output_offset": q["output_offset"], "input_rescale": q["input_rescale"],
            "output_rescale": q["output_rescale"], "state_min": clamp[0], "state_max": clamp[1],
            "sums_bytes": sums_bytes,
            "notes": [f"  state {q['state_dtype']} zp {q['state_zero_point']}, carried between calls "
                      f"({model.name}_reset clears it)"]}
