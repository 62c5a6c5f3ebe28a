"""People at the web pages, in headless Chromium (Selenium) against a real `tiergate serve`.

Each page visited is saved as a screenshot (see the ``shot`` fixture; the folder is printed at the end).
"""

from __future__ import annotations

from typing import Any, Callable

import pytest

pytest.importorskip("selenium", reason="the browser tests need selenium (the `test` extra)")

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

from support import HomeBuilder  # noqa: E402
from web_support import PASSWORD, WebServer, go  # noqa: E402


def _sign_in(browser: Any, web: WebServer, who: str, password: str = PASSWORD) -> None:
    browser.get(f"{web.url}/")
    assert browser.current_url.startswith(f"{web.url}/sign-in")
    browser.find_element(By.ID, "principal").send_keys(who)
    browser.find_element(By.ID, "password").send_keys(password)
    go(browser, browser.find_element(By.ID, "sign-in"))


def _row(browser: Any, run: str, step: str) -> list[Any]:
    return browser.find_elements(By.CSS_SELECTOR, f'tr.inbox-item[data-run="{run}"][data-step="{step}"]')


def test_a_person_claims_a_step_fails_the_gate_fixes_it_and_the_run_moves_on(
        web: WebServer, people: Callable[..., None], make_engine: Any, demo_home: HomeBuilder, browser: Any,
        shot: Callable[[str], Any]) -> None:
    people("human:alice")
    engine = make_engine(demo_home)
    run = engine.start("demo", {"ticket_id": "T-42"}, actor="human:carol").id

    browser.get(f"{web.url}/sign-in")
    shot("sign-in")
    _sign_in(browser, web, "alice")
    assert browser.find_element(By.ID, "signed-in-as").text == "human:alice"
    shot("inbox")
    row = _row(browser, run, "gather")[0]
    go(browser, row.find_element(By.CSS_SELECTOR, "button.claim"))
    assert "You claimed 'gather'" in browser.find_element(By.CSS_SELECTOR, ".flash").text
    assert _row(browser, run, "gather")[0].find_elements(By.CSS_SELECTOR, "button.unclaim")
    assert engine.log(run)[-1]["event"] == "claimed"
    shot("claimed")

    go(browser, _row(browser, run, "gather")[0].find_element(By.LINK_TEXT, "Gather the facts"))
    assert browser.find_element(By.CSS_SELECTOR, ".instructions").text == "Look at T-42."
    shot("step-form")
    browser.find_element(By.ID, "f-summary").send_keys("too short")
    go(browser, browser.find_element(By.ID, "submit-step"))
    errors = {e.get_attribute("data-field"): e.text for e in browser.find_elements(By.CSS_SELECTOR, ".field-error")}
    assert errors == {"summary": "'too short' is too short", "severity": "required field 'severity' is missing"}
    assert browser.find_element(By.ID, "f-summary").get_attribute("value") == "too short"  # nothing typed is lost
    assert [e["event"] for e in engine.log(run)][-1] == "gate_failed"
    shot("gate-failed")

    summary = browser.find_element(By.ID, "f-summary")
    summary.clear()
    summary.send_keys("The export fails for every client since Monday.")
    Select(browser.find_element(By.ID, "f-severity")).select_by_visible_text("S2")
    go(browser, browser.find_element(By.ID, "submit-step"))
    assert browser.current_url == f"{web.url}/"
    assert "Done: 'Gather the facts'" in browser.find_element(By.CSS_SELECTOR, ".flash").text
    shot("done")
    status = engine.status(run)
    gather = next(s for s in status.steps if s.id == "gather")
    assert gather.state == "done" and gather.evidence == {"summary": "The export fails for every client since Monday.",
                                                          "severity": "S2"}
    assert [s.id for s in status.ready_steps] == ["extra"]


def test_a_four_eyes_step_is_not_in_the_inbox_of_who_did_the_earlier_step(
        web: WebServer, people: Callable[..., None], make_engine: Any, demo_home: HomeBuilder, browser: Any,
        shot: Callable[[str], Any]) -> None:
    people("human:alice", "human:bob")
    engine = make_engine(demo_home)
    run = engine.start("demo", {"ticket_id": "T-43"}, actor="human:carol").id
    engine.complete(run, "gather", {"summary": "Checked the whole export.", "severity": "S3"}, actor="human:alice")

    _sign_in(browser, web, "alice")
    go(browser, _row(browser, run, "extra")[0].find_element(By.LINK_TEXT, "Optional extra check"))
    browser.find_element(By.CSS_SELECTOR, "details.skip summary").click()
    browser.find_element(By.ID, "skip-reason").send_keys("nothing extra to check")
    shot("skip")
    go(browser, browser.find_element(By.CSS_SELECTOR, "details.skip button"))
    assert "Skipped 'extra'" in browser.find_element(By.CSS_SELECTOR, ".flash").text
    assert [s.id for s in engine.status(run).ready_steps] == ["review"]
    browser.get(f"{web.url}/")
    assert not _row(browser, run, "review")  # alice gathered: the review is someone else's
    shot("four-eyes-alice")
    go(browser, browser.find_element(By.CSS_SELECTOR, ".sign-out button"))
    assert browser.current_url == f"{web.url}/sign-in"

    _sign_in(browser, web, "bob")
    go(browser, _row(browser, run, "review")[0].find_element(By.LINK_TEXT, "Review by a person"))
    shot("four-eyes-bob")
    browser.find_element(By.ID, "f-approved").click()
    go(browser, browser.find_element(By.ID, "submit-step"))
    assert "The run is completed" in browser.find_element(By.CSS_SELECTOR, ".flash").text
    assert engine.status(run).status == "completed"


def test_a_wrong_password_is_refused_and_repeated_ones_lock_the_person_out(
        web: WebServer, people: Callable[..., None], browser: Any, shot: Callable[[str], Any]) -> None:
    people("human:alice")
    for attempt in range(5):
        browser.get(f"{web.url}/sign-in")
        browser.find_element(By.ID, "principal").send_keys("alice")
        browser.find_element(By.ID, "password").send_keys(f"not the password {attempt}")
        go(browser, browser.find_element(By.ID, "sign-in"))
        assert "wrong principal or password" in browser.find_element(By.ID, "error-message").text
        if attempt == 0:
            assert browser.find_element(By.ID, "principal").get_attribute("value") == "alice"
            assert browser.find_element(By.ID, "password").get_attribute("value") == ""
            shot("wrong-password")
    browser.get(f"{web.url}/sign-in")
    browser.find_element(By.ID, "principal").send_keys("alice")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    go(browser, browser.find_element(By.ID, "sign-in"))
    assert "locked out" in browser.find_element(By.ID, "error-message").text
    shot("locked-out")
    browser.get(f"{web.url}/")
    assert browser.current_url.startswith(f"{web.url}/sign-in")


def test_an_agents_token_sent_by_the_browser_does_not_open_the_pages(
        web: WebServer, cli: Callable[..., Any], demo_home: HomeBuilder, browser: Any,
        shot: Callable[[str], Any]) -> None:
    token = cli("tokens", "issue", "agent:bot", "--json", home=demo_home).json["data"]["token"]
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Bearer {token}"}})
    browser.get(f"{web.url}/api/inbox")
    assert '"ok":true' in browser.find_element(By.TAG_NAME, "body").text.replace(" ", "")  # the token is good ...
    browser.get(f"{web.url}/")
    assert browser.current_url == f"{web.url}/sign-in?next=%2F"  # ... but it opens no page
    assert not browser.find_elements(By.ID, "signed-in-as")
    shot("agent-token")


INTAKE = """\
id: intake
title: Equipment intake
owner: lead
expected_minutes: 20
inputs:
  type: object
  required: [site]
  properties:
    site: {type: string, title: Site, maxLength: 60, description: "Where the equipment goes."}
    needed_by: {type: string, format: date}
steps:
  - id: order
    title: Write the order
    instructions: |
      Order what **{{ data.site }}** needs, one row per item.
      <b>Raw HTML</b> is shown as text.
    done_when:
      type: object
      required: [contact, items, deliver_at]
      properties:
        contact: {$ref: "schemas/contact.json"}
        items:
          type: array
          minItems: 1
          description: One row per item.
          items:
            type: object
            required: [name, qty]
            properties:
              name: {type: string, maxLength: 40}
              qty: {type: integer, minimum: 1, title: Quantity}
        deliver_at: {type: string, format: date-time, title: Deliver at}
        priority: {enum: [low, normal, high], default: normal}
        insured: {type: boolean, description: Tick if the shipment is insured.}
"""
CONTACT = """{"type": "object", "required": ["email"], "description": "Who takes the delivery.",
 "properties": {"email": {"type": "string", "format": "email"}, "phone": {"type": "string", "maxLength": 30}}}"""


def _value(browser: Any, field_id: str, value: str) -> None:
    """Set a date or time input as a picker would (typing into them depends on the browser's locale)."""
    browser.execute_script("arguments[0].value = arguments[1]", browser.find_element(By.ID, field_id), value)


def test_a_run_started_from_its_form_and_a_step_with_nested_fields_lists_and_a_ref(
        web: WebServer, people: Callable[..., None], make_engine: Any, demo_home: HomeBuilder, browser: Any,
        shot: Callable[[str], Any]) -> None:
    demo_home.write("checklists/schemas/contact.json", CONTACT)
    demo_home.checklist("intake", INTAKE)
    people("human:alice")
    engine = make_engine(demo_home)
    _sign_in(browser, web, "alice")
    go(browser, browser.find_element(By.LINK_TEXT, "Equipment intake"))
    assert browser.find_element(By.ID, "f-site-help").text == "Where the equipment goes."
    go(browser, browser.find_element(By.ID, "start-run"))  # no site: refused by `inputs`, said at the field
    assert browser.find_element(By.ID, "f-site-error").text == "required field 'site' is missing"
    browser.find_element(By.ID, "f-site").send_keys("Depot <North>")
    _value(browser, "f-needed_by", "2026-12-24")
    shot("start-form")
    go(browser, browser.find_element(By.ID, "start-run"))

    assert "/steps/order" in browser.current_url  # straight to the first step, which is hers
    run = browser.current_url.split("/runs/")[1].split("/")[0]
    assert engine.status(run).data == {"site": "Depot <North>", "needed_by": "2026-12-24"}
    instructions = browser.find_element(By.CSS_SELECTOR, ".instructions")
    assert instructions.find_element(By.TAG_NAME, "strong").text == "Depot <North>"
    assert "<b>Raw HTML</b> is shown as text." in instructions.text
    assert Select(browser.find_element(By.ID, "f-priority")).first_selected_option.text == "normal"  # its default
    browser.find_element(By.ID, "f-contact-email").send_keys("not an address")
    browser.find_element(By.ID, "f-items-0-name").send_keys("Pallet jack")
    browser.find_element(By.ID, "f-items-0-qty").send_keys("0")
    go(browser, browser.find_element(By.ID, "submit-step"))
    errors = {e.get_attribute("data-field"): e.text for e in browser.find_elements(By.CSS_SELECTOR, ".field-error")}
    assert errors == {"contact.email": "'not an address' is not a 'email'", "items.0.qty": "0 is less than the minimum of 1",
                      "deliver_at": "required field 'deliver_at' is missing"}
    assert browser.find_element(By.ID, "f-items-0-name").get_attribute("value") == "Pallet jack"
    shot("nested-form-errors")

    email = browser.find_element(By.ID, "f-contact-email")
    email.clear()
    email.send_keys("dock@example.com")
    qty = browser.find_element(By.ID, "f-items-0-qty")
    qty.clear()
    qty.send_keys("2")
    browser.find_element(By.ID, "f-items-1-name").send_keys("Shelf")
    browser.find_element(By.ID, "f-items-1-qty").send_keys("6")
    assert not browser.find_elements(By.ID, "f-items-2-name")
    add = browser.find_element(By.CSS_SELECTOR, "fieldset.list button.add-row")
    add.click()  # the script adds a row
    browser.find_element(By.ID, "f-items-2-name").send_keys("Bolts")
    browser.find_element(By.ID, "f-items-2-qty").send_keys("12")
    assert browser.find_element(By.CSS_SELECTOR, 'label[for="f-items-2-qty"]').text.startswith("Quantity")
    _value(browser, "f-deliver_at", "2026-12-20T09:30")
    browser.find_element(By.ID, "f-insured").click()
    go(browser, browser.find_element(By.ID, "submit-step"))
    assert "The run is completed" in browser.find_element(By.CSS_SELECTOR, ".flash").text
    order = engine.status(run).steps[0]
    assert order.evidence == {"contact": {"email": "dock@example.com"}, "deliver_at": "2026-12-20T09:30:00Z",
                              "insured": True, "items": [{"name": "Pallet jack", "qty": 2}, {"name": "Shelf", "qty": 6},
                                                                   {"name": "Bolts", "qty": 12}],
                              "priority": "normal"}


def test_a_form_sent_after_the_session_ended_comes_back_filled_in_after_signing_in(
        web: WebServer, people: Callable[..., None], make_engine: Any, demo_home: HomeBuilder, browser: Any,
        shot: Callable[[str], Any]) -> None:
    people("human:alice")
    engine = make_engine(demo_home)
    run = engine.start("demo", {"ticket_id": "T-7"}, actor="human:carol").id
    _sign_in(browser, web, "alice")
    browser.get(f"{web.url}/runs/{run}/steps/gather")
    typed = "The export fails for every client since Monday.\nSecond line: <b>not bold</b> & \"quoted\"."
    browser.find_element(By.ID, "f-summary").send_keys(typed)
    Select(browser.find_element(By.ID, "f-severity")).select_by_visible_text("S2")
    browser.delete_cookie("tiergate_session")  # the session ends while the person types
    go(browser, browser.find_element(By.ID, "submit-step"))
    assert "your session has ended" in browser.find_element(By.ID, "error-message").text
    shot("session-ended")
    assert [e["event"] for e in engine.log(run)][-1] == "step_ready"  # nothing done
    browser.find_element(By.ID, "principal").send_keys("alice")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    go(browser, browser.find_element(By.ID, "sign-in"))
    assert "What you typed is in the form again" in browser.find_element(By.CSS_SELECTOR, ".flash").text
    assert browser.find_element(By.ID, "f-summary").get_attribute("value") == typed
    assert Select(browser.find_element(By.ID, "f-severity")).first_selected_option.text == "S2"
    assert [e["event"] for e in engine.log(run)][-1] == "step_ready"  # still nothing done until it is sent
    shot("form-kept")
    go(browser, browser.find_element(By.ID, "submit-step"))
    assert browser.current_url == f"{web.url}/"
    gather = next(s for s in engine.status(run).steps if s.id == "gather")
    assert gather.state == "done" and gather.evidence == {"summary": typed, "severity": "S2"}
