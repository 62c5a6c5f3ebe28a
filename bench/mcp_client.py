"""A small MCP client over streamable HTTP for the benches: the standard library's ``http.client``
on one keep-alive connection, so the bench measures the server rather than its own client.

    client = McpClient("127.0.0.1:8470", token)
    client.initialize()                                   # initialize + notifications/initialized
    result = client.call_tool("get_run", {"run": "4f2a9c1e7b3d"})   # the tools/call result (a dict)
    client.close()                                        # DELETE of its session, if it has one

What it speaks (the MCP specification's streamable HTTP transport, protocol 2025-11-25): every
message is a ``POST`` to the endpoint with ``Accept: application/json, text/event-stream``; a
request is answered either with one JSON-RPC message (``application/json``) or with an event
stream (``text/event-stream``) whose ``message`` events carry it; a notification is answered
``202``. A session id the server gives in ``Mcp-Session-Id`` with the answer to ``initialize`` is
sent with every later message, and so is ``MCP-Protocol-Version`` with the version agreed.
The official SDK's client (``mcp.client.streamable_http``) is what the tests use; this one does
only what the bench needs, at about a tenth of its CPU a call.
"""

from __future__ import annotations

import http.client
import json
from typing import Any

PROTOCOL_VERSION = "2025-11-25"


class McpError(Exception):
    """A JSON-RPC error answer, or an HTTP status other than the one expected."""


class McpClient:
    def __init__(self, address: str, token: str, path: str = "/mcp", timeout: float = 120):
        self.conn = http.client.HTTPConnection(address, timeout=timeout)
        self.path = path
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                        "Accept": "application/json, text/event-stream"}
        self.session: str | None = None
        self.last_id = 0

    def initialize(self) -> dict[str, Any]:
        result = self.request("initialize", {"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                                             "clientInfo": {"name": "tiergate-bench", "version": "1"}})
        self.headers["MCP-Protocol-Version"] = str(result.get("protocolVersion", PROTOCOL_VERSION))
        self.notify("notifications/initialized")
        return result

    def call_tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return self.request("tools/call", {"name": name, "arguments": arguments})

    def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.last_id += 1
        status, headers, body = self.post({"jsonrpc": "2.0", "id": self.last_id, "method": method, "params": params})
        if status != 200:
            raise McpError(f"{method}: HTTP {status}: {body[:300]!r}")
        if self.session is None and headers.get("mcp-session-id"):
            self.session = headers["mcp-session-id"]
            self.headers["Mcp-Session-Id"] = self.session
        kind = headers.get("content-type", "").split(";")[0].strip()
        answer = _from_stream(body, self.last_id) if kind == "text/event-stream" else json.loads(body)
        if "error" in answer:
            raise McpError(f"{method}: {answer['error']}")
        return dict(answer["result"])

    def notify(self, method: str) -> None:
        status, _, body = self.post({"jsonrpc": "2.0", "method": method})
        if status != 202:
            raise McpError(f"{method}: HTTP {status}: {body[:300]!r}")

    def post(self, message: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        self.conn.request("POST", self.path, body=json.dumps(message), headers=self.headers)
        answer = self.conn.getresponse()
        body = answer.read()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, body

    def close(self) -> None:
        try:
            if self.session is not None:
                self.conn.request("DELETE", self.path, headers=self.headers)
                self.conn.getresponse().read()
        finally:
            self.conn.close()


def _from_stream(body: bytes, request_id: int) -> dict[str, Any]:
    """The answer to ``request_id`` among an event stream's ``message`` events (others are skipped:
    notifications, or the server's requests, which this client does not take)."""
    for event in body.decode("utf-8").replace("\r\n", "\n").split("\n\n"):
        kind, data = "message", []
        for line in event.split("\n"):
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                kind = value
            elif field == "data":
                data.append(value)
        if kind == "message" and data:
            message = json.loads("\n".join(data))
            if message.get("id") == request_id and ("result" in message or "error" in message):
                return dict(message)
    raise McpError(f"the event stream ended without an answer to request {request_id}")
