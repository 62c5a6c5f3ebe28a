"""JSON as it arrives at a door (a JSON-RPC message, an API body), read one strict way.

    message = read(raw_bytes)        # or WireRefused: problem, message, facts, request_id

Every door reads a message with this one parser and hands on the parsed value, so no second
parser ever reads the same text: JSON that two parsers could read differently is refused here.
That is a key given twice in one object (one parser keeps the first, another the last),
``NaN``/``Infinity`` (not JSON), text that is not UTF-8, nesting deeper than ``message_depth``,
and a message longer than ``message_bytes`` (measured before it is parsed). A refusal carries
the message's sha256 and size (``facts``), which is all a door ever logs of it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

from tiergate.inputs import Facts
from tiergate.limits import limit

#: JSON-RPC's codes: not JSON at all, and JSON that is not an acceptable request.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600

_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_ID = re.compile(rb'"id"\s*:\s*("(?:[^"\\]|\\.){0,200}"|-?\d{1,18})')


class WireRefused(Exception):
    """A message refused before anything looked inside it."""

    def __init__(self, problem: str, message: str, facts: Facts, request_id: str | int | None = None):
        super().__init__(message)
        # not_utf8 | not_json | not_finite | lone_surrogate | duplicate_key | message_depth | message_bytes
        # | not_jsonrpc | batch (tiergate.mcpstdio, the MCP door)
        self.problem = problem
        self.message, self.facts, self.request_id = message, facts, request_id

    @property
    def rpc_code(self) -> int:
        return PARSE_ERROR if self.problem in ("not_utf8", "not_json", "not_finite", "lone_surrogate") \
            else INVALID_REQUEST

    def data(self) -> dict[str, Any]:
        """The JSON-RPC error's ``data`` (and the API envelope's details): what and how large, never the content."""
        found: dict[str, Any] = {"problem": self.problem, **self.facts.to_dict()}
        if not self.facts.sha256:  # refused by its declared length, never read
            del found["sha256"]
        if self.problem in ("message_depth", "message_bytes"):
            found.update(limit=self.problem, value=limit(self.problem))
        return found


class _Strict(Exception):
    def __init__(self, problem: str, message: str):
        super().__init__(message)
        self.problem, self.message = problem, message


def facts(raw: bytes) -> Facts:
    return Facts(hashlib.sha256(raw).hexdigest(), len(raw))


def not_a_message(value: Any, raw: bytes) -> WireRefused | None:
    """The refusal of JSON that is not one JSON-RPC message (a batch, a bare value), or None for an object:
    the SDK would answer it with its validation's text, which says nothing a client can act on."""
    if isinstance(value, dict):
        return None
    if isinstance(value, list):
        return WireRefused("batch", "a batch (a JSON array of messages) is not supported: MCP has had no batches "
                           "since protocol version 2025-06-18, and this server answers none. Send each message as "
                           "its own request", facts(raw))
    return WireRefused("not_jsonrpc", 'the message is not a JSON-RPC request: a request is {"jsonrpc": "2.0", '
                       '"id": ..., "method": ..., "params": {...}}', facts(raw))


def too_large(size: int, digest: str, head: bytes = b"") -> WireRefused:
    """The refusal of a message over ``message_bytes`` (counted as it streamed; only its head kept)."""
    return WireRefused("message_bytes", f"the message is {size} bytes, over the limit message_bytes "
                       f"({limit('message_bytes')} bytes). Store large artefacts elsewhere and send a link to them",
                       Facts(digest, size), head_id(head))


def read(raw: bytes) -> Any:
    """The JSON value of ``raw``, read strictly; ``WireRefused`` says why not."""
    if len(raw) > limit("message_bytes"):
        raise too_large(len(raw), hashlib.sha256(raw).hexdigest(), raw[:4096])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WireRefused("not_utf8", f"the message is not UTF-8 (byte {exc.start})", facts(raw)) from None
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant,
                           parse_float=_finite)
        if _SURROGATE.search(raw) is not None:  # escapes only: raw text that is UTF-8 holds no surrogate
            _whole_unicode(value)
    except _Strict as exc:
        raise WireRefused(exc.problem, exc.message, facts(raw), _lenient_id(text)) from None
    except RecursionError:
        raise _too_deep(raw) from None
    except ValueError as exc:
        if "integer string conversion" in str(exc):  # Python's own bound on reading a long integer
            raise WireRefused("not_finite", "a number has more than 4300 digits, too large for a number; give a "
                              "smaller one or a string", facts(raw), head_id(raw[:4096])) from None
        raise WireRefused("not_json", f"the message is not JSON: {exc}", facts(raw)) from None
    if _depth_over(value, limit("message_depth")):
        raise _too_deep(raw, value)
    return value


def _too_deep(raw: bytes, value: Any = None) -> WireRefused:
    request_id = _top_id(value) if value is not None else head_id(raw[:4096].split(b'"params"', 1)[0])
    return WireRefused("message_depth", f"the message is nested more than {limit('message_depth')} levels deep "
                       "(limit message_depth). Send flatter JSON", facts(raw), request_id)


def _depth_over(value: Any, most: int) -> bool:
    """Whether ``value`` nests containers more than ``most`` levels deep (level by level: no recursion)."""
    level, depth = [value], 0
    while level:
        if depth >= most:  # a container on level depth + 1
            return True
        deeper: list[Any] = []
        for item in level:
            found = item.values() if type(item) is dict else item if type(item) is list else ()
            deeper += [sub for sub in found if type(sub) is dict or type(sub) is list]
        level, depth = deeper, depth + 1
    return False


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))  # type: ignore[func-returns-value]
        raise _Strict("duplicate_key", f"the key '{twice[:80]}' is given twice in one object; give each key once")
    return out


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400: too large for a float, read as Infinity by some parsers
        raise _Strict("not_finite", f"{text[:40]} is too large for a number; give a smaller one or a string")
    return value


def _whole_unicode(value: Any) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise _Strict("lone_surrogate", "a string holds a lone surrogate (an unpaired \\uD800-\\uDFFF "
                              "escape), which is not valid Unicode") from None


def _no_constant(name: str) -> Any:
    raise _Strict("not_finite", f"{name} is not a JSON number; give a finite number or a string")


_TWICE = object()


def _lenient_id(text: str) -> str | int | None:
    """The request's ``id`` when the message was refused for its content: unless ``id`` itself is doubtful."""
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            out[key] = _TWICE if key in out else value
        return out

    try:
        return _top_id(json.loads(text, object_pairs_hook=pairs))
    except (ValueError, RecursionError):
        return None


def _top_id(value: Any) -> str | int | None:
    found = value.get("id") if isinstance(value, dict) else None
    return found if isinstance(found, (str, int)) and not isinstance(found, bool) else None


def head_id(head: bytes) -> str | int | None:
    """The ``id`` found in the first bytes of a message that cannot be read whole, if one is there."""
    found = _ID.search(head.split(b'"params"', 1)[0])
    if found is None:
        return None
    try:
        return _top_id({"id": json.loads(found.group(1))})
    except ValueError:
        return None
