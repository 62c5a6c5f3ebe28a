"""Inputs checked for size and shape before anything else is.

Evidence, start data, a retry's data, an outcome and a reason come from actors. Before the
engine looks at the actor, the run or a gate, each is checked here: its size, nesting depth and
number of values against ``tiergate.limits``, and its shape: finite numbers only (no NaN or
Infinity), valid Unicode (no lone surrogates), no NUL character (PostgreSQL keeps none in text),
string keys, and, where it arrives as JSON text, no key given twice (two parsers must never
disagree on what passed a gate).

    evidence = accept(JSONText(raw_bytes, "--evidence file ev.json"), "evidence")  # from the CLI
    evidence = accept({"summary": "..."}, "evidence")                               # from a program

A refused input raises ``InputRefused`` (a ``LimitExceededError`` or a ``UsageError``) that
carries ``facts``: the input's sha256 and size, which is all that is ever logged of it.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from tiergate.errors import InvalidDataError, LimitExceededError, TiergateError, UsageError
from tiergate.jsonutil import canonical_json
from tiergate.limits import exceeded, limit


@dataclass(frozen=True)
class JSONText:
    """JSON as it arrived (text or bytes), not parsed yet; ``source`` says from where (for messages)."""

    text: str | bytes
    source: str


@dataclass(frozen=True)
class Facts:
    """What may be logged of a refused input: never the content."""

    sha256: str
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "bytes": self.bytes}


class _Refusal(Exception):
    def __init__(self, problem: str, message: str, pointer: str = ""):
        super().__init__(message)
        self.problem, self.message, self.pointer = problem, message, pointer


def facts_of(value: Any) -> Facts:
    """sha256 and size of an input: of its bytes as received, or of its JSON spelling."""
    if isinstance(value, JSONText):
        raw = value.text if isinstance(value.text, bytes) else value.text.encode("utf-8", "surrogatepass")
        return Facts(hashlib.sha256(raw).hexdigest(), len(raw))
    try:
        raw = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True,
                         default=repr).encode("ascii")
    except (RecursionError, ValueError, TypeError):
        raw = _spelling_without_recursion(value)
    return Facts(hashlib.sha256(raw).hexdigest(), len(raw))


def _spelling_without_recursion(value: Any) -> bytes:
    parts: list[str] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            parts.append("{")
            for key in sorted(item, key=repr, reverse=True):
                stack.extend((item[key], ascii(key)))
        elif isinstance(item, (list, tuple)):
            parts.append("[")
            stack.extend(reversed(item))
        else:
            parts.append(ascii(item))
    return "".join(parts).encode("ascii")


def loggable(value: Any, text: str | None = None) -> Any:
    """``value`` itself if it is small enough to log in full (``logged_attempt_bytes``), else its facts."""
    if text is None:
        try:
            text = canonical_json(value)
        except (ValueError, TypeError, RecursionError):
            return {"omitted": True, **facts_of(value).to_dict()}
    size = len(text.encode("utf-8", "surrogatepass"))
    if size <= limit("logged_attempt_bytes"):
        return value
    return {"omitted": True, "sha256": hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(),
            "bytes": size}


class InputRefused(TiergateError):
    """Mixin marker: an input refused for its size or shape, with the ``facts`` to log."""

    facts: Facts
    field: str


class InputTooLarge(LimitExceededError, InputRefused):
    pass


class InputMalformed(InvalidDataError, InputRefused):
    """Well-formed JSON of the wrong shape (NaN, a duplicate key, ...): data that does not fit (exit 1)."""


class InputUnreadable(UsageError, InputRefused):
    """Text that is not JSON at all: a malformed command (``invalid_json``, exit 2)."""


def parse_json(raw: JSONText, field: str) -> Any:
    """Parse JSON text strictly: UTF-8, no duplicate keys, no NaN/Infinity, bounded depth."""
    text = raw.text
    too_big = limit("evidence_bytes") * 4  # before parsing: whitespace may make the text larger than its JSON
    if len(text) > too_big:
        raise _too_large(raw, field, "evidence_bytes", f"it is {len(text)} bytes as given")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _malformed(raw, field, "not_utf8", f"{raw.source} is not UTF-8 text (byte {exc.start})",
                             details={"byte": exc.start}) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except _Refusal as exc:
        raise _malformed(raw, field, exc.problem, f"{raw.source}: {exc.message}") from None
    except RecursionError:
        raise _too_large(raw, field, "input_depth", "it is nested more deeply than JSON can be read") from None
    except json.JSONDecodeError as exc:
        err = InputUnreadable(
            f"{raw.source}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}. Pass a JSON object, "
            f"e.g. {raw.source.split()[0]} '{{\"key\": \"value\"}}' or {raw.source.split()[0]} @file.json.",
            code="invalid_json", details={"line": exc.lineno, "column": exc.colno})
        err.facts, err.field = facts_of(raw), field
        raise err from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Refusal("duplicate_key", f"key '{key[:80]}' is given twice in one object; give each key once")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise _Refusal("not_finite", f"{name} is not a JSON number; give a finite number or a string")


def accept(value: Any, field: str) -> Any:
    """``value`` (or ``JSONText``, parsed here) if its size and shape pass; else ``InputRefused``."""
    if isinstance(value, JSONText):
        parsed = parse_json(value, field)
        facts_source: Any = value
        value = parsed
    else:
        facts_source = value
    try:
        try:
            estimate = _walk(value, paths=False)
        except _Refusal:
            estimate = _walk(value, paths=True)  # again, slower, to say where
    except _Refusal as exc:
        where = f"{field}{exc.pointer}"
        if exc.problem in ("input_depth", "input_values", "evidence_bytes"):
            raise _too_large(facts_source, field, exc.problem, exc.message, where=where) from None
        raise _malformed(facts_source, field, exc.problem, f"{where}: {exc.message}",
                         details={"pointer": exc.pointer or "/"}) from None
    # The walk's estimate is at most 6 times short (an escaped character, a 4-byte one): only an
    # input that may be over the limit is encoded to be measured exactly.
    if value is not None and not isinstance(value, str) and estimate * 6 > limit("evidence_bytes"):
        size = len(canonical_json(value).encode("utf-8"))
        if size > limit("evidence_bytes"):
            raise _too_large(facts_source, field, "evidence_bytes", f"it is {size} bytes as JSON")
    return value


def check_reason(reason: Any, field: str = "reason") -> str:
    if not isinstance(reason, str):
        raise _malformed(reason, field, "not_text", f"the {field} must be text")
    if len(reason) > limit("reason_chars"):
        raise _too_large(reason, field, "reason_chars", f"it is {len(reason)} characters")
    try:
        _walk(reason)
    except _Refusal as exc:
        raise _malformed(reason, field, exc.problem, f"{field}: {exc.message}") from None
    return reason


#: How an id or a name is called in a message, by the field (the API's path or query parameter, the
#: MCP tool's argument) that carries it.
_ID_WORDS = {"run": ("run id", "send the run id as `tiergate runs` lists it"),
             "step": ("step id", "send a step id as the run's status lists it"),
             "process": ("process id", "send a process id as `tiergate processes` lists it"),
             "name": ("name", "send the message's or signal's name as the process's BPMN gives it"),
             "status": ("status", "send active, completed, cancelled or failed")}


#: The longest id of each kind the database keeps (the columns ``runs.id`` and ``log_entries.step``):
#: a longer one names nothing, and PostgreSQL refuses to log an attempt on it where SQLite would not.
_ID_CHARS = {"run": 32, "step": 128}


def check_id(value: Any, field: str) -> None:
    """Refuse an id or a name (a run, a step, a process, a signal's name) that no database can look up
    alike: one holding a NUL character (PostgreSQL refuses it in any statement, SQLite would find
    nothing), a lone surrogate (no UTF-8 spelling), or a run or step id longer than the database keeps
    (PostgreSQL refuses to log an attempt on it). No such id can exist, so the answer is the same on
    every database: ``invalid_input`` naming the field, before anything is looked up."""
    if not isinstance(value, str):
        return
    most = _ID_CHARS.get(field)
    if value.isascii() and "\x00" not in value and (most is None or len(value) <= most):
        return
    if most is not None and len(value) > most:
        problem, why = "too_long", f"has {len(value)} characters, and no {{what}} has more than {most}"
    elif "\x00" in value:
        problem, why = "nul_character", "holds a NUL character (U+0000)"
    else:
        try:
            value.encode("utf-8")
            return
        except UnicodeEncodeError as exc:
            problem, why = "lone_surrogate", f"holds a lone surrogate (U+{ord(value[exc.start]):04X}), not valid Unicode"
    what, fix = _ID_WORDS.get(field, (field, f"send the {field} without it"))
    shown = json.dumps(value[:80]) + ("..." if len(value) > 80 else "")
    why = why.format(what=what) if problem == "too_long" else f"{why}, which no {what} has"
    err = InputMalformed(f"the {what} {shown} {why}: there is no such {field}. Nothing was changed; {fix}.",
                         code="invalid_input",
                         details={"field": field, "problem": problem})
    err.facts, err.field = facts_of(value), field
    err.details.update(err.facts.to_dict())
    raise err


def _walk(value: Any, paths: bool = True) -> int:
    """Depth, number of values, a lower bound of the size, finite numbers, valid text, string keys.

    Returns the size's lower bound. ``paths`` keeps each value's JSON pointer, to name where it failed.
    """
    max_depth, max_values, max_bytes = limit("input_depth"), limit("input_values"), limit("evidence_bytes")
    budget, size = max_values, 0
    stack: list[tuple[Any, int, tuple[str, ...]]] = [(value, 0, ())]
    while stack:
        item, depth, path = stack.pop()
        budget -= 1
        if budget < 0:
            raise _Refusal("input_values", f"it holds more than {max_values} values")
        if isinstance(item, str):
            size += len(item) + 2
            if size > max_bytes:
                raise _Refusal("evidence_bytes", f"it is more than {max_bytes} bytes")
            if not item.isascii():
                _text(item, path)
            if "\x00" in item:
                raise _Refusal("nul_character", _NUL, _pointer(path))
        elif isinstance(item, bool) or item is None or isinstance(item, int):
            size += 5
        elif isinstance(item, float):
            size += 5
            if math.isnan(item) or math.isinf(item):
                raise _Refusal("not_finite", f"{item} is not a JSON number; give a finite number", _pointer(path))
        elif isinstance(item, (dict, list, tuple)):
            if depth >= max_depth:
                raise _Refusal("input_depth", f"it is nested more than {max_depth} levels deep", _pointer(path))
            size += 2
            if isinstance(item, dict):
                for key, sub in item.items():
                    if not isinstance(key, str):
                        raise _Refusal("key_not_text", f"key {key!r} is not text", _pointer(path))
                    if not key.isascii():
                        _text(key, path)
                    if "\x00" in key:
                        raise _Refusal("nul_character", _NUL, _pointer(path))
                    size += len(key) + 4
                    stack.append((sub, depth + 1, path + (key,) if paths else path))
            else:
                if paths:
                    stack.extend((sub, depth + 1, path + (str(index),)) for index, sub in enumerate(item))
                else:
                    stack.extend((sub, depth + 1, path) for sub in item)
                size += len(item)
        else:
            raise _Refusal("not_json", f"a {type(item).__name__} is not a JSON value", _pointer(path))
    return size


#: Valid JSON, but text PostgreSQL cannot keep: refused on every database alike.
_NUL = "the text holds a NUL character (U+0000), which cannot be stored; remove it"


def _text(text: str, path: tuple[str, ...]) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _Refusal("lone_surrogate", f"the text holds a lone surrogate (U+{ord(text[exc.start]):04X}), which is "
                       "not valid Unicode", _pointer(path)) from None


def _pointer(path: tuple[str, ...]) -> str:
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in path)


def _too_large(source: Any, field: str, name: str, what: str, where: str | None = None) -> InputTooLarge:
    base = exceeded(name, where or field, what, field=field)
    err = InputTooLarge(base.message + " Store large artefacts elsewhere and submit a link to them.",
                        details=base.details)
    err.facts, err.field = facts_of(source), field
    err.details.update(err.facts.to_dict())
    return err


def _malformed(source: Any, field: str, problem: str, message: str,
               details: dict[str, Any] | None = None) -> InputMalformed:
    code = {"evidence": "invalid_evidence", "outcome": "invalid_evidence", "data": "invalid_data"}.get(field,
                                                                                                     "invalid_input")
    err = InputMalformed(f"{message}. Nothing was changed; fix the {field} and try again.", code=code,
                         details={"field": field, "problem": problem, **(details or {})})
    err.facts, err.field = facts_of(source), field
    err.details.update(err.facts.to_dict())
    return err
