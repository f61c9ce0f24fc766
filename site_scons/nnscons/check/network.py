"""The generated network as the host test binary runs it (part of :mod:`nnscons.check`): its integer inputs and
outputs, reproducible random inputs, and running the binary on arrays.

The binary's contract (runtime/nnscons_test_main.c): ``<name>_test IN.npy OUT.npy`` for a network with one input
and one output; ``<name>_test IN.npz OUT.npz`` for any network, with ``x0, x1, ...`` in and ``y0, y1, ...`` out.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from .. import fileio, ir
from ..errors import NnsconsError

BINARY_TIMEOUT = 600  # seconds; a hung binary is a failure, not a hung build


@dataclass(frozen=True)
class NetworkTensor:
    """An input or output of the generated network: what the C function reads or writes."""

    name: str
    dtype: str              # numpy name: int8, int16, ...
    shape: tuple[int, ...]  # IR layout, batch first
    scale: float
    zero_point: int

    @property
    def size(self) -> int:
        return int(np.prod(self.shape[1:], dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype).itemsize


def network_names(graph: ir.Graph, qtable: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The tensors the generated network reads and writes, in order (``ir.absorbed_conversions``: the rule code
    generation follows)."""
    inputs, outputs, _ = ir.absorbed_conversions(graph, qtable.get("tensors", {}))
    return inputs, outputs


def network_tensors(graph: ir.Graph, qtable: Mapping[str, Any]) -> tuple[list[NetworkTensor], list[NetworkTensor]]:
    """The network's integer inputs and outputs, in order (see :func:`network_names`)."""
    def describe(name: str) -> NetworkTensor:
        entry = qtable["tensors"].get(name, {})
        tensor = graph.tensors[name]
        scale = entry.get("scale") or [tensor.quant.scale[0] if tensor.quant else 1.0]
        zero_point = entry.get("zero_point") or [tensor.quant.zero_point[0] if tensor.quant else 0]
        return NetworkTensor(name, entry.get("dtype", tensor.dtype), tuple(tensor.shape), float(scale[0]),
                             int(zero_point[0]))

    names_in, names_out = network_names(graph, qtable)
    return [describe(n) for n in names_in], [describe(n) for n in names_out]


def network_io(graph: ir.Graph, qtable: Mapping[str, Any]) -> tuple[str, str]:
    """The first input and output the generated network reads and writes (one-input, one-output networks)."""
    inputs, outputs = network_names(graph, qtable)
    return inputs[0], outputs[0]


def dequantize(q: np.ndarray, tensor: Mapping[str, Any]) -> np.ndarray:
    """A network output's integers as float32 real values, with its qtable.json entry (per tensor)."""
    return ir.dequantize(q, tensor["scale"], tensor["zero_point"]).astype(np.float32)


def random_inputs(name: str, shape: Sequence[int], dtype: str, count: int) -> np.ndarray:
    """Reproducible random inputs of an integer network input (seeded by ``name``), over its whole range."""
    if np.dtype(dtype).kind not in "iu":
        raise NnsconsError(None, f"random inputs for {name}: {dtype} is not an integer type")
    seed = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")
    info = np.iinfo(np.dtype(dtype))
    rng = np.random.default_rng(seed)
    return rng.integers(info.min, info.max + 1, size=[count, *shape[1:]], endpoint=False).astype(dtype)


def random_network_inputs(name: str, inputs: Sequence[NetworkTensor], count: int) -> list[np.ndarray]:
    """Random inputs for every network input; one input is seeded by the model's name (as it always was),
    several by ``name:index``."""
    return [random_inputs(name if len(inputs) == 1 else f"{name}:{k}", t.shape, t.dtype, count)
            for k, t in enumerate(inputs)]


# ---- running the binary --------------------------------------------------------------------------------------------
def run_network(binary: str, inputs: Sequence[np.ndarray], n_outputs: Optional[int],
                env: Optional[Mapping[str, str]] = None, stream: bool = False) -> list[np.ndarray]:
    """Outputs of the host test binary for ``inputs`` (one array ``[N, *shape]`` per network input, IR layout,
    float32 or the input's integer type): one array per network output. ``.npy`` files for a network with one
    input and one output, else ``.npz`` (``x0, x1, ...`` in, ``y0, y1, ...`` out); ``n_outputs=None``: as many
    as the binary writes (always ``.npz``). ``stream``: the inputs as one stream (a network with state is reset
    before the first only)."""
    single = len(inputs) == 1 and n_outputs == 1
    with tempfile.TemporaryDirectory(prefix="nnscons-check-") as tmp:
        suffix = ".npy" if single else ".npz"
        in_path, out_path = os.path.join(tmp, "in" + suffix), os.path.join(tmp, "out" + suffix)
        if single:
            np.save(in_path, np.ascontiguousarray(inputs[0]))
        else:
            fileio.write_npz(in_path, {f"x{k}": x for k, x in enumerate(inputs)})
        try:
            command = [binary] + (["--stream"] if stream else []) + [in_path, out_path]
            result = subprocess.run(command, capture_output=True, text=True,
                                    timeout=BINARY_TIMEOUT, env=None if env is None else dict(env))
        except subprocess.TimeoutExpired:
            raise NnsconsError(binary, f"did not finish within {BINARY_TIMEOUT} s") from None
        if result.returncode != 0:
            message = (result.stderr.strip().splitlines() or ["(no message)"])[-1]
            raise NnsconsError(binary, f"exited with status {result.returncode}: {message}")
        if single:
            return [np.load(out_path)]
        written = fileio.read_npz(out_path)
        count = len(written) if n_outputs is None else n_outputs
        if sorted(written) != sorted(f"y{k}" for k in range(count)):
            raise NnsconsError(binary, f"wrote {', '.join(sorted(written))}; expected y0 ... y{count - 1}")
        return [written[f"y{k}"] for k in range(count)]


def run_binary(binary: str, inputs: np.ndarray) -> np.ndarray:
    """Outputs of the host test binary of a one-input, one-output network for ``inputs``
    ([N, *input_shape], IR layout)."""
    return run_network(binary, [inputs], 1)[0]
