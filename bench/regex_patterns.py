"""Gate patterns on hostile input: tiergate.patterns (RE2, or the fallback under its limit) against
Python's backtracking ``re`` on the same text, in the same run.

    python bench/regex_patterns.py              # as the machine is
    python bench/regex_patterns.py --load 6     # with 6 busy processes beside it (a loaded machine)

Issue 12's goal: a catastrophic pattern on 100 KB of input answers in under 100 ms. The fallback
rows compare ``tiergate.patterns`` (a wall-clock deadline) with the ``regex`` module's own
``timeout`` (C's ``clock()``: the process's CPU time), both at ``regex_seconds``: the baseline.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from typing import Callable

import regex  # type: ignore[import-untyped]

from tiergate import patterns
from tiergate.errors import LimitExceededError
from tiergate.limits import limit

OLD_CONTACT = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
NEW_CONTACT = r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$"
LOOK_BEHIND = r"^(\w+\s?)*(?<=z)$"


def timed(call: Callable[[], object]) -> tuple[float, str]:
    started = time.perf_counter()
    try:
        outcome = str(call())
    except LimitExceededError as err:
        outcome = f"limit_exceeded ({err.details['limit']})"
    except TimeoutError:
        outcome = "TimeoutError"
    return (time.perf_counter() - started) * 1000, outcome


def own_timeout(text: str) -> object:
    return regex.compile(LOOK_BEHIND, regex.VERSION0).search(text, timeout=limit("regex_seconds"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--load", type=int, default=0, help="busy processes to run beside the bench")
    parser.add_argument("--rounds", type=int, default=9, help="rounds of the fallback rows (median and max)")
    args = parser.parse_args()
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.load)]
    try:
        time.sleep(0.2 if hogs else 0)
        report(args.rounds, args.load)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def report(rounds: int, load: int) -> None:
    text = "a" * 100_000 + "!"
    contact = "a@" + "b." * 50_000 + " "
    rows = [
        ("^(a+)+$ on 100 KB, tiergate (RE2)", lambda: patterns.search("^(a+)+$", text, where="bench")),
        ("^(a+)+$ on 24 chars, Python re", lambda: bool(re.search("^(a+)+$", "a" * 24 + "!"))),
        ("old client_contact on 10 KB, Python re", lambda: bool(re.search(OLD_CONTACT, "a@" + "b." * 5_000 + " "))),
        ("old client_contact on 100 KB, tiergate (RE2)", lambda: patterns.search(OLD_CONTACT, contact, where="b")),
        ("new client_contact on 100 KB, Python re", lambda: bool(re.search(NEW_CONTACT, contact))),
    ]
    for name, call in rows:
        ms, outcome = timed(call)
        print(f"{name:52s} {ms:9.1f} ms  {outcome}")
    print(f"look-behind on 100 KB, {rounds} rounds, {load} busy processes beside (median / max):")
    fallback = [("tiergate (fallback, wall-clock deadline)",
                 lambda: patterns.search(LOOK_BEHIND, text, where="bench")),
                ("regex module's own timeout (CPU clock), baseline", lambda: own_timeout(text))]
    results: dict[str, list[float]] = {name: [] for name, _ in fallback}
    outcomes: dict[str, str] = {}
    for _ in range(rounds):  # interleaved, so both see the same load
        for name, call in fallback:
            ms, outcomes[name] = timed(call)
            results[name].append(ms)
            time.sleep(0.2)  # an abandoned match's thread finishes before the next round
    for name, times in results.items():
        print(f"  {name:50s} {statistics.median(times):7.1f} / {max(times):7.1f} ms  {outcomes[name]}")
    ours, base = (statistics.median(times) for times in results.values())
    print(f"  ratio (baseline / tiergate, median): {base / ours:.2f}")


if __name__ == "__main__":
    main()
