"""Odd and hostile requests to the web pages, through a real server and socket: a person always gets
a page that says what is wrong and what to do (the envelope when JSON is asked for), with the
status of the API for it, never a traceback or a bare 500; and nothing is done twice or lost."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from sqlalchemy import update

from serving import running_server
from support import HomeBuilder
from tiergate import doorlog
from tiergate.store.tables import Run
from web_support import WebServer, csrf_of

GATHER = {"summary": "The export fails for every client.", "severity": "S3"}
FORM = "application/x-www-form-urlencoded"


def _started(web: WebServer, http: Any) -> tuple[str, str]:
    """A run started through the start form, and the CSRF token of the signed-in session."""
    csrf = csrf_of(http.get("/start/demo").text)
    answer = http.post("/start/demo", data={"csrf": csrf, "ticket_id": "T-1"}, headers={"Accept": "application/json"})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["data"]["id"]), csrf


def _page(answer: Any, status: int, *words: str) -> None:
    assert answer.status_code == status, (answer.status_code, answer.text[:500])
    assert answer.headers["content-type"] == "text/html; charset=utf-8", answer.headers
    assert "default-src 'self'" in answer.headers["content-security-policy"]
    for word in words:
        assert word in answer.text, (word, answer.text[:2000])


def test_requests_no_page_takes_are_answered_with_a_page_or_the_envelope(web: WebServer, people: Any) -> None:
    people("human:alice")
    with web.client() as http:
        web.sign_in(http, "human:alice")
        _page(http.get("/nope/nope"), 404, "there is no page at /nope/nope", "<code>not_found</code>")
        _page(http.put("/sign-in", content=b"a=1"), 405, "PUT is not taken at /sign-in; it takes", "GET",
              "<code>method_not_allowed</code>")
        asked = http.delete("/runs/abc", headers={"Accept": "application/json"})
        assert asked.status_code == 405 and asked.json()["error"]["code"] == "method_not_allowed"
        assert "GET" in asked.headers["allow"] and asked.json()["error"]["details"]["allow"] == ["GET", "HEAD"]
        # A run id no run can have (a NUL character): the same page on every database, before any lookup.
        _page(http.get("/runs/a%00b"), 400, "holds a NUL character (U+0000), which no run id has",
              "<code>invalid_input</code>")
    with web.client(Authorization="Bearer tg_" + "x" * 43) as api:  # the API answers the envelope, after its token
        assert api.get("/api/nope").status_code == 401


def test_a_form_with_too_many_fields_or_too_large_in_chunks_is_refused_with_a_page(
        web: WebServer, people: Any, make_engine: Any, demo_home: HomeBuilder) -> None:
    people("human:alice")
    with web.client() as http:
        web.sign_in(http, "human:alice")
        run, csrf = _started(web, http)
        log = make_engine(demo_home).log(run)
        many = ("csrf=" + csrf + "&" + "&".join(f"f{i}=1" for i in range(3000))).encode()
        _page(http.post(f"/runs/{run}/steps/gather", content=many, headers={"Content-Type": FORM}), 400,
              "more than 2,000 fields", "nothing was done", "<code>invalid_input</code>")
        # no Content-Length: counted as it arrives and refused once past the limit, with a page
        chunks = iter([f"csrf={csrf}&summary=".encode()] + [b"x" * 65536] * 5)
        _page(http.post(f"/runs/{run}/steps/gather", content=chunks, headers={"Content-Type": FORM}), 413,
              "this form sent more than 278,528 bytes, the limit, so nothing was done.", "<code>body_too_large</code>",
              'id="signed-in-as"')  # the pages' own layout: the person is still signed in
        chunks = iter([f"csrf={csrf}&summary=".encode()] + [b"x" * 65536] * 5)
        asked = http.post(f"/runs/{run}/steps/gather", content=chunks,
                          headers={"Content-Type": FORM, "Accept": "application/json"})
        assert asked.status_code == 413 and asked.json()["error"]["code"] == "body_too_large"
        assert make_engine(demo_home).log(run) == log  # nothing done


def test_odd_bodies_show_the_form_again_and_a_double_submit_completes_once(
        web: WebServer, people: Any, make_engine: Any, demo_home: HomeBuilder) -> None:
    people("human:alice")
    with web.client() as http:
        web.sign_in(http, "human:alice")
        run, csrf = _started(web, http)
        step = f"/runs/{run}/steps/gather"
        for body in (b"csrf=" + csrf.encode() + b"&summary=\xff\xfe\xfa&severity=S1",  # not UTF-8
                     f"csrf={csrf}&summary=%E2%80%AE%EF%BF%BF&severity=S9&zzz=1&summary.0.x=y".encode()):  # odd, extra
            _page(http.post(step, content=body, headers={"Content-Type": FORM}), 422, "Gather the facts")
        # a NUL character is valid JSON but no text PostgreSQL keeps: refused alike on every database, kept typed
        _page(http.post(step, content=f"csrf={csrf}&summary=The%00export%20fails%20again&severity=S1".encode(),
                        headers={"Content-Type": FORM}), 400, "NUL character (U+0000)", "export fails again")
        for kind in ("multipart/form-data; boundary=x", "application/json", "text/plain"):  # no form's fields
            _page(http.post(step, content=b'{"csrf": "' + csrf.encode() + b'"}', headers={"Content-Type": kind}),
                  403, "<code>csrf_failed</code>")
        first = http.post(step, data={"csrf": csrf, **GATHER})
        assert first.status_code == 303, first.text
        _page(http.post(step, data={"csrf": csrf, **GATHER}), 404, "has no step &#39;gather&#39; ready now")
        log = make_engine(demo_home).log(run)
        assert [e["event"] for e in log].count("step_completed") == 1


@pytest.fixture
def server(demo_home: HomeBuilder, db_url: str, tmp_path: Path) -> Iterator[WebServer]:
    with running_server(demo_home.root, db_url, tmp_path / "server.log", kind=WebServer) as running:
        yield running


def test_a_page_that_fails_unforeseen_is_an_error_page_with_an_incident_id(
        server: WebServer, people: Callable[..., None], make_engine: Any, demo_home: HomeBuilder) -> None:
    people("human:alice")
    engine = make_engine(demo_home)
    with server.client() as http:
        server.sign_in(http, "human:alice")
        run, _csrf = _started(server, http)
        table = Run.__table__  # type: ignore[attr-defined]
        with engine.db.write() as conn:  # the run's state damaged in the database, as a bad manual repair would
            conn.execute(update(table).where(table.c.id == run).values(state={"steps": 5},
                                                                        version=table.c.version + 1))
        page = http.get(f"/runs/{run}")
        _page(page, 500, "Something went wrong", "<code>internal_error</code>", 'id="signed-in-as"')
        incident = re.search(r"incident ([0-9a-f]{12})", page.text).group(1)  # type: ignore[union-attr]
        assert "TypeError" not in page.text and "Traceback" not in page.text
        asked = http.get(f"/runs/{run}.json")
        assert asked.status_code == 500 and asked.json()["error"]["code"] == "internal_error"
    log = server.errlog.read_text()
    assert f"tiergate: incident {incident}: web GET /runs/{run} by human:alice: unforeseen TypeError" in log
    assert log.count("Traceback (most recent call last)") == 2 and "tiergate_session=" not in log
    refusal = doorlog.entries(engine)[-1]
    assert (refusal["door"], refusal["attempt"], refusal["code"], refusal["problem"], refusal["actor"]) == \
        ("web", "runs.show", "internal_error", f"incident {incident}", "human:alice")


def test_a_form_sent_after_its_session_ended_is_kept_through_signing_in_again(
        web: WebServer, people: Any, make_engine: Any, demo_home: HomeBuilder) -> None:
    people("human:alice")
    with web.client() as http:
        web.sign_in(http, "human:alice")
        run, csrf = _started(web, http)
        secret = http.cookies.get("tiergate_session")
        assert http.post("/sign-out", data={"csrf": csrf}).status_code == 303  # ended elsewhere, as if it expired
        http.cookies.set("tiergate_session", secret, domain="127.0.0.1")
        log = make_engine(demo_home).log(run)
        typed = {"csrf": csrf, "summary": "Two lines:\nthe export <fails> & \"stops\".", "severity": "S2"}
        step = f"/runs/{run}/steps/gather"
        origin = {"Origin": web.url}
        claim = http.post(f"/runs/{run}/steps/gather/claim", data={"csrf": csrf}, headers=origin)
        _page(claim, 401, "your session has ended", "then do it again", 'name="next" value="/"')  # no GET there
        # another site's form is not kept: to the sign-in page, as before
        elsewhere = http.post(step, data=typed, headers={"Origin": "http://evil.example"})
        assert elsewhere.status_code == 303 and elsewhere.headers["location"].startswith("/sign-in?next=")
        again = http.post(step, data=typed, headers=origin)
        _page(again, 401, "your session has ended", "what you typed is kept", 'name="kept.severity" value="S2"')
        assert "csrf" not in re.findall(r'name="kept\.([^"]+)"', again.text)
        assert make_engine(demo_home).log(run) == log  # nothing was done
        form = {"csrf": csrf_of(again.text), "principal": "human:alice", "password": "correct horse battery staple",
                "next": step, **{f"kept.{k}": v for k, v in typed.items() if k != "csrf"}}
        filled = http.post("/sign-in", data=form, headers=origin)
        _page(filled, 200, "What you typed is in the form again", "Two lines:\nthe export &lt;fails&gt; &amp; "
              "&#34;stops&#34;.", 'id="signed-in-as"')
        assert re.search(r'<option value="S2"[^>]*selected', filled.text), filled.text
        assert make_engine(demo_home).log(run) == log  # still nothing done: the person checks it and sends it
        sent = http.post(step, data={**typed, "csrf": csrf_of(filled.text)})
        assert sent.status_code == 303, sent.text
    done = [e for e in make_engine(demo_home).log(run) if e["event"] == "step_completed"]
    assert len(done) == 1 and done[0]["detail"]["evidence"] == {"summary": typed["summary"], "severity": "S2"}, done
