"""Debian's Chromium driven headless through its chromedriver (Selenium), for the console's tests.

scripts/services.sh installs both packages; without them the tests skip (fail under CI=true).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_service

WINDOW = "1280,900"


def _binary(*names: str) -> str | None:
    return next((found for name in names if (found := shutil.which(name))), None)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    chromium, driver = _binary("chromium", "chromium-browser"), _binary("chromedriver")
    require_service(chromium is not None and driver is not None, "Chromium and chromedriver (Debian)")
    assert chromium is not None and driver is not None
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     f"--window-size={WINDOW}", f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    session = webdriver.Chrome(options=options, service=Service(driver))
    session.implicitly_wait(0)
    try:
        yield session
    finally:
        session.quit()
