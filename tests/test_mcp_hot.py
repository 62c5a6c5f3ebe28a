"""MCP tool calls over HTTP in one hop (tiergate.server.mcphot): the official SDK client gets the same
bytes from the hot path as from the SDK's own transport, through two real `tiergate serve`
subprocesses on one database, one with the hot path and one without (`TIERGATE_MCP_HOT_PATH=0`)."""

from __future__ import annotations

import json
import re
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Callable

import anyio
import httpx2 as httpx
import pytest

from serving import running_server
from support import CLIResult, HomeBuilder
from test_server import GATHER, _issue, mcp_session
from mcp.types import CallToolResult, ImageContent, JSONRPCResponse, TextContent
from mcp.types import methods as protocol
from mcp.types.version import HANDSHAKE_PROTOCOL_VERSIONS
from tiergate import doorlog, tracing
from tiergate.envelope import failure
from tiergate import mcpanswers, mcpserver
from tiergate.mcpserver import _result, _success
from tiergate.server import build_app
from tiergate.server.mcpshape import Shaping

HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream",
           "mcp-protocol-version": "2025-11-25"}
# Start data with floats (answers with them are read back before they are written) and odd strings.
START = {"ticket_id": "T-1", "score": 1.5e-7, "big": 1e16, "name": "é \u2028 \"q\" </> \U0001f600"}
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
                    started = await session.call_tool("start_run", {"process": "demo", "data": START})
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
                odd = {"summary": "é \u2028 \"q\" \\ \x01 </> \U0001f600", "severity": 1.5e-7, "n": 2**70, "f": 1e16}
                await both("complete_step", {"run": run, "step": "extra", "evidence": odd})  # floats, escapes
                return runs

        runs = anyio.run(work)
    on, off = _tool_calls(seen["hot"]), _tool_calls(seen["sdk"])
    assert len(on) == len(off) == 13, (on, off)
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
    assert errors == ["not_found", "refused", "usage", "usage", "refused", "gate_failed"], answers[6:]
    assert answers[2]["result"]["structuredContent"]["data"]["data"].items() >= START.items()  # get_run, floats too
    assert answers[10]["result"] == {"content": [{"type": "text", "text": "Unknown tool: no_such_tool"}],
                                     "isError": True}
    # Both servers recorded both argument refusals, each as the token's.
    refusals = [(r["door"], r["code"], r["credential"]) for r in doorlog.entries(make_engine(demo_home))]
    assert refusals.count(("mcp", "usage", f"token:{bot['id']}")) == 4, refusals


def _call(run: str = "0123456789ab", **params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": "get_run", "arguments": {"run": run}, **params}}


def test_only_tool_calls_take_the_hot_path(demo_home: HomeBuilder, db_url: str, cli: Callable[..., CLIResult],
                                           make_engine: Any, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """The server's application driven in-process without its lifespan, so the SDK's session manager
    never starts: what the hot path answers is answered, what it leaves to the SDK fails to start
    (answered as an incident by the server's last catch, whose traceback names the SDK's failure)."""
    bot = _issue(cli, demo_home, "agent:bot")

    def sdk_failed(answer: httpx.Response) -> None:
        assert answer.status_code == 500 and answer.json()["error"]["code"] == -32603, answer.text
        incident = answer.json()["error"]["data"]["error"]["details"]["incident"]
        logged = capsys.readouterr().err
        assert f"tiergate: incident {incident}: mcp POST /mcp" in logged, logged
        assert "RuntimeError: Task group is not initialized" in logged, logged

    async def post(app: Any, body: dict[str, Any], **headers: str) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8470") as http:
            return await http.post("/mcp", json=body, headers={**HEADERS, "authorization": f"Bearer {bot['token']}",
                                                               **headers})

    app = build_app(make_engine(demo_home))
    if tracing.tracing_on():  # a tracer provider was set earlier in this process (tests/test_tracing.py):
        sdk_failed(anyio.run(post, app, _call()))  # the SDK keeps its spans
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
    left = [_call() | {"method": "tools/list"}, _call(requestState="x"), _call() | {"id": None},
            {"jsonrpc": "2.0", "method": "initialize", "id": 1, "params": {}}]
    for body in left:
        sdk_failed(anyio.run(post, app, body))
    batch = anyio.run(post, app, [_call()])  # neither path: the doors answer it (MCP has no batches)
    assert batch.status_code == 400 and batch.json()["error"]["data"]["problem"] == "batch", batch.text
    for headers in ({"mcp-protocol-version": "2026-07-28"}, {"accept": "text/event-stream"},
                    {"host": "evil.example"}, {"origin": "http://evil.example"}):  # after the same Host passed
        sdk_failed(anyio.run(lambda headers=headers: post(app, _call(), **headers)))
    monkeypatch.setenv("TIERGATE_MCP_HOT_PATH", "0")
    sdk_failed(anyio.run(post, build_app(make_engine(demo_home)), _call()))


def _sdk_bytes(request_id: Any, result: CallToolResult, version: str) -> bytes:
    """The SDK's own passes from a tool's result to the answer's bytes (what its runner does)."""
    dumped = protocol.serialize_server_result("tools/call", version,
                                              result.model_dump(by_alias=True, mode="json", exclude_none=True))
    return JSONRPCResponse(jsonrpc="2.0", id=request_id, result=dumped).model_dump_json(
        by_alias=True, exclude_unset=True).encode("utf-8")


@pytest.mark.parametrize("version", sorted(HANDSHAKE_PROTOCOL_VERSIONS))
def test_an_answer_written_in_one_pass_is_the_sdks_bytes(version: str) -> None:
    shaping = Shaping()
    assert version in shaping.versions
    data = {"floats": [1.5e-7, 1e16, 1e-5, 123456789.125, -0.0, 0.1, 2.0, 1e300], "ints": [0, -3, 2**63, 2**70],
            "text": "é \u2028\u2029 \"q\" \\ \x00\x01\x1f\x7f </> \U0001f600 \t\n", "none": None,
            "nested": [{"b": True, "a": False}, [], {}], "Z": "sorted first"}
    results = [_success(data), _success([]), _success(None),
               _result(failure("gate_failed", "'/severity' is not \"S1\"", {"errors": [{"at": "/x", "value": 1e-9}]}))]
    for request_id in (7, 0, -1, 2**62, "a-b", "", "é"):
        for result in results:
            assert shaping.answer(request_id, result, version) == _sdk_bytes(request_id, result, version), result
    text = TextContent(type="text", text="{}")
    others = [CallToolResult(content=[text, text], structured_content={}),
              CallToolResult(content=[text]),  # no structured content
              CallToolResult(content=[text], structured_content={}, _meta={"k": 1}),
              CallToolResult(content=[TextContent(type="text", text="{}", annotations={"priority": 1.0})],
                             structured_content={}),
              CallToolResult(content=[ImageContent(type="image", data="AA==", mime_type="image/png")],
                             structured_content={}),
              {"content": [], "isError": False}]
    for other in others:  # left to the SDK's passes
        assert shaping.answer(7, other, version) is None, other
    assert shaping.answer(7, results[0], "2026-07-28") is None


@pytest.mark.parametrize("version", sorted(HANDSHAKE_PROTOCOL_VERSIONS))
def test_a_success_written_from_its_text_is_the_sdks_bytes(version: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """On the hot path a tool's success is its envelope's text; written as it is unless it may hold a float."""
    shaping = Shaping()
    hot: ContextVar[object] = ContextVar("hot")
    hot.set(object())  # as call_tool_now sets the caller
    monkeypatch.setattr(mcpanswers, "_hot_caller", hot)  # _success reads it there
    spelled = ["2026-12-07T05:20:49.123456Z", "é \u2028\u2029 \"q\" \\ \x00\x01\x1f\x7f </> \U0001f600", "10:30.5, 1.5",
               {"n": [0, -1, 2**70], "t": True, "f": False, "z": None, "e": {}, "l": [[]]}, [], None, "", 0]
    for data in spelled:
        text = _success(data)
        assert isinstance(text, mcpserver.EnvelopeText)
        for request_id in (7, "a-b", 2**62):
            written = shaping.success(request_id, text, version)
            assert written is not None and written == _sdk_bytes(request_id, text.result(), version), data
    for data in (1.5e-7, {"a": [1, 2.0]}, {"b": 1e16}, [-0.0], {"s": "x\":1.5"}, "[1.5"):  # floats (or so it seems)
        text = _success(data)
        assert shaping.success(7, text, version) is None and shaping.answer(7, text.result(), version) == \
            _sdk_bytes(7, text.result(), version)
    assert shaping.success(7, _success("x"), "2026-07-28") is None


def test_a_revoked_token_stops_at_once_on_the_hot_path(demo_home: HomeBuilder, cli: Callable[..., CLIResult],
                                                       make_engine: Any) -> None:
    """A token that was just served is refused on its next call, once revoked (nothing of it is kept)."""
    if tracing.tracing_on():
        pytest.skip("with tracing configured every request goes to the SDK (test_only_tool_calls_take_the_hot_path)")
    bot = _issue(cli, demo_home, "agent:bot")
    app = build_app(make_engine(demo_home))

    async def post() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8470") as http:
            return await http.post("/mcp", json=_call(), headers={**HEADERS, "authorization": f"Bearer {bot['token']}"})

    for _ in range(2):
        served = anyio.run(post)
        assert served.status_code == 200 and served.json()["result"]["structuredContent"]["error"]["code"] == "not_found"
    assert cli("tokens", "revoke", bot["id"], home=demo_home).returncode == 0
    refused = anyio.run(post)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized", refused.text
    assert bot["token"] not in refused.text


def test_every_character_is_spelled_alike_by_both_encoders() -> None:
    """Why a success's text can stand for its structured content (tiergate.server.mcpshape): Python's
    encoder (the canonical JSON of the text) and pydantic's (the SDK's answer) spell every string alike."""
    import pydantic_core

    from tiergate.jsonutil import canonical_json

    for start in range(0, 0x110000, 0x1000):
        text = "".join(chr(c) for c in range(start, start + 0x1000) if not 0xD800 <= c <= 0xDFFF)
        assert canonical_json(text).encode("utf-8") == pydantic_core.to_json(text), hex(start)
    for value in (0, -1, 2**63, -(2**70), True, False, None, [], {}, {"b": [1, {"a": None}]}):
        assert canonical_json(value).encode("utf-8") == pydantic_core.to_json(value), value


def test_every_float_is_found_in_a_success_text() -> None:
    """A success's text is put into the answer as it is only without a float (mcpshape._may_hold_float):
    every float Python's encoder writes is found, wherever it is; strings only look like one at times."""
    import random

    from tiergate.jsonutil import canonical_json
    from tiergate.server.mcpshape import _may_hold_float

    chooser = random.Random(13)
    for _ in range(3000):
        number = chooser.choice([1, -1]) * chooser.random() * 10 ** chooser.randint(-30, 30)
        where = chooser.choice([number, [number], [0, number], {"k": number}, {"a": "x.5", "b": [3, {"c": number}]}])
        assert _may_hold_float(canonical_json({"ok": True, "data": where})), where
    for plain in ("2026-12-07T05:20:49.123456Z", "Step 1. Then 2.", "one-time e+1", "4e5f0123abcd", [10, -2], {"n": 2**70}):
        assert not _may_hold_float(canonical_json({"ok": True, "data": plain})), plain
