"""report.html (nnscons.report_html): a self-contained, deterministic page, and what a browser shows of it.

digits_cnn is built (q7, minmax) into a private folder with the build's stage functions, checked, traced, and its
page rendered; a headless Chromium takes a screenshot, which must show the page's pictures.
"""
from __future__ import annotations

import base64
import html.parser
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from nnscons import check, diagnostics, experiments, fileio, ir, project, report_html

pytestmark = pytest.mark.slow   # whole-model builds, a headless browser

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "build" / "test-cache"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("report")
    folder = project.find_model(str(ROOT / "models" / "digits_cnn"))
    prepared = experiments.prepare(folder, out)
    tools = experiments.default_tools(out, cache_dir=CACHE)
    config_dir = out / "q7-minmax-s8"
    binary = experiments.build_config(prepared, experiments.Config("q7", "minmax"), config_dir, tools, trace=True)
    files = {"report": config_dir / "report.json", "diagnostics": config_dir / "diagnostics.json",
             "qtable": config_dir / "qtable.json", "plan": config_dir / "plan.json",
             "ranges": config_dir / "ranges.json", "graph": Path(prepared.graph_json), "stats": Path(prepared.stats_npz)}
    check.check_model("digits_cnn", str(binary), None, folder.model, prepared.graph_json, prepared.params_npz,
                      str(files["qtable"]), folder.test, str(files["report"]))
    diagnostics.diagnostics_stage("digits_cnn", str(experiments.trace_binary(config_dir, "digits_cnn")),
                                  prepared.graph_json, prepared.params_npz, str(files["qtable"]), folder.test,
                                  str(files["diagnostics"]))
    page = config_dir / "report.html"
    render(files, page)
    return {"files": files, "page": page, "out": out}


def render(files: dict, page: Path, stats: bool = True) -> None:
    report_html.report_stage("digits_cnn", str(files["report"]), str(files["graph"]), str(files["qtable"]),
                             str(files["plan"]), str(page), str(files["diagnostics"]),
                             str(files["stats"]) if stats else None, str(files["ranges"]))


class _Page(html.parser.HTMLParser):
    """The images (alt text and data) and the text of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[tuple[str, str]] = []
        self.text: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = dict(attrs)
        if tag == "img":
            self.images.append((attributes.get("alt", ""), attributes.get("src", "")))
        for key in ("src", "href"):
            value = attributes.get(key) or ""
            if value and not value.startswith(("data:", "#")):
                self.external.append(value)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: Path) -> _Page:
    parser = _Page()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def test_page_holds_the_histograms_the_tables_and_the_plan(built: dict) -> None:
    page = parse(built["page"])
    graph = ir.Graph.from_json(fileio.read_json(built["files"]["graph"]))
    alts = [alt for alt, _ in page.images]
    assert alts == ["SNR per layer chart"] + [f"histogram of {op.name} input and output" for op in graph.ops] + \
        ["arena plan picture"]
    for _, src in page.images:                      # every picture is an embedded, decodable PNG
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert page.external == []                      # self-contained: nothing to fetch
    text = " ".join(page.text)
    plan = fileio.read_json(built["files"]["plan"])
    assert f"Activation arena {plan['activation_arena_size']} bytes" in text
    assert all(b["name"] in text for b in plan["buffers"])
    assert "Q3.4" in text and "out_shift" in text             # the Q-format table
    assert "97.50% quantized, 98.06% float" in text           # accuracy from report.json
    diag = fileio.read_json(built["files"]["diagnostics"])
    assert all(e["layer"] in text for e in diag["layers"])
    softmax = diag["layers"][-1]                               # probabilities near 1 do not fit Q0.7's 127/128
    assert softmax["saturated"] > 100 and f"{softmax['saturated']} ({softmax['saturated_pct']:.2f}%)" in text


def test_page_is_deterministic(built: dict, tmp_path: Path) -> None:
    again = tmp_path / "again.html"
    render(built["files"], again)
    assert again.read_bytes() == built["page"].read_bytes()


def test_pages_drawn_at_once_in_threads_are_the_pages_drawn_alone(built: dict, tmp_path: Path) -> None:
    """SCons runs Python actions in threads (-j2): two reports drawn at once must not change each other's bytes
    (matplotlib's settings are process-wide)."""
    from concurrent.futures import ThreadPoolExecutor
    alone = tmp_path / "alone.html"
    render(built["files"], alone, stats=False)
    pages = [(tmp_path / f"page{i}.html", i % 2 == 0) for i in range(8)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda page: render(built["files"], page[0], stats=page[1]), pages))
    for page, with_stats in pages:
        expected = built["page"] if with_stats else alone
        assert page.read_bytes() == expected.read_bytes(), page.name


def test_page_without_statistics_says_so(built: dict, tmp_path: Path) -> None:
    page = tmp_path / "nostats.html"
    render(built["files"], page, stats=False)
    parsed = parse(page)
    assert [alt for alt, _ in parsed.images] == ["SNR per layer chart", "arena plan picture"]
    assert "No calibration statistics" in " ".join(parsed.text)


def test_labels_from_the_model_are_escaped(built: dict, tmp_path: Path) -> None:
    graph = fileio.read_json(built["files"]["graph"])
    graph["ops"][0]["label"] = "<script>alert('x')</script>"
    files = dict(built["files"], graph=tmp_path / "graph.json")
    fileio.write_json(files["graph"], graph)
    render(files, tmp_path / "evil.html", stats=False)          # the label is in the formats table too
    text = (tmp_path / "evil.html").read_text()
    assert "<script>" not in text and "&lt;script&gt;" in text


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (./dev setup installs it)")
def test_screenshot_shows_the_page(built: dict, tmp_path: Path) -> None:
    """A headless Chromium renders the page; the screenshot is not blank: it has text, the blue histogram
    bars and the plan's colours."""
    shot = built["out"] / "report-screenshot.png"
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path}",
               f"--screenshot={shot}", "--window-size=1200,3000", built["page"].as_uri()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    import matplotlib.image
    pixels = matplotlib.image.imread(str(shot))[..., :3]
    assert pixels.shape[:2] == (3000, 1200)
    not_white = np.any(pixels < 0.95, axis=2)
    assert not_white.mean() > 0.08                                # text and pictures, not an empty page
    blue = (pixels[..., 2] > 0.6) & (pixels[..., 0] < 0.6) & (pixels[..., 1] < 0.8)
    assert blue.mean() > 0.005                                    # the histograms' bars
    rows_with_ink = not_white.any(axis=1)
    assert rows_with_ink[2000:].mean() > 0.5                      # the page goes on below the first screen
