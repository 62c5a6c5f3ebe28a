"""A tool's answer as the MCP SDK carries it: the envelope of ``tiergate.envelope`` as a
``CallToolResult`` (its text and its structured content), the success envelope spelled once
(``EnvelopeText`` on the HTTP server's hot path), and the answers to bad arguments and to a tool
that failed. ``tiergate.mcpserver`` re-exports every name.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from typing import Annotated, Any

from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel, Field, ValidationError

from tiergate.envelope import failure
from tiergate.jsonutil import canonical_json
from tiergate.operations import Caller


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine code: refused, gate_failed, not_found, invalid_data, usage, ...")
    message: str = Field(description="What is wrong, where, and what to do.")
    details: dict[str, Any] = Field(description="Specifics: details.reason for refused, details.errors for "
                                                "gate_failed (each failing field by JSON pointer).")


class Envelope(BaseModel):
    """The answer of every tool: the same envelope as the CLI's --json."""

    ok: bool = Field(description="true on success (then `data`), false on failure (then `error`).")
    data: Any = Field(default=None, description="The answer, on success.")
    error: ErrorBody | None = Field(default=None, description="What went wrong, on failure.")


Answer = Annotated[CallToolResult, Envelope]


def _result(envelope: dict[str, Any], text: str | None = None) -> CallToolResult:
    # The text is the envelope as compact JSON: fewer tokens for the model than indented JSON, and
    # json.dumps with indent runs its pure-Python encoder (about 5 times the CPU for a run's answer).
    if text is None:
        text = json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=envelope,
                          is_error=not envelope["ok"])


class EnvelopeText(str):
    """A success envelope's text (``_success``), whose structured content is that text read back:
    what a tool answers on the HTTP server's hot path (``_Server.call_tool_now``), which writes the
    answer from the text alone when it can (``tiergate.server.mcpshape``) and reads it back only
    when it cannot (``result``)."""

    def result(self) -> CallToolResult:
        return _result(json.loads(self), str(self))


def _success(data: Any) -> CallToolResult | EnvelopeText:
    """The success envelope of ``data``: its text encoded once, in the canonical spelling (sorted keys,
    the JSON forms of ``tiergate.jsonutil``), and read back as the structured content (on the hot
    path, only the text: ``EnvelopeText``)."""
    text = '{"ok":true,"data":' + canonical_json(data) + "}"
    if _hot_caller.get() is not None:
        return EnvelopeText(text)
    return _result(json.loads(text), text)


def _argument_errors(tool: str, error: ValidationError) -> dict[str, Any]:
    problems = []
    for item in error.errors():
        name = ".".join(str(part) for part in item["loc"]) or "arguments"
        problems.append({"argument": name, "message": "is missing" if item["type"] == "missing" else item["msg"]})
    listed = "; ".join(f"'{p['argument']}' {p['message']}" for p in problems)
    return failure("usage", f"{tool}: bad arguments: {listed}. The tool's input schema says what each argument "
                   "must be.", {"tool": tool, "errors": problems})


def _unknown_arguments(tool: str, unknown: list[str], known: list[str]) -> dict[str, Any]:
    hint = (" The actor is fixed when the server starts: no tool takes one." if "actor" in unknown else "")
    return failure("usage", f"{tool}: unknown argument{'s' if len(unknown) > 1 else ''} "
                   f"{', '.join(repr(u) for u in unknown)}; it takes {', '.join(repr(k) for k in known) or 'none'}."
                   + hint, {"tool": tool, "unknown": unknown, "arguments": known})


def _crashed(tool: str, error: Exception | None = None) -> CallToolResult:
    """The SDK's result for a tool that failed (``Tool.run``'s wording)."""
    text = f"Error executing tool {tool}" + (f": {error}" if error is not None else "")
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


#: The caller of a tool call that ``_Server.call_tool_now`` runs (the HTTP server's hot path), in
#: that call's own context: the tools read it as they read the caller the SDK's request carries.
_hot_caller: ContextVar[Caller | None] = ContextVar("tiergate_mcp_hot_caller", default=None)
