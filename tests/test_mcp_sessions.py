"""MCP over HTTP's sessions (tiergate.server.mcpsessions), through a real `tiergate serve` subprocess:
the official SDK client keeps one session for its calls, a session carries no authority (each
request's own token decides), and a session this process does not hold is answered statelessly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterator

import anyio
import httpx2 as httpx
import pytest

from serving import Server, running_server
from support import CLIResult, HomeBuilder
from test_server import _issue, mcp_session

HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream",
           "mcp-protocol-version": "2025-11-25"}
GATHER = {"summary": "The export fails for every client.", "severity": "S3"}


@pytest.fixture
def server(demo_home: HomeBuilder, db_url: str, tmp_path: Path) -> Iterator[Server]:
    with running_server(demo_home.root, db_url, tmp_path / "server.log") as running:
        yield running


def _rpc(request_id: int, method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def _initialize(http: httpx.Client) -> str:
    hello = _rpc(1, "initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                   "clientInfo": {"name": "test", "version": "1"}})
    answer = http.post("/mcp", json=hello, headers=HEADERS)
    assert answer.status_code == 200 and answer.json()["result"]["serverInfo"]["name"] == "tiergate", answer.text
    session = answer.headers.get("mcp-session-id")
    assert session, answer.headers
    done = http.post("/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                     headers={**HEADERS, "mcp-session-id": session})
    assert done.status_code == 202, done.text
    return str(session)


def _tool(http: httpx.Client, session: str | None, name: str, arguments: dict[str, Any],
          request_id: int = 2) -> httpx.Response:
    headers = {**HEADERS, "mcp-session-id": session} if session else HEADERS
    return http.post("/mcp", json=_rpc(request_id, "tools/call", {"name": name, "arguments": arguments}),
                     headers=headers)


def _data(answer: httpx.Response) -> Any:
    assert answer.status_code == 200, answer.text
    result = answer.json()["result"]
    assert json.loads(result["content"][0]["text"]) == result["structuredContent"]  # the text is the same envelope
    return result["structuredContent"]["data"]


def test_the_sdk_client_keeps_one_session_for_its_calls(server: Server, demo_home: HomeBuilder,
                                                         cli: Callable[..., CLIResult]) -> None:
    bot = _issue(cli, demo_home, "agent:bot")
    seen: list[tuple[str, int, str | None]] = []

    async def hook(response: httpx.Response) -> None:
        seen.append((response.request.method, response.status_code, response.request.headers.get("mcp-session-id")))

    async def work() -> None:
        async with mcp_session(server.url, bot["token"], event_hooks={"response": [hook]}) as session:
            run = (await session.call_tool("start_run", {"process": "demo", "data": {"ticket_id": "T-1"}}))
            run_id = run.structured_content["data"]["id"]
            done = await session.call_tool("complete_step", {"run": run_id, "step": "gather", "evidence": GATHER})
            assert not done.is_error, done

    anyio.run(work)
    posts = [(status, session) for method, status, session in seen if method == "POST"]
    sessions = {session for _, session in posts[1:]}  # the first, initialize, opens it
    assert posts[0][1] is None and len(sessions) == 1 and None not in sessions, seen
    assert all(status in (200, 202) for status, _ in posts), seen
    # No stream of server-initiated messages is offered (nothing stays open past its token check).
    assert {status for method, status, _ in seen if method == "GET"} <= {405}, seen
    assert ("DELETE", 200) in [(method, status) for method, status, _ in seen], seen  # the client ended it


def test_a_session_does_not_outlive_its_token(server: Server, demo_home: HomeBuilder,
                                              cli: Callable[..., CLIResult], make_engine: Any) -> None:
    bot = _issue(cli, demo_home, "agent:bot")
    with server.client(bot["token"]) as http:
        session = _initialize(http)
        run = _data(_tool(http, session, "start_run", {"process": "demo", "data": {"ticket_id": "T-2"}}))["id"]
        _data(_tool(http, session, "get_run", {"run": run}))
        before = make_engine(demo_home).log(run)
        assert cli("tokens", "revoke", bot["id"], home=demo_home).returncode == 0
        refused = _tool(http, session, "complete_step", {"run": run, "step": "gather", "evidence": GATHER})
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized", refused.text
        assert refused.headers.get("www-authenticate", "").startswith("Bearer")
    assert make_engine(demo_home).log(run) == before  # nothing was done, nothing logged


def test_each_request_acts_as_its_own_token_even_in_another_principals_session(
        server: Server, demo_home: HomeBuilder, cli: Callable[..., CLIResult], make_engine: Any) -> None:
    bot, other = _issue(cli, demo_home, "agent:bot"), _issue(cli, demo_home, "agent:other")
    with server.client(bot["token"]) as http:
        session = _initialize(http)
        run = _data(_tool(http, session, "start_run", {"process": "demo", "data": {"ticket_id": "T-3"}}))["id"]
    with server.client(other["token"]) as http:
        mine = _data(_tool(http, session, "list_my_runs", {}))
        assert mine == []  # agent:other started nothing, whose ever session it names
        _data(_tool(http, session, "complete_step", {"run": run, "step": "gather", "evidence": GATHER}))
    entries = make_engine(demo_home).log(run)
    doors = {(e["actor"], e["door"]) for e in entries if e["actor"] in ("agent:bot", "agent:other")}
    assert doors == {("agent:bot", f"token:{bot['id']}"), ("agent:other", f"token:{other['id']}")}, entries
    assert next(e["event"] for e in entries if e["actor"] == "agent:other") == "step_completed", entries


def test_a_session_this_server_does_not_hold_is_answered_without_one(server: Server, demo_home: HomeBuilder,
                                                                      cli: Callable[..., CLIResult]) -> None:
    """As with `serve --workers N`, where a client's next request may reach a process that did not
    open its session, or after the session ended: the request is answered, not refused with 404."""
    bot = _issue(cli, demo_home, "agent:bot")
    with server.client(bot["token"]) as http:
        elsewhere = "0123456789abcdef0123456789abcdef"
        run = _data(_tool(http, elsewhere, "start_run", {"process": "demo", "data": {"ticket_id": "T-4"}}))["id"]
        session = _initialize(http)
        assert http.delete("/mcp", headers={**HEADERS, "mcp-session-id": session}).status_code == 200
        # Ended: answered without a session from now on, and it cannot be ended twice.
        assert _data(_tool(http, session, "get_run", {"run": run}))["id"] == run
        assert http.delete("/mcp", headers={**HEADERS, "mcp-session-id": session}).status_code == 405
        # No session at all, not even an initialize: answered too (as curl or a one-shot client sends it).
        assert _data(_tool(http, None, "get_run", {"run": run}))["status"] == "active"
        assert http.get("/mcp", headers={"accept": "text/event-stream"}).status_code == 405


def test_sessions_can_be_turned_off(demo_home: HomeBuilder, db_url: str, tmp_path: Path,
                                    cli: Callable[..., CLIResult]) -> None:
    bot = _issue(cli, demo_home, "agent:bot")
    hello = _rpc(1, "initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                   "clientInfo": {"name": "test", "version": "1"}})
    with running_server(demo_home.root, db_url, tmp_path / "server.log", env={"TIERGATE_MCP_SESSIONS": "0"}) as off, \
            off.client(bot["token"]) as http:
        answer = http.post("/mcp", json=hello, headers=HEADERS)
        assert answer.status_code == 200 and "mcp-session-id" not in answer.headers, answer.headers
        assert _data(_tool(http, None, "list_my_runs", {})) == []
