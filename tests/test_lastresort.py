"""The server's last catch (``tiergate.server.lastresort``) on a real uvicorn server and socket:
an exception that escapes the app before its answer began is answered 500 with an incident (for
MCP, the JSON-RPC error naming the request's id from the body the doors kept); one after the
answer began closes the connection. Never a traceback to the client."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from typing import Any, Iterator

import pytest
import uvicorn

from tiergate.server.doors import BODY
from tiergate.server.lastresort import LastResort


async def failing(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/mcp":
        scope[BODY] = (await receive())["body"]  # as the doors keep a body they read whole
    if scope["path"] == "/late":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]})
        await send({"type": "http.response.body", "body": b"01234", "more_body": True})
    raise TypeError("'int' object is not subscriptable at state['steps']")


@pytest.fixture(scope="module")
def address() -> Iterator[tuple[str, int]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(LastResort(failing), host="127.0.0.1", port=port, log_level="critical",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield "127.0.0.1", port
    server.should_exit = True
    thread.join(timeout=10)


def _post(address: tuple[str, int], path: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(*address, timeout=10)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def test_an_escaped_exception_is_the_envelope_with_an_incident(address: tuple[str, int]) -> None:
    status, body = _post(address, "/api/runs", b"{}")
    error = json.loads(body)["error"]
    assert status == 500 and error["code"] == "internal_error"
    assert f"incident {error['details']['incident']}" in error["message"]
    assert "subscriptable" not in body.decode() and "Traceback" not in body.decode()


def test_over_mcp_it_is_the_json_rpc_error_for_the_requests_id(address: tuple[str, int]) -> None:
    status, body = _post(address, "/mcp", json.dumps({"jsonrpc": "2.0", "id": 41, "method": "tools/call"}).encode())
    answer = json.loads(body)
    assert status == 500 and answer["id"] == 41 and answer["error"]["code"] == -32603
    assert answer["error"]["data"]["error"]["code"] == "internal_error" and "subscriptable" not in body.decode()


def test_a_page_asks_for_a_page(address: tuple[str, int]) -> None:
    status, body = _post(address, "/runs/x/steps/y/complete", b"a=1", {"Accept": "text/html"})
    assert status == 500 and b"<html" in body.lower() and b"subscriptable" not in body


def test_after_the_answer_began_the_connection_is_closed_without_the_rest(address: tuple[str, int]) -> None:
    with pytest.raises(http.client.IncompleteRead) as raised:
        _post(address, "/late", b"{}")
    assert raised.value.partial == b"01234"
    status, _ = _post(address, "/api/runs", b"{}")  # and the server answers the next request
    assert status == 500
