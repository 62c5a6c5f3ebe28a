"""The web pages' doors through a real server and httpx: sign-in, sessions, CSRF, lock-out, who sees what."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

from serving import running_server
from support import CLIResult, HomeBuilder
from tiergate.credentials import secret_hash
from tiergate.sessions import csrf_token
from tiergate.store.sessions import session_by_hash
from web_support import PASSWORD, WebServer, csrf_of

GATHER = {"summary": "The export fails for every client.", "severity": "S3"}


def _start(engine: Any, who: str = "human:carol") -> str:
    return str(engine.start("demo", {"ticket_id": "T-7"}, actor=who).id)


def _events(engine: Any, principal: str) -> list[str]:
    from tiergate.credentials import Credentials

    return [e["event"] for e in Credentials(engine).events(principal)]


def test_sign_in_makes_a_new_http_only_session_and_pages_answer_json_from_the_same_operation(
        web: WebServer, people: Callable[..., None], make_engine: Any, demo_home: HomeBuilder,
        cli: Callable[..., CLIResult]) -> None:
    people("human:alice")
    engine = make_engine(demo_home)
    run = _start(engine)
    with web.client() as http:
        assert http.get("/").headers["location"] == "/sign-in?next=%2F"
        assert http.get("/.json").status_code == 401
        answer = web.sign_in(http, "alice")
        assert answer.status_code == 303 and answer.headers["location"] == "/"
        cookie = next(h for h in answer.headers.get_list("set-cookie") if h.startswith("tiergate_session="))
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie  # plain HTTP here
        page = http.get("/")
        assert page.status_code == 200 and "Signed in as human:alice." in page.text
        assert f'data-run="{run}" data-step="gather"' in page.text
        as_json = http.get("/.json").json()
        assert http.get("/", headers={"Accept": "application/json"}).json() == as_json
    token = cli("tokens", "issue", "human:alice", "--json", home=demo_home).json["data"]["token"]
    with web.client(Authorization=f"Bearer {token}") as api:
        from_api = api.get("/api/inbox").json()["data"]
    shown = [item for group in as_json["data"]["groups"] for item in group["items"]]
    assert [(i["run"], i["step"], i["ready_at"]) for i in shown] == [(i["run"], i["step"], i["ready_at"])
                                                                      for i in from_api]
    # Behind a TLS proxy on the same host (X-Forwarded-Proto: https) the cookie is Secure.
    with web.client(**{"X-Forwarded-Proto": "https"}) as http:
        form = http.get("/sign-in")
        visitor = form.headers["set-cookie"]
        assert visitor.startswith("tiergate_visitor=") and "Secure" in visitor
        answer = http.post("/sign-in", data={"csrf": csrf_of(form.text), "principal": "alice", "password": PASSWORD},
                           headers={"Cookie": visitor.split(";")[0]})  # a Secure cookie: sent by hand over http
        assert answer.status_code == 303
        cookie = next(h for h in answer.headers.get_list("set-cookie") if h.startswith("tiergate_session="))
        assert "Secure" in cookie and "HttpOnly" in cookie


def test_a_form_without_the_right_csrf_token_changes_nothing(web: WebServer, people: Callable[..., None],
                                                             make_engine: Any, demo_home: HomeBuilder) -> None:
    people("human:alice")
    engine = make_engine(demo_home)
    run = _start(engine)
    before = engine.log(run)
    with web.client() as http:
        web.sign_in(http, "alice")
        token = csrf_of(http.get("/").text)
        for form in ({}, {"csrf": ""}, {"csrf": "0" * 64}, {"csrf": token[:-1] + ("0" if token[-1] != "0" else "1")}):
            answer = http.post(f"/runs/{run}/steps/gather/claim", data=form)
            assert answer.status_code == 403 and "CSRF token is missing or wrong" in answer.text, form
            answer = http.post(f"/runs/{run}/steps/gather", data={**form, **GATHER})
            assert answer.status_code == 403
        assert engine.log(run) == before
        assert http.post(f"/runs/{run}/steps/gather/claim", data={"csrf": token}).status_code == 303
    assert engine.log(run)[-1]["event"] == "claimed"
    # Signing in needs the visitor's token too (no login CSRF).
    with web.client() as http:
        answer = http.post("/sign-in", data={"principal": "alice", "password": PASSWORD})
        assert answer.status_code == 403 and "tiergate_session" not in answer.headers.get("set-cookie", "")


def test_a_session_id_set_before_sign_in_is_not_kept(web: WebServer, people: Callable[..., None]) -> None:
    people("human:alice")
    planted = "attacker-chosen-session-value-0123456789abcdef"
    with web.client() as http:
        http.cookies.set("tiergate_session", planted, domain="127.0.0.1")
        answer = web.sign_in(http, "alice")
        assert answer.status_code == 303
        new = answer.cookies.get("tiergate_session")
        assert new and new != planted
    with web.client() as http:
        http.cookies.set("tiergate_session", planted, domain="127.0.0.1")
        assert http.get("/").status_code == 303  # the planted id opens nothing
        http.cookies.set("tiergate_session", new, domain="127.0.0.1")
        assert http.get("/").status_code == 200


def test_after_sign_in_only_a_path_of_this_site_is_followed(web: WebServer, people: Callable[..., None]) -> None:
    people("human:alice")
    for target, location in (("/start/demo", "/start/demo"), ("//evil.example/x", "/"),
                             ("https://evil.example/", "/"), ("/\\evil.example", "/")):
        with web.client() as http:
            form = http.get("/sign-in", params={"next": target})
            answer = http.post("/sign-in", data={"csrf": csrf_of(form.text), "principal": "alice",
                                                 "password": PASSWORD, "next": target})
            assert answer.headers["location"] == location, target


def test_set_password_prompts_without_password_stdin(cli: Callable[..., CLIResult], demo_home: HomeBuilder) -> None:
    asked = cli("principals", "set-password", "human:dora", home=demo_home, input="a long password\na long password\n")
    assert asked.returncode == 0 and "password set for human:dora" in asked.stdout, asked
    short = cli("principals", "set-password", "human:dora", "--password-stdin", home=demo_home, input="short\n")
    assert short.returncode == 2 and "8 to 1024 characters" in short.stderr + short.stdout


def test_signing_out_ends_the_session_at_once(web: WebServer, people: Callable[..., None], make_engine: Any,
                                              demo_home: HomeBuilder) -> None:
    people("human:alice")
    with web.client() as http:
        web.sign_in(http, "alice")
        secret = http.cookies.get("tiergate_session")
        token = csrf_of(http.get("/").text)
        assert http.post("/sign-out", data={"csrf": token}).headers["location"] == "/sign-in"
    with web.client() as http:
        http.cookies.set("tiergate_session", secret, domain="127.0.0.1")
        assert http.get("/.json").status_code == 401
    assert _events(make_engine(demo_home), "human:alice")[-2:] == ["signed_in", "signed_out"]


def test_disabling_a_person_ends_their_session_and_a_new_password_ends_it_too(
        web: WebServer, people: Callable[..., None], cli: Callable[..., CLIResult], demo_home: HomeBuilder) -> None:
    people("human:alice", "human:bob")
    with web.client() as alice, web.client() as bob:
        web.sign_in(alice, "alice")
        web.sign_in(bob, "bob")
        assert alice.get("/").status_code == 200 and bob.get("/").status_code == 200
        assert cli("principals", "disable", "human:alice", home=demo_home).returncode == 0
        assert alice.get("/").status_code == 303
        assert web.sign_in(alice, "alice").status_code == 401  # disabled: no sign-in either
        people("human:bob", password="bob's next password")
        assert bob.get("/.json").status_code == 401


def test_agents_cannot_sign_in_and_their_tokens_do_not_open_the_pages(
        web: WebServer, people: Callable[..., None], cli: Callable[..., CLIResult], demo_home: HomeBuilder,
        make_engine: Any) -> None:
    refused = cli("principals", "set-password", "agent:bot", "--password-stdin", "--json", home=demo_home,
                  input=PASSWORD + "\n")
    assert refused.returncode == 2 and refused.json["error"]["code"] == "not_a_person"
    token = cli("tokens", "issue", "agent:bot", "--json", home=demo_home).json["data"]["token"]
    run = _start(make_engine(demo_home))
    with web.client(Authorization=f"Bearer {token}") as http:
        assert http.get("/api/inbox").status_code == 200  # the token works at the API ...
        for path in ("/", f"/runs/{run}/steps/gather", "/start/demo"):
            assert http.get(path).status_code == 303, path  # ... but a page sends it to sign in
            assert http.get(path, headers={"Accept": "application/json"}).status_code == 401
        answer = web.sign_in(http, "agent:bot", password=PASSWORD)
        assert answer.status_code == 401 and "wrong principal or password" in answer.text
        answer = web.sign_in(http, "agent:bot", password=token)
        assert answer.status_code == 401 and "tiergate_session" not in str(answer.cookies)


def test_wrong_passwords_lock_the_person_out_and_every_attempt_is_logged(
        web: WebServer, people: Callable[..., None], make_engine: Any, demo_home: HomeBuilder,
        cli: Callable[..., CLIResult]) -> None:
    people("human:alice")
    with web.client() as http:
        for n in range(4):
            answer = web.sign_in(http, "alice", password=f"wrong password {n}")
            assert answer.status_code == 401 and "wrong principal or password" in answer.text
            assert 'value="alice"' in answer.text  # what was typed stays; the password does not
            assert f"wrong password {n}" not in answer.text
        assert web.sign_in(http, "human:alice", password="wrong again").status_code == 401  # the fifth: locked
        answer = web.sign_in(http, "alice")  # the right password, while locked out
        assert answer.status_code == 401 and "locked out" in answer.text
        assert web.sign_in(http, "nobody", password=PASSWORD).status_code == 401
    events = _events(make_engine(demo_home), "human:alice")
    assert events == ["principal_added", "password_set", *["sign_in_failed"] * 4, "locked_out", "sign_in_refused"]
    # An operator's new password lifts the lock-out.
    people("human:alice", password="a brand new password")
    with web.client() as http:
        assert web.sign_in(http, "alice", password="a brand new password").status_code == 303


def test_steps_and_runs_a_person_may_not_act_on_are_404_or_403(
        web: WebServer, people: Callable[..., None], make_engine: Any, demo_home: HomeBuilder) -> None:
    people("human:alice", "human:carol")
    engine = make_engine(demo_home)
    run = _start(engine, "human:bob")
    engine.complete(run, "gather", GATHER, actor="human:alice")
    engine.skip(run, "extra", "not needed", actor="human:alice")
    with web.client() as http:
        web.sign_in(http, "carol")  # a reviewer, not a lead: the review step is not hers
        token = csrf_of(http.get("/").text)
        assert http.get("/runs/000000000000/steps/gather").status_code == 404
        assert http.get(f"/runs/{run}/steps/no-such-step").status_code == 404
        assert http.get(f"/runs/{run}/steps/gather").status_code == 404  # done: nothing to do there
        # She may not read this run (no role the process names; docs/server.md, "Who reads"), so its
        # steps answer as a guessed id does.
        page = http.get(f"/runs/{run}/steps/review")
        assert page.status_code == 404 and f"no run &#39;{run}&#39;" in page.text
        assert http.post(f"/runs/{run}/steps/review", data={"csrf": token, "approved": "on"}).status_code == 404
        assert http.post(f"/runs/{run}/steps/review/claim", data={"csrf": token}).status_code == 404
        assert http.get(f"/runs/{run}").status_code == 404
        assert http.post("/runs/000000000000/steps/review/claim", data={"csrf": token}).status_code == 404
        assert f'data-run="{run}"' not in http.get("/").text
    with web.client() as http:
        web.sign_in(http, "alice")  # a lead, but she gathered: four eyes
        assert http.get(f"/runs/{run}/steps/review").status_code == 403
    assert engine.status(run).status == "active" and [s.state for s in engine.status(run).steps][-1] == "ready"


def test_entries_made_through_the_pages_name_the_session_door(web: WebServer, people: Callable[..., None],
                                                              make_engine: Any, demo_home: HomeBuilder) -> None:
    people("human:alice")
    engine = make_engine(demo_home)
    run = _start(engine)
    with web.client() as http:
        web.sign_in(http, "alice")
        token = csrf_of(http.get("/").text)
        answer = http.post(f"/runs/{run}/steps/gather", data={"csrf": token, **GATHER})
        assert answer.status_code == 303
    from tiergate.credentials import Credentials

    signed_in = [e for e in Credentials(engine).events("human:alice") if e["event"] == "signed_in"][-1]
    completed = [e for e in engine.log(run) if e["event"] == "step_completed"][-1]
    assert completed["actor"] == "human:alice" and completed["door"] == signed_in["door"]
    assert signed_in["door"].startswith("session:")


def test_the_leads_pages_refused_to_a_person_without_the_auditor_role_are_recorded(
        web: WebServer, people: Callable[..., None], cli: Callable[..., CLIResult], demo_home: HomeBuilder) -> None:
    people("human:alice")  # a lead, not an auditor
    with web.client() as http:
        web.sign_in(http, "alice")
        for path in ("/report", "/gaps"):
            answer = http.get(path)
            assert answer.status_code == 403 and "needs the role &#39;auditor&#39;" in answer.text, (path, answer.text)
        answer = http.get("/report.json")
        assert answer.status_code == 403 and answer.json()["error"]["details"]["needs_role"] == "auditor"
    rows = cli("log", "refusals", "--json", home=demo_home).json["data"]
    assert [(r["door"], r["attempt"], r["code"], r["problem"], r["actor"]) for r in reversed(rows)] == [
        ("web", "report", "refused", "actor_not_allowed", "human:alice"),
        ("web", "gaps", "refused", "actor_not_allowed", "human:alice"),
        ("web", "report", "refused", "actor_not_allowed", "human:alice")]
    assert len({r["credential"] for r in rows}) == 1 and rows[0]["credential"].startswith("session:")


def test_an_expired_session_opens_no_page_and_sends_no_form(
        web: WebServer, people: Callable[..., None], make_engine: Any, demo_home: HomeBuilder, db_url: str,
        tmp_path: Path) -> None:
    """A server whose sessions last 3.6 ms (``session_hours`` takes fractions): signing in takes longer,
    so the session it makes has expired by the next request. No clock is faked and nothing waits."""
    people("human:alice")
    engine = make_engine(demo_home)
    run = _start(engine)
    before = engine.log(run)
    with running_server(demo_home.root, db_url, tmp_path / "short.log", env={"TIERGATE_SESSION_HOURS": "0.000001"},
                        kind=WebServer) as short, short.client() as http:
        signed_in = short.sign_in(http, "alice")
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/", signed_in.text
        cookie = next(h for h in signed_in.headers.get_list("set-cookie") if h.startswith("tiergate_session="))
        assert "Max-Age=0" in cookie  # a browser drops it at once; a client that keeps it anyway:
        secret = cookie.split(";")[0].split("=", 1)[1]
        http.cookies.set("tiergate_session", secret, domain="127.0.0.1")
        page = http.get("/")
        assert page.status_code == 303 and page.headers["location"] == "/sign-in?next=%2F"
        assert http.get(f"/runs/{run}").headers["location"] == f"/sign-in?next=%2Fruns%2F{run}"
        assert http.get("/.json").json()["error"]["code"] == "unauthorized"
        for path, form in ((f"/runs/{run}/steps/gather/claim", {}), (f"/runs/{run}/steps/gather", GATHER)):
            sent = http.post(path, data={"csrf": csrf_token(secret), **form})
            assert sent.status_code == 303 and sent.headers["location"].startswith("/sign-in?next="), (path, sent.text)
    assert "Traceback" not in (tmp_path / "short.log").read_text()
    assert engine.log(run) == before  # nothing was done
    with engine.db.read() as conn:  # the cookie sent was that session's: made, never ended, expired
        session = session_by_hash(conn, secret_hash(secret))
    assert session is not None and session["ended_at"] is None
    assert session["expires_at"] - session["created_at"] == timedelta(seconds=0.0036)
    with web.client() as http:  # the same form through a session of the usual length goes through
        web.sign_in(http, "alice")
        assert http.post(f"/runs/{run}/steps/gather/claim", data={"csrf": csrf_of(http.get("/").text)}).status_code == 303
    assert engine.log(run)[-1]["event"] == "claimed"
