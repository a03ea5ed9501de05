"""Headless Chromium through Selenium, for the tests that open prodready's pages.

Debian's `chromium` and `chromium-driver` (`make browser` installs them where apt-get
can); without them these tests skip, saying so. Screenshots go to .local/artifacts/ (and
the path is printed), where CI can collect them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / ".local" / "artifacts"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def _binaries() -> tuple[str, str] | None:
    chromium = os.environ.get("PRODREADY_CHROMIUM") or next(
        (found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None
    )
    driver = os.environ.get("PRODREADY_CHROMEDRIVER") or shutil.which("chromedriver")
    if chromium and driver:
        return chromium, driver
    return None


@contextmanager
def chromium(*, width: int = 1280, height: int = 1600) -> Iterator[Any]:
    """A headless Chromium session (a selenium WebDriver); skips when none is installed."""
    binaries = _binaries()
    if binaries is None:
        pytest.skip(
            "no headless browser: install Debian's chromium and chromium-driver "
            "(`make browser` does where apt-get is usable)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binaries[0]
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(binaries[1]))
    try:
        yield driver
    finally:
        driver.quit()


def console_problems(driver: Any) -> list[str]:
    """Console messages at warning level or above since the last call (CSP violations,
    script errors, failed loads all land here)."""
    return [
        str(entry.get("message"))
        for entry in driver.get_log("browser")
        if entry.get("level") in ("SEVERE", "WARNING")
    ]


def screenshot(driver: Any, name: str, *, height: int | None = None) -> Path:
    """Save the page (all of it, or its top `height` pixels) as .local/artifacts/<name>.png;
    returns (and prints) the path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    if height is None:
        full = int(driver.execute_script("return document.documentElement.scrollHeight"))
        height = min(max(full, 800), 4000)
    driver.set_window_size(1280, height)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


def prefer_dark(driver: Any, dark: bool) -> None:
    """Emulate the user's colour-scheme preference."""
    driver.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": "dark" if dark else "light"}]},
    )


def counts(driver: Any) -> dict[str, str]:
    """The summary figures a page shows, by their `data-count` key (`%` dropped)."""
    from selenium.webdriver.common.by import By

    return {
        str(element.get_attribute("data-count")): element.text.rstrip("%")
        for element in driver.find_elements(By.CSS_SELECTOR, "[data-count]")
    }
