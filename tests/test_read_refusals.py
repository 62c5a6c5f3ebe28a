"""Refusals of an authenticated principal that reach no run are rows of `tiergate log refusals`:
reads that need the auditor role (403), ``actor_mismatch`` outside a run, a message no run waits for.
Through real sockets: httpx on the API, the CLI in client mode, MCP over HTTP and over stdio."""

from __future__ import annotations

import json
from typing import Any, Callable

import anyio

from support import CLIResult, HomeBuilder
from test_door_refusals import _refusals
from test_no_traceback import _serve
from test_reads import _tokens, demo_home  # noqa: F401 - the home with an auditor role
from test_server import Server, _answer, mcp_session, server  # noqa: F401 - the `serve` subprocess fixture

Cli = Callable[..., CLIResult]


def _rows(cli: Cli, home: HomeBuilder) -> list[tuple[Any, ...]]:
    """Oldest first: (door, attempt, code, problem, actor, credential)."""
    return [(r["door"], r["attempt"], r["code"], r["problem"], r["actor"], r["credential"])
            for r in reversed(_refusals(cli, home))]


def _credential(cli: Cli, home: HomeBuilder, principal: str) -> str:
    listed = cli("tokens", "list", "--json", home=home).json["data"]
    return "token:" + next(t["id"] for t in listed if t["principal"] == principal)


def test_reads_that_need_the_auditor_role_are_refused_and_recorded_at_every_http_door(
        server: Server, demo_home: HomeBuilder, cli: Cli) -> None:  # noqa: F811 - the fixtures
    tokens = _tokens(cli, demo_home, "agent:stranger", "human:alice", "human:audrey")
    stranger, alice = (_credential(cli, demo_home, p) for p in ("agent:stranger", "human:alice"))
    with server.client(tokens["agent:stranger"]) as http:
        for path in ("/api/log/verify", "/api/metrics", "/api/gaps", "/api/report"):
            answer = http.get(path)
            assert answer.status_code == 403, (path, answer.text)
            assert answer.json()["error"]["details"]["reason"] == "actor_not_allowed"
        mismatch = http.post("/api/runs", json={"process": "demo", "data": {"ticket_id": "T-1"}, "actor": "human:x"})
        assert mismatch.status_code == 403 and mismatch.json()["error"]["code"] == "actor_mismatch", mismatch.text
        nobody = http.post("/api/messages", json={"name": "payment_received", "correlate": {"order": "O-1"}})
        assert nobody.json()["error"]["details"]["reason"] == "no_waiting_run", nobody.text
    with server.client(tokens["human:alice"]) as http:  # the owner's role: its process's metrics, not all
        assert http.get("/api/metrics", params={"process": "demo"}).status_code == 200
        assert http.get("/api/metrics").status_code == 403
    with server.client(tokens["human:audrey"]) as http:  # an auditor: nothing refused, nothing recorded
        for path in ("/api/log/verify", "/api/metrics"):  # (gaps need decisions/ this home has not)
            assert http.get(path).status_code == 200, path
    client = cli("metrics", "--json", home=demo_home,
                 env={"TIERGATE_URL": server.url, "TIERGATE_TOKEN": tokens["agent:stranger"]})
    assert client.returncode == 1 and client.json["error"]["details"]["reason"] == "actor_not_allowed", client

    async def send() -> dict[str, Any]:
        async with mcp_session(server.url, tokens["agent:stranger"]) as session:
            return _answer(await session.call_tool("send_message", {"name": "payment_received",
                                                                    "correlate": {"order": "O-2"}, "data": {}}))

    assert anyio.run(send)["error"]["details"]["reason"] == "no_waiting_run"
    refused = ("refused", "actor_not_allowed")
    assert _rows(cli, demo_home) == [
        ("api", "log_verify", *refused, "agent:stranger", stranger),
        ("api", "metrics", *refused, "agent:stranger", stranger),
        ("api", "gaps", *refused, "agent:stranger", stranger),
        ("api", "report", *refused, "agent:stranger", stranger),
        ("api", "start", "actor_mismatch", "actor_mismatch", "agent:stranger", stranger),
        ("api", "message", "refused", "no_waiting_run", "agent:stranger", stranger),
        ("api", "metrics", *refused, "human:alice", alice),
        ("api", "metrics", *refused, "agent:stranger", stranger),  # the CLI as a client
        ("mcp", "message", "refused", "no_waiting_run", "agent:stranger", stranger),
    ]
    assert all(len(json.dumps(row)) < 400 for row in _refusals(cli, demo_home))
    assert cli("runs", "--json", home=demo_home).json["data"] == []  # nothing else changed
    assert cli("log", "--json", home=demo_home).json["data"] == []
    assert "Traceback" not in server.errlog.read_text()


def test_a_message_stdio_mcp_cannot_deliver_is_recorded_for_its_agent(
        demo_home: HomeBuilder, db_url: str, cli: Cli) -> None:  # noqa: F811 - the fixture
    call = {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": "send_message", "arguments": {"name": "payment_received",
                                                              "correlate": {"order": "O-3"}, "data": {}}}}
    answers, stderr = _serve(demo_home, db_url, [json.dumps(call).encode()])
    assert "Traceback" not in stderr, stderr
    assert answers[7]["result"]["structuredContent"]["error"]["details"]["reason"] == "no_waiting_run", answers
    assert _rows(cli, demo_home) == [("mcp-stdio", "message", "refused", "no_waiting_run", "agent:bot", "direct")]
