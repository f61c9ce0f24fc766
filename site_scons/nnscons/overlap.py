"""Overlapping placement (part of the codegen stage, beside the planner): which layers may write their output over
their input, and how far below it the output must start.

A layer whose input dies at that layer may put its output ``lag`` bytes below the input's start (the output's
bytes ``[in - lag, in - lag + out_size)``), over the input bytes the kernel has already consumed, when the order of
its reads and writes makes that safe. The rules rely on how nnscons' bundled kernels (cmsis/) walk their tensors,
in every code path (plain C, DSP, Helium), and are tested with each kernel on the host and on the cores with the
output so placed and the rest of the arena poisoned (tests/test_overlap_kernels.py). An external CMSIS-NN gives no
such guarantee: option ``overlap=off`` (automatic with ``cmsis_nn=``) plans without them.

* ``in place`` (arm_elementwise_add_s8 / arm_elementwise_mul_s8 of equal shapes, and the generated clamp and lookup
  loops): every path walks the tensors forward and loads element i of both inputs before it stores output i: the
  plain loops one element at a time, the Helium add four at a time (each vector stored before the next is loaded),
  the Helium mul eight per vector. Lag 0.
* ``pixel lag`` (1x1 convolution through arm_convolve_wrapper_s8: stride 1, no padding, one group, one batch,
  C_OUT <= C_IN, C_OUT <= 64, and C_IN % 4 == 0 or C_OUT <= 2): the plain C loop goes pixel by pixel and re-reads
  the whole input pixel for every pair of output channels after storing the previous pairs (it needs C_OUT - 2, or
  C_OUT - 1 when odd). The DSP builds give the layer 4 * C_IN bytes of scratch, which holds
  arm_nn_conv_im2col_dsp_s8's two int16 columns only when C_IN % 4 == 0; that kernel copies two pixels into the
  columns before storing any of their outputs (needs 0). With less scratch, arm_nn_conv_1x1_dsp_s8 loops over
  pairs of output channels outside the pixels and re-reads every pixel for every pair: no overlap unless
  C_OUT <= 2. Helium (arm_nn_conv_1x1_mve_s8) loops over blocks of 64 output channels outside (hence C_OUT <= 64)
  and three pixels at a time inside, storing four output channels before the next four re-read the same three
  pixels (needs 3 * C_OUT less the last group's channels). An output pixel is no wider than an input one, so the
  first pixels bind: lag align16(3 * C_OUT) covers every path.
* ``conv row lag`` (convolution through arm_convolve_wrapper_s8 that reaches arm_convolve_s8: kernel neither 1x1
  nor 1xN on a one-row input; stride 1, dilation 1, one group, one batch, output as large as the input, C_OUT <=
  C_IN, C_OUT <= 64): with L = pad_top * W + pad_left, input pixel q is last read by output pixel q + L. Every path
  copies the receptive fields of a group of output pixels into the scratch before it stores any of their outputs
  and reads no input again: plain C one pixel (an int8 column), DSP two (arm_nn_conv_im2col_dsp_s8's int16
  columns), Helium three (arm_nn_conv_im2col_mve_s8, inside a loop over blocks of 64 output channels: one block,
  hence C_OUT <= 64). When m pixels are done, their m * C_OUT output bytes must stay below the first input pixel
  still to be read, max(0, m - L): m * C_OUT up to m = L, then L * C_IN - m * (C_IN - C_OUT), which C_OUT <= C_IN
  keeps from growing; the plain loop's pixel L binds: L * C_OUT. Helium given a scratch smaller than three columns
  reads the fields in place once per output channel and needs (L + 1) * C_OUT - 1: lag align16((L + 1) * C_OUT).
* ``row lag`` (depthwise convolution through arm_depthwise_conv_wrapper_s8: multiplier 1, stride 1, dilation 1, one
  batch, output as large as the input, and C % 4 == 0 or C < 4): with L = pad_top * W + pad_left, input pixel q is
  last read by output pixel q + L, and every path stores an output pixel only after reading its window (plain C one
  pixel of four channels at a time, DSP one pixel of a block of four channels, Helium seven positions of a block of
  up to sixteen channels), so output pixel p may land on input pixel p - L. The DSP and Helium paths loop over
  blocks of channels outside the pixels: a block's outputs must land on the same channels of the input, which only
  later pixels of the same block read, so the lag is a multiple of C; on the DSP builds the last block of a layer
  with C % 4 != 0 starts at C - 4 and re-reads channels the block before has overwritten, hence the condition (C < 4
  takes the plain loop). The DSP 3x3 kernel's border windows read a clamped row or column with zero weights, so a
  consumed value there adds nothing. Lag: the least multiple of lcm(C, 16) that is >= L * C.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

from . import ir
from .kernels import ConvGeometry, Kernel, conv_geometry

ALIGNMENT = 16
ELEMENTWISE_OPS = ("add", "mul", "relu", "relu6", "clip", "logistic", "tanh", "leaky_relu")
PIXELS_BEFORE_STORE = 3      # the output pixels whose inputs a 1x1 path may still read after storing outputs
MVE_CHANNEL_BLOCK = 64       # the Helium 1x1 convolution's block of output channels
DSP_CHANNEL_BLOCK = 4        # the DSP paths' blocks of channels (the scratch's int16 columns, the depthwise blocks)


@dataclass(frozen=True)
class Overlap:
    """The output of op ``op_index`` may start ``lag`` bytes below its input ``source``'s start."""

    op_index: int
    source: str          # the input tensor written over
    lag: int
    rule: str


def overlaps(graph: ir.Graph, qtable: Optional[dict[str, Any]]) -> dict[int, Overlap]:
    """The layers (by op index) the rules above allow to overlap, given int8 activations (the s8 kernels)."""
    result = {}
    for index, op in enumerate(graph.ops):
        found = _rule(graph, op, qtable)
        if found is not None:
            source, lag, rule = found
            result[index] = Overlap(index, source, lag, rule)
    return result


def _rule(graph: ir.Graph, op: ir.Op, qtable: Optional[dict[str, Any]]) -> Optional[tuple[str, int, str]]:
    activations = [t for t in op.inputs if not graph.tensors[t].is_const] + list(op.outputs)
    if not activations or not all(_int8(qtable, t) for t in activations) or len(op.outputs) != 1:
        return None
    out = graph.tensors[op.outputs[0]]
    if op.type in ELEMENTWISE_OPS:
        same = [t for t in op.inputs if not graph.tensors[t].is_const and graph.tensors[t].shape == out.shape]
        return (same[0], 0, "in place") if len(same) == len(activations) - 1 else None
    if op.type == "conv2d":
        return _convolution(graph, op)
    if op.type == "depthwise_conv2d":
        return _depthwise(graph, op)
    return None


def _convolution(graph: ir.Graph, op: ir.Op) -> Optional[tuple[str, int, str]]:
    """A 1x1 convolution without padding: the ``pixel lag`` rule; a larger kernel: :func:`_windowed`."""
    g = conv_geometry(graph, op)
    if (g.filter.h, g.filter.w) != (1, 1):
        return _windowed(g, op.inputs[0])
    plain = (g.filter.h, g.filter.w, g.stride, g.padding, g.dilation) == (1, 1, (1, 1), (0, 0), (1, 1))
    if not plain or g.input.n != 1 or g.filter.c != g.input.c or not g.output.c <= min(g.input.c, MVE_CHANNEL_BLOCK):
        return None
    if g.input.c % DSP_CHANNEL_BLOCK != 0 and g.output.c > 2:
        return None
    return op.inputs[0], _align(PIXELS_BEFORE_STORE * g.output.c), "pixel lag"


def _windowed(g: Any, source: str) -> Optional[tuple[str, int, str]]:
    """A convolution through arm_convolve_s8 (the im2col paths), stride 1, as large an output as its input, no
    wider: the ``conv row lag`` rule."""
    same_size = (g.output.h, g.output.w) == (g.input.h, g.input.w)
    if not same_size or g.input.n != 1 or g.stride != (1, 1) or g.dilation != (1, 1) or g.filter.c != g.input.c:
        return None
    if not g.output.c <= min(g.input.c, MVE_CHANNEL_BLOCK) or (g.input.h == 1 and g.filter.h == 1):
        return None             # wider, or arm_convolve_1_x_n_s8's one-row input
    reach = g.padding[0] * g.input.w + g.padding[1]
    return source, _align((reach + 1) * g.output.c), "conv row lag"


def _depthwise(graph: ir.Graph, op: ir.Op) -> Optional[tuple[str, int, str]]:
    g = conv_geometry(graph, op)
    same_size = (g.output.h, g.output.w, g.output.c) == (g.input.h, g.input.w, g.input.c)
    if not same_size or g.ch_mult != 1 or g.input.n != 1 or g.stride != (1, 1) or g.dilation != (1, 1):
        return None
    c = g.input.c
    if c % DSP_CHANNEL_BLOCK != 0 and c >= DSP_CHANNEL_BLOCK:
        return None
    needed = (g.padding[0] * g.input.w + g.padding[1]) * c
    step = c * ALIGNMENT // math.gcd(c, ALIGNMENT)
    return op.inputs[0], -(-needed // step) * step, "row lag"


def _int8(qtable: Optional[dict[str, Any]], tensor: str) -> bool:
    return qtable is not None and qtable.get("tensors", {}).get(tensor, {}).get("dtype") == "int8"


def _align(value: int) -> int:
    return -(-value // ALIGNMENT) * ALIGNMENT


# ---- the scratch the bundled kernels use -------------------------------------------------------------------------
# What nnscons' own Helium kernels (cmsis/) use of the scratch Arm's getters ask for: the depthwise convolution its
# working data (912 bytes at the first 16-byte boundary of the buffer, else on the stack), the convolution through
# im2col three int8 columns
_BUNDLED_MVE_DEPTHWISE_WORK = 912 + 15


def bundled_scratch(kernel: Kernel, features: str) -> int:
    """The scratch ``kernel`` needs on nnscons' bundled kernels: never more than Arm's (``kernel.scratch``)."""
    arm = kernel.scratch[features]
    if features != "mve" or arm == 0 or kernel.suffix != "s8":
        return arm
    if kernel.kind == "depthwise" and isinstance(kernel.geometry, ConvGeometry):
        g = kernel.geometry
        # arm_nn_dw_rows_mve_fits: whole kernel rows by VMLADAVA, no scratch (the other paths fall back to the stack)
        rows = g.ch_mult % 4 == 0 and 4 <= g.filter.w <= 16 and 7 * g.dilation[1] * g.input.c <= 0xFFFF \
            and 7 * g.input.c * g.ch_mult <= 0xFFFF
        return 0 if rows else min(arm, _align(_BUNDLED_MVE_DEPTHWISE_WORK))
    if kernel.kind == "conv" and isinstance(kernel.geometry, ConvGeometry):
        g = kernel.geometry
        return min(arm, _align(3 * g.filter.h * g.filter.w * g.input.c))
    return arm
