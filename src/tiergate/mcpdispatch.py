"""The MCP SDK's ``MCPServer`` as tiergate serves it (``_Server``): argument errors answered with
the tiergate envelope, unknown prompts with ``-32602``, stdio through ``tiergate.mcpstdio``, and a
tool called in the calling thread on the HTTP server's hot path (``call_tool_now``).
``tiergate.mcpserver.build_server`` makes one and registers the tools on it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, CallToolResult, InputRequiredResult
from pydantic import ValidationError

from tiergate.mcpanswers import (
    EnvelopeText,
    _argument_errors,
    _crashed,
    _hot_caller,
    _result,
    _unknown_arguments,
)
from tiergate.operations import Caller


class _Server(MCPServer):  # type: ignore[type-arg]
    """MCPServer whose argument errors come back as the tiergate envelope, like every other error,
    and whose stdio answers every line, malformed ones with the JSON-RPC error (``tiergate.mcpstdio``)."""

    #: Records a line the stdio transport refused (``tiergate.doorlog``); set by ``build_server``.
    on_refused: Callable[[Any], None] | None = None
    #: Records a tool call refused for its arguments, before any run: (tool, arguments, context).
    on_bad_arguments: Callable[[str, Any, Any], None] | None = None

    async def run_stdio_async(self) -> None:
        from tiergate.mcpstdio import stdio_transport

        async with stdio_transport(self.on_refused) as (read_stream, write_stream):
            await self._lowlevel_server.run(read_stream, write_stream,
                                            self._lowlevel_server.create_initialization_options())

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        schema = self._tool_input_schema(name)
        if schema is not None:
            known = set(schema.get("properties", {}))
            unknown = sorted(set(arguments) - known)
            if unknown:
                await self._record_bad_arguments(name, arguments, context)
                return _result(_unknown_arguments(name, unknown, sorted(known)))
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):
                await self._record_bad_arguments(name, arguments, context)
                return _result(_argument_errors(name, exc.__cause__))
            raise

    async def get_prompt(self, name: str, arguments: dict[str, Any] | None = None, context: Any = None) -> Any:
        """The SDK's, with an unknown prompt or argument, or a missing one, answered ``-32602`` with what
        is wrong (the SDK answers those with code 0 and logs a traceback for each)."""
        prompt = self._prompt_manager.get_prompt(name)
        if prompt is None:
            known = ", ".join(repr(p.name) for p in self._prompt_manager.list_prompts())
            raise MCPError(INVALID_PARAMS, f"no prompt {name[:80]!r}; this server has {known or 'none'}.")
        takes = [a.name for a in prompt.arguments or ()]
        unknown = sorted(set(arguments or {}) - set(takes))
        missing = [a.name for a in prompt.arguments or () if a.required and a.name not in (arguments or {})]
        if unknown or missing:
            problem = (f"unknown argument{'s' if len(unknown) > 1 else ''} {', '.join(repr(u[:80]) for u in unknown)}"
                       if unknown else f"the argument {missing[0]!r} is missing")
            raise MCPError(INVALID_PARAMS, f"prompt {name!r}: {problem}; it takes {', '.join(map(repr, takes))}.")
        return await super().get_prompt(name, arguments, context)

    async def _record_bad_arguments(self, name: str, arguments: Any, context: Any) -> None:
        if self.on_bad_arguments is not None:
            await anyio.to_thread.run_sync(self.on_bad_arguments, name, arguments, context)

    def call_tool_now(self, name: str, arguments: dict[str, Any],
                      caller: Caller) -> CallToolResult | InputRequiredResult | EnvelopeText | None:
        """``call_tool`` in this thread as ``caller`` (``tiergate.server.mcphot``), or None for a tool that
        is not registered (the SDK answers that). What the SDK's ``tools/call`` handler does for a tool
        of this server, by the tool's own SDK parts: its argument model, its function, its result
        conversion (with the output schema's check); an error is the same result as the SDK's.
        A success is its envelope's text (``EnvelopeText``): the output check has nothing to say of
        it (``{"ok": true, "data": ...}`` with any JSON as data is what ``Envelope`` describes)."""
        tool = self._tool_manager.get_tool(name)
        if tool is None or tool.is_async or tool.resolved_params:
            return None
        hot = _hot_caller.set(caller)
        try:
            unknown = sorted(set(arguments) - set(tool.parameters.get("properties", {})))
            if unknown:
                self._record_bad_arguments_now(name, arguments)
                return _result(_unknown_arguments(name, unknown, sorted(tool.parameters.get("properties", {}))))
            try:
                validated = tool.fn_metadata.validate_arguments(arguments)
            except ValidationError as exc:
                self._record_bad_arguments_now(name, arguments)
                return _result(_argument_errors(name, exc))
            except MCPError:
                raise
            except Exception:  # noqa: BLE001 - as the SDK: a crash's text stays on the server
                return _crashed(name)
            if tool.context_kwarg is not None:
                validated = {**validated, tool.context_kwarg: None}
            try:
                answered = tool.fn(**validated)
                if isinstance(answered, EnvelopeText):
                    return answered
                result = tool.fn_metadata.convert_result(answered)
            except MCPError:
                raise
            except (ToolError, ResourceError) as exc:  # raised on purpose: its text says what
                return _crashed(name, exc)
            except Exception:  # noqa: BLE001
                return _crashed(name)
            return result
        finally:
            _hot_caller.reset(hot)

    def _record_bad_arguments_now(self, name: str, arguments: Any) -> None:
        if self.on_bad_arguments is not None:
            self.on_bad_arguments(name, arguments, None)
