"""Headless Chromium for the report's browser tests: skipped where it is absent, required in CI."""

from __future__ import annotations

import contextlib
import os
import shutil

import pytest

FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--disable-quic")


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@contextlib.contextmanager
def headless_chromium(*flags: str, browser_log: bool = False):
    """A selenium Chrome driver with `FLAGS` and `flags`, quit on exit; `browser_log` keeps the
    console log (`driver.get_log("browser")`)."""
    browser, driver_path = _chromium(), shutil.which("chromedriver")
    if not (browser and driver_path):
        if os.environ.get("CI"):
            pytest.fail("CI needs chromium and chromedriver: scripts/ensure-chromium.sh installs them")
        pytest.skip("install chromium and chromium-driver (scripts/ensure-chromium.sh) for this test")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for flag in (*FLAGS, *flags):
        opts.add_argument(flag)
    if browser_log:
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=opts)
    try:
        yield driver
    finally:
        driver.quit()
