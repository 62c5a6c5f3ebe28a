"""FEEL built-ins: list functions."""

from __future__ import annotations

import functools
from decimal import Decimal

from . import ops
from .registry import MISSING, Null, feel, integer, invoke, items_of, num, seq
from .types import DECIMAL_CONTEXT as _C
from .types import FEELFunction


def _contains(items: list, value) -> bool:
    return any(ops.eq(x, value) is True for x in items)


@feel("list contains", "list", "element", nulls=False)
def list_contains(items, element):
    return _contains(seq(items), element)


@feel("count", "list")
def count(items):
    return Decimal(len(seq(items)))


def _ordered(items: list) -> list:
    if not items:
        raise Null
    first = items[0]
    for x in items:
        if x is None or ops.compare(first, x) is None:
            raise Null
    return items


@feel("min", "list", nulls=False)
def min_(*args):
    items = _ordered(items_of(args))
    return functools.reduce(lambda a, b: b if ops.compare(b, a) < 0 else a, items)


@feel("max", "list", nulls=False)
def max_(*args):
    items = _ordered(items_of(args))
    return functools.reduce(lambda a, b: b if ops.compare(b, a) > 0 else a, items)


def _numbers(args) -> list[Decimal]:
    items = items_of(args)
    for x in items:
        num(x)
    return items


@feel("sum", "list", nulls=False)
def sum_(*args):
    items = _numbers(args)
    if not items:
        return None
    total = Decimal(0)
    for x in items:
        total = _C.add(total, x)
    return total


@feel("product", "list", nulls=False)
def product(*args):
    items = _numbers(args)
    if not items:
        return None
    total = Decimal(1)
    for x in items:
        total = _C.multiply(total, x)
    return total


@feel("mean", "list", nulls=False)
def mean(*args):
    items = _numbers(args)
    if not items:
        return None
    return _C.divide(sum_(items), Decimal(len(items)))


@feel("median", "list", nulls=False)
def median(*args):
    items = sorted(_numbers(args))
    if not items:
        return None
    mid = len(items) // 2
    if len(items) % 2:
        return items[mid]
    return _C.divide(_C.add(items[mid - 1], items[mid]), Decimal(2))


@feel("stddev", "list", nulls=False)
def stddev(*args):
    items = _numbers(args)
    if len(items) < 2:
        return None
    avg = mean(items)
    squares = sum_([_C.power(_C.subtract(x, avg), 2) for x in items])
    return _C.divide(squares, Decimal(len(items) - 1)).sqrt(_C)


@feel("mode", "list", nulls=False)
def mode(*args):
    items = _numbers(args)
    counts: dict[Decimal, int] = {}
    for x in items:
        counts[x] = counts.get(x, 0) + 1
    if not counts:
        return []
    top = max(counts.values())
    return sorted(x for x, c in counts.items() if c == top)


def _booleans(args) -> list:
    items = items_of(args)
    for x in items:
        if x is not None and x.__class__ is not bool:
            raise Null
    return items


@feel("all", "list", nulls=False)
def all_(*args):
    items = _booleans(args)
    if any(x is False for x in items):
        return False
    return None if any(x is None for x in items) else True


@feel("any", "list", nulls=False)
def any_(*args):
    items = _booleans(args)
    if any(x is True for x in items):
        return True
    return None if any(x is None for x in items) else False


@feel("sublist", "list", "start position", "length")
def sublist(items, start, length=MISSING):
    items, start = seq(items), integer(start)
    n = len(items)
    if start == 0 or abs(start) > n:
        raise Null
    begin = start - 1 if start > 0 else n + start
    if length is MISSING:
        return items[begin:]
    length = integer(length)
    if length < 0 or begin + length > n:
        raise Null
    return items[begin:begin + length]


@feel("append", "list", "item", nulls=False)
def append(items, *new):
    return list(seq(items)) + list(new)


@feel("concatenate", "list", nulls=False)
def concatenate(*lists):
    out: list = []
    for x in lists:
        out.extend(seq(x))
    return out


@feel("insert before", "list", "position", "newItem", nulls=False)
def insert_before(items, position, new_item):
    items, position = seq(items), integer(position)
    n = len(items)
    if position == 0 or abs(position) > n:
        raise Null
    i = position - 1 if position > 0 else n + position
    return items[:i] + [new_item] + items[i:]


@feel("remove", "list", "position")
def remove(items, position):
    items, position = seq(items), integer(position)
    n = len(items)
    if position == 0 or abs(position) > n:
        raise Null
    i = position - 1 if position > 0 else n + position
    return items[:i] + items[i + 1:]


@feel("reverse", "list")
def reverse(items):
    return list(reversed(seq(items)))


@feel("index of", "list", "match", nulls=False)
def index_of(items, match):
    return [Decimal(i + 1) for i, x in enumerate(seq(items)) if ops.eq(x, match) is True]


@feel("union", "list", nulls=False)
def union(*lists):
    out: list = []
    for x in lists:
        for item in seq(x):
            if not _contains(out, item):
                out.append(item)
    return out


@feel("distinct values", "list")
def distinct_values(items):
    out: list = []
    for item in seq(items):
        if not _contains(out, item):
            out.append(item)
    return out


def _flatten(items: list, out: list) -> list:
    for x in items:
        if x.__class__ is list:
            _flatten(x, out)
        else:
            out.append(x)
    return out


@feel("flatten", "list")
def flatten(items):
    return _flatten(seq(items), [])


@feel("sort", "list", "precedes")
def sort(items, precedes=MISSING):
    items = list(seq(items))
    if precedes is MISSING:
        _ordered(items) if items else None
        return sorted(items, key=functools.cmp_to_key(ops.compare))
    if precedes.__class__ is not FEELFunction:
        raise Null

    def cmp(a, b):
        if invoke(precedes, [a, b], None) is True:
            return -1
        if invoke(precedes, [b, a], None) is True:
            return 1
        return 0

    return sorted(items, key=functools.cmp_to_key(cmp))
