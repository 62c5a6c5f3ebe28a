"""Regular expressions from definitions (gate ``pattern`` and ``patternProperties``), in bounded time.

    search("^[A-Z]+-[0-9]+$", "SUP-12", where="/ticket_id")   # True

Patterns run on RE2 (``google-re2``), which matches in time linear in the text: no pattern can
backtrack catastrophically. The few patterns RE2 cannot run (back-references, look-around) run
on the ``regex`` module with a hard time limit (``regex_seconds``); going over it, or over
``regex_pattern_chars``, is a ``LimitExceededError`` naming the pattern's place.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2  # type: ignore[import-untyped]
import regex  # type: ignore[import-untyped]

from tiergate.errors import DefinitionError
from tiergate.limits import exceeded, limit

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a pattern RE2 cannot run falls back; no noise on standard error


@lru_cache(maxsize=2048)
def _compiled(pattern: str) -> tuple[str, Any]:
    try:
        return "re2", re2.compile(pattern, _OPTIONS)
    except re2.error:
        pass
    try:
        return "regex", regex.compile(pattern, regex.VERSION0)
    except (regex.error, ValueError, OverflowError) as exc:
        raise DefinitionError(f"pattern {pattern[:80]!r} is not a valid regular expression: {exc}. Fix it and run "
                              "`tiergate check`.", code="definition_invalid", details={"pattern": pattern}) from None


def engine_for(pattern: str) -> str:
    """``re2`` or ``regex`` (the fallback, under a time limit): which engine runs ``pattern``."""
    return _compiled(pattern)[0]


def search(pattern: str, text: str, *, where: str) -> bool:
    """Whether ``pattern`` matches somewhere in ``text`` (JSON Schema's ``pattern`` semantics)."""
    if len(pattern) > limit("regex_pattern_chars"):
        raise exceeded("regex_pattern_chars", where, f"the pattern is {len(pattern)} characters long")
    kind, compiled = _compiled(pattern)
    if kind == "re2":
        return compiled.search(text) is not None
    try:
        return compiled.search(text, timeout=limit("regex_seconds")) is not None
    except TimeoutError:
        raise exceeded("regex_seconds", where, f"matching the pattern {pattern[:80]!r} against {len(text)} "
                       "characters took too long (the pattern backtracks; write it without back-references "
                       "or look-around so it runs in linear time)") from None
