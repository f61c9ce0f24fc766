"""``nnscons play models/<name>``: a local page to play with a built network, the seed's "play with the network to
get an intuitive understanding of how it behaves ... with different noise levels and different words and see how the
final CMSIS-NN implementation is behaving compared to the original".

A small JSON API on the standard library's ``http.server`` (127.0.0.1 only), and one self-contained page
(``templates/play.html``: plain JavaScript drawing SVG and a canvas, nothing fetched from elsewhere):

``GET /api/info``   ``{"model", "labels", "samples", "audio", "speech", "scheme"}``
``POST /api/run``   ``{"sample": i, "noise": level, "word": "yes"}`` (``word`` only for an audio model, spoken by
                    espeak-ng when it is installed, instead of test sample ``i``; ``noise`` in [0, 1]: white noise of
                    that fraction of the input's range) ->
                    ``{"float": [...], "fixed": [...], "top_float": k, "top_fixed": k, "agree": bool, "snr_db",
                    "label", "layers": [{"layer", "type", "snr_db"}], "input": [[...]], "waveform": [...]}``

The float side is the reference interpreter (the float model's answer; it equals LiteRT / onnxruntime), the fixed
side the model's host test binary, the generated C itself; the per-layer SNR comes from its trace build
(:mod:`nnscons.diagnostics`). For an audio model the front end runs as the build runs it (the ``cmsisdsp`` package,
which the generated front end equals bit for bit).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional

import numpy as np

from . import check, data, diagnostics, fileio, ir, options, reference
from .errors import NnsconsError
from .frontend import FrontendSpec, mfcc, read_frontend
from .frontend.speech import speak

PAGE = Path(__file__).resolve().parent / "templates" / "play.html"
MAX_BODY = 4096
WAVEFORM_POINTS = 800


@dataclass
class Player:
    """One built model: its folder (test set, labels, front end) and build outputs."""

    name: str
    folder: Path
    graph: ir.Graph
    params: dict[str, np.ndarray]
    qtable: dict[str, Any]
    binary: Path
    trace_binary: Optional[Path]
    frontend: Optional[FrontendSpec]
    labels: list[str]
    samples: np.ndarray           # the test set's x (raw audio for a model with a front end)
    lock: threading.Lock

    @classmethod
    def load(cls, folder: str | os.PathLike, build_dir: str | os.PathLike = "build") -> "Player":
        folder = Path(folder)
        name = folder.name
        gen, host = Path(build_dir) / name, Path(build_dir) / "host" / name
        binary = host / f"{name}_test"
        for needed in (gen / "graph.json", gen / "qtable.json", binary):
            if not needed.exists():
                raise NnsconsError(needed, f"not built: run `./dev scons target=host {name}` first")
        graph, params = ir.load(str(gen / "graph.json"), str(gen / "params.npz"))
        toml = folder / "model.toml"
        labels = options.read_labels(toml) if toml.exists() else []
        data_set = folder / "test.npz" if (folder / "test.npz").exists() else folder / "calib.npz"
        if not data_set.exists():
            raise NnsconsError(folder, "no test.npz or calib.npz to play with")
        trace = host / "trace" / f"{name}_test"
        return cls(name, folder, graph, params, fileio.read_json(str(gen / "qtable.json")), binary,
                   trace if trace.exists() else None, read_frontend(toml), labels, data.load_npz(data_set)["x"],
                   threading.Lock())

    def info(self) -> dict[str, Any]:
        return {"model": self.name, "labels": self.labels, "samples": int(len(self.samples)),
                "audio": self.frontend is not None, "speech": bool(self.frontend) and shutil.which("espeak-ng")
                is not None, "scheme": self.qtable.get("scheme")}

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        x = self._input(request)
        noise = float(request.get("noise", 0.0))
        if not 0.0 <= noise <= 1.0:
            raise NnsconsError(None, "noise must be in [0, 1]")
        rng = np.random.default_rng(int(request.get("seed", 0)))
        result: dict[str, Any] = {}
        if self.frontend is not None:
            audio = np.clip(x.astype(np.float64) + rng.normal(0, noise * 32767 * 0.25, x.shape), -32768, 32767)
            audio = np.round(audio).astype(np.int16)
            step = max(1, len(audio) // WAVEFORM_POINTS)
            result["waveform"] = (audio[::step] / 32768.0).round(4).tolist()
            spec = self.frontend
            features = mfcc.real_features(spec, mfcc.features(spec, audio[None]))[0]
            shape = data.model_input_shape(self.graph, self.graph.inputs[0])
            x = features.reshape(shape[1:])
            result["input"] = features.round(3).tolist()
        else:
            span = float(np.ptp(self.samples)) or 1.0
            x = (x.astype(np.float64) + rng.normal(0, noise * span * 0.5, x.shape)).astype(np.float32)
            result["input"] = _picture(x)
        feeds = data.inputs_of(self.folder, {"x": x[None].astype(np.float32)}, self.graph)
        floats = reference.run(self.graph, self.params, feeds)[self.graph.outputs[0]].reshape(-1)
        fixed = self._fixed(feeds[self.graph.inputs[0]])
        result.update({"float": floats.astype(float).round(5).tolist(), "fixed": fixed.round(5).tolist(),
                       "top_float": int(np.argmax(floats)), "top_fixed": int(np.argmax(fixed)),
                       "snr_db": check.snr_db(floats.astype(np.float64), fixed.astype(np.float64)),
                       "layers": self._layers(feeds)})
        result["agree"] = result["top_float"] == result["top_fixed"]
        return result

    def _input(self, request: dict[str, Any]) -> np.ndarray:
        word = request.get("word")
        if word:
            if self.frontend is None:
                raise NnsconsError(None, "a word needs a model with an audio front end")
            return _speak(str(word), self.frontend, self.samples.shape[1])
        k = request.get("sample", 0)
        if not isinstance(k, int) or not 0 <= k < len(self.samples):
            raise NnsconsError(None, f"sample must be an integer in 0..{len(self.samples) - 1}")
        return np.asarray(self.samples[k])

    def _fixed(self, x_ir: np.ndarray) -> np.ndarray:
        """The generated C's output, dequantized, for one input (``[1, ...]`` in the IR layout the binary reads)."""
        with self.lock, tempfile.TemporaryDirectory(prefix="nnscons-play-") as tmp:
            np.save(os.path.join(tmp, "in.npy"), x_ir.astype(np.float32))
            subprocess.run([str(self.binary), os.path.join(tmp, "in.npy"), os.path.join(tmp, "out.npy")],
                           check=True, capture_output=True, timeout=60)
            out = np.load(os.path.join(tmp, "out.npy")).reshape(-1)
        tensor = self.qtable["tensors"][check.network_names(self.graph, self.qtable)[1][0]]
        if out.dtype.kind == "f":
            return out.astype(np.float64)
        return ir.dequantize(out, tensor["scale"], tensor["zero_point"]).astype(np.float64)

    def _layers(self, feeds: dict[str, np.ndarray]) -> list[dict[str, Any]]:
        if self.trace_binary is None:
            return []
        with self.lock:
            traced = diagnostics.diagnose(self.name, str(self.trace_binary), self.graph, self.params, self.qtable,
                                          feeds, "play")
        return [{"layer": e["layer"], "type": e["type"], "snr_db": e["snr_db"]} for e in traced["layers"]]


def _picture(x: np.ndarray) -> list[list[float]]:
    """An input as a 2-D picture: its first two spatial axes, channels averaged (a vector as one row)."""
    a = np.asarray(x, np.float64)
    while a.ndim > 2:
        a = a.mean(axis=0) if a.shape[0] < a.shape[-1] else a.mean(axis=-1)
    return np.atleast_2d(a).round(4).tolist()


def _speak(word: str, spec: FrontendSpec, samples: int) -> np.ndarray:
    """``word`` from espeak-ng at the front end's rate, centred in a clip of ``samples``."""
    if not word.replace(" ", "").isalpha() or len(word) > 40:
        raise NnsconsError(None, "a word is up to 40 letters")
    pcm = speak(word, spec.sample_rate)[:samples]
    out = np.zeros(samples)
    start = (samples - len(pcm)) // 2
    out[start:start + len(pcm)] = pcm
    return np.clip(np.round(out), -32768, 32767).astype(np.int16)


def make_handler(player: Player) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:   # quiet: the page polls nothing, but still
            pass

        def _send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, value: Any) -> None:
            self._send(status, json.dumps(value).encode(), "application/json")

        def do_GET(self) -> None:
            if self.path in ("/", "/index.html"):
                self._send(200, PAGE.read_bytes(), "text/html; charset=utf-8")
            elif self.path == "/api/info":
                self._json(200, player.info())
            else:
                self._json(404, {"error": f"no {self.path}"})

        def do_POST(self) -> None:
            if self.path != "/api/run":
                self._json(404, {"error": f"no {self.path}"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BODY:
                self._json(400, {"error": "a JSON object of at most 4 KB"})
                return
            try:
                request = json.loads(self.rfile.read(length))
                if not isinstance(request, dict):
                    raise ValueError("not an object")
                self._json(200, player.run(request))
            except (ValueError, NnsconsError) as e:
                self._json(400, {"error": str(e)})
            except subprocess.SubprocessError as e:
                self._json(500, {"error": f"the C network failed: {e}"})
    return Handler


def serve(player: Player, port: int = 8765) -> ThreadingHTTPServer:
    """A server on 127.0.0.1:``port`` (0: any free port), not yet running (``serve_forever`` it)."""
    try:
        return ThreadingHTTPServer(("127.0.0.1", port), make_handler(player))
    except OSError as e:
        raise NnsconsError(None, f"cannot listen on 127.0.0.1:{port}: {e.strerror or e}") from None


def main(model_dir: str, build_dir: str, port: int, no_browser: bool) -> int:
    """``nnscons play``: serve until Ctrl-C."""
    player = Player.load(model_dir, build_dir)
    server = serve(player, port)
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    print(f"nnscons play: {player.name} at {url} (Ctrl-C stops)", flush=True)
    if not no_browser:
        import webbrowser
        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
