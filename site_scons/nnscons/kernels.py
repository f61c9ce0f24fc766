"""What code generation knows about CMSIS-NN: which function runs each IR op, and how much scratch it needs.

For every supported IR op and activation word size this module names the CMSIS-NN (v7 API) function generated
code calls (``s8`` for int8 activations, ``s16`` for int16 activations with int8 weights):

=====================  ==========================================================================
``conv2d``             ``arm_convolve_wrapper_s8`` / ``_s16``
``depthwise_conv2d``   ``arm_depthwise_conv_wrapper_s8`` / ``_s16``
``fully_connected``    ``arm_fully_connected_s8`` / ``_s16``; with one multiplier per output (power-of-two
                       weight formats per channel under ``q15``) ``arm_convolve_wrapper_s8`` / ``_s16`` as a 1x1
                       convolution, since the s16 fully connected kernel takes a single multiplier
``avg_pool2d``         ``arm_avgpool_s8`` / ``_s16``
``max_pool2d``         ``arm_max_pool_s8`` / ``_s16``
``softmax``            ``arm_softmax_s8`` / ``arm_softmax_s16`` (with the two lookup tables of
                       :mod:`nnscons.codegen.softmax_luts`); int8 in, int16 out: ``arm_softmax_s8_s16``
``add``, ``mul``       ``arm_elementwise_add_s8`` / ``_s16``, ``arm_elementwise_mul_s8`` / ``_s16``
``mean``               none in CMSIS-NN: a generated loop, s8 over the spatial axes of NHWC (Keras' global average
                       pooling), with TFLite's integer arithmetic (sum of x - zero point, Q31 multiplier
                       input scale / output scale / pixels, TFLite's rounding)
``logistic``, ``tanh``,  none in CMSIS-NN: int8 through a 256-entry table (:mod:`nnscons.fixedpoint`) computed
``leaky_relu``,        with TFLite Micro's integer arithmetic, so the lookup is bit-exact with it (``quantize``
``quantize``           between two int8 tensors is a requantization; a float input's quantize is absorbed by the
                       C API; between other integers, int8 or int16 to int8, int16 or int32: a generated loop)
``pad``                a generated fill-and-copy loop (s8/s16, rank <= 4, input and output quantized alike)
``sub``                none in CMSIS-NN: a generated loop, s8, with TFLite's arithmetic (each input rescaled to the
                       common 2 * max(scale) step on 20 extra bits, the difference requantized)
``concat``             ``arm_concatenation_s8_y`` once per input, each seen as [outer][axis][inner bytes] (int16
                       values are copied as byte pairs); inputs and output share one quantization
``reshape``            none: the output aliases the input (see :mod:`nnscons.planner`)
``relu``/``relu6``/    none: a clamp loop in the generated C (CMSIS-NN's ``arm_relu*`` ignore the zero
``clip``               point)
``lstm``, ``gru``       per time step ``arm_nn_lstm_step_s8`` / ``_s16`` (int8x8_16 / int16x8_16), ``nnscons_gru_step_s8``
                       / ``_s16`` (the bundled kernels' own); scratch: 2 / 4 batch x hidden int16 buffers
``svdf``               ``arm_svdf_state_s16_s8`` (int16 state) / ``arm_svdf_s8`` (int8 state at zero point 0) /
                       ``nnscons_svdf_state_offset_s8`` (the bundled kernels' own); scratch: two int32 sum buffers
=====================  ==========================================================================

Anything else has no CMSIS-NN kernel and is an error naming the layer.

Scratch sizes follow the ``*_get_buffer_size`` rules of Arm's CMSIS-NN (reference/cmsis-nn-api-facts.md
section 1.6, and Arm's v7 getters for what the facts leave open) for three feature sets, because the buffer a
kernel needs depends on the code paths it was compiled with:

* ``c``   pure C: Cortex-M0/M3, and every host build;
* ``dsp`` the DSP extension (``ARM_MATH_DSP``): Cortex-M4/M7/M33;
* ``mve`` Helium (``ARM_MATH_MVEI``): Cortex-M55/M85.

Where Arm's answer depends on the compiler (armclang needs a buffer for the DSP 1x1 convolution, GCC does not;
the MVE depthwise-to-convolution threshold is 8 with armclang, 1 otherwise) the larger size is taken, so the
generated arena is enough for either compiler.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

from . import ir
from .errors import NnsconsError

FEATURE_SETS = ("c", "dsp", "mve")

# Channel block of Arm's MVE depthwise kernel (its scratch holds 4 blocks of im2col columns)
_DW_MVE_CHANNEL_BLOCK = 124
# Depthwise convolutions with one input channel and more output channels than this become regular
# convolutions in Arm's MVE build (1 with GCC, 8 with armclang: the smaller threshold reserves more)
_DW_TO_CONV_THRESHOLD = 1
# Arm's s16 depthwise fast path needs fewer kernel taps than this
_DW_S16_FAST_MAX_TAPS = 512

WEIGHTED_OPS = ("conv2d", "depthwise_conv2d", "fully_connected")
# generated loops / tables written for int8 activations only
INT8_ONLY_OPS = ("sub", "mean", "logistic", "tanh", "leaky_relu", "quantize")


@dataclass(frozen=True)
class Dims:
    """A ``cmsis_nn_dims``."""

    n: int
    h: int
    w: int
    c: int

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.n, self.h, self.w, self.c)


@dataclass(frozen=True)
class ConvGeometry:
    """The shape arguments of a (depthwise) convolution call, as CMSIS-NN receives them. Pairs are (h, w);
    ``padding`` is the top/left padding only (the bottom/right extent follows from the output size)."""

    input: Dims
    filter: Dims
    output: Dims
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    ch_mult: int = 1


def _align(value: int, multiple: int) -> int:
    return (value + multiple - 1) // multiple * multiple


def _check_features(features: str) -> None:
    if features not in FEATURE_SETS:
        raise ValueError(f"unknown feature set {features!r} (one of {', '.join(FEATURE_SETS)})")


# ---- convolution s8 ----------------------------------------------------------------------------------------------
def conv_is_1x1(g: ConvGeometry) -> bool:
    """``arm_convolve_wrapper_s8`` takes a 1x1 path (``_1x1_s8_fast`` for stride 1, else ``_1x1_s8``)."""
    return (g.padding == (0, 0) and g.filter.h == 1 and g.filter.w == 1 and g.dilation == (1, 1)
            and g.input.c == g.filter.c)


def conv_is_1_x_n(g: ConvGeometry) -> bool:
    """``arm_convolve_wrapper_s8`` takes ``arm_convolve_1_x_n_s8`` (checked after the 1x1 case)."""
    return (g.input.h == 1 and g.dilation[1] == 1 and g.filter.h == 1 and (g.stride[1] * g.input.c) % 4 == 0
            and g.input.c == g.filter.c)


def convolve_s8_buffer_size(features: str, g: ConvGeometry) -> int:
    """``arm_convolve_s8_get_buffer_size``: two int16 im2col columns (padded to a multiple of 4 values), or on
    MVE four int8 columns padded to whole 16-byte vectors."""
    _check_features(features)
    columns = g.input.c * g.filter.w * g.filter.h
    if features == "mve":
        return 4 * _align(columns, 16)
    return 2 * _align(columns, 4) * 2


def convolve_wrapper_s8_buffer_size(features: str, g: ConvGeometry) -> int:
    """``arm_convolve_wrapper_s8_get_buffer_size[_dsp|_mve]``."""
    _check_features(features)
    if conv_is_1x1(g):
        if g.stride == (1, 1) and features == "dsp":
            return 2 * g.input.c * 2          # armclang's DSP 1x1 kernel (GCC's needs none)
        return 0
    # 1xN uses arm_convolve_s8's size on pure C and DSP; Arm's own MVE 1xN formula is bounded by it
    return convolve_s8_buffer_size(features, g)


# ---- convolution s16 ---------------------------------------------------------------------------------------------
def convolve_wrapper_s16_buffer_size(features: str, g: ConvGeometry) -> int:
    """``arm_convolve_wrapper_s16_get_buffer_size[_dsp|_mve]`` (v6+): two int16 im2col columns, on MVE four
    columns padded to whole 8-lane vectors."""
    _check_features(features)
    columns = g.input.c * g.filter.w * g.filter.h
    if features == "mve":
        return 4 * _align(columns, 8) * 2
    return 2 * columns * 2


# ---- depthwise convolution -----------------------------------------------------------------------------------------
def dw_is_3x3(g: ConvGeometry) -> bool:
    return g.filter.w == 3 and g.filter.h == 3 and g.padding[0] <= 1 and g.padding[1] <= 1


def _dw_s8_opt_buffer_size(features: str, g: ConvGeometry) -> int:
    if features == "dsp":
        return g.input.c * g.filter.w * g.filter.h * 2
    if features == "mve":
        return 4 * _DW_MVE_CHANNEL_BLOCK * g.filter.w * g.filter.h
    return 0


def _dw_as_conv_buffer_size(g: ConvGeometry) -> int:
    """Arm's MVE build runs a depthwise convolution of one input channel as a regular convolution: the
    convolution's scratch plus room for the transposed filter."""
    conv = ConvGeometry(g.input, Dims(g.output.c, g.filter.h, g.filter.w, g.input.c), g.output, g.stride,
                        g.padding, g.dilation)
    filter_bytes = g.filter.n * g.filter.h * g.filter.w * g.filter.c
    return convolve_wrapper_s8_buffer_size("mve", conv) + filter_bytes


def depthwise_conv_wrapper_s8_buffer_size(features: str, g: ConvGeometry) -> int:
    """``arm_depthwise_conv_wrapper_s8_get_buffer_size[_dsp|_mve]``."""
    _check_features(features)
    size = 0
    one_to_one = g.input.c == g.output.c and g.input.n == 1 and g.dilation == (1, 1)
    if one_to_one and not (features != "mve" and dw_is_3x3(g)):
        size = _dw_s8_opt_buffer_size(features, g)
    if features == "mve" and g.input.c == 1 and g.output.c > _DW_TO_CONV_THRESHOLD:
        size = max(size, _dw_as_conv_buffer_size(g))
    return size


def depthwise_conv_wrapper_s16_buffer_size(features: str, g: ConvGeometry) -> int:
    """``arm_depthwise_conv_wrapper_s16_get_buffer_size[_dsp|_mve]``: the fast kernel (channel multiplier 1, no
    dilation, fewer than 512 taps) keeps one int16 im2col column on DSP, four (+ 8 bytes of over-read) on MVE."""
    _check_features(features)
    fast = g.ch_mult == 1 and g.dilation == (1, 1) and g.filter.w * g.filter.h < _DW_S16_FAST_MAX_TAPS
    column = g.input.c * g.filter.w * g.filter.h * 2
    if not fast or features == "c":
        return 0
    return column if features == "dsp" else 4 * column + 8


# ---- fully connected, pooling ------------------------------------------------------------------------------------
def fully_connected_s8_buffer_size(features: str, filter_dims: Dims) -> int:
    """``arm_fully_connected_s8_get_buffer_size[_dsp|_mve]``: on MVE one int32 kernel sum per output, which the
    caller fills with ``arm_vector_sum_s8`` before the call."""
    _check_features(features)
    return filter_dims.c * 4 if features == "mve" else 0


def fully_connected_s16_buffer_size(features: str, filter_dims: Dims) -> int:
    _check_features(features)
    return 0


def avgpool_buffer_size(features: str, output_width: int, channels: int) -> int:
    """``arm_avgpool_s8/_s16_get_buffer_size[_dsp|_mve]``: one int32 sum per channel on DSP."""
    _check_features(features)
    return channels * 4 if features == "dsp" else 0


# ---- per layer ---------------------------------------------------------------------------------------------------
@dataclass
class Kernel:
    """The CMSIS-NN call for one layer."""

    kind: str                      # conv | depthwise | fc | avgpool | maxpool | softmax | add | mul | concat | clamp
                                   # | lstm | svdf | alias, or a generated loop: sub | mean | pad | lookup
    function: str                  # the CMSIS-NN function ("" for alias, clamp and the generated loops)
    suffix: str                    # "s8" | "s16"
    scratch: dict[str, int]        # bytes per feature set
    geometry: Any = None           # ConvGeometry for convolutions; Dims of the filter for fully connected


_UNSUPPORTED_NOTE = {
    "quantize": "a quantize op is supported as the first op, from a float graph input, or between integer tensors",
    "dequantize": "a dequantize op is only supported as the last op, to a float graph output",
}


def unsupported(op: ir.Op, suffix: str, why: str = "") -> NnsconsError:
    label = ir.c_comment(op.label) if op.label else op.type
    text = f"layer {op.name} ({label}): op {op.type} has no CMSIS-NN {suffix} kernel"
    note = why or _UNSUPPORTED_NOTE.get(op.type, "")
    return NnsconsError(None, text + (f" ({note})" if note else ""))


def activation_suffix(dtype: str) -> str:
    return {"int8": "s8", "int16": "s16"}.get(dtype, "")


def conv_geometry(graph: ir.Graph, op: ir.Op) -> ConvGeometry:
    """The CMSIS-NN shape arguments of a conv2d / depthwise_conv2d op (batch 1)."""
    x, w, y = (graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]])
    n, h, wd, c = x.shape
    _, oh, ow, oc = y.shape
    pad = op.attrs.get("pad", [0, 0, 0, 0])
    stride = tuple(op.attrs.get("stride", [1, 1]))
    dilation = tuple(op.attrs.get("dilation", [1, 1]))
    if op.type == "conv2d":
        filt = Dims(*w.shape)                                  # OHWI: {C_OUT, KH, KW, C_IN / groups}
        ch_mult = 1
    else:
        filt = Dims(1, w.shape[1], w.shape[2], w.shape[3])     # 1HWC
        ch_mult = int(op.attrs.get("multiplier", 1))
    return ConvGeometry(Dims(n, h, wd, c), filt, Dims(n, oh, ow, oc), (int(stride[0]), int(stride[1])),
                        (int(pad[0]), int(pad[2])), (int(dilation[0]), int(dilation[1])), ch_mult)


def fc_filter_dims(graph: ir.Graph, op: ir.Op) -> Dims:
    out_features, in_features = graph.tensors[op.inputs[1]].shape
    return Dims(in_features, 1, 1, out_features)


def fc_as_conv_geometry(graph: ir.Graph, op: ir.Op) -> ConvGeometry:
    """A fully connected layer as a 1x1 convolution over ``batches`` pixels: input ``{batches, 1, 1, in}``,
    filter ``{out, 1, 1, in}`` (the ``[out][in]`` weights are already OHWI), output ``{batches, 1, 1, out}``."""
    out_features, in_features = graph.tensors[op.inputs[1]].shape
    batches = graph.tensors[op.inputs[0]].size // max(int(in_features), 1)
    return ConvGeometry(Dims(batches, 1, 1, in_features), Dims(out_features, 1, 1, in_features),
                        Dims(batches, 1, 1, out_features), (1, 1), (0, 0), (1, 1), 1)


def _sizes(function: Callable[..., int], *args: Any) -> dict[str, int]:
    return {f: int(function(f, *args)) for f in FEATURE_SETS}


def _conv_kernel(graph: ir.Graph, op: ir.Op, suffix: str, per_channel: bool) -> Kernel:
    g = conv_geometry(graph, op)
    size = convolve_wrapper_s8_buffer_size if suffix == "s8" else convolve_wrapper_s16_buffer_size
    return Kernel("conv", f"arm_convolve_wrapper_{suffix}", suffix, _sizes(size, g), g)


def _depthwise_kernel(graph: ir.Graph, op: ir.Op, suffix: str, per_channel: bool) -> Kernel:
    g = conv_geometry(graph, op)
    size = depthwise_conv_wrapper_s8_buffer_size if suffix == "s8" else depthwise_conv_wrapper_s16_buffer_size
    return Kernel("depthwise", f"arm_depthwise_conv_wrapper_{suffix}", suffix, _sizes(size, g), g)


def _fc_kernel(graph: ir.Graph, op: ir.Op, suffix: str, per_channel: bool) -> Kernel:
    if per_channel:
        g = fc_as_conv_geometry(graph, op)
        size = convolve_wrapper_s8_buffer_size if suffix == "s8" else convolve_wrapper_s16_buffer_size
        return Kernel("conv", f"arm_convolve_wrapper_{suffix}", suffix, _sizes(size, g), g)
    f = fc_filter_dims(graph, op)
    if suffix == "s8":
        # the MVE scratch (arm_fully_connected_s8_get_buffer_size_mve) holds the kernel sums, which the generated
        # code instead passes as a constant array computed at generation time: no scratch on any build
        return Kernel("fc", "arm_fully_connected_s8", suffix, {features: 0 for features in FEATURE_SETS}, f)
    return Kernel("fc", f"arm_fully_connected_{suffix}", suffix, _sizes(fully_connected_s16_buffer_size, f), f)


def _avgpool_kernel(graph: ir.Graph, op: ir.Op, suffix: str, per_channel: bool) -> Kernel:
    y = graph.tensors[op.outputs[0]]
    return Kernel("avgpool", f"arm_avgpool_{suffix}", suffix, _sizes(avgpool_buffer_size, y.shape[2], y.shape[3]))


# a recurrent op's step function (its _s8 / _s16 suffix added) and how many batch x hidden int16 buffers it takes
_RECURRENT_STEPS = {"lstm": ("arm_nn_lstm_step", 2), "gru": ("nnscons_gru_step", 4)}


def _recurrent_kernel(graph: ir.Graph, op: ir.Op, suffix: str, per_channel: bool) -> Kernel:
    """``geometry``: the bytes of one of its int16 buffers (batch x hidden values)."""
    if suffix not in ("s8", "s16"):
        raise unsupported(op, suffix, "only int8 and int16 recurrent layers are supported")
    function, buffers = _RECURRENT_STEPS[op.type]
    x = graph.tensors[op.inputs[0]].shape
    one = _align(2 * (x[1] if op.attrs.get("time_major") else x[0]) * graph.tensors[op.inputs[1]].shape[0], 4)
    return Kernel(op.type, f"{function}_{suffix}", suffix, {f: buffers * one for f in FEATURE_SETS}, one)


def _svdf_kernel(graph: ir.Graph, op: ir.Op, suffix: str, per_channel: bool) -> Kernel:
    """``geometry``: the bytes of the first sum buffer (batch x filters; then batch x filters / rank)."""
    if suffix != "s8":
        raise unsupported(op, suffix, "only the int8 SVDF is supported")
    batch, filters = graph.tensors[op.inputs[0]].shape[0], graph.tensors[op.inputs[1]].shape[0]
    sums, outs = _align(4 * batch * filters, 16), _align(4 * batch * (filters // int(op.attrs["rank"])), 16)
    wide = graph.tensors[op.inputs[2]].dtype == "int16"
    at_zero = int((op.attrs.get("state") or {}).get("zero_point", 0)) == 0
    function = "arm_svdf_state_s16_s8" if wide else "arm_svdf_s8" if at_zero else "nnscons_svdf_state_offset_s8"
    return Kernel("svdf", function, suffix, {f: sums + outs for f in FEATURE_SETS}, sums)


def requantizes(input_dtype: str, output_dtype: str) -> bool:
    """Whether a quantize op between these types is the generated requantizing loop: integers in and out, not
    both int8 (that one is a 256-entry table)."""
    return "float32" not in (input_dtype, output_dtype) and (input_dtype, output_dtype) != ("int8", "int8")


def requantize_kernel(input_dtype: str, output_dtype: str) -> Kernel:
    """A quantize between two integer types that are not both int8 (those take a lookup table): a generated
    loop; the suffix names both word sizes (e.g. ``s16_s8``, ``s16_s32``)."""
    suffix = "_".join({"int8": "s8", "int16": "s16", "int32": "s32"}[t] for t in (input_dtype, output_dtype))
    return Kernel("requantize", "", suffix, {f: 0 for f in FEATURE_SETS})


def softmax_s8_s16_kernel() -> Kernel:
    """The one layer whose input and output word sizes differ: int8 logits, int16 probabilities."""
    return Kernel("softmax", "arm_softmax_s8_s16", "s8_s16", {f: 0 for f in FEATURE_SETS})


def _no_scratch(kind: str, function: str, graph: ir.Graph, op: ir.Op, suffix: str, per_channel: bool) -> Kernel:
    """A kernel without scratch: ``function`` with ``{suffix}`` filled in ("" for a generated loop or no code)."""
    return Kernel(kind, function.format(suffix=suffix), suffix, {f: 0 for f in FEATURE_SETS})


KernelChoice = Callable[[ir.Graph, ir.Op, str, bool], Kernel]

# The registry: every IR op code generation supports, and who picks its kernel (see the module docstring)
LAYER_KERNELS: dict[str, KernelChoice] = {
    "conv2d": _conv_kernel,
    "depthwise_conv2d": _depthwise_kernel,
    "fully_connected": _fc_kernel,
    "avg_pool2d": _avgpool_kernel,
    "max_pool2d": functools.partial(_no_scratch, "maxpool", "arm_max_pool_{suffix}"),
    "softmax": functools.partial(_no_scratch, "softmax", "arm_softmax_{suffix}"),
    "add": functools.partial(_no_scratch, "add", "arm_elementwise_add_{suffix}"),
    "mul": functools.partial(_no_scratch, "mul", "arm_elementwise_mul_{suffix}"),
    "sub": functools.partial(_no_scratch, "sub", ""),
    "concat": functools.partial(_no_scratch, "concat", "arm_concatenation_s8_y"),
    "mean": functools.partial(_no_scratch, "mean", ""),
    "pad": functools.partial(_no_scratch, "pad", ""),
    **{op: functools.partial(_no_scratch, "lookup", "") for op in ("logistic", "tanh", "leaky_relu", "quantize")},
    "reshape": functools.partial(_no_scratch, "alias", ""),
    **{op: functools.partial(_no_scratch, "clamp", "") for op in ("relu", "relu6", "clip")},
    "lstm": _recurrent_kernel, "gru": _recurrent_kernel,
    "svdf": _svdf_kernel,
}
SUPPORTED_OPS = tuple(LAYER_KERNELS)


def layer_kernel(graph: ir.Graph, op: ir.Op, act_dtype: str, per_channel: bool = False) -> Kernel:
    """The kernel for one op whose activations are ``act_dtype`` (raises for unsupported ops); ``per_channel``:
    the layer's table has one multiplier per output channel (matters for fully connected layers)."""
    suffix = activation_suffix(act_dtype)
    choose = LAYER_KERNELS.get(op.type)
    if choose is None:
        raise unsupported(op, suffix or "s8/s16")
    if not suffix:
        raise unsupported(op, "s8/s16", f"its activations are {act_dtype}; the kernels take int8 or int16")
    return choose(graph, op, suffix, per_channel)
