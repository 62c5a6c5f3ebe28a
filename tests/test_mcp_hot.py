"""MCP tool calls over HTTP in one hop (tiergate.server.mcphot): the official SDK client gets the same
bytes from the hot path as from the SDK's own transport, through two real `tiergate serve`
subprocesses on one database, one with the hot path and one without (`TIERGATE_MCP_HOT_PATH=0`)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

import anyio
import httpx2 as httpx
import pytest

from serving import running_server
from support import CLIResult, HomeBuilder
from test_server import GATHER, _issue, mcp_session
from tiergate import doorlog, tracing
from tiergate.server import build_app

HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream",
           "mcp-protocol-version": "2025-11-25"}
# What two runs' answers may differ in: their ids and the moments they were started and changed.
_RUN_ID = re.compile(r"\b[0-9a-f]{12}\b")
_MOMENT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")


def _tool_calls(seen: list[tuple[dict[str, Any], httpx.Response, bytes]]) -> list[tuple[Any, ...]]:
    """Each tools/call exchange: the request, the status, the content type, whether a session id came
    back (and was the session's), and the answer's bytes."""
    calls = []
    for request, response, body in seen:
        if request.get("method") == "tools/call":
            sent = response.request.headers.get("mcp-session-id")
            back = response.headers.get("mcp-session-id")
            calls.append((request, response.status_code, response.headers.get("content-type"),
                          back is not None and back == sent, body))
    return calls


def _same_modulo_runs(one: bytes, other: bytes) -> bool:
    def plain(body: bytes) -> str:
        return _MOMENT.sub("T", _RUN_ID.sub("RUN", body.decode("utf-8")))

    return plain(one) == plain(other)


def test_tool_calls_answer_byte_for_byte_as_through_the_sdks_transport(
        demo_home: HomeBuilder, db_url: str, tmp_path: Path, cli: Callable[..., CLIResult], make_engine: Any) -> None:
    bot = _issue(cli, demo_home, "agent:bot")
    with running_server(demo_home.root, db_url, tmp_path / "hot.log") as hot, \
            running_server(demo_home.root, db_url, tmp_path / "sdk.log", env={"TIERGATE_MCP_HOT_PATH": "0"}) as sdk:
        seen: dict[str, list[tuple[dict[str, Any], httpx.Response, bytes]]] = {"hot": [], "sdk": []}

        def hook(name: str) -> Callable[[httpx.Response], Any]:
            async def record(response: httpx.Response) -> None:
                if response.request.method == "POST":
                    seen[name].append((json.loads(response.request.content), response, await response.aread()))
            return record

        async def work() -> list[str]:
            async with mcp_session(hot.url, bot["token"], event_hooks={"response": [hook("hot")]}) as on, \
                    mcp_session(sdk.url, bot["token"], event_hooks={"response": [hook("sdk")]}) as off:
                async def both(name: str, arguments: dict[str, Any]) -> None:
                    for session in (on, off):  # each call on both before the next: both see one state
                        await session.call_tool(name, arguments)

                runs = []
                for session in (on, off):  # a run each, started and stepped alike
                    started = await session.call_tool("start_run", {"process": "demo", "data": {"ticket_id": "T-1"}})
                    runs.append(started.structured_content["data"]["id"])
                    await session.call_tool("complete_step", {"run": runs[-1], "step": "gather", "evidence": GATHER})
                run = runs[0]
                await both("get_run", {"run": run})
                await both("get_guidance", {"run": run})
                await both("list_processes", {})
                await both("list_my_work", {})
                await both("get_run", {"run": "0123456789ab"})  # not_found
                await both("complete_step", {"run": run, "step": "review", "evidence": {"approved": "yes"}})
                await both("complete_step", {"run": run, "step": "gather"})  # evidence missing
                await both("complete_step", {"run": run, "step": "gather", "evidence": GATHER, "actor": "human:x"})
                await both("no_such_tool", {})
                await both("skip_step", {"run": run, "step": "review", "reason": "no"})  # refused
                return runs

        runs = anyio.run(work)
    on, off = _tool_calls(seen["hot"]), _tool_calls(seen["sdk"])
    assert len(on) == len(off) == 12, (on, off)
    # The first calls worked on each server's own run: the same but for the run's id and moments.
    for (request, status, kind, session, body), other in zip(on[:2], off[:2]):
        assert (status, kind, session) == other[1:4] == (200, "application/json", True), (request, other)
        assert _same_modulo_runs(body, other[4]), (request, body, other[4])
    # Then the same calls on one run: byte for byte, JSON-RPC ids included (each client numbers alike).
    for (request, *answer), (_, *other) in zip(on[2:], off[2:]):
        assert answer == other, request
    answers = [json.loads(body) for *_, body in on]
    assert [a["result"]["structuredContent"]["data"]["id"] for a in answers[1:3]] == [runs[0]] * 2
    errors = [a["result"]["structuredContent"]["error"]["code"] for a in answers[6:] if "structuredContent" in
              a["result"]]
    assert errors == ["not_found", "refused", "usage", "usage", "refused"], answers[6:]
    assert answers[10]["result"] == {"content": [{"type": "text", "text": "Unknown tool: no_such_tool"}],
                                     "isError": True}
    # Both servers recorded both argument refusals, each as the token's.
    refusals = [(r["door"], r["code"], r["credential"]) for r in doorlog.entries(make_engine(demo_home))]
    assert refusals.count(("mcp", "usage", f"token:{bot['id']}")) == 4, refusals


def _call(run: str = "0123456789ab", **params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": "get_run", "arguments": {"run": run}, **params}}


def test_only_tool_calls_take_the_hot_path(demo_home: HomeBuilder, db_url: str, cli: Callable[..., CLIResult],
                                           make_engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's application driven in-process without its lifespan, so the SDK's session manager
    never starts: what the hot path answers is answered, what it leaves to the SDK fails to start."""
    bot = _issue(cli, demo_home, "agent:bot")

    async def post(app: Any, body: dict[str, Any], **headers: str) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8470") as http:
            return await http.post("/mcp", json=body, headers={**HEADERS, "authorization": f"Bearer {bot['token']}",
                                                               **headers})

    app = build_app(make_engine(demo_home))
    if tracing.tracing_on():  # a tracer provider was set earlier in this process (tests/test_tracing.py):
        with pytest.raises(RuntimeError, match="Task group is not initialized"):  # the SDK keeps its spans
            anyio.run(post, app, _call())
        return
    answer = anyio.run(post, app, _call())
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json", answer.text
    assert answer.json()["id"] == 7 and answer.json()["result"]["structuredContent"]["error"]["code"] == "not_found"
    unknown = anyio.run(lambda: post(app, _call(), **{"mcp-session-id": "0123456789abcdef0123456789abcdef"}))
    assert unknown.status_code == 200 and "mcp-session-id" not in unknown.headers
    revoked = _issue(cli, demo_home, "agent:gone")
    assert cli("tokens", "revoke", revoked["id"], home=demo_home).returncode == 0
    refused = anyio.run(lambda: post(app, _call(), authorization=f"Bearer {revoked['token']}"))
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
    left = [_call() | {"method": "tools/list"}, _call(requestState="x"), _call() | {"id": None}, [_call()],
            {"jsonrpc": "2.0", "method": "initialize", "id": 1, "params": {}}]
    for body in left:
        with pytest.raises(RuntimeError, match="Task group is not initialized"):
            anyio.run(post, app, body)
    for headers in ({"mcp-protocol-version": "2026-07-28"}, {"accept": "text/event-stream"},
                    {"host": "evil.example"}):
        with pytest.raises(RuntimeError, match="Task group is not initialized"):
            anyio.run(lambda headers=headers: post(app, _call(), **headers))
    monkeypatch.setenv("TIERGATE_MCP_HOT_PATH", "0")
    with pytest.raises(RuntimeError, match="Task group is not initialized"):
        anyio.run(post, build_app(make_engine(demo_home)), _call())
