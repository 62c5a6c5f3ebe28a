"""Odd and hostile input through the server's doors, through a real socket: each is answered with
what is wrong, where and what to do, never a 500 or a traceback (not even in the server's own
output), and nothing changes but the record of the refusal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from serving import Server, issue_token, running_server
from support import CLIResult, HomeBuilder
from tiergate import doorlog

START = {"process": "demo", "data": {"ticket_id": "T-1"}}
GATHER = {"summary": "The export fails for every client.", "severity": "S3"}


@pytest.fixture
def server(demo_home: HomeBuilder, db_url: str, tmp_path: Path) -> Iterator[Server]:
    with running_server(demo_home.root, db_url, tmp_path / "server.log") as running:
        yield running


def _no_traceback(server: Server) -> None:
    text = server.errlog.read_text()
    assert "Traceback" not in text and "ERROR" not in text, text


@pytest.mark.parametrize("body, pointer, problem", [
    ({"evidence": GATHER, "actor": 5}, "/actor", "not_text"),
    ({"evidence": GATHER, "actor": {"kind": "human"}}, "/actor", "not_text"),
    ({"evidence": GATHER, "actor": ["human:alice"]}, "/actor", "not_text"),
    ({"evidnce": GATHER}, "/evidnce", "unknown_field"),  # a misspelt field never completes a step without evidence
    ({"evidence": GATHER, "a/b": 1}, "/a~1b", "unknown_field"),
])
def test_a_complete_body_with_a_field_of_the_wrong_type_or_name_is_refused_with_its_pointer(
        server: Server, demo_home: HomeBuilder, cli: Callable[..., CLIResult], make_engine: Any,
        body: dict[str, Any], pointer: str, problem: str) -> None:
    token = issue_token(cli, demo_home, "agent:bot")
    with server.client(token) as http:
        run = http.post("/api/runs", json=START).json()["data"]["id"]
        engine = make_engine(demo_home)
        before = engine.log(run)
        answer = http.post(f"/api/runs/{run}/steps/gather/complete", json=body)
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert error["code"] == "invalid_input"
        assert error["details"]["pointer"] == pointer and error["details"]["problem"] == problem
        assert pointer in error["message"] and "Nothing was changed" in error["message"]
        assert engine.log(run) == before  # the run unchanged
        assert http.get(f"/api/runs/{run}").json()["data"]["status"] == "active"
        # and the same step completes once the body is right
        assert http.post(f"/api/runs/{run}/steps/gather/complete", json={"evidence": GATHER}).status_code == 200
    refusal = doorlog.entries(engine, 1)[0]
    assert (refusal["door"], refusal["attempt"], refusal["code"], refusal["problem"], refusal["actor"]) == \
        ("api", "complete", "invalid_input", problem, "agent:bot")
    _no_traceback(server)


def test_missing_or_mistyped_text_fields_of_start_and_assign_are_named(
        server: Server, demo_home: HomeBuilder, cli: Callable[..., CLIResult], make_engine: Any) -> None:
    token = issue_token(cli, demo_home, "human:alice")
    with server.client(token) as http:
        run = http.post("/api/runs", json=START).json()["data"]["id"]
        runs_before = len(http.get("/api/runs").json()["data"])
        log_before = http.get(f"/api/runs/{run}/log").json()["data"]
        for path, body, pointer, problem in (
                ("/api/runs", {"data": {"ticket_id": "T-1"}}, "/process", "missing_field"),
                ("/api/runs", {"process": 7, "data": {"ticket_id": "T-1"}}, "/process", "not_text"),
                (f"/api/runs/{run}/steps/gather/assign", {}, "/assignee", "missing_field"),
                (f"/api/runs/{run}/steps/gather/assign", {"assignee": 3}, "/assignee", "not_text"),
                ("/api/messages", {"name": None}, "/name", "missing_field")):
            answer = http.post(path, json=body)
            assert answer.status_code == 400, (path, answer.text)
            error = answer.json()["error"]
            assert (error["code"], error["details"]["pointer"], error["details"]["problem"]) == \
                ("invalid_input", pointer, problem), (path, error)
        assert len(http.get("/api/runs").json()["data"]) == runs_before
        assert http.get(f"/api/runs/{run}/log").json()["data"] == log_before
    _no_traceback(server)


def test_an_integer_too_long_to_read_is_refused_in_plain_words(
        server: Server, demo_home: HomeBuilder, cli: Callable[..., CLIResult]) -> None:
    token = issue_token(cli, demo_home, "agent:bot")
    with server.client(token) as http:
        run = http.post("/api/runs", json=START).json()["data"]["id"]
        body = b'{"evidence": {"summary": "The export fails for every client.", "severity": ' + b"9" * 5000 + b"}}"
        answer = http.post(f"/api/runs/{run}/steps/gather/complete", content=body,
                           headers={"Content-Type": "application/json"})
        assert answer.status_code == 400
        error = answer.json()["error"]
        assert error["code"] == "invalid_json" and error["details"]["problem"] == "not_finite"
        assert "more than 4300 digits" in error["message"] and "sys." not in error["message"]
        mcp = http.post("/mcp", content=b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"x": '
                        + b"9" * 5000 + b"}}",
                        headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream"})
        assert mcp.json()["error"]["code"] == -32700 and "4300 digits" in mcp.json()["error"]["message"]
        assert mcp.json()["id"] == 1  # the client can tell which request it answers
    _no_traceback(server)


def test_mcp_prompts_unknown_or_with_wrong_arguments_are_invalid_params_without_a_traceback(
        server: Server, demo_home: HomeBuilder, cli: Callable[..., CLIResult]) -> None:
    token = issue_token(cli, demo_home, "agent:bot")
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2025-06-18"}
    with server.client(token) as http:
        for params, words in (({"name": "nope"}, "no prompt 'nope'; this server has 'work_on_run'"),
                              ({"name": "work_on_run"}, "the argument 'run' is missing"),
                              ({"name": "work_on_run", "arguments": {"run": "x", "q": "1"}}, "unknown argument 'q'")):
            answer = http.post("/mcp", headers=headers, content=json.dumps(
                {"jsonrpc": "2.0", "id": 4, "method": "prompts/get", "params": params}))
            error = answer.json()["error"]
            assert error["code"] == -32602 and words in error["message"], error
    _no_traceback(server)


@pytest.mark.parametrize("url, words", [
    ("http://127.0.0.1:8470/healthz#", "must not hold a query (?...) or a fragment (#...)"),
    ("http://127.0.0.1:8470/?x=1", "must not hold a query"),
    ("file:///etc/passwd", "must start with http:// or https://"),  # urllib would read the disk
    ("localhost:8470", "must start with http:// or https://"),
    ("http://[::1", "Invalid IPv6 URL"),
    ("http://127.0.0.1:99999", "Port out of range"),
    ("http://:8470", "names no host"),
])
def test_a_malformed_tiergate_url_is_a_usage_error_before_any_request(
        cli: Callable[..., CLIResult], demo_home: HomeBuilder, url: str, words: str) -> None:
    result = cli("status", "abc", "--json", home=demo_home, env={"TIERGATE_URL": url, "TIERGATE_TOKEN": "tg_x"})
    assert result.returncode == 2, result
    error = result.json["error"]
    assert error["code"] == "url_invalid" and words in error["message"], error
    assert "Traceback" not in result.stderr


def test_a_token_with_a_line_break_or_non_ascii_is_refused_without_echoing_it(
        cli: Callable[..., CLIResult], demo_home: HomeBuilder) -> None:
    for token in ("tg_secretpart\nmore", "tg_sécret", "tg_a b"):
        result = cli("runs", "--json", home=demo_home,
                     env={"TIERGATE_URL": "http://127.0.0.1:9", "TIERGATE_TOKEN": token})
        assert result.returncode == 2, result
        assert result.json["error"]["code"] == "token_invalid"
        assert "secret" not in result.stdout + result.stderr and "sécret" not in result.stdout


def test_a_sqlite_file_removed_under_the_server_is_refused_not_written_to_a_lost_file(
        server: Server, demo_home: HomeBuilder, cli: Callable[..., CLIResult], db_url: str) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("a SQLite file")
    path = Path(db_url.split("sqlite:///", 1)[1])
    token = issue_token(cli, demo_home, "agent:bot")
    with server.client(token) as http:
        assert http.post("/api/runs", json=START).status_code == 201
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        health = http.get("/healthz")
        assert health.status_code == 503 and health.json()["error"]["code"] == "database_replaced"
        answer = http.post("/api/runs", json=START)
        assert answer.status_code == 503, answer.text
        error = answer.json()["error"]
        assert error["code"] == "database_replaced"
        assert "was removed" in error["message"] and "Nothing was recorded" in error["message"]
        assert not path.exists()  # no new, empty database made in its place
    _no_traceback(server)


def test_a_skip_or_cancel_without_a_reason_is_refused_and_logged_in_the_run(
        server: Server, demo_home: HomeBuilder, cli: Callable[..., CLIResult]) -> None:
    token = issue_token(cli, demo_home, "human:alice")
    with server.client(token) as http:
        run = http.post("/api/runs", json=START).json()["data"]["id"]
        assert http.post(f"/api/runs/{run}/steps/gather/complete", json={"evidence": GATHER}).status_code == 200
        for path, body in ((f"/api/runs/{run}/cancel", {}), (f"/api/runs/{run}/cancel", {"reason": "  "}),
                           (f"/api/runs/{run}/steps/extra/skip", {"reason": ""})):
            answer = http.post(path, json=body)
            assert answer.status_code == 400, answer.text
            assert answer.json()["error"]["code"] == "reason_missing"
        log = http.get(f"/api/runs/{run}/log").json()["data"]
        refused = [(e["event"], e["step"], e["detail"]["attempt"], e["detail"]["reason"]) for e in log[-3:]]
        assert refused == [("refused", None, "cancel", "reason_missing"), ("refused", None, "cancel", "reason_missing"),
                           ("refused", "extra", "skip", "reason_missing")]
        assert http.get(f"/api/runs/{run}").json()["data"]["status"] == "active"
    _no_traceback(server)


def test_a_step_that_needs_a_role_while_roles_yaml_is_broken_says_so_and_is_logged(
        cli: Callable[..., CLIResult], demo_home: HomeBuilder) -> None:
    started = cli("start", "demo", "--quiet", "--data", '{"ticket_id": "T-1"}', "--actor", "agent:bot", home=demo_home)
    run = started.stdout.strip()
    assert cli("complete", run, "gather", "--evidence", json.dumps(GATHER), "--actor", "agent:bot",
               home=demo_home).returncode == 0
    assert cli("skip", run, "extra", "--reason", "not needed", "--actor", "agent:bot", home=demo_home).returncode == 0
    demo_home.write("tiers/roles.yaml", "roles: [1, 2")  # broken while runs are open
    result = cli("complete", run, "review", "--evidence", '{"approved": true}', "--actor", "human:alice", "--json",
                 home=demo_home)
    assert result.returncode == 1, result
    error = result.json["error"]
    assert (error["code"], error["details"]["reason"]) == ("refused", "roles_unreadable")
    assert "tiers/roles.yaml is missing or has problems" in error["message"] and "tiergate check" in error["message"]
    log = cli("log", run, "--json", home=demo_home).json["data"]
    assert (log[-1]["event"], log[-1]["detail"]["reason"]) == ("refused", "roles_unreadable")
    assert cli("status", run, "--json", home=demo_home).json["data"]["status"] == "active"


def test_query_values_that_mean_nothing_are_refused_not_ignored(
        server: Server, demo_home: HomeBuilder, cli: Callable[..., CLIResult]) -> None:
    token = issue_token(cli, demo_home, "agent:bot")
    with server.client(token) as http:
        for path, words in (("/api/runs?mine=yes", "mine='yes' is not a yes or no"),
                            ("/api/metrics?process=demo&tier=abc", "tier 'abc' is not a tier"),
                            ("/api/metrics?process=demo&tier=%C2%B2", "is not a tier")):
            answer = http.get(path)
            assert answer.status_code == 400, (path, answer.text)
            assert answer.json()["error"]["code"] == "usage" and words in answer.json()["error"]["message"]
        assert http.get("/api/runs?mine=1").status_code == 200
    _no_traceback(server)


@pytest.mark.parametrize("body, field", [({"name": "paid", "correlate": 10 ** 20}, "correlate"),
                                         ({"name": "paid", "correlate": ["a", "b"]}, "correlate"),
                                         ({"name": "paid", "correlate": {}, "data": " "}, "data")])
def test_a_message_whose_correlation_or_data_is_not_an_object_is_refused(
        server: Server, demo_home: HomeBuilder, cli: Callable[..., CLIResult], make_engine: Any,
        body: dict[str, Any], field: str) -> None:
    token = issue_token(cli, demo_home, "agent:bot")
    with server.client(token) as http:
        answer = http.post("/api/messages", json=body)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_data" and error["details"] == {"field": field, "problem": "not_an_object"}
    assert f"a message's {field} must be a JSON object" in error["message"]
    refusal = doorlog.entries(make_engine(demo_home), 1)[0]
    assert (refusal["attempt"], refusal["code"], refusal["problem"], refusal["actor"]) == \
        ("message", "invalid_data", "not_an_object", "agent:bot")
    _no_traceback(server)


def test_an_oversized_form_from_an_unknown_visitor_writes_nothing(server: Server, demo_home: HomeBuilder,
                                                                  make_engine: Any) -> None:
    with server.client() as http:
        for path in ("/sign-in", "/start/demo", "/runs/abc/steps/gather"):
            answer = http.post(path, content=b"x" * 300_000,
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
            assert answer.status_code == 413, (path, answer.text)
            # a browser's form gets a page that says what to do, with the pages' security headers
            assert answer.headers["content-type"] == "text/html; charset=utf-8", answer.headers
            assert "this form sent more than 278,528 bytes, the limit, so nothing was done." in answer.text
            assert "<code>body_too_large</code>" in answer.text and "frame-ancestors" in \
                answer.headers["content-security-policy"]
            asked = http.post(path, content=b"x" * 300_000, headers={
                "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
            assert asked.status_code == 413 and asked.json()["error"]["code"] == "body_too_large"
    assert doorlog.entries(make_engine(demo_home)) == []  # an unauthenticated flood must not write
    _no_traceback(server)


def test_api_bodies_of_the_wrong_kind_depth_or_size_are_refused_and_recorded(
        server: Server, demo_home: HomeBuilder, cli: Callable[..., CLIResult], make_engine: Any) -> None:
    token = issue_token(cli, demo_home, "agent:bot")
    bomb = b'{"process": "demo", "data": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    wide = b'{"process": "demo", "data": {"ticket_id": "T-1", "x": [' + b"1," * 60_000 + b"1]}}"
    with server.client(token) as http:
        for content, kind, status, code in (
                (b"process=demo&data=x", "application/x-www-form-urlencoded", 400, "invalid_json"),
                (b"\xff\xfe{}", "application/json", 400, "invalid_json"),
                (bomb[:10_000] + b"]" * 5_000 + b"}", "application/json", 400, "limit_exceeded"),  # in one hop
                (bomb, "application/json", 400, "limit_exceeded"),  # past the hot path's size
                (iter([bomb[:100_000], bomb[100_000:]]), "application/json", 400, "limit_exceeded"),  # in chunks
                (wide, "application/json", 400, "limit_exceeded"),  # over input_values
                (b"[1, 2]", "application/json", 400, "invalid_json")):
            answer = http.post("/api/runs", content=content, headers={"Content-Type": kind})
            assert answer.status_code == status and answer.json()["error"]["code"] == code, answer.text[:300]
        assert "it is an array, not an object. Send a JSON object" in answer.json()["error"]["message"]
        # JSON sent as text/plain is read as JSON: the API takes JSON whatever the label
        assert http.post("/api/runs", content=json.dumps(START), headers={"Content-Type": "text/plain"}).status_code \
            == 201
        mcp = http.post("/mcp", content=b'{"jsonrpc": "2.0", "id": 5, "method": "tools/list"}',
                        headers={"Content-Type": "text/plain", "Accept": "application/json, text/event-stream"})
        assert mcp.status_code == 400 and mcp.json()["id"] == 5, mcp.text
        assert mcp.json()["error"]["code"] == -32600 and "Content-Type is text/plain" in mcp.json()["error"]["message"]
        assert len(http.get("/api/runs").json()["data"]) == 1  # only the run sent as text/plain
    refusals = doorlog.entries(make_engine(demo_home))
    assert [(r["door"], r["code"], r["problem"]) for r in refusals] == [  # newest first
        ("mcp", "-32600", "content_type"), ("api", "invalid_json", "not_an_object"),
        ("api", "limit_exceeded", "input_values"),  # refused by the engine, recorded at the caller's door
        *[("api", "limit_exceeded", "message_depth")] * 3, ("api", "invalid_json", "not_utf8"),
        ("api", "invalid_json", "not_json")]
    _no_traceback(server)


def test_a_nul_character_is_refused_as_input_on_every_database(
        server: Server, demo_home: HomeBuilder, cli: Callable[..., CLIResult], make_engine: Any) -> None:
    """Valid JSON that PostgreSQL keeps in no text field: the client's input (4xx), never the database's 503.
    An id or name holding one (no run, step or process has one) is answered alike on every database:
    400 ``invalid_input`` naming the field, before anything is looked up, and recorded at the door."""
    token = issue_token(cli, demo_home, "agent:bot")
    with server.client(token) as http:
        run = http.post("/api/runs", json=START).json()["data"]["id"]
        answer = http.post(f"/api/runs/{run}/steps/gather/complete",
                           json={"evidence": {"summary": "The export\u0000 fails for all.", "severity": "S1"}})
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert (error["code"], error["details"]["problem"], error["details"]["pointer"]) == \
            ("invalid_evidence", "nul_character", "/summary")
        assert "NUL character (U+0000)" in error["message"]
        for path, field in (("/api/runs/a%00b", "run"), (f"/api/runs/{run}/steps/ga%00/complete", "step"),
                            ("/api/runs?process=a%00", "process"), ("/api/runs/a%00b/log", "run"),
                            (f"/api/runs/{run}/steps/ga%00/skip", "step")):
            answer = http.post(path, json={"reason": "r"} if path.endswith("skip") else {"evidence": {}}) \
                if "/steps/" in path else http.get(path)
            assert answer.status_code == 400, (path, answer.text)
            error = answer.json()["error"]
            assert (error["code"], error["details"]["field"], error["details"]["problem"]) == \
                ("invalid_input", field, "nul_character"), (path, error)
            assert f"there is no such {field}. Nothing was changed" in error["message"], error
        mcp = http.post("/mcp", headers={"Content-Type": "application/json", "MCP-Protocol-Version": "2025-06-18",
                                         "Accept": "application/json, text/event-stream"},
                        content=json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
                            "name": "complete_step", "arguments": {"run": run, "step": "g\u0000", "evidence": {}}}}))
        envelope = mcp.json()["result"]["structuredContent"]
        assert (envelope["error"]["code"], envelope["error"]["details"]["field"]) == ("invalid_input", "step"), envelope
        assert 'the step id "g\\u0000" holds a NUL character' in envelope["error"]["message"]
        assert http.get(f"/api/runs/{run}").json()["data"]["ready"] == ["gather"]
        assert [e["event"] for e in http.get(f"/api/runs/{run}/log").json()["data"]][-1] == "refused"  # evidence's
    refusals = doorlog.entries(make_engine(demo_home))
    assert [(r["door"], r["attempt"], r["code"], r["problem"]) for r in refusals[:6]] == [  # newest first
        ("mcp", "complete", "invalid_input", "nul_character"), ("api", "skip", "invalid_input", "nul_character"),
        ("api", "read log", "invalid_input", "nul_character"), ("api", "read runs", "invalid_input", "nul_character"),
        ("api", "complete", "invalid_input", "nul_character"), ("api", "read run", "invalid_input", "nul_character")]
    _no_traceback(server)


def test_a_command_line_argument_that_is_not_utf8_is_refused_naming_it(
        demo_home: HomeBuilder, db_url: str) -> None:
    """Bytes that are not UTF-8 name no run or step on any database: the argument is named, exit 2."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIERGATE_")}
    env.update(TIERGATE_DATABASE_URL=db_url, TIERGATE_ACTOR="agent:bot")
    for args, name in (([b"status", b"a\xffb"], "RUN"), ([b"complete", b"abc", b"g\xed\xa0\x80"], "STEP")):
        done = subprocess.run([sys.executable, "-m", "tiergate", *args, b"--json"], capture_output=True, env=env,
                              cwd=demo_home.root, timeout=120)
        assert done.returncode == 2 and b"Traceback" not in done.stderr, done
        error = json.loads(done.stdout)["error"]
        assert error["code"] == "invalid_encoding" and error["message"].startswith(f"{name} is not valid UTF-8 text")


def test_a_json_rpc_batch_or_a_bare_value_to_mcp_gets_tiergates_own_error(
        server: Server, demo_home: HomeBuilder, cli: Callable[..., CLIResult], make_engine: Any) -> None:
    """MCP has no batches (since 2025-06-18): a JSON array is answered -32600 saying so, not with the SDK's
    validation text, and recorded; a bare JSON value likewise, saying what a request is."""
    token = issue_token(cli, demo_home, "agent:bot")
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2025-06-18"}
    with server.client(token) as http:
        batch = http.post("/mcp", headers=headers, content=json.dumps(
            [{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, {"jsonrpc": "2.0", "id": 2, "method": "ping"}]))
        assert batch.status_code == 400, batch.text
        error = batch.json()["error"]
        assert (batch.json()["id"], error["code"], error["data"]["problem"]) == (None, -32600, "batch"), error
        assert error["message"].startswith("Invalid Request: a batch (a JSON array of messages) is not supported")
        assert "Send each message as its own request." in error["message"] and "validation" not in error["message"]
        bare = http.post("/mcp", headers=headers, content=b'"tools/list"')
        assert bare.status_code == 400 and bare.json()["error"]["code"] == -32600, bare.text
        assert 'a request is {"jsonrpc": "2.0", "id": ...' in bare.json()["error"]["message"]
        one = http.post("/mcp", headers=headers, content=json.dumps({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}))
        assert one.status_code == 200 and one.json()["id"] == 3  # one message at a time is answered as ever
    refusals = doorlog.entries(make_engine(demo_home))
    assert [(r["door"], r["code"], r["problem"], r["actor"]) for r in refusals[:2]] == [
        ("mcp", "-32600", "not_jsonrpc", "agent:bot"), ("mcp", "-32600", "batch", "agent:bot")]
    _no_traceback(server)


def test_a_step_or_run_id_longer_than_any_is_refused_alike_on_every_database(
        server: Server, demo_home: HomeBuilder, cli: Callable[..., CLIResult], make_engine: Any) -> None:
    """PostgreSQL refuses to log an attempt naming a step id longer than the log keeps (128 characters),
    where SQLite logged `unknown_step`: such an id names no step, and is refused before anything, at every door."""
    token = issue_token(cli, demo_home, "agent:bot")
    with server.client(token) as http:
        run = http.post("/api/runs", json=START).json()["data"]["id"]
        for path, field in ((f"/api/runs/{run}/steps/{'x' * 129}/complete", "step"),
                            (f"/api/runs/{run}/steps/{'x' * 129}/claim", "step"), (f"/api/runs/{'a' * 33}", "run")):
            answer = http.post(path, json={}) if "/steps/" in path else http.get(path)
            assert answer.status_code == 400, (path, answer.text)
            error = answer.json()["error"]
            assert (error["code"], error["details"]["field"], error["details"]["problem"]) == \
                ("invalid_input", field, "too_long"), error
            assert f"characters, and no {field} id has more than" in error["message"], error
        ok = http.post(f"/api/runs/{run}/steps/{'x' * 128}/complete", json={})  # as long as any: looked for
        assert ok.status_code == 409 and ok.json()["error"]["details"]["reason"] == "unknown_step", ok.text
    done = cli("complete", run, "y" * 200, "--evidence", "{}", "--actor", "agent:bot", "--json", home=demo_home)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done
    assert (done.json["error"]["code"], done.json["error"]["details"]["problem"]) == ("invalid_input", "too_long")
    refusals = doorlog.entries(make_engine(demo_home))
    assert [(r["door"], r["attempt"], r["problem"]) for r in refusals[:4]] == [
        ("cli", "complete", "too_long"), ("api", "read run", "too_long"), ("api", "claim", "too_long"),
        ("api", "complete", "too_long")]
    _no_traceback(server)
