"""The doors' strict reading of a message (tiergate.wirejson.read: no key twice, no NaN, bounded
depth) against plain ``json.loads`` of the same bytes, in the same run.

    python bench/wire_json.py            # best of 5 rounds per message

Prints, per message, microseconds per read and the ratio strict / plain: what reading every
MCP line and HTTP body strictly costs over the parse it replaces.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable

from tiergate import wirejson


def call(evidence: Any) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "complete_step", "arguments": {"run": "4f2a9c1e7b3d", "step": "gather", "evidence": evidence}}}).encode()


def best(read: Callable[[bytes], Any], raw: bytes, times: int) -> float:
    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(times):
            read(raw)
        rounds.append((time.perf_counter() - started) / times)
    return min(rounds) * 1e6


def main() -> None:
    messages = [
        ("a step's evidence (2 fields)", call({"summary": "The export fails for every client.", "severity": "S3"}), 2000),
        ("200 KB of text in one field", call({"notes": "x" * 200_000}), 200),
        ("8,000 small objects (190 KB)", call({"items": [{"k": i, "v": "abc"} for i in range(8000)]}), 10),
    ]
    for name, raw, times in messages:
        strict, plain = best(wirejson.read, raw, times), best(json.loads, raw, times)
        print(f"{name:32s} {len(raw):>8} bytes  strict {strict:9.1f} us  plain {plain:9.1f} us  "
              f"ratio {strict / plain:5.2f}")


if __name__ == "__main__":
    main()
