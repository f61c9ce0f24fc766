"""Row streaming (nnscons.patches, option patches): which layers stream, the step tables, the arena they need, and the
generated code bit-exact with the whole-tensor code (and TFLite Micro) on the example models, layer by layer.
"""
from __future__ import annotations

import ctypes
import json
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pytest
from tflite_micro import runtime

from conftest import SHARED
from nnscons import codegen, ir, options, patches, planner
from nnscons.errors import NnsconsError
from nnscons.importers import import_model
from test_codegen import Network, cmsis_archive, qtable_for, random_inputs, tflm_outputs, write_sources  # noqa: F401

MODELS = SHARED / "models"
SAMPLES = {"kws_dscnn_int8": "sample_input.npy", "resnet8_int8": "sample_input.npy",
           "micro_speech_int8": "sample_input_yes.npy"}


@pytest.fixture(scope="module")
def models() -> dict[str, tuple[ir.Graph, dict[str, np.ndarray], dict[str, Any], dict[str, np.ndarray]]]:
    result = {}
    for name in SAMPLES:
        graph, params = import_model(MODELS / name / "model.tflite")
        tables, qparams = qtable_for(graph, params)
        result[name] = (graph, params, tables, qparams)
    return result


def int8_tensors(tables: dict[str, Any]) -> set[str]:
    return {t for t, q in tables["tensors"].items() if q["dtype"] == "int8"}


def lowered(graph: ir.Graph, tables: dict[str, Any]) -> ir.Graph:
    return codegen.model.lower(graph, tables["tensors"]).graph


# ---- which layers stream, and how ----------------------------------------------------------------------------------
def test_streams_of_the_example_models(models: dict) -> None:
    """kws: the whole network before its global pooling, one row of every 3x3 depthwise input kept three rows (its
    window), every 1x1 input one; micro_speech: the depthwise convolution into the fully connected layer; resnet8:
    every layer before its global pooling, residual branches and stride-2 layers included."""
    expected = {"kws_dscnn_int8": (list(range(9)), 9, 29), "micro_speech_int8": ([1], 2, 25),
                "resnet8_int8": (list(range(12)), 12, 11)}
    for name, (ops, sink, steps) in expected.items():
        graph, _, tables, _ = models[name]
        (stream,) = patches.find(lowered(graph, tables), int8_tensors(tables), 0)
        assert (stream.ops, stream.sink, stream.steps) == (ops, sink, steps), name
    graph, _, tables, _ = models["kws_dscnn_int8"]
    (stream,) = patches.find(lowered(graph, tables), int8_tensors(tables), 0)
    capacities = [stream.bands[lowered(graph, tables).ops[i].outputs[0]].capacity for i in stream.ops]
    assert capacities == [3, 1, 3, 1, 3, 1, 3, 1, 1]
    assert sum(b.size for b in stream.bands.values()) == 17 * 320


def test_more_rows_per_step_need_wider_bands(models: dict) -> None:
    graph, _, tables, _ = models["kws_dscnn_int8"]
    g, int8 = lowered(graph, tables), int8_tensors(tables)
    sizes = [sum(b.size for b in patches.find(g, int8, bands)[0].bands.values()) for bands in (0, 13, 5)]
    assert sizes[0] < sizes[1] < sizes[2]
    assert patches.find(g, int8, 5)[0].rows_per_step == 5


def test_the_tables_are_verified(models: dict) -> None:
    """A band one row short, or rows dropped before a reader is done with them, is refused."""
    graph, _, tables, _ = models["resnet8_int8"]
    g = lowered(graph, tables)
    (stream,) = patches.find(g, int8_tensors(tables), 0)
    band = stream.bands[g.ops[1].outputs[0]]
    band.capacity -= 1
    with pytest.raises(NnsconsError, match="outgrows its band"):
        patches.verify(g, stream)
    band.capacity += 1
    band.keep = [min(k + 1, band.rows) for k in band.keep]
    with pytest.raises(NnsconsError, match="reads rows"):
        patches.verify(g, stream)


def test_row_windows() -> None:
    """Convolutions read ``reach`` rows from ``y * stride - pad``; a 1xN convolution, a global pooling and an
    element-wise op of unequal shapes are not row-local."""
    w = patches.Window(stride=2, pad_top=4, reach=10)
    assert (w.first_row(0, 49), w.first_row(3, 49), w.rows_until(1, 49), w.rows_until(25, 49)) == (0, 2, 6, 49)
    tensors = {"x": ir.Tensor("x", [1, 4, 8, 2], "int8"), "w": ir.Tensor("w", [2, 1, 3, 2], "int8", is_const=True),
               "y": ir.Tensor("y", [1, 4, 8, 2], "int8"), "p": ir.Tensor("p", [1, 1, 1, 2], "int8"),
               "v": ir.Tensor("v", [1, 1, 8, 2], "int8"), "s": ir.Tensor("s", [1, 4, 8, 2], "int8")}
    ops = [ir.Op("c", "conv2d", ["x", "w"], ["y"], {"pad": [0, 0, 1, 1], "stride": [1, 1]}),
           ir.Op("g", "avg_pool2d", ["y"], ["p"], {"kernel": [4, 8], "stride": [4, 8]}),
           ir.Op("a", "add", ["y", "v"], ["s"], {})]
    graph = ir.Graph(tensors, ops, ["x"], ["p", "s"])
    assert [patches.window(graph, op) for op in ops] == [None, None, None]
    assert patches.is_sink(graph, ops[1])


def test_plan_keeps_bands_only_during_the_stream(models: dict) -> None:
    """Each band is its capacity's rows, live only at the sink (where the stream runs), beside the sink's sums; the
    stream's whole input lives until then; the arena shrinks."""
    graph, _, tables, _ = models["kws_dscnn_int8"]
    g = lowered(graph, tables)
    streams = patches.find(g, int8_tensors(tables), 0)
    whole, streamed = planner.plan(g, tables), planner.plan(g, tables, None, streams)
    for tensor, band in streams[0].bands.items():
        buffer = streamed.by_tensor[tensor]
        assert (buffer.size, buffer.first, buffer.last) == (band.size, 9, 9)
    sums = streamed.by_tensor[planner.sums_name(g, 9)]
    assert (sums.size, sums.first, sums.last) == (64 * 4, 9, 9)
    assert streamed.by_tensor[g.inputs[0]].last == 9
    assert streamed.arena_size < whole.arena_size // 2


def test_the_patches_option() -> None:
    assert [patches.parse(v) for v in ("off", "auto", "3")] == [None, 0, 3]
    for bad in ("0", "-1", "many", ""):
        with pytest.raises(NnsconsError, match="patches"):
            patches.parse(bad)
        with pytest.raises(NnsconsError, match="patches"):
            options.check_patches(bad)


def test_plan_json_lists_the_streams(models: dict) -> None:
    graph, _, tables, qparams = models["micro_speech_int8"]
    plan = json.loads(codegen.generate("m", graph, tables, qparams, "s8", "h", bands=0)["plan.json"])
    (stream,) = plan["streams"]
    assert stream["sink"] == 2 and stream["bands"]["Relu"] == {"rows": 25, "row_bytes": 160, "capacity": 1}
    assert plan["activation_arena_size"] < 5968 // 2
    off = json.loads(codegen.generate("m", graph, tables, qparams, "s8", "h")["plan.json"])
    assert off["streams"] == [] and off["activation_arena_size"] == 5968


# ---- the generated code --------------------------------------------------------------------------------------------
TRACE_HOOK = r"""
#include <stdint.h>
#include <string.h>
/* every traced byte, in call order */
unsigned char trace_bytes[1 << 21];
uint32_t trace_used;
uint32_t trace_layer[1 << 14];
uint32_t trace_count[1 << 14]; /* bytes per call */
uint32_t trace_calls;
void nnscons_trace(const char *model, uint32_t layer_index, const char *layer_name, const void *output,
                   uint32_t element_size, uint32_t count)
{
    (void)model;
    (void)layer_name;
    memcpy(trace_bytes + trace_used, output, (size_t)element_size * count);
    trace_used += element_size * count;
    trace_layer[trace_calls] = layer_index;
    trace_count[trace_calls++] = element_size * count; /* bytes */
}
"""


class Traced(Network):
    """A generated network compiled with -DNNSCONS_TRACE and a hook keeping every traced byte."""

    def __init__(self, name: str, directory: Path, archive: Path) -> None:
        (directory / "hook.c").write_text(TRACE_HOOK, encoding="utf-8")
        super().__init__(name, directory, archive, ["-DNNSCONS_TRACE"], [directory / "hook.c"], f"lib{name}_traced.so")

    def layers(self, x: np.ndarray) -> dict[int, bytes]:
        """Each traced layer's output bytes of one inference (a streamed layer's bands concatenated)."""
        for symbol in ("trace_used", "trace_calls"):
            ctypes.c_uint32.in_dll(self.lib, symbol).value = 0
        self(x)
        calls = ctypes.c_uint32.in_dll(self.lib, "trace_calls").value
        layer = (ctypes.c_uint32 * calls).in_dll(self.lib, "trace_layer")
        count = (ctypes.c_uint32 * calls).in_dll(self.lib, "trace_count")
        data = ctypes.string_at(ctypes.addressof(ctypes.c_ubyte.in_dll(self.lib, "trace_bytes")),
                                ctypes.c_uint32.in_dll(self.lib, "trace_used").value)
        result: dict[int, bytes] = {}
        at = 0
        for k in range(calls):
            result[layer[k]] = result.get(layer[k], b"") + data[at:at + count[k]]
            at += count[k]
        return result


def build_traced(name: str, models: dict, directory: Path, archive: Path, bands: Optional[int]) -> Traced:
    graph, _, tables, qparams = models[name]
    files = codegen.generate(name, graph, tables, qparams, "s8", "h", bands=bands)
    return Traced(name, write_sources(files, directory), archive)


@pytest.mark.slow
@pytest.mark.parametrize("bands", [0, 3], ids=["auto", "3-bands"])
@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_streamed_network_is_the_whole_tensor_network(name: str, bands: int, models: dict, tmp_path: Path,
                                                      cmsis_archive: Path) -> None:  # noqa: F811
    """Every layer's output, band by band, and the network's, equal the whole-tensor code's and TFLite Micro's
    on the sample and random inputs."""
    whole = build_traced(name, models, tmp_path / "whole", cmsis_archive, None)
    streamed = build_traced(name, models, tmp_path / "streamed", cmsis_archive, bands)
    assert "nnscons_rows_window" in (tmp_path / "streamed" / f"{name}_model.c").read_text()
    interpreter = runtime.Interpreter.from_file(str(MODELS / name / "model.tflite"))
    shape = tuple(interpreter.get_input_details(0)["shape"])
    xs = [np.load(MODELS / name / SAMPLES[name]).reshape(shape)] + random_inputs(interpreter, 6, seed=7)
    for x in xs:
        expected = whole.layers(x)
        assert streamed.layers(x) == expected
        (y,) = streamed(x)
        np.testing.assert_array_equal(y.reshape(-1), tflm_outputs(interpreter, x).reshape(-1))
