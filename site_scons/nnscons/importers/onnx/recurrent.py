"""ONNX ``LSTM`` -> IR ``lstm`` and ``GRU`` -> IR ``gru`` (float, forward, sequence-first).

ONNX packs the gates: LSTM weights ``W [1, 4H, I]``, ``R [1, 4H, H]`` in the order i, o, f, c and ``B [1, 8H]`` =
input biases then recurrent biases (summed here: the IR LSTM has one bias per gate, TFLite's gate order i, f, c,
o); GRU ``W [1, 3H, I]``, ``R [1, 3H, H]`` in the order z, r, h and ``B [1, 6H]`` kept as both halves (with
``linear_before_reset`` the recurrent h bias sits inside the reset gate's product). ``X`` is ``[T, B, I]``
(``layout`` 0), the op's ``Y`` ``[T, 1, B, H]``: the IR op makes ``[T, B, H]`` (time-major) and a reshape adds the
direction axis. When ``X`` is a Transpose of a batch-first ``[B, T, I]`` tensor (as PyTorch exports
``batch_first=True``), the IR op runs batch-major on that tensor instead, its ``[B, T, H]`` made ``[B, T, 1, H]``
and held as ``Y`` transposed: the graph keeps its batch on axis 0. Only what the IR ops compute is accepted, each refusal naming the attribute or input: direction
forward, default activations, no ``clip`` (ONNX clips the pre-activations, TFLite the cell), no peephole, no CIFG
(``input_forget``), no ``sequence_lens``, zero initial states, and ``Y_h`` / ``Y_c`` unused.
"""
from __future__ import annotations

import numpy as np

from ... import ir
from .constants import Const
from .context import (Context, const_array_of, const_tensor, emit_from, fail, in_layout, reject_flattened, set_value,
                      shape_of, value_of)
from .decode import Node
from .layout import Value, identity

LSTM_GATES = {"i": 0, "o": 1, "f": 2, "c": 3}         # ONNX block of each gate
LSTM_IR_ORDER = ("i", "f", "c", "o")
BATCH_FIRST = (1, 0, 2)                               # the IR tensor is X.transpose(BATCH_FIRST) = [B, T, I]
Y_BATCH_FIRST = (2, 0, 1, 3)                          # [T, 1, B, H].transpose -> [B, T, 1, H]
GRU_GATES = ("z", "r", "h")
DEFAULT_ACTIVATIONS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"]}


def convert_lstm(ctx: Context, pos: int, node: Node) -> None:
    x, time_major, units = _common_checks(ctx, node, extra_inputs=(7, "P (peephole weights)"))
    if int(node.attrs.get("input_forget", 0)):
        raise fail(ctx, node, "input_forget (a coupled input and forget gate) is not supported")
    w = const_array_of(ctx, node, node.input(1), "W")[0]
    r = const_array_of(ctx, node, node.input(2), "R")[0]
    b = const_array_of(ctx, node, node.input(3), "B")[0] if node.input(3) else np.zeros(8 * units, np.float32)
    blocks = {g: slice(k * units, (k + 1) * units) for g, k in LSTM_GATES.items()}
    weights = [w[blocks[g]] for g in LSTM_IR_ORDER] + [r[blocks[g]] for g in LSTM_IR_ORDER]
    biases = [b[blocks[g]] + b[4 * units:][blocks[g]] for g in LSTM_IR_ORDER]
    names = [f"{node.input(1)}_{g}" for g in LSTM_IR_ORDER] + [f"{node.input(2)}_{g}" for g in LSTM_IR_ORDER] + \
        [f"{node.input(3) or node.outputs[0]}_b{g}" for g in LSTM_IR_ORDER]
    _emit(ctx, node, "lstm", x, units, weights + biases, names,
          {"time_major": time_major, "cell_clip": 0.0, "hidden_state": None, "cell_state": None})


def convert_gru(ctx: Context, pos: int, node: Node) -> None:
    x, time_major, units = _common_checks(ctx, node)
    w = const_array_of(ctx, node, node.input(1), "W")[0]
    r = const_array_of(ctx, node, node.input(2), "R")[0]
    b = const_array_of(ctx, node, node.input(3), "B")[0] if node.input(3) else np.zeros(6 * units, np.float32)
    part = [slice(k * units, (k + 1) * units) for k in range(3)]
    arrays = [w[s] for s in part] + [r[s] for s in part] + [b[s] for s in part] + [b[3 * units:][s] for s in part]
    names = [f"{node.input(1)}_{g}" for g in GRU_GATES] + [f"{node.input(2)}_{g}" for g in GRU_GATES] + \
        [f"{node.input(3) or node.outputs[0]}_w{g}" for g in GRU_GATES] + \
        [f"{node.input(3) or node.outputs[0]}_r{g}" for g in GRU_GATES]
    _emit(ctx, node, "gru", x, units, arrays, names,
          {"time_major": time_major, "linear_before_reset": bool(int(node.attrs.get("linear_before_reset", 0)))})


def _common_checks(ctx: Context, node: Node,
                   extra_inputs: tuple[int, str] | None = None) -> tuple[str, bool, int]:
    """The attributes and inputs both ops share; the sequence's IR tensor, whether it is time-major, and the
    hidden size."""
    if node.attrs.get("direction", "forward") != "forward":
        raise fail(ctx, node, f"direction {ir.c_comment(str(node.attrs['direction']))} is not supported (forward "
                              f"only)")
    if int(node.attrs.get("layout", 0)):
        raise fail(ctx, node, "layout 1 (batch first) is not supported")
    if "clip" in node.attrs:
        raise fail(ctx, node, "clip (clamping the gates' pre-activations) is not supported")
    activations = list(node.attrs.get("activations", []))
    if activations and activations != DEFAULT_ACTIVATIONS[node.op_type]:
        raise fail(ctx, node, f"activations {activations} are not supported (only the defaults)")
    optional = [(4, "sequence_lens"), (5, "initial_h"), (6, "initial_c")] + ([extra_inputs] if extra_inputs else [])
    for position, what in optional:
        if node.input(position):
            if what.startswith("initial") and not np.any(const_array_of(ctx, node, node.input(position), what)):
                continue
            raise fail(ctx, node, f"input {what} is not supported")
    for k, output in enumerate(node.outputs[1:], start=1):
        if output and (ctx.consumers.get(output) or output in ctx.graph_outputs):
            raise fail(ctx, node, f"output {('Y_h', 'Y_c')[k - 1]} is used: only Y (every step's state) is supported")
    x = node.inputs[0]
    _, _, features = shape_of(ctx, node, x)
    units = int(node.attrs.get("hidden_size", 0)) or const_array_of(ctx, node, node.input(2), "R").shape[-1]
    gates = 4 if node.op_type == "LSTM" else 3
    w_shape = list(const_array_of(ctx, node, node.input(1), "W").shape)
    r_shape = list(const_array_of(ctx, node, node.input(2), "R").shape)
    if w_shape != [1, gates * units, features] or r_shape != [1, gates * units, units]:
        raise fail(ctx, node, f"W {w_shape} and R {r_shape} do not hold one direction of {units} units of "
                              f"{features} inputs")
    if node.input(3) and list(const_array_of(ctx, node, node.input(3), "B").shape) != [1, 2 * gates * units]:
        raise fail(ctx, node, f"B does not hold {2 * gates * units} biases")
    held = value_of(ctx, node, x)
    reject_flattened(ctx, node, x, held)
    if held.perm == BATCH_FIRST:
        return held.ir, False, units
    return in_layout(ctx, node, x, identity(3)), True, units


def _emit(ctx: Context, node: Node, ir_type: str, x_ir: str, units: int, arrays: list[np.ndarray],
          names: list[str], attrs: dict) -> None:
    consts = [const_tensor(ctx, name, Const(np.ascontiguousarray(a, dtype=np.float32)))
              for name, a in zip(names, arrays)]
    y = node.outputs[0]
    if attrs["time_major"]:
        steps, batch, _ = ctx.tensors[x_ir].shape
        states = emit_from(ctx, ir_type, [x_ir] + consts, f"{y}_steps", [steps, batch, units], attrs, [node])
        y_shape, perm = [steps, 1, batch, units], identity(4)
    else:
        batch, steps, _ = ctx.tensors[x_ir].shape
        states = emit_from(ctx, ir_type, [x_ir] + consts, f"{y}_steps", [batch, steps, units], attrs, [node])
        y_shape, perm = [batch, steps, 1, units], Y_BATCH_FIRST
    out = emit_from(ctx, "reshape", [states], y, y_shape, {"shape": y_shape}, [node])
    set_value(ctx, y, Value(out, perm))
