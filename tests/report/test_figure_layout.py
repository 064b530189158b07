"""Figures people can read: the quick report and a reproduction page in headless Chromium at
1300 px, with full-page screenshots for review and measured legibility.

Screenshots go to $RELUSCOPE_SCREENSHOTS (default: a folder of this pytest run, printed).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest

from ._browser import headless_chromium

pytestmark = pytest.mark.browser

WIDTH = 1300  # the browser window, CSS px
MIN_SHOWN = 500  # a figure is shown at least this wide ...
MIN_SCALE = 0.7  # ... or at no less than 70% of its natural size (text stays legible)


@pytest.fixture(scope="module")
def driver():
    with headless_chromium("--hide-scrollbars", "--force-device-scale-factor=1",
                           f"--window-size={WIDTH},1000") as drv:
        yield drv


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("RELUSCOPE_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def reproduction_page(tmp_path_factory, mnist_dir):
    """`reproduce behrmann --part preimage` in the quick configuration, made smaller still
    (a 400-unit layer, 24 samples): the page and its 2 x 2 figure are the same."""
    if not (mnist_dir / "t10k-images-idx3-ubyte").exists() and not any(mnist_dir.glob("t10k*")):
        pytest.skip(f"MNIST not found in {mnist_dir}")
    from reluscope.preimage import report as preimage_report
    from reluscope.reproduce import ReproConfig, reproduce

    out = tmp_path_factory.mktemp("reproduce")
    small = functools.partial(preimage_report.reproduce, hidden=400, n_samples=24, epochs=1, workers=1)
    mp = pytest.MonkeyPatch()
    mp.setattr(preimage_report, "reproduce", small)
    try:
        path, _ = reproduce("behrmann", ReproConfig(quick=True, out_dir=out, mnist=str(mnist_dir),
                                                           cifar=""), only=["preimage"], strict=True)
    finally:
        mp.undo()
    return path


def _screenshot(driver, path: Path) -> Path:
    """A full-page PNG (and 1300 x 1600 tiles of it, easier to look at)."""
    import base64

    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    height = int(size["height"])
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": WIDTH, "height": height, "scale": 1}})
    path.write_bytes(base64.b64decode(shot["data"]))
    tile = 1600
    for i, top in enumerate(range(0, height, tile)):
        part = driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": top, "width": WIDTH, "height": min(tile, height - top), "scale": 1}})
        path.with_name(f"{path.stem}-{i:02d}.png").write_bytes(base64.b64decode(part["data"]))
    return path


_MEASURE = """
const figs = Array.from(document.querySelectorAll('figure'));
return {
  scrollWidth: document.documentElement.scrollWidth,
  clientWidth: document.documentElement.clientWidth,
  images: Array.from(document.images).map(i => ({
      alt: i.alt, complete: i.complete, natural: i.naturalWidth,
      shown: i.getBoundingClientRect().width, right: i.getBoundingClientRect().right})),
  figures: figs.map(f => ({
      img: f.querySelector('img') !== null,
      caption: (f.querySelector('figcaption') || {textContent: ''}).textContent.trim()})),
  loose: Array.from(document.images).filter(i => !i.closest('figure')).length,
};
"""


def _check_page(driver, path: Path, shot: Path) -> dict:
    driver.set_window_size(WIDTH, 1000)
    driver.get(path.as_uri())
    m = driver.execute_script(_MEASURE)
    _screenshot(driver, shot)
    assert m["images"], "no figures on the page"
    bad = [i["alt"] for i in m["images"] if not i["complete"] or i["natural"] == 0]
    assert not bad, f"figures that do not decode: {bad}"
    assert m["scrollWidth"] <= m["clientWidth"], (
        f"the page overflows horizontally at {WIDTH} px: {m['scrollWidth']} > {m['clientWidth']}")
    small = [(i["alt"][:60], round(i["shown"]), i["natural"]) for i in m["images"]
             if i["shown"] < min(MIN_SHOWN, i["natural"]) or i["shown"] < MIN_SCALE * i["natural"]]
    assert not small, f"figures shown too small to read (alt, shown px, natural px): {small}"
    assert all(i["right"] <= m["clientWidth"] for i in m["images"])
    assert not m["loose"], "an image outside a <figure> (it has no caption)"
    uncaptioned = [k for k, f in enumerate(m["figures"]) if f["img"] and not f["caption"]]
    assert not uncaptioned, f"figures without a caption (their index on the page): {uncaptioned}"
    return m


def test_quick_report_figures_are_legible(driver, quick_report, shots):
    path, _ = quick_report  # built once per session (conftest.py)
    m = _check_page(driver, path, shots / "report.png")
    assert len(m["images"]) >= 8  # training, spectrum, shadow, pre-image, Jacobian, teacher ...


def test_reproduction_page_figures_are_legible(driver, reproduction_page, shots):
    m = _check_page(driver, reproduction_page, shots / "reproduce-behrmann-preimage.png")
    # the four pre-image histograms (two protocols, two random layers) in one 2 x 2 figure
    assert len(m["images"]) == 1 and m["images"][0]["shown"] >= 800
