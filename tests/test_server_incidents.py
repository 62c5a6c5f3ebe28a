"""A failure no check foresaw, through a real server: a run whose stored state was damaged in the
database (a real state of the database, not a mock) makes the engine fail where nothing expects it.
Every door answers its own kind (the envelope, a tool error, the JSON-RPC error) with an incident
id and no internal detail; the server's log has the traceback under that id and no secret; the
attempt is a row of ``tiergate log refusals``; nothing changes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from sqlalchemy import update

from serving import Server, issue_token, running_server
from support import CLIResult, HomeBuilder
from test_no_traceback import _serve as serve_stdio
from tiergate import doorlog, incidents
from tiergate.store.tables import Run

START = {"process": "demo", "data": {"ticket_id": "T-1"}}
GATHER = {"summary": "The export fails for every client.", "severity": "S3"}
MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2025-06-18"}
INTERNAL = ("TypeError", "subscriptable", "Traceback", "runview", ".py", "state[")


@pytest.fixture
def server(demo_home: HomeBuilder, db_url: str, tmp_path: Path) -> Iterator[Server]:
    with running_server(demo_home.root, db_url, tmp_path / "server.log") as running:
        yield running


def _damage(engine: Any, run: str) -> None:
    """The run's stored state edited in the database into a shape no runner expects (as a bad
    manual repair or a faulty migration would leave it), with its version moved on as a write would."""
    table = Run.__table__  # type: ignore[attr-defined]
    with engine.db.write() as conn:
        conn.execute(update(table).where(table.c.id == run).values(state={"steps": 5}, version=table.c.version + 1))


def _incident(error: dict[str, Any]) -> str:
    """The incident id of an ``internal_error``, after checking that it tells nothing of the inside."""
    assert error["code"] == "internal_error", error
    incident = error["details"]["incident"]
    assert re.fullmatch(r"[0-9a-f]{12}", incident) and f"incident {incident}" in error["message"]
    assert "server's log" in error["message"] and "read it back" in error["message"]
    assert not any(word in json.dumps(error) for word in INTERNAL), error
    return str(incident)


def test_a_damaged_run_is_an_incident_at_every_door_with_its_traceback_only_in_the_servers_log(
        server: Server, demo_home: HomeBuilder, cli: Callable[..., CLIResult], make_engine: Any) -> None:
    token = issue_token(cli, demo_home, "agent:bot")
    engine = make_engine(demo_home)
    seen: list[str] = []
    with server.client(token) as http:
        run = http.post("/api/runs", json=START).json()["data"]["id"]
        log_before = engine.log(run)
        _damage(engine, run)
        # the API: a read, a write in one hop, and a write with a chunked body (the routes behind the doors)
        for answer in (http.get(f"/api/runs/{run}"),
                       http.post(f"/api/runs/{run}/steps/gather/complete", json={"evidence": GATHER}),
                       http.post(f"/api/runs/{run}/steps/gather/complete",
                                 content=iter([json.dumps({"evidence": GATHER}).encode()]),
                                 headers={"Content-Type": "application/json"})):
            assert answer.status_code == 500 and answer.headers["content-type"] == "application/json", answer.text
            seen.append(_incident(answer.json()["error"]))
        # MCP: a tool's error is the tool's result (the envelope); a resource's is the JSON-RPC error
        call = http.post("/mcp", headers=MCP_HEADERS, json={"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                                                             "params": {"name": "get_run", "arguments": {"run": run}}})
        result = call.json()["result"]
        assert call.status_code == 200 and result["isError"] is True
        seen.append(_incident(result["structuredContent"]["error"]))
        read = http.post("/mcp", headers=MCP_HEADERS, json={"jsonrpc": "2.0", "id": 8, "method": "resources/read",
                                                             "params": {"uri": f"tiergate://runs/{run}/guidance"}})
        error = read.json()["error"]
        assert read.json()["id"] == 8 and "internal_error: tiergate failed unexpectedly" in error["message"], error
        assert not any(word in error["message"] for word in INTERNAL), error
        seen.append(re.search(r"incident ([0-9a-f]{12})", error["message"]).group(1))  # type: ignore[union-attr]
    assert len(set(seen)) == len(seen) == 5
    log = server.errlog.read_text()
    for incident in seen:  # each traceback is in the server's log under its id, once
        assert log.count(f"tiergate: incident {incident}: ") == 1, log
    assert log.count("Traceback (most recent call last)") == 5
    assert "tiergate: incident " + seen[0] + ": api GET /api/runs/{run} by agent:bot: unforeseen TypeError" in log
    assert token not in log and token[3:20] not in log  # never the token
    refusals = doorlog.entries(engine)
    assert sorted((r["door"], r["attempt"], r["code"], r["problem"], r["actor"]) for r in refusals) == sorted(
        [("api", "read run", "internal_error", f"incident {seen[0]}", "agent:bot"),
         ("api", "complete", "internal_error", f"incident {seen[1]}", "agent:bot"),
         ("api", "complete", "internal_error", f"incident {seen[2]}", "agent:bot"),
         ("mcp", "get_run", "internal_error", f"incident {seen[3]}", "agent:bot"),
         ("mcp", "run-guidance", "internal_error", f"incident {seen[4]}", "agent:bot")])
    assert engine.log(run) == log_before  # nothing was written to the run
    assert server.process.poll() is None  # and the server serves on
    with server.client(token) as http:
        assert http.get("/healthz").status_code == 200


def test_the_cli_as_a_client_says_internal_error_with_the_incident_and_exits_1(
        server: Server, demo_home: HomeBuilder, cli: Callable[..., CLIResult], make_engine: Any) -> None:
    token = issue_token(cli, demo_home, "agent:bot")
    with server.client(token) as http:
        run = http.post("/api/runs", json=START).json()["data"]["id"]
    _damage(make_engine(demo_home), run)
    env = {"TIERGATE_URL": server.url, "TIERGATE_TOKEN": token}
    result = cli("status", run, "--json", home=demo_home, env=env)
    assert result.returncode == 1, result
    _incident(result.json["error"])
    plain = cli("status", run, home=demo_home, env=env)
    assert plain.returncode == 1 and "internal_error" not in plain.stdout
    assert "tiergate failed unexpectedly on this request (incident " in plain.stderr, plain.stderr
    assert "Traceback" not in result.stderr + plain.stderr


def test_an_incident_over_stdio_mcp_is_the_envelope_and_the_traceback_goes_to_stderr(
        cli: Callable[..., CLIResult], demo_home: HomeBuilder, make_engine: Any, db_url: str) -> None:
    started = cli("start", "demo", "--quiet", "--data", '{"ticket_id": "T-1"}', "--actor", "agent:bot", home=demo_home)
    run = started.stdout.strip()
    engine = make_engine(demo_home)
    _damage(engine, run)
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "get_run", "arguments": {"run": run}}}
    answers, stderr = serve_stdio(demo_home, db_url, [json.dumps(call).encode()])
    incident = _incident(answers[2]["result"]["structuredContent"]["error"])
    assert f"tiergate: incident {incident}: mcp-stdio tools/call get_run by agent:bot" in stderr
    assert "Traceback (most recent call last)" in stderr
    refusal = doorlog.entries(engine, 1)[0]
    assert (refusal["door"], refusal["attempt"], refusal["problem"]) == ("mcp-stdio", "get_run", f"incident {incident}")


@pytest.mark.parametrize("text, hidden, kept", [
    ("Authorization: Bearer tg_AbCdEf0123456789_-xyzXYZ", "AbCdEf0123456789", "Authorization"),
    ("could not connect to postgresql+psycopg://app:s3cr3t-pw@db:5432/tg", "s3cr3t-pw", "app:[hidden]@db"),
    ("[SQL: INSERT INTO sessions VALUES (?)]\n[parameters: ('9f8e7d6c5b4a', 'hash')]\n(Background ...)",
     "9f8e7d6c5b4a", "[SQL: INSERT INTO sessions"),
    ("KeyError: password='hunter2hunter2'", "hunter2", "KeyError"),
])
def test_what_looks_like_a_secret_is_taken_out_of_an_incidents_traceback(text: str, hidden: str, kept: str) -> None:
    scrubbed = incidents.scrub(text)
    assert hidden not in scrubbed and kept in scrubbed, scrubbed
