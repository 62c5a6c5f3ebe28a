"""The report for leads: a self-contained page, checked in a real headless Chromium.

Chromium loads a copy of the report with a probe script put in front of everything else: it
records every error, console error, blocked request and loaded resource, measures each chart,
and writes what it saw into the page, which ``--dump-dom`` prints. `.ci/run` installs Debian's
chromium; without a browser these tests are skipped.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import pytest

from test_gaps import LOW
from test_metrics import T0, metrics_home, tell_the_story
from tiergate.engine import Engine
from tiergate.errors import UsageError

CHROMIUM = next((found for name in ("chromium", "chromium-browser", "google-chrome")
                 if (found := shutil.which(name))), None)
needs_browser = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (.ci/run installs it)")

PROBE = """<script>
window.__seen = [];
window.addEventListener("error", function (e) {
  var what = e.message || (e.target && (e.target.src || e.target.href || e.target.tagName)) || "error";
  window.__seen.push("error: " + what);
}, true);
var consoleError = console.error;
console.error = function () { window.__seen.push("console.error: " + Array.prototype.join.call(arguments, " "));
                              consoleError.apply(console, arguments); };
document.addEventListener("securitypolicyviolation", function (e) {
  window.__seen.push("blocked: " + e.violatedDirective + " " + e.blockedURI); });
window.addEventListener("load", function () {
  var charts = Array.prototype.map.call(document.querySelectorAll("svg.chart"), function (svg) {
    var box = svg.getBoundingClientRect();
    return {width: box.width, height: box.height, bars: svg.querySelectorAll("rect").length,
            label: svg.getAttribute("aria-label")};
  });
  var out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({errors: window.__seen, charts: charts,
    resources: performance.getEntriesByType("resource").map(function (r) { return r.name; }),
    title: document.title});
  document.body.appendChild(out);
});
</script>"""


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
               f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def probe(report: Path, tmp_path: Path) -> dict[str, Any]:
    """Load the report in Chromium and return what the probe recorded."""
    html = report.read_text(encoding="utf-8")
    probed = tmp_path / "probed.html"
    probed.write_text(html.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    result = chromium("--virtual-time-budget=5000", "--dump-dom", probed.as_uri(), profile=tmp_path / "profile-dom")
    assert result.returncode == 0, result.stderr
    found = re.search(r'<pre id="probe">(.*?)</pre>', result.stdout, re.S)
    assert found, f"the page did not finish loading:\n{result.stdout[:2000]}"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
                      .replace("&amp;", "&"))


@pytest.fixture
def report(tmp_path: Path, make_engine: Callable[..., Engine]) -> tuple[Engine, Path]:
    clock = [T0]
    engine = make_engine(metrics_home(tmp_path / "home"), clock=lambda: clock[0])
    tell_the_story(engine, clock)
    (engine.home.root / "tiers" / "gaps.yaml").write_text(LOW)
    target = tmp_path / "report.html"
    written = engine.report(target)
    assert written == {"path": str(target), "bytes": len(target.read_bytes()), "processes": 2, "runs": 9,
                       "open_gaps": 7}
    return engine, target


def test_report_is_self_contained(report: tuple[Engine, Path]) -> None:
    _, target = report
    html = target.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert "<script" not in html and "<link" not in html and "@import" not in html and "url(" not in html
    assert not re.search(r'\b(src|href)\s*=', html)
    # The only URL is the SVG namespace, which is a name, never fetched.
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) == {"http://www.w3.org/2000/svg"}
    assert "Content-Security-Policy" in html and "default-src 'none'" in html


def test_report_shows_the_numbers_and_the_gaps(report: tuple[Engine, Path]) -> None:
    _, target = report
    html = target.read_text(encoding="utf-8")
    for heading in ("Completion", "Deviations", "Time against expected time", "Steps: where runs stop or fail",
                    "Open gaps", "demo (tier 2)", "notes (tier 3)"):
        assert f">{heading}<" in html, heading
    assert "<b>9</b><span>runs</span>" in html and "<b>50%</b><span>completed (of settled runs)</span>" in html
    assert "<b>7</b><span>open gaps</span>" in html
    assert "completed clean: 1 of 7 runs" in html and "abandoned: 1 of 2 runs" in html
    assert "12 / 20 min" in html          # demo: median and p90 minutes
    assert "7 ready · 3 failed gate · 1 refused" in html   # gather's funnel row
    assert html.count("<tr><td>new</td>") == 7
    assert "the gate of step &#x27;gather&#x27; fails on 2 of 4 first attempts by agents (50%)" in html


@needs_browser
def test_report_loads_in_a_browser_with_its_charts_and_no_errors(report: tuple[Engine, Path], tmp_path: Path) -> None:
    _, target = report
    seen = probe(target, tmp_path)
    assert seen["errors"] == []
    assert seen["resources"] == []       # nothing was fetched
    assert seen["title"] == "tiergate report 2025-01-06"
    labels = [c["label"] for c in seen["charts"]]
    assert labels == ["Completion per tier", "Completion per process", "Deviations per run, per tier",
                      "Deviations per run, per process", "Time to completion against expected time",
                      "Steps of demo: where runs stop", "Steps of notes: where runs stop"]
    for chart in seen["charts"]:
        assert chart["width"] > 500 and chart["height"] > 20 and chart["bars"] > 0, chart


@needs_browser
def test_report_screenshot(report: tuple[Engine, Path], tmp_path: Path) -> None:
    _, target = report
    shot = tmp_path / "report.png"
    result = chromium(f"--screenshot={shot}", "--window-size=1280,2000", target.as_uri(), profile=tmp_path / "p2")
    assert result.returncode == 0, result.stderr
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


@needs_browser
def test_an_empty_report_loads_too(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(metrics_home(tmp_path / "home"), clock=lambda: T0)
    engine.report(tmp_path / "empty.html")
    html = (tmp_path / "empty.html").read_text()
    assert "No runs in scope yet." in html and "No open gaps" in html
    seen = probe(tmp_path / "empty.html", tmp_path)
    assert seen["errors"] == [] and seen["charts"] == []


def test_report_needs_a_writable_file(report: tuple[Engine, Path], tmp_path: Path) -> None:
    engine, _ = report
    with pytest.raises(UsageError, match="the folder .* does not exist"):
        engine.report(tmp_path / "missing" / "report.html")
    with pytest.raises(UsageError, match="is a folder"):
        engine.report(tmp_path)


def test_report_since_says_so(report: tuple[Engine, Path], tmp_path: Path) -> None:
    engine, _ = report
    engine.report(tmp_path / "since.html", since=datetime(2025, 1, 6, 11, 0).isoformat())
    html = (tmp_path / "since.html").read_text()
    assert "runs started since 2025-01-06T11:00:00Z" in html and "<b>5</b><span>runs</span>" in html


@needs_browser
def test_the_probe_sees_errors_and_requests(tmp_path: Path) -> None:
    """The browser check can fail: a page that fetches, is blocked, and throws is reported."""
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" '
                    "content=\"default-src 'none'; script-src 'unsafe-inline'\"></head><body>"
                    '<img src="https://example.invalid/logo.png"><script>undefinedFunction();</script>'
                    '<svg class="chart" aria-label="x" width="10" height="10"></svg></body></html>')
    seen = probe(page, tmp_path)
    assert any("undefinedFunction is not defined" in e for e in seen["errors"])
    assert any(e.startswith("blocked: img-src https://example.invalid/logo.png") for e in seen["errors"])
    assert seen["charts"] == [{"width": 10, "height": 10, "bars": 0, "label": "x"}]
