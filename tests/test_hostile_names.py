"""Hostile names cannot reach generated C as code: comment terminators, quotes, newlines, #include, backslashes,
trigraphs, 10 kB names and non-ASCII text, in a model's file name and inside the model (TFLite tensor names and
description; ONNX tensor, node, graph and initializer names, doc strings, metadata), through import, quantization
and code generation. The C is compiled with -Werror; after the compiler's own preprocessing no hostile fragment
is left outside string literals, and every comment is free of delimiters, trigraphs and line continuations."""
from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tflite
from onnx import TensorProto, helper, numpy_helper

from conftest import HOSTILE_NAMES
from nnscons import cli
from nnscons import options as nn_options

pytestmark = pytest.mark.slow   # compiles every generated file

ROOT = Path(__file__).resolve().parents[1]
CMSIS_INCLUDE = ROOT / "cmsis" / "Include"
FILE_NAMES = ["x*\\ extern int injected_f1; \\*y", "a**\\\\ int injected_f2; \\\\**b", "n\n#include \"injected_f3.h\"\n",
              "é??\\\nint injected_f4;", "q\"'`$(injected_f5)"]
INJECTED = re.compile(rb"injected_\w+")


# ---- hostile models ---------------------------------------------------------------------------------------------
def _set_string(out: bytearray, table, vtable_offset: int, text: str) -> None:
    """Point a table's string field at ``text``, appended to the buffer (a uoffset counts forward from the field)."""
    field = table._tab.Offset(vtable_offset)
    assert field, "the field must exist"
    position = table._tab.Pos + field
    out.extend(b"\0" * (-len(out) % 4))
    encoded = text.encode("utf-8", "surrogatepass")
    target = len(out)
    out.extend(struct.pack("<I", len(encoded)) + encoded + b"\0")
    struct.pack_into("<I", out, position, target - position)


def hostile_tflite(source: Path) -> bytes:
    """The model with every tensor of subgraph 0 and the model description renamed to hostile text."""
    data = source.read_bytes()
    out = bytearray(data)
    model = tflite.Model.GetRootAsModel(data, 0)
    graph = model.Subgraphs(0)
    for i in range(graph.TensorsLength()):
        _set_string(out, graph.Tensors(i), 10, f"{HOSTILE_NAMES[i % len(HOSTILE_NAMES)]} #{i}")   # Tensor.name
    _set_string(out, model, 10, HOSTILE_NAMES[1])                                                  # description
    return bytes(out)


def hostile_onnx() -> bytes:
    """A float MLP (Gemm, Relu, Gemm, Softmax) whose every name and doc string is hostile."""
    rng = np.random.default_rng(3)
    names = iter(f"{HOSTILE_NAMES[i % len(HOSTILE_NAMES)]} #{i}" for i in range(1000))
    x, h, r, z, y, w1, b1, w2, b2 = (next(names) for _ in range(9))
    inits = [numpy_helper.from_array(rng.normal(0, 0.5, shape).astype(np.float32), name)
             for name, shape in ((w1, (6, 8)), (b1, (6,)), (w2, (4, 6)), (b2, (4,)))]
    nodes = [helper.make_node("Gemm", [x, w1, b1], [h], name=next(names), transB=1, doc_string=next(names)),
             helper.make_node("Relu", [h], [r], name=next(names)),
             helper.make_node("Gemm", [r, w2, b2], [z], name=next(names), transB=1),
             helper.make_node("Softmax", [z], [y], name=next(names), axis=1)]
    graph = helper.make_graph(nodes, next(names), [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 8])],
                              [helper.make_tensor_value_info(y, TensorProto.FLOAT, [1, 4])], inits,
                              doc_string=next(names))
    model = helper.make_model(graph, producer_name=next(names), doc_string=next(names),
                              opset_imports=[helper.make_opsetid("", 13)])
    helper.set_model_props(model, {next(names): next(names)})
    return model.SerializeToString()


def cases(tmp: Path) -> list[tuple[str, Path, Path | None]]:
    """(case, model file with a hostile name, calibration set or None)."""
    found = []
    sources = {"int8.tflite": (hostile_tflite(ROOT / "models" / "hello_world_int8" / "model.tflite"), None),
               "float.tflite": (hostile_tflite(ROOT / "models" / "hello_world_float" / "model.tflite"),
                                np.linspace(-3, 3, 24, dtype=np.float32).reshape(24, 1)),
               "float.onnx": (hostile_onnx(), np.random.default_rng(4).normal(0, 1, (24, 8)).astype(np.float32))}
    for k, (kind, (data, calib)) in enumerate(sources.items()):
        folder = tmp / f"case{k}"
        folder.mkdir()
        model = folder / (FILE_NAMES[k % len(FILE_NAMES)] + "." + kind.split(".")[1])
        model.write_bytes(data)
        calib_path = None
        if calib is not None:
            calib_path = folder / "calib.npz"
            np.savez(calib_path, x=calib)
        found.append((kind, model, calib_path))
    extra = tmp / "names"                                   # every file name on one model
    extra.mkdir()
    for name in FILE_NAMES:
        model = extra / (name + ".tflite")
        shutil.copy(ROOT / "models" / "hello_world_int8" / "model.tflite", model)
        found.append((f"file name {name!r}", model, None))
    return found


# ---- the C, read as C --------------------------------------------------------------------------------------------
_C_TOKENS = re.compile(rb'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)


def split_c(text: bytes) -> tuple[bytes, list[bytes]]:
    """The code with comments and literals blanked, and the comments."""
    comments = [m.group(0) for m in _C_TOKENS.finditer(text) if m.group(0)[:2] in (b"/*", b"//")]
    return _C_TOKENS.sub(b" ", text), comments


def check_c_file(path: Path) -> None:
    text = path.read_bytes()
    assert all(b < 128 for b in text), f"{path.name}: not ASCII"
    assert b"??" not in text, f"{path.name}: a trigraph"
    code, comments = split_c(text)
    assert not INJECTED.search(code), f"{path.name}: {INJECTED.search(code).group(0)!r} is code"
    for comment in comments:
        body = comment[2:-2] if comment.startswith(b"/*") else comment[2:]
        assert b"/*" not in body and b"\\" not in body, comment


def compile_and_preprocess(c_file: Path, include: Path) -> None:
    flags = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", f"-I{include}", f"-I{CMSIS_INCLUDE}"]
    result = subprocess.run(["gcc", *flags, "-c", str(c_file), "-o", "/dev/null"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    result = subprocess.run(["gcc", *flags, "-E", "-P", str(c_file)], capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    code = re.sub(rb'"(?:\\.|[^"\\\n])*"', b'""', result.stdout)      # the compiler removed the comments
    assert not INJECTED.search(code), INJECTED.search(code).group(0)


def test_hostile_names_reach_c_only_as_comment_text(tmp_path: Path) -> None:
    seen_in_comments = 0
    for case, model, calib in cases(tmp_path):
        out = model.parent / f"out-{len(list(model.parent.iterdir()))}"
        values = nn_options.resolve({}, {"quant": "auto" if calib is None else "int8"})
        outputs = [Path(p) for p in cli.generate(str(model), str(out), "hostile", str(calib) if calib else None,
                                                 values, str(out / "work"))]
        assert [p.name for p in outputs] == ["hostile.h", "hostile_model.c", "hostile_weights.c"], case
        for path in outputs:
            check_c_file(path)
            seen_in_comments += len(INJECTED.findall(b"".join(split_c(path.read_bytes())[1])))
        for path in outputs[1:]:
            compile_and_preprocess(path, out)
    assert seen_in_comments > 10     # the names did reach the C, defused
