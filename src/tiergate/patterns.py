"""Regular expressions from definitions (gate ``pattern`` and ``patternProperties``), in bounded time.

    search("^[A-Z]+-[0-9]+$", "SUP-12", where="/ticket_id")   # True

Patterns run on RE2 (``google-re2``), which matches in time linear in the text: no pattern can
backtrack catastrophically. The few patterns RE2 cannot run (back-references, look-around) run
on the ``regex`` module under a wall-clock deadline (``regex_seconds``); going over it, or over
``regex_pattern_chars``, is a ``LimitExceededError`` naming the pattern's place.

Why a thread: the ``regex`` module's own ``timeout`` is measured with C's ``clock()``, the CPU
time of the whole process. On a busy machine a match gets a fraction of a CPU, so 50 ms of CPU
time took 130-350 ms of wall time (docs/performance.md); and another thread's work would count
against it. So the match runs on a small pool of threads with the GIL released
(``concurrent=True``) while the caller waits for the deadline on the wall clock, and answers
then. A match that is abandoned keeps its thread until its own CPU timeout (the same value)
stops it; the pool is small and a match waiting for a free thread is given up at the same
deadline, so hostile patterns can neither pile up threads nor keep a caller waiting.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any

import re2  # type: ignore[import-untyped]
import regex  # type: ignore[import-untyped]

from tiergate.errors import DefinitionError
from tiergate.limits import exceeded, limit

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a pattern RE2 cannot run falls back; no noise on standard error

#: Threads that run fallback matches: a few, so abandoned matches cannot multiply.
FALLBACK_THREADS = 2
_POOL = ThreadPoolExecutor(max_workers=FALLBACK_THREADS, thread_name_prefix="tiergate-regex")
_POOL_PID = os.getpid()


def _pool() -> ThreadPoolExecutor:
    """This process's pool: a forked child has none of its parent's threads, so it makes its own."""
    global _POOL, _POOL_PID
    if _POOL_PID != os.getpid():
        _POOL = ThreadPoolExecutor(max_workers=FALLBACK_THREADS, thread_name_prefix="tiergate-regex")
        _POOL_PID = os.getpid()
    return _POOL


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
    seconds = limit("regex_seconds")
    # The match's own CPU timeout is a backstop that frees the thread of an abandoned match.
    match = _pool().submit(compiled.search, text, concurrent=True, timeout=seconds)
    try:
        return match.result(timeout=seconds) is not None
    except TimeoutError:  # the wall-clock deadline, or the match's own CPU timeout
        match.cancel()  # not started yet (every thread busy): it never will be
        raise exceeded("regex_seconds", where, f"matching the pattern {pattern[:80]!r} against {len(text)} "
                       "characters took too long (the pattern backtracks; write it without back-references "
                       "or look-around so it runs in linear time)") from None
