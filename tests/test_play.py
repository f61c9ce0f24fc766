"""nnscons play: the JSON API on a built audio model, and the page in a real browser (headless Chromium driven by
selenium through chromedriver): it loads, the noise slider moves, and both results are read from the DOM."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from nnscons import play
from test_frontend import clips
from test_frontend_chain import TOML, audio_project

pytestmark = pytest.mark.slow   # an SCons build, a browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    directory = tmp_path_factory.mktemp("play-project")
    folder = audio_project(directory, TOML.replace("[frontend]", 'labels = ["backward", "yes", "no"]\n\n[frontend]'))
    subprocess.run([sys.executable, "-m", "SCons", "-Q", "-j2", "target=host", "check"], cwd=directory, check=True,
                   capture_output=True, timeout=900)
    httpd = play.serve(play.Player.load(folder, directory / "build"), 0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url + "/api/run", json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_api_runs_the_float_model_and_the_generated_c(server: str) -> None:
    with urllib.request.urlopen(server + "/api/info", timeout=30) as response:
        info = json.loads(response.read())
    assert info["labels"] == ["backward", "yes", "no"] and info["audio"] and info["samples"] == len(clips())
    status, quiet = post(server, {"sample": 1, "noise": 0})
    assert status == 200 and len(quiet["float"]) == len(quiet["fixed"]) == 3
    assert quiet["top_float"] == int(np.argmax(quiet["float"])) and quiet["top_fixed"] == int(np.argmax(quiet["fixed"]))
    assert quiet["snr_db"] > 20 and [entry["layer"] for entry in quiet["layers"]][0]
    assert len(quiet["waveform"]) > 100 and np.array(quiet["input"]).shape == (49, 10)
    _, noisy = post(server, {"sample": 1, "noise": 0.8})
    assert noisy["float"] != quiet["float"]            # the noise reaches both networks
    for bad in ({"sample": 999}, {"sample": 0, "noise": 3}, {"word": "a" * 50}):
        status, answer = post(server, bad)
        assert status == 400 and answer["error"]


@pytest.mark.skipif(shutil.which("chromedriver") is None or shutil.which("chromium") is None,
                    reason="needs chromium and chromium-driver (Debian)")
def test_the_page_in_a_real_browser(server: str, tmp_path: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get(server + "/")
        wait = WebDriverWait(driver, 120)
        runs = lambda: int(driver.find_element(By.ID, "status").get_attribute("data-runs") or 0)  # noqa: E731
        wait.until(lambda d: runs() >= 1)
        first = (driver.find_element(By.ID, "top-float").text, driver.find_element(By.ID, "top-fixed").text)
        driver.execute_script("const s = document.getElementById('noise'); s.value = 60;"
                              "s.dispatchEvent(new Event('input')); s.dispatchEvent(new Event('change'));")
        wait.until(lambda d: runs() >= 2)
        assert driver.find_element(By.ID, "noise-value").text == "60%"
        top_float, top_fixed = (driver.find_element(By.ID, i).text for i in ("top-float", "top-fixed"))
        assert all(t.split(" ")[0] in ("backward", "yes", "no") for t in first + (top_float, top_fixed))
        assert len(driver.find_elements(By.CSS_SELECTOR, "#float-bars rect")) == 3
        assert len(driver.find_elements(By.CSS_SELECTOR, "#fixed-bars rect")) == 3
        assert driver.find_element(By.ID, "agreement").text in ("the same", "different")
        assert len(driver.find_elements(By.CSS_SELECTOR, "#layers tr")) > 2
        driver.save_screenshot(str(tmp_path / "play.png"))
        assert (tmp_path / "play.png").stat().st_size > 10_000
    finally:
        driver.quit()
