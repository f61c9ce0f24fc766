"""The inputs a firmware image runs (part of :mod:`nnscons.firmware`): the network's integer inputs and outputs,
the test set's inputs converted as the host test binary converts them, then reproducible random ones, as many as
fit :data:`SAMPLE_BUDGET` bytes (at most :data:`MAX_SAMPLES`), and the byte layout they are embedded in."""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import numpy as np

from .. import check, data, ir

SAMPLE_BUDGET = 16 * 1024   # bytes of embedded inputs per model
MAX_SAMPLES = 16            # inferences per model at most
ALIGN = 8                   # NNSCONS_FIRMWARE_ALIGN in runtime/nnscons_firmware.h


# ---- the network's integer inputs and outputs (nnscons.check's, which the host binary reads and writes) ------------
NetworkTensor = check.NetworkTensor
network_tensors = check.network_tensors


def quantize_like_host(x: np.ndarray, tensor: NetworkTensor) -> np.ndarray:
    """float -> the input's integers exactly as the host test binary does (nnscons_test_main.c ``quantize``):
    x / scale in double with scale as a float, round half away from zero, add the zero point, saturate."""
    scaled = x.astype(np.float64) / np.float64(np.float32(tensor.scale))
    scaled = np.clip(scaled, -1e9, 1e9)
    rounded = np.trunc(np.where(scaled < 0, scaled - 0.5, scaled + 0.5)).astype(np.int64) + tensor.zero_point
    info = np.iinfo(np.dtype(tensor.dtype))
    return np.clip(rounded, info.min, info.max).astype(tensor.dtype)


# ---- which inputs -------------------------------------------------------------------------------------------------
def sample_count(inputs: Sequence[NetworkTensor], budget: int = SAMPLE_BUDGET, limit: int = MAX_SAMPLES) -> int:
    sample_bytes = sum(padded(t.nbytes) for t in inputs)
    return max(1, min(limit, budget // max(sample_bytes, 1)))


def firmware_inputs(name: str, graph: ir.Graph, qtable: Mapping[str, Any], test_npz: Optional[str],
                    budget: int = SAMPLE_BUDGET, limit: int = MAX_SAMPLES) -> list[np.ndarray]:
    """Per network input, ``[N, *shape[1:]]`` integers: the test set's inputs first, then random ones."""
    inputs, _ = network_tensors(graph, qtable)
    count = sample_count(inputs, budget, limit)
    tests = _test_inputs(graph, inputs, test_npz) if test_npz else [np.zeros((0, *t.shape[1:]), t.dtype)
                                                                    for t in inputs]
    tests = [test[:count] for test in tests]
    extras = check.random_network_inputs(name, inputs, count - len(tests[0]))
    return [np.ascontiguousarray(np.concatenate([test, extra]).astype(tensor.dtype))
            for tensor, test, extra in zip(inputs, tests, extras)]


def _test_inputs(graph: ir.Graph, inputs: list[NetworkTensor], test_npz: str) -> list[np.ndarray]:
    """The test set's inputs as the network's integers (IR layout)."""
    raw = data.load_npz(test_npz)
    as_float = None
    result = []
    for key, graph_input, tensor in zip(data.input_keys(graph), graph.inputs, inputs):
        x = raw.get(key)
        if x is not None and x.dtype == np.dtype(tensor.dtype):
            data.check_input(test_npz, graph, graph_input, key, x)     # shape and type errors, one line
            perm = graph.input_perm.get(graph_input)
            result.append(np.ascontiguousarray(x.transpose(perm)) if perm else x)
            continue
        if as_float is None:
            as_float = data.load_inputs(test_npz, graph)
        result.append(quantize_like_host(as_float[graph_input], tensor))
    return result


# ---- byte layout ----------------------------------------------------------------------------------------------------
def padded(nbytes: int) -> int:
    """``nbytes`` rounded up to a multiple of :data:`ALIGN` (where the runner expects the next input)."""
    return (nbytes + ALIGN - 1) // ALIGN * ALIGN


def little_endian(a: np.ndarray) -> bytes:
    """The array's bytes as the Cortex-M (little-endian) stores them."""
    return np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
