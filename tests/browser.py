"""A real headless Chromium (Debian's chromium + chromium-driver) driven by Selenium, for the console tests.

`scripts/install-test-servers` installs the browser, its driver, and axe-core from npm (into
the test servers' cache); `axe_source()` finds it. The browser starts with a fresh profile
and nothing that talks to the network by itself.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)

SERVERS_HOME = Path(os.environ.get("PHOTON_SERVERS_HOME", Path.home() / ".cache" / "photon-test-servers"))
AXE_PATH = SERVERS_HOME / "npm" / "node_modules" / "axe-core" / "axe.min.js"

T = TypeVar("T")

# How long a wait may last: generous, for a loaded 2-core machine running the whole suite, but
# bounded, so a page that never gets there fails the test with what it waited for.
WAIT = 30.0


def chromium_paths() -> tuple[str, str]:
    browser = shutil.which("chromium")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        raise RuntimeError("chromium and chromedriver are missing: run scripts/install-test-servers")
    return browser, driver


def start_browser(width: int = 1280, height: int = 860) -> tuple[webdriver.Chrome, Path]:
    """A headless Chromium with a fresh profile; the caller quits it and removes the profile."""
    browser, driver = chromium_paths()
    profile = Path(tempfile.mkdtemp(prefix="photon-chromium-"))
    options = Options()
    options.binary_location = browser
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options), profile


def wait_for(check: Callable[[], T | None], timeout: float = WAIT, what: str = "the page") -> T:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # the element may not be there yet, or be replaced meanwhile
            last = exc
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}" + (f" (last error: {last})" if last else ""))


def find(driver: webdriver.Chrome, css: str, timeout: float = WAIT) -> WebElement:
    return wait_for(lambda: driver.find_element(By.CSS_SELECTOR, css), timeout, css)


def click(driver: webdriver.Chrome, by: str, value: str, timeout: float = WAIT) -> None:
    """Click an element, found again at each try: a live page may replace it between finding and clicking."""

    def attempt() -> bool:
        driver.find_element(by, value).click()
        return True

    wait_for(attempt, timeout, f"{value} to click")


def settled(driver: webdriver.Chrome) -> None:
    """Wait until the router has the page's first contents (`main` no longer aria-busy) and two
    frames have been drawn since, so what is checked or photographed is what a user sees."""
    wait_for(
        lambda: driver.execute_script(
            "const m = document.querySelector('main'); return m && !m.hasAttribute('aria-busy')"
        ),
        what="the page's contents",
    )
    driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "requestAnimationFrame(() => requestAnimationFrame(() => done(true)));"
    )


def console_errors(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """The browser console's errors since the last call."""
    return [entry for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]


def axe_source() -> str:
    if not AXE_PATH.exists():
        raise RuntimeError(f"axe-core is missing at {AXE_PATH}: run scripts/install-test-servers")
    return AXE_PATH.read_text()


def axe_violations(driver: webdriver.Chrome, source: str) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the current page."""
    driver.execute_script(source)
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']}).then("
        "  r => done(r.violations),"
        "  e => done([{id: 'axe-error', impact: 'critical', description: String(e), nodes: []}]));"
    )
    return [v for v in result if v.get("impact") in ("serious", "critical")]
