"""Fixtures of the web pages' tests: a real `tiergate serve`, people with passwords, and a real browser.

- ``web``: `tiergate serve` as a subprocess on a free port of 127.0.0.1 (the demo home, the test's
  database), with ``web.sign_in(client, "alice")`` for httpx sessions;
- ``people``: sets passwords with `tiergate principals set-password --password-stdin`;
- ``browser``: headless Chromium (Debian's ``/usr/bin/chromium`` and ``/usr/bin/chromedriver``)
  through Selenium, with a fresh profile; skipped, saying why, when either is missing;
- ``shot``: saves a screenshot of the browser's page under the screenshots folder, which is
  ``TIERGATE_SCREENSHOTS`` or a folder under pytest's temporary directory, printed at the end.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from serving import running_server
from support import CLIResult, HomeBuilder
from web_support import CHROMEDRIVER, CHROMIUM, PASSWORD, WebServer, screenshots_taken

@pytest.fixture
def web(demo_home: HomeBuilder, db_url: str, tmp_path: Path) -> Iterator[WebServer]:
    """`tiergate serve` as a real subprocess, ready when /healthz answers."""
    with running_server(demo_home.root, db_url, tmp_path / "server.log", kind=WebServer) as server:
        yield server
    assert "Traceback" not in server.errlog.read_text(), server.errlog.read_text()


@pytest.fixture
def people(cli: Callable[..., CLIResult], demo_home: HomeBuilder) -> Callable[..., None]:
    """``people("human:alice", "human:bob")``: each gets ``PASSWORD`` (or ``password=``)."""

    def set_passwords(*who: str, password: str = PASSWORD) -> None:
        for principal in who:
            result = cli("principals", "set-password", principal, "--password-stdin", home=demo_home,
                         input=password + "\n")
            assert result.returncode == 0, result

    return set_passwords


def _missing_browser() -> str | None:
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (Path(path).is_file() and os.access(path, os.X_OK)) and shutil.which(Path(path).name) is None:
            return f"{path} is missing: install Debian's {package} (`apt-get install chromium chromium-driver`)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (`pip install -e '.[test]'`)"
    return None


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Headless Chromium through Selenium, with a fresh profile; skipped when it is not installed."""
    why = _missing_browser()
    if why is not None:
        pytest.skip(f"browser tests need Chromium and its driver: {why}")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM if Path(CHROMIUM).is_file() else str(shutil.which("chromium"))
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1200,900", f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(flag)
    driver_path = CHROMEDRIVER if Path(CHROMEDRIVER).is_file() else str(shutil.which("chromedriver"))
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path,
                                                               log_output=str(tmp_path / "chromedriver.log")))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder screenshots go to: ``TIERGATE_SCREENSHOTS``, or one under pytest's temporary folder."""
    chosen = os.environ.get("TIERGATE_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def shot(browser: Any, screenshots: Path, request: pytest.FixtureRequest) -> Callable[[str], Path]:
    """``shot("inbox")`` saves the browser's page as ``<test>-<n>-inbox.png`` in the screenshots folder."""
    count = [0]
    test = re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name)[:80]

    def save(name: str) -> Path:
        count[0] += 1
        path = screenshots / f"{test}-{count[0]:02d}-{name}.png"
        assert browser.save_screenshot(str(path)), path
        screenshots_taken.append(path)
        return path

    return save


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if screenshots_taken:
        terminalreporter.write_sep("-", f"web pages: {len(screenshots_taken)} screenshots in {screenshots_taken[0].parent}")
