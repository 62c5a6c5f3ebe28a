"""Gate patterns on hostile input: tiergate.patterns (RE2, or the fallback under its limit) against
Python's backtracking ``re`` on the same text, in the same run.

    python bench/regex_patterns.py

Issue 12's goal: a catastrophic pattern on 100 KB of input answers in under 100 ms.
"""

from __future__ import annotations

import re
import time

from tiergate import patterns
from tiergate.errors import LimitExceededError

OLD_CONTACT = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
NEW_CONTACT = r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$"


def timed(call) -> tuple[float, str]:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    try:
        outcome = str(call())
    except LimitExceededError as err:
        outcome = f"limit_exceeded ({err.details['limit']})"
    return (time.perf_counter() - started) * 1000, outcome


def main() -> None:
    text = "a" * 100_000 + "!"
    contact = "a@" + "b." * 50_000 + " "
    rows = [
        ("^(a+)+$ on 100 KB, tiergate (RE2)", lambda: patterns.search("^(a+)+$", text, where="bench")),
        ("^(a+)+$ on 24 chars, Python re", lambda: bool(re.search("^(a+)+$", "a" * 24 + "!"))),
        ("look-behind on 100 KB, tiergate (fallback)",
         lambda: patterns.search(r"^(\w+\s?)*(?<=z)$", text, where="bench")),
        ("old client_contact on 10 KB, Python re", lambda: bool(re.search(OLD_CONTACT, "a@" + "b." * 5_000 + " "))),
        ("old client_contact on 100 KB, tiergate (RE2)", lambda: patterns.search(OLD_CONTACT, contact, where="b")),
        ("new client_contact on 100 KB, Python re", lambda: bool(re.search(NEW_CONTACT, contact))),
    ]
    for name, call in rows:
        ms, outcome = timed(call)
        print(f"{name:48s} {ms:9.1f} ms  {outcome}")


if __name__ == "__main__":
    main()
