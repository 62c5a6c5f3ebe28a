"""The MCP server's stdio transport: one JSON-RPC message per line, and an answer for every line.

The SDK's own stdio transport hands a line it cannot read to the session, which answers
nothing: the client waits forever. This one answers such a line itself, as JSON-RPC says:

* not UTF-8, or not JSON: ``-32700`` (parse error), ``id`` null;
* JSON, but not a JSON-RPC message, or nested deeper than the parser takes: ``-32600``
  (invalid request), with the request's ``id`` when it can be read.

Everything else goes to the session unchanged.
"""

from __future__ import annotations

import json
import re
import sys
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import anyio
import mcp_types as types
from mcp.shared.message import SessionMessage

_ID = re.compile(r'"id"\s*:\s*("(?:[^"\\]|\\.){0,200}"|-?\d{1,18})')


def _request_id(text: str, parsed: Any = None) -> str | int | None:
    """The ``id`` of a request that could not be read as a message, if it can be found."""
    if isinstance(parsed, dict):
        value = parsed.get("id")
        return value if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    head = text.split('"params"', 1)[0]
    found = _ID.search(head)
    if found is None:
        return None
    try:
        value = json.loads(found.group(1))
    except ValueError:
        return None
    return value if isinstance(value, (str, int)) else None


def read_line(raw: bytes) -> SessionMessage | types.JSONRPCError | None:
    """A line from the client: its message, the error to answer it with, or None for a blank line."""
    if not raw.strip():
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _error(None, types.PARSE_ERROR, f"Parse error: the line is not UTF-8 (byte {exc.start}).")
    try:
        return SessionMessage(types.jsonrpc_message_adapter.validate_json(text, by_name=False))
    except Exception:  # noqa: BLE001 - why is told below, by the standard library's parser
        pass
    try:
        parsed = json.loads(text)
    except RecursionError:
        return _error(_request_id(text), types.INVALID_REQUEST, "Invalid Request: the message is nested too deeply "
                      "to read. Send flatter JSON.")
    except ValueError as exc:
        return _error(None, types.PARSE_ERROR, f"Parse error: {exc}.")
    if isinstance(parsed, dict) and parsed.get("jsonrpc") == "2.0" and ("method" in parsed or "id" in parsed):
        reason = "it is nested too deeply, or a field has the wrong type"
    else:
        reason = 'a request is {"jsonrpc": "2.0", "id": ..., "method": ..., "params": {...}}'
    return _error(_request_id(text, parsed), types.INVALID_REQUEST, f"Invalid Request: {reason}.")


def _error(request_id: str | int | None, code: int, message: str) -> types.JSONRPCError:
    return types.JSONRPCError(jsonrpc="2.0", id=request_id, error=types.ErrorData(code=code, message=message))


@asynccontextmanager
async def stdio_transport() -> AsyncIterator[tuple[Any, Any]]:
    """``(read_stream, write_stream)`` over this process's stdin and stdout, for ``Server.run``."""
    stdin = anyio.wrap_file(sys.stdin.buffer)
    stdout = anyio.wrap_file(sys.stdout.buffer)
    read_writer, read_stream = anyio.create_memory_object_stream[Any](0)
    write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](0)

    async def reader() -> None:
        async with read_writer:
            async for raw in stdin:
                found = read_line(raw)
                if isinstance(found, SessionMessage):
                    await read_writer.send(found)
                elif found is not None:
                    await write_stream.send(SessionMessage(found))

    async def writer() -> None:
        async with write_reader:
            async for message in write_reader:
                line = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                await stdout.write(line.encode("utf-8") + b"\n")
                await stdout.flush()

    async with anyio.create_task_group() as group:
        group.start_soon(reader)
        group.start_soon(writer)
        yield read_stream, write_stream
