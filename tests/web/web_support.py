"""Helpers of the web pages' tests (the fixtures are in conftest.py)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx2 as httpx

try:  # the browser tests need selenium (the `test` extra); the others use this module too
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # pragma: no cover - the browser tests skip themselves then
    pass

CHROMIUM = os.environ.get("TIERGATE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("TIERGATE_CHROMEDRIVER", "/usr/bin/chromedriver")
PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')
screenshots_taken: list[Path] = []


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no CSRF token"
    return found.group(1)


class WebServer:
    def __init__(self, url: str, process: subprocess.Popen[bytes], errlog: Path):
        self.url, self.process, self.errlog = url, process, errlog

    def client(self, **headers: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, follow_redirects=False)

    def sign_in(self, http: httpx.Client, who: str, password: str = PASSWORD) -> httpx.Response:
        """Sign ``http`` in as ``who`` through the sign-in form (its CSRF token and cookies)."""
        form = http.get("/sign-in")
        return http.post("/sign-in", data={"csrf": csrf_of(form.text), "principal": who, "password": password,
                                           "next": "/"})


def go(browser: Any, element: Any) -> None:
    """Click ``element`` and wait until the next page has replaced this one and finished loading
    (a form sent, a link followed)."""
    page = browser.find_element(By.TAG_NAME, "html")
    element.click()

    def replaced(driver: Any) -> bool:
        try:
            page.is_enabled()
        except WebDriverException as err:  # stale; or, from chromedriver mid-navigation, a node of the old document
            if not (isinstance(err, StaleElementReferenceException) or "does not belong to the document" in str(err)):
                raise
        else:
            return False
        try:
            return driver.execute_script("return document.readyState") == "complete"  # type: ignore[no-any-return]
        except WebDriverException:  # the new document is not there yet: ask again
            return False

    WebDriverWait(browser, 60).until(replaced)
