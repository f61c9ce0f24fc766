"""The bundled library's public s8 kernels on the Cortex-M cores (QEMU) against the same library built for the host.

One program, tests/firmware/kernels_main.c, runs about 180 seeded cases (convolutions 1x1 / 1xN / 3x3 / first
layers / dilated / grouped / batched, depthwise 3x3 / 5x5 / multipliers / one input channel, fully connected,
average and max pooling, add, mul, softmax; channel counts around the vector widths, extreme offsets and data,
per-channel multipliers with shifts from -31 to +5, full and relu-like activations, tensors at odd addresses,
each scratch buffer as the build's getter sizes it, with room to spare or NULL) through the public entry points.
Built for the host it runs the plain C paths, the reference (bit-exact with TFLite Micro through
tests/test_cmsis_kernels.py); built for each Cortex-M target it runs the DSP and Helium paths. Every output byte,
the status, and the guard bytes around the outputs and after the scratch buffer must agree. The host build also
runs under AddressSanitizer and UBSan with every tensor in a heap block of its own size; on the cores one tensor
of most cases ends at the last byte of RAM, where on the m55's board a read past it faults.

KERNELS_CMSIS=PATH tests another copy of the library (e.g. a clean copy of HEAD's cmsis/); KERNELS_SEED=N draws
other offsets, data and placements for the same shapes. As a script it measures instead:
``./dev python tests/test_kernels_on_core.py --bench m55 [--cases]`` prints the instructions per MAC (per window
tap for pooling, per output element for add, mul and softmax) per kind of case on that target.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import hashlib
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "site_scons"))       # conftest.py does this under pytest

from nnscons import firmware, kernels, project, targets  # noqa: E402
from nnscons.fixedpoint import quantize_multiplier  # noqa: E402
from nnscons.kernel_build import kernel_build  # noqa: E402

FIRMWARE = ROOT / "tests" / "firmware"
RUNTIME = ROOT / "site_scons" / "nnscons" / "runtime"
CMSIS = Path(os.environ.get("KERNELS_CMSIS", ROOT / "cmsis")).resolve()
CACHE = ROOT / "build" / "test-cache" / "kernels-on-core"
SEED = int(os.environ.get("KERNELS_SEED", "12"))            # other seeds draw other offsets, data and placements
CORTEX_M = [t for t in project.discover_targets(str(ROOT / "targets"))
            if targets.load_target(str(ROOT / "targets" / t)).kind == "cortex-m"]
KINDS = ("conv", "depthwise", "fc", "avgpool", "maxpool", "add", "mul", "softmax")     # the order of KC_CONV...
SCRATCH = ("exact", "roomy", "null")                                                   # KC_SCRATCH_*
EDGES = ("none", "input", "weights", "input 2")                                        # KC_EDGE_*
ROOMY_EXTRA = 1024                                                                     # KC_ROOMY_EXTRA
GUARDS = {1: "bytes before the output written", 2: "bytes after the output written",
          4: "bytes after the scratch buffer written", 8: "input changed", 16: "input 2 changed"}
# The s16 and legacy q7/q15 kernels: not linked (any newer file, whatever its name, is)
_UNUSED = re.compile(r"(_q7|_q15|legacy|_HWC_|activations_direct)|_s16\.c$")

pytestmark = [pytest.mark.slow,   # cross compiler and QEMU
              pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                                reason="needs arm-none-eabi-gcc and qemu-system-arm")]


# ---- the cases ------------------------------------------------------------------------------------------------------
@dataclass
class Case:
    kind: str
    label: str                          # shapes and parameters, for messages
    group: str                          # the benchmark's row
    input: tuple                        # cmsis_nn_dims as the kernel takes them: n, h, w, c
    output: tuple
    x: np.ndarray
    filter: tuple = (0, 0, 0, 0)
    stride: tuple = (1, 1)              # h, w
    padding: tuple = (0, 0)
    dilation: tuple = (1, 1)
    ch_mult: int = 1
    input_offset: int = 0
    input2_offset: int = 0              # FC: filter offset
    output_offset: int = 0
    act: tuple = (-128, 127)
    params: tuple = ()
    x2: Optional[np.ndarray] = None
    w: Optional[np.ndarray] = None
    bias: Optional[np.ndarray] = None
    quant: Optional[np.ndarray] = None  # per-channel multipliers, then shifts
    scratch: str = "exact"
    edge: str = "none"                  # the tensor that ends at the end of RAM on a core (EDGES)
    misalign: tuple = (0, 0, 0)         # arena addresses mod 16 of input, input 2, output
    filter_misalign: int = 0            # weights' address mod 4
    work: int = 0                       # MACs (conv, depthwise, FC) or output elements


def out_extent(size: int, k: int, s: int, d: int, pad) -> tuple[int, int]:
    """Output extent and top/left padding: TFLite's VALID or SAME, or an explicit symmetric pad."""
    eff = d * (k - 1) + 1
    if pad == "valid":
        return (size - eff) // s + 1, 0
    if pad == "same":
        out = -(-size // s)
        return out, max((out - 1) * s + eff - size, 0) // 2
    return (size + 2 * pad - eff) // s + 1, pad


def _notes(o: dict) -> str:
    return ((" wide shifts" + (" (wrapping)" if o.get("wrap") else "") if o.get("wide") else "")
            + ("" if o.get("bias", True) else " no bias"))


class CaseMaker:
    """Seeded cases; each maker method takes the shape, the rest (offsets, activation, data, scratch, placement)
    is drawn unless given."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.cases: list[Case] = []

    # -- draws --
    def data(self, count: int, kind: str) -> np.ndarray:
        r = self.rng
        if kind == "extreme":
            return r.choice(np.array([-128, 127], np.int8), count)
        if kind == "relu":       # many values at the zero point -128, the rest spread above it
            return np.clip(-128 + np.abs(r.normal(0, 60, count)) * (r.random(count) < 0.6), -128, 127).astype(np.int8)
        return r.integers(-128, 128, count).astype(np.int8)

    def common(self, o: dict) -> dict:
        r = self.rng
        o.setdefault("data", str(r.choice(["uniform", "uniform", "relu", "extreme"])))
        o.setdefault("in_off", int(r.choice([128, -127, 0, int(r.integers(-127, 129))])))
        o.setdefault("out_off", int(r.choice([-128, 127, 0, int(r.integers(-128, 128))])))
        zp, act = o["out_off"], str(r.choice(["full", "full", "relu", "relu6", "narrow"]))
        act = act if zp < 90 or act == "narrow" else "full"      # a relu above zero point 90 is (almost) empty
        o.setdefault("act", {"full": (-128, 127), "relu": (zp, 127), "relu6": (zp, min(127, zp + 40)),
                             "narrow": (max(-128, zp - 20), min(127, zp + 30))}[act])
        o.setdefault("scratch", str(r.choice(SCRATCH, p=[0.5, 0.3, 0.2])))
        o.setdefault("misalign", tuple(int(v) for v in r.choice([0, 0, 1, 2, 3, 7, 13], 3)))
        o.setdefault("filter_misalign", int(r.choice([0, 0, 1, 2, 3])))
        return o

    def requant(self, rms: np.ndarray, bound: int, wide: bool, wrap: bool) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel (multiplier, shift): outputs spread over the int8 range (scale ~ 50 / rms of the sum, times
        up to 2^+-1.5), or with ``wide`` any shift -31..+5; a left shift that can wrap the sum (``bound``) only with
        ``wrap`` (the kernels wrap it as TFLite Micro does; quantize/bounds.py lets such shifts through)."""
        r = self.rng
        max_left = 5 if wrap else max(0, min(5, int(math.floor(math.log2((2 ** 31 - 1) / max(bound, 1))))))
        if wide:
            shifts = r.integers(-31, max_left + 1, len(rms))
            shifts[0], shifts[-1] = -31, max_left
            mults = r.integers(2 ** 30, 2 ** 31, len(rms))
        else:
            pairs = [quantize_multiplier(50.0 / max(v, 1.0) * 2 ** r.uniform(-1.5, 1.5)) for v in rms]
            mults = np.array([m for m, _ in pairs])
            shifts = np.minimum([s for _, s in pairs], max_left)
        return mults.astype(np.int64), shifts.astype(np.int64)

    def weighted(self, o: dict, x: np.ndarray, w_rows: np.ndarray, taps: int) -> tuple:
        """Bias and per-channel quantization for weight rows (one per output channel) of ``taps`` values."""
        xs = x.astype(np.float64) + o["in_off"]
        ex2 = float(np.mean(xs ** 2)) if xs.size else 0.0
        rms = np.sqrt(taps * ex2 * np.mean(w_rows.astype(np.float64) ** 2, axis=1))
        bias = None
        if o.get("bias", True):
            bias = np.clip(np.round(self.rng.normal(0, 1, len(rms)) * rms * 0.5), -(2 ** 24), 2 ** 24).astype(np.int64)
        bound = taps * int(np.max(np.abs(xs), initial=0)) * 128 + (int(np.max(np.abs(bias))) if bias is not None else 0)
        mults, shifts = self.requant(rms, bound, o.get("wide", False), o.get("wrap", False))
        return bias, mults, shifts

    def add_case(self, case: Case, o: dict) -> None:
        case.scratch, case.misalign, case.filter_misalign = o["scratch"], o["misalign"], o["filter_misalign"]
        edges = ["none", "input", "weights" if case.w is not None else "input",
                 "input 2" if case.x2 is not None else "none"]
        case.edge = o.get("edge", str(self.rng.choice(edges)))
        case.label += (f" in_off {case.input_offset} out_off {case.output_offset} act [{case.act[0]}, {case.act[1]}]"
                       f" data {o['data']} scratch {case.scratch} misalign {case.misalign}/{case.filter_misalign}"
                       + (f" {case.edge} at the end of RAM" if case.edge != "none" else ""))
        self.cases.append(case)

    # -- makers --
    def conv(self, hw, c_in, c_out, k, stride=1, pad="valid", dil=1, n=1, groups=1, group="", **o) -> None:
        o = self.common(o)
        (h, w), (kh, kw) = hw, (k if isinstance(k, tuple) else (k, k))
        (sh, sw), (dh, dw) = [v if isinstance(v, tuple) else (v, v) for v in (stride, dil)]
        (oh, ph), (ow, pw) = out_extent(h, kh, sh, dh, pad), out_extent(w, kw, sw, dw, pad)
        x = self.data(n * h * w * c_in, o["data"])
        wt = self.data(c_out * kh * kw * (c_in // groups), "extreme" if o["data"] == "extreme" else "uniform")
        bias, mults, shifts = self.weighted(o, x, wt.reshape(c_out, -1), kh * kw * c_in // groups)
        g = kernels.ConvGeometry(kernels.Dims(n, h, w, c_in), kernels.Dims(c_out, kh, kw, c_in // groups),
                                 kernels.Dims(n, oh, ow, c_out), (sh, sw), (ph, pw), (dh, dw))
        if o["scratch"] == "null" and not kernels.conv_is_1x1(g):
            o["scratch"] = "exact"          # arm_convolve_s8 and arm_convolve_1_x_n_s8 refuse a NULL buffer
        group = group or ("conv 1x1" if kernels.conv_is_1x1(g) else "conv 1xN" if kernels.conv_is_1_x_n(g)
                          else "conv first layer (C_in <= 3)" if c_in <= 3 else "conv 3x3" if (kh, kw) == (3, 3)
                          else "conv other")
        label = (f"conv {kh}x{kw} stride {sh}x{sw} dilation {dh}x{dw} pad {ph},{pw} input {n}x{h}x{w}x{c_in} -> "
                 f"{oh}x{ow}x{c_out}" + (f" groups {groups}" if groups > 1 else "") + _notes(o))
        self.add_case(Case("conv", label, group, (n, h, w, c_in), (n, oh, ow, c_out), x, g.filter.as_tuple(),
                           (sh, sw), (ph, pw), (dh, dw), 1, o["in_off"], 0, o["out_off"], o["act"], (), None, wt,
                           bias, np.concatenate([mults, shifts]), work=n * oh * ow * c_out * kh * kw * c_in // groups),
                      o)

    def depthwise(self, hw, c, k=3, stride=1, pad="same", mult=1, dil=1, n=1, group="", **o) -> None:
        o = self.common(o)
        (h, w), (kh, kw) = hw, (k if isinstance(k, tuple) else (k, k))
        (sh, sw), (dh, dw) = [v if isinstance(v, tuple) else (v, v) for v in (stride, dil)]
        (oh, ph), (ow, pw) = out_extent(h, kh, sh, dh, pad), out_extent(w, kw, sw, dw, pad)
        c_out = c * mult
        x = self.data(n * h * w * c, o["data"])
        wt = self.data(kh * kw * c_out, "extreme" if o["data"] == "extreme" else "uniform")
        bias, mults, shifts = self.weighted(o, x, wt.reshape(-1, c_out).T, kh * kw)
        group = group or ("depthwise 3x3" if (kh, kw, mult, n, dh, dw) == (3, 3, 1, 1, 1, 1) and max(ph, pw) <= 1
                          else "depthwise, multiplier > 1" if mult > 1 else "depthwise other")
        label = (f"depthwise {kh}x{kw} stride {sh}x{sw} dilation {dh}x{dw} pad {ph},{pw} multiplier {mult} input "
                 f"{n}x{h}x{w}x{c} -> {oh}x{ow}x{c_out}" + _notes(o))
        self.add_case(Case("depthwise", label, group, (n, h, w, c), (n, oh, ow, c_out), x, (1, kh, kw, c_out),
                           (sh, sw), (ph, pw), (dh, dw), mult, o["in_off"], 0, o["out_off"], o["act"], (), None, wt,
                           bias, np.concatenate([mults, shifts]), work=n * oh * ow * c_out * kh * kw), o)

    def fc(self, depth, rows, batches=1, filter_offset=0, **o) -> None:
        o = self.common(o)
        x = self.data(batches * depth, o["data"])
        wt = self.data(rows * depth, "extreme" if o["data"] == "extreme" else "uniform")
        bias, mults, shifts = self.weighted(o, x, wt.reshape(rows, depth).astype(np.int64) + filter_offset, depth)
        k = int(self.rng.integers(rows))
        label = f"fully connected depth {depth} rows {rows} batches {batches} filter_offset {filter_offset}" + _notes(o)
        self.add_case(Case("fc", label, "fully connected", (batches, 1, 1, depth), (batches, 1, 1, rows), x,
                           (depth, 1, 1, rows), input_offset=o["in_off"], input2_offset=filter_offset,
                           output_offset=o["out_off"], act=o["act"], params=(int(mults[k]), int(shifts[k])), w=wt,
                           bias=bias, work=batches * depth * rows), o)

    def pool(self, kind, hw, c, k, stride=1, pad="valid", n=1, **o) -> None:
        o = self.common(o)
        (h, w), (kh, kw) = hw, (k if isinstance(k, tuple) else (k, k))
        sh, sw = stride if isinstance(stride, tuple) else (stride, stride)
        (oh, ph), (ow, pw) = out_extent(h, kh, sh, 1, pad), out_extent(w, kw, sw, 1, pad)
        label = f"{kind} {kh}x{kw} stride {sh}x{sw} pad {ph},{pw} input {n}x{h}x{w}x{c} -> {oh}x{ow}x{c}"
        self.add_case(Case(kind, label, kind, (n, h, w, c), (n, oh, ow, c), self.data(n * h * w * c, o["data"]),
                           (1, kh, kw, 1), (sh, sw), (ph, pw), act=o["act"], work=n * oh * ow * c * kh * kw), o)

    def scales(self, count: int) -> list[float]:
        return [float(2 ** self.rng.uniform(-8, -2)) for _ in range(count)]

    def add(self, size, **o) -> None:
        o = self.common(o)
        s1, s2, s_out = o.get("scales") or self.scales(3)
        twice_max = 2 * max(s1, s2)
        (m1, sh1), (m2, sh2) = quantize_multiplier(s1 / twice_max), quantize_multiplier(s2 / twice_max)
        mo, sho = quantize_multiplier(twice_max / ((1 << 20) * s_out))
        in2_off = o.get("in2_off", int(self.rng.integers(-127, 129)))
        label = f"add {size} elements scales {s1:.3g}, {s2:.3g} -> {s_out:.3g} in2_off {in2_off}"
        self.add_case(Case("add", label, "add", (1, 1, 1, size), (1, 1, 1, size), self.data(size, o["data"]),
                           input_offset=o["in_off"], input2_offset=in2_off, output_offset=o["out_off"], act=o["act"],
                           params=(m1, sh1, m2, sh2, 20, mo, sho), x2=self.data(size, o["data"]), work=size), o)

    def mul(self, size, **o) -> None:
        o = self.common(o)
        s1, s2, s_out = o.get("scales") or self.scales(3)
        mo, sho = quantize_multiplier(s1 * s2 / s_out)
        in2_off = o.get("in2_off", int(self.rng.integers(-127, 129)))
        label = f"mul {size} elements scales {s1:.3g}, {s2:.3g} -> {s_out:.3g} in2_off {in2_off}"
        self.add_case(Case("mul", label, "mul", (1, 1, 1, size), (1, 1, 1, size), self.data(size, o["data"]),
                           input_offset=o["in_off"], input2_offset=in2_off, output_offset=o["out_off"], act=o["act"],
                           params=(mo, sho), x2=self.data(size, o["data"]), work=size), o)

    def softmax(self, rows, row_size, scale=None, beta=1.0, **o) -> None:
        o = self.common(o)
        scale = scale or float(2 ** self.rng.uniform(-9, 1))
        real = min(beta * scale * 2.0 ** 26, 2.0 ** 31 - 1)
        mult, shift = quantize_multiplier(real)
        diff_min = -((31 << 26) >> shift)
        x = self.data(rows * row_size, o["data"])
        label = f"softmax {rows} rows of {row_size} input scale {scale:.3g} beta {beta} (mult {mult} shift {shift})"
        self.add_case(Case("softmax", label, "softmax", (1, 1, rows, row_size), (1, 1, rows, row_size), x,
                           params=(mult, shift, diff_min), work=rows * row_size), o)


def make_cases(seed: int = SEED) -> list[Case]:
    m = CaseMaker(seed)
    # convolutions: 1x1 (stride 1 and 2), channel counts around the vector widths, batches
    for hw, ci, co in [((1, 1), 1, 1), ((3, 5), 3, 4), ((5, 3), 4, 3), ((4, 4), 15, 16), ((3, 3), 16, 17),
                       ((7, 3), 17, 15), ((5, 5), 64, 64), ((2, 3), 16, 64), ((3, 2), 64, 17), ((25, 5), 64, 64)]:
        m.conv(hw, ci, co, 1)
    m.conv((3, 3), 8, 8, 1, n=2)
    m.conv((3, 3), 17, 16, 1, data="extreme", in_off=128, out_off=-128)
    m.conv((3, 3), 16, 16, 1, data="extreme", in_off=-127, out_off=127, scratch="roomy")
    m.conv((4, 4), 32, 32, 1, wide=True)
    m.conv((9, 9), 8, 16, 1, stride=2)
    m.conv((7, 5), 17, 3, 1, stride=2)
    m.conv((5, 5), 64, 32, 1, stride=(2, 1))
    # 3x3, padding 0/1, stride 1/2, dilation, batches, groups, other kernels
    for hw, ci, co in [((6, 6), 1, 4), ((5, 7), 3, 16), ((6, 5), 4, 15), ((5, 5), 15, 16), ((4, 4), 16, 17),
                       ((4, 4), 17, 8), ((4, 4), 32, 32), ((8, 8), 32, 32), ((16, 16), 16, 16)]:
        m.conv(hw, ci, co, 3, pad="same")
    m.conv((7, 7), 8, 8, 3)
    m.conv((6, 6), 3, 3, 3)
    m.conv((9, 9), 8, 8, 3, stride=2)
    m.conv((8, 8), 16, 16, 3, stride=2, pad="same")
    m.conv((7, 7), 17, 4, 3, stride=2, pad="same")
    m.conv((9, 9), 8, 8, 3, pad="same", dil=2)
    m.conv((7, 9), 4, 4, 3, pad="same", dil=(1, 2))
    m.conv((5, 5), 8, 8, 3, pad="same", n=2)
    m.conv((5, 5), 8, 8, 3, pad="same", groups=2)
    m.conv((6, 6), 12, 6, 3, pad="same", groups=3)
    m.conv((8, 6), 8, 8, (3, 1), stride=(2, 1), pad="same")
    m.conv((6, 6), 3, 8, 5, pad=2)
    m.conv((5, 5), 16, 16, 3, pad="same", wide=True)
    m.conv((4, 4), 16, 16, 3, pad="same", wide=True, wrap=True, data="extreme")
    m.conv((12, 12), 1, 8, 5, pad="same", wide=True)
    m.conv((5, 5), 8, 8, 3, pad="same", data="extreme", in_off=128, out_off=127)
    m.conv((5, 5), 8, 8, 3, pad="same", data="extreme", in_off=-127, out_off=-128, bias=False)
    m.conv((4, 4), 16, 16, 3, pad="same", data="relu", in_off=128, scratch="roomy")
    # first layers: one and three input channels
    m.conv((49, 10), 1, 64, (10, 4), stride=2, pad="same")
    m.conv((16, 16), 3, 16, 3, stride=2, pad="same")
    m.conv((12, 12), 1, 8, 5, pad="same")
    m.conv((10, 10), 3, 8, 3, stride=2, pad="valid", bias=False)
    # one-row inputs: the 1xN entry point when (stride.w * C_IN) % 4 == 0, the generic one otherwise
    m.conv((1, 32), 4, 8, (1, 5))
    m.conv((1, 20), 3, 8, (1, 3), stride=(1, 4))
    m.conv((1, 16), 3, 4, (1, 3), pad="same")
    m.conv((1, 25), 8, 16, (1, 8), pad="same")
    m.conv((1, 40), 1, 16, (1, 10), stride=(1, 2))
    m.conv((1, 49), 16, 17, (1, 3), pad="same", n=2)
    # depthwise: 3x3 padding 0/1 and stride 1/2 over channel counts, 5x5, multipliers, dilation, batches
    for hw, c in [((5, 5), 1), ((5, 6), 3), ((6, 5), 4), ((5, 5), 8), ((4, 7), 15), ((5, 5), 16), ((5, 4), 17),
                  ((4, 4), 32), ((4, 4), 64), ((3, 4), 70), ((25, 5), 64)]:
        m.depthwise(hw, c)
    m.depthwise((6, 6), 16, pad="valid")
    m.depthwise((5, 5), 17, pad="valid")
    m.depthwise((7, 7), 8, stride=2)
    m.depthwise((9, 9), 17, stride=2)
    m.depthwise((8, 8), 64, stride=2)
    m.depthwise((7, 7), 4, stride=2, pad="valid")
    m.depthwise((7, 7), 8, k=5)
    m.depthwise((6, 6), 17, k=5, stride=2)
    m.depthwise((5, 5), 8, pad=2)
    m.depthwise((6, 5), 16, k=(3, 1))
    m.depthwise((5, 5), 4, mult=2)
    m.depthwise((5, 5), 3, mult=2, stride=2)
    m.depthwise((4, 4), 5, mult=4)
    m.depthwise((49, 40), 1, k=(10, 8), stride=2, mult=8)
    m.depthwise((6, 6), 1, mult=16)
    m.depthwise((5, 5), 1, mult=2, pad="valid")
    m.depthwise((9, 9), 8, dil=2)
    m.depthwise((5, 5), 8, n=2)
    m.depthwise((5, 5), 16, wide=True)
    m.depthwise((5, 5), 17, wide=True, wrap=True, data="extreme")
    m.depthwise((5, 5), 16, data="extreme", in_off=128, out_off=-128)
    m.depthwise((5, 5), 17, data="extreme", in_off=-127, out_off=127, bias=False)
    m.depthwise((5, 5), 32, data="relu", in_off=128, scratch="null")
    # fully connected: depth around multiples of 16, rows 1..33, batches
    for depth, rows, batches in [(1, 1, 1), (3, 5, 1), (15, 16, 2), (16, 17, 1), (17, 33, 1), (31, 1, 3),
                                 (32, 32, 1), (33, 2, 2), (63, 10, 1), (64, 12, 1), (65, 7, 4), (127, 3, 1),
                                 (128, 33, 1), (129, 4, 2), (256, 10, 1), (400, 16, 1), (4000, 4, 1)]:
        m.fc(depth, rows, batches)
    m.fc(33, 5, filter_offset=3)
    m.fc(16, 4, 2, filter_offset=-7)
    m.fc(64, 8, data="extreme", in_off=128, out_off=-128, bias=False)
    m.fc(47, 9, data="extreme", in_off=-127, out_off=127, wide=True)
    m.fc(64, 8, data="extreme", wide=True, wrap=True)
    m.fc(100, 10, scratch="null")
    # pooling
    for kind in ("avgpool", "maxpool"):
        for c in (1, 3, 16, 17, 64):
            m.pool(kind, (8, 8), c, 2, stride=2)
        m.pool(kind, (5, 5), 8, 3, pad="same")
        m.pool(kind, (5, 5), 17, 3, pad="same", data="extreme")
        m.pool(kind, (7, 7), 16, 3, stride=2, pad="same")
        m.pool(kind, (25, 5), 64, (25, 5))
        m.pool(kind, (5, 5), 70, 5)
        m.pool(kind, (4, 9), 4, (1, 3), stride=(1, 2))
        m.pool(kind, (6, 6), 8, 2, stride=2, n=2)
        m.pool(kind, (6, 6), 15, 2, stride=1, act=(-10, 20))
    # element-wise
    for size in (1, 3, 4, 15, 16, 17, 64, 100, 1001, 4096):
        m.add(size)
        m.mul(size)
    for op in (m.add, m.mul):
        op(64, data="extreme", in_off=128, in2_off=-127, out_off=127)
        op(33, data="extreme", in_off=-127, in2_off=128, out_off=-128, act=(0, 127))
        op(50, scales=[0.5, 0.001, 0.0001])
        op(50, scales=[0.0001, 0.2, 0.3])
    m.add(64, scales=[0.5, 0.001, 0.00005], data="extreme")       # an output shift of +5: the sum wraps
    # softmax rows
    for rows, size in [(1, 1), (1, 2), (2, 3), (1, 10), (3, 12), (2, 16), (1, 17), (4, 64), (1, 100), (2, 257)]:
        m.softmax(rows, size)
    m.softmax(2, 10, data="extreme")
    m.softmax(3, 16, scale=1 / 16)
    m.softmax(2, 33, scale=4.0)
    m.softmax(2, 20, scale=2 ** -9, beta=0.5)
    return m.cases


# ---- the generated header -------------------------------------------------------------------------------------------
def _numbers(values) -> str:
    """Integers for a C initializer, 24 a line."""
    items = [str(int(v)) for v in values] or ["0"]
    return ",\n    ".join(", ".join(items[i:i + 24]) for i in range(0, len(items), 24))


def _align(value: int, to: int) -> int:
    return (value + to - 1) // to * to


def scratch_capacity(c: Case) -> int:
    """The largest scratch any feature set's getter asks for, plus the roomy mode's extra."""
    d = [kernels.Dims(*t) for t in (c.input, c.filter, c.output)]
    sizes = [0]
    for f in kernels.FEATURE_SETS:
        if c.kind in ("conv", "depthwise"):
            g = kernels.ConvGeometry(d[0], d[1], d[2], c.stride, c.padding, c.dilation, c.ch_mult)
            sizes.append(kernels.convolve_wrapper_s8_buffer_size(f, g) if c.kind == "conv"
                         else kernels.depthwise_conv_wrapper_s8_buffer_size(f, g))
        elif c.kind == "fc":
            sizes.append(kernels.fully_connected_s8_buffer_size(f, d[1]))
        elif c.kind == "avgpool":
            sizes.append(kernels.avgpool_buffer_size(f, c.output[2], c.input[3]))
    return max(sizes) + ROOMY_EXTRA


def cases_header(cases: list[Case]) -> str:
    """kernels_cases.h: the two data pools and the kc_case table (tests/firmware/kernels_case.h)."""
    pool: list[np.ndarray] = []
    words: list[np.ndarray] = []
    at, word_at, arena = 0, 0, 0
    rows = []

    def put(data: np.ndarray, misalign: int = 0) -> int:
        nonlocal at
        pad = (_align(at, 4) + misalign) - at
        pool.append(np.zeros(pad, np.int8))
        pool.append(data.astype(np.int8))
        start = at + pad
        at = start + data.size
        return start

    def put_words(data: Optional[np.ndarray]) -> int:
        nonlocal word_at
        if data is None:
            return -1
        words.append(np.asarray(data, np.int64))
        word_at += len(data)
        return word_at - len(data)

    for c in cases:
        size = int(np.prod(c.input))
        input_at = put(c.x)
        input2_at = put(c.x2) if c.x2 is not None else 0
        filter_at = put(c.w, c.filter_misalign) if c.w is not None else -1
        positions, cursor = [], 0
        for bytes_, mis in ((size, c.misalign[0]), (size if c.x2 is not None else 0, c.misalign[1]),
                            (int(np.prod(c.output)), c.misalign[2])):
            positions.append(_align(cursor + 16, 16) + mis)
            cursor = positions[-1] + bytes_ + 32
        arena = max(arena, cursor)
        params = list(c.params) + [0] * (7 - len(c.params))
        fields = [KINDS.index(c.kind), SCRATCH.index(c.scratch), EDGES.index(c.edge), c.input, c.filter, c.output,
                  c.stride, c.padding, c.dilation, c.ch_mult, c.input_offset, c.input2_offset, c.output_offset,
                  *c.act, params, input_at, input2_at, filter_at, put_words(c.bias), put_words(c.quant), *positions]
        rows.append("    {" + ", ".join(str(int(v)) if np.isscalar(v) else "{" + _numbers(v) + "}"
                                        for v in fields) + "}")
    data = np.concatenate(pool)
    return ("/* Generated by tests/test_kernels_on_core.py: do not edit. */\n"
            f"#define KC_CASES {len(cases)}\n#define KC_ARENA_BYTES {arena}\n"
            f"#define KC_SCRATCH_BYTES {max(scratch_capacity(c) for c in cases) + 64}\n\n"
            "/* a union: the pool starts at a word boundary, so the cases choose their weights' alignment */\n"
            f"static const union\n{{\n    uint32_t word;\n    int8_t bytes[{data.size}];\n}} kc_pool = {{.bytes = {{\n"
            f"    {_numbers(data)}\n}}}};\n#define kc_bytes (kc_pool.bytes)\n\n"
            f"static const int32_t kc_words[{max(word_at, 1)}] = {{\n"
            f"    {_numbers(np.concatenate(words) if words else [])}\n}};\n\n"
            "static const kc_case kc_cases[KC_CASES] = {\n" + ",\n".join(rows) + "\n};\n")


# ---- building and running -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Build:
    name: str                           # "host", "host-asan" or a Cortex-M target's name
    target: targets.Target
    sanitized: bool = False

    @property
    def cortex_m(self) -> bool:
        return self.target.kind == "cortex-m"

    def compile_flags(self) -> list[str]:
        t = self.target
        if self.sanitized:
            return [t.cc, "-std=c99", *t.warnings, *targets.expand_root(t.sanitize_flags, str(ROOT))]
        core = []
        if self.cortex_m and t.emulator and t.memory:
            core = [f"-DNNSCONS_CLOCK_HZ={t.emulator.clock_hz}",
                    f"-DKC_DATA_END={t.memory.data_origin + t.memory.data_size:#x}u"]
        return [t.cc, *t.cflags, "-O2", *t.warnings, *core]


@dataclass
class Line:
    status: int
    instructions: int
    scratch: int
    guards: int
    out: bytes


def load_build(name: str) -> Build:
    if name == "host-asan":
        return Build(name, targets.load_target(str(ROOT / "targets" / "host")), True)
    return Build(name, targets.load_target(str(ROOT / "targets" / name)))


def library_sources() -> list[Path]:
    return [s for s in kernel_build(CMSIS).sources if not _UNUSED.search(s.name)]


def _compile(build: Build, source: Path, depends: list[Path], includes: list[Path]) -> Path:
    """One object, cached under build/test-cache by its compiler command and the bytes of its source and of the
    headers it may include."""
    command = [*build.compile_flags(), *(f"-I{d}" for d in includes), "-c", str(source)]
    digest = hashlib.sha256(" ".join(command).encode())
    for path in [source, *depends]:
        digest.update(path.read_bytes())
    folder = CACHE / build.name
    stem = f"{source.parent.name}_{source.stem}"
    obj = folder / f"{stem}-{digest.hexdigest()[:16]}.o"
    if not obj.exists():
        for old in folder.glob(f"{stem}-*.o"):      # earlier versions, unless another run may still link them
            with contextlib.suppress(OSError):
                if time.time() - old.stat().st_mtime > 3600:
                    old.unlink()
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".o", dir=folder)
        os.close(fd)
        result = subprocess.run([*command, "-o", tmp], capture_output=True, text=True)
        if result.returncode != 0:
            Path(tmp).unlink(missing_ok=True)
            errors = "\n".join(result.stderr.splitlines()[:40])
            raise RuntimeError(f"{build.name}: compiling {source} failed:\n{errors}")
        os.replace(tmp, obj)
    return obj


def build_program(build: Build, header_dir: Path, pool: concurrent.futures.Executor, out: Path) -> Path:
    """kernels_main.c and the library (with nnscons' startup and counters on a core), compiled in ``pool``."""
    include = [CMSIS / "Include"]
    headers = sorted(include[0].glob("*.h"))
    jobs = [pool.submit(_compile, build, s, headers, include) for s in library_sources()]
    main_depends = [*headers, header_dir / "kernels_cases.h", FIRMWARE / "kernels_case.h",
                    RUNTIME / "nnscons_firmware.h"]
    jobs.append(pool.submit(_compile, build, FIRMWARE / "kernels_main.c", main_depends,
                            [*include, header_dir, RUNTIME]))
    t = build.target
    if build.cortex_m:
        for source in [*map(Path, t.startup), RUNTIME / "nnscons_cortex_m.c"]:
            jobs.append(pool.submit(_compile, build, source, [RUNTIME / "nnscons_firmware.h"], [RUNTIME]))
    objects = [str(j.result()) for j in jobs]
    program = out / (f"kernels_{build.name}.elf" if build.cortex_m else f"kernels_{build.name}")
    if build.cortex_m:
        assert t.memory is not None
        command = [t.cc, *t.linkflags, *objects, f"-T{t.linker_script}", f"-L{RUNTIME}",
                   f"-Wl,--defsym=__stack_size__={t.memory.stack_size}", "-o", str(program), "-lm"]
    else:
        sanitize = targets.expand_root(t.sanitize_flags, str(ROOT)) if build.sanitized else []
        command = [t.cc, *sanitize, *t.linkflags, *objects, "-o", str(program), "-lm"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{build.name}: linking failed:\n{result.stderr}")
    return program


_LINE = re.compile(r"^kc (\d+) status=(-?\d+) instructions=(\d+) scratch=(-?\d+) guards=(\d+) out=([0-9a-f]*)$",
                   re.MULTILINE)


def run_program(build: Build, program: Path, cases: list[Case]) -> dict[int, Line]:
    if build.cortex_m:
        command = firmware.emulator_command(build.target, str(program))
        timeout = build.target.emulator.timeout if build.target.emulator else 300
    else:
        command, timeout = [str(program)], 300
    run = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    lines = {int(m[0]): Line(int(m[1]), int(m[2]), int(m[3]), int(m[4]), bytes.fromhex(m[5]))
             for m in _LINE.findall(run.stdout)}
    if run.returncode != 0 or "kc done" not in run.stdout:
        at = max(lines, default=-1) + 1
        case = f"case {at} ({cases[at].label})" if at < len(cases) else "after the last case"
        other = [t for t in (run.stdout + run.stderr).splitlines() if not t.startswith("kc ")]
        raise RuntimeError(f"{build.name}: the program failed (exit status {run.returncode}) in {case}:\n"
                           + "\n".join(other[:25]))
    return lines


def build_and_run(names: list[str], header_dir: Path, cases: list[Case]) -> dict[str, object]:
    """Every build in ``names`` compiled (all CPUs) and run, concurrently: name -> lines, or the exception."""
    results: dict[str, object] = {}
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 2) as pool, \
            concurrent.futures.ThreadPoolExecutor(len(names)) as drivers:
        def one(name: str) -> dict[int, Line]:
            build = load_build(name)
            return run_program(build, build_program(build, header_dir, pool, header_dir), cases)
        futures = {name: drivers.submit(one, name) for name in names}
        for name, future in futures.items():
            try:
                results[name] = future.result()
            except Exception as e:          # reported by the test of that build
                results[name] = e
    return results


# ---- comparing ------------------------------------------------------------------------------------------------------
def _where(c: Case, index: int) -> str:
    n, h, w, ch = np.unravel_index(index, c.output)
    return f"n {n} h {h} w {w} c {ch}"


def differences(cases: list[Case], reference: dict[int, Line], lines: dict[int, Line], who: str) -> list[str]:
    """One message per case whose line differs from the reference's (or is missing)."""
    wrong = []
    for i, c in enumerate(cases):
        ref, got = reference.get(i), lines.get(i)
        if ref is None or got is None:
            wrong.append(f"case {i} ({c.label}): no line from {'the host' if ref is None else who}")
            continue
        why = []
        if got.status != ref.status:
            why.append(f"status {got.status}, host {ref.status}")
        if got.guards:
            why.append(", ".join(text for bit, text in GUARDS.items() if got.guards & bit))
        if len(got.out) != len(ref.out):
            why.append(f"{len(got.out)} output bytes, host {len(ref.out)}")
        elif got.out != ref.out:
            a, b = np.frombuffer(ref.out, np.int8), np.frombuffer(got.out, np.int8)
            diff = np.flatnonzero(a != b)
            first = int(diff[0])
            why.append(f"{diff.size} of {a.size} output bytes differ, first at {first} ({_where(c, first)}): "
                       f"{who} {b[first]}, host {a[first]}")
        if why:
            wrong.append(f"case {i} ({c.label}): " + "; ".join(why))
    return wrong


# ---- the tests ------------------------------------------------------------------------------------------------------
def _selected_targets(session: pytest.Session) -> list[str]:
    names = []
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        if item.module.__name__ == __name__ and callspec is not None and "name" in callspec.params:
            names.append(callspec.params["name"])
    return sorted(set(names), key=CORTEX_M.index)


@pytest.fixture(scope="module")
def runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Case], dict]:
    """The cases, and every selected build's lines (all builds at once, in parallel)."""
    cases = make_cases()
    folder = tmp_path_factory.mktemp("kernels_on_core")
    (folder / "kernels_cases.h").write_text(cases_header(cases))
    return cases, build_and_run(["host", "host-asan", *_selected_targets(request.session)], folder, cases)


def _lines(results: dict, name: str) -> dict[int, Line]:
    got = results[name]
    if isinstance(got, Exception):
        raise got
    return got


def test_host_reference_runs_clean(runs: tuple[list[Case], dict]) -> None:
    """The reference itself: every case runs (status 0) within its guards, and the cases have power: few of the
    ordinary weighted ones give outputs of fewer than three values (all saturated, say)."""
    cases, results = runs
    host = _lines(results, "host")
    assert sorted(host) == list(range(len(cases)))
    bad = [f"case {i} ({c.label}): status {host[i].status} guards {host[i].guards}"
           for i, c in enumerate(cases) if host[i].status != 0 or host[i].guards != 0]
    assert not bad, "\n".join(bad)
    ordinary = [i for i, c in enumerate(cases) if c.kind in ("conv", "depthwise", "fc") and c.output[3] >= 4
                and len(host[i].out) >= 16 and "data uniform" in c.label and "wide" not in c.label]
    flat = [cases[i].label for i in ordinary if len(set(host[i].out)) < 3]
    assert len(flat) <= len(ordinary) // 20, "cases whose outputs are (almost) constant:\n" + "\n".join(flat)


def test_host_under_sanitizers_equals_host(runs: tuple[list[Case], dict]) -> None:
    cases, results = runs
    wrong = differences(cases, _lines(results, "host"), _lines(results, "host-asan"), "sanitized host")
    assert not wrong, "\n".join(wrong[:20])


@pytest.mark.parametrize("name", CORTEX_M)
def test_kernels_on_core_equal_host(name: str, runs: tuple[list[Case], dict]) -> None:
    cases, results = runs
    wrong = differences(cases, _lines(results, "host"), _lines(results, name), name)
    assert not wrong, (f"{len(wrong)} of {len(cases)} cases differ on {name} (KERNELS_CMSIS=PATH runs another copy "
                       f"of the library, e.g. HEAD's):\n" + "\n".join(wrong[:20]))


# ---- benchmark mode -------------------------------------------------------------------------------------------------
def bench(names: list[str], show_cases: bool) -> int:
    """Instructions per MAC (conv, depthwise, FC), per window tap (pooling) or per output element (add, mul,
    softmax), per kind of case."""
    cases = make_cases()
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "kernels_cases.h").write_text(cases_header(cases))
        results = build_and_run(["host", *names], Path(folder), cases)
    host = _lines(results, "host")
    status = 0
    for name in names:
        if isinstance(results[name], Exception):
            print(f"{name}: {results[name]}")
            status = 1
            continue
        lines = _lines(results, name)
        wrong = differences(cases, host, lines, name)
        status |= bool(wrong)
        print(f"{name} ({CMSIS}): {len(cases)} cases, {len(wrong)} differ from the host")
        for text in wrong[:10]:
            print("  DIFFERS", text)
        groups: dict[str, list[int]] = {}
        for i, c in enumerate(cases):
            groups.setdefault(c.group, []).append(i)
        print(f"  {'kind':32} {'cases':>5} {'work':>9} {'instructions':>12} {'per unit':>9}")
        for group, members in groups.items():
            work = sum(cases[i].work for i in members)
            count = sum(lines[i].instructions for i in members if i in lines)
            unit = {"conv": "MAC", "depthwise": "MAC", "fc": "MAC", "avgpool": "tap", "maxpool": "tap"}.get(
                cases[members[0]].kind, "element")
            print(f"  {group:32} {len(members):5} {work:9} {count:12} {count / max(work, 1):9.2f} /{unit}")
        if show_cases:
            print(f"  {'case':>4} {'instructions':>12} {'per unit':>8} {'scratch':>7}")
            for i, c in enumerate(cases):
                if i in lines:
                    got = lines[i]
                    print(f"  {i:4} {got.instructions:12} {got.instructions / max(c.work, 1):8.2f} {got.scratch:7} "
                          f"{c.label}")
    return status


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", nargs="+", metavar="TARGET", required=True, choices=CORTEX_M,
                        help="Cortex-M targets to measure")
    parser.add_argument("--cases", action="store_true", help="also list every case's count and scratch size")
    args = parser.parse_args(argv)
    return bench(args.bench, args.cases)


if __name__ == "__main__":
    sys.exit(main())
