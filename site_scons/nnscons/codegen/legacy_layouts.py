# SPDX-License-Identifier: Apache-2.0
# Part of nnscons; written from the published CMSIS-NN API, not derived from its source.
"""What code generation needs to know about the legacy q7/q15 CMSIS-NN API (CMSIS_5 5.9.0, the kernels of the
seed guide's power-of-two Q-format method), beyond the arithmetic itself:

* **variant constraints**: :func:`constraint_error` says whether a function accepts a layer's shape (Arm's
  functions return ``ARM_MATH_SIZE_MISMATCH`` otherwise), and :func:`pick_conv_function` picks the most
  efficient convolution variant a layer allows;
* **weight layouts of the _opt fully connected functions**: :func:`interleave_fc_weights` turns a row-major
  ``[rows][cols]`` matrix into the interleaved order ``arm_fully_connected_q7_opt``, ``_q15_opt`` and
  ``_mat_q7_vec_q15_opt`` read (on it they give exactly what the plain function gives on the plain matrix);
* **scratch buffers**: :func:`legacy_buffer_sizes` gives the ``bufferA`` / ``bufferB`` / ``vec_buffer`` each
  function needs in Arm's library.

Geometry pairs are ``(y, x)`` (height first), like the rest of nnscons; the C functions take x first.
Feature sets are those of :mod:`nnscons.kernels`: ``c`` (pure C), ``dsp``, ``mve``. Arm's legacy kernels have no
MVE code, but Cortex-M55/M85 also have the DSP extension, so ``mve`` checks what ``dsp`` checks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

Pair = tuple[int, int]  # (y, x)

FEATURES = ("c", "dsp", "mve")

SQUARE_CONV = ("arm_convolve_HWC_q7_basic", "arm_convolve_HWC_q7_fast", "arm_convolve_HWC_q7_RGB",
               "arm_convolve_HWC_q15_basic", "arm_convolve_HWC_q15_fast", "arm_depthwise_separable_conv_HWC_q7")
NONSQUARE_CONV = ("arm_convolve_HWC_q7_basic_nonsquare", "arm_convolve_HWC_q7_fast_nonsquare",
                  "arm_convolve_1x1_HWC_q7_fast_nonsquare", "arm_convolve_HWC_q15_fast_nonsquare",
                  "arm_depthwise_separable_conv_HWC_q7_nonsquare")
CONV_FUNCTIONS = SQUARE_CONV + NONSQUARE_CONV
FC_FUNCTIONS = ("arm_fully_connected_q7", "arm_fully_connected_q7_opt", "arm_fully_connected_q15",
                "arm_fully_connected_q15_opt", "arm_fully_connected_mat_q7_vec_q15",
                "arm_fully_connected_mat_q7_vec_q15_opt")
POOL_FUNCTIONS = ("arm_maxpool_q7_HWC", "arm_avepool_q7_HWC")
OTHER_FUNCTIONS = ("arm_relu_q7", "arm_relu_q15", "arm_nn_activations_direct_q7", "arm_nn_activations_direct_q15",
                   "arm_softmax_q7", "arm_softmax_with_batch_q7", "arm_softmax_q15")
LEGACY_FUNCTIONS = CONV_FUNCTIONS + FC_FUNCTIONS + POOL_FUNCTIONS + OTHER_FUNCTIONS

# The most efficient first: the generator takes the first variant the layer's shape allows.
_CONV_PREFERENCE = {
    (8, False): ("arm_convolve_1x1_HWC_q7_fast_nonsquare", "arm_convolve_HWC_q7_RGB", "arm_convolve_HWC_q7_fast",
                 "arm_convolve_HWC_q7_fast_nonsquare", "arm_convolve_HWC_q7_basic",
                 "arm_convolve_HWC_q7_basic_nonsquare"),
    (16, False): ("arm_convolve_HWC_q15_fast", "arm_convolve_HWC_q15_fast_nonsquare", "arm_convolve_HWC_q15_basic"),
    (8, True): ("arm_depthwise_separable_conv_HWC_q7", "arm_depthwise_separable_conv_HWC_q7_nonsquare"),
}


@dataclass(frozen=True)
class LegacyConvGeometry:
    """One HWC convolution, depthwise convolution or pooling layer; pairs are (y, x)."""

    ch_im_in: int
    ch_im_out: int
    dim_im_in: Pair
    dim_kernel: Pair
    padding: Pair
    stride: Pair
    dim_im_out: Pair

    @property
    def is_square(self) -> bool:
        """Whether a square function (one value per argument for both axes) can describe it."""
        return all(pair[0] == pair[1] for pair in (self.dim_im_in, self.dim_kernel, self.padding, self.stride,
                                                   self.dim_im_out))


def _check_function(function: str, family: tuple[str, ...]) -> None:
    if function not in family:
        raise ValueError(f"not a legacy CMSIS-NN function of this kind: {function!r}")


def _check_features(features: str) -> None:
    if features not in FEATURES:
        raise ValueError(f"unknown feature set {features!r} (expected one of {', '.join(FEATURES)})")


# ---------------------------------------------------------------------------------------------------------------
# Constraints and variant choice
# ---------------------------------------------------------------------------------------------------------------

def constraint_error(function: str, g: LegacyConvGeometry, features: str = "dsp") -> Optional[str]:
    """None if ``function`` accepts the layer, else why not: Arm's own checks (which make it return
    ``ARM_MATH_SIZE_MISMATCH``) and, for a square function, a non-square layer. Only
    ``arm_convolve_HWC_q15_fast`` depends on ``features`` (DSP builds also need an even output size); the
    default ``"dsp"`` is the safe choice when the target is not known."""
    _check_function(function, CONV_FUNCTIONS)
    _check_features(features)
    if function in SQUARE_CONV and not g.is_square:
        return "a square function needs the same size, kernel, padding and stride on both axes"
    if "_fast" in function and "q7" in function and (g.ch_im_in % 4 or g.ch_im_out % 2):
        return "needs input channels % 4 == 0 and output channels % 2 == 0"
    if "_fast" in function and "q15" in function and (g.ch_im_in % 2 or g.ch_im_out % 2):
        return "needs input channels % 2 == 0 and output channels % 2 == 0"
    if function == "arm_convolve_HWC_q15_fast" and features != "c" and g.dim_im_out[0] % 2:
        return "needs an even output size on DSP targets"
    if function == "arm_convolve_1x1_HWC_q7_fast_nonsquare" and (
            g.dim_kernel != (1, 1) or g.padding != (0, 0) or g.stride != (1, 1)):
        return "needs a 1x1 kernel, no padding and stride 1"
    if function == "arm_convolve_HWC_q7_RGB" and g.ch_im_in != 3:
        return "needs 3 input channels"
    if function.startswith("arm_depthwise") and g.ch_im_in != g.ch_im_out:
        return "needs as many output channels as input channels (no channel multiplier)"
    return None


def pick_conv_function(g: LegacyConvGeometry, *, bits: int, depthwise: bool = False,
                       features: str = "dsp") -> Optional[str]:
    """The most efficient legacy function for a conv (``bits`` 8: q7, 16: q15) or q7 depthwise layer, or None
    when none accepts it (a non-square q15 layer with odd channel counts, a depthwise layer with a channel
    multiplier, q15 depthwise)."""
    for function in _CONV_PREFERENCE.get((bits, depthwise), ()):
        if constraint_error(function, g, features) is None:
            return function
    return None


# ---------------------------------------------------------------------------------------------------------------
# Scratch buffers
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ScratchBuffer:
    """One scratch argument: its element type and count (0: the function does not use it, pass NULL)."""

    ctype: str
    count: int

    @property
    def nbytes(self) -> int:
        return self.count * (2 if self.ctype == "q15_t" else 1)


def legacy_buffer_sizes(function: str, geometry: Optional[LegacyConvGeometry] = None, *,
                        dim_vec: int = 0) -> dict[str, ScratchBuffer]:
    """The scratch arguments of ``function`` by parameter name, sized as Arm documents them for its library
    (the sizes its DSP code paths use; the portable library needs none). Conv and pooling functions need
    ``geometry``, ``arm_fully_connected_q7[_opt]`` needs ``dim_vec``; the others have no scratch argument."""
    _check_function(function, LEGACY_FUNCTIONS)
    if function in CONV_FUNCTIONS or function in POOL_FUNCTIONS:
        if geometry is None:
            raise ValueError(f"{function} needs the layer geometry to size its buffers")
    if function in CONV_FUNCTIONS:
        taps = geometry.ch_im_in * geometry.dim_kernel[0] * geometry.dim_kernel[1]
        columns = 1 if function == "arm_convolve_HWC_q15_basic" else 2  # im2col columns of the DSP code
        return {"bufferA": ScratchBuffer("q15_t", columns * taps), "bufferB": ScratchBuffer("q7_t", 0)}
    if function in FC_FUNCTIONS:
        q7_vector = function in ("arm_fully_connected_q7", "arm_fully_connected_q7_opt")
        return {"vec_buffer": ScratchBuffer("q15_t", dim_vec if q7_vector else 0)}
    if function == "arm_avepool_q7_HWC":
        return {"bufferA": ScratchBuffer("q7_t", 2 * geometry.dim_im_out[1] * geometry.ch_im_in)}
    if function == "arm_maxpool_q7_HWC":
        return {"bufferA": ScratchBuffer("q7_t", 0)}
    return {}


# ---------------------------------------------------------------------------------------------------------------
# _opt fully connected weight interleaving
# ---------------------------------------------------------------------------------------------------------------

# Per function: columns per block, and for each value of a block its (row, column) within the 4-row group.
_BLOCKS: dict[str, tuple[int, tuple[int, ...], tuple[int, ...]]] = {
    "arm_fully_connected_q7_opt": (4, (0, 1, 0, 1, 2, 3, 2, 3, 0, 1, 0, 1, 2, 3, 2, 3),
                                   (0, 0, 2, 2, 0, 0, 2, 2, 1, 1, 3, 3, 1, 1, 3, 3)),
    "arm_fully_connected_q15_opt": (2, (0, 0, 1, 1, 2, 2, 3, 3), (0, 1, 0, 1, 0, 1, 0, 1)),
    "arm_fully_connected_mat_q7_vec_q15_opt": (2, (0, 1, 0, 1, 2, 3, 2, 3), (0, 0, 1, 1, 0, 0, 1, 1)),
}
OPT_FC_FUNCTIONS = tuple(_BLOCKS)


def interleave_fc_weights(function: str, w: np.ndarray) -> np.ndarray:
    """The flat weight array ``function`` (an ``_opt`` FC function) reads for the row-major matrix
    ``w[rows][cols]``. Rows go in groups of four; for each group the column blocks (4 columns for q7_opt, else
    2) are stored in the function's order, then each leftover column as its four rows; the rows left after the
    last group follow, row-major."""
    if function not in _BLOCKS:
        raise ValueError(f"not an _opt fully connected function: {function!r}")
    w = np.asarray(w)
    if w.ndim != 2:
        raise ValueError(f"expected a [rows][cols] matrix, got shape {w.shape}")
    width, block_rows, block_cols = _BLOCKS[function]
    rows, cols = w.shape
    groups, blocks = rows // 4, cols // width
    grouped = w[:groups * 4].reshape(groups, 4, cols)
    # [group][block][value]: value k of a block is W[4g + block_rows[k]][width*b + block_cols[k]].
    by_block = grouped[:, :, :blocks * width].reshape(groups, 4, blocks, width)
    block_part = by_block[:, list(block_rows), :, list(block_cols)].transpose(1, 2, 0).reshape(groups,
                                                                                          blocks * len(block_rows))
    # [group][leftover column][row]
    column_part = grouped[:, :, blocks * width:].transpose(0, 2, 1).reshape(groups, (cols - blocks * width) * 4)
    interleaved = np.concatenate([block_part, column_part], axis=1).reshape(-1)
    return np.concatenate([interleaved, w[groups * 4:].reshape(-1)]).astype(w.dtype)
