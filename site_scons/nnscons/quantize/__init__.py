"""Quantization tables (stage 5): ``qtable.json``, ``qtable.txt`` and ``qparams.npz``.

From the graph, its constants and the activation statistics this stage decides how every tensor is stored as
integers and computes, per layer, every number code generation passes to CMSIS-NN. Schemes (option ``quant``):

``model``     the model's own int8 / int16x8 / QDQ parameters, unchanged (so the C can be bit-exact with
              TFLite Micro). An error on a float model.
``auto``      ``model`` for a quantized model, else ``int8``.
``int8``      TFLite's int8 spec: asymmetric int8 activations (real 0 exactly representable: the zero point is
              "nudged" to an integer), symmetric int8 weights in [-127, 127], per output channel for conv2d (axis 0
              of OHWI) and depthwise_conv2d (axis 3 of 1HWC), per tensor for fully_connected; int32 biases with
              scale ``s_in * s_w[c]`` and zero point 0.
``int16x8``   as int8, with symmetric int16 activations (zero point 0) and int64 biases.
``q7``/``q15`` the seed guide's power-of-two Q-formats on 8 / 16-bit words (legacy CMSIS-NN q7/q15 API): a
              tensor of range R gets ``n = W-1-ceil(log2 R)`` fractional bits (:func:`~nnscons.ranges.q_frac_bits`);
              weights, biases and other constants (W-bit, per tensor) from their values, activations from the
              statistics and the range method. Per conv/depthwise/FC layer
              ``bias_shift = (fi + fw) - fb`` and ``out_shift = (fi + fw) - fo``.

The ``api`` option (the kernels the code will call) matters for ``q15`` only: the legacy q15 kernels take int16
weights and W-bit biases, but the modern s16 kernels take int8 weights and int64 biases. With ``api="s8"`` a
q15 model therefore gets 8-bit Q-format weights (``fw`` from their values on 8 bits) and int64 biases in the
accumulator's format (``fb = fi + fw``, ``bias_shift`` 0: no precision is lost to a W-bit bias); activations stay
Q-formats on 16 bits. As the s16 conv and depthwise kernels take one multiplier and shift per output channel anyway,
their weights get one Q-format per output channel (``fw[c]`` from that channel's largest value, axis 0 of OHWI
resp. 3 of 1HWC): every channel then uses all 8 bits, where one format per tensor leaves channels with small
weights a few levels. Their bias is per channel too (``fb[c] = fi + fw[c]``) and so is ``out_shift[c] =
fi + fw[c] - fo``; ``fo <= fi + min(fw)`` and ``fw[c] <= fo - fi + 31`` keep every shift in 0..31.
fully_connected weights get one format per output too (axis 0 of ``[out][in]``); as the s16 fully connected kernel
takes a single multiplier, code generation runs such a layer as a 1x1 convolution (:mod:`nnscons.kernels`).
Every other scheme is the same for both APIs; the legacy API keeps one format per layer (its kernels take one
``bias_shift`` / ``out_shift``).

Layer constraints (which outputs may be chosen freely):

* conv2d, depthwise_conv2d, fully_connected, add, sub, mul choose their output from its statistics (in affine
  schemes also mean and leaky_relu).
* max/avg pool, reshape, pad, relu, relu6, clip, quantize, dequantize (and in Q schemes mean and leaky_relu)
  keep their input's parameters; concat's inputs and output share one set. Such tensors form a group whose range
  is the union of its members' ranges, so the format covers the largest range and no requantization is needed
  (the producers write the common format directly).
* Fixed outputs: softmax, logistic and tanh give Q0.(W-1) in Q schemes; in int8 softmax and logistic give scale
  1/256 zero point -128, tanh 1/128 zero point 0 (TFLite's requirements); in int16x8 all three 1/32768, 0.
* add/sub in Q schemes take two inputs in different formats: they are aligned to the coarser one (the larger
  range), ``align_shift`` records each input's right shift to it, and ``out_shift`` the shift from it to the
  output. mul: ``out_shift = (f1 + f2) - fo``.
* Q schemes keep every shift a legal non-negative legacy shift: ``fb <= fi + fw`` (a bias finer than the
  accumulator would need a right shift) and ``fo <= fi + fw`` (resp. the aligned input format for add/sub,
  ``f1 + f2`` for mul): neither loses anything, the accumulator has no finer bits. And the shifted W-bit bias
  must fit the int32 accumulator (``bias_shift <= 32 - W``): if it would not, ``fw`` gives way (the weights lose
  their lowest bits rather than the bias overflowing). The sum itself must fit too, for any input the input
  format holds (the legacy kernels wrap silently): ``fw`` is lowered until every row's extreme sum does, counting
  only non-negative inputs after a ReLU (or other clamp at zero), where the extremes are half as far.
  An all-zero bias takes the accumulator's format.
  A shift that still falls outside 0..31 is an error naming the layer.

Every scheme is also expressed for the modern s8/s16 kernels: each layer gets TFLite-style parameters (offsets,
Q31 multipliers and shifts from :func:`quantize_multiplier`, activation clamps). conv2d / depthwise_conv2d carry
one multiplier and shift per output channel (a per-tensor weight scale is repeated, as the kernels take
per-channel arrays); fully_connected one per weight scale (usually one). For a Q-format, scale 2^-n and
zero point 0 make the conv requantization 2^-out_shift = multiplier 2^30 with shift ``1 - out_shift``, and the
int32 bias for an s8 kernel is the W-bit bias shifted left by ``bias_shift``.

Numbers from a model are bounded before they reach the kernels' arithmetic (:mod:`.bounds`): every shift within
what the kernels take (else an error naming the layer), every integer bias clamped so that no input can overflow
its accumulator, a multiplier clamped where a wrapping left shift could overflow the output offset's addition.
A weight channel too small to move its output by half a step (a dead channel, weights near 1e-30) is quantized as
zeros with a sane scale (:func:`~.common.dead_channels`), and, as TFLite's converter does, a weight scale is
raised where the bias would not fit half the bias word. Whatever was zeroed or clamped is listed as ``warning:``
lines at the top of ``qtable.txt`` and under ``warnings`` in ``qtable.json`` (absent when there is none).

``qtable.json`` (canonical JSON): ``tensors`` (per tensor: role, dtype, scale, zero_point, axis, chosen range and
statistics for activations, ``frac_bits`` / ``qformat`` in Q schemes; a per-channel Q-format has ``frac_bits`` a
list along ``axis``, one per scale, and ``qformat`` a summary such as ``Q0.7..Q-2.10 (x16)``), ``layers`` (per op,
keyed by op name; a layer with per-channel weight formats has ``fw``, ``fb`` and ``out_shift`` lists),
``order``, and the scheme. ``qparams.npz``: the quantized constants by tensor name (weights in IR layout).
``qtable.txt``: the same for people, the seed's table to check by hand.

The package, by concern (each imports only those above it):

``common``      the records (:class:`TensorQ`, :class:`QTable`), the build state, value helpers, roles, op checks;
``bounds``      the limits of the kernels' integer arithmetic: shifts, accumulators, biases;
``layers``      the s8/s16 kernel parameters every scheme carries (``LAYER_RULES``, one rule per op kind);
``model``       the scheme ``model``;
``affine``      ``int8`` / ``int16x8`` from ranges;
``qformat``     ``q7`` / ``q15`` formats from ranges and values, and the layers' shifts (``Q_LAYER_RULES``);
``headroom``    the Q-format constraints between layers (output bounds, accumulator headroom);
``calibrated``  the steps every calibrated scheme takes, with the family's own steps chosen once (``FAMILIES``);
``text``        ``qtable.txt`` and :func:`write_qtable`;
``build``       :func:`build_qtable`, the entry point.
"""
from ..fixedpoint import quantize_multiplier
from ..ranges import q_format_name, q_frac_bits, round_half_away
from .build import QTABLE_VERSION, SCHEMES, build_qtable, resolve_scheme
from .common import QTable, TensorQ, q_formats_name, round_array
from .layers import quantize_multiplier_greater_than_one
from .text import render_text, write_qtable


__all__ = [
    "QTABLE_VERSION", "SCHEMES", "QTable", "TensorQ", "build_qtable", "q_format_name", "q_formats_name",
    "q_frac_bits", "quantize_multiplier", "quantize_multiplier_greater_than_one", "render_text", "resolve_scheme",
    "round_half_away", "write_qtable",
]
