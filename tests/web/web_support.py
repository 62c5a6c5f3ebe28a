"""Helpers of the web pages' tests (the fixtures are in conftest.py)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import httpx2 as httpx

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
