"""Shared pytest setup and the helpers several test files use.

Makes the ``nnscons`` package (under site_scons/) importable and locates ../shared; holds the small float network
and calibration data the statistics and quantization tests share. Tests marked ``slow`` compile C, run QEMU or
sanitizers or build whole models: ``pytest -m "not slow"`` is the quick tier to run while working.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "site_scons"))

from nnscons import ir  # noqa: E402

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"


# ---- a small float graph: conv(relu) -> max pool -> reshape -> fc -> softmax ------------------------------------
def small_graph(seed: int = 0) -> tuple[ir.Graph, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    T = ir.Tensor
    tensors = {
        "x": T("x", [1, 6, 6, 2], "float32"),
        "w1": T("w1", [4, 3, 3, 2], "float32", is_const=True), "b1": T("b1", [4], "float32", is_const=True),
        "c1": T("c1", [1, 6, 6, 4], "float32"),
        "p1": T("p1", [1, 3, 3, 4], "float32"),
        "r1": T("r1", [1, 36], "float32"),
        "w2": T("w2", [5, 36], "float32", is_const=True), "b2": T("b2", [5], "float32", is_const=True),
        "f2": T("f2", [1, 5], "float32"),
        "y": T("y", [1, 5], "float32"),
    }
    ops = [
        ir.Op("conv_0", "conv2d", ["x", "w1", "b1"], ["c1"],
              {"stride": [1, 1], "dilation": [1, 1], "pad": [1, 1, 1, 1], "activation": "relu"}),
        ir.Op("pool_1", "max_pool2d", ["c1"], ["p1"],
              {"kernel": [2, 2], "stride": [2, 2], "pad": [0, 0, 0, 0], "activation": "none"}),
        ir.Op("reshape_2", "reshape", ["p1"], ["r1"], {"shape": [1, 36]}),
        ir.Op("fc_3", "fully_connected", ["r1", "w2", "b2"], ["f2"], {"activation": "none"}),
        ir.Op("softmax_4", "softmax", ["f2"], ["y"], {"beta": 1.0}),
    ]
    graph = ir.Graph(tensors, ops, ["x"], ["y"], source="tflite", source_file="small.tflite")
    params = {"w1": rng.normal(0, 0.3, (4, 3, 3, 2)).astype(np.float32),
              "b1": rng.normal(0, 0.1, 4).astype(np.float32),
              "w2": rng.normal(0, 0.2, (5, 36)).astype(np.float32),
              "b2": rng.normal(0, 0.1, 5).astype(np.float32)}
    ir.validate(graph, params)
    return graph, params


def calibration(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1, (n, 6, 6, 2)).astype(np.float32)



# ---- text that must never reach generated C as code (file names, names inside models) --------------------------
HOSTILE_NAMES = [
    "x*\\ extern int injected_1; \\*y",         # issue 11: '\' became '/' after "*/" and "/*" had been removed
    "*/ extern int injected_2; /*",
    "a */ b /* c // d ??/ \\ \n é" + "x" * 100,
    "*\\/ int injected_3; /\\*", "**//**", "*?*/", "/?*", "??/\nint injected_4;", "???/", "??=define X",
    "\\\nint injected_5;", "\"; int injected_6; //", "'", "\u2028int injected_7;\u2029", "\x00*/\x00", "é*/", "*é/",
    "/é*", "*\t/", "*\r/", "#include <injected_8.h>\n", "\n#define injected_9 1\n",
    "A" * 10_000 + "*/ int injected_10;", "*/ int injected_11;" + "B" * 10_000,
]
