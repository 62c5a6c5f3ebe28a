"""The MCP server's stdio transport: one JSON-RPC message per line, and an answer for every line.

The SDK's own stdio transport hands a line it cannot read to the session, which answers
nothing: the client waits forever. This one reads each line with ``tiergate.wirejson`` (the
one strict parser of every door) and answers a line it refuses itself, as JSON-RPC says:

* not UTF-8, not JSON, or ``NaN``/``Infinity``: ``-32700`` (parse error);
* a key given twice, nesting over ``message_depth``, a line over ``message_bytes`` (counted as
  it arrives: the rest of the line is skipped unread and the server goes on with the next), or
  JSON that is not a JSON-RPC message: ``-32600`` (invalid request);

with the request's ``id`` when it can be told, else null, and in ``error.data`` the problem and
the line's sha256 and size (never its content). Each refusal is recorded by ``on_refused``.
Everything else goes to the session as the message the strict parser read.
"""

from __future__ import annotations

import hashlib
import sys
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable

import anyio
import mcp_types as types
from mcp.shared.message import SessionMessage

from tiergate import wirejson
from tiergate.limits import limit

#: Called with each refused line (``WireRefused``); what it records is up to the server.
OnRefused = Callable[[wirejson.WireRefused], None]
_CHUNK = 64 * 1024
_HEAD = 4096


def read_line(raw: bytes, on_refused: OnRefused | None = None) -> SessionMessage | types.JSONRPCError | None:
    """A line from the client: its message, the error to answer it with, or None for a blank line."""
    if not raw.strip():
        return None
    try:
        parsed = wirejson.read(raw)
    except wirejson.WireRefused as refused:
        return refusal(refused, on_refused)
    not_one = wirejson.not_a_message(parsed, raw)  # a batch, a bare value: said so, not validated
    if not_one is not None:
        return refusal(not_one, on_refused)
    try:
        return SessionMessage(types.jsonrpc_message_adapter.validate_python(parsed, by_name=False))
    except Exception:  # noqa: BLE001 - pydantic's ValidationError, or whatever a malformed shape raises
        pass
    if isinstance(parsed, dict) and parsed.get("jsonrpc") == "2.0" and ("method" in parsed or "id" in parsed):
        reason = "a field has the wrong type"
    else:
        reason = 'a request is {"jsonrpc": "2.0", "id": ..., "method": ..., "params": {...}}'
    shaped = wirejson.WireRefused("not_jsonrpc", f"the message is not a JSON-RPC request: {reason}",
                                  wirejson.facts(raw), wirejson._top_id(parsed))
    return refusal(shaped, on_refused)


def refusal(refused: wirejson.WireRefused, on_refused: OnRefused | None = None) -> types.JSONRPCError:
    """The JSON-RPC error that answers ``refused`` (recorded first by ``on_refused``)."""
    if on_refused is not None:
        on_refused(refused)
    kind = "Parse error" if refused.rpc_code == wirejson.PARSE_ERROR else "Invalid Request"
    return types.JSONRPCError(jsonrpc="2.0", id=refused.request_id, error=types.ErrorData(
        code=refused.rpc_code, message=f"{kind}: {refused.message}.", data=refused.data()))


def _answer(line: bytes | wirejson.WireRefused, on_refused: OnRefused | None) -> Any:
    return refusal(line, on_refused) if isinstance(line, wirejson.WireRefused) else read_line(line, on_refused)


class LineReader:
    """Lines of at most ``message_bytes`` from chunks; a longer line is skipped unread, as a refusal."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.over: tuple[Any, int, bytes] | None = None  # (sha256, size, head) of a line being skipped

    def feed(self, chunk: bytes) -> list[bytes | wirejson.WireRefused]:
        """The complete lines (or refusals of oversized ones) that ``chunk`` ends."""
        found: list[bytes | wirejson.WireRefused] = []
        most = limit("message_bytes")
        while chunk:
            end = chunk.find(b"\n")
            piece, chunk = (chunk, b"") if end < 0 else (chunk[:end], chunk[end + 1:])
            if self.over is None and len(self.buffer) + len(piece) > most:
                head = bytes(self.buffer[:_HEAD]) + piece[:max(0, _HEAD - len(self.buffer))]
                self.over = (hashlib.sha256(self.buffer), len(self.buffer), head)
                self.buffer.clear()
            if self.over is not None:
                digest, size, head = self.over
                digest.update(piece)
                self.over = (digest, size + len(piece), head)
                if end >= 0:
                    found.append(wirejson.too_large(size + len(piece), digest.hexdigest(), head))
                    self.over = None
            else:
                self.buffer += piece
                if end >= 0:
                    found.append(bytes(self.buffer))
                    self.buffer.clear()
        return found

    def close(self) -> list[bytes | wirejson.WireRefused]:
        """What is left at the end of input: a last line without its newline."""
        return self.feed(b"\n") if self.buffer or self.over is not None else []


@asynccontextmanager
async def stdio_transport(on_refused: OnRefused | None = None) -> AsyncIterator[tuple[Any, Any]]:
    """``(read_stream, write_stream)`` over this process's stdin and stdout, for ``Server.run``."""
    stdin = anyio.wrap_file(sys.stdin.buffer)
    stdout = anyio.wrap_file(sys.stdout.buffer)
    read_writer, read_stream = anyio.create_memory_object_stream[Any](0)
    write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](0)

    async def answer(lines: list[bytes | wirejson.WireRefused]) -> None:
        for line in lines:  # in a thread: a long line's parsing, and recording a refusal, wait for no one
            found = await anyio.to_thread.run_sync(_answer, line, on_refused)
            if isinstance(found, SessionMessage):
                await read_writer.send(found)
            elif found is not None:
                await write_stream.send(SessionMessage(found))

    async def reader() -> None:
        lines = LineReader()
        async with read_writer:
            while chunk := await stdin.read1(_CHUNK):
                await answer(lines.feed(chunk))
            await answer(lines.close())

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
