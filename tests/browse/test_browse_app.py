"""The App: served on a free localhost port, its GraphQL API lists the dataset and its saved
views, and a headless Chromium renders the dataset page (not the loading screen)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from detforge.inspection.app import app_url, how_to_open, launch
from detforge.inspection.build import build_browse_dataset
from detforge.inspection.database import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NAME = "app-planted"


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        body = json.loads(answer.read())
    assert "errors" not in body, body
    return body["data"]


def _wait_http(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.3)


@pytest.fixture(scope="module")
def served(fo, planted):
    build_browse_dataset(
        planted["out"],
        predictions=planted["predictions"],
        probe_run=planted["probe_run"],
        name=NAME,
    )
    port = free_port()
    session = launch(NAME, port=port, remote=True, address="127.0.0.1", wait=False)
    _wait_http(f"http://127.0.0.1:{port}/")
    yield port
    session.close()


def test_graphql_lists_dataset_and_views(fo, served):
    data = _graphql(served, '{ datasets(first: 50, search: "") { edges { node { name } } } }')
    assert NAME in [edge["node"]["name"] for edge in data["datasets"]["edges"]]
    views = _graphql(served, f'{{ savedViews(datasetName: "{NAME}") {{ name }} }}')["savedViews"]
    assert sorted(v["name"] for v in views) == sorted(fo.load_dataset(NAME).list_saved_views())
    assert "high-confidence-false-positives" in [v["name"] for v in views]


def _screenshot(url: str, path, tmp_path) -> np.ndarray:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'ud'}",
        "--virtual-time-budget=15000",
        "--window-size=1400,900",
        f"--screenshot={path}",
    ]
    subprocess.run([CHROMIUM, *flags, url], capture_output=True, timeout=240, check=False)
    assert path.is_file(), "chromium wrote no screenshot"
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def _rendered(pixels: np.ndarray) -> tuple[bool, str]:
    """Whether a screenshot shows the dataset page rather than the loading screen: the
    loading screen is one flat colour with a small logo; the dataset page has a sidebar,
    labels and a grid of the planted pictures, whose drawn rectangles are saturated yellow."""
    colours = len(np.unique(pixels.reshape(-1, 3) // 8, axis=0))
    yellow = int(((pixels[..., 0] > 200) & (pixels[..., 1] > 120) & (pixels[..., 2] < 90)).sum())
    return colours > 200 and yellow > 500, f"{colours} colours, {yellow} yellow pixels"


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_screenshot_of_dataset_page(served, tmp_path):
    url = app_url(NAME, served, "127.0.0.1")
    seen = []
    # a loaded machine can spend the first virtual-time budget fetching the App's bundle:
    # later attempts reuse chromium's cache (same profile)
    for attempt in range(3):
        pixels = _screenshot(url, tmp_path / f"app{attempt}.png", tmp_path)
        assert pixels.shape[:2] == (900, 1400)
        ok, what = _rendered(pixels)
        seen.append(what)
        if ok:
            break
    assert ok, f"the App did not render the dataset page: {seen}"


def test_how_to_open_names_dataset_and_port():
    lines = how_to_open("x-val", 6001)
    assert lines[0].startswith("fiftyone app launch x-val --port 6001")
    assert "http://localhost:6001/datasets/x-val" in lines[0]
