"""Exact medians and p90s without walking a whole group: value buckets say where each rank lies.

The log summary counts, per group (a step's completions by one kind of actor, or a process's
completed runs), how many values fall into each bucket of a fixed logarithmic scale (eight
buckets per doubling, from a millisecond up). To read the value of rank ``r``, the bucket
counts give the bucket it falls in and its place there; the database then seeks to the
bucket's lower bound in an index that holds the group's values in order, and steps over the
few values before it (``LIMIT 1 OFFSET k``), instead of over every smaller value of the group.

    counts[bucket_of(seconds)] += 1                 # the fold, for each value (kept as [[bucket, n], ...])
    locate(counts, needed_ranks(n))                 # {rank: (bucket, values of it before the rank)}
    ... duration_s >= lower_bound(bucket) ORDER BY duration_s LIMIT 1 OFFSET skip   # the seek
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from tiergate.metrics.sql import p90_rank

#: Lower bounds of buckets 1..: bucket 0 holds values below 0, bucket i values from
#: BOUNDS[i - 1] up to BOUNDS[i] (excluded), the last bucket every value from BOUNDS[-1] up.
#: In seconds: 0, then 1 ms doubling eight times per doubling up to 2^36 ms (about two years).
BOUNDS: tuple[float, ...] = (0.0, *(0.001 * 2 ** (k / 8) for k in range(36 * 8 + 1)))
#: The same bounds in milliseconds, for values kept as whole milliseconds.
BOUNDS_MS: tuple[float, ...] = tuple(b * 1000 for b in BOUNDS)


def bucket_of(value: float, bounds: Sequence[float] = BOUNDS) -> int:
    return bisect.bisect_right(bounds, value)


def lower_bound(bucket: int, bounds: Sequence[float] = BOUNDS) -> float:
    """The smallest value of ``bucket`` (minus infinity for bucket 0)."""
    return float("-inf") if bucket == 0 else bounds[bucket - 1]


def upper_bound(bucket: int, bounds: Sequence[float] = BOUNDS) -> float:
    """The bound the values of ``bucket`` stay below (infinity for the last one)."""
    return float("inf") if bucket >= len(bounds) else bounds[bucket]


def locate(counts: Sequence[Sequence[int]], wanted: set[int]) -> dict[int, tuple[int, int]]:
    """For each 1-based rank: (its bucket, values of that bucket before it), from the counts of
    the buckets that have values (``[[bucket, values], ...]`` in bucket order, as the summary keeps them)."""
    where: dict[int, tuple[int, int]] = {}
    todo = sorted(wanted)
    seen = 0
    for bucket, count in counts:
        while todo and todo[0] <= seen + count:
            rank = todo.pop(0)
            where[rank] = (bucket, rank - seen - 1)
        if not todo:
            break
        seen += count
    return where


def needed_ranks(n: int) -> set[int]:
    """The 1-based ranks ``sql.median_and_p90`` reads for ``n`` values."""
    return {(n + 1) // 2, (n + 2) // 2, p90_rank(n)} if n > 0 else set()
