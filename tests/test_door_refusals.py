"""Issue 12: every door reads a message with one strict parser, refuses what two parsers could read
differently (a key twice, NaN, 1e400, a lone surrogate), too deep or too long, keeps serving, and
records each refusal that reached no run by its digest and size only (`tiergate log refusals`)."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Callable, Iterator

from support import CLIResult, HomeBuilder
from test_no_traceback import _serve
from test_server import Server, _issue, server  # noqa: F401 - the `serve` subprocess fixture

Cli = Callable[..., CLIResult]
DEEP = "[" * 41 + "]" * 41  # inside a message, 44 levels: over message_depth (40)


def _call(request_id: int, arguments_json: str, tool: str = "complete_step") -> bytes:
    return (f'{{"jsonrpc": "2.0", "id": {request_id}, "method": "tools/call", "params": {{"name": "{tool}", '
            f'"arguments": {arguments_json}}}}}').encode()


def _refusals(cli: Cli, home: HomeBuilder) -> list[dict[str, Any]]:
    result = cli("log", "refusals", "--json", home=home)
    assert result.returncode == 0, result
    return list(result.json["data"])


def test_the_stdio_transport_refuses_what_parsers_could_read_differently_and_keeps_serving(
        demo_home: HomeBuilder, db_url: str, cli: Cli) -> None:
    huge = _call(16, json.dumps({"run": "abc", "step": "gather", "evidence": {"notes": "x" * 400_000}}))
    lines = {
        11: _call(11, '{"run": "abc", "step": "gather", "evidence": {"severity": "S1", "severity": "S4"}}'),
        12: _call(12, '{"run": "abc", "step": "gather", "evidence": {"count": -Infinity}}'),
        13: _call(13, '{"run": "abc", "step": "gather", "evidence": {"count": 1e400}}'),
        14: _call(14, '{"run": "abc", "step": "gather", "evidence": {"summary": "\\udc00 alone"}}'),
        15: _call(15, f'{{"run": "abc", "step": "gather", "evidence": {{"deep": {DEEP}}}}}'),
        16: huge,
        18: b'{"jsonrpc": "2.0", "id": 18, "method": 7}',
        None: b'{"jsonrpc": "2.0", "id": 1, "id": 2, "method": "ping"}',
    }
    good = _call(17, '{"run": "abc", "step": "gather", "evidence": {}}')
    typed = _call(19, '{"run": "abc", "step": "gather", "evidence": "not an object"}')
    unknown = _call(20, '{"run": "abc", "step": "gather", "evidence": {}, "actor": "human:boss"}')
    answers, stderr = _serve(demo_home, db_url, [*lines.values(), good, typed, unknown])
    assert "Traceback" not in stderr, stderr
    expected = {11: (-32600, "duplicate_key"), 12: (-32700, "not_finite"), 13: (-32700, "not_finite"),
                14: (-32700, "lone_surrogate"), 15: (-32600, "message_depth"), 16: (-32600, "message_bytes"),
                18: (-32600, "not_jsonrpc")}
    for request_id, (code, problem) in expected.items():
        error = answers[request_id]["error"]
        assert (error["code"], error["data"]["problem"]) == (code, problem), (request_id, error)
        assert error["data"]["sha256"] == hashlib.sha256(lines[request_id]).hexdigest()
        assert error["data"]["bytes"] == len(lines[request_id])
    assert answers[16]["error"]["data"]["limit"] == "message_bytes" and "x" * 50 not in json.dumps(answers[16])
    [twice] = [a for key, a in answers.items() if str(key).startswith("null-")]
    assert twice["id"] is None and twice["error"]["data"]["problem"] == "duplicate_key"
    # The oversized line was skipped, not read: the next line is answered as usual, by a tool.
    assert answers[17]["result"]["structuredContent"]["error"]["code"] == "not_found"
    # A call refused for its arguments (the envelope, `usage`) reaches no run either: recorded too.
    for request_id in (19, 20):
        assert answers[request_id]["result"]["structuredContent"]["error"]["code"] == "usage"
    rows = _refusals(cli, demo_home)
    assert [(r["attempt"], r["code"], r["problem"]) for r in rows[:2]] == [("complete_step", "usage", "arguments")] * 2
    rows = rows[2:]
    assert len(rows) == len(lines)
    assert {row["door"] for row in rows} == {"mcp-stdio"} and {row["actor"] for row in rows} == {"agent:bot"}
    assert sorted((row["sha256"], row["bytes"]) for row in rows) == sorted(
        (hashlib.sha256(line).hexdigest(), len(line)) for line in lines.values())
    assert all(len(json.dumps(row)) < 400 for row in rows)


def test_refused_inputs_that_reach_no_run_are_recorded_by_digest(cli: Cli, demo_home: HomeBuilder) -> None:
    twice = '{"ticket_id": "T-1", "ticket_id": "T-2"}'
    result = cli("start", "demo", "--data", twice, "--actor", "human:alice", "--json", home=demo_home)
    assert result.returncode == 1 and result.json["error"]["details"]["problem"] == "duplicate_key", result
    broken = cli("start", "demo", "--data", '{"ticket_id": ', "--actor", "human:alice", "--json", home=demo_home)
    assert broken.returncode == 2 and broken.json["error"]["code"] == "invalid_json", broken
    nowhere = cli("complete", "no-such-run", "gather", "--evidence", '{"a": NaN}', "--actor", "human:alice",
                  "--json", home=demo_home)
    assert nowhere.json["error"]["code"] == "invalid_evidence", nowhere
    listed = cli("start", "demo", "--data", "[1, 2]", "--actor", "human:alice", "--json", home=demo_home)
    assert listed.returncode == 1 and "must be a JSON object" in listed.json["error"]["message"], listed
    rows = _refusals(cli, demo_home)
    assert [(r["door"], r["attempt"], r["code"], r["problem"], r["actor"], r["credential"]) for r in rows] == [
        ("cli", "complete", "invalid_evidence", "not_finite", "human:alice", "direct"),
        ("cli", "start", "invalid_json", None, "human:alice", "direct"),
        ("cli", "start", "invalid_data", "duplicate_key", "human:alice", "direct"),
    ]
    assert rows[2]["sha256"] == hashlib.sha256(twice.encode()).hexdigest() and rows[2]["bytes"] == len(twice)
    assert cli("runs", "--json", home=demo_home).json["data"] == []
    # A bad --data of a retry reaches its run: logged there, by digest, like --evidence.
    run = cli("start", "demo", "--data", '{"ticket_id": "T-3"}', "--actor", "human:alice", "--json",
              home=demo_home).json["data"]["id"]
    retry = cli("retry", run, "gather", "--data", '{"x": 1, "x": 2}', "--actor", "human:alice", "--json",
                home=demo_home)
    assert retry.json["error"]["details"]["problem"] == "duplicate_key", retry
    entry = cli("log", run, "--json", home=demo_home).json["data"][-1]
    assert entry["event"] == "refused" and entry["detail"]["data"]["omitted"] is True
    assert entry["detail"]["data"]["sha256"] == hashlib.sha256(b'{"x": 1, "x": 2}').hexdigest()
    assert len(_refusals(cli, demo_home)) == 3


def test_http_doors_read_bodies_strictly_before_the_mcp_sdk_or_an_operation(
        server: Server, demo_home: HomeBuilder, cli: Cli) -> None:  # noqa: F811 - the fixture
    bot = _issue(cli, demo_home, "agent:bot")
    mcp_headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    with server.client(bot["token"]) as http:
        api = {
            b'{"process": "demo", "data": {"ticket_id": "T-1", "ticket_id": "T-2"}}': (400, "invalid_json",
                                                                                        "duplicate_key"),
            b'{"process": "demo", "data": {"ticket_id": NaN}}': (400, "invalid_json", "not_finite"),
            b'{"process": "demo", "data": {"deep": ' + DEEP.encode() + b"}}": (400, "limit_exceeded",
                                                                               "message_depth"),
        }
        for body, (status, code, problem) in api.items():
            answer = http.post("/api/runs", content=body, headers={"content-type": "application/json"})
            assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), answer.text
            assert answer.json()["error"]["details"]["problem"] == problem
            assert "Traceback" not in answer.text
        rpc = {
            _call(21, '{"run": "abc", "step": "gather", "evidence": {"a": 1, "a": 2}}'): (400, -32600, "duplicate_key"),
            _call(22, '{"run": "abc", "step": "gather", "evidence": {"a": Infinity}}'): (400, -32700, "not_finite"),
            _call(23, f'{{"run": "abc", "step": "gather", "evidence": {DEEP}}}'): (400, -32600, "message_depth"),
        }
        for body, (status, code, problem) in rpc.items():
            answer = http.post("/mcp", content=body, headers=mcp_headers)
            assert answer.status_code == status, answer.text
            error = answer.json()["error"]
            assert (error["code"], error["data"]["problem"]) == (code, problem) and answer.json()["id"] in (21, 22, 23)

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives, refused mid-way
            yield b'{"jsonrpc": "2.0", "id": 24, "method": "tools/call", "params": {"evidence": "'
            for _ in range(100):
                yield b"x" * 8192

        over = http.post("/mcp", content=chunks(), headers=mcp_headers)
        assert over.status_code == 413 and over.json()["error"]["data"]["problem"] == "message_bytes", over.text
        assert over.json()["id"] == 24
        hello = {"jsonrpc": "2.0", "id": 25, "method": "initialize",
                 "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t",
                                                                                                "version": "1"}}}
        assert http.post("/mcp", json=hello, headers=mcp_headers).json()["result"]["serverInfo"]["name"] == "tiergate"
        typed = http.post("/mcp", content=_call(26, '{"run": "abc", "step": "gather", "evidence": "text"}'),
                          headers=mcp_headers)
        assert typed.json()["result"]["structuredContent"]["error"]["code"] == "usage", typed.text
        assert http.get("/api/runs").json()["data"] == []
    rows = _refusals(cli, demo_home)
    assert [(r["door"], r["problem"]) for r in rows] == [
        ("mcp", "arguments"), ("mcp", "message_bytes"), ("mcp", "message_depth"), ("mcp", "not_finite"), ("mcp", "duplicate_key"),
        ("api", "message_depth"), ("api", "not_finite"), ("api", "duplicate_key")]
    assert {(r["actor"], r["credential"]) for r in rows} == {("agent:bot", f"token:{bot['id']}")}
    assert "Traceback" not in server.errlog.read_text()
