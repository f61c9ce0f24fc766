# SPDX-License-Identifier: Apache-2.0
# Part of nnscons; written from the published CMSIS-NN API, not derived from its source.
"""Host harness for the project's portable CMSIS-NN library (``cmsis/``): build it as a shared library and call
its kernels from Python through ctypes.

The library is compiled once per set of sources (keyed by a hash of every source and header and the flags) into
``build/test-cache/``, with the same strict warning flags the firmware builds use. The ctypes structures mirror
``arm_nn_types.h`` field by field (same order, same types). On top of the raw functions, the ``*_s8``/``*_s16``
helpers take numpy arrays in TFLite layouts and return ``(status, output)``.

Also here, because tests need them to derive kernel parameters "the TFLite way":
:func:`quantize_multiplier` (TFLite's QuantizeMultiplier) and :func:`softmax_s16_luts` (the two 513-entry
int16 softmax tables, built as TFLite Micro builds them at prepare time).
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import math
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from nnscons.kernel_build import kernel_build

ROOT = Path(__file__).resolve().parents[1]
KERNELS = kernel_build(ROOT / "cmsis")
CMSIS_DIR = KERNELS.root
CACHE_DIR = ROOT / "build" / "test-cache"
COMPILER = os.environ.get("CC", "gcc")
WARNING_FLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic")
BUILD_FLAGS = ("-O1", "-fPIC", "-shared")

Pair = tuple[int, int]  # (h, w): note cmsis_nn_tile stores w first


# ---------------------------------------------------------------------------------------------------------------
# Building and loading
# ---------------------------------------------------------------------------------------------------------------

def library_sources() -> list[Path]:
    """Every C source of the library, sorted (Source/<Group>/<function>.c), as the one kernel build description
    (nnscons.kernel_build) lists them for every build."""
    return list(KERNELS.sources)


def _sources_key(flags: Sequence[str]) -> str:
    digest = hashlib.sha256()
    files = library_sources() + sorted(h for d in KERNELS.include_dirs for h in d.glob("*.h"))
    for path in files:
        digest.update(str(path.relative_to(CMSIS_DIR)).encode())
        digest.update(path.read_bytes())
    digest.update(" ".join((COMPILER, *flags)).encode())
    return digest.hexdigest()[:16]


def build_library(defines: Sequence[str] = ()) -> Path:
    """Compile the library into a shared object (once per source hash) and return its path."""
    flags = (*WARNING_FLAGS, *BUILD_FLAGS, *(f"-D{d}" for d in defines))
    target = CACHE_DIR / f"libcmsisnn-{_sources_key(flags)}.so"
    if target.exists():
        return target
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(suffix=".so", dir=CACHE_DIR)
    os.close(fd)
    command = [COMPILER, *flags, *(f"-I{d}" for d in KERNELS.include_dirs), *map(str, library_sources()), "-o",
               tmp_name]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        os.unlink(tmp_name)
        raise RuntimeError(f"building the CMSIS-NN library failed:\n{result.stderr}")
    os.replace(tmp_name, target)  # a killed build never leaves a truncated library behind
    return target


# ---------------------------------------------------------------------------------------------------------------
# ctypes mirrors of arm_nn_types.h (field order matters)
# ---------------------------------------------------------------------------------------------------------------

c_int8_p = ctypes.POINTER(ctypes.c_int8)
c_int16_p = ctypes.POINTER(ctypes.c_int16)
c_int32_p = ctypes.POINTER(ctypes.c_int32)
c_int64_p = ctypes.POINTER(ctypes.c_int64)


class Tile(ctypes.Structure):
    _fields_ = [("w", ctypes.c_int32), ("h", ctypes.c_int32)]


class Context(ctypes.Structure):
    _fields_ = [("buf", ctypes.c_void_p), ("size", ctypes.c_int32)]


class Dims(ctypes.Structure):
    _fields_ = [("n", ctypes.c_int32), ("h", ctypes.c_int32), ("w", ctypes.c_int32), ("c", ctypes.c_int32)]


class Activation(ctypes.Structure):
    _fields_ = [("min", ctypes.c_int32), ("max", ctypes.c_int32)]


class PerChannelQuantParams(ctypes.Structure):
    _fields_ = [("multiplier", c_int32_p), ("shift", c_int32_p)]


class PerTensorQuantParams(ctypes.Structure):
    _fields_ = [("multiplier", ctypes.c_int32), ("shift", ctypes.c_int32)]


class ConvParams(ctypes.Structure):
    _fields_ = [("input_offset", ctypes.c_int32), ("output_offset", ctypes.c_int32), ("stride", Tile),
                ("padding", Tile), ("dilation", Tile), ("activation", Activation)]


class DwConvParams(ctypes.Structure):
    _fields_ = [("input_offset", ctypes.c_int32), ("output_offset", ctypes.c_int32), ("ch_mult", ctypes.c_int32),
                ("stride", Tile), ("padding", Tile), ("dilation", Tile), ("activation", Activation)]


class PoolParams(ctypes.Structure):
    _fields_ = [("stride", Tile), ("padding", Tile), ("activation", Activation)]


class FcParams(ctypes.Structure):
    _fields_ = [("input_offset", ctypes.c_int32), ("filter_offset", ctypes.c_int32),
                ("output_offset", ctypes.c_int32), ("activation", Activation)]


class SoftmaxLutS16(ctypes.Structure):
    _fields_ = [("exp_lut", c_int16_p), ("one_by_one_lut", c_int16_p)]


class BiasData(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("is_int32_bias", ctypes.c_bool)]


P = ctypes.POINTER
_STATUS = ctypes.c_int  # arm_cmsis_nn_status
_CONV_ARGS = [P(Context), P(ConvParams), P(PerChannelQuantParams), P(Dims), c_int8_p, P(Dims), c_int8_p, P(Dims),
              c_int32_p, P(Dims), c_int8_p]
_CONV_S16_ARGS = [P(Context), P(ConvParams), P(PerChannelQuantParams), P(Dims), c_int16_p, P(Dims), c_int8_p,
                  P(Dims), P(BiasData), P(Dims), c_int16_p]
_DW_ARGS = [P(Context), P(DwConvParams), P(PerChannelQuantParams), P(Dims), c_int8_p, P(Dims), c_int8_p, P(Dims),
            c_int32_p, P(Dims), c_int8_p]
_DW_S16_ARGS = [P(Context), P(DwConvParams), P(PerChannelQuantParams), P(Dims), c_int16_p, P(Dims), c_int8_p,
                P(Dims), c_int64_p, P(Dims), c_int16_p]
_CONV_SIZE_ARGS = [P(ConvParams), P(Dims), P(Dims), P(Dims)]
_DW_SIZE_ARGS = [P(DwConvParams), P(Dims), P(Dims), P(Dims)]
_I32 = ctypes.c_int32
_ADD_ARGS_TAIL = [_I32, _I32, _I32, _I32, _I32, _I32, _I32]

PROTOTYPES: dict[str, tuple[object, list]] = {
    "arm_convolve_wrapper_s8": (_STATUS, _CONV_ARGS),
    "arm_convolve_s8": (_STATUS, _CONV_ARGS[:9] + [P(Dims)] + _CONV_ARGS[9:]),
    "arm_convolve_1x1_s8_fast": (_STATUS, _CONV_ARGS),
    "arm_convolve_1x1_s8": (_STATUS, _CONV_ARGS),
    "arm_convolve_1_x_n_s8": (_STATUS, _CONV_ARGS),
    "arm_convolve_wrapper_s8_get_buffer_size": (_I32, _CONV_SIZE_ARGS),
    "arm_convolve_wrapper_s8_get_buffer_size_dsp": (_I32, _CONV_SIZE_ARGS),
    "arm_convolve_wrapper_s8_get_buffer_size_mve": (_I32, _CONV_SIZE_ARGS),
    "arm_convolve_s8_get_buffer_size": (_I32, [P(Dims), P(Dims)]),
    "arm_convolve_1x1_s8_fast_get_buffer_size": (_I32, [P(Dims)]),
    "arm_convolve_1_x_n_s8_get_buffer_size": (_I32, _CONV_SIZE_ARGS),
    "arm_convolve_wrapper_s16": (_STATUS, _CONV_S16_ARGS),
    "arm_convolve_s16": (_STATUS, _CONV_S16_ARGS),
    "arm_convolve_wrapper_s16_get_buffer_size": (_I32, _CONV_SIZE_ARGS),
    "arm_convolve_wrapper_s16_get_buffer_size_dsp": (_I32, _CONV_SIZE_ARGS),
    "arm_convolve_wrapper_s16_get_buffer_size_mve": (_I32, _CONV_SIZE_ARGS),
    "arm_convolve_s16_get_buffer_size": (_I32, [P(Dims), P(Dims)]),
    "arm_depthwise_conv_wrapper_s8": (_STATUS, _DW_ARGS),
    "arm_depthwise_conv_s8": (_STATUS, _DW_ARGS),
    "arm_depthwise_conv_s8_opt": (_STATUS, _DW_ARGS),
    "arm_depthwise_conv_3x3_s8": (_STATUS, _DW_ARGS),
    "arm_depthwise_conv_wrapper_s8_get_buffer_size": (_I32, _DW_SIZE_ARGS),
    "arm_depthwise_conv_wrapper_s8_get_buffer_size_dsp": (_I32, _DW_SIZE_ARGS),
    "arm_depthwise_conv_wrapper_s8_get_buffer_size_mve": (_I32, _DW_SIZE_ARGS),
    "arm_depthwise_conv_s8_opt_get_buffer_size": (_I32, [P(Dims), P(Dims)]),
    "arm_depthwise_conv_wrapper_s16": (_STATUS, _DW_S16_ARGS),
    "arm_depthwise_conv_s16": (_STATUS, _DW_S16_ARGS),
    "arm_depthwise_conv_wrapper_s16_get_buffer_size": (_I32, _DW_SIZE_ARGS),
    "arm_depthwise_conv_wrapper_s16_get_buffer_size_dsp": (_I32, _DW_SIZE_ARGS),
    "arm_depthwise_conv_wrapper_s16_get_buffer_size_mve": (_I32, _DW_SIZE_ARGS),
    "arm_fully_connected_s8": (_STATUS, [P(Context), P(FcParams), P(PerTensorQuantParams), P(Dims), c_int8_p,
                                         P(Dims), c_int8_p, P(Dims), c_int32_p, P(Dims), c_int8_p]),
    "arm_fully_connected_s16": (_STATUS, [P(Context), P(FcParams), P(PerTensorQuantParams), P(Dims), c_int16_p,
                                          P(Dims), c_int8_p, P(Dims), c_int64_p, P(Dims), c_int16_p]),
    "arm_fully_connected_s8_get_buffer_size": (_I32, [P(Dims)]),
    "arm_fully_connected_s8_get_buffer_size_dsp": (_I32, [P(Dims)]),
    "arm_fully_connected_s8_get_buffer_size_mve": (_I32, [P(Dims)]),
    "arm_fully_connected_s16_get_buffer_size": (_I32, [P(Dims)]),
    "arm_fully_connected_s16_get_buffer_size_dsp": (_I32, [P(Dims)]),
    "arm_fully_connected_s16_get_buffer_size_mve": (_I32, [P(Dims)]),
    "arm_vector_sum_s8": (_STATUS, [c_int32_p, _I32, _I32, c_int8_p, _I32, _I32, c_int32_p]),
    "arm_avgpool_s8": (_STATUS, [P(Context), P(PoolParams), P(Dims), c_int8_p, P(Dims), P(Dims), c_int8_p]),
    "arm_max_pool_s8": (_STATUS, [P(Context), P(PoolParams), P(Dims), c_int8_p, P(Dims), P(Dims), c_int8_p]),
    "arm_avgpool_s16": (_STATUS, [P(Context), P(PoolParams), P(Dims), c_int16_p, P(Dims), P(Dims), c_int16_p]),
    "arm_max_pool_s16": (_STATUS, [P(Context), P(PoolParams), P(Dims), c_int16_p, P(Dims), P(Dims), c_int16_p]),
    "arm_avgpool_s8_get_buffer_size": (_I32, [ctypes.c_int, ctypes.c_int]),
    "arm_avgpool_s8_get_buffer_size_dsp": (_I32, [ctypes.c_int, ctypes.c_int]),
    "arm_avgpool_s8_get_buffer_size_mve": (_I32, [ctypes.c_int, ctypes.c_int]),
    "arm_avgpool_s16_get_buffer_size": (_I32, [ctypes.c_int, ctypes.c_int]),
    "arm_avgpool_s16_get_buffer_size_dsp": (_I32, [ctypes.c_int, ctypes.c_int]),
    "arm_avgpool_s16_get_buffer_size_mve": (_I32, [ctypes.c_int, ctypes.c_int]),
    "arm_softmax_s8": (None, [c_int8_p, _I32, _I32, _I32, _I32, _I32, c_int8_p]),
    "arm_softmax_s16": (_STATUS, [c_int16_p, _I32, _I32, _I32, _I32, P(SoftmaxLutS16), c_int16_p]),
    "arm_elementwise_add_s8": (_STATUS, [c_int8_p, c_int8_p, _I32, _I32, _I32, _I32, _I32, _I32, _I32, c_int8_p]
                               + _ADD_ARGS_TAIL[:6]),
    "arm_elementwise_add_s16": (_STATUS, [c_int16_p, c_int16_p, _I32, _I32, _I32, _I32, _I32, _I32, _I32,
                                          c_int16_p] + _ADD_ARGS_TAIL[:6]),
    "arm_elementwise_mul_s8": (_STATUS, [c_int8_p, c_int8_p, _I32, _I32, c_int8_p, _I32, _I32, _I32, _I32, _I32,
                                         _I32]),
    "arm_elementwise_mul_s16": (_STATUS, [c_int16_p, c_int16_p, _I32, _I32, c_int16_p, _I32, _I32, _I32, _I32,
                                          _I32, _I32]),
    "arm_relu_q7": (None, [c_int8_p, ctypes.c_uint16]),
    "arm_relu6_s8": (None, [c_int8_p, ctypes.c_uint16]),
    "arm_relu_q15": (None, [c_int16_p, ctypes.c_uint16]),
    "arm_reshape_s8": (None, [c_int8_p, c_int8_p, ctypes.c_uint32]),
    "arm_concatenation_s8_x": (None, [c_int8_p] + [ctypes.c_uint16] * 4 + [c_int8_p, ctypes.c_uint16,
                                                                           ctypes.c_uint32]),
    "arm_concatenation_s8_y": (None, [c_int8_p] + [ctypes.c_uint16] * 4 + [c_int8_p, ctypes.c_uint16,
                                                                           ctypes.c_uint32]),
    "arm_concatenation_s8_z": (None, [c_int8_p] + [ctypes.c_uint16] * 4 + [c_int8_p, ctypes.c_uint16,
                                                                           ctypes.c_uint32]),
    "arm_concatenation_s8_w": (None, [c_int8_p] + [ctypes.c_uint16] * 4 + [c_int8_p, ctypes.c_uint32]),
}


@functools.lru_cache(maxsize=None)
def load_library(defines: tuple[str, ...] = ()) -> ctypes.CDLL:
    """The compiled library with argument and return types declared for every wrapped function."""
    lib = ctypes.CDLL(str(build_library(defines)))
    for name, (restype, argtypes) in PROTOTYPES.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes
    return lib


# ---------------------------------------------------------------------------------------------------------------
# The generated network's descriptor (<name>_info in <name>.h), for tests that load a generated model with ctypes
# ---------------------------------------------------------------------------------------------------------------
class IoInfo(ctypes.Structure):
    _fields_ = [("element_size", ctypes.c_uint8), ("is_signed", ctypes.c_uint8), ("rank", ctypes.c_uint8),
                ("shape", ctypes.c_int32 * 6), ("size", ctypes.c_uint32), ("scale", ctypes.c_float),
                ("zero_point", ctypes.c_int32)]


INVOKE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_void_p))


class ModelInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("hash", ctypes.c_char_p), ("arena_size", ctypes.c_uint32),
                ("n_inputs", ctypes.c_uint8), ("n_outputs", ctypes.c_uint8), ("inputs", ctypes.POINTER(IoInfo)),
                ("outputs", ctypes.POINTER(IoInfo)), ("invoke", INVOKE), ("reset", ctypes.CFUNCTYPE(None))]


def io_dtype(info: IoInfo) -> np.dtype:
    return np.dtype({1: np.int8, 2: np.int16, 4: np.int32}[info.element_size])


# ---------------------------------------------------------------------------------------------------------------
# Small constructors
# ---------------------------------------------------------------------------------------------------------------

def ptr(array: Optional[np.ndarray], ctype: type) -> object:
    """A typed pointer to a C-contiguous numpy array (None -> NULL); the caller keeps the array alive."""
    if array is None:
        return None
    assert array.flags["C_CONTIGUOUS"], "arrays passed to C must be contiguous"
    return array.ctypes.data_as(ctypes.POINTER(ctype))


def dims(n: int, h: int, w: int, c: int) -> Dims:
    return Dims(int(n), int(h), int(w), int(c))


def tile(hw: Pair) -> Tile:
    """A cmsis_nn_tile from an (h, w) pair (the struct stores w first)."""
    return Tile(w=int(hw[1]), h=int(hw[0]))


class Scratch:
    """A cmsis_nn_context owning a scratch buffer of `size` bytes (buf = NULL when size is 0, as generated
    code does)."""

    def __init__(self, size: int) -> None:
        self.array = np.zeros(max(int(size), 0), dtype=np.uint8)
        self.context = Context(self.array.ctypes.data if size > 0 else None, int(size))


def per_channel(multipliers: Sequence[int], shifts: Sequence[int]) -> tuple[PerChannelQuantParams, tuple]:
    """Per-channel quant params plus the arrays that must outlive the call."""
    m = np.ascontiguousarray(multipliers, dtype=np.int32)
    s = np.ascontiguousarray(shifts, dtype=np.int32)
    return PerChannelQuantParams(ptr(m, ctypes.c_int32), ptr(s, ctypes.c_int32)), (m, s)


# ---------------------------------------------------------------------------------------------------------------
# Kernel helpers: numpy in (TFLite layouts), (status, numpy out)
# ---------------------------------------------------------------------------------------------------------------

def conv_s8(x: np.ndarray, w: np.ndarray, bias: Optional[np.ndarray], out_hw: Pair, *, input_offset: int,
            output_offset: int, multipliers: Sequence[int], shifts: Sequence[int], stride: Pair = (1, 1),
            padding: Pair = (0, 0), dilation: Pair = (1, 1), act: Pair = (-128, 127),
            function: str = "arm_convolve_wrapper_s8", buffer_size: Optional[int] = None) -> tuple[int, np.ndarray]:
    """s8 convolution: x NHWC int8, w OHWI int8, bias int32 [C_OUT]. Scratch sized with the wrapper getter
    unless buffer_size is given."""
    lib = load_library()
    x = np.ascontiguousarray(x, dtype=np.int8)
    w = np.ascontiguousarray(w, dtype=np.int8)
    b = None if bias is None else np.ascontiguousarray(bias, dtype=np.int32)
    n, out_c = x.shape[0], w.shape[0]
    out = np.zeros((n, out_hw[0], out_hw[1], out_c), dtype=np.int8)
    params = ConvParams(input_offset, output_offset, tile(stride), tile(padding), tile(dilation), Activation(*act))
    quant, keep = per_channel(multipliers, shifts)
    in_d, f_d, b_d, o_d = dims(*x.shape), dims(*w.shape), dims(1, 1, 1, out_c), dims(*out.shape)
    if buffer_size is None:
        buffer_size = lib.arm_convolve_wrapper_s8_get_buffer_size(params, in_d, f_d, o_d)
    scratch = Scratch(buffer_size)
    args = [ctypes.byref(scratch.context), params, quant, in_d, ptr(x, ctypes.c_int8), f_d, ptr(w, ctypes.c_int8),
            b_d, ptr(b, ctypes.c_int32)]
    if function == "arm_convolve_s8":
        args.append(None)  # upscale_dims (v7.0.0)
    status = getattr(lib, function)(*args, o_d, ptr(out, ctypes.c_int8))
    del keep
    return status, out


def conv_s16(x: np.ndarray, w: np.ndarray, bias: Optional[np.ndarray], out_hw: Pair, *,
             multipliers: Sequence[int], shifts: Sequence[int], stride: Pair = (1, 1), padding: Pair = (0, 0),
             dilation: Pair = (1, 1), act: Pair = (-32768, 32767),
             function: str = "arm_convolve_wrapper_s16") -> tuple[int, np.ndarray]:
    """s16 convolution: x NHWC int16, w OHWI int8, bias int64 or int32 [C_OUT] (its dtype picks the type)."""
    lib = load_library()
    x = np.ascontiguousarray(x, dtype=np.int16)
    w = np.ascontiguousarray(w, dtype=np.int8)
    n, out_c = x.shape[0], w.shape[0]
    out = np.zeros((n, out_hw[0], out_hw[1], out_c), dtype=np.int16)
    params = ConvParams(0, 0, tile(stride), tile(padding), tile(dilation), Activation(*act))
    quant, keep = per_channel(multipliers, shifts)
    b = None if bias is None else np.ascontiguousarray(bias)
    bias_data = BiasData(None if b is None else b.ctypes.data, b is not None and b.dtype == np.int32)
    in_d, f_d, b_d, o_d = dims(*x.shape), dims(*w.shape), dims(1, 1, 1, out_c), dims(*out.shape)
    scratch = Scratch(lib.arm_convolve_wrapper_s16_get_buffer_size(params, in_d, f_d, o_d))
    status = getattr(lib, function)(ctypes.byref(scratch.context), params, quant, in_d, ptr(x, ctypes.c_int16),
                                    f_d, ptr(w, ctypes.c_int8), b_d, ctypes.byref(bias_data), o_d,
                                    ptr(out, ctypes.c_int16))
    del keep
    return status, out


def depthwise_s8(x: np.ndarray, w: np.ndarray, bias: Optional[np.ndarray], out_hw: Pair, *, ch_mult: int,
                 input_offset: int, output_offset: int, multipliers: Sequence[int], shifts: Sequence[int],
                 stride: Pair = (1, 1), padding: Pair = (0, 0), dilation: Pair = (1, 1), act: Pair = (-128, 127),
                 function: str = "arm_depthwise_conv_wrapper_s8") -> tuple[int, np.ndarray]:
    """s8 depthwise convolution: x NHWC int8, w [1, KH, KW, C_OUT] int8, bias int32 [C_OUT]."""
    lib = load_library()
    x = np.ascontiguousarray(x, dtype=np.int8)
    w = np.ascontiguousarray(w, dtype=np.int8)
    b = None if bias is None else np.ascontiguousarray(bias, dtype=np.int32)
    n, out_c = x.shape[0], w.shape[3]
    out = np.zeros((n, out_hw[0], out_hw[1], out_c), dtype=np.int8)
    params = DwConvParams(input_offset, output_offset, ch_mult, tile(stride), tile(padding), tile(dilation),
                          Activation(*act))
    quant, keep = per_channel(multipliers, shifts)
    in_d, f_d, b_d, o_d = dims(*x.shape), dims(*w.shape), dims(1, 1, 1, out_c), dims(*out.shape)
    scratch = Scratch(lib.arm_depthwise_conv_wrapper_s8_get_buffer_size(params, in_d, f_d, o_d))
    status = getattr(lib, function)(ctypes.byref(scratch.context), params, quant, in_d, ptr(x, ctypes.c_int8),
                                    f_d, ptr(w, ctypes.c_int8), b_d, ptr(b, ctypes.c_int32), o_d,
                                    ptr(out, ctypes.c_int8))
    del keep
    return status, out


def depthwise_s16(x: np.ndarray, w: np.ndarray, bias: Optional[np.ndarray], out_hw: Pair, *, ch_mult: int,
                  multipliers: Sequence[int], shifts: Sequence[int], stride: Pair = (1, 1), padding: Pair = (0, 0),
                  dilation: Pair = (1, 1), act: Pair = (-32768, 32767),
                  function: str = "arm_depthwise_conv_wrapper_s16") -> tuple[int, np.ndarray]:
    """s16 depthwise convolution: x NHWC int16, w [1, KH, KW, C_OUT] int8, bias int64 [C_OUT]."""
    lib = load_library()
    x = np.ascontiguousarray(x, dtype=np.int16)
    w = np.ascontiguousarray(w, dtype=np.int8)
    b = None if bias is None else np.ascontiguousarray(bias, dtype=np.int64)
    n, out_c = x.shape[0], w.shape[3]
    out = np.zeros((n, out_hw[0], out_hw[1], out_c), dtype=np.int16)
    params = DwConvParams(0, 0, ch_mult, tile(stride), tile(padding), tile(dilation), Activation(*act))
    quant, keep = per_channel(multipliers, shifts)
    in_d, f_d, b_d, o_d = dims(*x.shape), dims(*w.shape), dims(1, 1, 1, out_c), dims(*out.shape)
    scratch = Scratch(lib.arm_depthwise_conv_wrapper_s16_get_buffer_size(params, in_d, f_d, o_d))
    status = getattr(lib, function)(ctypes.byref(scratch.context), params, quant, in_d, ptr(x, ctypes.c_int16),
                                    f_d, ptr(w, ctypes.c_int8), b_d, ptr(b, ctypes.c_int64), o_d,
                                    ptr(out, ctypes.c_int16))
    del keep
    return status, out


def fully_connected(x: np.ndarray, w: np.ndarray, bias: Optional[np.ndarray], *, multiplier: int, shift: int,
                    input_offset: int = 0, filter_offset: int = 0, output_offset: int = 0,
                    act: Optional[Pair] = None) -> tuple[int, np.ndarray]:
    """s8 or s16 fully connected (picked by x's dtype): x [N, C_IN], w [C_OUT, C_IN] int8, bias int32/int64."""
    lib = load_library()
    is_s16 = np.asarray(x).dtype == np.int16
    ctype, dtype = (ctypes.c_int16, np.int16) if is_s16 else (ctypes.c_int8, np.int8)
    x = np.ascontiguousarray(x, dtype=dtype)
    w = np.ascontiguousarray(w, dtype=np.int8)
    bias_type, bias_ctype = (np.int64, ctypes.c_int64) if is_s16 else (np.int32, ctypes.c_int32)
    b = None if bias is None else np.ascontiguousarray(bias, dtype=bias_type)
    batches, depth = x.shape
    out_c = w.shape[0]
    info = np.iinfo(dtype)
    act = act if act is not None else (int(info.min), int(info.max))
    out = np.zeros((batches, out_c), dtype=dtype)
    params = FcParams(input_offset, filter_offset, output_offset, Activation(*act))
    f_d = dims(depth, 1, 1, out_c)
    getter = "arm_fully_connected_s16_get_buffer_size" if is_s16 else "arm_fully_connected_s8_get_buffer_size"
    scratch = Scratch(getattr(lib, getter)(f_d))
    function = lib.arm_fully_connected_s16 if is_s16 else lib.arm_fully_connected_s8
    status = function(ctypes.byref(scratch.context), params, PerTensorQuantParams(multiplier, shift),
                      dims(batches, 1, 1, depth), ptr(x, ctype), f_d, ptr(w, ctypes.c_int8), dims(1, 1, 1, out_c),
                      ptr(b, bias_ctype), dims(batches, 1, 1, out_c), ptr(out, ctype))
    return status, out


def pool(kind: str, x: np.ndarray, filter_hw: Pair, out_hw: Pair, *, stride: Pair, padding: Pair,
         act: Optional[Pair] = None) -> tuple[int, np.ndarray]:
    """avg or max pooling (kind "avg"/"max") of an NHWC int8 or int16 tensor."""
    lib = load_library()
    is_s16 = np.asarray(x).dtype == np.int16
    ctype, dtype, suffix = (ctypes.c_int16, np.int16, "s16") if is_s16 else (ctypes.c_int8, np.int8, "s8")
    x = np.ascontiguousarray(x, dtype=dtype)
    info = np.iinfo(dtype)
    act = act if act is not None else (int(info.min), int(info.max))
    n, _, _, c = x.shape
    out = np.zeros((n, out_hw[0], out_hw[1], c), dtype=dtype)
    params = PoolParams(tile(stride), tile(padding), Activation(*act))
    name = {"avg": "arm_avgpool_", "max": "arm_max_pool_"}[kind] + suffix
    size = getattr(lib, f"arm_avgpool_{suffix}_get_buffer_size")(out_hw[1], c) if kind == "avg" else 0
    scratch = Scratch(size)
    status = getattr(lib, name)(ctypes.byref(scratch.context), params, dims(*x.shape), ptr(x, ctype),
                                dims(1, filter_hw[0], filter_hw[1], 1), dims(*out.shape), ptr(out, ctype))
    return status, out


def softmax_s8(x: np.ndarray, *, mult: int, shift: int, diff_min: int) -> np.ndarray:
    """s8 softmax over the last axis of x."""
    x = np.ascontiguousarray(x, dtype=np.int8)
    out = np.zeros_like(x)
    row = x.shape[-1]
    load_library().arm_softmax_s8(ptr(x, ctypes.c_int8), x.size // row, row, mult, shift, diff_min,
                                  ptr(out, ctypes.c_int8))
    return out


def softmax_s16(x: np.ndarray, *, mult: int, shift: int, exp_lut: np.ndarray,
                one_by_one_lut: np.ndarray) -> tuple[int, np.ndarray]:
    """s16 softmax over the last axis of x with the given 513-entry tables."""
    x = np.ascontiguousarray(x, dtype=np.int16)
    exp_lut = np.ascontiguousarray(exp_lut, dtype=np.int16)
    one_by_one_lut = np.ascontiguousarray(one_by_one_lut, dtype=np.int16)
    out = np.zeros_like(x)
    row = x.shape[-1]
    luts = SoftmaxLutS16(ptr(exp_lut, ctypes.c_int16), ptr(one_by_one_lut, ctypes.c_int16))
    status = load_library().arm_softmax_s16(ptr(x, ctypes.c_int16), x.size // row, row, mult, shift,
                                            ctypes.byref(luts), ptr(out, ctypes.c_int16))
    return status, out


def elementwise_add(a: np.ndarray, b: np.ndarray, *, input_1_offset: int, input_1_mult: int, input_1_shift: int,
                    input_2_offset: int, input_2_mult: int, input_2_shift: int, left_shift: int, out_offset: int,
                    out_mult: int, out_shift: int, act: Pair) -> tuple[int, np.ndarray]:
    """arm_elementwise_add_s8 / _s16 (picked by dtype) over same-shaped tensors."""
    is_s16 = np.asarray(a).dtype == np.int16
    ctype, dtype = (ctypes.c_int16, np.int16) if is_s16 else (ctypes.c_int8, np.int8)
    a = np.ascontiguousarray(a, dtype=dtype)
    b = np.ascontiguousarray(b, dtype=dtype)
    out = np.zeros_like(a)
    function = getattr(load_library(), "arm_elementwise_add_" + ("s16" if is_s16 else "s8"))
    status = function(ptr(a, ctype), ptr(b, ctype), input_1_offset, input_1_mult, input_1_shift, input_2_offset,
                      input_2_mult, input_2_shift, left_shift, ptr(out, ctype), out_offset, out_mult, out_shift,
                      act[0], act[1], a.size)
    return status, out


def elementwise_mul(a: np.ndarray, b: np.ndarray, *, input_1_offset: int, input_2_offset: int, out_offset: int,
                    out_mult: int, out_shift: int, act: Pair) -> tuple[int, np.ndarray]:
    """arm_elementwise_mul_s8 / _s16 (picked by dtype) over same-shaped tensors."""
    is_s16 = np.asarray(a).dtype == np.int16
    ctype, dtype = (ctypes.c_int16, np.int16) if is_s16 else (ctypes.c_int8, np.int8)
    a = np.ascontiguousarray(a, dtype=dtype)
    b = np.ascontiguousarray(b, dtype=dtype)
    out = np.zeros_like(a)
    function = getattr(load_library(), "arm_elementwise_mul_" + ("s16" if is_s16 else "s8"))
    status = function(ptr(a, ctype), ptr(b, ctype), input_1_offset, input_2_offset, ptr(out, ctype), out_offset,
                      out_mult, out_shift, act[0], act[1], a.size)
    return status, out


# ---------------------------------------------------------------------------------------------------------------
# TFLite parameter arithmetic needed by the tests
# ---------------------------------------------------------------------------------------------------------------

def round_half_away(x: float) -> int:
    """Round to nearest, ties away from zero (C's round())."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier: real ~= multiplier * 2^(shift - 31), multiplier in [2^30, 2^31) or 0."""
    if real == 0.0:
        return 0, 0
    fraction, shift = math.frexp(real)
    multiplier = round_half_away(fraction * (1 << 31))
    if multiplier == 1 << 31:
        multiplier //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return multiplier, shift


def _lut_samples(function: Callable[[np.float32], np.float32], lo: float, hi: float) -> np.ndarray:
    """513 int16 entries approximating function on [lo, hi] in Q0.15 (output range [-1, 1) -> int16 range).

    As TFLite Micro builds them (float32 arithmetic): entry i samples x_i = lo + i * step (step = range / 512),
    then moves by half the error that linear interpolation makes at the middle of the segment, so that errors
    are balanced between the ends and the middle; the last entry is the plain sample at hi, kept for the slope.
    """
    f32 = np.float32
    steps = 512
    lo32, hi32 = f32(lo), f32(hi)
    step = (hi32 - lo32) / f32(steps)
    half_step = step / f32(2)
    scale = f32(65536) / (f32(1) - f32(-1))  # int16 codes per unit of output

    def q(value: np.float32) -> np.float32:
        return f32(round_half_away(float(value)))

    table = np.zeros(steps + 1, dtype=np.int16)
    for i in range(steps):
        x = lo32 + f32(i) * step
        value = function(x)
        mid_value = function(x + half_step)
        next_value = function(lo32 + f32(i + 1) * step)
        sample = q(value * scale)
        mid_interpolated = q((next_value * scale + q(value * scale)) / f32(2))
        mid_exact = q(mid_value * scale)
        bias = q((mid_interpolated - mid_exact) / f32(2))
        table[i] = int(min(max(sample - bias, f32(-32768)), f32(32767)))
    table[steps] = int(min(max(q(function(hi32) * scale), f32(-32768)), f32(32767)))
    return table


def _exp32(x: np.float32) -> np.float32:
    # The correctly rounded float32 exp (what glibc's expf returns).
    return np.float32(math.exp(float(x)))


def _one_over_one_plus_x32(x: np.float32) -> np.float32:
    return np.float32(1) / (np.float32(1) + x)


@functools.lru_cache(maxsize=None)
def softmax_s16_luts() -> tuple[np.ndarray, np.ndarray]:
    """(exp_lut over [-10, 0], one_by_one_lut: 1/(1+x) over [0, 1]) for arm_softmax_s16, 513 int16 each."""
    exp_lut = _lut_samples(_exp32, -10.0, 0.0)
    one_by_one_lut = _lut_samples(_one_over_one_plus_x32, 0.0, 1.0)
    exp_lut.setflags(write=False)
    one_by_one_lut.setflags(write=False)
    return exp_lut, one_by_one_lut


# ---------------------------------------------------------------------------------------------------------------
# Legacy q7/q15 API (arm_nnfunctions_legacy.h, CMSIS_5 5.9.0)
# ---------------------------------------------------------------------------------------------------------------

_U16 = ctypes.c_uint16
GUARD = 16  # sentinel elements after every legacy output, to catch writes past its end
_SENTINEL = 0x5A


def _legacy_conv_args(data: type, square: bool) -> list:
    """(Im_in, geometry..., wt, ch_im_out, kernel/padding/stride..., bias, bias_shift, out_shift, Im_out,
    dim_im_out..., bufferA, bufferB); square functions have one value per geometry argument, the others x and y."""
    data_p = P(data)
    per_axis = 1 if square else 2
    return ([data_p] + [_U16] * per_axis + [_U16, data_p, _U16] + [_U16] * (3 * per_axis)
            + [data_p, _U16, _U16, data_p] + [_U16] * per_axis + [c_int16_p, c_int8_p])


def _legacy_fc_args(vec: type, mat: type, bias: type, out: type) -> list:
    return [P(vec), P(mat), _U16, _U16, _U16, _U16, P(bias), P(out), c_int16_p]


_POOL_ARGS = [c_int8_p, _U16, _U16, _U16, _U16, _U16, _U16, c_int8_p, c_int8_p]
_Q7, _Q15 = ctypes.c_int8, ctypes.c_int16

LEGACY_PROTOTYPES: dict[str, tuple[object, list]] = {
    "arm_convolve_HWC_q7_basic": (_STATUS, _legacy_conv_args(_Q7, True)),
    "arm_convolve_HWC_q7_fast": (_STATUS, _legacy_conv_args(_Q7, True)),
    "arm_convolve_HWC_q7_RGB": (_STATUS, _legacy_conv_args(_Q7, True)),
    "arm_convolve_HWC_q15_basic": (_STATUS, _legacy_conv_args(_Q15, True)),
    "arm_convolve_HWC_q15_fast": (_STATUS, _legacy_conv_args(_Q15, True)),
    "arm_depthwise_separable_conv_HWC_q7": (_STATUS, _legacy_conv_args(_Q7, True)),
    "arm_convolve_HWC_q7_basic_nonsquare": (_STATUS, _legacy_conv_args(_Q7, False)),
    "arm_convolve_HWC_q7_fast_nonsquare": (_STATUS, _legacy_conv_args(_Q7, False)),
    "arm_convolve_1x1_HWC_q7_fast_nonsquare": (_STATUS, _legacy_conv_args(_Q7, False)),
    "arm_convolve_HWC_q15_fast_nonsquare": (_STATUS, _legacy_conv_args(_Q15, False)),
    "arm_depthwise_separable_conv_HWC_q7_nonsquare": (_STATUS, _legacy_conv_args(_Q7, False)),
    "arm_fully_connected_q7": (_STATUS, _legacy_fc_args(_Q7, _Q7, _Q7, _Q7)),
    "arm_fully_connected_q7_opt": (_STATUS, _legacy_fc_args(_Q7, _Q7, _Q7, _Q7)),
    "arm_fully_connected_q15": (_STATUS, _legacy_fc_args(_Q15, _Q15, _Q15, _Q15)),
    "arm_fully_connected_q15_opt": (_STATUS, _legacy_fc_args(_Q15, _Q15, _Q15, _Q15)),
    "arm_fully_connected_mat_q7_vec_q15": (_STATUS, _legacy_fc_args(_Q15, _Q7, _Q7, _Q15)),
    "arm_fully_connected_mat_q7_vec_q15_opt": (_STATUS, _legacy_fc_args(_Q15, _Q7, _Q7, _Q15)),
    "arm_maxpool_q7_HWC": (None, _POOL_ARGS),
    "arm_avepool_q7_HWC": (None, _POOL_ARGS),
    "arm_nn_activations_direct_q7": (None, [c_int8_p, _U16, _U16, ctypes.c_int]),
    "arm_nn_activations_direct_q15": (None, [c_int16_p, _U16, _U16, ctypes.c_int]),
    "arm_softmax_q7": (None, [c_int8_p, _U16, c_int8_p]),
    "arm_softmax_with_batch_q7": (None, [c_int8_p, _U16, _U16, c_int8_p]),
    "arm_softmax_q15": (None, [c_int16_p, _U16, c_int16_p]),
}
ACTIVATION_TYPES = {"sigmoid": 0, "tanh": 1}  # arm_nn_activation_type: ARM_SIGMOID, ARM_TANH


@functools.lru_cache(maxsize=None)
def load_legacy_library(defines: tuple[str, ...] = ()) -> ctypes.CDLL:
    """The compiled library (built with `defines`, e.g. ARM_MATH_DSP or ARM_NN_TRUNCATE) with the legacy
    prototypes declared as well."""
    lib = load_library(defines)
    for name, (restype, argtypes) in LEGACY_PROTOTYPES.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes
    return lib


class GuardedOutput:
    """An output array followed by GUARD sentinel elements; check() fails if a kernel wrote past the end."""

    def __init__(self, shape: Sequence[int], dtype: type) -> None:
        self.shape = tuple(int(s) for s in shape)
        size = int(np.prod(self.shape, dtype=np.int64))
        self.storage = np.full(size + GUARD, _SENTINEL, dtype=dtype)
        self.size = size

    def pointer(self, ctype: type) -> object:
        return ptr(self.storage, ctype)

    def result(self) -> np.ndarray:
        """The output (a copy), after checking that the guard is intact."""
        assert (self.storage[self.size:] == _SENTINEL).all(), "kernel wrote past the end of its output"
        return self.storage[:self.size].reshape(self.shape).copy()


def _legacy_scratch(function: str, geometry: object = None, dim_vec: int = 0) -> list[Optional[np.ndarray]]:
    """The scratch arrays of a legacy function, sized by nnscons.codegen.legacy_layouts (None where unused: NULL)."""
    from nnscons.codegen.legacy_layouts import legacy_buffer_sizes
    arrays = []
    for buffer in legacy_buffer_sizes(function, geometry, dim_vec=dim_vec).values():
        dtype = np.int16 if buffer.ctype == "q15_t" else np.int8
        arrays.append(np.zeros(buffer.count, dtype=dtype) if buffer.count else None)
    return arrays


def _legacy_types(function: str) -> tuple[type, type]:
    return (np.int16, ctypes.c_int16) if "q15" in function else (np.int8, ctypes.c_int8)


def legacy_conv(function: str, x: np.ndarray, w: np.ndarray, bias: Optional[np.ndarray], *, bias_shift: int,
                out_shift: int, out_hw: Pair, padding: Pair = (0, 0), stride: Pair = (1, 1),
                defines: tuple[str, ...] = ()) -> tuple[int, np.ndarray]:
    """A legacy convolution or depthwise function on x [H][W][C_IN] (int8 / int16) with w OHWI (conv) or
    [KY][KX][C] (depthwise); pairs are (y, x). Square functions get the y values. Returns (status, output)."""
    from nnscons.codegen.legacy_layouts import SQUARE_CONV, LegacyConvGeometry
    lib = load_legacy_library(defines)
    dtype, ctype = _legacy_types(function)
    x = np.ascontiguousarray(x, dtype=dtype)
    w = np.ascontiguousarray(w, dtype=dtype)
    b = None if bias is None else np.ascontiguousarray(bias, dtype=dtype)
    depthwise = function.startswith("arm_depthwise")
    ch_out = w.shape[2] if depthwise else w.shape[0]
    kernel = w.shape[:2] if depthwise else w.shape[1:3]
    in_h, in_w, ch_in = x.shape
    geometry = LegacyConvGeometry(ch_in, ch_out, (in_h, in_w), tuple(kernel), tuple(padding), tuple(stride),
                                  tuple(out_hw))
    buffer_a, buffer_b = _legacy_scratch(function, geometry)
    out = GuardedOutput((*out_hw, ch_out), dtype)
    if function in SQUARE_CONV:
        middle = [in_h, ch_in, ptr(w, ctype), ch_out, kernel[0], padding[0], stride[0]]
        out_dims = [out_hw[0]]
    else:
        middle = [in_w, in_h, ch_in, ptr(w, ctype), ch_out, kernel[1], kernel[0], padding[1], padding[0],
                  stride[1], stride[0]]
        out_dims = [out_hw[1], out_hw[0]]
    status = getattr(lib, function)(ptr(x, ctype), *middle, ptr(b, ctype), bias_shift, out_shift,
                                    out.pointer(ctype), *out_dims, ptr(buffer_a, ctypes.c_int16),
                                    ptr(buffer_b, ctypes.c_int8))
    return status, out.result()


def legacy_fully_connected(function: str, v: np.ndarray, weights: np.ndarray, bias: Optional[np.ndarray], *,
                           rows: int, bias_shift: int, out_shift: int,
                           defines: tuple[str, ...] = ()) -> tuple[int, np.ndarray]:
    """A legacy FC function; `weights` is passed flat as given (row-major, or interleaved for _opt)."""
    lib = load_legacy_library(defines)
    vec_q15 = "q15" in function
    mat_q15 = "q15" in function and "mat_q7" not in function
    vtype, vctype = (np.int16, ctypes.c_int16) if vec_q15 else (np.int8, ctypes.c_int8)
    mtype, mctype = (np.int16, ctypes.c_int16) if mat_q15 else (np.int8, ctypes.c_int8)
    v = np.ascontiguousarray(v, dtype=vtype).reshape(-1)
    m = np.ascontiguousarray(weights, dtype=mtype).reshape(-1)
    b = None if bias is None else np.ascontiguousarray(bias, dtype=mtype)
    (vec_buffer,) = _legacy_scratch(function, dim_vec=v.size)
    out = GuardedOutput((rows,), vtype)
    status = getattr(lib, function)(ptr(v, vctype), ptr(m, mctype), v.size, rows, bias_shift, out_shift,
                                    ptr(b, mctype), out.pointer(vctype), ptr(vec_buffer, ctypes.c_int16))
    return status, out.result()


def legacy_pool(function: str, x: np.ndarray, *, kernel: int, padding: int, stride: int,
                dim_out: int) -> np.ndarray:
    """arm_maxpool_q7_HWC / arm_avepool_q7_HWC on a square x [D][D][C] int8."""
    from nnscons.codegen.legacy_layouts import LegacyConvGeometry
    lib = load_legacy_library()
    x = np.ascontiguousarray(x, dtype=np.int8)
    dim_in, _, channels = x.shape
    geometry = LegacyConvGeometry(channels, channels, (dim_in, dim_in), (kernel, kernel), (padding, padding),
                                  (stride, stride), (dim_out, dim_out))
    (buffer_a,) = _legacy_scratch(function, geometry)
    out = GuardedOutput((dim_out, dim_out, channels), np.int8)
    getattr(lib, function)(ptr(x, ctypes.c_int8), dim_in, channels, kernel, padding, stride, dim_out,
                           ptr(buffer_a, ctypes.c_int8), out.pointer(ctypes.c_int8))
    return out.result()


def legacy_softmax(function: str, x: np.ndarray) -> np.ndarray:
    """arm_softmax_q7 / arm_softmax_q15 on a vector, arm_softmax_with_batch_q7 on [batches][dim_vec]."""
    lib = load_legacy_library()
    dtype, ctype = _legacy_types(function)
    x = np.ascontiguousarray(x, dtype=dtype)
    out = GuardedOutput(x.shape, dtype)
    if function == "arm_softmax_with_batch_q7":
        lib.arm_softmax_with_batch_q7(ptr(x, ctype), x.shape[0], x.shape[1], out.pointer(ctype))
    else:
        getattr(lib, function)(ptr(x, ctype), x.size, out.pointer(ctype))
    return out.result()


def legacy_activation(function: str, x: np.ndarray, *, int_width: int = 0, kind: str = "sigmoid") -> np.ndarray:
    """An in-place legacy activation (arm_relu_q7/_q15, arm_nn_activations_direct_q7/_q15) on a copy of x."""
    lib = load_legacy_library()
    dtype, ctype = _legacy_types(function)
    data = np.ascontiguousarray(x, dtype=dtype).reshape(-1).copy()
    assert data.size <= 0xFFFF, "size is a uint16_t argument"
    if function.startswith("arm_relu"):
        getattr(lib, function)(ptr(data, ctype), data.size)
    else:
        getattr(lib, function)(ptr(data, ctype), data.size, int_width, ACTIVATION_TYPES[kind])
    return data.reshape(np.shape(x))
