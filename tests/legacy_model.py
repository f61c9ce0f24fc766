# SPDX-License-Identifier: Apache-2.0
# Part of nnscons; written from the published CMSIS-NN API, not derived from its source.
"""A numpy model of the legacy CMSIS-NN q7/q15 arithmetic (CMSIS_5 5.9.0), the reference the portable kernels in
``cmsis/`` are checked against bit for bit.

Written from the published semantics, vectorised and independent of the C code's loop structure:

* conv / depthwise / FC: ``acc = (bias << bias_shift) + NN_ROUND(out_shift) + sum(in * w)`` wrapping modulo 2^32,
  ``out = saturate(acc >> out_shift)`` with an arithmetic (floor) shift; ``NN_ROUND(s) = 2^(s-1)`` (0 for s = 0,
  or with ``truncate=True``, Arm's ``ARM_NN_TRUNCATE``). Shifts of 32 or more behave like Cortex-M register
  shifts (``<<`` gives 0, ``>>`` the sign, NN_ROUND 0).
* max / average pooling over the valid taps of each window, the average with C's truncating division.
* base-2 softmax for q7 and q15; sigmoid / tanh through 256-entry tables on a 1/16 grid over [-8, 8).

Arrays are HWC images, OHWI conv weights, [KY][KX][C] depthwise weights and [rows][cols] FC matrices.

Run as a script (``python tests/legacy_model.py``) it prints the C source of the activation tables,
``cmsis/Source/NNSupportFunctions/arm_nn_legacy_tables.c``.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

Pair = tuple[int, int]  # (y, x)

INT32_SPAN = 1 << 32


# ---------------------------------------------------------------------------------------------------------------
# 32-bit integer helpers (int64 numpy arrays hold the values)
# ---------------------------------------------------------------------------------------------------------------

def wrap32(x: np.ndarray | int) -> np.ndarray:
    """x modulo 2^32 as a signed 32-bit value."""
    return (np.asarray(x, dtype=np.int64) + (1 << 31)) % INT32_SPAN - (1 << 31)


def lsl32(x: np.ndarray | int, s: int) -> np.ndarray:
    """x << s on 32 bits (wrapping); 0 for s >= 32."""
    x = np.asarray(x, dtype=np.int64)
    return np.zeros_like(x) if s > 31 else wrap32(x << s)


def asr32(x: np.ndarray, s: int) -> np.ndarray:
    """Arithmetic x >> s of a 32-bit value; its sign (0 or -1) for s >= 32."""
    x = np.asarray(x, dtype=np.int64)
    return np.where(x < 0, -1, 0) if s > 31 else x >> s


def nn_round(s: int, truncate: bool = False) -> int:
    """NN_ROUND(s): half of the unit that ``>> s`` drops."""
    return 0 if truncate or s == 0 or s > 31 else 1 << (s - 1)


def saturate(x: np.ndarray, bits: int) -> np.ndarray:
    return np.clip(x, -(1 << (bits - 1)), (1 << (bits - 1)) - 1)


def dtype_for(bits: int) -> type:
    return np.int8 if bits == 8 else np.int16


def finish(sums: np.ndarray, bias: Optional[np.ndarray], bias_shift: int, out_shift: int, out_bits: int,
           truncate: bool = False) -> np.ndarray:
    """The output of each accumulator: exact product sums (int64, any size) -> saturated out_bits result."""
    sums = np.asarray(sums, dtype=np.int64)
    start = np.zeros(sums.shape[-1], dtype=np.int64) if bias is None else lsl32(np.asarray(bias, np.int64),
                                                                                  bias_shift)
    acc = wrap32(start + nn_round(out_shift, truncate) + sums)
    return saturate(asr32(acc, out_shift), out_bits).astype(dtype_for(out_bits))


# ---------------------------------------------------------------------------------------------------------------
# Convolution, depthwise, fully connected
# ---------------------------------------------------------------------------------------------------------------

def _padded_windows(x: np.ndarray, kernel: Pair, padding: Pair, stride: Pair, out_hw: Pair):
    """Yield (ky, kx, patch) where patch[oy, ox, :] is the input at tap (ky, kx) of output (oy, ox) (0 outside)."""
    in_h, in_w, channels = x.shape
    (ky_n, kx_n), (py, px), (sy, sx), (oy_n, ox_n) = kernel, padding, stride, out_hw
    height = max(py + in_h, (oy_n - 1) * sy + ky_n)
    width = max(px + in_w, (ox_n - 1) * sx + kx_n)
    padded = np.zeros((height, width, channels), dtype=np.int64)
    padded[py:py + in_h, px:px + in_w] = x
    for ky in range(ky_n):
        for kx in range(kx_n):
            yield ky, kx, padded[ky:ky + (oy_n - 1) * sy + 1:sy, kx:kx + (ox_n - 1) * sx + 1:sx]


def conv(x: np.ndarray, w: np.ndarray, bias: Optional[np.ndarray], *, bias_shift: int, out_shift: int,
         padding: Pair, stride: Pair, out_hw: Pair, out_bits: int, truncate: bool = False) -> np.ndarray:
    """HWC convolution: x [H][W][C_IN], w [C_OUT][KY][KX][C_IN] -> [OY][OX][C_OUT]."""
    w = np.asarray(w, dtype=np.int64)
    sums = np.zeros((*out_hw, w.shape[0]), dtype=np.int64)
    for ky, kx, patch in _padded_windows(np.asarray(x), w.shape[1:3], padding, stride, out_hw):
        sums += np.einsum("yxc,oc->yxo", patch, w[:, ky, kx, :])
    return finish(sums, bias, bias_shift, out_shift, out_bits, truncate)


def depthwise(x: np.ndarray, w: np.ndarray, bias: Optional[np.ndarray], *, bias_shift: int, out_shift: int,
              padding: Pair, stride: Pair, out_hw: Pair, truncate: bool = False) -> np.ndarray:
    """q7 depthwise convolution: x [H][W][C], w [KY][KX][C] -> [OY][OX][C]."""
    w = np.asarray(w, dtype=np.int64)
    sums = np.zeros((*out_hw, w.shape[2]), dtype=np.int64)
    for ky, kx, patch in _padded_windows(np.asarray(x), w.shape[:2], padding, stride, out_hw):
        sums += patch * w[ky, kx]
    return finish(sums, bias, bias_shift, out_shift, 8, truncate)


def fully_connected(v: np.ndarray, w: np.ndarray, bias: Optional[np.ndarray], *, bias_shift: int, out_shift: int,
                    out_bits: int, truncate: bool = False) -> np.ndarray:
    """out[r] from the row-major matrix w [rows][cols] and the vector v [cols]."""
    sums = np.asarray(w, dtype=np.int64) @ np.asarray(v, dtype=np.int64)
    return finish(sums, bias, bias_shift, out_shift, out_bits, truncate)


# ---------------------------------------------------------------------------------------------------------------
# Pooling and relu
# ---------------------------------------------------------------------------------------------------------------

def pool(kind: str, x: np.ndarray, *, kernel: int, padding: int, stride: int, dim_out: int) -> np.ndarray:
    """Square HWC max ("max") or truncated average ("avg") pooling of q7 values; empty windows give 0."""
    x = np.asarray(x, dtype=np.int64)
    dim_in = x.shape[0]
    out = np.zeros((dim_out, dim_out, x.shape[2]), dtype=np.int64)
    for oy in range(dim_out):
        for ox in range(dim_out):
            y0, x0 = oy * stride - padding, ox * stride - padding
            window = x[max(y0, 0):min(y0 + kernel, dim_in), max(x0, 0):min(x0 + kernel, dim_in)]
            count = window.shape[0] * window.shape[1]
            if count == 0:
                continue
            if kind == "max":
                out[oy, ox] = window.max(axis=(0, 1))
            else:
                total = window.sum(axis=(0, 1))
                out[oy, ox] = np.sign(total) * (np.abs(total) // count)  # C division truncates toward zero
    return out.astype(np.int8)


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0).astype(np.asarray(x).dtype)


# ---------------------------------------------------------------------------------------------------------------
# Softmax (base 2)
# ---------------------------------------------------------------------------------------------------------------

def _usat(x: np.ndarray, bits: int) -> np.ndarray:
    return np.clip(x, 0, (1 << bits) - 1)


def softmax_q7(x: np.ndarray) -> np.ndarray:
    """Rows of the last axis: sum counts every element (at least 2^0), output Q0.7."""
    x = np.asarray(x, dtype=np.int64)
    base = x.max(axis=-1, keepdims=True) - 8
    total = (np.int64(1) << _usat(x - base, 3)).sum(axis=-1, keepdims=True)
    one_over = (1 << 20) // total
    return saturate(one_over >> _usat(13 + base - x, 5), 8).astype(np.int8)


def softmax_q15(x: np.ndarray) -> np.ndarray:
    """Rows of the last axis: only elements above max - 16 count and get a non-zero output, output Q0.15."""
    x = np.asarray(x, dtype=np.int64)
    base = x.max(axis=-1, keepdims=True) - 16
    above = x > base
    total = np.where(above, np.int64(1) << _usat(x - base, 5), 0).sum(axis=-1, keepdims=True)
    one_over = wrap32(INT32_SPAN // total)
    return np.where(above, saturate(one_over >> _usat(17 + base - x, 5), 16), 0).astype(np.int16)


# ---------------------------------------------------------------------------------------------------------------
# Sigmoid / tanh tables and the direct activations
# ---------------------------------------------------------------------------------------------------------------

FUNCTIONS = {"sigmoid": lambda v: 1.0 / (1.0 + math.exp(-v)), "tanh": math.tanh}


def activation_table(kind: str, bits: int) -> np.ndarray:
    """256 entries: entry i = saturate(floor(f(s / 16) * 2^bits + 0.5)) with s the byte i read as signed."""
    f = FUNCTIONS[kind]
    values = [math.floor(f((i - 256 if i >= 128 else i) / 16.0) * (1 << bits) + 0.5) for i in range(256)]
    return saturate(np.array(values, dtype=np.int64), bits + 1).astype(dtype_for(bits + 1))


def activations_direct_q7(x: np.ndarray, int_width: int, kind: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.int64)
    if int_width <= 3:
        index = (x >> (3 - int_width)) & 0xFF
    else:  # undefined in Arm's code; the portable library saturates
        index = saturate(x << min(int_width - 3, 8), 8) & 0xFF
    return activation_table(kind, 7)[index]


def activations_direct_q15(x: np.ndarray, int_width: int, kind: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.int64)
    table = activation_table(kind, 15).astype(np.int64)
    if int_width > 11:  # undefined in Arm's code; the portable library saturates
        return table[saturate(x << min(int_width - 11, 8), 8) & 0xFF].astype(np.int16)
    shift = 11 - int_width
    index = (x >> shift) & 0xFF
    frac = x & ((1 << shift) - 1)
    interpolated = (((1 << shift) - frac) * table[index] + frac * table[(index + 1) & 0xFF]) >> shift
    return np.where(index == 0x7F, table[index], interpolated).astype(np.int16)


def tables_c_source() -> str:
    """The C file defining the four activation tables."""
    lines = [
        "/* SPDX-License-Identifier: Apache-2.0 */",
        "/* Part of nnscons; written from the published CMSIS-NN API, not derived from its source. */",
        "",
        "/*",
        " * Sigmoid and tanh tables of the legacy direct activations. Generated by `python tests/legacy_model.py`:",
        " * entry i = saturate(floor(f(s / 16) * 2^B + 0.5)) with s = (int8_t)i, B = 7 (q7) or 15 (q15).",
        " */",
        '#include "arm_nn_legacy_support.h"',
    ]
    for kind in ("sigmoid", "tanh"):
        for bits, ctype in ((7, "q7_t"), (15, "q15_t")):
            table = activation_table(kind, bits)
            lines += ["", f"const {ctype} {kind}Table_q{bits}[256] = {{"]
            per_line = 16 if bits == 7 else 12
            for start in range(0, 256, per_line):
                chunk = ", ".join(str(int(v)) for v in table[start:start + per_line])
                lines.append(f"    {chunk}{',' if start + per_line < 256 else ''}")
            lines.append("};")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(tables_c_source(), end="")
