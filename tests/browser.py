"""Headless Chromium for the tests that check pages as a reader sees them.

Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them). Without them a test
is skipped on a developer's machine, but FAILS under CI (``CI=true``): a green CI must mean the
pages were really rendered.
"""

from __future__ import annotations

import contextlib
import os
import shutil

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def require_browser() -> None:
    """Skip (fail under CI) when headless Chromium is not installed."""
    if CHROMIUM and CHROMEDRIVER:
        return
    message = "needs Debian's chromium and chromium-driver (see .ci/run)"
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail(f"{message}: CI must render the pages")
    pytest.skip(message)


@contextlib.contextmanager
def chromium(profile_dir, width: int = 1400, height: int = 1800):
    """A headless Chromium webdriver (no network use of its own), quit on exit."""
    require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", f"--window-size={width},{height}",
                 "--hide-scrollbars", f"--user-data-dir={profile_dir}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def severe_console_errors(driver) -> list[dict]:
    """Console messages at level SEVERE (script errors, failed loads)."""
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
