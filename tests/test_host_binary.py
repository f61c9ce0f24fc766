"""The host test binary's file contract (runtime/nnscons_test_main.c, nnscons_npy.h, nnscons_npz.h), under
AddressSanitizer and UndefinedBehaviorSanitizer with the host target's warning flags.

The network is a hand-written stand-in with the descriptor of a generated model (tests/host_io/pair_model.c: two
inputs of different types and shapes, two outputs), so every path of the file handling is reached without code
generation: .npy for one input and one output, .npz (x0, x1, ... in; y0, y1, ... out) for any network, and one
clear line (exit status 1, or 2 for usage) for every bad file, before anything large is allocated.
"""
from __future__ import annotations

import os
import subprocess
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from nnscons import fileio, targets

pytestmark = pytest.mark.slow   # compiles C with sanitizers

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = ROOT / "site_scons" / "nnscons" / "runtime"
PAIR = Path(__file__).resolve().parent / "host_io"


@pytest.fixture(scope="module")
def binaries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``pair`` (two inputs, two outputs) and ``single`` (x0 -> y0 only), sanitized and warning-free."""
    host = targets.load_target(str(ROOT / "targets" / "host"))
    out = tmp_path_factory.mktemp("pair")
    result = {}
    for name, defines in (("pair", []), ("single", ["-DPAIR_SINGLE"])):
        binary = out / f"{name}_test"
        subprocess.run([host.cc, *host.cflags, *host.warnings, *host.sanitize_flags, *defines, f"-I{RUNTIME}",
                        f"-I{PAIR}", "-DNNSCONS_MODEL_INFO=pair_info", "-include", "pair_model.h",
                        str(RUNTIME / "nnscons_test_main.c"), str(PAIR / "pair_model.c"), "-o", str(binary),
                        *(f"-l{lib}" for lib in host.libs)], check=True, capture_output=True, text=True)
        result[name] = binary
    return result


def pair_outputs(x0: np.ndarray, x1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What pair_model.c computes."""
    y0 = np.clip(-x0.astype(np.int32), -128, 127).astype(np.int8)
    s = x1.astype(np.int32)
    y1 = np.stack([s[:, 0] + s[:, 1] + x0.reshape(len(x0), -1)[:, 0], s[:, 2] + s[:, 3]], axis=1)
    return y0, np.clip(y1, -32768, 32767).astype(np.int16)


def run(binary: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary), *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def one_line_error(result: subprocess.CompletedProcess, status: int = 1) -> str:
    """The single stderr line of a refused run (no sanitizer report, no crash)."""
    assert result.returncode == status, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


X0 = np.array([[[1, 2, 3], [-128, 127, 0]], [[5, 6, 7], [8, 9, 10]], [[0, 0, 0], [1, 1, 1]]], np.int8)
X1 = np.array([[1, 2, 3, 4], [30000, 30000, -5, -6], [-32768, -1, 7, 7]], np.int16)


# ---- the contract --------------------------------------------------------------------------------------------------
def test_npz_in_npz_out_for_two_inputs_and_two_outputs(binaries: dict, tmp_path: Path) -> None:
    np.savez(tmp_path / "in.npz", x0=X0, x1=X1)                             # numpy's own archive (zip64 headers)
    fileio.write_npz(tmp_path / "in2.npz", {"x1": X1, "x0": X0})             # nnscons' (sorted, fixed timestamps)
    for name in ("in.npz", "in2.npz"):
        result = run(binaries["pair"], tmp_path, name, "out.npz")
        assert result.returncode == 0 and result.stderr == ""
        with zipfile.ZipFile(tmp_path / "out.npz") as archive:
            assert archive.testzip() is None and archive.namelist() == ["y0.npy", "y1.npy"]   # CRCs right
        out = fileio.read_npz(tmp_path / "out.npz")
        y0, y1 = pair_outputs(X0, X1)
        assert out["y0"].dtype == np.int8 and np.array_equal(out["y0"], y0)
        assert out["y1"].dtype == np.int16 and np.array_equal(out["y1"], y1)


def test_float_inputs_are_quantized_per_input(binaries: dict, tmp_path: Path) -> None:
    """x0 has scale 0.5 and zero point 1, x1 scale 0.25: floats come out as those integers."""
    np.savez(tmp_path / "in.npz", x0=(X0.astype(np.float32) - 1) * 0.5, x1=X1.astype(np.float32) * 0.25)
    assert run(binaries["pair"], tmp_path, "in.npz", "out.npz").returncode == 0
    y0, y1 = pair_outputs(X0, X1)
    out = fileio.read_npz(tmp_path / "out.npz")
    assert np.array_equal(out["y0"], y0) and np.array_equal(out["y1"], y1)


def test_one_input_and_output_keep_npy_and_may_use_npz(binaries: dict, tmp_path: Path) -> None:
    np.save(tmp_path / "in.npy", X0)
    assert run(binaries["single"], tmp_path, "in.npy", "out.npy").returncode == 0
    assert np.array_equal(np.load(tmp_path / "out.npy"), pair_outputs(X0, X1)[0])
    np.savez(tmp_path / "in.npz", x0=X0)
    assert run(binaries["single"], tmp_path, "in.npz", "out.npz").returncode == 0
    assert np.array_equal(np.load(tmp_path / "out.npz")["y0"], pair_outputs(X0, X1)[0])


def test_zero_samples_give_empty_outputs(binaries: dict, tmp_path: Path) -> None:
    np.savez(tmp_path / "in.npz", x0=X0[:0], x1=X1[:0])
    assert run(binaries["pair"], tmp_path, "in.npz", "out.npz").returncode == 0
    out = fileio.read_npz(tmp_path / "out.npz")
    assert out["y0"].shape == (0, 2, 3) and out["y1"].shape == (0, 2)


# ---- bad files: one line, nothing written ---------------------------------------------------------------------------
def npy_header(shape: tuple[int, ...], descr: str = "|i1") -> bytes:
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"
    text += " " * (118 - len(text)) + "\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode()


@pytest.mark.parametrize("samples", [2 ** 40, 2 ** 26])
def test_a_header_claiming_more_than_the_file_holds_is_refused_at_once(binaries: dict, tmp_path: Path,
                                                                       samples: int) -> None:
    """Before, 2^40 samples aborted in ASan's allocator and 2^26 took 70 s and 2.1 GB before "truncated .npy
    data": the header is now checked against the file's size before anything is allocated."""
    (tmp_path / "in.npy").write_bytes(npy_header((samples, 2, 3)) + bytes(60))
    start = time.monotonic()
    line = one_line_error(run(binaries["single"], tmp_path, "in.npy", "out.npy"))
    assert time.monotonic() - start < 10
    assert line.endswith(f"in.npy: truncated .npy data: the header's shape needs {samples * 6} bytes, the file "
                         "holds 60")
    assert not (tmp_path / "out.npy").exists()


def test_a_lying_header_inside_an_npz_is_refused(binaries: dict, tmp_path: Path) -> None:
    member = npy_header((2 ** 40, 2, 3)) + X0.tobytes()
    with zipfile.ZipFile(tmp_path / "in.npz", "w") as archive:
        archive.writestr("x0.npy", member)
        archive.writestr("x1.npy", _npy_bytes(X1))
    line = one_line_error(run(binaries["pair"], tmp_path, "in.npz", "out.npz"))
    assert "in.npz: x0.npy: truncated .npy data: the header's shape needs 6597069766656 bytes, the file holds 18" \
        in line


def _npy_bytes(array: np.ndarray) -> bytes:
    import io
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.mark.parametrize("make, message", [
    (lambda p: np.savez_compressed(p / "in.npz", x0=X0, x1=X1),
     "in.npz: x0.npy: compressed member (np.savez_compressed?); save the arrays with np.savez"),
    (lambda p: np.savez(p / "in.npz", x0=X0), r"in.npz: no array x1 (the network has 2 inputs: x0, x1)"),
    (lambda p: np.savez(p / "in.npz", x0=X0, x1=X1, x2=X1), "in.npz: unexpected member x2.npy (the network has 2 "
                                                            "inputs: x0, x1)"),
    (lambda p: np.savez(p / "in.npz", x0=X0, x01=X1), "in.npz: unexpected member x01.npy"),
    (lambda p: np.savez(p / "in.npz", x0=X0, x1=X1[:2]), "in.npz: x1.npy: 2 samples, x0 has 3: every input "
                                                         "needs the same number"),
    (lambda p: np.savez(p / "in.npz", x0=X0, x1=X1.astype(np.int8)),
     "in.npz: x1.npy: dtype does not fit the network input: expected int16 or float32"),
    (lambda p: np.savez(p / "in.npz", x0=X0.reshape(3, 6), x1=X1),
     "in.npz: x0.npy: shape does not fit the network input: expected [N, 2, 3]"),
    (lambda p: (p / "in.npz").write_bytes(_npy_bytes(X0)), "in.npz: the network has 2 inputs: give an .npz holding "
                                                          "x0, x1"),
    (lambda p: (p / "in.npz").write_bytes(b"PK\x03\x04" + bytes(100)), "in.npz: not an .npz file (no zip "
                                                                       "directory)"),
    (lambda p: (p / "in.npz").write_text("hello, world"), "in.npz: neither a .npy nor an .npz file"),
])
def test_bad_npz_inputs_are_one_line(binaries: dict, tmp_path: Path, make, message: str) -> None:
    make(tmp_path)
    line = one_line_error(run(binaries["pair"], tmp_path, "in.npz", "out.npz"))
    assert line.endswith(message) or message in line, line
    assert not (tmp_path / "out.npz").exists()


def test_damaged_archives_are_one_line(binaries: dict, tmp_path: Path) -> None:
    np.savez(tmp_path / "good.npz", x0=X0, x1=X1)
    good = (tmp_path / "good.npz").read_bytes()
    at = good.index(X0.tobytes())
    flipped = good[:at] + bytes([good[at] ^ 1]) + good[at + 1:]          # a data byte: the CRC catches it
    (tmp_path / "in.npz").write_bytes(flipped)
    assert one_line_error(run(binaries["pair"], tmp_path, "in.npz", "out.npz")).endswith(
        "in.npz: x0.npy: CRC-32 mismatch: the archive is damaged")
    for cut in (len(good) - 30, len(good) // 2, 10):                      # truncated anywhere
        (tmp_path / "in.npz").write_bytes(good[:cut])
        assert "in.npz" in one_line_error(run(binaries["pair"], tmp_path, "in.npz", "out.npz"))
    directory = good.index(b"PK\x01\x02")                                 # a local header offset past the end
    broken = bytearray(good)
    broken[directory + 42:directory + 46] = (len(good) + 1000).to_bytes(4, "little")
    (tmp_path / "in.npz").write_bytes(bytes(broken))
    assert "damaged zip member header" in one_line_error(run(binaries["pair"], tmp_path, "in.npz", "out.npz"))


def test_bytes_after_the_data_are_refused(binaries: dict, tmp_path: Path) -> None:
    (tmp_path / "in.npy").write_bytes(_npy_bytes(X0) + b"junk")
    line = one_line_error(run(binaries["single"], tmp_path, "in.npy", "out.npy"))
    assert line.endswith("in.npy: 4 bytes after the array's data (the header's shape needs 18): not an array numpy "
                         "wrote")


def test_usage_errors_exit_2(binaries: dict, tmp_path: Path) -> None:
    np.savez(tmp_path / "in.npz", x0=X0, x1=X1)
    line = one_line_error(run(binaries["pair"], tmp_path, "in.npz", "out.npy"), status=2)
    assert line.endswith("out.npy: the network has 2 outputs: name the output file *.npz (it receives y0, y1)")
    assert not (tmp_path / "out.npy").exists()
    assert run(binaries["pair"], tmp_path, "in.npz").returncode == 2


def test_an_unwritable_output_is_one_line_and_leaves_nothing(binaries: dict, tmp_path: Path) -> None:
    np.savez(tmp_path / "in.npz", x0=X0, x1=X1)
    line = one_line_error(run(binaries["pair"], tmp_path, "in.npz", "no/such/dir/out.npz"))
    assert "no/such/dir/out.npz: No such file or directory" in line
    if os.path.exists("/dev/full"):                                       # a full disk: the write fails
        (tmp_path / "full.npz").symlink_to("/dev/full")
        line = one_line_error(run(binaries["pair"], tmp_path, "in.npz", "full.npz"))
        assert line.endswith("full.npz: write failed")
        assert not os.path.lexists(tmp_path / "full.npz")                 # removed, not left half-written
