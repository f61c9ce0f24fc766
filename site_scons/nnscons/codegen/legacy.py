"""Code generation for the legacy q7/q15 CMSIS-NN API (``api=legacy``): the seed guide's power-of-two kernels.

With ``quant=q7`` or ``q15`` and ``api=legacy`` the network runs on the q7/q15 functions of CMSIS_5 5.9.0 (CMSIS-NN
3.1.0, the last release that has them; nnscons' portable ``cmsis/`` implements them too). Every tensor is a
Q-format (real = q * 2^-n, no zero point) and every conv / FC layer gets its ``bias_shift = (fi + fw) - fb`` and
``out_shift = (fi + fw) - fo`` from ``qtable.json``. This backend is a sibling of :mod:`nnscons.codegen.s8`: the C
API, the header, the weights file, the arena plan, the absorbed float conversions and the trace hook are shared
(:mod:`nnscons.codegen.model`); only the layer calls (``templates/legacy_layers.j2``) and the ``_model.c`` preamble
(``templates/legacy_model.c.j2``) differ. This module runs the backend: :mod:`~nnscons.codegen.legacy_kernels`
picks each layer's function and sizes the scratch, and :data:`LEGACY_LAYERS` names, per kind, the function of
:mod:`~nnscons.codegen.legacy_layers` that writes its statements.

How each IR op is expressed (the first variant whose constraints the layer meets, in the order of
:func:`nnscons.codegen.legacy_layouts.pick_conv_function`, checked as Arm's DSP build checks them, so the same code runs
on Arm's library on a Cortex-M4 as on the portable one):

=====================  ==============================================================================================
``conv2d``             ``arm_convolve_1x1_HWC_q7_fast_nonsquare`` / ``_HWC_q7_RGB`` / ``_q7_fast`` /
                       ``_q7_fast_nonsquare`` / ``_q7_basic`` / ``_q7_basic_nonsquare``; q15: ``_HWC_q15_fast`` /
                       ``_q15_fast_nonsquare`` / ``_q15_basic``. Weights OHWI (the IR's layout). No dilation, no
                       groups, batch 1.
``depthwise_conv2d``   ``arm_depthwise_separable_conv_HWC_q7`` (``_nonsquare``), q7 and channel multiplier 1 only.
``fully_connected``    ``arm_fully_connected_q7_opt`` / ``arm_fully_connected_q15_opt``, the weights interleaved by
                       :func:`~nnscons.codegen.legacy_layouts.interleave_fc_weights`; one call per batch row.
fused ``relu``         ``arm_relu_q7`` / ``arm_relu_q15`` in place on the layer's output; ``relu6`` and
                       ``relu_n1_to_1`` clamp in a generated loop (bounds from the table).
``max_pool2d``         ``arm_maxpool_q7_HWC`` / ``arm_avepool_q7_HWC`` when square (input, kernel, stride, padding,
``avg_pool2d``         output) with padding <= stride; otherwise, and for q15 (the API has no q15 pooling), a
                       generated loop with the reference arithmetic: max, or sum / count with C's truncating
                       division, over the taps inside the input. The output keeps the input's format. Arm's DSP
                       build pools in place and destroys its input: an input still needed later is copied to the
                       scratch memory first. (Arm's DSP ``arm_avepool_q7_HWC`` truncates after each axis, so on a
                       DSP target with Arm's library its averages can differ by one from the reference.)
``softmax``            ``arm_softmax_q7`` (``_with_batch_q7``) / ``arm_softmax_q15``, output Q0.7 / Q0.15. These are
                       base-2 softmaxes of the raw integers: on an input with f fractional bits they compute
                       softmax(2^f ln2 * v), whatever beta. Option ``legacy_softmax``:
                       ``input`` (default), the seed's method: the kernel reads the logits in the format their layer
                       wrote them, so the largest logit wins at that layer's precision (a q15 FC output has ~10
                       fractional bits), and the probabilities are much sharper than float's (the runners-up
                       within 16 steps of the winner get the rest). ``calibrated``: the input is first brought to
                       f = round(log2(beta log2 e)) fractional bits (1 for beta = 1: effective beta 1.39) by a
                       shift (right: rounded half up; left: saturated) into the output buffer, and the kernel runs
                       in place there: the probabilities closest to float's the base-2 kernel can give
                       (:func:`~nnscons.codegen.legacy_layers.softmax_input_frac_bits`), at the price of ties
                       between logits that round to the same half unit (digits_cnn q15: 2 of 360 test images tie,
                       one of them then loses its class).
``logistic``, ``tanh`` ``arm_nn_activations_direct_q7`` / ``_q15`` (``ARM_SIGMOID`` / ``ARM_TANH``) in place on the
                       output, output Q0.7 / Q0.15. Their tables cover [-8, 8): an input with more than 3 integer
                       bits (``int_width`` in the table) is first shifted to Q3.x with saturation (the functions are
                       flat beyond 8 to within an LSB of Q0.7; for q15 sigmoid(8) = 1 - 3.4e-4).
``add``, ``sub``,      a generated loop (the legacy API has no element-wise kernels), in the table's formats: with
``mul``                ``align_shift`` and ``out_shift`` from ``qtable.json``, y = sat(((a << (t - align_a)) +/-
                       (b << (t - align_b)) + NN_ROUND(s)) >> s), t = max(align), s = out_shift + t (one rounding,
                       half up like the kernels); mul: y = sat((a * b + NN_ROUND(out_shift)) >> out_shift). Fused
                       activations clamp to the table's bounds. Same-shaped activation inputs only.
``relu``               copied to the output, then ``arm_relu_q7`` / ``_q15`` in place.
``relu6``, ``clip``    the clamp loop shared with the s8 backend.
``reshape``            no code: the output aliases the input.
``lstm``, ``gru``      the seed guide's lowering (:mod:`~nnscons.codegen.legacy_recurrent`): per time step and gate
                       two ``arm_fully_connected_q7/q15_opt`` (input and recurrent weights), their saturated sum in
                       Q3.x, ``arm_nn_activations_direct_q7/q15``, and generated element-wise loops for the cell
                       (int16) and hidden state; states carried between calls.
=====================  ==============================================================================================

Anything else (pad, mean, concat, leaky_relu, a quantize or dequantize between layers, q15 depthwise, a channel
multiplier, dilation) is an :class:`~nnscons.errors.NnsconsError` naming the layer and the reason.

Header: Arm's CMSIS_5 5.9.0 declares the legacy functions in ``arm_nnfunctions.h``; the portable library keeps them
in ``arm_nnfunctions_legacy.h``. The generated C includes ``arm_nnfunctions.h`` and then, only when that was the
portable one (recognized by its include guard ``NNSCONS_ARM_NNFUNCTIONS_H``) or when ``NNSCONS_LEGACY_HEADER`` is
defined, ``arm_nnfunctions_legacy.h``: no compiler extension (``__has_include``) is needed and both libraries
build unchanged.

Scratch memory follows the activation arena, as for the s8 backend: first the copies of pooling inputs that Arm's
in-place pooling would destroy (every build), then the ``bufferA`` / ``vec_buffer`` Arm's DSP code paths use
(sized by :func:`~nnscons.codegen.legacy_layouts.legacy_buffer_sizes`; reserved and passed only when the target has the
DSP extension, NULL otherwise: Arm's pure-C paths and the portable library read none).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .. import ir, kernels
from ..errors import NnsconsError
from ..options import LEGACY_SOFTMAX
from . import legacy_layers, legacy_recurrent
from .common import CTYPES, TEMPLATES, Choices, Generated
from .legacy_kernels import LegacyModel, choose_kernel, scratch_sizes
from .model import layer_header, open_model, place_io, plan_json, shared_context

BITS = {"q7": 8, "q15": 16}
DSP_CHECK = "(defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1)) || defined(ARM_MATH_DSP)"
LEGACY_TEMPLATES = {**TEMPLATES, "model": "legacy_model.c.j2"}

LegacyLayerBuilder = Callable[[LegacyModel, ir.Op, dict[str, Any], kernels.Kernel], dict[str, Any]]

# The registry: per kernel kind (chosen by nnscons.codegen.legacy_kernels), who builds the layer's statements
LEGACY_LAYERS: dict[str, LegacyLayerBuilder] = {
    "conv": legacy_layers.layer_conv,
    "depthwise": legacy_layers.layer_conv,
    "fc": legacy_layers.layer_fc,
    "pool": legacy_layers.layer_pool,
    "softmax": legacy_layers.layer_softmax,
    "activation": legacy_layers.layer_activation,
    "eltwise": legacy_layers.layer_eltwise,
    "relu": legacy_layers.layer_relu,
    "clamp": legacy_layers.layer_clamp,
    "alias": legacy_layers.layer_alias,
    "recurrent": legacy_recurrent.layer_recurrent,
}


def build(name: str, graph: ir.Graph, qtable: dict[str, Any], qparams: dict[str, np.ndarray], hash_text: str,
          choices: Choices = Choices()) -> Generated:
    """The templates, their context and the arena plan of a q7/q15 network on the legacy functions (of
    ``choices``, ``overlap`` and ``bands`` are unused: the legacy kernels' orders are not proven and their layers do
    not stream, so no layer's output overlaps its input and every tensor exists whole)."""
    legacy_softmax = choices.legacy_softmax
    if legacy_softmax not in LEGACY_SOFTMAX:
        raise NnsconsError(None, f"legacy_softmax={legacy_softmax!r} is not one of {', '.join(LEGACY_SOFTMAX)}")
    scheme = qtable.get("scheme")
    if scheme not in BITS:
        raise NnsconsError(None, f"api=legacy: the legacy q7/q15 CMSIS-NN kernels compute in power-of-two "
                                 f"Q-formats; use quant=q7 or quant=q15 (this table is {scheme})")
    bits = BITS[str(scheme)]
    dtype = "int8" if bits == 8 else "int16"
    lm = LegacyModel(open_model(name, graph, qtable, qparams, hash_text, by_memory=choices.by_memory), legacy_softmax,
                     str(scheme), bits, dtype, CTYPES[dtype])
    lm.model.kernels = {op.name: choose_kernel(lm, op) for op in lm.model.graph.ops}
    lm.model.scratch = scratch_sizes(lm)
    place_io(lm.model)
    layers = [build_layer(lm, op) for op in lm.model.graph.ops]
    return Generated(LEGACY_TEMPLATES, context(lm, layers), plan_json(lm.model))


def build_layer(lm: LegacyModel, op: ir.Op) -> dict[str, Any]:
    """One layer's template values: the shared header, why a generated loop, then its kind's statements."""
    kernel = lm.model.kernels[op.name]
    q = lm.model.layer_table(op)
    ctx = layer_header(lm.model, op)
    if kernel.geometry.note:
        ctx["comment"].append(f"  {kernel.geometry.note}")
    builder = LEGACY_LAYERS.get(kernel.kind)
    if builder is None:
        raise NnsconsError(None, f"codegen: layer {op.name}: the legacy backend has no code for kernel kind "
                                 f"{kernel.kind!r}")
    ctx.update(builder(lm, op, q, kernel))
    ctx.setdefault("steps", [])
    return ctx


def context(lm: LegacyModel, layers: list[dict[str, Any]]) -> dict[str, Any]:
    """The template context: the shared part, the statements' needs and the generated helper loops (none of the
    s8 backend's generated loops: no mean, sub, lookup or pad)."""
    steps = [s for layer in layers for s in layer["steps"]]
    arm_buffers = any(isinstance(a, tuple) and "NNSCONS_ARM_BUFFER" in a[1]
                      for s in steps if s["kind"] == "call" for a in s["arguments"])
    return {
        **shared_context(lm.model, layers, DSP_CHECK),
        "uses_ctx": False,
        "uses_status": any(s["kind"] == "call" and s["status"] for s in steps),
        "uses_copies": lm.copy_region > 0, "uses_arm_buffers": arm_buffers,
        "helpers": sorted(lm.helpers - {"clamp"}), "suffix": lm.suffix, "ctype": lm.ctype,
        "qmin": -(1 << (lm.bits - 1)), "qmax": (1 << (lm.bits - 1)) - 1,
        "clamp_types": [lm.ctype] if "clamp" in lm.helpers else [],
        "uses_mean": False, "uses_sub": False, "uses_lookup": False, "pad_types": [], "requantize_kinds": [],
    }
