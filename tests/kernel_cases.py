"""The seeded cases of tests/test_kernels_on_core.py (and tests/test_overlap_kernels.py): shapes, parameters and data
for every public s8 kernel, and the C header tests/firmware/kernels_main.c reads them from. Data only: the tests
build, run and compare."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Optional

import numpy as np

from nnscons import kernels
from nnscons.fixedpoint import quantize_multiplier

SEED = int(os.environ.get("KERNELS_SEED", "12"))            # other seeds draw other offsets, data and placements
KINDS = ("conv", "depthwise", "fc", "avgpool", "maxpool", "add", "mul", "softmax")     # the order of KC_CONV...
SCRATCH = ("exact", "roomy", "null")                                                   # KC_SCRATCH_*
EDGES = ("none", "input", "weights", "input 2")                                        # KC_EDGE_*
ROOMY_EXTRA = 1024                                                                     # KC_ROOMY_EXTRA


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
