"""The run page and the leads' pages, against a real `tiergate serve` over the repository's own
definitions: in headless Chromium (the diagram and the decision tables drawn by the vendored
viewers) and through httpx (the same pages' JSON, and the pages without scripts).

Each page visited is saved as a screenshot (the ``shot`` fixture; the folder is printed at the end).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from support import REPO, HomeBuilder
from test_run_view import PUBLISHED, start_knowledge
from test_tier1_platform_files import start_walk
from web_support import PASSWORD, WebServer, go

CURATOR = "human:judy"  # tiers/roles.yaml: a knowledge-curator, who does the ready step (and an auditor here)


@pytest.fixture
def demo_home(tmp_path: Path) -> HomeBuilder:
    """This module's home (the ``web`` and ``people`` fixtures use it): the repository's definitions."""
    home = HomeBuilder(tmp_path / "home")
    for folder in ("tiers", "checklists", "processes", "decisions"):
        shutil.copytree(REPO / folder, home.root / folder, dirs_exist_ok=True)
    with (home.root / "tiers" / "roles.yaml").open("a") as roles:  # the curator reads the leads' pages too
        roles.write("  auditor:\n    description: Reads every run, the whole log, metrics and gaps.\n"
                    f"    members: [{CURATOR}]\n")
    return home




def _sign_in(browser: Any, web: WebServer, who: str) -> None:
    browser.get(f"{web.url}/sign-in")
    browser.find_element(By.ID, "principal").send_keys(who)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    go(browser, browser.find_element(By.ID, "sign-in"))


def _drawn(browser: Any, selector: str) -> Any:
    """Wait until the viewer in ``selector`` has drawn (runs.js sets data-viewer), and return it."""
    WebDriverWait(browser, 60).until(
        lambda b: b.find_element(By.CSS_SELECTOR, selector).get_attribute("data-viewer") in ("ready", "failed"))
    element = browser.find_element(By.CSS_SELECTOR, selector)
    assert element.get_attribute("data-viewer") == "ready", element.text
    return element


def test_a_tier1_run_page_marks_the_diagram_and_highlights_the_matched_rule(
        web: WebServer, people: Callable[..., None], make_engine: Any, demo_home: HomeBuilder, browser: Any,
        shot: Callable[[str], Any]) -> None:
    people(CURATOR)
    run = start_knowledge(make_engine(demo_home))
    _sign_in(browser, web, CURATOR)
    browser.get(f"{web.url}/runs/{run}")
    diagram = _drawn(browser, "#bpmn-diagram")
    # The current task is marked on the SVG element bpmn-js drew for it; done ones as finished.
    ready = diagram.find_element(By.CSS_SELECTOR, 'g.djs-element[data-element-id="approve_curated_item"]')
    assert "tg-ready" in ready.get_attribute("class").split()
    for element in ("extract_item", "route_validation"):
        marked = diagram.find_element(By.CSS_SELECTOR, f'g.djs-element[data-element-id="{element}"]')
        assert "tg-finished" in marked.get_attribute("class").split()
    untouched = diagram.find_element(By.CSS_SELECTOR, 'g.djs-element[data-element-id="approve_statutory_item"]')
    assert not {"tg-ready", "tg-finished", "tg-failed"} & set(untouched.get_attribute("class").split())
    assert "✓ The run's log verifies" in browser.find_element(By.ID, "log-verify").text
    browser.execute_script("document.getElementById('diagram-heading').scrollIntoView()")
    shot("run")
    # The decision panel: dmn-js draws the pinned table, the matched rule highlighted.
    panel = _drawn(browser, '.tg-dmn[data-decision="knowledge_validation_routing"]')
    matched = panel.find_elements(By.CSS_SELECTOR, "tr.tg-matched")
    assert len(matched) == 1 and '"internal-note"' in matched[0].text
    assert [c.get_attribute("data-row-id") for c in matched[0].find_elements(By.CSS_SELECTOR, "[data-row-id]")][0] \
        == "rule_internal_note_low_confidence"
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", matched[0])
    shot("run-decision")


def test_a_finished_run_page_marks_the_gateway_and_the_end_event_it_passed(
        web: WebServer, people: Callable[..., None], make_engine: Any, demo_home: HomeBuilder, browser: Any,
        shot: Callable[[str], Any]) -> None:
    people(CURATOR)
    run = start_walk(make_engine(demo_home), PUBLISHED, steps=3)  # auto-approved, published, linked: completed
    _sign_in(browser, web, CURATOR)
    browser.get(f"{web.url}/runs/{run}")
    diagram = _drawn(browser, "#bpmn-diagram")

    def classes(element: str) -> set[str]:
        drawn = diagram.find_element(By.CSS_SELECTOR, f'g.djs-element[data-element-id="{element}"]')
        return set(drawn.get_attribute("class").split())

    for element in ("material_received", "auto_approved", "publish_item", "knowledge_published"):
        assert "tg-finished" in classes(element), element
    assert not {"tg-ready", "tg-finished", "tg-failed"} & classes("approver_role_gateway")  # the path not taken
    browser.execute_script("document.getElementById('diagram-heading').scrollIntoView()")
    shot("run-finished")


def test_the_leads_pages_load(web: WebServer, people: Callable[..., None], make_engine: Any,
                              demo_home: HomeBuilder, browser: Any, shot: Callable[[str], Any]) -> None:
    people(CURATOR)
    start_knowledge(make_engine(demo_home))
    _sign_in(browser, web, CURATOR)
    browser.get(f"{web.url}/report")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Process compliance report"
    assert "knowledge-ingestion (tier 1)" in browser.find_element(By.CSS_SELECTOR, ".tg-report").text
    shot("report")
    browser.get(f"{web.url}/gaps")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Gaps"
    shot("gaps")
    browser.get(f"{web.url}/catalog")
    row = browser.find_element(By.ID, "process-knowledge-ingestion")
    assert "rule_tier1_compliance" in row.text and "compliance-critical" in row.text
    shot("catalog")


def test_the_pages_json_is_the_operations_answer_and_the_html_needs_no_script(
        web: WebServer, people: Callable[..., None], make_engine: Any, demo_home: HomeBuilder) -> None:
    people(CURATOR)
    engine = make_engine(demo_home)
    run = start_knowledge(engine)
    with web.client() as http:
        assert http.get(f"/runs/{run}").status_code == 303  # signed out: to the sign-in form
        web.sign_in(http, CURATOR)
        page = http.get(f"/runs/{run}.json").json()
        assert page["ok"] is True
        assert page["data"]["diagram"]["elements"]["approve_curated_item"] == "ready"
        assert [d["matched_rules"] for d in page["data"]["decisions"]] == [["rule_tier1_compliance"],
                                                                          ["rule_internal_note_low_confidence"]]
        assert http.get(f"/runs/{run}", headers={"Accept": "application/json"}).json() == page
        html = http.get(f"/runs/{run}").text  # what a browser without scripts gets: every fact
        assert 'data-rule="rule_internal_note_low_confidence" class="tg-matched"' in html
        assert "approve_curated_item" in html and "agent:platform-bot" in html and "✓ The run's log verifies" in html
        missing = http.get("/runs/nope")
        assert missing.status_code == 404 and "no run" in missing.text
        assert http.get("/runs/nope.json").json()["error"]["code"] == "not_found"
        report = http.get("/report.json").json()["data"]
        assert report["metrics"]["totals"]["runs"] == 1
        assert http.get("/gaps.json").json()["data"]["counts"]["resolved"] == 0
        catalog = {p["id"]: p for p in http.get("/catalog.json").json()["data"]}
        assert catalog["knowledge-ingestion"]["route"]["matched_rule"] == "rule_tier1_compliance"
        for path in ("/report", "/gaps", "/catalog"):
            answer = http.get(path)
            assert answer.status_code == 200 and "<h1>" in answer.text, path
        # the vendored viewers are served by the server itself
        for path in ("/static/vendor/bpmn-js-18.31.1/bpmn-navigated-viewer.production.min.js",
                     "/static/vendor/dmn-js-17.10.2/dmn-viewer.production.min.js", "/static/runs.js"):
            assert http.get(path).status_code == 200, path
