"""A ``tools/call`` answer in one pass, for the results tiergate's tools give (``tiergate.server.mcphot``).

    shaping = Shaping()                          # checks itself against the SDK, per protocol version
    shaping.answer(request_id, result, version)  # the JSON-RPC response's bytes, or None: the SDK's way
    shaping.success(request_id, text, version)    # the same for a success envelope's text (or None)

The SDK turns a tool's ``CallToolResult`` into the answer's bytes in three passes through pydantic:
the result dumped to a dict, that dict validated and dumped again for the protocol version
(``methods.serialize_server_result``: which fields, in which order), and the JSON-RPC response
dumped to JSON. For the results tiergate's tools give (one text item and the envelope as
structured content, nothing else) that is always the same shape, so this writes the response in
one pass of pydantic's own JSON encoder over plain data in the version's field order. A
success (``mcpserver.EnvelopeText``) goes further: its structured content is its text read back,
and every JSON value but a float is spelled alike by Python's encoder and pydantic's, so a text
without a float is put into the answer as it is, never read back (one with a float, or that may
hold one, is read back and written as above).

Whether it is the same: when a ``Shaping`` is made, it writes a few sample results (success and
error, text with quotes, control characters, non-ASCII and line separators, floats in exponent
form, big integers, string and integer ids) both ways for every protocol version with the
handshake, and keeps this way only for the versions where every byte agrees; any other version,
and any result of another shape (more or other content, annotations, ``_meta``, extra fields, no
structured content, another ``resultType``), is left to the SDK's passes. Success texts
(``_SUCCESSES``) are checked the same way, spliced.
"""

from __future__ import annotations

import json
from typing import Any

import pydantic_core
from mcp.types import CallToolResult, JSONRPCResponse, TextContent
from mcp.types import methods as protocol
from mcp.types.version import HANDSHAKE_PROTOCOL_VERSIONS

from tiergate.jsonutil import canonical_json

_SAMPLES: tuple[tuple[Any, str, dict[str, Any], bool], ...] = (
    (7, '{"ok":true,"data":{"id":"0123456789ab"}}', {"ok": True, "data": {"id": "0123456789ab"}}, False),
    ("a-b", '{"ok":false}', {"ok": False, "error": {"code": "x", "message": 'm "q"\\', "details": {}}}, True),
    (2**62, 'é\u2028\x01\x1f\x7f/\\ "', {"ok": True, "data": {"f": [1.5e-7, 1e16, -0.0, 0.1, 2.0], "n": 2**70,
                                                             "s": "é\u2028\u2029\x00\x1f\x7f</>", "z": None,
                                                             "t": [True, False, {}], "u": "\U0001f600"}}, False),
)


#: Data whose success texts (``mcpserver._success``) are checked spliced against the SDK's passes.
_SUCCESSES: tuple[tuple[Any, Any], ...] = (
    (7, {"id": "0123456789ab", "n": [0, -3, 2**70], "t": [True, False, None, {}], "at": "2026-12-07T05:20:49.5Z"}),
    ("a-b", 'é \u2028\u2029 "q" \\ \x00\x01\x1f\x7f </> \U0001f600 \n ":1.5 [2e3'),
    (2**62, []),
)
#: What a float of Python's JSON always has after a digit: a point, or an exponent with its sign
#: (``repr``: ``1.5``, ``1e-05``, ``1e+16``).
_FLOAT_MARKS = (".", "e+", "e-")


def _may_hold_float(text: str) -> bool:
    """Whether compact JSON ``text`` (Python's encoder) may hold a float: a number with a point or an
    exponent after a key's ``":``, a ``[`` or a ``,`` (as a number of JSON always is). It may say so of
    a string too (``"at [1.5"``): then the text is read back, never misspelled. Looked for with
    ``str.find`` (a regular expression costs about 30 ns a character of a run's answer: 100 µs)."""
    for mark in _FLOAT_MARKS:
        at = text.find(mark)
        while at >= 0:
            start = at
            while start > 0 and "0" <= text[start - 1] <= "9":
                start -= 1
            if start < at:  # digits before the mark
                if text[start - 1:start] == "-":
                    start -= 1
                if text[start - 1:start] in ("[", ",") or text[start - 2:start] == '":':
                    return True
            at = text.find(mark, at + 1)
    return False


def _plain(result: Any) -> tuple[str, dict[str, Any], bool] | None:
    """The text, structured content and error flag of a result of the one shape this module writes."""
    if type(result) is not CallToolResult or result.meta is not None or result.model_extra \
            or result.result_type != "complete" or type(result.structured_content) is not dict \
            or len(result.content) != 1:
        return None
    item = result.content[0]
    if type(item) is not TextContent or item.annotations is not None or item.meta is not None or item.model_extra:
        return None
    return item.text, result.structured_content, bool(result.is_error)


def _sdk(request_id: Any, result: CallToolResult, version: str) -> bytes:
    """The SDK's passes, as ``mcphot`` makes them for any result."""
    dumped = protocol.serialize_server_result("tools/call", version,
                                              result.model_dump(by_alias=True, mode="json", exclude_none=True))
    body = JSONRPCResponse.model_construct(jsonrpc="2.0", id=request_id, result=dumped)
    return body.model_dump_json(by_alias=True, exclude_unset=True).encode("utf-8")


class Shaping:
    """Writes a ``tools/call`` answer in one pass where that gives the SDK's bytes (the module says when)."""

    def __init__(self) -> None:
        self.versions: frozenset[str] = frozenset(version for version in HANDSHAKE_PROTOCOL_VERSIONS
                                                  if self._agrees(version))

    @staticmethod
    def _write(request_id: Any, text: str, structured: dict[str, Any], is_error: bool) -> bytes:
        # The order of the SDK's surface models (2024-11-05 to 2025-11-25): content's text before its
        # type, then isError, then structuredContent. Checked by ``_agrees``.
        return pydantic_core.to_json({"jsonrpc": "2.0", "id": request_id, "result": {
            "content": [{"text": text, "type": "text"}], "isError": is_error, "structuredContent": structured}})

    def _agrees(self, version: str) -> bool:
        try:
            for request_id, text, structured, is_error in _SAMPLES:
                result = CallToolResult(content=[TextContent(type="text", text=text)],
                                        structured_content=structured, is_error=is_error)
                if self._write(request_id, text, structured, is_error) != _sdk(request_id, result, version):
                    return False
            for request_id, data in _SUCCESSES:
                text = '{"ok":true,"data":' + canonical_json(data) + "}"
                result = CallToolResult(content=[TextContent(type="text", text=text)],
                                        structured_content=json.loads(text))
                if self._splice(request_id, text) != _sdk(request_id, result, version):
                    return False
        except Exception:  # noqa: BLE001 - an SDK this module does not know: its own passes, always
            return False
        return True

    def success(self, request_id: Any, text: str, version: str) -> bytes | None:
        """The response's bytes for a success envelope's text, its structured content being that text
        read back, without reading it back: the same bytes when the text has no float (every other
        JSON value is spelled alike by Python's encoder and pydantic's; floats may not be, ``1e-05``
        against ``1e-5``). None: read it back (another version, a float, text that is not UTF-8)."""
        if version not in self.versions or _may_hold_float(text):
            return None
        try:
            return self._splice(request_id, text)
        except (UnicodeError, pydantic_core.PydanticSerializationError, ValueError, TypeError):
            return None

    @staticmethod
    def _splice(request_id: Any, text: str) -> bytes:
        # ``_write``'s order, the structured content last: the text itself, as its own JSON.
        head = pydantic_core.to_json({"jsonrpc": "2.0", "id": request_id, "result": {
            "content": [{"text": text, "type": "text"}], "isError": False}})
        return head[:-2] + b',"structuredContent":' + text.encode("utf-8") + b"}}"

    def answer(self, request_id: Any, result: Any, version: str) -> bytes | None:
        """The response's bytes, or None: the SDK's passes make them (another version or shape)."""
        if version not in self.versions:
            return None
        plain = _plain(result)
        if plain is None:
            return None
        try:
            return self._write(request_id, *plain)
        except (pydantic_core.PydanticSerializationError, ValueError, TypeError):
            return None
