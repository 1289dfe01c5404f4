"""End to end in a real browser: the dashboard served by ``streamlit run`` on
a trained run, every page visited, an image uploaded, a screenshot of each
page saved under test-artifacts/screenshots/.

Needs Debian's chromium at /usr/bin/chromium (``apt-get install chromium``;
``.ci/run`` installs it) and the ``playwright`` Python package; it skips
otherwise.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.dashboard.pages_util import APP, REPO

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# URL path of each page (st.Page names it after the file) and its title.
PAGES = {
    "": "Overview",
    "predictions": "Predictions",
    "labels": "Labels",
    "tanb": "TANB tree",
    "saliency": "Saliency",
    "bias": "Label bias",
    "your_image": "Your image",
}

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="browser test needs chromium: `apt-get install chromium` "
    "(Debian; .ci/run does it)",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"streamlit did not answer at {url} in {timeout} s")


@pytest.fixture
def served(trained_runs, tmp_path):
    """The dashboard on a free port, reading ``trained_runs``."""
    port = _free_port()
    env = os.environ | {"IMET_RUNS": str(trained_runs)}
    log = open(tmp_path / "streamlit.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(APP),
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, server)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


def _settle(page, title: str) -> None:
    """Wait for the page's title, then for the script run to finish."""
    page.get_by_role("heading", name=title).first.wait_for(timeout=60_000)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
        timeout=60_000,
    )
    # Plotly charts load their code lazily and show a skeleton until then.
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stSkeleton\"]')",
        timeout=30_000,
    )
    page.wait_for_timeout(800)  # let charts and images paint


def _png() -> bytes:
    rng = np.random.default_rng(1)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)).save(
        buffer, format="PNG"
    )
    return buffer.getvalue()


def test_every_page_renders_in_chromium_and_an_upload_works(served, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    upload = tmp_path / "artwork.png"
    upload.write_bytes(_png())
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        for path, title in PAGES.items():
            page.goto(f"{served}/{path}")
            _settle(page, title)
            if path == "your_image":
                page.locator("input[type=file]").set_input_files(str(upload))
                page.get_by_text("Predictions of").wait_for(timeout=60_000)
                _settle(page, title)
            exceptions = page.locator('[data-testid="stException"]')
            assert exceptions.count() == 0, exceptions.first.inner_text()
            page.screenshot(
                path=str(SCREENSHOTS / f"{path or 'overview'}.png"), full_page=True
            )
        browser.close()
