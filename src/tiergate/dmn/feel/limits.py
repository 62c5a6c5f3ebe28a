"""The budget of one FEEL evaluation: every limit in one place (docs/dmn.md, "Limits").

Over a limit, evaluation stops with ``LimitExceededError`` (code ``limit_exceeded``) naming the
limit. The clock starts at the outermost ``for`` loop or FEEL function call of an evaluation, so
plain decision tables and literal expressions pay nothing for it.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass

from ...errors import LimitExceededError


@dataclass(frozen=True)
class FEELLimits:
    seconds: float = 2.0                  # wall time of the loops and function calls of one evaluation
    list_items: int = 1_000_000           # items of a list that FEEL builds (for, ranges, concatenation)
    string_chars: int = 1_000_000         # characters of a string that FEEL builds
    regex_pattern_chars: int = 10_000     # characters of a regex pattern (matches, replace, split)
    regex_memory_bytes: int = 8 << 20     # memory of one compiled regex (RE2's max_mem)
    regex_seconds: float = 0.05           # one match of a pattern with back-references (backtracking)


FEEL_LIMITS = FEELLimits()

_DEADLINE: ContextVar[float | None] = ContextVar("tiergate_feel_deadline", default=None)


def start_clock():
    """Start the clock unless one runs; returns a token for ``stop_clock`` (None if one ran)."""
    if _DEADLINE.get() is None:
        return _DEADLINE.set(time.monotonic() + FEEL_LIMITS.seconds)
    return None


def stop_clock(token) -> None:
    if token is not None:
        _DEADLINE.reset(token)


def check_time() -> None:
    deadline = _DEADLINE.get()
    if deadline is not None and time.monotonic() > deadline:
        raise over("seconds", FEEL_LIMITS.seconds, "the evaluation ran too long")


def check_items(n: int) -> None:
    if n > FEEL_LIMITS.list_items:
        raise over("list_items", FEEL_LIMITS.list_items, f"a list of {n} items")


def check_string(s: str) -> str:
    if len(s) > FEEL_LIMITS.string_chars:
        raise over("string_chars", FEEL_LIMITS.string_chars, f"a string of {len(s)} characters")
    return s


def over(limit: str, value, what: str) -> LimitExceededError:
    return LimitExceededError(
        f"FEEL limit exceeded: {what} (limit {limit} = {value}); simplify the expression or its "
        "input", details={"limit": f"feel.{limit}", "value": value})


def budgeted_call(body, env):
    """``body(env)`` for a FEEL function call: starts the clock, or checks the running one."""
    deadline = _DEADLINE.get()
    if deadline is None:
        token = _DEADLINE.set(time.monotonic() + FEEL_LIMITS.seconds)
        try:
            return body(env)
        finally:
            _DEADLINE.reset(token)
    if time.monotonic() > deadline:
        raise over("seconds", FEEL_LIMITS.seconds, "the evaluation ran too long")
    return body(env)
