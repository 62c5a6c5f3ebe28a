"""The inbox page through a real server: grouping, filters, claims by others, and escaping of what runs hold."""

from __future__ import annotations

import re
from typing import Any, Callable

from support import DEMO, HomeBuilder
from web_support import WebServer, csrf_of

GATHER = {"summary": "The export fails for every client.", "severity": "S3"}


def _items(http: Any, query: str = "") -> list[tuple[str, str]]:
    data = http.get(f"/.json{query}").json()["data"]
    return [(item["run"], item["step"]) for group in data["groups"] for item in group["items"]]


def test_the_inbox_filters_by_process_and_role_and_hides_steps_claimed_by_others(
        web: WebServer, people: Callable[..., None], make_engine: Any, demo_home: HomeBuilder) -> None:
    people("human:bob", "human:alice")
    engine = make_engine(demo_home)
    first = engine.start("demo", {"ticket_id": "T-1"}, actor="human:carol").id
    engine.complete(first, "gather", GATHER, actor="human:carol")
    engine.skip(first, "extra", "not needed", actor="human:carol")
    second = engine.start("demo", {"ticket_id": "T-2"}, actor="human:carol").id
    with web.client() as http:
        web.sign_in(http, "bob")
        assert sorted(_items(http)) == sorted([(first, "review"), (second, "gather")])
        data = http.get("/.json").json()["data"]
        assert data["filter_choices"]["roles"] == ["lead"] and [g["process"] for g in data["groups"]] == ["demo"]
        assert _items(http, "?role=lead") == [(first, "review")]
        assert sorted(_items(http, "?process=demo")) == sorted([(first, "review"), (second, "gather")])
        assert _items(http, "?process=other") == []
        assert "Nothing waits for you with these filters" in http.get("/?process=other").text
        token = csrf_of(http.get("/").text)
        answer = http.post(f"/runs/{second}/steps/gather/claim", data={"csrf": token, "role": "lead"})
        assert answer.status_code == 303 and answer.headers["location"] == "/?role=lead"  # the filters are kept
    with web.client() as http:
        web.sign_in(http, "alice")
        assert _items(http) == [(first, "review")]  # bob's claim keeps gather from her inbox
        token = csrf_of(http.get("/").text)
        answer = http.post(f"/runs/{second}/steps/gather/claim", data={"csrf": token}, follow_redirects=True)
        assert "already claimed by human:bob" in answer.text  # said on the inbox, not an error page
    assert engine.log(second)[-1]["event"] == "refused"


def test_what_runs_hold_is_shown_as_text(web: WebServer, people: Callable[..., None], make_engine: Any,
                                         demo_home: HomeBuilder) -> None:
    demo_home.checklist("demo", DEMO.replace("title: Demo checklist", 'title: "Demo <i>checklist</i>"'))
    people("human:alice")
    engine = make_engine(demo_home)
    run = engine.start("demo", {"ticket_id": "T-3"}, actor="human:carol").id
    with web.client() as http:
        web.sign_in(http, "alice")
        page = http.get("/").text
        assert "Demo &lt;i&gt;checklist&lt;/i&gt;" in page and "<i>checklist</i>" not in page
        step = http.get(f"/runs/{run}/steps/gather")
        assert step.status_code == 200 and "Look at T-3." in step.text
        assert step.headers["content-security-policy"].startswith("default-src 'self'")
        fields = re.findall(r'<(?:input|select|textarea)(?![^>]*type="hidden")[^>]*\bid="([^"]+)"', step.text)
        assert fields and all(f'<label for="{field}">' in step.text for field in fields)  # a label on every field
        assert http.get(f"/runs/{run}/steps/gather.json").json()["data"]["step"]["id"] == "gather"


def test_skip_and_cancel_need_a_reason_and_then_do_what_the_engine_allows(
        web: WebServer, people: Callable[..., None], make_engine: Any, demo_home: HomeBuilder) -> None:
    people("human:alice")
    engine = make_engine(demo_home)
    run = engine.start("demo", {"ticket_id": "T-4"}, actor="human:carol").id
    engine.complete(run, "gather", GATHER, actor="human:carol")
    with web.client() as http:
        web.sign_in(http, "alice")
        token = csrf_of(http.get("/").text)
        answer = http.post(f"/runs/{run}/steps/extra/skip", data={"csrf": token, "reason": "  "},
                           follow_redirects=True)
        assert str(answer.url).endswith(f"/runs/{run}/steps/extra") and "reason" in answer.text.lower()
        assert http.post(f"/runs/{run}/steps/extra/skip", data={"csrf": token, "reason": "nothing extra"}
                         ).headers["location"] == "/"
        answer = http.post(f"/runs/{run}/cancel", data={"csrf": token, "back": f"/runs/{run}/steps/review"},
                           follow_redirects=True)
        assert str(answer.url).endswith(f"/runs/{run}/steps/review")  # no reason: back where it was asked
        assert engine.status(run).status == "active"
        answer = http.post(f"/runs/{run}/cancel", data={"csrf": token, "reason": "a duplicate of T-1"},
                           headers={"Accept": "application/json"})
        assert answer.status_code == 200 and answer.json()["data"]["status"] == "cancelled"
    assert [(e["event"], e["actor"]) for e in engine.log(run)][-1] == ("cancelled", "human:alice")
